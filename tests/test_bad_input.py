"""Bad input: broken files of every import kind, run through `import_csv` as a clerk runs it.

The corpus is tests/data/bad-input/<kind>/<case>.csv, and tests/data/bad-input/expected.json says what each
file must give: the exact `row N: column: reason` lines, or the one line of a whole-file fault, or (for a
file that is valid by design, such as a UTF-8 BOM) the import's summary. A rejected file must exit 1 and
leave every table of the database as it was (the good rows before the bad one fill a batch, so only the
rollback can remove them), and send no email.

Files too big to commit are made here: a cell over the CSV reader's limit, a row over the engine's, a bad
byte past the reader's first chunk, and a 50 MB file whose last row is bad, streamed in bounded memory.
"""

from __future__ import annotations

import csv
import json
import time
import tracemalloc
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.apps import apps
from django.core import mail
from django.db import connection, transaction
from django.db.models import QuerySet
from djmoney.money import Money

from billing.core.importing import MAX_RECORD_CHARS
from billing.core.registry import import_kinds
from invoicing.models import Invoice, InvoiceKind, InvoiceState
from partners.models import Customer, Method, Service
from partners.resources import CustomerResource
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory
from tests.import_checks import row_error_lines

pytestmark = pytest.mark.django_db

CORPUS = Path(__file__).resolve().parent / "data" / "bad-input"
MANIFEST = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
KINDS = MANIFEST["kinds"]
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """What the corpus's good rows refer to, made once for the module (each test rolls back what it does):
    partner acme (USD, 10% tax) with customers north (RMM organization North, cap 10) and south, a seat_days
    service `seats` (5 committed, overage) and a flat service `backup`, and an issued CI-0001 to pay.
    Returns every table as it then is; removed when the module is done."""
    with django_db_blocker.unblock(), time_machine.travel(NOW, tick=False), transaction.atomic():
        acme = PartnerFactory(slug="acme", name="Acme MSP", tax_rate=Decimal("10"))
        CustomerFactory(partner=acme, slug="north", name="North", rmm_organization="North", seat_cap=10)
        CustomerFactory(partner=acme, slug="south", name="South", rmm_organization="South")
        ServiceFactory(partner=acme, code="seats", committed_quantity=5, overage_enabled=True)
        ServiceFactory(partner=acme, code="backup", method=Method.FLAT, unit_price=Money(Decimal("30.00"), "USD"))
        Invoice.objects.create(partner=acme, kind=InvoiceKind.CI, number="CI-0001", state=InvoiceState.ISSUED,
                               issue_date=date(2026, 6, 1), due_date=date(2026, 7, 1), currency="USD",
                               month="2026-06", subtotal=Decimal("100.00"), total=Decimal("110.00"),
                               amount_due=Decimal("110.00"), issued_at=datetime(2026, 6, 1, tzinfo=UTC))
        state = database()
    yield state
    with django_db_blocker.unblock():
        QuerySet.delete(Invoice.objects.filter(partner=acme))  # an issued invoice refuses the manager's delete
        Service.objects.filter(partner=acme).delete()
        Customer.objects.filter(partner=acme).delete()
        acme.delete()


@pytest.fixture(autouse=True)
def today(world):
    """Today is 2026-06-15 (the clock ticks)."""
    with time_machine.travel(NOW, tick=True):
        yield


def database() -> dict[str, list[tuple]]:
    """Every table, row by row (in plain SQL: this runs after each of some 300 files); but the calendar
    (metering.Day), which a migration fills, no import writes, and the suite's `_calendar` fixture may refill
    inside a test after a transactional test."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        state = {}
        for model in apps.get_models(include_auto_created=True):
            if model._meta.label != "metering.Day":
                cursor.execute(f"SELECT * FROM {quote(model._meta.db_table)} ORDER BY {quote(model._meta.pk.column)}")
                state[model._meta.label] = cursor.fetchall()
        return state


def rejected(cli, kind: str, path: Path, *options: str, before: dict) -> list[str]:
    """Run the import of a file that must be refused: exit 1, every table as `before`, no email. Returns
    its error lines (standard error, blank lines dropped)."""
    return measured(cli, kind, path, *options, before=before, trace=False)[0]


def measured(cli, kind: str, path: Path, *options: str, before: dict, trace: bool = True) -> tuple[list[str], int]:
    """`rejected`, with the peak of Python memory the import itself allocated (tracemalloc)."""
    if trace:
        tracemalloc.start()
    try:
        result = cli("import_csv", kind, str(path), *options)
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
    finally:
        if trace:
            tracemalloc.stop()
    assert result.status == 1, result.out
    assert database() == before
    assert mail.outbox == []
    return [line for line in result.err.splitlines() if line.strip()], peak


def assert_row_errors(lines: list[str], path: Path, expected: list[str]) -> None:
    """Exactly the expected `row N: column: reason` lines (a reason may be given by its leading part), in
    order, then the summary line counting them."""
    rows = row_error_lines("\n".join(lines))
    assert len(rows) == len(expected), "\n".join(lines)
    for line, want in zip(rows, expected, strict=True):
        assert line.startswith(want), (line, want)
    bad_rows = len({want.split(":", 1)[0] for want in expected})
    assert lines[-1] == (f"CommandError: {path}: {bad_rows} bad row(s), {len(expected)} error(s); "
                         f"nothing was imported"), lines[-1]
    assert len(lines) == len(rows) + 1, "\n".join(lines)


def assert_fault(lines: list[str], path: Path, fault: str) -> None:
    """One line naming the file, no row lines."""
    assert len(lines) == 1, "\n".join(lines)
    assert lines[0].startswith(f"CommandError: {path}: {fault}"), (lines[0], fault)


# --- the corpus -------------------------------------------------------------------------------------------------
CORPUS_FILES = [
    pytest.param(kind, case, id=f"{kind}/{case}")
    for kind, spec in KINDS.items()
    for case, expected in spec["files"].items()
    if "not_applicable" not in expected
]


def test_the_corpus_covers_every_kind_and_every_case():
    """Every registered kind has every case (a file, or a reason it has no column for it), and every file of
    the corpus is in the manifest."""
    assert set(KINDS) == set(import_kinds())
    on_disk = {(p.parent.name, p.stem) for p in CORPUS.glob("*/*.csv")}
    for kind, spec in KINDS.items():
        assert set(spec["files"]) == set(MANIFEST["cases"]), kind
        for case, expected in spec["files"].items():
            assert len(set(expected) & {"errors", "fault", "accepted", "not_applicable"}) == 1, (kind, case)
            assert ((kind, case) in on_disk) == ("not_applicable" not in expected), (kind, case)
    assert on_disk <= {(kind, case) for kind, spec in KINDS.items() for case in spec["files"]}


@pytest.mark.parametrize(("kind", "case"), CORPUS_FILES)
def test_a_broken_file_is_answered_and_writes_nothing(cli, world, kind, case):
    """billing-rules 8.1, 9.1: each file of the corpus gives its manifest's answer; a refused one writes nothing at
    all."""
    path = CORPUS / kind / f"{case}.csv"
    options = KINDS[kind]["options"]
    expected = KINDS[kind]["files"][case]
    if "accepted" in expected:
        result = cli("import_csv", kind, str(path), *options)
        assert result.status == 0, result.err
        assert result.out.startswith(expected["accepted"]), result.out
        assert database() != world  # what "nothing written" is checked with does see a write
        return
    lines = rejected(cli, kind, path, *options, before=world)
    if "fault" in expected:
        assert_fault(lines, path, expected["fault"])
    else:
        assert_row_errors(lines, path, expected["errors"])


def test_a_bom_is_not_part_of_the_first_column(cli):
    """The valid BOM file stores its first column's values as written (no U+FEFF anywhere)."""
    result = cli("import_csv", "customers", str(CORPUS / "customers" / "bom-valid.csv"))
    assert result.status == 0, result.err
    assert sorted(Customer.objects.filter(slug__in=["east", "west", "central", "harbour"])
                  .values_list("partner__slug", "slug")) == [
        ("acme", "central"), ("acme", "east"), ("acme", "harbour"), ("acme", "west")]


def test_formula_text_is_stored_as_text_and_escaped_on_export(cli, csv_file):
    """Formula-looking text in a text column is data: stored exactly as written, never evaluated, and
    escaped by the exports (billing-rules 10.1); the statements export is one of them."""
    path = csv_file("customers.csv", "\n".join([
        "partner,slug,name,rmm_organization",
        'acme,evil,"=HYPERLINK(""http://evil.example"",""click"")",@SUM(A1)',
        "acme,plus,+Plus Dental,-Org",
    ]) + "\n")
    result = cli("import_csv", "customers", str(path))
    assert result.status == 0, result.err
    assert Customer.objects.get(slug="evil").name == '=HYPERLINK("http://evil.example","click")'
    assert Customer.objects.get(slug="evil").rmm_organization == "@SUM(A1)"
    exported = cli("export_report", "statements", "--period", "2026-06", "--partner", "acme")
    assert exported.status == 0, exported.err
    rows = {row["customer"]: row for row in csv.DictReader(exported.out.splitlines())}
    assert rows["evil"]["customer_name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert rows["plus"]["customer_name"] == "'+Plus Dental"


def test_the_admin_export_escapes_formula_text_and_imports_back_unchanged(cli, csv_file):
    """The admin's Export button (the import resources) escapes formula-looking text as export_report does,
    and importing that export again changes nothing: the escape is taken off on import (so a hand-written
    '-Org is read as -Org, as a spreadsheet shows it)."""

    path = csv_file("customers.csv", "partner,slug,name,rmm_organization\n"
                                     "acme,evil,=1+2,@SUM(A1)\nacme,plus,+Plus Dental,'-Org\n")
    assert cli("import_csv", "customers", str(path)).status == 0
    exported = CustomerResource().export(Customer.objects.filter(slug__in=["evil", "plus"]).order_by("slug")).dict
    assert [(row["name"], row["rmm_organization"]) for row in exported] == [
        ("'=1+2", "'@SUM(A1)"), ("'+Plus Dental", "'-Org")]
    again = CustomerResource().export(Customer.objects.filter(partner__slug="acme")).csv
    result = cli("import_csv", "customers", str(csv_file("again.csv", again)))
    assert result.status == 0, result.err
    assert ": 0 created, 0 updated, 4 unchanged" in result.out, result.out
    assert Customer.objects.get(slug="plus").rmm_organization == "-Org"  # '-Org was written as an export writes it


# --- files made here: too big to commit -------------------------------------------------------------------------
HEADERS = {kind: (CORPUS / kind / "bom-valid.csv").read_text(encoding="utf-8-sig").splitlines()[0] for kind in KINDS}
GOOD = {kind: (CORPUS / kind / "bom-valid.csv").read_text(encoding="utf-8-sig").splitlines()[1:] for kind in KINDS}


def write_rows(path: Path, kind: str, *rows: str) -> Path:
    path.write_text("\n".join([HEADERS[kind], *GOOD[kind], *rows]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_cell_over_the_csv_field_limit_is_one_line_naming_its_row(cli, world, tmp_path, kind):
    """A cell longer than the CSV reader's limit (131,072 characters) stops the file at that row: one line, nothing
    written."""
    cells = ['"' + "x" * (csv.field_size_limit() + 1) + '"'] + [""] * (len(HEADERS[kind].split(",")) - 1)
    path = write_rows(tmp_path / "long-cell.csv", kind, ",".join(cells))
    lines = rejected(cli, kind, path, *KINDS[kind]["options"], before=world)
    assert_fault(lines, path, f"row 6: a cell is longer than {csv.field_size_limit():,} characters")


def test_a_row_over_the_engine_limit_is_refused_before_it_is_held(cli, world, tmp_path):
    """A row of endless short cells (no single cell over the CSV limit) is refused once it passes
    MAX_RECORD_CHARS, without ever being held whole: peak memory stays near that limit, not the file's size."""
    path = tmp_path / "endless-row.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("\n".join([HEADERS["partners"], *GOOD["partners"]]) + "\n")
        chunk = "x," * 50_000
        for _ in range(160):  # 16 MB on one line
            out.write(chunk)
        out.write("\n")
    lines, peak = measured(cli, "partners", path, before=world)
    assert_fault(lines, path, f"row 6: longer than {MAX_RECORD_CHARS:,} characters")
    assert peak < 4 * MAX_RECORD_CHARS, peak


def test_a_bad_byte_deep_in_the_file_is_a_row_error_on_its_own_row(cli, world, tmp_path):
    """A byte that is not UTF-8, far past the first chunk the reader decodes, is reported on its own row and
    column (not as a fault 'after' some earlier row), and the rows around it are still checked."""
    rows = [f"p{i:04d},Partner {i},USD,0,30," for i in range(1, 2001)]
    rows[1499] = "p1500,Caf\xe9 1500,USD,0,30,"
    rows.append("p2001,Partner 2001,USD,-1,30,")
    path = tmp_path / "partners.csv"
    path.write_bytes(("\n".join([HEADERS["partners"], *rows]) + "\n").encode("latin-1"))
    lines = rejected(cli, "partners", path, before=world)
    assert_row_errors(lines, path, ["row 1501: name: not UTF-8 text (byte 0xE9): save the file as CSV UTF-8",
                                    "row 2002: tax_rate: must not be negative"])


# --- 50 MB --------------------------------------------------------------------------------------------------------
RMM_EXPORT = ("agent_id,machine_name,organization,group,os,last_seen,"
              "software,version,publisher,installed_on,install_path,description")


def software_inventory(path: Path, size: int) -> int:
    """An RMM software inventory export of about `size` bytes: one row per agent and installed application
    (the agent's columns repeat on each of its rows; the application's are extra columns, which rmm-assets
    ignores), 2,000 agents, then one agent whose last_seen has no time zone. Returns that last row's number."""
    agents, number, app = 2_000, 1, 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(RMM_EXPORT + "\r\n")
        while out.tell() < size:
            app += 1
            out.write("".join(
                f"ag-{agent:05d},{('NORTH', 'SOUTH')[agent % 2]}-WS{agent:05d},{('North', 'South')[agent % 2]},"
                f"Workstations,Windows 11 Pro 23H2,2026-06-14T08:{agent % 60:02d}:00Z,"
                f"Application {app:03d} Enterprise Edition,{app}.{agent % 10}.{app * 7 % 100}.1024,"
                f"Example Software Publisher Incorporated,2026-0{1 + app % 5}-1{agent % 10},"
                f"C:\\Program Files\\Example Software Publisher\\Application {app:03d}\\bin\\app.exe,"
                f'"Application {app:03d} keeps the workstation\'s line-of-business data in sync with the '
                f'head office. Installed by policy ""Standard workstation"" (managed, auto-update on, '
                f'restart deferred to the maintenance window). Components: client {app}.{agent % 10}, sync '
                f'agent, reporting add-in, spreadsheet connector, offline cache (2 GB), printer drivers. '
                f'Licensed per device under the publisher\'s volume agreement; the licence key is held by '
                f'the head office and renewed every year in March. Known issue: the offline cache is rebuilt '
                f'after a Windows feature update, which takes about 20 minutes at the first start. Contact '
                f'the service desk before uninstalling: the sync agent holds unsent changes."\r\n'
                for agent in range(agents)
            ))
            number += agents
        out.write("ag-99999,NORTH-LAST,North,Workstations,Windows 11,2026-06-14 08:00,Last,1.0,Last Inc,"
                  "2026-06-14,C:\\last.exe,\r\n")
    return number + 1


def test_a_50_mb_file_streams_in_bounded_memory_and_its_last_row_is_reported(cli, world, tmp_path, settings):
    """50 MB of valid rows and one bad row at the very end (rmm-assets: the cheapest kind to check per row,
    and the one whose files are widest): the error names that last row, nothing is written, and the import's
    peak Python memory stays under a fifth of the file, at the production batch size."""
    settings.IMPORT_BATCH_SIZE = 2000
    size = 50 * 1024 * 1024
    path = tmp_path / "inventory.csv"
    last = software_inventory(path, size)
    assert path.stat().st_size >= size
    started = time.monotonic()
    lines, peak = measured(cli, "rmm-assets", path, *KINDS["rmm-assets"]["options"], before=world)
    elapsed = time.monotonic() - started
    assert_row_errors(lines, path, [f"row {last}: last_seen: instant '2026-06-14 08:00' has no time zone"])
    assert peak < path.stat().st_size / 5, f"peak {peak:,} bytes for a file of {path.stat().st_size:,}"
    print(f"50 MB: {last - 1:,} rows in {elapsed:.1f} s, peak {peak / 2**20:.1f} MiB")
