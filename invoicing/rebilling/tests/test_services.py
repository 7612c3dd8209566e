"""Setting prices (billing-rules 12.1): a new price from its date, the price of a day changed in place, a price
already in force changes nothing, a scheduled price can be cancelled and one in force cannot; another partner's
customer, service or item is refused; every write is audited."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.core.actor import Actor
from invoicing.rebilling.choices import ResaleMode
from invoicing.rebilling.models import ResaleItem, ResalePrice
from invoicing.rebilling.services import resale_item_save, resale_price_cancel, resale_price_set
from partners.choices import AuditAction
from partners.models import AuditLog
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory

pytestmark = pytest.mark.django_db

D = Decimal
ACTOR = Actor(label="test")


@pytest.fixture
def world():
    partner = PartnerFactory(slug="northwind")
    other = PartnerFactory(slug="other")
    return {"partner": partner, "seats": ServiceFactory(partner=partner, code="seats"),
            "contoso": CustomerFactory(partner=partner, slug="contoso"),
            "other_customer": CustomerFactory(partner=other, slug="stranger"),
            "other_service": ServiceFactory(partner=other, code="theirs")}


def set_price(world, **kwargs):
    kwargs.setdefault("service", world["seats"])
    kwargs.setdefault("mode", ResaleMode.UNIT)
    kwargs.setdefault("effective_from", date(2026, 1, 1))
    return resale_price_set(partner=world["partner"], actor=ACTOR, **kwargs)


def test_a_new_price_a_changed_day_and_an_unchanged_one(world):
    row, outcome = set_price(world, unit_price=D("35"))
    assert outcome == "created" and row.pk
    _, outcome = set_price(world, unit_price=D("35.0000"))
    assert outcome == "unchanged"
    changed, outcome = set_price(world, mode=ResaleMode.PACKAGE, package_units=5, package_price=D(150),
                                 unit_price=D(32))
    assert outcome == "updated" and changed.pk == row.pk
    assert ResalePrice.objects.get().mode == ResaleMode.PACKAGE
    entries = list(AuditLog.objects.filter(action__startswith="resale_price.").order_by("pk"))
    assert [e.action for e in entries] == [AuditAction.RESALE_PRICE_CREATE, AuditAction.RESALE_PRICE_UPDATE]
    assert entries[1].before == {"customer": None, "service": "seats", "item": None, "mode": "unit",
                                 "effective_from": "2026-01-01", "currency": "USD", "unit_price": "35"}
    assert entries[1].after["package_units"] == 5 and entries[1].after["package_price"] == "150"
    assert entries[1].partner_id == world["partner"].pk and entries[1].actor_label == "test"


def test_a_later_price_keeps_the_earlier_one_and_one_equal_to_it_adds_nothing(world):
    set_price(world, unit_price=D("35"))
    _, outcome = set_price(world, unit_price=D("35"), effective_from=date(2026, 3, 1))
    assert outcome == "unchanged" and ResalePrice.objects.count() == 1
    _, outcome = set_price(world, unit_price=D("38"), effective_from=date(2026, 3, 1))
    assert outcome == "created"
    assert list(ResalePrice.objects.order_by("effective_from").values_list("unit_price", flat=True)) == [D(35), D(38)]


def test_a_return_to_the_default_list_needs_an_own_price_to_end(world):
    _, outcome = set_price(world, customer=world["contoso"], mode=ResaleMode.DEFAULT)
    assert outcome == "unchanged" and not ResalePrice.objects.exists()
    set_price(world, customer=world["contoso"], unit_price=D("30"))
    _, outcome = set_price(world, customer=world["contoso"], mode=ResaleMode.DEFAULT,
                           effective_from=date(2026, 5, 1))
    assert outcome == "created"


@pytest.mark.parametrize(("kwargs", "errors"), [
    ({"customer": "other_customer", "unit_price": D(1)}, {"customer": "'stranger' is not a customer of this partner"}),
    ({"service": "other_service", "unit_price": D(1)}, {"service": "'theirs' is not a service of this partner"}),
    ({"unit_price": D("1.23456")}, {"unit_price": "at most 4 decimal places"}),
    ({"mode": ResaleMode.MARKUP}, {"markup_percent": "is required: the percentage added to our price"}),
    ({"mode": ResaleMode.DEFAULT},
     {"unit_price": "give a price: unit_price, markup_percent, package_units with package_price, or tiers"}),
])
def test_a_refused_price_writes_nothing(world, kwargs, errors):
    kwargs = {k: world[v] if isinstance(v, str) and v in world else v for k, v in kwargs.items()}
    with pytest.raises(ValidationError) as refused:
        set_price(world, **kwargs)
    assert {k: v[0] for k, v in refused.value.message_dict.items()} == errors
    assert not ResalePrice.objects.exists() and not AuditLog.objects.exists()


def test_a_customer_level_service_is_priced_for_its_own_customer_only(world):
    retainer = ServiceFactory(partner=world["partner"], code="retainer", customer=world["contoso"])
    other = CustomerFactory(partner=world["partner"], slug="fabrikam")
    with pytest.raises(ValidationError) as refused:
        set_price(world, service=retainer, customer=other, unit_price=D(1))
    assert refused.value.message_dict == {"service": ["retainer is a service of customer contoso only"]}
    set_price(world, service=retainer, customer=world["contoso"], unit_price=D(1))
    set_price(world, service=retainer, unit_price=D(1))  # the default list: still its customer's only service


def test_a_scheduled_price_is_cancelled_and_one_in_force_is_not(world):
    in_force, _ = set_price(world, unit_price=D("35"))
    later, _ = set_price(world, unit_price=D("38"), effective_from=date(2026, 9, 1))
    with pytest.raises(ValidationError):
        resale_price_cancel(price=in_force, today=date(2026, 6, 1), actor=ACTOR)
    resale_price_cancel(price=later, today=date(2026, 6, 1), actor=ACTOR)
    assert list(ResalePrice.objects.all()) == [in_force]
    entry = AuditLog.objects.get(action=AuditAction.RESALE_PRICE_DELETE)
    assert entry.before["unit_price"] == "38" and entry.after is None


def test_an_own_item_is_added_then_renamed_and_priced(world):
    item = resale_item_save(partner=world["partner"], code="Helpdesk-Hours ", name="Helpdesk", unit="hour",
                            actor=ACTOR)
    assert item.code == "helpdesk-hours"
    again = resale_item_save(partner=world["partner"], code="helpdesk-hours", name="Helpdesk hours", unit="hour",
                             actor=ACTOR)
    assert again.pk == item.pk and ResaleItem.objects.get().name == "Helpdesk hours"
    resale_item_save(partner=world["partner"], code="helpdesk-hours", name="Helpdesk hours", unit="hour", actor=ACTOR)
    assert list(AuditLog.objects.order_by("pk").values_list("action", flat=True)) == [
        AuditAction.RESALE_ITEM_CREATE, AuditAction.RESALE_ITEM_UPDATE]
    with pytest.raises(ValidationError) as refused:
        set_price(world, service=None, item=item, mode=ResaleMode.MARKUP, markup_percent=D(10))
    assert "markup_percent" in refused.value.message_dict
    set_price(world, service=None, item=item, unit_price=D(95))
    with pytest.raises(ValidationError):
        resale_item_save(partner=world["partner"], code="Bad Code", name="x", actor=ACTOR)
