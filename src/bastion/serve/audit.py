"""The audit log: one durable row per guard decision, in SQLite (default) or PostgreSQL.

A response is never sent before its row is committed, so a client never holds a decision
the log lacks, even if the process is killed right after. Streams are recorded twice: the
row is inserted when the input has been screened (status `open`) and updated with the
output decision before the final chunk goes out. SQLite runs in WAL mode with
`synchronous=NORMAL`: a commit survives the process being killed (not a power cut), and
readers such as `bastion audit export` never block the server.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bastion.errors import ConfigError

TextPolicy = Literal["full", "hash", "none"]
PURGE_EVERY_S = 3600.0

metadata = MetaData()
decisions = Table(
    "bastion_decisions", metadata,
    Column("request_id", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("endpoint", String(32), nullable=False),
    Column("api_key_id", String(128)),
    Column("model", String(256)),
    Column("mode", String(16), nullable=False),
    Column("guard_version", String(64), nullable=False),
    Column("constitution_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # open | complete
    Column("action", String(32), nullable=False),  # allowed | blocked | halted | shadow_* | guard_error_* | ...
    Column("input_flagged", Boolean), Column("input_score", Float), Column("input_category", String(64)),
    Column("input_stage", String(16)),
    Column("output_flagged", Boolean), Column("output_score", Float), Column("output_category", String(64)),
    Column("output_stage", String(16)),
    Column("halt_position", Integer),
    Column("guard_ms", Float), Column("upstream_ms", Float), Column("total_ms", Float),
    Column("input_text", Text), Column("input_sha256", String(64)),
    Column("output_text", Text), Column("output_sha256", String(64)),
    Column("error", Text),
)
TEXT_FIELDS = ("input", "output")


def _create_schema(engine: Engine) -> None:
    """Create the table unless it exists, tolerating a peer process that creates it first.

    Workers of `bastion serve --workers N` start together on one database; each checks for
    the table, and the slower one's CREATE then fails because the faster one made it.
    """
    try:
        metadata.create_all(engine)
    except SQLAlchemyError:
        if not inspect(engine).has_table(decisions.name):
            raise
        metadata.create_all(engine)  # the table is there now; this adds any index still missing


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class AuditLog:
    """Thread-safe writer and reader of decision rows."""

    def __init__(self, url: str, *, text_policy: TextPolicy = "hash", retention_days: float | None = None) -> None:
        self.url, self.text_policy, self.retention_days = url, text_policy, retention_days
        try:
            self.engine = _engine(url)
            _create_schema(self.engine)
        except SQLAlchemyError as exc:
            raise ConfigError(f"audit log {_displayed(url)}: cannot open ({exc.__class__.__name__}: {exc})") from exc
        self._last_purge = 0.0
        self._purge_lock = threading.Lock()

    def texts(self, **fields: str | None) -> dict[str, str | None]:
        """Columns for texts given as `input=...`, `output=...`, kept as the policy says."""
        row: dict[str, str | None] = {}
        for name, value in fields.items():
            if value is None:
                continue
            row[f"{name}_sha256"] = _sha256(value) if self.text_policy != "none" else None
            row[f"{name}_text"] = value if self.text_policy == "full" else None
        return row

    def insert(self, *rows: dict[str, Any]) -> None:
        """Commit new rows (all or none) before returning."""
        blank = dict.fromkeys(decisions.c.keys()) | {"created_at": datetime.now(UTC)}
        with self.engine.begin() as connection:
            connection.execute(insert(decisions), [blank | row for row in rows])
        self._maybe_purge()

    def update(self, request_id: str, **fields: Any) -> None:
        """Commit changes to one row (the output decision of a stream) before returning."""
        with self.engine.begin() as connection:
            result = connection.execute(update(decisions).where(decisions.c.request_id == request_id).values(**fields))
        if result.rowcount != 1:
            raise LookupError(f"audit row {request_id!r} does not exist")

    def purge(self, now: datetime | None = None) -> int:
        """Delete rows older than the retention period; returns how many."""
        if self.retention_days is None:
            return 0
        cutoff = (now or datetime.now(UTC)) - timedelta(days=self.retention_days)
        with self.engine.begin() as connection:
            return connection.execute(delete(decisions).where(decisions.c.created_at < cutoff)).rowcount

    def _maybe_purge(self) -> None:
        if self.retention_days is None or time.monotonic() - self._last_purge < PURGE_EVERY_S:
            return
        if self._purge_lock.acquire(blocking=False):
            try:
                self._last_purge = time.monotonic()
                self.purge()
            finally:
                self._purge_lock.release()

    def ping(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def rows(self, *, batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Every row, oldest first, as JSON-ready dicts."""
        query = select(decisions).order_by(decisions.c.created_at, decisions.c.request_id)
        with self.engine.connect() as connection:
            for row in connection.execution_options(yield_per=batch).execute(query).mappings():
                yield {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}

    def request_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of `ids` have a row (used to verify that no response lacks its record)."""
        found: set[str] = set()
        with self.engine.connect() as connection:
            for start in range(0, len(ids), 500):
                chunk = list(ids[start:start + 500])
                found.update(connection.execute(select(decisions.c.request_id)
                                                .where(decisions.c.request_id.in_(chunk))).scalars())
        return found

    def stats(self) -> dict[str, Any]:
        """Counts by action, by flagged category and by deciding stage, and latency percentiles."""
        with self.engine.connect() as connection:
            def counts(column: Any) -> dict[str, int]:
                rows = connection.execute(select(column, func.count()).group_by(column)).all()
                return {str(key): n for key, n in rows if key is not None}

            total = connection.execute(select(func.count()).select_from(decisions)).scalar_one()
            guard_ms = sorted(connection.execute(select(decisions.c.guard_ms)
                                                 .where(decisions.c.guard_ms.is_not(None))).scalars())
            return {"decisions": total, "by_action": counts(decisions.c.action),
                    "by_input_category": counts(decisions.c.input_category),
                    "by_output_category": counts(decisions.c.output_category),
                    "by_input_stage": counts(decisions.c.input_stage),
                    "guard_ms": {q: _percentile(guard_ms, q) for q in (50, 90, 99)}}

    def close(self) -> None:
        self.engine.dispose()


def _displayed(url: str) -> str:
    """The URL with its password hidden, for error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable URL)"


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    return round(float(values[min(len(values) - 1, int(len(values) * q / 100))]), 3)


def _engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=16)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _wal(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine
