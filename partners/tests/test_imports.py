"""`import_csv` for partners, customers, services and seat-purchases (billing-rules 8.1, 9, 6.11), and the admin's
Import button for customers.

Every rejected file is checked three ways: exit status 1, the exact `row N: column: reason` lines (no
more, no fewer), and a database identical to the one before the run. The bad row is the last of a
file longer than IMPORT_BATCH_SIZE (3 under test settings), so the good batches before it have been
written inside the import's transaction and only the rollback can remove them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from djmoney.money import Money

from partners.models import (
    AuditLog,
    Customer,
    Member,
    Method,
    Partner,
    SeatAssignment,
    SeatEventStage,
    SeatPurchase,
    Service,
    UtilizationAlert,
)
from partners.tests.factories import (
    CustomerFactory,
    PartnerFactory,
    SeatAssignmentFactory,
    SeatPurchaseFactory,
    ServiceFactory,
)
from tests.import_checks import admin_confirm, admin_import, csv_text, import_rejected, row_error_lines, table_rows

pytestmark = pytest.mark.django_db

TRACKED = (Partner, Customer, Member, Service, SeatPurchase, SeatAssignment, SeatEventStage, AuditLog,
           UtilizationAlert, LogEntry)


# --- helpers (also used by test_seat_events_import) ------------------------------------------------
def db_state() -> dict[str, list[dict]]:
    return table_rows(TRACKED)


def assert_rejected(cli, kind: str, path, expected: list[tuple[int, str, str]]):
    """Run the import; it must exit 1, print exactly one `row N: column: ...` line per expected
    (row, column, part of the reason), and leave the database as it was."""
    result, lines = import_rejected(cli, kind, path, tracked=TRACKED)
    assert len(lines) == len(expected), result.err
    for (row, column, reason), line in zip(sorted(expected), lines, strict=True):
        assert line.startswith(f"row {row}: {column}: "), (line, result.err)
        assert reason in line, (line, reason)
    return result


def assert_file_fault(cli, kind: str, path, reason: str):
    """A file-level fault: exit 1, one clear line naming the file, no row lines, nothing written."""
    before = db_state()
    result = cli("import_csv", kind, str(path))
    assert result.status == 1, result.out
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert str(path) in lines[0] and reason in lines[0], lines[0]
    assert db_state() == before
    return result


def assert_imported(cli, kind: str, path, *extra: str) -> str:
    result = cli("import_csv", kind, str(path), *extra)
    assert result.status == 0, result.err
    assert not row_error_lines(result.err)
    return result.out


@pytest.fixture
def acme(db):
    """A partner with two customers, a partner-level seat_days service and a flat one."""
    partner = PartnerFactory(slug="acme", name="Acme MSP", currency="USD")
    CustomerFactory(partner=partner, slug="north", name="North")
    CustomerFactory(partner=partner, slug="south", name="South")
    ServiceFactory(partner=partner, code="seats", name="Seats", method=Method.SEAT_DAYS, committed_quantity=2)
    ServiceFactory(partner=partner, code="support", name="Support", method=Method.FLAT)
    return partner


# --- files: four good rows, then the row under test (row 6, in the second batch) -------------------
PARTNERS_HEADER = "slug,name,currency,tax_rate,payment_terms_days,billing_emails"
CUSTOMERS_HEADER = "partner,slug,name,seat_cap,host_limit,payment_terms_days,rmm_organization"
SERVICES_HEADER = ("partner,customer,code,name,method,meter,unit_price,overage_price,committed_quantity,"
                   "overage_enabled,tiers,start_date,end_date,rmm_filter")
PURCHASES_HEADER = "partner,service,seats,purchased_at"

HEADERS = {
    "partners": PARTNERS_HEADER,
    "customers": CUSTOMERS_HEADER,
    "services": SERVICES_HEADER,
    "seat-purchases": PURCHASES_HEADER,
}
GOOD_ROWS = {
    "partners": [f"p{i},Partner {i},USD,10,30,billing@p{i}.example" for i in range(1, 5)],
    "customers": [f"acme,c{i},Customer {i},,{i},," for i in range(1, 5)],
    "services": [f"acme,,s{i},Service {i},flat,,10.00,,,,,2026-01-01,," for i in range(1, 5)],
    "seat-purchases": [f"acme,seats,{i},2026-04-0{i}T10:00:00Z" for i in range(1, 5)],
}
MODEL_OF = {"partners": Partner, "customers": Customer, "services": Service, "seat-purchases": SeatPurchase}


def good_file(csv_file, kind: str, *bad_rows: str):
    return csv_file(f"{kind}.csv", csv_text(HEADERS[kind], *GOOD_ROWS[kind], *bad_rows))


ROW_ERRORS = [
    # partners
    pytest.param("partners", "p9,Bad,USD,ten,30,", "tax_rate", "not a number", id="partners-bad-number"),
    pytest.param("partners", "p9,Bad,USD,-1,30,", "tax_rate", "must not be negative", id="partners-negative-tax"),
    pytest.param("partners", "p9,Bad,USD,5,-30,", "payment_terms_days", "must not be negative",
                 id="partners-negative-terms"),
    pytest.param("partners", "p9,Bad,USD,5,30.5,", "payment_terms_days", "not a whole number",
                 id="partners-fractional-terms"),
    pytest.param("partners", "p9,Bad,USD,10.12345,30,", "tax_rate", "at most 3 decimal places",
                 id="partners-tax-too-precise"),
    pytest.param("partners", "p9,Bad,USD,5,99999999999,", "payment_terms_days", "must be at most 2147483647",
                 id="partners-terms-too-large"),
    pytest.param("partners", "p9,Bad,XYZ,5,30,", "currency", "unknown currency 'XYZ'", id="partners-currency"),
    pytest.param("partners", "p9,Bad,USD,5,30,not-an-email", "billing_emails", "not an email address",
                 id="partners-email"),
    pytest.param("partners", "p9,,USD,5,30,", "name", "is required", id="partners-required"),
    pytest.param("partners", "P 9,Bad,USD,5,30,", "slug", "not a valid key", id="partners-bad-slug"),
    pytest.param("partners", "p1,Another name,USD,10,30,billing@p1.example", "slug",
                 "same key as row 2 with different values", id="partners-same-key"),
    # customers
    pytest.param("customers", "ghost,c9,Ghost,,,,", "partner", "unknown partner 'ghost'",
                 id="customers-unknown-partner"),
    pytest.param("customers", "acme,c9,C9,many,,,", "seat_cap", "not a whole number", id="customers-bad-number"),
    pytest.param("customers", "acme,c9,C9,,-3,,", "host_limit", "must not be negative", id="customers-negative"),
    pytest.param("customers", "acme,c1,Customer 1,,99,,", "slug", "same key as row 2 with different values",
                 id="customers-same-key"),
    # services
    pytest.param("services", "ghost,,s9,S9,flat,,10,,,,,2026-01-01,,", "partner", "unknown partner 'ghost'",
                 id="services-unknown-partner"),
    pytest.param("services", "acme,ghost,s9,S9,flat,,10,,,,,2026-01-01,,", "customer",
                 "unknown customer 'ghost' of partner acme", id="services-unknown-customer"),
    pytest.param("services", "acme,,s9,S9,flat,,1.5.0,,,,,2026-01-01,,", "unit_price", "not a number",
                 id="services-bad-number"),
    pytest.param("services", "acme,,s9,S9,flat,,10.12345,,,,,2026-01-01,,", "unit_price",
                 "at most 4 decimal places", id="services-price-too-precise"),
    pytest.param("services", "acme,,s9,S9,flat,,1e20,,,,,2026-01-01,,", "unit_price",
                 "too large: at most 10 digits before the decimal point", id="services-price-too-large"),
    pytest.param("services", "acme,,s9,S9,seat_days,,10,,99999999999,,,2026-01-01,,", "committed_quantity",
                 "must be at most", id="services-quantity-too-large"),
    pytest.param("services", "acme,,s9,S9,per_asset,,10,,,,,2026-01-01,,ORG//B", "rmm_filter",
                 "'ORG//B' is not ORG, ORG/GROUP, ORG/GROUP/SUB or view:NAME", id="services-bad-rmm-filter"),
    pytest.param("services", "acme,,s9,S9,flat,,-10,,,,,2026-01-01,,", "unit_price", "must not be negative",
                 id="services-negative-price"),
    pytest.param("services", "acme,,s9,S9,seat_days,,10,,-2,,,2026-01-01,,", "committed_quantity",
                 "must not be negative", id="services-negative-quantity"),
    pytest.param("services", "acme,,s9,S9,flat,,10,,,,,2026-02-30,,", "start_date", "expected a date as YYYY-MM-DD",
                 id="services-bad-date"),
    pytest.param("services", "acme,,s9,S9,flat,,10,,,,,01/03/2026,,", "start_date", "expected a date as YYYY-MM-DD",
                 id="services-date-format"),
    pytest.param("services", "acme,,s9,S9,flat,,10,,,,,2026-03-01,2026-02-01,", "end_date", "before start_date",
                 id="services-end-before-start"),
    pytest.param("services", "acme,,s9,S9,per_seat,,10,,,,,2026-01-01,,", "method", "unknown method 'per_seat'",
                 id="services-unknown-method"),
    pytest.param("services", "acme,,s9,S9,peak,cpu,10,,,,,2026-01-01,,", "meter", "unknown meter 'cpu'",
                 id="services-unknown-meter"),
    pytest.param("services", "acme,,s9,S9,peak,,10,,,,,2026-01-01,,", "meter", "required for method peak",
                 id="services-peak-without-meter"),
    pytest.param("services", "acme,,s9,S9,flat,users,10,,,,,2026-01-01,,", "meter", "only peak and cmq",
                 id="services-meter-on-flat"),
    pytest.param("services", "acme,,s9,S9,cmq,users,10,,5,,,2026-01-15,,", "start_date",
                 "must start on the 1st of a month", id="services-cmq-not-on-1st"),
    pytest.param("services", "acme,,s9,S9,cmq,users,10,,,,,2026-01-01,,", "committed_quantity",
                 "required for method cmq", id="services-cmq-without-commitment"),
    pytest.param("services", "acme,,s9,S9,per_host,,10,,,,,2026-01-01,,", "customer",
                 "a per_host service belongs to one customer", id="services-per-host-without-customer"),
    pytest.param("services", "acme,,s9,S9,licenses,,10,,,,10:5;5:4;inf:3,2026-01-01,,", "tiers",
                 "ascending", id="services-tiers-descending"),
    pytest.param("services", "acme,,s9,S9,licenses,,10,,,,10:5;20:4,2026-01-01,,", "tiers",
                 "the last tier must be inf", id="services-tiers-no-inf"),
    pytest.param("services", "acme,,s9,S9,licenses,,10,,,,10:five;inf:3,2026-01-01,,", "tiers",
                 "price is not a number", id="services-tiers-bad-price"),
    pytest.param("services", "acme,,s9,S9,seat_days,,10,,,maybe,,2026-01-01,,", "overage_enabled",
                 "not a boolean", id="services-bad-boolean"),
    pytest.param("services", "acme,,s9,S9,flat,,10,,,yes,,2026-01-01,,", "overage_enabled",
                 "only seat_days services", id="services-overage-on-flat"),
    pytest.param("services", "acme,,s9,S9,flat,,10,,,,,2026-01-01,,ORG/A/B", "rmm_filter",
                 "only per_asset services", id="services-filter-on-flat"),
    pytest.param("services", "acme,,s1,Service 1,flat,,12.00,,,,,2026-01-01,,", "code",
                 "same key as row 2 with different values", id="services-same-key"),
    # seat-purchases
    pytest.param("seat-purchases", "ghost,seats,1,2026-04-09T10:00:00Z", "partner", "unknown partner 'ghost'",
                 id="purchases-unknown-partner"),
    pytest.param("seat-purchases", "acme,ghost,1,2026-04-09T10:00:00Z", "service",
                 "unknown service 'ghost' of partner acme", id="purchases-unknown-service"),
    pytest.param("seat-purchases", "acme,support,1,2026-04-09T10:00:00Z", "service",
                 "seats are bought on seat_days services", id="purchases-not-seat-days"),
    pytest.param("seat-purchases", "acme,seats,two,2026-04-09T10:00:00Z", "seats", "not a whole number",
                 id="purchases-bad-number"),
    pytest.param("seat-purchases", "acme,seats,-2,2026-04-09T10:00:00Z", "seats", "must be at least 1",
                 id="purchases-negative"),
    pytest.param("seat-purchases", "acme,seats,0,2026-04-09T10:00:00Z", "seats", "must be at least 1",
                 id="purchases-zero"),
    pytest.param("seat-purchases", "acme,seats,1,2026-04-09T10:00:00", "purchased_at", "has no time zone",
                 id="purchases-naive-instant"),
    pytest.param("seat-purchases", "acme,seats,1,2026-04-09", "purchased_at", "has no time zone",
                 id="purchases-date-not-instant"),
    pytest.param("seat-purchases", "acme,seats,1,yesterday", "purchased_at", "expected an ISO 8601 instant",
                 id="purchases-bad-instant"),
    pytest.param("seat-purchases", "acme,seats,7,2026-04-01T10:00:00Z", "seats",
                 "same purchase as row 2 with different seats", id="purchases-same-key"),
    pytest.param("seat-purchases", "acme,seats,5,2026-04-01T12:00:00+02:00", "seats",
                 "same purchase as row 2 with different seats", id="purchases-same-instant-other-offset"),
]


@pytest.mark.parametrize(("kind", "bad_row", "column", "reason"), ROW_ERRORS)
def test_a_bad_last_row_is_reported_and_nothing_is_written(acme, cli, csv_file, kind, bad_row, column, reason):
    """billing-rules 8.1, 9.6: one bad row (the last, after a full batch of good ones) is reported as
    `row 6: column: reason`, exit 1, and not even the good rows are written."""
    path = good_file(csv_file, kind, bad_row)
    assert_rejected(cli, kind, path, [(6, column, reason)])
    # the same file without the bad row imports: the error really is that row's
    assert_imported(cli, kind, good_file(csv_file, kind))
    assert MODEL_OF[kind].objects.count() >= 4


def test_customers_seat_cap_below_active_seats_is_refused(acme, cli, csv_file):
    """billing-rules 3.2, decision (c): a customer's seat cap bounds its active seats, so a re-import cannot lower
    it below them."""
    north = Customer.objects.get(slug="north")
    for name in ("ann", "bob"):
        SeatAssignmentFactory(member__customer=north, member__name=name)
    path = good_file(csv_file, "customers", "acme,north,North,1,,,")
    assert_rejected(cli, "customers", path, [(6, "seat_cap", "2 seats are active now")])


def test_seat_purchase_already_imported_with_other_seats_is_refused(acme, cli, csv_file):
    """billing-rules 9.3, decision (j): a purchase is keyed by (partner, service, purchased_at); the same key with
    other seats is an error, not a silent change of the commitment."""
    SeatPurchaseFactory(service=Service.objects.get(code="seats"), seats=3,
                        purchased_at=datetime(2026, 4, 20, 16, 0, tzinfo=UTC))
    path = good_file(csv_file, "seat-purchases", "acme,seats,5,2026-04-20T16:00:00Z")
    assert_rejected(cli, "seat-purchases", path, [(6, "seats", "a purchase of 3 seats at this instant")])


# --- every bad row is reported ------------------------------------------------------------------------
def test_every_bad_row_is_reported_across_batches(acme, cli, csv_file):
    """billing-rules 8.1: every bad row is reported, one line each, in row order, whichever batch it falls in."""
    path = csv_file("customers.csv", csv_text(
        CUSTOMERS_HEADER,
        "acme,c1,C1,,,,",
        "ghost,c2,C2,,,,",       # row 3, batch 1
        "acme,c3,C3,,,,",
        "acme,c4,C4,,lots,,",    # row 5, batch 2
        "acme,c5,C5,,,,",
        "acme,c6,C6,,,,",
        "acme,c7,C7,-1,,,",      # row 8, batch 3
    ))
    assert_rejected(cli, "customers", path, [
        (3, "partner", "unknown partner 'ghost'"),
        (5, "host_limit", "not a whole number"),
        (8, "seat_cap", "must not be negative"),
    ])


def test_two_bad_cells_of_one_row_are_two_lines(acme, cli, csv_file):
    """billing-rules 8.1: each bad cell is named with its column, even when two share a row."""
    path = good_file(csv_file, "services", "acme,,s9,S9,flat,,abc,,,,,2026-13-01,,")
    assert_rejected(cli, "services", path, [
        (6, "start_date", "expected a date"),
        (6, "unit_price", "not a number"),
    ])


def test_rule_errors_of_two_services_are_both_reported(acme, cli, csv_file):
    """billing-rules 8.1: rows failing the method rules are all reported, not only the first."""
    path = good_file(csv_file, "services",
                     "acme,,s8,S8,peak,,10,,,,,2026-01-01,,",
                     "acme,,s9,S9,per_host,,10,,,,,2026-01-01,,")
    assert_rejected(cli, "services", path, [
        (6, "meter", "required for method peak"),
        (7, "customer", "a per_host service belongs to one customer"),
    ])


# --- file-level faults ---------------------------------------------------------------------------------
FILE_FAULTS = ["not-utf8", "missing-column", "empty", "header-only", "unknown-column", "blank-lines-only"]


@pytest.mark.parametrize("kind", ["partners", "customers", "services", "seat-purchases", "seat-events"])
@pytest.mark.parametrize("fault", FILE_FAULTS)
def test_a_file_level_fault_is_one_line(acme, cli, tmp_path, kind, fault):
    """billing-rules 8.1: a file-level fault (encoding, missing column, empty file, ...) is one clear line, exit 1,
    and writes nothing."""
    header = HEADERS.get(kind, "partner,customer,member,action,at")
    row = GOOD_ROWS.get(kind, ["acme,north,ann,assign,2026-04-01T09:00:00Z"])[0]
    path = tmp_path / f"{kind}.csv"
    required_first = header.split(",")[0]
    if fault == "not-utf8":  # in the header (in a row, it is a row error on its cell: tests/test_bad_input.py)
        path.write_bytes(csv_text(header.replace(",", ",\xe9", 1), row).encode("latin-1"))
        reason = "the header is not UTF-8 text (byte 0xE9)"
    elif fault == "missing-column":
        path.write_text(csv_text(header.replace(f"{required_first},", ""), row.split(",", 1)[1]))
        reason = f"missing column(s): {required_first}"
    elif fault == "empty":
        path.write_text("")
        reason = "the file is empty"
    elif fault == "header-only":
        path.write_text(header + "\n")
        reason = "a header but no data rows"
    elif fault == "blank-lines-only":
        path.write_text(header + "\n\n,,,\n")
        reason = "a header but no data rows"
    else:
        path.write_text(csv_text(header + ",colour", row + ",blue"))
        reason = "unknown column(s): colour"
    assert_file_fault(cli, kind, path, reason)


def test_not_utf8_after_the_first_batch_writes_nothing(acme, cli, tmp_path):
    """billing-rules 8.1: a byte that is not UTF-8 deep in the file (after batches were written) is a row error on its
    cell, and still writes nothing."""
    rows = [f"p{i},Partner {i},USD,0,30," for i in range(1, 600)]
    text = csv_text(PARTNERS_HEADER, *rows, "pz,Caf\xe9,USD,0,30,")
    path = tmp_path / "partners.csv"
    path.write_bytes(text.encode("latin-1"))
    assert_rejected(cli, "partners", path, [(601, "name", "not UTF-8 text (byte 0xE9): save the file as CSV UTF-8")])


def test_an_unknown_kind_is_one_line(cli, csv_file):
    """billing-rules 8.1: the kind is checked before anything is read."""
    path = csv_file("x.csv", "a,b\n1,2\n")
    assert_file_fault(cli, "invoices", path, "unknown import kind 'invoices'")


# --- idempotence ------------------------------------------------------------------------------------------
GOOD_FILES = {
    "partners": csv_text(PARTNERS_HEADER, *GOOD_ROWS["partners"]),
    "customers": csv_text(CUSTOMERS_HEADER, *GOOD_ROWS["customers"]),
    "services": csv_text(
        SERVICES_HEADER,
        *GOOD_ROWS["services"],
        "acme,north,hosting,Hosting,per_host,,15,,,no,,2026-03-10,,",
        "acme,,mail,Mail,licenses,,3,,,,10:3;inf:2.5,2026-03-01,,",
        "acme,,peak-users,Peak users,peak,users,4,,,,,2026-03-01,,",
        "acme,,floor,Floor,cmq,assets,4,5,10,,,2026-03-01,,ACME/Servers",
        "acme,,agents,Agents,per_asset,,7,,,,,2026-03-01,2026-12-31,ACME",
        "acme,south,desk,Desk,seat_days,,20,25,3,true,,2026-03-01,,",
    ),
    "seat-purchases": csv_text(PURCHASES_HEADER, *GOOD_ROWS["seat-purchases"]),
}


@pytest.mark.parametrize("kind", list(GOOD_FILES))
def test_reimporting_a_file_changes_nothing(acme, cli, csv_file, kind):
    """billing-rules 8.1, 6.11: re-importing the same file changes nothing: no row, no audit entry, and it says so."""
    path = csv_file(f"{kind}.csv", GOOD_FILES[kind])
    rows = GOOD_FILES[kind].count("\n") - 1
    first = assert_imported(cli, kind, path)
    assert f"imported {rows} rows: {rows} created, 0 updated, 0 unchanged" in first
    before = db_state()
    second = assert_imported(cli, kind, path)
    assert f"imported {rows} rows: 0 created, 0 updated, {rows} unchanged" in second
    assert db_state() == before


@pytest.mark.parametrize("kind", list(GOOD_FILES))
def test_an_exact_duplicate_row_in_a_file_is_a_no_op(acme, cli, csv_file, kind):
    """billing-rules 9.3: an exact duplicate row of the same file is a no-op (here it falls in a later batch)."""
    good = GOOD_ROWS[kind]
    path = csv_file(f"{kind}.csv", csv_text(HEADERS[kind], *good, good[0]))
    count = MODEL_OF[kind].objects.count()
    out = assert_imported(cli, kind, path)
    assert "imported 5 rows: 4 created, 0 updated, 1 unchanged" in out
    assert MODEL_OF[kind].objects.count() == count + 4


def test_reimport_updates_host_limit_and_audits_it(acme, cli, csv_file):
    """billing-rules 6.11: re-importing a customer row with the same key updates it (how a host limit changes),
    with an audit row holding the values before and after."""
    assert_imported(cli, "customers", csv_file("c1.csv", csv_text(CUSTOMERS_HEADER, "acme,west,West,,10,,")))
    west = Customer.objects.get(partner=acme, slug="west")
    out = assert_imported(cli, "customers", csv_file("c2.csv", csv_text(CUSTOMERS_HEADER, "acme,west,West,,25,,")))
    assert "imported 1 rows: 0 created, 1 updated, 0 unchanged" in out
    west.refresh_from_db()
    assert west.host_limit == 25
    audit = AuditLog.objects.get(action="customer.update")
    assert audit.object_id == str(west.pk)
    assert audit.partner == acme
    assert audit.before["host_limit"] == 10
    assert audit.after["host_limit"] == 25
    assert audit.before["name"] == audit.after["name"] == "West"


def test_reimport_leaves_columns_absent_from_the_file_alone(acme, cli, csv_file):
    """billing-rules 6.11, decision (g): an update changes the columns the file has; a column it leaves out keeps
    its value."""
    assert_imported(cli, "customers", csv_file("c1.csv", csv_text(CUSTOMERS_HEADER, "acme,west,West,4,10,14,WEST")))
    assert_imported(cli, "customers", csv_file("c2.csv", "partner,slug,name,host_limit\nacme,west,West,12\n"))
    west = Customer.objects.get(partner=acme, slug="west")
    assert (west.seat_cap, west.host_limit, west.payment_terms_days, west.rmm_organization) == (4, 12, 14, "WEST")


def test_reimport_of_a_partner_writes_one_update_audit(acme, cli, csv_file):
    """billing-rules 6.11: a partner row with the same slug updates it; an identical one does not."""
    path = csv_file("p.csv", csv_text(PARTNERS_HEADER, "acme,Acme MSP,USD,0,45,billing@acme.example"))
    out = assert_imported(cli, "partners", path)
    assert "0 created, 1 updated, 0 unchanged" in out
    acme.refresh_from_db()
    assert acme.payment_terms_days == 45
    audit = AuditLog.objects.get(action="partner.update")
    assert (audit.before["payment_terms_days"], audit.after["payment_terms_days"]) == (30, 45)


def test_reimport_of_a_service_price_updates_it(acme, cli, csv_file):
    """billing-rules 6.11: a service row with the same (partner, code) updates its price."""
    header = "partner,code,name,method,unit_price,start_date"
    assert_imported(cli, "services", csv_file("s1.csv", csv_text(header, "acme,web,Web,flat,10,2026-01-01")))
    out = assert_imported(cli, "services", csv_file("s2.csv", csv_text(header, "acme,web,Web,flat,12.5,2026-01-01")))
    assert "0 created, 1 updated, 0 unchanged" in out
    assert Service.objects.get(code="web").unit_price == Money(Decimal("12.5"), "USD")
    audit = AuditLog.objects.get(action="service.update")
    assert (audit.before["unit_price"], audit.after["unit_price"]) == ("10 USD", "12.5 USD")


def test_prices_are_read_exactly_and_reimported_unchanged(acme, cli, csv_file):
    """billing-rules 2, 8.1: a price with trailing zeros is the same price (4 places are stored), so re-importing
    it, however it is written, changes nothing."""
    header = "partner,code,name,method,unit_price,start_date"
    assert_imported(cli, "services", csv_file("s1.csv", csv_text(header, "acme,web,Web,flat,10.1235,2026-01-01")))
    before = db_state()
    path = csv_file("s2.csv", csv_text(header, "acme,web,Web,flat,10.123500,2026-01-01"))
    out = assert_imported(cli, "services", path)
    assert "0 created, 0 updated, 1 unchanged" in out
    assert db_state() == before
    assert Service.objects.get(code="web").unit_price == Money(Decimal("10.1235"), "USD")


@pytest.mark.parametrize(("column", "first", "second", "reason"), [
    ("method", "acme,,pk,Peak,peak,users,4,,,,,2026-03-01,,", "acme,,pk,Peak,cmq,users,4,,5,,,2026-03-01,,",
     "cannot change from 'peak' to 'cmq'"),
    ("meter", "acme,,pk,Peak,peak,users,4,,,,,2026-03-01,,", "acme,,pk,Peak,peak,assets,4,,,,,2026-03-01,,",
     "cannot change from 'users' to 'assets'"),
    ("rmm_filter", "acme,,agents,Agents,per_asset,,7,,,,,2026-03-01,,ACME",
     "acme,,agents,Agents,per_asset,,7,,,,,2026-03-01,,ACME/Servers",
     "cannot change from 'ACME' to 'ACME/Servers'"),
])
def test_a_service_derivation_field_cannot_change_on_reimport(acme, cli, csv_file, column, first, second, reason):
    """billing-rules 3.7, 6.11: method, meter and rmm_filter are fixed once the service is saved: a re-import
    that changes one is a row error (and writes nothing, not even the good rows before it)."""
    assert_imported(cli, "services", csv_file("s1.csv", csv_text(SERVICES_HEADER, first)))
    path = good_file(csv_file, "services", second)
    assert_rejected(cli, "services", path, [(6, column, reason)])


# --- dry run, BOM, column order, booleans, emails ----------------------------------------------------
@pytest.mark.parametrize("kind", list(GOOD_FILES))
def test_dry_run_writes_nothing_and_says_what_it_would_do(acme, cli, csv_file, kind):
    """billing-rules 8.1: --dry-run checks the whole file and writes nothing, reporting what it would import."""
    path = csv_file(f"{kind}.csv", GOOD_FILES[kind])
    rows = GOOD_FILES[kind].count("\n") - 1
    before = db_state()
    out = assert_imported(cli, kind, path, "--dry-run")
    assert f"{kind}: would import {rows} rows: {rows} created, 0 updated, 0 unchanged" in out
    assert "dry run: nothing written" in out
    assert db_state() == before


def test_dry_run_still_reports_bad_rows(acme, cli, csv_file):
    """billing-rules 8.1: a dry run of a bad file reports the same `row N` lines and exits 1."""
    path = good_file(csv_file, "customers", "ghost,c9,C9,,,,")
    before = db_state()
    result = cli("import_csv", "customers", str(path), "--dry-run")
    assert result.status == 1
    assert row_error_lines(result.err) == ["row 6: partner: unknown partner 'ghost'"]
    assert db_state() == before


def test_a_utf8_bom_is_accepted(acme, cli, tmp_path):
    """billing-rules 9.1: UTF-8 with an optional BOM; the BOM is not part of the first column's name."""
    path = tmp_path / "partners.csv"
    path.write_bytes(csv_text(PARTNERS_HEADER, "zeta,Zéta Informatique,EUR,20,30,").encode("utf-8-sig"))
    assert_imported(cli, "partners", path)
    assert Partner.objects.get(slug="zeta").name == "Zéta Informatique"


def test_columns_in_any_order(acme, cli, csv_file):
    """billing-rules 9.1: columns are found by their header, in any order (and any case)."""
    path = csv_file("services.csv", csv_text(
        "Start_Date,Unit_Price,Method,Name,Code,Customer,Partner",
        "2026-03-10,15.00,per_host,Hosting,hosting,north,acme",
    ))
    assert_imported(cli, "services", path)
    service = Service.objects.get(code="hosting")
    assert (service.partner, service.customer.slug, service.method) == (acme, "north", Method.PER_HOST)
    assert (service.start_date, service.unit_price) == (date(2026, 3, 10), Money(Decimal("15.00"), "USD"))


@pytest.mark.parametrize(("word", "value"), [
    ("true", True), ("false", False), ("yes", True), ("no", False), ("1", True), ("0", False),
    ("TRUE", True), ("No", False), ("Yes", True),
])
def test_booleans(acme, cli, csv_file, word, value):
    """billing-rules 9.2: booleans are true/false, yes/no, 1/0, in any case."""
    path = csv_file("services.csv", csv_text(
        "partner,code,name,method,unit_price,start_date,overage_enabled,taxable",
        f"acme,desk,Desk,seat_days,20,2026-03-01,{word},{word}",
    ))
    assert_imported(cli, "services", path)
    service = Service.objects.get(code="desk")
    assert (service.overage_enabled, service.taxable) == (value, value)


def test_boolean_defaults_when_blank(acme, cli, csv_file):
    """billing-rules 9.7: overage_enabled defaults to false, taxable to true."""
    path = csv_file("services.csv", csv_text(
        "partner,code,name,method,unit_price,start_date,overage_enabled,taxable",
        "acme,desk,Desk,seat_days,20,2026-03-01,,",
    ))
    assert_imported(cli, "services", path)
    service = Service.objects.get(code="desk")
    assert (service.overage_enabled, service.taxable) == (False, True)


def test_emails_separated_by_commas_or_semicolons(acme, cli, csv_file):
    """billing-rules 9.2: email lists are separated by commas or semicolons (mixed, with spaces)."""
    path = csv_file("partners.csv", csv_text(
        PARTNERS_HEADER,
        'zeta,Zeta,USD,0,30,"a@zeta.example; b@zeta.example,c@zeta.example"',
    ))
    assert_imported(cli, "partners", path)
    assert Partner.objects.get(slug="zeta").billing_contacts == ["a@zeta.example", "b@zeta.example", "c@zeta.example"]
    services = csv_file("services.csv", csv_text(
        "partner,code,name,method,unit_price,start_date,notification_emails",
        "acme,desk,Desk,seat_days,20,2026-03-01,ops@acme.example;cfo@acme.example",
    ))
    assert_imported(cli, "services", services)
    assert Service.objects.get(code="desk").notification_emails == "ops@acme.example, cfo@acme.example"


def test_optional_columns_take_their_defaults(acme, cli, csv_file):
    """billing-rules 9.7: optional columns left out take the defaults the table names."""
    assert_imported(cli, "partners", csv_file("p.csv", "slug,name\nzeta,Zeta\n"))
    zeta = Partner.objects.get(slug="zeta")
    assert (zeta.currency, zeta.tax_rate, zeta.payment_terms_days, zeta.billing_emails) == ("USD", 0, 30, "")
    assert_imported(cli, "customers", csv_file("c.csv", "partner,slug,name\nzeta,one,One\n"))
    one = Customer.objects.get(partner=zeta, slug="one")
    assert (one.seat_cap, one.host_limit, one.payment_terms_days) == (None, 0, None)
    assert_imported(cli, "services", csv_file(
        "s.csv", "partner,code,name,method,unit_price,start_date\nzeta,web,Web,flat,9,2026-01-01\n"))
    web = Service.objects.get(partner=zeta, code="web")
    assert (web.tier_mode, web.proration, web.taxable, web.overage_enabled) == (
        "volume", "day_fraction", True, False)


def test_seat_purchase_takes_effect_at_the_next_month_boundary(acme, cli, csv_file):
    """billing-rules 3.1, 6.2: a purchase takes effect on the 1st after the month it was made in (even at 00:00
    on a 1st); the instant is stored in UTC."""
    path = csv_file("p.csv", csv_text(
        PURCHASES_HEADER,
        "acme,seats,2,2026-04-01T00:00:00Z",
        "acme,seats,3,2026-04-30T23:30:00-02:00",
    ))
    assert_imported(cli, "seat-purchases", path)
    purchases = list(SeatPurchase.objects.order_by("purchased_at").values_list("seats", "purchased_at",
                                                                               "effective_date"))
    assert purchases == [
        (2, datetime(2026, 4, 1, tzinfo=UTC), date(2026, 5, 1)),
        (3, datetime(2026, 5, 1, 1, 30, tzinfo=UTC), date(2026, 6, 1)),
    ]
    assert AuditLog.objects.filter(action="seat_purchase.create").count() == 2


# --- the admin's Import button --------------------------------------------------------------------------
def test_admin_import_of_customers(acme, admin_client):
    """The admin's Import button runs the same all-or-nothing engine: a bad file shows each `row N: column:
    reason` on the page and writes nothing; a good one shows its counts and first rows, and imports once
    confirmed (a second Confirm imports nothing more)."""
    url = "/admin/partners/customer/import/"
    page = admin_client.get(url)
    assert page.status_code == 200
    assert "Check file" in page.content.decode()

    bad = csv_text(CUSTOMERS_HEADER, *GOOD_ROWS["customers"], "ghost,c9,Ghost,,,,")
    before = db_state()
    page = admin_import(admin_client, url, bad, name="customers.csv")
    job = page.context["job"]
    assert (job.status, job.errors, job.bad_rows) == ("refused", [[6, "partner", "unknown partner 'ghost'"]], 1)
    assert "row 6: partner: unknown partner &#x27;ghost&#x27;" in page.content.decode()
    assert "Confirm import" not in page.content.decode()
    assert db_state() == before

    good = csv_text(CUSTOMERS_HEADER, *GOOD_ROWS["customers"])
    page = admin_import(admin_client, url, good, name="customers.csv")
    job = page.context["job"]
    assert (job.status, job.rows, job.created) == ("checked", 4, 4)
    text = page.content.decode()
    assert "4</b> rows would be imported" in text and "Confirm import" in text
    assert [number for number, _ in page.context["preview_rows"]] == [2, 3, 4, 5]  # the first rows, numbered
    assert Customer.objects.filter(slug__startswith="c").count() == 0  # the check is a dry run
    page = admin_confirm(admin_client, page)
    assert page.context["job"].status == "imported"
    assert sorted(Customer.objects.filter(partner=acme, slug__startswith="c").values_list("slug", "host_limit")) == [
        ("c1", 1), ("c2", 2), ("c3", 3), ("c4", 4),
    ]
    assert AuditLog.objects.filter(action="customer.create").count() == 4
    again = admin_client.post(page.wsgi_request.path, {"confirm": "Confirm import"})  # a second click
    assert again.status_code == 302
    assert AuditLog.objects.filter(action="customer.create").count() == 4
