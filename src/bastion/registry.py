"""Typed per-kind registries for plug-ins (transforms now, attacks later).

A plug-in registers with a decorator; the registry is filled by explicit imports of the
modules that define plug-ins (no directory scans), so what exists is visible in the code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Plug-ins of one kind, addressed by a stable id."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, item_id: str, item: T) -> T:
        if item_id in self._items:
            raise ValueError(f"{self.kind} {item_id!r} is registered twice")
        self._items[item_id] = item
        return item

    def get(self, item_id: str) -> T:
        try:
            return self._items[item_id]
        except KeyError:
            known = ", ".join(sorted(self._items))
            raise KeyError(f"unknown {self.kind} {item_id!r}; known: {known}") from None

    def ids(self) -> list[str]:
        return list(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def decorator(self, item_id: str, build: Callable[[Callable[..., object]], T]) -> Callable[[Callable[..., object]], T]:
        def register(func: Callable[..., object]) -> T:
            return self.add(item_id, build(func))

        return register
