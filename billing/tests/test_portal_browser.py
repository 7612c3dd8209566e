"""The partner portal in a real browser: Debian's Chromium driven by Playwright against live_server.

Sign in as brightdesk's Owner (data: the seat-days-basic example replayed through the CLI), read the
dashboard, download an invoice PDF, export a statement CSV and add seats. Screenshots go to the
test's tmp_path (printed with -s); docs/img is made by `manage.py screenshots`.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from billing.core.periods import next_month_start
from invoicing.models import Invoice
from partners.models import Customer, Partner, Role, SeatPurchase
from partners.tests.factories import MemberFactory, PartnerUserFactory, SeatAssignmentFactory, UserFactory
from tests.browser import BROWSER, new_page, portal_sign_in
from tests.examples import replay

pytestmark = BROWSER


@pytest.fixture
def portal_data(data_dir):
    """brightdesk from the worked example, an Owner login, and a little seat churn in the chart's window."""

    replay(data_dir / "seat-days-basic")
    partner = Partner.objects.get(slug="brightdesk")
    user = UserFactory(username="dana", first_name="Dana", last_name="Owner", password="portal-pass-123")
    PartnerUserFactory(user=user, partner=partner, role=Role.OWNER)
    pinecrest = Customer.objects.get(partner=partner, slug="pinecrest")
    now = timezone.now().astimezone(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    for i, (start, days) in enumerate([(80, 30), (60, 10), (45, 25), (30, 20), (20, 5), (12, 9)]):
        SeatAssignmentFactory(member=MemberFactory(customer=pinecrest, name=f"temp{i}"),
                              assigned_at=now - timedelta(days=start), removed_at=now - timedelta(days=start - days))
    return {"partner": partner, "username": "dana", "password": "portal-pass-123"}


def shoot(page, tmp_path: Path, name: str, full_page: bool = True) -> Path:
    folder = tmp_path / "screenshots"
    folder.mkdir(exist_ok=True)
    path = folder / f"portal-{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"screenshot: {path}")
    return path


@pytest.mark.django_db(transaction=True)
def test_owner_uses_the_portal_in_chromium(portal_data, browser, live_server, tmp_path):
    page = new_page(browser, 1280, 860, accept_downloads=True)
    page.goto(f"{live_server.url}/portal/")
    assert "/portal/login/" in page.url  # anonymous: to the login page
    portal_sign_in(page, live_server.url, portal_data["username"], portal_data["password"])

    # dashboard: commitment 4 + 2 bought in April; 8 seats open since May (overage enabled)
    assert page.locator("[data-kpi=committed]").inner_text() == "6"
    assert page.locator("[data-kpi=assigned]").inner_text() == "8"
    assert page.locator("[data-kpi=available]").inner_text() == "0"
    assert page.locator("[data-kpi=utilization]").inner_text() == "133%"
    assert page.locator("svg polyline").count() == 2
    shoot(page, tmp_path, "dashboard")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, tmp_path, "dashboard-phone")
    page.set_viewport_size({"width": 1280, "height": 860})

    # Billing: periods and invoices; download CI-0003 as PDF
    page.click("nav.main >> text=Billing")
    page.wait_for_url("**/portal/billing/")
    assert page.get_by_text("7.6774").count() >= 1
    shoot(page, tmp_path, "billing")
    with page.expect_download() as info:
        page.click("a[data-pdf='CI-0003']")
    download = info.value
    assert download.suggested_filename == "CI-0003.pdf"
    pdf = Path(download.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    assert Invoice.objects.get(number="CI-0003").partner == portal_data["partner"]

    # Customer statements for May 2026, exported as CSV
    page.click("text=Customer statements")
    page.fill("#id_period", "2026-05")
    page.click("form[aria-label='Choose a month'] button[type=submit]")
    page.wait_for_url("**period=2026-05**")
    assert page.locator("table td strong", has_text="Pinecrest Law").count() == 1
    assert page.get_by_text("they are not invoices").count() == 1
    shoot(page, tmp_path, "statements")
    with page.expect_download() as info:
        page.click("a[data-export=csv]")
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8"))))
    assert [(r["customer"], r["seat_days"], r["seat_months"]) for r in rows] == [
        ("oakridge", "93", "3.0000"), ("pinecrest", "145", "4.6774")]

    # Add seats: the confirmation says when they take effect
    page.click("nav.main >> text=Add seats")
    page.fill("#id_seats", "3")
    page.click("main form button[type=submit]")
    page.wait_for_url("**/portal/seats/purchases/**")
    purchase = SeatPurchase.objects.get(source="portal")
    assert purchase.seats == 3 and purchase.effective_date == next_month_start(purchase.purchased_at)
    effective = page.locator("[data-effective-date]").get_attribute("data-effective-date")
    assert effective == purchase.effective_date.isoformat()
    shoot(page, tmp_path, "add-seats")

    # the dashboard now shows the scheduled increase
    page.click("nav.main >> text=Dashboard")
    assert f"+3 from {purchase.effective_date.day} " in page.locator(".kpi").first.inner_text()
    assert datetime.now(UTC).date() < purchase.effective_date
