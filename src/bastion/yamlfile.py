"""YAML files validated by pydantic models, with errors that say which file and which field.

Constitutions and server configurations are both data in YAML; operators fix them from the
error message alone, so every problem is reported as `file: field.path (id 'x'): message`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from bastion.errors import BastionError, ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)
SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def field_path(loc: tuple[object, ...], data: object) -> str:
    """Render a pydantic location with item ids instead of bare list indices."""
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


def read_mapping(text: str, origin: str, error: type[BastionError]) -> dict[str, Any]:
    """Parse YAML text that must hold a mapping; `origin` names the file in errors."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{origin}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{origin}: expected a mapping at the top level")
    return data


def validation_message(exc: ValidationError, data: object, origin: str, what: str) -> str:
    """One line per problem, each naming its field path."""
    problems = [f"  {field_path(e['loc'], data)}: {e['msg']}" for e in exc.errors()]
    return f"{origin}: invalid {what}\n" + "\n".join(problems)


def validate(model: type[ModelT], data: dict[str, Any], origin: str, error: type[BastionError], what: str) -> ModelT:
    """`model.model_validate(data)`, raising `error` with a located message."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(validation_message(exc, data, origin, what)) from exc


class _Mapping(PydanticBaseSettingsSource):
    """A settings source holding a YAML file's contents (lowest priority)."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self.data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self.data


def load_layered(settings: type[SettingsT], path: Path | None, what: str, **overrides: Any) -> SettingsT:
    """Settings from a YAML file < environment variables < `overrides` (command-line options; None = not given).

    Errors are ConfigErrors naming the file and each bad field, so an operator can fix a
    configuration from the message alone.
    """
    origin = str(path) if path else what
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = read_mapping(path.read_text(encoding="utf-8"), origin, ConfigError)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror})") from exc

    class _FromFile(settings):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                       env_settings: PydanticBaseSettingsSource, **_: PydanticBaseSettingsSource
                                       ) -> tuple[PydanticBaseSettingsSource, ...]:
            return init_settings, env_settings, _Mapping(settings_cls, data)

    prefix = settings.model_config.get("env_prefix", "")
    try:
        return _FromFile(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, data, f"{origin} (with {prefix}* variables and options)", what)) from exc
