"""`bastion score` on the local engine vs Ray: throughput, per-task overhead, and what bounds a cluster.

100,000 prompts are generated deterministically from the general constitution's seed corpus
and the bundled templates (`bastion.data.generation.expand`, seed 0). The scoring path is the
CLI's own (`read_examples` -> `score_records` -> `write_jsonl`), in this process, with the
bundled default guard, batch size 512 and 1 thread per worker:

- local, 1 worker (one process, one thread): the baseline every ratio is against;
- Ray (a local cluster, `ray.init(num_cpus=2)`) with 1 and 2 actors, timed from actor start;
  their outputs must equal the baseline's byte for byte;
- per-task overhead: Ray round trips of empty batches through a trivial function, and of
  512-record batches through `len` (what shipping a batch costs without scoring it);
- driver ceiling: reading + validating the input and writing verdict rows, without scoring.

Run: RAY_AUTH_MODE=disabled python bench/bench_ray.py [--n 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from itertools import islice
from pathlib import Path

from bastion.constitution import load
from bastion.data.generation import expand
from bastion.data.jsonl import read_examples, write_jsonl
from bastion.data.seeds import load_seeds
from bastion.engine import Engine, LocalEngine
from bastion.guard.batch import GuardSpec, score_records

BATCH = 512


def make_prompts(path: Path, n: int) -> None:
    seeds = list(load_seeds(load("general")))
    per_seed = -(-n // len(seeds))
    rows = ({"id": e.id, "prompt": e.prompt} for e in islice(expand(seeds, per_seed, seed=0), n))
    write_jsonl(rows, path)


def score_file(engine: Engine, source: Path, target: Path) -> float:
    """Seconds for the CLI's path: read, score in batches, write rows."""
    started = time.perf_counter()
    scored = score_records(engine, GuardSpec.of("default", threads=1), read_examples(source), batch_size=BATCH)
    write_jsonl(({"id": e.id, **v.model_dump(exclude_none=True)} for e, v in scored), target)
    return time.perf_counter() - started


def driver_only(source: Path, target: Path, rows_from: Path) -> float:
    """Seconds to read + validate the input and write the (already computed) verdict rows."""
    started = time.perf_counter()
    count = sum(1 for _ in read_examples(source))
    with rows_from.open() as handle:
        write_jsonl((json.loads(line) for line in handle), target)
    assert count > 0
    return time.perf_counter() - started


def overhead(engine: Engine, batches: list, factory) -> float:
    """Mean seconds per batch for `batches` mapped through `factory`'s function."""
    started = time.perf_counter()
    for _ in engine.map(factory, batches):
        pass
    return (time.perf_counter() - started) / len(batches)


def _trivial():
    return len


def main() -> None:
    import ray

    from bastion.engine.ray import RayEngine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    ray_tmp = tempfile.mkdtemp(prefix="r", dir="/tmp")
    try:
        prompts = work / "in.jsonl"
        make_prompts(prompts, args.n)
        print(f"{args.n:,} prompts ({prompts.stat().st_size / 1e6:.1f} MB), batch {BATCH}, 1 thread per worker, "
              f"{os.cpu_count()} CPUs (shared with other work)")
        base = score_file(LocalEngine(1), prompts, work / "local.jsonl")
        print(f"local, 1 worker:  {base:7.1f} s  {args.n / base:8.0f} records/s  1.00x")
        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=ray_tmp, logging_level="ERROR")
        print(f"ray.init (local cluster, 2 CPUs): {time.perf_counter() - started:.1f} s")
        for workers in (1, 2):
            with RayEngine(workers=workers) as engine:
                seconds = score_file(engine, prompts, work / f"ray{workers}.jsonl")
            same = (work / f"ray{workers}.jsonl").read_bytes() == (work / "local.jsonl").read_bytes()
            print(f"ray, {workers} worker(s): {seconds:7.1f} s  {args.n / seconds:8.0f} records/s  {base / seconds:.2f}x  "
                  f"identical to local: {same}")
        records = list(islice(read_examples(prompts), BATCH))
        with RayEngine(workers=2) as engine:
            empty = overhead(engine, [[]] * 2000, _trivial)
            full = overhead(engine, [records] * 200, _trivial)
        local_empty = overhead(LocalEngine(1), [[]] * 2000, _trivial)
        print(f"per-task overhead, Ray 2 workers: empty batch {empty * 1e3:.2f} ms, 512-record batch through len "
              f"{full * 1e3:.2f} ms (local engine, empty: {local_empty * 1e6:.1f} us)")
        driver = driver_only(prompts, work / "driver.jsonl", work / "local.jsonl")
        print(f"driver ceiling (read + validate + write, no scoring): {driver:.1f} s, {args.n / driver:.0f} records/s")
    finally:
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(ray_tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
