"""What a shell command does, read from its syntax tree: the files it reads and writes, whether
it runs tests (and with which runner), and its tool category.

One reading serves live tools, importers and verification, so a live `bash("cat x.py")` and
the same call imported record the same files. The command is parsed with tree-sitter's bash
grammar (MIT), loaded on first use (never by `import agentsignals`); heredoc bodies, quoted
arguments and redirections are told apart by the grammar, not by patterns. Code fed to Python
(`python - <<EOF`, `python -c`) is read with Python's own parser for the files it opens for
writing; a diff fed to `patch`/`git apply` names the files it changes.

Cost is bounded per call: readings are cached by command text (recent ones); lines in the
plain subset of shell (words, quotes without expansions, `|`, `&&`, `;`, redirections to a
word, comments, heredocs with a quoted delimiter) are lexed exactly without the parser, which
handles everything else; and a command larger than `MAX_PARSE_BYTES` is cut down before
parsing: heredoc bodies beyond the bound are dropped (their delimiter is found with one string
search), and what is still too large is read up to the bound and marked incomplete.
"""

from __future__ import annotations

import ast
import fnmatch
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from agentsignals import semconv as sc

__all__ = [
    "MAX_PARSE_BYTES",
    "ShellReading",
    "read_command",
    "search_hits",
    "test_runner_for",
]

MAX_PARSE_BYTES = 64 * 1024
"""Commands up to this size are parsed whole; larger ones are cut down first (see module)."""

_CACHE_MAX = 256
_CACHE_TEXT_MAX = 8 * 1024  # longer commands are not kept in the cache
_MAX_NODES = 50_000  # syntax nodes visited per command at most


@dataclass(frozen=True, slots=True)
class ShellReading:
    """What one shell command does, as far as its text tells.

    * ``category``: ``test`` when any command in it runs a test runner; ``shell`` when it
      writes files (an edit through the shell) or does anything else; ``search`` / ``read``
      when its first command (after ``cd`` and the like) searches or prints files.
    * ``reads``: files printed by read commands (``cat``, ``head``, ``tail``, ``less``, ``nl``,
      ``sed`` without ``-i``, ``awk``), in order.
    * ``searched``: files named as operands of a non-recursive ``grep`` (searched in).
    * ``writes``: files the syntax says are written or removed: output redirections (also of
      heredocs), ``sed -i``/``perl -i``, ``tee``, ``cp``/``mv`` (both ends of a move), ``rm``,
      ``touch``, ``truncate``, ``git checkout -- f``/``git restore f``, files a diff fed to
      ``patch``/``git apply`` changes, and files Python code fed to ``python`` opens for
      writing. What the command does at run time beyond its text (a script that writes files)
      is not seen.
    * ``runner``: the test runner's name from the registry's table, or None.
    * ``complete``: False when the command was larger than the bound and only part was read.
    """

    category: sc.ToolCategory
    reads: tuple[str, ...] = ()
    searched: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    runner: str | None = None
    complete: bool = True

    @property
    def files(self) -> tuple[str, ...]:
        """Files the command names as read or searched (`agent_signals.tool.files`)."""
        if not self.searched:
            return self.reads
        return tuple(dict.fromkeys((*self.reads, *self.searched)))


# ---------------------------------------------------------------------------- program tables

_SEARCH_PROGRAMS = frozenset(
    {"grep", "egrep", "fgrep", "rg", "ag", "ack", "find", "fd", "ls", "tree", "locate"}
)
_GREP_PROGRAMS = frozenset({"grep", "egrep", "fgrep"})
_READ_PROGRAMS = frozenset({"cat", "head", "tail", "less", "more", "nl", "bat", "tac", "wc"})
# Options of read programs that take a value (`head -n 20 f`).
_READ_VALUE_OPTIONS = {
    "head": frozenset({"-n", "-c", "--lines", "--bytes"}),
    "tail": frozenset({"-n", "-c", "--lines", "--bytes", "-s", "--sleep-interval", "--pid"}),
    "nl": frozenset({"-b", "-d", "-f", "-h", "-i", "-l", "-n", "-s", "-v", "-w"}),
}
_SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh"})
# Commands that set up rather than act: skipped when choosing the category.
_SETUP_PROGRAMS = frozenset(
    {
        "cd", "pushd", "popd", "export", "set", "unset", "source", ".", "true", ":", "echo",
        "printf", "sleep", "clear", "alias", "shopt", "ulimit", "umask",
    }
)  # fmt: skip
# Wrappers that run the rest of the line: name -> positional words they take first.
_WRAPPERS = {
    "env": 0, "time": 0, "nice": 0, "nohup": 0, "sudo": 0, "command": 0, "exec": 0,
    "xvfb-run": 0, "stdbuf": 0, "timeout": 1, "caffeinate": 0, "unbuffer": 0,
}  # fmt: skip
# Two-word wrappers (`uv run pytest`, `poetry run pytest`, `bundle exec rspec`).
_WRAPPERS2 = frozenset(
    {("uv", "run"), ("poetry", "run"), ("pipenv", "run"), ("pdm", "run"), ("hatch", "run"),
     ("bundle", "exec"), ("pnpm", "exec"), ("conda", "run"), ("rye", "run")}
)  # fmt: skip
_PYTHON = re.compile(r"^(?:python|pypy)(?:\d+(?:\.\d+)*)?$|^py$")
_NOT_FILES = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "-", ".", ".."})
_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")
# Anything but plain word characters and blanks (quotes, operators, expansions, newlines).
_SPECIAL = re.compile(r"[^\w./,:=+@%~^ \t-]")


# ------------------------------------------------------------------------------ test runners


_Word = str | re.Pattern[str]  # a literal word, or a compiled glob


def _word(pattern: str) -> _Word:
    if any(c in pattern for c in "*?["):
        return re.compile(fnmatch.translate(pattern))
    return pattern


def _fits(word: str, want: _Word) -> bool:
    return word == want if isinstance(want, str) else want.match(word) is not None


@dataclass(frozen=True, slots=True)
class _Runner:
    name: str
    rest: tuple[_Word | None, ...]  # words after the program; None stands for `...`


class _RunnerTable:
    """The runner patterns indexed by program (literal heads) plus the glob heads."""

    def __init__(self, entries: Sequence[tuple[str, str]]) -> None:
        self.by_program: dict[str, list[_Runner]] = {}
        # Glob heads (`*runtests.py`), with the literal tail a program must end with.
        self.globs: list[tuple[str, re.Pattern[str], _Runner]] = []
        for name, pattern in entries:
            words = pattern.split()
            if not words:
                continue
            runner = _Runner(name, tuple(None if w == "..." else _word(w) for w in words[1:]))
            head = "python" if _PYTHON.match(words[0]) else words[0]
            compiled = _word(head)
            if isinstance(compiled, str):
                key = compiled.rsplit("/", 1)[-1]  # `./ci.sh` is looked up as `ci.sh`
                self.by_program.setdefault(key, []).append(runner)
            else:
                tail = re.split(r"[*?\[\]]", head)[-1]
                self.globs.append((tail, compiled, runner))

    def find(self, words: Sequence[str], program: str | None = None) -> str | None:
        if program is None:
            program = _program(words[0])
        for runner in self.by_program.get(program, ()):
            if _match(runner.rest, 0, words, 1):
                return runner.name
        first = words[0]
        for tail, head, runner in self.globs:
            if not first.endswith(tail):
                continue
            if (head.match(program) or head.match(first)) and _match(runner.rest, 0, words, 1):
                return runner.name
        return None


def _load_runners() -> _RunnerTable:
    """The registry's runner table, after the user's (`AGENTSIGNALS_TEST_RUNNERS`:
    `name=pattern` entries separated by `;`, e.g. `ci=./ci.sh ... test;phpunit=phpunit`)."""
    user: list[tuple[str, str]] = []
    for entry in os.environ.get("AGENTSIGNALS_TEST_RUNNERS", "").split(";"):
        name, sep, pattern = entry.partition("=")
        if sep and name.strip() and pattern.split():
            user.append((name.strip(), pattern))
    return _RunnerTable([*user, *sc.TEST_RUNNER_PATTERNS])


_runners: _RunnerTable | None = None


def test_runner_for(argv: Sequence[str]) -> str | None:
    """The runner (registry name) an argument vector runs, or None. A pattern is the program
    then words that must follow in order; options in the command between them are skipped
    unless the pattern names them, and `...` stands for any words (`mvn ... test`)."""
    global _runners
    if _runners is None:
        _runners = _load_runners()
    words = _unwrap(argv)
    if not words:
        return None
    return _runners.find(words)


def _match(pattern: Sequence[_Word | None], pi: int, words: Sequence[str], wi: int) -> bool:
    while True:
        if pi == len(pattern):
            return True
        want = pattern[pi]
        if want is None:
            return any(_match(pattern, pi + 1, words, k) for k in range(wi, len(words) + 1))
        if wi == len(words):
            return False
        word = words[wi]
        if _fits(word, want):
            pi += 1
            wi += 1
        elif word.startswith("-"):
            wi += 1  # an option the pattern does not name
        else:
            return False


def _program(word: str) -> str:
    name = word.rsplit("/", 1)[-1]
    return "python" if _PYTHON.match(name) else name


def _unwrap(argv: Sequence[str]) -> Sequence[str]:
    """The argument vector without leading wrappers (`timeout 60`, `env X=1`, `uv run`); the
    vector itself when it has none (no copy: the live path counts allocations)."""
    if not argv:
        return argv
    first = argv[0].rsplit("/", 1)[-1]
    if first not in _WRAPPERS and not (len(argv) > 1 and (first, argv[1]) in _WRAPPERS2):
        return argv
    words = list(argv)
    for _ in range(8):
        if not words:
            return words
        first = words[0].rsplit("/", 1)[-1]
        if first in _WRAPPERS:
            rest = words[1:]
            while rest and (rest[0].startswith("-") or "=" in rest[0]):
                rest = rest[1:]
            words = rest[_WRAPPERS[first] :]
            continue
        if len(words) > 1 and (first, words[1]) in _WRAPPERS2:
            words = words[2:]
            continue
        return words
    return words


# ------------------------------------------------------------------------------------ parser

_local = threading.local()
_parser_failed = False


def _parser() -> Any | None:
    """A tree-sitter bash parser for this thread (parsers are not thread-safe), or None when
    tree-sitter cannot be loaded (then commands are read as plain words only)."""
    global _parser_failed
    parser = getattr(_local, "parser", None)
    if parser is not None or _parser_failed:
        return parser
    try:
        import tree_sitter
        import tree_sitter_bash

        parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))
    except Exception:  # a missing or broken wheel: degrade, never break the host
        _parser_failed = True
        return None
    _local.parser = parser
    return parser


# ---------------------------------------------------------------------------------- reading

_cache: dict[str, ShellReading] = {}


def read_command(command: str) -> ShellReading:
    """What `command` does (cached by its text; never raises)."""
    cached = _cache.get(command)
    if cached is not None:
        return cached
    try:
        reading = _read(command)
    except Exception:  # malformed input of any kind: a plain shell call, nothing named
        reading = ShellReading(sc.ToolCategory.SHELL, complete=False)
    if len(command) <= _CACHE_TEXT_MAX:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[command] = reading
    return reading


def _read(command: str, depth: int = 0) -> ShellReading:
    if not command.strip():
        return ShellReading(sc.ToolCategory.SHELL)
    if len(command) <= MAX_PARSE_BYTES:
        if not _SPECIAL.search(command):
            # Only words and spaces: nothing for a lexer to do.
            words: list[str | None] = list(command.split())
            while words and _ASSIGNMENT.match(words[0] or ""):
                del words[0]
            return _reading([_Cmd(words, None)], [], True, depth)
        lexed = _lex_lines(command)
        if lexed is not None:
            return _reading(lexed[0], lexed[1], True, depth)
    complete = True
    text = command
    if len(text) > MAX_PARSE_BYTES:
        text, complete = _shrink(text)
    parser = _parser()
    if parser is None:
        return ShellReading(sc.ToolCategory.SHELL, complete=False)
    tree = parser.parse(text.encode("utf-8", "surrogatepass"))
    walker = _Walker()
    walker.walk(tree.root_node)
    return _reading(walker.commands, walker.writes, complete and not walker.cut, depth)


_PLAIN_TOKEN = re.compile(
    r"""([ \t]*)
      (?:(\|\||&&|\||;)
      | (\d?>&\d)
      | (\d?>>?|&>>?|<)
      | ('[^']*')
      | ("[^"\\$`!]*")
      | ([\w./,:=+@%~^-]+)
      | (\#.*))""",
    re.VERBOSE,
)


_GROUPS = _PLAIN_TOKEN.groups  # 8: ws, op, dup, redir, sq, dq, bare, comment


def _lex_plain(command: str) -> tuple[list[_Cmd], list[str]] | None:
    """The commands of a line in the plain subset of shell: words, single-quoted and
    expansion-free double-quoted strings, `|`, `||`, `&&`, `;`, redirections to a word and a
    trailing comment. Within that subset this lexing is exactly bash's, so the parser is not
    needed; anything else (newlines, `$`, globs, backticks, braces, heredocs) returns None.

    One `split` gives a flat list of strings (the text between tokens, then each token's
    groups): exact coverage is every in-between piece being empty, and no tuple per token is
    allocated (the live path is sensitive to allocations: they drive the garbage collector)."""
    parts = _PLAIN_TOKEN.split(command)
    if parts[0] or parts[-1].strip(" \t"):
        return None  # something outside the subset before the first or after the last token
    commands: list[_Cmd] = []
    writes: list[str] = []
    argv: list[str | None] = []
    pending: str | None = None  # a redirection waiting for its target
    word: str | None = None
    stride = _GROUPS + 1
    for i in range(1, len(parts) - 1, stride):
        if parts[i + _GROUPS] and i + stride < len(parts):
            return None  # text no token matched (split skips it)
        ws, _op, dup, redir, sq, dq, bare, comment = parts[i : i + _GROUPS]
        if comment:
            if i > 1 and not ws:
                return None  # `a#b` is one word in bash, not a comment
            break  # a comment runs to the end of the line
        piece = bare or (sq[1:-1] if sq else (dq[1:-1] if dq else None))
        if piece is not None:
            if word is not None and not ws:
                word += piece  # adjacent pieces are one word: --include='*.py'
                continue
            if word is not None:
                if pending is not None:
                    if pending != "<":
                        writes.append(word)
                    pending = None
                else:
                    argv.append(word)
            word = piece
            continue
        if word is not None:
            if pending is not None:
                if pending != "<":
                    writes.append(word)
                pending = None
            else:
                argv.append(word)
            word = None
        if dup:
            continue
        if pending is not None:
            return None  # a redirection without a target
        if redir:
            pending = redir.lstrip("0123456789")
        else:  # an operator ends the command
            if argv:
                commands.append(_Cmd(argv, None))
            argv = []
    if word is not None:
        if pending is not None:
            if pending != "<":
                writes.append(word)
            pending = None
        else:
            argv.append(word)
    if pending is not None:
        return None
    if argv:
        commands.append(_Cmd(argv, None))
    for cmd in commands:
        while cmd.argv and _ASSIGNMENT.match(cmd.argv[0] or ""):
            del cmd.argv[0]
    return commands, writes


# A heredoc with a quoted delimiter (`<<'EOF'`, `<<"EOF"`): its body is literal data.
_QUOTED_HEREDOC = re.compile(r"""<<(-?)[ \t]*(['"])(\w+)\2""")


def _lex_lines(command: str) -> tuple[list[_Cmd], list[str]] | None:
    """`_lex_plain` over the lines of a command (a newline separates commands as `;` does),
    with heredocs whose delimiter is quoted: the body is the stdin of the line's first command
    and is not read as commands. An unquoted delimiter (its body expands `$(...)`), two
    heredocs on a line, a heredoc after an operator or without its delimiter line: None."""
    if "\n" not in command and "<<" not in command:
        return _lex_plain(command)
    lines = command.split("\n")
    commands: list[_Cmd] = []
    writes: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        body: str | None = None
        if "<<" in line:
            found = list(_QUOTED_HEREDOC.finditer(line))
            if len(found) != 1 or line.count("<<") != 1:
                return None
            m = found[0]
            if any(c in line[: m.start()] for c in "|&;"):
                return None  # the heredoc feeds a later command of the line: leave it
            strip_tabs, delimiter = m.group(1) == "-", m.group(3)
            start = i
            while i < len(lines):
                candidate = lines[i].lstrip("\t") if strip_tabs else lines[i]
                if candidate == delimiter:
                    break
                i += 1
            else:
                return None  # no delimiter line
            body_lines = lines[start:i]
            if strip_tabs:
                body_lines = [b.lstrip("\t") for b in body_lines]
            body = "".join(b + "\n" for b in body_lines)
            i += 1  # past the delimiter line
            line = line[: m.start()] + line[m.end() :]
        if not line.strip():
            if body is not None:
                return None  # a heredoc without a command
            continue
        lexed = _lex_plain(line)
        if lexed is None:
            return None
        line_commands, line_writes = lexed
        if body is not None:
            if not line_commands:
                return None
            line_commands[0].stdin = body
        commands.extend(line_commands)
        writes.extend(line_writes)
    return commands, writes


def _shrink(text: str) -> tuple[str, bool]:
    """Cut a large command down to about MAX_PARSE_BYTES: a heredoc body that runs past the
    bound is dropped up to its delimiter line (found with one search), so what follows it is
    still read; otherwise the command is read up to the bound (incomplete)."""
    parser = _parser()
    kept = ""
    rest = text
    for _ in range(16):
        if len(kept) + len(rest) <= MAX_PARSE_BYTES:
            return kept + rest, True
        budget = max(MAX_PARSE_BYTES - len(kept), 1024)
        cut = rest.rfind("\n", 0, budget)
        if cut <= 0 or parser is None:
            break
        head = rest[: cut + 1]
        delimiter = _open_heredoc(parser, kept + head)
        if delimiter is None:
            break
        word, strip_tabs = delimiter
        pattern = re.compile(
            r"^" + (r"\t*" if strip_tabs else "") + re.escape(word) + r"$", re.MULTILINE
        )
        found = pattern.search(rest, cut + 1)
        if found is None:
            return kept + head, True  # the body runs to the end: nothing follows it
        kept += head
        rest = rest[found.start() :]
    prefix = (kept + rest)[:MAX_PARSE_BYTES]
    cut = max(prefix.rfind("\n"), prefix.rfind(" "))  # never end inside a word
    return (prefix[:cut] if cut > 0 else prefix), False


def _open_heredoc(parser: Any, text: str) -> tuple[str, bool] | None:
    """The delimiter of a heredoc still open at the end of `text`, if any."""
    tree = parser.parse(text.encode("utf-8", "surrogatepass"))
    last: tuple[str, bool] | None = None
    stack = [tree.root_node]
    visited = 0
    while stack and visited < _MAX_NODES:
        node = stack.pop()
        visited += 1
        if node.type == "heredoc_redirect":
            start = end = None
            strip = False
            for child in node.children:
                if child.type == "heredoc_start":
                    start = _unquote(_text(child))
                elif child.type == "heredoc_end":
                    end = _text(child)
                elif child.type == "<<-":
                    strip = True
            if start and not end:
                last = (start, strip)
        else:
            stack.extend(node.children)
    return last


def _text(node: Any) -> str:
    return node.text.decode("utf-8", "replace")  # type: ignore[no-any-return]


def _unquote(word: str) -> str:
    return word.replace("'", "").replace('"', "").replace("\\", "")


@dataclass(slots=True)
class _Cmd:
    argv: list[str | None]  # None: a word whose value is not static ($x, $(...))
    stdin: str | None  # the heredoc body fed to it


# Node types that hold no command, redirect or substitution.
_LEAVES = frozenset(
    {"word", "raw_string", "number", "ansi_c_string", "comment", "string_content",
     "variable_name", "heredoc_start", "heredoc_end", "file_descriptor", "special_variable_name"}
)  # fmt: skip


class _Walker:
    """Collects the simple commands (with their heredoc bodies) and the redirect targets."""

    def __init__(self) -> None:
        self.commands: list[_Cmd] = []
        self.writes: list[str] = []
        self.visited = 0
        self.cut = False

    def walk(self, root: Any) -> None:
        # Named nodes only: operators and punctuation (`&&`, `;`, `|`) hold nothing to read.
        stack: list[tuple[Any, str | None]] = [(root, None)]
        pop, push = stack.pop, stack.append
        while stack:
            node, body = pop()
            self.visited += 1
            if self.visited > _MAX_NODES:
                self.cut = True
                return
            kind = node.type
            if kind == "command":
                self._command(node, body)
            elif kind == "file_redirect":
                self._redirect(node)
            elif kind in _LEAVES:
                continue
            elif kind == "redirected_statement":
                body = self._heredoc_body(node)
                for child in reversed(node.named_children):
                    push((child, body))
            else:
                for child in reversed(node.named_children):
                    push((child, None))

    def _heredoc_body(self, node: Any) -> str | None:
        for child in node.children:
            if child.type in ("heredoc_redirect", "herestring_redirect"):
                for part in child.children:
                    if part.type == "heredoc_body":
                        return _text(part)
                if child.type == "herestring_redirect":
                    words = [c for c in child.children if c.type != "<<<"]
                    return _value(words[0]) if words else None
        return None

    def _command(self, node: Any, stdin: str | None) -> None:
        argv: list[str | None] = []
        nested: list[Any] = []  # nodes that may hold $(...) or <(...)
        for child in node.named_children:
            kind = child.type
            if kind == "command_name":
                inner = child.named_children
                argv.append(_value(inner[0] if inner else child))
                if inner and inner[0].type not in _LEAVES:
                    nested.append(inner[0])
            elif kind in _LEAVES:
                argv.append(_value(child))
            elif kind == "file_redirect":
                self._redirect(child)
            elif kind in ("herestring_redirect", "heredoc_redirect"):
                continue
            elif kind == "variable_assignment":
                nested.append(child)
            else:
                argv.append(_value(child))
                nested.append(child)
        self.commands.append(_Cmd(argv, stdin))
        # Commands inside arguments ($(cat x), <(...)) run too.
        while nested:
            child = nested.pop()
            self.visited += 1
            if self.visited > _MAX_NODES:
                self.cut = True
                return
            if child.type in ("command_substitution", "process_substitution"):
                sub = _Walker()
                sub.visited = self.visited
                sub.walk(child)
                self.visited = sub.visited
                self.cut = self.cut or sub.cut
                self.commands.extend(sub.commands)
                self.writes.extend(sub.writes)
            else:
                nested.extend(c for c in child.named_children if c.type not in _LEAVES)

    def _redirect(self, node: Any) -> None:
        operator = None
        target = None
        for child in node.children:
            kind = child.type
            if kind in (">", ">>", "&>", "&>>", ">|", "<", ">&", "<&", "<>", "&>|"):
                operator = kind
            elif kind != "file_descriptor" and operator is not None and target is None:
                target = child
        if operator in (">", ">>", "&>", "&>>", ">|", "&>|") and target is not None:
            value = _value(target)
            if value is not None:
                self.writes.append(value)


def _value(node: Any) -> str | None:
    """The static value of a word (quotes removed, escapes resolved), None when it expands."""
    kind = node.type
    if kind in ("word", "number"):
        text = _text(node)
        return re.sub(r"\\(.)", r"\1", text) if "\\" in text else text
    if kind == "raw_string":
        return _text(node)[1:-1]
    if kind == "string":
        parts: list[str] = []
        for child in node.children:
            if child.type == '"':
                continue
            if child.type == "string_content":
                parts.append(re.sub(r'\\([\\"$`])', r"\1", _text(child)))
            else:
                return None
        return "".join(parts)
    if kind == "concatenation":
        out: list[str] = []
        for child in node.children:
            value = _value(child)
            if value is None:
                return None
            out.append(value)
        return "".join(out)
    return None


# ----------------------------------------------------------------------- from commands on


_MAIN_OF = {
    sc.ToolCategory.SEARCH: "grep",
    sc.ToolCategory.READ: "cat",
}


def _shell_c(args: Sequence[str | None]) -> str | None:
    """The command string of `bash -c '...'` (also `-lc`, `-ec`)."""
    for i, a in enumerate(args):
        if a is None:
            return None
        if a.startswith("-") and not a.startswith("--") and "c" in a[1:]:
            return args[i + 1] if i + 1 < len(args) else None
        if not a.startswith("-"):
            return None
    return None


def _reading(
    commands: list[_Cmd], redirect_writes: list[str], complete: bool, depth: int = 0
) -> ShellReading:
    reads: list[str] = []
    searched: list[str] = []
    writes: list[str] = list(redirect_writes)
    runner: str | None = None
    main: str | None = None
    global _runners
    table = _runners if _runners is not None else _load_runners()
    _runners = table
    for cmd in commands:
        argv = cmd.argv
        if not argv or argv[0] is None:
            continue
        words = _unwrap_partial(argv) if None in argv else _unwrap(argv)  # type: ignore[arg-type]
        if not words or words[0] is None:
            continue
        program = _program(words[0])
        if runner is None:
            # A word that expands ($x) matches no pattern word.
            runner = table.find(
                [w if w is not None else "\x00" for w in words] if None in words else words,  # type: ignore[arg-type]
                program,
            )
        if main is None and program not in _SETUP_PROGRAMS:
            main = "git grep" if program == "git" and words[1:2] == ["grep"] else program
            if program in ("sed", "perl") and _in_place(words[1:]):
                main = "sed -i"
        if program in _SHELLS:
            inner = _shell_c(words[1:])
            if inner is not None and depth < 2:
                sub = _read(inner, depth + 1)
                reads.extend(sub.reads)
                searched.extend(sub.searched)
                writes.extend(sub.writes)
                runner = runner or sub.runner
                if main is None or main in _SHELLS:
                    main = _MAIN_OF.get(sub.category, main)
                complete = complete and sub.complete
                continue
        _effects(program, words, cmd.stdin, reads, searched, writes)
    targets = _files(writes) if writes else []
    if runner is not None:
        category = sc.ToolCategory.TEST
    elif targets:
        category = sc.ToolCategory.SHELL
    elif main in _SEARCH_PROGRAMS or main == "git grep":
        category = sc.ToolCategory.SEARCH
    elif main in _READ_PROGRAMS or main in ("sed", "awk"):
        category = sc.ToolCategory.READ
    else:
        category = sc.ToolCategory.SHELL
    return ShellReading(
        category,
        reads=tuple(_files(reads)) if reads else (),
        searched=tuple(_files(searched)) if searched else (),
        writes=tuple(targets),
        runner=runner,
        complete=complete,
    )


def _unwrap_partial(argv: Sequence[str | None]) -> list[str | None]:
    """`_unwrap` for an argument vector with non-static words (kept as None)."""
    prefix: list[str] = []
    for a in argv:
        if a is None:
            break
        prefix.append(a)
    unwrapped = _unwrap(prefix)
    return [*unwrapped, *argv[len(prefix) :]]


def _files(paths: Sequence[str]) -> list[str]:
    """Distinct concrete file paths in order (no globs, devices, `.` or folders)."""
    out: dict[str, None] = {}
    for p in paths:
        p = p.strip()
        if not p or p in _NOT_FILES or _NOT_A_FILE.search(p):
            continue
        out[p] = None
    return list(out)


# Options, descriptors, folders, devices and globs name no concrete file.
_NOT_A_FILE = re.compile(r"^[-&]|/$|^/dev/|[*?\[]")


def _operands(args: Sequence[str | None], value_options: frozenset[str] = frozenset()) -> list[str]:
    out: list[str] = []
    skip = False
    ended = False
    for a in args:
        if skip:
            skip = False
            continue
        if a is None:
            continue
        if not ended and a == "--":
            ended = True
            continue
        if not ended and a.startswith("-") and a != "-":
            if a in value_options:
                skip = True
            continue
        out.append(a)
    return out


def _in_place(args: Sequence[str | None]) -> bool:
    for a in args:
        if a is None or not a.startswith("-") or a.startswith("--"):
            if a is not None and (a == "--in-place" or a.startswith("--in-place=")):
                return True
            continue
        if "i" in a[1:]:
            return True
    return False


def _effects(
    program: str,
    words: Sequence[str | None],
    stdin: str | None,
    reads: list[str],
    searched: list[str],
    writes: list[str],
) -> None:
    args = words[1:]
    if program in ("sed", "perl"):
        _sed_perl(program, args, reads, writes)
    elif program in _READ_PROGRAMS:
        reads.extend(_operands(args, _READ_VALUE_OPTIONS.get(program, frozenset())))
    elif program == "awk":
        operands = _operands(args, frozenset({"-f", "-v", "-F"}))
        scripted = any(a == "-f" for a in args if a is not None)
        reads.extend(operands if scripted else operands[1:])
    elif program in _GREP_PROGRAMS:
        flags = [a for a in args if a is not None and a.startswith("-")]
        recursive = any(
            f in ("--recursive", "--dereference-recursive")
            or (not f.startswith("--") and ("r" in f[1:] or "R" in f[1:]))
            for f in flags
        )
        explicit = any(f in ("-e", "-f", "--regexp", "--file") for f in flags)
        operands = _operands(
            args,
            frozenset({"-e", "-f", "-m", "-A", "-B", "-C", "--regexp", "--file", "--include"}),
        )
        if not recursive:
            searched.extend(operands if explicit else operands[1:])
    elif program in ("tee", "rm", "touch", "unlink"):
        writes.extend(_operands(args))
    elif program == "truncate":
        writes.extend(_operands(args, frozenset({"-s", "-r", "--size", "--reference"})))
    elif program in ("cp", "mv", "install"):
        _copy_move(program, args, writes)
    elif program == "dd":
        writes.extend(a[3:] for a in args if a is not None and a.startswith("of="))
    elif program == "git":
        _git(args, stdin, writes)
    elif program == "patch":
        if stdin is not None:
            strip = None
            for a in args:
                if a is not None and a.startswith("-p") and a[2:].isdigit():
                    strip = int(a[2:])
            writes.extend(_diff_files(stdin, strip))
    elif program == "python":
        code = _python_code(args, stdin)
        if code is not None:
            writes.extend(_python_writes(code))


def _sed_perl(
    program: str, args: Sequence[str | None], reads: list[str], writes: list[str]
) -> None:
    in_place = _in_place(args)
    operands: list[str] = []
    script_given = False
    skip = False
    previous_i = False
    for a in args:
        if skip:
            skip = False
            continue
        if a is None:
            previous_i = False
            continue
        if previous_i and a == "" and program == "sed":
            previous_i = False  # BSD/macOS `sed -i '' ...`: the empty backup suffix
            continue
        previous_i = False
        if a.startswith("-") and a != "-":
            if a in ("-e", "-f", "--expression", "--file", "-E", "-M", "-I") and not (
                program == "sed" and a == "-E"
            ):
                script_given = script_given or a in ("-e", "-f", "--expression", "--file", "-E")
                skip = a not in ("-E",) or program == "perl"
                continue
            if a.startswith(("--expression=", "--file=")):
                script_given = True
                continue
            if program == "perl" and not a.startswith("--") and a.endswith("e"):
                script_given = True  # -pe, -pie: the script follows
                skip = True
                continue
            if a == "-i" or (program == "sed" and a in ("-ni", "-in")):
                previous_i = True
            continue
        operands.append(a)
    files = operands if script_given else operands[1:]
    (writes if in_place else reads).extend(files)


def _copy_move(program: str, args: Sequence[str | None], writes: list[str]) -> None:
    target_dir: str | None = None
    operands: list[str] = []
    skip_next = False
    for i, a in enumerate(args):
        if skip_next:
            skip_next = False
            continue
        if a is None:
            return  # an operand we cannot name: do not guess the destination
        if a in ("-t", "--target-directory"):
            nxt = args[i + 1] if i + 1 < len(args) else None
            target_dir = nxt
            skip_next = True
            continue
        if a.startswith("--target-directory="):
            target_dir = a.split("=", 1)[1]
            continue
        if a in ("-S", "--suffix", "-m", "--mode", "-o", "-g"):
            skip_next = True
            continue
        if a.startswith("-") and a != "-":
            continue
        operands.append(a)
    if target_dir is not None:
        sources, dest_dir = operands, target_dir
    else:
        if len(operands) < 2:
            return
        sources, dest = operands[:-1], operands[-1]
        if len(sources) == 1 and not (dest in (".", "..") or dest.endswith("/")):
            writes.append(dest)
            if program == "mv":
                writes.append(sources[0])
            return
        dest_dir = dest
    for source in sources:
        name = source.rstrip("/").rsplit("/", 1)[-1]
        joined = os.path.normpath(f"{dest_dir.rstrip('/')}/{name}") if name else None
        if joined:
            writes.append(joined)
        if program == "mv":
            writes.append(source)


def _git(args: Sequence[str | None], stdin: str | None, writes: list[str]) -> None:
    words = [a for a in args if a is not None]
    # Global options before the subcommand (`git -C repo checkout`).
    while words and words[0].startswith("-"):
        words = words[2:] if words[0] in ("-C", "-c") else words[1:]
    if not words:
        return
    sub, rest = words[0], words[1:]
    if sub == "checkout" and "--" in rest:
        writes.extend(_operands(rest[rest.index("--") + 1 :]))
    elif sub == "restore" and not ("--staged" in rest and "--worktree" not in rest):
        writes.extend(_operands(rest, frozenset({"-s", "--source"})))
    elif sub == "apply" and stdin is not None and "--check" not in rest:
        strip = 1
        for a in rest:
            if a.startswith("-p") and a[2:].isdigit():
                strip = int(a[2:])
        writes.extend(_diff_files(stdin, strip))
    elif sub == "rm" and "--cached" not in rest:
        writes.extend(_operands(rest))
    elif sub == "mv":
        _copy_move("mv", rest, writes)


def _diff_files(diff: str, strip: int | None) -> list[str]:
    """Files a unified diff changes, with `strip` leading components removed (patch -pN;
    None: patch's default, the base name)."""
    out: list[str] = []
    old: str | None = None
    for line in diff.splitlines():
        if line.startswith("--- "):
            old = line[4:].split("\t", 1)[0].strip()
        elif line.startswith("+++ ") and old is not None:
            new = line[4:].split("\t", 1)[0].strip()
            path = new if new != "/dev/null" else old
            old = None
            if path == "/dev/null":
                continue
            if strip is None:
                out.append(path.rsplit("/", 1)[-1])
            else:
                parts = path.split("/")
                if len(parts) > strip:
                    out.append("/".join(parts[strip:]))
    return out


def _python_code(args: Sequence[str | None], stdin: str | None) -> str | None:
    for i, a in enumerate(args):
        if a is None:
            return None
        if a == "-c":
            nxt = args[i + 1] if i + 1 < len(args) else None
            return nxt
        if a == "-":
            return stdin
        if a in ("-m",):
            return None
        if not a.startswith("-"):
            return None  # a script file: its code is not in the command
    return stdin


_WRITE_MODES = frozenset("wax+")


def _python_writes(code: str) -> list[str]:
    """Literal paths Python code opens for writing (`open("f", "w")`, `Path("f").write_text`),
    removes (`os.remove`) or copies to (`shutil.copy(a, "f")`)."""
    if len(code) > MAX_PARSE_BYTES or not any(
        k in code for k in ("open", "write_", "remove", "unlink", "shutil")
    ):
        return []
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    found: list[tuple[int, int, str]] = []
    for node in _walk_limited(tree):
        if not isinstance(node, ast.Call):
            continue
        out: list[str] = []
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if (name == "open" and not isinstance(func, ast.Attribute)) or (
            isinstance(func, ast.Attribute)
            and name == "open"
            and isinstance(func.value, ast.Name)
            and func.value.id in ("io", "codecs")
        ):
            path = _literal(node.args[0]) if node.args else None
            mode = _literal(node.args[1]) if len(node.args) > 1 else None
            for kw in node.keywords:
                if kw.arg == "mode":
                    mode = _literal(kw.value)
                elif kw.arg == "file":
                    path = _literal(kw.value)
            if path is not None and mode is not None and _WRITE_MODES & set(mode):
                out.append(path)
        elif name in ("write_text", "write_bytes", "unlink", "touch") and isinstance(
            func, ast.Attribute
        ):
            target = func.value
            if (
                isinstance(target, ast.Call)
                and getattr(target.func, "id", getattr(target.func, "attr", None)) == "Path"
                and target.args
            ):
                path = _literal(target.args[0])
                if path is not None:
                    out.append(path)
        elif name in ("remove", "unlink") and isinstance(func, ast.Attribute):
            if getattr(func.value, "id", None) == "os" and node.args:
                path = _literal(node.args[0])
                if path is not None:
                    out.append(path)
        elif (
            name in ("copy", "copy2", "copyfile", "move")
            and isinstance(func, ast.Attribute)
            and getattr(func.value, "id", None) == "shutil"
            and len(node.args) >= 2
        ):
            path = _literal(node.args[1])
            if path is not None:
                out.append(path)
        found.extend((node.lineno, node.col_offset, p) for p in out)
    return [p for _, _, p in sorted(found)]


def _walk_limited(tree: ast.AST) -> Iterator[ast.AST]:
    for seen, node in enumerate(ast.walk(tree)):
        if seen >= _MAX_NODES:
            return
        yield node


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


# ----------------------------------------------------------------------------- search output

_HIT_N = re.compile(r"^(?P<path>[^\s:][^:\n]*?)[:-]\d+[:-]", re.MULTILINE)
_HIT_PLAIN = re.compile(r"^(?P<path>[^\s:][^:\s]*\.[A-Za-z0-9_]+):", re.MULTILINE)
_HIT_SWE_AGENT = re.compile(r"^(?P<path>/\S+) \(\d+ match(?:es)?\)$", re.MULTILINE)
_FILES_WITH_MATCHES = re.compile(r"(?:^|\s)-\w*l\b|--files-with-matches")
MAX_HIT_BYTES = 256 * 1024
MAX_HITS = 2000


def search_hits(output: str | None, command: str | None = None) -> list[str]:
    """Files a search's output names as hits: `path:line:` (grep -n, rg, git grep, ag),
    `path:text` for a path with an extension, `path (N matches)` (SWE-agent's search_dir), or
    each line of `grep -l`. Only the first `MAX_HIT_BYTES` of the output are read."""
    if not output:
        return []
    text = output[:MAX_HIT_BYTES]
    hits: dict[str, None] = {}
    if command is not None and _FILES_WITH_MATCHES.search(command):
        for line in text.splitlines():
            line = line.strip()
            if line and " " not in line and not line.endswith(":"):
                hits[line] = None
    for pattern in (_HIT_SWE_AGENT, _HIT_N, _HIT_PLAIN):
        for m in pattern.finditer(text):
            path = m.group("path").strip()
            if path and not path.startswith(("Binary", "grep")):
                hits[path] = None
            if len(hits) >= MAX_HITS:
                break
        if hits:
            break
    return _files(list(hits))[:MAX_HITS]
