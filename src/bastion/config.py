"""Process-wide settings read from the environment (prefix ``BASTION_``).

Settings are injected where they are needed (never read from a global), so tests build
their own with keyword overrides.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path | None:
    """`../shared/datasets` beside the working directory, when that exists."""
    candidate = Path.cwd().parent / "shared" / "datasets"
    return candidate if candidate.is_dir() else None


class Settings(BaseSettings):
    """Environment-driven configuration: `BASTION_DATA_DIR`, `BASTION_MAX_RECORD_CHARS`, ..."""

    model_config = SettingsConfigDict(env_prefix="BASTION_", env_nested_delimiter="__")

    data_dir: Path | None = Field(
        default_factory=_default_data_dir,
        description="Development pool of public datasets (read-only).",
    )
    max_record_chars: int = Field(
        default=200_000, gt=0, description="Records longer than this are rejected."
    )
