"""Stage-1 refit anchored to the parent's weights.

Each head minimises C * (weighted logistic loss) + ||w - w_parent||^2 / 2, starting from the
parent. The anchor is what keeps a patch small: features the replay set and proliferations
say nothing about keep the parent's weights, so a parent trained on data the user does not
have (the development pool) is not forgotten, and the refit takes seconds rather than a
retraining cycle.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize

from bastion.models.linear import MISSING, NgramLinearClassifier

MAX_ITER = 100


def anchored_refit(parent: NgramLinearClassifier, features: sp.csr_matrix, targets: np.ndarray,
                   sample_weight: np.ndarray, C: float, heads: np.ndarray) -> NgramLinearClassifier:
    """A copy of `parent` whose `heads` (a mask) are refitted on (features, targets), anchored to `parent`.

    Only features present in the data move (the anchor holds the rest at the parent's value
    exactly), so the optimisation runs over those columns alone.
    """
    coef = parent.coef_.copy()
    intercept = parent.intercept_.copy()
    active = np.unique(features.indices)
    X = features[:, active].tocsr()
    for k in np.flatnonzero(heads):
        known = targets[:, k] != MISSING
        if len(set(targets[known, k].tolist())) < 2:
            continue  # nothing to learn for this head: keep the parent's
        coef[k, active], intercept[k] = _refit_head(X[known], targets[known, k].astype(np.float64), sample_weight[known],
                                                    parent.coef_[k, active], float(parent.intercept_[k]), C)
    model = NgramLinearClassifier(parent.heads, hasher=parent.hasher, C=parent.C,
                                  positive_weight=parent.positive_weight, seed=parent.seed)
    return model.set_weights(coef, intercept)


def _refit_head(X: sp.csr_matrix, y: np.ndarray, w: np.ndarray, coef0: np.ndarray, b0: float,
                C: float) -> tuple[np.ndarray, float]:
    anchor = coef0.astype(np.float64)
    Xt = X.T.tocsr()

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = X @ theta[:-1] + theta[-1]
        delta = theta[:-1] - anchor
        loss = C * float(w @ (np.logaddexp(0.0, z) - y * z)) + 0.5 * float(delta @ delta)
        residual = C * w * (1.0 / (1.0 + np.exp(-z)) - y)
        return loss, np.append(Xt @ residual + delta, residual.sum())

    start = np.append(anchor, b0)
    result = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": MAX_ITER})
    return result.x[:-1].astype(np.float32), float(result.x[-1])
