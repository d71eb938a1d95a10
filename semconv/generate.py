"""Generate `agentsignals.semconv` and `docs/semconv.md` from the YAML registry.

The registry in this folder is the single source of truth. Run

    python semconv/generate.py          # rewrite the generated files
    python semconv/generate.py --check  # exit 1 if they are stale (used by the tests)

The registry is validated on every run: names follow the OpenTelemetry naming rules, everything we
define lives under `agent_signals.*`, every `ref` resolves (ours or the vendored GenAI/core
imports), and types, stability and requirement levels use the convention's vocabulary.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY_OUT = ROOT / "src" / "agentsignals" / "semconv.py"
MD_OUT = ROOT / "docs" / "semconv.md"
SIGNALS_OUT = ROOT / "docs" / "signals.md"

OWN_ROOT = "agent_signals."
SCALAR_TYPES = {"string", "int", "double", "boolean"}
ARRAY_TYPES = {f"{t}[]" for t in SCALAR_TYPES}
STABILITY = {"development", "alpha", "beta", "release_candidate", "stable"}
REQUIREMENT_LEVELS = {"required", "recommended", "opt_in", "conditionally_required"}
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class RegistryError(Exception):
    """The registry is invalid; the message says where and why."""


@dataclass
class Attribute:
    key: str
    type: str  # scalar or array type; enums resolve to "string"
    brief: str
    stability: str
    examples: list[Any]
    source: str  # "agent_signals", "gen_ai" (vendored) or "core" (vendored)
    members: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_enum(self) -> bool:
        return bool(self.members)


@dataclass
class SpanDef:
    type: str
    kind: str
    name_note: str
    brief: str
    note: str
    stability: str
    refines: str | None
    attributes: list[tuple[str, str, str]]  # (key, requirement level text, note)


@dataclass
class EventDef:
    name: str
    brief: str
    stability: str
    attributes: list[tuple[str, str, str]]


@dataclass
class Registry:
    manifest: dict[str, Any]
    attributes: dict[str, Attribute]
    spans: list[SpanDef]
    events: list[EventDef]
    # (runner name, pattern) in table order (semconv/model/test_runners.yaml).
    test_runners: list[tuple[str, str]] = field(default_factory=list)
    # The signal reference (semconv/model/signals.yaml): record fields and source formats.
    signals: list[dict[str, Any]] = field(default_factory=list)
    formats: dict[str, dict[str, str]] = field(default_factory=dict)
    # The product-session record's fields (`session_signals` in signals.yaml).
    session_signals: list[dict[str, Any]] = field(default_factory=list)


def _load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: expected a mapping at the top level")
    if data.get("file_format", "definition/2") != "definition/2":
        raise RegistryError(f"{path}: unsupported file_format {data.get('file_format')!r}")
    return data


def _parse_attribute(raw: dict[str, Any], path: Path, source: str) -> Attribute:
    key = raw.get("key")
    where = f"{path.name}: attribute {key!r}"
    if not isinstance(key, str) or not NAME_RE.match(key) or ".." in key:
        raise RegistryError(
            f"{where}: invalid name (lowercase, dot-separated, starts with a letter)"
        )
    if key.startswith("otel."):
        raise RegistryError(f"{where}: the otel.* namespace is reserved")
    if source == "agent_signals" and not key.startswith(OWN_ROOT):
        raise RegistryError(f"{where}: attributes we define must live under {OWN_ROOT}*")
    if source != "agent_signals" and key.startswith(OWN_ROOT):
        raise RegistryError(f"{where}: imports must not define {OWN_ROOT}* names")
    typ = raw.get("type")
    members: list[dict[str, Any]] = []
    if isinstance(typ, dict):
        members = list(typ.get("members") or [])
        if not members:
            raise RegistryError(f"{where}: enum without members")
        for m in members:
            if not isinstance(m.get("value"), str) or not m.get("brief"):
                raise RegistryError(f"{where}: enum member {m!r} needs a string value and a brief")
        typ = "string"
    if typ not in SCALAR_TYPES | ARRAY_TYPES:
        raise RegistryError(f"{where}: unknown type {typ!r}")
    stability = raw.get("stability")
    if stability not in STABILITY:
        raise RegistryError(f"{where}: unknown stability {stability!r}")
    brief = " ".join(str(raw.get("brief") or "").split())
    if not brief:
        raise RegistryError(f"{where}: missing brief")
    examples = raw.get("examples")
    if not isinstance(examples, list) or not examples:
        raise RegistryError(f"{where}: missing examples")
    return Attribute(key, typ, brief, stability, examples, source, members)


def _requirement_text(level: Any, where: str) -> str:
    if isinstance(level, str):
        if level not in REQUIREMENT_LEVELS - {"conditionally_required"}:
            raise RegistryError(f"{where}: unknown requirement level {level!r}")
        return level
    if isinstance(level, dict) and len(level) == 1:
        (name, cond), *_ = level.items()
        if name not in {"conditionally_required", "recommended"}:
            raise RegistryError(f"{where}: unknown requirement level {name!r}")
        return f"{name}: {cond}"
    raise RegistryError(f"{where}: bad requirement level {level!r}")


def _parse_refs(raws: list[dict[str, Any]], where: str) -> list[tuple[str, str, str]]:
    refs = []
    for r in raws or []:
        key = r.get("ref")
        if not isinstance(key, str):
            raise RegistryError(f"{where}: attribute entry without ref: {r!r}")
        level = _requirement_text(r.get("requirement_level"), f"{where} ref {key}")
        refs.append((key, level, " ".join(str(r.get("note") or "").split())))
    return refs


def load_registry(root: Path = HERE) -> Registry:
    manifest = _load_yaml(root / "manifest.yaml")
    schema_url = manifest.get("schema_url", "")
    version = str(manifest.get("semconv_version", ""))
    if not version or not schema_url.endswith("/" + version):
        raise RegistryError("manifest.yaml: schema_url must end with the semconv_version segment")

    attributes: dict[str, Attribute] = {}
    events: list[EventDef] = []
    spans: list[SpanDef] = []
    sources = [(p, "agent_signals") for p in sorted((root / "model").glob("*.yaml"))]
    sources += [
        (root / "imports" / "gen_ai.yaml", "gen_ai"),
        (root / "imports" / "core.yaml", "core"),
    ]
    test_runners: list[tuple[str, str]] = []
    signals: list[dict[str, Any]] = []
    session_signals: list[dict[str, Any]] = []
    formats: dict[str, dict[str, str]] = {}
    for path, source in sources:
        data = _load_yaml(path)
        formats.update(data.get("formats") or {})
        for raw in data.get("signals") or []:
            missing = {"name", "type", "definition", "null_when"} - set(raw)
            if missing:
                raise RegistryError(f"{path.name}: signal {raw.get('name')!r} lacks {missing}")
            unknown = set(raw.get("sources") or {}) - set(formats)
            if unknown:
                raise RegistryError(
                    f"{path.name}: signal {raw['name']!r}: unknown formats {unknown}"
                )
            signals.append(raw)
        for raw in data.get("session_signals") or []:
            missing = {"name", "type", "definition", "null_when"} - set(raw)
            if missing:
                raise RegistryError(
                    f"{path.name}: session signal {raw.get('name')!r} lacks {missing}"
                )
            session_signals.append(raw)
        for raw in data.get("test_runners") or []:
            name, patterns = raw.get("name"), raw.get("patterns")
            if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_.-]*", name):
                raise RegistryError(f"{path.name}: test runner name {name!r}: not a lower-case id")
            if not isinstance(patterns, list) or not patterns:
                raise RegistryError(f"{path.name}: test runner {name!r} has no patterns")
            for pattern in patterns:
                if not isinstance(pattern, str) or not pattern.split() or '"' in pattern:
                    raise RegistryError(f"{path.name}: runner {name!r}: bad pattern {pattern!r}")
                test_runners.append((name, " ".join(pattern.split())))
        for raw in data.get("attributes") or []:
            attr = _parse_attribute(raw, path, source)
            if attr.key in attributes:
                raise RegistryError(f"{path.name}: attribute {attr.key!r} defined twice")
            attributes[attr.key] = attr
        for raw in data.get("spans") or []:
            where = f"{path.name}: span {raw.get('type')!r}"
            if raw.get("stability") not in STABILITY:
                raise RegistryError(f"{where}: unknown stability")
            spans.append(
                SpanDef(
                    type=raw["type"],
                    kind=raw["kind"],
                    name_note=raw["name"]["note"],
                    brief=" ".join(str(raw.get("brief", "")).split()),
                    note=" ".join(str(raw.get("note", "")).split()),
                    stability=raw["stability"],
                    refines=raw.get("refines"),
                    attributes=_parse_refs(raw.get("attributes"), where),
                )
            )
        for raw in data.get("events") or []:
            where = f"{path.name}: event {raw.get('name')!r}"
            if raw.get("reuse"):
                continue  # documented where it is defined (an import)
            events.append(
                EventDef(
                    name=raw["name"],
                    brief=" ".join(str(raw.get("brief", "")).split()),
                    stability=raw["stability"],
                    attributes=_parse_refs(raw.get("attributes"), where),
                )
            )
    for group in [*spans, *events]:
        label = getattr(group, "type", None) or getattr(group, "name", "")
        for key, _, _ in group.attributes:
            if key not in attributes:
                raise RegistryError(
                    f"{label}: ref {key!r} is not defined in the registry or imports"
                )
    return Registry(
        manifest, attributes, spans, events, test_runners, signals, formats, session_signals
    )


# ----------------------------------------------------------------------------- rendering


def _const_name(key: str) -> str:
    return key.upper().replace(".", "_")


def _enum_class_name(key: str) -> str:
    stem = key[len(OWN_ROOT) :] if key.startswith(OWN_ROOT) else key
    return "".join(part.capitalize() for part in re.split(r"[._]", stem))


def _member_name(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", value).upper()


def render_python(reg: Registry) -> str:
    out = [
        '"""Semantic-convention constants for agentsignals.',
        "",
        "GENERATED from semconv/*.yaml by semconv/generate.py: do not edit by hand.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from enum import StrEnum",
        "from typing import Final",
        "",
        f'SCHEMA_URL: Final = "{reg.manifest["schema_url"]}"',
        '"""Schema URL of this version of the agentsignals convention."""',
        "",
        "# ---- attributes",
    ]
    for key in sorted(reg.attributes):
        attr = reg.attributes[key]
        line = f'{_const_name(key)}: Final = "{key}"'
        # Emit what `ruff format` would, so the generated file stays format-clean.
        out.append(line if len(line) <= 100 else f'{_const_name(key)}: Final = (\n    "{key}"\n)')
        out += _docstring(attr.brief, indent="")
        out.append("")
    out.append("# ---- enums")
    for key in sorted(reg.attributes):
        attr = reg.attributes[key]
        if not attr.is_enum:
            continue
        out += [
            "",
            "",
            f"class {_enum_class_name(key)}(StrEnum):",
            f'    """Values of `{key}`."""',
            "",
        ]
        for m in attr.members:
            out.append(f'    {_member_name(m["value"])} = "{m["value"]}"')
            out += _docstring(str(m["brief"]), indent="    ")
    out += ["", "", "# ---- span types and events", ""]
    for span in reg.spans:
        out.append(f'SPAN_{_const_name(span.type.removeprefix(OWN_ROOT))}: Final = "{span.type}"')
    for event in reg.events:
        out.append(f'EVENT_{_const_name(event.name)}: Final = "{event.name}"')
    out += [
        "",
        "ATTRIBUTE_TYPES: Final[dict[str, str]] = {",
        *[f'    "{k}": "{reg.attributes[k].type}",' for k in sorted(reg.attributes)],
        "}",
        '"""Declared type of every attribute in the registry (ours and the referenced ones)."""',
        "",
        "ENUM_VALUES: Final[dict[str, frozenset[str]]] = {",
        *[
            f'    "{k}": frozenset(\n        [\n'
            + "".join(
                f'            "{v}",\n'
                for v in sorted(m["value"] for m in reg.attributes[k].members)
            )
            + "        ]\n    ),"
            for k in sorted(reg.attributes)
            if reg.attributes[k].is_enum
        ],
        "}",
        '"""Allowed values of every enum attribute (open enums of GenAI included as declared)."""',
        "",
        "TEST_RUNNER_PATTERNS: Final[tuple[tuple[str, str], ...]] = (",
        *[f'    ("{name}", "{pattern}"),' for name, pattern in reg.test_runners],
        ")",
        '"""(runner name, command pattern) of the test-runner table, in order."""',
        "",
    ]
    return "\n".join(out)


def _docstring(text: str, indent: str) -> list[str]:
    text = " ".join(text.replace('"""', "").split())
    if len(indent) + len(text) + 6 <= 100:
        return [f'{indent}"""{text}"""']
    lines = textwrap.wrap(text, width=100 - len(indent))
    return [f'{indent}"""', *(indent + line for line in lines), f'{indent}"""']


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _md_value(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_md_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    return f"`{v}`" if not isinstance(v, str) or "`" not in v else str(v)


def render_markdown(reg: Registry) -> str:
    m = reg.manifest
    out = [
        "# agentsignals semantic convention",
        "",
        "<!-- GENERATED from semconv/*.yaml by semconv/generate.py: do not edit by hand. -->",
        "",
        f"Schema URL: `{m['schema_url']}` · stability: {m.get('stability', 'development')}",
        "",
        " ".join(str(m.get("description", "")).split()),
        "",
        "Depends on (referenced names are vendored in `semconv/imports/` so the registry "
        "resolves offline):",
        "",
    ]
    for dep in m.get("dependencies") or []:
        out.append(f"- {dep['name']}: `{dep['schema_url']}`")
    out += ["", "## Spans", ""]
    for span in reg.spans:
        out += [f"### `{span.type}`", ""]
        out.append(f"Kind: `{span.kind}` · stability: {span.stability}")
        if span.refines:
            out.append(f" · refines `{span.refines}`")
        out += ["", span.brief, "", span.name_note, ""]
        if span.note:
            out += [span.note, ""]
        out += _md_attr_table(reg, span.attributes)
    out += ["## Events", ""]
    for event in reg.events:
        out += [f"### `{event.name}`", "", f"Stability: {event.stability}", "", event.brief, ""]
        out += _md_attr_table(reg, event.attributes)
    out += [
        "Reused events: `gen_ai.evaluation.result` (verifier outcomes, parented to the evaluated "
        "attempt or trial span) and the SDK's `exception` event.",
        "",
        "## Enums",
        "",
    ]
    for key in sorted(reg.attributes):
        attr = reg.attributes[key]
        if not attr.is_enum:
            continue
        out += [f"### `{key}`", "", "| value | description |", "|---|---|"]
        out += [f"| `{mm['value']}` | {_md_escape(str(mm['brief']))} |" for mm in attr.members]
        out.append("")
    out += [
        "## Test runners",
        "",
        "A shell command matching one of these patterns is a test run (`agent_signals.tool."
        "category` = `test`, `agent_signals.test.runner` = the name), live and imported alike. "
        "After the program, the pattern's words must follow in order; options in between are "
        "skipped, `...` stands for any words, `python` matches any Python interpreter, and "
        "wrappers (`timeout 60`, `env X=1`, `uv run`) are looked through. Extend the table with "
        '`AGENTSIGNALS_TEST_RUNNERS="name=pattern;name=pattern"` (tried first).',
        "",
        "| runner | patterns |",
        "|---|---|",
    ]
    runners: dict[str, list[str]] = {}
    for name, pattern in reg.test_runners:
        runners.setdefault(name, []).append(pattern)
    out += [
        f"| `{name}` | {', '.join(f'`{_md_escape(p)}`' for p in patterns)} |"
        for name, patterns in runners.items()
    ]
    out += [
        "",
        "## Attribute registry",
        "",
        "| key | type | stability | source | description | examples |",
    ]
    out.append("|---|---|---|---|---|---|")
    for key in sorted(reg.attributes):
        a = reg.attributes[key]
        typ = "enum" if a.is_enum else a.type
        ex = ", ".join(_md_value(e) for e in a.examples)
        out.append(
            f"| `{key}` | {typ} | {a.stability} | {a.source} "
            f"| {_md_escape(a.brief)} | {_md_escape(ex)} |"
        )
    out.append("")
    return "\n".join(out)


def _md_attr_table(reg: Registry, refs: list[tuple[str, str, str]]) -> list[str]:
    if not refs:
        return []
    rows = ["| attribute | type | requirement | description |", "|---|---|---|---|"]
    for key, level, note in refs:
        a = reg.attributes[key]
        typ = "enum" if a.is_enum else a.type
        desc = a.brief + (f" {note}" if note else "")
        rows.append(f"| `{key}` | {typ} | {_md_escape(level)} | {_md_escape(desc)} |")
    return [*rows, ""]


def render_signals(reg: Registry) -> str:
    """docs/signals.md: every record field, its definition, source per format, when null."""
    out = [
        "# Signal reference",
        "",
        "<!-- GENERATED from semconv/model/signals.yaml by semconv/generate.py: do not edit. -->",
        "",
        "Every field of the attempt record (`agentsignals features`, `agentsignals verify`): "
        "what it means, where it comes from, and when it is null. A signal whose inputs were "
        "not recorded is null, never a guess. **Bold** names are the signal inventory's, with "
        "its definition. Fields are grouped as in the record (`behavior.turn_count`).",
        "",
        "## Sources",
        "",
        "What each source records; a signal's own notes below say where it differs.",
        "",
        "| source | times | usage | files named | edits | reasoning |",
        "|---|---|---|---|---|---|",
    ]
    for key, f in reg.formats.items():
        cells = [f.get(k, "") for k in ("times", "usage", "files", "edits", "reasoning")]
        out.append(
            f"| `{key}`: {_md_escape(f.get('name', key))} | "
            + " | ".join(_md_escape(c) for c in cells)
            + " |"
        )
    _signal_tables(out, reg.signals)
    out += [
        "",
        "# Product sessions",
        "",
        "The session record (`agentsignals features --sessions`, `sessions.jsonl`, the ClickHouse "
        "table `agentsignals_sessions`): one per interactive session a person steered (Claude "
        'Code, pi, Codex, or a live `attempt(context="product")`), beside its attempt record. '
        "Eval runs have none, and it holds no verifier signal. See [sessions.md](sessions.md).",
    ]
    _signal_tables(out, reg.session_signals)
    out.append("")
    return "\n".join(out)


def _signal_tables(out: list[str], signals: list[dict[str, Any]]) -> None:
    group: str | None = None
    for sig in signals:
        name = str(sig["name"])
        head = name.split(".", 1)[0] if "." in name else "identity"
        if head != group:
            group = head
            out += ["", f"## {group}", "", "| signal | type | definition | null when |"]
            out.append("|---|---|---|---|")
        label = f"**`{name}`**" if sig.get("inventory") else f"`{name}`"
        definition = _md_escape(" ".join(str(sig["definition"]).split()))
        sources = sig.get("sources") or {}
        if sources:
            definition += "<br>" + "<br>".join(
                f"*{k}*: {_md_escape(str(v))}" for k, v in sources.items()
            )
        out.append(
            f"| {label} | {_md_escape(str(sig['type']))} | {definition} "
            f"| {_md_escape(str(sig['null_when']))} |"
        )


def generated_files(root: Path = HERE) -> dict[Path, str]:
    reg = load_registry(root)
    return {
        PY_OUT: render_python(reg),
        MD_OUT: render_markdown(reg),
        SIGNALS_OUT: render_signals(reg),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if generated files are stale")
    args = parser.parse_args(argv)
    try:
        files = generated_files()
    except RegistryError as exc:
        print(f"semconv registry invalid: {exc}", file=sys.stderr)
        return 2
    stale = [
        p for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text
    ]
    if args.check:
        for p in stale:
            print(f"stale: {p.relative_to(ROOT)} (run python semconv/generate.py)", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(files[p], encoding="utf-8")
        print(f"wrote {p.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
