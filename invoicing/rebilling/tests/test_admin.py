"""The admin's price lists (docs/rebilling.md section 4): clerks read every partner's prices and own items, filter
them by partner, list and customer, search them, and change nothing there (partners set them, audited)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from invoicing.rebilling.choices import ResaleMode
from invoicing.rebilling.models import ResaleItem, ResalePrice
from invoicing.rebilling.tests.factories import ResaleItemFactory, ResalePriceFactory
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def world():
    partner = PartnerFactory(slug="northwind", name="Northwind")
    contoso = CustomerFactory(partner=partner, slug="contoso", name="Contoso Dental")
    seats = ServiceFactory(partner=partner, code="seats", name="Managed seats")
    item = ResaleItemFactory(partner=partner, code="helpdesk", name="Helpdesk hours")
    default = ResalePriceFactory(partner=partner, service=seats, unit_price=Decimal("35.00"))
    own = ResalePriceFactory(partner=partner, service=seats, customer=contoso, mode=ResaleMode.PACKAGE,
                             package_units=5, package_price=Decimal("150.00"), unit_price=Decimal("32.00"))
    other = PartnerFactory(slug="other", name="Other IT")
    ResalePriceFactory(partner=other, service=ServiceFactory(partner=other, code="backup"), unit_price=Decimal("9"))
    return {"partner": partner, "contoso": contoso, "item": item, "default": default, "own": own}


def changelist(staff, **query):
    response = staff.get(reverse("admin:rebilling_resaleprice_changelist"), query)
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].result_list}, response.content.decode()


def test_prices_are_listed_in_words_filtered_and_searched(staff, world):
    shown, html = changelist(staff)
    assert len(shown) == 3
    assert "USD 35.00 per seat-month" in html and "USD 150.00 for up to 5 seat-months, then USD 32.00 each" in html
    assert changelist(staff, partner__id__exact=world["partner"].pk)[0] == {world["default"].pk, world["own"].pk}
    assert changelist(staff, list="default", partner__id__exact=world["partner"].pk)[0] == {world["default"].pk}
    assert changelist(staff, customer=world["contoso"].pk)[0] == {world["own"].pk}
    assert changelist(staff, q="contoso")[0] == {world["own"].pk}
    assert changelist(staff, q="backup")[0] == {ResalePrice.objects.get(service__code="backup").pk}


def test_the_admin_reads_and_never_writes(staff, world):
    for model, obj in ((ResalePrice, world["own"]), (ResaleItem, world["item"])):
        name = model._meta.model_name
        assert staff.get(reverse(f"admin:rebilling_{name}_change", args=[obj.pk])).status_code == 200
        assert staff.get(reverse(f"admin:rebilling_{name}_add")).status_code == 403
        assert staff.post(reverse(f"admin:rebilling_{name}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403
    response = staff.get(reverse("admin:rebilling_resaleitem_changelist"), {"q": "helpdesk"})
    assert "Helpdesk hours" in response.content.decode()
