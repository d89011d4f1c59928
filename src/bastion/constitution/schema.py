"""The constitution: what is restricted, what is explicitly permitted, and at what budget.

A constitution is data (YAML) validated by these models. Its content hash is recorded in
every artifact and report, so a verdict can always be traced to the rules it applied.
"""

from __future__ import annotations

import hashlib
import json
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


class Category(BaseModel):
    """One restricted or permitted category: natural-language rules plus examples."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Stable identifier: lowercase letters, digits, underscores.")
    title: str = Field(min_length=1)
    description: str = Field(min_length=1, description="The rule, in natural language.")
    examples: list[str] = Field(default_factory=list, description="Example prompts.")
    threshold: float | None = Field(
        default=None, gt=0.0, lt=1.0, description="Raw-score threshold overriding calibration."
    )
    input_only: bool = Field(
        default=False, description="Scored on inputs only (e.g. jailbreak attempts)."
    )
    pairs_with: list[str] = Field(
        default_factory=list,
        description="For permitted categories: the restricted categories they sit beside.",
    )
    external: dict[str, str] = Field(
        default_factory=dict, description="Codes in other taxonomies, e.g. {llama_guard_3: S1}."
    )

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"{value!r} is not a valid id (use lowercase letters, digits, _)")
        return value


class OperatingPoint(BaseModel):
    """The one budget a guard is calibrated to (DESIGN.md, 'Operating point')."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_fpr: float = Field(default=0.01, gt=0.0, lt=0.5)


class Constitution(BaseModel):
    """A validated constitution; use `bastion.constitution.load` to read one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    description: str = Field(min_length=1)
    refusal_message: str = Field(min_length=1)
    operating_point: OperatingPoint = Field(default_factory=OperatingPoint)
    notes: list[str] = Field(
        default_factory=list, description="How categories count and where they end."
    )
    restricted: list[Category] = Field(min_length=1)
    permitted: list[Category] = Field(default_factory=list)

    @field_validator("schema_version")
    @classmethod
    def _known_schema(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(f"schema_version {value} is not supported (this Bastion reads {SCHEMA_VERSION})")
        return value

    @model_validator(mode="after")
    def _consistent_ids(self) -> Constitution:
        ids = [c.id for c in self.restricted] + [c.id for c in self.permitted]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"category ids must be unique; repeated: {', '.join(duplicates)}")
        restricted = set(self.category_ids)
        for category in self.permitted:
            unknown = [r for r in category.pairs_with if r not in restricted]
            if unknown:
                raise ValueError(
                    f"permitted category {category.id!r} pairs_with unknown restricted ids: {unknown}"
                )
        return self

    @property
    def category_ids(self) -> list[str]:
        """Restricted category ids, in file order: the classifier's label space."""
        return [c.id for c in self.restricted]

    def category(self, category_id: str) -> Category:
        for category in [*self.restricted, *self.permitted]:
            if category.id == category_id:
                return category
        raise KeyError(category_id)

    def content_hash(self) -> str:
        """sha256 of the canonical JSON form: stable across YAML formatting and key order."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
