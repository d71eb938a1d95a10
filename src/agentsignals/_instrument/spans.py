"""The trial › attempt › turn › tool context managers and the handles they yield.

Each handle owns one OTel span. Identity (trial id, attempt id and index, turn index) travels in
the OTel context next to the span, so it follows the span into threads, tasks and subprocesses
and can be stamped onto other instrumentors' spans. Every method is safe: an internal failure is
logged and swallowed, the user's exceptions pass through unchanged.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, SpanKind, Status, StatusCode

from agentsignals import semconv as sc
from agentsignals._classify import reasoning_text, session_text
from agentsignals._classify.tools import category_for, describe_call, shell_command
from agentsignals._instrument import capture, deferred, direct
from agentsignals._instrument.args import (
    as_attributes,
    as_bool,
    as_float,
    as_int,
    as_str,
    as_str_list,
    dropped,
)
from agentsignals._instrument.hooks import ATTEMPT_STARTED
from agentsignals._instrument.runtime import RUNTIME, error_type, internal_error
from agentsignals._instrument.scope import (
    EMPTY_SCOPE,
    AttemptState,
    AttributeValue,
    Scope,
    TrialState,
    context_with_scope,
    current_scope,
    parent_context,
)

if TYPE_CHECKING:
    import subprocess

    from agentsignals._instrument.hooks import ToolCallHook
    from agentsignals._instrument.workspace import WorkspaceTracker

_TOOL_KEY = otel_context.create_key("agent_signals.tool")
# The name of a tool whose name argument could not be converted to a string.
_UNKNOWN_TOOL = "unknown"
# Turn and attempt indexes beyond this are refused (a count, not an id: int32 is plenty).
_MAX_INDEX = 2**31 - 1
_INTERNAL = SpanKind.INTERNAL
_OK_STATUS = Status(StatusCode.OK)
# Enum values used on every span, read once (an Enum member's .value is a slow descriptor).
_TURN: Final = sc.SpanType.TURN.value
_TOOL: Final = sc.SpanType.TOOL.value
_EXECUTE_TOOL: Final = sc.GenAiOperationName.EXECUTE_TOOL.value
_OTHER: Final = sc.ToolCategory.OTHER.value
_SHELL: Final = sc.ToolCategory.SHELL.value


def current_tool_handle() -> ToolHandle | None:
    value = otel_context.get_value(_TOOL_KEY)
    return value if isinstance(value, ToolHandle) else None


# ----------------------------------------------------------------------------------- handles


class _SpanHandle:
    """Owns one span from `__enter__` to `__exit__`; the base of the four handles."""

    __slots__ = ("_content", "_entered", "_fault", "_span", "_token")
    _span_type: ClassVar[str]

    def __init__(self) -> None:
        self._span: trace.Span = INVALID_SPAN
        self._token: object | None = None
        self._content: capture.SpanContent | None = None
        self._entered = False
        # A tool call's fault hook (agentsignals.faults), which runs the call's body; else None.
        self._fault: ToolCallHook | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def _start(
        self,
        name: str,
        attributes: dict[str, AttributeValue],
        parent: otel_context.Context,
        scope: Scope | None,
        tool: ToolHandle | None = None,
        trusted: bool = False,
    ) -> None:
        """Start the span. `trusted`: every attribute value was made here (scalars and
        tuples of one scalar type), none came from the user."""
        clock = RUNTIME.clock
        tracer = RUNTIME.tracer
        later = direct.start_attributes_later(tracer)
        span = tracer.start_span(
            name,
            context=parent,
            kind=_INTERNAL,
            attributes=None if later else attributes,
            start_time=clock() if clock is not None else None,
        )
        if later:
            # Nobody has seen the span yet: our attributes go in as the SDK would store them.
            values = direct.attribute_dict(span, len(attributes))
            if values is not None and trusted:
                values.update(attributes)
            else:
                rest = direct.write(values, attributes) if values is not None else attributes
                if rest:
                    span.set_attributes(rest)
        self._span = span
        ctx = trace.set_span_in_context(span, parent)
        if scope is not None:
            ctx = context_with_scope(scope, ctx)
        if tool is not None:
            ctx = otel_context.set_value(_TOOL_KEY, tool, ctx)
        self._token = otel_context.attach(ctx)

    def _finish(self, exc: BaseException | None) -> None:
        span = self._span
        try:
            if exc is not None and not isinstance(exc, GeneratorExit):
                self._record_exception(exc)
            self._before_end(exc)
            if self._content is not None:
                self._content.flush(span)
        except Exception:
            internal_error(f"could not finish {self._span_type} span")
        token = self._token
        self._token = None
        if token is not None:
            try:
                otel_context.detach(token)  # type: ignore[arg-type]
            except Exception:
                internal_error("could not detach context")
        try:
            span.end(end_time=self._end_time())
        except Exception:
            internal_error(f"could not end {self._span_type} span")

    def _end_time(self) -> int | None:
        clock = RUNTIME.clock
        return clock() if clock is not None else None

    def _record_exception(self, exc: BaseException) -> None:
        span = self._span
        if not span.is_recording():
            return
        span.set_attribute(sc.ERROR_TYPE, error_type(exc))
        # Built here rather than by span.record_exception: an exception whose __str__ raises
        # must not break the call, and message and stack trace may hold secrets (a failing
        # `curl -H "Authorization: ..."`), so both are redacted whether capture is on or not.
        message = capture.exception_message(exc)
        span.add_event(
            "exception",
            {
                sc.EXCEPTION_TYPE: error_type(exc),
                sc.EXCEPTION_MESSAGE: message,
                sc.EXCEPTION_STACKTRACE: capture.exception_stacktrace(exc),
                sc.EXCEPTION_ESCAPED: "True",  # as the SDK's record_exception writes it
            },
        )
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}"[:512]))

    def _before_end(self, exc: BaseException | None) -> None:
        """Subclass hook: final attributes before the span ends."""

    def __enter__(self) -> Any:
        self._entered = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._entered:
            self._entered = False
            self._finish(exc)
        # Returning None never swallows the user's exception.

    # -- recording -----------------------------------------------------------------------
    @property
    def span(self) -> trace.Span:
        """The underlying OpenTelemetry span (a non-recording span when disabled)."""
        return self._span

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Set any attribute on the span (declare new keys in the semconv registry)."""
        name = as_str(key, "set_attribute(key=)")
        if name is None:
            return
        if not _valid_attribute(value):
            dropped(f"set_attribute({name[:64]}=)", "not an OpenTelemetry attribute value")
            return
        try:
            self._span.set_attribute(name, value)
        except Exception:
            internal_error(f"could not set attribute {name}")

    def _capture(self, key: str, value: Any) -> None:
        if not RUNTIME.settings.capture_content or not self._span.is_recording():
            return
        if self._content is None:
            self._content = capture.SpanContent()
        capture.record_content(self._span, self._content, key, value)

    def _set(self, attributes: Mapping[str, AttributeValue | None]) -> None:
        try:
            span = self._span
            if span.is_recording():
                direct.set_attributes(span, attributes)
        except Exception:
            internal_error(f"could not record on {self._span_type} span")


_SCALARS = (str, bool, int, float)


def _valid_attribute(value: object) -> bool:
    """A value OpenTelemetry accepts: a scalar, or a list/tuple of scalars."""
    if isinstance(value, _SCALARS):
        return not isinstance(value, int) or isinstance(value, bool) or -(2**63) <= value < 2**63
    if isinstance(value, list | tuple):
        return all(isinstance(v, _SCALARS) for v in value)
    return False


def _cancelled(exc: BaseException) -> bool:
    """An asyncio cancellation (asyncio is not imported here: without it there is none)."""
    aio = sys.modules.get("asyncio")
    return aio is not None and isinstance(exc, aio.CancelledError)


def _completed_process_type() -> Any:
    """subprocess.CompletedProcess, if subprocess was imported (else no result is one)."""
    sp = sys.modules.get("subprocess")
    return sp.CompletedProcess if sp is not None else None


def _new_id() -> str:
    """A random UUID (version 4) as 32 hex digits, as `uuid.uuid4().hex` (without importing
    uuid, hashlib and OpenSSL into `import agentsignals`)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


# The task id of a trial whose task_id argument could not be converted to a string.
_UNKNOWN_TASK = "unknown"


def treatment_attributes(
    agent_type: object,
    model_id: object,
    dataset: object,
    attempt1_tool_cap: object,
    retry_tool_cap: object,
    concurrency: object,
    timeout_s: object,
    where: str = "attempt",
) -> dict[str, AttributeValue | None]:
    """The attempt's treatment variables as attributes (None where not given or invalid)."""
    return {
        sc.AGENT_SIGNALS_TREATMENT_AGENT_TYPE: as_str(agent_type, f"{where}(agent_type=)"),
        sc.AGENT_SIGNALS_TREATMENT_MODEL_ID: as_str(model_id, f"{where}(model_id=)"),
        sc.AGENT_SIGNALS_TREATMENT_DATASET: as_str(dataset, f"{where}(dataset=)"),
        sc.AGENT_SIGNALS_TREATMENT_ATTEMPT1_TOOL_CAP: as_int(
            attempt1_tool_cap, f"{where}(attempt1_tool_cap=)", minimum=0
        ),
        sc.AGENT_SIGNALS_TREATMENT_RETRY_TOOL_CAP: as_int(
            retry_tool_cap, f"{where}(retry_tool_cap=)", minimum=0
        ),
        sc.AGENT_SIGNALS_TREATMENT_CONCURRENCY: as_int(
            concurrency, f"{where}(concurrency=)", minimum=0
        ),
        sc.AGENT_SIGNALS_TREATMENT_TIMEOUT_S: as_float(timeout_s, f"{where}(timeout_s=)"),
    }


class TrialHandle(_SpanHandle):
    """A trial: one task given to the agent, holding one or more attempts."""

    __slots__ = ("_attrs", "_state", "id", "task_id")
    _span_type = "trial"

    def __init__(
        self,
        task_id: str,
        *,
        trial_id: str | None = None,
        dataset: str | None = None,
        run_id: str | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        super().__init__()
        self.task_id = as_str(task_id, "trial(task_id=)") or _UNKNOWN_TASK
        self.id = as_str(trial_id, "trial(trial_id=)") or _new_id()
        run = as_str(run_id, "trial(run_id=)")
        self._state = TrialState(self.id, self.task_id, self, run)
        attrs: dict[str, AttributeValue] = {
            sc.AGENT_SIGNALS_SPAN_TYPE: sc.SpanType.TRIAL.value,
            sc.AGENT_SIGNALS_TRIAL_ID: self.id,
            sc.AGENT_SIGNALS_TASK_ID: self.task_id,
        }
        self._attrs = attrs
        try:
            data = as_str(dataset, "trial(dataset=)")
            if data is not None:
                attrs[sc.AGENT_SIGNALS_TREATMENT_DATASET] = data
            if run is not None:
                attrs[sc.AGENT_SIGNALS_RUN_ID] = run
            extra = as_attributes(attributes, "trial(attributes=)")
            if extra:
                attrs.update(extra)
        except Exception:
            internal_error("could not prepare trial span")

    def __enter__(self) -> TrialHandle:
        self._entered = True
        try:
            self._start(
                f"trial {self.task_id}",
                self._attrs,
                parent_context(),
                Scope(self._state, None, None),
            )
        except Exception:
            internal_error("could not start trial span")
        return self

    def _before_end(self, exc: BaseException | None) -> None:
        # itertools.count has no peek: the next value is the number of attempts started.
        started = next(self._state.attempts_started)
        self._state.attempts_started = itertools.count(started)
        if self._span.is_recording():
            self._span.set_attribute(sc.AGENT_SIGNALS_TRIAL_ATTEMPT_COUNT, started)


class AttemptHandle(_SpanHandle):
    """An attempt: one uninterrupted agent run within a trial, with its treatment variables."""

    __slots__ = (
        "_attrs",
        "_base_commit",
        "_exit_reason",
        "_started_ns",
        "_state",
        "_timed_out",
        "_workspace_path",
        "id",
        "index",
    )
    _span_type = "attempt"

    def __init__(
        self,
        index: int | None = None,
        *,
        agent_type: str | None = None,
        model_id: str | None = None,
        dataset: str | None = None,
        attempt1_tool_cap: int | None = None,
        retry_tool_cap: int | None = None,
        concurrency: int | None = None,
        timeout_s: float | None = None,
        agent_name: str | None = None,
        provider: str | None = None,
        conversation_id: str | None = None,
        workspace: str | None = None,
        attempt_id: str | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        context: str | None = None,
    ) -> None:
        super().__init__()
        self.id = as_str(attempt_id, "attempt(attempt_id=)") or _new_id()
        self._base_commit: str | None = None
        self._started_ns: int | None = None
        given = as_int(index, "attempt(index=)", minimum=0, maximum=_MAX_INDEX)
        self.index = given if given is not None else -1  # resolved against the trial on enter
        self._exit_reason: str | None = None
        self._timed_out: bool | None = None
        self._workspace_path = as_str(workspace, "attempt(workspace=)")
        self._state = AttemptState(self.id, 0, self)
        self._attrs: dict[str, AttributeValue] = {
            sc.GEN_AI_OPERATION_NAME: sc.GenAiOperationName.INVOKE_AGENT.value,
            sc.AGENT_SIGNALS_SPAN_TYPE: sc.SpanType.ATTEMPT.value,
        }
        try:
            attrs: dict[str, AttributeValue | None] = {
                sc.GEN_AI_AGENT_NAME: as_str(agent_name, "attempt(agent_name=)"),
                sc.GEN_AI_PROVIDER_NAME: as_str(provider, "attempt(provider=)"),
                sc.GEN_AI_REQUEST_MODEL: as_str(model_id, "attempt(model_id=)"),
                sc.GEN_AI_CONVERSATION_ID: as_str(conversation_id, "attempt(conversation_id=)"),
                **treatment_attributes(
                    agent_type, model_id, dataset, attempt1_tool_cap, retry_tool_cap,
                    concurrency, timeout_s,
                ),
            }  # fmt: skip
            self._attrs.update({k: v for k, v in attrs.items() if v is not None})
            kind = as_str(context, "attempt(context=)")
            if kind is not None and kind not in _CONTEXTS:
                dropped("attempt(context=)", f"use one of {sorted(_CONTEXTS)}")
                kind = None
            if kind is not None:
                self._attrs[sc.AGENT_SIGNALS_ATTEMPT_CONTEXT] = kind
                self._state.product = kind == sc.AttemptContext.PRODUCT.value
            extra = as_attributes(attributes, "attempt(attributes=)")
            if extra:
                self._attrs.update(extra)
        except Exception:
            internal_error("could not prepare attempt span")

    def __enter__(self) -> AttemptHandle:
        self._entered = True
        try:
            parent = parent_context()
            outer = current_scope(parent)
            trial = outer.trial
            parent_attempt = outer.attempt
            if parent_attempt is not None:
                # An attempt inside an attempt is a subagent, not a retry: it shares its
                # parent's index and does not count as one of the trial's attempts.
                if self.index < 0:
                    self.index = parent_attempt.index
                self._attrs[sc.AGENT_SIGNALS_ATTEMPT_PARENT_ID] = parent_attempt.attempt_id
            elif self.index < 0:
                self.index = next(trial.attempts_started) if trial is not None else 0
            elif trial is not None:
                # An explicit index still counts as a started attempt of the trial.
                next(trial.attempts_started)
            self._state.index = self.index
            attrs = self._attrs
            attrs[sc.AGENT_SIGNALS_ATTEMPT_ID] = self.id
            attrs[sc.AGENT_SIGNALS_ATTEMPT_INDEX] = self.index
            if trial is not None:
                attrs[sc.AGENT_SIGNALS_TRIAL_ID] = trial.trial_id
                attrs[sc.AGENT_SIGNALS_TASK_ID] = trial.task_id
                if trial.run_id is not None:
                    attrs[sc.AGENT_SIGNALS_RUN_ID] = trial.run_id
            name = attrs.get(sc.GEN_AI_AGENT_NAME)
            self._start(
                f"invoke_agent {name}" if name else "invoke_agent",
                attrs,
                parent,
                Scope(trial, self._state, None),
            )
            if self._workspace_path is not None:
                if self._state.product:
                    from agentsignals._instrument.gitstate import head_commit

                    self._set({sc.PROCESS_WORKING_DIRECTORY: self._workspace_path})
                    self._base_commit = head_commit(self._workspace_path)
                    self._started_ns = time.time_ns()
                self._start_workspace(self._workspace_path)
        except Exception:
            internal_error("could not start attempt span")
        if ATTEMPT_STARTED:
            for started in ATTEMPT_STARTED:
                try:
                    started(self, self._state)
                except Exception:
                    internal_error("an attempt hook failed")
        return self

    def _start_workspace(self, path: str) -> None:
        from agentsignals._instrument.workspace import WorkspaceTracker

        tracker = WorkspaceTracker(path)
        tracker.start()
        self._state.workspace = tracker

    @property
    def trial_id(self) -> str | None:
        """The id of the enclosing trial, if any."""
        scope = current_scope()
        return scope.trial.trial_id if scope.trial is not None else None

    def record_user_message(self, text: str | None, *, kind: str = "message") -> None:
        """Something the user did in an interactive session: a message to the agent (a prompt,
        a follow-up, a correction), an `interrupt` (text None) or a `command` they ran. A
        `user_turn` span under the attempt, exported at once: lengths and lexicon markers
        always, the text itself (`gen_ai.input.messages`, one user message) only with content
        capture on."""
        where = "attempt.record_user_message"
        if not self._span.is_recording():
            return  # outside a live attempt (the idle handle, or the SDK disabled)
        try:
            what = as_str(kind, f"{where}(kind=)") or sc.UserTurnKind.MESSAGE.value
            if what not in _USER_KINDS:
                dropped(f"{where}(kind=)", f"use one of {sorted(_USER_KINDS)}")
                return
            said = None if text is None else (text if isinstance(text, str) else str(text))
            index = next(self._state.user_turns)
            attrs: dict[str, AttributeValue] = {
                sc.AGENT_SIGNALS_SPAN_TYPE: sc.SpanType.USER_TURN.value,
                sc.AGENT_SIGNALS_ATTEMPT_ID: self.id,
                sc.AGENT_SIGNALS_ATTEMPT_INDEX: self.index,
                sc.AGENT_SIGNALS_USER_TURN_INDEX: index,
                sc.AGENT_SIGNALS_USER_TURN_KIND: what,
            }
            trial = self._attrs.get(sc.AGENT_SIGNALS_TRIAL_ID)
            if trial is not None:
                attrs[sc.AGENT_SIGNALS_TRIAL_ID] = trial
            if said is not None and what != sc.UserTurnKind.INTERRUPT.value:
                attrs[sc.AGENT_SIGNALS_USER_TURN_CHARS] = len(said)
                attrs[sc.AGENT_SIGNALS_USER_TURN_WORDS] = session_text.words(said)
                found = session_text.markers(said)
                if found:
                    attrs[sc.AGENT_SIGNALS_USER_TURN_MARKERS] = found
            clock = RUNTIME.clock
            at = clock() if clock is not None else None
            span = RUNTIME.tracer.start_span(
                f"user_turn {index}",
                context=trace.set_span_in_context(self._span),
                kind=_INTERNAL,
                attributes=attrs,
                start_time=at,
            )
            if (
                said
                and what != sc.UserTurnKind.INTERRUPT.value
                and (RUNTIME.settings.capture_content and span.is_recording())
            ):
                content = capture.SpanContent()
                message = [{"role": "user", "parts": [{"type": "text", "content": said}]}]
                capture.record_content(span, content, sc.GEN_AI_INPUT_MESSAGES, message)
                content.flush(span)
            span.end(end_time=at)
        except Exception:
            internal_error("could not record a user message")

    def record_compaction(
        self,
        *,
        tokens_before: int | None = None,
        tokens_after: int | None = None,
        trigger: str | None = None,
    ) -> None:
        """The agent compacted (summarised) its context now: an `agent_signals.compaction`
        event on the attempt span; the next turn is the first to work from the summary (mark
        it with `gen_ai.conversation.compacted` too, as `turn(attributes=...)`)."""
        where = "attempt.record_compaction"
        try:
            current = self._state.current_turn
            values: dict[str, AttributeValue | None] = {
                sc.AGENT_SIGNALS_TURN_INDEX: 0 if current is None else current + 1,
                sc.AGENT_SIGNALS_COMPACTION_TOKENS_BEFORE: as_int(
                    tokens_before, f"{where}(tokens_before=)", minimum=0
                ),
                sc.AGENT_SIGNALS_COMPACTION_TOKENS_AFTER: as_int(
                    tokens_after, f"{where}(tokens_after=)", minimum=0
                ),
                sc.AGENT_SIGNALS_COMPACTION_TRIGGER: as_str(trigger, f"{where}(trigger=)"),
            }
            if self._span.is_recording():
                clock = RUNTIME.clock
                self._span.add_event(
                    sc.EVENT_AGENT_SIGNALS_COMPACTION,
                    {k: v for k, v in values.items() if v is not None},
                    timestamp=clock() if clock is not None else None,
                )
        except Exception:
            internal_error("could not record a compaction")

    def set_exit_reason(self, reason: str) -> None:
        """Why the attempt ended: submitted, max_turns, cost_limit, timeout, error, ..."""
        text = as_str(reason, "attempt.set_exit_reason(reason=)")
        if text is None:
            return
        self._exit_reason = text
        if text == sc.AttemptExitReason.TIMEOUT.value:
            self._timed_out = True

    def mark_timed_out(self) -> None:
        """The attempt hit its time limit."""
        self._timed_out = True
        if self._exit_reason is None:
            self._exit_reason = sc.AttemptExitReason.TIMEOUT.value

    def set_treatment(
        self,
        *,
        agent_type: str | None = None,
        model_id: str | None = None,
        dataset: str | None = None,
        attempt1_tool_cap: int | None = None,
        retry_tool_cap: int | None = None,
        concurrency: int | None = None,
        timeout_s: float | None = None,
    ) -> None:
        """Record treatment variables known only after the attempt started."""
        self._set(
            treatment_attributes(
                agent_type, model_id, dataset, attempt1_tool_cap, retry_tool_cap,
                concurrency, timeout_s, "attempt.set_treatment",
            )
        )  # fmt: skip

    def set_modes(
        self,
        *,
        localization_mode: str | None = None,
        recovery_mode: str | None = None,
        final_failure_mode: str | None = None,
    ) -> None:
        """The harness controller's labels for this attempt."""
        where = "attempt.set_modes"
        self._set(
            {
                sc.AGENT_SIGNALS_ATTEMPT_LOCALIZATION_MODE: as_str(
                    localization_mode, f"{where}(localization_mode=)"
                ),
                sc.AGENT_SIGNALS_ATTEMPT_RECOVERY_MODE: as_str(
                    recovery_mode, f"{where}(recovery_mode=)"
                ),
                sc.AGENT_SIGNALS_ATTEMPT_FINAL_FAILURE_MODE: as_str(
                    final_failure_mode, f"{where}(final_failure_mode=)"
                ),
            }
        )

    def record_outcome(
        self,
        *,
        resolved: bool | None = None,
        reward: float | None = None,
        label: str | None = None,
        fail_to_pass: int | None = None,
        fail_to_fail: int | None = None,
        pass_to_pass: int | None = None,
        pass_to_fail: int | None = None,
        patch_applies: bool | None = None,
        unverifiable_reason: str | None = None,
        source: str = "in_process",
    ) -> None:
        """A verifier's outcome for this attempt, recorded in process (e.g. a harness that runs
        the tests itself). The label is derived from the counts when not given; the outcome is
        also added as a `gen_ai.evaluation.result` event so trace viewers show it."""
        where = "attempt.record_outcome"
        try:
            from agentsignals._classify.outcome import LABELS, outcome_attributes

            text_label = as_str(label, f"{where}(label=)")
            if text_label is not None and text_label not in LABELS:
                dropped(f"{where}(label=)", f"unknown patch outcome label; use one of {LABELS}")
                text_label = None

            def count(value: object, name: str) -> int | None:
                return as_int(value, f"{where}({name}=)", minimum=0)

            attrs, event = outcome_attributes(
                resolved=as_bool(resolved, f"{where}(resolved=)"),
                reward=as_float(reward, f"{where}(reward=)"),
                label=text_label,
                fail_to_pass=count(fail_to_pass, "fail_to_pass"),
                fail_to_fail=count(fail_to_fail, "fail_to_fail"),
                pass_to_pass=count(pass_to_pass, "pass_to_pass"),
                pass_to_fail=count(pass_to_fail, "pass_to_fail"),
                patch_applies=as_bool(patch_applies, f"{where}(patch_applies=)"),
                unverifiable_reason=as_str(unverifiable_reason, f"{where}(unverifiable_reason=)"),
                source=as_str(source, f"{where}(source=)") or "in_process",
            )
            self._set(attrs)
            if self._span.is_recording():
                self._span.add_event(sc.EVENT_GEN_AI_EVALUATION_RESULT, event)
        except Exception:
            internal_error("could not record the attempt's outcome")

    def _before_end(self, exc: BaseException | None) -> None:
        reason = self._exit_reason
        if reason is None and exc is not None:
            if isinstance(exc, TimeoutError):
                reason = sc.AttemptExitReason.TIMEOUT.value
                self._timed_out = True
            elif isinstance(exc, KeyboardInterrupt | GeneratorExit) or _cancelled(exc):
                reason = sc.AttemptExitReason.INTERRUPTED.value
            else:
                reason = sc.AttemptExitReason.ERROR.value
        self._set(
            {
                sc.AGENT_SIGNALS_ATTEMPT_EXIT_REASON: reason,
                sc.AGENT_SIGNALS_ATTEMPT_TIMED_OUT: self._timed_out,
            }
        )
        faults = self._state.faults
        if faults is not None:
            try:
                faults.attempt_end(self)
            except Exception:
                internal_error("the attempt's fault hook failed at its end")
        tracker = self._state.workspace
        if tracker is not None and self._state.product:
            self._record_git_end_state()
        if tracker is not None:
            self._state.workspace = None
            try:
                changes = sorted(tracker.changes(), key=lambda c: c.path)
                self._set(
                    {
                        sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES: [c.path for c in changes],
                        sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES_LINES_ADDED: [
                            c.lines_added for c in changes
                        ],
                        sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES_LINES_REMOVED: [
                            c.lines_removed for c in changes
                        ],
                    }
                )
            finally:
                tracker.close()

    def _record_git_end_state(self) -> None:
        """A product session's output_applied / changes_reverted, read from git now."""
        try:
            from agentsignals._instrument.gitstate import session_end_state

            state = session_end_state(
                self._workspace_path,
                sorted(self._state.edited_files),
                started_ns=self._started_ns,
                base_commit=self._base_commit,
            )
            self._set(
                {
                    sc.AGENT_SIGNALS_SESSION_OUTPUT_APPLIED: state.output_applied,
                    sc.AGENT_SIGNALS_SESSION_CHANGES_REVERTED: state.changes_reverted,
                }
            )
        except Exception:
            internal_error("could not read the session's git state")


_CONTEXTS = frozenset(c.value for c in sc.AttemptContext)
_USER_KINDS = frozenset(k.value for k in sc.UserTurnKind)


class TurnHandle(_SpanHandle):
    """A turn: one model call and the tool calls it requests."""

    __slots__ = ("_attrs", "_output", "_reasoning", "_thought", "index")
    _span_type = "turn"

    def __init__(
        self,
        *,
        model: str | None = None,
        provider: str | None = None,
        phase: str | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        super().__init__()
        self.index = -1
        attrs: dict[str, AttributeValue] = {sc.AGENT_SIGNALS_SPAN_TYPE: _TURN}
        self._attrs = attrs
        try:
            for key, value, name in (
                (sc.GEN_AI_REQUEST_MODEL, model, "model"),
                (sc.GEN_AI_PROVIDER_NAME, provider, "provider"),
                (sc.AGENT_SIGNALS_TURN_PHASE, phase, "phase"),
            ):
                if value is None:
                    continue
                text = as_str(value, f"turn({name}=)")
                if text is not None:
                    attrs[key] = text
            extra = as_attributes(attributes, "turn(attributes=)")
            if extra:
                attrs.update(extra)
        except Exception:
            internal_error("could not prepare turn span")

    def __enter__(self) -> TurnHandle:
        self._entered = True
        try:
            parent = parent_context()
            outer = current_scope(parent)
            attempt = outer.attempt
            if attempt is not None:
                self.index = next(attempt.next_turn)
                attempt.current_turn = self.index
            else:
                self.index = 0
            scope = Scope(outer.trial, attempt, self.index, self)
            self._attrs.update(scope.identity)
            self._attrs[sc.AGENT_SIGNALS_TURN_INDEX] = self.index
            self._start(f"turn {self.index}", self._attrs, parent, scope)
        except Exception:
            internal_error("could not start turn span")
        return self

    def record_usage(
        self,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reasoning_tokens: int | None = None,
    ) -> None:
        """Token usage of this turn's model call (input includes cached tokens, per GenAI)."""
        where = "turn.record_usage"
        self._set(
            {
                sc.GEN_AI_USAGE_INPUT_TOKENS: as_int(
                    input_tokens, f"{where}(input_tokens=)", minimum=0
                ),
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: as_int(
                    output_tokens, f"{where}(output_tokens=)", minimum=0
                ),
                sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: as_int(
                    cache_read_tokens, f"{where}(cache_read_tokens=)", minimum=0
                ),
                sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: as_int(
                    cache_write_tokens, f"{where}(cache_write_tokens=)", minimum=0
                ),
                sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: as_int(
                    reasoning_tokens, f"{where}(reasoning_tokens=)", minimum=0
                ),
            }
        )

    def record_cost(self, usd: float) -> None:
        """Cost of this turn's model call in US dollars."""
        if usd is None:
            dropped("turn.record_cost(usd=)", "expected a number, got None")
            return
        cost = as_float(usd, "turn.record_cost(usd=)")
        if cost is not None:
            self._set({sc.AGENT_SIGNALS_USAGE_COST_USD: cost})

    def record_model(
        self,
        *,
        request: str | None = None,
        response: str | None = None,
        provider: str | None = None,
        finish_reasons: Sequence[str] | None = None,
    ) -> None:
        """Model names and finish reasons of this turn's call."""
        where = "turn.record_model"
        self._set(
            {
                sc.GEN_AI_REQUEST_MODEL: as_str(request, f"{where}(request=)"),
                sc.GEN_AI_RESPONSE_MODEL: as_str(response, f"{where}(response=)"),
                sc.GEN_AI_PROVIDER_NAME: as_str(provider, f"{where}(provider=)"),
                sc.GEN_AI_RESPONSE_FINISH_REASONS: as_str_list(
                    finish_reasons, f"{where}(finish_reasons=)"
                ),
            }
        )

    def set_phase(self, phase: str) -> None:
        """The phase of this turn: explore, localize, implement or verify."""
        text = as_str(phase, "turn.set_phase(phase=)")
        if text is not None:
            self._set({sc.AGENT_SIGNALS_TURN_PHASE: text})

    def record_reasoning(self, text: str) -> None:
        """The model's reasoning (thinking) text: its presence and length always, the text
        itself only with content capture on."""
        try:
            if text is None:
                return
            text = text if isinstance(text, str) else capture.to_text(text)
            self._reasoning = text
            self._set(
                {
                    sc.AGENT_SIGNALS_TURN_REASONING_PRESENT: bool(text),
                    sc.AGENT_SIGNALS_TURN_REASONING_CHARS: len(text),
                    sc.AGENT_SIGNALS_TURN_REASONING_ASSUMPTIONS: (
                        session_text.assumptions(text) if text else None
                    ),
                    **self._plan_counts(),
                }
            )
            # The text itself (capture only) is a reasoning part of gen_ai.output.messages,
            # recorded with the rest of the output when the turn ends.
        except Exception:
            internal_error("could not record reasoning")

    def record_thought(self, text: str) -> None:
        """Visible thinking the model wrote in its answer (SWE-agent's `thought`, mini-swe-agent's
        THOUGHT): not a reasoning block. Its length always; plan steps and self-corrections
        are counted over reasoning and thought together, as the importers do."""
        try:
            if text is None:
                return
            text = text if isinstance(text, str) else capture.to_text(text)
            self._thought = text
            self._set({sc.AGENT_SIGNALS_TURN_THOUGHT_CHARS: len(text), **self._plan_counts()})
        except Exception:
            internal_error("could not record a thought")

    def record_text(self, text: str) -> None:
        """The visible text the model wrote to the user this turn (an interactive session's
        answer, not reasoning): its words, hedging phrases and requests for the user's
        go-ahead, without content (the text itself goes in `record_messages(output=...)`)."""
        try:
            if text is None:
                return
            shown = text if isinstance(text, str) else capture.to_text(text)
            self._set(
                {
                    sc.AGENT_SIGNALS_TURN_TEXT_WORDS: session_text.words(shown),
                    sc.AGENT_SIGNALS_TURN_TEXT_HEDGES: session_text.hedges(shown),
                    sc.AGENT_SIGNALS_TURN_TEXT_CONFIRMATION_REQUESTS: (
                        session_text.confirmation_requests(shown)
                    ),
                }
            )
        except Exception:
            internal_error("could not record a turn's text")

    def _plan_counts(self) -> dict[str, AttributeValue]:
        parts = (getattr(self, "_reasoning", None), getattr(self, "_thought", None))
        text = "\n\n".join(t for t in parts if t)
        return {
            sc.AGENT_SIGNALS_TURN_REASONING_PLAN_STEPS: reasoning_text.plan_steps(text),
            sc.AGENT_SIGNALS_TURN_REASONING_SELF_CORRECTIONS: reasoning_text.self_corrections(text),
        }

    def record_messages(self, *, input: Any = None, output: Any = None) -> None:
        """Chat messages in the GenAI JSON shape (`[{"role", "parts": [...]}]`); capture only.
        The output is recorded when the turn ends, with the reasoning `record_reasoning` gave
        as its `reasoning` part (in either order: one `gen_ai.output.messages` holds both)."""
        if input is not None:
            self._capture(sc.GEN_AI_INPUT_MESSAGES, input)
        if output is not None:
            self._output = output

    def _before_end(self, exc: BaseException | None) -> None:
        if not RUNTIME.settings.capture_content:
            return
        reasoning = getattr(self, "_reasoning", None)
        output = getattr(self, "_output", None)
        if reasoning or output is not None:
            self._capture(sc.GEN_AI_OUTPUT_MESSAGES, with_reasoning(output, reasoning or None))


def _process_output(done: subprocess.CompletedProcess[Any]) -> Any:
    """What a process showed: its stdout, then its stderr when that was captured apart
    (unittest, warnings and tracebacks write there)."""
    out, err = done.stdout, done.stderr
    if not err:
        return out
    if not out:
        return err
    if isinstance(out, str) and isinstance(err, str):
        return out + err
    if isinstance(out, bytes) and isinstance(err, bytes):
        return out + err
    return out


def with_reasoning(output: Any, reasoning: str | None) -> Any:
    """`output` (GenAI output messages) with `reasoning` as the first part of its first
    assistant message, unless a part already holds it; a message of its own when no message
    has parts."""
    if reasoning is None:
        return output
    part = {"type": "reasoning", "content": reasoning}
    if output is None:
        return [{"role": "assistant", "parts": [part]}]
    messages = list(output) if isinstance(output, list | tuple) else [output]
    for message in messages:
        parts = message.get("parts") if isinstance(message, Mapping) else None
        if isinstance(parts, list) and any(
            isinstance(p, Mapping)
            and p.get("type") == "reasoning"
            and p.get("content") == reasoning
            for p in parts
        ):
            return messages
    for i, message in enumerate(messages):
        if (
            isinstance(message, Mapping)
            and message.get("role", "assistant") == "assistant"
            and isinstance(message.get("parts"), list)
        ):
            messages[i] = {**message, "parts": [part, *message["parts"]]}
            return messages
    return [{"role": "assistant", "parts": [part]}, *messages]


class ToolHandle(_SpanHandle):
    """A tool call: its category, arguments, result, exit code and error."""

    __slots__ = (
        "_arguments",
        "_attrs",
        "_category",
        "_defer",
        "_ended_at",
        "_exit_failed",
        "_pending",
        "_scope",
        "_span_name",
        "_trusted",
        "name",
    )
    _span_type = "tool"

    def __init__(
        self,
        name: str,
        *,
        category: str | None = None,
        call_id: str | None = None,
        arguments: Any = None,
        files: Iterable[str] | None = None,
        tool_type: str | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        super().__init__()
        self.name = as_str(name, "tool(name=)") or _UNKNOWN_TOOL
        self._span_name = f"execute_tool {self.name}"
        self._exit_failed = False
        self._ended_at: int | None = None
        self._scope: Scope = EMPTY_SCOPE
        self._arguments = arguments
        self._trusted = False
        self._category = _OTHER
        self._pending: deferred.Pending | None = None
        self._defer = False
        attrs: dict[str, AttributeValue] = {
            sc.GEN_AI_OPERATION_NAME: _EXECUTE_TOOL,
            sc.GEN_AI_TOOL_NAME: self.name,
            sc.AGENT_SIGNALS_SPAN_TYPE: _TOOL,
            sc.AGENT_SIGNALS_TOOL_CATEGORY: self._category,
        }
        self._attrs = attrs
        try:
            given = as_str(category, "tool(category=)")
            args_map = arguments if isinstance(arguments, Mapping) else None
            facts = None
            if args_map:
                if (
                    files is None
                    and not attributes
                    and not RUNTIME.settings.capture_content
                    and category_for(self.name) is sc.ToolCategory.SHELL
                    and shell_command(args_map) is not None
                ):
                    # A shell command: read on the export path if nothing sees the span first.
                    self._pending = deferred.Pending(self.name, args_map, given, None)
                else:
                    facts = describe_call(self.name, args_map, category=given)
            if facts is not None:
                self._category = facts.category
            elif self._pending is None or given is not None:
                self._category = given if given is not None else category_for(self.name).value
            else:
                self._category = _SHELL
            attrs[sc.AGENT_SIGNALS_TOOL_CATEGORY] = self._category
            # (Only given values are converted: the common call passes none of these.)
            if call_id is not None:
                text = as_str(call_id, "tool(call_id=)")
                if text is not None:
                    attrs[sc.GEN_AI_TOOL_CALL_ID] = text
            if tool_type is not None:
                text = as_str(tool_type, "tool(tool_type=)")
                if text is not None:
                    attrs[sc.GEN_AI_TOOL_TYPE] = text
            paths = None if files is None else as_str_list(files, "tool(files=)")
            if paths is not None:
                attrs[sc.AGENT_SIGNALS_TOOL_FILES] = tuple(paths)
            elif facts is not None and facts.files:
                attrs[sc.AGENT_SIGNALS_TOOL_FILES] = tuple(facts.files)
            if facts is not None and facts.runner is not None:
                attrs[sc.AGENT_SIGNALS_TEST_RUNNER] = facts.runner
            if facts is not None and not facts.command_complete:
                attrs[sc.AGENT_SIGNALS_TOOL_COMMAND_COMPLETE] = False
            if arguments is not None and RUNTIME.settings.fingerprint_tools:
                attrs[sc.AGENT_SIGNALS_TOOL_CALL_FINGERPRINT] = capture.fingerprint(
                    self.name, (), arguments if isinstance(arguments, dict) else {"": arguments}
                )
            extra = as_attributes(attributes, "tool(attributes=)")
            if extra:
                attrs.update(extra)
            self._trusted = not extra
        except Exception:
            internal_error("could not prepare tool span")

    @classmethod
    def _prepared(
        cls,
        name: str,
        span_name: str,
        attributes: dict[str, AttributeValue],
        arguments: Any,
        trusted: bool = False,
        pending: deferred.Pending | None = None,
    ) -> ToolHandle:
        """A handle whose attributes were computed already (the decorators' fast path);
        `trusted`: all made by us (see `_start`); `pending`: the command still to be read."""
        self = cls.__new__(cls)
        self._span = INVALID_SPAN
        self._token = None
        self._content = None
        self._entered = False
        self.name = name
        self._span_name = span_name
        self._category = str(attributes.get(sc.AGENT_SIGNALS_TOOL_CATEGORY, "other"))
        self._pending = pending
        self._defer = False
        self._attrs = attributes
        self._arguments = arguments
        self._exit_failed = False
        self._ended_at = None
        self._scope = EMPTY_SCOPE
        self._fault = None
        self._trusted = trusted
        return self

    def __enter__(self) -> ToolHandle:
        self._entered = True
        try:
            parent = parent_context()
            scope = current_scope(parent)
            self._scope = scope
            identity = scope.identity_for_tool()
            if identity:
                self._attrs.update(identity)
            if self._pending is not None or self._category in deferred.OUTPUT_READ:
                attempt = scope.attempt
                self._defer = (
                    not RUNTIME.settings.capture_content
                    and (attempt is None or (attempt.faults is None and attempt.workspace is None))
                    and deferred.available(RUNTIME.tracer)
                )
                if not self._defer and self._pending is not None:
                    # Read here after all: the span starts with what the parse gives.
                    self._attrs.update(self._pending.attributes())
                    self._category = self._pending.final_category()
                    self._pending = None
            self._start(
                self._span_name, self._attrs, parent, None, tool=self, trusted=self._trusted
            )
            if self._arguments is not None:
                self._capture_arguments(self._arguments)
            attempt = scope.attempt
            if attempt is not None and attempt.faults is not None:
                nested = isinstance(otel_context.get_value(_TOOL_KEY, parent), ToolHandle)
                self._fault = attempt.faults.before_tool(self, nested)
        except Exception:
            internal_error("could not start tool span")
        return self

    @property
    def category(self) -> str:
        """The call's category (`agent_signals.tool.category`)."""
        pending = self._pending
        return self._category if pending is None else pending.final_category()

    def _materialize(self) -> None:
        """Read the pending command and output now, onto the live span (a call that reads or
        replaces what they give comes next)."""
        pending = self._pending
        if pending is None:
            self._defer = False
            return
        self._pending = None
        self._defer = False
        try:
            values = pending.attributes()
            self._category = pending.final_category()
            if values:
                self._set(values)
        except Exception:
            internal_error("could not read a tool call's command or output")

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self._materialize()
        super().set_attribute(key, value)

    def run(self, call: Callable[[], Any]) -> Any:
        """Run the tool's body, ``call()``: directly, or through a fault injected into this
        call (agentsignals.faults), which may replace its result or fail in its place."""
        fault = self._fault
        return call() if fault is None else fault.run(call)

    async def run_async(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """:meth:`run` for a coroutine body: ``await call()``, or through the call's fault."""
        fault = self._fault
        return await (call() if fault is None else fault.run_async(call))

    def _finish(self, exc: BaseException | None) -> None:
        super()._finish(exc)
        attempt = self._scope.attempt
        if attempt is not None and attempt.faults is not None:
            try:
                attempt.faults.after_tool(self, exc)
            except Exception:
                internal_error("the attempt's fault hook failed after a tool call")

    def _capture_arguments(self, arguments: Any) -> None:
        if not RUNTIME.settings.capture_content:
            return
        self._capture(sc.GEN_AI_TOOL_CALL_ARGUMENTS, arguments)
        if self._category in ("shell", "test") and isinstance(arguments, Mapping):
            command = arguments.get("command") or arguments.get("cmd")
            if command is not None:
                self._capture(sc.PROCESS_COMMAND_LINE, command)

    def record_arguments(self, arguments: Any) -> None:
        """Arguments of the call: a fingerprint always, the values only with content capture."""
        try:
            if RUNTIME.settings.fingerprint_tools:
                self._set(
                    {
                        sc.AGENT_SIGNALS_TOOL_CALL_FINGERPRINT: capture.fingerprint(
                            self.name,
                            (),
                            arguments if isinstance(arguments, dict) else {"": arguments},
                        )
                    }
                )
            self._capture_arguments(arguments)
        except Exception:
            internal_error("could not record tool arguments")

    def record_result(self, result: Any, *, exit_code: int | None = None) -> None:
        """The tool's result as the agent received it: size always, content with capture."""
        try:
            completed = _completed_process_type()
            if completed is not None and isinstance(result, completed):
                if exit_code is None:
                    exit_code = result.returncode
                result = _process_output(result)
            if isinstance(result, str):
                self._set(
                    {sc.AGENT_SIGNALS_TOOL_OUTPUT_BYTES: len(result.encode("utf-8", "replace"))}
                )
            elif isinstance(result, bytes | bytearray):
                self._set({sc.AGENT_SIGNALS_TOOL_OUTPUT_BYTES: len(result)})
            if result is not None:
                self._capture(sc.GEN_AI_TOOL_CALL_RESULT, result)
                if isinstance(result, str | bytes) and not (
                    self._defer and self._defer_output(result)
                ):
                    if self._category == "test":
                        self._record_test_run(result, junit=False)
                    elif self._category == "search" and isinstance(result, str):
                        self._record_search_hits(result)
        except Exception:
            internal_error("could not record tool result")
        if exit_code is not None:
            self.set_exit_code(exit_code)

    def _defer_output(self, result: str | bytes) -> bool:
        """Leave the output's reading to the export path; False when it is to be read here
        (a second result, a long one: what is pending is read first)."""
        pending = self._pending
        if not self._span.is_recording() or len(result) > deferred.MAX_DEFERRED_OUTPUT:
            self._materialize()
            return False
        if pending is None:
            if self._category not in deferred.OUTPUT_READ:
                return True  # nothing in it is read
            pending = self._pending = deferred.Pending(self.name, None, None, self._category)
        elif pending.output is not None:
            self._materialize()
            return False
        pending.output = result
        args = self._arguments
        if pending.arguments is None and isinstance(args, Mapping):
            pending.arguments = args  # (a search's hits are matched to its command)
        return True

    def _record_search_hits(self, output: str) -> None:
        if not self._span.is_recording():
            return
        from agentsignals._classify.shell import search_hits

        args = self._arguments if isinstance(self._arguments, Mapping) else None
        hits = search_hits(output, shell_command(args))
        if hits:
            self._set({sc.AGENT_SIGNALS_TOOL_RESULT_FILES: hits})

    def record_test_report(self, report: str | bytes) -> None:
        """Per-test outcomes from test output or a JUnit XML report (text or bytes), for a
        test tool whose result is not the runner's console output."""
        if isinstance(report, str):
            text = report
        elif isinstance(report, bytes | bytearray):
            text = bytes(report).decode("utf-8", "replace")
        else:
            if report is not None:
                dropped("tool.record_test_report(report=)", "expected str or bytes")
            return
        try:
            self._materialize()
            self._record_test_run(text, junit=text.lstrip().startswith("<"))
        except Exception:
            internal_error("could not record the test report")

    def _record_test_run(self, output: str | bytes, *, junit: bool) -> None:
        if not self._span.is_recording():
            return
        from agentsignals._classify.outcome import test_run_attributes

        attrs = test_run_attributes(output, junit=junit)
        if attrs:
            self._set(attrs)

    def set_exit_code(self, code: int, *, failed: bool | None = None) -> None:
        """Exit code of the process the tool ran; non-zero marks the call failed unless
        `failed=False` (grep's 1 for "no match", say)."""
        number = as_int(code, "tool.set_exit_code(code=)")
        if number is None:
            return
        is_failed = as_bool(failed, "tool.set_exit_code(failed=)")
        try:
            self._set({sc.PROCESS_EXIT_CODE: number})
            if is_failed if is_failed is not None else number != 0:
                self._exit_failed = True
                self._set({sc.ERROR_TYPE: f"exit_code_{number}"})
        except Exception:
            internal_error("could not record exit code")

    def set_error(self, error: str | BaseException, message: str | None = None) -> None:
        """A failure the tool returned rather than raised; marks the span ERROR."""
        try:
            if isinstance(error, BaseException):
                self._record_exception(error)
                return
        except Exception:
            internal_error("could not record tool error")
            return
        kind = as_str(error, "tool.set_error(error=)")
        text = as_str(message, "tool.set_error(message=)")
        if kind is None:
            return
        try:
            self._set({sc.ERROR_TYPE: capture.redact_text(kind)[:256]})
            if self._span.is_recording():
                # The message is free text from the tool (often its stderr): redacted even with
                # content capture off.
                status = capture.redact_text(text or kind)[:512]
                self._span.set_status(Status(StatusCode.ERROR, status))
        except Exception:
            internal_error("could not record tool error")

    def set_files(self, files: Iterable[str]) -> None:
        """Files the call targets (paths from its arguments)."""
        if files is None:
            dropped("tool.set_files(files=)", "expected a list of paths, got None")
            return
        paths = as_str_list(files, "tool.set_files(files=)")
        if paths is not None:
            self._materialize()
            self._set({sc.AGENT_SIGNALS_TOOL_FILES: paths})

    def set_category(self, category: str) -> None:
        """Override the inferred category."""
        text = as_str(category, "tool.set_category(category=)")
        if text is None:
            return
        self._materialize()
        self._category = text
        self._set({sc.AGENT_SIGNALS_TOOL_CATEGORY: text})

    def mark_timed_out(self) -> None:
        """The call hit a time limit."""
        self._set({sc.AGENT_SIGNALS_TOOL_TIMED_OUT: True})

    def _before_end(self, exc: BaseException | None) -> None:
        span = self._span
        if not span.is_recording():
            return
        if self._exit_failed and exc is None:
            span.set_status(Status(StatusCode.ERROR, "non-zero exit code"))
        pending = self._pending
        if pending is not None:
            if self._defer and deferred.available(RUNTIME.tracer):
                deferred.hand_off(span.get_span_context().span_id, pending)
            else:
                self._materialize()
        if self._ended_at is not None:
            return  # settled: the workspace was charged when the call ended
        attempt = self._scope.attempt
        if attempt is not None and attempt.workspace is not None:
            self._record_workspace(attempt.workspace)

    def _settle(self) -> None:
        """The call is over but its result is not in yet: a tool another process runs and
        reports later. Charge the workspace's changes to it and fix its end time now; record
        the result when it comes, then `__exit__` ends the span at this end time."""
        if not self._entered or self._ended_at is not None:
            return
        try:
            self._materialize()
            clock = RUNTIME.clock
            self._ended_at = clock() if clock is not None else time.time_ns()
            attempt = self._scope.attempt
            if self._span.is_recording() and attempt is not None and attempt.workspace is not None:
                self._record_workspace(attempt.workspace)
        except Exception:
            internal_error("could not settle tool span")

    def _end_time(self) -> int | None:
        ended = self._ended_at
        return ended if ended is not None else super()._end_time()

    def _record_workspace(self, tracker: WorkspaceTracker) -> None:
        changes = tracker.checkpoint()
        span = self._span
        span.set_attribute(sc.AGENT_SIGNALS_TOOL_CHANGED_FILES, [c.path for c in changes])
        if not changes:
            return
        attempt = self._scope.attempt
        if attempt is not None and attempt.product:
            # A product session: the line ranges changed, for its region edit history.
            attempt.edited_files.update(c.path for c in changes)
            regions = tracker.regions(changes)
            if regions:
                from agentsignals._classify.regions import region_attributes

                span.set_attributes(region_attributes(regions))
        mode = (
            sc.ToolEditMode.DIRECT
            if self._category == sc.ToolCategory.EDIT
            else sc.ToolEditMode.SHELL_MEDIATED
        )
        span.set_attributes(
            {
                sc.AGENT_SIGNALS_TOOL_EDIT_MODE: mode.value,
                sc.AGENT_SIGNALS_TOOL_LINES_ADDED: sum(c.lines_added for c in changes),
                sc.AGENT_SIGNALS_TOOL_LINES_REMOVED: sum(c.lines_removed for c in changes),
            }
        )
