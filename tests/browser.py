"""The browser tests' kit: Debian's Chromium driven by Playwright against live_server.

A browser test module starts with `pytestmark = BROWSER` (or `[*BROWSER, ...]`): marked `browser`, and skipped with
the reason where Chromium or Playwright is missing. The fixtures `browser` (the Chromium) and `browser_page` (a page
of 1440 x 900 in it) are in the root conftest.py; `admin_sign_in` and `portal_sign_in` sign a user in on a page.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

from billing.screenshots import CHROMIUM

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

BROWSER = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium "
                                                     "(apt-get install -y chromium)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="needs playwright (pip install playwright)"),
]

WIDTH, HEIGHT = 1440, 900
TIMEOUT_MS = 15_000


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, closed when the block ends."""
    # conftest.py imports this module for every test; only the browser tests need Playwright
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 (optional: see above)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Browser, width: int = WIDTH, height: int = HEIGHT, **context) -> Page:
    """A page in a context of its own with a viewport of `width` x `height` (`context`: more of the context's
    options, e.g. accept_downloads=True); closing the browser closes it."""
    page = browser.new_context(viewport={"width": width, "height": height}, **context).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


def admin_sign_in(page: Page, url: str, username: str, password: str) -> None:
    """Sign in to the admin at live_server's `url`; the page ends on the admin's index."""
    _sign_in(page, f"{url}/admin/login/", f"{url}/admin/", username, password)


def portal_sign_in(page: Page, url: str, username: str, password: str) -> None:
    """Sign in to the partner portal at live_server's `url`; the page ends on the dashboard."""
    _sign_in(page, f"{url}/portal/login/", f"{url}/portal/", username, password)


def _sign_in(page: Page, login: str, landing: str, username: str, password: str) -> None:
    page.goto(login)
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("[type=submit]")
    page.wait_for_url(landing)


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
