"""`bastion serve` configuration: a YAML file, then `BASTION_SERVE_*` environment variables,
then command-line options, each overriding the one before, validated as one model.

Environment variables nest with `__`: `BASTION_SERVE_AUDIT__URL=postgresql+psycopg://...`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bastion.errors import ConfigError
from bastion.yamlfile import load_layered

EMBEDDED = "embedded"
RESOLVED_ENV = "BASTION_SERVE_RESOLVED_CONFIG"  # how `--workers N` hands the final config to each worker
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def key_digest(key: str) -> str:
    """How an API key is stored: its sha256, so a leaked config file leaks no key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKey(BaseModel):
    """One client key: an id for the audit log, the key's sha256, and its rate limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    sha256: str = Field(description="sha256 hex digest of the key (`bastion keys new` prints it).")
    requests_per_minute: float | None = Field(default=600, gt=0, description="None: unlimited.")
    admin: bool = Field(default=False, description="May call POST /admin/reload (swap in a patched guard).")

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        if not _SHA256.match(value):
            raise ValueError("must be a 64-character lowercase hex sha256 digest, not the key itself")
        return value


class AuditSettings(BaseModel):
    """Where decisions are recorded and how much of the text is kept."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(default="sqlite:///bastion-audit.sqlite3",
                     description="SQLAlchemy URL: sqlite:///file or postgresql+psycopg://user@host/db.")
    text: Literal["full", "hash", "none"] = Field(default="hash", description="Keep texts in full, as sha256, or not.")
    retention_days: float | None = Field(default=30, gt=0, description="Rows older than this are deleted; None keeps all.")


class StreamSettings(BaseModel):
    """How the output monitor reads a streamed answer (see `Guard.monitor`)."""

    model_config = ConfigDict(extra="forbid")

    every_chars: int = Field(default=48, gt=0, description="Check at least every this many characters (and at sentence ends).")
    hold_back: int = Field(default=0, ge=0, description="Characters kept back so flagged text is never shown.")
    recheck_chars: int = Field(default=512, gt=0, description="Re-read the recent window through the full normaliser this often.")
    use_stage2: bool = Field(default=False, description="Add the stage-2 cascade to window checks (more recall, more false halts).")


class ServeConfig(BaseSettings):
    """Everything `bastion serve` needs; every field has a working default for local use."""

    model_config = SettingsConfigDict(env_prefix="BASTION_SERVE_", env_nested_delimiter="__", extra="forbid")

    guard: str = Field(default="default", description="Guard artifact directory or bundled name.")
    upstream: str = Field(default=EMBEDDED, description="Base URL of an OpenAI-compatible server, or 'embedded'.")
    upstream_api_key: SecretStr | None = Field(default=None, description="Bearer key sent to the upstream.")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, description="Server processes (each loads the guard; metrics are per process).")
    mode: Literal["enforce", "shadow"] = Field(default="enforce", description="shadow: log verdicts, block nothing.")
    on_guard_error: Literal["closed", "open"] = Field(default="closed", description="Refuse or forward when the guard fails.")
    models: list[str] | None = Field(default=None, description="Model names accepted; None: whatever the upstream serves.")
    api_keys: list[ApiKey] = Field(default_factory=list, description="Empty: no authentication (local use).")
    max_body_bytes: int = Field(default=1_000_000, gt=0)
    upstream_timeout_s: float = Field(default=120.0, gt=0)
    guard_timeout_s: float = Field(default=5.0, gt=0)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)

    @field_validator("upstream")
    @classmethod
    def _url_or_embedded(cls, value: str) -> str:
        return url_or_embedded(value)


def url_or_embedded(value: str) -> str:
    """An http(s) base URL without its trailing slash, or 'embedded'; ValueError otherwise."""
    if value != EMBEDDED and not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is neither 'embedded' nor an http(s) URL")
    return value.rstrip("/")


def load_config(path: Path | None = None, **overrides: Any) -> ServeConfig:
    """File < environment < `overrides` (options given on the command line)."""
    return load_layered(ServeConfig, path, "serve configuration", **overrides)


def to_environment(config: ServeConfig) -> None:
    """Put the resolved configuration where worker processes started by uvicorn can read it."""
    data = config.model_dump(mode="json")
    data["upstream_api_key"] = config.upstream_api_key.get_secret_value() if config.upstream_api_key else None
    os.environ[RESOLVED_ENV] = json.dumps(data)


def from_environment() -> ServeConfig:
    """The configuration `to_environment` stored (in a worker process)."""
    if RESOLVED_ENV not in os.environ:
        raise ConfigError(f"{RESOLVED_ENV} is not set: start workers with `bastion serve --workers N`")
    return ServeConfig.model_validate(json.loads(os.environ[RESOLVED_ENV]))
