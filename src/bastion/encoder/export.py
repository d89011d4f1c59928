"""Export all-MiniLM-L6-v2 (+ mean pooling + L2 norm) to ONNX and quantize it to int8.

The embedding is two unit vectors side by side: the mean of the last layer (the sentence
embedding the model was trained for) and the mean of a middle layer. The last layer is tuned
for topical similarity and averages away what a request asks *for*; the middle layer keeps
more of the wording, and heads over both separate harmful from benign markedly better
(bench/RESULTS.md, issue 3). Both come out of one forward pass, so the cost is unchanged.

Needs the training extra (torch, transformers, onnx). Serving needs only onnxruntime and
tokenizers. Quantization is dynamic, per-channel int8 on MatMul weights and on the
embedding tables (Gather); `fidelity` reports how far int8 embeddings are from fp32 so the
choice is measured, not assumed.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from bastion.encoder.source import model_dir

OPSET = 17
MIDDLE_LAYER = 3  # of 6; hidden_states[0] is the embedding layer


def export_fp32(target: Path) -> None:
    """Write the fp32 ONNX encoder: (input_ids, attention_mask) -> [last-layer mean | middle-layer mean]."""
    import torch
    from transformers import AutoModel

    class MeanPooledEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(model_dir()), local_files_only=True)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            layers = self.bert(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                               token_type_ids=torch.zeros_like(input_ids)).hidden_states
            mask = attention_mask.unsqueeze(-1).to(layers[-1].dtype)
            return torch.cat([self.mean(layers[-1], mask), self.mean(layers[MIDDLE_LAYER], mask)], dim=-1)

        @staticmethod
        def mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    model = MeanPooledEncoder().eval()
    ids = torch.ones((2, 16), dtype=torch.int64)
    with torch.no_grad():
        torch.onnx.export(
            model, (ids, torch.ones_like(ids)), str(target), input_names=["input_ids", "attention_mask"],
            output_names=["embedding"], opset_version=OPSET, dynamo=False,
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}},
        )


def quantize(source: Path, target: Path) -> None:
    """Per-channel int8 weights for MatMul and Gather (embeddings); activations stay float."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), per_channel=True, weight_type=QuantType.QInt8,
                     op_types_to_quantize=["MatMul", "Gather"])


def export(directory: Path) -> dict[str, Path]:
    """Write `encoder.onnx` (int8), `encoder-fp32.onnx` and `tokenizer.json` into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "encoder-fp32.onnx"
        export_fp32(fp32)
        quantize(fp32, directory / "encoder.onnx")
        shutil.copy(fp32, directory / "encoder-fp32.onnx")
    shutil.copy(model_dir() / "tokenizer.json", directory / "tokenizer.json")
    return {name: directory / name for name in ("encoder.onnx", "encoder-fp32.onnx", "tokenizer.json")}


def fidelity(int8: np.ndarray, fp32: np.ndarray) -> dict[str, float]:
    """Cosine similarity between int8 and fp32 embeddings of the same texts."""
    cosine = np.sum(int8 * fp32, axis=1) / (np.linalg.norm(int8, axis=1) * np.linalg.norm(fp32, axis=1))
    return {"mean_cosine": float(cosine.mean()), "min_cosine": float(cosine.min()), "p01_cosine": float(np.quantile(cosine, 0.01))}
