"""Development-pool test split: the numbers issue 2 and 3 ask for, at the shipped threshold.

Rebuilds the corpus with the committed split manifest (so the test split is exactly the
groups the guard never trained or calibrated on), scores it, and prints AUROC harmful vs
benign with 95% intervals, FPR on JailbreakBench's topic-matched benign behaviours, recall
on held-out in-the-wild jailbreaks, and per-source flag rates.

Run: BASTION_DATA_DIR=../shared/datasets python bench/eval_devpool.py [GUARD_DIR]
"""

from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np

from bastion.config import Settings
from bastion.evaluation.metrics import detection_report, wilson
from bastion.guard import Guard
from bastion.training import build_corpus

# Sets that are not requests under the constitution's definitions, reported separately:
# CoNa and PhysicalSafetyUnsafe are statements, not requests; Do-Not-Answer mixes severities
# (private questions about the bot itself); deepset's injections are task hijacks, often
# harmless in content.
NOT_REQUESTS = {"stl_cona", "stl_physicalsafetyunsafe", "stl_physicalsafetysafe", "do_not_answer", "deepset"}


def summary(title: str, labels: np.ndarray, scores: np.ndarray) -> None:
    report = detection_report(labels, scores)
    print(f"{title}: {report.n} records ({report.positives} restricted, {report.negatives} benign)")
    for name in ("auroc", "auprc", "f1", "precision", "recall", "fpr", "tpr_at_1pct_fpr"):
        print(f"  {name:16s} {getattr(report, name)}")


def main(guard_path: str = "default") -> None:
    settings = Settings()
    if settings.data_dir is None:
        sys.exit("the development pool is not available: set BASTION_DATA_DIR")
    guard = Guard.load(guard_path)
    corpus = build_corpus(guard.constitution, settings.data_dir)
    test = [e for e in corpus.splits["test"] if e.label is not None]
    verdicts = guard.score_examples(test)
    scores = np.array([v.score for v in verdicts])
    labels = np.array([e.label for e in test])
    summary("test split, all sources", labels, scores)
    requests = np.array([e.source not in NOT_REQUESTS for e in test])
    summary("test split, request sets only (without " + ", ".join(sorted(NOT_REQUESTS)) + ")", labels[requests], scores[requests])
    print(f"escalated to stage 2: {np.mean([v.stage == 'stage2' for v in verdicts]):.1%}")
    by_source: dict[str, list[bool]] = defaultdict(list)
    for example, score in zip(test, scores, strict=True):
        by_source[example.source].append(bool(score >= 0.5))
    print("flag rate by source (restricted sources: recall; benign sources: FPR), 95% Wilson interval")
    for source, flags in sorted(by_source.items()):
        label = {e.label for e in test if e.source == source}
        print(f"  {source:28s} label={sorted(label)} n={len(flags):5d} flagged {wilson(sum(flags), len(flags))}")


if __name__ == "__main__":
    main(*sys.argv[1:])
