"""Labelled (prompt, response) records for the output classifier, and their prefixes.

Sources: our response seeds (compliance skeletons with placeholders, refusals, benign
answers in the same scaffolds, disguised compliance) and, when the development pool is
present, GPTFuzz's human-labelled model responses and, optionally, Anthropic's HH-RLHF
harmless-base preference pairs as weak labels (the rejected reply of each red-team
conversation counts as harmful, the chosen one as benign: noisy, so it is down-weighted). The output classifier is trained on
prefixes of each response, every prefix labelled with the full response's label, so that
it learns to predict from the first words whether the response is turning harmful; how the
prefixes of one response share the loss is `bastion.models.prefix_loss`.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from bastion.data.records import Example, Message
from bastion.errors import DataUnavailableError

PREFIX_WORDS = 16  # about the stream monitor's check cadence
MAX_PREFIXES = 24
BENIGN_ANSWERS = "benign_answers.jsonl"


def load_response_seeds(constitution_name: str) -> Iterator[Example]:
    """The constitution's response seeds, then the real model answers to everyday prompts that
    every constitution shares (`benign_answers.jsonl`, made by scripts/answer_benign_seeds.py)."""
    folder = resources.files("bastion") / "seeds" / "responses"
    for name, prefix in ((f"{constitution_name}.jsonl", "seed:response"), (BENIGN_ANSWERS, "seed:answer")):
        path = folder / name
        if not path.is_file():
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            row = json.loads(line)
            category = row.get("category")
            yield Example(id=f"{prefix}:{i}", prompt=row["prompt"], response=row["response"], label=int(row["label"]),
                          categories=[category] if row["label"] and category else [],
                          source=f"seed_response_{row['kind']}")


def load_gptfuzz_responses(data_dir: Path | None) -> Iterator[Example]:
    folder = data_dir / "gptfuzz" if data_dir else None
    if folder is None or not folder.is_dir():
        raise DataUnavailableError("gptfuzz/ is not under the data directory; set BASTION_DATA_DIR")
    with (folder / "questions/question_list.csv").open(encoding="utf-8", newline="") as handle:
        questions = {row["index"]: row["text"] for row in csv.DictReader(handle)}
    for split in ("train", "evaluate"):
        with (folder / f"responses_labeled/{split}.csv").open(encoding="utf-8", newline="") as handle:
            for i, row in enumerate(csv.DictReader(handle)):
                yield Example(id=f"gptfuzz_response:{split}:{i}", prompt=questions.get(row["question"], row["question"]),
                              response=row["Response"], label=int(row["label"]), source="gptfuzz_responses")


_TURN = re.compile(r"\n\n(Human|Assistant): ")


def _transcript(text: str) -> tuple[list[Message], str]:
    """An HH transcript as (conversation before the last assistant turn, that turn's text)."""
    parts = _TURN.split(text)[1:]
    turns = [Message(role="user" if who == "Human" else "assistant", content=said.strip())
             for who, said in zip(parts[::2], parts[1::2], strict=True)]
    return turns[:-1], turns[-1].content


def load_hh_responses(data_dir: Path | None) -> Iterator[Example]:
    """HH-RLHF harmless-base test pairs whose final replies differ: rejected 1, chosen 0 (weak labels)."""
    path = data_dir / "hh_rlhf_harmless_test/harmless-base_test.jsonl.gz" if data_dir else None
    if path is None or not path.is_file():
        raise DataUnavailableError("hh_rlhf_harmless_test/ is not under the data directory; set BASTION_DATA_DIR")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            row = json.loads(line)
            (messages, chosen), (_, rejected) = _transcript(row["chosen"]), _transcript(row["rejected"])
            if chosen == rejected or not messages or messages[-1].role != "user":
                continue
            for label, reply in ((0, chosen), (1, rejected)):
                yield Example(id=f"hh_response:{i}:{label}", messages=messages, response=reply, label=label,
                              source="hh_rlhf_weak")


def prefixes(examples: Sequence[Example], every_words: int = PREFIX_WORDS, most: int = MAX_PREFIXES) -> list[Example]:
    """Prefixes of each response at word boundaries, every `every_words` words (at most `most`,
    evenly spaced, for long responses) and the whole response, in order, each with the full
    response's label. Ids are `{response id}@{words}`."""
    out = []
    for example in examples:
        words = (example.response or "").split(" ")
        cuts = sorted({min(len(words), c) for c in range(every_words, len(words) + every_words, every_words)})
        if len(cuts) > most:
            cuts = sorted({cuts[round(i)] for i in np.linspace(0, len(cuts) - 1, most)})
        out += [example.model_copy(update={"response": " ".join(words[:cut]), "id": f"{example.id}@{cut}"}) for cut in cuts]
    return out
