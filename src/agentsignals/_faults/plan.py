"""Fault plans: which faults to inject into which attempts, and when.

A plan is data (YAML or JSON, or built in Python); every problem in it is one clear line
(:class:`PlanError`), found when the plan is loaded, never in the middle of a run.

.. code-block:: yaml

    version: 1
    tasks: ["django__*"]          # optional: task-id globs of the trials to break
    attempts: [0]                 # optional: attempt indexes to break (default: all)
    faults:
      - id: cut-after-edit        # optional (f0, f1, ... in plan order)
        kind: truncate_file
        trigger: after_first_edit # after_step (with step: N) | after_first_edit
                                  # | after_first_passing_test | random (with seed:, max_step:)
      - kind: tool_error
        trigger: after_step
        step: 3
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentsignals import semconv as sc

__all__ = [
    "KINDS",
    "TOOL_KINDS",
    "TRIGGERS",
    "WORKSPACE_KINDS",
    "Fault",
    "FaultPlan",
    "PlanError",
    "load_plan",
    "parse_plan",
]

KINDS = tuple(k.value for k in sc.FaultKind)
TRIGGERS = tuple(t.value for t in sc.FaultTrigger)
TOOL_KINDS = frozenset(
    {
        sc.FaultKind.TOOL_ERROR.value,
        sc.FaultKind.TOOL_TIMEOUT.value,
        sc.FaultKind.STALE_OUTPUT.value,
    }
)
WORKSPACE_KINDS = frozenset(KINDS) - TOOL_KINDS
PLAN_VERSION = 1

# Realistic defaults: what a real tool says when this happens (no word of injection: the agent
# must notice from the evidence, as it would in real life).
DEFAULT_ERROR = "bash: fork: retry: Resource temporarily unavailable"


class PlanError(ValueError):
    """A fault plan that cannot be used; the message is one line naming the problem."""


@dataclass(frozen=True)
class Fault:
    """One fault: what breaks (``kind``), when (``trigger``), and optional details.

    * ``step``: for ``after_step``, fire after the agent's N-th tool call (N >= 1).
    * ``seed``, ``max_step``: for ``random``, N is drawn in 1..max_step from the seed and the
      task id (the same task breaks at the same point on every run).
    * ``path``: the file to corrupt, truncate or revert (default: the one the kind picks).
    * ``message``: the text of a tool error or timeout.
    * ``module``: for ``break_dependency``, the module whose import must fail.
    """

    kind: str
    trigger: str = sc.FaultTrigger.AFTER_FIRST_EDIT.value
    step: int | None = None
    seed: int = 0
    max_step: int = 10
    id: str | None = None
    path: str | None = None
    message: str | None = None
    module: str | None = None

    def __post_init__(self) -> None:
        where = f"fault {self.id or self.kind!r}"
        if self.kind not in KINDS:
            raise PlanError(f"{where}: unknown kind {self.kind!r} (one of: {', '.join(KINDS)})")
        if self.trigger not in TRIGGERS:
            raise PlanError(
                f"{where}: unknown trigger {self.trigger!r} (one of: {', '.join(TRIGGERS)})"
            )
        if self.trigger == sc.FaultTrigger.AFTER_STEP.value:
            if not isinstance(self.step, int) or isinstance(self.step, bool) or self.step < 1:
                raise PlanError(f"{where}: trigger after_step needs step: N (an integer >= 1)")
        elif self.step is not None:
            raise PlanError(f"{where}: step is only for trigger after_step")
        if not isinstance(self.max_step, int) or self.max_step < 1:
            raise PlanError(f"{where}: max_step must be an integer >= 1")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise PlanError(f"{where}: seed must be an integer")
        if self.module is not None and self.kind != sc.FaultKind.BREAK_DEPENDENCY.value:
            raise PlanError(f"{where}: module is only for kind break_dependency")
        if self.path is not None and self.kind in TOOL_KINDS:
            raise PlanError(f"{where}: path is not for tool faults")

    @property
    def is_tool_fault(self) -> bool:
        return self.kind in TOOL_KINDS

    def random_step(self, task_id: str | None) -> int:
        """The call after which a ``random`` fault fires, for this task (1..max_step)."""
        key = f"{self.seed}:{task_id or ''}:{self.id or self.kind}".encode()
        return 1 + int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % self.max_step


@dataclass(frozen=True)
class FaultPlan:
    """Faults and the attempts they apply to (every attempt when no filter is given)."""

    faults: tuple[Fault, ...]
    tasks: tuple[str, ...] = ()
    attempts: tuple[int, ...] = ()
    source: str = field(default="", compare=False)

    def applies_to(self, task_id: str | None, attempt_index: int | None) -> bool:
        if self.tasks and not any(fnmatch.fnmatchcase(task_id or "", p) for p in self.tasks):
            return False
        return not (self.attempts and attempt_index not in self.attempts)

    def with_ids(self) -> FaultPlan:
        """The same plan with every fault named (``f<N>`` in plan order when not given)."""
        named = []
        seen: set[str] = set()
        for i, f in enumerate(self.faults):
            fid = f.id or f"f{i}"
            if fid in seen:
                raise PlanError(f"fault id {fid!r} is used twice")
            seen.add(fid)
            named.append(f if f.id else _replace(f, id=fid))
        return FaultPlan(tuple(named), self.tasks, self.attempts, self.source)


def _replace(f: Fault, **changes: Any) -> Fault:
    from dataclasses import replace

    return replace(f, **changes)


_FAULT_KEYS = {"kind", "trigger", "step", "seed", "max_step", "id", "path", "message", "module"}
_PLAN_KEYS = {"version", "faults", "tasks", "attempts"}


def parse_plan(data: Any, source: str = "plan") -> FaultPlan:
    """A plan from its parsed form: a mapping as above, a list of faults, or one fault."""
    if isinstance(data, Mapping) and "faults" not in data and "kind" in data:
        data = {"faults": [data]}
    elif isinstance(data, Sequence) and not isinstance(data, str | bytes):
        data = {"faults": list(data)}
    if not isinstance(data, Mapping):
        raise PlanError(f"{source}: a fault plan is a mapping with a `faults` list")
    unknown = set(data) - _PLAN_KEYS
    if unknown:
        raise PlanError(f"{source}: unknown plan keys {sorted(unknown)}")
    version = data.get("version", PLAN_VERSION)
    if version != PLAN_VERSION:
        raise PlanError(f"{source}: plan version {version!r} is not supported (use {PLAN_VERSION})")
    raw_faults = data.get("faults")
    if not isinstance(raw_faults, list) or not raw_faults:
        raise PlanError(f"{source}: `faults` must be a non-empty list")
    faults: list[Fault] = []
    for i, raw in enumerate(raw_faults):
        if not isinstance(raw, Mapping):
            raise PlanError(f"{source}: faults[{i}] is not a mapping")
        extra = set(raw) - _FAULT_KEYS
        if extra:
            raise PlanError(f"{source}: faults[{i}]: unknown keys {sorted(extra)}")
        if "kind" not in raw:
            raise PlanError(f"{source}: faults[{i}] has no kind")
        try:
            faults.append(Fault(**{str(k): v for k, v in raw.items()}))
        except PlanError as exc:
            raise PlanError(f"{source}: faults[{i}]: {exc}") from None
        except TypeError as exc:
            raise PlanError(f"{source}: faults[{i}]: {exc}") from None
    tasks = data.get("tasks") or ()
    if isinstance(tasks, str):
        tasks = (tasks,)
    if not all(isinstance(t, str) for t in tasks):
        raise PlanError(f"{source}: `tasks` must be a list of task-id globs")
    attempts = data.get("attempts") or ()
    if isinstance(attempts, int):
        attempts = (attempts,)
    if not all(isinstance(a, int) and not isinstance(a, bool) and a >= 0 for a in attempts):
        raise PlanError(f"{source}: `attempts` must be a list of attempt indexes (>= 0)")
    return FaultPlan(tuple(faults), tuple(tasks), tuple(attempts), source).with_ids()


def load_plan(spec: str | Path) -> FaultPlan:
    """A plan from a YAML or JSON file, or from inline JSON text (starting with ``{`` or ``[``)."""
    text = str(spec).strip()
    if text.startswith(("{", "[")):
        try:
            return parse_plan(json.loads(text), "inline plan")
        except json.JSONDecodeError as exc:
            raise PlanError(f"inline plan: not JSON ({exc.msg} at {exc.pos})") from None
    path = Path(spec)
    try:
        body = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"{path}: cannot read the fault plan ({exc.strerror or exc})") from None
    if path.suffix == ".json":
        try:
            return parse_plan(json.loads(body), str(path))
        except json.JSONDecodeError as exc:
            raise PlanError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    try:
        import yaml
    except ImportError:
        raise PlanError(
            f"{path}: YAML plans need PyYAML (pip install 'agentsignals[collect]'), "
            "or write the plan as JSON"
        ) from None
    try:
        data = yaml.safe_load(body)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise PlanError(f"{path}: not YAML{line}") from None
    return parse_plan(data, str(path))
