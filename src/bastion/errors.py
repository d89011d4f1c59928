"""Bastion's exception tree and CLI exit codes.

    BastionError
     ├── ConfigError            settings or command-line options that cannot work
     ├── ConstitutionError      a constitution file that does not validate
     ├── RecordError            a JSONL/CSV record that cannot be read (names file and line)
     ├── ArtifactError          a guard artifact that is missing, corrupt or incompatible
     ├── DataUnavailableError   a dataset under BASTION_DATA_DIR that is not there
     ├── BackendError           an LLM backend that kept failing after its retries
     ├── EngineError            a compute cluster that cannot be reached or cannot run the work
     └── NotFittedError         a model used before `fit`

Every message names *what* is wrong and *where* (file, line, field path), and what to do
next, because the people who read them are operators at a terminal, not debuggers.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit codes of the `bastion` CLI."""

    OK = 0
    FAILED = 1  # the command ran but a gate or check failed
    USAGE = 2  # bad options (Typer's own usage errors use 2 as well)
    BAD_INPUT = 3  # malformed constitution, record or artifact
    DATA_MISSING = 4
    UNAVAILABLE = 5  # a cluster (or a worker on it) that cannot be reached or cannot start


class BastionError(Exception):
    """Root of every error Bastion raises on purpose."""

    exit_code: ExitCode = ExitCode.FAILED


class ConfigError(BastionError):
    exit_code = ExitCode.USAGE


class ConstitutionError(BastionError):
    exit_code = ExitCode.BAD_INPUT


class RecordError(BastionError):
    exit_code = ExitCode.BAD_INPUT


class ArtifactError(BastionError):
    exit_code = ExitCode.BAD_INPUT


class DataUnavailableError(BastionError):
    exit_code = ExitCode.DATA_MISSING


class BackendError(BastionError):
    """An LLM backend request failed for good (after retries), or was refused (bad key, unknown model)."""

    exit_code = ExitCode.FAILED


class EngineError(BastionError):
    exit_code = ExitCode.UNAVAILABLE


class NotFittedError(BastionError, ValueError, AttributeError):
    """Raised when `predict`/`score` is called before `fit`; call `fit` first."""
