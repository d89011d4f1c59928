"""The FastAPI application: routes, authentication, body limits and OpenAI-style errors.

Every failure a client can cause is a 4xx with OpenAI's error object (never a 500), so the
official SDKs raise their usual exceptions: malformed JSON and wrong types are 400, a
missing or unknown key 401, an unknown model 404, an oversized body 413, too many requests
429.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from bastion.data.records import Example
from bastion.errors import BastionError
from bastion.guard import Guard
from bastion.serve.audit import AuditLog
from bastion.serve.chat import GUARD_UNAVAILABLE, ApiError, ChatProxy, sse
from bastion.serve.config import ServeConfig, from_environment
from bastion.serve.moderation import moderation_result, openai_mapping
from bastion.serve.schemas import ChatCompletionRequest, ClassifyRequest, ModerationRequest, ReloadRequest, error_body
from bastion.serve.service import GuardFailure, Service, new_request_id
from bastion.serve.upstream import Upstream, UpstreamError
from bastion.yamlfile import field_path

ModelT = TypeVar("ModelT", bound=BaseModel)


async def read_json(request: Request, model: type[ModelT], limit: int) -> tuple[ModelT, dict[str, Any]]:
    """The body, size-limited while it is read, parsed and validated; 4xx on any problem."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, error_body(f"request body exceeds {limit} bytes", code="request_too_large"))
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise ApiError(413, error_body(f"request body exceeds {limit} bytes", code="request_too_large"))
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, error_body(f"request body is not valid JSON ({exc})", code="invalid_json")) from exc
    if not isinstance(raw, dict):
        raise ApiError(400, error_body("request body must be a JSON object", code="invalid_json"))
    try:
        return model.model_validate(raw), raw
    except ValidationError as exc:
        first = exc.errors()[0]
        where = field_path(first["loc"], raw)
        raise ApiError(400, error_body(f"{where}: {first['msg']}", param=where, code="invalid_value")) from exc


def authenticate(service: Service, request: Request, *, admin: bool = False) -> str | None:
    """The calling key's id (None when keys are off); 401/403/429 otherwise."""
    if not service.keys.enabled:
        return None
    key = service.keys.identify(request.headers.get("authorization"))
    if key is None:
        missing = not request.headers.get("authorization")
        raise ApiError(401, error_body("missing API key: send 'Authorization: Bearer <key>'" if missing
                                       else "invalid API key", code="invalid_api_key"))
    if admin and not key.admin:
        raise ApiError(403, error_body("this key may not administer the server", type="permission_error",
                                       code="not_admin"))
    if not service.keys.allow(key):
        raise ApiError(429, error_body(f"rate limit of {key.requests_per_minute:g} requests per minute exceeded",
                                       type="rate_limit_error", code="rate_limit_exceeded"), {"retry-after": "1"})
    return key.id


def check_model(service: Service, model: str) -> None:
    allowed = service.config.models
    if allowed is not None and model not in allowed:
        raise ApiError(404, error_body(f"the model {model!r} does not exist; this server serves {', '.join(allowed)}",
                                       param="model", code="model_not_found"))


def create_app(config: ServeConfig, *, guard: Guard | None = None, upstream: Upstream | None = None,
               audit: AuditLog | None = None) -> FastAPI:
    """Build the app; missing parts are made from `config` when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        service = Service(config, guard or Guard.load(config.guard),
                          audit or AuditLog(config.audit.url, text_policy=config.audit.text,
                                            retention_days=config.audit.retention_days),
                          upstream if upstream is not None else _upstream_of(config))
        service.audit.purge()
        app.state.service = service
        yield
        if service.upstream is not None:
            await service.upstream.aclose()

    app = FastAPI(title="Bastion guard", version="1", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    _install_error_handlers(app)
    _install_routes(app)
    return app


def app_from_environment() -> FastAPI:
    """The app of one worker process of `bastion serve --workers N` (a uvicorn factory)."""
    return create_app(from_environment())


def _upstream_of(config: ServeConfig) -> Upstream | None:
    if config.upstream == "embedded":  # the CLI replaces this with the child server's URL
        return None
    return Upstream(config.upstream, timeout_s=config.upstream_timeout_s,
                    api_key=config.upstream_api_key.get_secret_value() if config.upstream_api_key else None)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(UpstreamError)
    async def _upstream_error(_: Request, exc: UpstreamError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(exc.detail), code=str(exc.status_code)), status_code=exc.status_code)

    app.add_middleware(RequestCounter)


class RequestCounter:
    """Counts requests by route and status (pure ASGI: Starlette's BaseHTTPMiddleware costs ~1 ms)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            service: Service | None = getattr(scope["app"].state, "service", None)
            route = scope.get("route")  # the route template, so unknown paths cannot flood the labels
            if service is not None:
                service.metrics.requests.labels(getattr(route, "path", "unmatched"), str(status)).inc()


def _install_routes(app: FastAPI) -> None:
    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> Any:
        service: Service = request.app.state.service
        key_id = authenticate(service, request)
        body, raw = await read_json(request, ChatCompletionRequest, service.config.max_body_bytes)
        check_model(service, body.model)
        proxy = ChatProxy(service, body, raw, key_id)
        await proxy.screen()
        refusal = await proxy.blocked_response()
        headers = {"x-bastion-request-id": proxy.request_id}
        if refusal is not None:
            if body.stream:
                return StreamingResponse(_refusal_stream(refusal), media_type="text/event-stream", headers=headers)
            return JSONResponse(refusal, headers=headers)
        if body.stream:
            return StreamingResponse(await proxy.open_stream(), media_type="text/event-stream", headers=headers)
        return JSONResponse(await proxy.complete(), headers=headers)

    @app.post("/v1/moderations")
    async def moderations(request: Request) -> JSONResponse:
        service: Service = request.app.state.service
        key_id = authenticate(service, request)
        body, _ = await read_json(request, ModerationRequest, service.config.max_body_bytes)
        examples = [Example(prompt=text) for text in body.texts()]
        request_id = new_request_id()
        verdicts, ms = await _score(service, lambda: service.guard.score_examples(examples, "input"))
        mapping = openai_mapping(service.guard.constitution)
        rows = [service.row(f"{request_id}-{i}", "moderations", key_id, body.model,
                            service.decide(v, None, "input", "flagged"), status="complete", guard_ms=round(ms, 3),
                            **service.audit.texts(input=e.prompt or "")) for i, (e, v) in enumerate(zip(examples, verdicts, strict=True))]
        await service.record(*rows)
        return JSONResponse({"id": f"modr-{request_id}", "model": body.model or "bastion",
                             "results": [moderation_result(v, mapping) for v in verdicts]},
                            headers={"x-bastion-request-id": request_id})

    @app.post("/v1/classify")
    async def classify(request: Request) -> JSONResponse:
        service: Service = request.app.state.service
        key_id = authenticate(service, request)
        body, _ = await read_json(request, ClassifyRequest, service.config.max_body_bytes)
        request_id = new_request_id()
        verdicts, ms = await _score(service, lambda: service.guard.score_examples(body.records, body.kind))
        rows = [service.row(f"{request_id}-{i}", "classify", key_id, None, service.decide(v, None, "input", "flagged"),
                            status="complete", guard_ms=round(ms, 3)) for i, v in enumerate(verdicts)]
        await service.record(*rows)
        return JSONResponse({"request_id": request_id, "verdicts": [v.model_dump() for v in verdicts]},
                            headers={"x-bastion-request-id": request_id})

    @app.post("/admin/reload")
    async def reload(request: Request) -> JSONResponse:
        """Swap in another guard artifact (e.g. one `bastion patch` wrote) without a restart."""
        service: Service = request.app.state.service
        authenticate(service, request, admin=True)
        body, _ = await read_json(request, ReloadRequest, service.config.max_body_bytes)
        previous = service.version
        try:
            guard = await asyncio.to_thread(Guard.load, body.guard or service.config.guard)
        except BastionError as exc:
            raise ApiError(400, error_body(f"cannot load the guard: {exc}", param="guard", code="invalid_guard")) from exc
        service.swap_guard(guard)
        return JSONResponse({"guard_version": service.version, "previous": previous,
                             "constitution": guard.constitution.name})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        service: Service = request.app.state.service
        checks = {"guard": True, "audit": service.audit.ping(), "upstream": await _upstream_ready(service)}
        ready = all(checks.values())
        return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks,
                             "guard_version": service.version, "constitution": service.guard.constitution.name,
                             "mode": service.config.mode}, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def metrics(request: Request) -> PlainTextResponse:
        service: Service = request.app.state.service
        return PlainTextResponse(service.metrics.render(), media_type="text/plain; version=0.0.4")


async def _score(service: Service, work: Any) -> tuple[Any, float]:
    try:
        return await service.run_guard(work, "stage1")
    except GuardFailure as exc:
        raise GUARD_UNAVAILABLE from exc


async def _upstream_ready(service: Service) -> bool:
    if service.upstream is None:
        return False
    try:
        await service.upstream.models()
        return True
    except UpstreamError:
        return False


async def _refusal_stream(refusal: dict[str, Any]) -> Any:
    """A blocked streamed request: the refusal as one chunk, then the finish chunk."""
    base = {"id": refusal["id"], "object": "chat.completion.chunk", "created": refusal["created"],
            "model": refusal["model"]}
    content = refusal["choices"][0]["message"]["content"]
    yield sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": None}]})
    yield sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "content_filter"}],
               "bastion": refusal["bastion"]})
    yield sse("[DONE]")


__all__ = ["create_app"]
