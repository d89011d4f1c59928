import json

import numpy as np
import pytest

from bastion.errors import ArtifactError, NotFittedError
from bastion.guard import Guard
from bastion.models.calibration import calibrated_scores, head_thresholds
from bastion.models.features import NgramHasher
from bastion.models.linear import MISSING, NgramLinearClassifier


def test_predict_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError, match="fit"):
        NgramLinearClassifier(["any"]).decision_function(["x"])


def test_missing_labels_are_left_out_of_a_head():
    texts = ["lemon cake recipe", "lemon tart recipe", "weather today", "football scores", "cake with lemons"]
    targets = np.array([[1, 1], [1, MISSING], [0, 0], [0, 0], [1, 1]])
    model = NgramLinearClassifier(["any", "cake"], hasher=NgramHasher(n_features=2**12)).fit(texts, targets)
    logits = model.decision_function(["lemon cake", "football"])
    assert logits[0, 0] > logits[1, 0] and logits[0, 1] > logits[1, 1]
    with pytest.raises(ValueError, match="positive and negative"):
        NgramLinearClassifier(["any"], hasher=NgramHasher(n_features=2**12)).fit(texts, np.ones((5, 1)))


def test_training_is_bit_identical_from_the_same_inputs():
    texts = [f"text number {i} about {'cakes' if i % 2 else 'cars'}" for i in range(40)]
    targets = np.array([[i % 2] for i in range(40)])
    a = NgramLinearClassifier(["any"], hasher=NgramHasher(n_features=2**12), seed=3).fit(texts, targets)
    b = NgramLinearClassifier(["any"], hasher=NgramHasher(n_features=2**12), seed=3).fit(texts, targets)
    assert np.array_equal(a.coef_, b.coef_) and np.array_equal(a.intercept_, b.intercept_)


def test_thresholds_hit_the_target_rate_and_map_to_one_half():
    rng = np.random.default_rng(0)
    benign = rng.normal(size=(10_000, 3))
    thresholds = head_thresholds(benign, 0.01)
    rates = (benign >= thresholds).mean(axis=0)
    assert np.all(rates <= 0.01) and np.all(rates >= 0.009)
    assert np.allclose(calibrated_scores(thresholds[None, :], thresholds), 0.5)


def test_small_guard_separates_seed_test_split(small_guard, seed_corpus):
    from sklearn.metrics import roc_auc_score

    test = [e for e in seed_corpus.splits["test"] if e.label is not None]
    scores = [v.score for v in small_guard.score_examples(test)]
    assert roc_auc_score([e.label for e in test], scores) > 0.85


def test_artifact_round_trip_gives_identical_scores(small_guard, small_guard_dir, seed_corpus):
    loaded = Guard.load(small_guard_dir)
    sample = seed_corpus.splits["test"][:50]
    assert np.allclose(loaded.scores(sample)[0], small_guard.scores(sample)[0], atol=1e-3)  # float16 weights
    manifest = json.loads((small_guard_dir / "manifest.json").read_text())
    assert set(manifest["files"]) == {"stage1.npz", "output.npz", "constitution.yaml"}
    assert manifest["constitution"]["hash"] == small_guard.constitution.content_hash()


@pytest.mark.parametrize("damage, needle", [
    (lambda d: (d / "stage1.npz").write_bytes(b"garbage"), "sha256"),
    (lambda d: (d / "manifest.json").write_text("{"), "corrupt manifest"),
    (lambda d: (d / "constitution.yaml").unlink(), "missing"),
    (lambda d: (d / "manifest.json").write_text(json.dumps({**json.loads((d / "manifest.json").read_text()), "format_version": 99})), "not supported"),
])
def test_damaged_artifacts_get_clear_errors(small_guard, tmp_path, damage, needle):
    path = tmp_path / "g"
    small_guard.save(path)
    damage(path)
    with pytest.raises(ArtifactError, match=needle):
        Guard.load(path)


def test_weights_never_need_pickle(small_guard_dir):
    with np.load(small_guard_dir / "stage1.npz", allow_pickle=False) as data:
        assert data["coef"].dtype == np.float16


def test_save_over_existing_artifact_is_atomic(small_guard, tmp_path):
    path = tmp_path / "g"
    small_guard.save(path)
    small_guard.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]
