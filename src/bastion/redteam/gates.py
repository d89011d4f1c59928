"""`--fail-if` gates: 'metric>0.05' expressions checked against a run, for CI.

A gate is data, not code: a metric name from `statistics.gate_values`, a comparison and a
number. Anything else is a usage error that lists the metric names, so a typo cannot turn
into a gate that silently always passes.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bastion.errors import ConfigError

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
}
_GATE = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|>|<)\s*([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*$")


@dataclass(frozen=True)
class Gate:
    """Fails when `metric op threshold` holds."""

    metric: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:g}"

    def fails(self, values: dict[str, float]) -> bool:
        return OPERATORS[self.op](values[self.metric], self.threshold)


def parse_gates(expressions: Iterable[str], metrics: Iterable[str]) -> list[Gate]:
    """Gates from expressions; one expression may hold several, separated by commas or spaces."""
    known = set(metrics)
    gates = []
    for expression in expressions:
        for part in re.split(r"[,\s]+(?=[a-z_]+\s*[<>])", expression.strip()):
            match = _GATE.match(part)
            if not match:
                raise ConfigError(f"--fail-if {part!r}: write it as METRIC>NUMBER (or >=, <, <=), e.g. 'asr>0.05'")
            if match[1] not in known:
                raise ConfigError(f"--fail-if {part!r}: unknown metric {match[1]!r}; known: {', '.join(sorted(known))}")
            gates.append(Gate(match[1], match[2], float(match[3])))
    return gates


def failed(gates: Iterable[Gate], values: dict[str, float]) -> list[Gate]:
    return [g for g in gates if g.fails(values)]
