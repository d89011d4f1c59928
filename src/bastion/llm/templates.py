"""Prompt templates: one file per LLM stage under `bastion/llm/prompts/`, hashed for provenance.

A template file has a `[system]` and a `[user]` section (lines starting with `#` before
the first section are comments) and `${field}` placeholders (string.Template, so JSON
braces in a prompt need no escaping). Every generated record names the template's sha256,
so a change to a prompt is visible in the data it produced.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template

from bastion.errors import ConfigError

_SECTION = re.compile(r"^\[(system|user)\]\s*$", re.MULTILINE)


@dataclass(frozen=True)
class PromptTemplate:
    """A named chat prompt: `render(**fields)` gives the messages, `sha256` identifies the file."""

    name: str
    system: str
    user: str
    sha256: str

    def render(self, **fields: object) -> list[dict[str, str]]:
        try:
            return [{"role": "system", "content": Template(self.system).substitute(fields).strip()},
                    {"role": "user", "content": Template(self.user).substitute(fields).strip()}]
        except KeyError as exc:
            raise ConfigError(f"prompt template {self.name!r} needs the field {exc.args[0]!r}") from exc


@cache
def template(name: str) -> PromptTemplate:
    """The packaged template `prompts/<name>.txt`."""
    path = resources.files("bastion") / "llm" / "prompts" / f"{name}.txt"
    if not path.is_file():
        raise ConfigError(f"no prompt template {name!r} (bastion/llm/prompts/{name}.txt)")
    text = path.read_text(encoding="utf-8")
    parts = _SECTION.split(text)
    sections = dict(zip(parts[1::2], parts[2::2], strict=True))
    if set(sections) != {"system", "user"}:
        raise ConfigError(f"prompt template {name!r} needs one [system] and one [user] section")
    return PromptTemplate(name, sections["system"], sections["user"], hashlib.sha256(text.encode("utf-8")).hexdigest())
