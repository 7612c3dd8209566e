"""The database holds the rules of a price list (billing-rules 12.1, 12.2): one service or item, the fields of its
mode and no other, amounts in range, one price per list, service and day. Each write below goes around every
check of the services (a bulk write, a shell, a later app) and must be refused by the database itself."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from invoicing.rebilling.choices import ResaleMode
from invoicing.rebilling.models import ResaleItem, ResalePrice
from invoicing.rebilling.tests.factories import ResaleItemFactory, ResalePriceFactory
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def world():
    partner = PartnerFactory(slug="northwind")
    return {"partner": partner, "customer": CustomerFactory(partner=partner, slug="contoso"),
            "service": ServiceFactory(partner=partner, code="seats"),
            "item": ResaleItemFactory(partner=partner, code="helpdesk")}


def refused(**fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        ResalePrice.objects.create(**{"effective_from": date(2026, 1, 1), **fields})


def test_a_price_of_each_mode_is_stored(world):
    w = world
    ResalePrice.objects.create(partner=w["partner"], service=w["service"], mode=ResaleMode.UNIT, unit_price=D("35"),
                               effective_from=date(2026, 1, 1))
    ResalePrice.objects.create(partner=w["partner"], customer=w["customer"], service=w["service"],
                               mode=ResaleMode.MARKUP, markup_percent=D("12.5"), effective_from=date(2026, 1, 1))
    ResalePrice.objects.create(partner=w["partner"], item=w["item"], mode=ResaleMode.PACKAGE, package_units=5,
                               package_price=D(150), unit_price=D(32), effective_from=date(2026, 1, 1))
    ResalePrice.objects.create(partner=w["partner"], customer=w["customer"], item=w["item"], mode=ResaleMode.TIERS,
                               tiers="10:5;inf:4", effective_from=date(2026, 1, 1))
    ResalePrice.objects.create(partner=w["partner"], customer=w["customer"], service=w["service"],
                               mode=ResaleMode.DEFAULT, effective_from=date(2026, 2, 1))
    assert ResalePrice.objects.count() == 5


def test_a_price_prices_one_service_or_one_item(world):
    w = world
    refused(partner=w["partner"], mode=ResaleMode.UNIT, unit_price=D(1))
    refused(partner=w["partner"], service=w["service"], item=w["item"], mode=ResaleMode.UNIT, unit_price=D(1))


@pytest.mark.parametrize("fields", [
    {"mode": ResaleMode.UNIT},  # no unit price
    {"mode": ResaleMode.UNIT, "unit_price": D(1), "markup_percent": D(1)},
    {"mode": ResaleMode.UNIT, "unit_price": D(1), "tiers": "inf:1"},
    {"mode": ResaleMode.MARKUP},
    {"mode": ResaleMode.MARKUP, "markup_percent": D(5), "unit_price": D(1)},
    {"mode": ResaleMode.PACKAGE, "package_units": 5, "package_price": D(1)},  # no price above the package
    {"mode": ResaleMode.PACKAGE, "package_units": 5, "unit_price": D(1)},
    {"mode": ResaleMode.TIERS},
    {"mode": ResaleMode.TIERS, "tiers": "inf:1", "unit_price": D(1)},
    {"mode": ResaleMode.DEFAULT},  # the default list's own price cannot be "the default list's"
    {"mode": "other", "unit_price": D(1)},
])
def test_a_mode_has_its_fields_and_no_other(world, fields):
    refused(partner=world["partner"], service=world["service"], **fields)


def test_an_own_item_is_never_marked_up(world):
    refused(partner=world["partner"], item=world["item"], mode=ResaleMode.MARKUP, markup_percent=D(10))


@pytest.mark.parametrize("fields", [
    {"mode": ResaleMode.UNIT, "unit_price": D(-1)},
    {"mode": ResaleMode.MARKUP, "markup_percent": D(-1)},
    {"mode": ResaleMode.PACKAGE, "package_units": 0, "package_price": D(1), "unit_price": D(1)},
    {"mode": ResaleMode.PACKAGE, "package_units": 1, "package_price": D(-1), "unit_price": D(1)},
])
def test_amounts_are_never_negative_and_a_package_covers_a_unit(world, fields):
    refused(partner=world["partner"], service=world["service"], **fields)


@pytest.mark.parametrize("list_of", ["default", "customer"])
@pytest.mark.parametrize("target", ["service", "item"])
def test_one_price_per_list_service_and_day(world, list_of, target):
    w = world
    customer = w["customer"] if list_of == "customer" else None
    ResalePriceFactory(partner=w["partner"], customer=customer, **{target: w[target]})
    refused(partner=w["partner"], customer=customer, mode=ResaleMode.UNIT, unit_price=D(2), **{target: w[target]})
    # another day, or the other list, is another price
    ResalePriceFactory(partner=w["partner"], customer=customer, effective_from=date(2026, 2, 1),
                       **{target: w[target]})
    ResalePriceFactory(partner=w["partner"], customer=None if customer else w["customer"], **{target: w[target]})


def test_an_own_item_code_is_unique_per_partner(world):
    with pytest.raises(IntegrityError), transaction.atomic():
        ResaleItem.objects.create(partner=world["partner"], code="helpdesk", name="Again")
    ResaleItemFactory(partner=PartnerFactory(slug="other"), code="helpdesk")


def test_a_price_reads_as_its_terms(world):
    price = ResalePriceFactory(partner=world["partner"], item=world["item"], mode=ResaleMode.TIERS, unit_price=None,
                               tiers="10:5;inf:4", tier_mode="graduated")
    assert price.target == ("item", world["item"].pk)
    assert price.target_name == "Helpdesk"
    assert price.terms.tiers[0].up_to == 10 and price.terms.tier_mode == "graduated"
