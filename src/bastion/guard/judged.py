"""A Guard with an LLM judge above its cascade, for the verdicts the classifiers are unsure of.

The judge is slow and costs money, so it only sees what the cascade leaves uncertain:
verdicts whose (calibrated) score lies in the band `[low, high)` around the threshold —
with a stage-2 guard, scores after stage 2. The judge then decides which side of the
threshold the verdict falls on (`stage: "judge"`); when its answer cannot be parsed or the
backend fails, the cascade's verdict stands and `judge_error` says why. A plain `Guard` is
untouched by all this: the judge is opt-in, and costs nothing when not configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bastion.data.records import Example, Kind
from bastion.guard.guard import Guard, MessagesLike, as_example
from bastion.guard.verdict import Verdict

if TYPE_CHECKING:
    from bastion.constitution import Constitution
    from bastion.llm.judge import Judge


class JudgedGuard:
    """`guard` plus `judge` for scores in `[low, high)`; same `check` / `score_examples` as a Guard."""

    def __init__(self, guard: Guard, judge: Judge, *, low: float = 0.25, high: float = 0.75) -> None:
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"the judge's band needs 0 <= low < high <= 1, not [{low}, {high})")
        self.guard, self.judge, self.low, self.high = guard, judge, low, high

    @property
    def constitution(self) -> Constitution:
        return self.guard.constitution

    def score_examples(self, examples: Sequence[Example], kind: Kind = "input") -> list[Verdict]:
        return self.review(examples, self.guard.score_examples(examples, kind), kind)

    def review(self, examples: Sequence[Example], verdicts: Sequence[Verdict], kind: Kind = "input") -> list[Verdict]:
        """The judge's pass over verdicts the cascade already gave (from any engine): those in the band."""
        from bastion.llm.judge import overrule

        reviewed = list(verdicts)
        asked = [i for i, v in enumerate(reviewed) if self.low <= v.score < self.high]
        for i, judgement in zip(asked, self.judge.judge_many([examples[i] for i in asked], kind), strict=True):
            reviewed[i] = overrule(reviewed[i], judgement)
        return reviewed

    def check(self, messages: MessagesLike, response: str | None = None) -> Verdict:
        kind: Kind = "input" if response is None else "exchange"
        return self.score_examples([as_example(messages, response)], kind)[0]

    def __repr__(self) -> str:
        return f"JudgedGuard({self.guard!r}, judge={self.judge.backend.model!r}, band=[{self.low}, {self.high}))"
