"""Exact and near-duplicate detection with MinHash + LSH.

Near-duplicates decide leak-free splits: every cluster of near-identical prompts becomes one
group, and a group lives in exactly one split. Shingles are word 3-grams of normalised
text; signatures use `num_perm` universal hashes; LSH bands propose candidate pairs whose
estimated Jaccard similarity is then checked against `threshold`.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

_PRIME = np.uint64((1 << 31) - 1)
_WORD = re.compile(r"\w+")


def canonical(text: str) -> str:
    """Lowercased words only: what 'exact duplicate' compares."""
    return " ".join(_WORD.findall(text.lower()))


def exact_key(text: str) -> str:
    return hashlib.sha1(canonical(text).encode("utf-8")).hexdigest()


def _shingles(text: str, size: int = 3) -> np.ndarray:
    words = _WORD.findall(text.lower())
    grams = [" ".join(words[i:i + size]) for i in range(max(1, len(words) - size + 1))]
    return np.array(sorted({zlib.crc32(g.encode("utf-8")) & 0x7FFFFFFF for g in grams}), dtype=np.uint64)


class MinHasher:
    """MinHash signatures for a batch of texts, deterministic from `seed`."""

    def __init__(self, num_perm: int = 64, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        self.a = rng.integers(1, int(_PRIME), size=num_perm, dtype=np.uint64)
        self.b = rng.integers(0, int(_PRIME), size=num_perm, dtype=np.uint64)

    def signature(self, text: str) -> np.ndarray:
        shingles = _shingles(text)
        hashed = (np.outer(shingles, self.a) + self.b) % _PRIME
        return hashed.min(axis=0)


class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)


def cluster(texts: Sequence[str], threshold: float = 0.7, bands: int = 16, seed: int = 1) -> list[int]:
    """Cluster id (the index of the cluster's first member) for every text."""
    hasher = MinHasher(num_perm=bands * 4, seed=seed)
    signatures = np.stack([hasher.signature(t) for t in texts]) if texts else np.zeros((0, bands * 4))
    found = UnionFind(len(texts))
    by_exact: dict[str, int] = {}
    for i, text in enumerate(texts):
        key = exact_key(text)
        if key in by_exact:
            found.union(by_exact[key], i)
        else:
            by_exact[key] = i
    rows = signatures.shape[1] // bands
    for band in range(bands):
        buckets: dict[bytes, list[int]] = defaultdict(list)
        for i, sig in enumerate(signatures[:, band * rows:(band + 1) * rows]):
            buckets[sig.tobytes()].append(i)
        for members in buckets.values():
            first = members[0]
            for other in members[1:]:
                if found.find(first) != found.find(other) and np.mean(signatures[first] == signatures[other]) >= threshold:
                    found.union(first, other)
    return [found.find(i) for i in range(len(texts))]


def near_duplicates_of(texts: Sequence[str], references: Sequence[str], threshold: float = 0.7) -> list[bool]:
    """For each text, whether it is a (near-)duplicate of any reference text."""
    labels = cluster([*references, *texts], threshold=threshold)
    reference_clusters = set(labels[: len(references)])
    return [label in reference_clusters for label in labels[len(references):]]


class NearDuplicateIndex:
    """Incremental dedup: `add(text)` is False (and stores nothing) when `text` is an exact or
    near-duplicate of a text already added, True otherwise.

    The streaming counterpart of `cluster`, for pipelines that write records as they are made
    (LLM generation) and so cannot cluster the whole set at the end. Same shingles, bands and
    threshold.
    """

    def __init__(self, threshold: float = 0.7, bands: int = 16, seed: int = 1) -> None:
        self.threshold, self.bands = threshold, bands
        self.hasher = MinHasher(num_perm=bands * 4, seed=seed)
        self.exact: set[str] = set()
        self.buckets: list[dict[bytes, list[np.ndarray]]] = [defaultdict(list) for _ in range(bands)]

    def _bands(self, signature: np.ndarray) -> list[bytes]:
        rows = len(signature) // self.bands
        return [signature[b * rows:(b + 1) * rows].tobytes() for b in range(self.bands)]

    def contains(self, text: str) -> bool:
        if exact_key(text) in self.exact:
            return True
        signature = self.hasher.signature(text)
        return any(np.mean(signature == other) >= self.threshold
                   for band, key in zip(self.buckets, self._bands(signature), strict=True) for other in band.get(key, ()))

    def add(self, text: str) -> bool:
        if self.contains(text):
            return False
        self.exact.add(exact_key(text))
        signature = self.hasher.signature(text)
        for band, key in zip(self.buckets, self._bands(signature), strict=True):
            band[key].append(signature)
        return True
