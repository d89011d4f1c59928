"""End-to-end benign refusal (issue 6): what a benign user of a guarded model feels.

A random sample of the development pool's benign test split is answered by the embedded
model (SmolLM2-135M-Instruct, greedy, as `bastion serve --upstream embedded` would); each
answer is streamed through the guard's output monitor with the server's default stream
settings. A benign request is refused when the input classifier flags it *or* the monitor
halts its answer. Answers are cached (`.bastion-cache/llm`), so rerunning with another guard
only costs the guard's time.

Run: BASTION_DATA_DIR=../shared/datasets python bench/bench_benign_e2e.py [GUARD_DIR] [N]
(needs `bastion[demo]` for the embedded model; N defaults to 800)
"""

from __future__ import annotations

import random
import sys
import time
from collections import defaultdict

from rich.progress import track

from bastion.config import Settings
from bastion.evaluation.metrics import wilson
from bastion.evaluation.suites import load_suite
from bastion.guard import Guard
from bastion.guard.stream import replay
from bastion.llm import connect
from bastion.llm.config import BackendConfig
from bastion.serve.config import StreamSettings

MAX_TOKENS = 160


def main(guard_path: str = "default", n: str = "800") -> None:
    guard = Guard.load(guard_path)
    benign = load_suite("devpool-benign-test", Settings().data_dir)
    sample = random.Random(0).sample(benign, min(int(n), len(benign)))
    started = time.perf_counter()
    with connect(BackendConfig(concurrency=2, temperature=0.0, max_tokens=MAX_TOKENS)) as backend:
        answers = [a.text for a in backend.complete_many([[m.model_dump() for m in e.conversation()] for e in sample])]
    print(f"{len(sample)} answers in {time.perf_counter() - started:.0f} s (cached answers are free)")
    flags = [v.flagged for v in guard.score_examples(sample, "input")]
    stream = StreamSettings().model_dump()
    halts = [replay(guard, e.model_copy(update={"response": a}), **stream)[0]
             for e, a in track(list(zip(sample, answers, strict=True)), description="streaming answers")]
    refused = [f or h for f, h in zip(flags, halts, strict=True)]
    unflagged_halts = [h for f, h in zip(flags, halts, strict=True) if not f]
    count = len(sample)
    print(f"input flags          {wilson(sum(flags), count)}")
    print(f"output halts         {wilson(sum(halts), count)} "
          f"(answers of unflagged inputs: {wilson(sum(unflagged_halts), len(unflagged_halts))})")
    print(f"end-to-end refusal   {wilson(sum(refused), count)}")
    by_source: dict[str, list[bool]] = defaultdict(list)
    for example, r in zip(sample, refused, strict=True):
        by_source[example.source].append(r)
    for source, flags in sorted(by_source.items()):
        print(f"  {source:24s} n={len(flags):4d} refused {wilson(sum(flags), len(flags))}")
    for example, answer, f, h in zip(sample, answers, flags, halts, strict=True):
        if h and not f:
            print(f"  halted: {example.prompt!r:.100} -> {answer!r:.160}")


if __name__ == "__main__":
    main(*sys.argv[1:])
