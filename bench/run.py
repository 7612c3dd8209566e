"""The scale benchmark: generate a dataset, bill a month, and measure against the floors.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_perf .venv/bin/python bench/run.py \
        --partners 200 --customers 50 --members 100 --months 3 --agents 100000 --json bench/results.json

On an empty, migrated database it generates the data (`generate_data`), bills the months of
history, then measures:

  a. the billing run for the month after the history, every partner (emails and PDFs are queued for
     the workers, as in production, not rendered in the run);
  b. the same month's seat-days for every partner by one hand-written SQL aggregate (the floor), and a/b;
  c. an rmm-assets import of N agents through the import engine, against PostgreSQL COPY of the
     same file into a bare table, and the ratio; and against PostgreSQL's own writes of the same rows
     into the agent tables with their keys (what no import can go below);
  d. the PDF of a CI of a partner with 500 customers;
  e. admin changelist response times (invoice lines, seat assignments) at that size;
  f. API latency, p50 and p99, with 50 concurrent clients on 127.0.0.1 against gunicorn.

Prints a table and writes the numbers as JSON. Targets are printed beside the numbers; they live
here and in docs/performance.md, never in timed tests (tests/test_bench.py runs a tiny size of this
script for correctness only). --skip lets a step be left out (e.g. --skip f).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings.base")
if __name__ == "__main__":
    # the run queues invoice emails (with their PDFs) for the workers, as in production: no broker is
    # needed to queue them in memory, and none is rendered inside the measured run. Only as a script:
    # Celery reads CELERY_BROKER_URL from the environment before its own settings, so setting it in
    # a test process (tests/test_bench.py imports this file) would redirect every later test's tasks.
    os.environ.setdefault("CELERY_BROKER_URL", "memory://localhost/")
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "false")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from bench.kit import timed  # noqa: E402
from billing.core.actor import Actor  # noqa: E402
from billing.core.periods import Period  # noqa: E402
from billing.datagen import Spec  # noqa: E402

TARGETS = {"a": 120.0, "a/b": 3.0, "c/copy": 5.0, "d": 10.0, "e": 0.300, "f p99": 0.100}


class Results:
    def __init__(self):
        self.rows: list[tuple[str, str, str, str]] = []
        self.data: dict = {}

    def add(self, key: str, label: str, value: float, unit: str = "s", target: float | None = None, **extra):
        shown = f"{value * 1000:.0f} ms" if unit == "ms" else (f"{value:.2f}" if unit == "x" else f"{value:.2f} s")
        limit = ""
        if target is not None:
            limit = ("<= " + (f"{target * 1000:.0f} ms" if unit == "ms" else f"{target:g}")
                     + ("  ok" if value <= target else "  MISSED"))
        self.rows.append((key, label, shown, limit))
        self.data[key] = {"label": label, "value": round(value, 4), "unit": "s" if unit == "ms" else unit,
                          "target": target, **extra}
        print(f"  {key:<8} {label:<62} {shown:>10}  {limit}", flush=True)

    def table(self) -> str:
        lines = [f"{'':<8} {'measure':<62} {'value':>10}  target", "-" * 100]
        lines += [f"{k:<8} {label:<62} {value:>10}  {limit}" for k, label, value, limit in self.rows]
        return "\n".join(lines)


def machine() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()" if connection.vendor == "postgresql" else "SELECT sqlite_version()")
        db_version = cursor.fetchone()[0]
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpus": os.cpu_count(),
            "python": platform.python_version(), "platform": platform.platform(), "database": connection.vendor,
            "database_version": db_version.split(" on ")[0]}


# --- the dataset and the history ---------------------------------------------------------------------

def prepare(args, results: Results) -> Spec:
    from invoicing.models import Invoice
    from partners.models import Partner

    spec = Spec(partners=args.partners, customers=args.customers, members=args.members, months=args.months,
                seed=args.seed, first=Period.parse(args.first) if args.first else
                Period.of(datetime.now(UTC).date()).shift(-args.months), agents=args.agents, prefix=args.prefix)
    call_command("migrate", verbosity=0)  # a database made by an older version gains the newer indexes
    if not Partner.objects.filter(slug__startswith=f"{spec.prefix}-p").exists():
        seconds, _ = timed(call_command, "generate_data", partners=spec.partners, customers=spec.customers,
                           members=spec.members, months=spec.months, seed=spec.seed, agents=spec.agents,
                           first=str(spec.first), prefix=spec.prefix, stdout=io.StringIO())
        results.add("gen", f"generate_data {spec.partners}x{spec.customers}x{spec.members}, {spec.months} months",
                    seconds)
    bench = spec.first.shift(spec.months)
    if not Invoice.objects.filter(month=str(bench.previous()), kind="CI").exists():
        from invoicing.services import billing_run

        seconds, documents = timed(billing_run, through=bench.first - timedelta(days=1), actor=Actor(label="bench"))
        results.add("history", f"billing the {spec.months} months of history ({len(documents)} invoices)", seconds)
    return spec


def counts() -> dict:
    from metering.models import AgentPresence, UsageSnapshot
    from partners.models import Customer, Member, Partner, SeatAssignment

    return {"partners": Partner.objects.count(), "customers": Customer.objects.count(),
            "members": Member.objects.count(), "seat_intervals": SeatAssignment.objects.count(),
            "usage_snapshots": UsageSnapshot.objects.count(), "agent_presences": AgentPresence.objects.count()}


# --- a, b ---------------------------------------------------------------------------------------------

FLOOR = """
SELECT customer_id, SUM(n) FROM (
    SELECT customer_id, CASE WHEN prev >= s THEN e - prev ELSE e - s + 1 END AS n
    FROM (
        SELECT customer_id, s, e, MAX(e) OVER (PARTITION BY member_id ORDER BY s, id
                                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev
        FROM (
            SELECT id, customer_id, member_id, {start} AS s, {end} AS e
            FROM partners_seatassignment
            WHERE start_date <= %(last)s AND (end_date IS NULL OR end_date >= %(first)s)
        ) clipped
    ) ordered
    WHERE prev IS NULL OR e > prev
) days GROUP BY customer_id
"""
FLOOR_SQL = {  # the same statement in each dialect: day numbers of the clipped start and end
    "postgresql": FLOOR.format(start="GREATEST(start_date, %(first)s) - DATE '2000-01-01'",
                               end="LEAST(COALESCE(end_date, %(last)s), %(last)s) - DATE '2000-01-01'"),
    "sqlite": FLOOR.format(start="CAST(julianday(MAX(start_date, %(first)s)) AS INTEGER)",
                           end="CAST(julianday(MIN(COALESCE(end_date, %(last)s), %(last)s)) AS INTEGER)"),
}


def floor_seat_days(month: Period) -> dict[int, int]:
    """The floor: every partner's seat-days of a month in one hand-written aggregate (the length of
    each member's union of seats, clipped to the month)."""
    with connection.cursor() as cursor:
        cursor.execute(FLOOR_SQL[connection.vendor], {"first": month.first, "last": month.last})
        return {customer_id: int(n) for customer_id, n in cursor.fetchall()}


def bench_billing(spec: Spec, results: Results) -> None:
    from invoicing.models import Invoice, InvoiceLine
    from invoicing.services import billing_run
    from metering.selectors import seat_days_by_customer
    from partners.models import Partner

    bench = spec.first.shift(spec.months)
    lines_before = InvoiceLine.objects.count()
    seconds, documents = timed(billing_run, through=bench.first, actor=Actor(label="bench"))
    lines = InvoiceLine.objects.count() - lines_before
    cis = sum(1 for d in documents if d.kind == "CI")
    results.add("a", f"billing run {bench}: {len(documents)} invoices ({cis} CI), {lines:,} lines", seconds,
                target=TARGETS["a"], invoices=len(documents), lines=lines)
    again, redo = timed(billing_run, through=bench.first, actor=Actor(label="bench"))
    results.add("a2", f"the same run again (nothing to bill: {len(redo)} invoices)", again)
    floor, by_customer = timed(floor_seat_days, bench.previous())
    results.add("b", f"floor: {bench.previous()} seat-days of every partner, one SQL aggregate "
                     f"({sum(by_customer.values()):,})", floor)
    results.add("a/b", "billing run / floor", seconds / floor, unit="x", target=TARGETS["a/b"])
    product = seat_days_by_customer(partner_ids=list(Partner.objects.values_list("pk", flat=True)),
                                    first=bench.previous().first, last=bench.previous().last)
    if {c: n for c, (n, _) in product.items() if n} != {c: n for c, n in by_customer.items() if n}:
        raise SystemExit("seat-days of the product differ from the floor")
    assert Invoice.objects.filter(kind="CI", month=str(bench)).count() == cis


# --- c --------------------------------------------------------------------------------------------

def bench_rmm_import(spec: Spec, results: Results, rows: int) -> None:
    from billing.core.importing import run_import_file
    from partners.models import Partner

    slug = f"bench-rmm-{int(time.time())}"
    Partner.objects.create(slug=slug, name="Benchmark RMM partner")
    path = Path(tempfile.mkstemp(suffix=".csv")[1])
    with path.open("w") as out:
        out.write("agent_id,machine_name,organization,group,os,last_seen\n")
        for n in range(rows):
            out.write(f"agent-{n:07d},WS-{n:07d},org-{n % 500:04d},{'Servers' if n % 5 == 0 else 'Workstations'},"
                      f"Windows 11,2026-10-31T08:00:00Z\n")
    as_of = datetime.now(UTC).date()
    seconds, summary = timed(run_import_file, "rmm-assets", path, partner=slug, as_of=as_of,
                             actor=Actor(label="bench"))
    way = "staging path" if summary.staged else "row-by-row engine"
    results.add("c", f"rmm-assets import of {rows:,} agents ({way})", seconds, staged=summary.staged)
    again, _ = timed(run_import_file, "rmm-assets", path, partner=slug, as_of=as_of, actor=Actor(label="bench"))
    results.add("c again", "the same file imported again (nothing changes)", again)
    copy = copy_file(path)
    results.add("c copy", "PostgreSQL COPY of the same file into a bare table", copy)
    results.add("c/copy", "import / COPY", seconds / copy, unit="x", target=TARGETS["c/copy"])
    keyed = keyed_writes(path)
    results.add("c keyed", "PostgreSQL alone: the same file COPYed, its rows inserted as agents and presences, "
                           "keys checked (rolled back)", keyed)
    results.add("c/keyed", "import / PostgreSQL's own writes of it", seconds / keyed, unit="x")
    path.unlink()
    if connection.vendor == "postgresql" and not connection.in_atomic_block:  # (the smoke test's transaction)
        # after a bulk load, as a DBA would: autovacuum would otherwise take these new and rolled back rows
        # (4 x --rmm-rows: the import's and c keyed's agents and presences) during d, e and f
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE metering_rmmagent, metering_agentpresence")


def copy_file(path: Path) -> float:
    if connection.vendor != "postgresql":
        return float("nan")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bench_rmm (agent_id text, machine_name text, organization text, "
                       '"group" text, os text, last_seen timestamptz)')
        began = time.perf_counter()
        with path.open("rb") as source, cursor.copy("COPY bench_rmm FROM STDIN WITH (FORMAT csv, HEADER true)") as c:
            while block := source.read(1 << 20):
                c.write(block)
        seconds = time.perf_counter() - began
        cursor.execute("DROP TABLE bench_rmm")
    return seconds


def keyed_writes(path: Path) -> float:
    """What PostgreSQL alone needs to store the file as the import does, without checking a cell: COPY into a
    temporary table, one INSERT of its rows as agents of a new partner and one of their presences, and the
    deferred foreign keys checked, as a commit checks them. Rolled back."""
    if connection.vendor != "postgresql":
        return float("nan")
    from django.db import transaction

    from partners.models import Partner

    with transaction.atomic():
        partner = Partner.objects.create(slug=f"bench-keyed-{int(time.time())}", name="Benchmark keyed writes")
        with connection.cursor() as cursor:
            began = time.perf_counter()
            cursor.execute("CREATE TEMP TABLE bench_keyed (agent_id text, machine_name text, organization text, "
                           '"group" text, os text, last_seen timestamptz) ON COMMIT DROP')
            with path.open("rb") as source, cursor.copy(
                    "COPY bench_keyed FROM STDIN WITH (FORMAT csv, HEADER true)") as c:
                while block := source.read(1 << 20):
                    c.write(block)
            cursor.execute("""
                WITH new AS (
                    INSERT INTO metering_rmmagent (partner_id, agent_id, machine_name, os, last_seen)
                    SELECT %s, agent_id, machine_name, os, last_seen FROM bench_keyed RETURNING id, agent_id
                )
                INSERT INTO metering_agentpresence (agent_id, partner_id, organization, "group", present_from)
                SELECT new.id, %s, k.organization, k."group", CURRENT_DATE FROM new JOIN bench_keyed k USING (agent_id)
            """, [partner.pk, partner.pk])
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            seconds = time.perf_counter() - began
        transaction.set_rollback(True)
    return seconds


# --- d --------------------------------------------------------------------------------------------

def bench_pdf(spec: Spec, results: Results, customers: int) -> None:
    from invoicing.models import Invoice
    from invoicing.pdf import render_invoice_pdf
    from invoicing.services import billing_run
    from partners.models import Partner

    prefix = f"{spec.prefix}big"
    if not Partner.objects.filter(slug=f"{prefix}-p0000").exists():
        call_command("generate_data", partners=1, customers=customers, members=4, months=1, seed=spec.seed,
                     agents=customers * 6, first=str(spec.first.shift(spec.months - 1)), prefix=prefix,
                     profile="per_asset", stdout=io.StringIO())
    bench = spec.first.shift(spec.months)
    billing_run(through=bench.first, partner_slug=f"{prefix}-p0000", actor=Actor(label="bench"))
    invoice = Invoice.objects.get(partner__slug=f"{prefix}-p0000", kind="CI", month=str(bench))
    seconds, pdf = timed(render_invoice_pdf, invoice)
    from pypdf import PdfReader  # requirements-dev.txt

    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    results.add("d", f"PDF of a CI with {invoice.children.count()} customers, {invoice.lines.count()} lines, "
                     f"{pages} pages", seconds, target=TARGETS["d"], pages=pages)


# --- e --------------------------------------------------------------------------------------------

def bench_admin(results: Results) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(username="bench-admin", defaults={"is_staff": True,
                                                                                      "is_superuser": True})
    client = Client()
    client.force_login(user)
    from invoicing.models import InvoiceLine
    from partners.models import Partner

    partner_id = Partner.objects.order_by("slug").values_list("pk", flat=True).first()
    page = max(1, min(50, InvoiceLine.objects.count() // 100))  # a page deep in the list
    for key, label, url in [
        ("e lines", "admin: invoice lines list", "/admin/invoicing/invoiceline/"),
        ("e lines2", f"admin: invoice lines list, page {page}", f"/admin/invoicing/invoiceline/?p={page}"),
        ("e seats", "admin: seat assignments list", "/admin/partners/seatassignment/"),
        ("e seats2", "admin: seat assignments list, one partner's",
         f"/admin/partners/seatassignment/?partner__id__exact={partner_id}"),
    ]:
        times = []
        for _ in range(6):
            began = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - began)
            if response.status_code != 200:
                raise SystemExit(f"{url}: HTTP {response.status_code}")
        results.add(key, f"{label} (median of 5)", statistics.median(times[1:]), unit="ms", target=TARGETS["e"])


# --- f --------------------------------------------------------------------------------------------

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is a failure here, not a second request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_api(results: Results, clients: int, requests_each: int, workers: int, intervals) -> None:
    from partners.api_keys import api_key_create
    from partners.models import Partner

    partners = list(Partner.objects.filter(slug__contains="-p").order_by("slug")[:clients])
    keys = [api_key_create(partner=p, actor=Actor(label="bench"), name="bench")[1] for p in partners]
    port = free_port()
    env = {**os.environ, "API_RATE_PER_KEY": "1000000/min", "API_RATE_ANONYMOUS": "1000000/min",
           "DJANGO_SETTINGS_MODULE": "billing.settings.base", "DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1",
           "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(40),
           # as in production behind a TLS-terminating proxy (docs/operations.md): the clients send
           # X-Forwarded-Proto: https, so nothing is redirected
           "SECURE_PROXY_SSL_HEADER_ENABLED": "true",
           "CONN_MAX_AGE": "60"}  # persistent connections, as production settings have them
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "billing.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--log-level", "warning"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            if server.poll() is not None:
                raise SystemExit(f"gunicorn exited with status {server.returncode}")
            try:
                urllib.request.urlopen(f"{base}/api/openapi.json", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        paths = ["/api/partner/dashboard", "/api/reseller/tenants"]
        opener = urllib.request.build_opener(NoRedirect)
        lock = threading.Lock()
        for interval in intervals:
            latencies: list[float] = []
            failures: list[str] = []

            def client(n: int, interval=interval, latencies=latencies, failures=failures):
                mine = []
                if interval:
                    time.sleep(random.Random(n).uniform(0, interval))  # clients are not in step
                for i in range(requests_each):
                    request = urllib.request.Request(base + paths[i % len(paths)],
                                                     headers={"Authorization": f"Bearer {keys[n % len(keys)]}",
                                                              "X-Forwarded-Proto": "https"})
                    began = time.perf_counter()
                    try:
                        with opener.open(request, timeout=10) as response:
                            response.read()
                            if response.status != 200:
                                raise OSError(f"HTTP {response.status}")
                    except Exception as exc:  # counted and reported
                        with lock:
                            failures.append(str(exc))
                    took = time.perf_counter() - began
                    mine.append(took)
                    if interval:
                        time.sleep(max(0.0, interval - took))
                with lock:
                    latencies.extend(mine)

            threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - started
            latencies.sort()
            p50 = latencies[len(latencies) // 2]
            p99 = latencies[int(len(latencies) * 0.99) - 1]
            rate = len(latencies) / wall
            load = f"each 1 request / {interval:g} s" if interval else "back to back"
            extra = {"requests": len(latencies), "failures": len(failures), "per_second": round(rate, 1),
                     "interval": interval}
            key = "f" if interval else "f sat"
            results.add(f"{key} p50", f"API p50, {clients} clients {load}, gunicorn {workers} workers", p50,
                        unit="ms", **extra)
            results.add(f"{key} p99", f"API p99 ({rate:.0f} requests/s, {len(failures)} failures)", p99,
                        unit="ms", target=TARGETS["f p99"] if interval else None, **extra)
            if failures:
                raise SystemExit(f"{len(failures)} API requests failed, e.g. {failures[0]}")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main(argv=None) -> Results:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partners", type=int, default=200)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--agents", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--first", help="YYYY-MM, the first month of history (default: --months before this one)")
    parser.add_argument("--prefix", default="gen")
    parser.add_argument("--rmm-rows", type=int, default=100_000)
    parser.add_argument("--pdf-customers", type=int, default=500)
    parser.add_argument("--api-clients", type=int, default=50)
    parser.add_argument("--api-requests", type=int, default=40, help="per client")
    parser.add_argument("--api-workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--api-interval", type=float, default=1.0,
                        help="seconds between a client's requests (a polling integration); 0: back to back")
    parser.add_argument("--skip", default="", help="steps to leave out, e.g. 'c,f'")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    results = Results()
    info = machine()
    print(f"database: {info['database']} ({info['database_version']}), {info['cpus']} CPUs, {info['date']}")
    spec = prepare(args, results)
    info["dataset"] = counts()
    print("dataset: " + ", ".join(f"{k} {v:,}" for k, v in info["dataset"].items()), flush=True)
    if "a" not in skip:
        bench_billing(spec, results)
    if "c" not in skip:
        bench_rmm_import(spec, results, args.rmm_rows)
    if "d" not in skip:
        bench_pdf(spec, results, args.pdf_customers)
    if "e" not in skip:
        bench_admin(results)
    if "f" not in skip:
        bench_api(results, args.api_clients, args.api_requests, args.api_workers,
                  intervals=[args.api_interval, 0.0] if args.api_interval else [0.0])
    print()
    print(results.table())
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "args": vars(args), "results": results.data},
                                              indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
