"""What the import benchmarks share (bench/usage_records.py, bench/seat_events.py, bench/tenant_usage.py): a timer
and the table of results they print, with the target beside each number, and write as JSON. Targets live in the
scripts and in docs/performance.md, never in timed tests."""

from __future__ import annotations

import time

UNITS = {"s": "{:.2f} s", "x": "{:.2f}", "MB": "{:.0f} MB"}


def timed(fn, *args, **kwargs):
    """(seconds, fn's result)."""
    began = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - began, result


class Results:
    """The measures of one run, printed as they come and as one table at the end."""

    def __init__(self, width: int = 74):
        self.rows, self.data, self.width = [], {}, width

    def add(self, key: str, label: str, value: float, unit: str = "s", target: float | None = None):
        shown = UNITS[unit].format(value)
        limit = "" if target is None else f"<= {target:g}  " + ("ok" if value <= target else "MISSED")
        self.rows.append((key, label, shown, limit))
        self.data[key] = {"label": label, "value": round(value, 4), "unit": unit, "target": target}
        print(f"  {key:<8} {label:<{self.width}} {shown:>10}  {limit}", flush=True)

    def table(self) -> str:
        lines = [f"{'':<8} {'measure':<{self.width}} {'value':>10}  target", "-" * (self.width + 34)]
        return "\n".join(lines + [f"{k:<8} {label:<{self.width}} {v:>10}  {t}" for k, label, v, t in self.rows])
