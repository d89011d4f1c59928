"""An on-disk response cache keyed by the full request, so a rerun costs nothing.

Entries live in one append-only JSONL file per cache directory, each line written whole
and flushed at once: a crash can at worst leave a torn last line, which is cut off when the
cache is next opened (that one request is simply made again, never misread).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from bastion.data.jsonl import Appender, read_rows

CACHE_FILE = "responses.jsonl"


def request_key(request: dict[str, Any]) -> str:
    """sha256 of the request's canonical JSON: model, messages and every sampling parameter.

    The server's address is deliberately not part of the key: the same model behind another
    port (the embedded server picks a free one each run) gives the same answers.
    """
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """`get(key)` / `put(key, value)` over `directory/responses.jsonl`: read once, appended to after."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._appender = Appender(directory / CACHE_FILE)
        self._entries: dict[str, dict[str, Any]] = {str(row["key"]): row["value"]  # type: ignore[misc]
                                                    for _, row in read_rows(directory / CACHE_FILE)}

    def get(self, key: str) -> dict[str, Any] | None:
        return self._entries.get(key)

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._entries[key] = value
        self._appender.write({"key": key, "value": value})

    def close(self) -> None:
        self._appender.close()

    def __len__(self) -> int:
        return len(self._entries)
