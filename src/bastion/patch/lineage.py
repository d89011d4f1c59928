"""Lineage: where a patched guard came from, and the way back.

A patched artifact's manifest has a `lineage` section naming its parent (path and the sha256
of the parent's manifest, which pins every parent file through their hashes), the patch
inputs (hashes and counts) and before/after metrics. Rollback copies the parent back only if
its manifest still has that hash, so a parent changed since cannot be restored by mistake.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bastion.errors import ArtifactError
from bastion.models.artifacts import MANIFEST, copy_artifact, read_manifest, sha256_file


def parent_record(directory: Path) -> dict[str, Any]:
    """The parent's identity: resolved path and manifest sha256."""
    directory = directory.resolve()
    return {"path": str(directory), "manifest_sha256": sha256_file(directory / MANIFEST)}


def rollback(patched: Path, output: Path | None = None) -> Path:
    """Restore `patched`'s parent to `output` (in place over `patched` when None); returns where."""
    lineage = read_manifest(patched).get("lineage")
    if not lineage or "parent" not in lineage:
        raise ArtifactError(f"{patched}: has no lineage in its manifest; only a patched guard can be rolled back")
    parent = Path(lineage["parent"]["path"])
    if not (parent / MANIFEST).is_file():
        raise ArtifactError(f"{patched}: parent guard {parent} is gone; it cannot be restored")
    actual = sha256_file(parent / MANIFEST)
    if actual != lineage["parent"]["manifest_sha256"]:
        raise ArtifactError(f"{patched}: parent guard {parent} has changed since the patch (manifest sha256 "
                            f"{actual[:12]}, expected {lineage['parent']['manifest_sha256'][:12]}); refusing to restore it")
    target = output or patched
    copy_artifact(parent, target)
    return target
