"""Run every attack against every target (and the benign suites) through a defence.

Inputs are built up front (cheap), then scored in batches by a thread pool: the guard's
numpy and ONNX Runtime work releases the GIL, so threads use every core without copying
the guard into worker processes. Each batch is timed, which gives the per-request cost.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from pydantic import BaseModel, Field

from bastion.data.records import Example
from bastion.redteam.attacks import Attack
from bastion.redteam.defence import Defence
from bastion.redteam.targets import TargetSet

DIRECT = "direct"  # the bare target question: the baseline every attack is compared with


class Trial(BaseModel):
    """One scored input: which attack (or suite) and target it came from, and the verdict."""

    attack: str = Field(description="Attack id, 'direct', or the suite name for benign inputs.")
    family: str
    heldout: bool = False
    target: str = Field(description="Target or benign-prompt id.")
    category: str | None = None
    label: int = Field(description="1 forbidden (attack success = not flagged), 0 benign.")
    score: float
    flagged: bool
    stage: str
    judge_error: str | None = Field(default=None, description="Set when the judge's answer could not be used.")


class RunResult(BaseModel):
    """Everything a report is built from."""

    trials: list[Trial]
    n_targets: int
    defence: str
    seconds: float = Field(description="Wall-clock time of scoring.")
    scoring_seconds: float = Field(description="Sum of per-batch times (the cost of the requests themselves).")
    workers: int


def _plan(attacks: Sequence[Attack], targets: TargetSet) -> list[tuple[Example, dict[str, object]]]:
    """(input, trial metadata) for direct targets, every attack x target, and both benign suites."""
    plan: list[tuple[Example, dict[str, object]]] = []
    for target in targets.forbidden:
        plan.append((Example(id=target.id, prompt=target.text, label=1),
                     {"attack": DIRECT, "family": DIRECT, "target": target.id, "category": target.category, "label": 1}))
    for attack in attacks:
        for target in targets.forbidden:
            plan.append((attack(target), {"attack": attack.id, "family": attack.family, "heldout": attack.heldout,
                                          "target": target.id, "category": target.category, "label": 1}))
    for suite in (targets.benign, targets.over_refusal):
        for e in suite:
            plan.append((e, {"attack": e.source, "family": e.source, "target": e.id,
                             "category": e.categories[0] if e.categories else None, "label": 0}))
    return plan


def run(attacks: Sequence[Attack], targets: TargetSet, defence: Defence, *, workers: int | None = None,
        batch_size: int = 256, on_batch: Callable[[int], None] = lambda _: None) -> RunResult:
    """Score the whole plan; `on_batch(n)` reports progress (n inputs just finished)."""
    plan = _plan(attacks, targets)
    batches = [plan[i:i + batch_size] for i in range(0, len(plan), batch_size)]
    workers = workers or os.cpu_count() or 1

    def score(batch: list[tuple[Example, dict[str, object]]]) -> tuple[list[Trial], float]:
        started = time.perf_counter()
        verdicts = defence([e for e, _ in batch])
        elapsed = time.perf_counter() - started
        on_batch(len(batch))
        return [Trial(**meta, score=v.score, flagged=v.flagged, stage=v.stage, judge_error=v.judge_error)  # type: ignore[arg-type]
                for (_, meta), v in zip(batch, verdicts, strict=True)], elapsed

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(score, batches))
    return RunResult(trials=[t for trials, _ in results for t in trials], n_targets=len(targets.forbidden),
                     defence=defence.name, seconds=time.perf_counter() - started,
                     scoring_seconds=sum(s for _, s in results), workers=workers)


def plan_size(attacks: Sequence[Attack], targets: TargetSet) -> int:
    """How many inputs `run` will score (for a progress bar's total)."""
    return (len(attacks) + 1) * len(targets.forbidden) + len(targets.benign) + len(targets.over_refusal)
