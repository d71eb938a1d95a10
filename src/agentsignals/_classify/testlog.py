"""Per-test outcomes from the output of the agent's own test runs.

A coding agent's test tool prints pytest, unittest or Django-runner output, or writes JUnit XML.
:func:`parse_test_output` and :func:`parse_junit_xml` turn that into a :class:`TestRun`: which
tests passed, failed, errored or were skipped, plus the counts of the final summary line. Recorded
on the tool span, that answers "which tests did the agent turn from failing to passing" without
any benchmark harness.

Test ids
    * pytest: node ids exactly as pytest prints them, ``tests/test_x.py::TestC::test_y[param]``;
      a collection error is recorded under the path pytest names (``tests/test_x.py``).
    * unittest and Django: ``test_name (module.Class)``, the form SWE-bench uses in FAIL_TO_PASS.
      Python 3.11+ prints ``test_name (module.Class.test_name)``; the trailing method name is
      dropped. A failing subtest (``test_name (module.Class) (i=1)``) marks its test failed.
      A test whose docstring is printed on the following line keeps its real id, not the
      docstring.
    * JUnit: pytest's classnames are rebuilt into node ids when the testcase carries a ``file``
      attribute (``junit_family=xunit1``): ``classname="tests.test_x.TestC" name="test_y"
      file="tests/test_x.py"`` becomes ``tests/test_x.py::TestC::test_y``. Without ``file``
      (pytest's default xunit2, and most other producers) the split between module path and
      class cannot be known, so the id is ``classname::name`` (``tests.test_x.TestC::test_y``),
      or just ``name`` when the classname is empty (pytest's collection errors:
      ``tests.test_x``). JUnit has no XPASS, so those count as plain passes there.

Outcomes
    Each test lands in exactly one list. Expected failures (pytest ``XFAIL``, unittest
    ``expected failure``) and non-strict unexpected passes (pytest ``XPASS``) are listed as
    passed, as SWE-bench grades them; unittest's ``unexpected success`` fails the run, and pytest
    reports it as FAILED, so it is listed as failed. ``counts`` keeps them apart (``xfailed``,
    ``xpassed``), so the lists and the counts differ by design. Within one run the worst outcome
    of a test wins (a teardown error after PASSED is an error; a failed subtest fails its test);
    when one output holds several runs, the later run's outcome wins.

    ``counts`` has only the keys its summary names (``passed``, ``failed``, ``errors``,
    ``skipped``, ``xfailed``, ``xpassed``, ``deselected``); for unittest ``passed`` is derived
    from ``Ran N tests`` minus the other outcomes (failed subtests and ``setUpClass`` errors are
    counted by unittest but are not tests run, so it can come out low). ``complete`` is True
    when the last run's final summary was seen (pytest's ``== 1 failed, 2 passed in 0.1s ==``,
    unittest's ``Ran N tests`` followed by ``OK``/``FAILED (...)``); a run cut off by a timeout
    is False but keeps every outcome seen.

Limits: pytest's ``SKIPPED [1] file:line: reason`` summary lines name a location, not a test, so
skipped tests are named only in verbose output; quiet runs name only what the short summary
lists. Each list is capped at 5,000 ids (counts stay complete). Parsing never raises; text that is
not test output gives None.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Final

__all__ = ["MAX_NAMED", "TestRun", "parse_junit_xml", "parse_test_output"]

MAX_NAMED: Final = 5_000
"""Most test ids kept in each of ``passed``, ``failed``, ``errors`` and ``skipped``."""

_MAX_TEXT: Final = 64 * 1024 * 1024
"""Longer text is parsed as its first and last halves of this size (the summary is at the end)."""

_MAX_XML: Final = 64 * 1024 * 1024
"""Only this many characters (or bytes) of a JUnit document are read; the rest counts as cut off."""

_MAX_LINE: Final = 8_192
"""Longer lines are never test result lines (they are printed data), so they are skipped."""

_PASSED: Final = "passed"
_FAILED: Final = "failed"
_ERROR: Final = "error"
_SKIPPED: Final = "skipped"
_RANK: Final = {_PASSED: 0, _SKIPPED: 1, _ERROR: 2, _FAILED: 3}

_COUNT_KEYS: Final = {
    "passed": "passed",
    "failed": "failed",
    "error": "errors",
    "errors": "errors",
    "skipped": "skipped",
    "xfailed": "xfailed",
    "xpassed": "xpassed",
    "deselected": "deselected",
}

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


@dataclass(frozen=True)
class TestRun:
    """The outcomes of one test run, parsed from its console output or JUnit XML."""

    __test__ = False  # not a pytest test class, despite the name

    framework: str
    """``"pytest"``, ``"unittest"``, ``"django"`` or ``"junit"``."""
    passed: tuple[str, ...]
    """Test ids in output order, deduplicated (expected failures count as passed)."""
    failed: tuple[str, ...]
    """Assertion failures (and unittest's unexpected successes)."""
    errors: tuple[str, ...]
    """Errors: collection errors, exceptions in setup or teardown."""
    skipped: tuple[str, ...]
    counts: dict[str, int]
    """From the summary line when present; may exceed the named lists when output isn't verbose."""
    complete: bool
    """True when the final summary line was seen (a run cut off by a timeout is False)."""


class _Outcomes:
    """Test statuses in first-seen order, with run segments and the last summary's counts."""

    __slots__ = ("after_summary", "complete", "counts", "evidence", "segment", "status")

    def __init__(self) -> None:
        self.status: dict[str, tuple[str, int]] = {}
        self.segment = 0
        self.after_summary = False
        self.complete = False
        self.counts: dict[str, int] = {}
        self.evidence = 0

    def new_run(self) -> None:
        self.segment += 1
        self.after_summary = False
        self.complete = False

    def record(self, test_id: str, status: str) -> None:
        if not test_id:
            return
        if self.after_summary:  # a result after a summary: another run has started
            self.new_run()
        self.evidence += 1
        old = self.status.get(test_id)
        if old is not None and old[1] == self.segment and _RANK[old[0]] > _RANK[status]:
            return
        self.status[test_id] = (status, self.segment)

    def summary(self, counts: dict[str, int]) -> None:
        self.counts = counts
        self.complete = True
        self.after_summary = True
        self.evidence += 3

    def run(self, framework: str) -> TestRun:
        named: dict[str, list[str]] = {_PASSED: [], _FAILED: [], _ERROR: [], _SKIPPED: []}
        for test_id, (status, _) in self.status.items():
            bucket = named[status]
            if len(bucket) < MAX_NAMED:
                bucket.append(test_id)
        return TestRun(
            framework=framework,
            passed=tuple(named[_PASSED]),
            failed=tuple(named[_FAILED]),
            errors=tuple(named[_ERROR]),
            skipped=tuple(named[_SKIPPED]),
            counts=dict(self.counts),
            complete=self.complete,
        )


# --- pytest -------------------------------------------------------------------------------------

_PYTEST_STATUS: Final = {
    "PASSED": _PASSED,
    "FAILED": _FAILED,
    "ERROR": _ERROR,
    "SKIPPED": _SKIPPED,
    "XFAIL": _PASSED,
    "XPASS": _PASSED,
}
_PYTEST_SUMMARY = re.compile(
    r"=*\s*(?P<body>[a-z0-9 ,]+?) in \d+(?:\.\d+)?s(?: \([0-9:., a-z]*\))?\s*=*"
)
_PYTEST_MARKERS: Final = ("::", "test session starts", " in ")
"""Every pytest outcome line holds "::", and every summary line " in " (``1 passed in 0.1s``)."""
_PYTEST_COUNT_ITEM = re.compile(r"(\d+) ([a-z][a-z ]*)")
_PYTEST_XDIST = re.compile(r"\[gw\d+\] (?:\[\s*\d+%\] )?")
_PYTEST_BARE = re.compile(r"$|\(|\[\s*\d+%\]")  # after an outcome word printed on its own (-s)
_PYTEST_COLLECT_ERROR = re.compile(r"_+ ERROR collecting (.+?) _+")


# A node id: no spaces except inside its trailing "[parameters]", which end at "]" + space or end.
_NODEID = re.compile(r"[^\s\[]+(?:\[.*?\])?(?=\s|$)")


def _take_nodeid(text: str) -> tuple[str, str]:
    """Split a leading node id off `text`; returns it and the rest after one space."""
    m = _NODEID.match(text)
    if m is None:  # unbalanced brackets: up to the first space
        node, _, rest = text.partition(" ")
        return node, rest
    end = m.end()
    return text[:end], text[end + 1 :]


def _is_nodeid(node: str) -> bool:
    return bool(node) and node[0] not in "[(<'\"" and ("::" in node or node.endswith(".py"))


def _pytest_word(word: str) -> tuple[bool, str | None]:
    """Whether `word` is one of pytest's outcome words, and our status for it (None: no outcome).

    A failed subtest (``SUBFAILED(i=1)``) fails its test, which pytest 9 still reports PASSED;
    passed or skipped subtests and reruns (``SUBPASSED(i=0)``, ``RERUN``) decide nothing.
    """
    status = _PYTEST_STATUS.get(word)
    if status is not None:
        return True, status
    if word.startswith("SUBFAILED"):
        return True, _FAILED
    return word == "RERUN" or word.startswith(("SUBPASSED", "SUBSKIPPED")), None


def _pytest_counts(body: str) -> dict[str, int] | None:
    if body == "no tests ran":
        return {}
    counts: dict[str, int] = {}
    for item in body.split(", "):
        m = _PYTEST_COUNT_ITEM.fullmatch(item)
        if m is None:
            return None
        key = _COUNT_KEYS.get(m.group(2))
        if key is not None:
            counts[key] = counts.get(key, 0) + int(m.group(1))
    return counts or None  # "3 files changed in 0.5s" is not a pytest summary


def _parse_pytest(lines: list[str]) -> _Outcomes:
    out = _Outcomes()
    pending: str | None = None  # `path::test` printed, outcome still to come (pytest -s)
    for raw in lines:
        if len(raw) > _MAX_LINE:
            continue
        line = raw.strip()
        if not line:
            continue
        first = line[0]
        if first == "_":
            m = _PYTEST_COLLECT_ERROR.fullmatch(line)
            if m is not None:
                out.record(m.group(1), _ERROR)
            continue
        if first == "=" or first == "n" or "0" <= first <= "9":
            if first == "=" and "test session starts" in line:
                out.new_run()
                out.evidence += 3
                pending = None
                continue
            if " in " in line:
                m = _PYTEST_SUMMARY.fullmatch(line)
                counts = None if m is None else _pytest_counts(m.group("body"))
                if counts is not None:
                    out.summary(counts)
                    pending = None
                    continue
            if first == "=":
                pending = None  # a section starts
                continue
        if first in "PFESXR[":
            if first == "[":  # pytest-xdist: "[gw0] [ 50%] PASSED path::test"
                m = _PYTEST_XDIST.match(line)
                if m is None:
                    continue
                line = line[m.end() :]
            word, _, rest = line.partition(" ")
            known, status = _pytest_word(word)
            if known:
                # "FAILED path::test - message" (short summary) or a bare outcome (pytest -s)
                node, _ = _take_nodeid(rest)
                if _is_nodeid(node):
                    if status is not None:
                        out.record(node, status)
                elif pending is not None and status is not None and _PYTEST_BARE.match(rest):
                    out.record(pending, status)
                    pending = None
                continue
        if "::" not in line:
            continue
        # "path::test PASSED [ 50%]", "path::test SKIPPED (reason)", "path::test <printed output>"
        node, rest = _take_nodeid(line)
        if "::" not in node or not _is_nodeid(node):
            continue
        known, status = _pytest_word(rest.lstrip().partition(" ")[0])
        if status is not None:
            out.record(node, status)
        pending = None if known else node
    return out


# --- unittest and Django ------------------------------------------------------------------------

_UT_ID = r"(?P<name>[^\s()]+) \((?P<where>[\w.]+)\)(?P<sub> [\[(].*[\])])?"
_UT_RESULT = re.compile(_UT_ID + r"(?: \.\.\.(?: (?P<rest>.*))?)?")
_UT_HEADER = re.compile(r"(?P<kind>FAIL|ERROR|UNEXPECTED SUCCESS): " + _UT_ID)
_UT_RAN = re.compile(r"Ran (\d+) tests? in \d+(?:\.\d+)?s")
_UT_VERDICT = re.compile(r"(OK|FAILED|NO TESTS RAN)(?: \((?P<detail>[^()]*)\))?")
_UT_DETAIL_KEYS: Final = {
    "failures": "failed",
    "errors": "errors",
    "skipped": "skipped",
    "expected failures": "xfailed",
    "unexpected successes": "xpassed",
}
_UT_HEADER_STATUS: Final = {"FAIL": _FAILED, "ERROR": _ERROR, "UNEXPECTED SUCCESS": _FAILED}
_UNITTEST_MARKERS: Final = (" ...", "Ran ", "FAIL: ", "ERROR: ")
_DJANGO_MARKERS: Final = (
    "Testing against Django installed in",
    "Creating test database for alias",
    "Destroying test database for alias",
    "Using existing test database for alias",
    "System check identified",
    "Skipping setup of unused database",
)


def _ut_status(rest: str) -> str | None:
    if rest == "ok" or rest == "expected failure":
        return _PASSED
    if rest == "FAIL" or rest == "unexpected success":
        return _FAILED
    if rest == "ERROR":
        return _ERROR
    if rest == "skipped" or rest.startswith("skipped "):
        return _SKIPPED
    return None


def _ut_id(name: str, where: str) -> str:
    if where.endswith(name) and where.endswith("." + name):  # 3.11+: "test_x (mod.Class.test_x)"
        where = where[: -len(name) - 1]
    return f"{name} ({where})"


def _parse_unittest(lines: list[str]) -> _Outcomes:
    out = _Outcomes()
    ran: int | None = None  # from "Ran N tests", waiting for OK / FAILED (...)
    pending_doc: str | None = None  # an id alone on its line: its docstring line follows
    pending_out: str | None = None  # "id ... <printed output>": the outcome comes on a later line
    for raw in lines:
        if len(raw) > _MAX_LINE:
            continue
        line = raw.strip()
        if not line:
            continue
        doc, pending_doc = pending_doc, None
        first = line[0]
        if first in "=-":
            if line.startswith(("=====", "-----")):
                pending_out = None
            continue
        if first == "R" and line.startswith("Ran "):
            m = _UT_RAN.fullmatch(line)
            if m is not None:
                ran = int(m.group(1))
                out.evidence += 1
                pending_out = None
                continue
        if ran is not None and first in "OFN":
            m = _UT_VERDICT.fullmatch(line)
            if m is not None:
                out.summary(_ut_counts(ran, m.group("detail") or ""))
                ran = None
                continue
        if first in "FEU" and ": " in line:
            m = _UT_HEADER.fullmatch(line)
            if m is not None:
                kind, name, where, _ = m.groups()
                out.record(_ut_id(name, where), _UT_HEADER_STATUS[kind])
                continue
        if doc is not None and " ..." in line:  # "First line of the docstring ... ok"
            status = _ut_status(line.rpartition(" ...")[2].strip())
            if status is not None:
                out.record(doc, status)
            else:
                pending_out = doc
            continue
        if " (" in line:
            m = _UT_RESULT.fullmatch(line)
            if m is not None:
                name, where, sub, rest = m.groups()
                if where.endswith(name) and where.endswith("." + name):  # inlined _ut_id
                    where = where[: -len(name) - 1]
                test_id = f"{name} ({where})"
                if rest is None and sub is None and " ..." not in line:
                    pending_doc, pending_out = test_id, None  # docstring on the next line
                    continue
                status = _PASSED if rest == "ok" else _ut_status(rest or "")
                if status is not None:
                    out.record(test_id, status)
                    pending_out = None
                elif sub is None:
                    pending_out = test_id
                continue
        if pending_out is not None:
            status = _ut_status(line)
            if status is not None:
                out.record(pending_out, status)
                pending_out = None
    return out


def _ut_counts(ran: int, detail: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in detail.split(","):
        key, _, value = item.strip().partition("=")
        name = _UT_DETAIL_KEYS.get(key)
        if name is not None and value.isdigit():
            counts[name] = counts.get(name, 0) + int(value)
    passed = ran - sum(counts.values())
    if passed > 0:
        counts = {"passed": passed, **counts}
    return counts


# --- entry points -------------------------------------------------------------------------------


def parse_test_output(text: str) -> TestRun | None:
    """Parse pytest, unittest or Django-runner console output (or JUnit XML) into a TestRun.

    The format is detected from the text. Returns None when it is not recognisable test output;
    never raises.
    """
    try:
        return _parse_test_output(text)
    except Exception:  # the agent's output is arbitrary: never let it break instrumentation
        return None


def _parse_test_output(text: str) -> TestRun | None:
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", "replace")
    if not isinstance(text, str) or not text:
        return None
    if len(text) > _MAX_TEXT:
        half = _MAX_TEXT // 2
        text = text[:half] + "\n" + text[-half:]
    if text[:512].lstrip().startswith(("<?xml", "<testsuite")):
        return parse_junit_xml(text)
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    # Cheap whole-text checks decide which line parsers are worth running.
    maybe_pytest = any(marker in text for marker in _PYTEST_MARKERS)
    maybe_unittest = any(marker in text for marker in _UNITTEST_MARKERS)
    if not (maybe_pytest or maybe_unittest):
        return None
    lines = text.splitlines()
    pytest_out = _parse_pytest(lines) if maybe_pytest else _Outcomes()
    unittest_out = _parse_unittest(lines) if maybe_unittest else _Outcomes()
    if pytest_out.evidence == 0 and unittest_out.evidence == 0:
        return None
    if unittest_out.evidence > pytest_out.evidence:
        django = any(marker in text for marker in _DJANGO_MARKERS)
        return unittest_out.run("django" if django else "unittest")
    return pytest_out.run("pytest")


def parse_junit_xml(xml: str | bytes) -> TestRun | None:
    """Parse a JUnit XML report (pytest's ``--junitxml`` or any testsuites/testsuite/testcase file).

    A document cut off part-way keeps the testcases read so far, with ``complete`` False. Returns
    None when the input is not JUnit XML, or declares entities; never raises.
    """
    try:
        return _parse_junit_xml(xml)
    except Exception:  # arbitrary input: never let it break instrumentation
        return None


def _parse_junit_xml(xml: str | bytes) -> TestRun | None:
    if isinstance(xml, bytearray | memoryview):
        xml = bytes(xml)
    if isinstance(xml, str):
        if "<!ENTITY" in xml:
            return None  # JUnit never declares entities: refuse rather than expand them
    elif not isinstance(xml, bytes) or b"<!ENTITY" in xml:
        return None
    cut = len(xml) > _MAX_XML
    if cut:
        xml = xml[:_MAX_XML]
    target = _JUnitTarget()
    parser = ET.XMLParser(target=target)
    chunk = 1 << 20
    try:
        for start in range(0, len(xml), chunk):
            parser.feed(xml[start : start + chunk])
            if target.rejected:
                return None
        parser.close()
    except ET.ParseError:
        pass  # cut off or malformed: keep the testcases read so far
    if target.rejected or not target.root_seen:
        return None
    out = target.out
    tally = {_PASSED: 0, _FAILED: 0, _ERROR: 0, _SKIPPED: 0}
    for status, _ in out.status.values():
        tally[status] += 1
    xfailed = len(target.xfailed)
    counts = {
        "passed": tally[_PASSED] - xfailed,
        "failed": tally[_FAILED],
        "errors": tally[_ERROR],
        "skipped": tally[_SKIPPED],
        "xfailed": xfailed,
    }
    out.counts = {key: value for key, value in counts.items() if value > 0}
    out.complete = target.finished and not cut
    return out.run("junit")


class _JUnitTarget:
    """An ElementTree parser target: reads testcases as they stream past, builds no tree."""

    def __init__(self) -> None:
        self.out = _Outcomes()
        self.depth = 0
        self.root_seen = False
        self.rejected = False
        self.finished = False
        self.case: tuple[str, int] | None = None  # id of the open testcase, its depth
        self.status = _PASSED
        self.xfail = False
        self.xfailed: set[str] = set()

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.depth += 1
        if "}" in tag:
            tag = tag.rpartition("}")[2]
        if not self.root_seen:
            self.root_seen = True
            self.rejected = tag not in ("testsuites", "testsuite")
            return
        if self.rejected:
            return
        if tag == "testcase":
            get = attrib.get
            name = _junit_id(get("classname", ""), get("name", ""), get("file"))
            self.case = (name, self.depth)
            self.status, self.xfail = _PASSED, False
        elif self.case is not None and self.depth == self.case[1] + 1:
            if tag == "failure":
                self.status = _FAILED
            elif tag == "error":
                if self.status != _FAILED:
                    self.status = _ERROR
            elif tag == "skipped" and self.status == _PASSED:
                if attrib.get("type") == "pytest.xfail":
                    self.xfail = True
                else:
                    self.status = _SKIPPED

    def end(self, tag: str) -> None:
        if self.case is not None and self.depth == self.case[1]:
            test_id = self.case[0]
            self.case = None
            if test_id:
                self.out.record(test_id, self.status)
                if self.xfail and self.status == _PASSED:
                    self.xfailed.add(test_id)
                else:
                    self.xfailed.discard(test_id)
        self.depth -= 1
        if self.depth == 0:
            self.finished = True

    def data(self, data: str) -> None:
        pass

    def close(self) -> None:
        pass


def _junit_id(classname: str, name: str, file: str | None) -> str:
    if not classname:
        return name
    if not name:
        return classname
    if file and file.endswith(".py"):
        module = file[:-3].replace("\\", "/").replace("/", ".")
        if classname == module:
            return f"{file}::{name}"
        if classname.startswith(module + "."):
            classes = classname[len(module) + 1 :].replace(".", "::")
            return f"{file}::{classes}::{name}"
    return f"{classname}::{name}"
