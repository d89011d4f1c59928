"""Fine-tune the encoder with a multi-label head (restricted categories + `any`) on CPU.

Needs the training extra (torch, transformers). Deterministic from a seed on one machine
(torch's CPU kernels are deterministic with `use_deterministic_algorithms`). Long inputs
keep head and tail tokens exactly as at inference. The result is exported to ONNX as one
graph, text ids -> logits, and quantized like the plain encoder.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bastion.encoder.source import model_dir

Progress = Callable[[str], None]


def _head_tail(ids: list[int], max_tokens: int, head: int) -> list[int]:
    room = max_tokens - 2
    body = ids[1:-1]
    if len(body) > room:
        body = body[:head] + body[len(body) - (room - head):]
    return [ids[0], *body, ids[-1]]


def build_model(n_heads: int):  # type: ignore[no-untyped-def]
    import torch
    from transformers import AutoModel

    class EncoderClassifier(torch.nn.Module):
        """Mean-pooled MiniLM + one linear layer: (input_ids, attention_mask) -> logits."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(model_dir()), local_files_only=True)
            self.head = torch.nn.Linear(self.bert.config.hidden_size, n_heads)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return self.head(torch.nn.functional.normalize(pooled, dim=-1) * 10.0)

    return EncoderClassifier()


def finetune(texts: Sequence[str], targets: np.ndarray, *, epochs: float = 1.0, batch_size: int = 32, lr: float = 5e-5,
             max_tokens: int = 128, head_tokens: int = 32, seed: int = 13, threads: int | None = None,
             progress: Progress = lambda _: None):  # type: ignore[no-untyped-def]
    """Train encoder + head; `targets` is (n, heads) with 1, 0 or -1 (missing, no loss)."""
    import torch
    from tokenizers import Tokenizer

    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tokenizer.no_truncation()
    encoded = [_head_tail(e.ids, max_tokens, head_tokens) for e in tokenizer.encode_batch(list(texts))]
    model = build_model(targets.shape[1]).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    order = list(range(len(texts)))
    steps = int(epochs * len(order) / batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / (0.06 * steps)) * max(0.0, 1 - s / steps))
    rng = random.Random(seed)
    target_tensor = torch.tensor(targets, dtype=torch.float32)
    started, step = time.perf_counter(), 0
    while step < steps:
        rng.shuffle(order)
        # bucket by length inside windows of 50 batches: less padding, still shuffled
        window = batch_size * 50
        batches = []
        for w in range(0, len(order), window):
            chunk = sorted(order[w:w + window], key=lambda i: len(encoded[i]))
            batches += [chunk[b:b + batch_size] for b in range(0, len(chunk), batch_size)]
        rng.shuffle(batches)
        for batch in batches:
            if step >= steps:
                break
            width = max(len(encoded[i]) for i in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.int64)
            mask = torch.zeros_like(ids)
            for row, i in enumerate(batch):
                ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                mask[row, : len(encoded[i])] = 1
            y = target_tensor[batch]
            known = (y >= 0).float()
            logits = model(ids, mask)
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits, y.clamp(min=0), reduction="none") * known).sum() / known.sum()
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            scheduler.step()
            step += 1
            if step % 20 == 0 or step == steps:
                elapsed = time.perf_counter() - started
                progress(f"step {step}/{steps} loss {loss.item():.4f} ({elapsed:.0f} s, {elapsed / step * (steps - step):.0f} s left)")
    return model.eval()


def export_classifier(model, target: Path, fp32_copy: Path | None = None) -> None:  # type: ignore[no-untyped-def]
    """ONNX export of the fine-tuned model (ids -> logits), quantized to int8."""
    import shutil
    import tempfile

    import torch

    from bastion.encoder.export import OPSET, quantize

    ids = torch.ones((2, 16), dtype=torch.int64)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model-fp32.onnx"
        with torch.no_grad():
            torch.onnx.export(
                model, (ids, torch.ones_like(ids)), str(fp32), input_names=["input_ids", "attention_mask"],
                output_names=["logits"], opset_version=OPSET, dynamo=False,
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}, "logits": {0: "batch"}},
            )
        quantize(fp32, target)
        if fp32_copy is not None:
            shutil.copy(fp32, fp32_copy)
