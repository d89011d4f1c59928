"""Expand seed prompts with templates (personas, framings, formats, lengths).

Deterministic from a seed. Expansions keep the seed's id as their group, so an expansion
always lands in its seed's split.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from importlib import resources

import yaml

from bastion.data.records import Example

AXES = ("personas", "framings", "formats", "lengths")


def load_templates() -> dict[str, list[str]]:
    text = (resources.files("bastion") / "data" / "templates.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return {axis: list(data[axis]) for axis in AXES}


def _fill(template: str, prompt: str) -> str:
    lowered = prompt[:1].lower() + prompt[1:] if prompt[:2] != prompt[:2].upper() else prompt
    return template.replace("{p}", prompt).replace("{P}", lowered)


def expand(examples: Sequence[Example], per_seed: int, seed: int, templates: dict[str, list[str]] | None = None) -> Iterator[Example]:
    """`per_seed` template variants of each single-prompt example (conversations are skipped)."""
    templates = templates or load_templates()
    for example in examples:
        if example.prompt is None:
            continue
        rng = random.Random(f"{seed}:{example.id}")
        for k in range(per_seed):
            text = example.prompt
            for axis in AXES:
                text = _fill(rng.choice(templates[axis]), text)
            yield example.model_copy(update={"id": f"{example.id}#t{k}", "prompt": text, "transform": "template"})
