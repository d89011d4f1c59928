"""The LLM judge: policy-as-prompt classification against a constitution.

Like gpt-oss-safeguard and Llama Guard, the policy is the prompt: the constitution's
restricted and permitted categories, rendered into the `judge` template, and the model
answers with one JSON object, `{"violation": true|false, "category": "<id>"|null}`. The
parser is strict — one object, exactly those keys, a known category id — because a lenient
parser turns a rambling answer into a verdict nobody asked for. An answer it rejects, or a
backend that fails, gives a Judgement with `error` set and no decision; callers fall back to
the classifier's verdict and record why (`bastion.guard.judged`, the red-team defence).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bastion.constitution import Constitution
from bastion.data.records import Example, Kind, render
from bastion.errors import BackendError
from bastion.guard.verdict import Verdict
from bastion.llm.backend import Backend
from bastion.llm.templates import template

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
KIND_WORDS = {"input": "user request", "output": "assistant response",
              "exchange": "conversation (the user's request and the assistant's response)"}
FLAG_EDGE = 0.5  # verdict scores are calibrated so that 0.5 is the threshold


@dataclass(frozen=True)
class Judgement:
    """The judge's decision, or why there is none (`error`: judge_parse_error / judge_backend_error)."""

    violation: bool | None
    category: str | None
    raw: str
    error: str | None = None


def parse_judgement(text: str, categories: Sequence[str]) -> tuple[bool, str | None]:
    """(violation, category) from an answer; ValueError saying what is wrong otherwise."""
    body = text.strip()
    if fenced := _FENCE.match(body):
        body = fenced.group(1)
    try:
        answer = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a JSON object ({exc.msg})") from exc
    if not isinstance(answer, dict) or set(answer) != {"violation", "category"}:
        raise ValueError("expected exactly the keys 'violation' and 'category'")
    violation, category = answer["violation"], answer["category"]
    if not isinstance(violation, bool):
        raise ValueError("'violation' must be true or false")
    if violation and category not in categories:
        raise ValueError(f"'category' {category!r} is not a restricted category id")
    if not violation and category is not None:
        raise ValueError("'category' must be null when there is no violation")
    return violation, category


def overrule(verdict: Verdict, judgement: Judgement) -> Verdict:
    """The verdict after the judge: its side of the threshold from the judge, its order within a side from the score.

    An undecided judgement leaves the verdict as it was and records the error.
    """
    if judgement.violation is None:
        return verdict.model_copy(update={"judge_error": judgement.error})
    if judgement.violation:
        categories = dict(verdict.categories)
        if judgement.category is not None:
            categories[judgement.category] = max(categories.get(judgement.category, 0.0), FLAG_EDGE)
        return verdict.model_copy(update={"score": max(verdict.score, FLAG_EDGE), "flagged": True, "stage": "judge",
                                          "category": judgement.category, "categories": categories})
    below = FLAG_EDGE - 1e-6
    return verdict.model_copy(update={"score": min(verdict.score, below), "flagged": False, "stage": "judge",
                                      "categories": {k: min(v, below) for k, v in verdict.categories.items()}})


class Judge:
    """Classifies examples against `constitution` with the LLM behind `backend`."""

    def __init__(self, constitution: Constitution, backend: Backend, *, max_tokens: int = 48) -> None:
        self.constitution, self.backend, self.max_tokens = constitution, backend, max_tokens

    def messages(self, example: Example, kind: Kind = "input") -> list[dict[str, str]]:
        """The policy-as-prompt request for one example."""
        c = self.constitution

        def rules(categories: Sequence[object]) -> str:
            return "\n".join(f"- {cat.id}: {cat.title}. {cat.description}" for cat in categories) or "- (none)"  # type: ignore[attr-defined]

        notes = "".join(f"\nNote: {note}" for note in c.notes)
        return template("judge").render(name=c.name, description=c.description, restricted=rules(c.restricted),
                                        permitted=rules(c.permitted), notes=notes + "\n" if notes else "",
                                        kind=KIND_WORDS[kind], content=render(example, kind))

    async def ajudge(self, example: Example, kind: Kind = "input") -> Judgement:
        try:
            completion = await self.backend.complete(self.messages(example, kind), max_tokens=self.max_tokens, temperature=0.0)
        except BackendError as exc:
            return Judgement(None, None, "", f"judge_backend_error: {exc}")
        try:
            violation, category = parse_judgement(completion.text, self.constitution.category_ids)
        except ValueError as exc:
            return Judgement(None, None, completion.text, f"judge_parse_error: {exc}")
        return Judgement(violation, category, completion.text)

    def judge_many(self, examples: Sequence[Example], kind: Kind = "input") -> list[Judgement]:
        """Judgements for a batch, requested concurrently (bounded by the backend's limit)."""
        if not examples:
            return []

        async def all_of() -> list[Judgement]:
            return list(await asyncio.gather(*(self.ajudge(e, kind) for e in examples)))

        return self.backend.submit(all_of()).result()
