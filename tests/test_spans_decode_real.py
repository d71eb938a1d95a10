"""The OTLP/JSON decoder on real trajectories (../shared/data, imported as spans and encoded as
our exporters write them): it gives exactly the spans a plain, independent reading of the OTLP/JSON
gives (attribute order included), the spans that were encoded, and the same feature records as
those spans in memory. The decoder's hot loop is written for speed (docs/performance.md); this is
what keeps it honest."""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path
from typing import Any

import msgspec

from agentsignals import features
from agentsignals._import.run import import_file
from agentsignals._spans.decode import decode_otlp_json
from agentsignals._spans.encode import encode_otlp_json
from agentsignals._spans.model import AttrScalar, AttrValue, Event, Span

# One real file per format (paths under ../shared/data).
REAL = [
    "swe-agent/20250511_sweagent_lm_32b/trajs/pytest-dev__pytest-7432/pytest-dev__pytest-7432.traj",
    "mini-swe-agent/20251118_gemini-3-pro/trajs/django__django-16527/django__django-16527.traj.json",
    "openhands/basic.json",
    "openhands/resolver-output.jsonl",
    "claude-code/tool_heavy.jsonl",
    "claude-code/subagent.jsonl",
    "pi/before-compaction.jsonl",
    "codex/redacted-session-01.jsonl",
    "inspect-ai/log_read_sample.json",
]


@functools.cache
def _imported(root: Path) -> list[list[Span]]:
    paths = [root / r for r in REAL]
    corpus = root / "corpus"
    if (corpus / "labels.csv").is_file():
        with (corpus / "labels.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        by_set: dict[str, list[str]] = {}
        for row in rows:
            by_set.setdefault(row["set"], []).append(row["trajectory"])
        # A few trajectories of each agent in the corpus.
        paths += [corpus / t for group in by_set.values() for t in group[:: len(group) // 4]]
    out: list[list[Span]] = []
    for path in paths:
        result = import_file(path)
        assert not result.problems, result.problems
        out.extend(result.trajectories)
    return out


# ---------------------------------------------------------------- an independent plain reading


def _nested(v: dict[str, Any]) -> object:
    ((kind, x),) = v.items()
    if kind == "arrayValue":
        return [_nested(e) for e in x.get("values", [])]
    if kind == "kvlistValue":
        return {kv["key"]: _nested(kv["value"]) for kv in x.get("values", [])}
    if kind == "intValue":
        return int(x)
    return x


def _value(v: dict[str, Any]) -> AttrValue | None:
    if not v:
        return None
    ((kind, x),) = v.items()
    if kind == "stringValue" or kind == "bytesValue":
        return str(x)
    if kind == "intValue":
        return int(x)
    if kind == "boolValue":
        return bool(x)
    if kind == "doubleValue":
        return float(x)
    if kind == "kvlistValue":
        return json.dumps(_nested(v), separators=(",", ":"), ensure_ascii=False)
    assert kind == "arrayValue", kind
    items: list[AttrScalar] = []
    for e in x.get("values", []):
        if not e:
            continue
        (k,) = e.keys()
        if k in ("arrayValue", "kvlistValue"):
            items.append(json.dumps(_nested(e), separators=(",", ":"), ensure_ascii=False))
        else:
            scalar = _value(e)
            assert scalar is not None and not isinstance(scalar, list)
            items.append(scalar)
    return items


def _attrs(kvs: list[dict[str, Any]]) -> dict[str, AttrValue]:
    out: dict[str, AttrValue] = {}
    for kv in kvs:
        value = _value(kv.get("value") or {})
        if value is not None:
            out[kv["key"]] = value
    return out


def _event(e: dict[str, Any]) -> Event:
    return Event(e["name"], int(e["timeUnixNano"]), _attrs(e.get("attributes", [])))


def _plain_decode(payload: bytes) -> list[Span]:
    doc = json.loads(payload)
    out: list[Span] = []
    for rs in doc["resourceSpans"]:
        resource = _attrs(rs.get("resource", {}).get("attributes", []))
        for ss in rs["scopeSpans"]:
            scope = ss.get("scope", {}).get("name", "")
            for s in ss["spans"]:
                parent = s.get("parentSpanId") or None
                status = s.get("status") or {}
                out.append(
                    Span(
                        trace_id=s["traceId"].lower(),
                        span_id=s["spanId"].lower(),
                        parent_span_id=None if parent in (None, "0" * 16) else parent.lower(),
                        name=s.get("name", ""),
                        kind=int(s.get("kind", 0)),
                        start_ns=int(s["startTimeUnixNano"]),
                        end_ns=int(s["endTimeUnixNano"]),
                        attributes=_attrs(s.get("attributes", [])),
                        status_code=int(status.get("code", 0)),
                        status_message=status.get("message", ""),
                        events=[_event(e) for e in s.get("events", [])],
                        resource=resource,
                        scope_name=scope,
                    )
                )
    return out


def _exact(spans: list[Span]) -> list[object]:
    """Spans as plain data with every dict's key order kept (Span equality ignores it)."""
    return [
        (
            msgspec.structs.astuple(s)[:7],
            list(s.attributes.items()),
            s.status_code,
            s.status_message,
            [(e.name, e.time_ns, list(e.attributes.items())) for e in s.events],
            list(s.resource.items()),
            s.scope_name,
        )
        for s in spans
    ]


# ------------------------------------------------------------------------------------ tests


def test_decode_equals_a_plain_reading_and_the_encoded_spans(shared_data: Path) -> None:
    trajectories = _imported(shared_data)
    assert len(trajectories) >= 15
    n_spans = n_attrs = 0
    for spans in trajectories:
        payload = encode_otlp_json(spans)
        decoded = decode_otlp_json(payload)
        assert _exact(decoded) == _exact(_plain_decode(payload))
        assert decoded == spans  # nothing lost or changed on the way through OTLP/JSON
        n_spans += len(decoded)
        n_attrs += sum(len(s.attributes) for s in decoded)
    assert n_spans > 1000 and n_attrs > 10 * n_spans


def test_records_through_decode_equal_records_from_the_spans(
    shared_data: Path, tmp_path: Path
) -> None:
    trajectories = _imported(shared_data)
    path = tmp_path / "traces.jsonl"
    with path.open("wb") as f:
        for spans in trajectories:
            f.write(encode_otlp_json(spans) + b"\n")
    from_file = features.extract(path)
    in_memory = features.from_spans([s for spans in trajectories for s in spans])
    assert not from_file.problems
    assert len(from_file.attempts) >= len(trajectories)
    encode = msgspec.json.encode
    assert [encode(r) for r in from_file.attempts] == [encode(r) for r in in_memory.attempts]
    assert [encode(r) for r in from_file.trials] == [encode(r) for r in in_memory.trials]
    assert [encode(r) for r in from_file.sessions] == [encode(r) for r in in_memory.sessions]
