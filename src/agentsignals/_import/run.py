"""Run importers over files and folders: detect formats, read in parallel, write OTLP.

A file that is malformed or truncated is reported with its name (and line) and skipped; the
other files still import. Large folders are spread over worker processes.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import os
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import msgspec

from agentsignals import semconv as sc
from agentsignals._import.builder import capturing_content, content_settings
from agentsignals._import.formats import FORMAT_MODULES, ImportProblem, TrajectoryError
from agentsignals._import.formats._common import read_head
from agentsignals._spans.model import AttrValue, Span

if TYPE_CHECKING:
    from agentsignals._instrument.runtime import Settings

HEAD_BYTES = 64 * 1024
_TOKEN_ENV = "AGENTSIGNALS_COLLECTOR_TOKEN"  # the collector's (see _collector/config.py)
_SUFFIXES: tuple[str, ...] = (".traj", ".json", ".jsonl", ".eval", ".traj.json")
# Trajectories stored gzip-compressed (`x.traj.gz`, `x.jsonl.gz`) import as they are.
_SUFFIXES += tuple(s + ".gz" for s in _SUFFIXES)
_modules: dict[str, ModuleType] = {}


def _module(name: str) -> ModuleType:
    if name not in _modules:
        _modules[name] = importlib.import_module(f"agentsignals._import.formats.{name}")
    return _modules[name]


def available_formats() -> dict[str, str]:
    """Format name -> module name, for the formats whose reader is installed."""
    out: dict[str, str] = {}
    for module_name in FORMAT_MODULES:
        try:
            out[str(_module(module_name).NAME)] = module_name
        except ImportError:
            continue
    return out


def detect_format(path: Path) -> str | None:
    """The format name of a trajectory file, or None when no importer recognises it."""
    head = read_head(path, HEAD_BYTES)
    if not head:
        return None
    for module_name in FORMAT_MODULES:
        try:
            module = _module(module_name)
        except ImportError:
            continue
        try:
            if module.detect(path, head):
                return str(module.NAME)
        except Exception:
            continue
    return None


def candidate_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files named, plus files with trajectory-like suffixes found in folders (recursively)."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found.extend(
                sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(_SUFFIXES))
            )
        elif p.exists():
            found.append(p)
        else:
            raise FileNotFoundError(f"no such file or directory: {p}")
    return found


@dataclass
class FileResult:
    path: str
    format: str | None
    trajectories: list[list[Span]] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)


def import_file(
    path: str | os.PathLike[str],
    fmt: str = "auto",
    *,
    run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    content: bool | Settings = False,
    git_state: bool = False,
) -> FileResult:
    """Import one file; never raises for bad input (problems are in the result). `run_id`
    goes on trial and attempt spans (`agent_signals.run.id`, as live `trial(run_id=...)`);
    `tags` are resource attributes of every span (as OTEL_RESOURCE_ATTRIBUTES live).
    `content` (off by default) carries the messages, reasoning, tool arguments and results
    onto the spans as live content capture does: True for its defaults, or capture settings
    (`builder.content_settings`) for other byte budgets or a redaction hook. `git_state`
    reads each session's git repository now for its end state (`session_git`)."""
    p = Path(path)
    if p.exists() and not p.is_file():  # a device or a pipe (/dev/zero) never ends
        return FileResult(str(p), None, problems=[ImportProblem(str(p), 0, "not a regular file")])
    name = detect_format(p) if fmt == "auto" else fmt
    result = FileResult(str(p), name)
    if name is None:
        try:
            with p.open("rb"):
                pass
        except OSError as exc:
            result.problems.append(ImportProblem(str(p), 0, f"cannot read: {_why(exc)}"))
        return result
    modules = available_formats()
    if name not in modules:
        result.problems.append(ImportProblem(str(p), 0, f"unknown format {name!r}"))
        return result
    module = _module(modules[name])
    settings = content_settings() if content is True else (content or None)
    try:
        # Ids derive from the source path: resolve it so `import runs/` and
        # `import /abs/runs` give the same trace ids and a re-import deduplicates.
        with capturing_content(settings):
            for spans in module.read(p.resolve(), result.problems.append):
                if git_state:
                    from agentsignals._import.session_git import with_git_state

                    spans = with_git_state(spans)
                result.trajectories.append(
                    _stamped(spans, run_id, tags) if run_id or tags else spans
                )
    except TrajectoryError as exc:
        result.problems.append(exc.problem)
    except (EOFError, zlib.error) as exc:  # a gzip stream cut short or corrupt
        result.problems.append(ImportProblem(str(p), 0, f"corrupt gzip stream: {exc}"))
    except Exception as exc:
        # The per-file isolation boundary: a reader bug or a hostile shape nobody anticipated
        # (nesting past the recursion limit, a number no clock holds, memory) is reported
        # against this file, and every other file still imports. Trajectories the reader
        # finished before the failure are kept.
        result.problems.append(ImportProblem(str(p), 0, f"could not import: {_reason(exc)}"))
    return result


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply to read (RecursionError)"
    if isinstance(exc, MemoryError):
        return "too large to read in memory (MemoryError)"
    text = str(exc)
    if len(text) > 200:
        text = text[:200] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_RUN_SPAN_TYPES = frozenset({sc.SpanType.TRIAL.value, sc.SpanType.ATTEMPT.value})


def _stamped(spans: list[Span], run_id: str | None, tags: Mapping[str, str] | None) -> list[Span]:
    resource: dict[str, AttrValue] | None = None
    out: list[Span] = []
    for span in spans:
        changes: dict[str, object] = {}
        if tags:
            if resource is None:
                resource = {**span.resource, **tags}
            changes["resource"] = resource
        if run_id and span.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) in _RUN_SPAN_TYPES:
            changes["attributes"] = {**span.attributes, sc.AGENT_SIGNALS_RUN_ID: run_id}
        out.append(msgspec.structs.replace(span, **changes) if changes else span)
    return out


def _import_worker(
    args: tuple[str, str, str | None, dict[str, str] | None, Settings | None, bool],
) -> FileResult:
    return import_file(
        args[0], args[1], run_id=args[2], tags=args[3], content=args[4] or False, git_state=args[5]
    )


def run_import(
    paths: Iterable[str | os.PathLike[str]],
    *,
    fmt: str = "auto",
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    content: bool | Settings = False,
    git_state: bool = False,
) -> Iterator[FileResult]:
    """Import every candidate file, in parallel when `workers` > 1; yields per file, in order."""
    files = candidate_files(paths)
    tag_map = dict(tags) if tags else None
    settings = content_settings() if content is True else (content or None)
    jobs = [(str(f), fmt, run_id, tag_map, settings, git_state) for f in files]
    if workers <= 1 or len(files) < 4:
        for done, job in enumerate(jobs, 1):
            yield _import_worker(job)
            if progress is not None:
                progress(done, len(jobs))
        return
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        for done, result in enumerate(pool.map(_import_worker, jobs, chunksize=4), 1):
            yield result
            if progress is not None:
                progress(done, len(jobs))


class SendError(Exception):
    """An OTLP endpoint that cannot be reached or refuses the data; the message is one line."""


def otlp_headers(extra: Iterable[str] = ()) -> dict[str, str]:
    """Request headers for an OTLP endpoint, as the OpenTelemetry exporters take them:
    `OTEL_EXPORTER_OTLP_HEADERS`, overridden by `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, then
    `extra` ("Name=value" each); and the collector's bearer token
    (`AGENTSIGNALS_COLLECTOR_TOKEN`) as `Authorization` when nothing else sets it."""
    from opentelemetry.util.re import parse_env_headers

    headers: dict[str, str] = {}
    for name in ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"):
        headers.update(parse_env_headers(os.environ.get(name, ""), liberal=True))
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--header wants Name=value, got {item!r}")
        headers[key.strip().lower()] = value.strip()
    token = os.environ.get(_TOKEN_ENV)
    if token and "authorization" not in headers:
        headers["authorization"] = f"Bearer {token}"
    return headers


def traces_url(endpoint: str) -> str:
    url = endpoint.rstrip("/")
    return url if url.endswith("/v1/traces") else url + "/v1/traces"


def post_otlp(
    endpoint: str,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    attempts: int = 4,
) -> None:
    """POST one OTLP/protobuf request, retrying on 429/5xx and connection errors; SendError
    (one line saying why) when it cannot be delivered."""
    url = traces_url(endpoint)
    if not url.startswith(("http://", "https://")):
        raise SendError(f"{endpoint!r} is not an http:// or https:// URL")
    delay = 0.5
    for attempt in range(attempts):
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={**(headers or {}), "Content-Type": "application/x-protobuf"},
        )
        last = attempt == attempts - 1
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
                return
        except urllib.error.HTTPError as exc:
            if exc.code not in (429, 502, 503, 504) or last:
                raise SendError(f"{url} answered {exc.code} {exc.reason}{_detail(exc)}") from None
        except urllib.error.URLError as exc:
            if last:
                raise SendError(f"cannot reach {url}: {_why(exc.reason)}") from None
        except OSError as exc:  # a timeout or reset while reading the answer
            if last:
                raise SendError(f"cannot reach {url}: {_why(exc)}") from None
        time.sleep(delay)
        delay *= 2


def _why(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _detail(exc: urllib.error.HTTPError) -> str:
    """The error body's message: a google.rpc.Status (protobuf) or text."""
    try:
        body = exc.read(4096)
    except OSError:
        return ""
    message = ""
    try:
        status = importlib.import_module("google.rpc.status_pb2").Status.FromString(body)
        message = str(status.message)
    except Exception:
        message = body.decode("utf-8", "replace")
    message = " ".join(message.split())[:200]
    return f": {message}" if message.isprintable() and message else ""
