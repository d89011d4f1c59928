"""Monitor a streaming response and halt it the moment it turns harmful.

The monitor keeps everything it has received and releases text only after it has been
scored safe: a check runs when at least `every_chars` new characters have arrived or a delta
ends a sentence, and until then text is held back. Once a score (smoothed with an
exponential moving average) crosses the threshold the monitor halts for good: the flagged
delta and everything after it are withheld, and `released` is exactly the text scored safe,
minus an optional `hold_back` of characters kept as a safety margin.

Two kinds of check, because the normaliser rewrites text non-locally:

- Incremental checks (every check, when the guard has an output classifier). The response
  goes through `Normalizer.local`, a whitespace-delimited piece at a time, and only the
  n-grams the new text completes are hashed (`IncrementalNgrams`): a check costs time
  proportional to the new text, and scores the whole response so far, as the output
  classifier was trained (on prefixes of whole responses), not a window of it. The
  unfinished last word is scored as if the text ended there, and re-read at the next check.
- Window checks, every `recheck_chars` characters and at the end: the conversation and the
  last `window_chars` of the response go through the full normaliser (ROT13 and Morse are
  decided on the whole text; hex and spaced-out letters span tokens), scored by the output
  classifier and, with `use_stage2` and a guard that has stage 2, by the cascade as well
  (`Guard.window_verdict`). Their cost is bounded by the window and spread over
  `recheck_chars` characters. Stage 2 is opt-in: the cascade was trained on requests, and
  on held-out responses it halts benign answers far more often than the output classifier
  (bench/RESULTS.md).

Text disguised in a way that only the full normaliser undoes is caught up to
`recheck_chars` characters later than plain text. With stage 2 in use the hold-back is
raised to at least `recheck_chars`, so nothing is released that a window check has not read;
`hold_back >= recheck_chars` gives the same guarantee for the full normaliser alone.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from bastion.data.records import Example, Message, render
from bastion.guard.verdict import Verdict

if TYPE_CHECKING:
    from bastion.guard.guard import Guard
    from bastion.models.incremental import IncrementalNgrams

SENTENCE_ENDS = (".", "!", "?", "\n", ":", ";")
MAX_TOKEN = 256  # an unfinished token longer than this is left to window checks, so checks stay linear


class StreamMonitor:
    """Stateful, thread-safe monitor for one response. Build with `Guard.monitor`."""

    def __init__(self, guard: Guard, messages: list[Message], *, every_chars: int = 48, hold_back: int = 0,
                 window_chars: int = 1500, recheck_chars: int = 512, smoothing: float = 0.6,
                 use_stage2: bool = False) -> None:
        if not 0 < smoothing <= 1:
            raise ValueError("smoothing must be in (0, 1]; 1 means no averaging")
        if recheck_chars < 1 or every_chars < 1:
            raise ValueError("every_chars and recheck_chars must be positive")
        self.guard = guard
        self.messages = messages
        self.use_stage2 = use_stage2 and guard.stage2 is not None
        self.hold_back = max(hold_back, recheck_chars) if self.use_stage2 else hold_back
        self.every_chars, self.window_chars, self.recheck_chars, self.smoothing = every_chars, window_chars, recheck_chars, smoothing
        self.text = ""
        self.released_chars = 0
        self.scored_chars = 0
        self.checked_chars = 0  # text read by the last window check
        self.halted = False
        self._ema: float | None = None
        self._last = Verdict(score=0.0, flagged=False, stage="output", halted=False, position=0)
        self._lock = threading.Lock()
        self._state: IncrementalNgrams | None = None
        self._committed = 0  # characters of `text` whose n-grams are in `_state`
        self._gap = False  # a space is due before the next normalised piece
        if guard.output_stage is not None:
            self._state = guard.output_stage.stream()
            conversation = render(Example(messages=messages, response=""), "exchange")
            self._state.extend(guard.normalizer(conversation) + " ")

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
                self._score(final=False)
            return self._last

    async def afeed(self, delta: str) -> Verdict:
        return await asyncio.to_thread(self.feed, delta)

    def close(self) -> Verdict:
        """End of stream: score what is left (a window check included) and release it if safe."""
        with self._lock:
            if not self.halted and self.checked_chars < len(self.text):
                self._score(final=True)
            if not self.halted:
                self.released_chars = len(self.text)
                self._last = self._last.model_copy(update={"position": self.released_chars})
            return self._last

    def _score(self, final: bool) -> None:
        verdict = self._incremental_verdict()
        if verdict is None or final or len(self.text) - self.checked_chars >= self.recheck_chars:
            window = Example(messages=self.messages, response=self.text[-self.window_chars:])
            checked = self.guard.window_verdict(window, use_stage2=self.use_stage2)
            verdict = checked if verdict is None or checked.score > verdict.score else verdict
            self.checked_chars = len(self.text)
        self._ema = verdict.score if self._ema is None else self.smoothing * verdict.score + (1 - self.smoothing) * self._ema
        flagged = self._ema >= 0.5
        if flagged:
            self.halted = True
        else:
            self.scored_chars = len(self.text)
            self.released_chars = max(self.released_chars, self.scored_chars - self.hold_back)
        self._last = verdict.model_copy(update={"score": round(self._ema, 6), "flagged": flagged, "halted": flagged,
                                                "position": self.released_chars})

    def _incremental_verdict(self) -> Verdict | None:
        """Output-classifier verdict on the whole response so far, from the incremental state.

        None when there is no output classifier, or when the unfinished last token is so long
        (a base64 payload, say) that re-reading it at every check would cost quadratic time:
        the window check reads it instead.
        """
        if self._state is None:
            return None
        pending = self.text[self._committed:]
        tail = "" if not pending or pending[-1].isspace() else pending.rsplit(None, 1)[-1]
        whole_tokens = pending[: len(pending) - len(tail)]
        if whole_tokens:
            piece = self._normalised(whole_tokens)
            self._state.extend(piece)
            self._committed += len(whole_tokens)
            self._gap = self._gap or bool(piece)
        if len(tail) > MAX_TOKEN:
            return None
        logits = self._state.decision(self._normalised(tail))
        return self.guard.verdict_of(self.guard.output_scores(logits)[0], "output")

    def _normalised(self, text: str) -> str:
        """`text` locally normalised, after the space that separates it from earlier response text."""
        piece = self.guard.normalizer.local(text)
        return " " + piece if piece and self._gap else piece


def replay(guard: Guard, example: Example, *, words_per_delta: int = 1, **options: object) -> tuple[bool, int]:
    """Stream `example.response` through a monitor in word-sized deltas.

    Returns (halted, characters released before the halt or at the end): what a user of a
    streamed answer would have seen.
    """
    monitor = guard.monitor(example.conversation(), **options)
    words = (example.response or "").split(" ")
    for i in range(0, len(words), words_per_delta):
        chunk = " ".join(words[i:i + words_per_delta])
        if monitor.feed(chunk if i == 0 else " " + chunk).halted:
            return True, len(monitor.released)
    monitor.close()
    return False, len(monitor.released)
