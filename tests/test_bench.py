"""The scale benchmark at a tiny size, for correctness only (bench/run.py; numbers live in
docs/performance.md, never in tests): the generator's data rates and bills, the billing run's
seat-days equal the hand-written floor, a rerun bills nothing, and every step runs."""

from __future__ import annotations

import importlib.util
import os
from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db.models import Sum

from billing.core.periods import Period
from invoicing.models import Invoice, InvoiceLine, InvoiceState, LineType
from partners.models import Member, Method, SeatAssignment, Service

ROOT = Path(__file__).resolve().parent.parent
FIRST = Period.of(datetime.now(UTC).date()).shift(-2)


def bench_module():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.django_db
def test_the_benchmark_runs_at_a_tiny_size_and_its_results_are_right(tmp_path):
    environment = dict(os.environ)
    bench = bench_module()
    assert dict(os.environ) == environment  # importing it changes nothing for the tests that follow
    out = tmp_path / "results.json"
    results = bench.main(["--partners", "7", "--customers", "4", "--members", "5", "--months", "2",
                          "--agents", "140", "--first", str(FIRST), "--rmm-rows", "300", "--pdf-customers", "6",
                          "--skip", "f", "--json", str(out)])
    data = results.data
    assert {"gen", "history", "a", "a2", "b", "a/b", "c", "d", "e lines", "e seats"} <= set(data)
    assert out.exists() and '"a/b"' in out.read_text()
    # every billing method was generated and billed
    methods = set(Service.objects.values_list("method", flat=True))
    assert methods == set(Method.values)
    billed = set(InvoiceLine.objects.exclude(service=None).values_list("service__method", flat=True))
    assert billed == set(Method.values)
    # the month's run: one CI per generated partner, nothing again on the rerun
    bench_month = str(FIRST.shift(2))
    assert Invoice.objects.filter(kind="CI", month=bench_month, partner__slug__startswith="gen-p").count() == 7
    assert data["a2"]["label"].endswith("(nothing to bill: 0 invoices)")
    # every invoice's total is its lines' sum
    for invoice in Invoice.objects.filter(state=InvoiceState.ISSUED):
        lines = invoice.lines.aggregate(s=Sum("amount"))["s"]
        assert invoice.total == lines, invoice
        taxes = invoice.lines.filter(line_type=LineType.TAX).aggregate(s=Sum("amount"))["s"] or 0
        assert invoice.tax_amount == taxes
    # the rmm import brought its agents, the 500-customer CI (here 6) rendered
    assert data["c"]["value"] > 0 and data["d"]["value"] > 0


@pytest.mark.django_db
def test_the_generator_is_deterministic_and_keeps_the_seat_rules(cli):
    for prefix in ("x", "y"):
        call_command("generate_data", partners=3, customers=3, members=6, months=2, seed=7, agents=60,
                     first=str(FIRST), prefix=prefix)

    def history(prefix):
        seats = SeatAssignment.objects.filter(partner__slug__startswith=f"{prefix}-")
        return sorted((s.customer.slug, s.member.name, s.assigned_at, s.removed_at) for s in seats)

    assert history("x") == history("y") and history("x")
    assert Member.objects.filter(customer__partner__slug__startswith="x-").count() == 3 * 3 * 6
    # a member's seats never overlap and at most the last is open; no instant is in the future
    by_member = Counter()
    for member_id in SeatAssignment.objects.filter(removed_at=None).values_list("member_id", flat=True):
        by_member[member_id] += 1
    assert max(by_member.values()) == 1
    seats = list(SeatAssignment.objects.order_by("member_id", "assigned_at"))
    for before, after in pairwise(seats):
        if before.member_id == after.member_id:
            assert before.removed_at is not None and before.removed_at <= after.assigned_at
    assert all(s.assigned_at < datetime.now(UTC) for s in seats)
    result = cli("generate_data", "--partners", "1", "--months", "2", "--prefix", "x", "--first", str(FIRST))
    assert result.status == 1 and "exists already" in result.err


@pytest.mark.django_db
def test_the_seat_events_benchmark_generates_valid_histories(tmp_path):
    """bench/seat_events.py at a tiny size: its generated history and next file are valid seat events (the engine
    takes both whole), so the benchmark measures imports, not refusals."""
    from datetime import timedelta  # noqa: PLC0415

    from billing.core.actor import Actor  # noqa: PLC0415
    from billing.core.importing import run_import_file  # noqa: PLC0415

    spec = importlib.util.spec_from_file_location("bench_seats", ROOT / "bench" / "seat_events.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    world = bench.World("tiny", partners=2, customers=3, seed=5)
    world.create()
    now = datetime.now(UTC).replace(microsecond=0)
    history, after = tmp_path / "history.csv", tmp_path / "after.csv"
    assert bench.write(history, world.events(now - timedelta(days=60), now - timedelta(days=30), 400)) == 400
    assert bench.write(after, world.events(now - timedelta(days=29), now - timedelta(days=1), 300)) == 300
    for path in (history, after):
        summary = run_import_file("seat-events", path, actor=Actor(label="bench test"), source=path.name)
        assert summary.ok and summary.created == summary.rows, summary.errors[:3]
    assert SeatAssignment.objects.filter(partner__slug__startswith="tiny").count() > 0
