"""One backend for every LLM job: the official `openai` client over any OpenAI-compatible server.

Generation, the judge and the attacker all call `Backend.complete` (async) or
`Backend.complete_sync`. Either way the request runs on the backend's own event loop, in a
background thread, so one semaphore bounds the requests in flight across every caller and
thread (the red-team runner scores from a thread pool) and one connection pool serves them.

Failures that go away on their own — 429, 5xx, timeouts, dropped connections — are retried
with exponential backoff (and the server's Retry-After, when it sends one); the rest, and
the last retry's failure, become a `BackendError` naming the server, the model and why.
Answers are cached on disk by the hash of the full request, so a rerun costs nothing.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from bastion.errors import BackendError, ConfigError

try:
    import openai
except ImportError as exc:  # the `llm` extra
    raise ConfigError('LLM backends need the OpenAI client: pip install "bastion-guard[llm]"') from exc
from bastion.llm.cache import ResponseCache, request_key
from bastion.llm.config import EMBEDDED, BackendConfig

T = TypeVar("T")
Messages = Sequence[dict[str, str]]
RETRYABLE = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError, openai.APIResponseValidationError)
MAX_DELAY_S = 60.0


@dataclass(frozen=True)
class Completion:
    """One answer: its text, token counts, and whether it came from the cache."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    cached: bool = False


@dataclass
class Usage:
    """Running totals for one Backend: what was asked, what it cost, what the cache saved."""

    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    request_seconds: float = 0.0

    @property
    def hit_rate(self) -> float:
        total = self.requests + self.cache_hits
        return self.cache_hits / total if total else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"requests": self.requests, "cache_hits": self.cache_hits, "hit_rate": round(self.hit_rate, 4),
                "retries": self.retries, "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost_usd": round(self.cost_usd, 6), "request_seconds": round(self.request_seconds, 3)}


class Backend:
    """Chat completions from `config.base_url` with concurrency, retries, accounting and a cache.

    Use as a context manager (or call `close`) so the background loop and its connections end.
    `config.base_url` must be a URL here; `connect` starts the embedded model for 'embedded'.
    """

    def __init__(self, config: BackendConfig, *, cache: ResponseCache | None = None) -> None:
        if config.base_url == EMBEDDED or not config.model:
            raise BackendError("a Backend needs a server URL and a model name; use bastion.llm.connect for 'embedded'")
        self.config = config
        self.cache = cache if cache is not None else (ResponseCache(config.cache_dir) if config.cache_dir else None)
        self.usage = Usage()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: openai.AsyncOpenAI | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        return self.config.model or ""

    # -- the background loop -------------------------------------------------------------

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="bastion-llm", daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run `coro` on the backend's loop; a concurrent.futures.Future of its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._start())

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
        if self._loop is None:
            return
        if self._client is not None:
            self.submit(self._client.close()).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._thread = self._client = self._semaphore = None

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------------

    def request(self, messages: Messages, *, max_tokens: int | None = None, temperature: float | None = None,
                seed: int | None = None) -> dict[str, Any]:
        """The full request body: what is sent, and what the cache key hashes."""
        body: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in messages],
                                "max_tokens": max_tokens or self.config.max_tokens,
                                "temperature": self.config.temperature if temperature is None else temperature}
        if seed is not None:
            body["seed"] = seed
        return body

    async def complete(self, messages: Messages, **params: Any) -> Completion:
        """One chat completion (from the cache when this exact request was answered before)."""
        return await asyncio.wrap_future(self.submit(self._complete(self.request(messages, **params))))

    def complete_sync(self, messages: Messages, **params: Any) -> Completion:
        """`complete` for synchronous callers (any thread)."""
        return self.submit(self._complete(self.request(messages, **params))).result()

    def complete_many(self, conversations: Sequence[Messages], **params: Any) -> list[Completion]:
        """Completions for a batch of conversations, requested concurrently (bounded by `concurrency`)."""
        async def all_of() -> list[Completion]:
            return list(await asyncio.gather(*(self._complete(self.request(m, **params)) for m in conversations)))

        return self.submit(all_of()).result() if conversations else []

    async def _complete(self, body: dict[str, Any]) -> Completion:
        key = request_key(body)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            self.usage.cache_hits += 1
            return Completion(**hit, cached=True)
        if self._semaphore is None or self._client is None:
            self._semaphore = asyncio.Semaphore(self.config.concurrency)
            key_text = self.config.api_key.get_secret_value() if self.config.api_key else "unused"
            self._client = openai.AsyncOpenAI(base_url=self.config.base_url, api_key=key_text, max_retries=0,
                                              timeout=self.config.timeout_s)
        async with self._semaphore:
            completion = await self._with_retries(body)
        if self.cache is not None:
            self.cache.put(key, {"text": completion.text, "prompt_tokens": completion.prompt_tokens,
                                 "completion_tokens": completion.completion_tokens, "finish_reason": completion.finish_reason})
        return completion

    async def _with_retries(self, body: dict[str, Any]) -> Completion:
        assert self._client is not None
        for attempt in range(self.config.max_retries + 1):
            started = time.perf_counter()
            try:
                response = await self._client.chat.completions.create(**body)
                return self._account(response, time.perf_counter() - started)
            except RETRYABLE as exc:
                self.usage.request_seconds += time.perf_counter() - started
                if attempt == self.config.max_retries:
                    raise BackendError(f"{self.config.base_url} ({self.model}): {_describe(exc)}, "
                                       f"still failing after {attempt} retries") from exc
                self.usage.retries += 1
                await asyncio.sleep(self._delay(attempt, exc))
            except openai.APIStatusError as exc:
                raise BackendError(f"{self.config.base_url} ({self.model}): {_describe(exc)}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, exc: Exception) -> float:
        """Exponential backoff with jitter; a server's Retry-After wins when it asks for longer."""
        delay = self.config.backoff_s * 2**attempt * (1 + 0.25 * random.random())
        response = getattr(exc, "response", None)
        if response is not None:
            with suppress(ValueError):
                delay = max(delay, float(response.headers.get("retry-after", 0)))
        return min(delay, MAX_DELAY_S)

    def _account(self, response: Any, seconds: float) -> Completion:
        if not getattr(response, "choices", None):
            raise BackendError(f"{self.config.base_url} ({self.model}): the answer has no choices")
        usage = response.usage
        prompt_tokens, completion_tokens = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
        self.usage.requests += 1
        self.usage.request_seconds += seconds
        self.usage.prompt_tokens += prompt_tokens
        self.usage.completion_tokens += completion_tokens
        self.usage.cost_usd += (prompt_tokens * self.config.input_usd_per_mtok
                                + completion_tokens * self.config.output_usd_per_mtok) / 1e6
        choice = response.choices[0]
        return Completion(text=choice.message.content or "", prompt_tokens=prompt_tokens,
                          completion_tokens=completion_tokens, finish_reason=choice.finish_reason)


def _describe(exc: Exception) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return "timed out"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {exc.message}"
    if isinstance(exc, openai.APIConnectionError):
        return "cannot connect"
    return f"malformed answer ({exc.__class__.__name__})"


@contextmanager
def connect(config: BackendConfig, *, n_ctx: int = 2048) -> Iterator[Backend]:
    """A Backend for `config`, starting (and afterwards stopping) the embedded model for 'embedded'."""
    if config.base_url != EMBEDDED:
        if not config.model:
            raise BackendError(f"no model named for {config.base_url}: set BASTION_LLM_MODEL, `model:` in the "
                               "backend file, or --model")
        with Backend(config) as backend:
            yield backend
        return
    from bastion.serve.embedded import MODEL_NAME, EmbeddedModel

    with EmbeddedModel(n_ctx=n_ctx) as embedded, Backend(config.model_copy(
            update={"base_url": embedded.url, "model": config.model or MODEL_NAME})) as backend:
        yield backend
