import numpy as np

from bastion.models.calibration import head_thresholds
from bastion.models.cascade import fit_cascade


def _calibration(seed=0, n_benign=4000, n_harmful=1000):
    """Stage 1 is noisy, stage 2 sharper: the cascade should lean on stage 2 in the band."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n_benign, int), np.ones(n_harmful, int)]
    truth = np.where(labels == 1, 2.0, -2.0)
    stage1 = np.stack([truth + rng.normal(0, 2.0, len(labels))] * 2, axis=1)
    stage2 = np.stack([truth + rng.normal(0, 0.7, len(labels))] * 2, axis=1)
    return stage1, stage2, labels


def _decide(params, stage1, stage2, t1, words=None):
    band = params.escalate(stage1[:, 0], words)
    flagged = stage1[:, 0] >= t1[0]
    combined = params.combine(stage1, stage2)[:, 0]
    flagged[band] = combined[band] >= params.thresholds[0]
    return flagged, band


def test_band_brackets_the_stage1_threshold_and_escalates_about_the_target_rate():
    stage1, stage2, labels = _calibration()
    t1 = head_thresholds(stage1[labels == 0], 0.01)
    params = fit_cascade(stage1, stage2, labels, t1, target_fpr=0.01, escalation_rate=0.2)
    assert params.low <= t1[0] <= params.high
    band = params.escalate(stage1[labels == 0, 0])
    assert 0.15 <= band.mean() <= 0.25
    assert params.weight < 0.5  # the sharper stage counts for more


def test_cascade_keeps_the_fpr_budget_and_beats_stage1_on_fresh_data():
    stage1, stage2, labels = _calibration(seed=1)
    t1 = head_thresholds(stage1[labels == 0], 0.01)
    params = fit_cascade(stage1, stage2, labels, t1, target_fpr=0.01, escalation_rate=0.2)
    s1, s2, y = _calibration(seed=2, n_benign=20000, n_harmful=5000)
    flagged, _ = _decide(params, s1, s2, t1)
    fpr = flagged[y == 0].mean()
    assert fpr <= 0.02
    assert flagged[y == 1].mean() > (s1[y == 1, 0] >= t1[0]).mean() + 0.1


def test_short_inputs_always_escalate_and_the_budget_still_holds():
    stage1, stage2, labels = _calibration(seed=3)
    words = np.random.default_rng(3).integers(3, 60, len(labels))
    t1 = head_thresholds(stage1[labels == 0], 0.01)
    params = fit_cascade(stage1, stage2, labels, t1, target_fpr=0.01, escalation_rate=0.1, words=words, short_words=12)
    plain = fit_cascade(stage1, stage2, labels, t1, target_fpr=0.01, escalation_rate=0.1)
    assert params.short_words == 12 and plain.short_words == 0
    escalated = params.escalate(stage1[:, 0], words)
    assert escalated[words <= 12].all() and escalated.mean() > plain.escalate(stage1[:, 0]).mean()
    assert np.array_equal(params.escalate(stage1[:, 0]), plain.escalate(stage1[:, 0]))  # no words: the band alone
    s1, s2, y = _calibration(seed=4, n_benign=20000, n_harmful=5000)
    fresh_words = np.random.default_rng(4).integers(3, 60, len(y))
    flagged, _ = _decide(params, s1, s2, t1, fresh_words)
    baseline, _ = _decide(plain, s1, s2, t1)
    assert flagged[y == 0].mean() <= 0.02
    assert flagged[y == 1].mean() > baseline[y == 1].mean()
