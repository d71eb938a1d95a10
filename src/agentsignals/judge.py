"""The LLM judge: rubric flags, the first wrong step and failure clusters, on any model.

    from agentsignals import judge

    j = judge.Judge(judge.JudgeSettings(
        model="qwen3-coder",
        client=judge.ClientConfig(base_url="http://localhost:8000/v1"),
    ), cache=judge.JudgeCache("agentsignals-output/judge/cache.sqlite"))
    run = judge.judge_traces(["agentsignals-output/traces"],
                             rubrics=judge.resolve_rubrics(["builtin"]),
                             judge=j, first_wrong_step="candidates")
    for record in run.records:
        drift = (record.judge or {}).get("memory_drift", {}).get("match")
        print(record.attempt_id, drift.value if drift else None)

Transcripts are rendered from the trial › attempt › turn › tool spans (live, imported or
collected alike), numbered ``[S0]``, ``[S1]``, ... with each step's span id, split at turn
boundaries when long. Results land in the attempt records as ``judge.<rubric>.<field>`` and on
the traces as ``gen_ai.evaluation.result`` events. docs/judge.md has the details.
"""

from __future__ import annotations

from agentsignals._features.record import JudgeField
from agentsignals._judge.attribution import CATEGORIES, MODES, attribute, find_candidates
from agentsignals._judge.cache import JudgeCache
from agentsignals._judge.client import ClientConfig, ContextOverflow, ModelClient, ModelError
from agentsignals._judge.cluster import Taxonomy, cluster_failures, read_taxonomy
from agentsignals._judge.docent import agent_runs, upload_agent_runs
from agentsignals._judge.engine import JobResult, Judge, JudgeSettings, Outcome, Usage
from agentsignals._judge.evaluate import (
    CALIBRATION_FORMAT,
    calibrate_flags,
    load_labels,
    load_who_and_when,
    score_who_and_when,
    wilson,
)
from agentsignals._judge.results import judge_spans, merge_results, write_judge_spans
from agentsignals._judge.rubrics import (
    BUILTIN_RUBRICS,
    Rubric,
    RubricError,
    builtin_rubric_ids,
    load_rubric,
    resolve_rubrics,
)
from agentsignals._judge.run import JudgeRun, judge_spans_in_memory, judge_traces
from agentsignals._judge.transcript import Chunk, Step, Transcript, chunk_transcript, from_spans

__all__ = [
    "BUILTIN_RUBRICS",
    "CALIBRATION_FORMAT",
    "CATEGORIES",
    "MODES",
    "Chunk",
    "ClientConfig",
    "ContextOverflow",
    "JobResult",
    "Judge",
    "JudgeCache",
    "JudgeField",
    "JudgeRun",
    "JudgeSettings",
    "ModelClient",
    "ModelError",
    "Outcome",
    "Rubric",
    "RubricError",
    "Step",
    "Taxonomy",
    "Transcript",
    "Usage",
    "agent_runs",
    "attribute",
    "builtin_rubric_ids",
    "calibrate_flags",
    "chunk_transcript",
    "cluster_failures",
    "find_candidates",
    "from_spans",
    "judge_spans",
    "judge_spans_in_memory",
    "judge_traces",
    "load_labels",
    "load_rubric",
    "load_who_and_when",
    "merge_results",
    "read_taxonomy",
    "resolve_rubrics",
    "score_who_and_when",
    "upload_agent_runs",
    "wilson",
    "write_judge_spans",
]
