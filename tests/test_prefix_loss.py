import numpy as np
import pytest
import scipy.sparse as sp

from bastion.models.prefix_loss import LOSS_FUNCTIONS, LOSSES, fit_sequence_head


def _batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = np.array([1, 3, 7, 20, 18])  # some longer than the 16-prefix window
    mask = (np.arange(20)[None, :] < lengths[:, None]).astype(float)
    return rng.normal(size=mask.shape) * 2 * mask, mask, np.array([0.0, 1.0, 0.0, 1.0, 0.0])


@pytest.mark.parametrize("loss", LOSSES)
def test_gradients_match_finite_differences(loss):
    z, mask, y = _batch()
    value, grad = LOSS_FUNCTIONS[loss](z, mask, y)
    step = 1e-6
    for i, j in [(0, 0), (1, 2), (2, 5), (3, 0), (3, 10), (3, 19), (4, 17)]:
        bumped = z.copy()
        bumped[i, j] += step
        numeric = (LOSS_FUNCTIONS[loss](bumped, mask, y)[0].sum() - value.sum()) / step
        assert grad[i, j] == pytest.approx(numeric, abs=1e-4), (i, j)
    assert not grad[mask == 0].any()  # padding gets no gradient


def test_cumulative_max_ignores_early_prefixes_of_a_harmful_response_once_a_later_one_fires():
    mask = np.ones((1, 3))
    grad = LOSS_FUNCTIONS["cumulative_max"](np.array([[-3.0, 4.0, 1.0]]), mask, np.array([1.0]))[1]
    assert grad[0, 0] < 0 and grad[0, 2] == 0 and grad[0, 1] < 0
    assert LOSS_FUNCTIONS["prefix_bce"](np.array([[-3.0, 4.0, 1.0]]), mask, np.array([1.0]))[1][0, 2] < 0


@pytest.mark.parametrize("loss", LOSSES)
def test_fit_separates_a_toy_problem_deterministically(loss):
    rng = np.random.default_rng(1)
    sequences = np.repeat(np.arange(40), 4)
    labels = (np.arange(40) % 2).astype(float)
    dense = rng.normal(size=(160, 30)) * 0.3
    dense[:, 0] += np.where(labels[sequences] == 1, 1.0, -1.0) * np.tile(np.arange(1, 5), 40) / 4
    features = sp.csr_matrix(dense)
    coef, intercept = fit_sequence_head(features, sequences, labels, loss=loss, C=0.5)
    assert coef[0] > 2 * np.abs(coef[1:]).max()
    again = fit_sequence_head(features, sequences, labels, loss=loss, C=0.5)
    assert np.array_equal(coef, again[0]) and intercept == again[1]
