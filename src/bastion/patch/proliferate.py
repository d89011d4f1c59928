"""Wrapper -> many labelled variants: the training data of a patch.

Restricted variants put the constitution's seed requests (never the red-team targets, which
measure the patch) in the wrapper. Benign contrasts put benign seed prompts in the same
wrapper, labelled benign, so the patch learns the request under the wrapper rather than the
wrapper itself: that is what keeps benign refusals where they were. A share of each gets a
non-held-out transform on the request first (combinations of the observed strategy with
known disguises).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from bastion.constitution import Constitution
from bastion.data.records import Example
from bastion.data.seeds import load_seeds
from bastion.data.splits import SplitManifest, load_manifest
from bastion.data.transforms import TRANSFORMS, Transform
from bastion.patch.wrapper import Wrapper


def combinable(manifest: SplitManifest) -> list[Transform]:
    """Transforms that may disguise a request inside a wrapper (held-out families measure, never train)."""
    return [t for t in TRANSFORMS if t.family not in manifest.heldout_transform_families]


def proliferate(wrappers: Sequence[Wrapper], constitution: Constitution, *, per_label: int = 400,
                combine_rate: float = 0.3, seed: int = 0, manifest: SplitManifest | None = None) -> list[Example]:
    """`per_label` restricted and `per_label` benign variants, spread over the wrappers."""
    manifest = manifest or load_manifest()
    seeds = [e for e in load_seeds(constitution) if e.prompt is not None]
    pools = {1: [e for e in seeds if e.label == 1], 0: [e for e in seeds if e.label == 0]}
    transforms = combinable(manifest)
    rng = random.Random(seed)
    out: list[Example] = []
    for label, pool in pools.items():
        for k, request in enumerate(rng.sample(pool, min(per_label, len(pool)))):
            wrapper = wrappers[k % len(wrappers)]
            text, tag = request.prompt or "", "patch"
            if rng.random() < combine_rate:
                chosen = transforms[rng.randrange(len(transforms))]
                text, tag = str(chosen.apply_text(text, rng)), f"patch+{chosen.id}"
            out.append(Example(id=f"patch:{request.id}", messages=wrapper.apply(text), label=label,
                               categories=request.categories, source="patch", transform=tag, group=request.id))
    return out
