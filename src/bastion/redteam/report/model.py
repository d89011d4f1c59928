"""The red-team report: statistics plus the provenance needed to trust them, as JSON.

Everything in it is derived from a RunResult and the objects that produced it; it records
the hashes of the guard's manifest, its constitution and the target file, so a number in a
report can always be traced to exactly what was tested.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from bastion import __version__
from bastion.evaluation.metrics import DetectionReport, detection_report
from bastion.guard import Guard
from bastion.redteam.runner import RunResult
from bastion.redteam.statistics import RedteamStats, summarise
from bastion.redteam.targets import TargetSet

REPORT_VERSION = 1  # bump when a field changes meaning or is removed


class Provenance(BaseModel):
    guard: str
    guard_manifest_sha256: str
    constitution: str
    constitution_version: str
    constitution_sha256: str
    targets: str
    targets_sha256: str
    bastion_version: str = __version__
    defence: str
    attacks_selected: str = Field(description="The --attacks selection, or 'all'.")
    workers: int
    created: str
    judge: str | None = Field(default=None, description="Model that graded end-to-end answers (--judge).")
    upstream: str | None = Field(default=None, description="Guarded model whose answers were graded.")


class AttackerSummary(BaseModel):
    """How the automated attacker (family `pair`) fared."""

    model: str
    max_rounds: int
    targets: int
    successes: int
    mean_rounds_to_success: float | None = Field(description="Rewrites used by the successful attacks (0: the bare question passed).")


class RedteamReport(BaseModel):
    version: int = REPORT_VERSION
    provenance: Provenance
    counts: dict[str, int]
    stats: RedteamStats
    detection: DetectionReport = Field(description="Forbidden inputs (attacked or direct) vs the benign and over-refusal suites.")
    attacker: AttackerSummary | None = None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def labels_and_scores(result: RunResult) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([t.label for t in result.trials], dtype=int), np.array([t.score for t in result.trials], dtype=float))


def build_report(result: RunResult, guard: Guard, guard_name: str, targets: TargetSet, selection: str | None, *,
                 judge: str | None = None, upstream: str | None = None, attacker: AttackerSummary | None = None) -> RedteamReport:
    labels, scores = labels_and_scores(result)
    source = Path(targets.source)
    provenance = Provenance(
        guard=guard_name,
        guard_manifest_sha256=_sha256(json.dumps(guard.manifest, sort_keys=True).encode()),
        constitution=guard.constitution.name, constitution_version=str(guard.constitution.version),
        constitution_sha256=guard.constitution.content_hash(),
        targets=targets.source, targets_sha256=_sha256(source.read_bytes()) if source.is_file() else "",
        defence=result.defence, attacks_selected=selection or "all", workers=result.workers,
        created=datetime.now(UTC).isoformat(timespec="seconds"), judge=judge, upstream=upstream,
    )
    stats = summarise(result)
    counts = {"targets": result.n_targets, "inputs": len(result.trials), "attacks": len(stats.attacks),
              "benign": len(targets.benign), "over_refusal": len(targets.over_refusal)}
    return RedteamReport(provenance=provenance, counts=counts, stats=stats, attacker=attacker,
                         detection=detection_report(labels, scores, reps=200))
