"""A tolerant reader of judge answers: JSON inside fences or prose, light repairs, and values
checked against the rubric's fields (with the coercions a small model needs: "yes" for true,
"Match" for "match"). What cannot be read is an error message, never a guessed value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Final

from agentsignals._judge.rubrics import OutputField

__all__ = ["ParseError", "extract_json", "parse_answer"]

_FENCE: Final = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA: Final = re.compile(r",\s*([}\]])")
_TRUE: Final = frozenset({"true", "yes", "y", "match", "1"})
_FALSE: Final = frozenset({"false", "no", "n", "no match", "no_match", "nomatch", "0"})


class ParseError(ValueError):
    """The answer could not be read; the message says why (shown to the model on a re-ask)."""


def _balanced_objects(text: str) -> list[str]:
    """Every top-level {...} in `text` (braces inside strings respected)."""
    out: list[str] = []
    depth = 0
    start = -1
    in_string = False
    escape = False
    for i, ch in enumerate(text):
        if in_string:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = depth > 0
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                out.append(text[start : i + 1])
    if depth > 0 and start >= 0:
        out.append(text[start:])  # cut off at max_tokens: try to close it
    return out


def _repairs(candidate: str) -> list[str]:
    """The candidate, then lightly repaired variants (trailing commas, Python literals,
    single quotes, a missing closing brace)."""
    variants = [candidate]
    fixed = _TRAILING_COMMA.sub(r"\1", candidate)
    fixed = re.sub(r"\bTrue\b", "true", fixed)
    fixed = re.sub(r"\bFalse\b", "false", fixed)
    fixed = re.sub(r"\bNone\b", "null", fixed)
    variants.append(fixed)
    if "'" in fixed and '"' not in fixed:
        variants.append(fixed.replace("'", '"'))
    opened = fixed.count("{") - fixed.count("}")
    if opened > 0:
        closing = fixed
        if closing.count('"') % 2 == 1:
            closing += '"'
        variants.append(_TRAILING_COMMA.sub(r"\1", closing.rstrip().rstrip(",") + "}" * opened))
    return variants


def extract_json(text: str) -> dict[str, Any]:
    """The first JSON object in a model's reply (bare, fenced or inside prose)."""
    stripped = text.strip()
    candidates: list[str] = []
    if stripped.startswith("{"):
        candidates.append(stripped)
    candidates += [m.strip() for m in _FENCE.findall(text)]
    candidates += _balanced_objects(text)
    for candidate in candidates:
        for variant in _repairs(candidate):
            try:
                data = json.loads(variant)
            except (ValueError, TypeError):
                continue
            if isinstance(data, dict):
                return data
    if not stripped:
        raise ParseError("the answer was empty")
    raise ParseError("the answer holds no JSON object")


def _coerce(field: OutputField, value: Any) -> Any:
    kind = field.type
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE:
            return True
        if isinstance(value, str) and value.strip().lower() in _FALSE:
            return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ParseError(f"{field.name} must be true or false, not {json.dumps(value)[:40]}")
    if kind == "enum":
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value).strip()
            for allowed in field.values:
                if text == allowed:
                    return allowed
            folded = text.lower().replace("-", "_").replace(" ", "_")
            for allowed in field.values:
                if folded == allowed.lower().replace("-", "_").replace(" ", "_"):
                    return allowed
        allowed_text = ", ".join(field.values[:12]) + (" ..." if len(field.values) > 12 else "")
        raise ParseError(
            f"{field.name} must be one of {allowed_text}; got {json.dumps(value)[:40]}"
        )
    if kind in ("integer", "number"):
        number: float | None = None
        if isinstance(value, bool):
            number = None
        elif isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if number is None or number != number:
            raise ParseError(f"{field.name} must be a number, not {json.dumps(value)[:40]}")
        if field.minimum is not None and number < field.minimum:
            raise ParseError(f"{field.name} must be >= {field.minimum:g}")
        if field.maximum is not None and number > field.maximum:
            raise ParseError(f"{field.name} must be <= {field.maximum:g}")
        if kind == "integer":
            if not number.is_integer():
                raise ParseError(f"{field.name} must be an integer")
            return int(number)
        return number
    if kind == "string":
        if value is None:
            raise ParseError(f"{field.name} must be a string")
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        text = text.strip()
        if not text:
            raise ParseError(f"{field.name} must not be empty")
        if field.max_length is not None and len(text) > field.max_length:
            text = text[: field.max_length]
        return text
    # list
    items = value if isinstance(value, list) else [value] if isinstance(value, str) else None
    if items is None:
        raise ParseError(f"{field.name} must be a list")
    out: list[str] = []
    for item in items:
        if field.values:
            enum = OutputField(name=field.name, type="enum", values=field.values)
            out.append(_coerce(enum, item))
        elif isinstance(item, str | int | float) and not isinstance(item, bool):
            out.append(str(item))
        else:
            raise ParseError(f"items of {field.name} must be strings")
    if field.max_items is not None:
        out = out[: field.max_items]
    return sorted(set(out), key=out.index)


def parse_answer(text: str, fields: Sequence[OutputField]) -> dict[str, Any]:
    """The answer's fields (and its explanation) checked against the rubric; ParseError
    naming what was wrong otherwise."""
    data = extract_json(text)
    lowered = {str(k).lower(): v for k, v in data.items()}
    answer: dict[str, Any] = {}
    for f in fields:
        if f.name in data:
            raw = data[f.name]
        elif f.name.lower() in lowered:
            raw = lowered[f.name.lower()]
        else:
            raise ParseError(f"the answer lacks the key {f.name!r}")
        answer[f.name] = _coerce(f, raw)
    explanation = data.get("explanation", lowered.get("explanation", lowered.get("reason")))
    if explanation is None:
        explanation = ""
    if not isinstance(explanation, str):
        explanation = json.dumps(explanation, ensure_ascii=False)
    answer["explanation"] = explanation.strip()
    return answer
