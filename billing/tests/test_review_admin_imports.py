"""Review of the admin's Import pages with the files clerks really upload (billing-rules 9, 9.1, 9.2, 8.1;
import-formats 1 "The admin's Import and Export buttons", 2, 7 and 8): workbooks saved by Excel or written by a
script (openpyxl), with floats for whole numbers, dates as Excel dates, percent cells, formulas with and without a
saved value, blank trailing rows and columns; CSV files in UTF-16, with semicolons or tabs; an old .xls; the check,
the confirm step, a second submit, the progress of a background job, row and column in every error, nothing
half-written, and who may import.

Each finding was first a strict xfail that failed on the code as it was; the defects are fixed and the tests pass.
"""

from __future__ import annotations

import codecs
import io
import os
import shutil
import zipfile
from datetime import datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from kombu.exceptions import OperationalError
from openpyxl import Workbook

from billing.core import import_jobs
from billing.core.import_jobs import import_job_progress, import_job_run
from billing.core.models import ImportJob
from invoicing.models import OneTimeCharge
from partners.models import AuditLog, Customer, Partner, SeatAssignment
from partners.tests.factories import CustomerFactory, PartnerFactory, UserFactory
from tests.browser import BROWSER, admin_sign_in
from tests.import_checks import admin_confirm, admin_import, table_rows
from tests.test_access import apply_group_migrations

pytestmark = pytest.mark.django_db

CUSTOMERS = "/admin/partners/customer/import/"
PARTNERS = "/admin/partners/partner/import/"
SEATS = "/admin/partners/seatassignment/import/"
CHARGES = "/admin/invoicing/onetimecharge/import/"


# --- files as clerks make them ------------------------------------------------------------------------------
def workbook(rows, *, formats: dict[str, str] | None = None) -> bytes:
    """An .xlsx as openpyxl writes it (a script's export): `rows` appended to the first sheet, `formats` a number
    format per cell ("D2": "0%")."""
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(list(row))
    for cell, number_format in (formats or {}).items():
        sheet[cell].number_format = number_format
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def excel_saved(data: bytes, cell: str, formula: str, value: str) -> bytes:
    """The workbook as Excel saves it after computing a formula: the cell keeps its formula and the value Excel
    computed, written with Excel's 17 significant digits (openpyxl writes the formula with no value)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                old = f'<c r="{cell}"><f>{formula}</f><v /></c>'.encode()
                assert old in content, content
                content = content.replace(old, f'<c r="{cell}"><f>{formula}</f><v>{value}</v></c>'.encode())
            target.writestr(item, content)
    return out.getvalue()


def old_xls() -> bytes:
    """The start of an Excel 97-2003 workbook (.xls): an OLE2 compound file (its signature, a header of NUL bytes
    and sector tables), as Excel's "Excel 97-2003 Workbook" writes it."""
    header = bytes.fromhex("D0CF11E0A1B11AE1") + bytes(16) + bytes.fromhex("3E000300FEFF090006") + bytes(21)
    return header + bytes(512 - len(header)) + bytes(range(256)) * 8


@pytest.fixture(autouse=True)
def groups():
    """The staff groups as the migrations make them (a transactional test's flush empties them)."""
    apply_group_migrations()


@pytest.fixture
def clerk(client):
    """A member of the Billing clerk group (operations 14), signed in to the admin."""
    user = UserFactory(username="clara", is_staff=True, is_superuser=False)
    user.groups.add(Group.objects.get(name="Billing clerk"))
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def acme():
    return PartnerFactory(slug="acme", name="Acme MSP")


def job_of(page) -> ImportJob:
    return page.context["job"]


def problems(page) -> list[str]:
    return [f"row {r}: {c}: {reason}" for r, c, reason in page.context["errors"]]


# --- workbooks -----------------------------------------------------------------------------------------------
def test_an_excel_workbook_with_floats_dates_booleans_and_blank_trailing_rows_imports_as_its_csv_would(clerk, acme):
    """billing-rules 9.1, 9.2; import-formats 1 (Upload: "whole numbers as 3, dates as 2026-05-01"): Excel keeps
    every number as a float (2.0), a date as an Excel date, TRUE as a boolean, and a sheet often ends with rows
    that are blank but formatted. The charges import as the CSV of the same cells would; the blank rows are
    skipped; the preview shows the cells as the engine reads them."""
    CustomerFactory(partner=acme, slug="harbour", name="Harbour Hotel")
    data = workbook([
        ["partner", "customer", "description", "quantity", "unit_price", "date", "taxable"],
        ["acme", "harbour", "Onboarding", 1.0, 150.0, datetime(2026, 5, 4), True],
        ["acme", "", "Firewall appliance", 2.0, 499.99, datetime(2026, 5, 12), False],
        [None] * 7,
        [None] * 7,
    ], formats={"F2": "yyyy-mm-dd", "F3": "dd/mm/yyyy"})
    page = admin_import(clerk, CHARGES, data, name="May charges.xlsx")
    job = job_of(page)
    assert job.status == "checked", (job.fault, job.errors)
    assert (job.rows, job.created) == (2, 2)
    assert page.context["preview_rows"] == [
        (2, ["acme", "harbour", "Onboarding", "1", "150", "2026-05-04", "TRUE"]),
        (3, ["acme", "", "Firewall appliance", "2", "499.99", "2026-05-12", "FALSE"]),
    ]
    assert not OneTimeCharge.objects.exists()  # the check wrote nothing
    page = admin_confirm(clerk, page)
    assert job_of(page).status == "imported"
    charges = {c.description: c for c in OneTimeCharge.objects.all()}
    assert (charges["Onboarding"].quantity, charges["Onboarding"].unit_price) == (Decimal(1), Decimal(150))
    assert charges["Onboarding"].date.isoformat() == "2026-05-04" and charges["Onboarding"].taxable
    assert charges["Firewall appliance"].unit_price == Decimal("499.99")
    assert charges["Firewall appliance"].customer is None and not charges["Firewall appliance"].taxable


def test_row_numbers_of_a_workbook_are_the_sheets_rows_blank_rows_and_line_breaks_included(clerk, acme):
    """billing-rules 8.1, 9.1: errors are `row N: column: reason` with N the row the spreadsheet shows: a blank
    row in the middle and a cell with a line break (Alt+Enter) do not shift the numbers."""
    data = workbook([
        ["partner", "slug", "name", "host_limit"],
        ["acme", "harbour", "Harbour\nHotel", 3.0],
        [None, None, None, None],
        ["acme", "pier", "Pier 9", 2.5],
        ["acme", "Bad Slug", "Bad", 1.0],
    ])
    page = admin_import(clerk, CUSTOMERS, data, name="customers.xlsx")
    assert job_of(page).status == "refused"
    assert problems(page) == [
        "row 4: host_limit: not a whole number: '2.5'",
        "row 5: slug: 'Bad Slug' is not a valid key: use lower-case letters, digits, - and _",
    ]
    assert not Customer.objects.exists()


def test_an_excel_date_time_in_an_instant_column_is_refused_naming_row_and_column(clerk, acme):
    """billing-rules 1 and 9.2: an instant without a zone is refused, never guessed. A date-time typed in Excel
    has no zone: the error names the sheet's row and the column, and nothing is written."""
    CustomerFactory(partner=acme, slug="harbour")
    data = workbook([
        ["partner", "customer", "member", "action", "at"],
        ["acme", "harbour", "ana", "assign", "2026-04-01T09:00:00Z"],
        ["acme", "harbour", "ben", "assign", datetime(2026, 4, 2, 9, 30)],
    ], formats={"E3": "yyyy-mm-dd hh:mm"})
    page = admin_import(clerk, SEATS, data, name="seats.xlsx")
    assert job_of(page).status == "refused"
    [error] = problems(page)
    assert error.startswith("row 3: at: ") and "no time zone" in error, error
    assert not SeatAssignment.objects.exists()


def test_a_tax_rate_typed_as_10_percent_in_excel_is_not_imported_as_a_tenth_of_a_percent(clerk):
    """billing-rules 2 (tax_rate is a percent: 10 means 10%) and 9.7 (partners: tax_rate). A clerk types `10%` in
    Excel; the cell holds 0.1 with the format 0%. Excel's own "Save as CSV UTF-8" writes `10%`, which the import
    refuses as not a number; the workbook path silently imports 0.1, so every invoice of the partner is taxed
    at 0.1% instead of 10%. Expected: 10, or the row refused naming row 2, tax_rate."""
    data = workbook([["slug", "name", "currency", "tax_rate"], ["lakeside", "Lakeside IT", "USD", 0.1]],
                    formats={"D2": "0%"})
    page = admin_import(clerk, PARTNERS, data, name="partners.xlsx")
    job = job_of(page)
    if job.status == "checked":
        admin_confirm(clerk, page)
        assert Partner.objects.get(slug="lakeside").tax_rate == Decimal(10)
    else:
        assert problems(page)[0].startswith("row 2: tax_rate: ")


def test_a_formula_without_a_saved_value_is_not_imported_as_a_blank_cell(clerk, acme):
    """billing-rules 9.3 (decision (g)): a blank cell in a present column sets its default. A workbook written by
    a script (openpyxl, a report tool) keeps formulas without their values until Excel opens it; the import reads
    them as blank, so the customer's host limit of 10 becomes 0 (its per_host line then bills nothing, 3.8) and the
    check calls it a plain update. Expected: the row refused, `row 2: host_limit: ...` naming the formula."""
    CustomerFactory(partner=acme, slug="harbour", name="Harbour Hotel", host_limit=10)
    data = workbook([["partner", "slug", "name", "host_limit"], ["acme", "harbour", "Harbour Hotel", "=8+2"]])
    page = admin_import(clerk, CUSTOMERS, data, name="hosts.xlsx")
    if job_of(page).status == "checked":
        admin_confirm(clerk, page)
    assert Customer.objects.get(slug="harbour").host_limit == 10
    assert problems(page) and problems(page)[0].startswith("row 2: host_limit: ")


def test_a_price_excel_computed_is_read_as_excel_shows_and_exports_it(clerk, acme):
    """billing-rules 9.2 (prices take at most 4 decimal places) and import-formats 1 (a workbook is read as the
    CSV of its cells). Excel stores a computed 20 x 1.15 as 22.999999999999996 (17 significant digits) and shows,
    and writes to CSV, 23: Excel works to 15 significant digits. The import refuses the row with `at most 4
    decimal places`, a value the clerk cannot see anywhere. Expected: 23.00 imported."""
    data = excel_saved(workbook([
        ["partner", "description", "quantity", "unit_price", "date"],
        ["acme", "Onboarding (list price + 15%)", 1, "=20*1.15", "2026-05-04"],
    ]), "D2", "20*1.15", "22.999999999999996")
    page = admin_import(clerk, CHARGES, data, name="charges.xlsx")
    assert job_of(page).status == "checked", problems(page)
    admin_confirm(clerk, page)
    assert OneTimeCharge.objects.get().unit_price == Decimal("23.00")


def test_a_formula_excel_saved_with_its_value_imports_the_value(clerk, acme):
    """import-formats 8 (Formulas): a workbook's formula is never evaluated by the import; Excel saves the value it
    computed, and that value is imported (a whole number as 3)."""
    data = excel_saved(workbook([["partner", "slug", "name", "host_limit"],
                                 ["acme", "harbour", "Harbour Hotel", "=8+2"]]), "D2", "8+2", "10")
    page = admin_import(clerk, CUSTOMERS, data, name="hosts.xlsx")
    assert job_of(page).status == "checked", (job_of(page).fault, problems(page))
    admin_confirm(clerk, page)
    assert Customer.objects.get(slug="harbour").host_limit == 10


# --- CSV files that are not UTF-8 comma-separated ------------------------------------------------------------
@pytest.mark.parametrize(("name", "data", "says"), [
    ("customers.csv", codecs.BOM_UTF16_LE + "partner\tslug\tname\r\nacme\tharbour\tHarbour\r\n".encode("utf-16-le"),
     "the file is UTF-16 text, not UTF-8: save the file as CSV UTF-8"),
    ("customers.csv", codecs.BOM_UTF16_LE + "partner,slug,name\r\nacme,harbour,Harbour\r\n".encode("utf-16-le"),
     "the file is UTF-16 text, not UTF-8: save the file as CSV UTF-8"),
    ("customers.csv", "\ufeffpartner;slug;name;host_limit\r\nacme;harbour;Harbour Hotel;3\r\n".encode(),
     "the cells are separated by semicolons: save the file with commas (CSV UTF-8)"),
    ("customers.csv", workbook([["partner", "slug", "name"], ["acme", "harbour", "Harbour"]]),
     "the file is a ZIP archive (an .xlsx workbook?), not CSV text: save the file as CSV UTF-8"),
])
def test_a_file_excel_saved_in_another_shape_is_refused_with_one_line_that_says_what_to_do(
        clerk, acme, name, data, says):
    """import-formats 7 (File-level faults) and 8 (Encoding): "Unicode text" (UTF-16, with a BOM, tabs or commas),
    a European "CSV" with semicolons, a workbook under a .csv name: one line that says how to save the file,
    nothing written."""
    page = admin_import(clerk, CUSTOMERS, data, name=name)
    job = job_of(page)
    assert job.status == "refused" and says in job.fault, job.fault
    assert f"The file was refused: {job.fault}" in page.content.decode()
    assert not Customer.objects.exists()


def test_a_utf8_csv_with_bom_crlf_and_quoted_commas_imports(clerk, acme):
    """import-formats 2 and 8: Excel's "CSV UTF-8" (a BOM, CRLF, a quoted cell with a comma) imports; the BOM is
    not part of the first column's name."""
    data = "\ufeffpartner,slug,name,host_limit\r\nacme,harbour,\"Harbour Hotel, Pier 9\",3\r\n,,,\r\n".encode()
    page = admin_import(clerk, CUSTOMERS, data, name="customers.csv")
    assert job_of(page).status == "checked", job_of(page).fault
    admin_confirm(clerk, page)
    assert Customer.objects.get(slug="harbour").name == "Harbour Hotel, Pier 9"


def test_an_old_excel_xls_workbook_is_refused_saying_it_is_a_workbook(clerk, acme):
    """import-formats 7 (File-level faults) and 8: "a workbook saved under a .csv name [is a] file fault that says
    so". An Excel 97-2003 workbook (.xls: what many accounting tools still export) is answered with an
    ungrammatical line that does not say what the file is or what to do. Expected: a fault naming an Excel
    (.xls) workbook and saying to save it as .xlsx or CSV UTF-8."""
    page = admin_import(clerk, CUSTOMERS, old_xls(), name="customers.xls")
    fault = job_of(page).fault
    assert job_of(page).status == "refused"
    assert "workbook" in fault and ("xlsx" in fault or "CSV UTF-8" in fault), fault
    assert "is a NUL character" not in fault


def test_a_tab_separated_file_is_refused_saying_the_cells_are_separated_by_tabs(clerk, acme):
    """import-formats 7 (File-level faults, the semicolon case) and 2 (commas separate cells). Excel's
    "Text (Tab delimited)" saves an ASCII header with tabs; the page prints `missing column(s): partner, slug,
    name (header: partner slug name)`: the header it quotes shows exactly the missing names, since the browser
    draws the tabs as spaces. Expected: the hint the semicolon case gets (separated by tabs: save with commas)."""
    page = admin_import(clerk, CUSTOMERS, b"partner\tslug\tname\r\nacme\tharbour\tHarbour\r\n", name="customers.txt")
    fault = job_of(page).fault
    assert job_of(page).status == "refused" and "tab" in fault, fault


# --- the background job's progress ---------------------------------------------------------------------------
@pytest.fixture
def background(settings, monkeypatch):
    """Import jobs as under a broker: a file over 1 KB goes to the task queue (recorded here, run by the test)."""
    settings.IMPORT_JOBS_RUN = "celery"
    settings.IMPORT_INLINE_MAX_BYTES = 1024
    settings.IMPORT_BATCH_SIZE = 500
    queued = []
    monkeypatch.setattr(import_jobs.run_import_job_task, "delay", queued.append)
    return queued


def shares_seen(monkeypatch) -> list[tuple[int, int | None]]:
    """(rows read, the percent the job's page shows) at each progress report of a run."""
    seen = []
    real = import_jobs._set_progress

    def spy(job, rows=None, read=None, **step):
        real(job, rows, read, **step)
        progress = import_job_progress(job)
        seen.append((progress.rows, progress.percent))

    monkeypatch.setattr(import_jobs, "_set_progress", spy)
    return seen


def test_a_large_csv_shows_the_share_of_the_file_read_as_it_goes(
        clerk, acme, background, monkeypatch, django_capture_on_commit_callbacks):
    """import-formats 1: a file over IMPORT_INLINE_MAX_BYTES is checked in the background; its page shows the rows
    read and the share of the file. Half the rows read is about half the file."""
    text = "partner,slug,name,host_limit\n" + "".join(f"acme,c{i:04d},Customer {i:04d},{i % 7}\n" for i in range(4000))
    with django_capture_on_commit_callbacks(execute=True):
        admin_import(clerk, CUSTOMERS, text, name="customers.csv")
    seen = shares_seen(monkeypatch)
    assert import_job_run(background.pop()) == "checked"
    half = dict(seen)[2000]
    assert 40 <= half <= 60, seen


def test_a_large_workbook_shows_the_share_of_the_file_read_as_it_goes(
        clerk, acme, background, monkeypatch, django_capture_on_commit_callbacks):
    """import-formats 1: the page "refreshes itself every 2 seconds with the rows read, the share of the file and
    the time left". For an .xlsx the share is the bytes read of the CSV converted from it over the size of the
    upload (a ZIP: here 83 KB for 108 KB of CSV), so the page says 99% of the file, about 0 s left, with a quarter
    of the rows still to read (the smaller the ZIP, the earlier). Expected: the share of the rows read."""
    rows = [["partner", "slug", "name", "host_limit"],
            *(["acme", f"c{i:04d}", f"Customer {i:04d}", float(i % 7)] for i in range(4000))]
    with django_capture_on_commit_callbacks(execute=True):
        page = admin_import(clerk, CUSTOMERS, workbook(rows), name="customers.xlsx")
    assert job_of(page).status == "queued"
    seen = shares_seen(monkeypatch)
    assert import_job_run(background.pop()) == "checked"
    shares = dict(seen)
    assert 40 <= shares[2000] <= 60 and shares[3000] < 90, seen  # half the rows; three quarters



# --- the Export button's files back through Import -----------------------------------------------------------
def admin_export(client, model: str, file_format: str) -> bytes:
    """The Export button of a list, every column ticked, in the format the clerk picks."""
    url = f"/admin/partners/{model}/export/"
    form = client.get(url).context["form"]
    data = {name: "on" for name, field in form.fields.items() if field.__class__.__name__ == "BooleanField"}
    [choice] = [value for value, label in form.fields["format"].choices if label == file_format]
    response = client.post(url, {**data, "format": choice, "resource": "0"})
    assert response.status_code == 200
    return response.content


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_an_exported_file_imports_back_unchanged_formula_looking_text_included(clerk, acme, file_format):
    """import-formats 1 (The Export button "writes the same columns, so an exported file can be edited and
    imported again") and 8 (Formulas: an export puts a ' before text starting with = + - @, an import takes it
    off). Every row of the export is `unchanged` when imported back, names and RMM organizations intact."""
    CustomerFactory(partner=acme, slug="harbour", name="-Harbour =Hotel", host_limit=3, seat_cap=5,
                    rmm_organization="@Harbour")
    CustomerFactory(partner=acme, slug="pier", name="Pier 9")
    before = table_rows([Customer])
    page = admin_import(clerk, CUSTOMERS, admin_export(clerk, "customer", file_format),
                        name=f"Customer-export.{file_format}")
    job = job_of(page)
    assert (job.status, job.rows, job.unchanged, job.created, job.updated) == ("checked", 2, 2, 0, 0), (
        job.fault, problems(page))
    admin_confirm(clerk, page)
    assert table_rows([Customer]) == before


def test_the_export_button_offers_only_what_the_import_reads_back(clerk, acme):
    """import-formats 1: "an exported file can be edited and imported again". The Export button offered csv, xlsx,
    tsv, json, yaml and html; a clerk who picked tsv (a spreadsheet opens it without the CSV import dialog) got a
    file the Import button refused with `missing column(s): partner, slug, name (header: partner slug name ...)`.
    It offers CSV and Excel now, and a tab-separated file is refused with a hint about the tabs (above)."""
    form = clerk.get("/admin/partners/customer/export/").context["form"]
    assert [label for value, label in form.fields["format"].choices if value != ""] == ["csv", "xlsx"]


# --- confirm, second submits, audit ----------------------------------------------------------------------------
def test_confirm_imports_once_audited_under_the_clerks_name_and_a_second_upload_of_the_file_adds_nothing(
        clerk, acme):
    """import-formats 1 (Confirm: all or nothing, "audited under the clerk's name", "Pressed twice, it imports
    once") and billing-rules 9.3 (an exact duplicate of a one-time charge is a no-op): the clerk uploads the same
    charges twice (a second tab, a reload), both check as 2 new charges; confirming both bills each charge once,
    and a Confirm pressed again on the first page changes nothing."""
    CustomerFactory(partner=acme, slug="harbour", name="Harbour Hotel")
    text = ("partner,customer,description,quantity,unit_price,date\n"
            "acme,harbour,Onboarding,1,150.00,2026-05-04\nacme,,Firewall,2,499.99,2026-05-12\n")
    first = admin_import(clerk, CHARGES, text, name="charges.csv")
    second = admin_import(clerk, CHARGES, text, name="charges.csv")
    assert (job_of(first).created, job_of(second).created) == (2, 2)
    done = admin_confirm(clerk, first)
    assert (job_of(done).status, job_of(done).created) == ("imported", 2)
    again = admin_confirm(clerk, first)  # the first page's button pressed once more
    assert (job_of(again).status, job_of(again).created) == ("imported", 2)
    late = admin_confirm(clerk, second)
    assert (job_of(late).status, job_of(late).created, job_of(late).unchanged) == ("imported", 0, 2)
    assert OneTimeCharge.objects.count() == 2
    audits = AuditLog.objects.filter(object_type__icontains="charge")
    assert audits.count() == 2 and {a.actor_id for a in audits} == {clerk.user.pk}, list(audits.values())


def test_discard_on_a_job_already_imported_says_it_was_imported(clerk, acme):
    """import-formats 1 ("Discard drops a checked file"). The clerk confirmed in one tab and presses Discard in
    another: nothing is discarded (rightly), but the answer is the upload page with no word, as after a real
    discard without its message. Expected: a message that the file was already imported (nothing discarded)."""
    page = admin_import(clerk, CUSTOMERS, "partner,slug,name\nacme,harbour,Harbour Hotel\n", name="customers.csv")
    admin_confirm(clerk, page)
    response = clerk.post(page.wsgi_request.path, {"discard": "Discard"}, follow=True)
    assert Customer.objects.filter(slug="harbour").exists()
    said = [str(m) for m in response.context["messages"]]
    assert any("imported" in m for m in said), said


# --- who may import --------------------------------------------------------------------------------------------
IMPORT_URLS = [CUSTOMERS, PARTNERS, SEATS, CHARGES, "/admin/partners/service/import/",
               "/admin/partners/seatpurchase/import/", "/admin/metering/usagesnapshot/import/",
               "/admin/metering/suspension/import/"]


@pytest.mark.parametrize("url", IMPORT_URLS)
def test_an_auditor_can_neither_open_nor_post_an_import(client, acme, url):
    """operations 14 (Staff roles: the Auditor "imports nothing"; imports take the model's add permission): the
    upload page and a posted file answer 403, no job is stored, and the list shows no Import button."""
    auditor = UserFactory(username="audrey", is_staff=True)
    auditor.groups.add(Group.objects.get(name="Auditor"))
    client.force_login(auditor)
    assert client.get(url).status_code == 403
    response = client.post(url, {"import_file": io.BytesIO(b"partner,slug,name\nacme,x,X\n")})
    assert response.status_code == 403
    assert not ImportJob.objects.exists()
    listing = client.get(url.removesuffix("import/"))
    assert listing.status_code == 200 and url not in listing.content.decode()


def test_a_clerk_whose_import_permission_is_withdrawn_cannot_confirm_a_checked_file(client, acme):
    """operations 14: the permission is asked again at Confirm: a clerk who lost the add permission after the
    check gets 403 and nothing is written."""
    user = UserFactory(username="tom", is_staff=True)
    add, view = Permission.objects.get(codename="add_customer"), Permission.objects.get(codename="view_customer")
    user.user_permissions.add(add, view)
    client.force_login(user)
    page = admin_import(client, CUSTOMERS, "partner,slug,name\nacme,harbour,Harbour Hotel\n", name="c.csv")
    assert job_of(page).status == "checked"
    user.user_permissions.remove(add)
    assert client.post(page.wsgi_request.path, {"confirm": "Confirm import"}).status_code == 403
    assert not Customer.objects.exists()
    assert ImportJob.objects.get().status == "checked"


# --- Excel error values ----------------------------------------------------------------------------------------
def test_an_excel_error_value_in_a_text_column_is_a_row_error(clerk, acme):
    """billing-rules 9.6 (row errors; the list is a minimum) and import-formats 1 (a workbook is read as the CSV of
    its cells). A name filled by a VLOOKUP that failed holds Excel's error #N/A; the workbook marks the cell as an
    error (type e), yet the import creates a customer named `#N/A` (printed on its invoices) with the RMM
    organization `#REF!`. Expected: `row 3: name: ...` naming the error value, nothing written."""
    data = workbook([["partner", "slug", "name", "rmm_organization"],
                     ["acme", "harbour", "Harbour Hotel", "Harbour"],
                     ["acme", "pier", "#N/A", "#REF!"]])
    page = admin_import(clerk, CUSTOMERS, data, name="customers.xlsx")
    assert job_of(page).status == "refused", page.context["preview_rows"]
    assert problems(page)[0].startswith("row 3: name: ")
    assert not Customer.objects.exists()


def test_a_file_refused_at_confirm_after_several_batches_writes_none_of_its_rows(clerk, acme, settings):
    """billing-rules 8.1 (all or nothing) and 3.2 (a cap breach is a row error, judged as of each event) with
    import-formats 1 ("If the data changed since the check ... the import is refused with its errors and writes
    nothing"): seven assignments check clean under a cap of 10; the cap is lowered to 3 before Confirm; the import
    is refused at rows 5 to 8 (batches of 3 rows: rows 2-4 were processed first) and no seat is written."""
    settings.IMPORT_BATCH_SIZE = 3
    harbour = CustomerFactory(partner=acme, slug="harbour", seat_cap=10)
    text = "partner,customer,member,action,at\n" + "".join(
        f"acme,harbour,m{i},assign,2026-04-0{i}T09:00:00Z\n" for i in range(1, 8))
    page = admin_import(clerk, SEATS, text, name="seats.csv")
    assert (job_of(page).status, job_of(page).created) == ("checked", 7), problems(page)
    Customer.objects.filter(pk=harbour.pk).update(seat_cap=3)
    page = admin_confirm(clerk, page)
    assert job_of(page).status == "refused"
    assert [e.split(": ")[0] for e in problems(page)] == ["row 5", "row 6", "row 7", "row 8"], problems(page)
    assert all("seat cap of 3 reached" in e for e in problems(page)), problems(page)
    assert "the data changed since the check" in page.content.decode()
    assert not SeatAssignment.objects.exists()


# --- in Chromium ------------------------------------------------------------------------------------------------
def keep_screenshot(page, tmp_path, name: str) -> None:
    """A full-page screenshot in the test's folder (and in REVIEW_SHOTS_DIR when set, to look at)."""
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("REVIEW_SHOTS_DIR"):
        shutil.copy(path, os.environ["REVIEW_SHOTS_DIR"])


@pytest.mark.browser
@pytest.mark.skipif(any(m.name == "skipif" and m.args and m.args[0] for m in BROWSER), reason="no Chromium")
@pytest.mark.django_db(transaction=True)
def test_a_clerk_imports_an_excel_workbook_of_customers_in_chromium(live_server, browser_page, tmp_path):
    """import-formats 1 in a browser: from the customers list, Import, an .xlsx chosen and checked: the page shows
    the counts and the first rows as the engine reads them (3 for Excel's 3.0, Excel's saved value of a formula),
    nothing is written; Confirm imports it, audited under the clerk; a bad workbook shows `row N: column: reason`
    with the sheet's row numbers and no Confirm button."""
    acme = PartnerFactory(slug="acme", name="Acme MSP")
    CustomerFactory(partner=acme, slug="harbour", name="Harbour Hotel", host_limit=2)
    user = UserFactory(username="clara", password="clara-pass-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Billing clerk"))
    page, url = browser_page, live_server.url
    admin_sign_in(page, url, "clara", "clara-pass-123")

    good = excel_saved(workbook([
        ["Partner", "Slug", "Name", "Host_Limit", "seat_cap"],
        ["acme", "harbour", "Harbour Hotel", "=4*2", None],
        ["acme", "pier", "Pier 9 Marina", 3.0, 12.0],
        [None] * 5,
    ]), "D2", "4*2", "8")

    def upload(name: str, data: bytes):
        page.goto(f"{url}/admin/partners/customer/")
        page.get_by_role("link", name="Import").click()
        page.wait_for_url("**/customer/import/")
        page.set_input_files("#id_import_file", files=[{
            "name": name, "buffer": data,
            "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}])
        page.get_by_role("button", name="Check file").click()
        page.wait_for_url("**/customer/import/*/")

    upload("customers April.xlsx", good)
    status = page.locator("#import-status").inner_text()
    assert "Checked: 2 rows would be imported: 1 created, 1 updated, 0 unchanged" in status, status
    cells = [r.locator("td").all_inner_texts() for r in page.locator(".preview tbody tr").all()]
    assert cells == [["2", "acme", "harbour", "Harbour Hotel", "8", ""],
                     ["3", "acme", "pier", "Pier 9 Marina", "3", "12"]]
    keep_screenshot(page, tmp_path, "h3-xlsx-checked.png")
    assert Customer.objects.get(slug="harbour").host_limit == 2 and not Customer.objects.filter(slug="pier").exists()

    page.get_by_role("button", name="Confirm import").click()
    page.wait_for_load_state()
    assert page.locator("#import-status").inner_text().startswith("Imported by clara")
    keep_screenshot(page, tmp_path, "h3-xlsx-imported.png")
    assert dict(Customer.objects.values_list("slug", "host_limit")) == {"harbour": 8, "pier": 3}
    assert Customer.objects.get(slug="pier").seat_cap == 12
    assert AuditLog.objects.filter(object_repr__icontains="Pier 9").exclude(actor=None).get().actor == user

    bad = workbook([["partner", "slug", "name", "host_limit"], ["acme", "dock", "Dock", 1.5], [None] * 4,
                    ["acme", "Quay", "Quay", 2.0]])
    upload("customers May.xlsx", bad)
    assert "The file was refused: 2 bad rows, 2 errors" in page.locator("#import-status").inner_text()
    assert [p.strip() for p in page.locator("ul.problems li").all_inner_texts()] == [
        "row 2: host_limit: not a whole number: '1.5'",
        "row 4: slug: 'Quay' is not a valid key: use lower-case letters, digits, - and _"]
    assert page.get_by_role("button", name="Confirm import").count() == 0
    keep_screenshot(page, tmp_path, "h3-xlsx-refused.png")
    page.goto(f"{url}/admin/partners/customer/import/")
    recent = page.locator("table.recent tbody").inner_text()
    assert "customers May.xlsx" in recent and "customers April.xlsx" in recent
    keep_screenshot(page, tmp_path, "h3-upload-page.png")
    assert not Customer.objects.filter(slug="dock").exists()


@pytest.mark.browser
@pytest.mark.skipif(any(m.name == "skipif" and m.args and m.args[0] for m in BROWSER), reason="no Chromium")
@pytest.mark.django_db(transaction=True)
def test_the_running_page_of_a_large_workbook_in_chromium(live_server, browser_page, tmp_path, background,
                                                          monkeypatch):
    """import-formats 1: a large file's page shows the rows read, the share of the file and the time left while
    it is checked in the background (looked at halfway through a 4,000-row workbook)."""
    PartnerFactory(slug="acme", name="Acme MSP")
    UserFactory(username="clara", password="clara-pass-123", is_staff=True).groups.add(
        Group.objects.get(name="Billing clerk"))
    page, url = browser_page, live_server.url
    admin_sign_in(page, url, "clara", "clara-pass-123")
    rows = [["partner", "slug", "name", "host_limit"],
            *(["acme", f"c{i:04d}", f"Customer {i:04d}", float(i % 7)] for i in range(4000))]
    page.goto(f"{url}/admin/partners/customer/import/")
    page.set_input_files("#id_import_file", files=[{"name": "customers.xlsx", "buffer": workbook(rows),
                                                    "mimeType": "application/octet-stream"}])
    page.get_by_role("button", name="Check file").click()
    page.wait_for_url("**/customer/import/*/")
    job_url = page.url
    shown = {}
    real = import_jobs._set_progress

    def look(job, rows=None, read=None, **step):
        real(job, rows, read, **step)
        if rows in (2000, 3000):
            page.goto(job_url)
            shown[rows] = page.locator("#import-status").inner_text()
            keep_screenshot(page, tmp_path, f"h3-running-{rows}.png")

    monkeypatch.setattr(import_jobs, "_set_progress", look)
    assert import_job_run(background.pop()) == "checked"
    assert shown[2000].startswith("Checking: 2,000 rows read ("), shown
    page.goto(job_url)
    assert "Checked: 4,000 rows would be imported" in page.locator("#import-status").inner_text()


# --- jobs whose worker is gone -----------------------------------------------------------------------------------
def test_a_job_whose_process_died_is_not_shown_running_forever(
        clerk, acme, background, time_machine, django_capture_on_commit_callbacks):
    """import-formats 1 (a large file is imported in the background, in a Celery task or a thread of the web
    process; its page "can be left and found again") and operations 13 (a run that dies leaves nothing to
    repair). The import's transaction rolled back with its process, but the job stays `importing`: its page
    refreshes every 2 seconds for ever ("Nothing is written until the whole file has gone in"), Confirm and
    Discard are gone, and a task delivered again finds it claimed (import_job_run returns at once). The RMM
    syncs' runs have this guard (metering/sync.py, sync_runs_abandoned after 2 hours); import jobs have none.
    Expected: hours later the page says the import stopped and nothing was imported, and does not refresh."""
    time_machine.move_to(datetime(2026, 12, 1, 9, 0), tick=False)
    text = "partner,slug,name,host_limit\n" + "".join(f"acme,c{i:04d},Customer {i:04d},1\n" for i in range(100))
    with django_capture_on_commit_callbacks(execute=True):
        page = admin_import(clerk, CUSTOMERS, text, name="customers.csv")
    job = job_of(page)
    assert import_job_run(background.pop()) == "checked"
    with django_capture_on_commit_callbacks(execute=True):
        clerk.post(page.wsgi_request.path, {"confirm": "Confirm import"})
    # the worker claims the job, then dies with it (its transaction rolled back: nothing written)
    ImportJob.objects.filter(pk=job.pk).update(status="importing")
    import_jobs._set_progress(job, 50, job.size // 2)
    time_machine.move_to(datetime(2026, 12, 1, 15, 0), tick=False)  # six hours later
    later = clerk.get(page.wsgi_request.path)
    assert not later.context["running"], later.context["job"].status
    assert '<meta http-equiv="refresh"' not in later.content.decode()
    assert Customer.objects.count() in (0, 100)  # nothing, or (a fix that resumes it) the whole file


@pytest.mark.django_db(transaction=True)  # autocommit, as in production: on_commit runs in the request
def test_an_upload_when_the_task_queue_is_down_answers_a_clear_error(clerk, acme, background, monkeypatch):
    """import-formats 1 (a large file is checked in a Celery task). The broker is down (Redis restarting): queueing
    the check raises, the clerk gets a server error page, and the job stays `queued` in "Your recent imports"
    with a page that refreshes for ever. Expected: the form (or the job's page) says the file could not be
    queued and nothing was imported; no job is left waiting."""
    def down(job_id):
        raise OperationalError("[Errno 111] Connection refused")

    monkeypatch.setattr(import_jobs.run_import_job_task, "delay", down)
    clerk.raise_request_exception = False
    text = "partner,slug,name,host_limit\n" + "".join(f"acme,c{i:04d},Customer {i:04d},1\n" for i in range(100))
    response = clerk.post(CUSTOMERS, {"import_file": io.BytesIO(text.encode())})
    assert response.status_code != 500
    assert not ImportJob.objects.filter(status="queued").exists()
