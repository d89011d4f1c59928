"""Read a constitution from a bundled name or a YAML file, with errors that say where."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from bastion.constitution.schema import Constitution
from bastion.errors import ConstitutionError
from bastion.yamlfile import read_mapping, validate

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


def parse(text: str, origin: str) -> Constitution:
    """Validate YAML text; `origin` names the file in error messages."""
    data = read_mapping(text, origin, ConstitutionError)
    if not data:
        raise ConstitutionError(f"{origin}: expected a mapping at the top level")
    return validate(Constitution, data, origin, ConstitutionError, "constitution")


def load(name_or_path: str | Path) -> Constitution:
    """Load and validate a constitution by bundled name or file path."""
    path = resolve(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConstitutionError(f"{path}: not UTF-8 text") from exc
    return parse(text, str(path))
