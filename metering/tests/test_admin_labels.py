"""What a new billing clerk reads in the metering admin (issue 19, item 8): the month's seat-days with the seat-months
they make, said in words ("28 seat-days (0.9032 seat-months)", not "28 (0.9032)"), on the customer list and page;
field labels as people write them ("Agent ID", "OS"); an agent without places says so."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from billing.core.money import quantize_quantity
from metering.tests.factories import RmmAgentFactory, UsageSnapshotFactory
from partners.tests.factories import (
    CustomerFactory,
    MemberFactory,
    PartnerFactory,
    SeatAssignmentFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

TODAY = datetime(2026, 5, 14, 12, 0, tzinfo=UTC)


def labels(page: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", label).strip() for label in re.findall(r"<label[^>]*>(.*?)</label>", page, re.S)]


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


@pytest.fixture
def clerk(client):
    client.force_login(UserFactory(username="clerk", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def contoso():
    customer = CustomerFactory(partner=PartnerFactory(slug="northwind"), slug="contoso", name="Contoso Dental")
    for name in ("Ana", "Ben"):  # two seats open since April: 2 × 14 = 28 seat-days by 14 May
        SeatAssignmentFactory(member=MemberFactory(customer=customer, name=name),
                              assigned_at=datetime(2026, 4, 1, 9, tzinfo=UTC))
    return customer


@time_machine.travel(TODAY, tick=False)
def test_the_customer_list_says_the_seat_days_and_the_seat_months_they_make(clerk, contoso):
    page = clerk.get(reverse("admin:partners_customer_changelist")).content.decode()
    cell = re.search(r'<td class="field-seat_days_to_date">(.*?)</td>', page, re.S).group(1)
    months = quantize_quantity(Decimal(28) / Decimal(31))
    assert text_of(cell) == f"28 seat-days ({months} seat-months)"
    assert f"28 ÷ 31 days of 2026-05 = {months} seat-months so far" in cell


@time_machine.travel(TODAY, tick=False)
def test_the_customer_page_shows_the_same_figure_under_its_seats(clerk, contoso):
    page = clerk.get(reverse("admin:partners_customer_change", args=[contoso.pk])).content.decode()
    assert "Seat-days this month:" in labels(page)
    assert "28 seat-days" in text_of(page) and "(0.9032 seat-months)" in text_of(page)
    add = clerk.get(reverse("admin:partners_customer_add")).content.decode()
    assert "Seat-days this month" not in add


@time_machine.travel(TODAY, tick=False)
def test_a_customer_without_seats_this_month_shows_none_without_a_bracket(clerk):
    CustomerFactory(slug="empty", name="Empty Co")
    page = clerk.get(reverse("admin:partners_customer_changelist")).content.decode()
    cell = re.search(r'<td class="field-seat_days_to_date">(.*?)</td>', page, re.S).group(1)
    assert text_of(cell) == "0 seat-days"


def test_metering_field_labels_are_written_as_people_write_them(clerk):
    agent = RmmAgentFactory(os="Windows 11")
    page = clerk.get(reverse("admin:metering_rmmagent_change", args=[agent.pk])).content.decode()
    assert {"Agent ID:", "OS:"} <= set(labels(page)), labels(page)
    assert "No place recorded: no inventory has reported this agent yet." in page
    snapshot = UsageSnapshotFactory(date=date(2026, 4, 1), users_count=3)
    page = clerk.get(reverse("admin:metering_usagesnapshot_change", args=[snapshot.pk])).content.decode()
    assert not [label for label in labels(page) if re.search(r"\b(count|id|url|os)\b", label)], labels(page)
    page = clerk.get(reverse("admin:metering_rmmintegration_add")).content.decode()
    assert "Base URL:" in labels(page)
