"""The worked examples of the contract, copied under tests/data, replayed end to end through the CLI:
import_csv, run_billing, export_report (invoice-lines, statements, periods). Invoice numbers,
descriptions and statuses in the expected files are illustrative: only the CI-/INV- prefix counts."""

import pytest

from partners.models import AuditLog, SeatAssignment
from tests.examples import as_multiset, expected_rows, export, replay

STATEMENT_COLUMNS = ("partner", "period", "customer", "customer_name", "seat_days", "seat_months", "active_users",
                     "peak_users", "licenses", "peak_assets")
LINE_COLUMNS = ("prefix", "kind", "issue_date", "due_date", "partner", "customer", "service", "line_type", "period",
                "quantity", "unit_price", "amount", "currency")
PERIOD_COLUMNS = ("partner", "period", "service", "actual_seat_months", "minimum_seat_months",
                  "billable_seat_months", "subtotal", "currency", "prefix")
EXAMPLES = ["seat-days-basic", "per-host-and-licenses"]


def with_prefix(rows, column="invoice_number"):
    return [{**row, "prefix": row[column].split("-")[0]} for row in rows]


def all_exports(expected_statements):
    periods = sorted({row["period"] for row in expected_statements})
    return {
        "lines": with_prefix(export("invoice-lines")),
        "statements": [row for period in periods for row in export("statements", "--period", period)],
        "periods": with_prefix(export("periods")),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("example", EXAMPLES)
def test_example_end_to_end(data_dir, example, cli):
    folder = data_dir / example
    replay(folder)
    statements = expected_rows(folder, "expected-statements.csv")
    got = all_exports(statements)
    assert as_multiset(got["lines"], LINE_COLUMNS) == as_multiset(
        with_prefix(expected_rows(folder, "expected-invoice-lines.csv")), LINE_COLUMNS)
    assert as_multiset(got["statements"], STATEMENT_COLUMNS) == as_multiset(statements, STATEMENT_COLUMNS)
    if (folder / "expected-periods.csv").exists():
        assert as_multiset(got["periods"], PERIOD_COLUMNS) == as_multiset(
            with_prefix(expected_rows(folder, "expected-periods.csv")), PERIOD_COLUMNS)
    # running the last run_billing again changes nothing
    last = [step for step in __import__("json").loads((folder / "steps.json").read_text()) if "run_billing" in step]
    again = cli("run_billing", "--through", last[-1]["run_billing"])
    assert again.status == 0 and "nothing to bill" in again.out
    assert all_exports(statements) == got


@pytest.mark.django_db
def test_seat_days_basic_reimport_changes_nothing(data_dir):
    """Re-importing every file of the example changes nothing (billing-rules 8.1: idempotent imports)."""

    folder = data_dir / "seat-days-basic"
    replay(folder, upto_billing=False)
    before = (list(SeatAssignment.objects.values_list("pk", "assigned_at", "removed_at").order_by("pk")),
              AuditLog.objects.count())
    printed = replay(folder, upto_billing=False)
    after = (list(SeatAssignment.objects.values_list("pk", "assigned_at", "removed_at").order_by("pk")),
             AuditLog.objects.count())
    assert before == after
    assert all("0 created, 0 updated" in line for line in printed), printed
