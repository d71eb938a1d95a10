"""The injector: one per attempt, it watches the agent's tool calls and breaks the state when a
fault's trigger fires.

It plugs into the span handles through `_instrument.hooks` (the instrumentation never imports
this module). After every top-level tool call it updates what it knows (calls made, the first
edit, the first passing test run, files read, the last edit's previous content, files created)
and fires the faults whose trigger came true: a workspace fault changes the files at once
(between two tool calls) and the tracker is checkpointed right after, so the change is never
taken for the next call's edit; a tool fault is armed for the next call, which it then fails,
times out or answers with stale output. Each injection is an ``agent_signals.fault.injected``
event on the attempt span; at the attempt's end each workspace fault gets an
``agent_signals.fault.checked`` event (was the damage undone by the agent?).
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentsignals import semconv as sc
from agentsignals._faults import workspace as ws
from agentsignals._faults.plan import DEFAULT_ERROR, Fault, FaultPlan
from agentsignals._instrument.hooks import InjectedToolError, InjectedToolTimeout
from agentsignals._instrument.runtime import RUNTIME, internal_error

if TYPE_CHECKING:
    from agentsignals._instrument.scope import AttemptState
    from agentsignals._instrument.spans import AttemptHandle, ToolHandle
    from agentsignals._instrument.workspace import WorkspaceTracker

__all__ = ["Injection", "Injector", "UndoResult"]

logger = logging.getLogger("agentsignals")

_K = sc.FaultKind
_EDIT = sc.ToolCategory.EDIT.value
_READ = sc.ToolCategory.READ.value
_TEST = sc.ToolCategory.TEST.value
_SEARCH = sc.ToolCategory.SEARCH.value
_MAX_REMEMBERED = 256  # files read / created the injector remembers (latest kept)


@dataclass
class Injection:
    """One fault that took effect."""

    fault: Fault
    step: int
    turn_index: int | None
    description: str
    files: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    reversible: bool = False
    before: dict[str, bytes | None] = field(default_factory=dict, repr=False)
    after: dict[str, bytes | None] = field(default_factory=dict, repr=False)
    # Filled when the attempt ends (workspace faults only).
    undone: bool | None = None
    restored_exactly: bool | None = None

    @property
    def kind(self) -> str:
        return self.fault.kind


@dataclass
class UndoResult:
    """What :meth:`Injector.undo` put back, and the files it left because the agent had
    changed them since the fault (putting them back would destroy the agent's work)."""

    restored: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return not self.conflicts


class _Pending:
    __slots__ = ("armed_at", "fault", "trigger_step")

    def __init__(self, fault: Fault, task_id: str | None) -> None:
        self.fault = fault
        self.armed_at: int | None = None  # tool faults: the call index they will hit
        self.trigger_step: int | None = (
            fault.step
            if fault.trigger == sc.FaultTrigger.AFTER_STEP.value
            else fault.random_step(task_id)
            if fault.trigger == sc.FaultTrigger.RANDOM.value
            else None
        )


class _Recorder:
    """A tool-call hook that only remembers results (for a stale-output fault to come)."""

    __slots__ = ("injector", "tool")

    def __init__(self, injector: Injector, tool: ToolHandle) -> None:
        self.injector = injector
        self.tool = tool

    def run(self, call: Callable[[], Any]) -> Any:
        result = call()
        self.injector._remember(self.tool, result)
        return result

    async def run_async(self, call: Callable[[], Awaitable[Any]]) -> Any:
        result = await call()
        self.injector._remember(self.tool, result)
        return result


class _Edit:
    """The latest call that changed files: which, and a snapshot of the workspace before it
    (read when a revert fires, never per call)."""

    __slots__ = ("added", "files", "snapshot", "tracker")

    def __init__(
        self, tracker: WorkspaceTracker, snapshot: object, files: list[str], added: list[str]
    ) -> None:
        self.tracker = tracker
        self.snapshot = snapshot
        self.files = files
        self.added = set(added)

    def before(self) -> dict[str, bytes | None]:
        """Each file's content before the call (None: it did not exist); files whose content
        is not known (binary in folder mode, git failed) are left out."""
        out: dict[str, bytes | None] = {}
        for rel in self.files:
            if rel in self.added:
                out[rel] = None
                continue
            try:
                out[rel] = self.tracker.content_in(self.snapshot, rel)
            except LookupError:
                continue
        return out


class _FaultyCall:
    """The tool call a tool fault hits."""

    __slots__ = ("injector", "pending", "ran", "tool")

    def __init__(self, injector: Injector, pending: _Pending, tool: ToolHandle) -> None:
        self.injector = injector
        self.pending = pending
        self.tool = tool
        # False at the call's end: nothing ran its body through us (an integration that only
        # observes calls, or a `with agentsignals.tool(...)` block without .run()).
        self.ran = False

    def _fail(self) -> None:
        fault = self.pending.fault
        tool = self.tool
        if fault.kind == _K.TOOL_TIMEOUT.value:
            command = _command_of(tool) or tool.name
            message = fault.message or str(subprocess.TimeoutExpired(command, 30))
            self.injector._injected(self.pending, message, ["timed out"], tool)
            tool.mark_timed_out()
            raise InjectedToolTimeout(message)
        message = fault.message or DEFAULT_ERROR
        self.injector._injected(self.pending, message, [message], tool)
        raise InjectedToolError(message)

    def run(self, call: Callable[[], Any]) -> Any:
        self.ran = True
        if self.pending.fault.kind != _K.STALE_OUTPUT.value:
            self._fail()
        result = call()
        return self.injector._stale(self.pending, self.tool, result)

    async def run_async(self, call: Callable[[], Awaitable[Any]]) -> Any:
        self.ran = True
        if self.pending.fault.kind != _K.STALE_OUTPUT.value:
            self._fail()
        result = await call()
        return self.injector._stale(self.pending, self.tool, result)


def _command_of(tool: ToolHandle) -> str | None:
    args = tool._arguments
    if isinstance(args, dict):
        command = args.get("command") or args.get("cmd")
        if isinstance(command, str):
            return command
    return None


def _attributes(tool: ToolHandle) -> Mapping[str, Any]:
    """The ended span's attributes, read in place (no copy: this runs on every tool call)."""
    attrs = getattr(tool.span, "attributes", None)
    return attrs if attrs else {}


class Injector:
    """Faults for one attempt (an ``AttemptHook``). Made by ``agentsignals.faults.inject`` or,
    for every attempt, by ``install``; thread-safe."""

    def __init__(self, plan: FaultPlan, attempt: AttemptHandle, state: AttemptState) -> None:
        self.plan = plan
        self.attempt = attempt
        self._state = state
        task = attempt._attrs.get(sc.AGENT_SIGNALS_TASK_ID)
        self.task_id = task if isinstance(task, str) else None
        self._lock = threading.RLock()
        self._pending = [_Pending(f, self.task_id) for f in plan.faults]
        self.injections: list[Injection] = []
        self.calls = 0
        self._edited = False
        self._passed = False
        self._nested: set[int] = set()
        self._last_edit: _Edit | None = None
        self._created: list[str] = []
        self._reads: list[str] = []
        self._tests: list[str] = []
        self._python: list[str] = []
        self._results: dict[str, Any] = {}
        kinds = {f.kind for f in plan.faults}
        self._wants_history = bool(
            kinds & {_K.REVERT_LAST_EDIT.value, _K.DELETE_CREATED_FILE.value}
        )
        self._wants_results = _K.STALE_OUTPUT.value in kinds
        self._ended = False
        self._warned: set[str | None] = set()
        # The workspace root, kept past the attempt's end (undo() runs after it).
        tracker = state.workspace
        self._root_path: Path | None = tracker.root if tracker is not None else None

    # ------------------------------------------------------------------ public
    @property
    def workspace(self) -> WorkspaceTracker | None:
        return self._state.workspace

    @property
    def pending(self) -> list[Fault]:
        """Faults that have not taken effect (their trigger has not come, or they could not
        apply yet)."""
        with self._lock:
            return [p.fault for p in self._pending]

    def undo(self) -> UndoResult:
        """Put back the files of every workspace fault, newest first, where the agent has not
        changed them since (those are listed as conflicts and left alone)."""
        result = UndoResult()
        root = self._root()
        if root is None:
            return result
        with self._lock:
            for inj in reversed(self.injections):
                for rel, after in inj.after.items():
                    if ws.read_bytes(root, rel) == after:
                        ws.write_bytes(root, rel, inj.before.get(rel))
                        result.restored.append(rel)
                    else:
                        result.conflicts.append(rel)
            self._absorb()
        return result

    # ------------------------------------------------------------------ hook
    def before_tool(self, tool: ToolHandle, nested: bool) -> Any:
        if nested:
            with self._lock:
                self._nested.add(id(tool))
            return None
        with self._lock:
            for p in self._pending:
                if p.armed_at is not None and p.armed_at <= self.calls:
                    return _FaultyCall(self, p, tool)
        return _Recorder(self, tool) if self._wants_results else None

    def after_tool(self, tool: ToolHandle, error: BaseException | None) -> None:
        with self._lock:
            if id(tool) in self._nested:
                self._nested.discard(id(tool))
                return
            if self._ended:
                return
            faulty = tool._fault
            if isinstance(faulty, _FaultyCall) and not faulty.ran:
                self._unapplied(faulty.pending.fault, tool)
            self.calls += 1
            self._observe(tool, error)
            self._fire()

    def attempt_end(self, attempt: AttemptHandle) -> None:
        with self._lock:
            self._ended = True
            root = self._root()
            span = attempt.span
            for inj in self.injections:
                if not inj.after or root is None:
                    continue
                current = {rel: ws.read_bytes(root, rel) for rel in inj.after}
                inj.undone = all(current[rel] != inj.after[rel] for rel in inj.after)
                inj.restored_exactly = all(current[rel] == inj.before.get(rel) for rel in inj.after)
                if span.is_recording():
                    span.add_event(
                        sc.EVENT_AGENT_SIGNALS_FAULT_CHECKED,
                        {
                            sc.AGENT_SIGNALS_FAULT_ID: inj.fault.id or inj.kind,
                            sc.AGENT_SIGNALS_FAULT_UNDONE: inj.undone,
                            sc.AGENT_SIGNALS_FAULT_RESTORED_EXACTLY: inj.restored_exactly,
                        },
                        timestamp=_now(),
                    )

    # ------------------------------------------------------------------ internals
    def _unapplied(self, fault: Fault, tool: ToolHandle) -> None:
        """A tool fault was due on a call whose body did not run through agentsignals: it
        stays pending (no event: nothing was injected); said once per fault."""
        if fault.id in self._warned:
            return
        self._warned.add(fault.id)
        logger.warning(
            "agentsignals.faults: tool fault %r could not be applied to tool %r: the call was "
            "not run through agentsignals (an integration that only observes tool calls, or a "
            "tool() block without .run()); it stays pending",
            fault.id or fault.kind,
            tool.name,
        )

    def _root(self) -> Path | None:
        return self._root_path

    def _absorb(self) -> None:
        """Checkpoint the tracker so a fault's own changes are not the next call's edit."""
        tracker = self._state.workspace
        if tracker is not None:
            tracker.checkpoint()

    def _observe(self, tool: ToolHandle, error: BaseException | None) -> None:
        attrs = _attributes(tool)
        root = self._root()
        changed = [str(f) for f in attrs.get(sc.AGENT_SIGNALS_TOOL_CHANGED_FILES) or ()]
        failed = error is not None or tool._exit_failed or sc.ERROR_TYPE in attrs
        category = tool.category
        if changed or (category == _EDIT and not failed):
            self._edited = True
        tracker = self.workspace
        if changed and self._wants_history and tracker is not None and root is not None:
            # What the files were before this call, kept as a snapshot token and read only if
            # a revert fires (no I/O per call for faults that never fire).
            try:
                snapshot = tracker.previous_snapshot()
            except LookupError:
                snapshot = None
            if snapshot is not None:
                status = {c.path: c.status for c in tracker.last_changes}
                added = [rel for rel in changed if status.get(rel) == "added"]
                self._last_edit = _Edit(tracker, snapshot, changed, added)
                for rel in added:
                    if (root / rel).is_file():
                        _remember_path(self._created, rel)
        if root is not None:
            stated = attrs.get(sc.AGENT_SIGNALS_TOOL_FILES) or ()
            named = [ws.to_relative(root, str(f)) for f in stated]
            files = [f for f in named if f is not None]
            if category in (_READ, _SEARCH) and not failed:
                for rel in files:
                    if (root / rel).is_file():
                        _remember_path(self._reads, rel)
            if category in (_TEST, _READ):
                for rel in files:
                    _remember_path(self._tests, rel)
            for rel in [*files, *changed]:
                if rel.endswith(".py"):
                    _remember_path(self._python, rel)
        if category == _TEST and not failed:
            failed_count = attrs.get(sc.AGENT_SIGNALS_TEST_FAILED_COUNT)
            errors = attrs.get(sc.AGENT_SIGNALS_TEST_ERROR_COUNT)
            passed = attrs.get(sc.AGENT_SIGNALS_TEST_PASSED_COUNT)
            if passed is None and failed_count is None:
                self._passed = True  # output not parsed: exit 0 is the runner's verdict
            elif not (failed_count or 0) and not (errors or 0) and (passed or 0) > 0:
                self._passed = True

    def _triggered(self, p: _Pending) -> bool:
        trigger = p.fault.trigger
        if p.trigger_step is not None:
            return self.calls >= p.trigger_step
        if trigger == sc.FaultTrigger.AFTER_FIRST_EDIT.value:
            return self._edited
        return self._passed

    def _fire(self) -> None:
        for p in list(self._pending):
            if p.armed_at is not None or not self._triggered(p):
                continue
            if p.fault.is_tool_fault:
                p.armed_at = self.calls  # the next call
                continue
            change = self._apply(p.fault)
            if change is None:
                continue  # cannot apply yet: try again after the next call
            self._absorb()
            self._pending.remove(p)
            self._record(
                Injection(
                    fault=p.fault,
                    step=self.calls,
                    turn_index=self._state.current_turn,
                    description=change.description,
                    files=change.files,
                    mentions=change.mentions,
                    reversible=change.reversible,
                    before=change.before,
                    after=change.after,
                )
            )

    def _apply(self, fault: Fault) -> ws.Change | None:
        root = self._root()
        if root is None:
            return None
        kind = fault.kind
        if kind == _K.REVERT_LAST_EDIT.value:
            edit = self._last_edit
            return ws.revert_last_edit(root, edit.before() if edit is not None else None)
        if kind == _K.CORRUPT_FILE.value:
            return ws.corrupt_file(root, fault.path, self._reads)
        if kind == _K.TRUNCATE_FILE.value:
            return ws.truncate_file(root, fault.path, self._reads)
        if kind == _K.ADD_FAILING_TEST.value:
            return ws.add_failing_test(root, self._tests)
        if kind == _K.DELETE_CREATED_FILE.value:
            created = [fault.path] if fault.path else self._created
            return ws.delete_created_file(root, created)
        if kind == _K.BREAK_DEPENDENCY.value:
            return ws.break_dependency(root, fault.module, self._python)
        return None

    def _record(self, inj: Injection) -> None:
        self.injections.append(inj)
        span = self.attempt.span
        if not span.is_recording():
            return
        attrs: dict[str, Any] = {
            sc.AGENT_SIGNALS_FAULT_ID: inj.fault.id or inj.kind,
            sc.AGENT_SIGNALS_FAULT_KIND: inj.kind,
            sc.AGENT_SIGNALS_FAULT_TRIGGER: inj.fault.trigger,
            sc.AGENT_SIGNALS_FAULT_STEP: inj.step,
            sc.AGENT_SIGNALS_FAULT_DESCRIPTION: inj.description[:1024],
            sc.AGENT_SIGNALS_FAULT_REVERSIBLE: inj.reversible,
        }
        if inj.turn_index is not None:
            attrs[sc.AGENT_SIGNALS_TURN_INDEX] = inj.turn_index
        if inj.files:
            attrs[sc.AGENT_SIGNALS_FAULT_FILES] = inj.files
        if inj.mentions:
            attrs[sc.AGENT_SIGNALS_FAULT_MENTIONS] = inj.mentions
        span.add_event(sc.EVENT_AGENT_SIGNALS_FAULT_INJECTED, attrs, timestamp=_now())

    def _injected(
        self, p: _Pending, description: str, mentions: list[str], tool: ToolHandle
    ) -> None:
        """A tool fault hit ``tool`` (called inside the tool span)."""
        with self._lock:
            if p in self._pending:
                self._pending.remove(p)
            fid = p.fault.id or p.fault.kind
            tool.set_attribute(sc.AGENT_SIGNALS_FAULT_ID, fid)
            tool.set_attribute(sc.AGENT_SIGNALS_FAULT_KIND, p.fault.kind)
            self._record(
                Injection(
                    fault=p.fault,
                    step=self.calls,
                    turn_index=self._state.current_turn,
                    description=f"{tool.name}: {description}",
                    mentions=[m for m in mentions if m],
                    reversible=False,
                )
            )

    def _key(self, tool: ToolHandle) -> str:
        return f"{tool.category}\0{tool.name}"

    def _remember(self, tool: ToolHandle, result: Any) -> None:
        with self._lock:
            self._results[self._key(tool)] = result

    def _stale(self, p: _Pending, tool: ToolHandle, result: Any) -> Any:
        """The result of the latest earlier call of the same tool and category in place of
        this one's; with none yet, this call's own (the fault waits for the next call)."""
        with self._lock:
            key = self._key(tool)
            if key not in self._results:
                self._results[key] = result
                p.armed_at = self.calls + 1
                return result
            stale = self._results[key]
            self._results[key] = result
        self._injected(
            p, "returned the output of an earlier call of the same tool (stale)", [], tool
        )
        return stale


def _now() -> int | None:
    clock = RUNTIME.clock  # agentsignals.testing's deterministic clock, else the SDK's
    return clock() if clock is not None else None


def _remember_path(paths: list[str], rel: str) -> None:
    if rel in paths:
        paths.remove(rel)
    paths.append(rel)
    if len(paths) > _MAX_REMEMBERED:
        del paths[0]


def attach(plan: FaultPlan, attempt: AttemptHandle, state: AttemptState) -> Injector | None:
    """An injector for this attempt (None when the plan does not apply to it)."""
    try:
        task = attempt._attrs.get(sc.AGENT_SIGNALS_TASK_ID)
        if not plan.applies_to(task if isinstance(task, str) else None, state.index):
            return None
        injector = Injector(plan, attempt, state)
        state.faults = injector
        return injector
    except Exception:
        internal_error("could not attach faults to the attempt")
        return None
