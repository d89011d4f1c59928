"""Stage-1 throughput and artifact load time, as ratios against baselines in the same run.

Scoring: stage 1 of the bundled default guard on 5,000 ~50-word prompts (built from the seed corpus),
one thread, after a warm-up batch, against the classic scikit-learn pipeline
(HashingVectorizer word + char_wb n-grams, same weights' shape) on the same texts.
Load: `Guard.load("default")` against reading its weight file with numpy alone.

Run: python bench/bench_stage1.py
"""

from __future__ import annotations

import random
import statistics
import time

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer
from threadpoolctl import threadpool_limits

from bastion.constitution import load
from bastion.data.records import Example
from bastion.data.seeds import load_seeds
from bastion.guard import Guard
from bastion.guard.guard import bundled_path

N = 5000


def fifty_word_prompts(n: int, seed: int = 0) -> list[str]:
    prompts = [e.prompt for e in load_seeds(load("general")) if e.prompt]
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        words: list[str] = []
        while len(words) < 50:
            words += rng.choice(prompts).split()
        out.append(" ".join(words[:50]))
    return out


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    texts = fifty_word_prompts(N)
    examples = [Example(prompt=t) for t in texts]
    bundled = Guard.load("default")
    guard = Guard(bundled.constitution, bundled.stage1, bundled.thresholds, normalizer=bundled.normalizer)  # stage 1 only
    coef = guard.stage1.coef_
    words = HashingVectorizer(analyzer="word", ngram_range=(1, 2), n_features=coef.shape[1], alternate_sign=False)
    chars = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), n_features=coef.shape[1], alternate_sign=False)

    def bastion_batches() -> None:
        for i in range(0, N, 512):
            guard.score_examples(examples[i:i + 512])

    def sklearn_batches() -> None:
        for i in range(0, N, 512):
            batch = texts[i:i + 512]
            _ = (words.transform(batch) + chars.transform(batch)) @ coef.T

    with threadpool_limits(1):
        guard.score_examples(examples[:256])
        sklearn_batches()
        ours, theirs = best_of(bastion_batches), best_of(sklearn_batches)
    print(f"stage-1 scoring, 1 thread, {N} prompts of 50 words")
    print(f"  bastion guard (normalize + hash + score + verdicts): {N / ours:,.0f} prompts/s")
    print(f"  baseline sklearn HashingVectorizer + matmul:         {N / theirs:,.0f} prompts/s")
    print(f"  ratio bastion / baseline: {theirs / ours:.2f}x")

    path = bundled_path("default")
    loads = [best_of(lambda: Guard.load("default"), 1) for _ in range(5)]
    raw = [best_of(lambda: dict(np.load(path / "stage1.npz")), 1) for _ in range(5)]
    print(f"artifact load (median of 5): Guard.load {statistics.median(loads):.3f} s; "
          f"numpy load of weights alone {statistics.median(raw):.3f} s; ratio {statistics.median(loads) / statistics.median(raw):.2f}x")


if __name__ == "__main__":
    main()
