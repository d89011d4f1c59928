"""Read a constitution from a bundled name or a YAML file, with errors that say where."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from bastion.constitution.schema import Constitution
from bastion.errors import ConstitutionError

BUNDLED_DIR = "constitutions"


def bundled_names() -> list[str]:
    """Names of the constitutions shipped inside the package."""
    folder = resources.files("bastion") / BUNDLED_DIR
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def resolve(name_or_path: str | Path) -> Path:
    """A bundled name (`general`) or a path to a YAML file, as a readable path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConstitutionError(f"{path}: no such constitution file")
        return path
    if str(name_or_path) in bundled_names():
        return Path(str(resources.files("bastion") / BUNDLED_DIR / f"{name_or_path}.yaml"))
    raise ConstitutionError(
        f"unknown constitution {str(name_or_path)!r}: give a YAML file or one of "
        f"{', '.join(bundled_names())}"
    )


def _field_path(loc: tuple[object, ...], data: object) -> str:
    """Render a pydantic location with category ids instead of bare list indices."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int) and isinstance(node, list):
            item = node[key] if key < len(node) else None
            label = item.get("id") if isinstance(item, dict) else None
            parts[-1] = f"{parts[-1]}[{key}]" + (f" (id {label!r})" if label else "")
            node = item
        else:
            parts.append(str(key))
            node = node.get(key) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


def parse(text: str, origin: str) -> Constitution:
    """Validate YAML text; `origin` names the file in error messages."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConstitutionError(f"{origin}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise ConstitutionError(f"{origin}: expected a mapping at the top level")
    try:
        return Constitution.model_validate(data)
    except ValidationError as exc:
        problems = [f"  {_field_path(e['loc'], data)}: {e['msg']}" for e in exc.errors()]
        raise ConstitutionError(f"{origin}: invalid constitution\n" + "\n".join(problems)) from exc


def load(name_or_path: str | Path) -> Constitution:
    """Load and validate a constitution by bundled name or file path."""
    path = resolve(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConstitutionError(f"{path}: not UTF-8 text") from exc
    return parse(text, str(path))
