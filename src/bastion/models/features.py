"""Hashed word and character n-gram features for the stage-1 linear model.

Hashing keeps the model a fixed size whatever the vocabulary, needs no fitted vocabulary
(so there is nothing to pickle) and makes features of unseen text well defined. Word
n-grams carry meaning; character n-grams within word boundaries survive typos, leetspeak
leftovers and inflection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize


@dataclass(frozen=True)
class NgramHasher:
    """Map texts to an L2-normalised sparse matrix of hashed n-gram counts."""

    n_features: int = 2**18
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (3, 5)
    sublinear_tf: bool = True

    def _vectorizers(self) -> tuple[HashingVectorizer, HashingVectorizer]:
        common = dict(n_features=self.n_features, alternate_sign=False, norm=None, dtype=np.float32)
        words = HashingVectorizer(analyzer="word", ngram_range=self.word_ngrams, token_pattern=r"(?u)\b\w+\b", **common)
        chars = HashingVectorizer(analyzer="char_wb", ngram_range=self.char_ngrams, **common)
        return words, chars

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        words, chars = self._vectorizers()
        matrix = (words.transform(texts) + chars.transform(texts)).tocsr()
        if self.sublinear_tf:
            np.log1p(matrix.data, out=matrix.data)
        return normalize(matrix, norm="l2", copy=False)

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
