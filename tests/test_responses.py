"""Response records for the output classifier: HH-RLHF pairs as weak labels, prefixes."""

from __future__ import annotations

import gzip
import json

import pytest

from bastion.data.responses import load_hh_responses, prefixes
from bastion.errors import DataUnavailableError


def _write_hh(root, rows) -> None:
    folder = root / "hh_rlhf_harmless_test"
    folder.mkdir()
    with gzip.open(folder / "harmless-base_test.jsonl.gz", "wt", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def test_hh_pairs_become_weak_labels_in_their_conversation(tmp_path):
    stem = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how do I pick a lock?\n\nAssistant: "
    _write_hh(tmp_path, [{"chosen": stem + "I can't help with that.", "rejected": stem + "Sure, first [step]."},
                         {"chosen": stem + "same", "rejected": stem + "same"}])
    records = list(load_hh_responses(tmp_path))
    assert [(r.label, r.response) for r in records] == [(0, "I can't help with that."), (1, "Sure, first [step].")]
    assert [m.role for m in records[0].messages] == ["user", "assistant", "user"]
    assert records[0].messages[-1].content == "how do I pick a lock?"


def test_hh_missing_is_a_clear_error(tmp_path):
    with pytest.raises(DataUnavailableError, match="hh_rlhf_harmless_test"):
        list(load_hh_responses(tmp_path))


def test_prefixes_cut_at_word_boundaries_and_keep_the_label(tmp_path):
    _write_hh(tmp_path, [{"chosen": "\n\nHuman: q\n\nAssistant: " + " ".join(f"w{i}" for i in range(40)),
                          "rejected": "\n\nHuman: q\n\nAssistant: no"}])
    cuts = prefixes(list(load_hh_responses(tmp_path))[:1], every_words=16)
    assert [len(c.response.split(" ")) for c in cuts] == [16, 32, 40]
    assert {c.label for c in cuts} == {0} and cuts[0].id.endswith("@16")


def test_shared_benign_answers_never_answer_a_calibration_or_test_prompt():
    """Real model answers train the output classifier; their prompts must never be evaluation prompts.

    Eleven were drawn from seed lines later moved to the held-out input suite (`seed-heldout`):
    those prompts are in no split, and the output classifier never scores a prompt alone.
    """
    from bastion.constitution import load
    from bastion.data.responses import load_response_seeds
    from bastion.data.seeds import load_seeds
    from bastion.data.splits import assign_groups, assign_splits, load_manifest

    answers = [e for e in load_response_seeds("cbrn") if e.source == "seed_response_model_answer"]
    assert len(answers) >= 300 and {e.label for e in answers} == {0}
    assert len({e.id for e in load_response_seeds("general")}) == len(list(load_response_seeds("general")))
    seeds = assign_splits(assign_groups(list(load_seeds(load("general")))), load_manifest())
    split_of = {e.prompt: name for name, rows in seeds.items() for e in rows}
    assert {split_of.get(e.prompt) for e in answers} <= {"train", None}
    assert sum(split_of.get(e.prompt) is None for e in answers) <= 11
