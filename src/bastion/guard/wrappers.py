"""Known jailbreak wrappers: a patched guard's memory of the templates it was patched against.

A jailbreak that works is reused around other requests. An input that carries a known
template (most of its word trigrams, read after normalisation, so encodings the normaliser
undoes count too) is read twice: whole, and with the template's words cut away, leaving the
request it wraps. Arriving inside a known jailbreak is evidence of intent, so the request alone
is judged at a stricter threshold than everyday traffic gets; the higher verdict stands.
Everyday inputs carry no template and are scored as before. Reworded templates fall below the
match and are left to the refitted classifiers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bastion.models.calibration import recentred

PLACEHOLDER = "{request}"
SHINGLE = 3  # words per shingle
MIN_MATCH = 0.6  # share of a template's shingles an input must carry
MIN_PAYLOAD_WORDS = 3
_WORDS = re.compile(r"[^\W_]+")


def _shingles(words: Sequence[str]) -> list[tuple[str, ...]]:
    """Word trigrams in order (position i starts at word i)."""
    return [tuple(words[i:i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)]


@dataclass(frozen=True)
class Template:
    """One wrapper, normalised, as the word trigrams around its request slot."""

    text: str
    shingles: frozenset[tuple[str, ...]] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        parts = self.text.split(PLACEHOLDER)
        object.__setattr__(self, "shingles", frozenset(g for p in parts for g in _shingles(_WORDS.findall(p))))


@dataclass(frozen=True)
class KnownWrappers:
    """Templates, how much of one an input must carry, and the threshold its request is held to.

    `payload_threshold` is a calibrated score (the guard flags at 0.5); below 0.5 it is stricter.
    """

    templates: tuple[Template, ...]
    payload_threshold: float
    min_match: float = MIN_MATCH

    @classmethod
    def from_texts(cls, texts: Sequence[str], payload_threshold: float, min_match: float = MIN_MATCH) -> KnownWrappers:
        """From normalised template texts (each with one `{request}` slot); ones too short to match are dropped."""
        templates = tuple(dict.fromkeys(Template(t) for t in texts))
        return cls(tuple(t for t in templates if len(t.shingles) >= 2), payload_threshold, min_match)

    def unwrap(self, text: str) -> str | None:
        """The words of a normalised input that no matching template accounts for, or None if none matches."""
        words = _WORDS.findall(text)
        grams = _shingles(words)
        present = set(grams)
        matching = [t for t in self.templates if len(t.shingles & present) >= self.min_match * len(t.shingles)]
        if not matching:
            return None
        known = frozenset().union(*(t.shingles for t in matching))
        covered = [False] * len(words)
        for i, gram in enumerate(grams):
            if gram in known:
                covered[i:i + SHINGLE] = [True] * SHINGLE
        payload = [w for w, c in zip(words, covered, strict=True) if not c]
        return " ".join(payload) if len(payload) >= MIN_PAYLOAD_WORDS else None

    def rescale(self, scores: np.ndarray) -> np.ndarray:
        """Requests' scores on the guard's scale: the payload threshold moves to 0.5, order is kept."""
        return recentred(scores, self.payload_threshold)

    def to_dict(self) -> dict[str, Any]:
        return {"templates": [t.text for t in self.templates], "payload_threshold": self.payload_threshold,
                "min_match": self.min_match}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KnownWrappers:
        return cls.from_texts(data["templates"], float(data["payload_threshold"]), float(data["min_match"]))

