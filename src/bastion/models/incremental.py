"""Linear scores of a growing text, updated in time proportional to what is added.

A stream monitor scores many prefixes of one response. Hashing every prefix from scratch
costs time proportional to the prefix, so a whole response costs quadratic time. This state
keeps the hashed n-gram counts of the text so far and, for each appended piece, hashes only
the n-grams that the piece completes:

- character n-grams that end in the new piece, read together with the last `n - 1`
  characters before it;
- words once they are complete (a non-word character follows). The trailing, possibly
  unfinished word is kept (its last `MAX_WORD` characters, all that a word's hash reads),
  with the last complete words that word n-grams need.

The logits are kept as running sums over the feature values v(c) of the counts c:
dot = sum_j W_j v(c_j) and sq = sum_j v(c_j)^2, so dot / sqrt(sq) + b is the logit of the
L2-normalised vector of the whole text: the same number, to float tolerance, as hashing
and scoring the text from scratch (tests/test_incremental.py checks it on random splits).
"""

from __future__ import annotations

import math

import numpy as np

from bastion.models.features import MAX_WORD, NgramHasher, codes_of, word_hashes, word_ngram_hashes


class IncrementalNgrams:
    """Hashed n-gram counts of a growing text and the linear logits they give."""

    def __init__(self, hasher: NgramHasher, coef_by_feature: np.ndarray, intercept: np.ndarray) -> None:
        self.hasher = hasher
        self._weights = coef_by_feature  # (features, heads)
        self._intercept = np.asarray(intercept, dtype=np.float64)
        self._counts = np.zeros(hasher.n_features, dtype=np.float64)  # zero pages are not allocated until written
        self._dot = np.zeros(coef_by_feature.shape[1], dtype=np.float64)
        self._sq = 0.0
        self._context = ""  # the last characters that a character n-gram may still reach back to
        self._word = ""  # trailing run of word characters, maybe unfinished
        self._words = np.zeros(0, dtype=np.uint64)  # last complete words that a word n-gram may reach back to
        self._unhashed = ""  # appended, not counted yet

    def extend(self, text: str) -> None:
        """Append `text`. Its n-grams are counted at the next `decision`, in one pass with the tail."""
        self._unhashed += text

    def decision(self, tail: str = "") -> np.ndarray:
        """Logits (one per head) of the text as if `tail` were appended and the text ended.

        The tail is not kept: the next call scores the text without it.
        """
        committed, overlay = self._completed(self._unhashed + tail, len(self._unhashed))
        self._unhashed = ""
        # One pass over the touched columns: counts with the committed n-grams, then with the tail's too.
        unique, inverse = np.unique(np.concatenate((committed, overlay)), return_inverse=True)
        old = self._counts[unique]
        kept = old + np.bincount(inverse[: len(committed)], minlength=len(unique))
        ended = old + np.bincount(inverse, minlength=len(unique))
        before, middle, after = (self.hasher.value(c) for c in (old, kept, ended))
        weights = self._weights[unique]
        self._counts[unique] = kept
        dot = self._dot + (after - before) @ weights
        sq = self._sq + float(after @ after - before @ before)
        self._dot += (middle - before) @ weights
        self._sq += float(middle @ middle - before @ before)
        return dot / (math.sqrt(sq) or 1.0) + self._intercept

    def _completed(self, text: str, kept: int) -> tuple[np.ndarray, np.ndarray]:
        """Columns of the n-grams that `text[:kept]` completes, and of those the rest completes
        if the text ends after it (its unfinished last word counted). Moves the state past
        `text[:kept]`."""
        hasher = self.hasher
        context = self._context + text
        starts, lengths, char_grams = hasher.char_ngram_hashes(codes_of(context))
        ends = starts + lengths - len(self._context)  # end of each n-gram, as an offset into `text`
        committed, overlay = [char_grams[(ends > 0) & (ends <= kept)]], [char_grams[ends > kept]]
        run = self._word + text
        boundary = len(self._word) + kept
        words, word_starts, word_ends = word_hashes(codes_of(run))
        complete = int(np.searchsorted(word_ends, boundary))  # followed by a non-word character before the boundary
        known = np.concatenate((self._words, words))
        first = len(self._words)
        for n in range(hasher.word_ngrams[0], hasher.word_ngrams[1] + 1):
            grams = word_ngram_hashes(known, n)
            last = np.arange(len(grams)) + n - 1  # index of each n-gram's last word in `known`
            committed.append(grams[(last >= first) & (last < first + complete)])
            overlay.append(grams[last >= first + complete])
        unfinished = complete < len(words) and word_starts[complete] < boundary
        self._context = context[max(0, len(self._context) + kept - hasher.char_ngrams[1] + 1): len(self._context) + kept]
        self._word = run[word_starts[complete]:boundary][-MAX_WORD:] if unfinished else ""
        self._words = known[max(0, first + complete - hasher.word_ngrams[1] + 1): first + complete]
        return hasher.columns(np.concatenate(committed)), hasher.columns(np.concatenate(overlay))
