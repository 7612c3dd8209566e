"""What the import benchmarks share (bench/usage_records.py, bench/seat_events.py, bench/tenant_usage.py): a timer
and the table of results they print, with the target beside each number, and write as JSON. Targets live in the
scripts and in docs/performance.md, never in timed tests."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

UNITS = {"s": "{:.2f} s", "x": "{:.2f}", "MB": "{:.0f} MB"}


def postgres_started(script: str, **settings) -> dict:
    """What an import benchmark does first: refuse any database but PostgreSQL (the set-based paths are its), print
    the database, the CPUs and the time, migrate. Returns the run's machine and settings, for the JSON."""
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit(f"{script} measures PostgreSQL: set DATABASE_URL to a PostgreSQL database")
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(" on ")[0]
    info = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpus": os.cpu_count(), "database": version,
            **settings}
    print(f"database: {version}, {os.cpu_count()} CPUs, {info['date']}", flush=True)
    call_command("migrate", verbosity=0)
    return info


def drop_partners(partners, facts) -> None:
    """--drop: each partner the benchmark added, with `facts(partner)` (a queryset of what it imported), its audit
    rows and its customers."""
    from partners.models import AuditLog, Customer

    for partner in partners:
        facts(partner).delete()
        AuditLog.objects.filter(partner=partner).delete()
        Customer.objects.filter(partner=partner).delete()
        partner.delete()


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

    def finish(self, info: dict, json_path: str | None) -> None:
        """The table of every measure, and the run (machine, settings, results) as JSON when asked."""
        print()
        print(self.table())
        if json_path:
            Path(json_path).write_text(json.dumps({"machine": info, "results": self.data}, indent=2) + "\n")

    def table(self) -> str:
        lines = [f"{'':<8} {'measure':<{self.width}} {'value':>10}  target", "-" * (self.width + 34)]
        return "\n".join(lines + [f"{k:<8} {label:<{self.width}} {v:>10}  {t}" for k, label, v, t in self.rows])
