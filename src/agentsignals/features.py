"""Feature records from traces: one per attempt, one per trial.

The same code runs in three places: in process (`agentsignals.configure(features=True)` writes
each record to `<output>/features/` as its attempt ends), offline (`agentsignals features PATH`)
and here, from Python:

    from agentsignals import features

    result = features.extract("agentsignals-output/traces")
    for record in result.attempts:
        print(record.attempt_index, record.behavior.tool_sequence, record.tokens.cost_usd)
    frame = features.to_dataframe(result.attempts)     # pandas extra

    # Any input size, memory flat: records straight to a file (or `extract(..., sink=f)`).
    features.extract_to("agentsignals-output/traces", "attempts.parquet")

Field names follow the signal inventory: `behavior.turn_count`, `tokens.cache_read_ratio`,
`infra.attempt_index`, ... A signal whose inputs were not recorded is None.

Product sessions (interactive sessions a person steered) also get a `SessionRecord` in
`result.sessions` (`user.*`, `dynamics.*`, `anticipation.*` and the session labels; see
docs/sessions.md); eval runs get none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentsignals._features.record import (
    Anticipation,
    AttemptRecord,
    Behavior,
    Infra,
    Reasoning,
    Recovery,
    SessionRecord,
    Tokens,
    Treatment,
    TrialRecord,
    Verification,
)
from agentsignals._features.run import (
    ExtractSummary,
    FeatureSet,
    extract,
    extract_to,
    from_spans,
    read_store,
)
from agentsignals._features.store import flatten, to_dataframe, write_parquet

__all__ = [
    "Anticipation",
    "AttemptRecord",
    "Behavior",
    "ExtractSummary",
    "FeatureSet",
    "Infra",
    "Reasoning",
    "Recovery",
    "SessionRecord",
    "Tokens",
    "Treatment",
    "TrialRecord",
    "Verification",
    "extract",
    "extract_to",
    "from_spans",
    "read_store",
    "to_dataframe",
    "to_rows",
    "write_parquet",
]


def to_rows(
    records: Sequence[AttemptRecord | TrialRecord | SessionRecord],
) -> list[dict[str, Any]]:
    """Flat rows with dotted column names (`behavior.turn_count`)."""
    return [flatten(r) for r in records]
