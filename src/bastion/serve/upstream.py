"""The model behind the guard: any OpenAI-compatible server, reached with httpx.

Upstream failures become `UpstreamError`s carrying the status code the client should see:
a timeout is 504, an unreachable or broken upstream 502, and the upstream's own 4xx errors
pass through with their body (an unknown model stays a 404).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from bastion.errors import BastionError
from bastion.serve.schemas import error_body


class UpstreamError(BastionError):
    """The upstream failed; `status` and `body` are what the client receives."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body["error"]["message"])
        self.status, self.body = status, body


def _failure(exc: httpx.HTTPError) -> UpstreamError:
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError(504, error_body("the upstream model timed out", type="upstream_error", code="upstream_timeout"))
    return UpstreamError(502, error_body(f"the upstream model is unreachable ({exc.__class__.__name__})",
                                         type="upstream_error", code="upstream_unavailable"))


async def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    raw = await response.aread()
    try:
        body = json.loads(raw)
        if not isinstance(body, dict) or "error" not in body:
            raise ValueError
    except ValueError:
        body = error_body(f"upstream returned HTTP {response.status_code}", type="upstream_error")
    status = response.status_code if response.status_code < 500 else 502
    raise UpstreamError(status, body)


class Upstream:
    """Async client of one OpenAI-compatible base URL (e.g. `http://127.0.0.1:8080/v1`)."""

    def __init__(self, base_url: str, *, timeout_s: float = 120.0, api_key: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        base = base_url if base_url.endswith("/v1") else base_url + "/v1"
        self.client = httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(timeout_s, connect=10.0),
                                        headers=headers, transport=transport,
                                        limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """A non-streamed chat completion."""
        try:
            response = await self.client.post("/chat/completions", json={**body, "stream": False})
            await _raise_for_status(response)
            return response.json()
        except httpx.HTTPError as exc:
            raise _failure(exc) from exc
        except ValueError as exc:
            raise UpstreamError(502, error_body("the upstream returned a body that is not JSON",
                                                type="upstream_error")) from exc

    @asynccontextmanager
    async def stream(self, body: dict[str, Any]) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Open a streamed chat completion; yields an iterator of parsed chunks.

        Leaving the context closes the connection, which is how a client's disconnect
        cancels the upstream request.
        """
        try:
            async with self.client.stream("POST", "/chat/completions", json={**body, "stream": True}) as response:
                await _raise_for_status(response)
                yield _chunks(response)
        except httpx.HTTPError as exc:
            raise _failure(exc) from exc

    async def models(self) -> list[str]:
        try:
            response = await self.client.get("/models", timeout=5.0)
            await _raise_for_status(response)
            return [m["id"] for m in response.json().get("data", [])]
        except httpx.HTTPError as exc:
            raise _failure(exc) from exc

    async def aclose(self) -> None:
        await self.client.aclose()


async def _chunks(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Parse server-sent events (`data: {...}` lines) until `data: [DONE]`."""
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            yield json.loads(data)
        except ValueError as exc:
            raise UpstreamError(502, error_body("the upstream sent a malformed stream chunk",
                                                type="upstream_error")) from exc
