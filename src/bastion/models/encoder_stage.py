"""Stage 2: the fine-tuned encoder classifier, served from ONNX (ids -> one logit per head)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bastion.encoder.runtime import OnnxTextModel

MODEL_FILE = "stage2.onnx"
TOKENIZER_FILE = "tokenizer.json"


class EncoderStage:
    """A loaded stage-2 model; `decision_function` mirrors the stage-1 classifier's."""

    def __init__(self, heads: Sequence[str], model_path: Path, tokenizer_path: Path, *, max_tokens: int = 128,
                 head_tokens: int = 32, threads: int | None = None) -> None:
        self.heads = list(heads)
        self.model_path, self.tokenizer_path = model_path, tokenizer_path
        self.max_tokens, self.head_tokens = max_tokens, head_tokens
        self.model = OnnxTextModel(model_path, tokenizer_path, max_tokens=max_tokens, head_tokens=head_tokens, threads=threads)
        if self.model.width != len(self.heads):
            raise ValueError(f"{model_path.name} has {self.model.width} outputs but the manifest names {len(self.heads)} heads")

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.heads)), dtype=np.float32)
        return self.model.run(texts)

    def manifest_entry(self) -> dict[str, Any]:
        return {"name": "stage2", "type": "onnx_encoder", "heads": self.heads, "model": MODEL_FILE,
                "tokenizer": TOKENIZER_FILE, "max_tokens": self.max_tokens, "head_tokens": self.head_tokens,
                "base_model": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), int8 per-channel"}

    def __repr__(self) -> str:
        return f"EncoderStage(heads={len(self.heads)}, max_tokens={self.max_tokens})"
