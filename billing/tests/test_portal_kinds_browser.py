"""A partner of each billing kind uses the portal in a real browser (Debian's Chromium, Playwright, live_server):
signs in at 1440 x 900, reads its own meters on the dashboard (the seat chart for the seat partner only), finds
the navigation on one line, and downloads a PDF invoice from the Billing page.

The partners are those of billing/tests/test_portal_meters.py, built on 20 May 2026 and billed through that day;
the browser then runs at today's date, so the meters it reads are the ones carried forward since (usage and
inventories hold until the next report). (docs/img is taken by `manage.py screenshots`.)"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import time_machine

from billing.tests.test_portal_meters import BUILDERS, NOW
from invoicing.models import Invoice, InvoiceState
from invoicing.services import billing_run
from partners.models import Role
from partners.tests.factories import PartnerUserFactory, UserFactory
from tests.browser import BROWSER, nav_on_one_line, new_page, portal_sign_in

expect = pytest.importorskip("playwright.sync_api").expect  # assertions Playwright retries until they hold

pytestmark = BROWSER


PASSWORD = "kinds-pass-123"
# what each kind reads on its dashboard: a meter of its own (selector, text it shows)
METERS = {
    "seats": ("[data-kpi=committed]", "6"),  # 4 committed + 2 bought in May, in force since June
    "peak": ("[data-peak=backup]", "13"),
    "licenses": ("[data-licenses-total]", "14"),  # C3 is suspended all of this month: 4 + 10
    "storage": ("[data-licenses=millbrook]", "10"),
    "agents": ("[data-agents=endpoints]", "8"),
    "hosts": ("[data-hosts=hosting]", "10"),
    "flat": ("section[aria-label='Flat fees'] td", "Support plan"),
    "cmq": ("[data-cmq-peak]", "13"),
}


@pytest.fixture
def kinds():
    """The eight partners, each with an Owner, billed on 20 May 2026 (April's and May's CIs)."""
    with time_machine.travel(NOW, tick=False):
        partners = {kind: build() for kind, build in BUILDERS.items()}
        billing_run(through=date(2026, 5, 20))
    for partner in partners.values():
        # names as long as the demo's ("Northwind Managed IT", "northwind.billing"): the header must still fit
        partner.name = f"{partner.slug.title()} Managed IT Services"
        partner.save(update_fields=["name"])
        user = UserFactory(username=f"{partner.slug}.billing-owner", password=PASSWORD)
        PartnerUserFactory(user=user, partner=partner, role=Role.OWNER)
    return partners


@pytest.mark.django_db(transaction=True)
def test_a_partner_of_each_kind_reads_its_dashboard_and_downloads_an_invoice(kinds, browser, live_server):
    for kind, partner in kinds.items():
        page = new_page(browser, accept_downloads=True)
        portal_sign_in(page, live_server.url, f"{partner.slug}.billing-owner", PASSWORD)

        selector, text = METERS[kind]
        meter = page.locator(selector).first
        assert meter.is_visible(), kind
        assert meter.inner_text().strip() == text, (kind, meter.inner_text())
        assert page.locator("[data-billed-on]").inner_text().startswith("Billed monthly on "), kind
        assert page.locator("[data-forecast-total]").is_visible(), kind
        is_seats = kind == "seats"
        assert (page.locator("section.chart").count() == 1) is is_seats, kind
        assert (page.locator("nav.main >> text=Add seats").count() == 1) is is_seats, kind
        if not is_seats:
            assert "seat" not in page.locator("main").inner_text().lower(), kind

        header = nav_on_one_line(page)
        assert len(header["tops"]) == 1 and header["links"] >= 4, (kind, header)
        assert max(header["middles"]) - min(header["middles"]) <= 2, (kind, header)
        assert header["header"] < 64, (kind, header)
        assert header["overflow"] == header["overlap"] == 0, (kind, header)  # the links fit, clear of the user

        if is_seats:  # Add seats: the cost follows the count typed (billing/static/portal/add_seats.js)
            page.click("nav.main >> text=Add seats")
            page.wait_for_url("**/portal/seats/add/")
            page.wait_for_load_state("load")  # add_seats.js listens from then on
            page.fill("#id_seats", "3")
            expect(page.locator("[data-cost-seats]")).to_have_text("3")  # retried: the script updates it
            expect(page.locator("[data-cost-price]")).to_have_text("USD 20.00")
            expect(page.locator("[data-cost-amount]")).to_have_text("USD 60.00")
            assert header["tops"] == nav_on_one_line(page)["tops"]

        page.click("nav.main >> text=Billing")
        page.wait_for_url("**/portal/billing/")
        invoice = Invoice.objects.filter(partner=partner, state=InvoiceState.ISSUED).order_by("-issue_date").first()
        with page.expect_download() as info:
            page.click(f"a[data-pdf='{invoice.number}']")
        download = info.value
        assert download.suggested_filename == f"{invoice.number}.pdf", kind
        assert Path(download.path()).read_bytes().startswith(b"%PDF"), kind
        page.context.close()
