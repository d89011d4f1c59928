"""The request bodies Bastion accepts, in OpenAI's wire format, and the text it screens.

Unknown fields pass through untouched (the upstream may understand them); what Bastion
must read is validated strictly, so a malformed request is a 400 that names the field.
Content-part arrays contribute their text parts; tool calls contribute their function names
and arguments, and tool results their content, because a jailbreak can ride in any of them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bastion.data.records import Example, Kind, Message

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = ""
    arguments: str = ""


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = "function"
    function: FunctionCall = Field(default_factory=FunctionCall)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[ContentPart] | None = None
    tool_calls: list[ToolCall] | None = None

    def screened_text(self) -> str:
        """All the text in this message that could carry an instruction."""
        pieces: list[str] = []
        if isinstance(self.content, str):
            pieces.append(self.content)
        elif self.content:
            pieces += [part.text for part in self.content if part.text]
        for call in self.tool_calls or []:
            pieces.append(f"{call.function.name}({call.function.arguments})")
        return "\n".join(pieces)


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False

    def conversation(self) -> list[Message]:
        """The conversation as the guard reads it (legacy `function` turns read as `tool`)."""
        return [Message(role="tool" if m.role == "function" else m.role, content=m.screened_text())
                for m in self.messages]


class ModerationRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    input: str | list[str] | list[ContentPart]
    model: str | None = None

    def texts(self) -> list[str]:
        """One text per result: strings one each; a content-part array is one input."""
        if isinstance(self.input, str):
            return [self.input]
        if all(isinstance(item, str) for item in self.input):
            return list(self.input)  # type: ignore[arg-type]
        return ["\n".join(part.text for part in self.input if isinstance(part, ContentPart) and part.text)]


class ClassifyRequest(BaseModel):
    """Bastion's native records (the JSONL format of `bastion score`), scored as a batch."""

    model_config = ConfigDict(extra="forbid")

    records: list[Example] = Field(min_length=1, max_length=1000)
    kind: Kind = "input"


class ReloadRequest(BaseModel):
    """`POST /admin/reload`: the artifact to load (default: the configured guard, re-read)."""

    model_config = ConfigDict(extra="forbid")

    guard: str | None = None


def error_body(message: str, *, type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """OpenAI's error object, so existing clients raise their usual exceptions."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}
