"""Scale-out: several `agentsignals collect` instances behind a trace-id load balancer.

`collectors/otelcol-loadbalancing.yaml` puts the OpenTelemetry Collector's load-balancing
exporter in front of the instances, routing by trace id. What that relies on: an Assembler sees
every span of an attempt and of its trial, because a trial is one trace. Here two independent
Assemblers (two instances, in process) each take the spans whose trace id hashes to them, and
together they must write exactly the records one Assembler writes over all spans. Routing by
span id instead (what a trace-unaware balancer does) is the negative control: records differ.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from opentelemetry.trace import SpanKind

import agentsignals
from agentsignals import semconv as sc
from agentsignals._features.assemble import Assembler, Record
from agentsignals._features.record import TrialRecord
from agentsignals._spans.decode import decode_otlp_json, from_readable_spans
from agentsignals._spans.model import Span
from agentsignals.testing import capture_spans

ROOT = Path(__file__).resolve().parents[1]
LB_CONFIG = ROOT / "collectors" / "otelcol-loadbalancing.yaml"
GRACE_REQUESTS = 8  # the clock counts export requests, as the offline reader counts lines

Batches = list[list[Span]]
Route = Callable[[Span], int]


# ----------------------------------------------------------------------- the Collector config
def _config() -> dict[str, Any]:
    return dict(yaml.safe_load(LB_CONFIG.read_text()))


def _lb(config: dict[str, Any]) -> dict[str, Any]:
    names = [
        n for n in config["exporters"] if n.split("/")[0] in ("loadbalancing", "load_balancing")
    ]
    assert len(names) == 1, names
    return dict(config["exporters"][names[0]])


def test_collector_config_defines_and_uses_every_component() -> None:
    config = _config()
    pipelines = config["service"]["pipelines"]
    assert list(pipelines) == ["traces"]
    used: dict[str, set[str]] = defaultdict(set)
    for pipeline in pipelines.values():
        for section in ("receivers", "processors", "exporters"):
            for name in pipeline.get(section, []):
                assert name in config[section], f"{section} {name} used but not defined"
                used[section].add(name)
    for section in ("receivers", "processors", "exporters"):
        assert set(config.get(section) or {}) == used[section], f"unused {section}"
    traces = pipelines["traces"]
    assert traces["processors"][0] == "memory_limiter"  # first, as the Collector requires
    # Every span goes through the trace-id router, and nowhere else.
    assert [n.split("/")[0] for n in traces["exporters"]] in (["loadbalancing"], ["load_balancing"])
    for protocol in config["receivers"]["otlp"]["protocols"].values():
        assert protocol["endpoint"].startswith("127.0.0.1:")  # loopback unless told otherwise


def test_collector_config_routes_by_trace_id_to_two_instances() -> None:
    config = _config()
    lb = _lb(config)
    assert lb["routing_key"] == "traceID"
    otlp = lb["protocol"]["otlp"]
    assert "endpoint" not in otlp  # the resolver supplies it
    assert otlp["tls"]["insecure"] is True
    hostnames = lb["resolver"]["static"]["hostnames"]
    assert len(hostnames) == len(set(hostnames)) >= 2
    ports = set()
    for hostname in hostnames:
        host, _, port = hostname.rpartition(":")
        assert host == "127.0.0.1"
        ports.add(int(port))
    # No instance port collides with the front collector's receivers or the Jaeger recipe.
    receivers = {
        int(p["endpoint"].rsplit(":", 1)[1])
        for p in config["receivers"]["otlp"]["protocols"].values()
    }
    jaeger = yaml.safe_load((ROOT / "collectors/otelcol-agentsignals.yaml").read_text())
    jaeger_port = int(jaeger["exporters"]["otlp/jaeger"]["endpoint"].rsplit(":", 1)[1])
    assert not ports & (receivers | {jaeger_port})


def test_instances_in_the_config_are_valid_collector_ports() -> None:
    """Each static hostname is something `agentsignals collect --grpc-port N` can listen on."""
    config_module = pytest.importorskip("agentsignals._collector.config")
    for hostname in _lb(_config())["resolver"]["static"]["hostnames"]:
        host, _, port = hostname.rpartition(":")
        settings = config_module.CollectorConfig(
            host=host, grpc_port=int(port), http_port=int(port) + 1
        )
        settings.validate()


# ------------------------------------------------------------------------------ span streams
def _gen_traces_module() -> Any:
    spec = importlib.util.spec_from_file_location("gen_traces", ROOT / "benchmarks/gen_traces.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _generated() -> Batches:
    """~150 trials of 1-3 attempts (~60 spans each), four workers interleaved, 200-span
    requests in end-time order: the shape of real traffic."""
    gen = _gen_traces_module()
    return [decode_otlp_json(line) for line in gen.generate_lines(15_000, 200, 4, 11)]


def _instrumented(n_trials: int = 40, workers: int = 4, per_request: int = 40) -> Batches:
    """A small agent loop on the real instrumentation (identity stamped by our pipeline on a
    foreign chat span under each turn), trials of several workers interleaved in time."""
    rng = random.Random(5)
    with capture_spans() as captured:
        llm = captured.tracer("opentelemetry.instrumentation.openai_v2")
        for t in range(n_trials):
            with agentsignals.trial(f"repo__repo-{t}", dataset="loop@1"):
                for a in range(rng.choice((1, 2, 2, 3))):
                    with agentsignals.attempt(
                        agent_name="loop", model_id="m", attempt1_tool_cap=6, retry_tool_cap=9
                    ) as attempt:
                        for turn_no in range(rng.randint(2, 6)):
                            with agentsignals.turn(phase="explore" if turn_no < 2 else "implement"):
                                with llm.start_as_current_span(
                                    "chat m",
                                    kind=SpanKind.CLIENT,
                                    attributes={
                                        sc.GEN_AI_OPERATION_NAME: "chat",
                                        sc.GEN_AI_REQUEST_MODEL: "m",
                                        sc.GEN_AI_USAGE_INPUT_TOKENS: 1000 + 300 * turn_no,
                                        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 50 + a,
                                    },
                                ):
                                    pass
                                for _ in range(rng.randint(1, 3)):
                                    name = rng.choice(("read_file", "grep", "bash", "run_tests"))
                                    path = f"src/m{rng.randint(0, 5)}.py"
                                    with agentsignals.tool(name, arguments={"path": path}) as tool:
                                        if name in ("bash", "run_tests"):
                                            tool.set_exit_code(rng.choice((0, 0, 1)))
                        attempt.set_exit_reason(rng.choice(("submitted", "max_turns")))
        finished = captured.spans
    spans = from_readable_spans(finished)
    # Interleave whole trials the way concurrent workers' exporters would: each worker's spans
    # stay in end order, the workers' streams are merged at random.
    per_trace: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        per_trace[span.trace_id].append(span)
    traces = list(per_trace.values())
    lanes: list[list[Span]] = [[] for _ in range(workers)]
    for i, trace in enumerate(traces):
        lanes[i % workers].extend(trace)
    merged: list[Span] = []
    cursors = [0] * workers
    while any(c < len(lane) for c, lane in zip(cursors, lanes, strict=True)):
        w = rng.choice([i for i in range(workers) if cursors[i] < len(lanes[i])])
        take = rng.randint(1, 12)
        merged.extend(lanes[w][cursors[w] : cursors[w] + take])
        cursors[w] += take
    return [merged[i : i + per_request] for i in range(0, len(merged), per_request)]


STREAMS = {"gen_traces": _generated, "instrumented": _instrumented}


@pytest.fixture(scope="module", params=sorted(STREAMS))
def batches(request: pytest.FixtureRequest) -> Batches:
    return STREAMS[request.param]()


# ------------------------------------------------------------------------------- assembling
def _bucket(key: str, n: int) -> int:
    """A stable hash (not Python's salted hash()): the same key lands on the same instance in
    every process, as the load balancer's ring does."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") % n


def by_trace_id(n: int) -> Route:
    return lambda span: _bucket(span.trace_id, n)


def by_span_id(n: int) -> Route:
    return lambda span: _bucket(span.span_id, n)


Emitted = dict[tuple[str, str], list[bytes]]  # (kind, id) -> every revision written, in order


def _key(record: Record) -> tuple[str, str]:
    if isinstance(record, TrialRecord):
        return ("trial", record.trial_id)
    return ("attempt", record.attempt_id)


def assemble(batches: Sequence[Sequence[Span]], instances: int, route: Route) -> list[Emitted]:
    """Feed every request to the instances, each getting the spans routed to it; all share one
    clock (requests seen), and each ticks on every request as a live collector's timer does."""
    outputs: list[Emitted] = [defaultdict(list) for _ in range(instances)]
    requests = 0

    def clock() -> float:
        return float(requests)

    encoder = msgspec.json.Encoder(order="deterministic")
    assemblers = []
    for out in outputs:

        def sink(record: Record, out: Emitted = out) -> None:
            out[_key(record)].append(encoder.encode(record))

        assemblers.append(Assembler(sink, clock=clock, grace=GRACE_REQUESTS))
    for batch in batches:
        requests += 1
        parts: list[list[Span]] = [[] for _ in range(instances)]
        for span in batch:
            parts[route(span)].append(span)
        for assembler, part in zip(assemblers, parts, strict=True):
            assembler.add(part)
    for assembler in assemblers:
        assembler.flush()
    return outputs


def _union(outputs: Iterable[Emitted]) -> Emitted:
    union: Emitted = defaultdict(list)
    for out in outputs:
        for key, revisions in out.items():
            union[key].extend(revisions)
    return union


def _latest(emitted: Emitted) -> list[bytes]:
    """The last revision of every record, sorted by (kind, id): what a reader keeps."""
    return [emitted[key][-1] for key in sorted(emitted)]


def test_two_instances_by_trace_id_write_exactly_the_records_of_one(batches: Batches) -> None:
    [single] = assemble(batches, 1, by_trace_id(1))
    attempts = [k for k in single if k[0] == "attempt"]
    trials = [k for k in single if k[0] == "trial"]
    assert len(trials) >= 30 and len(attempts) >= 1.5 * len(trials)  # several attempts each
    a, b = assemble(batches, 2, by_trace_id(2))
    assert a and b, "the hash sent everything to one instance"
    # Every attempt and trial is written by exactly one instance...
    assert not a.keys() & b.keys()
    # ...and the two together write exactly what one instance writes: every revision, byte for
    # byte (msgspec, deterministic order), trial records included.
    assert _union([a, b]) == single
    assert _latest(_union([a, b])) == _latest(single)
    for key in trials:
        trial = json.loads(single[key][-1])
        assert trial["complete"] and trial["attempt_count"] >= 1


def test_more_instances_hold_too(batches: Batches) -> None:
    [single] = assemble(batches, 1, by_trace_id(1))
    outputs = assemble(batches, 5, by_trace_id(5))
    assert sum(1 for out in outputs if out) >= 3
    assert _union(outputs) == single


def test_routing_by_span_id_breaks_the_records(batches: Batches) -> None:
    """The negative control: a balancer that ignores trace ids splits attempts and trials
    across instances, each writes partial records, and the union is wrong."""
    [single] = assemble(batches, 1, by_trace_id(1))
    a, b = assemble(batches, 2, by_span_id(2))
    union = _union([a, b])
    assert union != single
    split = a.keys() & b.keys()
    assert split, "no attempt was split across instances"
    wrong = [key for key in single if union.get(key) != single[key]]
    assert len(wrong) > len(single) // 2
    # A split attempt: only the instance that got its attempt span calls it complete, and its
    # tool calls are divided between the instances (which ones is up to the span ids, so an
    # attempt may still land whole on one side: look at those that did not).
    divided = 0
    for key in sorted(k for k in split if k[0] == "attempt"):
        whole = json.loads(single[key][-1])
        parts = [json.loads(out[key][-1]) for out in (a, b)]
        assert sorted(p["complete"] for p in parts) == [False, True]
        calls = [p["behavior"]["tool_call_count"] or 0 for p in parts]
        assert sum(calls) == whole["behavior"]["tool_call_count"]
        divided += whole["behavior"]["tool_call_count"] not in calls
    assert divided > 0, "no attempt had its tool calls counted partly on each instance"
