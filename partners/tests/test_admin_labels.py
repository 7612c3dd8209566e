"""What a new billing clerk reads in the partners admin (issue 19, item 8): methods by their labels, never their
codes; field labels as people write them ("RMM filter", "Storage per license (GB)"); the customer list within
1440 px (the commitment under the utilization bar, not a column of its own); an empty inline that says so."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from djmoney.money import Money

from partners.models import Method
from partners.tests.factories import (
    CustomerFactory,
    MemberFactory,
    PartnerFactory,
    SeatAssignmentFactory,
    ServiceFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PAST = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def url(model, action="changelist", *args):
    return reverse(f"admin:partners_{model}_{action}", args=args)


def cells(page: str, column: str) -> list[str]:
    """The text of a list column's cells (`td.field-<column>`), tags stripped."""
    found = re.findall(rf'<td class="field-{column}[^"]*">(.*?)</td>', page, flags=re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell)).strip() for cell in found]


def labels(page: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", label).strip() for label in re.findall(r"<label[^>]*>(.*?)</label>", page, re.S)]


@pytest.fixture
def clerk(client):
    client.force_login(UserFactory(username="clerk", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def book():
    partner = PartnerFactory(slug="northwind", name="Northwind Managed IT")
    contoso = CustomerFactory(partner=partner, slug="contoso", name="Contoso Dental", seat_cap=4)
    fabrikam = CustomerFactory(partner=partner, slug="fabrikam", name="Fabrikam Law")
    seats = ServiceFactory(partner=partner, customer=contoso, code="contoso-seats", committed_quantity=2,
                           method=Method.SEAT_DAYS, overage_enabled=True)
    agents = ServiceFactory(partner=partner, code="rmm-agents", method=Method.CMQ, committed_quantity=50,
                            unit_price=Money("2.50", "USD"))
    for name in ("Ana", "Ben", "Cleo"):
        SeatAssignmentFactory(member=MemberFactory(customer=contoso, name=name), assigned_at=PAST)
    return {"partner": partner, "contoso": contoso, "fabrikam": fabrikam, "seats": seats, "agents": agents}


def test_the_service_list_names_each_method_by_its_label(clerk, book):
    page = clerk.get(url("service")).content.decode()
    methods = cells(page, "method_code")
    assert sorted(methods) == ["Committed minimum quantity", "Seat-days (arrears)"]
    assert 'title="in import files: cmq"' in page  # the code, as files write it, on hover


def test_field_labels_are_written_as_people_write_them(clerk, book):
    service = clerk.get(url("service", "change", book["agents"].pk)).content.decode()
    assert "Storage per license (GB):" in labels(service)
    assert "RMM filter:" in service  # read-only once saved: a label, not a form field's
    partner = labels(clerk.get(url("partner", "change", book["partner"].pk)).content.decode())
    assert {"Tax ID:", "Billing portal URL:", "Payment terms (days):"} <= set(partner), partner
    customer = labels(clerk.get(url("customer", "change", book["contoso"].pk)).content.decode())
    assert {"RMM organization:", "Payment terms (days):"} <= set(customer), customer
    assert not [label for label in partner + customer if re.search(r"\b(Rmm|url|id|gb)\b", label)]


def test_the_seat_purchase_page_names_the_method_by_its_label(clerk, book):
    page = clerk.get(url("seatpurchase", "add")).content.decode()
    assert "a service of method “Seat-days (arrears)”" in page
    assert "seat_days" not in re.sub(r"<[^>]+>", " ", page)


def test_the_customer_list_shows_the_commitment_under_the_utilization_bar(clerk, book):
    """One column fewer (the committed seats are the bar's denominator), the commitment's scope under the bar."""
    page = clerk.get(url("customer")).content.decode()
    assert "column-committed" not in page
    utilization = dict(zip(cells(page, "key"), cells(page, "utilization"), strict=True))
    assert utilization["contoso"] == "150% 3/2 2 committed, this customer · overage"
    assert utilization["fabrikam"] == "—"
    assert cells(page, "partner_name") == ["Northwind Managed IT", "Northwind Managed IT"]


def test_an_empty_services_inline_says_so(clerk, book):
    """Northwind's only partner-level service is rmm-agents; a partner without one is told so."""
    other = PartnerFactory(slug="blue-harbor", name="Blue Harbor")
    page = clerk.get(url("partner", "change", other.pk)).content.decode()
    assert "No partner-level service: each customer&#x27;s services are on its page." in page
    page = clerk.get(url("partner", "change", book["partner"].pk)).content.decode()
    assert "No partner-level service" not in page
    page = clerk.get(url("customer", "change", book["fabrikam"].pk)).content.decode()
    assert "No service of this customer&#x27;s own." in page
