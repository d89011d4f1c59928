"""Run an exported text model on CPU: onnxruntime + tokenizers, no torch.

Inputs longer than the model's window keep their head and their tail (the start says what
the conversation is about; the end holds the latest request), which covers long prompts
and whole conversations in one window.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bastion.errors import ArtifactError


class OnnxTextModel:
    """Texts -> the graph's single output (embeddings or logits). Thread-safe like ORT."""

    def __init__(self, model_path: Path, tokenizer_path: Path, *, max_tokens: int = 256, head_tokens: int = 64,
                 threads: int | None = None, batch_size: int = 32) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.max_tokens, self.head_tokens, self.batch_size = max_tokens, head_tokens, batch_size
        try:
            self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
            options = ort.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime and tokenizers raise their own types
            raise ArtifactError(f"cannot load {model_path.name}: {exc}") from exc
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.cls_id = self.tokenizer.token_to_id("[CLS]")
        self.sep_id = self.tokenizer.token_to_id("[SEP]")
        self.width = self.session.get_outputs()[0].shape[-1]
        self._memo: dict[str, np.ndarray] | None = None

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        room = self.max_tokens - 2
        out = []
        for encoding in self.tokenizer.encode_batch(list(texts), add_special_tokens=False):
            tokens = encoding.ids
            if len(tokens) > room:
                tokens = tokens[: self.head_tokens] + tokens[len(tokens) - (room - self.head_tokens):]
            out.append([self.cls_id, *tokens, self.sep_id])
        return out

    @contextmanager
    def remembering(self) -> Iterator[None]:
        """Within the block, a text run before is not run again (its output is kept).

        Sound because a text's output does not depend on its batch beyond float rounding (see
        `_run`). For jobs that score the same texts several times in one thread, such as a
        patch; not for serving.
        """
        self._memo = {}
        try:
            yield
        finally:
            self._memo = None

    def run(self, texts: Sequence[str]) -> np.ndarray:
        """Outputs shaped (len(texts), width), through the memo inside `remembering`."""
        if self._memo is None:
            return self._run(texts)
        memo = self._memo
        missing = list(dict.fromkeys(t for t in texts if t not in memo))
        if missing:
            memo.update(zip(missing, self._run(missing), strict=True))
        return np.array([memo[t] for t in texts], dtype=np.float32).reshape(len(texts), self.width)

    def _run(self, texts: Sequence[str]) -> np.ndarray:
        """Each batch holds texts of one token length.

        No padding, so a text's output never depends on what else is in its batch: the
        exported graphs were traced with an all-ones attention mask and attend to padding.
        """
        ids = self.token_ids(texts)
        out = np.zeros((len(ids), self.width), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for i, tokens in enumerate(ids):
            by_length.setdefault(len(tokens), []).append(i)
        for _, members in sorted(by_length.items()):
            for start in range(0, len(members), self.batch_size):
                chunk = members[start:start + self.batch_size]
                input_ids = np.array([ids[i] for i in chunk], dtype=np.int64)
                feeds = {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}
                out[chunk] = self.session.run(None, feeds)[0]
        return out
