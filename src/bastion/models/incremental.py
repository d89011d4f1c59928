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

    def extend(self, text: str) -> None:
        """Append `text`: count the n-grams it completes."""
        columns, self._context, self._word, self._words = self._completed(text, final=False)
        unique, counts, self._dot, self._sq = self._added(columns)
        self._counts[unique] = counts

    def decision(self, tail: str = "") -> np.ndarray:
        """Logits (one per head) of the text as if `tail` were appended and the text ended."""
        columns = self._completed(tail, final=True)[0]
        dot, sq = self._added(columns)[2:]
        return dot / (math.sqrt(sq) or 1.0) + self._intercept

    def _completed(self, text: str, *, final: bool) -> tuple[np.ndarray, str, str, np.ndarray]:
        """Columns of the n-grams `text` completes, and the state after it.

        With `final`, the text ends after `text`, so its unfinished word counts too.
        """
        hasher = self.hasher
        context = self._context + text
        starts, lengths, char_grams = hasher.char_ngram_hashes(codes_of(context))
        hashes = [char_grams[starts + lengths > len(self._context)]]
        run = self._word + text
        words, word_starts, word_ends = word_hashes(codes_of(run))
        unfinished = len(words) > 0 and word_ends[-1] == len(run)
        complete = words if final or not unfinished else words[:-1]
        known = np.concatenate((self._words, complete))
        for n in range(hasher.word_ngrams[0], hasher.word_ngrams[1] + 1):
            hashes.append(word_ngram_hashes(known, n)[max(0, len(self._words) - n + 1):])
        reach = hasher.word_ngrams[1] - 1
        state = (context[max(0, len(context) - hasher.char_ngrams[1] + 1):],
                 run[word_starts[-1]:][-MAX_WORD:] if unfinished else "",
                 known[max(0, len(known) - reach):] if reach else known[:0])
        return (hasher.columns(np.concatenate(hashes)), *state)

    def _added(self, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """(columns, their new counts, dot, sq) once `columns` are counted once more each."""
        unique, added = np.unique(columns, return_counts=True)
        old = self._counts[unique]
        new = old + added
        before, after = self.hasher.value(old), self.hasher.value(new)
        dot = self._dot + (after - before) @ self._weights[unique]
        return unique, new, dot, self._sq + float(after @ after - before @ before)
