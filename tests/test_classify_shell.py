"""The shell classifier, table-driven: each command's category, the files it reads, searches
and writes, and its test runner, read from the syntax tree. Every row is checked three ways:
the pure reading, a live `@trace_tool def bash(command)` call, and the same call imported."""

from __future__ import annotations

import pytest

import agentsignals
from agentsignals import semconv as sc
from agentsignals._classify import shell
from agentsignals._classify.shell import read_command, search_hits
from agentsignals._import.builder import TrajectoryBuilder
from agentsignals.testing import CapturedSpans, attributes

# (command, category, reads, searched, writes, runner)
ROWS: list[tuple[str, str, list[str], list[str], list[str], str | None]] = [
    # Heredoc bodies are data: only the redirect target is written.
    ("cat <<'EOF' > f.py\nx = [1,\n255]\n0: y > z\nEOF", "shell", [], [], ["f.py"], None),
    ("cat > new.py <<'EOF'\nprint(1) > not_a_file\nEOF", "shell", [], [], ["new.py"], None),
    ("cat > a.py <<-EOF\n\tx\n\tEOF\necho done", "shell", [], [], ["a.py"], None),
    # A `>` inside a quoted argument is not a redirect.
    ('gem install x --description="needs ~> 1.7"', "shell", [], [], [], None),
    # BSD/macOS sed -i takes an empty suffix; the script is not a file.
    ("sed -i '' 's/a/b/' f.py", "shell", [], [], ["f.py"], None),
    ("sed -i 's/a/b/' src/x.py", "shell", [], [], ["src/x.py"], None),
    ("sed -i -e s/a/b/ a.py b.py", "shell", [], [], ["a.py", "b.py"], None),
    ("sed -i.bak 's/a/b/' a.py", "shell", [], [], ["a.py"], None),
    ("perl -pi -e 's/a/b/' z.py", "shell", [], [], ["z.py"], None),
    ("rm x.py 2>/dev/null; echo \"done\"", "shell", [], [], ["x.py"], None),
    ("for f in *.py; do echo $f; done", "shell", [], [], [], None),
    ("mv a.py .", "shell", [], [], ["a.py"], None),
    ("mv a.py b.py", "shell", [], [], ["b.py", "a.py"], None),
    ("cp a.py b.py && git checkout -- c.py && pytest", "test", [], [], ["b.py", "c.py"], "pytest"),
    ("git checkout main", "shell", [], [], [], None),
    ("git restore src/x.py", "shell", [], [], ["src/x.py"], None),
    ("echo hi >> log.txt 2>/dev/null", "shell", [], [], ["log.txt"], None),
    ("cat a.py | tee c.py", "shell", ["a.py"], [], ["c.py"], None),
    ("rm -f a.py && touch b.py", "shell", [], [], ["a.py", "b.py"], None),
    ("python - <<'EOF'\nopen('a.py', 'w').write('x')\nEOF", "shell", [], [], ["a.py"], None),
    (
        "python3 <<EOF\nfrom pathlib import Path\nPath('b.txt').write_text('y')\nEOF",
        "shell", [], [], ["b.txt"], None,
    ),
    ("python -c \"open('c.py', 'a').write('1')\"", "shell", [], [], ["c.py"], None),
    ("python -c \"print(open('c.py').read())\"", "shell", [], [], [], None),
    (
        "git apply <<'EOF'\ndiff --git a/src/x.py b/src/x.py\n--- a/src/x.py\n+++ b/src/x.py\n"
        "@@ -1 +1 @@\n-a\n+b\nEOF",
        "shell", [], [], ["src/x.py"], None,
    ),
    # Reads.
    ("cat setup.py", "read", ["setup.py"], [], [], None),
    ("head -n 20 a.py", "read", ["a.py"], [], [], None),
    ("head -50 a.py", "read", ["a.py"], [], [], None),
    ("tail -n +10 src/a.py", "read", ["src/a.py"], [], [], None),
    ("sed -n '1,40p' a.py", "read", ["a.py"], [], [], None),
    ("nl -ba x.py | sed -n '10,20p'", "read", ["x.py"], [], [], None),
    ("cd /repo && cat a.py b.py", "read", ["a.py", "b.py"], [], [], None),
    ("less 'my file.py'", "read", ["my file.py"], [], [], None),
    # Searches: a named file is searched in; a recursive search names its hits in its output.
    ("grep -n PATTERN src/x.py", "search", [], ["src/x.py"], [], None),
    ("grep -rn 'def mean' src", "search", [], [], [], None),
    ("grep -rn foo . > /dev/null", "search", [], [], [], None),
    ("rg TODO", "search", [], [], [], None),
    ("find . -name '*.py' | head", "search", [], [], [], None),
    ("git grep -n foo", "search", [], [], [], None),
    ("ls -la", "search", [], [], [], None),
    # Test runners (the registry's table).
    ("python -m pytest tests/test_x.py -x", "test", [], [], [], "pytest"),
    ("cd repo && pytest -q 2>&1 | tail -5", "test", [], [], [], "pytest"),
    ("timeout 300 python3 -m pytest", "test", [], [], [], "pytest"),
    ("FOO=1 pytest", "test", [], [], [], "pytest"),
    ("bash -c 'cd /r && pytest -q'", "test", [], [], [], "pytest"),
    ("python manage.py test auth", "test", [], [], [], "django"),
    ("python runtests.py", "test", [], [], [], "django"),
    ("cd tests && python runtests.py admin_views", "test", [], [], [], "django"),
    ("./tests/runtests.py forms", "test", [], [], [], "django"),
    ("python -m unittest discover", "test", [], [], [], "unittest"),
    ("mix test", "test", [], [], [], "mix"),
    ("./gradlew test", "test", [], [], [], "gradle"),
    ("mvn test", "test", [], [], [], "maven"),
    ("mvn -q clean test", "test", [], [], [], "maven"),
    ("cargo test --release", "test", [], [], [], "cargo"),
    ("go test ./...", "test", [], [], [], "go"),
    ("npm test", "test", [], [], [], "npm"),
    ("npm run test:unit", "test", [], [], [], "npm"),
    ("npx jest src", "test", [], [], [], "jest"),
    ("vitest run", "test", [], [], [], "vitest"),
    ("tox -e py39", "test", [], [], [], "tox"),
    ("nox -s tests", "test", [], [], [], "nox"),
    ("make test", "test", [], [], [], "make"),
    ("make -C build check", "test", [], [], [], "make"),
    ("ctest --output-on-failure", "test", [], [], [], "ctest"),
    ("bazel test //...", "test", [], [], [], "bazel"),
    # Plain shell.
    ("python -c 'print(1)'", "shell", [], [], [], None),
    ("pip install -e .", "shell", [], [], [], None),
    ("python reproduce.py", "shell", [], [], [], None),
    ("make build", "shell", [], [], [], None),
    ("go build ./...", "shell", [], [], [], None),
    ("'unbalanced", "shell", [], [], [], None),
    ("", "shell", [], [], [], None),
]  # fmt: skip

IDS = [repr(r[0])[:40] for r in ROWS]


@pytest.mark.parametrize(
    ("command", "category", "reads", "searched", "writes", "runner"), ROWS, ids=IDS
)
def test_reading(
    command: str,
    category: str,
    reads: list[str],
    searched: list[str],
    writes: list[str],
    runner: str | None,
) -> None:
    r = read_command(command)
    assert (r.category.value, list(r.reads), list(r.searched), list(r.writes), r.runner) == (
        category, reads, searched, writes, runner,
    )  # fmt: skip
    assert r.complete


@pytest.mark.parametrize(
    ("command", "category", "reads", "searched", "writes", "runner"), ROWS, ids=IDS
)
def test_live_and_imported_agree(
    captured: CapturedSpans,
    command: str,
    category: str,
    reads: list[str],
    searched: list[str],
    writes: list[str],
    runner: str | None,
) -> None:
    @agentsignals.trace_tool
    def bash(command: str) -> str:
        return ""

    with agentsignals.attempt(), agentsignals.turn():
        bash(command)
    (live,) = [attributes(s) for s in captured.spans_of_type("tool")]

    traj = TrajectoryBuilder(source_format="t", source_path="p", task_id="x")
    attempt = traj.attempt()
    attempt.turn()
    attempt.tool("bash", arguments={"command": command}, exit_code=1)  # failed, see below
    imported = next(
        s.attributes
        for s in traj.finish()
        if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "tool"
    )
    files = list(dict.fromkeys([*reads, *searched])) or None
    for attrs in (live, imported):
        assert attrs[sc.AGENT_SIGNALS_TOOL_CATEGORY] == category
        assert attrs.get(sc.AGENT_SIGNALS_TOOL_FILES) == files
        assert attrs.get(sc.AGENT_SIGNALS_TEST_RUNNER) == runner
    # Imported: the files the syntax writes, even though the command exited non-zero, and
    # marked as read from the text.
    assert imported[sc.AGENT_SIGNALS_TOOL_CHANGED_FILES] == writes
    assert imported.get(sc.AGENT_SIGNALS_TOOL_CHANGES_INFERRED) == (True if writes else None)


def test_read_tool_names_its_file_live_as_imported(captured: CapturedSpans) -> None:
    @agentsignals.trace_tool
    def read_file(path: str) -> str:
        return "x = 1\n"

    with agentsignals.attempt(), agentsignals.turn():
        read_file("src/a.py")
        with agentsignals.tool("Read", arguments={"file_path": "src/b.py"}):
            pass
    live = [attributes(s) for s in captured.spans_of_type("tool")]
    traj = TrajectoryBuilder(source_format="t", source_path="p", task_id="x")
    attempt = traj.attempt()
    attempt.turn()
    attempt.tool("read_file", arguments={"path": "src/a.py"})
    attempt.tool("Read", arguments={"file_path": "src/b.py"})
    imported = [
        s.attributes
        for s in traj.finish()
        if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "tool"
    ]
    assert [a[sc.AGENT_SIGNALS_TOOL_FILES] for a in live] == [["src/a.py"], ["src/b.py"]]
    assert [a[sc.AGENT_SIGNALS_TOOL_FILES] for a in imported] == [["src/a.py"], ["src/b.py"]]
    assert [a[sc.AGENT_SIGNALS_TOOL_CATEGORY] for a in live + imported] == ["read"] * 4


def test_search_hits_from_output_live_and_imported(captured: CapturedSpans) -> None:
    output = "src/a.py:12:def mean(x):\nsrc/b/c.py:3:    return mean(y)\n"

    @agentsignals.trace_tool
    def bash(command: str) -> str:
        return output

    with agentsignals.attempt(), agentsignals.turn():
        bash("grep -rn 'mean(' src")
    (live,) = [attributes(s) for s in captured.spans_of_type("tool")]
    traj = TrajectoryBuilder(source_format="t", source_path="p", task_id="x")
    attempt = traj.attempt()
    attempt.turn()
    attempt.tool("bash", arguments={"command": "grep -rn 'mean(' src"}, result=output)
    imported = next(
        s.attributes
        for s in traj.finish()
        if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "tool"
    )
    for attrs in (live, imported):
        assert attrs[sc.AGENT_SIGNALS_TOOL_RESULT_FILES] == ["src/a.py", "src/b/c.py"]


@pytest.mark.parametrize(
    ("output", "command", "hits"),
    [
        ("a.py:1:x\na.py:2:y\nb/c.py:9:z\n", "grep -rn x .", ["a.py", "b/c.py"]),
        ("a.py\nsrc/b.py\n", "grep -rl x .", ["a.py", "src/b.py"]),
        ("./a.py:x = 1\n", "grep -r x .", ["./a.py"]),
        (
            'Found 3 matches for "x" in /repo:\n/repo/a.py (2 matches)\n/repo/b.py (1 matches)\n'
            'End of matches for "x" in /repo\n',
            None,
            ["/repo/a.py", "/repo/b.py"],
        ),
        ("no matches\n", "grep -rn x .", []),
        ("", "grep x", []),
    ],
)
def test_search_hits(output: str, command: str | None, hits: list[str]) -> None:
    assert search_hits(output, command) == hits


def test_huge_heredoc_is_bounded_and_still_read_right() -> None:
    """An 8 MiB heredoc: the body beyond the bound is skipped up to its delimiter (one string
    search), so the file it writes and the command after it are still read."""
    body = "x = 1  # a > b 'q' \"dq\" ; rm -rf / \n" * 240_000
    command = "cat <<'EOF' > big.py\n" + body + "EOF\npython -m pytest -q"
    assert len(command) > 8 * 2**20
    r = read_command(command)
    assert (r.category.value, list(r.writes), r.runner, r.complete) == (
        "test", ["big.py"], "pytest", True,
    )  # fmt: skip


def test_huge_command_without_heredoc_is_read_in_part() -> None:
    command = "echo " + "a b c > d.txt " * 700_000
    r = read_command(command)
    assert not r.complete  # read up to the bound, and says so
    assert r.writes == ("d.txt",)


def test_users_extend_the_runner_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSIGNALS_TEST_RUNNERS", "ci=./ci.sh ... test;bats=bats")
    monkeypatch.setattr(shell, "_runners", None)
    monkeypatch.setattr(shell, "_cache", {})
    assert shell.test_runner_for(["./ci.sh", "--fast", "unit", "test"]) == "ci"
    assert read_command("bats tests/").runner == "bats"
    assert read_command("pytest").runner == "pytest"  # the registry's table still applies


def test_registry_table_covers_the_runners_of_the_issue() -> None:
    names = {name for name, _ in sc.TEST_RUNNER_PATTERNS}
    assert {
        "pytest", "unittest", "django", "mix", "gradle", "maven", "cargo", "go", "npm", "jest",
        "vitest", "tox", "nox", "make", "ctest", "bazel",
    } <= names  # fmt: skip


@pytest.mark.parametrize(
    "command",
    [r[0] for r in ROWS]
    + [
        "grep -rl 'import foo' --include='*.py' .",
        'echo "a b"\'c\' > "out file.txt" 2>&1',
        "cd /testbed && python -m pytest tests/test_x.py -x -q 2>&1 | tail -20",
        "ls>listing.txt;cat<in.txt",
        "X=1 Y=2 make test",
        "python a.py >> log.txt 2>/dev/null || echo failed",
        "cd /testbed && git status && git diff --stat # 12",
        "ls # c > d",
        "echo a#b > f.txt",
        "cat a.py > b.py # copy",
        "cd /repo\npython -m pytest -x\n",
        "cat > /tmp/r1.py <<'EOF'\nimport pkg\nprint(pkg.f(1))\nEOF\npython /tmp/r1.py",
        "python3 - <<\"PY\"\nopen('o.txt', 'w').write('x')\nPY",
        "cat <<'EOF' | python\nprint(1)\nEOF",
        "patch -p1 <<'EOF'\n--- a/x.py\n+++ b/x.py\n@@\n-a\n+b\nEOF",
        "cat > a.txt <<'EOF'\n$(rm -rf x) `b` > c\nEOF",
        "cat <<EOF > b.txt\n$(rm x)\nEOF",
        "ls &&\ncat a.py",
    ],
)
def test_plain_lexer_agrees_with_the_parser(command: str) -> None:
    """Commands in the plain subset skip the parser; their reading must be the parser's."""
    lexed = shell._lex_lines(command)
    if lexed is None:
        return  # outside the subset: only the parser reads it
    fast = shell._reading(lexed[0], lexed[1], True)
    parser = shell._parser()
    assert parser is not None
    walker = shell._Walker()
    walker.walk(parser.parse(command.encode()).root_node)
    assert fast == shell._reading(walker.commands, walker.writes, True)
