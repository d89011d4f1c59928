"""Shared fixtures: a small guard trained on the seed corpus, once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.constitution import load
from bastion.guard import Guard
from bastion.training import TrainConfig, build_corpus, train_guard


@pytest.fixture(scope="session")
def seed_corpus():
    return build_corpus(load("general"), None, use_dev_pool=False)


@pytest.fixture(scope="session")
def small_guard(seed_corpus) -> Guard:
    """A guard trained on the seed corpus only (no development pool), with few features."""
    config = TrainConfig(use_dev_pool=False, n_features=2**16, template_expansions=1)
    return train_guard(load("general"), seed_corpus, config)


@pytest.fixture(scope="session")
def small_guard_dir(small_guard, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("guard") / "small"
    small_guard.save(path)
    return path
