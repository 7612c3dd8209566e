"""billing.reporting: CSV/XLSX writers and formula-injection escaping (billing-rules 10.1)."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from billing.core.reporting import cell_text, escape_cell, write_csv, write_xlsx
from conftest import examples
from partners.tests.factories import CustomerFactory, MemberFactory, PartnerFactory, SeatAssignmentFactory

FAST = settings(max_examples=examples(150), deadline=None, database=None)


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1+1", "'+1+1"),
        ("@cmd", "'@cmd"),
        ("-2+3", "'-2+3"),
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("=1", "'=1"),
        ("-", "'-"),
        ("+", "'+"),
        ("-cmd|' /C calc'!A0", "'-cmd|' /C calc'!A0"),
    ],
)
def test_formula_looking_text_is_escaped(value, escaped):
    """Cells starting with = + - @ that are not numbers are escaped (billing-rules 10.1)."""
    assert escape_cell(value) == escaped


@pytest.mark.parametrize("value", ["-5.00", "+3", "1e5", "-1.5E+3", "-0", "-.5", "Acme", "", "a=b", "3-2", "1e5x"])
def test_numbers_and_plain_text_are_not_escaped(value):
    """Signed numbers stay numbers; text not starting with = + - @ is untouched (billing-rules 10.1)."""
    assert escape_cell(value) == value


def test_cell_text_renders_values():
    """Decimals keep their exact text, dates are ISO, blanks are empty, text is escaped (billing-rules 1, 2, 10.1)."""
    assert cell_text(Decimal("-5.00")) == "-5.00"
    assert cell_text(Decimal("161.94")) == "161.94"
    assert cell_text(date(2026, 4, 1)) == "2026-04-01"
    assert cell_text(None) == ""
    assert cell_text(-3) == "-3"
    assert cell_text("@SUM(1)") == "'@SUM(1)"


@FAST
@given(st.text(max_size=20))
def test_escaped_text_never_starts_a_formula(value):
    """Whatever the text, the written cell is either a number or does not start with = + - @ (billing-rules 10.1)."""
    escaped = escape_cell(value)
    if escaped.startswith(("=", "+", "-", "@")):
        assert escaped == value
        Decimal(value)  # a plain number: would raise if it were not
    assert escaped in (value, "'" + value)


COLUMNS = ("customer", "amount", "quantity", "day", "note")
ROWS = [
    {"customer": "Acme, Inc.", "amount": Decimal("161.94"), "quantity": 7, "day": date(2026, 4, 1),
     "note": 'says "hi"\nthen leaves'},
    {"customer": "=SUM(A1)", "amount": Decimal("-5.00"), "quantity": 0, "day": None, "note": None},
]


def test_write_csv_round_trip():
    """CSV: header row, exact decimals, quoting, escaping, blanks; returns the row count (billing-rules 10.1)."""
    stream = io.StringIO()
    assert write_csv(COLUMNS, iter(ROWS), stream) == 2
    stream.seek(0)
    assert list(csv.reader(stream)) == [
        list(COLUMNS),
        ["Acme, Inc.", "161.94", "7", "2026-04-01", 'says "hi"\nthen leaves'],
        ["'=SUM(A1)", "-5.00", "0", "", ""],
    ]


def test_write_xlsx_round_trip():
    """XLSX: numbers stay numbers, dates ISO text, formula-looking text escaped and stored as text
    (billing-rules 10.1)."""
    stream = io.BytesIO()
    assert write_xlsx(COLUMNS, iter(ROWS), stream, title="statements") == 2
    stream.seek(0)
    workbook = load_workbook(stream)
    assert workbook.sheetnames == ["statements"]
    sheet = workbook["statements"]
    rows = list(sheet.iter_rows())
    assert [c.value for c in rows[0]] == list(COLUMNS)
    first, second = rows[1], rows[2]
    assert first[0].value == "Acme, Inc."
    assert first[1].data_type == "n"
    assert Decimal(str(first[1].value)) == Decimal("161.94")
    assert first[2].value == 7
    assert first[3].value == "2026-04-01"
    assert first[4].value == 'says "hi"\nthen leaves'
    assert second[0].value == "'=SUM(A1)"
    assert second[0].data_type != "f"
    assert Decimal(str(second[1].value)) == Decimal("-5.00")
    assert not second[3].value


def test_write_xlsx_truncates_long_sheet_titles():
    """Excel sheet titles are at most 31 characters (billing-rules 10.1)."""
    stream = io.BytesIO()
    write_xlsx(["a"], [], stream, title="x" * 40)
    stream.seek(0)
    assert load_workbook(stream).sheetnames == ["x" * 31]


@pytest.fixture
def hostile_customers(db):
    partner = PartnerFactory(slug="acme")
    evil = CustomerFactory(partner=partner, slug="evil", name='=HYPERLINK("http://evil.example","click")')
    CustomerFactory(partner=partner, slug="minus", name="-2+3")
    CustomerFactory(partner=partner, slug="plain", name="Plain Co")
    SeatAssignmentFactory(member=MemberFactory(customer=evil))  # from 2026-04-01 09:00, open
    return partner


def test_statements_export_escapes_customer_names(hostile_customers):
    """A formula-looking customer name is escaped in a real `export_report statements` CSV, while the
    numbers stay plain (billing-rules 8.3, 10.1)."""
    out = io.StringIO()
    call_command("export_report", "statements", "--period", "2026-04", stdout=out)
    rows = {row["customer"]: row for row in csv.DictReader(io.StringIO(out.getvalue()))}
    assert set(rows) == {"evil", "minus", "plain"}
    assert rows["evil"]["customer_name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert rows["minus"]["customer_name"] == "'-2+3"
    assert rows["plain"]["customer_name"] == "Plain Co"
    assert (rows["evil"]["seat_days"], rows["evil"]["seat_months"], rows["evil"]["active_users"]) == (
        "30", "1.0000", "1")
    assert (rows["minus"]["seat_days"], rows["minus"]["seat_months"]) == ("0", "0.0000")
    assert rows["evil"]["period"] == "2026-04"


def test_statements_xlsx_export_escapes_customer_names(hostile_customers, tmp_path):
    """The XLSX export stores the escaped name as text, never as a formula (billing-rules 8.3, 10.1)."""
    target = tmp_path / "statements.xlsx"
    call_command("export_report", "statements", "--period", "2026-04", "--format", "xlsx", "--output", str(target),
                 stdout=io.StringIO())
    sheet = load_workbook(target).active
    header, *body = list(sheet.iter_rows())
    columns = [c.value for c in header]
    by_slug = {row[columns.index("customer")].value: row for row in body}
    name = by_slug["evil"][columns.index("customer_name")]
    assert name.value == '\'=HYPERLINK("http://evil.example","click")'
    assert name.data_type != "f"
    assert by_slug["evil"][columns.index("seat_days")].value == 30


def test_xlsx_shows_decimals_with_their_places(tmp_path):
    """Quantities keep 4 places and money 2 in the workbook, not 4 and 80 (billing-rules 2)."""

    path = tmp_path / "r.xlsx"
    with path.open("wb") as stream:
        write_xlsx(["quantity", "amount"], [{"quantity": Decimal("4.0000"), "amount": Decimal("80.00")}], stream)
    sheet = load_workbook(path).active
    assert (sheet["A2"].number_format, sheet["B2"].number_format) == ("0.0000", "0.00")
    assert sheet["A2"].value == 4 and sheet["B2"].value == 80


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "message"), [
    (["invoice-lines", "--period", "2026-04"], "the invoice-lines report takes no --period (use --month"),
    (["periods", "--month", "2026-04"], "the periods report takes no --month (use --period"),
    (["statements", "--month", "2026-04"], "the statements report needs --period YYYY-MM"),
])
def test_export_report_refuses_options_a_report_does_not_take(cli, args, message):
    result = cli("export_report", *args)
    assert result.status == 1 and message in result.err
