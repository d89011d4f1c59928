"""The Guard: constitution + normalizer + scoring stages + calibrated thresholds.

This is the runtime object users hold. It is immutable after loading and keeps no
per-request state, so one instance is safe to share across threads; the async variants run
the same work in a worker thread so an event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from bastion import __version__
from bastion.constitution import Constitution, parse
from bastion.data.normalizer import Normalizer
from bastion.data.records import Example, Kind, Message, render
from bastion.errors import ArtifactError
from bastion.guard.reassembly import reassemble
from bastion.guard.segments import SegmentReading, segments
from bastion.guard.stream import StreamMonitor
from bastion.guard.verdict import Verdict
from bastion.guard.wrappers import KnownWrappers
from bastion.models.artifacts import load_arrays, read_manifest, save_artifact, verified_path
from bastion.models.calibration import calibrated_scores, logit
from bastion.models.cascade import CascadeParams
from bastion.models.embedding_head import EmbeddingHead
from bastion.models.encoder_stage import HEAD_FILE, EncoderStage
from bastion.models.features import NgramHasher
from bastion.models.linear import ANY, NgramLinearClassifier

CONSTITUTION_FILE = "constitution.yaml"
STAGE1_FILE = "stage1.npz"
OUTPUT_FILE = "output.npz"
BUNDLED = {"default"}

MessagesLike = str | Sequence[Message | dict[str, Any]]


def bundled_path(name: str) -> Path:
    return Path(str(resources.files("bastion") / "guards" / name))


def as_example(messages: MessagesLike, response: str | None) -> Example:
    if isinstance(messages, str):
        return Example(prompt=messages, response=response)
    return Example(messages=[Message.model_validate(m) for m in messages], response=response)


class Guard:
    """Screens conversations against a constitution. Build with `Guard.load`."""

    def __init__(self, constitution: Constitution, stage1: NgramLinearClassifier, thresholds: np.ndarray,
                 *, stage2: EncoderStage | None = None, cascade: CascadeParams | None = None,
                 output_stage: NgramLinearClassifier | None = None, output_thresholds: np.ndarray | None = None,
                 normalizer: Normalizer | None = None, manifest: dict[str, Any] | None = None,
                 constitution_text: str | None = None, wrappers: KnownWrappers | None = None,
                 segment_reading: SegmentReading | None = None) -> None:
        if (stage2 is None) != (cascade is None):
            raise ValueError("a stage-2 model and cascade parameters come together")
        self.constitution = constitution
        self.stage1 = stage1
        self.stage2 = stage2
        self.cascade = cascade
        self.thresholds = np.asarray(thresholds, dtype=np.float32)
        self.cascade_thresholds = np.asarray(cascade.thresholds if cascade else thresholds, dtype=np.float32)
        if (output_stage is None) != (output_thresholds is None):
            raise ValueError("an output classifier and its thresholds come together")
        self.output_stage = output_stage
        self.output_thresholds = None if output_thresholds is None else np.asarray(output_thresholds, dtype=np.float32)
        self.normalizer = normalizer or Normalizer()
        self.manifest = manifest or {}
        self.constitution_text = constitution_text
        self.wrappers = wrappers
        self.segment_reading = segment_reading
        input_only = {c.id for c in constitution.restricted if c.input_only}
        self._output_heads = np.array([h not in input_only for h in stage1.heads])
        self._deciding = np.array([h == ANY for h in stage1.heads])
        for category in constitution.restricted:
            if category.threshold is not None and category.id in stage1.heads:
                k = stage1.heads.index(category.id)
                self.thresholds[k] = self.cascade_thresholds[k] = logit(category.threshold)
                self._deciding[k] = True

    # -- loading and saving ------------------------------------------------------------

    @classmethod
    def load(cls, name_or_path: str | Path = "default", *, threads: int | None = None) -> Guard:
        """Load a bundled guard by name (`default`) or an artifact directory.

        `threads` caps ONNX Runtime's intra-op threads for stage 2 (default: its own choice,
        the physical cores); fix it when results must match across machines or engines.
        """
        path = bundled_path(str(name_or_path)) if str(name_or_path) in BUNDLED else Path(name_or_path)
        manifest = read_manifest(path)
        constitution_text = verified_path(path, manifest, CONSTITUTION_FILE).read_text(encoding="utf-8")
        constitution = parse(constitution_text, str(path / CONSTITUTION_FILE))
        if constitution.content_hash() != manifest.get("constitution", {}).get("hash"):
            raise ArtifactError(f"{path}: constitution does not match the hash recorded in the manifest")
        try:
            stage = manifest["stages"][0]
            model = NgramLinearClassifier(stage["heads"], hasher=NgramHasher.from_dict(stage["hasher"]))
            weights = load_arrays(path, manifest, stage["weights"])
            model.set_weights(weights["coef"].astype(np.float32), weights["intercept"])
            thresholds = np.array([manifest["thresholds"][h] for h in model.heads], dtype=np.float32)
            normalizer = Normalizer(**manifest.get("normalizer", {}))
            stage2, cascade = _load_stage2(path, manifest, threads)
            output_stage, output_thresholds = _load_output(path, manifest)
            wrappers = KnownWrappers.from_dict(manifest["known_wrappers"]) if "known_wrappers" in manifest else None
            reading = SegmentReading.from_dict(manifest["segment_reading"]) if "segment_reading" in manifest else None
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{path}: manifest is incomplete or inconsistent ({exc!r})") from exc
        return cls(constitution, model, thresholds, stage2=stage2, cascade=cascade, output_stage=output_stage,
                   output_thresholds=output_thresholds, normalizer=normalizer, manifest=manifest,
                   constitution_text=constitution_text, wrappers=wrappers, segment_reading=reading)

    def save(self, directory: Path, extra: dict[str, Any] | None = None, attachments: dict[str, Path] | None = None) -> None:
        """Write this guard as an artifact directory (atomically); `attachments` are extra files (the replay set)."""
        manifest = {
            "bastion_version": __version__,
            "constitution": {"name": self.constitution.name, "version": self.constitution.version,
                             "hash": self.constitution.content_hash()},
            "normalizer": {"max_depth": self.normalizer.max_depth,
                           "max_segment_chars": self.normalizer.max_segment_chars,
                           "casefold": self.normalizer.casefold},
            "stages": [{"name": "stage1", "type": "ngram_linear", "heads": self.stage1.heads,
                        "hasher": self.stage1.hasher.to_dict(), "weights": STAGE1_FILE,
                        "params": self.stage1.get_params()}],
            "thresholds": {h: float(t) for h, t in zip(self.stage1.heads, self.thresholds, strict=True)},
            "target_fpr": self.constitution.operating_point.target_fpr,
            **(extra or {}),
        }
        copies: dict[str, Path] = dict(attachments or {})
        arrays = {STAGE1_FILE: {"coef": self.stage1.coef_.astype(np.float16), "intercept": self.stage1.intercept_}}
        if self.stage2 is not None and self.cascade is not None:
            manifest["stages"].append(self.stage2.manifest_entry())
            manifest["cascade"] = self.cascade.model_dump()
            copies.update(self.stage2.files())
            if self.stage2.head is not None:
                arrays[HEAD_FILE] = self.stage2.head.arrays()
        if self.output_stage is not None and self.output_thresholds is not None:
            manifest["stages"].append({"name": "output", "type": "ngram_linear", "heads": self.output_stage.heads,
                                       "hasher": self.output_stage.hasher.to_dict(), "weights": OUTPUT_FILE,
                                       "params": self.output_stage.get_params()})
            manifest["output_thresholds"] = dict(zip(self.output_stage.heads, map(float, self.output_thresholds), strict=True))
            arrays[OUTPUT_FILE] = {"coef": self.output_stage.coef_.astype(np.float16), "intercept": self.output_stage.intercept_}
        if self.wrappers is not None:
            manifest["known_wrappers"] = self.wrappers.to_dict()
        if self.segment_reading is not None:
            manifest["segment_reading"] = self.segment_reading.to_dict()
        text = self.constitution_text or _yaml_of(self.constitution)
        save_artifact(directory, manifest, arrays, {CONSTITUTION_FILE: text}, copies)

    # -- scoring -----------------------------------------------------------------------

    def texts(self, examples: Sequence[Example], kind: Kind = "input") -> list[str]:
        """What the classifiers read: the rendered record after normalisation."""
        return [self.normalizer(render(e, kind)) for e in examples]

    def scores(self, examples: Sequence[Example], kind: Kind = "input") -> tuple[np.ndarray, list[str]]:
        """Calibrated per-head scores, shaped (n, n_heads), and the stage that decided each row.

        0.5 is every head's threshold. Rows in the cascade's uncertain band are rescored with
        the combined logits of both stages; the rest keep stage 1's verdict.
        """
        if not examples:
            return np.zeros((0, len(self.stage1.heads)), dtype=np.float32), []
        texts = self.texts(examples, kind)
        if kind != "input" and self.output_stage is not None:
            return self.output_scores(self.output_stage.decision_function(texts)), ["output"] * len(texts)
        scores, stages = self._cascade_scores(texts, kind)
        if kind == "input":
            self._rescore_latest_turns(examples, scores, stages)
            self._rescore_unwrapped(texts, scores, stages)
            self._rescore_segments(examples, scores, stages)
            self._rescore_reassembled(examples, scores, stages)
        return scores, stages

    def _rescore_latest_turns(self, examples: Sequence[Example], scores: np.ndarray, stages: list[str]) -> None:
        """Score the latest user turn of a multi-turn input on its own too; the higher verdict stands.

        Read with the whole conversation, a harmful final request is diluted by benign early
        turns, which is what Crescendo-style escalation scripts exploit. Alone, it is read as
        if asked directly; context can still raise a score (the conversation's own verdict
        stays when it is the higher one), but it can no longer hide a request.
        """
        multi = [i for i, e in enumerate(examples) if sum(m.role == "user" for m in e.conversation()) > 1]
        if not multi:
            return
        latest = [Example(prompt=examples[i].last_user_text()) for i in multi]
        alone, alone_stages = self._cascade_scores(self.texts(latest), "input")
        self._keep_higher(scores, stages, multi, alone, alone_stages)

    def _rescore_unwrapped(self, texts: Sequence[str], scores: np.ndarray, stages: list[str]) -> None:
        """Score the request inside a known jailbreak wrapper on its own, at the wrappers' stricter threshold."""
        if self.wrappers is None:
            return
        found = [(i, payload) for i, text in enumerate(texts) if (payload := self.wrappers.unwrap(text)) is not None]
        if not found:
            return
        alone, _ = self._cascade_scores([f"[user] {payload}" for _, payload in found], "input")
        self._keep_higher(scores, stages, [i for i, _ in found], self.wrappers.rescale(alone), ["wrapper"] * len(found))

    def _rescore_segments(self, examples: Sequence[Example], scores: np.ndarray, stages: list[str]) -> None:
        """Score each sentence of a long user message on its own too, at the segment threshold.

        Inputs already flagged are skipped: a second reading can only raise their score, and
        long jailbreak templates, which the whole reading flags, are where sentences are many.
        """
        if self.segment_reading is None:
            return
        pending = [i for i in range(len(examples)) if scores[i, self._deciding].max() < 0.5]
        rows, best = self.best_segment_scores([examples[i] for i in pending])
        self._keep_higher(scores, stages, [pending[r] for r in rows], self.segment_reading.rescale(best),
                          ["segment"] * len(rows))

    def _rescore_reassembled(self, examples: Sequence[Example], scores: np.ndarray, stages: list[str]) -> None:
        """Score a request the input spells out in pieces as if it were asked directly (`reassembly`)."""
        owners: list[int] = []
        found: list[Example] = []
        for i, example in enumerate(examples):
            if scores[i, self._deciding].max() < 0.5:
                pieces = reassemble([m.content for m in example.conversation() if m.role == "user"])
                owners += [i] * len(pieces)
                found += [Example(prompt=p) for p in pieces]
        if found:
            alone, _ = self._cascade_scores(self.texts(found), "input")
            self._keep_higher(scores, stages, owners, alone, ["reassembled"] * len(found))

    def best_segment_scores(self, examples: Sequence[Example]) -> tuple[list[int], np.ndarray]:
        """The examples that have a long user message, and the per-head scores of each one's highest-scoring sentence."""
        owners: list[int] = []
        texts: list[str] = []
        for i, example in enumerate(examples):
            for message in example.conversation():
                if message.role == "user":
                    found = segments(self.normalizer(message.content))
                    owners += [i] * len(found)
                    texts += [f"[user] {s}" for s in found]
        if not texts:
            return [], np.zeros((0, len(self.stage1.heads)), dtype=np.float32)
        scores, _ = self._cascade_scores(texts, "input")
        top = scores[:, self._deciding].max(axis=1)
        best: dict[int, int] = {}
        for k, i in enumerate(owners):
            if i not in best or top[k] > top[best[i]]:
                best[i] = k
        return list(best), scores[list(best.values())]

    def _keep_higher(self, scores: np.ndarray, stages: list[str], rows: Sequence[int], other: np.ndarray,
                     other_stages: Sequence[str]) -> None:
        """Where a second reading of row `rows[k]` (`other[k]`) scores higher on the deciding heads, it stands."""
        for k, i in enumerate(rows):
            if other[k, self._deciding].max() > scores[i, self._deciding].max():
                scores[i], stages[i] = other[k], other_stages[k]

    def _cascade_scores(self, texts: Sequence[str], kind: Kind, use_stage2: bool = True) -> tuple[np.ndarray, list[str]]:
        """Stage 1, and stage 2 on its uncertain band (when the guard has one and `use_stage2`)."""
        stage1 = self.stage1.decision_function(texts)
        scores = calibrated_scores(stage1, self.thresholds)
        stages = ["stage1"] * len(texts)
        if use_stage2 and self.stage2 is not None and self.cascade is not None:
            escalated = np.flatnonzero(self.cascade.escalate(stage1[:, 0], word_counts(texts)))
            if len(escalated):
                stage2 = self.stage2.decision_function([texts[i] for i in escalated])
                combined = self.cascade.combine(stage1[escalated], stage2)
                scores[escalated] = calibrated_scores(combined, self.cascade_thresholds)
                for i in escalated:
                    stages[i] = "stage2"
        if kind != "input":
            scores[:, ~self._output_heads] = 0.0
        return scores, stages

    def output_scores(self, logits: np.ndarray) -> np.ndarray:
        """Output-classifier logits as calibrated scores on the input heads (input-only heads at 0)."""
        if self.output_stage is None or self.output_thresholds is None:
            raise ValueError("this guard has no output classifier")
        scores = calibrated_scores(np.atleast_2d(logits), self.output_thresholds)
        out = np.zeros((len(scores), len(self.stage1.heads)), dtype=np.float32)
        for k, head in enumerate(self.output_stage.heads):
            out[:, self.stage1.heads.index(head)] = scores[:, k]
        return out

    def window_verdict(self, example: Example, *, use_stage2: bool = True) -> Verdict:
        """The stream monitor's window check of an exchange, read through the full normaliser.

        The output classifier scores the exchange and, when the guard has stage 2 and
        `use_stage2`, the input cascade (stage 2 on stage 1's uncertain band) scores the
        response alone: read with the prompt, it flags refusals of harmful requests for the
        prompt's sake. Either can halt, so the higher score decides. Without an output
        classifier the cascade alone scores the exchange, as `check` does.
        """
        if self.output_stage is None:
            scores, stages = self._cascade_scores(self.texts([example], "exchange"), "exchange", use_stage2)
            return self.verdict_of(scores[0], stages[0])
        logits = self.output_stage.decision_function(self.texts([example], "exchange"))
        verdict = self.verdict_of(self.output_scores(logits)[0], "output")
        if use_stage2 and self.stage2 is not None:
            scores, stages = self._cascade_scores(self.texts([example], "output"), "output")
            verdict = max(verdict, self.verdict_of(scores[0], stages[0]), key=lambda v: v.score)
        return verdict

    def score_examples(self, examples: Sequence[Example], kind: Kind = "input") -> list[Verdict]:
        """One Verdict per example, scored as a batch."""
        scores, stages = self.scores(examples, kind)
        return [self.verdict_of(row, stage) for row, stage in zip(scores, stages, strict=True)]

    def verdict_of(self, row: np.ndarray, stage: str) -> Verdict:
        heads = self.stage1.heads
        categories = {h: round(float(s), 6) for h, s in zip(heads, row, strict=True) if h != ANY}
        top = max(categories, key=categories.__getitem__) if categories else None
        score = float(row[self._deciding].max())
        return Verdict(score=round(score, 6), flagged=score >= 0.5, category=top,
                       categories=categories, stage=stage)

    def check(self, messages: MessagesLike, response: str | None = None) -> Verdict:
        """Verdict on a prompt or conversation; with `response`, on the exchange."""
        kind: Kind = "input" if response is None else "exchange"
        return self.score_examples([as_example(messages, response)], kind)[0]

    async def acheck(self, messages: MessagesLike, response: str | None = None) -> Verdict:
        return await asyncio.to_thread(self.check, messages, response)

    def monitor(self, messages: MessagesLike, **options: Any) -> StreamMonitor:
        """A monitor for the response to `messages`: `feed(delta) -> Verdict`, `released`, `close()`.

        `options` are StreamMonitor's: every_chars, hold_back, window_chars, recheck_chars,
        smoothing, use_stage2.
        """
        return StreamMonitor(self, as_example(messages, None).conversation(), **options)

    @property
    def deciding(self) -> np.ndarray:
        """Mask of the heads whose score decides a verdict (`any` and explicitly thresholded categories)."""
        return self._deciding.copy()

    @property
    def refusal_message(self) -> str:
        return self.constitution.refusal_message

    def __repr__(self) -> str:
        return (f"Guard(constitution={self.constitution.name!r}, heads={len(self.stage1.heads)}, "
                f"stage1={self.stage1!r}, stage2={self.stage2!r})")


def word_counts(texts: Sequence[str]) -> np.ndarray:
    """Words per text, as the cascade's short-input rule counts them."""
    return np.array([len(t.split()) for t in texts])


def _load_stage2(path: Path, manifest: dict[str, Any], threads: int | None) -> tuple[EncoderStage | None, CascadeParams | None]:
    """The optional stage-2 model and cascade parameters of an artifact."""
    entries = [s for s in manifest["stages"] if s.get("name") == "stage2"]
    if not entries:
        return None, None
    entry = entries[0]
    head = None
    if "head" in entry:
        head = EmbeddingHead.from_arrays(load_arrays(path, manifest, entry["head"]))
    stage2 = EncoderStage(entry["heads"], verified_path(path, manifest, entry["model"]),
                          verified_path(path, manifest, entry["tokenizer"]),
                          max_tokens=int(entry["max_tokens"]), head_tokens=int(entry["head_tokens"]), head=head,
                          threads=threads)
    return stage2, CascadeParams.model_validate(manifest["cascade"])


def _load_output(path: Path, manifest: dict[str, Any]) -> tuple[NgramLinearClassifier | None, np.ndarray | None]:
    """The optional exchange (output) classifier of an artifact."""
    entries = [s for s in manifest["stages"] if s.get("name") == "output"]
    if not entries:
        return None, None
    entry = entries[0]
    model = NgramLinearClassifier(entry["heads"], hasher=NgramHasher.from_dict(entry["hasher"]))
    weights = load_arrays(path, manifest, entry["weights"])
    model.set_weights(weights["coef"].astype(np.float32), weights["intercept"])
    return model, np.array([manifest["output_thresholds"][h] for h in model.heads], dtype=np.float32)


def _yaml_of(constitution: Constitution) -> str:
    import yaml

    return yaml.safe_dump(json.loads(constitution.model_dump_json()), sort_keys=False, allow_unicode=True)
