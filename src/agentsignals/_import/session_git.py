"""`agentsignals import --git-state`: a product session's end state read from the git
repository it worked in (its `process.working_directory`), as it is now, onto its attempt
span (`agent_signals.session.output_applied`, `agent_signals.session.changes_reverted`).

"Now" is the session's close only when the import runs right after it (a hook at session end);
later commits count too, which is why this is opt-in. Nothing is read for a folder that no
longer exists or is not a git work tree."""

from __future__ import annotations

import msgspec

from agentsignals import semconv as sc
from agentsignals._instrument.gitstate import session_end_state
from agentsignals._spans.model import Span, coerce_str_list

__all__ = ["with_git_state"]

_TYPE = sc.AGENT_SIGNALS_SPAN_TYPE


def _edited(spans: list[Span], attempt_id: str) -> list[str]:
    files: set[str] = set()
    for s in spans:
        a = s.attributes
        if a.get(_TYPE) != sc.SpanType.TOOL.value or a.get(sc.AGENT_SIGNALS_ATTEMPT_ID) != (
            attempt_id
        ):
            continue
        for key in (sc.AGENT_SIGNALS_TOOL_CHANGED_FILES, sc.AGENT_SIGNALS_TOOL_REGIONS_FILES):
            value = a.get(key)
            if value is not None:
                files.update(coerce_str_list(value) or ())
    return sorted(files)


def with_git_state(spans: list[Span]) -> list[Span]:
    """The spans, each top-level attempt with a working directory given its git end state."""
    out: list[Span] = []
    for s in spans:
        a = s.attributes
        repo = a.get(sc.PROCESS_WORKING_DIRECTORY)
        attempt_id = a.get(sc.AGENT_SIGNALS_ATTEMPT_ID)
        if (
            a.get(_TYPE) != sc.SpanType.ATTEMPT.value
            or not isinstance(repo, str)
            or not isinstance(attempt_id, str)
            or a.get(sc.AGENT_SIGNALS_ATTEMPT_PARENT_ID) is not None
        ):
            out.append(s)
            continue
        state = session_end_state(repo, _edited(spans, attempt_id), started_ns=s.start_ns)
        extra = {
            k: v
            for k, v in (
                (sc.AGENT_SIGNALS_SESSION_OUTPUT_APPLIED, state.output_applied),
                (sc.AGENT_SIGNALS_SESSION_CHANGES_REVERTED, state.changes_reverted),
            )
            if v is not None
        }
        out.append(msgspec.structs.replace(s, attributes={**a, **extra}) if extra else s)
    return out
