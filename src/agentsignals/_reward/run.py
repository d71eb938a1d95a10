"""Rewards over traces (and records): the `agentsignals rewards` pipeline, and the plain export
(JSON lines or Parquet, one row per turn and one per trajectory, keyed by span id)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentsignals._features.record import AttemptRecord
from agentsignals._reward.compute import TrajectoryReward, TurnReward, attempt_rewards
from agentsignals._reward.spec import RewardSpec, builtin_spec
from agentsignals._spans.model import Span

__all__ = [
    "RewardRun",
    "read_rewards",
    "rewards_from_spans",
    "rewards_from_traces",
    "write_rewards",
]

PathArg = str | os.PathLike[str]


@dataclass
class RewardRun:
    spec: RewardSpec
    trajectories: list[TrajectoryReward] = field(default_factory=list)
    turns: list[TurnReward] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # attempt id -> why
    problems: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """Turn rows then trajectory rows, each as written to JSON lines."""
        return [t.as_dict() for t in self.turns] + [t.as_dict() for t in self.trajectories]


def rewards_from_spans(
    spans: Sequence[Span],
    records: Sequence[AttemptRecord] | None = None,
    spec: RewardSpec | None = None,
) -> RewardRun:
    """Rewards of every attempt in ``spans``. ``records`` (from ``agentsignals verify`` or
    ``judge run``) give the outcome and judge flags; attempts without one get the record
    derived from their spans (an in-process outcome, no judge)."""
    from agentsignals._features.run import from_spans
    from agentsignals._judge.transcript import group_by_attempt

    spec = spec or builtin_spec()
    run = RewardRun(spec)
    given = {r.attempt_id: r for r in records or ()}
    derived = {r.attempt_id: r for r in from_spans(spans).attempts}
    groups = group_by_attempt(spans)
    for attempt_id in sorted(set(groups) | set(given)):
        group = groups.get(attempt_id)
        record = given.get(attempt_id) or derived.get(attempt_id)
        if not group:
            run.skipped[attempt_id] = "no spans"
            continue
        if record is None:
            run.skipped[attempt_id] = "no record"
            continue
        try:
            result = attempt_rewards(group, record, spec)
        except Exception as exc:  # one bad attempt never stops the batch
            run.problems.append(f"{attempt_id}: {type(exc).__name__}: {exc}"[:300])
            continue
        if result is None:
            run.skipped[attempt_id] = (
                "no turn spans" if not any(_is_turn(s) for s in group) else "no verifier outcome"
            )
            continue
        run.trajectories.append(result.trajectory)
        run.turns.extend(result.turns)
    return run


def _is_turn(span: Span) -> bool:
    from agentsignals import semconv as sc

    return span.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == sc.SpanType.TURN.value


def rewards_from_traces(
    paths: PathArg | Iterable[PathArg],
    records: Sequence[AttemptRecord] | None = None,
    spec: RewardSpec | None = None,
) -> RewardRun:
    from agentsignals._judge.run import read_spans

    spans, problems = read_spans(paths)
    run = rewards_from_spans(spans, records, spec)
    run.problems[:0] = problems
    return run


def _flat(row: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    spec = row["spec"]
    out = {k: v for k, v in row.items() if k not in ("spec", "components", "unavailable")}
    out["spec_name"], out["spec_version"], out["spec_sha256"] = (
        spec["name"], spec["version"], spec["sha256"],
    )  # fmt: skip
    comps = row.get("components") or {}
    unavailable = set(row.get("unavailable") or ())
    for name in names:
        # Absent at this turn: 0 (nothing fired); unavailable for the attempt: null.
        out[f"component.{name}"] = None if name in unavailable else float(comps.get(name, 0.0))
    if "unavailable" in row:
        out["unavailable"] = ",".join(row["unavailable"]) or None
    return out


def write_rewards(run: RewardRun, path: PathArg) -> Path:
    """JSON lines (``.jsonl``, ``.jsonl.gz``) or Parquet (``.parquet``: flat columns,
    ``component.<name>`` per spec component and ``outcome``)."""
    out = Path(path)
    rows = run.rows()
    if out.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        names = ["outcome", *(c.name for c in run.spec.components)]
        flat = [_flat(r, names) for r in rows]
        columns: dict[str, list[Any]] = {}
        for r in flat:
            for k in r:
                columns.setdefault(k, [])
        for r in flat:
            for k, col in columns.items():
                col.append(r.get(k))
        pq.write_table(pa.table(columns), out)
        return out
    text = "".join(json.dumps(r, sort_keys=False) + "\n" for r in rows)
    if out.name.endswith(".gz"):
        import gzip

        out.write_bytes(gzip.compress(text.encode()))
    else:
        out.write_text(text)
    return out


def read_rewards(path: PathArg) -> list[dict[str, Any]]:
    """Reward rows from JSON lines (``.gz`` too) or Parquet, as written by ``write_rewards``."""
    p = Path(path)
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_table(p).to_pylist())
    raw = p.read_bytes()
    if p.name.endswith(".gz"):
        import gzip

        raw = gzip.decompress(raw)
    rows = []
    for line_no, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{p}:{line_no}: not JSON ({exc})") from None
        if isinstance(row, dict):
            rows.append(row)
    return rows
