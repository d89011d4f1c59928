import io
import json

import pytest

from bastion.data.jsonl import SkippedLines, atomic_writer, read_examples, write_jsonl
from bastion.errors import RecordError


def _stream(*lines: bytes) -> io.BytesIO:
    return io.BytesIO(b"\n".join(lines) + b"\n")


def test_reads_prompts_messages_and_content_parts():
    rows = list(read_examples(_stream(
        b'{"prompt": "hi", "label": "unsafe"}',
        b'{"id": 7, "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}',
    )))
    assert rows[0].id == "1" and rows[0].label == 1
    assert rows[1].id == "7" and rows[1].last_user_text() == "a\nb"


@pytest.mark.parametrize("line, needle", [
    (b'{"prompt": "x"', "line 2: not valid JSON"),
    (b'["a"]', "line 2: expected a JSON object"),
    (b'{"label": 1}', "line 2: record: Value error"),
    (b'{"prompt": 5}', "line 2: prompt"),
    (b'{"prompt": "x", "label": "maybe"}', "line 2: label"),
    (b'{"prompt": "caf\xe9"}', "line 2: not UTF-8"),
])
def test_bad_lines_are_named(line, needle):
    with pytest.raises(RecordError, match=needle):
        list(read_examples(_stream(b'{"prompt": "ok"}', line)))


def test_skip_mode_reports_skipped_lines():
    skipped = SkippedLines()
    rows = list(read_examples(_stream(b'{"prompt": "a"}', b"nope", b'{"prompt": "b"}'), on_error="skip", skipped=skipped))
    assert [r.prompt for r in rows] == ["a", "b"]
    assert [n for n, _ in skipped.lines] == [2]


def test_oversized_record_is_rejected():
    with pytest.raises(RecordError, match="over the limit"):
        list(read_examples(_stream(json.dumps({"prompt": "x" * 100}).encode()), max_chars=50))


def test_atomic_writer_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write("partial")
        raise RuntimeError("crash")
    assert target.read_text() == "old\n"
    assert list(tmp_path.iterdir()) == [target]
    write_jsonl([{"a": 1}], target)
    assert target.read_text() == '{"a": 1}\n'


@pytest.mark.parametrize("turns", [[("user", "hi")], [("system", "s"), ("user", "a\n\n[tool] b"), ("assistant", "")],
                                   [("user", "[user] nested"), ("assistant", "x\n\n"), ("user", "")]])
def test_a_rendered_conversation_parses_back_to_the_same_text(turns):
    from bastion.data.records import Message, parse_conversation, render_conversation

    text = render_conversation([Message(role=role, content=content) for role, content in turns])
    assert render_conversation(parse_conversation(text)) == text


def test_a_rendered_conversation_must_start_with_a_turn():
    from bastion.data.records import parse_conversation

    with pytest.raises(ValueError, match="not a rendered conversation"):
        parse_conversation("no markers here")
