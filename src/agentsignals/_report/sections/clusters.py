"""Clusters of failed runs, when the judge has produced them (`cluster_id` and `cluster_name`,
written by `agentsignals judge cluster`): size, resolve rate with a Wilson interval, how often
the same tasks were resolved by their other attempts (are these hard tasks, or the agent's own
failure?), the arms its attempts came from, and an example attempt each with its failure
summary."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from agentsignals._report.base import Section
from agentsignals._report.context import Context
from agentsignals._report.frame import isnull
from agentsignals._report.sections.behaviour import _pct
from agentsignals._report.sections.overview import rate

NAME_FIELDS = ("cluster_name", "cluster_label", "judge.cluster.name", "judge.cluster.label")
ID_FIELDS = ("cluster_id", "judge.cluster.id", "judge.cluster_id")
SUMMARY_FIELDS = (
    "judge.failure_summary.summary",
    "judge.summary",
    "judge.summary.value",
    "judge.failure_summary",
    "judge.first_wrong_step.reason",
)


class Clusters(Section):
    id = "clusters"
    title = "Clusters of failed runs"

    def build(self, ctx: Context) -> dict[str, Any] | None:
        field = next(
            (f for f in ID_FIELDS if f in ctx.frame.columns and not isnull(ctx.text(f)).all()),
            None,
        )
        if field is None:
            return None
        ids = ctx.text(field)
        names = next((ctx.text(f) for f in NAME_FIELDS if f in ctx.frame.columns), None)
        summaries = [ctx.text(f) for f in SUMMARY_FIELDS if f in ctx.frame.columns]
        present = ~isnull(ids)
        verified_all = ~np.isnan(ctx.y)
        clusters: list[dict[str, Any]] = []
        for cid in sorted({str(v) for v in ids[present]}):
            member = present & (ids.astype(str) == cid)
            idx = np.flatnonzero(member)
            y = ctx.y[idx]
            verified = ~np.isnan(y)
            example = idx[np.argsort(ctx.attempt_id[idx].astype(str))[0]]
            # The same tasks' other attempts (other runs, agents, retries).
            others = np.isin(ctx.task_code, np.unique(ctx.task_code[idx])) & ~member
            others &= verified_all
            arms = Counter(str(a) for a in ctx.arm[idx])
            clusters.append(
                {
                    "id": cid,
                    "name": next(
                        (str(names[i]) for i in idx if names is not None and names[i] is not None),
                        None,
                    ),
                    "size": len(idx),
                    "resolved": rate(np.sum(y[verified] == 1), np.sum(verified)),
                    "tasks": len(np.unique(ctx.task_code[idx])),
                    "tasks_resolved_elsewhere": rate(np.sum(ctx.y[others] == 1), np.sum(others)),
                    "arms": dict(arms.most_common()),
                    "example": {
                        "attempt_id": str(ctx.attempt_id[example]),
                        "task_id": str(ctx.task_id[example]),
                        "arm": str(ctx.arm[example]),
                        "summary": next(
                            (str(col[example]) for col in summaries if col[example] is not None),
                            None,
                        ),
                    },
                }
            )
        clusters.sort(key=lambda c: (-c["size"], c["id"]))
        return {"field": field, "clusters": clusters, "assigned": int(present.sum())}

    def markdown(self, result: dict[str, Any]) -> list[str]:
        return [
            f"- {c['name'] or c['id']}: {c['size']} attempts, resolved "
            f"{_pct(c['resolved']['rate'])}; their tasks resolved by other attempts "
            f"{_pct(c['tasks_resolved_elsewhere']['rate'])} "
            f"(n={c['tasks_resolved_elsewhere']['n']}); e.g. {c['example']['task_id']}"
            for c in result["clusters"][:10]
        ]


SECTION = Clusters()
