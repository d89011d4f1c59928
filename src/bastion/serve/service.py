"""What every endpoint shares: the guard, the audit log, metrics, keys, and the decision rules.

Decisions are made here once, so the chat proxy, the moderation endpoint and the classify
endpoint apply the same enforce/shadow and fail-closed/fail-open rules and audit the same
way.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bastion.guard import Guard, Verdict
from bastion.serve.audit import AuditLog
from bastion.serve.config import ServeConfig
from bastion.serve.metrics import ServerMetrics
from bastion.serve.security import KeyRing
from bastion.serve.upstream import Upstream

T = TypeVar("T")


class GuardFailure(Exception):
    """The guard raised or timed out; the config decides whether to refuse or forward."""


def new_request_id() -> str:
    return uuid.uuid4().hex


def guard_version(guard: Guard) -> str:
    """A short fingerprint of the artifact: the sha256 of its manifest's file hashes."""
    files = guard.manifest.get("files", {})
    return hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()[:16] if files else "unsaved"


def verdict_columns(direction: str, verdict: Verdict | None) -> dict[str, Any]:
    """The audit columns of an input or output verdict (category only when flagged)."""
    return {f"{direction}_flagged": verdict.flagged if verdict else None,
            f"{direction}_score": verdict.score if verdict else None,
            f"{direction}_category": verdict.category if verdict and verdict.flagged else None,
            f"{direction}_stage": verdict.stage if verdict else None}


@dataclass
class Decision:
    """The input or output decision of one request, with what the audit row needs."""

    verdict: Verdict | None
    action: str
    blocks: bool
    error: str | None = None


@dataclass
class Service:
    config: ServeConfig
    guard: Guard
    audit: AuditLog
    upstream: Upstream | None
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    keys: KeyRing = field(init=False)

    def __post_init__(self) -> None:
        self.keys = KeyRing(self.config.api_keys)
        self.swap_guard(self.guard)

    def swap_guard(self, guard: Guard) -> None:
        """Use `guard` for new requests; requests in flight finish with the guard they started with."""
        self.guard, self.version = guard, guard_version(guard)
        self.constitution_hash = guard.constitution.content_hash()  # once, not per audit row

    @property
    def enforcing(self) -> bool:
        return self.config.mode == "enforce"

    async def run_guard(self, work: Callable[[], T], stage_hint: str) -> tuple[T, float]:
        """Run guard work in a thread with the guard timeout; returns (result, milliseconds)."""
        start = time.perf_counter()
        try:
            result = await asyncio.wait_for(asyncio.to_thread(work), self.config.guard_timeout_s)
        except Exception as exc:  # any guard failure is handled by policy, never a 500
            raise GuardFailure(f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__) from exc
        elapsed = time.perf_counter() - start
        stage = getattr(result, "stage", stage_hint)
        self.metrics.guard_latency.labels(stage if isinstance(stage, str) else stage_hint).observe(elapsed)
        return result, elapsed * 1000

    def decide(self, verdict: Verdict | None, error: str | None, direction: str, flagged_action: str) -> Decision:
        """Apply the mode and the failure policy to a verdict (or to a guard failure)."""
        if error is not None:
            closed = self.config.on_guard_error == "closed"
            decision = Decision(None, "guard_error_blocked" if closed else "guard_error_allowed", closed, error)
        elif verdict is not None and verdict.flagged:
            decision = Decision(verdict, flagged_action if self.enforcing else f"shadow_{flagged_action}", self.enforcing)
        else:
            decision = Decision(verdict, "allowed", False)
        self.metrics.decision(direction, decision.action, verdict.category if verdict and verdict.flagged else None,
                              verdict.stage if verdict else "error")
        return decision

    def row(self, request_id: str, endpoint: str, key_id: str | None, model: str | None,
            decision: Decision, **fields: Any) -> dict[str, Any]:
        """A new audit row for an input decision."""
        return {"request_id": request_id, "endpoint": endpoint, "api_key_id": key_id, "model": model,
                "mode": self.config.mode, "guard_version": self.version, "constitution_hash": self.constitution_hash,
                "action": decision.action, "error": decision.error, **verdict_columns("input", decision.verdict), **fields}

    @staticmethod
    def output_fields(decision: Decision, halt_position: int | None) -> dict[str, Any]:
        return {**verdict_columns("output", decision.verdict), "halt_position": halt_position}

    def bastion_object(self, request_id: str, action: str, input_verdict: Verdict | None = None,
                       output_verdict: Verdict | None = None) -> dict[str, Any]:
        """The `bastion` field added to responses: request id, action, and the deciding verdict."""
        deciding = output_verdict if output_verdict is not None and output_verdict.flagged else input_verdict
        return {"request_id": request_id, "action": action, "mode": self.config.mode,
                "category": deciding.category if deciding and deciding.flagged else None,
                "score": deciding.score if deciding else None, "stage": deciding.stage if deciding else None,
                "input": input_verdict.model_dump() if input_verdict else None,
                "output": output_verdict.model_dump() if output_verdict else None}

    async def record(self, *rows: dict[str, Any]) -> None:
        await asyncio.to_thread(self.audit.insert, *rows)

    async def amend(self, request_id: str, **fields: Any) -> None:
        await asyncio.to_thread(self.audit.update, request_id, **fields)
