"""The Example record: one labelled prompt or conversation, optionally with a response.

This is the unit every part of Bastion passes around: loaders produce it, transforms map it
to disguised copies (keeping provenance), classifiers read its rendered text, and the JSONL
contract of DESIGN.md is its serialised form.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bastion.errors import RecordError

Role = Literal["system", "developer", "user", "assistant", "tool"]
Kind = Literal["input", "output", "exchange"]

_LABEL_WORDS = {
    "harmful": 1, "unsafe": 1, "restricted": 1, "jailbreak": 1, "flagged": 1, "1": 1, "true": 1,
    "benign": 0, "safe": 0, "permitted": 0, "harmless": 0, "0": 0, "false": 0,
}


class Message(BaseModel):
    """One chat turn in OpenAI's format; content parts are flattened to their text."""

    model_config = ConfigDict(extra="ignore")

    role: Role
    content: str = ""

    @field_validator("content", mode="before")
    @classmethod
    def _flatten_parts(cls, value: object) -> object:
        if value is None:
            return ""
        if isinstance(value, list):  # [{"type": "text", "text": ...}, ...]
            texts = [p.get("text", "") for p in value if isinstance(p, dict)]
            return "\n".join(t for t in texts if isinstance(t, str))
        return value


class Example(BaseModel):
    """A labelled record. `label` is 1 for restricted content, 0 for benign, None if unknown."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    prompt: str | None = None
    messages: list[Message] | None = None
    response: str | None = None
    label: int | None = Field(default=None, description="1 restricted, 0 benign, None unknown")
    categories: list[str] = Field(
        default_factory=list, description="Restricted category ids this record belongs to."
    )
    source: str = Field(default="user", description="Where the record came from.")
    transform: str | None = Field(default=None, description="Transform id that produced it.")
    group: str | None = Field(default=None, description="Leak-free split group.")

    @field_validator("label", mode="before")
    @classmethod
    def _coerce_label(cls, value: object) -> object:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, str):
            key = value.strip().lower()
            if key not in _LABEL_WORDS:
                raise ValueError(f"unknown label {value!r}; use 0/1, safe/unsafe or benign/harmful")
            return _LABEL_WORDS[key]
        return value

    @field_validator("categories", mode="before")
    @classmethod
    def _single_category(cls, value: object) -> object:
        if value is None:
            return []
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _has_text(self) -> Example:
        if self.prompt is None and not self.messages:
            raise ValueError("a record needs either 'prompt' or a non-empty 'messages' list")
        if self.label not in (None, 0, 1):
            raise ValueError(f"label must be 0 or 1, got {self.label}")
        return self

    def conversation(self) -> list[Message]:
        """The input side as chat messages (a bare prompt is one user turn)."""
        if self.messages:
            return list(self.messages)
        return [Message(role="user", content=self.prompt or "")]

    def last_user_text(self) -> str:
        """Text of the final user turn: what transforms disguise."""
        for message in reversed(self.conversation()):
            if message.role == "user":
                return message.content
        return ""

    def with_last_user_text(self, text: str, **changes: object) -> Example:
        """A copy whose final user turn (or prompt) is replaced by `text`."""
        if self.messages:
            messages = list(self.messages)
            for i in range(len(messages) - 1, -1, -1):
                if messages[i].role == "user":
                    messages[i] = Message(role="user", content=text)
                    break
            return self.model_copy(update={"messages": messages, **changes})
        return self.model_copy(update={"prompt": text, **changes})


def render_conversation(messages: list[Message]) -> str:
    """Flatten a conversation to the single string the classifiers read.

    Roles are kept as plain markers so a model can tell who said what without depending on
    any model's chat template.
    """
    return "\n\n".join(f"[{m.role}] {m.content}" for m in messages)


def render(example: Example, kind: Kind = "input") -> str:
    """The text a classifier scores for `kind`: the input, the response, or both."""
    if kind == "input":
        return render_conversation(example.conversation())
    if example.response is None:
        raise RecordError(f"record {example.id!r} has no 'response' to score as {kind}")
    if kind == "output":
        return f"[assistant] {example.response}"
    return render_conversation(example.conversation()) + f"\n\n[assistant] {example.response}"


_TURN = re.compile(r"(?:^|\n\n)\[(" + "|".join(get_args(Role)) + r")\] ")


def parse_conversation(text: str) -> list[Message]:
    """Split a `render_conversation` string back into turns; rendering them again gives `text` exactly."""
    parts = _TURN.split(text)
    if parts[0] or len(parts) < 3:
        raise ValueError("not a rendered conversation (expected '[role] text' turns)")
    return [Message(role=role, content=content) for role, content in zip(parts[1::2], parts[2::2], strict=True)]  # type: ignore[arg-type]


def from_audit_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row of `bastion audit export` as a record: its request id, the input it screened, the response released.

    Chat rows hold the conversation as the server rendered it, so it is split back into turns
    and a rescore reads the same text the server did; moderation rows hold the prompt itself.
    """
    if row.get("input_text") is None:
        raise ValueError("audit row keeps no input text: only rows logged with the server's audit text policy "
                         "'full' can be rescored ('hash' and 'none' keep digests only)")
    record: dict[str, Any] = {"id": row["request_id"], "response": row.get("output_text")}
    if row.get("endpoint") == "chat":
        record["messages"] = parse_conversation(row["input_text"])
    else:
        record["prompt"] = row["input_text"]
    return record
