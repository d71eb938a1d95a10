"""SWE-bench outcomes and gold tasks: real harness files with known ground truth, one synthetic
report per patch outcome label, and the bad inputs that must become clear problems."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentsignals._verify.swebench import (
    LABELS,
    GoldTask,
    Outcome,
    Problem,
    ReportError,
    load_dataset,
    load_outcomes,
    parse_patch,
    patch_outcome_label,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"real agent data not present at {DATA} (see shared/data/SOURCES.md)"
)

SQLFLUFF = DATA / "swebench" / "reports" / "sqlfluff__sqlfluff-1763" / "report.json"
DJANGO = (
    DATA
    / "mini-swe-agent"
    / "20251118_gemini-3-pro"
    / "logs"
    / "django__django-16527"
    / "report.json"
)
DEEPSEEK = (
    DATA / "swebench" / "reports" / "deepseek__deepseek-chat.deepseek_lite_dev_noparallel.json"
)
SWE_AGENT_RESULTS = DATA / "swe-agent" / "20250511_sweagent_lm_32b" / "results.json"
LITE = DATA / "swebench" / "swe-bench-lite.json"


def _one(paths: Any) -> Outcome:
    problems: list[Problem] = []
    outcomes = load_outcomes(paths, problems=problems)
    assert problems == []
    assert len(outcomes) == 1
    return outcomes[0]


# --------------------------------------------------------------------------------------------
# Real files
# --------------------------------------------------------------------------------------------


@needs_data
def test_sqlfluff_canonical_report_is_regressive() -> None:
    o = _one(SQLFLUFF)
    assert o.instance_id == "sqlfluff__sqlfluff-1763"
    assert o.source == str(SQLFLUFF)
    assert (o.patch_exists, o.patch_applies, o.resolved, o.reward) == (True, True, False, 0.0)
    assert (o.fail_to_pass, o.fail_to_fail, o.pass_to_pass, o.pass_to_fail) == (0, 3, 45, 18)
    assert o.label == "regressive_patch"
    assert o.unverifiable_reason is None
    assert len(o.fail_to_pass_failing) == 3
    assert all("test_safe_create_replace_file" in name for name in o.fail_to_pass_failing)
    assert len(o.pass_to_fail_failing) == 18
    assert "test/core/linter_test.py::test_linter_noqa" in o.pass_to_fail_failing
    assert o.run_id is None  # not under logs/run_evaluation/<run_id>/...


@needs_data
def test_django_bare_report_takes_its_id_from_the_folder() -> None:
    o = _one(DJANGO)
    assert o.instance_id == "django__django-16527"
    assert (o.resolved, o.reward, o.label) == (True, 1.0, "correct_patch")
    assert (o.fail_to_pass, o.fail_to_fail, o.pass_to_pass, o.pass_to_fail) == (1, 0, 6, 0)
    assert o.fail_to_pass_failing == () and o.pass_to_fail_failing == ()


@needs_data
def test_deepseek_run_level_report() -> None:
    problems: list[Problem] = []
    outcomes = load_outcomes(DEEPSEEK, problems=problems)
    assert problems == []
    assert len(outcomes) == 23
    assert {o.run_id for o in outcomes} == {"deepseek_lite_dev_noparallel"}
    resolved = sorted(o.instance_id for o in outcomes if o.resolved)
    assert resolved == [
        "marshmallow-code__marshmallow-1343",
        "marshmallow-code__marshmallow-1359",
        "pydicom__pydicom-1256",
        "pydicom__pydicom-1694",
        "sqlfluff__sqlfluff-2419",
    ]
    assert all(o.reward == 1.0 and o.label == "correct_patch" for o in outcomes if o.resolved)
    unresolved = [o for o in outcomes if o.resolved is False]
    assert len(unresolved) == 18
    assert "sqlfluff__sqlfluff-1763" in {o.instance_id for o in unresolved}
    # No test detail in a run report: reward 0.0, but which failure it was is unknown.
    assert all(o.reward == 0.0 and o.label is None and o.fail_to_pass is None for o in unresolved)


@needs_data
def test_swe_agent_leaderboard_results() -> None:
    problems: list[Problem] = []
    outcomes = load_outcomes(SWE_AGENT_RESULTS, problems=problems)
    assert problems == []
    by_id = {o.instance_id: o for o in outcomes}
    assert len(by_id) == len(outcomes) == 205  # 201 resolved + 4 no_generation; nothing else
    resolved = [o for o in outcomes if o.label == "correct_patch"]
    assert len(resolved) == 201 and all(o.resolved and o.reward == 1.0 for o in resolved)
    no_gen = [o for o in outcomes if o.unverifiable_reason == "no_generation"]
    assert sorted(o.instance_id for o in no_gen) == [
        "django__django-13513",
        "sphinx-doc__sphinx-7462",
        "sphinx-doc__sphinx-9230",
        "sphinx-doc__sphinx-9673",
    ]
    assert all(o.label == "unverifiable" and o.patch_exists is False for o in no_gen)
    # Known ground truth: the trajectory in the same folder did not resolve its instance, and
    # instances not listed are not returned (the caller decides what absence means).
    assert "pytest-dev__pytest-7432" not in by_id


@needs_data
def test_folder_scan_over_real_data_skips_trajectories() -> None:
    problems: list[Problem] = []
    outcomes = load_outcomes(
        [
            DATA / "swebench" / "reports",
            DATA / "mini-swe-agent",
            DATA / "swe-agent" / "20250511_sweagent_lm_32b",
        ],
        problems=problems,
    )
    assert problems == []
    sources = {Path(o.source).name for o in outcomes}
    assert sources == {"report.json", DEEPSEEK.name, "results.json"}
    assert len(outcomes) == 1 + 1 + 23 + 205


@needs_data
def test_swe_bench_lite_dataset() -> None:
    problems: list[Problem] = []
    tasks = load_dataset(LITE, problems=problems)
    assert problems == []
    assert len(tasks) == 300
    task = tasks["django__django-15202"]
    assert isinstance(task, GoldTask)
    assert task.repo == "django/django"
    assert task.gold_files == ("django/core/validators.py",)
    assert task.gold_hunks == (
        ("django/core/validators.py", 108, 15),
        ("django/core/validators.py", 127, 7),
        ("django/core/validators.py", 139, 7),
    )
    assert task.test_files == ("tests/forms_tests/field_tests/test_urlfield.py",)
    assert task.fail_to_pass == (
        "test_urlfield_clean_invalid (forms_tests.field_tests.test_urlfield.URLFieldTest)",
        "test_urlfield_clean_not_required (forms_tests.field_tests.test_urlfield.URLFieldTest)",
    )
    assert len(task.pass_to_pass) == 6
    assert all(t.gold_files and t.gold_hunks and t.fail_to_pass for t in tasks.values())


@needs_data
def test_every_lite_patch_parses_to_its_headers() -> None:
    rows = json.loads(LITE.read_text())
    for row in rows:
        for key in ("patch", "test_patch"):
            files, hunks = parse_patch(row[key])
            headers = [line for line in row[key].split("\n") if line.startswith("@@ -")]
            assert len(hunks) == len(headers), (row["instance_id"], key)
            assert {h[0] for h in hunks} <= set(files)
            assert files, (row["instance_id"], key)


# --------------------------------------------------------------------------------------------
# Synthetic reports: every label
# --------------------------------------------------------------------------------------------


def _inner(
    f2p: tuple[int, int] | None = None, p2p: tuple[int, int] | None = None, **fields: Any
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "patch_is_None": False,
        "patch_exists": True,
        "patch_successfully_applied": True,
        "resolved": False,
    }
    if f2p is not None or p2p is not None:
        f_ok, f_bad = f2p or (0, 0)
        p_ok, p_bad = p2p or (0, 0)
        report["tests_status"] = {
            "FAIL_TO_PASS": {
                "success": [f"t::fixed{i}" for i in range(f_ok)],
                "failure": [f"t::broken{i}" for i in range(f_bad)],
            },
            "PASS_TO_PASS": {
                "success": [f"t::kept{i}" for i in range(p_ok)],
                "failure": [f"t::regressed{i}" for i in range(p_bad)],
            },
            "FAIL_TO_FAIL": {"success": [], "failure": []},
            "PASS_TO_FAIL": {"success": [], "failure": []},
        }
    report.update(fields)
    return report


def _write(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


@pytest.mark.parametrize(
    ("f2p", "p2p", "resolved", "label"),
    [
        ((3, 0), (10, 0), True, "correct_patch"),
        ((1, 2), (10, 0), False, "partial_patch"),  # some, not all, target tests fixed
        ((3, 0), (8, 2), False, "partial_patch"),  # all fixed, but with regressions
        ((1, 2), (9, 1), False, "partial_patch"),  # some fixed, with regressions
        ((0, 3), (8, 2), False, "regressive_patch"),
        ((0, 3), (10, 0), False, "no_effect_patch"),
    ],
)
def test_each_label_from_counts(
    tmp_path: Path, f2p: tuple[int, int], p2p: tuple[int, int], resolved: bool, label: str
) -> None:
    iid = "astropy__astropy-12907"
    o = _one(_write(tmp_path / "r.json", {iid: _inner(f2p, p2p, resolved=resolved)}))
    assert o.instance_id == iid
    assert o.label == label and o.unverifiable_reason is None
    assert (o.fail_to_pass, o.fail_to_fail, o.pass_to_pass, o.pass_to_fail) == (*f2p, *p2p)
    assert o.reward == (1.0 if resolved else 0.0)
    assert len(o.fail_to_pass_failing) == f2p[1] and len(o.pass_to_fail_failing) == p2p[1]


def test_unverifiable_patch_did_not_apply(tmp_path: Path) -> None:
    o = _one(_write(tmp_path / "r.json", {"a__b-1": _inner(patch_successfully_applied=False)}))
    assert (o.label, o.unverifiable_reason) == ("unverifiable", "patch_apply_failed")
    assert (o.patch_applies, o.resolved, o.reward) == (False, False, 0.0)


def test_unverifiable_empty_patch(tmp_path: Path) -> None:
    inner = _inner(patch_is_None=True, patch_exists=False, patch_successfully_applied=False)
    o = _one(_write(tmp_path / "r.json", {"a__b-1": inner}))
    assert (o.label, o.unverifiable_reason, o.patch_exists) == (
        "unverifiable",
        "empty_patch",
        False,
    )
    assert o.reward == 0.0


def test_infra_failure_keeps_its_reason_and_is_not_scored(tmp_path: Path) -> None:
    inner = _inner(
        (0, 2), (5, 0), infra_failure=True, infra_failure_reason="image pull failed: 429"
    )
    o = _one(_write(tmp_path / "r.json", {"a__b-1": inner}))
    assert o.label == "unverifiable"
    assert o.unverifiable_reason == "infra_failure: image pull failed: 429"
    assert o.resolved is False and o.reward is None  # no verdict on the patch
    bare = _one(_write(tmp_path / "a__b-2" / "report.json", _inner(infra_failure=True)))
    assert (bare.label, bare.unverifiable_reason) == ("unverifiable", "infra_failure")


def test_resolved_without_test_detail(tmp_path: Path) -> None:
    # per_instance_details.json style: only "resolved" per instance.
    value = {
        "a__b-1": {"cost": 0.7, "api_calls": 32, "resolved": True},
        "a__b-2": {"resolved": False},
    }
    outcomes = load_outcomes(_write(tmp_path / "per_instance_details.json", value), problems=[])
    assert [(o.instance_id, o.label, o.reward) for o in outcomes] == [
        ("a__b-1", "correct_patch", 1.0),
        ("a__b-2", None, 0.0),
    ]


def test_run_id_from_harness_log_path_and_attempt_index(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "run_evaluation" / "my-run" / "gpt-4.1" / "a__b-7" / "report.json"
    o = _one(_write(path, {"a__b-7": _inner((1, 0), (1, 0), resolved=True, attempt_index=2)}))
    assert (o.run_id, o.attempt_index, o.label) == ("my-run", 2, "correct_patch")


def test_sibling_test_output_refines_not_applied(tmp_path: Path) -> None:
    folder = tmp_path / "a__b-9"
    _write(folder / "report.json", {"a__b-9": _inner(patch_successfully_applied=False)})
    _write(
        folder / "test_output.txt",
        "+ git apply ...\n>>>>> Start Test Output\n... \n>>>>> Tests Timed Out\n",
    )
    o = _one(folder / "report.json")
    assert (o.label, o.unverifiable_reason, o.patch_applies) == ("unverifiable", "timeout", True)


def test_run_level_categories_and_run_id_field(tmp_path: Path) -> None:
    report = {
        "run_id": "nightly",
        "schema_version": 2,
        "submitted_ids": ["a__b-1", "a__b-2", "a__b-3", "a__b-4", "a__b-6"],
        "completed_ids": ["a__b-1", "a__b-2", "a__b-6"],
        "resolved_ids": ["a__b-1"],
        "unresolved_ids": ["a__b-2"],
        "empty_patch_ids": ["a__b-3"],
        "error_ids": ["a__b-4"],
        "incomplete_ids": ["a__b-5"],
    }
    outcomes = {
        o.instance_id: o for o in load_outcomes(_write(tmp_path / "x.json", report), problems=[])
    }
    got = {i: (o.label, o.unverifiable_reason, o.reward) for i, o in outcomes.items()}
    assert got == {
        "a__b-1": ("correct_patch", None, 1.0),
        "a__b-2": (None, None, 0.0),
        "a__b-3": ("unverifiable", "empty_patch", 0.0),
        "a__b-4": ("unverifiable", "harness_error", 0.0),
        "a__b-5": ("unverifiable", "incomplete", None),
        "a__b-6": (None, None, None),  # completed, but in no outcome list
    }
    assert {o.run_id for o in outcomes.values()} == {"nightly"}


def test_leaderboard_other_lists(tmp_path: Path) -> None:
    value = {
        "generated": ["a__b-1", "a__b-2", "a__b-3", "a__b-4"],
        "applied": ["a__b-1", "a__b-3", "a__b-4"],
        "no_apply": ["a__b-2"],
        "test_timeout": ["a__b-3"],
        "resolved": ["a__b-1"],
        "no_logs": [],
    }
    outcomes = load_outcomes(_write(tmp_path / "results.json", value), problems=[])
    got = {o.instance_id: (o.label, o.unverifiable_reason, o.patch_applies) for o in outcomes}
    assert got == {
        "a__b-1": ("correct_patch", None, True),
        "a__b-2": ("unverifiable", "patch_apply_failed", False),
        "a__b-3": ("unverifiable", "timeout", True),
        "a__b-4": (None, None, True),  # applied, not resolved: unresolved, no detail
    }


# --------------------------------------------------------------------------------------------
# The label function itself
# --------------------------------------------------------------------------------------------


def test_patch_outcome_label_edges() -> None:
    def label(**kw: Any) -> tuple[str, str | None]:
        args: dict[str, Any] = {"patch_applies": True, "fail_to_pass": None, "fail_to_fail": None}
        args["pass_to_fail"] = None
        args.update(kw)
        return patch_outcome_label(**args)

    assert label(fail_to_pass=0, fail_to_fail=0, pass_to_fail=0) == ("correct_patch", None)
    assert label(fail_to_pass=2, fail_to_fail=1) == ("partial_patch", None)  # p2f not needed
    assert label(fail_to_pass=0, pass_to_fail=1) == ("regressive_patch", None)  # f2f not needed
    assert label(fail_to_pass=2, fail_to_fail=0) == ("unverifiable", "missing_test_counts")
    assert label(patch_applies=False, fail_to_pass=1) == ("unverifiable", "patch_apply_failed")
    assert label(touched_files_nonempty=False, fail_to_pass=1, fail_to_fail=0, pass_to_fail=0) == (
        "unverifiable",
        "empty_patch",
    )
    assert label(
        infra_failure_reason="timeout", fail_to_pass=1, fail_to_fail=0, pass_to_fail=0
    ) == (
        "unverifiable",
        "timeout",
    )
    assert (
        label(patch_applies=None, fail_to_pass=0, fail_to_fail=2, pass_to_fail=0)[0]
        == "no_effect_patch"
    )
    with pytest.raises(ValueError, match="fail_to_pass"):
        label(fail_to_pass=-1)
    assert {
        label(fail_to_pass=f, fail_to_fail=g, pass_to_fail=p)[0]
        for f in (0, 1)
        for g in (0, 1)
        for p in (0, 1)
    } <= set(LABELS)


# --------------------------------------------------------------------------------------------
# Lenient and bad input
# --------------------------------------------------------------------------------------------


def test_lenient_python_literal_trailing_commas_and_nan(tmp_path: Path) -> None:
    literal = repr({"a__b-1": _inner((1, 0), (2, 0), resolved=True)})
    assert "'" in literal and "True" in literal
    assert _one(_write(tmp_path / "py.json", literal)).label == "correct_patch"
    commas = '{"a__b-2": {"resolved": false, "patch_successfully_applied": false,},}'
    assert (
        _one(_write(tmp_path / "commas.json", commas)).unverifiable_reason == "patch_apply_failed"
    )
    nan = '{"a__b-3": {"resolved": true, "cost": NaN}}'
    assert _one(_write(tmp_path / "nan.json", nan)).label == "correct_patch"


@needs_data
def test_truncated_json_is_one_clear_problem(tmp_path: Path) -> None:
    data = SQLFLUFF.read_bytes()
    cut = _write(tmp_path / "runs" / "sqlfluff__sqlfluff-1763" / "report.json", "")
    cut.write_bytes(data[:1000])
    good = _write(tmp_path / "runs" / "django__django-16527" / "report.json", DJANGO.read_text())
    problems: list[Problem] = []
    outcomes = load_outcomes(tmp_path / "runs", problems=problems)
    assert [o.source for o in outcomes] == [str(good)]  # nothing else lost
    assert len(problems) == 1
    assert problems[0].path == str(cut)
    assert problems[0].message.startswith("truncated JSON at byte 1000")
    with pytest.raises(
        ReportError, match=r"sqlfluff__sqlfluff-1763/report\.json: truncated JSON at byte 1000"
    ):
        load_outcomes(cut)


def test_unknown_structure_and_other_bad_files(tmp_path: Path) -> None:
    unknown = _write(tmp_path / "unknown.json", {"model": "x", "score": 3})
    problems: list[Problem] = []
    assert load_outcomes(unknown, problems=problems) == []
    assert problems[0].message.startswith("not a SWE-bench report: expected")
    assert "an object with keys 'model', 'score'" in problems[0].message
    with pytest.raises(ReportError) as info:
        load_outcomes(unknown)
    assert info.value.path == str(unknown)

    bare_in_wrong_folder = _write(tmp_path / "logs" / "report.json", _inner())
    malformed = _write(tmp_path / "bad" / "report.json", '{"a__b-1": {"resolved": tru e}}')
    wrong_type = _write(
        tmp_path / "types.json", {"a__b-1": _inner(resolved="yes"), "a__b-2": _inner()}
    )
    problems = []
    outcomes = load_outcomes([bare_in_wrong_folder, malformed, wrong_type], problems=problems)
    assert [o.instance_id for o in outcomes] == ["a__b-2"]  # the good instance in the same file
    messages = [p.message for p in problems]
    assert "folder named after its instance" in messages[0] and "'logs'" in messages[0]
    assert messages[1].startswith("malformed JSON at byte 24 (line 1, column 25)")
    assert messages[2] == "a__b-1: resolved must be true or false, got 'yes'"

    with pytest.raises(FileNotFoundError):
        load_outcomes(tmp_path / "missing")


def test_folder_scan_skips_unrelated_json_but_reports_named_files(tmp_path: Path) -> None:
    _write(tmp_path / "preds.json", {"a__b-1": {"model_patch": "diff", "instance_id": "a__b-1"}})
    _write(tmp_path / "config.json", "{not json")
    _write(tmp_path / "sub" / "results.json", [1, 2])
    _write(tmp_path / "a__b-1" / "report.json", _inner((1, 0), (0, 0), resolved=True))
    problems: list[Problem] = []
    outcomes = load_outcomes(tmp_path, problems=problems)
    assert [o.instance_id for o in outcomes] == ["a__b-1"]
    assert [(Path(p.path).name, p.message[:32]) for p in problems] == [
        ("results.json", "not a SWE-bench report: expected")
    ]


# --------------------------------------------------------------------------------------------
# Datasets and patches
# --------------------------------------------------------------------------------------------

_PATCH = """diff --git a/pkg/mod.py b/pkg/mod.py
--- a/pkg/mod.py
+++ b/pkg/mod.py
@@ -10,3 +10,4 @@ def f():
     a = 1
--- not a header: a removed line that starts with two dashes
+++ not a header either
+    b = 2
@@ -40 +41 @@
-x
+y
diff --git a/new.py b/new.py
new file mode 100644
--- /dev/null
+++ b/new.py
@@ -0,0 +1,2 @@
+one
+two
diff --git a/gone.py b/gone.py
deleted file mode 100644
--- a/gone.py
+++ /dev/null
@@ -1 +0,0 @@
-bye
diff --git a/old name.py b/new name.py
similarity index 90%
rename from old name.py
rename to new name.py
diff --git "a/caf\\303\\251.py" "b/caf\\303\\251.py"
--- "a/caf\\303\\251.py"
+++ "b/caf\\303\\251.py"
@@ -5,2 +5,2 @@
-a
+b
 c
"""


def test_parse_patch() -> None:
    files, hunks = parse_patch(_PATCH)
    assert files == ("pkg/mod.py", "new.py", "gone.py", "old name.py", "new name.py", "café.py")
    assert hunks == (
        ("pkg/mod.py", 10, 3),
        ("pkg/mod.py", 40, 1),
        ("new.py", 0, 0),
        ("gone.py", 1, 1),
        ("café.py", 5, 2),
    )
    assert parse_patch("") == ((), ())
    plain = "--- a/x.txt\t2020-01-01\n+++ b/x.txt\t2020-01-02\n@@ -1,1 +1,1 @@\n-a\n+b\n"
    assert parse_patch(plain) == (("x.txt",), (("x.txt", 1, 1),))


def _diff(path: str, line: int) -> str:
    return (
        f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -{line} +{line} @@\n-a\n+b\n"
    )


def _row(iid: str, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "repo": "o/r",
        "instance_id": iid,
        "patch": _diff("src/m.py", 1),
        "test_patch": _diff("tests/t.py", 2),
        "FAIL_TO_PASS": json.dumps(["tests/t.py::test_a"]),
        "PASS_TO_PASS": "[]",
    }
    row.update(fields)
    return row


def test_dataset_bad_row_among_good_ones(tmp_path: Path) -> None:
    rows = [
        _row("o__r-1"),
        _row("o__r-2", FAIL_TO_PASS="[not json"),
        _row("o__r-3", FAIL_TO_PASS=["x", "y"]),
    ]
    path = _write(tmp_path / "ds.json", rows)
    problems: list[Problem] = []
    tasks = load_dataset(path, problems=problems)
    assert sorted(tasks) == ["o__r-1", "o__r-3"]
    assert tasks["o__r-1"].gold_files == ("src/m.py",) and tasks["o__r-1"].test_files == (
        "tests/t.py",
    )
    assert (
        tasks["o__r-1"].fail_to_pass == ("tests/t.py::test_a",)
        and tasks["o__r-1"].pass_to_pass == ()
    )
    assert tasks["o__r-3"].fail_to_pass == ("x", "y")
    assert len(problems) == 1 and problems[0].path == str(path)
    assert problems[0].message.startswith("row 2: o__r-2: FAIL_TO_PASS is not a JSON-encoded list")
    with pytest.raises(ReportError, match="row 2"):
        load_dataset(path)


def test_dataset_jsonl_rows_wrapper_and_duplicates(tmp_path: Path) -> None:
    lines = [json.dumps(_row("o__r-1")), "{broken", json.dumps(_row("o__r-1")), json.dumps([1])]
    problems: list[Problem] = []
    tasks = load_dataset(_write(tmp_path / "ds.jsonl", "\n".join(lines) + "\n"), problems=problems)
    assert list(tasks) == ["o__r-1"]
    assert [p.message.split(":")[0] for p in problems] == ["line 2", "line 3", "line 4"]
    assert "duplicate instance_id 'o__r-1'" in problems[1].message
    wrapped = {"rows": [{"row_idx": 0, "row": _row("o__r-5")}]}
    assert list(load_dataset(_write(tmp_path / "hf.json", wrapped))) == ["o__r-5"]
    problems = []
    assert load_dataset(_write(tmp_path / "obj.json", {"x": 1}), problems=problems) == {}
    assert problems[0].message.startswith("not a SWE-bench dataset")


def test_dataset_parquet_round_trip(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [_row(f"o__r-{i}") for i in range(3)]
    path = tmp_path / "test-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    from_parquet = load_dataset(path, problems=[])
    from_json = load_dataset(_write(tmp_path / "same.json", rows), problems=[])
    assert from_parquet == from_json and len(from_parquet) == 3
    # Test lists stored as list columns work too.
    listed = [_row("o__r-9", FAIL_TO_PASS=["a", "b"], PASS_TO_PASS=["c"])]
    pq.write_table(pa.Table.from_pylist(listed), tmp_path / "listed.parquet")
    task = load_dataset(tmp_path / "listed.parquet")["o__r-9"]
    assert (task.fail_to_pass, task.pass_to_pass) == (("a", "b"), ("c",))
