"""Thresholds at a target false-positive rate on benign calibration data.

Each head's threshold is its own benign quantile at the target rate, measured on records
the model never trained on. The guard decides with the `any` head (plus any category whose
threshold the constitution sets explicitly), so the decision keeps the target rate rather
than adding up one rate per category. Scores are shifted so every threshold sits at 0.5:
"0.5 or more" means over threshold, in every category.
"""

from __future__ import annotations

import numpy as np


def head_thresholds(benign_logits: np.ndarray, target_fpr: float) -> np.ndarray:
    """Each head's logit threshold flagging at most `target_fpr` of benign rows."""
    if benign_logits.ndim != 2 or len(benign_logits) == 0:
        raise ValueError("calibration needs a non-empty (n_benign, n_heads) logit matrix")
    return (np.quantile(benign_logits, 1.0 - target_fpr, axis=0, method="higher") + 1e-6).astype(np.float32)


def calibrated_scores(logits: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Shift logits so each head's threshold maps to probability 0.5."""
    return 1.0 / (1.0 + np.exp(-(logits - thresholds)))


def logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


def recentred(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Calibrated `scores` mapped piecewise-linearly so that `threshold` lands on 0.5, order kept.

    A second reading of an input (a request cut from a known wrapper, a sentence read alone) is
    held to its own threshold; recentring puts its score on the guard's scale, where 0.5 flags.
    """
    p = threshold
    return np.where(scores < p, 0.5 * scores / max(p, 1e-9),
                    0.5 + 0.5 * (scores - p) / max(1.0 - p, 1e-9)).astype(np.float32)
