"""The engine contract: map batches through a function that is built once per worker.

A batch function is often expensive to build (it loads a guard, or an LLM) and cheap to
call, so an engine is handed a *factory*: a picklable zero-argument callable that each
worker calls once to get the function it then applies to every batch it receives. Results
come back in input order, paired with their batch, whatever order the workers finish in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")
H = TypeVar("H")

BatchFn = Callable[[T], R]
Factory = Callable[[], Callable[[T], R]]


class Engine(Protocol):
    """Runs `factory()` once per worker and applies the result to every batch it is given."""

    name: str
    workers: int

    def map(self, factory: Callable[[], Callable[[T], R]], batches: Iterable[T]) -> Iterator[tuple[T, R]]:
        """Each batch with its result, in input order; reads `batches` lazily (a bounded window ahead)."""
        ...

    def __enter__(self) -> Engine:
        """Connect (a cluster engine starts or joins its cluster here)."""
        ...

    def __exit__(self, *exc: object) -> None:
        """Release what `__enter__` acquired."""
        ...


def ordered(batches: Iterable[T], submit: Callable[[T], H], resolve: Callable[[H], R], window: int) -> Iterator[tuple[T, R]]:
    """Submit up to `window` batches ahead and resolve them oldest first.

    Keeping the window bounded lets an input of any length stream through in constant
    memory; resolving oldest first is what puts the results in input order, so a batch that
    was retried on another worker still lands in its own place, once.
    """
    pending: deque[tuple[T, H]] = deque()
    for batch in batches:
        pending.append((batch, submit(batch)))
        if len(pending) >= window:
            done, handle = pending.popleft()
            yield done, resolve(handle)
    while pending:
        done, handle = pending.popleft()
        yield done, resolve(handle)


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last may be shorter); a fixed size keeps results reproducible."""
    from itertools import islice

    if size < 1:
        raise ValueError(f"batch size must be at least 1, not {size}")
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
