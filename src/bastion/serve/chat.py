"""`POST /v1/chat/completions`: screen the conversation, forward it, check the answer.

Non-streamed answers are checked as one whole exchange and withheld whole when flagged.
Streamed answers are relayed chunk by chunk, each chunk's text replaced by what the monitor
has released so far;
the upstream's final chunk is held back until the monitor has scored the rest, and the
audit row is updated before that final chunk leaves.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from bastion.data.records import render_conversation
from bastion.guard.stream import StreamMonitor
from bastion.serve.schemas import ChatCompletionRequest, error_body
from bastion.serve.service import Decision, GuardFailure, Service, new_request_id
from bastion.serve.upstream import Upstream, UpstreamError


class ApiError(Exception):
    """An HTTP error with OpenAI's error body."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(body["error"]["message"])
        self.status, self.body, self.headers = status, body, headers or {}


GUARD_UNAVAILABLE = ApiError(503, error_body("the guard could not screen this request; it was not forwarded",
                                             type="guard_error", code="guard_unavailable"))


def sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


class ChatProxy:
    """One chat completion request, from screening to the audited answer."""

    def __init__(self, service: Service, request: ChatCompletionRequest, raw: dict[str, Any], key_id: str | None) -> None:
        self.service, self.request, self.raw, self.key_id = service, request, raw, key_id
        self.guard = service.guard  # one guard for the whole request, even if another is swapped in meanwhile
        self.request_id = new_request_id()
        self.conversation = request.conversation()
        self.started = time.perf_counter()
        self.guard_ms = 0.0
        self.input: Decision | None = None

    # -- input ---------------------------------------------------------------------------

    async def screen(self) -> Decision:
        try:
            verdict, ms = await self.service.run_guard(lambda: self.guard.check(self.conversation), "stage1")
            self.guard_ms += ms
            self.input = self.service.decide(verdict, None, "input", "blocked")
        except GuardFailure as exc:
            self.input = self.service.decide(None, str(exc), "input", "blocked")
        return self.input

    def input_row(self, status: str, **fields: Any) -> dict[str, Any]:
        assert self.input is not None
        texts = self.service.audit.texts(input=render_conversation(self.conversation))
        return self.service.row(self.request_id, "chat", self.key_id, self.request.model, self.input,
                                status=status, guard_ms=round(self.guard_ms, 3), **texts, **fields)

    def refusal(self) -> dict[str, Any]:
        """A normal chat completion carrying the constitution's refusal."""
        assert self.input is not None
        return {"id": f"chatcmpl-{self.request_id}", "object": "chat.completion", "created": int(time.time()),
                "model": self.request.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": self.guard.refusal_message},
                             "finish_reason": "content_filter", "logprobs": None}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                "bastion": self.service.bastion_object(self.request_id, self.input.action, self.input.verdict)}

    def action(self, output: Decision | None) -> str:
        """The request's action: the output decision's when it did anything, else the input's."""
        assert self.input is not None
        return output.action if output is not None and output.action != "allowed" else self.input.action

    async def blocked_response(self) -> dict[str, Any] | None:
        """Audit and return the refusal when the input decision blocks (or raise when the guard failed)."""
        assert self.input is not None
        if not self.input.blocks:
            return None
        await self.service.record(self.input_row("complete", total_ms=self._elapsed_ms()))
        if self.input.error is not None:
            raise GUARD_UNAVAILABLE
        return self.refusal()

    # -- output --------------------------------------------------------------------------

    def monitor(self) -> StreamMonitor:
        return self.guard.monitor(self.conversation, **self.service.config.stream.model_dump())

    async def check_text(self, text: str) -> tuple[Decision, str]:
        """Score a complete answer as one exchange; returns the decision and the text that may be shown.

        A flagged answer is withheld whole: this is what a monitor fed the answer as a single
        delta releases, at a third of the cost of running one.
        """
        try:
            verdict, ms = await self.service.run_guard(lambda: self.guard.check(self.conversation, text), "output")
            self.guard_ms += ms
            decision = self.service.decide(verdict, None, "output", "halted")
        except GuardFailure as exc:
            return self.service.decide(None, str(exc), "output", "halted"), ""
        return decision, "" if decision.blocks else text

    async def complete(self) -> dict[str, Any]:
        """The non-streamed path."""
        upstream_started = time.perf_counter()
        response = await self._upstream().complete(self.raw)
        upstream_ms = (time.perf_counter() - upstream_started) * 1000
        self.service.metrics.upstream_latency.observe(upstream_ms / 1000)
        outputs: list[tuple[Decision, str]] = []
        for choice in response.get("choices") or []:
            message = choice.get("message") or {}
            decision, shown = await self.check_text(message.get("content") or "")
            outputs.append((decision, shown))
            if decision.blocks:
                message["content"], choice["finish_reason"] = shown, "content_filter"
        worst = next((d for d, _ in outputs if d.action != "allowed"), outputs[0][0] if outputs else None)
        assert self.input is not None
        action = self.action(worst)
        halted = worst is not None and worst.blocks
        row = self.input_row("complete", upstream_ms=round(upstream_ms, 3), total_ms=self._elapsed_ms(),
                             **self.service.output_fields(worst, len(outputs[0][1]) if halted else None)
                             if worst else {})
        row["action"] = action
        row.update(self.service.audit.texts(output=outputs[0][1] if outputs else ""))
        await self.service.record(row)
        if worst is not None and worst.error is not None and worst.blocks:
            raise GUARD_UNAVAILABLE
        response["bastion"] = self.service.bastion_object(self.request_id, action, self.input.verdict,
                                                          worst.verdict if worst else None)
        return response

    # -- streaming -----------------------------------------------------------------------

    async def open_stream(self) -> AsyncIterator[bytes]:
        """Open the upstream stream (so its errors still become HTTP statuses), then relay it."""
        if self.request.model_extra and (self.request.model_extra.get("n") or 1) > 1:
            raise ApiError(400, error_body("Bastion streams one choice at a time; use n=1 with stream=true", param="n"))
        stack = AsyncExitStack()
        upstream_started = time.perf_counter()
        chunks = await stack.enter_async_context(self._upstream().stream(self.raw))
        await self.service.record(self.input_row("open"))
        return self._relay(stack, chunks, upstream_started)

    async def _relay(self, stack: AsyncExitStack, chunks: AsyncIterator[dict[str, Any]],
                     upstream_started: float) -> AsyncIterator[bytes]:
        monitor, sent, held, first, full = self.monitor(), 0, [], True, ""
        decision: Decision | None = None
        finished = False
        try:
            async for chunk in chunks:
                if first:
                    self.service.metrics.upstream_latency.observe(time.perf_counter() - upstream_started)
                    first = False
                choices = chunk.get("choices") or []
                if not choices or choices[0].get("finish_reason"):
                    held.append(chunk)  # sent after the monitor has scored everything
                    continue
                text = (choices[0].get("delta") or {}).get("content") or ""
                full += text
                if text and decision is None:
                    started = time.perf_counter()
                    verdict = monitor.feed(text)
                    self.guard_ms += (time.perf_counter() - started) * 1000
                    if verdict.halted:
                        decision = self.service.decide(verdict, None, "output", "halted")
                        if decision.blocks:
                            break
                released = full if decision is not None else monitor.released  # shadow mode passes all
                out = _with_content(chunk, released[sent:])
                sent = len(released)
                if out is not None:
                    yield sse(out)
            if decision is None:
                decision = self.service.decide(monitor.close(), None, "output", "halted")
            shown = monitor.released if decision.blocks else full
            tail = shown[sent:]
            action = await self._finish_row(decision, shown, len(shown) if decision.blocks else None)
            finished = True
            for out in self._final_chunks(held, tail, decision, action):
                yield sse(out)
            yield sse("[DONE]")
        except UpstreamError as exc:
            await self.service.amend(self.request_id, status="complete", action="upstream_error",
                                     error=str(exc), total_ms=self._elapsed_ms())
            finished = True
            yield sse(exc.body)
        finally:
            if not finished:  # the client went away: record that, synchronously, even while cancelled
                self.service.audit.update(self.request_id, status="complete", action="client_disconnected",
                                          total_ms=self._elapsed_ms(), **self.service.audit.texts(output=monitor.released))
            await stack.aclose()

    async def _finish_row(self, decision: Decision, shown: str, halt_position: int | None) -> str:
        """Complete the stream's audit row; returns the request's action."""
        action = self.action(decision)
        await self.service.amend(self.request_id, status="complete", action=action,
                                 guard_ms=round(self.guard_ms, 3), total_ms=self._elapsed_ms(),
                                 **self.service.output_fields(decision, halt_position),
                                 **self.service.audit.texts(output=shown))
        return action

    def _final_chunks(self, held: list[dict[str, Any]], tail: str, decision: Decision, action: str) -> list[dict[str, Any]]:
        """The rest of the released text, then the finish chunk with Bastion's verdict."""
        assert self.input is not None
        template = held[0] if held else {"id": f"chatcmpl-{self.request_id}", "object": "chat.completion.chunk",
                                         "created": int(time.time()), "model": self.request.model,
                                         "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        out: list[dict[str, Any]] = []
        if tail:
            text_chunk = copy.deepcopy(template)
            text_chunk["choices"] = [{"index": 0, "delta": {"content": tail}, "finish_reason": None}]
            out.append(text_chunk)
        finish = next((c for c in held if c.get("choices")), None)
        finish = copy.deepcopy(finish or template)
        if decision.blocks:
            finish["choices"] = [{"index": 0, "delta": {}, "finish_reason": "content_filter"}]
        finish["bastion"] = self.service.bastion_object(self.request_id, action, self.input.verdict,
                                                        decision.verdict)
        out.append(finish)
        if not decision.blocks:
            out += [c for c in held if not c.get("choices")]  # e.g. the usage chunk
        return out

    # -- helpers -------------------------------------------------------------------------

    def _upstream(self) -> Upstream:
        if self.service.upstream is None:
            raise ApiError(503, error_body("no upstream model is configured", type="upstream_error"))
        return self.service.upstream

    def _elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)


def _with_content(chunk: dict[str, Any], text: str) -> dict[str, Any] | None:
    """The chunk with its text replaced by newly released text; None when nothing is left to send."""
    delta = chunk["choices"][0].get("delta") or {}
    rest = {k: v for k, v in delta.items() if k != "content" and v is not None}
    if not text and not rest:
        return None
    out = copy.deepcopy(chunk)
    out["choices"][0]["delta"] = {**rest, **({"content": text} if text else {})}
    return out
