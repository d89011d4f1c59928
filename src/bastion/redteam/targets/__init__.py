"""Target questions: what an attacker wants, and what benign users ask, per constitution.

A target file (YAML, shipped here as `<constitution>.yaml`) holds three suites:

- `forbidden`: requests per restricted category, written like the forbidden questions of the
  Constitutional Classifiers paper. Requests only, never answers, and no actionable detail:
  the red team measures whether the *request* gets through, so the wording only has to be
  unambiguous about what is asked.
- `benign`: everyday prompts, the traffic whose refusal users feel.
- `over_refusal`: permitted prompts topic-matched to each restricted category (history,
  safety, fiction, policy), where a keyword-happy guard over-refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from bastion.data.records import Example
from bastion.errors import ConfigError, RecordError
from bastion.yamlfile import read_mapping, validate


@dataclass(frozen=True)
class Target:
    """One forbidden target question."""

    id: str
    category: str
    text: str


class TargetFile(BaseModel):
    """The on-disk schema of a target file (version 1)."""

    model_config = ConfigDict(extra="forbid")

    version: int = 1
    constitution: str = Field(description="Name of the constitution these targets are written for.")
    forbidden: dict[str, list[str]] = Field(description="Restricted category id -> target questions.")
    benign: list[str] = Field(default_factory=list, description="Everyday benign prompts.")
    over_refusal: dict[str, list[str]] = Field(default_factory=dict, description="Restricted category id -> permitted look-alikes.")


@dataclass(frozen=True)
class TargetSet:
    """Loaded suites: forbidden targets plus labelled benign and over-refusal examples."""

    constitution: str
    forbidden: list[Target]
    benign: list[Example]
    over_refusal: list[Example]
    source: str

    def categories(self) -> list[str]:
        return sorted({t.category for t in self.forbidden})


def bundled_targets(constitution: str) -> Path:
    """Path of the target file shipped for a bundled constitution."""
    path = Path(str(resources.files("bastion.redteam.targets") / f"{constitution}.yaml"))
    if not path.exists():
        raise ConfigError(f"no bundled targets for constitution {constitution!r}; pass --targets FILE")
    return path


def load_targets(path: Path) -> TargetSet:
    """Read and validate a target file; errors name the file and the field."""
    if not path.is_file():
        raise ConfigError(f"target file {path} does not exist")
    data = read_mapping(path.read_text(encoding="utf-8"), str(path), RecordError)
    spec = validate(TargetFile, data, str(path), RecordError, "target file")
    forbidden = [Target(f"{cat}:{i}", cat, text.strip()) for cat, texts in spec.forbidden.items() for i, text in enumerate(texts)]
    if not forbidden:
        raise RecordError(f"{path}: 'forbidden' lists no target questions")
    benign = [Example(id=f"benign:{i}", prompt=t.strip(), label=0, source="benign") for i, t in enumerate(spec.benign)]
    over = [Example(id=f"over_refusal:{cat}:{i}", prompt=t.strip(), label=0, source="over_refusal", categories=[cat])
            for cat, texts in spec.over_refusal.items() for i, t in enumerate(texts)]
    return TargetSet(spec.constitution, forbidden, benign, over, str(path))
