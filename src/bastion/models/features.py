"""Hashed word and character n-gram features for the stage-1 linear model.

Hashing keeps the model a fixed size whatever the vocabulary, needs no fitted vocabulary
(nothing to pickle) and gives unseen text well-defined features. Word n-grams carry
meaning; character n-grams survive typos, inflection and leftover obfuscation.

The hashing is vectorised over a whole batch with numpy: texts are joined into one array
of code points, rolling polynomial hashes give every character n-gram at once, prefix
hashes give every word, and n-grams that would cross a text boundary are dropped. All
arithmetic is on uint64 with wrap-around, so hashes are identical on every machine and
run (unlike Python's salted `hash`), and stage 1 retrains bit-identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp

_BASE = np.uint64(0x100000001B3)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_ASCII_WORD = np.array([chr(c).isascii() and (chr(c).isalnum() or chr(c) == "_") for c in range(128)])
_NON_ASCII_SPACES = np.array([0xA0, 0x3000, 0x2028, 0x2029], dtype=np.uint64)
_SEPARATOR = 0  # code point joining texts; never part of a feature
MAX_WORD = 32  # longer words are hashed on their last 32 characters


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a non-linear per-character hash, so anagrams differ."""
    with np.errstate(over="ignore"):
        z = values ^ (values >> np.uint64(30))
        z = z * np.uint64(0xBF58476D1CE4E5B9)
        z = z ^ (z >> np.uint64(27))
        z = z * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _word_char_mask(codes: np.ndarray) -> np.ndarray:
    """Letters, digits and underscore; every non-ASCII code point except a few spaces."""
    if not len(codes) or codes.max() < 128:  # the common case, without the non-ASCII checks
        return _ASCII_WORD[codes]
    mask = np.where(codes < 128, _ASCII_WORD[np.minimum(codes, 127)], True)
    return mask & ~np.isin(codes, _NON_ASCII_SPACES)


def codes_of(text: str) -> np.ndarray:
    """Code points of `text` as uint64, the type all hashing runs on."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)


def word_hashes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hash, start and end of every word (maximal run of word characters) in `codes`.

    A word's hash sums a per-character hash of (code point, offset in the word), so one
    cumulative sum yields every word's hash by subtraction. Only a word's last `MAX_WORD`
    characters count, which also bounds what an incremental hasher keeps of a word.
    """
    mask = _word_char_mask(codes)
    edges = np.diff(np.concatenate(([False], mask, [False])).astype(np.int8))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    hashed_from = np.maximum(starts, ends - MAX_WORD)
    word_start = np.zeros(len(codes), dtype=np.int64)
    word_start[hashed_from] = hashed_from
    offsets = np.arange(len(codes)) - np.maximum.accumulate(word_start)
    with np.errstate(over="ignore"):
        per_char = _mix(codes ^ (offsets.astype(np.uint64) << np.uint64(32)))
        cumulative = np.concatenate(([np.uint64(0)], np.cumsum(per_char, dtype=np.uint64)))
        return cumulative[ends] - cumulative[hashed_from], starts, ends


def word_ngram_hashes(words: np.ndarray, n: int) -> np.ndarray:
    """Hash of every run of `n` consecutive words; entry i starts at words[i]."""
    if len(words) < n:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        gram = words[: len(words) - n + 1].copy()
        for k in range(1, n):
            gram = gram * _BASE + words[k: len(words) - n + 1 + k]
        return gram ^ np.uint64(0x5BD1E995 * n)


@dataclass(frozen=True)
class NgramHasher:
    """Map texts to an L2-normalised sparse matrix of hashed n-gram counts."""

    n_features: int = 2**18
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (3, 5)
    sublinear_tf: bool = True

    def __post_init__(self) -> None:
        if self.n_features & (self.n_features - 1) or self.n_features < 2:
            raise ValueError(f"n_features must be a power of two, got {self.n_features}")

    @property
    def _bits(self) -> int:
        return self.n_features.bit_length() - 1

    def _hashes(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(row, hash) for every n-gram in the batch."""
        codes = codes_of("\x00".join(texts))
        doc = np.cumsum(codes == _SEPARATOR)
        starts, lengths, char_grams = self.char_ngram_hashes(codes)
        valid = (doc[starts] == doc[starts + lengths - 1]) & (codes[starts] != _SEPARATOR)
        rows, hashes = [doc[starts][valid]], [char_grams[valid]]
        words, word_starts, _ = word_hashes(codes)
        word_docs = doc[word_starts]
        for n in range(self.word_ngrams[0], self.word_ngrams[1] + 1):
            gram = word_ngram_hashes(words, n)
            valid = word_docs[: len(gram)] == word_docs[n - 1:]
            rows.append(word_docs[: len(gram)][valid])
            hashes.append(gram[valid])
        return np.concatenate(rows), np.concatenate(hashes)

    def char_ngram_hashes(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start, length, hash) of every character n-gram of `codes`."""
        starts, lengths, hashes = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.uint64)]
        with np.errstate(over="ignore"):
            rolling = codes.copy()
            for n in range(2, self.char_ngrams[1] + 1):  # rolling[i] = hash of codes[i:i+n]
                rolling = rolling[:-1] * _BASE + codes[n - 1:]
                if n >= self.char_ngrams[0]:
                    starts.append(np.arange(len(rolling)))
                    lengths.append(np.full(len(rolling), n))
                    hashes.append(rolling + np.uint64(n))
        return np.concatenate(starts), np.concatenate(lengths), np.concatenate(hashes)

    def columns(self, hashes: np.ndarray) -> np.ndarray:
        """Feature column of each hash: Fibonacci hashing, the top bits of h * golden ratio."""
        with np.errstate(over="ignore"):
            return ((hashes * _GOLDEN) >> np.uint64(64 - self._bits)).astype(np.int64)

    def value(self, counts: np.ndarray) -> np.ndarray:
        """Feature value of an n-gram count, before L2 normalisation."""
        return np.log1p(counts) if self.sublinear_tf else counts

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        if not texts:
            return sp.csr_matrix((0, self.n_features), dtype=np.float32)
        rows, hashes = self._hashes(texts)
        # One sort of (row, column) keys gives the counts and the CSR layout at once.
        keys, counts = np.unique(rows.astype(np.int64) * self.n_features + self.columns(hashes), return_counts=True)
        row, column = np.divmod(keys, self.n_features)
        values = self.value(counts.astype(np.float64))
        norms = np.sqrt(np.bincount(row, weights=values * values, minlength=len(texts)))
        norms[norms == 0] = 1.0
        indptr = np.searchsorted(row, np.arange(len(texts) + 1))
        return sp.csr_matrix(((values / norms[row]).astype(np.float32), column, indptr), shape=(len(texts), self.n_features))

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> NgramHasher:
        return cls(
            n_features=int(data["n_features"]),  # type: ignore[arg-type]
            word_ngrams=tuple(data["word_ngrams"]),  # type: ignore[arg-type]
            char_ngrams=tuple(data["char_ngrams"]),  # type: ignore[arg-type]
            sublinear_tf=bool(data["sublinear_tf"]),
        )
