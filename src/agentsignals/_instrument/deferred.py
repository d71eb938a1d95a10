"""Signals read from a tool call's command and output, computed off the agent's thread.

A shell call's command is read by the shell parser (category, files, test runner) and a test
call's output line by line (per-test results): together about half of what such a call costs
the agent. Where every consumer of our spans is ours, that reading is left for the export
path: the tool span ends with the raw inputs in a :class:`Pending`, handed (by span id, in
:data:`HANDOFF`) to our pipeline processor, which attaches it to the ended span;
the first of our consumers to see the span (:class:`~agentsignals._export.guard.GuardedExporter`
before it scrubs, the in-process feature processor before it converts) computes the attributes
and writes them into the span, once, under a lock, before anything reads them. The attributes
are exactly those the agent's thread would have written (a test compares both paths).

The reading stays on the agent's thread wherever something else could see the span first: a
sampler that reads attributes, a processor on the provider that is not our pipeline, content
capture on (the command line is captured by category), a fault plan or workspace tracker on the
attempt (both read the category during the call), or any explicit call that reads or replaces
what the parse gives (``set_category``, ``set_files``, ``record_test_report``...).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Final

from agentsignals._classify.tools import describe_call, shell_command
from agentsignals._instrument import direct
from agentsignals._instrument.runtime import internal_error
from agentsignals.semconv import (
    AGENT_SIGNALS_TEST_RUNNER,
    AGENT_SIGNALS_TOOL_CATEGORY,
    AGENT_SIGNALS_TOOL_COMMAND_COMPLETE,
    AGENT_SIGNALS_TOOL_FILES,
    AGENT_SIGNALS_TOOL_RESULT_FILES,
)

__all__ = ["HANDOFF", "Pending", "available", "hand_off", "resolve_spans", "take"]

# The ended span's attribute carrying its Pending (a Python attribute, never exported).
_KEY: Final = "_agentsignals_pending"
# Longer outputs are read on the agent's thread: holding megabytes until the export is worse.
MAX_DEFERRED_OUTPUT: Final = 1 << 20
OUTPUT_READ: Final = frozenset({"test", "search"})

_lock = threading.Lock()  # resolving: one consumer computes, the others wait for the result


class Pending:
    """What a tool span still needs read: its command (when `parse`) and its output."""

    __slots__ = ("_facts_category", "arguments", "category", "done", "given", "name", "output")

    def __init__(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        given: str | None,
        category: str | None,
    ) -> None:
        self.name = name
        self.arguments = arguments
        self.given = given
        # Known category (no command to parse), or None: the command decides it.
        self.category = category
        self.output: str | bytes | None = None
        self.done = False
        self._facts_category: str | None = None

    def final_category(self) -> str:
        """The category the span ends with (reading the command if it decides it)."""
        if self.category is not None:
            return self.category
        known = self._facts_category
        if known is None:
            known = self._facts_category = describe_call(
                self.name, self.arguments, category=self.given
            ).category
        return known

    def attributes(self) -> dict[str, Any]:
        """The attributes the agent's thread would have written for the command and output."""
        out: dict[str, Any] = {}
        category = self.category
        if category is None:
            facts = describe_call(self.name, self.arguments, category=self.given)
            category = facts.category
            out[AGENT_SIGNALS_TOOL_CATEGORY] = category
            if facts.files:
                out[AGENT_SIGNALS_TOOL_FILES] = tuple(facts.files)
            if facts.runner is not None:
                out[AGENT_SIGNALS_TEST_RUNNER] = facts.runner
            if not facts.command_complete:
                out[AGENT_SIGNALS_TOOL_COMMAND_COMPLETE] = False
        output = self.output
        if output is not None:
            if category == "test":
                from agentsignals._classify.outcome import test_run_attributes

                out.update(test_run_attributes(output, junit=False))
            elif category == "search" and isinstance(output, str):
                from agentsignals._classify.shell import search_hits

                hits = search_hits(output, shell_command(self.arguments))
                if hits:
                    out[AGENT_SIGNALS_TOOL_RESULT_FILES] = hits
        return out

    def resolve(self, span: Any) -> None:
        """Write the attributes into the ended `span`, once (the first consumer does)."""
        with _lock:
            if self.done:
                return
            self.done = True
            try:
                values = self.attributes()
                if values:
                    _write_ended(span, values)
            except Exception:
                internal_error("could not read a tool call's command or output")
            self.arguments = None
            self.output = None


def _write_ended(span: Any, values: Mapping[str, Any]) -> None:
    """Attributes into an ended SDK span, as `set_attributes` would have stored them before it
    ended (the SDK's value cleaning, length limit and count limit)."""
    attrs = span._attributes
    if attrs is None:
        return
    frozen = attrs._immutable
    attrs._immutable = False
    try:
        for key, value in values.items():
            attrs[key] = value
    finally:
        attrs._immutable = frozen


def resolve_spans(spans: Iterable[Any]) -> None:
    """Complete every span of `spans` that still has reading pending (our consumers call this
    before they read attributes)."""
    for span in spans:
        try:
            pending = span.__dict__.get(_KEY)
        except AttributeError:
            continue
        if pending is not None and not pending.done:
            pending.resolve(span)


# --------------------------------------------------------------------------- the hand-off

# Span id -> Pending, from just before a tool span ends until our pipeline's on_end takes it
# (microseconds, on the same thread): empty nearly always, so every other span pays one check.
HANDOFF: Final[dict[int, Pending]] = {}  # (never replaced)
_HANDOFF_MAX: Final = 4096  # (entries whose span never reached our pipeline: dropped)


def hand_off(span_id: int, pending: Pending) -> None:
    """Just before the tool span ends: its Pending, for our pipeline."""
    if len(HANDOFF) >= _HANDOFF_MAX:
        # The oldest entry: a span that never reached our pipeline.
        with contextlib.suppress(StopIteration, KeyError, RuntimeError):
            del HANDOFF[next(iter(HANDOFF))]
    HANDOFF[span_id] = pending


def take(span: Any) -> Pending | None:
    """In our pipeline's `on_end`: the ended span's Pending, attached to the span for our
    consumers; None for every other span."""
    if not HANDOFF:
        return None
    try:
        pending = HANDOFF.pop(span.context.span_id, None)
        if pending is not None:
            span.__dict__[_KEY] = pending
    except Exception:
        internal_error("could not hand a tool call's reading to the export path")
        return None
    return pending


# ------------------------------------------------------------------------ when it is safe


def _deferrable(tracer: Any, processors: Any, sampler: Any) -> bool:
    module = sys.modules.get("opentelemetry.sdk.trace")
    return (
        module is not None
        and type(tracer) is module.Tracer
        and direct.blind_sampler(sampler)
        and isinstance(processors, tuple)
        and len(processors) == 1
        and getattr(type(processors[0]), "agentsignals_pipeline", False)
    )


# Whether a span of a tracer may end before its command and output are read: an SDK tracer
# whose sampler ignores attributes and whose provider's one processor is our pipeline (which
# sees to it that nothing reads the span before it is complete).
available: Final = direct.ProviderCheck(_deferrable)
forget: Final = available.forget
