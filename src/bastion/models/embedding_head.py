"""Stage 2's heads over frozen sentence embeddings: a ReLU hidden layer, then linear heads.

Linear heads straight on MiniLM embeddings under-fit intent: on the development pool's
held-out sources they reach AUROC 0.90, while the same heads over a hidden layer reach
0.95 (bench/RESULTS.md, issue 3). The hidden layer is an ensemble of small MLPs trained on
the `any` target; averaging members is the same as concatenating their hidden units, so
the ensemble is one wider layer at serving time. Every head, `any` included, is then a
logistic regression on those units, so categories whose labels are missing for some
records train exactly as the linear heads did.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bastion.models.linear import fit_heads


@dataclass(frozen=True)
class EmbeddingHead:
    """Logits from embeddings: `coef @ relu(hidden_coef @ x + hidden_intercept) + intercept`."""

    coef: np.ndarray  # (heads, width)
    intercept: np.ndarray  # (heads,)
    hidden_coef: np.ndarray | None = None  # (width, embedding dim); None: linear heads
    hidden_intercept: np.ndarray | None = None

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        return self.features(embeddings) @ self.coef.T + self.intercept

    def features(self, embeddings: np.ndarray) -> np.ndarray:
        if self.hidden_coef is None or self.hidden_intercept is None:
            return embeddings
        return relu_units(embeddings, self.hidden_coef, self.hidden_intercept)

    @property
    def n_heads(self) -> int:
        return int(self.coef.shape[0])

    @property
    def input_width(self) -> int:
        return int((self.coef if self.hidden_coef is None else self.hidden_coef).shape[1])

    def arrays(self) -> dict[str, np.ndarray]:
        """The `.npz` contents; an artifact without the hidden arrays holds linear heads."""
        out = {"coef": self.coef, "intercept": self.intercept}
        if self.hidden_coef is not None and self.hidden_intercept is not None:
            out |= {"hidden_coef": self.hidden_coef, "hidden_intercept": self.hidden_intercept}
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> EmbeddingHead:
        hidden = arrays.get("hidden_coef")
        return cls(arrays["coef"].astype(np.float32), arrays["intercept"].astype(np.float32),
                   None if hidden is None else hidden.astype(np.float32),
                   None if hidden is None else arrays["hidden_intercept"].astype(np.float32))


def relu_units(embeddings: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    return np.maximum(embeddings @ coef.T + intercept, 0.0)


def fit_embedding_head(embeddings: np.ndarray, targets: np.ndarray, heads: Sequence[str], *, C: float,
                       hidden: int = 128, members: int = 3, seed: int = 0,
                       sample_weight: np.ndarray | None = None) -> EmbeddingHead:
    """Hidden layer from `members` MLPs on the `any` column, then one logistic head per column.

    `hidden=0` gives linear heads on the embeddings themselves.
    """
    from sklearn.exceptions import ConvergenceWarning  # training-time only: keeps Guard.load light
    from sklearn.neural_network import MLPClassifier

    layer_coef, layer_intercept = None, None
    if hidden > 0:
        weights, biases = [], []
        for member in range(members):
            mlp = MLPClassifier(hidden_layer_sizes=(hidden,), alpha=1e-3, max_iter=60, early_stopping=True,
                                random_state=seed + member)
            with warnings.catch_warnings():  # early stopping decides; the iteration cap is a backstop
                warnings.simplefilter("ignore", ConvergenceWarning)
                mlp.fit(embeddings, targets[:, 0], sample_weight=sample_weight)
            weights.append(mlp.coefs_[0].T)
            biases.append(mlp.intercepts_[0])
        layer_coef = np.concatenate(weights).astype(np.float32)
        layer_intercept = np.concatenate(biases).astype(np.float32)
    units = embeddings if layer_coef is None else relu_units(embeddings, layer_coef, layer_intercept)
    coef, intercept = fit_heads(units, targets, heads, C=C, seed=seed, sample_weight=sample_weight)
    return EmbeddingHead(coef, intercept, layer_coef, layer_intercept)
