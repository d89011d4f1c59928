"""Loaders for the development pool under BASTION_DATA_DIR.

Each source maps one public dataset to labelled Examples with a `source` name, a licence
and whether the bundled guard may train on it (MIT / Apache / CC-BY yes; CC-BY-NC and
unknown licences are for evaluation only). Category names of each dataset are mapped onto
the `general` constitution's ids where the mapping is clear and left empty otherwise (the
record still counts for the overall score).
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bastion.data.records import Example, Message
from bastion.errors import DataUnavailableError

Loader = Callable[[Path], Iterator[Example]]


@dataclass(frozen=True)
class Source:
    """A dataset in the development pool."""

    name: str
    path: str  # relative to the data dir: a file or folder that must exist
    licence: str
    trainable: bool
    loader: Loader
    doc: str


def _csv_rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        yield from csv.DictReader(handle)


def _example(source: str, key: object, text: str, label: int, category: str | None = None, **extra: object) -> Example:
    return Example(
        id=f"{source}:{key}", prompt=text.strip(), label=label,
        categories=[category] if category else [], source=source, **extra,  # type: ignore[arg-type]
    )


STRONGREJECT = {
    "Hate, harassment and discrimination": "hate", "Illegal goods and services": "nonviolent_crimes",
    "Non-violent crimes": "nonviolent_crimes", "Sexual content": "sexual_content", "Violence": "violent_crimes",
}
JBB = {
    "Harassment/Discrimination": "hate", "Malware/Hacking": "code_interpreter_abuse",
    "Physical harm": "violent_crimes", "Economic harm": "nonviolent_crimes",
    "Fraud/Deception": "nonviolent_crimes", "Sexual/Adult content": "sexual_content",
    "Privacy": "privacy", "Expert advice": "specialized_advice",
}
CATQA = {
    "Illegal Activity": "nonviolent_crimes", "Child Abuse": "child_exploitation",
    "Hate/Harass/Violence": "hate", "Malware Viruses": "code_interpreter_abuse",
    "Physical Harm": "violent_crimes", "Economic Harm": "nonviolent_crimes",
    "Fraud/Deception": "nonviolent_crimes", "Adult Content": "sexual_content",
    "Privacy Violation Activity": "privacy", "Tailored Financial Advice": "specialized_advice",
}
FORBIDDEN_QUESTIONS = {
    "Illegal Activity": "nonviolent_crimes", "Hate Speech": "hate", "Malware": "code_interpreter_abuse",
    "Physical Harm": "violent_crimes", "Economic Harm": "nonviolent_crimes", "Fraud": "nonviolent_crimes",
    "Pornography": "sexual_content", "Privacy Violence": "privacy",
}


def load_advbench(root: Path) -> Iterator[Example]:
    for i, row in enumerate(_csv_rows(root / "advbench/harmful_behaviors.csv")):
        yield _example("advbench", i, row["goal"], 1)


def load_strongreject(root: Path) -> Iterator[Example]:
    for i, row in enumerate(_csv_rows(root / "strongreject/strongreject_dataset.csv")):
        yield _example("strongreject", i, row["forbidden_prompt"], 1, STRONGREJECT.get(row["category"]))


def load_jbb(root: Path) -> Iterator[Example]:
    categories = {r["Goal"].strip(): JBB.get(r["Category"]) for r in _csv_rows(root / "jailbreakbench_behaviors/harmful-behaviors.csv")}
    rows = json.loads((root / "jailbreakbench_behaviors/wizard101_jailbreakbench_harmful_benign.json").read_text("utf-8"))
    for i, row in enumerate(rows):
        harmful = row["label"] == "harmful"
        name = "jbb_harmful" if harmful else "jbb_benign"
        yield _example(name, i, row["text"], int(harmful), categories.get(row["text"].strip()) if harmful else None)


def load_do_not_answer(root: Path) -> Iterator[Example]:
    # human_chatbox and misinformation_harms are not misuse requests; they are left out.
    for area in ("discrimination_exclusion_toxicity_hateful_offensive", "information_hazard", "malicious_uses"):
        for i, line in enumerate((root / f"do_not_answer/{area}.jsonl").read_text("utf-8").splitlines()):
            if line.strip():
                yield _example("do_not_answer", f"{area}:{i}", json.loads(line)["prompt"], 1,
                               "hate" if area.startswith("discrimination") else None)


def load_catqa(root: Path) -> Iterator[Example]:
    data = json.loads((root / "harmfulqa_catqa/catqa_english.json").read_text("utf-8"))
    for category, subs in data.items():
        if category not in CATQA:
            continue
        for sub, questions in subs.items():
            for i, q in enumerate(questions):
                yield _example("catqa", f"{category}:{sub}:{i}", q, 1, CATQA[category])


def load_dangerousqa(root: Path) -> Iterator[Example]:
    for i, q in enumerate(json.loads((root / "harmfulqa_catqa/dangerousqa.json").read_text("utf-8"))):
        yield _example("dangerousqa", i, q, 1)


def load_gptfuzz_questions(root: Path) -> Iterator[Example]:
    for row in _csv_rows(root / "gptfuzz/questions/question_list.csv"):
        yield _example("gptfuzz_questions", row["index"], row["text"], 1)


def load_gptfuzz_templates(root: Path) -> Iterator[Example]:
    for row in _csv_rows(root / "gptfuzz/prompts/GPTFuzzer.csv"):
        yield _example("gptfuzz_templates", row["id"], row["text"], 1, "jailbreak")


def load_jailbreak_llms(root: Path) -> Iterator[Example]:
    for i, row in enumerate(_csv_rows(root / "jailbreak_llms/jailbreak_prompts_2023_05_07.csv")):
        yield _example("jailbreak_llms", i, row["prompt"], 1, "jailbreak")


def load_forbidden_questions(root: Path) -> Iterator[Example]:
    for row in _csv_rows(root / "jailbreak_llms/forbidden_question_set.csv"):
        category = FORBIDDEN_QUESTIONS.get(row["content_policy_name"])
        if category:  # advice/lobbying/government policies are not harmful under `general`
            yield _example("forbidden_questions", f"{row['content_policy_id']}:{row['q_id']}", row["question"], 1, category)


def load_self_instruct(root: Path) -> Iterator[Example]:
    for name, rel in (("seed", "self_instruct/data/seed_tasks.jsonl"), ("user", "self_instruct/human_eval/user_oriented_instructions.jsonl")):
        for line in (root / rel).read_text("utf-8").splitlines():
            row = json.loads(line)
            instance = (row.get("instances") or [{}])[0].get("input", "")
            text = row["instruction"] + (f"\n\n{instance}" if instance else "")
            yield _example("self_instruct", f"{name}:{row['id']}", text, 0)


def load_refusal_harmful(root: Path) -> Iterator[Example]:
    for split in ("train", "val"):
        for i, row in enumerate(json.loads((root / f"refusal_direction_splits/splits/harmful_{split}.json").read_text("utf-8"))):
            yield _example("refusal_harmful", f"{split}:{i}", row["instruction"], 1)


def load_alpaca(root: Path) -> Iterator[Example]:
    rows = json.loads((root / "refusal_direction_splits/splits/harmless_test.json").read_text("utf-8"))
    for i, row in enumerate(rows):
        yield _example("alpaca", i, row["instruction"], 0)


def load_deepset(root: Path) -> Iterator[Example]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise DataUnavailableError("deepset_prompt_injections needs pyarrow: pip install 'bastion-guard[train]'") from exc
    for part in sorted((root / "deepset_prompt_injections").glob("*.parquet")):
        table = pq.read_table(part).to_pylist()
        for i, row in enumerate(table):
            label = int(row["label"])
            yield _example("deepset", f"{part.name[:5]}:{i}", row["text"], label, "jailbreak" if label else None)


def load_malicious_instruct(root: Path) -> Iterator[Example]:
    lines = (root / "malicious_instruct/MaliciousInstruct.txt").read_text("utf-8").splitlines()
    for i, line in enumerate(x for x in lines if x.strip()):
        yield _example("malicious_instruct", i, line, 1)


def load_safety_llamas(root: Path) -> Iterator[Example]:
    folder = root / "safety_tuned_llamas/evaluation"
    for name, label in (("I-PhysicalSafetySafe", 0), ("I-PhysicalSafetyUnsafe", 1), ("I-MaliciousInstructions", 1), ("I-CoNa", 1), ("I-Alpaca", 0)):
        for i, text in enumerate(json.loads((folder / f"{name}.json").read_text("utf-8"))["instructions"]):
            yield _example(f"stl_{name[2:].lower()}", i, text, label)


def load_hh_red_team(root: Path) -> Iterator[Example]:
    """First human turn of each HH harmless transcript: red-team style, no clean label."""
    with gzip.open(root / "hh_rlhf_harmless_test/harmless-base_test.jsonl.gz", "rt", encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            turn = json.loads(line)["chosen"].split("\n\nHuman: ")[1].split("\n\nAssistant:")[0]
            yield Example(id=f"hh:{i}", messages=[Message(role="user", content=turn)], source="hh_rlhf", label=None)


SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source("advbench", "advbench", "MIT", True, load_advbench, "AdvBench harmful behaviours"),
        Source("strongreject", "strongreject", "MIT", True, load_strongreject, "StrongREJECT forbidden prompts"),
        Source("jbb", "jailbreakbench_behaviors", "MIT", False, load_jbb, "JailbreakBench harmful + topic-matched benign (evaluation)"),
        Source("do_not_answer", "do_not_answer", "Apache-2.0", True, load_do_not_answer, "Do-Not-Answer misuse areas"),
        Source("catqa", "harmfulqa_catqa", "Apache-2.0", True, load_catqa, "CatQA English harmful questions"),
        Source("dangerousqa", "harmfulqa_catqa", "Apache-2.0", True, load_dangerousqa, "DangerousQA"),
        Source("gptfuzz_questions", "gptfuzz", "MIT", True, load_gptfuzz_questions, "GPTFuzz harmful questions"),
        Source("gptfuzz_templates", "gptfuzz", "MIT", True, load_gptfuzz_templates, "GPTFuzz jailbreak templates"),
        Source("jailbreak_llms", "jailbreak_llms", "MIT", True, load_jailbreak_llms, "In-the-wild jailbreak prompts (2023-05-07)"),
        Source("forbidden_questions", "jailbreak_llms", "MIT", True, load_forbidden_questions, "Forbidden questions (harmful policies)"),
        Source("self_instruct", "self_instruct", "Apache-2.0", True, load_self_instruct, "Self-Instruct benign instructions"),
        Source("refusal_harmful", "refusal_direction_splits", "Apache-2.0", True, load_refusal_harmful, "Harmful train/val splits"),
        Source("deepset", "deepset_prompt_injections", "Apache-2.0", True, load_deepset, "Prompt injections vs legitimate"),
        Source("alpaca", "refusal_direction_splits", "CC-BY-NC-4.0", False, load_alpaca, "Alpaca harmless test (evaluation only)"),
        Source("malicious_instruct", "malicious_instruct", "unknown", False, load_malicious_instruct, "MaliciousInstruct (evaluation only)"),
        Source("safety_tuned_llamas", "safety_tuned_llamas", "CC-BY-NC-4.0", False, load_safety_llamas, "Safety-tuned LLaMAs evaluation sets"),
        Source("hh_rlhf", "hh_rlhf_harmless_test", "MIT", False, load_hh_red_team, "HH red-team first turns (unlabelled)"),
    ]
}


def load_source(name: str, data_dir: Path | None) -> list[Example]:
    """All Examples of one source; DataUnavailableError says how to provide the data."""
    if name not in SOURCES:
        raise KeyError(f"unknown source {name!r}; known: {', '.join(SOURCES)}")
    source = SOURCES[name]
    if data_dir is None or not (data_dir / source.path).exists():
        raise DataUnavailableError(
            f"source {name!r} needs {source.path}/ under the data directory "
            f"({data_dir or 'unset'}); set BASTION_DATA_DIR to the development pool"
        )
    return list(source.loader(data_dir))
