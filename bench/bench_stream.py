"""The exchange (output) classifier and the stream monitor.

- AUROC and F1 on held-out labelled responses (the test split of our response seeds and of
  GPTFuzz's human-labelled responses), scored as whole exchanges;
- streamed through `Guard.monitor` in word-sized deltas: detection rate on harmful
  responses, false-halt rate on benign ones, and how far into the response the halt comes;
- monitoring throughput for a ~3,000-token response (one thread), stage 1 alone and with
  stage 2 in the window checks, against scoring the whole response once in the same run.

Run: BASTION_DATA_DIR=../shared/datasets python bench/bench_stream.py
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

from bastion.config import Settings
from bastion.data.records import Example
from bastion.data.responses import load_gptfuzz_responses, load_response_seeds
from bastion.data.splits import assign_groups, assign_splits, load_manifest
from bastion.errors import DataUnavailableError
from bastion.evaluation.metrics import detection_report, wilson
from bastion.guard import Guard
from bastion.guard.stream import replay


def test_responses(guard: Guard) -> list[Example]:
    records = list(load_response_seeds(guard.constitution.name))
    try:
        records += list(load_gptfuzz_responses(Settings().data_dir))
    except DataUnavailableError:
        print("(GPTFuzz responses not available: seeds only)")
    return assign_splits(assign_groups(records), load_manifest())["test"]


def main() -> None:
    guard = Guard.load("default")
    test = test_responses(guard)
    labels = np.array([e.label for e in test])
    scores = np.array([v.score for v in guard.score_examples(test, kind="exchange")])
    report = detection_report(labels, scores)
    print(f"held-out responses: {report.n} ({report.positives} harmful); AUROC {report.auroc}; F1 {report.f1}; "
          f"recall {report.recall}; FPR {report.fpr}")
    streaming_report(guard, test, labels, "stage 1 alone")
    streaming_report(guard, test, labels, "with stage 2 (window checks every 512 characters)", use_stage2=True)
    with threadpool_limits(1):
        throughput(guard, "stage 1 alone")
        throughput(guard, "with stage 2 (window checks every 512 characters)", use_stage2=True)


def streaming_report(guard: Guard, test: list[Example], labels: np.ndarray, label: str, **options: object) -> None:
    """Stream each held-out response word by word: detection, false halts, where halts come."""
    results = [replay(guard, e, **options) for e in test]
    halted = np.array([h for h, _ in results])
    where = np.array([n / max(1, len(e.response or "")) for e, (h, n) in zip(test, results, strict=True) if h])
    print(f"streamed word by word, {label}: detection {wilson(int(halted[labels == 1].sum()), int((labels == 1).sum()))}; "
          f"false halts on benign {wilson(int(halted[labels == 0].sum()), int((labels == 0).sum()))}")
    if len(where):
        print(f"  halt position (share of the response released before the halt): median {np.median(where):.2f}, "
              f"p90 {np.quantile(where, 0.9):.2f}")


def throughput(guard: Guard, label: str, **options: object) -> None:
    """Monitor a ~3,000-token response in ~4-token deltas; compare with scoring it once."""
    long_response = " ".join(["The committee reviewed the budget and agreed to fund the new library wing."] * 160)
    tokens = len(long_response) / 4  # ~4 characters a token
    deltas = [long_response[i:i + 16] for i in range(0, len(long_response), 16)]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        monitor = guard.monitor("Summarise the meeting.", **options)
        for delta in deltas:
            monitor.feed(delta)
        monitor.close()
        best = min(best, time.perf_counter() - start)
    start = time.perf_counter()
    guard.check("Summarise the meeting.", response=long_response)
    once = time.perf_counter() - start
    print(f"monitoring a {tokens:,.0f}-token response in {len(deltas)} deltas, {label}, 1 thread: "
          f"{tokens / best:,.0f} tokens/s ({best * 1000:.0f} ms, {best / once:.1f}x scoring it once: {once * 1000:.1f} ms)")

if __name__ == "__main__":
    main()
