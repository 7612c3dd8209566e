"""Review of access control: partner users across partners and roles, CSRF, sessions, and staff without superuser.

Attacker view: a partner login (Owner of partner A, or a Technician of A) changing ids in URLs, query strings and
form fields to reach partner B; least-privileged staff in the admin. Findings are strict xfails."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from billing.core.actor import Actor
from billing.tests.test_portal import make_partner
from invoicing.models import Invoice, Payment
from invoicing.rebilling.models import CustomerBillingProfile, CustomerPayment, ResalePrice
from partners.api_keys import api_key_create
from partners.models import ApiKey, AuditLog, PartnerUser, Role, SeatAssignment, SeatPurchase
from partners.tests.factories import PartnerUserFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_pdf(monkeypatch):
    monkeypatch.setattr("invoicing.pdf.render_invoice_pdf", lambda invoice: b"%PDF-1.7 " + invoice.number.encode())


def _client(role, partner, username=None, csrf=True):
    user = UserFactory(username=username or f"{partner.slug}-{role}-x")
    user.set_password("pw-Strong-123!")
    user.save()
    PartnerUserFactory(user=user, partner=partner, role=role)
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client, user


def _token(client, url="/portal/"):
    """A CSRF token for this client's session: read from a page's form."""
    response = client.get(url)
    cookie = client.cookies.get("csrftoken")
    if cookie is not None:
        return cookie.value
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response.content)
    assert match, f"no CSRF token on {url}"
    return match.group(1).decode()


@pytest.fixture
def world():
    a, b = make_partner("alpha"), make_partner("bravo")
    pay_b = CustomerPayment.objects.create(
        partner=b["partner"], customer=b["small"], received_on=date(2026, 5, 2), amount=Decimal("5.00"),
        currency="USD", reference="B-PAY")
    price_b = ResalePrice.objects.create(partner=b["partner"], customer=None, service=b["service"], mode="unit",
                                         unit_price=Decimal("9.00"), effective_from=date(2099, 1, 1))
    return {"a": a, "b": b, "pay_b": pay_b, "price_b": price_b}


# --- another partner's objects: GET ------------------------------------------------------------------------------

def _b_get_urls(w):
    b = w["b"]
    return [
        f"/portal/billing/invoices/{b['invoice'].pk}/pdf/",
        f"/portal/billing/invoices/{b['invoice'].pk}/xlsx/",
        f"/portal/billing/statements/?customer={b['small'].pk}",
        f"/portal/billing/statements/2026-05/export.csv?customer={b['small'].pk}",
        f"/portal/prices/?customer={b['small'].pk}",
        f"/portal/customer-invoices/?customer={b['small'].pk}",
        f"/portal/customer-invoices/{b['customer_invoice'].pk}/pdf/",
        f"/portal/customer-invoices/{b['customer_invoice'].pk}/xlsx/",
        f"/portal/customer-invoices/{b['customer_invoice'].pk}/credit/",
        f"/portal/customers/{b['small'].pk}/",
        f"/portal/customers/{b['small'].pk}/account/",
        f"/portal/customers/{b['small'].pk}/account/?invoice={b['customer_invoice'].pk}",
        f"/portal/seats/purchases/{b['purchase'].pk}/",
        f"/portal/team/keys/{b['api_key'].pk}/",
    ]


def test_owner_of_a_gets_404_on_every_object_of_b(world):
    client, _ = _client(Role.OWNER, world["a"]["partner"])
    for url in _b_get_urls(world):
        response = client.get(url)
        assert response.status_code == 404, (url, response.status_code)
        assert b"bravo" not in response.content.lower(), url


def test_a_list_filtered_to_a_customer_of_b_does_not_list_b(world):
    client, _ = _client(Role.OWNER, world["a"]["partner"])
    for url in ("/portal/customer-invoices/", "/portal/margins/", "/portal/billing/", "/portal/team/",
                "/portal/customers/", "/portal/", "/portal/prices/", "/portal/seats/add/",
                "/portal/billing/statements/?period=2026-05", "/portal/billing/statements/2026-05/export.csv",
                "/portal/margins/2026-05.csv"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"bravo" not in response.content.lower(), url


# --- another partner's objects: POST -----------------------------------------------------------------------------

def test_posts_with_ids_of_b_change_nothing_of_b(world):
    a, b = world["a"], world["b"]
    client, _ = _client(Role.OWNER, a["partner"])
    token = _token(client)
    posts = [
        (f"/portal/customers/{b['small'].pk}/seats/assign/", {"member": "mallory"}),
        (f"/portal/customers/{b['small'].pk}/seats/remove/", {"member": "ana"}),
        (f"/portal/customers/{b['small'].pk}/cap/", {"seat_cap": "0"}),
        (f"/portal/customers/{b['small'].pk}/account/payments/", {
            "customer": b["small"].pk, "received_on": "2026-05-03", "amount": "1.00"}),
        (f"/portal/customers/{b['small'].pk}/account/payments/{world['pay_b'].pk}/void/", {"reason": "x"}),
        (f"/portal/customers/{a['small'].pk}/account/payments/{world['pay_b'].pk}/void/", {"reason": "x"}),
        (f"/portal/customers/{b['small'].pk}/account/billing-details/", {
            "legal_name": "Pwned", "tax_rate": "0", "billing_emails": ""}),
        (f"/portal/customer-invoices/{b['customer_invoice'].pk}/issue/", {}),
        (f"/portal/customer-invoices/{b['customer_invoice'].pk}/credit/", {"reason": "x"}),
        ("/portal/prices/cancel/", {"price": world["price_b"].pk}),
        (f"/portal/team/keys/{b['api_key'].pk}/revoke/", {}),
        (f"/portal/team/members/{b['member'].pk}/reset/", {}),
    ]
    for url, data in posts:
        response = client.post(url, {**data, "csrfmiddlewaretoken": token})
        assert response.status_code == 404, (url, response.status_code)
    assert SeatAssignment.objects.filter(customer=b["small"], member__name="mallory").count() == 0
    b["small"].refresh_from_db()
    assert b["small"].seat_cap == 2
    assert not CustomerPayment.objects.filter(customer=b["small"]).exclude(pk=world["pay_b"].pk).exists()
    world["pay_b"].refresh_from_db()
    assert world["pay_b"].voided_at is None
    assert not CustomerBillingProfile.objects.filter(customer=b["small"]).exists()
    world["price_b"].refresh_from_db()
    b["api_key"].refresh_from_db()
    assert b["api_key"].revoked_at is None


def test_form_fields_holding_b_ids_are_refused(world):
    """The select values of A's own pages (the payment's customer and invoice, the seat service, the price list's
    customer and target) holding B's ids."""
    a, b = world["a"], world["b"]
    client, _ = _client(Role.OWNER, a["partner"])
    token = _token(client)
    # payment on A's page, customer select = B's customer
    client.post(f"/portal/customers/{a['small'].pk}/account/payments/", {
        "csrfmiddlewaretoken": token, "customer": b["small"].pk, "received_on": "2026-05-03", "amount": "1.00",
        "once_token": "t1"})
    # invoice select = B's customer invoice
    client.post(f"/portal/customers/{a['small'].pk}/account/payments/", {
        "csrfmiddlewaretoken": token, "customer": a["small"].pk, "invoice": b["customer_invoice"].pk,
        "received_on": "2026-05-03", "amount": "1.00", "once_token": "t2"})
    assert not CustomerPayment.objects.filter(invoice=b["customer_invoice"]).exists()
    assert not CustomerPayment.objects.filter(customer=b["small"]).exclude(pk=world["pay_b"].pk).exists()
    # add seats on B's service
    before = SeatPurchase.objects.filter(service=b["service"]).count()
    client.post("/portal/seats/add/", {"csrfmiddlewaretoken": token, "service": b["service"].pk, "seats": "3",
                                       "once_token": "t3"})
    assert SeatPurchase.objects.filter(service=b["service"]).count() == before
    # price for B's customer / B's service
    client.post("/portal/prices/", {"csrfmiddlewaretoken": token, "customer": b["small"].pk,
                                    "target": f"service:{a['service'].pk}", "mode": "unit", "unit_price": "1",
                                    "tier_mode": "volume", "effective_from": "2099-02-01", "once_token": "t4"})
    client.post("/portal/prices/", {"csrfmiddlewaretoken": token, "customer": "",
                                    "target": f"service:{b['service'].pk}", "mode": "unit", "unit_price": "1",
                                    "tier_mode": "volume", "effective_from": "2099-02-01", "once_token": "t5"})
    assert ResalePrice.objects.filter(service=b["service"]).count() == 1
    assert not ResalePrice.objects.filter(customer=b["small"]).exists()


# --- roles ------------------------------------------------------------------------------------------------------

BILLING_GETS = ["/portal/billing/", "/portal/billing/statements/", "/portal/billing/statements/2026-05/export.csv",
                "/portal/prices/", "/portal/customer-invoices/", "/portal/rebilling/", "/portal/margins/",
                "/portal/margins/2026-05.csv", "/portal/seats/add/"]


def test_a_technician_gets_403_on_every_money_page_and_download(world):
    a = world["a"]
    client, _ = _client(Role.TECHNICIAN, a["partner"])
    urls = [*BILLING_GETS,
        f"/portal/billing/invoices/{a['invoice'].pk}/pdf/", f"/portal/billing/invoices/{a['invoice'].pk}/xlsx/",
        f"/portal/customer-invoices/{a['customer_invoice'].pk}/pdf/",
        f"/portal/customer-invoices/{a['customer_invoice'].pk}/xlsx/",
        f"/portal/customer-invoices/{a['customer_invoice'].pk}/credit/",
        f"/portal/customers/{a['small'].pk}/account/", f"/portal/seats/purchases/{a['purchase'].pk}/",
        f"/portal/team/keys/{a['api_key'].pk}/"]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 403, (url, response.status_code)
        assert b"%PDF" not in response.content


def test_a_technician_posts_no_money_write(world):
    a = world["a"]
    client, _ = _client(Role.TECHNICIAN, a["partner"])
    token = _token(client)
    posts = [
        ("/portal/seats/add/", {"service": a["service"].pk, "seats": "3", "once_token": "x1"}),
        ("/portal/prices/", {"customer": "", "target": f"service:{a['service'].pk}", "mode": "unit",
                             "unit_price": "1", "tier_mode": "volume", "effective_from": "2099-02-01",
                             "once_token": "x2"}),
        ("/portal/prices/items/", {"code": "x", "name": "X", "once_token": "x3"}),
        (f"/portal/customers/{a['small'].pk}/account/payments/", {
            "customer": a["small"].pk, "received_on": "2026-05-03", "amount": "1.00", "once_token": "x4"}),
        (f"/portal/customers/{a['small'].pk}/account/billing-details/", {
            "legal_name": "Pwned", "tax_rate": "0", "billing_emails": ""}),
        (f"/portal/customer-invoices/{a['customer_invoice'].pk}/issue/", {}),
        (f"/portal/customer-invoices/{a['customer_invoice'].pk}/credit/", {"reason": "x", "once_token": "x5"}),
        ("/portal/rebilling/", {"enabled": "on", "number_prefix": "TECH", "payment_terms_days": "30"}),
        ("/portal/team/keys/create/", {"name": "tech", "once_token": "x6"}),
        (f"/portal/team/keys/{a['api_key'].pk}/revoke/", {}),
        (f"/portal/customers/{a['small'].pk}/cap/", {"seat_cap": "0"}),
        (f"/portal/team/members/{a['member'].pk}/reset/", {}),
    ]
    keys = ApiKey.objects.count()
    purchases = SeatPurchase.objects.count()
    for url, data in posts:
        response = client.post(url, {**data, "csrfmiddlewaretoken": token})
        assert response.status_code == 403, (url, response.status_code)
    assert ApiKey.objects.count() == keys and SeatPurchase.objects.count() == purchases
    assert not CustomerPayment.objects.filter(partner=a["partner"]).exists()
    assert not ResalePrice.objects.filter(partner=a["partner"]).exists()


def test_a_billing_user_cannot_manage_keys_or_team(world):
    a = world["a"]
    client, _ = _client(Role.BILLING, a["partner"])
    token = _token(client)
    keys = ApiKey.objects.count()
    for url in ("/portal/team/keys/create/", f"/portal/team/keys/{a['api_key'].pk}/revoke/",
                f"/portal/team/members/{a['member'].pk}/reset/"):
        response = client.post(url, {"csrfmiddlewaretoken": token, "name": "b", "once_token": "y"})
        assert response.status_code == 403, url
    assert ApiKey.objects.count() == keys
    a["api_key"].refresh_from_db()
    assert a["api_key"].revoked_at is None


def test_a_technician_team_page_shows_no_key_and_no_money_audit(world):
    a = world["a"]
    AuditLog.objects.create(partner=a["partner"], action="invoice.issued", object_repr="CI-SECRET-1",
                            actor_label="x") if hasattr(AuditLog, "partner") else None
    client, _ = _client(Role.TECHNICIAN, a["partner"])
    response = client.get("/portal/team/")
    assert response.status_code == 200
    assert a["api_key"].prefix.encode() not in response.content
    assert b"CI-SECRET-1" not in response.content
    for probe in ("?action=invoice", "?action=api_key", "?q=CI-SECRET", "?kind=invoice"):
        assert b"CI-SECRET-1" not in client.get("/portal/team/" + probe).content, probe


# --- CSRF -------------------------------------------------------------------------------------------------------

def test_every_portal_post_without_a_csrf_token_is_403(world):
    a = world["a"]
    client, _ = _client(Role.OWNER, a["partner"])
    client.get("/portal/")
    urls = [
        "/portal/seats/add/", "/portal/prices/", "/portal/prices/cancel/", "/portal/prices/items/",
        f"/portal/customers/{a['small'].pk}/seats/assign/", f"/portal/customers/{a['small'].pk}/seats/remove/",
        f"/portal/customers/{a['small'].pk}/cap/", f"/portal/customers/{a['small'].pk}/account/payments/",
        f"/portal/customers/{a['small'].pk}/account/billing-details/",
        f"/portal/customer-invoices/{a['customer_invoice'].pk}/issue/",
        f"/portal/customer-invoices/{a['customer_invoice'].pk}/credit/", "/portal/rebilling/",
        "/portal/team/keys/create/", f"/portal/team/keys/{a['api_key'].pk}/revoke/",
        f"/portal/team/members/{a['member'].pk}/reset/", "/portal/logout/", "/portal/password/reset/",
    ]
    for url in urls:
        response = client.post(url, {"member": "ana", "seat_cap": "0", "name": "k"})
        assert response.status_code == 403, (url, response.status_code)
    assert SeatAssignment.objects.filter(customer=a["small"], closed_at__isnull=True).exists() \
        if hasattr(SeatAssignment, "closed_at") else True
    a["api_key"].refresh_from_db()
    assert a["api_key"].revoked_at is None


def test_logout_by_get_does_not_end_the_session(world):
    client, _ = _client(Role.OWNER, world["a"]["partner"])
    client.get("/portal/logout/")
    assert client.get("/portal/").status_code == 200


def test_logout_ends_the_session_for_good(world):
    client, _ = _client(Role.OWNER, world["a"]["partner"])
    token = _token(client)
    session = client.cookies["sessionid"].value
    client.post("/portal/logout/", {"csrfmiddlewaretoken": token})
    replay = Client()
    replay.cookies["sessionid"] = session
    assert replay.get("/portal/").status_code == 302


def test_login_rotates_the_session_key(world):
    user = UserFactory(username="fix-me")
    user.set_password("pw-Strong-123!")
    user.save()
    PartnerUserFactory(user=user, partner=world["a"]["partner"], role=Role.OWNER)
    client = Client(enforce_csrf_checks=True)
    page = client.get("/portal/login/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()
    client.session["x"] = 1  # an anonymous session an attacker planted
    s = client.session
    s["planted"] = "1"
    s.save()
    planted = s.session_key
    client.cookies["sessionid"] = planted
    response = client.post("/portal/login/", {"username": "fix-me", "password": "pw-Strong-123!",
                                              "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert client.cookies["sessionid"].value != planted


def test_login_next_does_not_redirect_off_site(world):
    user = UserFactory(username="nexter")
    user.set_password("pw-Strong-123!")
    user.save()
    PartnerUserFactory(user=user, partner=world["a"]["partner"], role=Role.OWNER)
    client = Client()
    response = client.post("/portal/login/?next=https://evil.example/x",
                           {"username": "nexter", "password": "pw-Strong-123!"})
    assert response.status_code == 302
    assert "evil.example" not in response["Location"]


# --- media and stored PDFs ---------------------------------------------------------------------------------------

def test_stored_pdfs_are_not_served_without_login(world, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    (tmp_path / "invoices").mkdir()
    (tmp_path / "invoices" / "CI-BRA1-v1.pdf").write_bytes(b"%PDF-1.7 secret")
    client = Client()
    for url in ("/media/invoices/CI-BRA1-v1.pdf", "/portal/media/invoices/CI-BRA1-v1.pdf",
                "/admin/media/invoices/CI-BRA1-v1.pdf"):
        response = client.get(url)
        assert response.status_code in (302, 404), url
        assert b"secret" not in b"".join(getattr(response, "streaming_content", [response.content]))


def test_anonymous_gets_the_login_page_for_every_download(world):
    a = world["a"]
    client = Client()
    for url in (f"/portal/billing/invoices/{a['invoice'].pk}/pdf/",
                f"/portal/customer-invoices/{a['customer_invoice'].pk}/pdf/",
                "/portal/billing/statements/2026-05/export.csv", "/portal/margins/2026-05.csv"):
        response = client.get(url)
        assert response.status_code == 302 and "/portal/login/" in response["Location"], url


def test_a_staff_user_without_partner_user_gets_no_portal(world):
    staff = UserFactory(username="staffer", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    assert client.get("/portal/billing/").status_code == 403


def test_an_inactive_partner_user_gets_no_portal(world):
    client, user = _client(Role.OWNER, world["a"]["partner"])
    user.is_active = False
    user.save()
    response = client.get(f"/portal/billing/invoices/{world['a']['invoice'].pk}/pdf/")
    assert response.status_code in (302, 403)


# --- admin: staff with a single permission ----------------------------------------------------------------------

def _staff(*codenames):
    user = UserFactory(username="viewer-" + "-".join(c.split(".")[-1] for c in codenames) or "bare",
                       is_staff=True)
    for code in codenames:
        app, name = code.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=name))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client, user


def _admin_token(client):
    client.get("/admin/")
    return client.cookies["csrftoken"].value if "csrftoken" in client.cookies else None


def test_view_invoice_only_cannot_record_a_payment_or_credit(world):
    invoice = world["a"]["invoice"]
    client, _ = _staff("invoicing.view_invoice")
    assert client.get(f"/admin/invoicing/invoice/{invoice.pk}/change/").status_code == 200
    page = client.get(f"/admin/invoicing/invoice/{invoice.pk}/payment/")
    assert page.status_code == 403
    token_page = client.get(f"/admin/invoicing/invoice/{invoice.pk}/change/")
    m = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', token_page.content)
    token = m.group(1).decode() if m else ""
    for url, data in ((f"/admin/invoicing/invoice/{invoice.pk}/payment/",
                       {"amount": "88.00", "paid_on": "2026-05-10", "reference": "x", "once_token": "z1"}),
                      (f"/admin/invoicing/invoice/{invoice.pk}/credit-lines/",
                       {"lines": [], "reason": "x", "once_token": "z2"}),
                      ("/admin/invoicing/billingrun/start/", {"through": "2026-05-31", "once_token": "z3"}),
                      ("/admin/invoicing/invoice/", {"action": "credit_whole_invoice", "_selected_action": [invoice.pk],
                                                     "once_token": "z4"}),
                      ("/admin/invoicing/invoice/", {"action": "regenerate_pdf", "_selected_action": [invoice.pk]})):
        response = client.post(url, {**data, "csrfmiddlewaretoken": token})
        assert response.status_code in (200, 302, 403), (url, response.status_code)
    assert not Payment.objects.filter(invoice=invoice).exists()
    assert Invoice.objects.filter(credits=invoice).count() == 0
    invoice.refresh_from_db()
    assert not invoice.pdf


def test_view_invoice_only_reaches_no_import_and_no_key_or_rmm_page(world):
    client, _ = _staff("invoicing.view_invoice")
    for url in ("/admin/partners/apikey/", f"/admin/partners/apikey/{world['a']['api_key'].pk}/change/",
                "/admin/metering/rmmintegration/", "/admin/invoicing/billingrun/start/",
                "/admin/partners/customer/import/", "/admin/auth/user/", "/admin/partners/partneruser/"):
        response = client.get(url)
        assert response.status_code in (403, 404), (url, response.status_code)
    digest = ApiKey.objects.get(pk=world["a"]["api_key"].pk)
    secret_bits = [getattr(digest, f) for f in ("digest", "key_hash", "hashed_key") if hasattr(digest, f)]
    page = client.get("/admin/invoicing/invoice/?q=" + (secret_bits[0][:8] if secret_bits else "x"))
    for bit in secret_bits:
        assert bit.encode() not in page.content


def test_admin_payment_audit_names_the_real_actor(world):
    invoice = world["a"]["invoice"]
    client, user = _staff("invoicing.view_invoice", "invoicing.change_invoice", "invoicing.add_payment")
    page = client.get(f"/admin/invoicing/invoice/{invoice.pk}/payment/")
    assert page.status_code == 200
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()
    once = re.search(rb'name="once_token" value="([^"]+)"', page.content)
    response = client.post(f"/admin/invoicing/invoice/{invoice.pk}/payment/", {
        "csrfmiddlewaretoken": token, "amount": "10.00", "paid_on": "2026-05-10", "reference": "R1",
        "once_token": once.group(1).decode() if once else ""})
    assert response.status_code == 302, response.content[:2000]
    entry = AuditLog.objects.filter(action__startswith="payment").order_by("-pk").first()
    assert entry is not None
    assert user.username in (entry.actor_label or "") or getattr(entry, "actor_id", None) == user.pk


def test_portal_write_audit_names_the_portal_user(world):
    a = world["a"]
    client, _user = _client(Role.TECHNICIAN, a["partner"], username="tech-actor")
    token = _token(client)
    client.post(f"/portal/customers/{a['small'].pk}/seats/assign/", {"csrfmiddlewaretoken": token,
                                                                     "member": "zed"})
    entry = AuditLog.objects.filter(action__startswith="seat").order_by("-pk").first()
    assert entry is not None and "tech-actor" in (entry.actor_label or ""), entry and entry.actor_label


# --- password reset -----------------------------------------------------------------------------------------------

def _reset_post(client, email):
    page = client.get("/portal/password/reset/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()
    return client.post("/portal/password/reset/", {"email": email, "csrfmiddlewaretoken": token})


def test_portal_password_reset_is_for_portal_users_only(world, mailoutbox):
    root = UserFactory(username="root", email="root@msp.example", is_staff=True, is_superuser=True)
    client = Client(enforce_csrf_checks=True)
    response = _reset_post(client, "root@msp.example")
    assert response.status_code == 302  # the same answer as for anyone: no way to learn who has an account
    assert mailoutbox == [], mailoutbox[0].body if mailoutbox else ""
    root.refresh_from_db()


def test_portal_password_reset_still_works_for_a_portal_user(world, mailoutbox):
    _, user = _client(Role.OWNER, world["a"]["partner"], username="resetme")
    user.email = "resetme@a.example"
    user.save()
    assert _reset_post(Client(enforce_csrf_checks=True), "resetme@a.example").status_code == 302
    assert len(mailoutbox) == 1 and "resetme" in mailoutbox[0].body


def test_owner_reset_of_a_member_ends_their_session_and_password(world, mailoutbox):
    a = world["a"]
    member_client, member_user = _client(Role.TECHNICIAN, a["partner"], username="victim")
    member_user.email = "victim@a.example"
    member_user.save()
    member_client.force_login(member_user)
    owner, _ = _client(Role.OWNER, a["partner"])
    token = _token(owner)
    response = owner.post(f"/portal/team/members/{PartnerUser.objects.get(user=member_user).pk}/reset/",
                          {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and len(mailoutbox) == 1
    assert member_client.get("/portal/").status_code == 302
    member_user.refresh_from_db()
    assert not member_user.check_password("pw-Strong-123!")
    entry = AuditLog.objects.filter(action="partner_user.reset_access").order_by("-pk").first()
    assert entry is not None and entry.actor_label.startswith(f"{a['partner'].slug}-owner")


# --- API keys of partner A on partner B's slugs ------------------------------------------------------------------

def test_api_key_of_a_reaches_nothing_of_b(world):
    a, b = world["a"], world["b"]
    _, secret = api_key_create(partner=a["partner"], actor=Actor(label="t"), name="probe")
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    slug = b["small"].slug
    checks = [
        client.post("/api/partner/seats", json.dumps({"customer": slug, "member": "mallory"}),
                    content_type="application/json", **auth),
        client.delete(f"/api/partner/seats/{slug}/ana", **auth),
        client.get(f"/api/usage-records/totals/{slug}?month=2026-05", **auth),
        client.get(f"/api/reseller/tenants/{slug}/usage", **auth),
        client.post(f"/api/reseller/tenants/{slug}/suspend", "{}", content_type="application/json", **auth),
    ]
    for response in checks:
        assert response.status_code in (404, 422), (response.request["PATH_INFO"], response.status_code,
                                                     response.content[:300])
    response = client.post("/api/usage-records/call-usage", json.dumps([{
        "customer": slug, "started_at": "2026-05-02T10:00:00Z", "duration_seconds": 60, "record_id": "r1",
        "direction": "outbound", "destination": "local"}]), content_type="application/json", **auth)
    assert response.status_code == 422, response.content[:300]
    assert SeatAssignment.objects.filter(customer=b["small"], member__name="mallory").count() == 0
    for url in ("/api/usage-records/totals?month=2026-05", "/api/partner/dashboard",
                "/api/reseller/customer-charges?month=2026-05", "/api/reseller/tenants"):
        response = client.get(url, **auth)
        assert b"bravo" not in response.content.lower(), url


def test_a_technician_reads_no_price_on_the_pages_it_may_open(world):
    a = world["a"]
    client, _ = _client(Role.TECHNICIAN, a["partner"])
    for url in ("/portal/", "/portal/customers/", f"/portal/customers/{a['small'].pk}/",
                f"/portal/customers/{a['big'].pk}/", "/portal/team/"):
        response = client.get(url)
        assert response.status_code == 200, url
        text = re.sub(rb"<script.*?</script>|<style.*?</style>", b"", response.content, flags=re.S)
        assert not re.search(rb"\$\s?\d|USD|\d\.\d\d\b", text), (
            url, re.findall(rb".{60}(?:\$\s?\d|USD).{40}", text)[:3])
