"""The cascade: stage 1 screens everything, the uncertain band escalates to stage 2.

As in Constitutional Classifiers++, the escalated inputs are decided on a weighted sum of
both stages' logits. Everything is chosen on calibration data the models never trained on:

- the band: stage-1 `any` logits in [low, high) escalate. `low` is the benign quantile that
  sends `escalation_rate` of benign traffic up; `high` is the stage-1 logit above which
  stage 1 alone is trusted (its benign rate is a tenth of the budget). Both bracket the
  stage-1 threshold, so decisions outside the band agree with stage 1's own.
- short inputs (at most `short_words` words) escalate whatever stage 1 says: hashed n-grams
  see few features in a short request and miss blunt ones ("how do I kidnap someone"),
  while stage 2's cost grows with length, so a short input is the cheapest to escalate.
- the weight of stage 1 in the sum, from a grid, maximising AUROC on escalated records;
- the thresholds of the combined logits, so the whole cascade keeps the target FPR.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

from bastion.models.calibration import head_thresholds


class CascadeParams(BaseModel):
    """Band, weight and combined thresholds (per head), as stored in the manifest."""

    model_config = ConfigDict(frozen=True)

    low: float
    high: float
    weight: float  # of stage 1; stage 2 gets 1 - weight
    thresholds: list[float]
    short_words: int = 0  # inputs of at most this many words always escalate (0: none)

    def escalate(self, stage1_any: np.ndarray, words: np.ndarray | None = None) -> np.ndarray:
        band = (stage1_any >= self.low) & (stage1_any < self.high)
        return band if words is None or not self.short_words else band | (words <= self.short_words)

    def combine(self, stage1: np.ndarray, stage2: np.ndarray) -> np.ndarray:
        return self.weight * stage1 + (1.0 - self.weight) * stage2


def fit_cascade(stage1: np.ndarray, stage2: np.ndarray, labels: np.ndarray, stage1_thresholds: np.ndarray,
                target_fpr: float, escalation_rate: float = 0.2, *, words: np.ndarray | None = None,
                short_words: int = 0) -> CascadeParams:
    """Choose band, weight and thresholds on calibration logits (column 0 is `any`); `words` per record."""
    from sklearn.metrics import roc_auc_score  # training-time only: keeps Guard.load light

    benign = labels == 0
    threshold = float(stage1_thresholds[0])
    low = min(float(np.quantile(stage1[benign, 0], 1.0 - escalation_rate)), threshold)
    high = max(float(np.quantile(stage1[benign, 0], 1.0 - target_fpr / 10)), threshold)
    params = CascadeParams(low=low, high=high, weight=0.5, thresholds=[0.0] * stage1.shape[1], short_words=short_words)
    band = params.escalate(stage1[:, 0], words)
    weight = 0.5
    if band.any() and len(set(labels[band].tolist())) == 2:
        grid = np.linspace(0.0, 1.0, 11)
        scores = [roc_auc_score(labels[band], w * stage1[band, 0] + (1 - w) * stage2[band, 0]) for w in grid]
        weight = float(grid[int(np.argmax(scores))])
    combined = weight * stage1 + (1 - weight) * stage2
    # Benign records flagged above `high` (and not escalated) spend part of the budget; the band gets the rest.
    spent = float(np.mean(((stage1[:, 0] >= high) & ~band)[benign]))
    in_band = band & benign
    share = in_band.sum() / max(benign.sum(), 1)
    budget = max(target_fpr - spent, target_fpr / 10) / max(share, 1e-9)
    thresholds = head_thresholds(combined[in_band], min(budget, 0.5)) if in_band.any() else stage1_thresholds
    return CascadeParams(low=low, high=high, weight=weight, thresholds=[float(t) for t in thresholds],
                         short_words=short_words)
