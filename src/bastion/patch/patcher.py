"""Patch a guard: observed jailbreaks -> proliferations -> anchored refits -> new artifact.

Only the heads that decide (`any`, and categories with a threshold in the constitution) are
refitted; the category heads that name a flagged request's category stay the parent's.
Stage 1 is refitted, and so are stage 2's heads over the parent's hidden units (its encoder
and hidden layer stay): in the cascade's band the combination is mostly stage 2's, so a
stage-1 patch alone cannot turn its verdicts. The cascade's band and weight and the output
classifier are the parent's, unchanged. A fifth of the proliferations (by seed request) is
held out of the refit to report the patch's effect. Thresholds are recalibrated so each head
flags the same share of the replay set's benign calibration records as the parent did, by
shifting the head's intercept (so the parent's thresholds and cascade band keep their
meaning); stage 2's intercepts shift so the combination does the same.

The wrappers themselves are kept with the guard (`bastion.guard.wrappers`): an input that
carries one is also read with the wrapper cut away, its request held to a stricter threshold.
The parent's segment threshold (`bastion.guard.segments`) is kept: it is a calibrated score,
and recalibration keeps the scale of the patched guard's scores on benign traffic.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bastion.data.records import Example
from bastion.guard.guard import BUNDLED, Guard, bundled_path
from bastion.guard.wrappers import MIN_MATCH, KnownWrappers
from bastion.models.artifacts import sha256_file
from bastion.models.encoder_stage import EncoderStage
from bastion.models.linear import NgramLinearClassifier
from bastion.patch.lineage import parent_record
from bastion.patch.proliferate import proliferate
from bastion.patch.refit import anchored_head_refit, anchored_refit
from bastion.patch.replay import Replay, load_replay, save_with_replay, seed_replay
from bastion.patch.wrapper import Wrapper, infer_wrappers, read_jailbreaks
from bastion.training import targets_for

Progress = Callable[[str], None]
PAYLOAD_SAMPLE = 1000  # benign calibration records the payload threshold is set on


class PatchConfig(BaseModel):
    """Everything that decides a patch (recorded in the patched manifest)."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    per_label: int = Field(default=400, ge=10, description="Restricted variants, and as many benign contrasts.")
    combine_rate: float = Field(default=0.3, ge=0, le=1, description="Share of variants with a transform on the request.")
    holdout: float = Field(default=0.2, ge=0, lt=1, description="Share of variants kept out of the refit to measure it.")
    C: float = Field(default=1.0, gt=0, description="Loss weight against the pull to the parent's weights: "
                     "low keeps the replay set where the parent had it.")
    variant_weight: float = Field(default=60.0, gt=0, description="Weight of a restricted variant beside a replay record.")
    benign_weight: float = Field(default=0.2, gt=0, description="Weight of a benign contrast beside a replay record: "
                                 "they carry the wrapper's wording too, and at full weight teach that it is benign.")
    payload_fpr: float = Field(default=0.05, gt=0, lt=0.5, description="A request found inside a known wrapper is "
                               "flagged at the score that flags this share of benign calibration requests (stricter "
                               "than everyday traffic's threshold): arriving in a known jailbreak is evidence of intent.")
    wrapper_match: float = Field(default=MIN_MATCH, gt=0, le=1, description="Share of a wrapper's word trigrams an input must "
                                 "carry to be read as that wrapper.")
    stage2_replay: int = Field(default=3000, ge=0, description="Replay records stage 2's refit reads beside the "
                               "variants (embedding them is the patch's slowest step); 0 keeps the parent's stage 2.")


@dataclass
class Patched:
    """A patched guard, the replay set it was refitted on, and its manifest sections."""

    guard: Guard
    replay: Replay
    extra: dict[str, Any]

    def save(self, directory: Path) -> None:
        save_with_replay(self.guard, directory, self.extra, self.replay)


def guard_dir(name_or_path: str | Path) -> Path:
    return bundled_path(str(name_or_path)) if str(name_or_path) in BUNDLED else Path(name_or_path)


def patch_guard(parent_path: str | Path, jailbreaks: Sequence[Path], config: PatchConfig | None = None,
                progress: Progress = lambda _: None) -> Patched:
    """Patch the guard at `parent_path` against the jailbreaks in `jailbreaks` (text or JSONL files)."""
    config = config or PatchConfig()
    started = time.perf_counter()
    directory = guard_dir(parent_path)
    parent = Guard.load(directory)
    # A patch scores the replay set's calibration records several times: embed each text once.
    with parent.stage2.model.remembering() if parent.stage2 is not None else contextlib.nullcontext():
        return _patch(parent, directory, jailbreaks, config, progress, started)


def _patch(parent: Guard, directory: Path, jailbreaks: Sequence[Path], config: PatchConfig, progress: Progress,
           started: float) -> Patched:
    observed = read_jailbreaks(jailbreaks)
    wrappers = infer_wrappers(observed, parent)
    progress(f"{len(observed)} observed jailbreak(s) -> {len(wrappers)} wrapper(s)")
    replay = load_replay(directory, parent.manifest)
    if replay is None:
        progress(f"{directory} carries no replay set; building one from the seed corpus")
        replay = seed_replay(parent.constitution, config.seed)
    variants = proliferate(wrappers, parent.constitution, per_label=config.per_label,
                           combine_rate=config.combine_rate, seed=config.seed)
    variants = _without_refused_contrasts(parent, variants)
    train, held = _hold_out(variants, config)
    progress(f"refitting stage 1 on {len(replay['train'])} replay records + {len(train)} variants")
    stage1 = _refit(parent, replay["train"], train, config)
    calibration = parent.texts(replay["calibration"])
    thresholds = matched_thresholds(parent.stage1.decision_function(calibration), parent.thresholds,
                                    stage1.decision_function(calibration))
    # Shift each head so its new threshold is the parent's: the cascade's band and weights are in
    # the parent's logit scale, and stay valid.
    stage1.set_weights(stage1.coef_, stage1.intercept_ - (thresholds - parent.thresholds))
    stage2 = parent.stage2
    if stage2 is not None and stage2.head is not None and parent.cascade is not None and config.stage2_replay:
        progress(f"refitting stage 2's heads on {min(config.stage2_replay, len(replay['train']))} replay records "
                 f"+ {len(train)} variants")
        stage2 = _refit_stage2(parent, stage1, replay, train, config)
    guard = Guard(parent.constitution, stage1, parent.thresholds, stage2=stage2, cascade=parent.cascade,
                  output_stage=parent.output_stage, output_thresholds=parent.output_thresholds,
                  normalizer=parent.normalizer, constitution_text=parent.constitution_text,
                  segment_reading=parent.segment_reading)
    guard.wrappers = _known_wrappers(parent, wrappers, guard, replay["calibration"], config)
    progress("measuring before and after on held-out variants and benign calibration records")
    metrics = {"before": measure(parent, held, replay["calibration"]), "after": measure(guard, held, replay["calibration"])}
    lineage: dict[str, Any] = {
        "parent": parent_record(directory),
        "generation": parent.manifest.get("lineage", {}).get("generation", 0) + 1,
        "inputs": [{"file": str(p), "sha256": sha256_file(p)} for p in jailbreaks],
        "jailbreaks": len(observed),
        "variants": {"train": len(train), "held_out": len(held),
                     "restricted": sum(e.label == 1 for e in variants), "benign": sum(e.label == 0 for e in variants)},
        "config": config.model_dump(),
        "metrics": metrics,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if (metrics["after"]["pass_through"] or 0) > (metrics["before"]["pass_through"] or 0):
        lineage["warning"] = ("the patched guard lets more held-out variants through than its parent "
                              "(the parent already stopped most of them); keep the parent")
    return Patched(guard, replay, {"training": parent.manifest.get("training", {}), "lineage": lineage})


def _known_wrappers(parent: Guard, wrappers: Sequence[Wrapper], guard: Guard, benign: Sequence[Example],
                    config: PatchConfig) -> KnownWrappers:
    """The parent's known wrappers and these, the payload threshold set on the patched guard's
    scores of a sample of benign calibration records (a 5% quantile needs no more)."""
    texts = [*(t.text for t in (parent.wrappers.templates if parent.wrappers else ())),
             *parent.texts([Example(messages=list(w.turns)) for w in wrappers])]
    sample = random.Random(config.seed).sample(list(benign), min(len(benign), PAYLOAD_SAMPLE))
    scores = np.array([v.score for v in guard.score_examples(sample)]) if sample else np.array([0.5])
    threshold = min(float(np.quantile(scores, 1.0 - config.payload_fpr)), 0.5)
    return KnownWrappers.from_texts(texts, max(threshold, 1e-3), config.wrapper_match)


def _without_refused_contrasts(parent: Guard, variants: list[Example]) -> list[Example]:
    """Drop benign contrasts the parent already flags: the wrapper reads as a jailbreak to it, and
    teaching otherwise would undo that detection rather than preserve benign traffic."""
    contrasts = [e for e in variants if e.label == 0]
    refused = {id(e) for e, v in zip(contrasts, parent.score_examples(contrasts), strict=True) if v.flagged}
    return [e for e in variants if id(e) not in refused]


def _hold_out(variants: list[Example], config: PatchConfig) -> tuple[list[Example], list[Example]]:
    """Split by seed request, so no held-out request was seen under any wrapper."""
    groups = sorted({e.group or "" for e in variants})
    held_groups = set(random.Random(config.seed).sample(groups, int(len(groups) * config.holdout)))
    return [e for e in variants if e.group not in held_groups], [e for e in variants if e.group in held_groups]


def _weights(replay: Sequence[Example], variants: Sequence[Example], config: PatchConfig) -> np.ndarray:
    return np.array([1.0] * len(replay) + [config.variant_weight if e.label else config.benign_weight for e in variants])


def _refit(parent: Guard, replay: Sequence[Example], variants: Sequence[Example], config: PatchConfig) -> NgramLinearClassifier:
    records = [*replay, *variants]
    features = parent.stage1.features(parent.texts(records))
    return anchored_refit(parent.stage1, features, targets_for(records, parent.stage1.heads),
                          _weights(replay, variants, config), config.C, parent.deciding)


def _refit_stage2(parent: Guard, stage1: NgramLinearClassifier, replay: Replay, variants: Sequence[Example],
                  config: PatchConfig) -> EncoderStage:
    """Stage 2's heads refitted on a replay sample + the variants, then shifted so the combined
    logits flag the share of benign calibration records the parent's did."""
    old, cascade = parent.stage2, parent.cascade
    assert old is not None and old.head is not None and cascade is not None  # checked by the caller
    sample = random.Random(config.seed).sample(replay["train"], min(config.stage2_replay, len(replay["train"])))
    records = [*sample, *variants]
    hidden = old.head.features(old.model.run(parent.texts(records)))
    head = anchored_head_refit(old.head, hidden, targets_for(records, old.heads), _weights(sample, variants, config),
                               config.C, parent.deciding)
    calibration = parent.texts(replay["calibration"])
    embeddings = old.model.run(calibration)
    before = cascade.combine(parent.stage1.decision_function(calibration), old.head(embeddings))
    after = cascade.combine(stage1.decision_function(calibration), head(embeddings))
    limits = np.asarray(cascade.thresholds, dtype=np.float32)
    shift = (matched_thresholds(before, limits, after) - limits) / max(1.0 - cascade.weight, 1e-3)
    return old.with_head(dataclasses.replace(head, intercept=(head.intercept - shift).astype(np.float32)))


def matched_thresholds(parent_logits: np.ndarray, parent_thresholds: np.ndarray, new_logits: np.ndarray) -> np.ndarray:
    """Per head, the new threshold that flags the share of these benign rows the parent flagged."""
    rates = (parent_logits >= parent_thresholds).mean(axis=0)
    return np.array([np.quantile(new_logits[:, k], 1.0 - rate, method="higher") + 1e-6
                     for k, rate in enumerate(rates)], dtype=np.float32)


def measure(guard: Guard, held: Sequence[Example], benign: Sequence[Example]) -> dict[str, Any]:
    """Pass-through on held-out restricted variants; flag rate on benign contrasts and benign calibration records."""
    def flagged(rows: Sequence[Example]) -> float | None:
        return round(float(np.mean([v.flagged for v in guard.score_examples(rows)])), 4) if rows else None

    restricted = [e for e in held if e.label == 1]
    contrasts = [e for e in held if e.label == 0]
    caught = flagged(restricted)
    return {"pass_through": None if caught is None else round(1.0 - caught, 4), "restricted": len(restricted),
            "benign_contrast_fpr": flagged(contrasts), "benign_contrasts": len(contrasts),
            "benign_fpr": flagged(benign), "benign": len(benign)}
