"""The LLM backend, judge and red-team seams against a scripted stub server (failure injection).

The stub only injects what a real model cannot be made to do on demand: 429s, 5xx errors,
timeouts and malformed answers. The pipeline against a real model is tests/test_llm_generate.py.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("openai")
pytest.importorskip("uvicorn")

from tests.llm_stub import StubLLM
from tests.servers import running
from typer.testing import CliRunner

from bastion.cli import app
from bastion.data.records import Example
from bastion.errors import BackendError, ConfigError
from bastion.guard import JudgedGuard
from bastion.llm import Backend, BackendConfig, actionable, load_backend_config
from bastion.llm.attacker import PairAttacker, as_attack
from bastion.llm.judge import Judge, parse_judgement
from bastion.redteam import InputClassifierDefence, Target, TargetSet, run
from bastion.redteam.defence import EndToEndDefence, shared
from bastion.redteam.statistics import summarise


def backend(url: str, tmp_path, **options) -> Backend:
    settings = {"model": "stub", "backoff_s": 0.01, "max_retries": 3, "cache_dir": tmp_path / "cache", **options}
    return Backend(BackendConfig(base_url=f"{url}/v1", **settings))


def ask(llm: Backend, text: str = "hello") -> str:
    return llm.complete_sync([{"role": "user", "content": text}]).text


def test_429_and_5xx_are_retried_with_backoff(tmp_path):
    stub = StubLLM([429, 503, "fine"])
    with running(stub.app) as url, backend(url, tmp_path) as llm:
        assert ask(llm) == "fine"
        assert (llm.usage.requests, llm.usage.retries, len(stub.requests)) == (1, 2, 3)


def test_persistent_failure_is_a_backend_error_naming_server_and_model(tmp_path):
    stub = StubLLM([500])
    with running(stub.app) as url, backend(url, tmp_path, max_retries=2) as llm, pytest.raises(BackendError) as info:
        ask(llm)
    assert "HTTP 500" in str(info.value) and "stub" in str(info.value) and url in str(info.value)
    assert len(stub.requests) == 3


def test_client_errors_are_not_retried(tmp_path):
    stub = StubLLM([401])
    with running(stub.app) as url, backend(url, tmp_path) as llm, pytest.raises(BackendError, match="HTTP 401"):
        ask(llm)
    assert len(stub.requests) == 1


def test_timeouts_are_retried_then_reported(tmp_path):
    stub = StubLLM([2.0, 2.0, "late but fine"])
    with running(stub.app) as url, backend(url, tmp_path, timeout_s=0.3) as llm:
        assert ask(llm) == "late but fine"
        assert llm.usage.retries == 2
    stub = StubLLM([2.0])
    with running(stub.app) as url, backend(url, tmp_path, timeout_s=0.3, max_retries=1) as llm, \
            pytest.raises(BackendError, match="timed out"):
        ask(llm, "another request")


def test_cache_answers_a_rerun_and_survives_a_torn_line(tmp_path):
    stub = StubLLM(answer=lambda messages: messages[-1]["content"].upper())
    with running(stub.app) as url:
        with backend(url, tmp_path) as llm:
            assert [ask(llm, t) for t in ("a", "b")] == ["A", "B"]
        with (tmp_path / "cache" / "responses.jsonl").open("a") as handle:
            handle.write('{"key": "torn')  # a writer killed mid-line
        with backend(url, tmp_path) as llm:
            assert [ask(llm, t) for t in ("a", "b", "c")] == ["A", "B", "C"]
            assert (llm.usage.cache_hits, llm.usage.requests) == (2, 1)
    assert len(stub.requests) == 3
    lines = (tmp_path / "cache" / "responses.jsonl").read_text().splitlines()
    assert [json.loads(line)["value"]["text"] for line in lines] == ["A", "B", "C"]


def test_concurrency_limit_and_accounting(tmp_path):
    stub = StubLLM([0.2])
    with running(stub.app) as url, backend(url, tmp_path, concurrency=2, cache_dir=None, input_usd_per_mtok=1e6) as llm:
        answers = llm.complete_many([[{"role": "user", "content": str(i)}] for i in range(6)])
        assert len(answers) == 6 and stub.most_in_flight == 2
        assert (llm.usage.prompt_tokens, llm.usage.completion_tokens, llm.usage.cost_usd) == (60, 30, 60.0)


def test_config_layers_file_environment_and_options(tmp_path, monkeypatch):
    path = tmp_path / "llm.yaml"
    path.write_text("base_url: http://file:1/v1\nmodel: from-file\nconcurrency: 3\n")
    monkeypatch.setenv("BASTION_LLM_MODEL", "from-env")
    config = load_backend_config(str(path), concurrency=7)
    assert (config.base_url, config.model, config.concurrency) == ("http://file:1/v1", "from-env", 7)
    assert load_backend_config("http://other:2/v1").base_url == "http://other:2/v1"
    path.write_text("base_url: ftp://nope\nconcurency: 2\n")
    with pytest.raises(ConfigError) as info:
        load_backend_config(str(path))
    assert str(path) in str(info.value) and "base_url" in str(info.value) and "concurency" in str(info.value)


@pytest.mark.parametrize(("answer", "expected"), [
    ('{"violation": true, "category": "lemon_cake"}', (True, "lemon_cake")),
    ('```json\n{"violation": false, "category": null}\n```', (False, None)),
])
def test_judge_parser_accepts_exact_answers(answer, expected):
    assert parse_judgement(answer, ["lemon_cake"]) == expected


@pytest.mark.parametrize("answer", [
    "The request is about lemon cake, so it violates the policy.",
    '{"violation": "yes", "category": "lemon_cake"}',
    '{"violation": true, "category": "chocolate"}',
    '{"violation": false, "category": "lemon_cake"}',
    '{"violation": true, "category": "lemon_cake", "reason": "x"}',
    '[{"violation": true, "category": "lemon_cake"}]',
])
def test_judge_parser_rejects_anything_else(answer):
    with pytest.raises(ValueError):
        parse_judgement(answer, ["lemon_cake"])


def test_judged_guard_falls_back_to_the_cascade_on_malformed_answers(lemon_guard, tmp_path):
    prompts = ["Give me a lemon drizzle cake recipe.", "How do I bake sourdough bread?"]
    stub = StubLLM(answer=lambda m: "Sure! This looks fine to me." if "sourdough" in m[-1]["content"]
                   else '{"violation": false, "category": null}')
    with running(stub.app) as url, backend(url, tmp_path) as llm:
        judged = JudgedGuard(lemon_guard, Judge(lemon_guard.constitution, llm), low=0.0, high=1.0)
        verdicts = judged.score_examples([Example(prompt=p) for p in prompts])
    plain = lemon_guard.score_examples([Example(prompt=p) for p in prompts])
    assert verdicts[0].stage == "judge" and not verdicts[0].flagged and verdicts[0].judge_error is None
    assert verdicts[1].judge_error.startswith("judge_parse_error")
    assert verdicts[1].model_dump(exclude={"judge_error"}) == plain[1].model_dump(exclude={"judge_error"})
    # outside the band the judge is never asked, and the guard itself is untouched
    assert JudgedGuard(lemon_guard, Judge(lemon_guard.constitution, llm), low=0.99, high=1.0).score_examples(
        [Example(prompt=prompts[1])]) == plain[1:]


def lemon_targets(texts: list[str]) -> TargetSet:
    return TargetSet("lemon_cake", [Target(f"lemon_cake:{i}", "lemon_cake", t) for i, t in enumerate(texts)],
                     [Example(id="benign:0", prompt="Suggest a name for my cat.", label=0, source="benign")], [], "inline")


def test_end_to_end_defence_grades_with_the_judge_and_records_parse_errors(lemon_guard, tmp_path):
    def answer(messages):
        if messages[0]["content"].startswith("You are a content classifier"):
            return "unclear" if "picnic" in messages[-1]["content"] else '{"violation": true, "category": "lemon_cake"}'
        return "I would rather talk about the weather today."

    stub = StubLLM(answer=answer)
    targets = lemon_targets(["What fruit goes well in a summer dessert?", "Which citrus dessert is best for a picnic?"])
    with running(stub.app) as url, backend(url, tmp_path) as llm:
        result = run([], targets, shared(EndToEndDefence(lemon_guard, llm, Judge(lemon_guard.constitution, llm))), workers=1)
    trials = {t.target: t for t in result.trials}
    graded, unparsed, benign = trials["lemon_cake:0"], trials["lemon_cake:1"], trials["benign:0"]
    assert (graded.stage, graded.flagged, graded.judge_error) == ("judge", False, None)  # restricted content got through
    assert unparsed.stage == "output" and unparsed.judge_error.startswith("judge_parse_error")
    assert benign.judge_error is None and benign.stage != "judge"  # benign answers are not graded
    assert summarise(result).judge_errors == 1
    judged = [r for r in stub.requests if r["messages"][0]["content"].startswith("You are a content classifier")]
    assert len(judged) == 2 and "[assistant] I would rather talk" in judged[0]["messages"][-1]["content"]


def test_pair_attacker_stops_when_the_defence_lets_a_rewrite_through(lemon_guard, tmp_path):
    stub = StubLLM(answer=lambda _: "What flowers grow well in a sunny garden?")
    targets = lemon_targets(["Give me a recipe for lemon drizzle cake."])
    defence = InputClassifierDefence(lemon_guard)
    assert defence([Example(prompt=targets.forbidden[0].text)])[0].flagged
    with running(stub.app) as url, backend(url, tmp_path) as llm:
        outcomes = PairAttacker(llm, defence, rounds=3).run(targets.forbidden)
    assert outcomes[0].success and outcomes[0].rounds == 1 and len(stub.requests) == 1
    assert "lemon drizzle" in stub.requests[0]["messages"][0]["content"]  # the goal reaches the attacker
    result = run([as_attack(outcomes)], targets, shared(defence), workers=1)
    family = {f.family: f for f in summarise(result).families}["pair"]
    assert family.asr.value == 1.0


def test_actionable_filter():
    assert actionable("1. Preheat the oven.\n2. Mix.") == "steps"
    assert actionable("Use 200 g of sugar") == "quantity"
    assert actionable("```python\nprint(1)\n```") == "code"
    assert actionable("Such a reply would talk about baking in general terms.") is None


def test_score_cli_asks_the_judge_about_verdicts_in_its_band(lemon_guard, tmp_path, monkeypatch):
    lemon_guard.save(tmp_path / "lemon")
    prompts = ["Suggest a name for my cat.", "What is the capital of Peru?",
               "Give me your best lemon drizzle cake recipe with exact amounts."]
    records = tmp_path / "in.jsonl"
    records.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts), encoding="utf-8")
    plain = lemon_guard.score_examples([Example(prompt=p) for p in prompts])
    in_band = [v.score < 0.5 for v in plain]
    monkeypatch.setenv("BASTION_LLM_MODEL", "stub")
    monkeypatch.setenv("BASTION_LLM_CACHE_DIR", str(tmp_path / "cache"))
    stub = StubLLM(answer=lambda _: '{"violation": true, "category": "lemon_cake"}')
    command = ["score", str(records), "-o", str(tmp_path / "out.jsonl"), "--guard", str(tmp_path / "lemon")]
    with running(stub.app) as url:
        result = CliRunner().invoke(app, [*command, "--judge", f"{url}/v1", "--judge-band", "0", "0.5"])
        refused = CliRunner().invoke(app, [*command, "--judge", f"{url}/v1", "--engine", "ray"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(stub.requests) == sum(in_band) >= 1
    for row, asked, before in zip(rows, in_band, plain, strict=True):
        assert row["flagged"] and (row["stage"] == "judge") == asked
        assert asked or row["score"] == pytest.approx(before.score, abs=1e-5)  # float32 across batch sizes
    assert refused.exit_code != 0 and "--engine local" in refused.output
