"""The local engine: this process, with worker threads sharing one batch function.

The guard's numpy and ONNX Runtime work releases the GIL, so threads use every core without
copying the guard; the factory is therefore called once, not once per thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from bastion.engine.base import ordered

T = TypeVar("T")
R = TypeVar("R")


class LocalEngine:
    """Batches on `workers` threads of this process (default: the CPU count)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1

    def map(self, factory: Callable[[], Callable[[T], R]], batches: Iterable[T]) -> Iterator[tuple[T, R]]:
        fn = factory()
        if self.workers == 1:
            for batch in batches:
                yield batch, fn(batch)
            return
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            def submit(batch: T) -> Future[R]:
                return pool.submit(fn, batch)

            try:
                yield from ordered(batches, submit, Future.result, 2 * self.workers)
            finally:
                pool.shutdown(cancel_futures=True)

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
