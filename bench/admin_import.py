"""The admin's Import button with a large file: memory and time of each step, in its own process.

    DATABASE_URL=sqlite:////tmp/bench-import.sqlite3 .venv/bin/python bench/admin_import.py --mb 50

On a migrated database (any; a partner `bench-msp` and a superuser `bench-admin` are made if missing):

  1. upload: a customers file of --mb MB posted to the Import button, as under a broker (the check is
     queued, not run): the request's time and the Python memory it took beyond the test client's own
     copy of the request body (tracemalloc);
  2. check: the queued job run as the worker would (a dry run of the whole file): time and peak resident
     memory of the process;
  3. import: Confirm, then the job run again (skipped with --check-only).

Target (docs/security.md): every step under 200 MB; the upload takes seconds, whatever the size.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEP = r"""
import os, sys, time, tracemalloc, resource
import django
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings.base")
django.setup()
from django.conf import settings
from django.contrib.auth import get_user_model
from billing.core.models import ImportJob
from partners.models import Partner
from billing.core import import_jobs

step, path = sys.argv[1], sys.argv[2]
settings.IMPORT_JOBS_RUN = "celery"
import_jobs.run_import_job_task.delay = lambda job_id: None  # a worker runs it: the next step
started = time.perf_counter()
extra = 0
if step == "upload":
    from django.test import Client
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
    Partner.objects.get_or_create(slug="bench-msp", defaults={{"name": "Bench MSP"}})
    user = get_user_model().objects.filter(username="bench-admin").first() or get_user_model().objects.create_superuser(
        "bench-admin", "bench@example.com", "bench-pass")
    client = Client()
    client.force_login(user)
    with open(path, "rb") as upload:
        body = encode_multipart(BOUNDARY, {{"import_file": upload}})
    started = time.perf_counter()
    tracemalloc.start()
    response = client.generic("POST", "/admin/partners/customer/import/", body, content_type=MULTIPART_CONTENT,
                              SERVER_NAME="localhost")
    extra = (tracemalloc.get_traced_memory()[1] - len(body)) / 2**20
    tracemalloc.stop()
    assert response.status_code == 302, response.status_code
    job = ImportJob.objects.latest("pk")
    assert job.status == "queued", job.status
elif step == "check":
    job = ImportJob.objects.latest("pk")
    assert import_jobs.import_job_run(job.pk) == "checked", job.pk
else:
    job = ImportJob.objects.latest("pk")
    assert import_jobs.import_job_confirm(job, user=job.requested_by)
    assert import_jobs.import_job_run(job.pk) == "imported"
job.refresh_from_db()
print(f"{{time.perf_counter() - started:.1f}} {{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}} "
      f"{{extra:.1f}} {{job.rows}}")
"""


def customers_file(path: Path, mb: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("partner,slug,name,seat_cap,host_limit,payment_terms_days,rmm_organization\n")
        i = 0
        while out.tell() < mb * 1024 * 1024:
            out.write("".join(f"bench-msp,bench-{i + j:07d},Customer number {i + j:07d} of the bench partner Ltd,,"
                              f"{(i + j) % 50},30,Org {i + j:07d}\n" for j in range(10_000)))
            i += 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--check-only", action="store_true")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "customers.csv"
        customers_file(path, options.mb)
        print(f"customers file: {path.stat().st_size / 2**20:.1f} MB")
        print(f"{'step':<8} {'seconds':>8} {'peak RSS MB':>12} {'request MB beyond body':>23} {'rows':>9}")
        for step in ("upload", "check", *(() if options.check_only else ("import",))):
            out = subprocess.run([sys.executable, "-c", STEP.format(root=str(ROOT)), step, str(path)],
                                 capture_output=True, text=True, env=os.environ, check=False)
            if out.returncode:
                sys.exit(f"{step} failed:\n{out.stderr[-3000:]}")
            seconds, rss, extra, rows = out.stdout.split()[-4:]
            print(f"{step:<8} {seconds:>8} {rss:>12} {extra if step == 'upload' else '':>23} {rows:>9}")


if __name__ == "__main__":
    main()
