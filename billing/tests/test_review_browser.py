"""A review of the partner portal and the admin in a real browser (Debian's Chromium through Playwright, against
live_server), as a billing clerk and as a partner (MSP) use them.

Some tests pin findings of the review, now fixed: a long service or customer name no longer widens a portal page
(Add seats at 1440 px; statements, price lists and customer invoices on a phone: a form control takes at most its
box's width and a wide table scrolls in its own box), the forecast of a 0% partner has no tax line, a refused member
name says why, the audit log names a payment's customer once, a customer's tax rate above 100% is refused, and the
admin's customer invoice and one-time charge lists keep their last column in view at 1440 px. The others pin what
the review found correct: another partner's documents are refused without a leak, the PDF and XLSX downloads hold
the invoice's figures, refused input writes nothing, and a partner with no invoice yet sees empty states, not errors.
"""

from __future__ import annotations

import io
import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from djmoney.money import Money

from billing.tests.test_portal_rebilling import customer_invoice
from invoicing.models import Invoice
from invoicing.rebilling.models import CustomerBillingProfile, CustomerPayment, RebillingProfile
from partners.models import AuditLog, Method, Partner, Role, SeatAssignment
from partners.tests.factories import (
    CustomerFactory,
    MemberFactory,
    PartnerFactory,
    PartnerUserFactory,
    SeatAssignmentFactory,
    ServiceFactory,
    UserFactory,
)
from tests.browser import BROWSER, admin_sign_in, new_page, portal_sign_in
from tests.examples import replay

pytestmark = [*BROWSER, pytest.mark.django_db(transaction=True)]

PASSWORD = "review-pass-123"
LONG_SERVICE = ("Microsoft 365 Business Premium backup with unlimited retention, eDiscovery and "
                "AdvancedThreatProtectionForEndpointsAndServers (per user)")


def shoot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"review-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def page_overflow(page) -> int:
    """How many pixels the page runs past the window's width (0: no horizontal scroll)."""
    return page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


def as_reviewed(page) -> None:
    """Draw the page in DejaVu Sans, the font the review's Chromium had (the admin's font stack falls back to it where
    no Noto Sans is installed): wider than Noto Sans, so a list that only just fits in one fails in the other."""
    page.add_style_tag(content='*{font-family:"DejaVu Sans",sans-serif !important}')


def portal_user(partner, username: str, role=Role.OWNER):
    user = UserFactory(username=username, password=PASSWORD, email=f"{username}@example.com")
    PartnerUserFactory(user=user, partner=partner, role=role)
    return user


def csrf_post(page, url: str, form: dict):
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    return page.request.post(url, form={"csrfmiddlewaretoken": token, **form}, headers={"X-CSRFToken": token},
                             max_redirects=0)


# --- the worked example, billed: brightdesk (with a Billing user) and a second partner ------------------------------

@pytest.fixture
def two_partners(data_dir):
    replay(data_dir / "seat-days-basic")
    brightdesk = Partner.objects.get(slug="brightdesk")
    portal_user(brightdesk, "bright.billing", Role.BILLING)
    other = PartnerFactory(slug="rival-msp", name="Rival MSP Holdings")
    portal_user(other, "rival.owner")
    return brightdesk, other


def test_another_partners_invoice_urls_are_refused_without_a_leak(two_partners, browser, live_server):
    brightdesk, _other = two_partners
    invoice = Invoice.objects.filter(partner=brightdesk, state="issued").order_by("number").first()
    page = new_page(browser)
    portal_sign_in(page, live_server.url, "rival.owner", PASSWORD)
    for suffix in ("pdf", "xlsx"):
        response = page.request.get(f"{live_server.url}/portal/billing/invoices/{invoice.pk}/{suffix}/")
        assert response.status == 404, (suffix, response.status)
        body = response.body()
        assert not body.startswith(b"%PDF") and b"BrightDesk" not in body and invoice.number.encode() not in body
    customer = brightdesk.customers.first()
    cap = customer.seat_cap
    assert page.request.get(f"{live_server.url}/portal/customers/{customer.pk}/").status == 404
    assert csrf_post(page, f"{live_server.url}/portal/customers/{customer.pk}/cap/", {"seat_cap": "1"}).status == 404
    customer.refresh_from_db()
    assert customer.seat_cap == cap  # nothing written through another partner's URL


def test_the_pdf_and_the_xlsx_downloaded_from_the_portal_hold_the_invoices_figures(two_partners, browser,
                                                                                   live_server, tmp_path):
    _brightdesk, _other = two_partners
    page = new_page(browser, accept_downloads=True)
    portal_sign_in(page, live_server.url, "bright.billing", PASSWORD)
    page.goto(f"{live_server.url}/portal/billing/")
    shoot(page, tmp_path, "billing")
    invoice = Invoice.objects.get(number="CI-0003")
    with page.expect_download() as info:
        page.click("a[data-pdf='CI-0003']")
    pdf = tmp_path / "CI-0003.pdf"
    info.value.save_as(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "CI-0003" in text and "BrightDesk" in text
    assert f"USD {invoice.total:,.2f}" in text  # the total as the PDF prints it: currency, cents, thousands

    with page.expect_download() as info:
        page.click(f"a[href='/portal/billing/invoices/{invoice.pk}/xlsx/']")
    sheet = openpyxl.load_workbook(io.BytesIO(Path(info.value.path()).read_bytes())).active
    rows = list(sheet.iter_rows(values_only=True))
    header, lines = rows[0], [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert header[:3] == ("invoice_number", "kind", "status") and header[-1] == "description"
    assert {line["invoice_number"] for line in lines} == {"CI-0003"}
    assert sum(Decimal(str(line["amount"])) for line in lines) == invoice.total
    tax = [line for line in lines if line["line_type"] == "tax"]
    assert len(tax) == 1 and tax[0]["quantity"] is None and Decimal(str(tax[0]["unit_price"])) == invoice.tax_rate


# --- a partner with no invoice yet, long names, a currency without cents ------------------------------------------

@pytest.fixture
def long_names_no_invoices():
    """A JPY partner whose seat-days service started this month (no invoice yet), with very long names."""
    partner = PartnerFactory(slug="northern-lights-managed-services-and-cloud", currency="JPY",
                             name="Northern Lights Managed Services and Cloud Consulting Group International",
                             tax_rate=Decimal("10"))
    today = datetime.now(UTC)
    start = date(today.year, today.month, 1)
    for n in range(2):
        customer = CustomerFactory(partner=partner, slug=f"harbourside-veterinary-and-dental-clinics-{n}",
                                   name=f"Harbourside Veterinary, Dental and Physiotherapy Clinics No. {n}")
        SeatAssignmentFactory(member=MemberFactory(customer=customer, name=f"member {n}"),
                              assigned_at=datetime(start.year, start.month, 1, 9, tzinfo=UTC))
    ServiceFactory(partner=partner, code="northern-lights-seats", name=LONG_SERVICE, method=Method.SEAT_DAYS,
                   committed_quantity=5, overage_enabled=True, start_date=start,
                   unit_price=Money(Decimal("2450"), "JPY"), overage_price=Money(Decimal("2999"), "JPY"))
    portal_user(partner, "longname.owner")
    return partner


def test_a_partner_with_no_invoice_yet_sees_empty_states(long_names_no_invoices, browser, live_server, tmp_path):
    page = new_page(browser)
    portal_sign_in(page, live_server.url, "longname.owner", PASSWORD)
    response = page.goto(f"{live_server.url}/portal/billing/")
    assert response.status == 200
    text = page.locator("main").inner_text()
    assert "No invoice has been issued to your account yet." in text
    assert "JPY 0 owed now" in text  # JPY has no minor unit: no ".00"
    shoot(page, tmp_path, "billing-no-invoices")
    for path in ("/portal/", "/portal/customers/", "/portal/customer-invoices/", "/portal/margins/", "/portal/team/"):
        assert page.goto(f"{live_server.url}{path}").status == 200, path


def test_the_add_seats_page_fits_1440_px_with_a_long_service_name(long_names_no_invoices, browser, live_server,
                                                                   tmp_path):
    page = new_page(browser, 1440, 900)
    portal_sign_in(page, live_server.url, "longname.owner", PASSWORD)
    page.goto(f"{live_server.url}/portal/seats/add/")
    shoot(page, tmp_path, "add-seats-long-name")
    assert page_overflow(page) == 0


def test_the_statements_page_fits_a_phone_with_long_customer_names(long_names_no_invoices, browser, live_server,
                                                                    tmp_path):
    page = new_page(browser, 390, 844)
    portal_sign_in(page, live_server.url, "longname.owner", PASSWORD)
    page.goto(f"{live_server.url}/portal/billing/statements/")
    shoot(page, tmp_path, "statements-phone-long-names")
    assert page_overflow(page) == 0


# --- the forecast of a 0% partner -------------------------------------------------------------------------------

def test_the_forecast_of_a_partner_at_0_percent_has_no_tax_line(browser, live_server):
    partner = PartnerFactory(slug="zero-tax", name="Zero Tax MSP", tax_rate=Decimal("0"))
    ServiceFactory(partner=partner, code="portal", name="Client portal", method=Method.FLAT,
                   start_date=date(2026, 1, 1), unit_price=Money(Decimal("30.00"), "USD"))
    portal_user(partner, "zero.billing", Role.BILLING)
    page = new_page(browser)
    portal_sign_in(page, live_server.url, "zero.billing", PASSWORD)
    page.goto(f"{live_server.url}/portal/billing/")
    forecast = page.locator("main section, main .card").filter(has_text="Next invoice, forecast").first
    assert "USD 30.00" in forecast.inner_text()
    assert "Tax 0%" not in forecast.inner_text()


# --- seats: the error says what is wrong ------------------------------------------------------------------------

@pytest.fixture
def seat_partner():
    partner = PartnerFactory(slug="seatco", name="SeatCo MSP")
    customer = CustomerFactory(partner=partner, slug="oakridge", name="Oakridge Dental")
    ServiceFactory(partner=partner, code="seats", name="Seats", method=Method.SEAT_DAYS, committed_quantity=2,
                   overage_enabled=True, start_date=date(2026, 1, 1))
    portal_user(partner, "seat.owner")
    return customer


def test_a_refused_member_name_is_told_why(seat_partner, browser, live_server, tmp_path):
    page = new_page(browser)
    portal_sign_in(page, live_server.url, "seat.owner", PASSWORD)
    page.goto(f"{live_server.url}/portal/customers/{seat_partner.pk}/")
    page.evaluate("() => { const i = document.querySelector('#id_member'); i.value = 'ana\\tbrown'; }")
    page.click("form:has(#id_member) button[type=submit]")
    page.wait_for_load_state("networkidle")
    shoot(page, tmp_path, "assign-tab")
    assert not SeatAssignment.objects.filter(member__customer=seat_partner).exists()  # nothing written
    message = page.locator("main").inner_text()
    assert "Enter the member's name." not in message
    assert "control character" in message


# --- customer payments and billing details (rebilling) ----------------------------------------------------------

@pytest.fixture
def rebilling_partner():
    partner = PartnerFactory(slug="northwind", name="Northwind Managed IT")
    RebillingProfile.objects.create(partner=partner, enabled=True, number_prefix="NWIT", customer_billing=True)
    contoso = CustomerFactory(partner=partner, slug="contoso-dental", name="Contoso Dental Group")
    fabrikam = CustomerFactory(partner=partner, slug="fabrikam-law", name="Fabrikam Law LLP")
    CustomerBillingProfile.objects.create(customer=contoso, legal_name="Contoso Dental Group PLLC",
                                          tax_rate=Decimal("7.375"), billing_emails="ap@contoso.example")
    for month in ("2026-09", "2026-10", "2026-11"):
        customer_invoice(contoso, month, Decimal("150.00"), Decimal("110.00"), tax_rate=Decimal("7.375"))
        customer_invoice(fabrikam, month, Decimal("540.00"), Decimal("450.00"))
    portal_user(partner, "northwind.billing", Role.BILLING)
    return contoso


def _fill_payment(page, amount: str, day: str) -> None:
    page.evaluate("() => document.querySelectorAll('form').forEach(f => f.noValidate = true)")
    page.evaluate(f"""() => {{ const f = document.querySelector('[data-payment-form]');
        f.querySelector('#id_amount').value = {amount!r}; f.querySelector('#id_received_on').value = {day!r}; }}""")
    page.click("[data-payment-form] button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_a_refused_customer_payment_names_the_field_and_writes_nothing(rebilling_partner, browser, live_server):
    page = new_page(browser)
    portal_sign_in(page, live_server.url, "northwind.billing", PASSWORD)
    account = f"{live_server.url}/portal/customers/{rebilling_partner.pk}/account/"
    for amount, day, error in [("10.005", "2026-12-01", "10.005 has more decimals than USD has"),
                               ("-5", "2026-12-01", "greater than or equal to 0.01"),
                               ("10", "2999-01-05", "2999-01-05 is in the future")]:
        page.goto(account)
        _fill_payment(page, amount, day)
        assert error in page.locator("[data-payment-form]").inner_text(), (amount, day)
    assert not CustomerPayment.objects.exists()


def test_the_audit_log_names_a_payments_customer_once(rebilling_partner, browser, live_server, tmp_path):
    page = new_page(browser)
    portal_sign_in(page, live_server.url, "northwind.billing", PASSWORD)
    page.goto(f"{live_server.url}/portal/customers/{rebilling_partner.pk}/account/")
    _fill_payment(page, "161.06", "2026-11-20")
    assert CustomerPayment.objects.count() == 1
    assert AuditLog.objects.filter(action="customer_payment.record").count() == 1
    page.goto(f"{live_server.url}/portal/team/")
    row = page.locator("tr", has_text="recorded a payment of USD 161.06").first
    shoot(page, tmp_path, "audit-payment")
    assert row.inner_text().count("customer: Contoso Dental Group") == 1, row.inner_text()


def test_a_customer_tax_rate_above_100_percent_is_refused(rebilling_partner, browser, live_server):
    page = new_page(browser)
    portal_sign_in(page, live_server.url, "northwind.billing", PASSWORD)
    page.goto(f"{live_server.url}/portal/customers/{rebilling_partner.pk}/account/")
    page.evaluate("() => document.querySelectorAll('form').forEach(f => f.noValidate = true)")
    page.fill("#id_tax_rate", "150")
    page.click("[data-billing-details] button[type=submit]")
    page.wait_for_load_state("networkidle")
    rebilling_partner.billing_profile.refresh_from_db()
    assert rebilling_partner.billing_profile.tax_rate == Decimal("7.375")
    assert "100" in page.locator("[data-billing-details]").inner_text()


# --- the admin's customer invoice list at 1440 px ---------------------------------------------------------------

def test_the_customer_invoice_list_shows_the_pdf_column_at_1440_px(rebilling_partner, browser_page, live_server,
                                                                    tmp_path):
    UserFactory(username="clerk", password=PASSWORD, is_staff=True, is_superuser=True)
    page = browser_page
    admin_sign_in(page, live_server.url, "clerk", PASSWORD)
    page.goto(f"{live_server.url}/admin/rebilling/customerinvoice/")
    as_reviewed(page)
    shoot(page, tmp_path, "admin-customer-invoices")
    scroll, visible = page.evaluate(
        "() => { const r = document.querySelector('#changelist .results'); return [r.scrollWidth, r.clientWidth]; }")
    assert scroll <= visible, (scroll, visible)
    pdf = page.locator("#result_list tbody tr").first.locator("a", has_text="PDF")
    box = pdf.bounding_box()
    assert box["x"] + box["width"] <= visible + 40


# --- more of the same findings, pinned where the review saw them -------------------------------------------------

def test_the_portals_pages_fit_a_phone_with_long_names(long_names_no_invoices, browser, live_server, tmp_path):
    """Price lists and Customer invoices (their List / Customer <select>), Add seats (the Service <select>) and the
    other pages of long names: on a phone the page never scrolls sideways; a wide table scrolls in its own box."""
    page = new_page(browser, 390, 844)
    portal_sign_in(page, live_server.url, "longname.owner", PASSWORD)
    for path in ("/portal/prices/", "/portal/customer-invoices/", "/portal/seats/add/", "/portal/billing/",
                 "/portal/customers/", "/portal/margins/", "/portal/team/", "/portal/"):
        assert page.goto(f"{live_server.url}{path}").status == 200, path
        shoot(page, tmp_path, "phone" + path.replace("/", "-"))
        assert page_overflow(page) == 0, path
    for selector in ("select", "input"):  # none wider than its box
        assert page.goto(f"{live_server.url}/portal/prices/").status == 200
        assert page.evaluate(f"""() => [...document.querySelectorAll('main {selector}')].every(e =>
            e.getBoundingClientRect().right <= e.parentElement.getBoundingClientRect().right + 1)""")


def test_a_member_name_over_200_characters_is_told_why(seat_partner, browser, live_server):
    page = new_page(browser)
    portal_sign_in(page, live_server.url, "seat.owner", PASSWORD)
    page.goto(f"{live_server.url}/portal/customers/{seat_partner.pk}/")
    page.evaluate("() => { const i = document.querySelector('#id_member'); i.removeAttribute('maxlength');"
                  " i.value = 'a'.repeat(201); }")
    page.click("form:has(#id_member) button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert not SeatAssignment.objects.filter(member__customer=seat_partner).exists()
    message = page.locator("main").inner_text()
    assert "at most 200 characters; this one has 201" in message and "Enter the member's name." not in message


def test_a_customer_tax_rate_is_a_percent_in_the_model_too(rebilling_partner):
    """The rule lives on the model (full_clean: the portal, the admin and the service); 100 itself is a rate."""
    from django.core.exceptions import ValidationError  # noqa: PLC0415

    from billing.core.actor import Actor  # noqa: PLC0415
    from invoicing.rebilling.profiles import customer_billing_profile_save  # noqa: PLC0415

    profile = rebilling_partner.billing_profile
    profile.tax_rate = Decimal("100.001")
    with pytest.raises(ValidationError) as refused:
        profile.full_clean()
    assert refused.value.message_dict == {"tax_rate": ["is a percent: at most 100"]}
    with pytest.raises(ValidationError):
        customer_billing_profile_save(customer=rebilling_partner, data={"tax_rate": Decimal("150")},
                                      actor=Actor(label="test"))
    profile.refresh_from_db()
    assert profile.tax_rate == Decimal("7.375")
    customer_billing_profile_save(customer=rebilling_partner, data={"tax_rate": Decimal("100")},
                                  actor=Actor(label="test"))
    profile.refresh_from_db()
    assert profile.tax_rate == Decimal("100")


def test_a_voided_payments_audit_entry_names_its_customer_once(rebilling_partner):
    """The void's entry holds the customer by slug and by id as the record's does: one "customer" row, by name."""
    from billing.core.actor import Actor  # noqa: PLC0415
    from invoicing.rebilling.accounts import customer_payment_record, customer_payment_void  # noqa: PLC0415
    from partners.audit_text import audit_texts  # noqa: PLC0415

    actor = Actor(label="test")
    payment = customer_payment_record(payment=CustomerPayment(
        partner=rebilling_partner.partner, customer=rebilling_partner, received_on=date(2026, 11, 20),
        amount=Decimal("161.06"), currency="USD"), actor=actor)
    customer_payment_void(payment=payment, actor=actor, reason="entered twice")
    entries = AuditLog.objects.filter(action__in=["customer_payment.record", "customer_payment.void"])
    assert entries.count() == 2
    for text in audit_texts(list(entries)):
        labels = [change.label for change in text.changes]
        assert labels.count("customer") == 1, (text.what, text.changes)
        shown = next(change for change in text.changes if change.label == "customer")
        assert "Contoso Dental Group" in (shown.before, shown.after)


@pytest.fixture
def long_name_rebilling():
    """A partner and customers of long names with customer invoices and one-time charges."""
    partner = PartnerFactory(slug="northern-lights-managed-services-and-cloud",
                             name="Northern Lights Managed Services and Cloud Consulting Group International")
    RebillingProfile.objects.create(partner=partner, enabled=True, number_prefix="NLMS", customer_billing=True)
    from invoicing.models import OneTimeCharge  # noqa: PLC0415

    for n in range(3):
        customer = CustomerFactory(partner=partner, slug=f"harbourside-veterinary-and-dental-clinics-{n}",
                                   name=f"Harbourside Veterinary, Dental and Physiotherapy Clinics No. {n}")
        customer_invoice(customer, "2026-10", Decimal("12345.00"), Decimal("10000.00"))
        OneTimeCharge.objects.create(
            partner=partner, customer=customer, date=date(2026, 10, 7 + n), quantity=Decimal("6.5"),
            unit_price=Decimal("1234.5"), taxable=bool(n % 2),
            description="Onboarding: network assessment and AdvancedThreatProtectionForEndpointsAndServers rollout",
            source="import one-time-charges-northern-lights-2026-10.csv")
    UserFactory(username="clerk", password=PASSWORD, is_staff=True, is_superuser=True)
    return partner


@pytest.mark.parametrize(("path", "last"), [("rebilling/customerinvoice", "td.field-pdf_link"),
                                            ("invoicing/onetimecharge", "td.field-source")])
def test_the_admins_rebilling_lists_keep_their_last_column_in_view_with_long_names(
        long_name_rebilling, browser_page, live_server, tmp_path, path, last):
    page = browser_page
    admin_sign_in(page, live_server.url, "clerk", PASSWORD)
    page.goto(f"{live_server.url}/admin/{path}/")
    as_reviewed(page)
    shoot(page, tmp_path, "admin-long-" + path.replace("/", "-"))
    scroll, visible = page.evaluate(
        "() => { const r = document.querySelector('#changelist .results'); return [r.scrollWidth, r.clientWidth]; }")
    assert scroll <= visible, (scroll, visible)
    cell = page.locator("#result_list tbody tr").first.locator(last)
    box = cell.bounding_box()
    results = page.locator("#changelist .results").bounding_box()
    assert cell.is_visible() and box["x"] + box["width"] <= results["x"] + results["width"] + 1


def test_the_one_time_charge_list_shows_the_source_column_at_1440_px(rebilling_partner, browser_page, live_server,
                                                                     tmp_path):
    """The demo's charges (as the review saw them, with DejaVu Sans): the Source column was cut off."""
    from invoicing.models import OneTimeCharge  # noqa: PLC0415

    for n, (description, customer) in enumerate([("RMM agent rollout (project hours)", None),
                                                 ("Firewall appliance (hardware)", rebilling_partner),
                                                 ("Onboarding: network assessment", rebilling_partner)]):
        OneTimeCharge.objects.create(partner=rebilling_partner.partner, customer=customer, description=description,
                                     date=date(2026, 10, 7 + 7 * n), quantity=Decimal("6.5"),
                                     unit_price=Decimal("95"), source="load_demo one-time.csv")
    UserFactory(username="clerk", password=PASSWORD, is_staff=True, is_superuser=True)
    page = browser_page
    admin_sign_in(page, live_server.url, "clerk", PASSWORD)
    page.goto(f"{live_server.url}/admin/invoicing/onetimecharge/")
    as_reviewed(page)
    shoot(page, tmp_path, "admin-one-time-charges")
    scroll, visible = page.evaluate(
        "() => { const r = document.querySelector('#changelist .results'); return [r.scrollWidth, r.clientWidth]; }")
    assert scroll <= visible, (scroll, visible)
