"""The rebilling pages in a real browser (Debian's Chromium, Playwright, live_server) at 1440 x 900: a Billing user
opens Customer invoices from the Billing tabs (the navigation still on one line), downloads an invoice's PDF,
records a payment from the invoice's row (the form prefilled with its total) and sees the customer's balance fall.
Screenshots of every rebilling page go to the test's tmp_path (printed with -s)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.tests.test_portal_rebilling import customer_invoice
from invoicing.rebilling.models import CustomerBillingProfile, CustomerPayment, RebillingProfile
from partners.models import Role
from partners.tests.factories import CustomerFactory, PartnerFactory, PartnerUserFactory, UserFactory
from tests.browser import BROWSER, nav_on_one_line, portal_sign_in

pytestmark = [*BROWSER, pytest.mark.django_db(transaction=True)]

PASSWORD = "rebilling-pass-123"


def shoot(page, tmp_path, name: str) -> None:
    shot = tmp_path / f"portal-{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")


def test_a_billing_user_downloads_a_pdf_records_a_payment_and_sees_the_balance_fall(live_server, browser_page,
                                                                                     tmp_path):
    partner = PartnerFactory(slug="northwind", name="Northwind Managed IT Services")
    RebillingProfile.objects.create(partner=partner, enabled=True, number_prefix="NWIT", customer_billing=True,
                                    legal_name="Northwind Managed IT Services LLC", address="1 Harbour Road\nDuluth")
    contoso = CustomerFactory(partner=partner, slug="contoso", name="Contoso Dental Group")
    fabrikam = CustomerFactory(partner=partner, slug="fabrikam", name="Fabrikam Legal")
    CustomerBillingProfile.objects.create(customer=contoso, legal_name="Contoso Dental Group Inc.",
                                          tax_rate=Decimal("8"), address="9 Hill Street\nSt Paul MN",
                                          billing_emails="ap@contoso.example")
    customer_invoice(contoso, "2026-10", Decimal("350.00"), Decimal("240.00"), tax_rate=Decimal("8"))  # 378.00
    november = customer_invoice(contoso, "2026-11", Decimal("350.00"), Decimal("240.00"), tax_rate=Decimal("8"))
    customer_invoice(fabrikam, "2026-11", Decimal("540.00"), Decimal("450.00"))
    customer_invoice(fabrikam, "2026-12", Decimal("540.00"), Decimal("450.00"), issued=False)  # a draft
    user = UserFactory(username="northwind.billing", password=PASSWORD)
    PartnerUserFactory(user=user, partner=partner, role=Role.BILLING)
    page = browser_page

    portal_sign_in(page, live_server.url, "northwind.billing", PASSWORD)
    page.click("nav.main >> text=Billing")
    page.click(".tabs >> text=Customer invoices")
    page.wait_for_url("**/portal/customer-invoices/")
    header = nav_on_one_line(page)
    assert len(header["tops"]) == 1 and max(header["middles"]) - min(header["middles"]) <= 2, header
    assert header["overflow"] == header["overlap"] == 0, header
    row = page.locator(f"tr[data-invoice={november.number}]")
    assert "Issued" in row.locator("[data-state]").inner_text()
    assert row.locator("[data-due]").inner_text() == "USD 756.00"  # October's 378.00 unpaid and November's
    assert "Draft" in page.locator("[data-customer-invoices]").inner_text()
    shoot(page, tmp_path, "customer-invoices")

    with page.expect_download() as download:
        row.locator("[data-pdf]").click()
    pdf = download.value
    assert pdf.suggested_filename == f"{november.number}.pdf"
    assert pdf.path().read_bytes()[:5] == b"%PDF-"

    row.locator("[data-pay]").click()
    page.wait_for_url(f"**/portal/customers/{contoso.pk}/account/?invoice={november.pk}#pay")
    assert page.locator("[data-balance]").inner_text() == "USD 756.00"
    assert page.input_value("#id_amount") == "378.00"
    assert page.locator("#id_invoice option:checked").inner_text().startswith(november.number)
    page.fill("#id_reference", "WIRE-4471")
    page.fill("#id_method", "bank transfer")
    page.click("[data-payment-form] button[type=submit]")
    page.wait_for_url(f"**/portal/customers/{contoso.pk}/account/#payments")
    assert "Payment of USD 378.00 from Contoso Dental Group recorded against NWIT-0002" in page.locator(
        ".messages").inner_text()
    assert page.locator("[data-balance]").inner_text() == "USD 378.00"
    assert page.locator("tr[data-transaction=payment] [data-running]").first.inner_text() == "USD 378.00"
    assert CustomerPayment.objects.get(reference="WIRE-4471").invoice_id == november.pk
    shoot(page, tmp_path, "customer-account")

    page.goto(f"{live_server.url}/portal/customer-invoices/{november.pk}/credit/")
    shoot(page, tmp_path, "customer-invoice-credit")
    page.goto(f"{live_server.url}/portal/rebilling/")
    assert page.locator("[data-customer-billing]").is_visible()
    shoot(page, tmp_path, "rebilling-settings")
    page.goto(f"{live_server.url}/portal/margins/?month=2026-11")
    assert page.locator("tr[data-customer=contoso] [data-margin]").inner_text() == "USD 110.00"
    shoot(page, tmp_path, "margins")
    page.goto(f"{live_server.url}/portal/customers/{contoso.pk}/")
    shoot(page, tmp_path, "customer")
    page.click("[data-billing-links] >> text=Account and billing details")
    page.wait_for_url(f"**/portal/customers/{contoso.pk}/account/")
