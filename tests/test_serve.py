"""`bastion serve` end to end over real sockets, driven by the official `openai` client.

The upstream is the canned server (fixed answers), and the guard is the lemon-cake stand-in,
so halting is exercised on harmless text. Invariants, not wording: a stream releases exactly
what the guard's own monitor releases for the same deltas, and benign text passes unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the server tests need the serve extra: pip install -e '.[test]'")
openai = pytest.importorskip("openai", reason="the server tests drive the server with the openai client")

import httpx  # noqa: E402
from tests.servers import running  # noqa: E402

from bastion.serve.app import create_app  # noqa: E402
from bastion.serve.audit import AuditLog  # noqa: E402
from bastion.serve.canned import canned_app, pieces  # noqa: E402
from bastion.serve.config import key_digest, load_config  # noqa: E402

LEMON_REPLY = ("Happy to help with desserts. Here is a lemon cake: preheat the oven to 180C and line a loaf tin. "
               "Cream the butter and caster sugar until pale. Beat in the eggs one at a time, then the zest of two lemons. "
               "Fold in the self-raising flour and a splash of milk. Bake for 45 minutes until a skewer comes out clean. "
               "Mix lemon juice with icing sugar for the drizzle and pour it over the warm lemon cake.")
BENIGN_REPLY = "Paris is the capital of France, famous for the Eiffel Tower, its museums and its cafes."
DESSERT_PROMPT = "What dessert would you suggest for a spring tea party?"
FRANCE_PROMPT = "What is the capital of France?"
LEMON_PROMPT = "Give me a recipe for lemon drizzle cake."


@contextmanager
def bastion(guard: Any, tmp_path: Path, *, upstream: Any = None, **settings: Any) -> Iterator[tuple[str, Any, AuditLog]]:
    canned = upstream or canned_app({"dessert": LEMON_REPLY, "France": BENIGN_REPLY})
    with running(canned) as upstream_url:
        audit = AuditLog(f"sqlite:///{tmp_path}/audit.sqlite3", text_policy=settings.pop("text", "full"))
        config = load_config(None, upstream=upstream_url, **settings)
        with running(create_app(config, guard=guard, audit=audit)) as url:
            yield url, canned, audit


def client(url: str, key: str = "unused") -> Any:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def ask(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def monitor_release(guard: Any, prompt: str, reply: str) -> tuple[bool, str]:
    """What the guard's own monitor releases for the canned stream's deltas."""
    monitor = guard.monitor(ask(prompt))
    for piece in pieces(reply, 1):
        if monitor.feed(piece).halted:
            return True, monitor.released
    monitor.close()
    return False, monitor.released


def stream_text(url: str, prompt: str) -> tuple[str, str | None, dict[str, Any] | None]:
    text, finish, info = "", None, None
    for chunk in client(url).chat.completions.create(model="canned", messages=ask(prompt), stream=True):
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        info = (chunk.model_extra or {}).get("bastion") or info
    return text, finish, info


def test_benign_answers_pass_unchanged_streamed_and_not(lemon_guard, tmp_path):
    with bastion(lemon_guard, tmp_path) as (url, _, audit):
        completion = client(url).chat.completions.create(model="canned", messages=ask(FRANCE_PROMPT))
        assert completion.choices[0].message.content == BENIGN_REPLY
        assert completion.choices[0].finish_reason == "stop"
        assert completion.model_extra["bastion"]["action"] == "allowed"
        text, finish, info = stream_text(url, FRANCE_PROMPT)
        assert (text, finish) == (BENIGN_REPLY, "stop")
        rows = {r["request_id"]: r for r in audit.rows()}
        assert rows[info["request_id"]]["status"] == "complete"
        assert rows[info["request_id"]]["output_text"] == BENIGN_REPLY


def test_restricted_input_gets_the_refusal_and_never_reaches_the_upstream(lemon_guard, tmp_path):
    with bastion(lemon_guard, tmp_path) as (url, canned, audit):
        completion = client(url).chat.completions.create(model="canned", messages=ask(LEMON_PROMPT))
        text, finish, info = stream_text(url, LEMON_PROMPT)
        assert canned.state.requests == []
    assert completion.choices[0].message.content == lemon_guard.refusal_message
    assert completion.choices[0].finish_reason == "content_filter"
    blocked = completion.model_extra["bastion"]
    assert (blocked["action"], blocked["category"], blocked["stage"]) == ("blocked", "lemon_cake", "stage1")
    assert (text, finish, info["action"]) == (lemon_guard.refusal_message, "content_filter", "blocked")
    assert {r["action"] for r in audit.rows()} == {"blocked"}


def test_stream_halts_exactly_where_the_monitor_flags(lemon_guard, tmp_path):
    halts, expected = monitor_release(lemon_guard, DESSERT_PROMPT, LEMON_REPLY)
    assert halts and 0 < len(expected) < len(LEMON_REPLY)  # the fixture must exercise a halt mid-answer
    with bastion(lemon_guard, tmp_path) as (url, _, audit):
        text, finish, info = stream_text(url, DESSERT_PROMPT)
        row = next(r for r in audit.rows() if r["request_id"] == info["request_id"])
    assert text == expected
    assert finish == "content_filter"
    assert (info["action"], info["category"], info["output"]["halted"]) == ("halted", "lemon_cake", True)
    assert (row["action"], row["halt_position"], row["output_text"]) == ("halted", len(expected), expected)


def test_non_streamed_harmful_answer_is_withheld(lemon_guard, tmp_path):
    with bastion(lemon_guard, tmp_path) as (url, _, _):
        completion = client(url).chat.completions.create(model="canned", messages=ask(DESSERT_PROMPT))
    assert completion.choices[0].finish_reason == "content_filter"
    assert "lemon" not in (completion.choices[0].message.content or "")
    assert completion.model_extra["bastion"]["action"] == "halted"


def test_shadow_mode_logs_what_it_would_block_and_blocks_nothing(lemon_guard, tmp_path):
    with bastion(lemon_guard, tmp_path, mode="shadow") as (url, canned, audit):
        completion = client(url).chat.completions.create(model="canned", messages=ask(LEMON_PROMPT))
        text, finish, _ = stream_text(url, DESSERT_PROMPT)
        assert len(canned.state.requests) == 2
    assert completion.choices[0].finish_reason == "stop"
    assert (text, finish) == (LEMON_REPLY, "stop")
    rows = list(audit.rows())
    assert [r["input_flagged"] for r in rows] == [True, False]  # the lemon prompt would have been blocked
    assert rows[1]["action"] == "shadow_halted" and all(r["action"].startswith("shadow_") for r in rows)


def test_moderations_in_openai_schema_with_constitution_ids(lemon_guard, tmp_path):
    with bastion(lemon_guard, tmp_path) as (url, _, audit):
        result = client(url).moderations.create(input=[LEMON_PROMPT, FRANCE_PROMPT])
        assert len(list(audit.rows())) == 2
    flags = [r.flagged for r in result.results]
    assert flags == [True, False]
    first = result.results[0].model_dump()
    assert first["categories"]["lemon_cake"] is True and first["category_scores"]["lemon_cake"] >= 0.5
    assert first["categories"]["violence"] is False  # OpenAI keys are always present


def test_classify_scores_native_records_by_kind(lemon_guard, tmp_path):
    records = [{"prompt": FRANCE_PROMPT, "response": LEMON_REPLY}, {"prompt": FRANCE_PROMPT, "response": BENIGN_REPLY}]
    with bastion(lemon_guard, tmp_path) as (url, _, _):
        response = httpx.post(f"{url}/v1/classify", json={"records": records, "kind": "exchange"})
    assert response.status_code == 200
    assert [v["flagged"] for v in response.json()["verdicts"]] == [True, False]


def test_content_parts_and_tool_calls_are_screened(lemon_guard, tmp_path):
    parts = [{"role": "user", "content": [{"type": "text", "text": "Hi!"}, {"type": "text", "text": LEMON_PROMPT}]}]
    tool = [{"role": "user", "content": "Look this up for me."},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "search", "arguments": json.dumps({"q": LEMON_PROMPT})}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "no results"}]
    with bastion(lemon_guard, tmp_path) as (url, canned, _):
        for messages in (parts, tool):
            completion = client(url).chat.completions.create(model="canned", messages=messages)
            assert completion.choices[0].finish_reason == "content_filter"
        assert canned.state.requests == []


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"{not json", 400, "invalid_json"),
    (b"[1, 2]", 400, "invalid_json"),
    (json.dumps({"model": 3, "messages": []}).encode(), 400, "invalid_value"),
    (json.dumps({"model": "canned", "messages": [{"role": "wizard", "content": "hi"}]}).encode(), 400, "invalid_value"),
    (json.dumps({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}).encode(), 404, "model_not_found"),
    (json.dumps({"model": "canned", "messages": [{"role": "user", "content": "x" * 5000}]}).encode(), 413, "request_too_large"),
])
def test_bad_requests_get_openai_style_4xx(lemon_guard, tmp_path, body, status, code):
    with bastion(lemon_guard, tmp_path, models=["canned"], max_body_bytes=4000) as (url, _, _):
        response = httpx.post(f"{url}/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code and response.json()["error"]["message"]


def test_api_keys_and_rate_limits(lemon_guard, tmp_path):
    keys = [{"id": "alice", "sha256": key_digest("secret-a"), "requests_per_minute": 2}]
    with bastion(lemon_guard, tmp_path, api_keys=keys) as (url, _, audit):
        with pytest.raises(openai.AuthenticationError):
            client(url, "wrong").chat.completions.create(model="canned", messages=ask(FRANCE_PROMPT))
        assert httpx.post(f"{url}/v1/moderations", json={"input": "hi"}).status_code == 401
        for _ in range(2):
            client(url, "secret-a").chat.completions.create(model="canned", messages=ask(FRANCE_PROMPT))
        with pytest.raises(openai.RateLimitError):
            client(url, "secret-a").chat.completions.create(model="canned", messages=ask(FRANCE_PROMPT))
        assert {r["api_key_id"] for r in audit.rows()} == {"alice"}


def _failing(status_exc: Exception) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        raise status_exc
    return handler


@pytest.mark.parametrize(("failure", "status"), [(httpx.ReadTimeout("slow"), 504), (httpx.ConnectError("down"), 502)])
def test_upstream_failures_map_to_gateway_statuses(lemon_guard, tmp_path, failure, status):
    from bastion.serve.upstream import Upstream

    upstream = Upstream("http://upstream.invalid", transport=httpx.MockTransport(_failing(failure)))
    audit = AuditLog(f"sqlite:///{tmp_path}/audit.sqlite3")
    app = create_app(load_config(None, upstream="http://upstream.invalid"), guard=lemon_guard, upstream=upstream, audit=audit)
    with running(app) as url:
        for stream in (False, True):
            response = httpx.post(f"{url}/v1/chat/completions",
                                  json={"model": "canned", "messages": ask(FRANCE_PROMPT), "stream": stream})
            assert response.status_code == status
            assert response.json()["error"]["type"] == "upstream_error"


@pytest.mark.parametrize(("policy", "status", "action"), [("closed", 503, "guard_error_blocked"), ("open", 200, "guard_error_allowed")])
def test_guard_failure_policy_is_applied_and_audited(lemon_guard, tmp_path, monkeypatch, policy, status, action):
    from bastion.guard import Guard

    def broken(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("model file went missing")

    monkeypatch.setattr(Guard, "check", broken)
    with bastion(lemon_guard, tmp_path, on_guard_error=policy) as (url, _, audit):
        response = httpx.post(f"{url}/v1/chat/completions", json={"model": "canned", "messages": ask(FRANCE_PROMPT)})
        rows = list(audit.rows())
    assert response.status_code == status
    assert [r["action"] for r in rows] == [action] and "model file went missing" in rows[0]["error"]


def test_client_disconnect_cancels_the_upstream_stream(lemon_guard, tmp_path):
    slow = canned_app(default=" ".join(["word"] * 200), delay_s=0.02)
    with bastion(lemon_guard, tmp_path, upstream=slow) as (url, canned, audit):
        with httpx.stream("POST", f"{url}/v1/chat/completions",
                          json={"model": "canned", "messages": ask(FRANCE_PROMPT), "stream": True}) as response:
            request_id = response.headers["x-bastion-request-id"]
            for _ in zip(range(3), response.iter_lines(), strict=False):
                pass
        for _ in range(100):  # the server notices the disconnect on its next write
            row = next(r for r in audit.rows() if r["request_id"] == request_id)
            if row["status"] == "complete":
                break
            __import__("time").sleep(0.05)
        assert row["action"] == "client_disconnected"
        assert canned.state.requests[0]["completed"] is False


def test_every_response_has_its_audit_row_and_metrics_count_decisions(lemon_guard, tmp_path):
    with bastion(lemon_guard, tmp_path, text="hash") as (url, _, audit):
        ids = [httpx.post(f"{url}/v1/chat/completions", json={"model": "canned", "messages": ask(p)}).headers["x-bastion-request-id"]
               for p in (FRANCE_PROMPT, LEMON_PROMPT, DESSERT_PROMPT) * 5]
        metrics = httpx.get(f"{url}/metrics").text
        ready = httpx.get(f"{url}/readyz")
        rows = list(audit.rows())
    assert audit.request_ids(ids) == set(ids)
    assert all(r["input_text"] is None and len(r["input_sha256"]) == 64 for r in rows)
    assert 'bastion_decisions_total{action="blocked",category="lemon_cake",direction="input",stage="stage1"} 5.0' in metrics
    assert ready.status_code == 200 and ready.json()["checks"] == {"guard": True, "audit": True, "upstream": True}


def test_readyz_reports_an_unreachable_upstream(lemon_guard, tmp_path):
    app = create_app(load_config(None, upstream="http://127.0.0.1:9"), guard=lemon_guard,
                     audit=AuditLog(f"sqlite:///{tmp_path}/a.sqlite3"))
    with running(app) as url:
        response = httpx.get(f"{url}/readyz")
    assert response.status_code == 503 and response.json()["checks"]["upstream"] is False


def test_resolved_config_round_trips_through_the_environment(monkeypatch):
    from bastion.serve.config import RESOLVED_ENV, from_environment, to_environment

    monkeypatch.delenv(RESOLVED_ENV, raising=False)
    config = load_config(None, upstream="http://model:8080/v1", upstream_api_key="s3cret", workers=2, mode="shadow")
    to_environment(config)
    restored = from_environment()
    assert restored.model_dump(exclude={"upstream_api_key"}) == config.model_dump(exclude={"upstream_api_key"})
    assert restored.upstream_api_key.get_secret_value() == "s3cret"


def test_several_workers_serve_one_port_and_one_audit_log(lemon_guard, tmp_path):
    import subprocess
    import sys
    import time

    from bastion.serve.embedded import free_port

    lemon_guard.save(tmp_path / "guard")
    audit_url = f"sqlite:///{tmp_path}/audit.sqlite3"
    with running(canned_app({"France": BENIGN_REPLY})) as upstream_url:
        port = free_port()
        env = {**__import__("os").environ, "BASTION_SERVE_AUDIT__URL": audit_url}
        server = subprocess.Popen([sys.executable, "-m", "bastion", "serve", "--guard", str(tmp_path / "guard"),
                                   "--upstream", upstream_url, "--port", str(port), "--workers", "2"], env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            ids = [httpx.post(f"{url}/v1/chat/completions", json={"model": "canned", "messages": ask(p)}).headers["x-bastion-request-id"]
                   for p in (FRANCE_PROMPT, LEMON_PROMPT) * 10]
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert AuditLog(audit_url).request_ids(ids) == set(ids)


def test_admin_reload_swaps_the_guard_without_a_restart(lemon_guard, small_guard, tmp_path):
    lemon_guard.save(tmp_path / "lemon")
    small_guard.save(tmp_path / "general")
    keys = [{"id": "ops", "sha256": key_digest("admin-key"), "admin": True},
            {"id": "app", "sha256": key_digest("app-key")}]
    with bastion(lemon_guard, tmp_path, api_keys=keys) as (url, _, _):
        admin = {"authorization": "Bearer admin-key"}
        assert httpx.post(f"{url}/admin/reload", json={}, headers={"authorization": "Bearer app-key"}).status_code == 403
        bad = httpx.post(f"{url}/admin/reload", json={"guard": str(tmp_path / "missing")}, headers=admin)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_guard"
        before = client(url, "app-key").moderations.create(input=LEMON_PROMPT).results[0].flagged
        swapped = httpx.post(f"{url}/admin/reload", json={"guard": str(tmp_path / "general")}, headers=admin).json()
        after = client(url, "app-key").moderations.create(input="How do I make a pipe bomb to hurt people?").results[0]
    assert before is True
    assert swapped["constitution"] == "general" and swapped["guard_version"] != swapped["previous"]
    assert after.flagged and "indiscriminate_weapons" in after.model_dump()["categories"]
