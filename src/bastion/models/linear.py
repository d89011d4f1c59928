"""Stage 1: a multi-head linear classifier over hashed n-grams.

One logistic-regression head per restricted category plus an `any` head for "restricted in
some way". Labels may be missing for a head (a harmful record from a dataset whose category
is unknown): such a record trains `any` and is left out of the category heads, instead of
being counted as a negative. Follows scikit-learn's estimator contract: `__init__` only
stores parameters, `fit` validates, sets attributes ending in `_` and returns `self`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from bastion.errors import NotFittedError
from bastion.models.features import NgramHasher
from bastion.models.incremental import IncrementalNgrams

ANY = "any"
MISSING = -1


class NgramLinearClassifier:
    """Hashed n-gram features -> one logit per head (`any` first, then categories)."""

    def __init__(self, heads: Sequence[str], *, hasher: NgramHasher | None = None, C: float = 8.0,
                 positive_weight: float = 1.0, seed: int = 0) -> None:
        self.heads = list(heads)
        self.hasher = hasher or NgramHasher()
        self.C = C
        self.positive_weight = positive_weight
        self.seed = seed
        self._coef_by_feature: np.ndarray | None = None

    def get_params(self) -> dict[str, object]:
        return {"heads": self.heads, "hasher": self.hasher.to_dict(), "C": self.C,
                "positive_weight": self.positive_weight, "seed": self.seed}

    def __repr__(self) -> str:
        return f"NgramLinearClassifier(heads={len(self.heads)}, C={self.C}, n_features={self.hasher.n_features})"

    def features(self, texts: Sequence[str]) -> sp.csr_matrix:
        return self.hasher.transform(texts)

    def fit(self, texts: Sequence[str], targets: np.ndarray, sample_weight: np.ndarray | None = None) -> NgramLinearClassifier:
        """`targets` is (n_texts, n_heads) with 1, 0 or MISSING (-1)."""
        targets = np.asarray(targets)
        if targets.shape != (len(texts), len(self.heads)):
            raise ValueError(f"targets must be shaped ({len(texts)}, {len(self.heads)}), got {targets.shape}")
        self.coef_, self.intercept_ = fit_heads(self.features(texts), targets, self.heads, C=self.C,
                                                positive_weight=self.positive_weight, seed=self.seed,
                                                sample_weight=sample_weight)
        self._coef_by_feature = None
        return self

    def set_weights(self, coef: np.ndarray, intercept: np.ndarray) -> NgramLinearClassifier:
        """Install fitted weights (used when loading an artifact)."""
        if coef.shape != (len(self.heads), self.hasher.n_features) or intercept.shape != (len(self.heads),):
            raise ValueError(f"weights shaped {coef.shape}/{intercept.shape} do not match {len(self.heads)} heads x {self.hasher.n_features} features")
        self.coef_, self.intercept_ = coef.astype(np.float32), intercept.astype(np.float32)
        self._coef_by_feature = None
        return self

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Logits shaped (n_texts, n_heads)."""
        return np.asarray(self.features(texts) @ self._weights_by_feature()) + self.intercept_

    def stream(self) -> IncrementalNgrams:
        """Scores of a growing text, each update costing time proportional to the added text."""
        return IncrementalNgrams(self.hasher, self._weights_by_feature(), self.intercept_)

    def _weights_by_feature(self) -> np.ndarray:
        """(features, heads), C-contiguous: sparse @ dense then needs no copy of the weights."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("this NgramLinearClassifier is not fitted yet; call fit() first")
        if self._coef_by_feature is None:
            self._coef_by_feature = np.ascontiguousarray(self.coef_.T)
        return self._coef_by_feature


def fit_heads(features: sp.spmatrix | np.ndarray, targets: np.ndarray, heads: Sequence[str], *, C: float,
              positive_weight: float = 1.0, seed: int = 0, sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One logistic regression per head on shared features; MISSING targets sit that head out."""
    from sklearn.linear_model import LogisticRegression  # training-time only: keeps Guard.load light

    weights = np.ones(features.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    coef = np.zeros((len(heads), features.shape[1]), dtype=np.float32)
    intercept = np.zeros(len(heads), dtype=np.float32)
    for k, head in enumerate(heads):
        known = targets[:, k] != MISSING
        y = targets[known, k]
        if len(set(y.tolist())) < 2:
            raise ValueError(f"head {head!r} needs positive and negative examples; got only {set(y.tolist())}")
        w = weights[known] * np.where(y == 1, positive_weight, 1.0)
        model = LogisticRegression(C=C, solver="liblinear", max_iter=500, random_state=seed)
        model.fit(features[known], y, sample_weight=w)
        coef[k], intercept[k] = model.coef_[0], model.intercept_[0]
    return coef, intercept
