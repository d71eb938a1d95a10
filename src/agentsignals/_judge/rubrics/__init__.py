"""Rubrics: a decision procedure in prose, one or two examples, and an output schema.

A rubric is a YAML file (the built-ins sit beside this module; users add their own without
code)::

    id: memory_drift              # the record field is judge.<id>.<field>
    version: "1"                  # part of the cache key: change it when the text changes
    title: Memory drift
    summary: Forgets earlier constraints or facts from the issue or tests.
    applies_to: all               # all | failed | resolved (needs the outcome to select)
                                  # | faulted (attempts with an injected fault)
    sees_outcome: false           # true only if the rubric must read the verifier's outcome
    sees_fault: false             # true: the prompt says which fault was injected, and where
    procedure: |
      ... the decision procedure, step by step ...
    examples:
      - situation: "[S4] ... [S5] ..."
        answer: {explanation: "... [S5] ...", match: true}
    fields:
      match: {type: boolean, description: "...", reduce: any}

Field types: ``boolean``, ``enum`` (``values``), ``integer`` / ``number`` (``minimum``,
``maximum``), ``string`` (``max_length``) and ``list`` (of ``values`` or strings,
``max_items``). Every answer also has an ``explanation`` (asked first: the reason before the
verdict) that cites steps as ``[S12]``.

Reducers combine the answers of the chunks of a long transcript: ``any`` (default for
booleans), ``all``, ``majority`` (enums), ``max`` / ``min`` (numbers), ``first`` / ``last``,
``union`` (lists) and ``join`` (strings).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

__all__ = [
    "BUILTIN_RUBRICS",
    "FAULT_RUBRIC",
    "FIELD_TYPES",
    "REDUCERS",
    "OutputField",
    "Rubric",
    "RubricError",
    "builtin_rubric_ids",
    "load_rubric",
    "resolve_rubrics",
]

FIELD_TYPES: Final = ("boolean", "enum", "integer", "number", "string", "list")
REDUCERS: Final = ("any", "all", "majority", "max", "min", "first", "last", "union", "join")
_DEFAULT_REDUCER: Final = {
    "boolean": "any",
    "enum": "majority",
    "integer": "max",
    "number": "max",
    "string": "join",
    "list": "union",
}
APPLIES_TO: Final = ("all", "failed", "resolved", "faulted")
BUILTIN_RUBRICS: Final = (
    "memory_drift",
    "overconfidence",
    "strange_behaviors",
    "self_correction",
    "validation",
    "planning",
)
"""The write-up's six behaviours; ``failure_summary`` (for clustering) and ``noticed_fault``
(recovery evals) are built in as well."""
FAULT_RUBRIC: Final = "noticed_fault"
"""Did the agent notice the fault injected into it (judged only on attempts with one)? Part of
``builtin``: it costs nothing on attempts without a fault."""

DEFAULT_EXPLANATION_CHARS: Final = 600
RESERVED_FIELDS: Final = frozenset({"explanation"})


class RubricError(ValueError):
    """A rubric file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class OutputField:
    """One output field of a rubric."""

    name: str
    type: str
    description: str = ""
    values: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    max_items: int | None = None
    reduce: str = ""  # empty: the type's default (any, majority, max, join, union)

    @property
    def reducer(self) -> str:
        return self.reduce or _DEFAULT_REDUCER[self.type]

    def json_schema(self) -> dict[str, Any]:
        if self.type == "boolean":
            return {"type": "boolean"}
        if self.type == "enum":
            return {"type": "string", "enum": list(self.values)}
        if self.type in ("integer", "number"):
            out: dict[str, Any] = {"type": self.type}
            if self.minimum is not None:
                out["minimum"] = self.minimum
            if self.maximum is not None:
                out["maximum"] = self.maximum
            return out
        if self.type == "string":
            out = {"type": "string"}
            if self.max_length is not None:
                out["maxLength"] = self.max_length
            return out
        items: dict[str, Any] = (
            {"type": "string", "enum": list(self.values)} if self.values else {"type": "string"}
        )
        out = {"type": "array", "items": items}
        if self.max_items is not None:
            out["maxItems"] = self.max_items
        return out

    def describe(self) -> str:
        """One line for the prompt: the field, its type and what it means."""
        if self.type == "boolean":
            kind = "true or false"
        elif self.type == "enum":
            kind = "one of " + ", ".join(json.dumps(v) for v in self.values)
        elif self.type in ("integer", "number"):
            bounds = []
            if self.minimum is not None:
                bounds.append(f">= {self.minimum:g}")
            if self.maximum is not None:
                bounds.append(f"<= {self.maximum:g}")
            kind = f"{'an integer' if self.type == 'integer' else 'a number'}"
            kind += f" ({', '.join(bounds)})" if bounds else ""
        elif self.type == "string":
            kind = "a string" + (
                f" of at most {self.max_length} characters" if self.max_length else ""
            )
        else:
            kind = "a list of " + (
                "values from " + ", ".join(json.dumps(v) for v in self.values)
                if self.values
                else "strings"
            )
        return f"- {self.name}: {kind}." + (f" {self.description}" if self.description else "")


@dataclass(frozen=True)
class Rubric:
    """A loaded rubric."""

    id: str
    version: str
    title: str
    procedure: str
    fields: tuple[OutputField, ...]
    summary: str = ""
    kind: str = ""
    applies_to: str = "all"
    sees_outcome: bool = False
    sees_fault: bool = False
    examples: tuple[dict[str, Any], ...] = ()
    explanation_chars: int = DEFAULT_EXPLANATION_CHARS
    source: str = ""

    @property
    def key(self) -> str:
        """`id@version`, and a hash of the text so an edit without a version bump still
        changes the cache key."""
        digest = hashlib.sha256(
            json.dumps(
                [self.procedure, [f.__dict__ for f in self.fields], list(self.examples)],
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()[:12]
        return f"{self.id}@{self.version}#{digest}"

    def field(self, name: str) -> OutputField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def json_schema(self) -> dict[str, Any]:
        """The answer's JSON schema: the explanation first, then the fields, all required."""
        properties: dict[str, Any] = {
            "explanation": {"type": "string", "maxLength": self.explanation_chars}
        }
        for f in self.fields:
            properties[f.name] = f.json_schema()
        return {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        }


def _fail(source: str, message: str) -> RubricError:
    return RubricError(f"{source}: {message}")


def _parse_field(name: str, raw: Any, source: str) -> OutputField:
    if not isinstance(raw, dict):
        raise _fail(source, f"field {name!r} must be a mapping with a type")
    kind = raw.get("type")
    if kind not in FIELD_TYPES:
        raise _fail(
            source, f"field {name!r} has type {kind!r}; use one of {', '.join(FIELD_TYPES)}"
        )
    values = raw.get("values") or ()
    if kind == "enum" and not values:
        raise _fail(source, f"enum field {name!r} needs values")
    if values and (
        not isinstance(values, list) or not all(isinstance(v, str | int | float) for v in values)
    ):
        raise _fail(source, f"values of field {name!r} must be a list of strings")
    reduce = raw.get("reduce", _DEFAULT_REDUCER[kind])
    if reduce not in REDUCERS:
        raise _fail(
            source, f"field {name!r} has reduce {reduce!r}; use one of {', '.join(REDUCERS)}"
        )
    if reduce in ("any", "all") and kind != "boolean":
        raise _fail(source, f"reduce {reduce!r} needs a boolean field ({name!r} is {kind})")
    if reduce in ("max", "min") and kind not in ("integer", "number"):
        raise _fail(source, f"reduce {reduce!r} needs a number field ({name!r} is {kind})")
    if reduce == "union" and kind != "list":
        raise _fail(source, f"reduce 'union' needs a list field ({name!r} is {kind})")
    if reduce == "join" and kind != "string":
        raise _fail(source, f"reduce 'join' needs a string field ({name!r} is {kind})")

    def _num(key: str) -> float | None:
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(source, f"{key} of field {name!r} must be a number")
        return float(value)

    def _int(key: str) -> int | None:
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise _fail(source, f"{key} of field {name!r} must be a positive integer")
        return value

    return OutputField(
        name=name,
        type=kind,
        description=" ".join(str(raw.get("description", "")).split()),
        values=tuple(str(v) for v in values),
        minimum=_num("minimum"),
        maximum=_num("maximum"),
        max_length=_int("max_length"),
        max_items=_int("max_items"),
        reduce=reduce,
    )


def parse_rubric(data: Any, source: str) -> Rubric:
    """A rubric from parsed YAML; RubricError (one line, naming `source`) when it is unusable."""
    if not isinstance(data, dict):
        raise _fail(source, "a rubric is a YAML mapping (id, version, title, procedure, fields)")
    for key in ("id", "procedure", "fields"):
        if not data.get(key):
            raise _fail(source, f"missing {key!r}")
    rubric_id = str(data["id"])
    if not rubric_id.replace("_", "").isalnum() or not rubric_id[0].isalpha():
        raise _fail(source, f"id {rubric_id!r} must be a name (letters, digits, underscores)")
    if rubric_id == "first_wrong_step":
        raise _fail(source, "id 'first_wrong_step' is reserved for the attribution pass")
    raw_fields = data["fields"]
    if not isinstance(raw_fields, dict):
        raise _fail(source, "fields must be a mapping of field name to its type")
    fields = []
    for name, raw in raw_fields.items():
        name = str(name)
        if name in RESERVED_FIELDS:
            raise _fail(source, f"field {name!r} is reserved (every answer has an explanation)")
        if not name.replace("_", "").isalnum():
            raise _fail(source, f"field name {name!r} must be letters, digits and underscores")
        fields.append(_parse_field(name, raw, source))
    applies_to = str(data.get("applies_to", "all"))
    if applies_to not in APPLIES_TO:
        raise _fail(source, f"applies_to {applies_to!r}; use one of {', '.join(APPLIES_TO)}")
    examples = data.get("examples") or []
    if not isinstance(examples, list) or not all(
        isinstance(e, dict) and "situation" in e and isinstance(e.get("answer"), dict)
        for e in examples
    ):
        raise _fail(source, "examples must be a list of {situation, answer} mappings")
    for example in examples:
        missing = [f.name for f in fields if f.name not in example["answer"]]
        if missing:
            raise _fail(source, f"an example's answer lacks {', '.join(missing)}")
    explanation_chars = data.get("explanation_chars", DEFAULT_EXPLANATION_CHARS)
    if not isinstance(explanation_chars, int) or explanation_chars < 40:
        raise _fail(source, "explanation_chars must be an integer of at least 40")
    return Rubric(
        id=rubric_id,
        version=str(data.get("version", "1")),
        title=str(data.get("title") or rubric_id.replace("_", " ").capitalize()),
        procedure=str(data["procedure"]).strip(),
        fields=tuple(fields),
        summary=" ".join(str(data.get("summary", "")).split()),
        kind=str(data.get("kind", "")),
        applies_to=applies_to,
        sees_outcome=bool(data.get("sees_outcome", False)),
        sees_fault=bool(data.get("sees_fault", False)),
        examples=tuple(examples),
        explanation_chars=explanation_chars,
        source=source,
    )


def _yaml() -> Any:
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RubricError("rubrics are YAML: pip install 'agentsignals[judge]' (PyYAML)") from exc
    return yaml


def load_rubric(path: str | Path) -> Rubric:
    """A rubric from a YAML file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(source, f"cannot read: {exc.strerror or exc}") from None
    yaml = _yaml()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise _fail(source, f"not valid YAML{line}") from None
    return parse_rubric(data, source)


def builtin_rubric_ids() -> list[str]:
    """Every built-in rubric id (the six behaviours, then failure_summary)."""
    names = sorted(
        p.name[: -len(".yaml")]
        for p in resources.files(__name__).iterdir()
        if p.name.endswith(".yaml")
    )
    return [*BUILTIN_RUBRICS, *(n for n in names if n not in BUILTIN_RUBRICS)]


def builtin_rubric(rubric_id: str) -> Rubric:
    resource = resources.files(__name__) / f"{rubric_id}.yaml"
    if not resource.is_file():
        known = ", ".join(builtin_rubric_ids())
        raise RubricError(f"no built-in rubric {rubric_id!r} (built in: {known})")
    yaml = _yaml()
    data = yaml.safe_load(resource.read_text(encoding="utf-8"))
    return parse_rubric(data, f"built-in {rubric_id}")


def resolve_rubrics(names: list[str]) -> list[Rubric]:
    """Rubrics by built-in id or YAML path; ``builtin`` (or ``all``) means the six behaviours
    and ``noticed_fault`` (which only attempts with an injected fault get). Raises RubricError
    naming the first unusable one; duplicate ids are an error."""
    out: list[Rubric] = []
    for name in names:
        if name in ("builtin", "all"):
            out.extend(builtin_rubric(r) for r in (*BUILTIN_RUBRICS, FAULT_RUBRIC))
        elif name.endswith((".yaml", ".yml")) or "/" in name or Path(name).is_file():
            out.append(load_rubric(name))
        else:
            out.append(builtin_rubric(name))
    seen: set[str] = set()
    for rubric in out:
        if rubric.id in seen:
            raise RubricError(f"rubric {rubric.id!r} is given twice")
        seen.add(rubric.id)
    return out


# ----------------------------------------------------------------------------------- prompt

SYSTEM_PROMPT: Final = (
    "You review transcripts of an autonomous coding agent. Each step is numbered [S0], [S1], "
    "... Follow the decision procedure step by step and judge only what the transcript shows. "
    "Cite the steps your answer rests on as [S12] in the explanation. Reply with one JSON object "
    "and nothing else."
)


@dataclass(frozen=True)
class Prompt:
    """The messages of one judge call."""

    messages: tuple[dict[str, str], ...]
    schema: dict[str, Any]
    schema_name: str
    fields: tuple[OutputField, ...] = field(default=())


def answer_instructions(fields: tuple[OutputField, ...], explanation_chars: int) -> str:
    lines = [
        "Reply with one JSON object with these keys, in this order:",
        f"- explanation: a string of at most {explanation_chars} characters: your reasoning, "
        "citing steps as [S3].",
        *(f.describe() for f in fields),
    ]
    return "\n".join(lines)


def rubric_prompt(rubric: Rubric, transcript_text: str, part: int = 1, parts: int = 1) -> Prompt:
    """The messages for judging one transcript chunk with a rubric."""
    out = [f"# Rubric: {rubric.title}"]
    if rubric.summary:
        out.append(rubric.summary)
    out += ["", "## Decision procedure", rubric.procedure, ""]
    if rubric.examples:
        out.append("## Examples (not from this transcript)")
        for i, example in enumerate(rubric.examples, 1):
            answer = json.dumps(example["answer"], ensure_ascii=False)
            out += [f"Example {i}:", str(example["situation"]).rstrip(), f"Answer: {answer}", ""]
    if parts > 1:
        out += [
            f"The transcript is long: this is part {part} of {parts}. The earlier steps are "
            "summarised one line each; judge what this part shows, and answer for this part "
            "only.",
            "",
        ]
    out += ["# Transcript", transcript_text, "", "# Answer"]
    out.append(answer_instructions(rubric.fields, rubric.explanation_chars))
    return Prompt(
        messages=(
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "\n".join(out)},
        ),
        schema=rubric.json_schema(),
        schema_name=rubric.id,
        fields=rubric.fields,
    )
