"""What an attack is run against: the seam between the red team and the thing it tests.

A Defence maps a batch of inputs to one Verdict each; `flagged` means the attack was
stopped. The classifier-level defence below asks the guard's input classifier. An
end-to-end defence (send the input through a guarded upstream, stop on an input flag or an
output halt, grade the response) implements the same protocol, so the runner, statistics
and report do not change when it arrives.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Protocol

from bastion.data.records import Example
from bastion.guard import Guard
from bastion.guard.batch import GuardSpec
from bastion.guard.verdict import Verdict


class Defence(Protocol):
    """Anything that decides, per input, whether an attack got through."""

    name: str

    def __call__(self, examples: Sequence[Example]) -> list[Verdict]: ...


class InputClassifierDefence:
    """Classifier level: an attack succeeds when the guard's input classifier does not flag it.

    The guard is immutable and thread-safe, so one instance serves every worker thread.
    """

    name = "input_classifier"

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def __call__(self, examples: Sequence[Example]) -> list[Verdict]:
        return self.guard.score_examples(examples, "input")

    @classmethod
    def loader(cls, spec: GuardSpec) -> Callable[[], InputClassifierDefence]:
        """A picklable factory for engines: each worker loads the guard of `spec` once."""
        return functools.partial(_load_input_classifier, spec)


def _load_input_classifier(spec: GuardSpec) -> InputClassifierDefence:
    return InputClassifierDefence(spec.load())
