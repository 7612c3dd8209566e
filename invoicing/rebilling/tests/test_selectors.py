"""The prices in force (billing-rules 12.1): a customer's own price else the default list's, each from its date until
the next, a month at the prices of its 1st; one query for every customer of many partners. A property test gives
the selector and a plain reference the same random histories."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from billing.core.periods import Period
from conftest import examples
from invoicing.rebilling.choices import ResaleMode
from invoicing.rebilling.models import ResalePrice
from invoicing.rebilling.selectors import (
    price_list_rows,
    resale_price_list,
    resale_price_lists,
    resale_price_lists_for_month,
    resale_prices_scheduled,
)
from invoicing.rebilling.tests.factories import ResaleItemFactory, ResalePriceFactory
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def world():
    partner = PartnerFactory(slug="northwind")
    seats = ServiceFactory(partner=partner, code="seats")
    return {"partner": partner, "seats": seats, "a": CustomerFactory(partner=partner, slug="a"),
            "b": CustomerFactory(partner=partner, slug="b")}


def price(world, amount, day, customer=None, target="seats", **fields):
    fields.setdefault("mode", ResaleMode.UNIT)
    if fields["mode"] != ResaleMode.UNIT:
        fields.setdefault("unit_price", None)
    return ResalePriceFactory(partner=world["partner"], service=world[target], customer=customer,
                              effective_from=day, **({"unit_price": D(amount)} if amount is not None else {}), **fields)


def charged(world, customer, day):
    row = resale_price_list(world["partner"].pk, day).price(customer.pk if customer else None,
                                                             ("service", world["seats"].pk))
    return None if row is None else row.unit_price


def test_a_price_is_in_force_from_its_date_until_the_next(world):
    price(world, "30", date(2026, 1, 1))
    price(world, "35", date(2026, 4, 15))
    assert charged(world, None, date(2025, 12, 31)) is None
    assert charged(world, None, date(2026, 1, 1)) == D("30")
    assert charged(world, None, date(2026, 4, 14)) == D("30")
    assert charged(world, None, date(2026, 4, 15)) == D("35")
    assert charged(world, world["a"], date(2026, 4, 15)) == D("35")  # no own price: the default list's


def test_a_month_is_charged_at_the_price_of_its_first(world):
    """A price effective 15 April first charges May (billing-rules 12.1)."""
    price(world, "30", date(2026, 1, 1))
    price(world, "35", date(2026, 4, 15))
    months = {str(m): resale_price_lists_for_month([world["partner"].pk], m)[world["partner"].pk]
              for m in (Period.parse("2026-04"), Period.parse("2026-05"))}
    target = ("service", world["seats"].pk)
    assert months["2026-04"].price(None, target).unit_price == D("30")
    assert months["2026-05"].price(None, target).unit_price == D("35")


def test_a_customers_own_price_overrides_the_default_list_until_it_returns(world):
    price(world, "30", date(2026, 1, 1))
    price(world, "25", date(2026, 2, 1), customer=world["a"])
    price(world, None, date(2026, 6, 1), customer=world["a"], mode=ResaleMode.DEFAULT)
    price(world, "40", date(2026, 7, 1))
    assert charged(world, world["a"], date(2026, 1, 31)) == D("30")
    assert charged(world, world["a"], date(2026, 2, 1)) == D("25")
    assert charged(world, world["b"], date(2026, 2, 1)) == D("30")
    assert charged(world, world["a"], date(2026, 6, 1)) == D("30")  # back to the default list
    assert charged(world, world["a"], date(2026, 7, 1)) == D("40")  # and it follows it
    lists = resale_price_list(world["partner"].pk, date(2026, 6, 1))
    assert set(lists.for_customer(world["a"].pk)) == {("service", world["seats"].pk)}
    assert lists.for_customer(world["a"].pk)[("service", world["seats"].pk)].customer_id is None


def test_every_customer_of_many_partners_in_one_query(world, django_assert_num_queries):
    """Set-based: the same one query for 2 customers or 40, for 1 partner or 3."""
    item = ResaleItemFactory(partner=world["partner"], code="helpdesk")
    ResalePriceFactory(partner=world["partner"], item=item, unit_price=D("95"))
    price(world, "30", date(2026, 1, 1))
    others = []
    for n in range(2):
        other = PartnerFactory(slug=f"other{n}")
        service = ServiceFactory(partner=other, code="seats")
        ResalePriceFactory(partner=other, service=service, unit_price=D(10 + n))
        for m in range(20):
            customer = CustomerFactory(partner=other, slug=f"c{m}")
            ResalePriceFactory(partner=other, service=service, customer=customer, unit_price=D(m))
        others.append(other)
    ids = [world["partner"].pk, *(o.pk for o in others)]
    with django_assert_num_queries(1):
        lists = resale_price_lists(ids, date(2026, 6, 1))
        for partner_list in lists.values():
            for customer_id, rows in partner_list.overrides.items():
                for row in rows.values():
                    assert row.service.code == "seats" and customer_id
    assert len(lists[others[1].pk].overrides) == 20
    assert lists[world["partner"].pk].default[("item", item.pk)].unit_price == D("95")


def test_scheduled_prices_are_those_after_today(world):
    price(world, "30", date(2026, 1, 1))
    later = price(world, "35", date(2026, 9, 1))
    assert list(resale_prices_scheduled(world["partner"].pk, date(2026, 6, 1))) == [later]
    assert list(resale_prices_scheduled(world["partner"].pk, date(2026, 9, 1))) == []


def test_the_portal_rows_show_our_price_the_partners_and_the_margin(world):
    """Seats cost the partner 20.00 (the factory's price); it charges 35.00: 15.00 a seat-month. A customer-level
    service shows in its own customer's list only; an own item has no cost and no margin."""
    price(world, "35", date(2026, 1, 1))
    ServiceFactory(partner=world["partner"], code="retainer", customer=world["b"], method="flat")
    item = ResaleItemFactory(partner=world["partner"], code="helpdesk", unit="hour")
    ResalePriceFactory(partner=world["partner"], item=item, customer=world["a"], unit_price=D("95"))
    rows = {r.code: r for r in price_list_rows(world["partner"], world["a"], date(2026, 6, 1))}
    assert set(rows) == {"seats", "helpdesk"}
    assert (rows["seats"].cost, rows["seats"].price.unit_price, rows["seats"].margin) == (D("20.0000"), D("35"),
                                                                                          D("15.0000"))
    assert rows["seats"].inherited and rows["seats"].cost_text == "USD 20.00 per seat-month"
    assert rows["seats"].price_text == "USD 35.00 per seat-month"
    assert not rows["helpdesk"].inherited and rows["helpdesk"].margin is None
    assert rows["helpdesk"].price_text == "USD 95.00 per hour"
    default = {r.code: r for r in price_list_rows(world["partner"], None, date(2026, 6, 1))}
    assert set(default) == {"seats", "retainer", "helpdesk"}
    assert default["helpdesk"].price is None and default["retainer"].scope == world["b"].name


# --- the selector against a plain reference ----------------------------------------------------------------------
DAYS = [date(2026, 1, 1) + timedelta(days=n) for n in range(0, 120, 7)]


def reference(rows: list[dict], customer: str | None, day: date) -> Decimal | None:
    """The price of the seats for a customer on a day, by reading the rows one by one."""
    def latest(list_of):
        mine = [r for r in rows if r["customer"] == list_of and r["day"] <= day]
        return max(mine, key=lambda r: r["day"]) if mine else None

    own = latest(customer) if customer else None
    if own is not None and own["amount"] is not None:
        return own["amount"]
    default = latest(None)
    return default["amount"] if default else None


histories = st.lists(st.fixed_dictionaries({
    "customer": st.sampled_from([None, "a", "b"]),
    "day": st.sampled_from(DAYS),
    "amount": st.one_of(st.none(), st.decimals(min_value=0, max_value=99, places=2, allow_nan=False)),
}), max_size=12, unique_by=lambda r: (r["customer"], r["day"]))


@hsettings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=histories, day=st.sampled_from(DAYS))
def test_the_selector_gives_the_references_price_for_any_history(world, rows, day):
    ResalePrice.objects.all().delete()
    for r in rows:
        if r["customer"] is None and r["amount"] is None:
            r["amount"] = D(1)  # the default list has no "default" mode
        customer = world[r["customer"]] if r["customer"] else None
        if r["amount"] is None:
            price(world, None, r["day"], customer=customer, mode=ResaleMode.DEFAULT)
        else:
            price(world, r["amount"], r["day"], customer=customer)
    for customer in (None, "a", "b"):
        assert charged(world, world[customer] if customer else None, day) == reference(rows, customer, day), customer
