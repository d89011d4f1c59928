"""Run every attack against every target (and the benign suites) through a defence.

Inputs are built up front (cheap), then scored in batches on an engine: local threads
sharing one guard by default, or Ray actors that each load it once (`bastion.engine`). The
defence is therefore given as a factory each worker calls once. Each batch is timed where
it runs, which gives the per-request cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from bastion.data.records import Example
from bastion.engine import Engine, LocalEngine, batched
from bastion.guard.verdict import Verdict
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


@dataclass(frozen=True)
class _Timed:
    """Engine factory around a defence factory: a batch's verdicts, the defence's name and the scoring time."""

    defence: Callable[[], Defence]

    def __call__(self) -> Callable[[list[Example]], tuple[str, list[Verdict], float]]:
        defence = self.defence()

        def score(examples: list[Example]) -> tuple[str, list[Verdict], float]:
            started = time.perf_counter()
            verdicts = defence(examples)
            return defence.name, verdicts, time.perf_counter() - started

        return score


def run(attacks: Sequence[Attack], targets: TargetSet, defence: Callable[[], Defence], *, engine: Engine | None = None,
        workers: int | None = None, batch_size: int = 256, on_batch: Callable[[int], None] = lambda _: None) -> RunResult:
    """Score the whole plan; `on_batch(n)` reports progress (n inputs just finished).

    `defence` is a zero-argument factory each worker calls once (picklable for a cluster
    engine); `engine` defaults to `workers` local threads. The same plan, batch size and
    defence give the same trials on every engine.
    """
    plan = _plan(attacks, targets)
    engine = engine or LocalEngine(workers)
    metadata = iter([meta for _, meta in plan])
    trials: list[Trial] = []
    name, scoring_seconds = "", 0.0
    started = time.perf_counter()
    for batch, scored in engine.map(_Timed(defence), batched([e for e, _ in plan], batch_size)):
        name, verdicts, seconds = scored
        trials += [Trial(**next(metadata), score=v.score, flagged=v.flagged, stage=v.stage,  # type: ignore[arg-type]
                         judge_error=v.judge_error)
                   for v in verdicts]
        scoring_seconds += seconds
        on_batch(len(batch))
    return RunResult(trials=trials, n_targets=len(targets.forbidden), defence=name, seconds=time.perf_counter() - started,
                     scoring_seconds=scoring_seconds, workers=engine.workers)


def plan_size(attacks: Sequence[Attack], targets: TargetSet) -> int:
    """How many inputs `run` will score (for a progress bar's total)."""
    return (len(attacks) + 1) * len(targets.forbidden) + len(targets.benign) + len(targets.over_refusal)
