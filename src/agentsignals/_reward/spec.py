"""Reward specs: the outcome values, the shaping components (rule, weight), the shaping cap and
the credit assignment, versioned. A spec's name, version and content hash are written into
every reward record, so a number can always be traced to the rules that made it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["RULES", "Component", "RewardSpec", "SpecError", "builtin_spec", "load_spec"]

RULES = (
    "judge_flag",
    "record_flag",
    "unvalidated_submit",
    "regression",
    "validation",
    "fixed_failing_test",
)
"""What a component measures:

* ``judge_flag`` (``rubric``): ``judge.<rubric>.match`` is true (status ok); placed at the
  turn of the first step the judge cited, else the last turn.
* ``record_flag`` (``field``, ``equals``): a record field (dotted, e.g. ``behavior.stuck_loop``)
  equals the value; placed at the last turn.
* ``unvalidated_submit``: the attempt submitted and ``behavior.validated_after_last_edit`` is
  false; at the last turn.
* ``regression``: a test that passed in one of the agent's test runs fails in a later one; at
  the turn of the last edit before the run that showed it (else that run's turn).
* ``validation``: a test run (at least ``min_tests`` tests executed, when the output was parsed)
  after the agent's last edit; at that run's turn.
* ``fixed_failing_test``: a test failing in a run before the agent's first edit passes in a
  later run (named among its passed tests, or the later run is complete, all green, and ran
  at least as many tests as the runs before the edit); at the turn of the last edit before
  that run.

Test names come from runs whose output names them (``pytest -v``/``-rA``, unittest ``-v``);
``regression`` needs the names of passed tests, so ``pytest -q`` runs cannot show one.

Each fires at most once per attempt, with its ``value``.
"""


class SpecError(ValueError):
    """A reward spec that cannot be used (one line naming the problem)."""


@dataclass(frozen=True)
class Component:
    name: str
    rule: str
    value: float
    rubric: str | None = None
    field: str | None = None
    equals: Any = True
    min_tests: int = 1
    gameable: str = ""


@dataclass(frozen=True)
class RewardSpec:
    name: str
    version: str
    resolved: float = 1.0
    failed: float = 0.0
    unverified: str = "skip"
    max_total: float = 0.2
    first_wrong_step: bool = True
    discount: float = 1.0
    components: tuple[Component, ...] = ()
    sha256: str = field(default="", compare=False)

    def header(self) -> dict[str, str]:
        """What every record carries about its spec."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256}


_TOP = {"name", "version", "outcome", "shaping", "credit", "components"}
_COMPONENT = {"name", "rule", "value", "rubric", "field", "equals", "min_tests", "gameable"}


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{where} must be a number")
    return float(value)


def parse_spec(data: Any, source: str = "spec") -> RewardSpec:
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a reward spec is a mapping")
    unknown = set(data) - _TOP
    if unknown:
        raise SpecError(f"{source}: unknown keys {sorted(unknown)}")
    name, version = data.get("name"), data.get("version")
    if not isinstance(name, str) or not name:
        raise SpecError(f"{source}: `name` is required")
    if not isinstance(version, str | int) or isinstance(version, bool) or version == "":
        raise SpecError(f"{source}: `version` is required (a string)")
    outcome = data.get("outcome") or {}
    shaping = data.get("shaping") or {}
    credit = data.get("credit") or {}
    for part, label in ((outcome, "outcome"), (shaping, "shaping"), (credit, "credit")):
        if not isinstance(part, dict):
            raise SpecError(f"{source}: `{label}` must be a mapping")
    unverified = outcome.get("unverified", "skip")
    if unverified not in ("skip", "zero"):
        raise SpecError(f"{source}: outcome.unverified must be skip or zero")
    max_total = _number(shaping.get("max_total", 0.2), f"{source}: shaping.max_total")
    if max_total < 0:
        raise SpecError(f"{source}: shaping.max_total must be >= 0")
    discount = _number(credit.get("discount", 1.0), f"{source}: credit.discount")
    if not 0 < discount <= 1:
        raise SpecError(f"{source}: credit.discount must be in (0, 1]")
    raw_components = data.get("components") or []
    if not isinstance(raw_components, list):
        raise SpecError(f"{source}: `components` must be a list")
    components: list[Component] = []
    names: set[str] = set()
    for i, raw in enumerate(raw_components):
        where = f"{source}: components[{i}]"
        if not isinstance(raw, dict):
            raise SpecError(f"{where} is not a mapping")
        extra = set(raw) - _COMPONENT
        if extra:
            raise SpecError(f"{where}: unknown keys {sorted(extra)}")
        cname, rule = raw.get("name"), raw.get("rule")
        if not isinstance(cname, str) or not cname.isidentifier():
            raise SpecError(f"{where}: `name` must be an identifier")
        if cname in names or cname == "outcome":
            raise SpecError(f"{where}: the name {cname!r} is taken")
        names.add(cname)
        if rule not in RULES:
            raise SpecError(f"{where}: unknown rule {rule!r} (one of: {', '.join(RULES)})")
        if rule == "judge_flag" and not isinstance(raw.get("rubric"), str):
            raise SpecError(f"{where}: rule judge_flag needs `rubric`")
        if rule == "record_flag" and not isinstance(raw.get("field"), str):
            raise SpecError(f"{where}: rule record_flag needs `field`")
        min_tests = raw.get("min_tests", 1)
        if not isinstance(min_tests, int) or isinstance(min_tests, bool) or min_tests < 0:
            raise SpecError(f"{where}: min_tests must be an integer >= 0")
        components.append(
            Component(
                name=cname,
                rule=rule,
                value=_number(raw.get("value"), f"{where}: value"),
                rubric=raw.get("rubric"),
                field=raw.get("field"),
                equals=raw.get("equals", True),
                min_tests=min_tests,
                gameable=" ".join(str(raw.get("gameable") or "").split()),
            )
        )
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return RewardSpec(
        name=name,
        version=str(version),
        resolved=_number(outcome.get("resolved", 1.0), f"{source}: outcome.resolved"),
        failed=_number(outcome.get("failed", 0.0), f"{source}: outcome.failed"),
        unverified=unverified,
        max_total=max_total,
        first_wrong_step=bool(credit.get("first_wrong_step", True)),
        discount=discount,
        components=tuple(components),
        sha256=hashlib.sha256(canonical.encode()).hexdigest(),
    )


def _yaml(text: str, source: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise SpecError(
            f"{source}: reading a YAML spec needs PyYAML (pip install 'agentsignals[judge]')"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise SpecError(f"{source}: not YAML{line}") from None


def builtin_text() -> str:
    return resources.files("agentsignals._reward").joinpath("specs/builtin.yaml").read_text()


def builtin_spec() -> RewardSpec:
    return parse_spec(_yaml(builtin_text(), "builtin"), "builtin")


def load_spec(spec: str | Path | None) -> RewardSpec:
    """``builtin`` (or None), or a YAML/JSON file."""
    if spec is None or str(spec) == "builtin":
        return builtin_spec()
    path = Path(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the reward spec ({exc.strerror or exc})") from None
    if path.suffix == ".json":
        try:
            return parse_spec(json.loads(text), str(path))
        except json.JSONDecodeError as exc:
            raise SpecError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    return parse_spec(_yaml(text, str(path)), str(path))
