"""The worked examples of the contract, copied under tests/data, replayed end to end through the CLI."""

import pytest

from tests.examples import as_multiset, expected_rows, export, replay

STATEMENT_COLUMNS = ("partner", "period", "customer", "customer_name", "seat_days", "seat_months", "active_users",
                     "peak_users", "licenses", "peak_assets")


@pytest.mark.django_db
def test_seat_days_basic_statements_match(data_dir):
    """seat-days-basic: import_csv then export_report statements gives the expected rows, in any order.
    (Its run_billing step and invoice lines come with the invoicing work.)"""
    folder = data_dir / "seat-days-basic"
    replay(folder, upto_billing=False)
    expected = expected_rows(folder, "expected-statements.csv")
    for period in sorted({row["period"] for row in expected}):
        got = export("statements", "--period", period)
        want = [row for row in expected if row["period"] == period]
        assert as_multiset(got, STATEMENT_COLUMNS) == as_multiset(want, STATEMENT_COLUMNS), period


@pytest.mark.django_db
def test_seat_days_basic_reimport_changes_nothing(data_dir, cli):
    """Re-importing every file of the example changes nothing (RULES 5: idempotent imports)."""
    from partners.models import AuditLog, SeatAssignment

    folder = data_dir / "seat-days-basic"
    replay(folder, upto_billing=False)
    before = (list(SeatAssignment.objects.values_list("pk", "assigned_at", "removed_at").order_by("pk")),
              AuditLog.objects.count())
    printed = replay(folder, upto_billing=False)
    after = (list(SeatAssignment.objects.values_list("pk", "assigned_at", "removed_at").order_by("pk")),
             AuditLog.objects.count())
    assert before == after
    assert all("0 created, 0 updated" in line for line in printed), printed


@pytest.mark.django_db
def test_seat_days_basic_periods_amounts(data_dir):
    """The periods report prices April and May as the example says (invoice columns wait for invoices)."""
    folder = data_dir / "seat-days-basic"
    replay(folder, upto_billing=False)
    expected = expected_rows(folder, "expected-periods.csv")
    columns = ("partner", "period", "service", "actual_seat_months", "minimum_seat_months", "billable_seat_months",
               "subtotal", "currency")
    got = export("periods", "--period", "2026-04") + export("periods", "--period", "2026-05")
    assert as_multiset(got, columns) == as_multiset(expected, columns)
