"""The billing run fanned out over Celery workers on Redis, as the daily job does: 1 worker against 2.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_perf_base \
        .venv/bin/python bench/fanout.py --month 2026-11 --workers 1,2

For each worker count it copies the template database (a dataset with its history billed, as
bench/run.py leaves it), starts that many `celery worker -c 1` processes on a Redis broker,
queues one bill_partners_task per batch of --per-task partners (what the daily beat job does with
BILLING_TASK_PARTNERS; --per-task 1 is one task per partner), and times until every partner's CI of
the month is issued. Invoice emails the run queues go to the default
queue, which these workers do not consume (they are dropped with the broker's database at the end).
Prints a table; the numbers go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BROKER = os.environ.get("FANOUT_BROKER_URL", "redis://127.0.0.1:6379/11")
QUEUE = "bench-billing"


def psql(database_url: str, sql: str) -> None:
    admin = database_url.rsplit("/", 1)[0] + "/postgres"
    subprocess.run(["psql", admin, "-q", "-c", sql], check=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--month", required=True, help="YYYY-MM: the month to bill (its 1st is the run date)")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--per-task", type=int, default=25, help="partners per task (BILLING_TASK_PARTNERS)")
    args = parser.parse_args(argv)
    template_url = os.environ["DATABASE_URL"]
    template = template_url.rsplit("/", 1)[1]
    run_url = template_url.rsplit("/", 1)[0] + f"/{template}_fanout"
    print(f"{'workers':>8} {'partners':>9} {'per task':>9} {'seconds':>9} {'speed-up':>9}")
    first = None
    for workers in [int(n) for n in args.workers.split(",")]:
        psql(template_url, f'DROP DATABASE IF EXISTS "{template}_fanout"')
        psql(template_url, f'CREATE DATABASE "{template}_fanout" TEMPLATE "{template}"')
        env = {**os.environ, "DATABASE_URL": run_url, "CELERY_BROKER_URL": BROKER, "CELERY_TASK_ALWAYS_EAGER": "false",
               "DJANGO_SETTINGS_MODULE": "billing.settings.base"}
        subprocess.run(["redis-cli", "-u", BROKER, "flushdb"], check=True, capture_output=True)
        seconds, partners = run(env, workers, args.month, args.per_task)
        first = first or seconds
        print(f"{workers:>8} {partners:>9} {args.per_task:>9} {seconds:>9.1f} {first / seconds:>9.2f}", flush=True)
    psql(template_url, f'DROP DATABASE IF EXISTS "{template}_fanout"')
    subprocess.run(["redis-cli", "-u", BROKER, "flushdb"], check=True, capture_output=True)


def run(env: dict, workers: int, month: str, per_task: int) -> tuple[float, int]:
    code = f"""
import time, django
django.setup()
from celery import group
from billing.core.periods import Period
from invoicing.models import Invoice
from invoicing.tasks import bill_partners_task
from partners.models import Partner
month = Period.parse("{month}")
ids = list(Partner.objects.order_by("slug").values_list("pk", flat=True))
wanted = set(Invoice.objects.filter(kind="CI", month=str(month.previous())).values_list("partner_id", flat=True))
began = time.perf_counter()
group(bill_partners_task.s(ids[n:n + {per_task}], month.first.isoformat())
      for n in range(0, len(ids), {per_task})).apply_async(queue="{QUEUE}")
while Invoice.objects.filter(kind="CI", month=str(month), state="issued").count() < len(wanted):
    time.sleep(0.2)
print(time.perf_counter() - began, len(wanted))
"""
    procs = [subprocess.Popen([str(Path(sys.executable).parent / "celery"), "-A", "billing", "worker", "-Q", QUEUE,
                               "-c", "1", "-n", f"bench{n}@%h", "--loglevel", "warning", "--without-gossip",
                               "--without-mingle", "--without-heartbeat"], cwd=ROOT, env=env)
             for n in range(workers)]
    try:
        time.sleep(5)  # the workers connect
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True,
                             text=True).stdout.split()
        return float(out[0]), int(out[1])
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
