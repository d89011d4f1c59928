"""Losses over a response's prefixes for the output head, and their L-BFGS fit.

The output classifier scores every prefix of a response and is trained to predict whether
the *full* response is harmful. How a response's prefixes share the loss is a choice:

- `prefix_bce`: every prefix is its own example (binary cross-entropy against the
  response's label). The early, still harmless-looking prefixes of a harmful answer are
  pushed up as hard as its late ones, which costs false halts on benign answers that
  start alike.
- `cumulative_max`: the prediction at prefix t is the maximum over prefixes <= t of the
  per-prefix probability, which is what a monitor that halts at the first flag acts on;
  BCE against the response's label at every t. A harmful answer is fine once any prefix
  fires; a benign one is penalised for its worst prefix so far.
- `softmax_window` (Constitutional Classifiers++): over sliding windows of `window` (16)
  consecutive prefixes, per-prefix BCE weighted by a softmax of the window's logits / tau
  (tau = 1): a smooth version of the same idea that spreads gradient over the window.

Each response weighs the same (its loss is a mean over its prefixes or windows); the fit is
L-BFGS on sparse features with an L2 penalty on the weights (not the intercept), from
zero, so it is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import expit, log_expit

OutputLoss = Literal["prefix_bce", "cumulative_max", "softmax_window"]
LOSSES: tuple[str, ...] = get_args(OutputLoss)


def _bce(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-prefix BCE on logits and its derivative; `y` broadcasts over prefixes."""
    return -(y * log_expit(z) + (1 - y) * log_expit(-z)), expit(z) - y


def prefix_bce(z: np.ndarray, mask: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(loss per sequence, d loss / d logits): the mean BCE over each sequence's prefixes."""
    loss, grad = _bce(z, y[:, None])
    counts = mask.sum(axis=1, keepdims=True)
    return (loss * mask).sum(axis=1) / counts[:, 0], grad * mask / counts


def cumulative_max(z: np.ndarray, mask: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BCE of the running maximum of the logits; the gradient goes to the running argmax."""
    running = np.maximum.accumulate(z, axis=1)
    positions = np.broadcast_to(np.arange(z.shape[1]), z.shape)
    argmax = np.maximum.accumulate(np.where(z == running, positions, 0), axis=1)
    per_sequence, grad_running = prefix_bce(running, mask, y)
    flat = (np.arange(z.shape[0])[:, None] * z.shape[1] + argmax).ravel()
    grad = np.bincount(flat, weights=grad_running.ravel(), minlength=z.size).reshape(z.shape)
    return per_sequence, grad


def softmax_window(z: np.ndarray, mask: np.ndarray, y: np.ndarray, window: int = 16,
                   tau: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Mean over windows (one ending at each prefix) of softmax(logits / tau)-weighted BCE."""
    t = z.shape[1]
    loss, dloss = _bce(z, y[:, None])
    # shifted[k][:, j] is prefix j - k: the k-th prefix back in the window that ends at j
    reach = list(range(min(window, t)))
    inside = [np.pad(mask[:, : t - k], ((0, 0), (k, 0))) * mask for k in reach]
    logits = [np.pad(z[:, : t - k], ((0, 0), (k, 0))) / tau for k in reach]
    top = np.max([np.where(m, s, -np.inf) for m, s in zip(inside, logits, strict=True)], axis=0)
    top = np.where(mask, top, 0.0)
    weights = [np.exp(s - top) * m for s, m in zip(logits, inside, strict=True)]
    total = np.sum(weights, axis=0) + (1 - mask)
    weights = [w / total for w in weights]
    losses = [np.pad(loss[:, : t - k], ((0, 0), (k, 0))) for k in reach]
    window_loss = np.sum([w * s for w, s in zip(weights, losses, strict=True)], axis=0)
    counts = mask.sum(axis=1, keepdims=True)
    grad = np.zeros_like(z)
    for k, w, s in zip(reach, weights, losses, strict=True):
        # d window_loss(j) / d z(j - k) = w * (dloss + (loss - window_loss) / tau), moved back to j - k
        contribution = w * (np.pad(dloss[:, : t - k], ((0, 0), (k, 0))) + (s - window_loss) / tau) / counts
        grad[:, : t - k] += contribution[:, k:]
    return (window_loss * mask).sum(axis=1) / counts[:, 0], grad


LOSS_FUNCTIONS = {"prefix_bce": prefix_bce, "cumulative_max": cumulative_max, "softmax_window": softmax_window}


def fit_sequence_head(features: sp.csr_matrix, sequences: Sequence[int], labels: np.ndarray, *, loss: OutputLoss,
                      C: float, sample_weight: np.ndarray | None = None, max_iter: int = 200) -> tuple[np.ndarray, float]:
    """Fit one linear head; row i of `features` is a prefix of sequence `sequences[i]`, rows of a
    sequence in prefix order. `labels` and `sample_weight` are per sequence."""
    sequences = np.asarray(sequences)
    n = int(sequences.max()) + 1
    slot = np.arange(len(sequences)) - np.searchsorted(sequences, sequences)  # prefix index within its sequence
    mask = np.zeros((n, int(slot.max()) + 1))
    mask[sequences, slot] = 1.0
    weights = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    weights = weights / weights.sum()
    penalty = 1.0 / (C * len(sequences))
    y = np.asarray(labels, dtype=float)
    objective = LOSS_FUNCTIONS[loss]
    features_t = features.T.tocsr()

    def value_and_grad(params: np.ndarray) -> tuple[float, np.ndarray]:
        coef, intercept = params[:-1], params[-1]
        z = np.zeros(mask.shape)
        z[sequences, slot] = features @ coef + intercept
        per_sequence, grad_z = objective(z, mask, y)
        grad_rows = (grad_z * weights[:, None])[sequences, slot]
        grad = np.append(features_t @ grad_rows + penalty * coef, grad_rows.sum())
        return float(weights @ per_sequence + 0.5 * penalty * coef @ coef), grad

    result = minimize(value_and_grad, np.zeros(features.shape[1] + 1), jac=True, method="L-BFGS-B",
                      options={"maxiter": max_iter})
    return result.x[:-1].astype(np.float32), float(result.x[-1])
