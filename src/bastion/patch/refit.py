"""Refits anchored to the parent's weights: stage 1, and stage 2's heads over its hidden units.

Each head minimises C * (weighted logistic loss) + ||w - w_parent||^2 / 2, starting from the
parent. The anchor is what keeps a patch small: features the replay set and proliferations
say nothing about keep the parent's weights, so a parent trained on data the user does not
have (the development pool) is not forgotten, and the refit takes seconds rather than a
retraining cycle.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize

from bastion.models.embedding_head import EmbeddingHead
from bastion.models.linear import MISSING, NgramLinearClassifier

MAX_ITER = 100


def anchored_refit(parent: NgramLinearClassifier, features: sp.csr_matrix, targets: np.ndarray,
                   sample_weight: np.ndarray, C: float, heads: np.ndarray) -> NgramLinearClassifier:
    """A copy of `parent` whose `heads` (a mask) are refitted on (features, targets), anchored to `parent`.

    Only features present in the data move (the anchor holds the rest at the parent's value
    exactly), so the optimisation runs over those columns alone.
    """
    active = np.unique(features.indices)
    coef = parent.coef_.copy()
    coef[:, active], intercept = _refit_heads(parent.coef_[:, active], parent.intercept_, features[:, active].tocsr(),
                                              targets, sample_weight, C, heads)
    model = NgramLinearClassifier(parent.heads, hasher=parent.hasher, C=parent.C,
                                  positive_weight=parent.positive_weight, seed=parent.seed)
    return model.set_weights(coef, intercept)


def anchored_head_refit(parent: EmbeddingHead, hidden: np.ndarray, targets: np.ndarray, sample_weight: np.ndarray,
                        C: float, heads: np.ndarray) -> EmbeddingHead:
    """Stage 2's counterpart: the logistic heads over the parent's (fixed) hidden units, refitted the same way."""
    coef, intercept = _refit_heads(parent.coef, parent.intercept, hidden, targets, sample_weight, C, heads)
    return dataclasses.replace(parent, coef=coef, intercept=intercept)


def _refit_heads(coef0: np.ndarray, intercept0: np.ndarray, X: sp.csr_matrix | np.ndarray, targets: np.ndarray,
                 sample_weight: np.ndarray, C: float, heads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each head in the `heads` mask refitted on its known targets; the others keep the parent's weights."""
    coef, intercept = coef0.copy(), intercept0.copy()
    for k in np.flatnonzero(heads):
        known = targets[:, k] != MISSING
        if len(set(targets[known, k].tolist())) < 2:
            continue  # nothing to learn for this head: keep the parent's
        coef[k], intercept[k] = _refit_head(X[known], targets[known, k].astype(np.float64), sample_weight[known],
                                            coef0[k], float(intercept0[k]), C)
    return coef, intercept


def _refit_head(X: sp.csr_matrix | np.ndarray, y: np.ndarray, w: np.ndarray, coef0: np.ndarray, b0: float,
                C: float) -> tuple[np.ndarray, float]:
    anchor = coef0.astype(np.float64)
    Xt = X.T.tocsr() if sp.issparse(X) else X.T

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = X @ theta[:-1] + theta[-1]
        delta = theta[:-1] - anchor
        loss = C * float(w @ (np.logaddexp(0.0, z) - y * z)) + 0.5 * float(delta @ delta)
        residual = C * w * (1.0 / (1.0 + np.exp(-z)) - y)
        return loss, np.append(Xt @ residual + delta, residual.sum())

    start = np.append(anchor, b0)
    result = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": MAX_ITER})
    return result.x[:-1].astype(np.float32), float(result.x[-1])
