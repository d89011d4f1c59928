import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from bastion.models.embedding_head import EmbeddingHead, fit_embedding_head
from bastion.models.linear import MISSING


def xor_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Restricted when the first two coordinates share a sign: no linear head can separate it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 16)).astype(np.float32)
    harmful = (x[:, 0] * x[:, 1] > 0).astype(np.int8)
    category = np.where(harmful == 1, (x[:, 2] > 0).astype(np.int8), 0)
    targets = np.stack([harmful, category], axis=1)
    targets[::7, 1] = np.where(harmful[::7] == 1, MISSING, 0)  # some restricted records lack a category
    return x, targets


def test_hidden_layer_learns_what_linear_heads_cannot():
    x, y = xor_data(3000, 0)
    x_test, y_test = xor_data(1000, 1)
    linear = fit_embedding_head(x, y, ["any", "cat"], C=1.0, hidden=0)
    mlp = fit_embedding_head(x, y, ["any", "cat"], C=1.0, hidden=32, members=2)
    assert linear.hidden_coef is None and mlp.hidden_coef.shape == (64, 16)
    assert roc_auc_score(y_test[:, 0], linear(x_test)[:, 0]) < 0.65
    assert roc_auc_score(y_test[:, 0], mlp(x_test)[:, 0]) > 0.9
    known = y_test[:, 1] != MISSING
    assert roc_auc_score(y_test[known, 1], mlp(x_test)[known, 1]) > 0.8


def test_fitting_is_deterministic_and_round_trips_through_arrays():
    x, y = xor_data(800, 2)
    a = fit_embedding_head(x, y, ["any", "cat"], C=1.0, hidden=8, members=2, seed=5)
    b = fit_embedding_head(x, y, ["any", "cat"], C=1.0, hidden=8, members=2, seed=5)
    assert np.array_equal(a(x), b(x))
    restored = EmbeddingHead.from_arrays(a.arrays())
    assert np.allclose(restored(x), a(x), atol=1e-5)
    linear = fit_embedding_head(x, y, ["any", "cat"], C=1.0, hidden=0)
    assert set(linear.arrays()) == {"coef", "intercept"}
    assert EmbeddingHead.from_arrays(linear.arrays()).hidden_coef is None


def test_a_head_without_both_classes_is_refused():
    x, y = xor_data(200, 3)
    y[:, 1] = 0
    with pytest.raises(ValueError, match="cat"):
        fit_embedding_head(x, y, ["any", "cat"], C=1.0, hidden=4, members=1)
