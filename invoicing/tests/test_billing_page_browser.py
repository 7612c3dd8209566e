"""The billing page in a real browser (Debian's Chromium through Playwright, against live_server): a Billing clerk
opens Invoicing > Billing runs, previews billing through 1 June, sees the drafts with the true-up and the
first-month proration marked, runs it, and sees the run's page with links to the invoices it issued."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from invoicing.models import BillingRun, Invoice
from invoicing.tests.test_billing_page import partner_with_history
from partners.tests.factories import UserFactory
from tests.browser import BROWSER, admin_sign_in
from tests.test_access import CLERK, apply_group_migrations

pytestmark = BROWSER


@pytest.fixture
def clerk_page(live_server, browser_page):
    apply_group_migrations()  # live_server's transactional test flushed the groups
    partner_with_history()
    user = UserFactory(username="clara", password="clerk-pass-123", is_staff=True)
    user.groups.add(Group.objects.get(name=CLERK))
    admin_sign_in(browser_page, live_server.url, "clara", "clerk-pass-123")
    return browser_page, live_server.url


def test_a_clerk_previews_then_runs_billing_and_sees_what_was_issued(clerk_page):
    page, url = clerk_page
    page.goto(f"{url}/admin/")
    page.click("text=Billing runs")
    expect(page.locator(".billing-empty")).to_contain_text("No billing runs yet")

    page.fill("#id_through", "2026-06-01")
    page.click("input[name=_preview]")
    expect(page.locator("h1")).to_contain_text("Preview #")
    assert page.locator("tr.document").count() == 2  # the June CI and the backup's first-month INV
    true_up = page.locator("tr.line.notable[data-line-type=true_up]")
    assert true_up.count() == 1 and true_up.is_visible() and "true-up" in true_up.inner_text()
    assert page.locator("tr.line.notable[data-line-type=first_month]").count() == 1
    assert page.locator("table.documents a", has_text="draft #").count() == 2
    assert not Invoice.objects.filter(number="CI-0002").exists()

    page.click("input[name=_run]")
    expect(page.locator("h1")).to_contain_text("Billing run #")
    assert page.locator("#run-started-by").inner_text() == "clara"
    assert page.locator(".run-status").inner_text() == "succeeded"
    links = page.locator("table.documents a")
    assert links.all_inner_texts() == ["INV-0001", "CI-0002"]
    assert BillingRun.objects.filter(draft=False).get().started_by.username == "clara"

    page.click("table.documents a >> text=CI-0002")
    expect(page.locator("#content")).to_contain_text("CI-0002")
    assert "/admin/invoicing/invoice/" in page.url
    page.goto(f"{url}/admin/invoicing/billingrun/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2 and "Run #" in rows.nth(0).inner_text() and "clara" in rows.nth(0).inner_text()
