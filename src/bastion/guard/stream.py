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

from bastion.data.records import Example, Message
from bastion.guard.verdict import Verdict

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
        example = Example(messages=self.messages, response=window)
        verdict = self.guard.score_examples([example], kind="exchange")[0]
        self._ema = verdict.score if self._ema is None else self.smoothing * verdict.score + (1 - self.smoothing) * self._ema
        flagged = self._ema >= 0.5
        if flagged:
            self.halted = True
        else:
            self.scored_chars = len(self.text)
            self.released_chars = max(self.released_chars, self.scored_chars - self.hold_back)
        self._last = verdict.model_copy(update={"score": round(self._ema, 6), "flagged": flagged, "halted": flagged,
                                                "position": self.released_chars})
