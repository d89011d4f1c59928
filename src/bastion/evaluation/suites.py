"""Evaluation suites: named labelled sets from the development pool, or any CSV/JSONL file.

Named suites reuse the development-pool loaders (`bastion.data.sources`), so `bastion eval
--suite advbench` reads exactly what training and the benchmarks read; `devpool-test` and
`devpool-benign-test` are the manifest's test split, which no guard trained on;
`seed-heldout` is the held-out seeds (`bastion.data.seeds`), written like our training seeds
but in registers training never saw, and needs no data directory. Any other
CSV or JSONL file is read through a column mapping, so public sets with their own column
names need no conversion step.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import ValidationError

from bastion.data.jsonl import read_examples
from bastion.data.records import Example
from bastion.data.sources import SOURCES, load_source
from bastion.errors import ConfigError, DataUnavailableError, RecordError

FIELDS = ("prompt", "label", "id", "category", "response")


def parse_columns(spec: str | None) -> dict[str, str]:
    """'prompt=goal,label=is_harmful' -> {'prompt': 'goal', 'label': 'is_harmful'}."""
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        field, sep, column = part.partition("=")
        if not sep or field not in FIELDS:
            raise ConfigError(f"--columns {part!r}: write FIELD=COLUMN with FIELD one of {', '.join(FIELDS)}")
        mapping[field] = column
    return mapping


def _rows(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield from enumerate(csv.DictReader(handle), start=2)  # line 1 is the header
        return
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise RecordError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc


def read_table(path: Path, columns: dict[str, str]) -> list[Example]:
    """Records of a CSV or JSONL file, each field read from its mapped column (default: its own name)."""
    if not path.is_file():
        raise ConfigError(f"{path} does not exist")
    if not columns and path.suffix.lower() != ".csv":
        return list(read_examples(path))  # the JSONL record contract as it is
    names = {f: columns.get(f, f) for f in FIELDS}
    out = []
    for number, row in _rows(path):
        values = {f: row.get(c) for f, c in names.items() if row.get(c) not in (None, "")}
        if "prompt" not in values:
            raise RecordError(f"{path}:{number}: no column {names['prompt']!r} (map it with --columns prompt=NAME)")
        try:
            out.append(Example(id=str(values.get("id", number)), prompt=str(values["prompt"]), label=values.get("label"),
                               categories=values.get("category"), response=values.get("response"), source=path.stem))
        except ValidationError as exc:
            raise RecordError(f"{path}:{number}: {exc.errors()[0]['msg']}") from exc
    return out


def _devpool_test(data_dir: Path | None, benign_only: bool) -> list[Example]:
    from bastion.constitution import load
    from bastion.training import build_corpus  # heavy; only for these suites

    if data_dir is None:
        raise DataUnavailableError("the devpool suites need the development pool: set BASTION_DATA_DIR")
    test = build_corpus(load("general"), data_dir).splits["test"]
    return [e for e in test if e.label is not None and (e.label == 0 or not benign_only)]


def _seed_heldout(_: Path | None) -> list[Example]:
    from bastion.constitution import load
    from bastion.data.seeds import load_heldout_seeds

    return load_heldout_seeds(load("general"))


NAMED: dict[str, Callable[[Path | None], list[Example]]] = {
    "seed-heldout": _seed_heldout,
    "devpool-test": lambda d: _devpool_test(d, benign_only=False),
    "devpool-benign-test": lambda d: _devpool_test(d, benign_only=True),
    **{name: (lambda d, n=name: [e for e in load_source(n, d) if e.label is not None]) for name in SOURCES},
}


def load_suite(name: str, data_dir: Path | None) -> list[Example]:
    """A named suite's labelled records; unknown names list the known ones."""
    if name not in NAMED:
        raise ConfigError(f"unknown suite {name!r}; known: {', '.join(NAMED)} (or pass a CSV/JSONL file)")
    return NAMED[name](data_dir)
