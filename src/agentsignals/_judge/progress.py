"""A progress line on stderr for long judge runs: done/total, rate, ETA, calls, cache hits."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from agentsignals._judge.engine import Usage

__all__ = ["Progress"]


class Progress:
    """`progress(done, total, usage)`: tqdm when installed, else a line redrawn on a terminal,
    else one line every `every_s` seconds (logs of batch jobs)."""

    def __init__(self, label: str = "judging", *, stream: TextIO | None = None,
                 every_s: float = 10.0) -> None:  # fmt: skip
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = every_s
        self._start = time.monotonic()
        self._last = 0.0
        self._bar: Any = None
        self._drawn = False
        try:
            from tqdm import tqdm

            self._bar = tqdm(total=0, desc=label, unit="item", file=self.stream, leave=True)
        except ImportError:
            self._bar = None

    def __call__(self, done: int, total: int, usage: Usage) -> None:
        postfix = (
            f"calls {usage.model_calls}, cached {usage.cache_hits}, "
            f"tokens {usage.input_tokens + usage.output_tokens}"
        )
        if self._bar is not None:
            self._bar.total = total
            self._bar.n = done
            self._bar.set_postfix_str(postfix, refresh=False)
            self._bar.refresh()
            return
        now = time.monotonic()
        elapsed = max(now - self._start, 1e-9)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else float("nan")
        eta_text = f"{eta:,.0f} s" if eta == eta else "?"
        line = f"{self.label}: {done}/{total} ({rate:.2f}/s, ETA {eta_text}) {postfix}"
        if self.stream.isatty():
            print(f"\r{line}\x1b[K", end="", file=self.stream, flush=True)
            self._drawn = True
        elif done == total or now - self._last >= self.every_s:
            print(line, file=self.stream, flush=True)
            self._last = now

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._drawn:
            print(file=self.stream)
