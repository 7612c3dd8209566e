"""The Price lists page in a real browser (Debian's Chromium, Playwright, live_server) at 1440 x 900: a Billing user
opens it from the navigation (still on one line), the form shows only the fields of the way of charging chosen,
and a markup set there is in force in the list. A screenshot goes to the test's tmp_path (printed with -s)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from invoicing.rebilling.choices import ResaleMode
from invoicing.rebilling.models import ResalePrice
from invoicing.rebilling.tests.factories import ResalePriceFactory
from partners.models import Method, Role
from partners.tests.factories import CustomerFactory, PartnerFactory, PartnerUserFactory, ServiceFactory, UserFactory
from tests.browser import BROWSER, nav_on_one_line, new_page, portal_sign_in

pytestmark = [*BROWSER, pytest.mark.django_db(transaction=True)]

PASSWORD = "prices-pass-123"


def test_a_billing_user_sets_a_markup_from_the_price_lists_page(live_server, browser, tmp_path):
    partner = PartnerFactory(slug="northwind", name="Northwind Managed IT Services")
    CustomerFactory(partner=partner, slug="contoso", name="Contoso Dental Group")
    seats = ServiceFactory(partner=partner, code="seats", name="Managed workstation seats")
    retainer = ServiceFactory(partner=partner, code="retainer", name="On-site support retainer", method=Method.FLAT,
                              unit_price=Decimal("450.00"), start_date=date(2026, 1, 1))
    ResalePriceFactory(partner=partner, service=seats, unit_price=Decimal("35.00"))
    user = UserFactory(username="northwind.billing", password=PASSWORD)
    PartnerUserFactory(user=user, partner=partner, role=Role.BILLING)

    page = new_page(browser)
    portal_sign_in(page, live_server.url, "northwind.billing", PASSWORD)
    page.click("nav.main >> text=Price lists")
    page.wait_for_url("**/portal/prices/")
    header = nav_on_one_line(page)
    assert len(header["tops"]) == 1 and max(header["middles"]) - min(header["middles"]) <= 2, header
    assert header["overflow"] == header["overlap"] == 0, header  # six links and a long name still fit

    assert page.locator("tr[data-row=seats] [data-charge]").inner_text().startswith("USD 35.00 per seat-month")
    assert page.locator("tr[data-row=seats] [data-margin]").inner_text() == "15.00"
    visible = {name: page.locator(f"#id_{name}").is_visible()
               for name in ("unit_price", "markup_percent", "package_units", "tiers")}
    assert visible == {"unit_price": True, "markup_percent": False, "package_units": False, "tiers": False}

    page.select_option("#id_target", f"service:{retainer.pk}")
    page.select_option("#id_mode", ResaleMode.MARKUP)
    assert page.locator("#id_markup_percent").is_visible() and not page.locator("#id_unit_price").is_visible()
    page.select_option("#id_mode", ResaleMode.PACKAGE)
    assert all(page.locator(f"#id_{n}").is_visible() for n in ("unit_price", "package_units", "package_price"))
    page.select_option("#id_mode", ResaleMode.MARKUP)
    page.fill("#id_markup_percent", "20")
    page.click("[data-set-price] button[type=submit]")
    page.wait_for_load_state()
    assert "price set for the default list" in page.locator(".messages").inner_text()
    assert page.locator("tr[data-row=retainer] [data-charge]").inner_text().startswith("our price + 20%")
    assert page.locator("tr[data-row=retainer] [data-margin]").inner_text() == "90.00"
    assert ResalePrice.objects.get(service=retainer).markup_percent == Decimal("20")
    shot = tmp_path / "portal-price-lists.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    page.context.close()
