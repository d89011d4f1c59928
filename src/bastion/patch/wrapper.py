"""Observed jailbreak -> wrapper: the conversation around the embedded request.

A wrapper is the observed conversation with the request replaced by `{request}`. Where the
user marked the request with `{request}` we take it as is. Otherwise the request is found:
with two or more examples of one attack, it is the span where an example differs from its
most similar sibling (what they share is template); with one, it is the sentence the parent
guard's topical heads (not `any`, not `jailbreak`, which fire on the template) score as
most restricted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bastion.data.jsonl import read_examples
from bastion.data.records import Example, Message
from bastion.errors import RecordError
from bastion.guard import Guard
from bastion.guard.wrappers import PLACEHOLDER
from bastion.models.linear import ANY

JAILBREAK = "jailbreak"  # a category about the wrapper itself, so it cannot point at the request
MIN_REQUEST_WORDS = 3
SIBLING_SIMILARITY = 0.5  # below this, two examples are not taken to share a template
_SENTENCES = re.compile(r"[^\n.!?:]+[.!?]*")
_QUOTED = re.compile(r"(?<=['\"])[^'\"\n]+(?=['\"])")
_LEADS = ":\n'\"."


@dataclass(frozen=True)
class Observed:
    """One observed jailbreak and where it came from (for error messages and lineage)."""

    example: Example
    where: str  # "file" or "file: line N"


@dataclass(frozen=True)
class Wrapper:
    """The observed conversation with exactly one `{request}` slot."""

    turns: tuple[Message, ...]
    source: str

    def apply(self, request: str) -> list[Message]:
        return [Message(role=m.role, content=m.content.replace(PLACEHOLDER, request)) for m in self.turns]


def read_jailbreaks(paths: Sequence[Path]) -> list[Observed]:
    """Observed jailbreaks: a `.jsonl` file holds one record a line, any other file one prompt."""
    observed: list[Observed] = []
    for path in paths:
        if not path.is_file():
            raise RecordError(f"{path}: no such file")
        if path.suffix == ".jsonl":
            rows = [Observed(e, f"{path}: record {e.id}") for e in read_examples(path)]
        else:
            text = path.read_text(encoding="utf-8", errors="replace").strip()
            rows = [Observed(Example(id=path.name, prompt=text), str(path))] if text else []
        if not rows:
            raise RecordError(f"{path}: empty file; give the jailbreak's text (or JSONL records with 'prompt' or 'messages')")
        observed.extend(rows)
    return observed


def infer_wrappers(observed: Sequence[Observed], guard: Guard) -> list[Wrapper]:
    """One wrapper per observed jailbreak."""
    return [_wrapper_of(item, [o for o in observed if o is not item], guard) for item in observed]


def _wrapper_of(item: Observed, siblings: Sequence[Observed], guard: Guard) -> Wrapper:
    turns = item.example.conversation()
    user = [i for i, m in enumerate(turns) if m.role == "user"]
    marked = [i for i in user if PLACEHOLDER in turns[i].content]
    if marked:
        return Wrapper(tuple(turns), item.where)
    found = _span_by_difference(turns, user, siblings) or _span_by_score(turns, user, guard)
    if found is None:
        raise RecordError(f"{item.where}: no request found (no user sentence of {MIN_REQUEST_WORDS}+ words); "
                          f"mark the request with {PLACEHOLDER}")
    index, start, end = found
    content = turns[index].content
    if not (content[:start] + content[end:]).strip():
        raise RecordError(f"{item.where}: the whole text reads as the request, so there is no wrapper to learn; "
                          f"mark the request with {PLACEHOLDER}")
    turns[index] = Message(role="user", content=content[:start] + PLACEHOLDER + content[end:])
    return Wrapper(tuple(turns), item.where)


def _span_by_difference(turns: list[Message], user: list[int], siblings: Sequence[Observed]) -> tuple[int, int, int] | None:
    """What is left of a user turn once the text shared with every similar sibling is cut away.

    Siblings count when they have the same turn layout and share most of the turn. The
    shared prefix is cut back to the last punctuation (a template leads into its request with
    ": " or a quote), so a word the requests happen to share at their start stays in the request.
    """
    for i in user:
        mine = turns[i].content
        others = [o.example.conversation()[i].content for o in siblings
                  if [m.role for m in o.example.conversation()] == [m.role for m in turns]]
        head = min((_shared_prefix(mine, t) for t in others), default=0)
        tail = min((_shared_prefix(mine[head:][::-1], t[head:][::-1]) for t in others), default=0)
        if not others or (head + tail) / max(len(mine), 1) < SIBLING_SIMILARITY:
            continue
        start = max(mine.rfind(c, 0, head) for c in _LEADS) + 1
        end = len(mine) - tail
        while 0 < end < len(mine) and mine[end - 1].isalnum() and mine[end].isalnum():
            end += 1  # the requests share the end of a word: it is theirs, not the template's
        if end < len(mine) and mine[end] in ".?!" and (end + 1 == len(mine) or not mine[end + 1].isalnum()):
            end += 1  # and their closing punctuation
        if len(mine[start:end].split()) >= MIN_REQUEST_WORDS:
            return i, start + len(mine[start:end]) - len(mine[start:end].lstrip()), end
    return None


def _shared_prefix(a: str, b: str) -> int:
    return next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _span_by_score(turns: list[Message], user: list[int], guard: Guard) -> tuple[int, int, int] | None:
    """The sentence or quoted span (in any user turn) the guard's topical heads score highest."""
    spans = [(i, m.start(), m.end()) for i in user for pattern in (_SENTENCES, _QUOTED)
             for m in pattern.finditer(turns[i].content) if len(m.group().split()) >= MIN_REQUEST_WORDS]
    if not spans:
        return None
    texts = [guard.normalizer(f"[user] {turns[i].content[a:b].strip()}") for i, a, b in spans]
    topical = [k for k, head in enumerate(guard.stage1.heads) if head not in (ANY, JAILBREAK)]
    logits = guard.stage1.decision_function(texts)[:, topical] - guard.thresholds[topical]
    i, a, b = spans[int(logits.max(axis=1).argmax())]
    text = turns[i].content[a:b]
    return i, a + len(text) - len(text.lstrip()), b - len(text) + len(text.rstrip())
