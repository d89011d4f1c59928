"""LLM generation against the embedded model (SmolLM2-135M on llama.cpp, CPU).

- cold run: `bastion generate` on the lemon-cake stand-in constitution with an empty cache:
  records/s, requests/s and completion tokens/s;
- rerun into a fresh output from the same cache: cache hit rate and the speed-up over the
  cold run (the baseline measured in the same run);
- resumption after a kill: `bastion generate` in a subprocess, SIGKILLed once some records
  are written, then rerun to completion; finished records lost or changed (must be 0).

Run: PYTHONPATH=src python bench/bench_llm.py  (about 3 minutes on two cores)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bastion.constitution import load
from bastion.data.jsonl import read_rows
from bastion.llm import BackendConfig, GenerateConfig, Generator, connect, responses_path
from bastion.serve.embedded import MODEL_NAME, EmbeddedModel

LEMON = Path(__file__).resolve().parent.parent / "tests" / "data" / "lemon_cake" / "constitution.yaml"
QUERIES, MAX_TOKENS = 4, 64


def rows(output: Path) -> dict[str, dict]:
    return {str(row["id"]): row for path in (output, responses_path(output)) for _, row in read_rows(path)}


def timed_run(url: str, cache: Path, output: Path) -> tuple[float, dict, str, int]:
    config = GenerateConfig(queries_per_category=QUERIES, max_tokens=MAX_TOKENS)
    with connect(BackendConfig(base_url=url, model=MODEL_NAME, cache_dir=cache, concurrency=2)) as llm:
        started = time.perf_counter()
        result = Generator(load(LEMON), llm, output, config).run()
        seconds = time.perf_counter() - started
    written = sum(result.written.values())
    dropped = ", ".join(f"{n} {reason}" for reason, n in sorted(result.dropped.items())) or "none"
    return seconds, result.usage, f"{written} records (dropped: {dropped})", written


def generate_command(url: str, cache: Path, output: Path) -> list[str]:
    return [sys.executable, "-m", "bastion", "generate", "-c", str(LEMON), "-o", str(output), "--backend", url,
            "--model", MODEL_NAME, "-n", "3", "--max-tokens", str(MAX_TOKENS), "--cache", str(cache), "--seed", "7"]


def kill_and_resume(url: str, folder: Path) -> tuple[int, int, int]:
    """(records finished when killed, records after the rerun, finished records lost or changed)."""
    output, cache = folder / "killed.jsonl", folder / "cache-kill"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
    child = subprocess.Popen(generate_command(url, cache, output), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while child.poll() is None and (not output.exists() or len(output.read_bytes().splitlines()) < 4):
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    before = rows(output)
    subprocess.run(generate_command(url, cache, output), env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = rows(output)
    return len(before), len(after), sum(after.get(key) != row for key, row in before.items())


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedModel(n_ctx=2048, threads=2) as model:
        folder = Path(tmp)
        cold_s, cold, summary, written = timed_run(model.url, folder / "cache", folder / "cold.jsonl")
        warm_s, warm, _, rewritten = timed_run(model.url, folder / "cache", folder / "warm.jsonl")
        print(f"cold: {summary}, {cold['requests']:.0f} requests, {cold['completion_tokens']:.0f} completion tokens "
              f"in {cold_s:.1f} s -> {written / cold_s:.2f} records/s, {cold['requests'] / cold_s:.2f} requests/s, "
              f"{cold['completion_tokens'] / cold_s:.1f} completion tokens/s ({cold['prompt_tokens']:.0f} prompt tokens)")
        print(f"rerun: {rewritten} records, {warm['requests']:.0f} requests, cache hit rate {warm['hit_rate']:.1%}, "
              f"{warm_s:.2f} s -> {rewritten / warm_s:.0f} records/s ({cold_s / warm_s:.0f}x the cold run)")
        killed, final, lost = kill_and_resume(model.url, folder)
        print(f"kill -9 mid-run: {killed} records finished at the kill, {final} after the rerun, {lost} lost or changed")


if __name__ == "__main__":
    main()
