"""Constitution -> corpus -> stage-1 guard: the reproducible training recipe.

`build_corpus` gathers the seed corpus (and the trainable part of the development pool
when it is available), clusters near-duplicates into groups and splits by group per the
committed manifest. `train_guard` augments the training split only, fits stage 1, and
calibrates thresholds on benign calibration records it never trained on. The test split
is only ever read by evaluation.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from bastion.constitution import Constitution
from bastion.data.dedup import near_duplicates_of
from bastion.data.generation import expand
from bastion.data.jsonl import read_examples
from bastion.data.records import Example, render
from bastion.data.seeds import load_seeds
from bastion.data.sources import SOURCES, load_source
from bastion.data.splits import Split, SplitManifest, assign_groups, assign_splits, check_trainable, load_manifest
from bastion.data.transforms import TRANSFORMS
from bastion.errors import ArtifactError, ConfigError, DataUnavailableError
from bastion.guard.guard import Guard, word_counts
from bastion.guard.segments import calibrate_segment_reading
from bastion.models.calibration import head_thresholds
from bastion.models.cascade import CascadeParams, fit_cascade
from bastion.models.embedding_head import fit_embedding_head
from bastion.models.encoder_stage import ENCODER_FILE, MODEL_FILE, TOKENIZER_FILE, EncoderStage
from bastion.models.features import NgramHasher
from bastion.models.linear import ANY, MISSING, NgramLinearClassifier
from bastion.models.prefix_loss import OutputLoss, fit_sequence_head

Progress = Callable[[str], None]
EMBED_MAX_TOKENS, EMBED_HEAD_TOKENS = 256, 64


class TrainConfig(BaseModel):
    """Everything that decides a trained guard (recorded in its manifest)."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 13
    use_dev_pool: bool = Field(default=True, description="Add trainable development-pool sources when present.")
    template_expansions: int = Field(default=2, ge=0, description="Template variants per seed prompt.")
    transform_rate: float = Field(default=0.35, ge=0.0, le=1.0, description="Share of train records given a transform.")
    C: float = Field(default=16.0, gt=0)
    n_features: int = Field(default=2**18, ge=2**10)
    positive_weight: float = Field(default=1.0, gt=0)
    stage2: Literal["none", "embed", "finetune", "reuse"] = Field(
        default="none",
        description="none; embed: linear heads on the frozen encoder; finetune the encoder (needs bastion[train]); "
                    "reuse `stage2_from`'s model.")
    stage2_C: float = Field(default=1.0, gt=0, description="Regularisation of the embed heads.")
    stage2_hidden: int = Field(default=128, ge=0, description="Hidden units per MLP member under the embed heads; "
                               "0 trains linear heads on the embeddings.")
    stage2_members: int = Field(default=3, ge=1, description="MLPs whose hidden units the embed heads share.")
    source_balance: bool = Field(default=True, description="Weight stage-2 training records by 1/sqrt(size of their "
                                 "source), so a few large template-expanded sources do not set the decision.")
    stage2_from: str | None = Field(default=None, description="Guard artifact whose stage-2 model `reuse` takes.")
    stage2_epochs: float = Field(default=1.0, gt=0)
    output_classifier: bool = Field(default=True, description="Also train the exchange (output) classifier.")
    output_loss: OutputLoss = Field(default="prefix_bce", description="How a response's prefixes share the output "
                                    "classifier's loss: prefix_bce, cumulative_max or softmax_window (M=16, tau=1).")
    seed_response_weight: float = Field(default=5.0, gt=0, description="Weight of our response seeds beside GPTFuzz's.")
    hh_weak_weight: float = Field(default=0.0, ge=0, description="Weight of HH-RLHF preference pairs as weak output "
                                  "labels (rejected = harmful); 0 leaves them out.")
    escalation_rate: float = Field(default=0.08, gt=0, lt=1, description="Share of benign traffic the cascade escalates.")
    short_words: int = Field(default=24, ge=0, description="Inputs of at most this many words always go to stage 2 "
                             "(short inputs are where hashed n-grams are weakest and stage 2 is cheapest); 0: none.")
    segment_rate: float = Field(default=0.005, ge=0, lt=0.5, description="Share of long benign calibration inputs that "
                                "reading sentence by sentence may flag (sets the segment threshold); 0: read inputs whole only.")


@dataclass
class Corpus:
    """Grouped, split records plus a manifest of where they came from."""

    splits: dict[Split, list[Example]]
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped_sources: dict[str, str] = field(default_factory=dict)

    def data_hash(self, split: Split) -> str:
        digest = hashlib.sha256()
        for e in sorted(self.splits[split], key=lambda x: x.id or ""):
            digest.update(f"{e.id}\t{e.label}\t{','.join(e.categories)}\t{render(e)}\n".encode())
        return digest.hexdigest()


def _text_hash(examples: Sequence[Example]) -> str:
    return hashlib.sha256("\n".join(render(e) for e in examples).encode("utf-8")).hexdigest()


def build_corpus(constitution: Constitution, data_dir: Path | None, *, use_dev_pool: bool = True,
                 extra: Sequence[Path] = (), exclude: Sequence[Path] = (), manifest: SplitManifest | None = None,
                 progress: Progress = lambda _: None) -> Corpus:
    """Seeds + (optionally) the development pool + extra JSONL files, grouped and split."""
    manifest = manifest or load_manifest()
    examples = list(load_seeds(constitution))
    sources: dict[str, dict[str, Any]] = {"seeds": {"licence": "Bastion (ours)", "count": len(examples), "sha256": _text_hash(examples)}}
    skipped: dict[str, str] = {}
    if use_dev_pool and constitution.name == "general":
        for name, source in SOURCES.items():
            if source.name == "hh_rlhf":
                continue
            try:
                rows = load_source(name, data_dir)
            except DataUnavailableError as exc:
                skipped[name] = str(exc)
                continue
            sources[name] = {"licence": source.licence, "trainable": source.trainable, "count": len(rows), "sha256": _text_hash(rows)}
            if not source.trainable:  # evaluation only: pinned to test through the manifest
                rows = [r for r in rows if r.source in manifest.pinned]
            examples.extend(rows)
            progress(f"loaded {name}: {len(rows)} records")
    for path in extra:
        rows = list(read_examples(path))
        sources[f"file:{path.name}"] = {"licence": "user", "count": len(rows), "sha256": _text_hash(rows)}
        examples.extend(rows)
    if exclude:
        references = [render(e) for p in exclude for e in read_examples(p)]
        keep = near_duplicates_of([render(e) for e in examples], references)
        progress(f"excluded {sum(keep)} records near-duplicate to {len(exclude)} evaluation file(s)")
        examples = [e for e, drop in zip(examples, keep, strict=True) if not drop]
    progress(f"clustering {len(examples)} records into near-duplicate groups")
    grouped = assign_groups(examples)
    return Corpus(splits=assign_splits(grouped, manifest), sources=sources, skipped_sources=skipped)


def augment(train: Sequence[Example], config: TrainConfig, manifest: SplitManifest) -> list[Example]:
    """Template expansions and non-held-out transforms, applied to benign and harmful alike."""
    seeds = [e for e in train if e.source.startswith("seed_")]
    out = list(train) + list(expand(seeds, config.template_expansions, config.seed))
    allowed = [t for t in TRANSFORMS if t.family not in manifest.heldout_transform_families]
    rng = random.Random(config.seed)
    for example in list(out):
        if rng.random() < config.transform_rate:
            out.append(allowed[rng.randrange(len(allowed))](example))
    return out


def targets_for(examples: Sequence[Example], heads: Sequence[str]) -> np.ndarray:
    """(n, heads) targets: `any` from the label, categories from `categories` (missing if unknown)."""
    targets = np.zeros((len(examples), len(heads)), dtype=np.int8)
    for i, e in enumerate(examples):
        targets[i, 0] = e.label
        if e.label == 1:
            if e.categories:
                targets[i, 1:] = [int(h in e.categories) for h in heads[1:]]
            else:
                targets[i, 1:] = MISSING
    return targets


def training_records(corpus: Corpus, config: TrainConfig, manifest: SplitManifest | None = None) -> list[Example]:
    """The augmented, labelled train split, checked free of test groups and held-out transforms."""
    manifest = manifest or load_manifest()
    test_groups = {e.group for e in corpus.splits["test"] if e.group}
    train = [e for e in augment(corpus.splits["train"], config, manifest) if e.label is not None]
    check_trainable(train, manifest, test_groups)
    return train


def train_guard(constitution: Constitution, corpus: Corpus, config: TrainConfig, *, constitution_text: str | None = None,
                manifest: SplitManifest | None = None, workdir: Path | None = None, data_dir: Path | None = None,
                responses: Sequence[Example] = (), progress: Progress = lambda _: None) -> Guard:
    """Fit stage 1 (and stage 2 when configured) on the train split; calibrate on the calibration split."""
    manifest = manifest or load_manifest()
    train = training_records(corpus, config, manifest)
    heads = [ANY, *constitution.category_ids]
    progress(f"training stage 1 on {len(train)} records ({Counter(e.label for e in train)[1]} restricted), {len(heads)} heads")
    model = NgramLinearClassifier(heads, hasher=NgramHasher(n_features=config.n_features), C=config.C,
                                  positive_weight=config.positive_weight, seed=config.seed)
    guard = Guard(constitution, model, np.zeros(len(heads)), constitution_text=constitution_text)
    train_texts = guard.texts(train)
    model.fit(train_texts, targets_for(train, heads))
    calibration = [e for e in corpus.splits["calibration"] if e.label is not None]
    labels = np.array([e.label for e in calibration])
    calibration_texts = guard.texts(calibration)
    progress(f"calibrating thresholds on {int(np.sum(labels == 0))} benign calibration records")
    stage1_logits = model.decision_function(calibration_texts)
    target = constitution.operating_point.target_fpr
    thresholds = head_thresholds(stage1_logits[labels == 0], target)
    output_stage, output_thresholds = (None, None)
    if config.output_classifier:
        try:
            output_stage, output_thresholds, _ = train_output_stage(constitution, data_dir, config, manifest, progress,
                                                                    responses)
        except DataUnavailableError as exc:
            progress(f"no output classifier: {exc}")
    outputs = {"output_stage": output_stage, "output_thresholds": output_thresholds}
    if config.stage2 == "none":
        guard = Guard(constitution, model, thresholds, constitution_text=constitution_text, **outputs)
    else:
        stage2, cascade = _stage2_and_cascade(heads, train, train_texts, stage1_logits, calibration_texts, labels,
                                              thresholds, target, config, workdir, progress)
        guard = Guard(constitution, model, thresholds, stage2=stage2, cascade=cascade,
                      constitution_text=constitution_text, **outputs)
    if config.segment_rate:
        progress("setting the segment threshold on long benign calibration inputs")
        guard.segment_reading = calibrate_segment_reading(guard, [e for e in calibration if e.label == 0],
                                                          config.segment_rate, config.seed)
    return guard


def _stage2_and_cascade(heads: Sequence[str], train: Sequence[Example], train_texts: Sequence[str],
                        stage1_logits: np.ndarray, calibration_texts: Sequence[str], labels: np.ndarray,
                        thresholds: np.ndarray, target: float, config: TrainConfig, workdir: Path | None,
                        progress: Progress) -> tuple[EncoderStage, CascadeParams]:
    """Stage 2 as configured, and the cascade's band, weight and thresholds chosen on calibration data."""
    if workdir is None:
        raise ValueError("training stage 2 needs a workdir for its model files")
    if config.stage2 == "reuse":
        stage2 = reused_stage2(config.stage2_from, heads)
    elif config.stage2 == "embed":
        stage2 = embed_stage2(heads, train_texts, targets_for(train, heads), config, workdir, progress,
                              source_weights(train) if config.source_balance else None)
    else:
        stage2 = train_stage2(heads, train_texts, targets_for(train, heads), config, workdir, progress)
    progress("choosing the cascade's band, weight and thresholds on calibration data")
    cascade = fit_cascade(stage1_logits, stage2.decision_function(calibration_texts), labels, thresholds,
                          target, config.escalation_rate, words=word_counts(calibration_texts),
                          short_words=config.short_words)
    return stage2, cascade


def reused_stage2(source: str | None, heads: Sequence[str]) -> EncoderStage:
    """The stage-2 model of an existing artifact, for retraining stage 1 and the cascade only."""
    if source is None:
        raise ConfigError("stage2=reuse needs stage2_from (a guard artifact with a stage-2 model)")
    stage2 = Guard.load(source).stage2
    if stage2 is None or stage2.heads != list(heads):
        raise ConfigError(f"{source} has no stage-2 model for heads {list(heads)}")
    return stage2


def base_encoder(workdir: Path, progress: Progress) -> tuple[Path, Path]:
    """The int8 base encoder and tokenizer: an export already in `workdir`, else the bundled guard's, else
    exported with torch. An earlier export wins so that a changed export format trains before it is bundled."""
    from bastion.guard.guard import bundled_path
    from bastion.models.artifacts import read_manifest, verified_path

    if (workdir / ENCODER_FILE).is_file() and (workdir / TOKENIZER_FILE).is_file():
        progress(f"using the encoder exported in {workdir}")
        return workdir / ENCODER_FILE, workdir / TOKENIZER_FILE
    bundled = bundled_path("default")
    try:
        manifest = read_manifest(bundled)
        return verified_path(bundled, manifest, ENCODER_FILE), verified_path(bundled, manifest, TOKENIZER_FILE)
    except ArtifactError:
        from bastion.encoder.export import export

        progress("exporting the base encoder to ONNX (needs bastion[train])")
        files = export(workdir)
        return files[ENCODER_FILE], files[TOKENIZER_FILE]


def source_weights(examples: Sequence[Example]) -> np.ndarray:
    """1/sqrt(records of the same source), scaled to mean 1."""
    counts = Counter(e.source for e in examples)
    weights = np.array([counts[e.source] ** -0.5 for e in examples])
    return weights * len(weights) / weights.sum()


def embed_stage2(heads: Sequence[str], texts: Sequence[str], targets: np.ndarray, config: TrainConfig, workdir: Path,
                 progress: Progress, sample_weight: np.ndarray | None = None) -> EncoderStage:
    """Heads over frozen sentence embeddings: stage 2 without torch, in minutes."""
    from bastion.encoder.runtime import OnnxTextModel

    encoder, tokenizer = base_encoder(workdir, progress)
    model = OnnxTextModel(encoder, tokenizer, max_tokens=EMBED_MAX_TOKENS, head_tokens=EMBED_HEAD_TOKENS)
    chunks = []
    for start in range(0, len(texts), 2048):
        progress(f"embedding records {start:,}-{min(start + 2048, len(texts)):,} of {len(texts):,}")
        chunks.append(model.run(texts[start:start + 2048]))
    progress(f"fitting the stage-2 heads ({config.stage2_members} x {config.stage2_hidden} hidden units)")
    head = fit_embedding_head(np.concatenate(chunks), targets, heads, C=config.stage2_C, hidden=config.stage2_hidden,
                              members=config.stage2_members, seed=config.seed, sample_weight=sample_weight)
    return EncoderStage(heads, encoder, tokenizer, max_tokens=EMBED_MAX_TOKENS, head_tokens=EMBED_HEAD_TOKENS,
                        head=head)


def train_stage2(heads: Sequence[str], texts: Sequence[str], targets: np.ndarray, config: TrainConfig, workdir: Path,
                 progress: Progress) -> EncoderStage:
    """Fine-tune the encoder classifier, export it to int8 ONNX in `workdir`, and load it."""
    import shutil

    from bastion.encoder.finetune import export_classifier, finetune
    from bastion.encoder.source import model_dir

    progress(f"fine-tuning the encoder on {len(texts)} records for {config.stage2_epochs} epoch(s)")
    model = finetune(texts, targets, epochs=config.stage2_epochs, seed=config.seed, progress=progress)
    workdir.mkdir(parents=True, exist_ok=True)
    export_classifier(model, workdir / MODEL_FILE)
    shutil.copyfile(model_dir() / "tokenizer.json", workdir / TOKENIZER_FILE)
    return EncoderStage(heads, workdir / MODEL_FILE, workdir / TOKENIZER_FILE)


def train_output_stage(constitution: Constitution, data_dir: Path | None, config: TrainConfig,
                       manifest: SplitManifest | None = None, progress: Progress = lambda _: None,
                       extra: Sequence[Example] = ()) -> tuple[NgramLinearClassifier, np.ndarray, dict[str, Any]]:
    """The exchange (output) classifier: stage-1 features over prompt + response prefixes.

    Trained on the constitution's response seeds, the user's `extra` response records and,
    for the `general` constitution, GPTFuzz's labelled responses from the development pool
    (plus HH-RLHF pairs as weak labels when `hh_weak_weight` > 0).

    Thresholds are set so that at most the target share of benign *responses* is halted at
    any of their prefixes, which is what a user of a streamed answer experiences.
    """
    from bastion.data.normalizer import Normalizer
    from bastion.data.responses import load_gptfuzz_responses, load_hh_responses, load_response_seeds, prefixes

    manifest = manifest or load_manifest()
    records = list(load_response_seeds(constitution.name)) + list(extra)
    if config.use_dev_pool and constitution.name == "general":
        try:
            records += list(load_gptfuzz_responses(data_dir))
        except DataUnavailableError as exc:
            progress(f"output classifier without GPTFuzz responses: {exc}")
        if config.hh_weak_weight > 0:
            try:
                records += list(load_hh_responses(data_dir))
            except DataUnavailableError as exc:
                progress(f"output classifier without HH-RLHF weak labels: {exc}")
    if not any(e.label == 1 for e in records):  # the shared benign answers alone teach nothing to halt
        raise DataUnavailableError(f"no harmful response records for constitution {constitution.name!r}")
    splits = assign_splits(assign_groups(records), manifest)
    train = prefixes(splits["train"])
    # Categories without harmful responses in the data (child_exploitation, by our content
    # rules) get no output head; the `any` head still covers them.
    present = {c for e in train if e.label == 1 for c in e.categories}
    heads = [ANY, *(c.id for c in constitution.restricted if not c.input_only and c.id in present)]
    normalizer = Normalizer()
    progress(f"training the output classifier on {len(train)} response prefixes ({config.output_loss})")
    model = NgramLinearClassifier(heads, hasher=NgramHasher(n_features=config.n_features), C=config.C, seed=config.seed)
    # Our seeds are few beside GPTFuzz's thousands of replies to 100 questions; weighting them
    # up keeps the classifier about harm in general rather than about those questions.
    responses = splits["train"]
    source_weight = {"hh_rlhf_weak": config.hh_weak_weight}
    weights = np.array([config.seed_response_weight if e.source.startswith("seed_") else source_weight.get(e.source, 1.0)
                        for e in responses])
    owner = np.array([e.id.rsplit("@", 1)[0] for e in train])
    sequences = np.concatenate(([0], np.cumsum(owner[1:] != owner[:-1])))  # prefixes come in response order
    features = model.features([normalizer(render(e, "exchange")) for e in train])
    model.set_weights(*fit_output_heads(features, sequences, targets_for(responses, heads), weights, config))
    benign = [e for e in splits["calibration"] if e.label == 0]
    benign_prefixes = prefixes(benign)
    logits = model.decision_function([normalizer(render(e, "exchange")) for e in benign_prefixes])
    owner = np.array([e.id.rsplit("@", 1)[0] for e in benign_prefixes])
    per_response = np.stack([logits[owner == key].max(axis=0) for key in dict.fromkeys(owner)])
    thresholds = head_thresholds(per_response, constitution.operating_point.target_fpr)
    record = {"records": len(records), "sources": dict(Counter(e.source for e in records)),
              "splits": {s: len(rows) for s, rows in splits.items()}}
    return model, thresholds, record


def fit_output_heads(features: sp.csr_matrix, sequences: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                     config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """One head at a time with `config.output_loss`; responses with a MISSING target sit that head out."""
    coef = np.zeros((targets.shape[1], features.shape[1]), dtype=np.float32)
    intercept = np.zeros(targets.shape[1], dtype=np.float32)
    for k in range(targets.shape[1]):
        known = targets[:, k] != MISSING
        rows = known[sequences]
        renumbered = np.cumsum(known) - 1  # known responses numbered 0.. in order
        coef[k], intercept[k] = fit_sequence_head(features[rows], renumbered[sequences[rows]], targets[known, k],
                                                  loss=config.output_loss, C=config.C, sample_weight=weights[known])
    return coef, intercept


def training_record(corpus: Corpus, config: TrainConfig) -> dict[str, Any]:
    """The manifest section that makes a guard's training reproducible."""
    return {
        "config": config.model_dump(),
        "sources": corpus.sources,
        "skipped_sources": corpus.skipped_sources,
        "splits": {s: {"count": len(rows), "sha256": corpus.data_hash(s)} for s, rows in corpus.splits.items()},
        "data_hash": corpus.data_hash("train"),
    }
