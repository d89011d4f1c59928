"""`bastion serve` overhead, moderation throughput, and audit durability under a crash.

Every server runs in its own process, as in production: a canned-SSE upstream (fixed
answers, so the model's cost does not drown the guard's), and `bastion serve` in front of it
with the bundled default guard and a SQLite audit log. Latency is measured from an async
httpx client in this process, against calling the canned upstream directly in the same run:

- non-streamed short prompts: added latency p50 / p99 at 1, 16 and 64 concurrent clients;
- streamed 60-chunk answers: added time per chunk (p50 over streams) at 1, 16 and 64 streams;
- `/v1/moderations` requests per second (16 concurrent clients);
- crash test: 10,000 requests, the server killed with SIGKILL once midway and restarted;
  every response a client received must have its audit row.

Run: python bench/bench_serve.py [--requests 10000] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from bastion.serve.audit import AuditLog
from bastion.serve.embedded import free_port

SHORT = ["What is the capital of France?", "Write a haiku about autumn.", "How do I cook rice on the stove?",
         "Recommend a good fantasy novel.", "Explain photosynthesis simply.", "How do I fix a flat bike tyre?"]
ANSWER = " ".join(["word"] * 60)
CANNED = ("import uvicorn; from bastion.serve.canned import canned_app; "
          f"uvicorn.run(canned_app(default={ANSWER!r}), host='127.0.0.1', port={{port}}, log_level='warning')")


def start(command: list[str], url: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=0.5).status_code < 500:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{command[:3]} did not start")


def start_bastion(port: int, upstream: str, audit_url: str, workers: int) -> subprocess.Popen[bytes]:
    env = {"BASTION_SERVE_AUDIT__URL": audit_url, "BASTION_SERVE_AUDIT__RETENTION_DAYS": "30"}
    return start([sys.executable, "-m", "bastion", "serve", "--upstream", upstream, "--port", str(port),
                  "--workers", str(workers)], f"http://127.0.0.1:{port}/healthz", env)


def body(i: int, stream: bool) -> dict:
    return {"model": "canned", "stream": stream, "messages": [{"role": "user", "content": SHORT[i % len(SHORT)]}]}


async def timed_requests(base: str, n: int, concurrency: int, stream: bool) -> np.ndarray:
    """Seconds per request (to the last byte), n requests over `concurrency` clients."""
    times: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        async def worker(worker_id: int) -> None:
            for i in range(worker_id, n, concurrency):
                started = time.perf_counter()
                response = await client.post("/v1/chat/completions", json=body(i, stream))
                await response.aread()
                assert response.status_code == 200, response.text
                times.append(time.perf_counter() - started)

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return np.array(times)


def latency_table(direct: str, guarded: str) -> None:
    print("| concurrency | direct p50 / p99 (ms) | through Bastion p50 / p99 (ms) | added p50 / p99 (ms) |")
    print("|---|---|---|---|")
    for concurrency in (1, 16, 64):
        n = max(200, concurrency * 12)
        asyncio.run(timed_requests(guarded, 50, concurrency, False))  # warm-up
        d = asyncio.run(timed_requests(direct, n, concurrency, False)) * 1000
        g = asyncio.run(timed_requests(guarded, n, concurrency, False)) * 1000
        p = lambda a, q: float(np.percentile(a, q))  # noqa: E731
        print(f"| {concurrency} | {p(d, 50):.2f} / {p(d, 99):.2f} | {p(g, 50):.2f} / {p(g, 99):.2f} | "
              f"{p(g, 50) - p(d, 50):.2f} / {p(g, 99) - p(d, 99):.2f} |")


def stream_table(direct: str, guarded: str) -> None:
    chunks = len(ANSWER.split(" "))
    print(f"\n| concurrent streams | direct stream p50 (ms) | through Bastion p50 (ms) | added per chunk p50 (ms, {chunks} chunks) |")
    print("|---|---|---|---|")
    for concurrency in (1, 16, 64):
        n = max(100, concurrency * 6)
        d = asyncio.run(timed_requests(direct, n, concurrency, True)) * 1000
        g = asyncio.run(timed_requests(guarded, n, concurrency, True)) * 1000
        print(f"| {concurrency} | {np.median(d):.2f} | {np.median(g):.2f} | {(np.median(g) - np.median(d)) / chunks:.3f} |")


async def moderation_rate(base: str, n: int = 2000, concurrency: int = 16) -> float:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        async def worker(worker_id: int) -> None:
            for i in range(worker_id, n, concurrency):
                response = await client.post("/v1/moderations", json={"input": SHORT[i % len(SHORT)]})
                assert response.status_code == 200
        started = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        return n / (time.perf_counter() - started)


async def crash_test(base: str, n: int, kill_at: int, restart: callable, concurrency: int = 16) -> tuple[list[str], int]:
    """Send until n responses arrived; SIGKILL the server after kill_at. Returns received ids and failures."""
    received: list[str] = []
    failures = 0
    killed = False
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        async def worker(worker_id: int) -> None:
            nonlocal failures, killed
            i = worker_id
            while len(received) < n:
                try:
                    response = await client.post("/v1/chat/completions", json=body(i, bool(i % 2)))
                    await response.aread()
                    if response.status_code == 200:
                        received.append(response.headers["x-bastion-request-id"])
                except httpx.HTTPError:
                    failures += 1
                    await asyncio.sleep(0.05)
                i += concurrency
                if not killed and len(received) >= kill_at:
                    killed = True
                    await asyncio.to_thread(restart)

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return received, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="requests in the crash test")
    parser.add_argument("--workers", type=int, default=1, help="bastion serve --workers")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    audit_url = f"sqlite:///{workdir}/audit.sqlite3"
    upstream_port, port = free_port(), free_port()
    upstream = start([sys.executable, "-c", CANNED.format(port=upstream_port)], f"http://127.0.0.1:{upstream_port}/v1/models")
    direct, guarded = f"http://127.0.0.1:{upstream_port}", f"http://127.0.0.1:{port}"
    server = start_bastion(port, direct + "/v1", audit_url, args.workers)
    try:
        print(f"machine: {os.cpu_count()} cores; upstream, Bastion ({args.workers} worker(s)) and client share them\n")
        latency_table(direct, guarded)
        stream_table(direct, guarded)
        print(f"\n/v1/moderations: {asyncio.run(moderation_rate(guarded)):.0f} requests/s (16 clients)")

        def restart() -> None:
            nonlocal server
            server.send_signal(signal.SIGKILL)
            server.wait()
            server = start_bastion(port, direct + "/v1", audit_url, args.workers)

        started = time.perf_counter()
        received, failures = asyncio.run(crash_test(guarded, args.requests, args.requests // 2, restart))
        found = AuditLog(audit_url).request_ids(received)
        print(f"\ncrash test: {len(received)} responses received in {time.perf_counter() - started:.0f} s, server "
              f"SIGKILLed once at {args.requests // 2}; {failures} requests failed in flight (no response); "
              f"responses without an audit row: {len(set(received) - found)}")
    finally:
        server.kill()
        upstream.kill()


if __name__ == "__main__":
    main()
