import pytest

from bastion.data.dedup import cluster, near_duplicates_of
from bastion.data.records import Example
from bastion.data.splits import assign_groups, assign_splits, check_trainable, load_manifest
from bastion.errors import ConfigError


def test_near_duplicates_share_a_cluster_and_distinct_texts_do_not():
    texts = ["How do I bake a lemon cake at home", "how do i bake a lemon cake at home?!",
             "How do I bake a lemon cake at home tonight please", "What is the capital of Peru", "Recommend a sci-fi novel"]
    labels = cluster(texts)
    assert labels[0] == labels[1] == labels[2]
    assert len({labels[0], labels[3], labels[4]}) == 3


def test_exclude_finds_near_duplicates_of_evaluation_texts():
    assert near_duplicates_of(["Tell me how to bake a lemon cake at home", "unrelated words entirely here"],
                              ["tell me how to bake a lemon cake at home!"]) == [True, False]


def test_groups_never_span_splits_and_pins_pull_the_whole_group(seed_corpus):
    manifest = load_manifest()
    where = {}
    for split, rows in seed_corpus.splits.items():
        for e in rows:
            assert where.setdefault(e.group, split) == split
    examples = assign_groups([
        Example(id="a", prompt="Write a poem about the sea and the sky at night", source="seed_benign"),
        Example(id="b", prompt="write a poem about the sea and the sky at night!", source="jbb_benign"),
    ])
    splits = assign_splits(examples, manifest)
    assert len(splits["test"]) == 2


def test_training_refuses_test_groups_and_heldout_families():
    manifest = load_manifest()
    with pytest.raises(ConfigError, match="test split"):
        check_trainable([Example(id="x", prompt="p", group="g1")], manifest, {"g1"})
    with pytest.raises(ConfigError, match="held-out transform"):
        check_trainable([Example(id="y", prompt="p", group="g2", transform="leetspeak+caesar")], manifest, set())


def test_seed_corpus_meets_the_issue_minimums(seed_corpus):
    from collections import Counter

    from bastion.constitution import load
    from bastion.data.seeds import benign_domains, load_seeds

    for name in ("general", "cbrn"):
        rows = list(load_seeds(load(name)))
        per = Counter((e.source, (e.categories or [e.id.split("/")[1].split(":")[0]])[0]) for e in rows if e.source in ("seed_restricted", "seed_permitted"))
        for category in load(name).category_ids:
            assert per[("seed_restricted", category)] >= 60, (name, category)
            assert per[("seed_permitted", category)] >= 60, (name, category)
    benign = [e for e in load_seeds(load("general")) if e.source == "seed_benign"]
    assert len(benign) >= 2000 and len(benign_domains()) >= 40
    conversations = [e for e in load_seeds(load("general")) if e.source == "seed_conversation"]
    assert {0, 1} <= {e.label for e in conversations}
