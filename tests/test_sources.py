"""Development-pool loaders: run when BASTION_DATA_DIR (or ../shared/datasets) is present."""

import pytest

from bastion.config import Settings
from bastion.data.sources import SOURCES, load_source
from bastion.errors import DataUnavailableError

DATA_DIR = Settings().data_dir
needs_data = pytest.mark.skipif(DATA_DIR is None, reason="development pool not available (set BASTION_DATA_DIR)")


def test_missing_data_dir_says_how_to_fix(tmp_path):
    with pytest.raises(DataUnavailableError, match="BASTION_DATA_DIR"):
        load_source("advbench", tmp_path)
    with pytest.raises(KeyError, match="known"):
        load_source("nope", tmp_path)


def test_only_permissive_licences_are_trainable():
    for source in SOURCES.values():
        if source.trainable:
            assert source.licence in ("MIT", "Apache-2.0", "CC-BY-4.0"), source.name


@needs_data
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_source_loads_labelled_records(name):
    rows = load_source(name, DATA_DIR)
    assert rows, name
    assert all(r.source and r.id for r in rows)
    if name != "hh_rlhf":
        assert {r.label for r in rows} <= {0, 1}


def test_heldout_seeds_are_a_suite_and_never_training_data(seed_corpus):
    """The held-out seeds measure wording training never saw, so none may reach the corpus."""
    from bastion.evaluation.suites import load_suite

    heldout = load_suite("seed-heldout", None)
    assert {e.label for e in heldout} == {0, 1}
    assert all(e.categories for e in heldout if e.label == 1)
    trained = {e.prompt for rows in seed_corpus.splits.values() for e in rows}
    assert not trained & {e.prompt for e in heldout}
