"""Payment terms, one rule (billing-rules 4.1, 3.11 and billing-rules decision (ar); issue 18, item 2):
partners.models.payment_terms_days and payment_due_date. The billing run dates every CI child and INV with
them, with the partner's terms in force on the issue date."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from djmoney.money import Money
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.core.actor import Actor
from conftest import examples
from invoicing.models import InvoiceKind
from invoicing.services import billing_run
from partners.models import Customer, Method, Partner, payment_due_date, payment_terms_days
from partners.services import terms_change_record
from partners.terms import TermsBook, values_of
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory

FAST = settings(max_examples=examples(200), deadline=None, database=None)


def test_the_customers_own_terms_else_the_partners():
    partner = Partner(payment_terms_days=30)
    harbourside, millbrook = Customer(partner=partner, payment_terms_days=14), Customer(partner=partner)
    assert payment_terms_days(partner) == 30
    assert payment_terms_days(partner, harbourside) == 14
    assert payment_terms_days(partner, millbrook) == 30
    assert payment_terms_days(partner, Customer(partner=partner, payment_terms_days=0)) == 0  # due on issue
    assert (harbourside.effective_payment_terms_days, millbrook.effective_payment_terms_days) == (14, 30)
    # billing-rules 3.10: INV-0001 of 2026-03-10 is due on Harbourside's 14 days, the April CI's partner child on 30
    assert payment_due_date(date(2026, 3, 10), partner, harbourside) == date(2026, 3, 24)
    assert payment_due_date(date(2026, 4, 1), partner, None) == date(2026, 5, 1)


@FAST
@given(issue=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)), partner_days=st.integers(0, 365),
       customer_days=st.one_of(st.none(), st.integers(0, 365)))
def test_the_due_date_is_the_issue_date_plus_the_terms(issue, partner_days, customer_days):
    partner = Partner(payment_terms_days=partner_days)
    customer = Customer(partner=partner, payment_terms_days=customer_days)
    days = partner_days if customer_days is None else customer_days
    assert payment_due_date(issue, partner, customer) == issue + timedelta(days=days)
    assert payment_due_date(issue, partner) == issue + timedelta(days=partner_days)


@pytest.mark.django_db
def test_the_billing_run_dates_children_and_invs_with_the_terms_in_force_on_the_issue_date():
    """The partner's terms change from 30 to 45 days on 1 May (billing-rules 3.11); Harbourside keeps its own 14."""
    partner = PartnerFactory(slug="terms", payment_terms_days=30)
    harbourside = CustomerFactory(partner=partner, slug="harbourside", payment_terms_days=14)
    ServiceFactory(partner=partner, code="support", method=Method.FLAT, unit_price=Money(45, "USD"),
                   start_date=date(2026, 3, 1))
    ServiceFactory(partner=partner, customer=harbourside, code="hosting", method=Method.FLAT,
                   unit_price=Money(15, "USD"), start_date=date(2026, 3, 10))
    before = values_of(partner)
    partner.payment_terms_days = 45
    partner.save()
    terms_change_record(obj=partner, before=before, effective=date(2026, 5, 1))
    documents = billing_run(through=date(2026, 5, 1), partner_slug="terms", actor=Actor(label="test"))
    book = TermsBook([partner])
    seen = set()
    for invoice in documents:
        dated = book.on(partner, invoice.issue_date)
        if invoice.kind == InvoiceKind.CI:
            for child in invoice.children.select_related("customer"):
                assert child.due_date == payment_due_date(invoice.issue_date, dated, child.customer)
                seen.add((invoice.issue_date, child.due_date))
            assert invoice.due_date == min(child.due_date for child in invoice.children.all())
        else:
            assert invoice.due_date == payment_due_date(invoice.issue_date, dated, invoice.customer)
            seen.add((invoice.issue_date, invoice.due_date))
    assert {(date(2026, 3, 10), date(2026, 3, 24)), (date(2026, 4, 1), date(2026, 5, 1)),
            (date(2026, 5, 1), date(2026, 6, 15)), (date(2026, 5, 1), date(2026, 5, 15))} <= seen
