"""Write `src/bastion/seeds/responses/benign_answers.jsonl`: real model answers to benign prompts.

Why: the output classifier learnt benign responses only from our scaffolded seed answers and
GPTFuzz's refusals, so ordinary answers it had never seen ("A tropical rainforest is a vast
and diverse ecosystem...") were halted mid-stream. These are answers of the embedded model
(SmolLM2-135M-Instruct, Apache-2.0, greedy) to a sample of our own everyday and permitted
seed prompts from the *train* split only, so no evaluation prompt's answer is trained on.
Answers to permitted (sensitive-topic) prompts with step-level specifics
(`bastion.llm.filters.actionable`) are dropped; everyday answers keep their lists, code and
quantities, since those are exactly the benign formats the classifier must not halt.

Run: python scripts/answer_benign_seeds.py [N_BENIGN] [N_PERMITTED]   (needs bastion[demo])
"""

from __future__ import annotations

import json
import random
import sys

from rich.progress import Progress

from bastion.constitution import load
from bastion.data.seeds import load_seeds
from bastion.data.splits import assign_groups, assign_splits, load_manifest
from bastion.llm import actionable, connect
from bastion.llm.config import BackendConfig

OUT = "src/bastion/seeds/responses/benign_answers.jsonl"
CHUNK = 20


def train_prompts(n_benign: int, n_permitted: int) -> list[tuple[str, str]]:
    constitution = load("general")
    seeds = [e for e in load_seeds(constitution) if e.prompt and e.source in ("seed_benign", "seed_permitted")]
    train = assign_splits(assign_groups(seeds), load_manifest())["train"]
    rng = random.Random(0)
    picked = []
    for source, n in (("seed_benign", n_benign), ("seed_permitted", n_permitted)):
        pool = sorted((e.prompt, source) for e in train if e.source == source)
        picked += rng.sample(pool, min(n, len(pool)))
    return picked


def main(n_benign: str = "500", n_permitted: str = "200") -> None:
    prompts = train_prompts(int(n_benign), int(n_permitted))
    kept = 0
    with connect(BackendConfig(concurrency=2, temperature=0.0, max_tokens=128)) as backend, \
            open(OUT, "w", encoding="utf-8") as out, Progress() as progress:
        task = progress.add_task("answering benign prompts", total=len(prompts))
        for start in range(0, len(prompts), CHUNK):
            chunk = prompts[start:start + CHUNK]
            answers = backend.complete_many([[{"role": "user", "content": p}] for p, _ in chunk])
            for (prompt, source), answer in zip(chunk, answers, strict=True):
                text = answer.text.strip()
                if text and not (source == "seed_permitted" and actionable(text)):
                    out.write(json.dumps({"prompt": prompt, "response": text, "label": 0, "kind": "model_answer",
                                          "source_prompt": source}, ensure_ascii=False) + "\n")
                    kept += 1
            out.flush()
            progress.advance(task, len(chunk))
    print(f"{kept} answers of {len(prompts)} written to {OUT}")


if __name__ == "__main__":
    main(*sys.argv[1:])
