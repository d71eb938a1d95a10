"""Every input decodes to the same typed spans: SDK spans, OTLP/protobuf, OTLP/JSON (+ files)."""

from __future__ import annotations

import base64
import gc
import gzip
import importlib.util
import io
import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict, MessageToJson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentsignals import semconv as sc
from agentsignals._spans.decode import (
    DecodeError,
    DecodeProblem,
    decode_otlp_json,
    decode_otlp_json_lines,
    decode_otlp_protobuf,
    find_otlp_json_files,
    from_readable_spans,
    read_otlp_json_files,
)
from agentsignals._spans.encode import encode_otlp_protobuf
from agentsignals._spans.model import Event, Span

REPO = Path(__file__).resolve().parent.parent
_ID_KEYS = ("traceId", "spanId", "parentSpanId")


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sdk_spans() -> list[ReadableSpan]:
    """Real SDK spans from two resources and two scopes, with every attribute kind."""
    exporter = InMemorySpanExporter()
    providers: list[TracerProvider] = []
    for service in ("agent-a", "agent-b"):
        provider = TracerProvider(
            resource=Resource.create({"service.name": service, "worker.index": len(providers)})
        )
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers.append(provider)

    tracer_a = providers[0].get_tracer("agentsignals", "0.1.0")
    tracer_a2 = providers[0].get_tracer("agentsignals.tools")
    tracer_b = providers[1].get_tracer("other.scope")

    with tracer_a.start_as_current_span(
        "invoke_agent trial",
        kind=SpanKind.SERVER,
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "empty": "",
            "zero": 0,
            "false": False,
            "neg": -7,
            "big": 2**62 + 1,
            "ratio": 0.1,
            "inf": float("inf"),
            "strs": ["a", "b", ""],
            "ints": [1, 2, 3],
            "floats": [1.5, -2.25],
            "bools": [True, False],
            "empty_list": [],
        },
    ) as trial:
        trial.add_event("started", {"attempts": 2, "model": "m"})
        with tracer_a.start_as_current_span("turn 0", kind=SpanKind.INTERNAL) as turn:
            turn.set_attribute("agent_signals.turn.index", 0)
            with tracer_a2.start_as_current_span(
                "execute_tool bash",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.tool.name": "bash",
                    "process.exit.code": 2,
                    "agent_signals.tool.files": ["src/a.py", "tests/test_a.py"],
                    "blob": b"\x00\xffbinary",
                    "mapping": {"k": 1, "nested": {"x": [1, "y"]}, "b": b"\x01"},
                    "nested_arrays": [[1, 2], ["x"]],
                    "with_none": ["a", None, "b"],
                },
            ) as tool:
                tool.add_event(
                    "exception",
                    {"exception.type": "CommandFailed", "exception.message": "exit 2"},
                )
                tool.set_status(Status(StatusCode.ERROR, "exit code 2"))
            with tracer_a2.start_as_current_span("execute_tool read", kind=SpanKind.PRODUCER) as ok:
                ok.set_status(Status(StatusCode.OK))
    with tracer_b.start_as_current_span("consumer root", kind=SpanKind.CONSUMER) as other:
        other.set_attribute("x", "y")
    with tracer_b.start_as_current_span("second root"):
        pass
    spans = list(exporter.get_finished_spans())
    for provider in providers:
        provider.shutdown()
    return spans


def _base64_ids_to_hex(node: Any) -> Any:
    """Turn proto3-JSON base64 ids into the hex ids real OTLP/JSON uses (in place)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                _base64_ids_to_hex(value)
    elif isinstance(node, list):
        for item in node:
            _base64_ids_to_hex(item)
    return node


def _otlp_json(spans: list[ReadableSpan]) -> bytes:
    doc = json.loads(MessageToJson(encode_spans(spans)))
    return json.dumps(_base64_ids_to_hex(doc)).encode()


def _by_id(spans: list[Span]) -> list[Span]:
    return sorted(spans, key=lambda s: s.span_id)


def _request(*spans: dict[str, Any], resource: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": resource or {"attributes": []},
                "scopeSpans": [{"scope": {"name": "s"}, "spans": list(spans)}],
            }
        ]
    }


def _span(n: int, **extra: Any) -> dict[str, Any]:
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": f"{n:016x}",
        "parentSpanId": "",
        "name": f"span {n}",
        "kind": 1,
        "startTimeUnixNano": "1000",
        "endTimeUnixNano": "2000",
        "attributes": [{"key": "n", "value": {"intValue": str(n)}}],
        "status": {},
    }
    span.update(extra)
    return span


def _line(*spans: dict[str, Any]) -> bytes:
    return json.dumps(_request(*spans)).encode() + b"\n"


# ---------------------------------------------------------------------------------------------
# All decoders agree
# ---------------------------------------------------------------------------------------------


def test_all_sources_decode_to_equal_spans(sdk_spans: list[ReadableSpan]) -> None:
    from_sdk = from_readable_spans(sdk_spans)
    from_pb = decode_otlp_protobuf(encode_spans(sdk_spans).SerializeToString())
    from_json = decode_otlp_json(_otlp_json(sdk_spans))
    from_b64_json = decode_otlp_json(MessageToJson(encode_spans(sdk_spans)).encode())

    assert len(from_sdk) == len(sdk_spans) == 6
    # The encoder groups by resource and scope, so only the order may differ.
    assert _by_id(from_pb) == _by_id(from_sdk)
    assert _by_id(from_json) == _by_id(from_sdk)
    assert _by_id(from_b64_json) == _by_id(from_sdk)


@pytest.mark.parametrize("source", ["protobuf", "json"])
def test_repeated_identity_values_are_one_shared_string(source: str) -> None:
    """Ids, span types and tool names repeat on every span of an attempt: decoded spans share
    one string per value (a fifth less memory per held span); free text stays unshared."""

    def attrs(n: int) -> list[dict[str, Any]]:
        # Built per span so each decode sees distinct (equal) string objects.
        return [
            {"key": sc.AGENT_SIGNALS_ATTEMPT_ID, "value": {"stringValue": "".join(["att", "-1"])}},
            {"key": sc.GEN_AI_TOOL_NAME, "value": {"stringValue": "".join(["ba", "sh"])}},
            {"key": "free.text", "value": {"stringValue": f"output {n} " + "x" * 40}},
        ]

    spans = decode_otlp_json(_line(_span(1, attributes=attrs(1)), _span(2, attributes=attrs(2))))
    if source == "protobuf":
        spans = decode_otlp_protobuf(encode_otlp_protobuf(spans))
    first, second = (s.attributes for s in spans)
    for key in (sc.AGENT_SIGNALS_ATTEMPT_ID, sc.GEN_AI_TOOL_NAME):
        assert first[key] == second[key] and first[key] is second[key]
    assert first["free.text"] != second["free.text"]


@pytest.mark.parametrize("source", ["sdk", "protobuf", "json"])
def test_decoded_values(sdk_spans: list[ReadableSpan], source: str) -> None:
    if source == "sdk":
        spans = from_readable_spans(sdk_spans)
    elif source == "protobuf":
        spans = decode_otlp_protobuf(encode_spans(sdk_spans).SerializeToString())
    else:
        spans = decode_otlp_json(_otlp_json(sdk_spans))
    by_name = {s.name: s for s in spans}

    trial = by_name["invoke_agent trial"]
    assert trial.kind == 2 and trial.parent_span_id is None and trial.is_root
    assert len(trial.trace_id) == 32 and len(trial.span_id) == 16
    assert trial.trace_id == trial.trace_id.lower()
    assert trial.scope_name == "agentsignals"
    assert trial.resource["service.name"] == "agent-a"
    assert trial.resource["worker.index"] == 0
    attrs = trial.attributes
    assert attrs["empty"] == "" and attrs["zero"] == 0 and attrs["false"] is False
    assert attrs["big"] == 2**62 + 1 and attrs["neg"] == -7
    assert attrs["ratio"] == 0.1 and attrs["inf"] == math.inf
    assert attrs["strs"] == ["a", "b", ""]
    assert attrs["ints"] == [1, 2, 3] and attrs["floats"] == [1.5, -2.25]
    assert attrs["bools"] == [True, False] and attrs["empty_list"] == []
    assert trial.events == [
        Event("started", trial.events[0].time_ns, {"attempts": 2, "model": "m"})
    ]
    assert trial.status_code == 0 and trial.status_message == ""

    turn = by_name["turn 0"]
    tool = by_name["execute_tool bash"]
    assert turn.kind == 1 and turn.parent_span_id == trial.span_id
    assert tool.kind == 3 and tool.parent_span_id == turn.span_id
    assert tool.trace_id == trial.trace_id
    assert tool.scope_name == "agentsignals.tools"
    assert tool.is_error and tool.status_message == "exit code 2"
    assert tool.attr_int("process.exit.code") == 2
    assert tool.attr_str_list("agent_signals.tool.files") == ["src/a.py", "tests/test_a.py"]
    assert tool.attributes["blob"] == base64.b64encode(b"\x00\xffbinary").decode()
    assert json.loads(tool.attr_str("mapping") or "") == {
        "k": 1,
        "nested": {"x": [1, "y"]},
        "b": base64.b64encode(b"\x01").decode(),
    }
    assert tool.attributes["nested_arrays"] == ["[1,2]", '["x"]']
    assert tool.attributes["with_none"] == ["a", "b"]
    assert [e.name for e in tool.events] == ["exception"]
    assert tool.events[0].attr_str("exception.type") == "CommandFailed"
    assert tool.start_ns <= tool.events[0].time_ns <= tool.end_ns
    assert by_name["execute_tool read"].kind == 4
    assert by_name["execute_tool read"].status_code == 1
    assert by_name["consumer root"].kind == 5
    assert by_name["consumer root"].resource["service.name"] == "agent-b"
    assert by_name["second root"].trace_id != by_name["consumer root"].trace_id

    # One resource dict per resource, shared by its spans rather than copied.
    assert trial.resource is tool.resource is turn.resource
    assert by_name["consumer root"].resource is by_name["second root"].resource
    assert trial.resource is not by_name["consumer root"].resource


def test_exporter_output_decodes(sdk_spans: list[ReadableSpan]) -> None:
    """Our own OTLP/JSON file exporter's output decodes to the same spans (when present)."""
    module = pytest.importorskip("agentsignals._export.otlp_json")
    encode_request = getattr(module, "encode_request", None)
    if encode_request is None:
        pytest.skip("agentsignals._export.otlp_json has no encode_request")
    payload = encode_request(sdk_spans)
    if isinstance(payload, str):
        payload = payload.encode()
    assert _by_id(decode_otlp_json(payload)) == _by_id(from_readable_spans(sdk_spans))


# ---------------------------------------------------------------------------------------------
# OTLP/JSON details
# ---------------------------------------------------------------------------------------------


def test_json_lenient_encodings() -> None:
    span = _span(
        1,
        traceId="5B8EFFF798038103D269B633813FC60C",  # uppercase hex
        parentSpanId="0000000000000000",  # all-zero parent means root
        kind="SPAN_KIND_CLIENT",
        startTimeUnixNano=1000,  # number instead of string
        status={"code": "STATUS_CODE_ERROR", "message": "boom"},
        attributes=[
            {"key": "i_num", "value": {"intValue": 42}},
            {"key": "i_str", "value": {"intValue": "-42"}},
            {"key": "nan", "value": {"doubleValue": "NaN"}},
            {"key": "inf", "value": {"doubleValue": "Infinity"}},
            {"key": "ninf", "value": {"doubleValue": "-Infinity"}},
            {"key": "d_int", "value": {"doubleValue": 3}},
            {"key": "bytes", "value": {"bytesValue": "AAE="}},
            {
                "key": "kv",
                "value": {"kvlistValue": {"values": [{"key": "a", "value": {"intValue": "1"}}]}},
            },
            {"key": "empty", "value": {}},
            {"key": "no_value"},
        ],
        events=[{"timeUnixNano": "1500", "name": "e"}],
        flags=256,
        traceState="",
        links=[],
        droppedAttributesCount=0,
    )
    [s] = decode_otlp_json(_line(span))
    assert s.trace_id == "5b8efff798038103d269b633813fc60c"
    assert s.parent_span_id is None
    assert s.kind == 3 and s.start_ns == 1000 and s.end_ns == 2000
    assert s.status_code == 2 and s.status_message == "boom"
    a = s.attributes
    assert a["i_num"] == 42 and a["i_str"] == -42
    assert isinstance(a["nan"], float) and math.isnan(a["nan"])
    assert a["inf"] == math.inf and a["ninf"] == -math.inf
    assert a["d_int"] == 3.0 and isinstance(a["d_int"], float)
    assert a["bytes"] == "AAE=" and a["kv"] == '{"a":1}'
    assert "empty" not in a and "no_value" not in a
    assert s.events == [Event("e", 1500, {})]


def test_json_base64_ids_are_converted() -> None:
    trace = bytes.fromhex("5b8efff798038103d269b633813fc60c")
    span = _span(
        1,
        traceId=base64.b64encode(trace).decode(),  # 24 chars
        spanId=base64.b64encode(bytes.fromhex("eee19b7ec3c1b174")).decode(),  # 12 chars
        parentSpanId=base64.urlsafe_b64encode(bytes.fromhex("eee19b7ec3c1b173")).decode()[:11],
    )
    [s] = decode_otlp_json(_line(span))
    assert s.trace_id == trace.hex()
    assert s.span_id == "eee19b7ec3c1b174"
    assert s.parent_span_id == "eee19b7ec3c1b173"


def test_json_accepts_str_and_old_instrumentation_library_layout() -> None:
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "r", "value": {"stringValue": "v"}}]},
                "instrumentationLibrarySpans": [
                    {"instrumentationLibrary": {"name": "old"}, "spans": [_span(5)]}
                ],
            }
        ]
    }
    [s] = decode_otlp_json(json.dumps(doc))
    assert s.scope_name == "old" and s.resource == {"r": "v"} and s.attributes == {"n": 5}


@pytest.mark.parametrize("payload", [b'{"resourceSpans": []}', b"{}", b'{"resourceSpans": null}'])
def test_json_empty_request(payload: bytes) -> None:
    assert decode_otlp_json(payload) == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"resourceSpans": [{"scopeSpans": [', "truncated JSON at byte 35"),
        (b"", "empty input"),
        (b'{"resourceSpans": [}', "malformed JSON: invalid character (byte 19)"),
        (b"[1, 2]", "not an OTLP ExportTraceServiceRequest: expected a JSON object, got `array`"),
        (b'{"spans": []}', "not an OTLP ExportTraceServiceRequest: missing resourceSpans"),
        (b'{"resource_spans": []}', "snake_case key 'resource_spans'"),
        (b'{"resourceSpans": [{"scopeSpans": 5}]}', "Expected `array`, got `int`"),
    ],
)
def test_json_errors_are_clear(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_otlp_json(payload)
    assert message in str(info.value)


def test_json_bad_ids_name_the_span() -> None:
    with pytest.raises(DecodeError, match=r"resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[1\]: "):
        decode_otlp_json(_line(_span(1), _span(2, spanId="xyz")))
    with pytest.raises(DecodeError, match="invalid spanId '00000000 0000001'"):
        decode_otlp_json(_line(_span(2, spanId="00000000 0000001")))
    with pytest.raises(DecodeError, match="missing traceId"):
        decode_otlp_json(_line(_span(1, traceId="")))
    snake = _span(1)
    snake["trace_id"] = snake.pop("traceId")
    with pytest.raises(DecodeError, match="lowerCamelCase"):
        decode_otlp_json(_line(snake))
    with pytest.raises(DecodeError, match="unknown span kind 'SPAN_KIND_WHATEVER'"):
        decode_otlp_json(_line(_span(1, kind="SPAN_KIND_WHATEVER")))


# ---------------------------------------------------------------------------------------------
# OTLP/JSON files
# ---------------------------------------------------------------------------------------------


def test_jsonl_bad_lines_are_reported_and_others_kept(tmp_path: Path) -> None:
    good = [_line(_span(i)) for i in range(1, 5)]
    path = tmp_path / "traces.jsonl"
    path.write_bytes(
        good[0]
        + good[1][:40]  # truncated line (a crash mid-write)
        + b"\n"
        + b"\n"  # blank lines are fine
        + good[2]
        + b'{"resource_spans": []}\n'
        + good[3].rstrip(b"\n")  # no final newline
    )
    problems: list[DecodeProblem] = []
    seen: list[DecodeProblem] = []
    batches = list(decode_otlp_json_lines(path, problems=problems, on_problem=seen.append))
    assert [[s.attributes["n"] for s in b] for b in batches] == [[1], [3], [4]]
    assert problems == seen
    assert [(p.path, p.line_no) for p in problems] == [(str(path), 2), (str(path), 5)]
    assert problems[0].message == (
        "truncated JSON at byte 40: the input ends before the document is complete"
    )
    assert "snake_case" in problems[1].message
    assert str(problems[0]).startswith(f"{path}:2: truncated JSON at byte 40")


def test_problems_are_logged_by_default(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(_line(_span(1)) + b"not json\n")
    with caplog.at_level(logging.WARNING, logger="agentsignals._spans.decode"):
        spans = list(read_otlp_json_files(path))
    assert len(spans) == 1
    assert f"{path}:2: malformed JSON" in caplog.text


def test_gzip_and_folder_recursion(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "one.jsonl").write_bytes(_line(_span(1)) + _line(_span(2)))
    with gzip.open(tmp_path / "a" / "two.jsonl.gz", "wb") as f:
        f.write(_line(_span(3)) + _line(_span(4)))
    # A pretty-printed single-document .json file, and a gzipped one-line .json.
    (tmp_path / "a" / "b" / "three.json").write_text(json.dumps(_request(_span(5)), indent=2))
    with gzip.open(tmp_path / "a" / "b" / "four.json.gz", "wb") as f:
        f.write(_line(_span(6)))
    (tmp_path / "a" / "ignored.txt").write_bytes(_line(_span(99)))

    files = find_otlp_json_files(tmp_path)
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "a/b/four.json.gz",
        "a/b/three.json",
        "a/two.jsonl.gz",
        "one.jsonl",
    ]
    problems: list[DecodeProblem] = []
    spans = list(read_otlp_json_files([tmp_path], problems=problems))
    assert problems == []
    assert sorted(s.attr_int("n") or 0 for s in spans) == [1, 2, 3, 4, 5, 6]


def test_explicit_file_any_suffix_and_missing_path(tmp_path: Path) -> None:
    log = tmp_path / "export.log"
    log.write_bytes(_line(_span(1)))
    assert [s.attributes["n"] for s in read_otlp_json_files(str(log))] == [1]
    with pytest.raises(FileNotFoundError):
        read_otlp_json_files(tmp_path / "nope.jsonl")
    with pytest.raises(FileNotFoundError):
        list(decode_otlp_json_lines(tmp_path / "nope.jsonl"))


def test_file_gone_after_listing_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(_line(_span(1)))
    (tmp_path / "b.jsonl").write_bytes(_line(_span(2)))
    problems: list[DecodeProblem] = []
    spans = read_otlp_json_files(tmp_path, problems=problems)
    (tmp_path / "a.jsonl").unlink()  # rotated away before it was read
    assert [s.attributes["n"] for s in spans] == [2]
    assert [(Path(p.path).name, p.line_no) for p in problems] == [("a.jsonl", 0)]
    assert problems[0].message.startswith("cannot open:")


def test_not_gzip_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "fake.jsonl.gz"
    path.write_bytes(_line(_span(1)))
    problems: list[DecodeProblem] = []
    assert list(read_otlp_json_files(path, problems=problems)) == []
    assert len(problems) == 1 and problems[0].line_no == 1
    assert problems[0].message.startswith("unreadable input:")


def test_truncated_gzip_keeps_earlier_lines(tmp_path: Path) -> None:
    lines = b"".join(_line(_span(i)) for i in range(1, 200))
    data = gzip.compress(lines)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    problems: list[DecodeProblem] = []
    spans = list(read_otlp_json_files(path, problems=problems))
    assert 0 < len(spans) < 199
    assert [s.attributes["n"] for s in spans] == list(range(1, len(spans) + 1))
    assert len(problems) >= 1 and problems[-1].path == str(path)
    assert any("unreadable input" in p.message or "truncated" in p.message for p in problems)


def test_single_document_json_that_is_broken(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    text = json.dumps(_request(_span(1)), indent=2)
    path.write_text(text[: len(text) // 2])
    problems: list[DecodeProblem] = []
    assert list(decode_otlp_json_lines(path, problems=problems)) == []
    assert len(problems) == 1 and problems[0].line_no == 1
    assert problems[0].message.startswith("truncated JSON at byte")


@pytest.mark.parametrize("name", ["first.json", "first.jsonl"])
def test_bad_first_line_of_json_lines(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(_line(_span(1))[:30] + b"\n" + b"{bad\n" + _line(_span(2)) + b"[]\n")
    problems: list[DecodeProblem] = []
    batches = list(decode_otlp_json_lines(path, problems=problems))
    assert [[s.attributes["n"] for s in b] for b in batches] == [[2]]
    assert [(p.line_no, p.message.split(":")[0]) for p in problems] == [
        (1, "truncated JSON at byte 30"),
        (2, "malformed JSON"),
        (4, "not an OTLP ExportTraceServiceRequest"),
    ]


def test_stream_source(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(_line(_span(1)) + _line(_span(2)))
    with path.open("rb") as f:
        assert [len(b) for b in decode_otlp_json_lines(f)] == [1, 1]


class _Trickle(io.RawIOBase):
    """A stream whose reads return a few bytes at a time, so lines span many reads."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._pos, self._step = data, 0, step
        self.name = "<trickle>"

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1) -> bytes:
        chunk = self._data[self._pos : self._pos + min(self._step, size)]
        self._pos += len(chunk)
        return chunk


@pytest.mark.parametrize("step", [1, 7, 1 << 20])
def test_lines_spanning_reads_and_crlf(step: int) -> None:
    data = _line(_span(1)).replace(b"\n", b"\r\n") + b"\r\n  \n" + _line(_span(2))[:-1] + b"\n{"
    problems: list[DecodeProblem] = []
    batches = list(decode_otlp_json_lines(_Trickle(data, step), problems=problems))  # type: ignore[arg-type]
    assert [[s.attributes["n"] for s in b] for b in batches] == [[1], [2]]
    assert [(p.path, p.line_no) for p in problems] == [("<trickle>", 5)]
    assert problems[0].message.startswith("truncated JSON at byte 1")


def test_pretty_printed_crlf_document(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_bytes(
        json.dumps(_request(_span(1), _span(2)), indent=2).encode().replace(b"\n", b"\r\n")
    )
    assert [len(b) for b in decode_otlp_json_lines(path)] == [2]


# ---------------------------------------------------------------------------------------------
# OTLP/protobuf
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"\x0a\xff", b"garbage data here", b"\x0a\x05abc"])
def test_malformed_protobuf_raises(payload: bytes) -> None:
    with pytest.raises(DecodeError, match="malformed OTLP/protobuf ExportTraceServiceRequest"):
        decode_otlp_protobuf(payload)


def test_protobuf_empty_and_bad_ids(sdk_spans: list[ReadableSpan]) -> None:
    assert decode_otlp_protobuf(b"") == []
    request = encode_spans(sdk_spans[:1])
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = b"\x01\x02"
    with pytest.raises(DecodeError, match="invalid trace_id: 2 bytes, expected 16"):
        decode_otlp_protobuf(request.SerializeToString())


def test_protobuf_roundtrip_matches_json_dict(sdk_spans: list[ReadableSpan]) -> None:
    # Sanity check on the helper: the hex JSON still carries every span.
    doc = MessageToDict(encode_spans(sdk_spans))
    n = sum(len(ss["spans"]) for rs in doc["resourceSpans"] for ss in rs["scopeSpans"])
    assert n == len(sdk_spans)


# ---------------------------------------------------------------------------------------------
# GC handling and the model
# ---------------------------------------------------------------------------------------------


def test_gc_state_is_restored() -> None:
    assert gc.isenabled()
    decode_otlp_json(_line(_span(1)))
    assert gc.isenabled()
    with pytest.raises(DecodeError):
        decode_otlp_json(b"{")
    assert gc.isenabled()
    gc.disable()
    try:
        decode_otlp_json(_line(_span(1)))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_span_helpers_coerce_leniently() -> None:
    s = Span(
        "0" * 31 + "1",
        "0" * 15 + "1",
        None,
        "x",
        1,
        10,
        5,
        {
            "i": "42",
            "f": "2.5",
            "fi": 3.0,
            "b": "TRUE",
            "b1": 1,
            "n": 7,
            "t": True,
            "l": ["a", 1],
            "nan": "NaN",
            "junk": "abc",
        },
    )
    assert s.attr_int("i") == 42 and s.attr_int("fi") == 3 and s.attr_int("f") is None
    assert s.attr_int("t") is None and s.attr_int("junk") is None and s.attr_int("nope") is None
    assert s.attr_float("f") == 2.5 and s.attr_float("n") == 7.0
    assert math.isnan(s.attr_float("nan") or 0.0)
    assert s.attr_bool("b") is True and s.attr_bool("b1") is True and s.attr_bool("n") is None
    assert s.attr_str("n") == "7" and s.attr_str("t") == "true" and s.attr_str("l") is None
    assert s.attr_str_list("l") == ["a", "1"] and s.attr_str_list("junk") == ["abc"]
    assert s.attr("l") == ["a", 1]
    assert s.duration_ns == 0 and s.is_root and not s.is_error
    assert s.events == [] and s.resource == {} and s.status_code == 0


# ---------------------------------------------------------------------------------------------
# The benchmark generator
# ---------------------------------------------------------------------------------------------


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_traces", REPO / "benchmarks" / "gen_traces.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_traces_decode() -> None:
    gen = _load_generator()
    lines: Iterator[str] = gen.generate_lines(3000, spans_per_line=500)
    docs = list(lines)
    assert docs == list(gen.generate_lines(3000, spans_per_line=500))  # deterministic
    spans = [s for d in docs for s in decode_otlp_json(d)]
    assert len(spans) >= 3000
    ops = {s.attr_str("gen_ai.operation.name") for s in spans}
    # Trial and turn spans are our own grouping spans: no GenAI operation.
    assert ops == {"invoke_agent", "chat", "execute_tool", None}
    kinds = {s.attr_str("agent_signals.span.type") for s in spans}
    assert {"trial", "attempt", "turn", "tool"} <= kinds
    ids = {s.span_id for s in spans}
    assert all(s.parent_span_id in ids for s in spans if s.parent_span_id is not None)
    tools = [s for s in spans if s.attr_str("gen_ai.operation.name") == "execute_tool"]
    with_files = [s.attr_str_list("agent_signals.tool.files") for s in tools]
    assert any(isinstance(files, list) and files for files in with_files)
    assert all(s.attr_int("agent_signals.turn.index") is not None for s in tools)


def test_span_roundtrips_through_msgspec(sdk_spans: list[ReadableSpan]) -> None:
    # Processors may cache decoded spans; the model must stay msgspec-serialisable.
    import msgspec

    spans = from_readable_spans(sdk_spans)
    packed = msgspec.msgpack.encode(spans)
    assert msgspec.msgpack.decode(packed, type=list[Span]) == spans
    finite = [s for s in spans if "inf" not in s.attributes]  # JSON has no Infinity
    assert msgspec.json.decode(msgspec.json.encode(finite), type=list[Span]) == finite
