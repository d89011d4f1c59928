"""Stage 2 and the cascade: throughput, cost, AUROC loss, cold start and memory.

- stage 2 alone on short prompts (seed prompts), 2 threads;
- the cascade on realistic traffic (the development-pool test split when available, else the
  seed corpus: mostly benign, some restricted), against running stage 2 on everything and
  against the full combination (both stages on every input): cost ratio and AUROC loss;
- cold start: `Guard.load("default")` plus a first verdict, in a fresh process;
- resident memory after loading.

Run: python bench/bench_stage2.py
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from bastion.config import Settings
from bastion.data.records import Example
from bastion.guard import Guard
from bastion.models.calibration import calibrated_scores
from bastion.training import build_corpus


def traffic(guard: Guard) -> list[Example]:
    corpus = build_corpus(guard.constitution, Settings().data_dir)
    return [e for e in corpus.splits["test"] if e.label is not None]


def cold_start() -> tuple[float, float, float]:
    """Median seconds for import + load + first verdict, and for load alone; resident MB after."""
    code = ("import time; t=time.perf_counter(); from bastion import Guard; l=time.perf_counter(); "
            "g=Guard.load('default'); g.check('hello there'); e=time.perf_counter(); "
            "rss=[int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmRSS')][0]; "
            "print(e-t, e-l, rss/1024)")  # VmRSS: ru_maxrss would inherit the parent's peak across fork
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() for _ in range(3)]
    return tuple(float(np.median([float(r[i]) for r in runs])) for i in range(3))  # type: ignore[return-value]


def main() -> None:
    guard = Guard.load("default")
    if guard.stage2 is None or guard.cascade is None:
        sys.exit("the default guard has no stage 2")
    records = traffic(guard)
    texts = guard.texts(records)
    labels = np.array([e.label for e in records])
    short = [t for t in texts if len(t.split()) <= 30][:2000]
    guard.stage2.decision_function(short[:64])
    start = time.perf_counter()
    guard.stage2.decision_function(short)
    print(f"stage 2 alone, short prompts (<=30 words): {len(short) / (time.perf_counter() - start):,.0f} prompts/s on 2 threads")

    start = time.perf_counter()
    stage2_all = guard.stage2.decision_function(texts)
    t_stage2 = time.perf_counter() - start
    start = time.perf_counter()
    cascade_scores, stages = guard.scores(records)
    t_cascade = time.perf_counter() - start
    stage1 = guard.stage1.decision_function(texts)
    full = calibrated_scores(guard.cascade.combine(stage1, stage2_all), np.asarray(guard.cascade.thresholds))[:, 0]
    escalated = np.mean([s == "stage2" for s in stages])
    print(f"traffic: {len(records)} records ({int(labels.sum())} restricted); escalation rate {escalated:.1%}")
    print(f"cascade time / stage-2-alone time: {t_cascade / t_stage2:.1%}")
    auc_cascade = roc_auc_score(labels, cascade_scores[:, 0])
    print(f"AUROC: cascade {auc_cascade:.4f}; both stages on everything {roc_auc_score(labels, full):.4f}; "
          f"stage 2 alone {roc_auc_score(labels, stage2_all[:, 0]):.4f}; stage 1 alone {roc_auc_score(labels, stage1[:, 0]):.4f}")
    flagged, flagged_full = cascade_scores[:, 0] >= 0.5, full >= 0.5
    print(f"verdicts at the shipped threshold: cascade and both-on-everything agree on {np.mean(flagged == flagged_full):.2%} "
          f"of records; recall {flagged[labels == 1].mean():.3f} vs {flagged_full[labels == 1].mean():.3f}, "
          f"FPR {flagged[labels == 0].mean():.4f} vs {flagged_full[labels == 0].mean():.4f}")
    total, load_only, rss = cold_start()
    print(f"cold start, fresh process, median of 3: import + load + first verdict {total:.3f} s; load + first verdict {load_only:.3f} s; "
          f"resident memory then {rss:.0f} MB")
    print(f"peak resident memory of this benchmark process (corpus included): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
