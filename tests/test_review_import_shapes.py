"""Review: import files in the shapes real spreadsheets write them (Excel, Google Sheets).

Each shape must be either read right or refused with `row N: column: reason` (or one file-level line),
exit 1, and nothing written (docs/import-formats.md 2, 3, 7, 8)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from billing.core.importing import run_import_file
from invoicing.models import OneTimeCharge
from partners.models import AuditLog, Customer, Partner, Service
from partners.tests.factories import CustomerFactory, PartnerFactory
from tests.import_checks import table_rows

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 7, 22, 0, tzinfo=UTC)
TRACKED = (Partner, Customer, Service, OneTimeCharge, AuditLog)


@pytest.fixture(autouse=True)
def today():
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def acme():
    p = PartnerFactory(slug="acme", name="Acme")
    CustomerFactory(partner=p, slug="birch", name="Birch")
    return p


def write(tmp_path, data: bytes, name="f.csv"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refused(cli, kind, path, must_contain):
    before = table_rows(TRACKED)
    result = cli("import_csv", kind, str(path))
    assert result.status == 1, (result.out, result.err)
    assert must_contain in result.err, result.err
    assert table_rows(TRACKED) == before
    return result


OTC = "partner,customer,description,quantity,unit_price,date,taxable"


@pytest.mark.parametrize("cell, column, reason", [
    ("07/12/2026", "date", "expected a date as YYYY-MM-DD"),
    ("2026-12-07 00:00:00", "date", "expected a date as YYYY-MM-DD"),
])
def test_spreadsheet_dates_are_refused_with_row_and_column(acme, cli, tmp_path, cell, column, reason):
    path = write(tmp_path, f"{OTC}\r\nacme,birch,Router,1,10.00,{cell},true\r\n".encode())
    refused(cli, "one-time-charges", path, f"row 2: {column}: {reason}")


@pytest.mark.parametrize("cell", ['"1,234.50"', '"1.234,50"', "$10.00", "10.00 €", "1 234.50", "10,5"])
def test_spreadsheet_prices_are_refused_with_row_and_column(acme, cli, tmp_path, cell):
    path = write(tmp_path, f"{OTC}\nacme,birch,Router,1,{cell},2026-12-01,true\n".encode())
    # an unquoted 10,5 shifts the cells: refused either way (too many cells)
    refused(cli, "one-time-charges", path, "row 2: ")


@pytest.mark.parametrize("cell", ["1_234.50", "1__0", "１０.５", "٣"])  # Python's digit groups, other scripts' digits
def test_underscore_digit_groups_are_refused(acme, cli, tmp_path, cell):
    path = write(tmp_path, f"{OTC}\nacme,birch,Router,1,{cell},2026-12-01,true\n".encode())
    refused(cli, "one-time-charges", path, "row 2: unit_price: not a number")


def test_percent_tax_rate_is_refused(cli, tmp_path):
    path = write(tmp_path, b"slug,name,tax_rate\nacme,Acme,8%\n")
    refused(cli, "partners", path, "row 2: tax_rate: not a number: '8%'")


@pytest.mark.parametrize("word", ["WAHR", "Y", "x", "VRAI"])
def test_unknown_boolean_words_are_refused(acme, cli, tmp_path, word):
    path = write(tmp_path, f"{OTC}\nacme,birch,Router,1,10,2026-12-01,{word}\n".encode())
    refused(cli, "one-time-charges", path, "row 2: taxable: not a boolean")


@pytest.mark.parametrize("word, expected", [("TRUE", True), ("FALSE", False), ("yes", True), ("1", True),
                                            ("No", False), ("0", False)])
def test_spreadsheet_booleans_are_read(acme, cli, tmp_path, word, expected):
    path = write(tmp_path, f"{OTC}\nacme,birch,Router,1,10,2026-12-01,{word}\n".encode())
    assert cli("import_csv", "one-time-charges", str(path)).status == 0
    assert OneTimeCharge.objects.get().taxable is expected


def test_windows_1252_name_is_a_row_error_and_nothing_written(acme, cli, tmp_path):
    path = write(tmp_path, "partner,slug,name\r\nacme,oak,Oak\r\nacme,cafe,Café\r\n".encode("cp1252"))
    refused(cli, "customers", path, "row 3: name: not UTF-8 text (byte 0xE9)")


def test_semicolon_file_is_one_clear_line(cli, tmp_path):
    path = write(tmp_path, "\ufeffslug;name;tax_rate\r\nacme;Acme;8,5\r\n".encode())
    refused(cli, "partners", path, "the cells are separated by semicolons")


@pytest.mark.parametrize("header, message", [
    ("partner,slug,Name,Name", "appears twice"),
    ("partner,slug,name,colour", "unknown column(s): colour"),
    ("partner,slug,name,,,", "(column 4, no name)"),
])
def test_header_faults_write_nothing(acme, cli, tmp_path, header, message):
    path = write(tmp_path, f"{header}\r\nacme,oak,Oak\r\n".encode())
    refused(cli, "customers", path, message)


def test_unit_price_with_a_space_is_refused(acme, cli, tmp_path):
    path = write(tmp_path, b"partner,code,name,method,Unit Price,start_date\nacme,m,M,flat,5,2026-12-01\n")
    refused(cli, "services", path, "missing column(s): unit_price")


def test_header_only_file_is_refused(cli, tmp_path):
    path = write(tmp_path, "\ufeffslug,name\r\n".encode())
    refused(cli, "partners", path, "the file has a header but no data rows")


def test_excel_utf8_file_is_read_right_and_reimport_changes_nothing(acme, cli, tmp_path):
    """BOM, CRLF, header in other case and spaces, trailing ',,,' on data rows, an empty last line, é in UTF-8,
    optional columns missing."""
    text = ("\ufeff Partner ,SLUG, Name ,Seat_Cap\r\n"
            "acme,cafe,Café Crème,5,,,\r\n"
            "acme,oak,\"Oak, Inc\",,,,\r\n"
            ",,,,,,\r\n\r\n")
    path = write(tmp_path, text.encode())
    first = cli("import_csv", "customers", str(path))
    assert first.status == 0, first.err
    cafe = Customer.objects.get(slug="cafe")
    assert (cafe.name, cafe.seat_cap) == ("Café Crème", 5)
    assert Customer.objects.get(slug="oak").name == "Oak, Inc"
    again = cli("import_csv", "customers", str(path))
    assert "0 created, 0 updated, 2 unchanged" in again.out, again.out


def test_charges_resaved_by_excel_are_not_charged_twice(acme, cli, tmp_path):
    first = write(tmp_path, f"{OTC}\nacme,birch,Router,1.0,1234.50,2026-12-01,true\n".encode(), "a.csv")
    assert cli("import_csv", "one-time-charges", str(first)).status == 0
    # Excel's re-save: BOM, CRLF, TRUE, 1, 1234.5, trailing empty cells
    again = write(tmp_path, f"\ufeff{OTC}\r\nacme,birch,Router,1,1234.5,2026-12-01,TRUE,,\r\n".encode(), "b.csv")
    result = cli("import_csv", "one-time-charges", str(again))
    assert result.status == 0, result.err
    assert OneTimeCharge.objects.count() == 1
    assert OneTimeCharge.objects.get().unit_price == Decimal("1234.50")


def test_naive_instant_in_seat_events_is_refused(acme, cli, tmp_path):
    path = write(tmp_path, b"partner,customer,member,action,at\r\nacme,birch,ann,assign,2026-12-07 00:00:00\r\n")
    refused(cli, "seat-events", path, "row 2: at: instant '2026-12-07 00:00:00' has no time zone")


def test_tenant_usage_scientific_bytes_are_refused(acme, cli, tmp_path):
    path = write(tmp_path, b"partner,customer,date,users_count,storage_bytes\nacme,birch,2026-12-01,3,1.23457E+11\n")
    refused(cli, "tenant-usage", path, "row 2: storage_bytes: not a whole number")


def test_a_seat_member_id_in_scientific_notation_is_a_row_error(tmp_path):
    """A member id Excel rewrote (6.94826E+14) is refused on its row and member cell, nothing written
    (billing-rules 9.3, import-formats 7); the same id written out in full is a member's name."""
    CustomerFactory(partner=PartnerFactory(slug="sci"), slug="c")
    path = tmp_path / "seats.csv"
    path.write_text("partner,customer,member,action,at\nsci,c,694826000000123,assign,2026-05-01T08:00:00Z\n"
                    "sci,c,6.94826E+14,assign,2026-05-01T08:00:00Z\n")
    summary = run_import_file("seat-events", path)
    assert not summary.ok
    assert [(e.row, e.column) for e in summary.errors] == [(3, "member")]
    assert "scientific notation" in summary.errors[0].reason
