"""Every registered Transform is an attack, and so are chosen pairs of them.

Reusing the transforms keeps augmentation and attack in one place: the transform that
training applies to its data is exactly the disguise the red team measures, and the
manifest's held-out families are held out in both.
"""

from __future__ import annotations

from bastion.data.records import Example
from bastion.data.transforms import TRANSFORMS, Transform, combine
from bastion.redteam.attacks.base import ATTACKS, Attack, manifest
from bastion.redteam.targets import Target

# (first, second): the first disguise is wrapped by the second. Three pairs of seen
# transforms test whether disguises the guard knows one by one still work together; the rest
# pair a held-out step with a seen one.
PAIRS = [
    ("base64", "persona_roleplay"), ("leetspeak", "refusal_suppression"), ("homoglyph", "system_override"),
    ("caesar", "persona_roleplay"), ("research_pretext", "base64"), ("word_substitution", "fiction_frame"),
    ("authority_pretext", "zero_width"), ("fragment_reconstruction", "prefix_injection"),
    ("reverse_text", "answer_in_cipher"), ("fiction_frame", "variable_split"),
]


def as_attack(t: Transform) -> Attack:
    """An attack that applies one transform to the bare target question."""

    def build(target: Target) -> Example:
        return t(Example(id=target.id, prompt=target.text))

    heldout = manifest().is_heldout_transform(t.id)
    return Attack(t.id, t.family, heldout, build, t.doc or f"Apply {t.id.replace('+', ', then ')}.")


for _transform in list(TRANSFORMS):
    ATTACKS.add(_transform.id, as_attack(_transform))
for _first, _second in PAIRS:
    _pair = combine(TRANSFORMS.get(_first), TRANSFORMS.get(_second))
    ATTACKS.add(_pair.id, as_attack(_pair))
