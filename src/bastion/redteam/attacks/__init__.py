"""The attack library: registered attacks plus, when the development pool is present,
in-the-wild templates. Modules are imported explicitly so what exists is visible here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bastion.errors import ConfigError
from bastion.redteam.attacks import escalation, fragments, many_shot, obfuscation, transforms  # noqa: F401  (registration)
from bastion.redteam.attacks.base import ATTACKS, Attack, family_heldout
from bastion.redteam.attacks.wild import FAMILY as WILD_FAMILY
from bastion.redteam.attacks.wild import wild_attacks

__all__ = ["ATTACKS", "WILD_FAMILY", "Attack", "family_heldout", "library", "select"]


def library(data_dir: Path | None) -> list[Attack]:
    """Every registered attack, plus held-out in-the-wild templates when `data_dir` has them."""
    attacks = list(ATTACKS)
    if data_dir is not None:
        attacks += wild_attacks(data_dir)
    return attacks


def select(attacks: Sequence[Attack], spec: str | None) -> list[Attack]:
    """Attacks named by a comma-separated list of ids and/or family names (all when empty)."""
    if not spec:
        return list(attacks)
    wanted = [s.strip() for s in spec.split(",") if s.strip()]
    known = {a.id for a in attacks} | {a.family for a in attacks}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        families = ", ".join(sorted({a.family for a in attacks}))
        raise ConfigError(f"unknown attack or family {', '.join(map(repr, unknown))}; families: {families} (ids: `bastion redteam --list`)")
    return [a for a in attacks if a.id in wanted or a.family in wanted]
