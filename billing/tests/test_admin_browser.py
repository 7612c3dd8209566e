"""The admin in a real browser (Debian's Chromium through Playwright, against live_server): at 1440 px a clerk
sees every column of the invoice list, the payment status and the PDF link included, of the customer list and of
the invoice lines list, the amount included, without scrolling, however long the names (issue 19, item 8)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from djmoney.money import Money

from billing.core.actor import Actor
from invoicing.services import billing_run
from partners.models import Method
from partners.tests.factories import (
    CustomerFactory,
    MemberFactory,
    PartnerFactory,
    SeatAssignmentFactory,
    ServiceFactory,
    UserFactory,
)
from tests.browser import BROWSER, admin_sign_in
from tests.examples import replay

pytestmark = BROWSER


@pytest.fixture
def admin_page(live_server, browser_page, data_dir):
    replay(data_dir / "seat-days-basic")
    UserFactory(username="clerk", password="clerk-pass-123", is_staff=True, is_superuser=True)
    admin_sign_in(browser_page, live_server.url, "clerk", "clerk-pass-123")
    return browser_page, live_server.url


def test_the_invoice_list_shows_every_column_at_1440_px(admin_page):
    page, url = admin_page
    page.goto(f"{url}/admin/invoicing/invoice/")
    scroll, visible = page.evaluate(
        "() => { const r = document.querySelector('#changelist .results'); return [r.scrollWidth, r.clientWidth]; }")
    assert scroll <= visible, (scroll, visible)
    headers = page.locator("#result_list thead th").all_inner_texts()
    assert any("PAYMENT STATUS" in h.upper() for h in headers) and any(h.strip().upper() == "PDF" for h in headers)
    assert page.locator("#result_list a", has_text="PDF").first.is_visible()


def no_horizontal_scroll(page) -> tuple[int, int]:
    return page.evaluate(
        "() => { const r = document.querySelector('#changelist .results'); return [r.scrollWidth, r.clientWidth]; }")


@pytest.fixture
def long_names(db):
    """A partner whose names are as long as clerks meet them: long customer names and slugs, a commitment per
    customer (the utilization column) and a seat cap, and services of long names with unbroken words, billed."""
    partner = PartnerFactory(slug="northern-lights-managed-services-and-cloud",
                             name="Northern Lights Managed Services and Cloud Consulting Group International")
    for n in range(4):
        customer = CustomerFactory(partner=partner, slug=f"harbourside-veterinary-and-dental-clinics-{n}",
                                   name=f"Harbourside Veterinary, Dental and Physiotherapy Clinics No. {n}",
                                   seat_cap=12)
        ServiceFactory(partner=partner, customer=customer, code=f"harbourside-clinic-seats-{n}", committed_quantity=5,
                       method=Method.SEAT_DAYS, overage_enabled=True, start_date=date(2026, 4, 1),
                       unit_price=Money(Decimal("24.00"), "USD"), overage_price=Money(Decimal("28.00"), "USD"))
        ServiceFactory(partner=partner, customer=customer, code=f"microsoft-365-business-premium-backup-{n}",
                       name="Microsoft 365 Business Premium backup with unlimited retention, eDiscovery and "
                            "AdvancedThreatProtectionForEndpointsAndServers (per user)",
                       method=Method.FLAT, start_date=date(2026, 4, 1), unit_price=Money(Decimal("1234.50"), "USD"))
        for m in range(6):
            SeatAssignmentFactory(member=MemberFactory(customer=customer, name=f"member {n}-{m}"),
                                  assigned_at=datetime(2026, 4, 1, 9, tzinfo=UTC))
    billing_run(through=date(2026, 5, 1), partner_slug=partner.slug, actor=Actor(label="test_admin_browser"))
    return partner


def test_the_customer_list_shows_every_column_at_1440_px(admin_page, long_names):
    page, url = admin_page
    page.goto(f"{url}/admin/partners/customer/?partner__id__exact={long_names.pk}")
    scroll, visible = no_horizontal_scroll(page)
    assert scroll <= visible, (scroll, visible)
    headers = [h.strip().upper() for h in page.locator("#result_list thead th").all_inner_texts()]
    assert "UTILIZATION" in headers and any("SEAT-DAYS" in h for h in headers), headers
    last = page.locator("#result_list tbody tr").first.locator("td").last
    assert "seat-days" in last.inner_text() and last.is_visible()
    box = last.bounding_box()
    assert box["x"] + box["width"] <= 1440


def test_the_invoice_lines_list_keeps_the_amount_in_view_at_1440_px(admin_page, long_names):
    page, url = admin_page
    page.goto(f"{url}/admin/invoicing/invoiceline/?q={long_names.slug}")
    assert page.locator("#result_list", has_text="AdvancedThreatProtection").count() == 1
    scroll, visible = no_horizontal_scroll(page)
    assert scroll <= visible, (scroll, visible)
    amount = page.locator("#result_list tbody tr").first.locator("td.field-amount_shown")
    assert amount.is_visible() and "USD" in amount.inner_text()
    box = amount.bounding_box()
    assert box["x"] + box["width"] <= 1440
