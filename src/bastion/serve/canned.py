"""A canned OpenAI-compatible upstream that replays fixed answers, for tests and benchmarks.

Latency measurements need an upstream whose own cost is negligible and constant, and tests
need answers that do not vary between machines. The answer to a request is the first
`replies` entry whose key occurs in the last user message (else `default`), streamed in
chunks of `words_per_chunk` words. `app.state.requests` records each request and whether its
stream ran to the end (a client that disconnects should cut the upstream stream short).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

MODEL = "canned"


def _chunk(text: str | None, finish: str | None, created: int) -> dict[str, Any]:
    delta = {} if text is None else {"content": text}
    return {"id": "chatcmpl-canned", "object": "chat.completion.chunk", "created": created, "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def pieces(text: str, words_per_chunk: int) -> list[str]:
    """The deltas a stream of `text` is cut into (each but the first starts with its space)."""
    words = text.split(" ")
    return [(" " if i else "") + " ".join(words[i:i + words_per_chunk]) for i in range(0, len(words), words_per_chunk)]


def canned_app(replies: dict[str, str] | None = None, default: str = "Sure. Here is a short, friendly answer.",
               words_per_chunk: int = 1, delay_s: float = 0.0) -> FastAPI:
    """`delay_s` pauses before each streamed chunk (to hold a stream open in disconnect tests)."""
    app = FastAPI()
    app.state.requests = []  # what was asked, and whether each stream ran to its end

    def answer(body: dict[str, Any]) -> str:
        last = next((m.get("content") or "" for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
        return next((reply for key, reply in (replies or {}).items() if key in str(last)), default)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": MODEL, "object": "model"}]}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> Any:
        body = await request.json()
        text, created = answer(body), int(time.time())
        record = {"body": body, "completed": False}
        app.state.requests.append(record)
        if not body.get("stream"):
            record["completed"] = True
            return JSONResponse({"id": "chatcmpl-canned", "object": "chat.completion", "created": created,
                                 "model": body.get("model", MODEL),
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                              "finish_reason": "stop"}],
                                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

        async def events() -> AsyncIterator[bytes]:
            role = _chunk(None, None, created)
            role["choices"][0]["delta"] = {"role": "assistant"}
            yield f"data: {json.dumps(role)}\n\n".encode()
            for piece in pieces(text, words_per_chunk):
                if delay_s:
                    await asyncio.sleep(delay_s)
                yield f"data: {json.dumps(_chunk(piece, None, created))}\n\n".encode()
            yield f"data: {json.dumps(_chunk(None, 'stop', created))}\n\n".encode()
            yield b"data: [DONE]\n\n"
            record["completed"] = True

        return StreamingResponse(events(), media_type="text/event-stream")

    return app
