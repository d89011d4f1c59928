"""Guard artifacts: a directory with `manifest.json`, the constitution and `.npz` weights.

Never pickle: weights are plain arrays loaded with `allow_pickle=False`, everything else is
JSON or YAML, so loading an artifact cannot execute code. Every weight file's sha256 is in
the manifest and verified at load. Saving writes a temporary sibling directory and renames
it into place, so a crash never leaves a half-written artifact.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bastion.errors import ArtifactError

FORMAT = "bastion-guard"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_artifact(directory: Path, manifest: dict[str, Any], arrays: dict[str, dict[str, np.ndarray]], texts: dict[str, str],
                  copies: dict[str, Path] | None = None) -> None:
    """Write `arrays` (name -> arrays), `texts` (name -> text) and `copies` (name -> file) plus the manifest."""
    directory = directory.resolve()
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for name, content in arrays.items():
            np.savez_compressed(staging / name, **content)
        for name, text in texts.items():
            (staging / name).write_text(text, encoding="utf-8")
        for name, source in (copies or {}).items():
            shutil.copyfile(source, staging / name)
        staging.chmod(0o755)  # mkdtemp makes it private; an artifact is meant to be shared
        files = {p.name: sha256_file(p) for p in sorted(staging.iterdir())}
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest, "files": files}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        replace_directory(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def copy_artifact(source: Path, directory: Path) -> None:
    """Copy an artifact directory to `directory` atomically (replacing what is there)."""
    directory = directory.resolve()
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        staging.chmod(0o755)
        replace_directory(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def replace_directory(staging: Path, directory: Path) -> None:
    """Rename `staging` to `directory`; an existing one is moved aside first, then removed."""
    if directory.exists():
        backup = directory.with_name(f".{directory.name}.old")
        shutil.rmtree(backup, ignore_errors=True)
        os.replace(directory, backup)
        os.replace(staging, directory)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(staging, directory)


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not directory.is_dir():
        raise ArtifactError(f"{directory}: not a guard artifact directory")
    if not path.is_file():
        raise ArtifactError(f"{directory}: missing {MANIFEST}; is this a guard artifact?")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: corrupt manifest ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path}: not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: artifact format version {manifest.get('format_version')} is not supported "
            f"by this Bastion (reads {FORMAT_VERSION}); upgrade Bastion or retrain the guard"
        )
    return manifest


def verified_path(directory: Path, manifest: dict[str, Any], name: str) -> Path:
    """Path of an artifact file whose sha256 matches the manifest."""
    expected = manifest.get("files", {}).get(name)
    path = directory / name
    if expected is None:
        raise ArtifactError(f"{directory}: {name} is not listed in the manifest")
    if not path.is_file():
        raise ArtifactError(f"{directory}: {name} is missing")
    if sha256_file(path) != expected:
        raise ArtifactError(f"{directory}: {name} does not match its sha256 in the manifest (corrupt or modified)")
    return path


def load_arrays(directory: Path, manifest: dict[str, Any], name: str) -> dict[str, np.ndarray]:
    path = verified_path(directory, manifest, name)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (ValueError, OSError) as exc:
        raise ArtifactError(f"{path}: unreadable weights ({exc})") from exc
