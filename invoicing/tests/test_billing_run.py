"""The billing run (billing-rules 4, 8.2, 6.3-6.6): `run_billing` and `invoicing.services.billing_run` end to end.

What is pinned here: invoices are issued in date order, one CI per month that has lines and none for
a month without; billing again (or through a later date) never charges anything twice; `--partner`
narrows; `--draft` builds numberless drafts that are regenerated and then replaced by an issued run;
a CI's children and due dates; the one tax line per invoice; per_asset prorations posted exactly
once; issued invoices cannot change; the invoice email leaves once, after commit.

Months used: March 2026 (31 days), April (30), May (31), June (30), July (31). Every amount is
worked out by hand in the test's docstring.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core import mail
from django.db import transaction
from djmoney.money import Money

from billing.core.actor import Actor
from invoicing.models import (
    ChildInvoice,
    Invoice,
    InvoiceLine,
    InvoiceSequence,
    InvoiceState,
    IssuedInvoiceError,
    LineType,
    OneTimeCharge,
    PaymentStatus,
)
from invoicing.services import billing_run, invoice_email_send, invoice_issue_draft
from invoicing.tasks import refresh_payment_statuses_task
from metering.services import AgentRow, inventory_apply
from metering.tests.factories import UsageSnapshotFactory
from partners.models import Customer, Method, Partner, Service
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory

pytestmark = pytest.mark.django_db

D = Decimal
ACTOR = Actor(label="test")


# --- helpers -------------------------------------------------------------------------------------

def service(partner: Partner, code: str, method: str, price: str, **fields) -> Service:
    """A service of the partner at `price` per unit per month; from 1 March 2026 unless told."""
    fields.setdefault("start_date", date(2026, 3, 1))
    return ServiceFactory(partner=partner, code=code, name=code.title(), method=method,
                          unit_price=Money(D(price), partner.currency), **fields)


def charge(partner: Partner, description: str, quantity: str, price: str, day: str, customer: Customer | None = None,
           taxable: bool = True) -> OneTimeCharge:
    return OneTimeCharge.objects.create(partner=partner, customer=customer, description=description,
                                        quantity=D(quantity), unit_price=D(price), date=date.fromisoformat(day),
                                        taxable=taxable)


def bill(cli, through: str, *extra: str) -> list[list[str]]:
    """Run `run_billing --through THROUGH [EXTRA]`; return the words of each invoice line it printed."""
    result = cli("run_billing", "--through", through, *extra)
    assert result.status == 0, result.err
    printed = result.out.strip().splitlines()
    assert printed, "run_billing prints a summary line"
    return [line.split() for line in printed[:-1]]


def summary(cli, through: str, *extra: str) -> str:
    result = cli("run_billing", "--through", through, *extra)
    assert result.status == 0, result.err
    return result.out.strip().splitlines()[-1]


def documents(partner: Partner | None = None, state: str = InvoiceState.ISSUED):
    invoices = Invoice.objects.filter(state=state).order_by("pk")
    return invoices.filter(partner=partner) if partner else invoices


def listing(partner: Partner | None = None) -> list[tuple]:
    """(number, kind, issue date, due date, total) of the issued invoices, in the order they were written."""
    return [(i.number, i.kind, i.issue_date.isoformat(), i.due_date.isoformat(), i.total)
            for i in documents(partner)]


def line_rows(invoice: Invoice) -> list[tuple]:
    """(service or description, customer, type, period, quantity, amount) of an invoice's lines, sorted."""
    rows = []
    for line in invoice.lines.select_related("service", "customer"):
        rows.append((line.service.code if line.service_id else line.description,
                     line.customer.slug if line.customer_id else None, line.line_type, line.period,
                     None if line.quantity is None else line.quantity.normalize(), line.amount))
    return sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r))


def ci(partner: Partner, month: str) -> Invoice:
    return Invoice.objects.get(partner=partner, kind="CI", month=month, state=InvoiceState.ISSUED)


def places(spec: dict[str, int]) -> dict[str, AgentRow]:
    """{"ORG": n} -> n agents there with stable ids (lowering n drops the last ones)."""
    agents = {}
    for org, count in spec.items():
        for n in range(count):
            agent_id = f"{org}-{n}"
            agents[agent_id] = AgentRow(agent_id=agent_id, machine_name=agent_id.lower(), organization=org, group="")
    return agents


def inventory(partner: Partner, as_of: str, spec: dict[str, int]) -> None:
    inventory_apply(partner=partner, as_of=date.fromisoformat(as_of), agents=places(spec), actor=ACTOR)


# --- run_billing: order, months without lines, idempotency ----------------------------------------

@pytest.fixture
def tidewater():
    """Tidewater (USD, 0% tax, 30 days); Harbourside pays in 15 days and has 4 hosts.
    support: flat 100.00, partner-level, 1 March - 30 April; backup: flat 40.00 from 1 June;
    hosting: per_host 15.00 for Harbourside, 10 - 30 April (a first month only);
    one-time: 2 firewalls at 250.00 for Harbourside on 15 March, onboarding 80.00 on 1 June."""
    partner = PartnerFactory(slug="tidewater", payment_terms_days=30)
    harbourside = CustomerFactory(partner=partner, slug="harbourside", host_limit=4, payment_terms_days=15)
    service(partner, "support", Method.FLAT, "100.00", end_date=date(2026, 4, 30))
    service(partner, "backup", Method.FLAT, "40.00", start_date=date(2026, 6, 1))
    service(partner, "hosting", Method.PER_HOST, "15.00", customer=harbourside, start_date=date(2026, 4, 10),
            end_date=date(2026, 4, 30))
    charge(partner, "Firewall", "2", "250.00", "2026-03-15", customer=harbourside)
    charge(partner, "Onboarding", "1", "80.00", "2026-06-01")
    return partner


def test_run_billing_issues_in_date_order_and_no_ci_for_a_month_without_lines(cli, tidewater):
    """Through 15 June, in date order (a CI before the INVs of its day):
    CI-0001 1 March: support 100.00, due +30 = 31 March;
    INV-0001 15 March: 2 x 250.00 = 500.00 for Harbourside, due +15 = 30 March;
    CI-0002 1 April: support 100.00, due 1 May;
    INV-0002 10 April: hosting first month 4 x 15.00 = 60.00 x 21/30 = 42.00, due +15 = 25 April;
    May: support ended 30 April, hosting too, backup starts in June: no line, so no CI;
    CI-0003 1 June: backup 40.00, due 1 July; INV-0003 1 June: onboarding 80.00 (partner: +30), due 1 July."""
    printed = bill(cli, "2026-06-15")

    expected = [
        ("CI-0001", "CI", "2026-03-01", "2026-03-31", D("100.00")),
        ("INV-0001", "INV", "2026-03-15", "2026-03-30", D("500.00")),
        ("CI-0002", "CI", "2026-04-01", "2026-05-01", D("100.00")),
        ("INV-0002", "INV", "2026-04-10", "2026-04-25", D("42.00")),
        ("CI-0003", "CI", "2026-06-01", "2026-07-01", D("40.00")),
        ("INV-0003", "INV", "2026-06-01", "2026-07-01", D("80.00")),
    ]
    assert listing(tidewater) == expected
    assert [(w[0], w[1], w[2], w[3], w[5], D(w[7]), w[8]) for w in printed] == [
        (n, k, "tidewater", issued, due, total, "USD") for n, k, issued, due, total in expected]
    assert not Invoice.objects.filter(month="2026-05").exists()
    assert [i.month for i in documents(tidewater).filter(kind="CI")] == ["2026-03", "2026-04", "2026-06"]
    assert line_rows(Invoice.objects.get(number="INV-0002")) == [
        ("hosting", "harbourside", "first_month", "2026-04", D("4"), D("42.00"))]
    assert line_rows(Invoice.objects.get(number="INV-0001")) == [
        ("Firewall", "harbourside", "one_time", "2026-03", D("2"), D("500.00"))]
    assert all(i.issued_at and i.emailed_at is None for i in documents(tidewater))  # emails leave on commit


def test_run_billing_twice_and_through_a_later_date_never_bills_a_charge_twice(cli, tidewater):
    """Through 15 June: 6 invoices (see above). The same run again: "nothing to bill". Through
    15 July: only CI-0004 of 1 July (backup 40.00); the firewalls, the onboarding, the hosting first
    month and each month's support are still billed once."""
    bill(cli, "2026-06-15")
    before = listing(tidewater)
    lines_before = InvoiceLine.objects.count()

    assert summary(cli, "2026-06-15") == "nothing to bill"
    assert summary(cli, "2026-06-01") == "nothing to bill"
    assert listing(tidewater) == before
    assert InvoiceLine.objects.count() == lines_before

    printed = bill(cli, "2026-07-15")
    assert [(w[0], w[3], D(w[7])) for w in printed] == [("CI-0004", "2026-07-01", D("40.00"))]
    assert listing(tidewater) == [*before, ("CI-0004", "CI", "2026-07-01", "2026-07-31", D("40.00"))]
    assert summary(cli, "2026-07-31") == "nothing to bill"

    lines = InvoiceLine.objects.filter(invoice__partner=tidewater)
    assert lines.filter(line_type=LineType.ONE_TIME).count() == 2
    assert lines.filter(line_type=LineType.FIRST_MONTH).count() == 1
    assert sorted(lines.filter(service__code="support").values_list("period", flat=True)) == ["2026-03", "2026-04"]
    assert sorted(lines.filter(service__code="backup").values_list("period", flat=True)) == ["2026-06", "2026-07"]
    assert InvoiceSequence.objects.get(prefix="CI").last == 4
    assert InvoiceSequence.objects.get(prefix="INV").last == 3


def test_a_one_time_charge_added_later_is_billed_once_on_its_own_inv(cli, tidewater):
    """After billing through 15 June, a 12.50 cable dated 5 June is added: the next run (through
    15 June again) issues INV-0004 dated 5 June for 12.50 and nothing else; a third run nothing."""
    bill(cli, "2026-06-15")
    charge(tidewater, "Cable", "1", "12.50", "2026-06-05")
    printed = bill(cli, "2026-06-15")
    assert [(w[0], w[3], D(w[7])) for w in printed] == [("INV-0004", "2026-06-05", D("12.50"))]
    assert summary(cli, "2026-06-15") == "nothing to bill"


def test_run_billing_partner_narrows_and_an_unknown_partner_is_one_clear_error(cli):
    """Two partners with a flat 10.00 from 1 March. `--partner alpha` through 1 April: alpha's March
    and April CIs (CI-0001, CI-0002), nothing for beta. Then every partner: beta's two (CI-0003,
    CI-0004) and nothing again for alpha. An unknown slug: exit 1 and nothing written."""
    alpha, beta = PartnerFactory(slug="alpha"), PartnerFactory(slug="beta")
    service(alpha, "flat", Method.FLAT, "10.00")
    service(beta, "flat", Method.FLAT, "10.00")

    printed = bill(cli, "2026-04-01", "--partner", "alpha")
    assert [(w[0], w[2]) for w in printed] == [("CI-0001", "alpha"), ("CI-0002", "alpha")]
    assert not Invoice.objects.filter(partner=beta).exists()

    printed = bill(cli, "2026-04-01")
    assert [(w[0], w[2], w[3]) for w in printed] == [("CI-0003", "beta", "2026-03-01"),
                                                     ("CI-0004", "beta", "2026-04-01")]
    assert [i.number for i in documents(alpha)] == ["CI-0001", "CI-0002"]

    result = cli("run_billing", "--through", "2026-05-01", "--partner", "nobody")
    assert result.status == 1
    assert "unknown partner 'nobody'" in result.err
    assert Invoice.objects.count() == 4


def test_run_billing_draft_builds_numberless_drafts_regenerates_them_and_an_issued_run_replaces_them(cli):
    """Flat 100.00 from 1 March and a 30.00 adapter on 15 March. `--draft` through 1 April: three
    drafts (CI 1 March 100.00, INV 15 March 30.00, CI 1 April 100.00), no numbers, no number taken.
    A 5.00 cable on 20 March, then `--draft` again: four drafts, the first three gone (new rows).
    Then an issued run: CI-0001, INV-0001, INV-0002, CI-0002 in date order, no draft left, no gap."""
    partner = PartnerFactory(slug="drafty")
    service(partner, "flat", Method.FLAT, "100.00")
    charge(partner, "Adapter", "1", "30.00", "2026-03-15")
    sequences = dict(InvoiceSequence.objects.values_list("prefix", "last"))

    printed = bill(cli, "2026-04-01", "--draft")
    assert [(w[0], w[1], w[3], D(w[7])) for w in printed] == [
        ("draft", "CI", "2026-03-01", D("100.00")), ("draft", "INV", "2026-03-15", D("30.00")),
        ("draft", "CI", "2026-04-01", D("100.00"))]
    assert summary(cli, "2026-04-01", "--draft") == "3 invoice(s) drafted"
    first = list(documents(partner, InvoiceState.DRAFT))
    assert len(first) == 3 and all(d.number is None and d.issued_at is None for d in first)
    assert not documents(partner).exists()
    assert dict(InvoiceSequence.objects.values_list("prefix", "last")) == sequences

    charge(partner, "Cable", "1", "5.00", "2026-03-20")
    assert summary(cli, "2026-04-01", "--draft") == "4 invoice(s) drafted"
    second = list(documents(partner, InvoiceState.DRAFT))
    assert [(d.kind, d.issue_date.isoformat(), d.total) for d in second] == [
        ("CI", "2026-03-01", D("100.00")), ("INV", "2026-03-15", D("30.00")), ("INV", "2026-03-20", D("5.00")),
        ("CI", "2026-04-01", D("100.00"))]
    assert not Invoice.objects.filter(pk__in=[d.pk for d in first]).exists()
    assert not InvoiceLine.objects.filter(invoice_id__in=[d.pk for d in first]).exists()

    printed = bill(cli, "2026-04-01")
    assert [w[0] for w in printed] == ["CI-0001", "INV-0001", "INV-0002", "CI-0002"]
    assert not documents(partner, InvoiceState.DRAFT).exists()
    assert not Invoice.objects.filter(pk__in=[d.pk for d in second]).exists()
    assert [(i.number, i.total) for i in documents(partner)] == [
        ("CI-0001", D("100.00")), ("INV-0001", D("30.00")), ("INV-0002", D("5.00")), ("CI-0002", D("100.00"))]
    # after an issued run, a draft run only drafts what is not issued yet
    assert summary(cli, "2026-04-01", "--draft") == "nothing to bill"
    printed = bill(cli, "2026-05-01", "--draft")
    assert [(w[0], w[3]) for w in printed] == [("draft", "2026-05-01")]


# --- children and due dates (billing-rules 4.1, 6.4) ----------------------------------------------------------

def test_ci_children_per_customer_plus_partner_services_and_due_date_is_the_earliest_child():
    """Partner terms 30. Customers: Alpha 15 days, Beta 45, Gamma blank (-> 30), Delta 5 days (only a
    0.00 flat: a zero line, so no child), Epsilon 7 days (only in the partner-level licenses breakdown,
    so no child of its own). Services from 1 April.
    May CI (1 May): Alpha flat 100.00 -> child due 16 May; Beta flat 200.00 -> 15 June; Gamma per_host
    3 x 10.00 = 30.00 -> 31 May; partner child: platform flat 50.00 + April licenses at 2.00 for Alpha
    (4 users: 8.00) and Epsilon (6 users: 12.00) = 70.00 -> 31 May.
    CI due date = the earliest child = 16 May (not Delta's or Epsilon's +5/+7). Total 400.00."""
    partner = PartnerFactory(slug="kids", payment_terms_days=30)
    alpha = CustomerFactory(partner=partner, slug="alpha", name="Alpha", payment_terms_days=15)
    beta = CustomerFactory(partner=partner, slug="beta", name="Beta", payment_terms_days=45)
    gamma = CustomerFactory(partner=partner, slug="gamma", name="Gamma", host_limit=3)
    delta = CustomerFactory(partner=partner, slug="delta", name="Delta", payment_terms_days=5)
    epsilon = CustomerFactory(partner=partner, slug="epsilon", name="Epsilon", payment_terms_days=7)
    april = {"start_date": date(2026, 4, 1)}
    service(partner, "alpha-flat", Method.FLAT, "100.00", customer=alpha, **april)
    service(partner, "beta-flat", Method.FLAT, "200.00", customer=beta, **april)
    service(partner, "gamma-hosts", Method.PER_HOST, "10.00", customer=gamma, **april)
    service(partner, "delta-free", Method.FLAT, "0.00", customer=delta, **april)
    service(partner, "platform", Method.FLAT, "50.00", **april)
    service(partner, "licenses", Method.LICENSES, "2.00", **april)
    UsageSnapshotFactory(customer=alpha, date=date(2026, 4, 1), users_count=4)
    UsageSnapshotFactory(customer=epsilon, date=date(2026, 4, 1), users_count=6)

    billing_run(through=date(2026, 5, 1), partner_slug="kids", actor=ACTOR)

    may = ci(partner, "2026-05")
    children = {(c.customer.slug if c.customer_id else None): (c.subtotal, c.due_date.isoformat())
                for c in may.children.all()}
    assert children == {
        "alpha": (D("100.00"), "2026-05-16"),
        "beta": (D("200.00"), "2026-06-15"),
        "gamma": (D("30.00"), "2026-05-31"),
        None: (D("70.00"), "2026-05-31"),
    }
    assert may.due_date == date(2026, 5, 16)
    assert may.total == D("400.00")
    by_child = sorted(((line.child.customer.slug if line.child.customer_id else None, line.service.code,
                        line.customer.slug if line.customer_id else None, line.amount)
                       for line in may.lines.exclude(line_type=LineType.TAX).select_related("child__customer")),
                      key=str)
    assert by_child == sorted([
        ("alpha", "alpha-flat", "alpha", D("100.00")),
        ("beta", "beta-flat", "beta", D("200.00")),
        ("gamma", "gamma-hosts", "gamma", D("30.00")),
        (None, "licenses", "alpha", D("8.00")),
        (None, "licenses", "epsilon", D("12.00")),
        (None, "platform", None, D("50.00")),
    ], key=str)
    assert not may.lines.filter(service__code="delta-free").exists()
    # April's CI has no licenses yet (they bill April's usage in May): the same children but the
    # partner's holds the platform alone; due 16 April
    april_ci = ci(partner, "2026-04")
    assert april_ci.due_date == date(2026, 4, 16)
    assert sorted(c.subtotal for c in april_ci.children.all()) == [D("30.00"), D("50.00"), D("100.00"), D("200.00")]


def test_ci_due_date_is_the_partners_terms_when_its_child_is_earliest():
    """Partner terms 30, the only customer pays in 45 days: children due 1 April + 45 = 16 May and
    (partner-level flat, April only) 1 April + 30 = 1 May; the April CI is due 1 May. The May CI has
    the customer's child alone: due 1 May + 45 = 15 June."""
    partner = PartnerFactory(slug="slowpay", payment_terms_days=30)
    slow = CustomerFactory(partner=partner, slug="slow", payment_terms_days=45)
    service(partner, "own", Method.FLAT, "10.00", customer=slow, start_date=date(2026, 4, 1))
    service(partner, "platform", Method.FLAT, "5.00", start_date=date(2026, 4, 1), end_date=date(2026, 4, 30))

    billing_run(through=date(2026, 5, 1), actor=ACTOR)

    assert ci(partner, "2026-04").due_date == date(2026, 5, 1)
    assert ci(partner, "2026-05").due_date == date(2026, 6, 15)
    assert [c.customer_id for c in ci(partner, "2026-05").children.all()] == [slow.pk]


# --- tax (billing-rules 2, 4.3, 6.3) ---------------------------------------------------------------------------

def test_tax_is_one_line_on_the_sum_of_taxable_lines_rounded_half_up_once_per_invoice():
    """Tax 5%. April CI: two taxable flats of 12.25 and a non-taxable support of 100.00.
    Tax = 5% of (12.25 + 12.25 = 24.50) = 1.225 -> 1.23 half-up, once for the invoice. Per line it
    would be 0.6125 -> 0.61 twice = 1.22; half-even would give 1.22 too; the support would add 5.00.
    Subtotal 124.50, total 125.73. A non-taxable 300.00 one-time charge on 2 April: its INV carries
    a 0.00 tax line (the rate is above 0), total 300.00."""
    partner = PartnerFactory(slug="taxed", tax_rate=D("5"))
    service(partner, "a", Method.FLAT, "12.25", start_date=date(2026, 4, 1))
    service(partner, "b", Method.FLAT, "12.25", start_date=date(2026, 4, 1))
    service(partner, "support", Method.FLAT, "100.00", start_date=date(2026, 4, 1), taxable=False)
    charge(partner, "Consulting", "1", "300.00", "2026-04-02", taxable=False)

    billing_run(through=date(2026, 4, 2), actor=ACTOR)

    april = ci(partner, "2026-04")
    taxes = list(april.lines.filter(line_type=LineType.TAX))
    assert [(t.amount, t.taxable, t.child_id) for t in taxes] == [(D("1.23"), False, None)]
    assert (april.subtotal, april.tax_amount, april.total) == (D("124.50"), D("1.23"), D("125.73"))
    assert april.lines.count() == 4

    inv = documents(partner).get(kind="INV")
    assert [(line.line_type, line.amount) for line in inv.lines.order_by("position")] == [
        ("one_time", D("300.00")), ("tax", D("0.00"))]
    assert (inv.tax_amount, inv.total) == (D("0.00"), D("300.00"))


def test_no_tax_line_at_a_zero_rate():
    """Tax 0%: the April CI is the 12.25 flat alone, subtotal = total = 12.25, no tax line."""
    partner = PartnerFactory(slug="untaxed", tax_rate=D("0"))
    service(partner, "a", Method.FLAT, "12.25", start_date=date(2026, 4, 1))

    billing_run(through=date(2026, 4, 1), actor=ACTOR)

    april = ci(partner, "2026-04")
    assert not april.lines.filter(line_type=LineType.TAX).exists()
    assert [(line.line_type, line.amount) for line in april.lines.all()] == [("recurring", D("12.25"))]
    assert (april.tax_amount, april.total) == (D("0"), D("12.25"))


def test_one_tax_line_covers_every_child_of_a_ci():
    """Tax 10%, two customers with a flat 0.05 each and a partner-level 0.05: three children,
    one tax line of 10% x 0.15 = 0.015 -> 0.02 (per child: 0.005 -> 0.01 each = 0.03)."""
    partner = PartnerFactory(slug="tenpc", tax_rate=D("10"))
    for slug in ("one", "two"):
        service(partner, f"{slug}-flat", Method.FLAT, "0.05", customer=CustomerFactory(partner=partner, slug=slug),
                start_date=date(2026, 4, 1))
    service(partner, "platform", Method.FLAT, "0.05", start_date=date(2026, 4, 1))

    billing_run(through=date(2026, 4, 1), actor=ACTOR)

    april = ci(partner, "2026-04")
    assert april.children.count() == 3
    assert list(april.lines.filter(line_type=LineType.TAX).values_list("amount", flat=True)) == [D("0.02")]
    assert april.total == D("0.17")


# --- per_asset prorations through the run (billing-rules 3.7, 6.6) ---------------------------------------------

def per_asset_partner(slug: str = "rmm") -> Partner:
    """Acme (organization ACME), agents: per_asset 10.00 for Acme, from 1 March."""
    partner = PartnerFactory(slug=slug)
    acme = CustomerFactory(partner=partner, slug="acme", rmm_organization="ACME")
    service(partner, "agents", Method.PER_ASSET, "10.00", customer=acme, rmm_filter="ACME")
    return partner


def asset_lines(partner: Partner) -> list[tuple]:
    """(CI month, line type, period, quantity, effective date, amount) of every issued line."""
    rows = InvoiceLine.objects.filter(invoice__partner=partner, invoice__state=InvoiceState.ISSUED).values_list(
        "invoice__month", "line_type", "period", "quantity", "effective_date", "amount")
    return sorted((m, t, p, q.normalize(), e.isoformat() if e else None, a) for m, t, p, q, e, a in rows)


# March 50.00, April 50.00 (5 on the 1st); May: 6 on 1 May = 60.00, April +3 from the 10th:
# 3 x 10.00 x 21/30 = 21.00, April -2 from the 25th: -2 x 10.00 x 6/30 = -4.00; June: 60.00.
MARCH_TO_JUNE = [
    ("2026-03", "recurring", "2026-03", D("5"), None, D("50.00")),
    ("2026-04", "recurring", "2026-04", D("5"), None, D("50.00")),
    ("2026-05", "proration", "2026-04", D("-2"), "2026-04-25", D("-4.00")),
    ("2026-05", "proration", "2026-04", D("3"), "2026-04-10", D("21.00")),
    ("2026-05", "recurring", "2026-05", D("6"), None, D("60.00")),
    ("2026-06", "recurring", "2026-06", D("6"), None, D("60.00")),
]


def test_per_asset_changes_in_an_invoiced_month_post_once_billing_one_month_at_a_time(cli):
    """Inventories: 20 Feb ACME 5 (and BETA 2, not Acme's). Billed through 1 March, then 1 April;
    then (April already invoiced) ACME 8 as of 10 April; a run through 30 April posts nothing (no CI
    is due); ACME 6 as of 25 April; through 1 May: the May CI = 60.00 + 21.00 - 4.00 = 77.00
    (see MARCH_TO_JUNE); through 1 June: 60.00 only; again: nothing."""
    partner = per_asset_partner()
    inventory(partner, "2026-02-20", {"ACME": 5, "BETA": 2})
    bill(cli, "2026-03-01")
    bill(cli, "2026-04-01")
    inventory(partner, "2026-04-10", {"ACME": 8, "BETA": 2})
    assert summary(cli, "2026-04-30") == "nothing to bill"
    inventory(partner, "2026-04-25", {"ACME": 6, "BETA": 2})
    bill(cli, "2026-05-01")
    assert ci(partner, "2026-05").total == D("77.00")
    bill(cli, "2026-06-01")
    assert summary(cli, "2026-06-01") == "nothing to bill"

    assert asset_lines(partner) == MARCH_TO_JUNE


def test_per_asset_changes_post_once_in_one_run_through_several_months(cli):
    """The same inventories known up front, billed in one run through 1 June: the same lines, each
    April change once, on the first CI after April (May), none again on June's."""
    partner = per_asset_partner()
    inventory(partner, "2026-02-20", {"ACME": 5, "BETA": 2})
    inventory(partner, "2026-04-10", {"ACME": 8, "BETA": 2})
    inventory(partner, "2026-04-25", {"ACME": 6, "BETA": 2})

    printed = bill(cli, "2026-06-01")

    assert [(w[0], w[3], D(w[7])) for w in printed] == [
        ("CI-0001", "2026-03-01", D("50.00")), ("CI-0002", "2026-04-01", D("50.00")),
        ("CI-0003", "2026-05-01", D("77.00")), ("CI-0004", "2026-06-01", D("60.00"))]
    assert asset_lines(partner) == MARCH_TO_JUNE
    bill(cli, "2026-07-01")
    assert [row for row in asset_lines(partner) if row[0] == "2026-07"] == [
        ("2026-07", "recurring", "2026-07", D("6"), None, D("60.00"))]


def test_per_asset_late_change_for_a_billed_month_posts_once_on_the_next_ci(cli):
    """20 Feb ACME 5, 10 April ACME 8; billed through 1 May: May CI 8 x 10.00 = 80.00 and April +3
    from the 10th = 21.00. Then an inventory as of 25 April (ACME 6) arrives late. Through 31 May:
    nothing (May is issued). Through 1 June: June 6 x 10.00 = 60.00; April -2 from the 25th:
    -2 x 10.00 x 6/30 = -4.00; May was billed at 8 but 6 were in force on 1 May: -2 x 10.00 x 31/31
    = -20.00 (effective 1 May); total 36.00. Through 1 July: 60.00 only."""
    partner = per_asset_partner()
    inventory(partner, "2026-02-20", {"ACME": 5})
    inventory(partner, "2026-04-10", {"ACME": 8})
    bill(cli, "2026-05-01")
    assert [row for row in asset_lines(partner) if row[0] == "2026-05"] == [
        ("2026-05", "proration", "2026-04", D("3"), "2026-04-10", D("21.00")),
        ("2026-05", "recurring", "2026-05", D("8"), None, D("80.00")),
    ]
    inventory(partner, "2026-04-25", {"ACME": 6})
    assert summary(cli, "2026-05-31") == "nothing to bill"
    bill(cli, "2026-06-01")
    bill(cli, "2026-07-01")

    later = [row for row in asset_lines(partner) if row[0] >= "2026-06"]
    assert later == [
        ("2026-06", "proration", "2026-04", D("-2"), "2026-04-25", D("-4.00")),
        ("2026-06", "proration", "2026-05", D("-2"), "2026-05-01", D("-20.00")),
        ("2026-06", "recurring", "2026-06", D("6"), None, D("60.00")),
        ("2026-07", "recurring", "2026-07", D("6"), None, D("60.00")),
    ]
    assert ci(partner, "2026-06").total == D("36.00")


def test_per_asset_change_on_a_first_used_by_the_normal_line_posts_nothing(cli):
    """20 Feb ACME 5; billed through 1 April (50.00 each); then ACME 9 as of 1 May (before May is
    billed). May CI: 9 x 10.00 = 90.00 and no April proration (April had 5 all month); June: 90.00;
    no proration line anywhere."""
    partner = per_asset_partner()
    inventory(partner, "2026-02-20", {"ACME": 5})
    bill(cli, "2026-04-01")
    inventory(partner, "2026-05-01", {"ACME": 9})
    bill(cli, "2026-06-01")

    assert asset_lines(partner) == [
        ("2026-03", "recurring", "2026-03", D("5"), None, D("50.00")),
        ("2026-04", "recurring", "2026-04", D("5"), None, D("50.00")),
        ("2026-05", "recurring", "2026-05", D("9"), None, D("90.00")),
        ("2026-06", "recurring", "2026-06", D("9"), None, D("90.00")),
    ]


def test_per_asset_first_month_then_a_later_change_posts_once(cli):
    """A per_asset service of 10.00 from 10 April; 20 March ACME 5, 10 April ACME 7, 20 April ACME 9.
    INV 10 April: 7 units (in force on the start date) x 10.00 x 21/30 = 49.00; the change on the start
    date posts nothing. May CI: 9 x 10.00 = 90.00 + 2 x 10.00 x 11/30 = 7.333... -> 7.33 (from 20 April).
    June CI: 90.00 only."""
    partner = PartnerFactory(slug="rmm2")
    service(partner, "late", Method.PER_ASSET, "10.00", rmm_filter="ACME", start_date=date(2026, 4, 10))
    inventory(partner, "2026-03-20", {"ACME": 5})
    inventory(partner, "2026-04-10", {"ACME": 7})
    inventory(partner, "2026-04-20", {"ACME": 9})
    bill(cli, "2026-05-01")
    bill(cli, "2026-06-01")

    assert asset_lines(partner) == [
        ("", "first_month", "2026-04", D("7"), "2026-04-10", D("49.00")),
        ("2026-05", "proration", "2026-04", D("2"), "2026-04-20", D("7.33")),
        ("2026-05", "recurring", "2026-05", D("9"), None, D("90.00")),
        ("2026-06", "recurring", "2026-06", D("9"), None, D("90.00")),
    ]


# --- issued invoices are immutable (billing-rules 4.4) ---------------------------------------------------------

@pytest.fixture
def issued_ci():
    """A CI of 1 April: flat 100.00, tax 10% = 10.00, total 110.00."""
    partner = PartnerFactory(slug="frozen", tax_rate=D("10"))
    service(partner, "flat", Method.FLAT, "100.00", start_date=date(2026, 4, 1))
    billing_run(through=date(2026, 4, 1), actor=ACTOR)
    return ci(partner, "2026-04")


def test_an_issued_invoice_cannot_be_saved_updated_or_deleted(issued_ci):
    invoice = Invoice.objects.get(pk=issued_ci.pk)
    invoice.total = D("1.00")
    with pytest.raises(IssuedInvoiceError):
        invoice.save()
    with pytest.raises(IssuedInvoiceError):
        invoice.save(update_fields=["total", "payment_status"])
    with pytest.raises(IssuedInvoiceError):
        Invoice.objects.filter(pk=invoice.pk).update(total=D("1.00"))
    with pytest.raises(IssuedInvoiceError):
        Invoice.objects.filter(partner=invoice.partner).update(due_date=date(2030, 1, 1))
    with pytest.raises(IssuedInvoiceError):
        invoice.delete()
    with pytest.raises(IssuedInvoiceError):
        Invoice.objects.filter(pk=invoice.pk).delete()

    stored = Invoice.objects.get(pk=invoice.pk)
    assert (stored.total, stored.due_date, stored.number) == (D("110.00"), date(2026, 5, 1), "CI-0001")
    assert stored.lines.count() == 2


def test_a_stale_copy_of_an_invoice_issued_since_cannot_delete_it(issued_ci):
    """A draft loaded before it was issued (as the admin's "issue drafts" does with its own copy)
    must not delete or overwrite the issued invoice: the guard reads the stored state."""
    partner = issued_ci.partner
    billing_run(through=date(2026, 5, 1), draft=True, actor=ACTOR)
    stale = Invoice.objects.get(partner=partner, state=InvoiceState.DRAFT)
    issued = invoice_issue_draft(invoice=stale, actor=ACTOR)
    assert issued.number == "CI-0002" and stale.state == InvoiceState.DRAFT  # the caller's copy is stale

    with pytest.raises(IssuedInvoiceError):
        stale.delete()
    with pytest.raises(IssuedInvoiceError):
        stale.save()
    assert Invoice.objects.get(pk=stale.pk).number == "CI-0002"
    assert Invoice.objects.get(pk=stale.pk).lines.count() == 2


def test_lines_of_an_issued_invoice_cannot_change_or_be_deleted(issued_ci):
    line = issued_ci.lines.get(line_type=LineType.RECURRING)
    line.amount = D("1.00")
    with pytest.raises(IssuedInvoiceError):
        line.save()
    with pytest.raises(IssuedInvoiceError):
        line.delete()
    with pytest.raises(IssuedInvoiceError):
        InvoiceLine.objects.filter(pk=line.pk).update(amount=D("1.00"))
    with pytest.raises(IssuedInvoiceError):
        InvoiceLine.objects.filter(invoice=issued_ci).delete()
    with pytest.raises(IssuedInvoiceError):
        InvoiceLine.objects.create(invoice=issued_ci, line_type=LineType.ONE_TIME, period="2026-04",
                                   amount=D("5.00"), description="sneaked in")
    assert sorted(issued_ci.lines.values_list("amount", flat=True)) == [D("10.00"), D("100.00")]


def test_the_children_of_an_issued_ci_cannot_change_or_be_deleted(issued_ci):
    """A child carries lines (deleting it would delete them) and its own due date."""
    child = issued_ci.children.get()
    child.due_date = date(2030, 1, 1)
    with pytest.raises(IssuedInvoiceError):
        child.save()
    with pytest.raises(IssuedInvoiceError):
        child.delete()
    with pytest.raises(IssuedInvoiceError):
        ChildInvoice.objects.filter(invoice=issued_ci).update(subtotal=D("0"))
    with pytest.raises(IssuedInvoiceError):
        ChildInvoice.objects.filter(invoice=issued_ci).delete()
    assert issued_ci.children.get().due_date == date(2026, 5, 1)
    assert issued_ci.lines.count() == 2


def test_the_payment_status_and_file_fields_of_an_issued_invoice_still_change(issued_ci):
    invoice = Invoice.objects.get(pk=issued_ci.pk)
    invoice.payment_status = PaymentStatus.OVERDUE
    invoice.save(update_fields=["payment_status"])
    assert Invoice.objects.get(pk=invoice.pk).payment_status == PaymentStatus.OVERDUE
    Invoice.objects.filter(pk=invoice.pk).update(payment_status=PaymentStatus.PAID, pdf_version=2)
    stored = Invoice.objects.get(pk=invoice.pk)
    assert (stored.payment_status, stored.pdf_version, stored.total) == (PaymentStatus.PAID, 2, D("110.00"))


def test_drafts_can_be_changed_and_deleted():
    partner = PartnerFactory(slug="drafts")
    service(partner, "flat", Method.FLAT, "100.00", start_date=date(2026, 4, 1))
    [draft] = billing_run(through=date(2026, 4, 1), draft=True, actor=ACTOR)
    draft.due_date = date(2026, 6, 1)
    draft.save()
    line = draft.lines.get()
    line.description = "edited"
    line.save()
    draft.delete()
    assert not Invoice.objects.filter(partner=partner).exists()


# --- the invoice email (billing-rules 4.10; tasks) ---------------------------------------------------------------

@pytest.fixture
def fake_pdf(monkeypatch):
    """PDF rendering is another module's business (and slow): a fixed file stands in for it."""
    rendered = []

    def render(invoice):
        rendered.append(invoice.number)
        return b"%PDF-test"

    monkeypatch.setattr("invoicing.pdf.render_invoice_pdf", render)
    return rendered


def test_issuing_emails_each_invoice_once_with_its_pdf_to_the_billing_contacts_after_commit(
        django_capture_on_commit_callbacks, fake_pdf):
    """A CI (1 April, flat 100.00) and an INV (2 April, 20.00): nothing is sent while the billing
    transaction is open; on commit one email each to both billing contacts, with NUMBER.pdf attached.
    Billing again, the daily refresh and a direct send: no second email."""
    partner = PartnerFactory(slug="mailed", name="Mailed MSP", billing_emails="ap@mailed.example; cfo@mailed.example")
    service(partner, "flat", Method.FLAT, "100.00", start_date=date(2026, 4, 1))
    charge(partner, "Dock", "1", "20.00", "2026-04-02")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        issued = billing_run(through=date(2026, 4, 2), actor=ACTOR)
        assert mail.outbox == []
    assert len(callbacks) == 1  # the issued invoices' emails, queued when the transaction commits
    assert [i.number for i in issued] == ["CI-0001", "INV-0001"]
    assert len(mail.outbox) == 2
    by_number = {}
    for message in mail.outbox:
        assert message.to == ["ap@mailed.example", "cfo@mailed.example"]
        [(name, content, mimetype)] = message.attachments
        assert (content, mimetype) == (b"%PDF-test", "application/pdf")
        by_number[name] = message.subject
    assert set(by_number) == {"CI-0001.pdf", "INV-0001.pdf"}
    assert "CI-0001" in by_number["CI-0001.pdf"]
    assert sorted(fake_pdf) == ["CI-0001", "INV-0001"]
    assert all(i.emailed_at is not None for i in documents(partner))

    with django_capture_on_commit_callbacks(execute=True):
        billing_run(through=date(2026, 4, 2), actor=ACTOR)
        refresh_payment_statuses_task()
        invoice_email_send(invoice=Invoice.objects.get(number="CI-0001"))
    assert len(mail.outbox) == 2


def test_no_email_when_the_billing_transaction_rolls_back(django_capture_on_commit_callbacks, fake_pdf):
    partner = PartnerFactory(slug="rolled")
    service(partner, "flat", Method.FLAT, "100.00", start_date=date(2026, 4, 1))

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError), \
            transaction.atomic():
        billing_run(through=date(2026, 4, 1), actor=ACTOR)
        raise RuntimeError("something failed after issuing")
    assert callbacks == [] and mail.outbox == []
    assert not Invoice.objects.filter(partner=partner).exists()


def test_a_draft_is_emailed_when_it_is_issued_not_before(django_capture_on_commit_callbacks, fake_pdf):
    partner = PartnerFactory(slug="later", billing_emails="ap@later.example")
    service(partner, "flat", Method.FLAT, "100.00", start_date=date(2026, 4, 1))

    with django_capture_on_commit_callbacks(execute=True):
        [draft] = billing_run(through=date(2026, 4, 1), draft=True, actor=ACTOR)
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        invoice_issue_draft(invoice=draft, actor=ACTOR)
    assert [m.to for m in mail.outbox] == [["ap@later.example"]]
    assert mail.outbox[0].attachments[0][0] == "CI-0001.pdf"
