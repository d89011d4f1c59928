"""Leak-free train / calibration / test assignment from the committed split manifest."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from bastion.data.dedup import UnionFind, cluster
from bastion.data.records import Example, render
from bastion.data.transforms import TRANSFORMS
from bastion.errors import ConfigError

Split = Literal["train", "calibration", "test"]


class SplitManifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    seed: int
    fractions: dict[Split, float]
    pinned: dict[str, Split] = Field(default_factory=dict)
    heldout_transform_families: list[str]

    def split_of_group(self, group: str) -> Split:
        digest = hashlib.sha256(f"{self.seed}:{group}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64
        edge = 0.0
        for split in ("train", "calibration"):
            edge += self.fractions[split]  # type: ignore[index]
            if point < edge:
                return split  # type: ignore[return-value]
        return "test"

    def is_heldout_transform(self, transform: str | None) -> bool:
        """Whether any step of a (possibly combined) transform id is in a held-out family."""
        if not transform:
            return False
        steps = transform.replace("+", " ").split()
        return any(s in TRANSFORMS and TRANSFORMS.get(s).family in self.heldout_transform_families for s in steps)


def load_manifest() -> SplitManifest:
    text = (resources.files("bastion") / "data" / "splits.yaml").read_text(encoding="utf-8")
    return SplitManifest.model_validate(yaml.safe_load(text))


def assign_groups(examples: Sequence[Example], threshold: float = 0.7) -> list[Example]:
    """Copies of `examples` whose `group` joins their near-duplicate cluster with any group they already name.

    A declared group keeps derived records with their source even when the text differs
    entirely (an LLM translation and the query it translates), so they share a split.
    """
    labels = cluster([render(e) for e in examples], threshold=threshold)
    found = UnionFind(len(examples))
    first_of: dict[str, int] = {}
    for i, (example, label) in enumerate(zip(examples, labels, strict=True)):
        found.union(i, label)
        if example.group:
            found.union(i, first_of.setdefault(example.group, i))
    return [e.model_copy(update={"group": f"g:{examples[found.find(i)].id}"}) for i, e in enumerate(examples)]


def assign_splits(examples: Sequence[Example], manifest: SplitManifest) -> dict[Split, list[Example]]:
    """Split grouped examples; a group with a pinned member follows the pin."""
    pinned: dict[str, Split] = {}
    for e in examples:
        if e.source in manifest.pinned and e.group:
            pinned.setdefault(e.group, manifest.pinned[e.source])
    out: dict[Split, list[Example]] = {"train": [], "calibration": [], "test": []}
    for e in examples:
        group = e.group or e.id or ""
        out[pinned.get(group) or manifest.split_of_group(group)].append(e)
    return out


def check_trainable(examples: Iterable[Example], manifest: SplitManifest, test_groups: set[str]) -> None:
    """Refuse test-split groups and held-out transform families in training data."""
    for e in examples:
        if e.group in test_groups:
            raise ConfigError(f"record {e.id!r} belongs to the test split (group {e.group}); training refuses it")
        if manifest.is_heldout_transform(e.transform):
            raise ConfigError(f"record {e.id!r} uses held-out transform {e.transform!r}; training refuses it")
