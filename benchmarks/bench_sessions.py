"""Session signals of long interactive sessions, without embeddings, side by side in one run.

A synthetic Claude-Code-shaped product session is built with the importers' span builder: N
agent turns (model calls with visible text and reasoning), one user message every 5 turns
(some with correction words), an interrupt every 50, two tool calls per turn (a read, and an
edit with its changed line range on every other turn, many of them re-edits of the same
regions), a compaction every 200 turns. Rows, CPU time (median of --repeat, interleaved):

* attempt record only (`attempt_record`): what every attempt already costs;
* attempt record + session record (`session_record`): the session signals' own cost is the
  difference;
* `features.from_spans` end to end (assembler, both records, the cross-session joins).

Goal (issue #14): a 500-turn session's session signals in under 1 s without embeddings.

    python benchmarks/bench_sessions.py --turns 500 5000
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from agentsignals import features
from agentsignals._classify.regions import Region
from agentsignals._features.extract import attempt_record
from agentsignals._features.session import session_record
from agentsignals._import.builder import TrajectoryBuilder
from agentsignals._spans.model import Span

_WORDS = "I think the parser might be wrong here; should I also update the tests?"


def session_spans(turns: int) -> list[Span]:
    t0 = 1_700_000_000_000_000_000
    step = 2_000_000_000
    builder = TrajectoryBuilder(
        source_format="claude-code", source_path="/bench/session.jsonl", task_id="s", start_ns=t0
    )
    attempt = builder.attempt(
        agent_type="claude-code", agent_name="claude-code", model_id="m", start_ns=t0,
        working_directory="/repo",
    )  # fmt: skip
    for i in range(turns):
        at = t0 + i * step
        if i % 5 == 0:
            text = "no, that's wrong, try again" if i % 15 == 5 else "now fix the next function"
            attempt.user_turn(text, at_ns=at)
        if i % 50 == 49:
            attempt.user_turn(None, kind="interrupt", at_ns=at)
        if i % 200 == 199:
            attempt.compaction(at_ns=at, tokens_before=170_000, trigger="auto")
        turn = attempt.turn(
            count_text=True, start_ns=at, end_ns=at + step // 2, model="m", input_tokens=1000,
            output_tokens=100, reasoning="I'll assume the caller wants this. " * 3, text=_WORDS,
        )  # fmt: skip
        attempt.tool(
            "Read", turn=turn, arguments={"file_path": f"src/m{i % 40}.py"},
            files=[f"src/m{i % 40}.py"], result="x" * 200, start_ns=at, end_ns=at + 10,
        )  # fmt: skip
        if i % 2 == 0:
            file = f"src/m{i % 20}.py"
            region = Region(file, 10 + (i % 7) * 3, 1 + i % 4, i % 3)
            attempt.tool(
                "Edit", turn=turn, arguments={"file_path": file, "old": str(i)}, files=[file],
                changed_files=[file], regions=[region], result="ok", start_ns=at + 20,
                end_ns=at + 30,
            )  # fmt: skip
    attempt.end(end_ns=t0 + turns * step)
    return builder.finish(end_ns=t0 + turns * step)


def cpu(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'turns':>6} {'spans':>7} {'attempt rec':>12} {'+ session rec':>14} "
          f"{'session only':>13} {'from_spans':>11}")  # fmt: skip
    for turns in args.turns:
        spans = session_spans(turns)
        record = attempt_record(spans)
        assert session_record(spans, record).user.user_turn_count == (turns + 4) // 5
        rows: dict[str, list[float]] = {"a": [], "s": [], "f": []}
        for _ in range(args.repeat):  # interleaved, so load changes hit every row alike
            rows["a"].append(cpu(lambda s=spans: attempt_record(s), 1))
            rows["s"].append(cpu(lambda s=spans: session_record(s, attempt_record(s)), 1))
            rows["f"].append(cpu(lambda s=spans: features.from_spans(s), 1))
        a, s, f = (statistics.median(rows[k]) for k in "asf")
        print(f"{turns:>6} {len(spans):>7} {a:>11.3f}s {s:>13.3f}s {s - a:>12.3f}s {f:>10.3f}s")


if __name__ == "__main__":
    main()
