"""Thresholds at a target false-positive rate on benign calibration data.

A guard flags a record when any head is over its own threshold, so per-head thresholds at
the target rate would add up to a much higher overall rate. Instead one common tail mass
`q` is searched so that the *union* of heads flags `target_fpr` of the benign calibration
set, and each head's threshold is its own benign `1 - q` quantile. Scores are then shifted
so every threshold sits at 0.5: "0.5 or more means flagged" holds for every category.
"""

from __future__ import annotations

import numpy as np


def union_fpr(benign_logits: np.ndarray, thresholds: np.ndarray) -> float:
    return float(np.mean((benign_logits >= thresholds).any(axis=1)))


def thresholds_for_fpr(benign_logits: np.ndarray, target_fpr: float, iterations: int = 40) -> np.ndarray:
    """Per-head logit thresholds whose union flags at most `target_fpr` of benign rows."""
    if benign_logits.ndim != 2 or len(benign_logits) == 0:
        raise ValueError("calibration needs a non-empty (n_benign, n_heads) logit matrix")
    low, high = 0.0, target_fpr
    best = np.quantile(benign_logits, 1.0, axis=0) + 1e-6
    for _ in range(iterations):
        q = (low + high) / 2
        candidate = np.quantile(benign_logits, 1.0 - q, axis=0, method="higher") + 1e-6
        if union_fpr(benign_logits, candidate) <= target_fpr:
            best, low = candidate, q
        else:
            high = q
    return best.astype(np.float32)


def calibrated_scores(logits: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Shift logits so each head's threshold maps to probability 0.5."""
    return 1.0 / (1.0 + np.exp(-(logits - thresholds)))


def logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))
