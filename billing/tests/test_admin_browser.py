"""The admin in a real browser (Debian's Chromium through Playwright, against live_server): at 1440 px a clerk
sees every column of the invoice list, the payment status and the PDF link included, without scrolling."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from partners.tests.factories import UserFactory
from tests.examples import replay

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium "
                                                     "(apt-get install -y chromium)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="needs playwright (pip install playwright)"),
]


@pytest.fixture
def admin_page(live_server, monkeypatch, data_dir):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop runs in this thread
    replay(data_dir / "seat-days-basic")
    UserFactory(username="clerk", password="clerk-pass-123", is_staff=True, is_superuser=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "clerk")
        page.fill("#id_password", "clerk-pass-123")
        page.click("input[type=submit]")
        yield page, live_server.url
        browser.close()


def test_the_invoice_list_shows_every_column_at_1440_px(admin_page):
    page, url = admin_page
    page.goto(f"{url}/admin/invoicing/invoice/")
    scroll, visible = page.evaluate(
        "() => { const r = document.querySelector('#changelist .results'); return [r.scrollWidth, r.clientWidth]; }")
    assert scroll <= visible, (scroll, visible)
    headers = page.locator("#result_list thead th").all_inner_texts()
    assert any("PAYMENT STATUS" in h.upper() for h in headers) and any(h.strip().upper() == "PDF" for h in headers)
    assert page.locator("#result_list a", has_text="PDF").first.is_visible()
