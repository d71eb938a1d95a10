"""SWE-bench verifier output -> per-instance outcomes; SWE-bench datasets -> gold tasks.

Outcomes
--------
:func:`load_outcomes` reads files and folders and returns one :class:`Outcome` per instance
per file. It recognises each file by its content, not its name:

1. **Per-instance report** (``swebench.harness.grading.get_eval_report``), the canonical
   ``{"<instance_id>": {patch_is_None, patch_exists, patch_successfully_applied, resolved,
   tests_status: {FAIL_TO_PASS: {success, failure}, PASS_TO_PASS: {...}, FAIL_TO_FAIL,
   PASS_TO_FAIL}}}``.
   One file may hold several instances. Newer keys ``infra_failure`` / ``infra_failure_reason``
   and our extension keys ``attempt_index`` / ``run_id`` are read when present. Maps whose inner
   objects only carry ``resolved`` (the bash-only leaderboard's ``per_instance_details.json``,
   ``{"<id>": {"cost": ..., "api_calls": ..., "resolved": true}}``) are read the same way.
2. **The bare inner object** (no instance-id key, as mini-swe-agent copies it): the instance id
   is the parent folder's name (``.../<instance_id>/report.json``); a folder name that does not
   look like an instance id (``owner__repo-123``) is a problem, not a guess.
3. **Run-level report** (``swebench.harness.reporting.make_run_report``, schema_version 2):
   ``resolved_ids`` -> resolved, reward 1.0, ``correct_patch``; ``unresolved_ids`` -> reward
   0.0 and label None (the run report has no test detail to tell partial from regressive from
   no-effect); ``empty_patch_ids`` -> unverifiable ``empty_patch``; ``error_ids`` ->
   unverifiable ``harness_error``; ``incomplete_ids`` -> unverifiable ``incomplete``; newer
   ``infra_failure_ids`` -> unverifiable ``infra_failure`` and ``ambiguous_failure_ids`` ->
   unverifiable ``ambiguous_failure``. Ids only in ``completed_ids`` (a report exists) or only
   in ``submitted_ids`` carry what those lists say and label None. ``run_id`` comes from a
   ``run_id`` field, else from the harness's file name ``<model>.<run_id>.json``, split at the
   LAST dot (model names often contain dots, ``gpt-4.1``; a run id with a dot is cut short).
4. **Leaderboard** ``results.json`` (SWE-bench/experiments): ``resolved`` -> ``correct_patch``;
   ``no_generation`` (older: ``none``) -> unverifiable ``no_generation``; ``no_logs`` ->
   ``no_logs``; ``no_apply`` -> ``patch_apply_failed``; ``install_fail`` -> ``install_failed``;
   ``reset_failed`` -> ``reset_failed``; ``test_errored`` -> ``harness_error``;
   ``test_timeout`` -> ``timeout``. ``generated`` / ``applied`` / ``with_logs`` are progress
   lists: an id only there is unresolved with label None. Instances not listed anywhere are
   NOT returned: whether absence means "unresolved" depends on the split, the caller decides.
5. **Lenient JSON** (older harnesses and hand-made files): JSON with ``NaN`` / ``Infinity``
   (what ``json.loads`` accepts), JSON with trailing commas before ``]`` / ``}``, and Python
   literal dicts (single quotes, ``True`` / ``False`` / ``None``, tuples) read by
   ``ast.literal_eval`` for files up to :data:`LITERAL_EVAL_MAX_BYTES`. Nothing is executed.

Folders are searched recursively: every ``report.json`` and ``results.json`` is read (and is a
problem if unreadable); any other ``*.json`` is used only if it turns out to be a run-level
report, a leaderboard results file or a multi-instance per-instance map, and is otherwise
skipped silently (trajectories, predictions and configs live in the same trees). Files are not
merged: a run folder holding both per-instance reports and the run report yields two outcomes
per instance, one with test detail and one without.

A file that cannot be read or recognised becomes a :class:`Problem` ("truncated JSON at byte
N", "not a SWE-bench report: expected ..."), and every other file still loads. Without a
``problems`` list the first problem raises :class:`ReportError` instead.

Counts
------
From ``tests_status``: ``fail_to_pass = len(FAIL_TO_PASS.success)`` (target tests now passing),
``fail_to_fail = len(FAIL_TO_PASS.failure)`` (target tests still failing), ``pass_to_pass =
len(PASS_TO_PASS.success)`` and ``pass_to_fail = len(PASS_TO_PASS.failure)`` (regressions).

The report's own ``FAIL_TO_FAIL`` and ``PASS_TO_FAIL`` groups are deliberately NOT counted. They
grade the dataset's F2F / P2F test lists: tests that fail before AND after the gold patch (F2F,
"extra credit" in the harness) and tests the gold patch itself makes fail (P2F, "not
considered"). Neither says anything about tests the agent broke, the harness fills them only
with ``calculate_to_fail=True`` (never in ``get_eval_report``), and in the real reports they
are always empty (``{"success": [], "failure": []}`` in the sqlfluff and django files). Reading
``PASS_TO_FAIL.failure`` as regressions would confuse the dataset's P2F list with the seed's
``pass_to_fail`` (P2P tests that now fail), so they are ignored.

``patch_successfully_applied`` is False in the harness not only when ``git apply`` failed but
also when the test log holds a timeout, "Tests Errored" or "Reset Failed" marker or lacks the
start/end markers. When the report has a sibling ``test_output.txt``, its markers refine the
reason (``timeout``, ``harness_error``, ``reset_failed``) and ``patch_applies`` (the tests only
run after the model patch applied); without it the reason stays ``patch_apply_failed``.

Reward
------
``reward`` is the harness's verdict as it scores a run: 1.0 resolved, 0.0 for every evaluated
instance that is not (whatever the reason, empty patches and harness errors included, which is
how resolve rates are computed), None when the source gives no verdict (run-level
``incomplete_ids``, ids only in ``submitted_ids`` / ``completed_ids``, reports without
``resolved``, and infra failures, which newer harnesses report precisely so that they are not
scored). Use ``label`` to exclude ``unverifiable`` outcomes from analyses.

Gold tasks
----------
:func:`load_dataset` reads a SWE-bench dataset (JSON list or ``{"rows": [...]}``, the Hugging
Face datasets-server shape included; JSON lines; Parquet with the ``parquet`` extra; ``.gz`` of
the JSON forms) into :class:`GoldTask` records: the files and hunks the gold ``patch`` changes
(:func:`parse_patch`), the files the ``test_patch`` changes, and the FAIL_TO_PASS /
PASS_TO_PASS lists (JSON-encoded strings or lists). Bad rows become problems; good rows load.
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeAlias

from agentsignals._classify.outcome import (
    CORRECT_PATCH,
    LABELS,
    UNVERIFIABLE,
    patch_outcome_label,
)

__all__ = [
    "LABELS",
    "LITERAL_EVAL_MAX_BYTES",
    "GoldTask",
    "Outcome",
    "Problem",
    "ReportError",
    "load_dataset",
    "load_outcomes",
    "parse_patch",
    "patch_outcome_label",
]

PathArg: TypeAlias = str | os.PathLike[str]

#: Largest file :func:`load_outcomes` hands to ``ast.literal_eval`` (Python-literal reports).
LITERAL_EVAL_MAX_BYTES: Final = 16 * 1024 * 1024
# Folder scans skip other *.json files larger than this (trajectories can be huge).
_SCAN_MAX_BYTES: Final = 64 * 1024 * 1024
_ALWAYS_READ_NAMES: Final = frozenset({"report.json", "results.json"})


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a verifier said about one instance in one run (see the module docstring)."""

    instance_id: str
    source: str
    run_id: str | None = None
    attempt_index: int | None = None
    resolved: bool | None = None
    reward: float | None = None
    patch_exists: bool | None = None
    patch_applies: bool | None = None
    fail_to_pass: int | None = None
    fail_to_fail: int | None = None
    pass_to_pass: int | None = None
    pass_to_fail: int | None = None
    label: str | None = None
    unverifiable_reason: str | None = None
    fail_to_pass_failing: tuple[str, ...] = ()
    pass_to_fail_failing: tuple[str, ...] = ()
    # From a leaderboard results.json, which lists resolved (and failed-to-run) instances
    # only: an instance of its run that it does not list was not resolved.
    listed_only: bool = False


@dataclass(frozen=True, slots=True)
class GoldTask:
    """One dataset row: what the gold patch and the test patch change, and the target tests."""

    instance_id: str
    repo: str | None
    gold_files: tuple[str, ...]
    gold_hunks: tuple[tuple[str, int, int], ...]
    test_files: tuple[str, ...]
    fail_to_pass: tuple[str, ...]
    pass_to_pass: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One file (or dataset row) that could not be used; everything else still was."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ReportError(ValueError):
    """A report or dataset that cannot be used: ``path`` and what was wrong (``message``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class _Reporter:
    def __init__(self, problems: list[Problem] | None) -> None:
        self._problems = problems

    def __call__(self, path: str, message: str) -> None:
        if self._problems is None:
            raise ReportError(path, message + " (pass problems=[] to collect problems instead)")
        self._problems.append(Problem(path, message))


# --------------------------------------------------------------------------------------------
# Reading JSON (strict, then lenient)
# --------------------------------------------------------------------------------------------

# JSON words a truncated file can end in the middle of.
_WORDS: Final = ("true", "false", "null", "NaN", "Infinity", "-Infinity")
# A JSON string token, or a comma that only whitespace separates from a closing bracket.
_TRAILING_COMMA = re.compile(r'("(?:[^"\\]|\\.)*")|,(?=\s*[\]}])', re.S)


class _Unreadable(Exception):
    """Internal: the file is not usable; the message says why (no path)."""


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _Unreadable(f"cannot open: {exc.strerror or exc}") from None
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise _Unreadable(f"not a readable gzip file: {exc}") from None
    return data


def _decode_text(data: bytes) -> tuple[str, int]:
    """(text, BOM length in bytes)."""
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[bom:].decode("utf-8"), bom
    except UnicodeDecodeError as exc:
        raise _Unreadable(f"not UTF-8 text: invalid byte at byte {exc.start + bom}") from None


def _byte_at(text: str, pos: int, bom: int) -> int:
    return len(text[:pos].encode("utf-8")) + bom


def _parse_document(data: bytes) -> Any:
    """A JSON (or lenient JSON, see the module docstring) document -> Python value."""
    text, bom = _decode_text(data)
    if not text.strip():
        raise _Unreadable("empty file: expected a JSON document")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        error = exc
    except RecursionError:
        raise _Unreadable("JSON nested too deeply") from None
    rest = text[error.pos :].rstrip()
    if (
        error.msg.startswith("Unterminated string")
        or not rest
        or (error.msg.startswith("Expecting value") and any(w.startswith(rest) for w in _WORDS))
    ):
        raise _Unreadable(
            f"truncated JSON at byte {len(data)}: the file ends before the document is complete"
        )
    # Lenient forms: trailing commas, then a Python literal.
    stripped = _TRAILING_COMMA.sub(lambda m: m.group(1) or "", text)
    if stripped != text:
        try:
            return json.loads(stripped)
        except (json.JSONDecodeError, RecursionError):
            pass
    python_like = text[error.pos : error.pos + 1] == "'" or error.msg.startswith("Expecting value")
    if python_like and len(data) <= LITERAL_EVAL_MAX_BYTES:
        try:
            return ast.literal_eval(text.strip())
        except SyntaxError as syn:
            if text[error.pos : error.pos + 1] == "'":
                if "never closed" in str(syn) or "unterminated" in str(syn) or "EOF" in str(syn):
                    raise _Unreadable(
                        f"truncated Python-literal report at byte {len(data)}: the file ends "
                        "before the dict is complete"
                    ) from None
                raise _Unreadable(
                    f"neither JSON nor a Python literal: {syn.msg} (line {syn.lineno})"
                ) from None
        except (ValueError, TypeError, MemoryError, RecursionError):
            pass
    raise _Unreadable(
        f"malformed JSON at byte {_byte_at(text, error.pos, bom)} "
        f"(line {error.lineno}, column {error.colno}): {error.msg}"
    )


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        keys = [str(k) for k in value]
        if not keys:
            return "an empty object"
        shown = ", ".join(repr(k) for k in keys[:6])
        more = f", ... ({len(keys)} keys)" if len(keys) > 6 else ""
        return f"an object with keys {shown}{more}"
    if isinstance(value, list | tuple):
        return f"a JSON array of {len(value)} items"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------

_REPORT_KEYS: Final = frozenset(
    {
        "patch_is_None",
        "patch_exists",
        "patch_successfully_applied",
        "resolved",
        "tests_status",
        "infra_failure",
        "infra_failure_reason",
    }
)
_RUN_KEYS: Final = (
    "resolved_ids",
    "unresolved_ids",
    "completed_ids",
    "submitted_ids",
    "empty_patch_ids",
    "error_ids",
    "incomplete_ids",
    "infra_failure_ids",
    "ambiguous_failure_ids",
)
_EXPECTED: Final = (
    "not a SWE-bench report: expected a per-instance report "
    '({"<instance_id>": {"patch_successfully_applied": ..., "resolved": ..., "tests_status": '
    "...}} or that inner object alone), a run-level report (resolved_ids, unresolved_ids, "
    "error_ids, ...) or a leaderboard results.json (resolved, no_generation, no_logs, ...); got "
)
# Ids look like owner__repo-123 (SWE-bench, Lite, Verified, Multimodal) or owner__repo.hash...
_PLAUSIBLE_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*__[\w.\-]+$")


def _shape(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return None
    if any(isinstance(value.get(k), list | tuple) for k in _RUN_KEYS):
        return "run"
    if isinstance(value.get("resolved"), list | tuple):
        return "leaderboard"
    if value.keys() & _REPORT_KEYS:
        return "bare"
    inner = list(value.values())
    if (
        inner
        and all(isinstance(v, Mapping) for v in inner)
        and any(v.keys() & _REPORT_KEYS for v in inner)
    ):
        return "instances"
    return None


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(x, str) for x in value):
        raise _Unreadable(f"{what} must be a list of strings, got {_describe(value)}")
    return tuple(value)


def _opt_bool(obj: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = obj.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise _Unreadable(f"{where}{key} must be true or false, got {value!r}")


def _run_id_from_path(path: Path) -> str | None:
    """``.../run_evaluation/<run_id>/<model>/<instance_id>/report.json`` -> run_id."""
    parts = path.parts
    if len(parts) >= 5 and parts[-5] == "run_evaluation":
        return parts[-4]
    return None


def _group(
    status: Mapping[str, Any], name: str, where: str
) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    group = status.get(name)
    if group is None:
        return None
    if not isinstance(group, Mapping):
        raise _Unreadable(f"{where}tests_status.{name} must be an object, got {_describe(group)}")
    success = _str_list(group.get("success", []), f"{where}tests_status.{name}.success")
    failure = _str_list(group.get("failure", []), f"{where}tests_status.{name}.failure")
    return success, failure


_LOG_MARKERS: Final = (
    # (marker, reason, patch applied?) in precedence order
    (b">>>>> Patch Apply Failed", "patch_apply_failed", False),
    (b">>>>> Tests Timed Out", "timeout", True),
    (b"Timeout error: ", "timeout", True),
    (b">>>>> Reset Failed", "reset_failed", True),
    (b">>>>> Tests Errored", "harness_error", True),
)
_START_TESTS: Final = b">>>>> Start Test Output"
_END_TESTS: Final = b">>>>> End Test Output"


def _scan_test_output(path: Path) -> tuple[str, bool | None] | None:
    """Why the harness said "not applied", from a sibling test_output.txt (None: no file, or
    nothing that contradicts "patch_apply_failed")."""
    wanted = [m for m, _, _ in _LOG_MARKERS] + [_START_TESTS, _END_TESTS]
    found: set[bytes] = set()
    tail = b""
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                buf = tail + chunk
                found.update(m for m in wanted if m in buf)
                tail = buf[-64:]
    except OSError:
        return None
    for marker, reason, applied in _LOG_MARKERS:
        if marker in found:
            return reason, applied
    if _START_TESTS not in found or _END_TESTS not in found:
        return "harness_error", None
    return None


def _instance_outcome(
    instance_id: str, obj: Mapping[str, Any], path: Path, *, single: bool, where: str
) -> Outcome:
    if not obj.keys() & _REPORT_KEYS:
        raise _Unreadable(
            f"{where}not a per-instance report: expected patch_successfully_applied, resolved, "
            f"tests_status, ...; got {_describe(obj)}"
        )
    patch_is_none = _opt_bool(obj, "patch_is_None", where)
    patch_exists = _opt_bool(obj, "patch_exists", where)
    if patch_is_none is True:
        patch_exists = False
    elif patch_exists is None and patch_is_none is False:
        patch_exists = True
    applied = _opt_bool(obj, "patch_successfully_applied", where)
    resolved = _opt_bool(obj, "resolved", where)
    infra = _opt_bool(obj, "infra_failure", where)
    infra_text = obj.get("infra_failure_reason")
    if infra_text is not None and not isinstance(infra_text, str):
        infra_text = str(infra_text)
    attempt = obj.get("attempt_index")
    if attempt is not None and (
        not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0
    ):
        raise _Unreadable(f"{where}attempt_index must be a non-negative int, got {attempt!r}")
    run_id = obj.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        run_id = _run_id_from_path(path)

    f2p = f2f = p2p = p2f = None
    f2p_failing: tuple[str, ...] = ()
    p2f_failing: tuple[str, ...] = ()
    status = obj.get("tests_status")
    if status is not None:
        if not isinstance(status, Mapping):
            raise _Unreadable(f"{where}tests_status must be an object, got {_describe(status)}")
        target = _group(status, "FAIL_TO_PASS", where)
        kept = _group(status, "PASS_TO_PASS", where)
        # FAIL_TO_FAIL / PASS_TO_FAIL grade the dataset's F2F / P2F lists: validated, not counted.
        _group(status, "FAIL_TO_FAIL", where)
        _group(status, "PASS_TO_FAIL", where)
        if target is not None:
            f2p, f2f = len(target[0]), len(target[1])
            f2p_failing = target[1]
        if kept is not None:
            p2p, p2f = len(kept[0]), len(kept[1])
            p2f_failing = kept[1]

    reason: str | None = None
    if infra:
        reason = f"infra_failure: {infra_text}" if infra_text else "infra_failure"
    elif applied is False and patch_exists is not False and single:
        refined = _scan_test_output(path.parent / "test_output.txt")
        if refined is not None and refined[0] != "patch_apply_failed":
            reason, applied = refined

    have_counts = f2p is not None or p2f is not None
    label: str | None = None
    unverifiable_reason: str | None = None
    if reason or patch_exists is False or applied is False or have_counts:
        label, unverifiable_reason = patch_outcome_label(
            patch_applies=applied,
            fail_to_pass=f2p,
            fail_to_fail=f2f,
            pass_to_fail=p2f,
            touched_files_nonempty=patch_exists,
            infra_failure_reason=reason,
        )
    elif resolved is True:
        label = CORRECT_PATCH
    reward = None if infra or resolved is None else (1.0 if resolved else 0.0)
    return Outcome(
        instance_id=instance_id,
        source=str(path),
        run_id=run_id,
        attempt_index=attempt,
        resolved=resolved,
        reward=reward,
        patch_exists=patch_exists,
        patch_applies=applied,
        fail_to_pass=f2p,
        fail_to_fail=f2f,
        pass_to_pass=p2p,
        pass_to_fail=p2f,
        label=label,
        unverifiable_reason=unverifiable_reason,
        fail_to_pass_failing=f2p_failing,
        pass_to_fail_failing=p2f_failing,
    )


# (list key, resolved, reward, patch_exists, patch_applies, label, unverifiable_reason), in
# precedence order for an id found in several lists.
_Category: TypeAlias = tuple[
    str, bool | None, float | None, bool | None, bool | None, str | None, str | None
]
_RUN_CATEGORIES: Final[tuple[_Category, ...]] = (
    ("resolved_ids", True, 1.0, True, True, CORRECT_PATCH, None),
    # Multi-SWE-bench's results.json names its resolved list `resolved` beside `unresolved_ids`.
    ("resolved", True, 1.0, True, True, CORRECT_PATCH, None),
    ("unresolved_ids", False, 0.0, True, None, None, None),
    ("empty_error_patch_ids", False, 0.0, None, None, UNVERIFIABLE, "empty_or_error_patch"),
    ("infra_failure_ids", None, None, None, None, UNVERIFIABLE, "infra_failure"),
    ("ambiguous_failure_ids", False, 0.0, None, None, UNVERIFIABLE, "ambiguous_failure"),
    ("empty_patch_ids", False, 0.0, False, None, UNVERIFIABLE, "empty_patch"),
    ("error_ids", False, 0.0, True, None, UNVERIFIABLE, "harness_error"),
    ("incomplete_ids", None, None, None, None, UNVERIFIABLE, "incomplete"),
    ("completed_ids", None, None, True, None, None, None),
    ("submitted_ids", None, None, None, None, None, None),
)
_LEADERBOARD_CATEGORIES: Final[tuple[_Category, ...]] = (
    ("resolved", True, 1.0, True, True, CORRECT_PATCH, None),
    ("no_generation", False, 0.0, False, None, UNVERIFIABLE, "no_generation"),
    ("none", False, 0.0, False, None, UNVERIFIABLE, "no_generation"),
    ("no_apply", False, 0.0, True, False, UNVERIFIABLE, "patch_apply_failed"),
    ("install_fail", False, 0.0, True, None, UNVERIFIABLE, "install_failed"),
    ("reset_failed", False, 0.0, True, True, UNVERIFIABLE, "reset_failed"),
    ("test_timeout", False, 0.0, True, True, UNVERIFIABLE, "timeout"),
    ("test_errored", False, 0.0, True, True, UNVERIFIABLE, "harness_error"),
    ("no_logs", False, 0.0, None, None, UNVERIFIABLE, "no_logs"),
    ("applied", False, 0.0, True, True, None, None),
    ("with_logs", False, 0.0, True, None, None, None),
    ("generated", False, 0.0, True, None, None, None),
)


def _list_outcomes(
    obj: Mapping[str, Any],
    path: Path,
    categories: Sequence[_Category],
    run_id: str | None,
    listed_only: bool = False,
) -> list[Outcome]:
    chosen: dict[str, _Category] = {}
    for category in categories:
        key = category[0]
        if key not in obj:
            continue
        for instance_id in _str_list(obj[key], key):
            chosen.setdefault(instance_id, category)
    return [
        Outcome(
            instance_id=instance_id,
            source=str(path),
            run_id=run_id,
            resolved=resolved,
            reward=reward,
            patch_exists=exists,
            patch_applies=applies,
            label=label,
            unverifiable_reason=reason,
            listed_only=listed_only,
        )
        for instance_id, (_, resolved, reward, exists, applies, label, reason) in sorted(
            chosen.items()
        )
    ]


def _run_id_from_name(obj: Mapping[str, Any], path: Path) -> str | None:
    run_id = obj.get("run_id")
    if isinstance(run_id, str) and run_id:
        return run_id
    name = path.name[: -len(".json")] if path.name.endswith(".json") else path.stem
    model, dot, run = name.rpartition(".")
    return run if dot and model and run else None


def _outcomes_from(value: Any, path: Path, report: _Reporter, *, scanning: bool) -> list[Outcome]:
    """Outcomes of one parsed file; problems go to ``report``. ``scanning``: the file was found
    in a folder scan and is only wanted if it is a multi-instance report."""
    shape = _shape(value)
    name = str(path)
    if shape is None or (scanning and shape == "bare" and path.name not in _ALWAYS_READ_NAMES):
        if not scanning or path.name in _ALWAYS_READ_NAMES:
            report(name, _EXPECTED + _describe(value))
        return []
    if shape == "run":
        return _list_outcomes(value, path, _RUN_CATEGORIES, _run_id_from_name(value, path))
    if shape == "leaderboard":
        return _list_outcomes(value, path, _LEADERBOARD_CATEGORIES, None, listed_only=True)
    if shape == "bare":
        instance_id = path.parent.name
        if not _PLAUSIBLE_ID.match(instance_id):
            report(
                name,
                "a bare per-instance report (no instance-id key) must sit in a folder named "
                f"after its instance (.../<owner>__<repo>-<number>/report.json); the folder "
                f"is {instance_id!r}",
            )
            return []
        return [_instance_outcome(instance_id, value, path, single=True, where="")]
    outcomes: list[Outcome] = []
    single = len(value) == 1
    for instance_id, inner in value.items():
        try:
            outcomes.append(
                _instance_outcome(
                    str(instance_id), inner, path, single=single, where=f"{instance_id}: "
                )
            )
        except _Unreadable as exc:
            report(name, str(exc))
    return outcomes


def _files(paths: PathArg | Iterable[PathArg]) -> list[tuple[Path, bool]]:
    """(file, found by a folder scan?) for files and folders; a missing path raises."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    found: list[tuple[Path, bool]] = []
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*.json")):
                if f.is_file():
                    found.append((f, True))
        elif p.exists():
            found.append((p, False))
        else:
            raise FileNotFoundError(f"no such file or directory: {p}")
    return found


def load_outcomes(
    paths: PathArg | Iterable[PathArg], *, problems: list[Problem] | None = None
) -> list[Outcome]:
    """Outcomes from SWE-bench report files and folders (shapes: see the module docstring).

    A file that cannot be read or recognised is appended to ``problems`` and the rest still
    load; with ``problems=None`` it raises :class:`ReportError`. A path that does not exist
    raises FileNotFoundError (a usage error, not bad data). Outcomes come file by file (files
    in sorted order within a folder), instances sorted by id within run-level and leaderboard
    files.
    """
    report = _Reporter(problems)
    outcomes: list[Outcome] = []
    for path, scanning in _files(paths):
        always = path.name in _ALWAYS_READ_NAMES
        if scanning and not always:
            try:
                if path.stat().st_size > _SCAN_MAX_BYTES:
                    continue
            except OSError:
                continue
        try:
            value = _parse_document(_read_bytes(path))
        except _Unreadable as exc:
            if not scanning or always:
                report(str(path), str(exc))
            continue
        try:
            outcomes.extend(_outcomes_from(value, path, report, scanning=scanning))
        except _Unreadable as exc:
            report(str(path), str(exc))
    return outcomes


# --------------------------------------------------------------------------------------------
# Patches
# --------------------------------------------------------------------------------------------

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_ESCAPES: Final = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def _unquote(token: str) -> tuple[str, str]:
    """Git's C-style quoted path at the start of ``token`` -> (path, rest after the quote)."""
    out = bytearray()
    i = 1
    while i < len(token):
        c = token[i]
        if c == '"':
            return out.decode("utf-8", "replace"), token[i + 1 :]
        if c == "\\" and i + 1 < len(token):
            nxt = token[i + 1]
            if nxt in "01234567" and re.match(r"[0-7]{3}", token[i + 1 : i + 4]):
                out.append(int(token[i + 1 : i + 4], 8))
                i += 4
                continue
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            else:
                out.extend(nxt.encode("utf-8"))
            i += 2
            continue
        out.extend(c.encode("utf-8"))
        i += 1
    return out.decode("utf-8", "replace"), ""


def _strip_prefix(path: str) -> str | None:
    if path == "/dev/null":
        return None
    if path.startswith(("a/", "b/")):
        return path[2:]
    return path


def _side_path(text: str) -> str | None:
    """The path on a ``--- `` / ``+++ `` / ``rename from`` line (quoted or not, timestamp cut)."""
    text = text.rstrip("\r")
    if text.startswith('"'):
        return _strip_prefix(_unquote(text)[0])
    return _strip_prefix(text.split("\t", 1)[0].rstrip())


def _git_header(rest: str) -> tuple[str | None, str | None]:
    """``a/X b/Y`` from a ``diff --git`` line (quoted paths and spaces handled)."""
    rest = rest.rstrip("\r")
    if rest.startswith('"'):
        old, tail = _unquote(rest)
        tail = tail.lstrip(" ")
        new = _unquote(tail)[0] if tail.startswith('"') else tail
        return _strip_prefix(old), _strip_prefix(new)
    if rest.endswith('"') and ' "' in rest:
        cut = rest.index(' "')
        return _strip_prefix(rest[:cut]), _strip_prefix(_unquote(rest[cut + 1 :])[0])
    half = (len(rest) - 5) // 2
    if (
        len(rest) % 2 == 1
        and rest[half + 2 : half + 5] == " b/"
        and rest[2 : half + 2] == rest[half + 5 :]
    ):
        return _strip_prefix(rest[: half + 2]), _strip_prefix(rest[half + 3 :])
    cut = rest.find(" b/")
    if cut < 0:
        return None, None
    return _strip_prefix(rest[:cut]), _strip_prefix(rest[cut + 1 :])


def parse_patch(diff: str) -> tuple[tuple[str, ...], tuple[tuple[str, int, int], ...]]:
    """``(files, hunks)`` of a unified diff (``git diff`` or plain ``diff -u``).

    ``files``: every path the diff names, old and new sides (so a rename gives both, a new or
    deleted file its one real path), without ``a/`` / ``b/`` prefixes, ``/dev/null`` dropped,
    in order of first appearance. Mode-only and binary changes count (from the ``diff --git``
    line). ``hunks``: ``(file, start line in the ORIGINAL file, line count)`` per ``@@`` header;
    ``file`` is the old path, or the new one for a new file (whose hunk is ``(path, 0, 0)``).
    Hunk bodies are skipped by their line counts, so removed lines that start with ``--`` are
    never mistaken for headers. Malformed parts are skipped, never raised on.
    """
    files: dict[str, None] = {}
    hunks: list[tuple[str, int, int]] = []
    old: str | None = None
    new: str | None = None

    def add(*paths: str | None) -> None:
        for p in paths:
            if p:
                files.setdefault(p, None)

    lines = diff.split("\n")
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if line.startswith("diff --git "):
            old, new = _git_header(line[len("diff --git ") :])
            add(old, new)
        elif line.startswith("--- ") and i + 1 < n and lines[i + 1].startswith("+++ "):
            old, new = _side_path(line[4:]), _side_path(lines[i + 1][4:])
            add(old, new)
            i += 2
            continue
        elif line.startswith(("rename from ", "copy from ")):
            old = _side_path(line.split(" ", 2)[2])
            add(old)
        elif line.startswith(("rename to ", "copy to ")):
            new = _side_path(line.split(" ", 2)[2])
            add(new)
        elif (m := _HUNK.match(line)) and (old or new):
            old_count = int(m[2]) if m[2] is not None else 1
            new_count = int(m[4]) if m[4] is not None else 1
            target = old or new
            assert target is not None
            hunks.append((target, int(m[1]), old_count))
            i += 1
            while i < n and (old_count > 0 or new_count > 0):
                body = lines[i]
                tag = body[:1]
                if tag == "\\":
                    pass
                elif tag == "-":
                    old_count -= 1
                elif tag == "+":
                    new_count -= 1
                elif tag in (" ", "", "\r"):
                    old_count -= 1
                    new_count -= 1
                else:
                    break
                i += 1
            while i < n and lines[i].startswith("\\"):
                i += 1
            continue
        i += 1
    return tuple(files), tuple(hunks)


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


def _test_list(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        if not value.strip():
            return ()
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise _Unreadable(
                f"{key} is not a JSON-encoded list: {exc.msg} at character {exc.pos}"
            ) from None
    return _str_list(value, key)


def _gold_task(row: Any) -> GoldTask:
    if (
        isinstance(row, Mapping)
        and "instance_id" not in row
        and isinstance(row.get("row"), Mapping)
    ):
        row = row["row"]  # Hugging Face datasets-server: {"row_idx": 0, "row": {...}}
    if not isinstance(row, Mapping):
        raise _Unreadable(f"a row must be an object, got {_describe(row)}")
    instance_id = row.get("instance_id")
    if not isinstance(instance_id, str) or not instance_id:
        raise _Unreadable(f"instance_id must be a non-empty string, got {instance_id!r}")
    try:
        repo = row.get("repo")
        if repo is not None and not isinstance(repo, str):
            raise _Unreadable(f"repo must be a string, got {_describe(repo)}")
        patches: list[str] = []
        for key in ("patch", "test_patch"):
            text = row.get(key)
            if text is not None and not isinstance(text, str):
                raise _Unreadable(f"{key} must be a string (a unified diff), got {_describe(text)}")
            patches.append(text or "")
        gold_files, gold_hunks = parse_patch(patches[0])
        test_files = parse_patch(patches[1])[0]
        f2p = _test_list(row.get("FAIL_TO_PASS"), "FAIL_TO_PASS")
        p2p = _test_list(row.get("PASS_TO_PASS"), "PASS_TO_PASS")
    except _Unreadable as exc:
        raise _Unreadable(f"{instance_id}: {exc}") from None
    return GoldTask(instance_id, repo, gold_files, gold_hunks, test_files, f2p, p2p)


_DATASET_COLUMNS: Final = (
    "instance_id",
    "repo",
    "patch",
    "test_patch",
    "FAIL_TO_PASS",
    "PASS_TO_PASS",
)


def _parquet_rows(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading a Parquet dataset needs pyarrow: pip install 'agentsignals[parquet]'"
        ) from None
    try:
        parquet = pq.ParquetFile(path)
        columns = [c for c in _DATASET_COLUMNS if c in parquet.schema_arrow.names]
        index = 0
        for batch in parquet.iter_batches(columns=columns, batch_size=1024):
            for row in batch.to_pylist():
                index += 1
                yield f"row {index}", row
    except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError family
        raise _Unreadable(f"not a readable Parquet file: {exc}") from None


def _json_rows(path: Path, data: bytes) -> Iterator[tuple[str, Any]]:
    lines_mode = path.name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz"))
    if not lines_mode:
        try:
            value = _parse_document(data)
        except _Unreadable:
            text = _decode_text(data)[0].lstrip()
            first = text.split("\n", 1)[0].strip()
            try:
                lines_mode = "\n" in text.strip() and isinstance(json.loads(first), dict)
            except json.JSONDecodeError:
                lines_mode = False
            if not lines_mode:
                raise
        else:
            if isinstance(value, Mapping) and isinstance(value.get("rows"), list):
                value = value["rows"]
            if not isinstance(value, list):
                raise _Unreadable(
                    'not a SWE-bench dataset: expected a list of rows, {"rows": [...]}, JSON '
                    f"lines or Parquet; got {_describe(value)}"
                )
            for index, row in enumerate(value, 1):
                yield f"row {index}", row
            return
    text, _ = _decode_text(data)
    for line_no, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield f"line {line_no}", _Unreadable(f"malformed JSON at column {exc.colno}: {exc.msg}")
            continue
        yield f"line {line_no}", row


def load_dataset(path: PathArg, *, problems: list[Problem] | None = None) -> dict[str, GoldTask]:
    """``{instance_id: GoldTask}`` from a SWE-bench dataset file (see the module docstring).

    A bad row (not an object, no instance_id, a patch that is not text, a FAIL_TO_PASS that does
    not decode to a list of strings, a duplicate id: the first is kept) is appended to
    ``problems`` as ``"<row or line N>: <what>"`` and the other rows load; with
    ``problems=None`` it raises :class:`ReportError`. An unreadable file is one problem.
    Parquet needs pyarrow (ImportError with the install hint otherwise).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {p}" if not p.exists() else f"not a file: {p}")
    report = _Reporter(problems)
    tasks: dict[str, GoldTask] = {}
    try:
        with p.open("rb") as f:
            magic = f.read(4)
        if p.suffix == ".parquet" or magic == b"PAR1":
            rows: Iterator[tuple[str, Any]] = _parquet_rows(p)
        else:
            rows = _json_rows(p, _read_bytes(p))
        for where, row in rows:
            try:
                if isinstance(row, _Unreadable):
                    raise row
                task = _gold_task(row)
            except _Unreadable as exc:
                report(str(p), f"{where}: {exc}")
                continue
            if task.instance_id in tasks:
                report(
                    str(p), f"{where}: duplicate instance_id {task.instance_id!r}, kept the first"
                )
                continue
            tasks[task.instance_id] = task
    except _Unreadable as exc:
        report(str(p), str(exc))
    except OSError as exc:
        report(str(p), f"cannot open: {exc.strerror or exc}")
    return tasks
