"""In-the-wild jailbreak templates from the development pool, one attack per template.

Only templates whose near-duplicate group the split manifest assigns to `test` become
attacks: the guard never trained or calibrated on them, so they measure generalisation to
jailbreaks people actually wrote. Each template is its own attack because the universal
jailbreak question is about a single template working across many targets.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

from bastion.constitution import load
from bastion.data.records import Example
from bastion.redteam.attacks.base import Attack
from bastion.redteam.targets import Target

TEMPLATE_SOURCES = ("jailbreak_llms", "gptfuzz_templates")
PLACEHOLDER = re.compile(r"\[INSERT PROMPT HERE\]|\[PROMPT\]|\{prompt\}", re.IGNORECASE)
FAMILY = "in_the_wild"


def fill(template: str, question: str) -> str:
    """Put the question where the template asks for it, or after the template when it has no slot."""
    if PLACEHOLDER.search(template):
        return PLACEHOLDER.sub(lambda _: question, template)
    return f"{template}\n\n{question}"


def _build(template: str, target: Target) -> Example:
    return Example(prompt=fill(template, target.text))


def heldout_templates(data_dir: Path) -> list[Example]:
    """Template records in the test split of the development-pool corpus (the `general` recipe)."""
    from bastion.training import build_corpus  # heavy: only when templates are asked for

    corpus = build_corpus(load("general"), data_dir)
    return [e for e in corpus.splits["test"] if e.source in TEMPLATE_SOURCES]


def wild_attacks(data_dir: Path) -> list[Attack]:
    """One held-out attack per test-split template (empty when the pool lacks them)."""
    return [Attack(f"wild:{e.id}", FAMILY, True, partial(_build, e.last_user_text()), f"In-the-wild template {e.id} ({e.source}).")
            for e in heldout_templates(data_dir)]
