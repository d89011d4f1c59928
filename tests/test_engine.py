"""Engines: local threads and Ray actors give the same results, in input order, once per record."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bastion.cli import app
from bastion.engine import LocalEngine, batched, open_engine, ordered
from bastion.errors import ArtifactError, ConfigError, ExitCode
from bastion.guard.batch import GuardScorer, GuardSpec, score_records
from bastion.guard.guard import bundled_path
from bastion.redteam import InputClassifierDefence, bundled_targets, library, load_targets, run, select, summarise

runner = CliRunner()
SEEDS = Path(__file__).parents[1] / "src" / "bastion" / "seeds"


def _seed_records(per_file: int = 8) -> list[dict[str, object]]:
    """Labelled prompts from the seed corpus: restricted, permitted and benign, some in the cascade's band."""
    rows = []
    for label, folder in ((1, "general/restricted"), (0, "general/permitted"), (0, "benign")):
        for path in sorted((SEEDS / folder).glob("*.txt"))[:8]:
            lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()][:per_file]
            rows += [{"id": f"{path.stem}-{label}-{i}", "prompt": text, "label": label} for i, text in enumerate(lines)]
    return rows


@pytest.fixture(scope="module")
def records_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("records") / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _seed_records()), encoding="utf-8")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the contract, without Ray ------------------------------------------------------------


def test_local_threads_keep_input_order_and_build_once():
    builds = []

    def factory():
        builds.append(threading.get_ident())

        def fn(batch):
            time.sleep(0.001 * (3 - batch[0] % 3))  # later batches tend to finish first
            return [x * 2 for x in batch]

        return fn

    out = list(LocalEngine(workers=3).map(factory, batched(range(40), 4)))
    assert [b for b, _ in out] == list(batched(range(40), 4))
    assert [y for _, r in out for y in r] == [x * 2 for x in range(40)]
    assert len(builds) == 1


def test_ordered_reads_only_a_window_ahead():
    consumed = []

    def source():
        for i in range(100):
            consumed.append(i)
            yield i

    first = next(ordered(source(), lambda b: b, lambda h: h, window=4))
    assert first == (0, 0) and len(consumed) == 4


def test_engine_options_are_checked():
    with pytest.raises(ConfigError, match="local or ray"):
        open_engine("spark")
    with pytest.raises(ConfigError, match="--engine ray"):
        open_engine("local", address="ray://head")
    with pytest.raises(ConfigError, match="at least 1"):
        open_engine("local", workers=0)


def test_a_guard_that_differs_from_the_drivers_is_refused():
    spec = GuardSpec.of("default")
    assert spec.manifest_sha256 is not None
    with pytest.raises(ArtifactError, match="differs from the driver's copy"):
        replace(spec, manifest_sha256="0" * 64).load()


@pytest.mark.parametrize("address", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}"])
def test_unreachable_cluster_is_a_clear_error(records_file, address):
    pytest.importorskip("ray")
    address = address.format(port=_free_port())
    result = runner.invoke(app, ["score", str(records_file), "--engine", "ray", "--ray-address", address])
    assert result.exit_code == ExitCode.UNAVAILABLE, result.output
    assert f"cannot reach the Ray cluster at {address}" in result.output
    assert "Traceback" not in result.output


# -- on a local Ray cluster ---------------------------------------------------------------


def _score(records_file: Path, out: Path, *extra: str) -> bytes:
    result = runner.invoke(app, ["score", str(records_file), "-o", str(out), "--batch-size", "32", "--threads", "1", *extra])
    assert result.exit_code == 0, result.output
    return out.read_bytes()


def test_score_on_ray_is_bit_identical_to_local(ray_cluster, records_file, tmp_path):
    local = _score(records_file, tmp_path / "local.jsonl", "--workers", "2")
    remote = _score(records_file, tmp_path / "ray.jsonl", "--engine", "ray", "--workers", "2")
    assert remote == local
    stages = {json.loads(line)["stage"] for line in local.splitlines()}
    assert {"stage1", "stage2"} <= stages  # both stages (numpy and ONNX Runtime) are compared


def test_eval_on_ray_matches_local(ray_cluster, records_file, tmp_path):
    reports = []
    for engine in ("local", "ray"):
        path = tmp_path / f"{engine}.json"
        result = runner.invoke(app, ["eval", str(records_file), "--engine", engine, "--workers", "2", "--batch-size", "32",
                                     "--json", str(path)])
        assert result.exit_code == 0, result.output
        reports.append(path.read_text())
    assert reports[0] == reports[1]


def test_redteam_statistics_on_ray_match_local(ray_cluster):
    attacks = select(library(None), "base64,persona_roleplay,many_shot_8,fragment_turns")
    targets = load_targets(bundled_targets("general"))
    defence = InputClassifierDefence.loader(GuardSpec.of("default"))
    results = []
    for engine in (LocalEngine(2), open_engine("ray", workers=2)):
        with engine:
            results.append(run(attacks, targets, defence, engine=engine, batch_size=64))
    local, remote = results
    assert remote.trials == local.trials
    timing = {"ms_per_request", "seconds"}
    assert summarise(remote).model_dump(exclude=timing) == summarise(local).model_dump(exclude=timing)


@dataclass(frozen=True)
class FlakyScorer:
    """Fails the first time it meets record `fail_on` (a marker file remembers), by raising or by killing its worker."""

    inner: GuardScorer
    marker: str
    fail_on: str
    how: str

    def __call__(self):
        score = self.inner()

        def flaky(examples):
            if any(e.id == self.fail_on for e in examples) and not os.path.exists(self.marker):
                Path(self.marker).touch()
                if self.how == "exit":
                    os._exit(1)
                raise RuntimeError("transient failure")
            return score(examples)

        return flaky


try:
    from ray import cloudpickle
except ImportError:  # the Ray tests skip themselves (the ray_cluster fixture)
    pass
else:
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module


@pytest.mark.parametrize("how", ["raise", "exit"])
def test_a_failed_batch_is_retried_without_duplicates_or_losses(ray_cluster, records_file, tmp_path, how):
    from bastion.data.jsonl import read_examples

    records = list(read_examples(records_file))
    spec = GuardSpec.of("default")
    expected = [(e.id, v) for e, v in score_records(LocalEngine(1), spec, records, batch_size=16)]
    marker = tmp_path / "failed-once"
    flaky = FlakyScorer(GuardScorer(spec), str(marker), fail_on=records[40].id, how=how)
    with open_engine("ray", workers=2) as engine:
        got = [(e.id, v) for batch, verdicts in engine.map(flaky, batched(records, 16)) for e, v in zip(batch, verdicts, strict=True)]
    assert marker.exists()  # the failure happened
    assert got == expected


def test_a_worker_without_the_guard_gets_a_clear_error(ray_cluster, records_file, tmp_path):
    result = runner.invoke(app, ["score", str(records_file), "--engine", "ray", "--workers", "1", "--guard", str(tmp_path / "absent")])
    assert result.exit_code == ExitCode.UNAVAILABLE, result.output
    assert "could not start" in result.output and "--ship-guard" in result.output
    assert "Traceback" not in result.output


def test_ship_guard_sends_the_artifact_to_workers_that_lack_it(ray_cluster, records_file, tmp_path):
    from bastion.data.jsonl import read_examples

    copy = tmp_path / "guard"
    shutil.copytree(bundled_path("default"), copy)
    shipped = GuardSpec.of(str(copy), ship=True)
    shutil.rmtree(copy)  # the workers must not read it from disk
    records = list(read_examples(records_file))[:64]
    with open_engine("ray", workers=1) as engine:
        got = [v for _, v in score_records(engine, shipped, records, batch_size=32)]
    assert got == [v for _, v in score_records(LocalEngine(1), GuardSpec.of("default"), records, batch_size=32)]


def test_bastion_errors_in_a_worker_are_not_retried(ray_cluster):
    def factory():
        def fn(batch):
            raise ArtifactError("deterministic")
        return fn

    with open_engine("ray", workers=1) as engine, pytest.raises(ArtifactError, match="deterministic"):
        list(engine.map(factory, [[1]]))



def test_generate_on_ray_writes_what_local_writes_and_resumes(ray_cluster, tmp_path, monkeypatch):
    pytest.importorskip("openai")
    import hashlib
    import random

    from tests.llm_stub import StubLLM
    from tests.servers import running

    words = ["amber", "bridge", "cactus", "dolphin", "ember", "falcon", "garnet", "harbor", "island", "jasmine", "kettle", "lantern", "meadow", "nutmeg", "orchard", "pebble", "quartz", "ribbon", "saffron", "thistle", "umber", "velvet", "willow", "yarrow", "zephyr"]

    def answer(messages: list[dict[str, str]]) -> str:  # distinct, harmless text per request
        digest = hashlib.sha256(json.dumps(messages).encode()).hexdigest()
        return " ".join(random.Random(digest).sample(words, 12)).capitalize() + "?"

    monkeypatch.setenv("BASTION_LLM_MODEL", "stub")
    lemon = str(Path(__file__).parent / "data" / "lemon_cake" / "constitution.yaml")
    stub = StubLLM(answer=answer)

    def generate(name: str, *engine: str) -> list[dict]:
        out = tmp_path / f"{name}.jsonl"
        result = CliRunner().invoke(app, ["generate", "-c", lemon, "-o", str(out), "--backend", f"{url}/v1", "-n", "5",
                                          "--stages", "response", "--cache", str(tmp_path / f"cache-{name}"), *engine])
        assert result.exit_code == 0, result.output
        return [json.loads(line) for path in (out, out.with_name(f"{name}.responses.jsonl"))
                for line in path.read_text().splitlines()]

    with running(stub.app) as url:
        local = generate("local")
        on_ray = generate("ray", "--engine", "ray")
        asked = len(stub.requests)
        again = generate("ray", "--engine", "ray")
    strip = [{k: v for k, v in row.items() if k != "provenance"} for row in local]
    assert sorted(strip, key=lambda r: r["id"]) == sorted(({k: v for k, v in row.items() if k != "provenance"}
                                                          for row in on_ray), key=lambda r: r["id"])
    assert len(on_ray) > 10 and again == on_ray and len(stub.requests) == asked  # the rerun resumed: no request
