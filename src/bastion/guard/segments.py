"""Reading a long input sentence by sentence.

A request set inside a long, harmless-sounding frame (a pretext, a persona, a story set-up)
is diluted when the input is read whole: most of its words are the frame's. Read alone, the
sentence that carries it is scored as if it were asked directly. Sentences of benign long
inputs are sometimes alarming out of context (a thriller's plot, a safety manual), so a
sentence is held to a stricter threshold, set on benign calibration inputs so that reading by
sentence flags few more of them; the higher verdict stands. Unlike the known wrappers of a
patched guard, this needs no example of the frame.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bastion.data.generation import expand
from bastion.data.records import Example
from bastion.models.calibration import recentred

if TYPE_CHECKING:
    from bastion.guard.guard import Guard

MIN_WORDS = 25  # shorter user messages are read whole only: stage 2 already reads them whole
MIN_SEGMENT_WORDS = 3
MAX_SEGMENTS = 32  # longer messages are read in windows of adjacent sentences
CALIBRATION_SAMPLE = 2000  # long benign inputs the threshold is set on
_BOUNDARY = re.compile(r"(?<=[.!?:;])\s+|\n+")


def segments(text: str) -> list[str]:
    """The sentences of a long message, in windows of adjacent ones when there are many; [] if fewer than two.

    Fragments under MIN_SEGMENT_WORDS words join the sentence before them, so a request split
    at a colon ("My topic is this one: ...") is read with its lead-in.
    """
    if len(text.split()) < MIN_WORDS:
        return []
    parts: list[str] = []
    for piece in (p.strip() for p in _BOUNDARY.split(text)):
        if not piece:
            continue
        if parts and len(parts[-1].split()) < MIN_SEGMENT_WORDS:
            parts[-1] = f"{parts[-1]} {piece}"
        else:
            parts.append(piece)
    if len(parts) < 2:
        return []
    size = -(-len(parts) // MAX_SEGMENTS)
    return [" ".join(parts[i:i + size]) for i in range(0, len(parts), size)]


@dataclass(frozen=True)
class SegmentReading:
    """The calibrated score a sentence read alone must reach (0.5 or more), and the benign rate it was set at."""

    threshold: float
    benign_rate: float

    def __post_init__(self) -> None:
        if not 0.5 <= self.threshold < 1.0:
            raise ValueError(f"segment threshold must be in [0.5, 1), got {self.threshold}")

    @classmethod
    def fit(cls, best_segment_scores: np.ndarray, benign_rate: float) -> SegmentReading:
        """From benign inputs' best sentence scores: the quantile that `benign_rate` of them reach, never below 0.5."""
        if not len(best_segment_scores):
            return cls(0.5, benign_rate)
        quantile = float(np.quantile(best_segment_scores, 1.0 - benign_rate))
        return cls(min(max(quantile, 0.5), 0.999), benign_rate)

    def rescale(self, scores: np.ndarray) -> np.ndarray:
        """Sentences' scores on the guard's scale: the segment threshold moves to 0.5."""
        return recentred(scores, self.threshold)

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "benign_rate": self.benign_rate}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentReading:
        return cls(float(data["threshold"]), float(data["benign_rate"]))


def calibrate_segment_reading(guard: Guard, benign: Sequence[Example], benign_rate: float, seed: int) -> SegmentReading:
    """The segment threshold for `guard`, set on benign calibration inputs and template-framed copies of them.

    Long benign inputs are scarce in calibration data; framing benign requests in our persona
    and pretext templates gives long inputs whose frame sentences are exactly what reading
    sentence by sentence must not flag.
    """
    framed = [*benign, *expand(benign, 1, seed)]
    long = [e for e in framed if any(segments(m.content) for m in e.conversation() if m.role == "user")]
    sample = random.Random(seed).sample(long, min(CALIBRATION_SAMPLE, len(long)))
    _, best = guard.best_segment_scores(sample)
    return SegmentReading.fit(best[:, guard.deciding].max(axis=1), benign_rate)
