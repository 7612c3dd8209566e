"""The admin's Import button as an import job: the upload is stored as it streams in, a large file is checked and
imported in the background with a progress page, a checked file imports once however often Confirm is pressed,
workbooks are read, and a clerk's job is the clerk's."""

from __future__ import annotations

import io
import tracemalloc
from datetime import datetime
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from openpyxl import Workbook

from billing.core import import_jobs
from billing.core.import_jobs import Progress, import_job_run, import_jobs_purge
from billing.core.models import ImportJob
from partners.models import AuditLog, Customer
from partners.tests.factories import PartnerFactory, UserFactory
from tests.import_checks import admin_confirm, admin_import

pytestmark = pytest.mark.django_db

URL = "/admin/partners/customer/import/"
HEADER = "partner,slug,name,host_limit"


@pytest.fixture
def acme():
    return PartnerFactory(slug="acme", name="Acme MSP")


@pytest.fixture
def clerk(client):
    user = UserFactory(username="clerk", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


@pytest.fixture
def background(settings, monkeypatch):
    """Import jobs as under a broker: a file over 1 KB goes to the task queue (recorded here, run by the test)."""
    settings.IMPORT_JOBS_RUN = "celery"
    settings.IMPORT_INLINE_MAX_BYTES = 1024
    queued = []
    monkeypatch.setattr(import_jobs.run_import_job_task, "delay", queued.append)
    return queued


def customers(n: int) -> str:
    return "\n".join([HEADER, *(f"acme,c{i:05d},Customer {i:05d} of Acme,{i % 9}" for i in range(n))]) + "\n"


def test_a_50_mb_upload_is_stored_as_it_streams_and_queued_without_blocking_the_request(
        clerk, acme, background, django_capture_on_commit_callbacks):
    """50 MB through the Import button: the request stores it (in chunks: under 200 MB of Python memory, the
    test client's own copy of the body included), answers with the job's page, and leaves the check to a task."""
    text = customers(1000).encode()
    filler = (f"acme,c{0:05d},Customer {0:05d} of Acme,0\n" * 1).encode()
    body = encode_multipart(BOUNDARY, {"import_file": SimpleUploadedFile(
        "customers.csv", text + filler * ((50 * 1024 * 1024 - len(text)) // len(filler) + 1), "text/csv")})
    assert len(body) > 50 * 1024 * 1024
    tracemalloc.start()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = clerk.generic("POST", URL, body, content_type=MULTIPART_CONTENT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = len(body)
    del body
    assert peak < 200 * 1024 * 1024, f"{peak / 2**20:.0f} MB"
    assert peak - size < 16 * 1024 * 1024, f"{(peak - size) / 2**20:.0f} MB beyond the client's copy of the body"
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert (job.status, job.size > 50 * 1024 * 1024, background) == ("queued", True, [job.pk])
    assert Path(job.path).stat().st_size == job.size
    page = clerk.get(response["Location"])
    assert page.context["running"] and '<meta http-equiv="refresh" content="2">' in page.content.decode()
    assert "Waiting to be checked" in page.content.decode()


def test_a_large_file_is_checked_and_imported_in_the_background_with_progress(
        clerk, acme, background, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.IMPORT_BATCH_SIZE = 50
    seen = []
    real = import_jobs._set_progress
    monkeypatch.setattr(import_jobs, "_set_progress", lambda job, rows=None, read=None, **step: (
        rows is not None and seen.append((rows, read)), real(job, rows, read, **step)))  # the counts reported
    with django_capture_on_commit_callbacks(execute=True):
        page = admin_import(clerk, URL, customers(400), name="customers.csv")
    job = page.context["job"]
    assert job.status == "queued" and background == [job.pk]

    assert import_job_run(background.pop()) == "checked"
    rows = [r for r, _ in seen]
    assert rows == sorted(rows) and rows[-1] == 400 and 50 in rows  # every batch, then the end
    assert 0 < seen[-1][1] <= job.size
    page = clerk.get(page.wsgi_request.path)
    assert page.context["job"].status == "checked" and not page.context["running"]
    assert "400</b> rows would be imported" in page.content.decode()
    assert not Customer.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = clerk.post(page.wsgi_request.path, {"confirm": "Confirm import"})
        clerk.post(page.wsgi_request.path, {"confirm": "Confirm import"})  # a double click
    assert response.status_code == 302 and background == [job.pk]  # queued once
    running = clerk.get(response["Location"])
    assert running.context["running"] and "Waiting to be imported" in running.content.decode()
    assert import_job_run(background.pop()) == "imported"
    assert import_job_run(job.pk) == "imported"  # the task delivered twice: nothing more
    assert Customer.objects.filter(partner=acme).count() == 400
    assert AuditLog.objects.filter(action="customer.create").count() == 400
    job.refresh_from_db()
    assert job.confirmed_by.username == "clerk" and not Path(job.path).exists()  # the stored file is gone


def test_progress_says_how_far_and_how_long():
    progress = Progress(rows=1000, bytes_read=25, size=100, seconds=10.0)
    assert (progress.percent, progress.seconds_left) == (25, 30)
    assert Progress(rows=0, bytes_read=0, size=100, seconds=0.0).percent is None
    assert Progress(rows=5, bytes_read=100, size=100, seconds=3.0).percent == 99  # done only when it says so
    # a fast path has read the file and checks it: no time left is guessed from the bytes
    assert Progress(rows=5, bytes_read=100, size=100, seconds=3.0, step="checking the seat rules").seconds_left is None


def test_the_running_page_says_what_a_fast_path_does_once_the_file_is_read(
        clerk, acme, background, django_capture_on_commit_callbacks):
    """A staged import (PostgreSQL COPY) reads the file in a second, then checks and writes it in SQL for longer:
    the page says so beside the counts, rather than "about 0 s left"."""
    with django_capture_on_commit_callbacks(execute=True):
        page = admin_import(clerk, URL, customers(400), name="customers.csv")
    job = page.context["job"]
    import_jobs._set_progress(job, 145_000, job.size)
    import_jobs._set_progress(job, step="checking the seat rules")
    text = clerk.get(page.wsgi_request.path).content.decode()
    assert "145,000 rows read (99% of the file), checking the seat rules…" in text
    import_jobs._set_progress(job, 145_001, job.size)  # counts after a step keep it
    assert import_jobs.import_job_progress(job).step == "checking the seat rules"


def test_a_file_refused_at_import_time_writes_nothing_and_says_why(clerk, acme):
    """Checked clean, then the data changed before Confirm: the import refuses with the row's reason."""
    page = admin_import(clerk, URL, customers(3), name="customers.csv")
    assert page.context["job"].status == "checked"
    acme.delete()
    page = admin_confirm(clerk, page)
    job = page.context["job"]
    assert job.status == "refused" and job.errors[0][:2] == [2, "partner"]
    assert "the data changed since the check" in page.content.decode()
    assert not Customer.objects.exists()


def test_a_workbook_is_read_as_its_first_sheet(clerk, acme):
    book = Workbook()
    sheet = book.active
    sheet.append(["partner", "slug", "name", "host_limit"])
    sheet.append(["acme", "xl1", "From Excel", 3.0])  # Excel keeps numbers as floats
    sheet.append(["acme", "xl2", "Also from Excel", None])
    buffer = io.BytesIO()
    book.save(buffer)
    page = admin_import(clerk, URL, buffer.getvalue(), name="customers.xlsx")
    assert page.context["job"].status == "checked", page.context["job"].fault
    assert page.context["preview_rows"] == [(2, ["acme", "xl1", "From Excel", "3"]),
                                            (3, ["acme", "xl2", "Also from Excel", ""])]
    admin_confirm(clerk, page)
    assert dict(Customer.objects.values_list("slug", "host_limit")) == {"xl1": 3, "xl2": 0}


def test_a_bad_file_is_refused_with_one_line(clerk, acme):
    page = admin_import(clerk, URL, "partner,slug\nacme,x\n", name="customers.csv")
    job = page.context["job"]
    assert job.status == "refused" and job.fault.startswith("missing column(s): name")
    assert "The file was refused: missing column(s): name" in page.content.decode()


def test_a_clerks_job_is_the_clerks(client, acme):
    owner = UserFactory(username="owner", is_staff=True, is_superuser=False)
    other = UserFactory(username="other", is_staff=True, is_superuser=False)

    add = Permission.objects.get(codename="add_customer")
    for user in (owner, other):
        user.user_permissions.add(add, Permission.objects.get(codename="view_customer"))
    client.force_login(owner)
    page = admin_import(client, URL, customers(2), name="customers.csv")
    client.force_login(other)
    assert client.get(page.wsgi_request.path).status_code == 403
    assert client.post(page.wsgi_request.path, {"confirm": "Confirm import"}).status_code == 403
    assert not Customer.objects.exists()


def test_discard_and_the_purge_of_files_never_confirmed(clerk, acme, time_machine):
    page = admin_import(clerk, URL, customers(2), name="customers.csv")
    response = clerk.post(page.wsgi_request.path, {"discard": "Discard"})
    assert response.status_code == 302 and response["Location"] == URL
    job = ImportJob.objects.get()
    assert job.status == "discarded" and not Path(job.path).exists()

    time_machine.move_to(datetime(2026, 12, 1, 9, 0), tick=False)
    page = admin_import(clerk, URL, customers(2), name="customers.csv")
    stale = page.context["job"]
    time_machine.move_to(datetime(2026, 12, 3, 10, 0), tick=False)  # 49 hours later
    assert import_jobs_purge() == 1
    stale.refresh_from_db()
    assert stale.status == "discarded" and not Path(stale.path).exists()
