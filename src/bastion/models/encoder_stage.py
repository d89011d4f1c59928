"""Stage 2: the encoder classifier, served from ONNX on CPU.

Two forms share one interface. `embed`: the pretrained encoder stays frozen and heads over
its sentence embedding are trained (minutes on a CPU, no torch; see `embedding_head`). `finetune`:
encoder and head are fine-tuned together and exported as one graph that outputs logits.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bastion.encoder.runtime import OnnxTextModel
from bastion.models.embedding_head import EmbeddingHead

MODEL_FILE = "stage2.onnx"
ENCODER_FILE = "encoder.onnx"
HEAD_FILE = "stage2.npz"
TOKENIZER_FILE = "tokenizer.json"


class EncoderStage:
    """A loaded stage-2 model; `decision_function` mirrors the stage-1 classifier's."""

    def __init__(self, heads: Sequence[str], model_path: Path, tokenizer_path: Path, *, max_tokens: int = 128,
                 head_tokens: int = 32, head: EmbeddingHead | None = None, threads: int | None = None) -> None:
        self.heads = list(heads)
        self.model_path, self.tokenizer_path = model_path, tokenizer_path
        self.max_tokens, self.head_tokens = max_tokens, head_tokens
        self.head = head
        self.model = OnnxTextModel(model_path, tokenizer_path, max_tokens=max_tokens, head_tokens=head_tokens, threads=threads)
        width = head.n_heads if head is not None else self.model.width
        if width != len(self.heads) or (head is not None and head.input_width != self.model.width):
            raise ValueError(f"{model_path.name} and its head do not produce the manifest's {len(self.heads)} heads")

    def with_head(self, head: EmbeddingHead) -> EncoderStage:
        """The same encoder (one ONNX session, shared) under new heads of the same shape."""
        if self.head is None or (head.n_heads, head.input_width) != (self.head.n_heads, self.head.input_width):
            raise ValueError("a new head must have the shape of the one it replaces")
        stage = copy.copy(self)
        stage.head = head
        return stage

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.heads)), dtype=np.float32)
        outputs = self.model.run(texts)
        return outputs if self.head is None else self.head(outputs)

    @property
    def kind(self) -> str:
        return "finetune" if self.head is None else "embed"

    def files(self) -> dict[str, Path]:
        """Artifact file name -> current location, for saving."""
        name = MODEL_FILE if self.head is None else ENCODER_FILE
        return {name: self.model_path, TOKENIZER_FILE: self.tokenizer_path}

    def manifest_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": "stage2", "type": f"onnx_{self.kind}", "heads": self.heads,
            "model": MODEL_FILE if self.head is None else ENCODER_FILE, "tokenizer": TOKENIZER_FILE,
            "max_tokens": self.max_tokens, "head_tokens": self.head_tokens,
            "base_model": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), int8 per-channel"}
        if self.head is not None:
            entry["head"] = HEAD_FILE
        return entry

    def __repr__(self) -> str:
        return f"EncoderStage(heads={len(self.heads)}, max_tokens={self.max_tokens})"
