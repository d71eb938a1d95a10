"""Per-test outcomes from real pytest / unittest runs, a Django-format fixture and JUnit XML."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agentsignals._classify.testlog import (
    MAX_NAMED,
    TestRun,
    parse_junit_xml,
    parse_test_output,
)

# --- a tiny project with known outcomes, run for real ------------------------------------------

TEST_A = """
import pytest

def test_pass():
    assert 1

def test_fail():
    assert 1 == 2, "boom"

@pytest.fixture
def broken():
    raise RuntimeError("setup broke")

def test_error(broken):
    pass

@pytest.mark.skip(reason="not today")
def test_skip():
    pass

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert 0

@pytest.mark.xfail(reason="known")
def test_xpass():
    pass

class TestC:
    @pytest.mark.parametrize("x", [1, 2, "a b"])
    def test_p(self, x):
        assert x != 2
"""

TEST_B = '''
import unittest

class T(unittest.TestCase):
    def test_ok(self):
        pass

    def test_bad(self):
        self.assertEqual(1, 2)

    def test_err(self):
        raise ValueError("x")

    @unittest.skip("why not")
    def test_sk(self):
        pass

    @unittest.expectedFailure
    def test_xf(self):
        self.assertEqual(1, 2)

    @unittest.expectedFailure
    def test_xp(self):
        pass

    def test_doc(self):
        """The docstring's first line (unittest -v prints it on its own line)."""

    def test_prints(self):
        print("output between the dots and the verdict")

    def test_sub(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertNotEqual(i, 1)
'''

TEST_C = """
import pytest

@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("teardown broke")

def test_teardown_error(bad_teardown):
    pass

def test_prints():
    print("printed by the test")
"""

BROKEN = "import nonexistent_module_xyz\n\ndef test_never():\n    pass\n"

A = "tests/test_a.py"
B = "tests/test_b.py"
PYTEST_AB_PASSED = (
    f"{A}::test_pass",
    f"{A}::test_xfail",
    f"{A}::test_xpass",
    f"{A}::TestC::test_p[1]",
    f"{A}::TestC::test_p[a b]",
    f"{B}::T::test_doc",
    f"{B}::T::test_ok",
    f"{B}::T::test_prints",
    f"{B}::T::test_xf",
)
PYTEST_AB_FAILED = (
    f"{A}::test_fail",
    f"{A}::TestC::test_p[2]",
    f"{B}::T::test_bad",
    f"{B}::T::test_err",  # pytest reports a unittest error as FAILED
    f"{B}::T::test_sub",
    f"{B}::T::test_xp",  # unittest's unexpected success: FAILED under pytest
)
PYTEST_AB_ERRORS = (f"{A}::test_error",)
PYTEST_AB_SKIPPED = (f"{A}::test_skip", f"{B}::T::test_sk")
# pytest 9 reports test_sub PASSED besides its SUBFAILED subtest (which it counts as failed);
# before 9 a unittest subtest failure is reported as the test's FAILED
PYTEST_9 = int(pytest.__version__.split(".")[0]) >= 9
PYTEST_AB_COUNTS = {
    "failed": 6,
    "passed": 7 if PYTEST_9 else 6,
    "skipped": 2,
    "xfailed": 2,
    "xpassed": 1,
    "errors": 1,
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("proj")
    (root / "pytest.ini").write_text("[pytest]\n")  # pins rootdir, shields from outer configs
    tests = root / "tests"
    tests.mkdir()
    (tests / "__init__.py").write_text("")
    (tests / "test_a.py").write_text(TEST_A)
    (tests / "test_b.py").write_text(TEST_B)
    (tests / "test_c.py").write_text(TEST_C)
    (root / "broken").mkdir()
    (root / "broken" / "test_broken.py").write_text(BROKEN)
    return root


def run(project: Path, *args: str) -> str:
    """stdout and stderr interleaved, as an agent's shell tool sees them."""
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.stdout


def pytest_run(project: Path, *args: str) -> str:
    return run(project, "-m", "pytest", "-p", "no:cacheprovider", *args)


def parsed(text: str) -> TestRun:
    result = parse_test_output(text)
    assert result is not None, text
    return result


# --- pytest ------------------------------------------------------------------------------------


def test_pytest_verbose(project: Path) -> None:
    out = pytest_run(project, "-v", A, B)
    result = parsed(out)
    assert result.framework == "pytest"
    assert sorted(result.passed) == sorted(PYTEST_AB_PASSED)
    assert sorted(result.failed) == sorted(PYTEST_AB_FAILED)
    assert result.errors == PYTEST_AB_ERRORS
    assert result.skipped == PYTEST_AB_SKIPPED
    assert result.complete is True
    assert result.counts == PYTEST_AB_COUNTS
    # output order: test_a's tests come first, in file order
    assert result.passed[:3] == (f"{A}::test_pass", f"{A}::test_xfail", f"{A}::test_xpass")


def test_pytest_vv_and_ansi_colour(project: Path) -> None:
    plain = parsed(pytest_run(project, "-vv", A))
    coloured_out = pytest_run(project, "-v", "--color=yes", A)
    assert "\x1b[" in coloured_out
    coloured = parsed(coloured_out)
    assert coloured == plain
    assert coloured.failed == (f"{A}::test_fail", f"{A}::TestC::test_p[2]")
    assert coloured.counts == {
        "failed": 2,
        "passed": 3,
        "skipped": 1,
        "xfailed": 1,
        "xpassed": 1,
        "errors": 1,
    }
    assert coloured.complete


def test_pytest_quiet_names_only_what_the_short_summary_lists(project: Path) -> None:
    result = parsed(pytest_run(project, "-q", A))
    assert result.passed == ()
    assert result.skipped == ()
    assert result.failed == (f"{A}::test_fail", f"{A}::TestC::test_p[2]")
    assert result.errors == (f"{A}::test_error",)
    assert result.counts["passed"] == 3 and result.counts["skipped"] == 1
    assert result.complete


def test_pytest_quiet_without_summary_section_gives_counts_only(project: Path) -> None:
    result = parsed(pytest_run(project, "-q", "-rN", A))
    assert (result.passed, result.failed, result.errors, result.skipped) == ((), (), (), ())
    assert result.counts["failed"] == 2 and result.counts["errors"] == 1
    assert result.complete


def test_pytest_ra_short_summary(project: Path) -> None:
    result = parsed(pytest_run(project, "-rA", A, B))
    assert sorted(result.passed) == sorted(PYTEST_AB_PASSED)
    assert sorted(result.failed) == sorted(PYTEST_AB_FAILED)
    assert result.errors == PYTEST_AB_ERRORS
    # "SKIPPED [1] tests/test_a.py:17: not today" names a location, not a test
    assert result.skipped == ()
    assert result.counts["skipped"] == 2
    verbose = parsed(pytest_run(project, "-v", "-rA", A, B))
    assert sorted(verbose.failed) == sorted(PYTEST_AB_FAILED)
    assert verbose.skipped == PYTEST_AB_SKIPPED
    assert verbose == parsed(pytest_run(project, "-v", A, B))


def test_collect_only_is_not_a_run(project: Path) -> None:
    assert parse_test_output(pytest_run(project, "--collect-only", "-q", A)) is None


def test_pytest_teardown_error_and_captured_output_with_s(project: Path) -> None:
    out = pytest_run(project, "-v", "-s", "tests/test_c.py")
    assert "printed by the test" in out
    result = parsed(out)
    # PASSED then ERROR for the same test: the error wins; the -s verdict on its own line counts
    assert result.errors == ("tests/test_c.py::test_teardown_error",)
    assert result.passed == ("tests/test_c.py::test_prints",)
    assert result.counts == {"passed": 2, "errors": 1}
    assert result.complete


@pytest.mark.parametrize("flags", [["-q"], ["-v"], ["-rA"]])
def test_pytest_collection_error(project: Path, flags: list[str]) -> None:
    result = parsed(pytest_run(project, *flags, "broken", A))
    assert result.errors == ("broken/test_broken.py",)
    assert result.passed == () and result.failed == ()
    assert result.counts == {"errors": 1}
    assert result.complete


def test_pytest_no_tests_ran(project: Path) -> None:
    result = parsed(pytest_run(project, "-q", A, "-k", "nothing_matches_this"))
    assert result.counts == {"deselected": 9}
    assert result.complete
    empty = parsed(
        "============================ no tests ran in 0.01s =============================\n"
    )
    assert empty.counts == {} and empty.complete


# --- unittest ----------------------------------------------------------------------------------

UT_PASSED = (
    "test_doc (tests.test_b.T)",
    "test_ok (tests.test_b.T)",
    "test_prints (tests.test_b.T)",
    "test_xf (tests.test_b.T)",
)
UT_COUNTS = {"passed": 3, "failed": 2, "errors": 1, "skipped": 1, "xfailed": 1, "xpassed": 1}


def test_unittest_verbose(project: Path) -> None:
    out = run(project, "-m", "unittest", "-v", "tests.test_b")
    result = parsed(out)
    assert result.framework == "unittest"
    assert result.passed == UT_PASSED
    assert sorted(result.failed) == [
        "test_bad (tests.test_b.T)",
        "test_sub (tests.test_b.T)",  # "(i=1) ... FAIL": the subtest fails its test
        "test_xp (tests.test_b.T)",
    ]
    assert result.errors == ("test_err (tests.test_b.T)",)
    assert result.skipped == ("test_sk (tests.test_b.T)",)
    # failures=2: the failed subtest and test_bad; passed is derived from "Ran 9 tests"
    assert result.counts == UT_COUNTS
    assert result.complete


def test_unittest_quiet_names_failures_from_their_headers(project: Path) -> None:
    result = parsed(run(project, "-m", "unittest", "tests.test_b"))
    assert result.framework == "unittest"
    assert result.passed == () and result.skipped == ()
    assert sorted(result.failed) == [
        "test_bad (tests.test_b.T)",
        "test_sub (tests.test_b.T)",
        "test_xp (tests.test_b.T)",  # UNEXPECTED SUCCESS: header
    ]
    assert result.errors == ("test_err (tests.test_b.T)",)
    assert result.counts == UT_COUNTS
    assert result.complete


def test_unittest_ok_run_and_import_error(project: Path) -> None:
    ok = parsed(run(project, "-m", "unittest", "-v", "tests.test_b.T.test_ok"))
    assert ok.passed == ("test_ok (tests.test_b.T)",)
    assert ok.counts == {"passed": 1} and ok.complete
    missing = parsed(run(project, "-m", "unittest", "-v", "tests.test_missing"))
    assert missing.errors == ("test_missing (unittest.loader._FailedTest)",)
    assert missing.counts == {"errors": 1}


# --- Django's runner ---------------------------------------------------------------------------

# Django isn't installed: this is a captured-format fixture written by hand, modelled on the real
# output of Django 4.2's `./tests/runtests.py --verbosity 2 --parallel 1` (the command SWE-bench
# runs) under Python 3.11: the preamble, migrations with their "... OK", a docstring printed on the
# line after its test, output interleaved before "ok", a failing subtest (its parent's line ends in
# "... " and gets no verdict), a skip, an expected failure, and the epilogue. Three lines use the
# pre-3.11 id form `test_x (module.Class)`; `$F` stands for the test class's dotted path.
F = "forms_tests.field_tests.test_urlfield.URLFieldTest"
DJANGO_OUTPUT = """\
Testing against Django installed in '/testbed/django' with up to 8 processes
Importing application forms_tests
Found 7 test(s).
Skipping setup of unused database(s): other.
Creating test database for alias 'default' ('file:memorydb_default?mode=memory&cache=shared')...
Operations to perform:
  Synchronize unmigrated apps: auth, contenttypes, forms_tests, messages, sessions, staticfiles
  Apply all migrations: admin, sites
Synchronizing apps without migrations:
  Creating tables...
    Creating table django_content_type
    Creating table auth_permission
    Running deferred SQL...
Running migrations:
  Applying admin.0001_initial... OK
  Applying admin.0002_logentry_remove_auto_add... OK
  Applying sites.0001_initial... OK
System check identified no issues (0 silenced).
test_urlfield_clean ($F.test_urlfield_clean) ... ok
test_urlfield_clean_invalid ($F.test_urlfield_clean_invalid) ... \n\
  test_urlfield_clean_invalid ($F.test_urlfield_clean_invalid) (value='http://a..b') ... FAIL
test_urlfield_strip_on_none_value ($F.test_urlfield_strip_on_none_value)
URLField with strip=True and None value. ... ok
test_urlfield_view ($F.test_urlfield_view) ... Internal Server Error: /forms/url/
ok
test_urlfield_widget ($F) ... ERROR
test_urlfield_unable_to_set_strip_kwarg ($F) ... skipped 'Requires PostgreSQL'
test_urlfield_assume_scheme ($F.test_urlfield_assume_scheme) ... expected failure

======================================================================
ERROR: test_urlfield_widget ($F)
----------------------------------------------------------------------
Traceback (most recent call last):
  File "/testbed/tests/forms_tests/field_tests/test_urlfield.py", line 12, in test_urlfield_widget
    widget = f.widget_class()
             ^^^^^^^^^^^^^^
AttributeError: 'URLField' object has no attribute 'widget_class'

======================================================================
FAIL: test_urlfield_clean_invalid ($F.test_urlfield_clean_invalid) (value='http://a..b')
----------------------------------------------------------------------
Traceback (most recent call last):
  File "/testbed/tests/forms_tests/field_tests/test_urlfield.py", line 88, in test_clean_invalid
    with self.assertRaisesMessage(ValidationError, msg):
AssertionError: ValidationError not raised

----------------------------------------------------------------------
Ran 7 tests in 0.031s

FAILED (failures=1, errors=1, skipped=1, expected failures=1)
Destroying test database for alias 'default' ('file:memorydb_default?mode=memory&cache=shared')...
""".replace("$F", F)


def test_django_runner_output() -> None:
    result = parsed(DJANGO_OUTPUT)
    assert result.framework == "django"
    assert result.passed == (
        f"test_urlfield_clean ({F})",
        f"test_urlfield_strip_on_none_value ({F})",
        f"test_urlfield_view ({F})",
        f"test_urlfield_assume_scheme ({F})",
    )
    # the SWE-bench FAIL_TO_PASS form
    assert result.failed == (
        "test_urlfield_clean_invalid (forms_tests.field_tests.test_urlfield.URLFieldTest)",
    )
    assert result.errors == (f"test_urlfield_widget ({F})",)
    assert result.skipped == (f"test_urlfield_unable_to_set_strip_kwarg ({F})",)
    assert result.counts == {"passed": 3, "failed": 1, "errors": 1, "skipped": 1, "xfailed": 1}
    assert result.complete


def test_django_ok_run_after_migrations_ok_lines() -> None:
    cut = DJANGO_OUTPUT.split("test_urlfield_clean_invalid")[0]
    truncated = parsed(cut)
    # "Applying admin.0001_initial... OK" is not the verdict
    assert truncated.framework == "django" and not truncated.complete
    assert truncated.passed == (f"test_urlfield_clean ({F})",)
    ok = parsed(cut + "\n" + "-" * 70 + "\nRan 1 test in 0.001s\n\nOK\n")
    assert ok.complete and ok.counts == {"passed": 1}


# --- cut off, garbage, several runs -------------------------------------------------------------


def test_truncated_pytest_output_keeps_what_was_seen(project: Path) -> None:
    out = pytest_run(project, "-v", A, B)
    cut = out[: out.index(f"{B}::T::test_ok")]  # in the middle of the per-test lines
    result = parsed(cut)
    assert result.complete is False
    assert result.counts == {}
    assert f"{A}::test_pass" in result.passed
    assert f"{B}::T::test_bad" in result.failed
    assert result.errors == PYTEST_AB_ERRORS
    assert f"{B}::T::test_ok" not in result.passed
    # cut in the middle of a line: the partial line is ignored, nothing raises
    half = parsed(out[: out.index(f"{A}::test_fail") + 12])
    assert half.passed == (f"{A}::test_pass",) and not half.complete


def test_truncated_unittest_output(project: Path) -> None:
    out = run(project, "-m", "unittest", "-v", "tests.test_b")
    cut = parsed(out[: out.index("test_ok (")])
    assert cut.complete is False and cut.counts == {}
    assert "test_bad (tests.test_b.T)" in cut.failed
    assert "test_ok (tests.test_b.T)" not in cut.passed
    no_verdict = parsed(out[: out.index("Ran ")])
    assert not no_verdict.complete


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello world\n",
        "ok\nFAILED\nERROR\nPASSED\n",
        "total 12\ndrwxr-xr-x 2 root root 4096 .\n-rw-r--r-- 1 root root 12 setup.py\n",
        "3 files changed, 10 insertions(+) in 0.5s\n",
        'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: boom\n',
        "\x00\x01\x02\xff" * 100,
        "<html><body>not junit</body></html>",
        "<?xml version='1.0'?><html/>",
    ],
)
def test_not_test_output_gives_none(text: str) -> None:
    assert parse_test_output(text) is None


def test_fuzz_never_raises(project: Path) -> None:
    rng = random.Random(1234)
    samples = [
        pytest_run(project, "-v", "--color=yes", A),
        run(project, "-m", "unittest", "-v", "tests.test_b"),
        DJANGO_OUTPUT,
        GENERIC_JUNIT,
    ]
    for _ in range(300):
        base = rng.choice(samples)
        choice = rng.random()
        if choice < 0.3:
            text = base[: rng.randrange(len(base) + 1)]
        elif choice < 0.6:
            text = bytes(rng.randrange(256) for _ in range(rng.randrange(2000))).decode("latin-1")
        else:
            lines = base.splitlines()
            rng.shuffle(lines)
            text = "\n".join(lines[: rng.randrange(len(lines) + 1)])
            if rng.random() < 0.5:
                pos = rng.randrange(len(text) + 1)
                text = text[:pos] + "\x1b[" + "[" * rng.randrange(5) + "]" + text[pos:]
        result = parse_test_output(text)
        assert result is None or isinstance(result, TestRun)
        junit = parse_junit_xml(text.encode("utf-8", "surrogatepass"))
        assert junit is None or isinstance(junit, TestRun)


def test_non_str_input_never_raises() -> None:
    assert parse_test_output(None) is None  # type: ignore[arg-type]
    assert parse_test_output(12) is None  # type: ignore[arg-type]
    assert parse_junit_xml(None) is None  # type: ignore[arg-type]
    as_bytes = parse_test_output(b"t.py::test_a PASSED\n1 passed in 0.01s\n")  # type: ignore[arg-type]
    assert as_bytes is not None and as_bytes.passed == ("t.py::test_a",)


def test_several_runs_in_one_output_later_run_wins() -> None:
    first = "t.py::test_a FAILED\nt.py::test_b PASSED\n===== 1 failed, 1 passed in 0.1s =====\n"
    second = "t.py::test_a PASSED\n"
    result = parsed(first + second)
    assert result.passed == ("t.py::test_a", "t.py::test_b") and result.failed == ()
    assert result.complete is False  # the second run was cut off
    finished = parsed(first + second + "1 passed in 0.05s\n")
    assert finished.complete and finished.counts == {"passed": 1}


def test_crlf_line_endings() -> None:
    text = "t.py::test_a PASSED\r\nt.py::test_b FAILED\r\n== 1 failed, 1 passed in 0.1s ==\r\n"
    result = parsed(text)
    assert result.passed == ("t.py::test_a",) and result.failed == ("t.py::test_b",)
    assert result.complete


def test_several_unittest_runs() -> None:
    first = "test_a (m.C) ... FAIL\n" + "-" * 70 + "\nRan 1 test in 0.001s\n\nFAILED (failures=1)\n"
    second = "test_a (m.C) ... ok\n" + "-" * 70 + "\nRan 1 test in 0.001s\n\nOK\n"
    result = parsed(first + second)
    assert result.passed == ("test_a (m.C)",) and result.failed == ()
    assert result.counts == {"passed": 1} and result.complete
    assert not parsed(first + "test_a (m.C) ... ok\n").complete


def test_pytest_format_variants() -> None:
    text = textwrap.dedent(
        """\
        [gw0] [ 50%] PASSED tests/test_x.py::test_one
        [gw1] [100%] FAILED tests/test_x.py::TestK::test_two[a - b]
        tests/test_x.py::test_three RERUN                                         [ 75%]
        tests/test_x.py::test_three PASSED                                        [ 75%]
        FAILED tests/test_x.py::TestK::test_two[a - b] - AssertionError: x - y
        ======== 1 failed, 2 passed, 1 warning, 3 deselected in 65.43s (0:01:05) ========
        """
    )
    result = parsed(text)
    assert result.passed == ("tests/test_x.py::test_one", "tests/test_x.py::test_three")
    assert result.failed == ("tests/test_x.py::TestK::test_two[a - b]",)
    assert result.counts == {"failed": 1, "passed": 2, "deselected": 3}
    assert result.complete


def test_named_lists_are_capped_counts_are_not() -> None:
    n = MAX_NAMED + 500
    lines = [f"tests/test_big.py::test_{i} PASSED" for i in range(n)]
    lines.append(f"====== {n} passed in 1.00s ======")
    result = parsed("\n".join(lines))
    assert len(result.passed) == MAX_NAMED
    assert result.passed[-1] == f"tests/test_big.py::test_{MAX_NAMED - 1}"
    assert result.counts == {"passed": n}


def _cpu_seconds(fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def test_parsing_is_linear_in_the_output_size() -> None:
    """Ten times the output costs about ten times the CPU, not a hundred (no quadratic path).

    Measured as a ratio of CPU times in one process, so the machine's load does not decide it.
    """
    line = "tests/test_big.py::TestBig::test_case[{}] PASSED                        [ 50%]\n"
    tail = "FAILED tests/test_big.py::test_x - AssertionError\n===== 1 failed in 9.0s =====\n"

    def text(size: int) -> str:
        return "".join(line.format(i) for i in range(size // len(line))) + tail

    small, large = text(1_000_000), text(10_000_000)
    assert len(large) > 10_000_000
    result = parsed(large)
    assert result.complete and len(result.passed) == MAX_NAMED
    ratio = _cpu_seconds(lambda: parse_test_output(large)) / _cpu_seconds(
        lambda: parse_test_output(small)
    )
    assert ratio < 30, ratio
    # One huge line, and many short non-test lines: not test output, and also linear.
    assert parse_test_output("x" * 10_000_000) is None
    assert parse_test_output("some log line: value=1 (ok) ... \n" * 300_000) is None
    noise = _cpu_seconds(lambda: parse_test_output("x" * 10_000_000)) / _cpu_seconds(
        lambda: parse_test_output("x" * 1_000_000)
    )
    assert noise < 30, noise


# --- JUnit XML ---------------------------------------------------------------------------------


def test_junit_from_pytest_xunit1_rebuilds_node_ids(project: Path, tmp_path: Path) -> None:
    report = tmp_path / "junit1.xml"
    pytest_run(project, "-q", "-o", "junit_family=xunit1", f"--junitxml={report}", A, B)
    result = parse_junit_xml(report.read_bytes())
    assert result is not None and result.framework == "junit"
    # the console run of the same tests gives the same ids
    assert sorted(result.passed) == sorted(PYTEST_AB_PASSED)
    assert sorted(result.failed) == sorted(PYTEST_AB_FAILED)
    assert result.errors == PYTEST_AB_ERRORS
    assert result.skipped == PYTEST_AB_SKIPPED
    # an XPASS is a plain pass in JUnit, so it is counted with the passes
    assert result.counts == {"passed": 7, "failed": 6, "errors": 1, "skipped": 2, "xfailed": 2}
    assert result.complete


def test_junit_from_pytest_default_family_uses_classname(project: Path, tmp_path: Path) -> None:
    report = tmp_path / "junit2.xml"
    pytest_run(project, "-q", f"--junitxml={report}", A)
    text = report.read_text()
    result = parse_junit_xml(text)
    assert result is not None
    assert result.failed == ("tests.test_a::test_fail", "tests.test_a.TestC::test_p[2]")
    assert result.errors == ("tests.test_a::test_error",)
    assert "tests.test_a.TestC::test_p[a b]" in result.passed
    assert result.complete
    assert parse_test_output(text) == result  # a cat'ed report is detected too
    cut = parse_junit_xml(text[: text.index("TestC")])
    assert cut is not None and not cut.complete
    assert cut.failed == ("tests.test_a::test_fail",)


def test_junit_collection_error(project: Path, tmp_path: Path) -> None:
    report = tmp_path / "broken.xml"
    pytest_run(project, "-q", f"--junitxml={report}", "broken")
    result = parse_junit_xml(report.read_bytes())
    assert result is not None
    assert result.errors == ("broken.test_broken",)  # pytest writes classname="" for these
    assert result.counts == {"errors": 1}


GENERIC_JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="6" failures="1" errors="1" skipped="1">
  <testsuite name="com.example.CalcTest" tests="4">
    <properties><property name="java.version" value="17"/></properties>
    <testcase classname="com.example.CalcTest" name="adds" time="0.01"/>
    <testcase classname="com.example.CalcTest" name="divides">
      <failure message="expected 2 but was 3" type="AssertionError">stack</failure>
    </testcase>
    <testcase classname="com.example.CalcTest" name="flaky">
      <flakyFailure message="first try failed"/>
    </testcase>
    <testcase classname="com.example.CalcTest" name="connects">
      <error message="refused" type="IOException"/>
      <system-out>log</system-out>
    </testcase>
  </testsuite>
  <testsuite name="other">
    <testsuite name="nested">
      <testcase classname="pkg.Other" name="later"><skipped message="todo"/></testcase>
      <testcase name="no_class"/>
    </testsuite>
  </testsuite>
</testsuites>
"""


def test_junit_generic() -> None:
    result = parse_junit_xml(GENERIC_JUNIT)
    assert result == TestRun(
        framework="junit",
        passed=("com.example.CalcTest::adds", "com.example.CalcTest::flaky", "no_class"),
        failed=("com.example.CalcTest::divides",),
        errors=("com.example.CalcTest::connects",),
        skipped=("pkg.Other::later",),
        counts={"passed": 3, "failed": 1, "errors": 1, "skipped": 1},
        complete=True,
    )
    single = parse_junit_xml(b'<testsuite name="s"><testcase classname="c" name="n"/></testsuite>')
    assert single is not None and single.passed == ("c::n",) and single.complete


@pytest.mark.parametrize(
    "xml",
    [
        "",
        "not xml at all",
        "<html><body/></html>",
        b"\xff\xfe\x00garbage",
        # entity declarations are refused outright (no expansion, no external fetch)
        '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
        '<testsuite><testcase name="&b;"/></testsuite>',
        '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<testsuite><testcase name="&x;"/></testsuite>',
    ],
)
def test_junit_rejects(xml: str | bytes) -> None:
    assert parse_junit_xml(xml) is None


def test_junit_big_report_is_fast() -> None:
    cases = "".join(f'<testcase classname="m.C" name="t{i}"/>' for i in range(200_000))
    xml = f"<testsuites><testsuite>{cases}</testsuite></testsuites>"
    start = time.process_time()  # CPU time: the machine's load does not count
    result = parse_junit_xml(xml)
    assert time.process_time() - start < 2.0
    assert result is not None and result.counts == {"passed": 200_000}
    assert len(result.passed) == MAX_NAMED
