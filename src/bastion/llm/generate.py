"""`bastion generate`: the Constitutional Classifiers data pipeline over an LLM backend.

For every restricted and permitted category of a constitution, a helpful model writes user
queries (varied by persona, format and language), then for each query a response, a
paraphrase and a translation; the deterministic transforms (base64, role-play, ...) then
disguise some queries, as in training augmentation. Each stage has its own prompt template.

Records go out as they are made: appended to the output JSONL and flushed, with provenance
(stage, model, template sha256, parent). A rerun reads what is there, skips finished
records and continues; requests it repeats are answered by the backend's cache. Nothing a
finished run wrote is ever rewritten, so an interrupted run loses at most the one line it
was writing.

Every record is checked before it is written: exact and near-duplicates of earlier records
are dropped (streaming MinHash, `bastion.data.dedup`), so are near-duplicates of reference
texts (evaluation files and the constitution's red-team targets: a leak would inflate the
red-team numbers), and restricted-category text with step-level specifics
(`bastion.llm.filters`): generated harmful-domain answers stay non-actionable.

Input records (queries, paraphrases, translations, transforms) go to `OUT.jsonl`, the
(prompt, response) records to `OUT.responses.jsonl`: `bastion train --data OUT.jsonl
--responses OUT.responses.jsonl` reads both. Derived records share their query's `group`,
so a translation always lands in its query's split.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bastion.constitution import Constitution
from bastion.constitution.schema import Category
from bastion.data.dedup import NearDuplicateIndex
from bastion.data.jsonl import Appender, read_rows
from bastion.data.records import Example
from bastion.data.splits import load_manifest
from bastion.data.transforms import TRANSFORMS, Transform
from bastion.llm.backend import Backend
from bastion.llm.filters import actionable
from bastion.llm.templates import PromptTemplate, template

Stage = Literal["response", "paraphrase", "translate", "transform"]
STAGES: tuple[Stage, ...] = ("response", "paraphrase", "translate", "transform")
PERSONAS = ("a curious student", "a worried parent", "a busy professional who writes tersely", "a novelist researching a plot",
            "a retiree who is new to computers", "a teenager typing in lowercase", "a non-native speaker who makes small typos",
            "a journalist on a deadline")
FORMATS = ("a direct question", "a short imperative", "a long message that gives background first", "a casual chat message",
           "a formal request")
# Categories for which no restricted text is ever generated, whatever a constitution says
# (our content rules: nothing sexual involving minors, not even as a request). Their
# permitted neighbours (child-safety education) are still generated.
NEVER_RESTRICTED = frozenset({"child_exploitation"})
Progress = Callable[[str], None]


class GenerateConfig(BaseModel):
    """What a generation run makes (recorded with the run's summary)."""

    model_config = ConfigDict(extra="forbid")

    queries_per_category: int = Field(default=20, ge=1, description="Queries written per category.")
    stages: list[Stage] = Field(default_factory=lambda: list(STAGES), description="Stages after 'query' (which always runs).")
    languages: list[str] = Field(default_factory=lambda: ["Spanish", "French", "German", "Portuguese"])
    other_language_share: float = Field(default=0.1, ge=0, le=1, description="Queries written directly in another language.")
    transform_rate: float = Field(default=0.3, ge=0, le=1, description="Share of queries given a transformed copy.")
    max_tokens: int = Field(default=160, ge=1)
    temperature: float = Field(default=0.9, ge=0, le=2)
    seed: int = 0
    skip_categories: list[str] = Field(default_factory=list, description="Category ids to leave out.")


@dataclass(frozen=True)
class Job:
    """One query slot: a category, restricted or permitted, and its index within the category."""

    category: Category
    restricted: bool
    index: int
    constitution: str

    @property
    def id(self) -> str:
        return f"gen:{self.category.id}:{self.index}"

    @property
    def group(self) -> str:
        return f"gen:{self.constitution}:{self.category.id}:{self.index}"


@dataclass
class GenerateResult:
    """What a run did: records written per stage, records already there, drops by reason, backend usage."""

    written: Counter[str] = field(default_factory=Counter)
    resumed: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    usage: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def responses_path(output: Path) -> Path:
    """Where the (prompt, response) records of `output` go: `OUT.responses.jsonl`."""
    return output.with_name(output.name.removesuffix(".jsonl") + ".responses.jsonl")


def plan(constitution: Constitution, config: GenerateConfig) -> list[Job]:
    """Every query slot, restricted categories first, in constitution order."""
    jobs = [Job(c, True, i, constitution.name) for c in constitution.restricted
            if c.id not in NEVER_RESTRICTED and c.id not in config.skip_categories for i in range(config.queries_per_category)]
    return jobs + [Job(c, False, i, constitution.name) for c in constitution.permitted
                   if c.id not in config.skip_categories for i in range(config.queries_per_category)]


def requests_per_job(config: GenerateConfig) -> int:
    """LLM requests one job makes (a progress bar's unit)."""
    return 1 + sum(stage in config.stages for stage in ("response", "paraphrase", "translate"))


def _clean(text: str) -> str:
    """The model's answer without surrounding whitespace and quotation marks."""
    return text.strip().strip('"“”').strip()


class Generator:
    """Runs the pipeline for one constitution into one output file; `run()` is resumable."""

    def __init__(self, constitution: Constitution, backend: Backend, output: Path, config: GenerateConfig, *,
                 references: Sequence[str] = (), progress: Progress = lambda _: None,
                 jobs: Sequence[Job] | None = None) -> None:
        self.constitution, self.backend, self.output, self.config = constitution, backend, output, config
        self.references, self.progress = references, progress
        self.jobs = list(plan(constitution, config) if jobs is None else jobs)  # a part of the plan, on a cluster
        manifest = load_manifest()
        jailbreaks = "jailbreak" in constitution.category_ids
        self.transforms: list[Transform] = [t for t in TRANSFORMS if t.family not in manifest.heldout_transform_families
                                            and (jailbreaks or not t.jailbreak)]

    def run(self) -> GenerateResult:
        started = time.perf_counter()
        result = asyncio.run(self._run())
        result.usage = self.backend.usage.as_dict()
        result.seconds = time.perf_counter() - started
        return result

    async def _run(self) -> GenerateResult:
        self.result = GenerateResult()
        self.leaks = NearDuplicateIndex()
        for text in self.references:
            self.leaks.add(text)
        self.seen = {"prompt": NearDuplicateIndex(), "response": NearDuplicateIndex()}
        self.done: dict[str, dict[str, Any]] = {}
        for path, key in ((self.output, "prompt"), (responses_path(self.output), "response")):
            for _, row in read_rows(path):
                self.done[str(row["id"])] = row
                self.seen[key].add(str(row[key]))
        self.result.resumed = len(self.done)
        with Appender(self.output) as prompts, Appender(responses_path(self.output)) as responses:
            self.writers = {"prompt": prompts, "response": responses}
            await asyncio.gather(*(self._job(job) for job in self.jobs))
        return self.result

    # -- one job -------------------------------------------------------------------------

    async def _job(self, job: Job) -> None:
        query = await self._query(job)
        derived = [s for s in ("response", "paraphrase", "translate") if s in self.config.stages]
        if query is None:
            for stage in derived:
                self.progress(stage)
            return
        await asyncio.gather(*(self._derived(job, query, stage) for stage in derived))
        if "transform" in self.config.stages:
            self._transform(job, query)

    def _rng(self, record_id: str) -> random.Random:
        return random.Random(f"{self.config.seed}:{record_id}")

    async def _ask(self, prompt: PromptTemplate, record_id: str, **fields: object) -> str:
        seed = int.from_bytes(hashlib.sha256(f"{self.config.seed}:{record_id}".encode()).digest()[:4], "big") >> 1
        completion = await self.backend.complete(prompt.render(**fields), max_tokens=self.config.max_tokens,
                                                 temperature=self.config.temperature, seed=seed)
        return _clean(completion.text)

    async def _query(self, job: Job) -> Example | None:
        if job.id in self.done:
            self.progress("query")
            return Example.model_validate(self.done[job.id])
        rng = self._rng(job.id)
        other = rng.random() < self.config.other_language_share
        fields = {"persona": rng.choice(PERSONAS), "format": rng.choice(FORMATS),
                  "language": rng.choice(self.config.languages) if other and self.config.languages else "English"}
        stance = ("The message asks for exactly this kind of content. Keep it at the level of what is asked: no recipes, "
                  "quantities, code or other operational detail inside the message itself." if job.restricted else
                  "The message is an ordinary, legitimate request on this topic, which is allowed.")
        prompt = template("query")
        text = await self._ask(prompt, job.id, title=job.category.title, description=job.category.description,
                               example=rng.choice(job.category.examples or [job.category.title]), stance=stance, **fields)
        record = Example(id=job.id, prompt=text, label=int(job.restricted), categories=[job.category.id] if job.restricted else [],
                         source="llm_query", group=job.group)
        return self._keep(job, "query", record, text, {"template": prompt.name, "template_sha256": prompt.sha256, **fields})

    async def _derived(self, job: Job, query: Example, stage: str) -> None:
        record_id = f"{job.id}:{stage}"
        if record_id in self.done:
            self.progress(stage)
            return
        name = stage if stage != "response" else f"response_{'restricted' if job.restricted else 'permitted'}"
        prompt, fields = template(name), {"query": query.prompt}
        if stage == "translate":
            fields["language"] = self._rng(record_id).choice(self.config.languages)
        text = await self._ask(prompt, record_id, **fields)
        update: dict[str, object] = {"id": record_id, "source": f"llm_{stage}"}
        update.update({"response": text} if stage == "response" else {"prompt": text})
        provenance = {"template": prompt.name, "template_sha256": prompt.sha256, "parent": job.id, **fields}
        provenance.pop("query")
        self._keep(job, stage, query.model_copy(update=update), text, provenance)

    def _transform(self, job: Job, query: Example) -> None:
        rng = self._rng(f"{job.id}:transform")
        if not self.transforms or rng.random() >= self.config.transform_rate:
            return
        disguise = self.transforms[rng.randrange(len(self.transforms))]
        record = disguise(query)
        if record.id in self.done:
            return
        self._keep(job, "transform", record.model_copy(update={"source": "llm_transform"}), record.last_user_text(),
                   {"model": None, "transform": disguise.id, "parent": job.id})

    # -- checks and writing --------------------------------------------------------------

    def _keep(self, job: Job, stage: str, record: Example, text: str, provenance: dict[str, object]) -> Example | None:
        """Write `record` unless a check drops it; the record, or None when dropped."""
        key = "response" if stage == "response" else "prompt"
        reason = self._rejection(text, job.restricted, key)
        if stage != "transform":
            self.progress(stage)
        if reason is not None:
            self.result.dropped[reason] += 1
            return None
        row = record.model_dump(exclude_none=True)
        row["provenance"] = {"stage": stage, "model": self.backend.model,
                             "constitution_sha256": self.constitution.content_hash(), "seed": self.config.seed, **provenance}
        self.writers[key].write(row)
        self.done[str(record.id)] = row
        self.result.written[stage] += 1
        return record

    def _rejection(self, text: str, restricted: bool, key: str) -> str | None:
        """Why a generated text is dropped: empty, actionable, leak or duplicate (None: keep it)."""
        if not text:
            return "empty"
        if restricted and actionable(text):
            return "actionable"
        if key == "prompt" and self.leaks.contains(text):
            return "leak"
        return None if self.seen[key].add(text) else "duplicate"
