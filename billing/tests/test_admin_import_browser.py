"""The admin's Import button in a real browser (Debian's Chromium through Playwright, against live_server), as a new
billing clerk meets it (issue 19, item 8): a seat-events file is uploaded, its check shows the counts and the first
rows and writes nothing, Confirm imports it and the seats are on the list; a bad file shows each `row N: column:
reason` as text on the page and imports nothing."""

from __future__ import annotations

import pytest

from partners.models import SeatAssignment
from partners.tests.factories import CustomerFactory, PartnerFactory, UserFactory
from tests.browser import BROWSER, admin_sign_in

pytestmark = BROWSER

GOOD = """partner,customer,member,action,at
acme,harbour,Ana Lima,assign,2026-04-01T09:00:00Z
acme,harbour,Ben Okafor,assign,2026-04-02T09:00:00Z
acme,harbour,Cleo Park,assign,2026-04-03T09:00:00Z
acme,harbour,Ben Okafor,unassign,2026-04-20T17:00:00Z
"""

BAD = """partner,customer,member,action,at
acme,harbour,Ana Lima,assign,2026-04-01T09:00:00Z
acme,harbour,Ben Okafor,hire,2026-04-02T09:00:00Z
acme,nowhere,Cleo Park,assign,2026-04-03T09:00:00Z
"""


@pytest.fixture
def clerk_page(live_server, browser_page, tmp_path):
    CustomerFactory(partner=PartnerFactory(slug="acme", name="Acme MSP"), slug="harbour", name="Harbour Hotel")
    UserFactory(username="clerk", password="clerk-pass-123", is_staff=True, is_superuser=True)
    admin_sign_in(browser_page, live_server.url, "clerk", "clerk-pass-123")
    return browser_page, live_server.url, tmp_path


def upload(page, url: str, name: str, text: str):
    """From the seat assignments list, the Import button, the file chosen and checked."""
    page.goto(f"{url}/admin/partners/seatassignment/")
    page.get_by_role("link", name="Import").click()
    page.wait_for_url("**/seatassignment/import/")
    page.set_input_files("#id_import_file", files=[{"name": name, "mimeType": "text/csv", "buffer": text.encode()}])
    page.get_by_role("button", name="Check file").click()
    page.wait_for_url("**/seatassignment/import/*/")


def test_a_clerk_checks_a_seat_events_file_then_imports_it(clerk_page):
    page, url, tmp_path = clerk_page
    upload(page, url, "april-seats.csv", GOOD)

    status = page.locator("#import-status")
    assert status.is_visible()
    assert "Checked: 4 rows would be imported" in status.inner_text()
    assert "Nothing has been written yet" in status.inner_text()
    preview = page.locator(".preview table")
    assert preview.is_visible()
    assert [h.strip().lower() for h in preview.locator("thead th").all_inner_texts()] == [
        "row", "partner", "customer", "member", "action", "at"]
    first = preview.locator("tbody tr").first.locator("td").all_inner_texts()
    assert first[1:5] == ["acme", "harbour", "Ana Lima", "assign"]
    assert preview.locator("tbody tr").count() == 4
    assert not SeatAssignment.objects.exists()  # the check wrote nothing
    page.screenshot(path=str(tmp_path / "import-checked.png"), full_page=True)

    page.get_by_role("button", name="Confirm import").click()
    page.wait_for_load_state()
    status = page.locator("#import-status")
    assert status.inner_text().startswith("Imported by clerk")
    assert "4 rows" in status.inner_text()
    page.screenshot(path=str(tmp_path / "import-done.png"), full_page=True)

    page.get_by_role("link", name="Back to seat assignments").click()
    page.wait_for_url("**/seatassignment/")
    rows = page.locator("#result_list tbody").inner_text()
    assert "Ana Lima" in rows and "Ben Okafor" in rows and "Cleo Park" in rows
    assert SeatAssignment.objects.count() == 3


def test_a_bad_file_shows_each_row_error_as_text_and_imports_nothing(clerk_page):
    page, url, tmp_path = clerk_page
    upload(page, url, "bad-seats.csv", BAD)

    status = page.locator("#import-status")
    assert status.is_visible() and "The file was refused" in status.inner_text()
    assert "Nothing was imported" in status.inner_text()
    problems = [p.strip() for p in page.locator("ul.problems li").all_inner_texts()]
    assert problems and all(p.startswith("row ") and p.count(": ") >= 2 for p in problems), problems
    assert any(p.startswith("row 3: action: ") for p in problems), problems
    assert any(p.startswith("row 4: customer: ") for p in problems), problems
    assert page.locator("ul.problems li").first.is_visible()
    assert page.get_by_role("button", name="Confirm import").count() == 0
    page.screenshot(path=str(tmp_path / "import-refused.png"), full_page=True)
    assert not SeatAssignment.objects.exists()
