"""CLI commands of the server: `bastion serve`, `bastion audit ...`, `bastion keys new`.

FastAPI, uvicorn and SQLAlchemy are imported inside the commands, so the rest of the CLI
works with the light runtime install (they come with the `serve` extra).
"""

from __future__ import annotations

import importlib.util
import json
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from bastion.console import err, friendly, out
from bastion.errors import ConfigError

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Server configuration YAML (see README, 'Serving'). Environment variables BASTION_SERVE_* override it.")]
SERVE_EXTRA = 'pip install "bastion-guard[serve]"'

audit_app = typer.Typer(help="Read the server's audit log: export rows, summarise decisions.", no_args_is_help=True)
keys_app = typer.Typer(help="Create API keys for the server.", no_args_is_help=True)


def _require_serve_extra() -> None:
    missing = [m for m in ("fastapi", "uvicorn", "sqlalchemy", "httpx", "prometheus_client") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"the server needs {', '.join(missing)}; run: {SERVE_EXTRA}")


@friendly
def serve(
    guard: Annotated[str | None, typer.Option("--guard", "-g", help="Guard artifact directory or 'default' (the bundled guard).")] = None,
    upstream: Annotated[str | None, typer.Option("--upstream", "-u", help="Base URL of the model's OpenAI-compatible API (e.g. http://localhost:8080/v1), or 'embedded' to start the bundled SmolLM2 demo model.")] = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8000).")] = None,
    mode: Annotated[str | None, typer.Option(help="enforce (block and halt) or shadow (only log what would be blocked).")] = None,
    workers: Annotated[int | None, typer.Option(help="Server processes sharing the port (default 1); use about one per core.")] = None,
    config: ConfigOption = None,
) -> None:
    """Run the guard proxy: an OpenAI-compatible server that screens requests and halts harmful answers.

    Point an OpenAI client's base URL at http://HOST:PORT/v1. Every request is screened,
    forwarded to the upstream model, and its answer checked while it streams.
    """
    _require_serve_extra()
    import uvicorn

    from bastion.serve.app import create_app
    from bastion.serve.config import EMBEDDED, load_config, to_environment
    from bastion.serve.embedded import MODEL_NAME, EmbeddedModel

    settings = load_config(config, guard=guard, upstream=upstream, host=host, port=port, mode=mode, workers=workers)
    with ExitStack() as stack:
        if settings.upstream == EMBEDDED:
            err.print("starting the embedded model (SmolLM2-135M-Instruct on llama.cpp) ...")
            model = stack.enter_context(EmbeddedModel())
            settings = settings.model_copy(update={"upstream": model.url, "models": settings.models or [MODEL_NAME]})
        err.print(f"[bold]Bastion[/] on http://{settings.host}:{settings.port}/v1 — guard {settings.guard}, "
                  f"upstream {settings.upstream}, mode {settings.mode}, audit {settings.audit.url}, "
                  f"API keys {'on' if settings.api_keys else 'off'}, {settings.workers} worker(s)", highlight=False)
        if settings.models:
            err.print(f"models: {', '.join(settings.models)}", highlight=False)
        if settings.workers == 1:
            uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
            return
        to_environment(settings)
        uvicorn.run("bastion.serve.app:app_from_environment", factory=True, workers=settings.workers,
                    host=settings.host, port=settings.port, log_level="warning")


def _audit_log(config: Path | None, url: str | None):
    _require_serve_extra()
    from bastion.serve.audit import AuditLog
    from bastion.serve.config import load_config

    settings = load_config(config)
    return AuditLog(url or settings.audit.url, text_policy=settings.audit.text)


UrlOption = Annotated[str | None, typer.Option("--url", help="Audit database URL (default: the configuration's audit.url).")]


@audit_app.command("export")
@friendly
def audit_export(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSONL file to write (atomically); stdout if omitted.")] = None,
    url: UrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Write every audit row, oldest first, as JSON lines."""
    from bastion.data.jsonl import write_jsonl

    log = _audit_log(config, url)
    count = write_jsonl(log.rows(), output)
    if output is not None:
        err.print(f"wrote {count} rows to {output}")


@audit_app.command("stats")
@friendly
def audit_stats(url: UrlOption = None, config: ConfigOption = None) -> None:
    """Summarise decisions: counts by action, category and stage, guard latency percentiles."""
    out.print_json(json.dumps(_audit_log(config, url).stats()))


@keys_app.command("new")
@friendly
def keys_new(
    key_id: Annotated[str, typer.Option("--id", help="Name of the client, recorded in the audit log.")],
    rpm: Annotated[float, typer.Option("--rpm", help="Requests per minute allowed for this key.")] = 600,
) -> None:
    """Create a key: prints the key (give it to the client) and the config entry (only its sha256)."""
    from bastion.serve.config import key_digest
    from bastion.serve.security import new_key

    key = new_key()
    typer.echo(f"key (shown once): {key}")
    typer.echo("add to the server configuration under api_keys:")
    typer.echo(f"  - {{id: {key_id}, sha256: {key_digest(key)}, requests_per_minute: {rpm:g}}}")
