"""Shared fixtures: a small guard trained on the seed corpus, once per session."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from bastion.constitution import load
from bastion.data.jsonl import read_examples
from bastion.guard import Guard
from bastion.training import TrainConfig, build_corpus, train_guard

LEMON = Path(__file__).parent / "data" / "lemon_cake"


@pytest.fixture(scope="session")
def seed_corpus():
    return build_corpus(load("general"), None, use_dev_pool=False)


@pytest.fixture(scope="session")
def small_guard(seed_corpus) -> Guard:
    """A guard trained on the seed corpus only (no development pool), with few features."""
    config = TrainConfig(use_dev_pool=False, n_features=2**16, template_expansions=1)
    return train_guard(load("general"), seed_corpus, config)


@pytest.fixture(scope="session")
def small_guard_whole(small_guard) -> Guard:
    """The small guard reading every input whole, so other readings can be tested on their own."""
    guard = copy.copy(small_guard)
    guard.segment_reading = None
    return guard


@pytest.fixture(scope="session")
def small_guard_dir(small_guard, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("guard") / "small"
    small_guard.save(path)
    return path


@pytest.fixture(scope="session")
def lemon_guard() -> Guard:
    """A harmless stand-in guard whose restricted topic is lemon-cake recipes.

    Tests that make a real model answer "restricted" requests use it, so nothing harmful is
    ever elicited. Trained through the same path as `bastion train --data --responses`.
    """
    constitution_file = LEMON / "constitution.yaml"
    constitution = load(constitution_file)
    corpus = build_corpus(constitution, None, use_dev_pool=False, extra=[LEMON / "prompts.jsonl"])
    config = TrainConfig(use_dev_pool=False, n_features=2**16, template_expansions=1)
    return train_guard(constitution, corpus, config, constitution_text=constitution_file.read_text(encoding="utf-8"),
                       responses=list(read_examples(LEMON / "responses.jsonl")))


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster (2 CPUs) for the session; its files live in a short temp dir, not in $HOME."""
    import os
    import shutil
    import tempfile

    ray = pytest.importorskip("ray")
    env = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    temp = tempfile.mkdtemp(prefix="r", dir="/tmp")  # Ray's socket paths must stay short
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, logging_level="ERROR")
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
