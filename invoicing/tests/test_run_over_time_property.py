"""Billed month by month with data recorded late and terms changed with dates, or billed in one catch-up run once
everything is known: the same total per service, true-ups included; rerunning changes nothing
(billing-rules 3.11, 4.11, 4.12)."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal as D

import pytest
from django.db.models import Sum
from djmoney.money import Money
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.core.actor import Actor
from billing.core.periods import Period
from conftest import examples
from invoicing.models import InvoiceLine
from invoicing.services import billing_run
from invoicing.trueups import billing_gaps
from metering.models import UsageSnapshot
from metering.services import AgentRow, inventory_apply
from partners.models import Customer, Method
from partners.services import terms_change_record
from partners.terms import values_of
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory

ACTOR = Actor(label="property test")
MONTHS = [Period(2026, m) for m in range(2, 6)]  # runs on the 1st of February .. May
slugs = itertools.count()

days = st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 4, 30))
known_by = st.integers(0, len(MONTHS) - 1)  # the run from which a fact is known
snapshots = st.lists(st.tuples(days, st.integers(0, 30), known_by), max_size=6)
host_limits = st.lists(st.tuples(days, st.integers(0, 20), known_by), max_size=3)
inventories = st.lists(st.tuples(days, st.integers(0, 6), known_by), max_size=4)


def build():
    """A partner with a peak-users, a per_host, a cmq and a per_asset service (from 17 January)."""
    partner = PartnerFactory(slug=f"p{next(slugs)}", tax_rate=D("0"))
    customer = CustomerFactory(partner=partner, slug="birch", host_limit=5, rmm_organization="birch")
    ServiceFactory(partner=partner, customer=customer, code="cmq", method=Method.CMQ, meter="users",
                   unit_price=Money("2.00", "USD"), committed_quantity=4, start_date=date(2026, 1, 1))
    ServiceFactory(partner=partner, customer=customer, code="agents", method=Method.PER_ASSET,
                   unit_price=Money("31.00", "USD"), start_date=date(2026, 1, 17))
    ServiceFactory(partner=partner, customer=customer, code="users", method=Method.PEAK, meter="users",
                   unit_price=Money("5.00", "USD"), start_date=date(2026, 1, 1))
    ServiceFactory(partner=partner, customer=customer, code="hosts", method=Method.PER_HOST,
                   unit_price=Money("15.00", "USD"), start_date=date(2026, 1, 1))
    return partner, customer


def learn(customer, history_snapshots, history_limits, history_inventories, run: int):
    """Record the facts that became known by run `run`."""
    for day, count, known in history_inventories:
        if known == run:
            agents = {f"a{n}": AgentRow(f"a{n}", f"PC-{n}", "birch", "", "", None) for n in range(count)}
            inventory_apply(partner=customer.partner, as_of=day, agents=agents, actor=ACTOR)
    for day, users, known in history_snapshots:
        if known == run:
            UsageSnapshot.objects.update_or_create(customer=customer, date=day,
                                                   defaults={"users_count": users, "storage_bytes": 0})
    for day, limit, known in history_limits:
        if known == run:
            customer = Customer.objects.get(pk=customer.pk)
            before = values_of(customer)
            customer.host_limit = limit
            customer.save()
            terms_change_record(obj=customer, before=before, effective=day)


def totals(partner) -> dict[str, D]:
    rows = (InvoiceLine.objects.filter(invoice__partner=partner, service__isnull=False)
            .values_list("service__code").annotate(total=Sum("amount")))
    return {code: D(total).quantize(D("0.01")) for code, total in rows if total}  # a month taken back nets 0


@pytest.mark.django_db
@settings(max_examples=examples(6), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(snapshots, host_limits, inventories)
def test_month_by_month_with_late_data_bills_what_one_catch_up_run_bills(history_snapshots, history_limits,
                                                                          history_inventories):
    facts = (history_snapshots, history_limits, history_inventories)
    monthly, customer = build()
    for run, month in enumerate(MONTHS):
        learn(customer, *facts, run)
        billing_run(through=month.first, partner_slug=monthly.slug, actor=ACTOR)
    caught_up, customer = build()
    for run in range(len(MONTHS)):  # the same facts, in the order they became known, all before the one run
        learn(customer, *facts, run)
    billing_run(through=MONTHS[-1].first, partner_slug=caught_up.slug, actor=ACTOR)
    assert totals(monthly) == totals(caught_up)
    # the invariant: every service's every month billed at what the rules give from all that is known
    assert billing_gaps(partner_ids=[monthly.pk, caught_up.pk], before=MONTHS[-1]) == []
    before = totals(monthly), InvoiceLine.objects.filter(invoice__partner=monthly).count()
    billing_run(through=MONTHS[-1].first, partner_slug=monthly.slug, actor=ACTOR)
    assert (totals(monthly), InvoiceLine.objects.filter(invoice__partner=monthly).count()) == before
