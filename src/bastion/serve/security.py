"""API keys and per-key rate limits.

Keys are compared by their sha256 digest, so the configuration never holds a usable key.
Rate limits are token buckets refilled continuously: a key may burst up to one minute's
allowance, then is held to its rate.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from bastion.serve.config import ApiKey, key_digest

KEY_PREFIX = "bst-"


def new_key() -> str:
    """A fresh random API key (give it to the client; put its digest in the config)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass
class _Bucket:
    tokens: float
    updated: float = field(default_factory=time.monotonic)


class KeyRing:
    """Resolves bearer keys to their configured identity and enforces their rate."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self._by_digest = {k.sha256: k for k in keys}
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._by_digest)

    def identify(self, authorization: str | None) -> ApiKey | None:
        """The key behind an `Authorization: Bearer ...` header, or None if unknown/missing."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        return self._by_digest.get(key_digest(authorization[7:].strip()))

    def allow(self, key: ApiKey, now: float | None = None) -> bool:
        """Take one request from the key's bucket; False when it is empty."""
        if key.requests_per_minute is None:
            return True
        now = time.monotonic() if now is None else now
        rate = key.requests_per_minute / 60.0
        with self._lock:
            bucket = self._buckets.setdefault(key.id, _Bucket(tokens=key.requests_per_minute, updated=now))
            bucket.tokens = min(key.requests_per_minute, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens < 1:
                return False
            bucket.tokens -= 1
            return True
