"""The `agentsignals` command line."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

# Commands of the analysis stage live with their package: each module named here defines
# `NAME`, `HELP`, `DESCRIPTION`, `add_arguments(parser)` and `run(args) -> int`, and keeps its
# heavy imports inside `run`, so `agentsignals --help` stays fast. One line here per command.
_COMMAND_MODULES: tuple[str, ...] = (
    "agentsignals._report.command",
    "agentsignals._report.show",
    "agentsignals._judge.command",
    "agentsignals._judge.export_command",
    "agentsignals._faults.command",
    "agentsignals._reward.command",
)


def _version() -> str:
    """The installed distribution's version (the source tree's when run uninstalled)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agentsignals")
    except PackageNotFoundError:
        from agentsignals._instrument.runtime import VERSION

        return VERSION


def _command_modules() -> list[Any]:
    return [importlib.import_module(name) for name in _COMMAND_MODULES]


def main(argv: list[str] | None = None) -> int:
    """Run one command. A failure nobody anticipated is still one line on stderr (exit 70);
    AGENTSIGNALS_RAISE_INTERNAL_ERRORS=1 shows its traceback instead (the test suite sets it)."""
    from agentsignals._instrument.runtime import raising_internal_errors

    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("agentsignals: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (`| head`): stop quietly, and keep Python's exit
        # flush from failing on the same pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:
        if raising_internal_errors():
            raise
        text = " ".join(str(exc).split())[:300]
        print(
            f"agentsignals: internal error: {type(exc).__name__}: {text} "
            "(AGENTSIGNALS_RAISE_INTERNAL_ERRORS=1 shows the traceback)",
            file=sys.stderr,
        )
        return 70


def _main(argv: list[str] | None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["collect"]:
        # The collector owns its flags (and its --help).
        from agentsignals._collector.service import main as collect_main

        return collect_main(args_in[1:])
    parser = argparse.ArgumentParser(
        prog="agentsignals",
        description="Telemetry for coding agents: where an agent falls apart, not just whether.",
    )
    parser.add_argument("--version", action="version", version=f"agentsignals {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "collect",
        help="run the collector: OTLP in (HTTP/gRPC), features out, spans forwarded",
        add_help=False,
    )

    demo = commands.add_parser(
        "demo",
        help="run a scripted coding agent on a scratch git repo and trace it",
        description="Run a small scripted coding agent (no model, no network) on a scratch git "
        "repository with a real bug; write its traces to the embedded store.",
    )
    demo.add_argument(
        "--output",
        type=Path,
        default=Path("agentsignals-output"),
        help="root folder of the embedded store (default: ./agentsignals-output)",
    )
    demo.add_argument(
        "--workdir", type=Path, default=None, help="keep the scratch repository in this folder"
    )

    feats = commands.add_parser(
        "features",
        help="derive feature records from OTLP/JSON trace files or folders",
        description="Read OTLP/JSON lines (agentsignals' file exporter or the OpenTelemetry "
        "Collector's file exporter) and write one feature record per attempt (or per trial).",
    )
    feats.add_argument("paths", nargs="*", type=Path, help="files or folders of traces")
    feats.add_argument(
        "--source", default=None,
        help="read traces from ClickHouse instead: clickhouse://user:pass@host:8123/db or chdb:///dir",
    )  # fmt: skip
    feats.add_argument(
        "--store", default=None,
        help="also write the records into the feature tables at this ClickHouse/chDB URL",
    )  # fmt: skip
    feats.add_argument(
        "-o", "--output", type=Path, default=None,
        help="output file: .jsonl (default: stdout), .csv, or .parquet (the parquet extra)",
    )  # fmt: skip
    kinds = feats.add_mutually_exclusive_group()
    kinds.add_argument("--trials", action="store_true", help="write trial records instead")
    kinds.add_argument(
        "--sessions", action="store_true",
        help="write product-session records instead (interactive sessions; docs/sessions.md)",
    )  # fmt: skip
    feats.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    ver = commands.add_parser(
        "verify",
        help="merge SWE-bench outcomes and gold-patch localization into feature records",
        description="Match verifier reports (per-instance report.json, run-level reports, "
        "leaderboard results.json) to traced attempts by instance id, label each outcome, and "
        "add gold-patch localization from the dataset rows.",
    )
    ver.add_argument("inputs", nargs="+", type=Path, help="trace folders/files or feature files")
    ver.add_argument(
        "--reports", action="append", type=Path, default=[],
        help="report files or folders (repeatable)",
    )  # fmt: skip
    ver.add_argument(
        "--dataset", type=Path, default=None, help="SWE-bench rows: JSON, JSONL, Parquet"
    )
    ver.add_argument(
        "-o", "--output", type=Path, default=None, help=".jsonl (default stdout), .csv or .parquet"
    )
    ver.add_argument("--trials", action="store_true", help="write trial records instead")
    ver.add_argument(
        "--run-id", default=None,
        help="the run these reports are of: match only its attempts; a leaderboard "
        "results.json then marks the run's unlisted instances unresolved",
    )  # fmt: skip
    ver.add_argument(
        "--spans-out", type=Path, default=None,
        help="also write each outcome as a span under its attempt (OTLP/JSON lines) in this folder",
    )  # fmt: skip

    imp = commands.add_parser(
        "import",
        help="turn existing agent trajectories into agentsignals spans (OTLP)",
        description="Import SWE-agent, mini-swe-agent, OpenHands, Claude Code, pi, Codex and "
        "inspect-ai trajectories as trial/attempt/turn/tool spans: OTLP/JSON lines that "
        "`agentsignals features` reads, or straight to an OTLP endpoint.",
    )
    imp.add_argument("paths", nargs="+", type=Path, help="trajectory files or folders")
    imp.add_argument("--format", default="auto", help="format name, or auto (default)")
    imp.add_argument(
        "-o", "--output", type=Path, default=None,
        help="a .jsonl file or a folder (default: ./agentsignals-output/traces)",
    )  # fmt: skip
    imp.add_argument(
        "--endpoint", default=None,
        help="send to this OTLP/HTTP endpoint instead (headers from OTEL_EXPORTER_OTLP_HEADERS "
        "and --header; AGENTSIGNALS_COLLECTOR_TOKEN as the bearer token)",
    )  # fmt: skip
    imp.add_argument(
        "--header", action="append", default=[], metavar="NAME=VALUE",
        help="an HTTP header for --endpoint (repeatable)",
    )  # fmt: skip
    imp.add_argument(
        "--workers", type=int, default=1, help="worker processes for large folders (default 1)"
    )
    imp.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    imp.add_argument(
        "--run-id", default=None,
        help="the evaluation run these trajectories are from (agent_signals.run.id, as live "
        "trial(run_id=...)); verify --run-id matches reports to it",
    )  # fmt: skip
    imp.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE",
        help="a resource attribute of every imported span (repeatable; OTEL_RESOURCE_ATTRIBUTES)",
    )  # fmt: skip
    imp.add_argument(
        "--git-state", action="store_true",
        help="read each interactive session's git repository (its cwd) now for whether its "
        "changes were committed or reverted (user.output_applied, user.changes_reverted)",
    )  # fmt: skip
    imp.add_argument(
        "--content", action="store_true",
        help="carry the messages, reasoning, tool arguments and results onto the spans (the "
        "GenAI content attributes, redacted and byte-budgeted as live capture; what `agentsignals "
        "judge` reads). Off by default",
    )  # fmt: skip
    imp.add_argument(
        "--content-max-value-bytes", type=int, default=16 * 1024, metavar="N",
        help="with --content: the most bytes of one value (default 16384, as live capture)",
    )  # fmt: skip
    imp.add_argument(
        "--content-max-span-bytes", type=int, default=64 * 1024, metavar="N",
        help="with --content: the most content bytes on one span (default 65536)",
    )  # fmt: skip

    extra = {}
    for module in _command_modules():
        sub = commands.add_parser(module.NAME, help=module.HELP, description=module.DESCRIPTION)
        module.add_arguments(sub)
        extra[module.NAME] = module

    args = parser.parse_args(args_in)
    if args.command in extra:
        return int(extra[args.command].run(args))
    if args.command == "import":
        return _import(args)
    if args.command == "verify":
        return _verify(args)
    if args.command == "features":
        return _features(args)
    if args.command == "demo":
        from agentsignals._demo import main as run_demo

        return run_demo(args.output, args.workdir)
    parser.error(f"unknown command {args.command}")
    return 2


def _features(args: argparse.Namespace) -> int:
    from agentsignals._features.run import RecordSpool

    def say(message: str) -> None:
        print(f"agentsignals features: {message}", file=sys.stderr)

    if not args.paths and args.source is None:
        say("give trace files or folders, or --source URL")
        return 2
    problem = _output_problem(args.output)
    if problem:
        say(problem)
        return 2
    # Records go to a temporary spool as they are produced, never all into memory: the output
    # is written from it (latest revisions, sorted), so memory is flat in the input size.
    with RecordSpool() as spool:
        code, result = _features_into(args, spool, say)
        if result is None:
            return code
        from agentsignals._features.record import AttemptRecord, SessionRecord, TrialRecord

        kind: type[AttemptRecord] | type[TrialRecord] | type[SessionRecord] = (
            TrialRecord if args.trials else SessionRecord if args.sessions else AttemptRecord
        )
        if args.store is not None:
            code = _store_records(args.store, spool, say)
            if code:
                return code
        sessions = spool.count(SessionRecord)
        if kind is SessionRecord:
            # Few (product sessions only) and joined across each other: linked in memory.
            code = _write_records(_linked_sessions(spool), args.output, say)
            if code:
                return code
            count = sessions
        try:
            if kind is not SessionRecord:
                count = spool.write(kind, args.output)
        except ImportError as exc:
            say(str(exc))
            return 2
        except BrokenPipeError:
            raise  # stdout's reader went away: main() stops quietly
        except OSError as exc:
            say(f"cannot write {args.output or 'stdout'}: {exc.strerror or exc}")
            return 2
    problems = _trajectory_hints(result.problems, args.paths, say)
    for problem in problems:
        say(f"skipped {problem}")
    noun = "trial" if args.trials else "session" if args.sessions else "attempt"
    say(
        f"{count} {noun} records from {result.stats.spans_in} spans"
        + (f" ({len(problems)} unreadable lines skipped)" if problems else "")
        + _unattributed_note(result.stats)
        + (
            f"; {sessions} of them product sessions (--sessions writes those)"
            if sessions and not args.sessions and not args.trials
            else ""
        )
    )
    return 1 if result.problems and not count else 0


def _linked_sessions(spool: Any) -> list[Any]:
    """The spool's latest session records with the joins across sessions filled."""
    from agentsignals._features.record import SessionRecord
    from agentsignals._features.session import link_sessions

    return link_sessions(list(spool.records(SessionRecord)))


def _features_into(args: argparse.Namespace, spool: Any, say: Any) -> tuple[int, Any]:
    """Run extraction (from files or ClickHouse) into `spool`: (exit code, the FeatureSet with
    problems and counters, or None when it failed)."""
    from agentsignals import features

    progress = None if args.no_progress or args.source else _progress_bar()
    try:
        if args.source is not None:
            from agentsignals._store.clickhouse import features_from_clickhouse

            result = features_from_clickhouse(args.source)
            for record in [*result.attempts, *result.trials, *result.sessions]:
                spool(record)
        else:
            result = features.extract(args.paths, progress=progress, sink=spool)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        say(str(exc))
        return 2, None
    except (RuntimeError, OSError) as exc:  # ClickHouse unreachable or refusing
        say(_one_line(exc))
        return 1, None
    finally:
        if progress is not None:
            progress.close()
    return 0, result


def _store_records(url: str, spool: Any, say: Any) -> int:
    """The latest records into the feature tables at `url`, a chunk at a time."""
    from agentsignals._features.record import AttemptRecord, TrialRecord
    from agentsignals._store.clickhouse import connect

    try:
        with connect(url) as store:
            for kind in (AttemptRecord, TrialRecord):
                chunk: list[Any] = []
                for record in spool.records(kind):
                    chunk.append(record)
                    if len(chunk) >= 5000:
                        store.insert_records(chunk)
                        chunk = []
                if chunk:
                    store.insert_records(chunk)
            sessions = _linked_sessions(spool)
            if sessions:
                store.insert_records(sessions)
    except (ValueError, ImportError) as exc:
        say(str(exc))
        return 2
    except (RuntimeError, OSError) as exc:
        say(_one_line(exc))
        return 1
    return 0


def _unattributed_note(stats: Any) -> str:
    from agentsignals._features.foreign import reasons_text

    reasons = getattr(stats, "unattributed_reasons", None)
    return f"; not attributed to any attempt: {reasons_text(reasons)}" if reasons else ""


_OUTPUT_TYPES = (".jsonl", ".ndjson", ".csv", ".parquet")


def _output_problem(output: Path | None) -> str | None:
    """Why records cannot go to `output`, checked before any work (None: they can)."""
    if output is None:
        return None
    if output.exists() and not output.is_file() and not output.is_dir():
        return None  # /dev/null, /dev/stdout, a pipe: JSON lines
    if output.suffix.lower() not in _OUTPUT_TYPES:
        return f"-o {output}: write .jsonl (JSON lines), .csv or .parquet"
    return _unwritable(output)


def _write_records(records: Any, output: Path | None, say: Any) -> int:
    """Records to `output` by its suffix (stdout: JSON lines); an exit code when it failed."""
    from agentsignals._features.store import write_csv, write_json_lines, write_parquet

    suffix = ".jsonl"
    if output is not None and (output.is_file() or not output.exists()):
        suffix = output.suffix.lower()
    try:
        if suffix == ".parquet":
            assert output is not None
            write_parquet(records, output)
        elif suffix == ".csv":
            write_csv(records, output)
        else:
            write_json_lines(records, output)
    except ImportError as exc:
        say(str(exc))
        return 2
    except BrokenPipeError:
        raise  # stdout's reader went away: main() stops quietly
    except OSError as exc:
        say(f"cannot write {output or 'stdout'}: {exc.strerror or exc}")
        return 2
    return 0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _trajectory_hints(problems: list[Any], paths: list[Path], say: Any) -> list[Any]:
    """Files that are agent trajectories, not OTLP traces, get one suggestion (to import them
    first) instead of one error per line; the other problems are returned to be listed."""
    from agentsignals._import.run import detect_format

    by_path: dict[str, list[Any]] = {}
    for problem in problems:
        by_path.setdefault(problem.path, []).append(problem)
    rest: list[Any] = []
    trajectories: dict[str, str] = {}
    for path, found in by_path.items():
        fmt = detect_format(Path(path)) if Path(path).is_file() else None
        if fmt is None:
            rest.extend(found)
        else:
            trajectories[path] = fmt
    if trajectories:
        names = list(trajectories)
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        formats = ", ".join(sorted(set(trajectories.values())))
        sources = " ".join(map(str, paths))
        say(
            f"{shown} {'is an agent trajectory' if len(names) == 1 else 'are agent trajectories'}"
            f" ({formats}), not OTLP traces: import first, `agentsignals import {sources} "
            f"-o traces.jsonl`, then run `agentsignals features traces.jsonl`"
        )
    return rest


def _verify(args: argparse.Namespace) -> int:
    from agentsignals import verify

    def say(message: str) -> None:
        print(f"agentsignals verify: {message}", file=sys.stderr)

    problem = _output_problem(args.output)
    if problem:
        say(problem)
        return 2
    try:
        result = verify.verify(
            args.inputs, reports=args.reports or None, dataset=args.dataset, run_id=args.run_id
        )
    except (FileNotFoundError, ValueError) as exc:
        say(str(exc))
        return 2
    for problem in result.problems:
        say(f"skipped {problem}")
    for outcome in result.unmatched:
        say(
            f"no trace for {outcome.instance_id} "
            f"(outcome {outcome.label or outcome.reward} from {outcome.source})"
        )
    for outcome, trials in result.ambiguous:
        say(
            f"{outcome.instance_id} ran in {len(trials)} trials and the "
            f"report from {outcome.source} names no run id or attempt: not applied"
        )
    for note in result.notes:
        say(note)
    records = result.trials if args.trials else result.attempts
    code = _write_records(records, args.output, say)
    if code:
        return code
    if args.spans_out is not None:
        try:
            path = verify.write_verification_spans(result, args.spans_out)
        except OSError as exc:
            say(f"cannot write {args.spans_out}: {exc.strerror or exc}")
            return 2
        say(f"outcome spans in {path}")
    say(result.summary())
    return 0


def _import(args: argparse.Namespace) -> int:
    import time

    from agentsignals import semconv
    from agentsignals._import.run import (
        SendError,
        available_formats,
        candidate_files,
        otlp_headers,
        post_otlp,
        run_import,
    )
    from agentsignals._spans.encode import encode_otlp_json, encode_otlp_protobuf

    def say(message: str) -> None:
        print(f"agentsignals import: {message}", file=sys.stderr)

    known = ", ".join(sorted(available_formats()))
    if args.format != "auto" and args.format not in available_formats():
        say(f"unknown format {args.format!r} (known: {known})")
        return 2
    tags: dict[str, str] = {}
    for tag in args.tag:
        key, sep, value = tag.partition("=")
        if not sep or not key.strip():
            print(f"agentsignals import: --tag {tag!r}: expected KEY=VALUE", file=sys.stderr)
            return 2
        tags[key.strip()] = value
    content = None
    if args.content:
        from agentsignals._import.builder import content_settings

        if args.content_max_value_bytes < 1 or args.content_max_span_bytes < 1:
            say("--content-max-value-bytes and --content-max-span-bytes must be positive")
            return 2
        content = content_settings(
            max_value_bytes=args.content_max_value_bytes,
            max_span_bytes=args.content_max_span_bytes,
        )
    try:
        found = candidate_files(args.paths)  # a missing path is an error before any output
        headers = otlp_headers(args.header) if args.endpoint is not None else {}
    except (FileNotFoundError, ValueError) as exc:
        say(str(exc))
        return 2
    if not found:
        say("no trajectory files in " + ", ".join(map(str, args.paths)))
        return 1
    path: Path | None = None
    if args.endpoint is None:
        target = args.output or Path("agentsignals-output") / "traces"
        if target.suffix == ".jsonl" and not target.is_dir():
            path = target
        elif target.suffix and not target.is_dir():
            say(f"-o {target}: give a .jsonl file or a folder (OTLP/JSON lines are written)")
            return 2
        else:
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            path = target / f"imported-{stamp}-{os.getpid()}.jsonl"
        problem = _unwritable(path, create_parents=True)
        if problem:
            say(problem)
            return 2
    out: int | None = None  # opened at the first trajectory: an import of none writes nothing
    progress = None if args.no_progress else _Progress(unit="files")
    files = trajectories = spans = problems = 0
    unrecognised: list[str] = []
    by_format: dict[str, int] = {}
    try:
        for result in run_import(
            args.paths,
            fmt=args.format,
            workers=args.workers,
            progress=progress,
            run_id=args.run_id,
            tags=tags,
            content=content or False,
            git_state=args.git_state,
        ):
            files += 1
            for file_problem in result.problems:
                problems += 1
                say(f"skipped {file_problem}")
            if result.format is None and not result.problems:
                unrecognised.append(result.path)
                continue
            for trajectory in result.trajectories:
                try:
                    if path is not None:
                        data = encode_otlp_json(trajectory, schema_url=semconv.SCHEMA_URL)
                    else:
                        data = encode_otlp_protobuf(trajectory, schema_url=semconv.SCHEMA_URL)
                except Exception as exc:  # a span no encoder can write: name it, go on
                    problems += 1
                    say(f"skipped a trajectory of {result.path}: cannot encode it: {exc}")
                    continue
                if path is not None:
                    if out is None:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                    _write_all(out, data + b"\n")
                else:
                    post_otlp(args.endpoint, data, headers=headers)
                trajectories += 1
                spans += len(trajectory)
                by_format[result.format or "?"] = by_format.get(result.format or "?", 0) + 1
    except SendError as exc:
        say(f"could not send: {exc} ({trajectories} trajectories sent before)")
        return 1
    except OSError as exc:
        say(f"cannot write {path}: {exc.strerror or exc}")
        return 2
    finally:
        if progress is not None:
            progress.close()
        if out is not None:
            os.close(out)
    if unrecognised:
        # Files named on the command line are named back; files met in folders (reports,
        # configs next to the trajectories) are counted, and named too when nothing imported.
        named = {str(p) for p in args.paths if Path(p).is_file()}
        listed = [u for u in unrecognised if u in named or not trajectories][:_LISTED]
        for name in listed:
            say(f"skipped {name}: not in a trajectory format agentsignals reads")
        if len(unrecognised) > len(listed):
            example = next(u for u in unrecognised if u not in listed)
            say(
                f"skipped {len(unrecognised) - len(listed)} "
                + ("more " if listed else "")
                + f"files found in folders in no known format (such as {example})"
            )
        say(f"known formats: {known} (--format NAME reads files as that format)")
    formats = ", ".join(f"{k}: {v}" for k, v in sorted(by_format.items())) or "none recognised"
    where = args.endpoint if path is None else str(path) if out is not None else "nothing written"
    say(
        f"{trajectories} trajectories ({spans} spans) from {files} files [{formats}] -> {where}"
        + (f"; {problems} problems" if problems else "")
        + (f"; {len(unrecognised)} files in no known format" if unrecognised else "")
    )
    # Nothing useful done is a failure, so scripts notice; a partial import succeeds.
    return 1 if not trajectories else 0


_LISTED = 20  # at most this many unrecognised files are named one by one


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _unwritable(path: Path, *, create_parents: bool = False) -> str | None:
    """Why `path` cannot be written, checked before any work is done (None: it can be)."""
    if path.is_dir():
        return f"cannot write {path}: it is a folder"
    parent = path.parent
    while create_parents and not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot write {path}: no such folder {path.parent}"
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"cannot write {path}: permission denied"
    return None


class _Progress:
    """A byte-based progress bar on stderr: tqdm when installed, a plain line otherwise."""

    def __init__(self, unit: str = "B") -> None:
        self._bar = None
        self._unit = unit
        try:
            from tqdm import tqdm

            self._bar = tqdm(
                total=0, unit=unit, unit_scale=unit == "B", file=sys.stderr, leave=False
            )
        except ImportError:
            pass
        self._last = -1

    def __call__(self, done: int, total: int) -> None:
        if self._bar is not None:
            self._bar.total = total
            self._bar.n = done
            self._bar.refresh()
        elif sys.stderr.isatty() and total:
            percent = done * 100 // total
            if percent != self._last:
                self._last = percent
                label = "reading traces" if self._unit == "B" else f"importing {self._unit}"
                print(f"\r{label}: {percent:3d}%", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._last >= 0:
            print(file=sys.stderr)


def _progress_bar() -> _Progress:
    return _Progress()


if __name__ == "__main__":
    sys.exit(main())
