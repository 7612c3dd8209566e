"""Both worked examples rate to the amounts and quantities of their expected lines (tax and due
dates come with invoices), and rating reads the database in a fixed number of queries."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money

from billing.core.periods import Period
from invoicing.rating import rate_partner_month
from partners.models import Method, Partner
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory
from tests.examples import as_multiset, expected_rows, export, replay

LINE_COLUMNS = ("kind", "issue_date", "partner", "customer", "service", "line_type", "period", "quantity",
                "unit_price", "amount", "currency")


def rated_rows(partner_slug: str, months) -> list[dict]:
    partner = Partner.objects.get(slug=partner_slug)
    rows = []
    for month in months:
        for line in rate_partner_month(partner=partner, month=Period.parse(month)):
            rows.append({
                "kind": line.document, "issue_date": line.issue_date.isoformat(), "partner": partner.slug,
                "customer": line.customer.slug if line.customer else "", "service": line.service.code,
                "line_type": line.line_type, "period": str(line.period),
                "quantity": f"{line.quantity:.4f}", "unit_price": f"{line.unit_price:.2f}",
                "amount": f"{line.amount:.2f}", "currency": partner.currency,
            })
    return rows


def expected_charge_lines(folder):
    return [row for row in expected_rows(folder, "expected-invoice-lines.csv") if row["line_type"] != "tax"]


@pytest.mark.django_db
@pytest.mark.parametrize(("example", "partner", "months"), [
    ("seat-days-basic", "brightdesk", ["2026-04", "2026-05", "2026-06"]),
    ("per-host-and-licenses", "tidewater", ["2026-03", "2026-04"]),
])
def test_examples_rate_to_their_expected_lines(data_dir, example, partner, months):
    folder = data_dir / example
    replay(folder, upto_billing=False)
    assert as_multiset(rated_rows(partner, months), LINE_COLUMNS) == as_multiset(
        expected_charge_lines(folder), LINE_COLUMNS)


@pytest.mark.django_db
def test_per_host_and_licenses_statements_match(data_dir):
    """Statements for March: peak_users ignores Millbrook's suspended days, licenses as rated (billing-rules 6.10)."""
    folder = data_dir / "per-host-and-licenses"
    replay(folder, upto_billing=False)
    columns = ("partner", "period", "customer", "customer_name", "seat_days", "seat_months", "active_users",
               "peak_users", "licenses", "peak_assets")
    assert as_multiset(export("statements", "--period", "2026-03"), columns) == as_multiset(
        expected_rows(folder, "expected-statements.csv"), columns)


def build_partner(slug: str, customers: int) -> Partner:
    """A partner with a customer-level service of every method per customer, and partner-level ones."""
    partner = PartnerFactory(slug=slug)
    price = Money(Decimal("10.00"), "USD")
    for method, meter in ((Method.SEAT_DAYS, ""), (Method.PEAK, "users"), (Method.LICENSES, ""),
                          (Method.CMQ, "assets"), (Method.PER_ASSET, ""), (Method.FLAT, "")):
        ServiceFactory(partner=partner, code=f"p-{method}", method=method, meter=meter, unit_price=price,
                       committed_quantity=2 if method == Method.CMQ else None)
    for n in range(customers):
        customer = CustomerFactory(partner=partner, slug=f"c{n}", host_limit=n % 4, rmm_organization=f"org{n}")
        for method, meter in ((Method.PER_HOST, ""), (Method.PEAK, "assets"), (Method.SEAT_DAYS, ""),
                              (Method.LICENSES, ""), (Method.PER_ASSET, "")):
            ServiceFactory(partner=partner, customer=customer, code=f"{method}-{n}", method=method, meter=meter,
                           unit_price=price)
    return partner


@pytest.mark.django_db
def test_rating_query_count_does_not_grow_with_customers():
    """The rating service reads in set-based queries: 5 or 500 customers, the same count."""
    small, large = build_partner("small", 5), build_partner("large", 500)
    counts = []
    for partner in (small, large):
        with CaptureQueriesContext(connection) as captured:
            lines = rate_partner_month(partner=partner, month=Period(2026, 4))
        assert lines
        counts.append(len(captured))
    assert counts[0] == counts[1] <= 12, counts
