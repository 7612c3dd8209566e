"""A partner of each billing kind uses the portal in a real browser (Debian's Chromium, Playwright, live_server):
signs in at 1440 x 900, reads its own meters on the dashboard (the seat chart for the seat partner only), finds
the navigation on one line, and downloads a PDF invoice from the Billing page.

The partners are those of billing/tests/test_portal_meters.py, built on 20 May 2026 and billed through that day;
the browser then runs at today's date, so the meters it reads are the ones carried forward since (usage and
inventories hold until the next report). Screenshots go to the test's tmp_path (printed with -s)."""

from __future__ import annotations

import importlib.util
from datetime import date
from pathlib import Path

import pytest
import time_machine
from playwright.sync_api import sync_playwright

from billing.tests.test_portal_meters import BUILDERS, NOW
from invoicing.models import Invoice, InvoiceState
from invoicing.services import billing_run
from partners.models import Role
from partners.tests.factories import PartnerUserFactory, UserFactory

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium "
                                                     "(apt-get install -y chromium)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="needs playwright (pip install playwright)"),
]

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


@pytest.fixture
def browser(live_server, monkeypatch):
    # Playwright's sync API runs an event loop in this thread: let the test read the database too
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()


def nav_on_one_line(page) -> dict:
    """The header's geometry: every link of the navigation, the brand and the user's corner on one row, and how far
    the links run past the navigation (`overflow`) or into the user's corner (`overlap`): 0 when they fit."""
    return page.evaluate("""() => {
        const links = [...document.querySelectorAll('nav.main a')];
        const tops = links.map(a => Math.round(a.getBoundingClientRect().top));
        const row = el => { const r = el.getBoundingClientRect(); return Math.round(r.top + r.height / 2); };
        const middles = ['.brand', 'nav.main', '.who'].map(s => row(document.querySelector(s)));
        const nav = document.querySelector('nav.main');
        const last = Math.max(...links.map(a => a.getBoundingClientRect().right));
        return {tops: [...new Set(tops)], middles: [...new Set(middles)],
                header: Math.round(document.querySelector('header.top').getBoundingClientRect().height),
                links: tops.length, overflow: Math.max(0, nav.scrollWidth - nav.clientWidth),
                overlap: Math.max(0, Math.ceil(last - document.querySelector('.who').getBoundingClientRect().left))};
    }""")


@pytest.mark.django_db(transaction=True)
def test_a_partner_of_each_kind_reads_its_dashboard_and_downloads_an_invoice(kinds, browser, live_server, tmp_path):
    for kind, partner in kinds.items():
        context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{live_server.url}/portal/login/")
        page.fill("#id_username", f"{partner.slug}.billing-owner")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/portal/")

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
        shot = tmp_path / f"portal-{kind}-dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot: {shot}")

        if is_seats:  # Add seats: the cost follows the count typed (billing/static/portal/add_seats.js)
            page.click("nav.main >> text=Add seats")
            page.fill("#id_seats", "3")
            assert page.locator("[data-cost-seats]").inner_text() == "3"
            assert page.locator("[data-cost-price]").inner_text() == "USD 20.00"
            assert page.locator("[data-cost-amount]").inner_text() == "USD 60.00"
            assert header["tops"] == nav_on_one_line(page)["tops"]

        page.click("nav.main >> text=Billing")
        page.wait_for_url("**/portal/billing/")
        invoice = Invoice.objects.filter(partner=partner, state=InvoiceState.ISSUED).order_by("-issue_date").first()
        with page.expect_download() as info:
            page.click(f"a[data-pdf='{invoice.number}']")
        download = info.value
        assert download.suggested_filename == f"{invoice.number}.pdf", kind
        assert Path(download.path()).read_bytes().startswith(b"%PDF"), kind
        context.close()
