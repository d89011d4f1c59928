"""Monitor a streaming response and halt it the moment it turns harmful.

The monitor keeps everything it has received and releases text only after it has been
scored safe: a delta is scored when at least `every_chars` new characters have arrived
or it ends a sentence, and until then it is held back. Once a score (smoothed with an
exponential moving average) crosses the threshold the monitor halts for good: the flagged
delta and everything after it are withheld, and `released` is exactly the text that was
scored safe, minus an optional `hold_back` of characters kept as a safety margin.
Stage-1 scoring reads a bounded window (the conversation's tail plus the last
`window_chars` of the response), so each check costs the same however long the answer is.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import numpy as np

from bastion.data.records import Example, Message, render
from bastion.guard.verdict import Verdict
from bastion.models.linear import NgramLinearClassifier

if TYPE_CHECKING:
    from bastion.guard.guard import Guard

SENTENCE_ENDS = (".", "!", "?", "\n", ":", ";")


class StreamMonitor:
    """Stateful, thread-safe monitor for one response. Build with `Guard.monitor`."""

    def __init__(self, guard: Guard, messages: list[Message], *, every_chars: int = 48, hold_back: int = 0,
                 window_chars: int = 1500, smoothing: float = 0.6) -> None:
        if not 0 < smoothing <= 1:
            raise ValueError("smoothing must be in (0, 1]; 1 means no averaging")
        self.guard = guard
        self.messages = messages
        self.every_chars, self.hold_back, self.window_chars, self.smoothing = every_chars, hold_back, window_chars, smoothing
        self.text = ""
        self.released_chars = 0
        self.scored_chars = 0
        self.halted = False
        self._ema: float | None = None
        self._last = Verdict(score=0.0, flagged=False, stage="output", halted=False, position=0)
        self._lock = threading.Lock()
        self._fast: tuple[NgramLinearClassifier, np.ndarray, str] | None = None
        if guard.output_stage is not None and guard.output_thresholds is not None:
            rendered = render(Example(messages=messages, response=""), "exchange")
            self._fast = (guard.output_stage, guard.output_thresholds, guard.normalizer(rendered) + " ")

    @property
    def released(self) -> str:
        """Text that may be shown to the user: scored safe, and not in the hold-back margin."""
        return self.text[: self.released_chars]

    def feed(self, delta: str) -> Verdict:
        """Add a text delta; returns the current verdict (`position` = characters released)."""
        with self._lock:
            if self.halted:
                return self._last
            self.text += delta
            pending = len(self.text) - self.scored_chars
            if pending >= self.every_chars or delta.rstrip(" ").endswith(SENTENCE_ENDS):
                self._score()
            return self._last

    async def afeed(self, delta: str) -> Verdict:
        return await asyncio.to_thread(self.feed, delta)

    def close(self) -> Verdict:
        """End of stream: score what is left and release it if safe."""
        with self._lock:
            if not self.halted and self.scored_chars < len(self.text):
                self._score()
            if not self.halted:
                self.released_chars = len(self.text)
                self._last = self._last.model_copy(update={"position": self.released_chars})
            return self._last

    def _score(self) -> None:
        window = self.text[-self.window_chars:]
        if self._fast is None:
            verdict = self.guard.score_examples([Example(messages=self.messages, response=window)], kind="exchange")[0]
        else:  # the same exchange rendering, without building records for every check
            stage, thresholds, prefix = self._fast
            text = prefix + self.guard.normalizer(window)
            verdict = self.guard.verdict_of(self.guard.output_scores_of_texts([text], stage, thresholds)[0], "output")
        self._ema = verdict.score if self._ema is None else self.smoothing * verdict.score + (1 - self.smoothing) * self._ema
        flagged = self._ema >= 0.5
        if flagged:
            self.halted = True
        else:
            self.scored_chars = len(self.text)
            self.released_chars = max(self.released_chars, self.scored_chars - self.hold_back)
        self._last = verdict.model_copy(update={"score": round(self._ema, 6), "flagged": flagged, "halted": flagged,
                                                "position": self.released_chars})


def replay(guard: Guard, example: Example, *, words_per_delta: int = 1, **options: object) -> tuple[bool, int]:
    """Stream `example.response` through a monitor in word-sized deltas.

    Returns (halted, characters released before the halt or at the end): what a user of a
    streamed answer would have seen.
    """
    monitor = guard.monitor(example.conversation(), **options)  # type: ignore[arg-type]
    words = (example.response or "").split(" ")
    for i in range(0, len(words), words_per_delta):
        chunk = " ".join(words[i:i + words_per_delta])
        if monitor.feed(chunk if i == 0 else " " + chunk).halted:
            return True, len(monitor.released)
    monitor.close()
    return False, len(monitor.released)
