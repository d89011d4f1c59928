"""Fidelity of int8 quantization schemes for the encoder, against fp32, in the same run.

Exports the base all-MiniLM-L6-v2 encoder to fp32 ONNX, quantizes it per-channel (what
Bastion ships: MatMul + embedding Gather, per-channel int8) and naively (per-tensor MatMul
only, onnxruntime's default dynamic quantization), embeds 1,000 seed prompts with each and
reports cosine similarity to fp32, throughput and file size. Needs `bastion[train]`.

Run: python bench/bench_quantization.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from onnxruntime.quantization import QuantType, quantize_dynamic

from bastion.constitution import load
from bastion.data.seeds import load_seeds
from bastion.encoder.export import export_fp32, fidelity, quantize
from bastion.encoder.runtime import OnnxTextModel
from bastion.encoder.source import model_dir


def main() -> None:
    texts = [e.prompt for e in load_seeds(load("general")) if e.prompt][:1000]
    tokenizer = model_dir() / "tokenizer.json"
    with tempfile.TemporaryDirectory() as tmp:
        fp32, ours, naive = Path(tmp) / "fp32.onnx", Path(tmp) / "int8-per-channel.onnx", Path(tmp) / "int8-naive.onnx"
        export_fp32(fp32)
        quantize(fp32, ours)
        quantize_dynamic(str(fp32), str(naive), weight_type=QuantType.QInt8)
        results = {}
        for name, path in (("fp32", fp32), ("int8 per-channel (shipped)", ours), ("int8 naive per-tensor", naive)):
            model = OnnxTextModel(path, tokenizer)
            model.run(texts[:64])
            start = time.perf_counter()
            results[name] = model.run(texts)
            seconds = time.perf_counter() - start
            print(f"{name:28s} {path.stat().st_size / 1e6:6.1f} MB  {len(texts) / seconds:6.0f} prompts/s", end="")
            print("" if name == "fp32" else f"  {fidelity(results[name], results['fp32'])}")


if __name__ == "__main__":
    main()
