import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.models.features import MAX_WORD, NgramHasher
from bastion.models.linear import NgramLinearClassifier

# A small feature space, so that hash collisions (counts adding up in one column) are common.
HASHER = NgramHasher(n_features=2**10)
MODEL = NgramLinearClassifier(["any", "b", "c"], hasher=HASHER).set_weights(
    np.random.default_rng(0).normal(size=(3, HASHER.n_features)).astype(np.float32), np.array([0.1, -0.2, 0.3]))

# Word characters, separators and non-ASCII letters; no NUL (the batch hasher's separator).
ALPHABET = st.sampled_from([*"abcab  \n.,é_1Zß漢-", "\u00a0"])
TEXTS = st.text(ALPHABET, max_size=120)


def _pieces(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted({c % (len(text) + 1) for c in cuts}), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.lists(st.integers(min_value=0, max_value=10_000), max_size=12), st.integers(min_value=0, max_value=3))
def test_incremental_scores_equal_scoring_from_scratch(text, cuts, tail_pieces):
    pieces = _pieces(text, cuts)
    split = max(0, len(pieces) - tail_pieces)
    state = MODEL.stream()
    for i, piece in enumerate(pieces[:split]):
        state.extend(piece)
        assert np.allclose(state.decision(), MODEL.decision_function(["".join(pieces[:i + 1])])[0], atol=1e-4)
    # the tail is scored as if it ended the text, without being committed
    tail = "".join(pieces[split:])
    expected = MODEL.decision_function([text])[0]
    assert np.allclose(state.decision(tail), expected, atol=1e-4)
    assert np.allclose(state.decision(tail), expected, atol=1e-4)  # decision() changes nothing


def test_long_words_are_hashed_on_their_last_characters_when_split():
    word = "x" * (3 * MAX_WORD) + "yz"
    state = MODEL.stream()
    for ch in f"a {word} b":
        state.extend(ch)
    assert np.allclose(state.decision(), MODEL.decision_function([f"a {word} b"])[0], atol=1e-4)


def test_extending_costs_the_new_text_only():
    """The state keeps a bounded tail of the text, whatever its length."""
    state = MODEL.stream()
    state.extend("word " * 2_000 + "y" * 500)
    state.decision()
    assert len(state._context) < HASHER.char_ngrams[1] and len(state._word) <= MAX_WORD
    assert len(state._words) < HASHER.word_ngrams[1]
