"""JSONL reading and atomic writing.

Reading validates each line into an `Example` and names the line on error; `on_error="skip"`
collects the bad lines instead so a batch job can report them. Writing goes to a temporary
file beside the target and is renamed only when complete, so a crash never leaves a
half-written output.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from pydantic import ValidationError

from bastion.data.records import Example, from_audit_row
from bastion.errors import RecordError

OnError = Literal["fail", "skip"]


@dataclass
class SkippedLines:
    """Lines that `read_examples(on_error="skip")` left out, with why."""

    lines: list[tuple[int, str]] = field(default_factory=list)

    def add(self, line_number: int, reason: str) -> None:
        self.lines.append((line_number, reason))


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "record"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def json_object(text: str, line_number: int) -> dict[str, object]:
    """One JSONL line as a JSON object; RecordError naming the line otherwise."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"line {line_number}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(obj, dict):
        raise RecordError(f"line {line_number}: expected a JSON object, got {type(obj).__name__}")
    return obj


def parse_line(text: str, line_number: int, max_chars: int) -> Example:
    """One JSONL line to an Example; raises RecordError naming the line."""
    if len(text) > max_chars:
        raise RecordError(
            f"line {line_number}: record is {len(text):,} characters, over the limit of "
            f"{max_chars:,} (raise BASTION_MAX_RECORD_CHARS or --max-chars)"
        )
    obj = json_object(text, line_number)
    if "request_id" in obj and "prompt" not in obj and "messages" not in obj:  # a `bastion audit export` row
        try:
            obj = from_audit_row(obj)
        except ValueError as exc:
            raise RecordError(f"line {line_number}: {exc}") from exc
    obj.setdefault("id", str(line_number))
    if obj["id"] is not None and not isinstance(obj["id"], str):
        obj["id"] = str(obj["id"])
    try:
        return Example.model_validate(obj)
    except ValidationError as exc:
        raise RecordError(f"line {line_number}: {_describe(exc)}") from exc


def _decoded_lines(stream: IO[bytes], name: str) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(stream, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecordError(
                f"{name}: line {number}: not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
            ) from exc
        text = text.strip().lstrip("\ufeff")
        if text:
            yield number, text


def read_examples(
    source: Path | IO[bytes] | None,
    *,
    on_error: OnError = "fail",
    max_chars: int = 200_000,
    skipped: SkippedLines | None = None,
) -> Iterator[Example]:
    """Yield Examples from a JSONL file, a binary stream, or stdin when `source` is None."""
    if isinstance(source, Path):
        if not source.exists():
            raise RecordError(f"{source}: no such file")
        with source.open("rb") as stream:
            yield from read_examples(stream, on_error=on_error, max_chars=max_chars, skipped=skipped)
        return
    stream = source if source is not None else sys.stdin.buffer
    name = getattr(stream, "name", "<stdin>")
    for number, text in _decoded_lines(stream, str(name)):
        try:
            yield parse_line(text, number, max_chars)
        except RecordError as exc:
            if on_error == "fail":
                raise RecordError(f"{name}: {exc}") from exc
            if skipped is not None:
                skipped.add(number, str(exc))


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[IO[str]]:
    """Open a temp file beside `path`; rename it over `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_jsonl(rows: Iterable[dict[str, object]], path: Path | None) -> int:
    """Write rows as JSONL atomically to `path`, or to stdout when None; returns the count."""
    count = 0
    if path is None:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
        sys.stdout.flush()
        return count
    with atomic_writer(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def repair_tail(path: Path) -> int:
    """Cut a torn last line (left by a writer killed mid-line) off `path`; returns the bytes removed.

    Append-only files (the LLM cache, `bastion generate` output) are only ever extended, so
    everything before the last newline is whole; what follows it is the one line that was
    being written when the process died.
    """
    if not path.exists():
        return 0
    with path.open("rb+") as handle:
        size = keep = handle.seek(0, os.SEEK_END)
        while keep > 0:
            start = max(0, keep - 4096)
            handle.seek(start)
            newline = handle.read(keep - start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            keep = start
        handle.truncate(keep)
        return size - keep


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    """(line number, JSON object) for each line of an append-only file; a bad line is a RecordError."""
    if not path.exists():
        return
    with path.open("rb") as stream:
        for number, text in _decoded_lines(stream, str(path)):
            try:
                yield number, json_object(text, number)
            except RecordError as exc:
                raise RecordError(f"{path}: {exc}") from exc


class Appender:
    """Appends JSON rows to a file, one whole line per write, flushed at once (so a kill loses no finished row)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        repair_tail(path)
        self.path = path
        self._handle = path.open("a", encoding="utf-8")

    def write(self, row: dict[str, object]) -> None:
        self._handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle.closed:
            return
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()

    def __enter__(self) -> Appender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
