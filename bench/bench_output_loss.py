"""Output-classifier loss variants, trained on the same response prefixes and compared.

For each loss in `bastion.models.prefix_loss`: an output classifier is trained (a small
guard in memory: the bundled default guard's stage 1 plus the new output head, thresholds
calibrated as in training), then scored on the held-out responses as whole exchanges
(AUROC) and streamed word by word (detection on harmful, false halts on benign).

With `--hh-weak-weights 0 0.2` it compares, instead of losses, adding HH-RLHF preference
pairs as weak labels at those weights (loss `--losses`, default all).

Run: BASTION_DATA_DIR=../shared/datasets python bench/bench_output_loss.py [--losses prefix_bce] [--hh-weak-weights 0 0.2]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
from bench_stream import streaming_report, test_responses

from bastion.config import Settings
from bastion.evaluation.metrics import detection_report
from bastion.guard import Guard
from bastion.models.prefix_loss import LOSSES
from bastion.training import TrainConfig, train_output_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=list(LOSSES))
    parser.add_argument("--hh-weak-weights", nargs="+", type=float, default=[0.0])
    args = parser.parse_args()
    default = Guard.load("default")
    test = test_responses(default)
    labels = np.array([e.label for e in test])
    for loss, hh in itertools.product(args.losses, args.hh_weak_weights):
        start = time.perf_counter()
        config = TrainConfig(output_loss=loss, hh_weak_weight=hh)  # type: ignore[arg-type]
        output_stage, thresholds, _ = train_output_stage(default.constitution, Settings().data_dir, config)
        seconds = time.perf_counter() - start
        guard = Guard(default.constitution, default.stage1, default.thresholds, normalizer=default.normalizer,
                      output_stage=output_stage, output_thresholds=thresholds)
        scores = np.array([v.score for v in guard.score_examples(test, kind="exchange")])
        report = detection_report(labels, scores)
        print(f"{loss}, HH weak-label weight {hh:g} (trained in {seconds:.0f} s): AUROC {report.auroc}; whole-exchange recall {report.recall}, "
              f"FPR {report.fpr}", flush=True)
        streaming_report(guard, test, labels, f"{loss}, hh {hh:g}")


if __name__ == "__main__":
    main()
