"""Progress of a long management command (import_csv, run_billing, generate_data, sync_inventory, export_report,
load_demo): a live bar on a terminal, one summary line everywhere else.

On a terminal a clerk waiting on a 2 GB import wants to see that it moves, how fast, and when it will end: tqdm
(the maintained progress bar) draws rows read, rows per second and the time left when the total is known. In a
log or CI a bar is hundreds of carriage returns, so there the command writes exactly one line when it ends:
"import_csv seat-events: 145,586 rows in 12.3 s (11,837 rows/s)". NO_PROGRESS=1 turns the bar off on a terminal
too (the summary line stays).

Progress goes to standard error, never standard output: stdout carries what a command reports (and export_report's
CSV), which scripts and tests read. It is the process's stderr (sys.stderr), not the command's `self.stderr`: a
caller that captures a command's messages (call_command(stderr=...)) gets its messages, not its progress.

The counts come from the same callbacks the admin's background import page reads (the import engine's
`on_progress(rows, bytes_read)`), so a command only turns them into `set(done, total)` calls.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

from tqdm import tqdm

MIN_INTERVAL = 0.5  # seconds between two redraws of the bar: a terminal over SSH stays responsive
TICK = 1.0  # seconds between two redraws while nothing is counted (one long SQL statement): the clock moves on


def progress(label: str, total: int | None = None, unit: str = "rows", stream: TextIO | None = None) -> Progress:
    """A progress meter for `label` (the command and what it works on): use it as a context manager and call
    `update(n)` (n more done) or `set(done, total)` (done so far, and the total when it is known or changes).
    `stream` defaults to the process's stderr at the time of the call."""
    return Progress(label, total=total, unit=unit, stream=sys.stderr if stream is None else stream)


def live(stream) -> bool:
    """Whether a bar may be drawn on the stream: a terminal, and NO_PROGRESS not set."""
    if os.environ.get("NO_PROGRESS", "").strip() not in ("", "0"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class Progress:
    """A bar (tqdm) on a terminal, else a count and a clock for the one summary line written at close()."""

    def __init__(self, label: str, *, total: int | None, unit: str, stream):
        self.label, self.unit, self.total, self.stream = label, unit, total, stream
        self.done = 0
        self.closed = False
        self.started = time.monotonic()
        self.bar = tqdm(desc=label, total=total, unit=f" {unit}", file=stream, mininterval=MIN_INTERVAL,
                        dynamic_ncols=True, leave=True) if live(stream) else None
        self._stop = threading.Event()
        self._ticking = None
        if self.bar is not None:  # a bar that no count moves still shows the time running (it is not stuck)
            self._ticking = threading.Thread(target=self._tick, name=f"progress {label}", daemon=True)
            self._ticking.start()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(stopped=exc_type is not None)

    def update(self, n: int = 1) -> None:
        """n more done."""
        self.done += n
        if self.bar is not None:
            self.bar.update(n)

    def set(self, done: int, total: int | None = None) -> None:
        """Done so far; and the total, when the caller knows it (or a better estimate of it) now."""
        if total is not None and total != self.total:
            self.total = total
            if self.bar is not None:
                self.bar.total = total
        self.update(done - self.done)

    def note(self, text: str) -> None:
        """A short word on the bar about what is being done now (a table, a step); not in the summary."""
        if self.bar is not None:
            self.bar.set_postfix_str(text)

    def _tick(self) -> None:
        while not self._stop.wait(TICK):
            self.bar.refresh()

    def close(self, *, stopped: bool = False) -> None:
        """End the bar, or write the summary line (once). `stopped`: the work ended on an error."""
        if self.closed:
            return
        self.closed = True
        if self._ticking is not None:
            self._stop.set()
            self._ticking.join()
        if self.bar is not None:
            if not stopped and self.bar.total is not None and self.bar.n != self.bar.total:
                self.bar.total = self.bar.n  # an estimated total (import_csv's) gives way to the count at the end
                self.bar.refresh()
            self.bar.close()
            return
        self.stream.write(self.summary(time.monotonic() - self.started, stopped=stopped) + "\n")
        flush = getattr(self.stream, "flush", None)
        if flush is not None:
            flush()

    def summary(self, seconds: float, *, stopped: bool = False) -> str:
        """"import_csv seat-events: 145,586 rows in 12.3 s (11,837 rows/s)"."""
        counted = f"stopped after {self.done:,} {self.unit}" if stopped else f"{self.done:,} {self.unit}"
        line = f"{self.label}: {counted} in {seconds:.1f} s"
        if seconds >= 0.05 and self.done:
            rate = self.done / seconds
            line += f" ({rate:,.0f} {self.unit}/s)" if rate >= 100 else f" ({rate:,.1f} {self.unit}/s)"
        return line
