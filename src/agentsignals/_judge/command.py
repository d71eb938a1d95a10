"""`agentsignals judge`: run rubrics and the first wrong step, evaluate, cluster, list rubrics.

    agentsignals judge run TRACES --model M [--rubric builtin] [--first-wrong-step] -o judged.jsonl
    agentsignals judge eval --who-and-when DIR --model M        # first wrong step vs labels
    agentsignals judge eval --labels labels.jsonl --records judged.jsonl   # flag calibration
    agentsignals judge cluster judged.jsonl --embed-model E --taxonomy clusters.json -o out.jsonl
    agentsignals judge rubrics [--show ID] [--check FILE]
    agentsignals judge sessions TRACES --embed-model E [--model M] -o sessions.jsonl

The model: any OpenAI-compatible endpoint (``--base-url`` or OPENAI_BASE_URL, key from
OPENAI_API_KEY or the variable ``--api-key-env`` names) or Anthropic (``--provider anthropic``,
ANTHROPIC_API_KEY). Keys are never taken on the command line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

NAME = "judge"
HELP = "LLM judge: rubric flags, the first wrong step, failure clusters, evaluation"
DESCRIPTION = (
    "Judge traced attempts with an LLM (any OpenAI-compatible endpoint, or Anthropic): rubric "
    "flags such as memory drift, the first wrong step of failed attempts, failure clusters; "
    "results go into attempt records (judge.<rubric>.<field>) and onto the traces "
    "(gen_ai.evaluation.result events). Also measures a judge against labels."
)

DEFAULT_OUTPUT_DIR = "agentsignals-output"


def _output_dir() -> Path:
    return Path(os.environ.get("AGENTSIGNALS_OUTPUT_DIR") or DEFAULT_OUTPUT_DIR)


def _add_model_arguments(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        default=os.environ.get("AGENTSIGNALS_JUDGE_MODEL"),
        help="judge model name (or AGENTSIGNALS_JUDGE_MODEL)",
    )
    g.add_argument(
        "--base-url",
        default=None,
        help="OpenAI-compatible base URL up to /v1 (default: OPENAI_BASE_URL, or the OpenAI API;"
        " for --provider anthropic: ANTHROPIC_BASE_URL or api.anthropic.com)",
    )
    g.add_argument("--provider", choices=("openai", "anthropic"), default="openai")
    g.add_argument(
        "--api-key-env",
        default=None,
        help="name of the variable holding the API key (default OPENAI_API_KEY / "
        "ANTHROPIC_API_KEY)",
    )
    g.add_argument(
        "--response-format",
        choices=("auto", "json_schema", "json_object_schema", "json_object", "none"),
        default="auto",
        help="how to ask for JSON (auto: a JSON schema first, stepping down if refused)",
    )
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--samples", type=int, default=1, help="answers per item, majority vote")
    g.add_argument("--seed", type=int, default=0, help="seed of sample 0 (sample i: seed+i)")
    g.add_argument("--max-tokens", type=int, default=400, help="answer length limit")
    g.add_argument(
        "--explanation-chars",
        type=int,
        default=None,
        help="cap on the explanation's length (default: the rubric's, 600)",
    )
    g.add_argument(
        "--context-tokens",
        type=int,
        default=None,
        help="the model's context window (default: as the server reports, else 32000)",
    )
    g.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    g.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    g.add_argument("--retries", type=int, default=5, help="retries on 429/5xx and errors")
    g.add_argument("--price-input", type=float, default=None, help="USD per 1M input tokens")
    g.add_argument("--price-output", type=float, default=None, help="USD per 1M output tokens")
    g.add_argument(
        "--chars-per-token",
        type=float,
        default=3.0,
        help="for budgeting transcripts (3.0 is conservative for code)",
    )
    g.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="answer cache (default: <output dir>/judge/cache.sqlite)",
    )
    g.add_argument("--no-cache", action="store_true", help="no cache (every call is made)")
    g.add_argument("--no-progress", action="store_true", help="no progress line on stderr")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="judge_command", required=True)

    run = sub.add_parser("run", help="judge traced attempts; write records with judge fields")
    run.add_argument("paths", nargs="+", type=Path, help="trace files or folders (OTLP/JSON)")
    run.add_argument(
        "--rubric",
        action="append",
        default=None,
        help="built-in id or YAML file (repeatable; default: builtin, the six behaviours, and "
        "noticed_fault on attempts with an injected fault)",
    )
    run.add_argument("--no-rubrics", action="store_true", help="only the first wrong step")
    run.add_argument(
        "--first-wrong-step",
        nargs="?",
        const="candidates",
        default=None,
        choices=("candidates", "all_at_once", "step_by_step", "binary_search"),
        help="label the first wrong step of failed attempts (mode; default candidates)",
    )
    run.add_argument(
        "--all-attempts",
        action="store_true",
        help="first wrong step for every attempt, not only failed ones",
    )
    run.add_argument(
        "--records",
        type=Path,
        default=None,
        help="attempt records to add the results to (e.g. from agentsignals verify); they "
        "also give the outcomes that select failed attempts",
    )
    run.add_argument("-o", "--output", type=Path, default=None, help=".jsonl (default stdout)")
    run.add_argument(
        "--spans-out",
        type=Path,
        default=None,
        help="also write judge spans (gen_ai.evaluation.result events) to this folder",
    )
    run.add_argument("--summary", type=Path, default=None, help="write the run summary (JSON)")
    _add_model_arguments(run)

    ev = sub.add_parser("eval", help="measure a judge against labels")
    ev.add_argument(
        "--who-and-when",
        nargs="+",
        type=Path,
        default=None,
        help="Who&When logs (files or folders): first-wrong-step accuracy with baselines",
    )
    ev.add_argument(
        "--mode",
        action="append",
        choices=("candidates", "all_at_once", "step_by_step", "binary_search"),
        default=None,
        help="attribution mode(s) to evaluate (repeatable; default all_at_once)",
    )
    ev.add_argument("--limit", type=int, default=None, help="only the first N logs")
    ev.add_argument(
        "--with-ground-truth",
        action="store_true",
        help="show the model the task's correct answer (the paper's 'with ground truth')",
    )
    ev.add_argument("--labels", type=Path, default=None, help="human flag labels (JSON lines)")
    ev.add_argument("--records", type=Path, default=None, help="judged attempt records")
    ev.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="the evaluation JSON (flags: default <output dir>/judge/calibration.json)",
    )
    ev.add_argument("--table", type=Path, default=None, help="also write a Markdown table")
    _add_model_arguments(ev)

    cl = sub.add_parser("cluster", help="cluster failed attempts into a failure taxonomy")
    cl.add_argument("records", type=Path, help="judged attempt records (.jsonl)")
    cl.add_argument("--taxonomy", type=Path, required=True, help="the taxonomy file (JSON)")
    cl.add_argument("--k", type=int, default=None, help="number of clusters")
    cl.add_argument("--method", choices=("agglomerative", "kmeans"), default="agglomerative")
    cl.add_argument("--recluster", action="store_true", help="cluster again (ids kept if close)")
    cl.add_argument("--embed-model", required=True, help="embedding model name")
    cl.add_argument(
        "--embed-base-url",
        default=None,
        help="OpenAI-compatible /v1 base URL of the embeddings (default: --base-url)",
    )
    cl.add_argument("--no-names", action="store_true", help="do not ask the model for names")
    cl.add_argument(
        "--keep-id-similarity",
        type=float,
        default=0.9,
        help="re-clustering keeps an old id for a cluster whose centroid is at least this "
        "similar (cosine; depends on the embedder)",
    )
    cl.add_argument("-o", "--output", type=Path, default=None, help=".jsonl (default stdout)")
    _add_model_arguments(cl)

    ss = sub.add_parser(
        "sessions",
        help="product-session records with the model-based signals (embedding curves, the "
        "judge's session_* rubrics)",
        description="Session records of interactive sessions (docs/sessions.md) with the "
        "model-based signals filled (docs/session_semantic.md): the embedding curves "
        "(dynamics.cp_curve, drift_onset_turn, intent_coherence_curve, ...) from "
        "--embed-model or --embed-local, and the judge's session signals "
        "(anticipation.*, dynamics.gd_*, ...) from --model. Either may be left out: its "
        "signals stay null. The traces need the sessions' text (agentsignals import "
        "--content, or live content capture). Embeddings and answers are cached: a re-run "
        "embeds and asks nothing.",
    )
    ss.add_argument("paths", nargs="+", type=Path, help="trace files or folders (OTLP/JSON)")
    ss.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="session records: .jsonl, .parquet or .csv by suffix (default: JSON lines on stdout)",
    )
    emb = ss.add_argument_group("embeddings")
    emb.add_argument(
        "--embed-model",
        default=os.environ.get("AGENTSIGNALS_EMBED_MODEL"),
        help="embedding model of an OpenAI-compatible /v1/embeddings endpoint (or "
        "AGENTSIGNALS_EMBED_MODEL)",
    )
    emb.add_argument(
        "--embed-base-url",
        default=None,
        help="OpenAI-compatible /v1 base URL of the embeddings (default: --base-url)",
    )
    emb.add_argument(
        "--embed-local",
        nargs=2,
        type=Path,
        default=None,
        metavar=("MODEL_ONNX", "TOKENIZER_JSON"),
        help="embed in process with an ONNX sentence encoder and its tokenizer.json (the "
        "embed-local extra) instead of an endpoint",
    )
    emb.add_argument("--embed-batch", type=int, default=32, help="texts per embedding request")
    _add_model_arguments(ss)

    rb = sub.add_parser("rubrics", help="list the built-in rubrics, show one, check a file")
    rb.add_argument("--show", default=None, help="print a built-in rubric's YAML")
    rb.add_argument("--check", type=Path, action="append", default=[], help="validate a file")


def _err(message: str) -> None:
    print(f"agentsignals judge: {message}", file=sys.stderr)


def _client_config(args: argparse.Namespace) -> Any:
    from agentsignals._judge.client import ClientConfig

    if args.provider == "anthropic":
        base = args.base_url or os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"
        key_env = args.api_key_env or "ANTHROPIC_API_KEY"
    else:
        base = args.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        key_env = args.api_key_env or "OPENAI_API_KEY"
    return ClientConfig(
        base_url=base,
        api_key=os.environ.get(key_env),
        provider=args.provider,
        timeout_s=args.timeout,
        retries=args.retries,
        response_format=args.response_format,
    )


def _cache(args: argparse.Namespace) -> Any:
    """The answer (and embedding) cache the options name, or None with --no-cache."""
    from agentsignals._judge.cache import JudgeCache

    if args.no_cache:
        return None
    return JudgeCache(args.cache or _output_dir() / "judge" / "cache.sqlite")


def _judge(args: argparse.Namespace, cache: Any = False) -> Any:
    """The judge the options describe; `cache`: a cache to share (default: `_cache(args)`)."""
    from agentsignals._judge.engine import Judge, JudgeSettings

    settings = JudgeSettings(
        model=args.model,
        client=_client_config(args),
        temperature=args.temperature,
        samples=max(1, args.samples),
        seed=args.seed,
        max_tokens=args.max_tokens,
        context_tokens=args.context_tokens,
        concurrency=max(1, args.concurrency),
        chars_per_token=args.chars_per_token,
        price_input_per_mtok=args.price_input,
        price_output_per_mtok=args.price_output,
        explanation_chars=args.explanation_chars,
    )
    return Judge(settings, cache=_cache(args) if cache is False else cache)


def _usage_line(usage: Any) -> str:
    cost = f", ${usage.cost_usd:.4f}" if usage.cost_usd else ""
    return (
        f"{usage.model_calls} model calls, {usage.cache_hits} cached answers, "
        f"{usage.input_tokens} input + {usage.output_tokens} output tokens{cost}"
        + (f", {usage.reasks} re-asks" if usage.reasks else "")
        + (f", {usage.unparseable} unreadable answers" if usage.unparseable else "")
        + (f", {usage.model_errors} model errors" if usage.model_errors else "")
    )


def read_attempt_records(path: Path) -> tuple[list[Any], list[str]]:
    """Attempt records from a JSON lines file or a feature folder (latest revisions)."""
    import msgspec

    from agentsignals._features.record import AttemptRecord, supersedes
    from agentsignals._features.store import read_records

    if path.is_dir():
        attempts, _ = read_records(path)
        return attempts, []
    decoder = msgspec.json.Decoder(AttemptRecord)
    out: dict[str, AttemptRecord] = {}
    problems: list[str] = []
    with path.open("rb") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = decoder.decode(line)
            except msgspec.DecodeError as exc:
                problems.append(f"{path}:{line_no}: not an attempt record ({exc})")
                continue
            old = out.get(record.attempt_id)
            if old is None or supersedes(record, old):
                out[record.attempt_id] = record
    return list(out.values()), problems


def run(args: argparse.Namespace) -> int:
    try:
        if args.judge_command == "rubrics":
            return _rubrics(args)
        if args.judge_command == "eval" and args.labels is not None:
            return _eval_flags(args)
        if args.judge_command == "sessions":
            return _sessions(args)
        if not args.model:
            _err("give the judge's model with --model (or AGENTSIGNALS_JUDGE_MODEL)")
            return 2
        if args.judge_command == "run":
            return _run(args)
        if args.judge_command == "eval":
            return _eval_steps(args)
        return _cluster(args)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


def _rubrics(args: argparse.Namespace) -> int:
    from importlib import resources

    from agentsignals._judge.rubrics import RubricError, builtin_rubric, builtin_rubric_ids
    from agentsignals._judge.rubrics import load_rubric as load

    status = 0
    for path in args.check:
        try:
            rubric = load(path)
        except RubricError as exc:
            _err(str(exc))
            status = 1
            continue
        fields = ", ".join(f"{f.name} ({f.type}, {f.reducer})" for f in rubric.fields)
        print(f"{path}: ok: {rubric.id} v{rubric.version}: {fields}")
    if args.show:
        try:
            builtin_rubric(args.show)
        except RubricError as exc:
            _err(str(exc))
            return 2
        text = (resources.files("agentsignals._judge.rubrics") / f"{args.show}.yaml").read_text(
            encoding="utf-8"
        )
        sys.stdout.write(text)
        return status
    if not args.check:
        for rubric_id in builtin_rubric_ids():
            rubric = builtin_rubric(rubric_id)
            fields = ", ".join(f"{f.name}" for f in rubric.fields)
            print(f"{rubric.id:<20} v{rubric.version}  judge.{rubric.id}.{{{fields}}}  "
                  f"{rubric.summary}")  # fmt: skip
    return status


def _progress(args: argparse.Namespace, label: str) -> Any:
    if args.no_progress:
        return None
    from agentsignals._judge.progress import Progress

    return Progress(label)


def _run(args: argparse.Namespace) -> int:
    from agentsignals._features.store import write_json_lines
    from agentsignals._judge.engine import JudgeInterrupted
    from agentsignals._judge.results import write_judge_spans
    from agentsignals._judge.rubrics import RubricError, resolve_rubrics
    from agentsignals._judge.run import judge_traces

    for path in args.paths:
        if not path.exists():
            _err(f"{path}: no such file or folder")
            return 2
    try:
        rubrics = [] if args.no_rubrics else resolve_rubrics(args.rubric or ["builtin"])
    except RubricError as exc:
        _err(str(exc))
        return 2
    if not rubrics and args.first_wrong_step is None:
        _err("nothing to judge: give rubrics, or --first-wrong-step")
        return 2
    records = None
    if args.records is not None:
        if not args.records.exists():
            _err(f"{args.records}: no such file or folder")
            return 2
        records, problems = read_attempt_records(args.records)
        for problem in problems:
            _err(f"skipped {problem}")
    if args.samples > 1 and args.temperature == 0:
        _err(
            f"note: {args.samples} samples at temperature 0 are the same answer on most "
            "servers; give --temperature for a vote that means something"
        )
    judge = _judge(args)
    progress = _progress(args, "judging")
    try:
        result = judge_traces(
            args.paths,
            rubrics=rubrics,
            judge=judge,
            records=records,
            first_wrong_step=args.first_wrong_step,
            first_wrong_step_all=args.all_attempts,
            progress=progress,
        )
    except JudgeInterrupted as exc:
        if progress is not None:
            progress.close()
        where = judge.cache.path if judge.cache is not None else None
        _err(
            f"interrupted: {len(exc.results)} of {exc.total} judgments finished; "
            + (
                f"every answer received is cached in {where}: run the same command again to resume"
                if where
                else "no cache was used"
            )
        )
        return 130
    finally:
        if progress is not None:
            progress.close()
    for problem in result.problems:
        _err(f"skipped {problem}")
    for note in result.notes:
        _err(note)
    write_json_lines(result.records, args.output)
    if args.spans_out is not None:
        written = write_judge_spans(result.spans, args.spans_out)
        if written is not None:
            _err(f"{len(result.spans)} judge spans in {written}")
    summary = result.summary()
    summary["cache"] = judge.cache.path if judge.cache is not None else None
    summary["model"] = judge.settings.model
    if args.summary is not None:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(summary, indent=1) + "\n")
    _err(
        f"{summary['judgments']} judgments of {summary['attempts']} attempts "
        f"({summary['fields_could_not_judge']} fields could not be judged); "
        + _usage_line(result.usage)
    )
    if judge.cache is not None:
        judge.cache.close()
    return 1 if result.problems and not result.transcripts else 0


def _eval_steps(args: argparse.Namespace) -> int:
    from agentsignals._judge.engine import JudgeInterrupted
    from agentsignals._judge.evaluate import (
        judge_who_and_when,
        load_who_and_when,
        markdown_table,
        score_who_and_when,
    )

    if not args.who_and_when:
        _err("give --who-and-when LOGS (first wrong step) or --labels with --records (flags)")
        return 2
    problems: list[str] = []
    try:
        logs = load_who_and_when(args.who_and_when, problems=problems)
    except FileNotFoundError as exc:
        _err(str(exc))
        return 2
    for problem in problems:
        _err(f"skipped {problem}")
    if args.limit is not None:
        logs = logs[: args.limit]
    if not logs:
        _err("no Who&When logs found")
        return 1
    judge = _judge(args)
    runs = {}
    predictions_out: dict[str, list[dict[str, Any]]] = {}
    for mode in args.mode or ["all_at_once"]:
        progress = _progress(args, f"who&when {mode}")
        try:
            predictions, _ = judge_who_and_when(
                judge, logs, mode=mode, with_ground_truth=args.with_ground_truth,
                progress=progress,
            )  # fmt: skip
        except JudgeInterrupted:
            _err("interrupted; answers so far are cached: run again to resume")
            return 130
        finally:
            if progress is not None:
                progress.close()
        label = f"{mode} ({judge.settings.model})"
        runs[label] = predictions
        predictions_out[label] = [p.__dict__ for p in predictions]
    document = score_who_and_when(logs, runs)
    document["judge"] = {
        "model": judge.settings.model,
        "temperature": judge.settings.temperature,
        "samples": judge.settings.samples,
        "with_ground_truth": args.with_ground_truth,
        "context_tokens": judge.context_tokens,
        "usage": judge.usage.as_dict(),
    }
    document["predictions"] = predictions_out
    text = json.dumps(document, indent=1) + "\n"
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    table = markdown_table(document)
    if args.table is not None:
        args.table.parent.mkdir(parents=True, exist_ok=True)
        args.table.write_text(table + "\n")
    print(table, file=sys.stderr)
    _err(_usage_line(judge.usage))
    return 0


def _eval_flags(args: argparse.Namespace) -> int:
    from agentsignals._judge.evaluate import calibrate_flags, load_labels

    if args.records is None:
        _err("--labels needs --records (the judged attempt records)")
        return 2
    for path in (args.labels, args.records):
        if not path.exists():
            _err(f"{path}: no such file or folder")
            return 2
    labels, problems = load_labels(args.labels)
    records, record_problems = read_attempt_records(args.records)
    for problem in [*problems, *record_problems]:
        _err(f"skipped {problem}")
    document = calibrate_flags(records, labels, judge_info={"records": str(args.records)})
    target = args.output or _output_dir() / "judge" / "calibration.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=1) + "\n")
    for name, flag in document["flags"].items():
        sens = flag["sensitivity"]["estimate"]
        spec = flag["specificity"]["estimate"]
        _err(
            f"{name}: n={flag['n']} sensitivity "
            f"{'-' if sens is None else f'{sens:.2f}'} specificity "
            f"{'-' if spec is None else f'{spec:.2f}'}"
        )
    _err(f"calibration written to {target}")
    return 0 if document["flags"] else 1


def _cluster(args: argparse.Namespace) -> int:
    from agentsignals._features.store import write_json_lines
    from agentsignals._judge.client import ModelClient, ModelError
    from agentsignals._judge.cluster import cluster_failures, read_taxonomy, write_taxonomy

    if not args.records.exists():
        _err(f"{args.records}: no such file or folder")
        return 2
    records, problems = read_attempt_records(args.records)
    for problem in problems:
        _err(f"skipped {problem}")
    taxonomy = None
    if args.taxonomy.exists():
        try:
            taxonomy = read_taxonomy(args.taxonomy)
        except (ValueError, KeyError) as exc:
            _err(str(exc))
            return 2
    judge = _judge(args)
    config = judge.settings.client
    if args.embed_base_url:
        from dataclasses import replace

        config = replace(config, base_url=args.embed_base_url)
    try:
        result = cluster_failures(
            records,
            client=ModelClient(config),
            embed_model=args.embed_model,
            cache=judge.cache,
            k=args.k,
            method=args.method,
            taxonomy=taxonomy,
            recluster=args.recluster,
            namer=None if args.no_names else judge,
            seed=args.seed,
            keep_similarity=args.keep_id_similarity,
        )
    except (ModelError, ValueError, ImportError) as exc:
        _err(str(exc))
        return 1
    write_taxonomy(result.taxonomy, args.taxonomy)
    write_json_lines(result.records, args.output)
    if result.skipped:
        _err(
            f"{len(result.skipped)} failed attempts have no failure summary or first wrong "
            "step and were not clustered (judge them with --rubric failure_summary)"
        )
    _err(
        f"{result.assigned} failed attempts in {len(result.taxonomy.clusters)} clusters "
        f"({args.taxonomy}); " + _usage_line(result.usage)
    )
    return 0


# ------------------------------------------------------------------------ judge sessions

_FEATURES_LOG = "agentsignals.features"
# The pipeline's per-session lines about a model that failed: said once, by the command.
_MODEL_FAILED = ("session embedding signals not computed", "session judge signals not computed")


class _Lines(logging.Handler):
    """Keeps the distinct messages of a logger (each said once, after the run)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: dict[str, None] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = " ".join(record.getMessage().split())
        except Exception:  # a bad format string must not stop the run
            text = str(record.msg)
        self.messages.setdefault(text[:300])


def _embedder(args: argparse.Namespace, cache: Any) -> Any:
    """The embedder the options name (cached in `cache`), None when none is named; raises
    ValueError with a one-line reason when it cannot be made."""
    from agentsignals._features.embedding import CachedEmbedder
    from agentsignals._judge.client import ModelClient

    if args.embed_local is not None:
        model_path, tokenizer_path = args.embed_local
        for path in (model_path, tokenizer_path):
            if not path.is_file():
                raise ValueError(f"{path}: no such file (--embed-local MODEL_ONNX TOKENIZER_JSON)")
        from agentsignals._judge.local_embed import OnnxEmbedder

        try:
            inner: Any = OnnxEmbedder(
                model_path, tokenizer_path, model=args.embed_model, batch=args.embed_batch
            )
        except ImportError as exc:
            raise ValueError(str(exc)) from None
        except Exception as exc:  # onnxruntime / tokenizers refusing the files
            text = " ".join(str(exc).split())[:200]
            raise ValueError(f"--embed-local: cannot load the model: {text}") from None
    elif args.embed_model:
        from dataclasses import replace

        from agentsignals._judge.session import HttpEmbedder

        config = _client_config(args)
        if args.embed_base_url:
            config = replace(config, base_url=args.embed_base_url)
        inner = HttpEmbedder(ModelClient(config), args.embed_model, batch=args.embed_batch)
    else:
        return None
    return CachedEmbedder(inner, cache, batch=args.embed_batch)


def _write_sessions(records: list[Any], output: Path | None) -> str | None:
    """Session records to `output` by its suffix; the problem in one line, or None."""
    from agentsignals._features.store import write_csv, write_json_lines, write_parquet

    suffix = output.suffix.lower() if output is not None else ".jsonl"
    try:
        if suffix == ".parquet":
            assert output is not None
            write_parquet(records, output)
        elif suffix == ".csv":
            write_csv(records, output)
        else:
            write_json_lines(records, output)
    except ImportError as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot write {output or 'stdout'}: {exc.strerror or exc}"
    return None


def _sessions(args: argparse.Namespace) -> int:
    from agentsignals._judge.engine import Usage
    from agentsignals._judge.session import RubricSessionJudge
    from agentsignals._judge.session_run import judge_sessions

    for path in args.paths:
        if not path.exists():
            _err(f"{path}: no such file or folder")
            return 2
    if not (args.embed_model or args.embed_local or args.model):
        _err(
            "no model given: --embed-model (with --embed-base-url) or --embed-local for the "
            "embedding signals, --model (with --base-url) for the judge's session signals"
        )
        return 2
    cache = _cache(args)
    try:
        embedder = _embedder(args, cache)
    except ValueError as exc:
        _err(str(exc))
        return 2
    judge = _judge(args, cache) if args.model else None
    session_judge = RubricSessionJudge(judge) if judge is not None else None
    usage = judge.usage if judge is not None else Usage()
    bar = _progress(args, "sessions")
    lines = _Lines()
    log = logging.getLogger(_FEATURES_LOG)
    log.addHandler(lines)
    propagate, log.propagate = log.propagate, False
    try:
        result = judge_sessions(
            args.paths,
            embedder=embedder,
            session_judge=session_judge,
            progress=None if bar is None else (lambda done, total: bar(done, total, usage)),
        )
    except KeyboardInterrupt:
        where = cache.path if cache is not None else None
        _err(
            "interrupted; "
            + (f"what was answered is cached in {where}: run again to resume" if where else
               "no cache was used")
        )  # fmt: skip
        return 130
    finally:
        log.removeHandler(lines)
        log.propagate = propagate
        if bar is not None:
            bar.close()
    for problem in result.problems:
        _err(f"skipped {problem}")
    for message in lines.messages:
        if not message.startswith(_MODEL_FAILED):
            _err(message)
    status = 0
    if not result.sessions:
        _err(
            "no product sessions in the traces (interactive sessions with user turns: "
            "docs/sessions.md; eval attempts are judged with `agentsignals judge run`)"
        )
        if cache is not None:
            cache.close()
        return 1
    if result.with_text == 0:
        _err(
            f"the {len(result.sessions)} sessions carry no text: import them with "
            "`agentsignals import --content` (or capture content live); the model-based "
            "signals are left null"
        )
        status = 1
    if result.embed_failure is not None:
        _err(f"embeddings failed, the embedding signals are left null: {result.embed_failure}")
        status = 1
    if result.judge_failure is not None:
        _err(f"the judge failed, its session signals are left null: {result.judge_failure}")
        status = 1
    unwritten = _write_sessions(result.sessions, args.output)
    if unwritten is not None:
        _err(unwritten)
        status = 2
    parts = [f"{len(result.sessions)} sessions ({result.with_text} with text)"]
    if embedder is not None:
        parts.append(
            f"{result.embedded} texts embedded in {result.embed_requests} requests, "
            f"{result.embed_hits} from the cache"
        )
    if judge is not None:
        parts.append(_usage_line(usage))
    _err("; ".join(parts))
    if cache is not None:
        cache.close()
    return status
