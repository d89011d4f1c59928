"""Backend configuration: which OpenAI-compatible server, which model, and how to treat it.

Layered like `bastion serve`: a YAML file, then `BASTION_LLM_*` environment variables, then
command-line options. The same settings reach a hosted API, vLLM, Ollama, llama.cpp's
server or the embedded SmolLM2 (`base_url: embedded`), because they all speak the chat API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bastion.serve.config import EMBEDDED, url_or_embedded
from bastion.yamlfile import load_layered

__all__ = ["EMBEDDED", "BackendConfig", "load_backend_config"]


class BackendConfig(BaseSettings):
    """Everything a Backend needs; `base_url` and `model` have no useful default except `embedded`."""

    model_config = SettingsConfigDict(env_prefix="BASTION_LLM_", extra="forbid")

    base_url: str = Field(default=EMBEDDED, description="OpenAI-compatible base URL (…/v1), or 'embedded' for SmolLM2.")
    model: str | None = Field(default=None, description="Model name sent with every request (embedded: its own).")
    api_key: SecretStr | None = Field(default=None, description="Bearer key; local servers accept anything.")
    concurrency: int = Field(default=4, ge=1, description="Requests in flight at once.")
    max_retries: int = Field(default=4, ge=0, description="Retries on 429, 5xx, timeouts and dropped connections.")
    backoff_s: float = Field(default=0.5, ge=0, description="First retry delay; doubles each retry (with jitter).")
    timeout_s: float = Field(default=120.0, gt=0, description="Per-request timeout.")
    max_tokens: int = Field(default=256, ge=1, description="Default completion length.")
    temperature: float = Field(default=0.8, ge=0, le=2, description="Default sampling temperature.")
    cache_dir: Path | None = Field(default=Path(".bastion-cache/llm"), description="Response cache; None disables it.")
    input_usd_per_mtok: float = Field(default=0.0, ge=0, description="Price of a million prompt tokens (cost accounting).")
    output_usd_per_mtok: float = Field(default=0.0, ge=0, description="Price of a million completion tokens.")

    @field_validator("base_url")
    @classmethod
    def _url_or_embedded(cls, value: str) -> str:
        return url_or_embedded(value)


def load_backend_config(spec: str | None = None, **overrides: Any) -> BackendConfig:
    """A config from `spec` — a YAML file, a base URL, 'embedded', or None (environment only) — plus overrides."""
    path = None
    if spec is not None and spec.endswith((".yaml", ".yml")):
        path = Path(spec)
    elif spec is not None and overrides.get("base_url") is None:
        overrides["base_url"] = spec
    return load_layered(BackendConfig, path, "LLM backend configuration", **overrides)
