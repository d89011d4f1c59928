"""The Attack plug-in: a named way to turn one forbidden target question into an adversarial input.

An attack is deliberately tiny: an id, a family, a held-out flag and a `build` function from
a target to one Example. One input per (attack, target) keeps attack success a plain
Bernoulli count, so every rate gets an exact interval and the universal-jailbreak table
counts targets, not retries.

Held out means "never seen in training": it is derived from the committed split manifest
(transform families listed there, or data groups the manifest puts in the test split), never
declared by hand, so the report cannot claim generalisation the training data contradicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from bastion.data.records import Example
from bastion.data.splits import SplitManifest, load_manifest
from bastion.redteam.targets import Target
from bastion.registry import Registry

Build = Callable[[Target], Example]


@dataclass(frozen=True)
class Attack:
    """One attack: `build(target)` is the adversarial input sent to the defence."""

    id: str
    family: str
    heldout: bool
    build: Build
    doc: str = ""

    def __call__(self, target: Target) -> Example:
        example = self.build(target)
        return example.model_copy(update={"id": f"{target.id}~{self.id}", "label": 1,
                                          "categories": [target.category], "transform": self.id})


ATTACKS: Registry[Attack] = Registry("attack")


@cache
def manifest() -> SplitManifest:
    """The split manifest, read once: it is committed package data."""
    return load_manifest()


def family_heldout(family: str) -> bool:
    """Whether the manifest keeps this family out of training."""
    return family in manifest().heldout_transform_families


def attack(attack_id: str, family: str) -> Callable[[Callable[..., object]], Attack]:
    """Register a generator `build(target) -> Example`; its held-out flag comes from the manifest."""

    def make(func: Callable[..., object]) -> Attack:
        return Attack(attack_id, family, family_heldout(family), func, (func.__doc__ or "").strip())  # type: ignore[arg-type]

    return ATTACKS.decorator(attack_id, make)
