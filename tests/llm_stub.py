"""A scripted OpenAI-compatible chat server for failure injection (429s, 5xx, timeouts, malformed answers).

`StubLLM.script` is a list of actions consumed one per request (the last one repeats):
an int is an HTTP status to fail with, a float a delay in seconds before answering, a str
the answer's text. `answer(messages)` decides the text when the action is None.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Action = int | float | str | None


class StubLLM:
    def __init__(self, script: list[Action] | None = None, answer: Callable[[list[dict[str, Any]]], str] = lambda _: "ok") -> None:
        self.script, self.answer = list(script or [None]), answer
        self.requests: list[dict[str, Any]] = []
        self.in_flight = self.most_in_flight = 0
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    async def chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        action = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(action, int):
            return JSONResponse({"error": {"message": f"scripted {action}", "type": "stub"}}, status_code=action,
                                headers={"retry-after": "0"})
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(action if isinstance(action, float) else 0.02)
        finally:
            self.in_flight -= 1
        text = action if isinstance(action, str) else self.answer(body["messages"])
        return JSONResponse({"id": "stub", "object": "chat.completion", "created": 0, "model": body["model"],
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
