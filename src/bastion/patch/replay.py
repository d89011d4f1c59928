"""The replay set: the compact slice of training data a guard artifact carries for patching.

`replay.jsonl.gz` holds one `{"split": "train"|"calibration", "record": Example}` a line: a
seeded sample of the augmented training records and the benign calibration records, long
records left out, at most MAX_BYTES compressed. Patching refits stage 1 on it (so the patch
does not forget what the guard knew) and recalibrates on its calibration records, with no
development pool on the user's machine. Artifacts without one (the bundled default guard
predates it) get one built from the constitution's seed corpus.
"""

from __future__ import annotations

import gzip
import json
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from bastion.constitution import Constitution
from bastion.data.records import Example, render
from bastion.errors import ArtifactError
from bastion.guard import Guard
from bastion.models.artifacts import verified_path

REPLAY_FILE = "replay.jsonl.gz"
MAX_BYTES = 3 * 1024 * 1024
MAX_TRAIN, MAX_CALIBRATION, MAX_CHARS = 12_000, 4_000, 3_000
ReplaySplit = Literal["train", "calibration"]
Replay = dict[ReplaySplit, list[Example]]


def build_replay(train: Sequence[Example], calibration: Sequence[Example], seed: int = 0) -> Replay:
    """A seeded, size-bounded sample: training records of both labels, benign calibration records."""
    rng = random.Random(seed)

    def sample(rows: Sequence[Example], limit: int) -> list[Example]:
        short = [e for e in rows if e.label is not None and len(render(e)) <= MAX_CHARS]
        return rng.sample(short, min(limit, len(short)))

    return {"train": sample(train, MAX_TRAIN), "calibration": sample([e for e in calibration if e.label == 0], MAX_CALIBRATION)}


def seed_replay(constitution: Constitution, seed: int = 0) -> Replay:
    """A replay set from the seed corpus alone, for artifacts that carry none."""
    from bastion.training import TrainConfig, build_corpus, training_records

    corpus = build_corpus(constitution, None, use_dev_pool=False)
    config = TrainConfig(use_dev_pool=False, seed=seed)
    return build_replay(training_records(corpus, config), corpus.splits["calibration"], seed)


def write_replay(replay: Replay, path: Path) -> Path:
    """Write the replay set; refuses one over MAX_BYTES, which would bloat every artifact."""
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as handle:
        for split, rows in replay.items():
            for e in rows:
                handle.write(json.dumps({"split": split, "record": e.model_dump(exclude_none=True)}, ensure_ascii=False) + "\n")
    if path.stat().st_size > MAX_BYTES:
        raise ArtifactError(f"{path}: replay set is {path.stat().st_size:,} bytes, over the {MAX_BYTES:,} limit")
    return path


def save_with_replay(guard: Guard, directory: Path, extra: dict[str, Any], replay: Replay) -> None:
    """Save `guard` as an artifact that carries `replay`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_replay(replay, Path(tmp) / REPLAY_FILE)
        guard.save(directory, extra | {"replay": {split: len(rows) for split, rows in replay.items()}},
                   attachments={REPLAY_FILE: path})


def load_replay(directory: Path, manifest: dict[str, Any]) -> Replay | None:
    """The artifact's replay set (hash-verified), or None when it has none."""
    if REPLAY_FILE not in manifest.get("files", {}):
        return None
    replay: Replay = {"train": [], "calibration": []}
    try:
        with gzip.open(verified_path(directory, manifest, REPLAY_FILE), "rt", encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                replay[row["split"]].append(Example.model_validate(row["record"]))
    except (OSError, ValueError, KeyError) as exc:
        raise ArtifactError(f"{directory}: unreadable {REPLAY_FILE} ({exc})") from exc
    return replay
