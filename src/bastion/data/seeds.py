"""The seed corpus we wrote for the bundled constitutions, shipped as package data.

Layout under `bastion/seeds/`:
  <constitution>/restricted/<category>.txt   harmful requests, one per line
  <constitution>/permitted/<category>.txt    benign requests on the same topics
  benign/<domain>.txt                        everyday traffic, shared by all constitutions
  conversations/<constitution>.jsonl         multi-turn conversations of both kinds
  heldout/<constitution>/{restricted,permitted}/<category>.txt
                                             written like the seeds, never trained on
A constitution without its own file for a category falls back to `general`'s (so `cbrn`
shares the `jailbreak` seeds).

The held-out seeds were written later, in the registers the guard missed (slang, terse
fragments, stated intent, thin pretexts, other languages); training on them did not help the
classifiers elsewhere (bench/RESULTS.md, issue 2), so they measure how the guard carries over
to wording it never saw (`bastion eval --suite seed-heldout`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from importlib.abc import Traversable

from bastion.constitution import Constitution
from bastion.data.records import Example

FALLBACK = "general"


def _root() -> Traversable:
    return resources.files("bastion") / "seeds"


def _lines(path: Traversable) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _category_file(root: Traversable, constitution: str, kind: str, category: str) -> Traversable | None:
    for name in (constitution, FALLBACK):
        path = root / name / kind / f"{category}.txt"
        if path.is_file():
            return path
    return None


def _category_seeds(root: Traversable, constitution: Constitution, source: str) -> Iterator[Example]:
    """Restricted and permitted prompts per category under `root`, labelled; ids name the file and line."""
    for category in constitution.category_ids:
        for kind, label in (("restricted", 1), ("permitted", 0)):
            path = _category_file(root, constitution.name, kind, category)
            if path is None:
                continue
            for i, text in enumerate(_lines(path)):
                yield Example(
                    id=f"{source}:{kind}/{category}:{i}", prompt=text, label=label,
                    categories=[category] if label else [], source=f"{source}_{kind}",
                )


def benign_domains() -> list[str]:
    return sorted(p.name[:-4] for p in (_root() / "benign").iterdir() if p.name.endswith(".txt"))


def load_seeds(constitution: Constitution) -> Iterator[Example]:
    """Every seed Example for `constitution`, labelled with its restricted categories."""
    name = constitution.name
    yield from _category_seeds(_root(), constitution, "seed")
    for domain in benign_domains():
        for i, text in enumerate(_lines(_root() / "benign" / f"{domain}.txt")):
            yield Example(id=f"seed:benign/{domain}:{i}", prompt=text, label=0, source="seed_benign")
    conversations = _root() / "conversations" / f"{name}.jsonl"
    if conversations.is_file():
        known = set(constitution.category_ids)
        for i, line in enumerate(_lines(conversations)):
            row = json.loads(line)
            label = int(row["label"] == "restricted")
            category = row.get("category")
            yield Example(
                id=f"seed:conversation:{i}", messages=row["messages"], label=label,
                categories=[category] if label and category in known else [],
                source="seed_conversation",
            )


def load_heldout_seeds(constitution: Constitution) -> list[Example]:
    """The held-out seeds of `constitution` (sources `seed_heldout_restricted` / `_permitted`)."""
    return list(_category_seeds(_root() / "heldout", constitution, "seed_heldout"))
