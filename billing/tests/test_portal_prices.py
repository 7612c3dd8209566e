"""The portal's Price lists page (billing-rules 12, docs/rebilling.md) through Django's test client: Owner and Billing
users set prices and own items, a Technician gets no such page and no link, and a partner never sees nor
changes another partner's prices, customers, services or items (404, or a choice the form does not offer)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from invoicing.rebilling.choices import ResaleMode
from invoicing.rebilling.models import ResaleItem, ResalePrice
from invoicing.rebilling.tests.factories import ResaleItemFactory, ResalePriceFactory
from partners.choices import AuditAction
from partners.models import AuditLog, Method
from partners.tests.factories import CustomerFactory, PartnerFactory, PartnerUserFactory, ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db

D = Decimal
URL = "/portal/prices/"
TODAY = date(2026, 6, 15)


@pytest.fixture(autouse=True)
def today():
    with time_machine.travel(datetime(2026, 6, 15, 12, tzinfo=UTC), tick=True):
        yield


def make_partner(slug: str) -> dict:
    partner = PartnerFactory(slug=slug, name=f"{slug.title()} IT")
    customer = CustomerFactory(partner=partner, slug=f"{slug}-dental", name=f"{slug.title()} Dental")
    seats = ServiceFactory(partner=partner, code=f"{slug}-seats", name=f"{slug.title()} seats")
    retainer = ServiceFactory(partner=partner, code=f"{slug}-retainer", name=f"{slug.title()} retainer",
                              method=Method.FLAT, unit_price=D("450"))
    item = ResaleItemFactory(partner=partner, code=f"{slug}-helpdesk", name=f"{slug.title()} helpdesk", unit="hour")
    price = ResalePriceFactory(partner=partner, service=seats, unit_price=D("35.00"), effective_from=date(2026, 1, 1))
    scheduled = ResalePriceFactory(partner=partner, service=seats, customer=customer, unit_price=D("31.00"),
                                   effective_from=date(2026, 9, 1))
    return {"partner": partner, "customer": customer, "seats": seats, "retainer": retainer, "item": item,
            "price": price, "scheduled": scheduled}


@pytest.fixture
def a():
    return make_partner("alpha")


@pytest.fixture
def b():
    return make_partner("bravo")


def login(role: str, partner) -> Client:
    user = UserFactory(username=f"{partner.slug}-{role}")
    PartnerUserFactory(user=user, partner=partner, role=role)
    client = Client()
    client.force_login(user)
    return client


def form(world, **fields) -> dict:
    data = {"customer": "", "target": f"service:{world['seats'].pk}", "mode": ResaleMode.UNIT, "unit_price": "",
            "markup_percent": "", "package_units": "", "package_price": "", "tiers": "", "tier_mode": "volume",
            "effective_from": TODAY.isoformat()}
    data.update({k: str(v) for k, v in fields.items()})
    return data


# --- roles -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["owner", "billing"])
def test_owner_and_billing_users_see_the_page_and_its_link(a, role):
    client = login(role, a["partner"])
    page = client.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'href="{URL}"' in client.get("/portal/").content.decode()
    assert "Alpha seats" in html and "USD 35.00 per seat-month" in html and "USD 20.00 per seat-month" in html
    assert "15.00" in html  # the margin a seat-month
    assert "Alpha helpdesk" in html and "Alpha retainer" in html


def test_a_technician_gets_no_price_page_no_link_and_no_write(a):
    client = login("technician", a["partner"])
    for url in (URL, f"{URL}?customer={a['customer'].pk}"):
        assert client.get(url).status_code == 403
    before = (ResalePrice.objects.count(), ResaleItem.objects.count(), AuditLog.objects.count())
    assert client.post(URL, form(a, unit_price="1")).status_code == 403
    assert client.post(reverse("portal:resale_price_cancel"), {"price": a["scheduled"].pk}).status_code == 403
    assert client.post(reverse("portal:resale_item_add"), {"code": "x", "name": "X"}).status_code == 403
    assert (ResalePrice.objects.count(), ResaleItem.objects.count(), AuditLog.objects.count()) == before
    for url in ("/portal/", "/portal/customers/", "/portal/team/"):
        html = client.get(url).content.decode()
        assert URL not in html and "Price lists" not in html, url


# --- scoping ------------------------------------------------------------------------------------------------------
def test_another_partners_prices_are_never_shown(a, b):
    html = login("owner", a["partner"]).get(URL).content.decode()
    assert "bravo" not in html.lower()


def test_another_partners_objects_are_404_or_not_a_choice(a, b):
    client = login("owner", a["partner"])
    assert client.get(f"{URL}?customer={b['customer'].pk}").status_code == 404
    assert client.get(f"{URL}?customer=x").status_code == 404
    assert client.post(reverse("portal:resale_price_cancel"), {"price": b["scheduled"].pk}).status_code == 404
    assert client.post(reverse("portal:resale_price_cancel"), {"price": "nope"}).status_code == 404
    before = list(ResalePrice.objects.filter(partner=b["partner"]).values())
    for fields in ({"customer": b["customer"].pk}, {"target": f"service:{b['seats'].pk}"},
                   {"target": f"item:{b['item'].pk}"}):
        page = client.post(URL, form(a, unit_price="1", **fields))
        assert page.status_code == 200  # the form again, with the choice refused
        assert "Select a valid choice" in page.content.decode()
    assert list(ResalePrice.objects.filter(partner=b["partner"]).values()) == before
    assert not ResalePrice.objects.filter(partner=a["partner"], unit_price=D(1)).exists()
    # the same code as another partner's own item is this partner's own new item
    client.post(reverse("portal:resale_item_add"), {"code": "bravo-helpdesk", "name": "Ours"})
    assert ResaleItem.objects.get(pk=b["item"].pk).name == "Bravo helpdesk"
    assert ResaleItem.objects.filter(partner=a["partner"], code="bravo-helpdesk").exists()


# --- the form ----------------------------------------------------------------------------------------------------
def test_a_package_set_for_a_customer_from_today_is_audited_and_shown(a):
    client = login("billing", a["partner"])
    response = client.post(f"{URL}?customer={a['customer'].pk}", form(
        a, customer=a["customer"].pk, mode=ResaleMode.PACKAGE, package_units=5, package_price="150.00",
        unit_price="32.00", tiers="ignored: not a package field"))
    assert response.status_code == 302 and response["Location"] == f"{URL}?customer={a['customer'].pk}"
    price = ResalePrice.objects.get(customer=a["customer"], effective_from=TODAY)
    assert (price.mode, price.package_units, price.package_price, price.unit_price, price.tiers, price.source) == (
        ResaleMode.PACKAGE, 5, D("150.00"), D("32.00"), "", "portal")
    entry = AuditLog.objects.get(action=AuditAction.RESALE_PRICE_CREATE)
    assert entry.actor_label == "alpha-billing (portal)" and entry.partner_id == a["partner"].pk
    assert entry.after["package_price"] == "150" and "file" not in entry.after
    page = client.get(response["Location"]).content.decode()
    assert "USD 150.00 for up to 5 seat-months, then USD 32.00 each" in page and "own price" in page
    assert "Scheduled changes" in page and "1 Sep 2026" in page


def test_a_refused_price_shows_its_errors_and_writes_nothing(a):
    client = login("owner", a["partner"])
    page = client.post(URL, form(a, target=f"item:{a['item'].pk}", mode=ResaleMode.MARKUP, markup_percent="10"))
    assert page.status_code == 200
    assert "a markup is on our price: your own items have none" in page.content.decode()
    page = client.post(URL, form(a, mode=ResaleMode.PACKAGE, package_units=5))
    html = page.content.decode()
    assert "is required: the price of the package" in html
    assert "is required: the price of each unit above the package (0 for none)" in html
    page = client.post(URL, form(a, mode=ResaleMode.TIERS, tiers="10:5;5:4"))
    assert "tier bounds must be ascending, with inf last" in page.content.decode()
    assert ResalePrice.objects.filter(partner=a["partner"]).count() == 2 and not AuditLog.objects.exists()


def test_the_same_form_sent_twice_sets_the_price_once(a):
    client = login("owner", a["partner"])
    data = form(a, mode=ResaleMode.MARKUP, target=f"service:{a['retainer'].pk}", markup_percent="20",
                once_token="token-1")
    first, again = client.post(URL, data), client.post(URL, data)
    assert first.status_code == again.status_code == 302
    assert ResalePrice.objects.filter(service=a["retainer"]).count() == 1
    assert AuditLog.objects.filter(action__startswith="resale_price.").count() == 1


def test_a_price_already_in_force_changes_nothing_and_says_so(a):
    client = login("owner", a["partner"])
    response = client.post(URL, form(a, unit_price="35"), follow=True)
    assert "already has this price" in response.content.decode()
    assert ResalePrice.objects.filter(partner=a["partner"]).count() == 2


def test_a_change_link_opens_the_form_with_the_price_in_force(a):
    client = login("owner", a["partner"])
    html = client.get(f"{URL}?target=service:{a['seats'].pk}").content.decode()
    assert 'name="unit_price" value="35.00"' in html
    assert f'<option value="service:{a["seats"].pk}" selected>' in html
    assert f'value="{TODAY.isoformat()}"' in html  # effective from: today by default


def test_a_scheduled_price_is_cancelled_and_one_in_force_is_not(a):
    client = login("owner", a["partner"])
    client.post(reverse("portal:resale_price_cancel"), {"price": a["price"].pk})
    assert ResalePrice.objects.filter(pk=a["price"].pk).exists()
    response = client.post(reverse("portal:resale_price_cancel"), {"price": a["scheduled"].pk})
    assert response["Location"] == f"{URL}?customer={a['customer'].pk}"
    assert not ResalePrice.objects.filter(pk=a["scheduled"].pk).exists()
    assert AuditLog.objects.filter(action=AuditAction.RESALE_PRICE_DELETE).count() == 1


def test_an_own_item_is_added_once_and_a_bad_code_is_refused(a):
    client = login("owner", a["partner"])
    data = {"code": "rental", "name": "Laptop rental", "unit": "device", "once_token": "t-1"}
    client.post(reverse("portal:resale_item_add"), data)
    client.post(reverse("portal:resale_item_add"), data)
    assert ResaleItem.objects.filter(partner=a["partner"], code="rental").count() == 1
    assert AuditLog.objects.filter(action=AuditAction.RESALE_ITEM_CREATE).count() == 1
    response = client.post(reverse("portal:resale_item_add"), {"code": "Bad Code", "name": "x"}, follow=True)
    assert "The item was not added" in response.content.decode()
    assert "Laptop rental" in client.get(URL).content.decode()


def test_price_changes_read_as_sentences_in_the_audit_for_billing_users_only(a):
    owner = login("owner", a["partner"])
    owner.post(URL, form(a, customer=a["customer"].pk, unit_price="30"))
    assert "set the resale price of Alpha seats for Alpha Dental from 15 Jun 2026" in owner.get(
        "/portal/team/").content.decode()
    assert "resale price" not in login("technician", a["partner"]).get("/portal/team/").content.decode()


def test_an_own_item_billed_from_a_usage_record_meter_is_added_and_a_bad_meter_refused(a):
    """billing-rules 12.11: the meter is a usage-record key, * for any direction or destination."""
    client = login("billing", a["partner"])
    client.post(reverse("portal:resale_item_add"), {"code": "calls", "name": "Outbound calls", "unit": "minute",
                                                     "meter": "call_minutes:outbound:*", "once_token": "m-1"})
    item = ResaleItem.objects.get(partner=a["partner"], code="calls")
    assert item.meter == "call_minutes:outbound:*"
    assert AuditLog.objects.get(action=AuditAction.RESALE_ITEM_CREATE, object_id=str(item.pk)).after["meter"] == \
        "call_minutes:outbound:*"
    assert "call_minutes:outbound:*" in client.get(URL).content.decode()
    response = client.post(reverse("portal:resale_item_add"), {
        "code": "mins", "name": "Minutes", "meter": "call_minutes:sideways", "once_token": "m-2"}, follow=True)
    assert "is not a usage-record meter" in response.content.decode()
    assert not ResaleItem.objects.filter(code="mins").exists()
