"""Detection metrics with 95% intervals.

Rates (precision, recall, FPR) use Wilson score intervals, which behave at 0/n and n/n;
red-team rates, where a regulator may ask for a guaranteed coverage, use the exact
Clopper-Pearson interval;
rank metrics (AUROC, AUPRC), F1 and TPR at a fixed FPR use a seeded percentile bootstrap
over records, stratified by label so every resample has both classes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel
from scipy.stats import beta
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

Z95 = 1.959963984540054


class Estimate(BaseModel):
    """A point estimate with a 95% interval (None when undefined, e.g. no positives)."""

    value: float | None
    low: float | None
    high: float | None
    n: int

    def __str__(self) -> str:
        if self.value is None:
            return "n/a"
        return f"{self.value:.4f} [{self.low:.4f}, {self.high:.4f}]"


def wilson(successes: int, total: int) -> Estimate:
    if total == 0:
        return Estimate(value=None, low=None, high=None, n=0)
    p = successes / total
    denom = 1 + Z95**2 / total
    centre = (p + Z95**2 / (2 * total)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / total + Z95**2 / (4 * total**2)) / denom
    return Estimate(value=p, low=max(0.0, centre - half), high=min(1.0, centre + half), n=total)


def clopper_pearson(successes: int, total: int, confidence: float = 0.95) -> Estimate:
    """Exact binomial interval: conservative, so its coverage is never below `confidence`.

    The bounds are beta quantiles; at 0/n the lower bound is exactly 0 and at n/n the upper
    bound is exactly 1 (the quantile formula is undefined there).
    """
    if total == 0:
        return Estimate(value=None, low=None, high=None, n=0)
    alpha = 1 - confidence
    low = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, total - successes + 1))
    high = 1.0 if successes == total else float(beta.ppf(1 - alpha / 2, successes + 1, total - successes))
    return Estimate(value=successes / total, low=low, high=high, n=total)


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float = 0.01) -> float:
    """Highest TPR whose FPR does not exceed `fpr`."""
    fprs, tprs, _ = roc_curve(labels, scores)
    return float(tprs[fprs <= fpr].max())


def f1_at(labels: np.ndarray, flagged: np.ndarray) -> float:
    tp = int(np.sum(flagged & (labels == 1)))
    denom = int(np.sum(flagged)) + int(np.sum(labels == 1))
    return 2 * tp / denom if denom else 0.0


def bootstrap(statistic: Callable[[np.ndarray, np.ndarray], float], labels: np.ndarray, values: np.ndarray,
              reps: int = 1000, seed: int = 0) -> Estimate:
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    if len(positives) == 0 or len(negatives) == 0:
        return Estimate(value=None, low=None, high=None, n=len(labels))
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(reps):
        idx = np.concatenate([rng.choice(positives, len(positives)), rng.choice(negatives, len(negatives))])
        samples.append(statistic(labels[idx], values[idx]))
    low, high = np.percentile(samples, [2.5, 97.5])
    return Estimate(value=statistic(labels, values), low=float(low), high=float(high), n=len(labels))


class DetectionReport(BaseModel):
    """Metrics of a scored, labelled set at the guard's shipped threshold."""

    n: int
    positives: int
    negatives: int
    auroc: Estimate
    auprc: Estimate
    f1: Estimate
    precision: Estimate
    recall: Estimate
    fpr: Estimate
    tpr_at_1pct_fpr: Estimate


def detection_report(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5, reps: int = 1000, seed: int = 0) -> DetectionReport:
    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=float)
    flagged = scores >= threshold
    tp = int(np.sum(flagged & (labels == 1)))
    fp = int(np.sum(flagged & (labels == 0)))
    return DetectionReport(
        n=len(labels), positives=int(np.sum(labels == 1)), negatives=int(np.sum(labels == 0)),
        auroc=bootstrap(lambda y, s: float(roc_auc_score(y, s)), labels, scores, reps, seed),
        auprc=bootstrap(lambda y, s: float(average_precision_score(y, s)), labels, scores, reps, seed),
        f1=bootstrap(lambda y, f: f1_at(y, f.astype(bool)), labels, flagged.astype(float), reps, seed),
        precision=wilson(tp, tp + fp),
        recall=wilson(tp, int(np.sum(labels == 1))),
        fpr=wilson(fp, int(np.sum(labels == 0))),
        tpr_at_1pct_fpr=bootstrap(tpr_at_fpr, labels, scores, reps, seed),
    )
