"""The partner portal through Django's test client: scoping (another partner's object is a 404),
roles (a Technician sees no billing), seats, seat purchases, statements and API keys."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import URLPattern, reverse
from django.utils import timezone

from billing.core.actor import Actor
from billing.core.periods import Period, next_month_start
from billing.core.reporting import ReportOptions, write_csv
from billing.portal import urls as portal_urls
from billing.portal.selectors import daily_assigned_seats
from invoicing.models import Invoice, InvoiceKind, InvoiceState
from invoicing.rebilling.models import CustomerInvoice, CustomerPayment
from metering.reports import StatementsReport
from partners.api_keys import api_key_create
from partners.audit import audit_record
from partners.models import ApiKey, AuditLog, Customer, Member, Partner, PartnerUser, Role, SeatAssignment, SeatPurchase
from partners.tests.factories import (
    CustomerFactory,
    MemberFactory,
    PartnerFactory,
    PartnerUserFactory,
    SeatAssignmentFactory,
    SeatPurchaseFactory,
    ServiceFactory,
    UserFactory,
)
from tests.examples import expected_rows, replay

pytestmark = pytest.mark.django_db

SINCE = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def make_partner(slug: str):
    """A partner with two customers, a seat_days commitment, seats, a purchase, an issued CI and an API key."""
    partner = PartnerFactory(slug=slug)
    service = ServiceFactory(partner=partner, code=f"{slug}-seats", committed_quantity=10, overage_enabled=True)
    small = CustomerFactory(partner=partner, slug=f"{slug}-small", name=f"{slug} Small", seat_cap=2)
    big = CustomerFactory(partner=partner, slug=f"{slug}-big", name=f"{slug} Big")
    SeatAssignmentFactory(member=MemberFactory(customer=small, name="ana"), assigned_at=SINCE)
    SeatAssignmentFactory(member=MemberFactory(customer=big, name="ben"), assigned_at=SINCE)
    purchase = SeatPurchaseFactory(service=service, seats=2)
    invoice = Invoice.objects.create(
        partner=partner, kind=InvoiceKind.CI, number=f"CI-{slug[:3].upper()}1", state=InvoiceState.ISSUED,
        issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), currency="USD", month="2026-05",
        subtotal=Decimal("80.00"), total=Decimal("88.00"), amount_due=Decimal("88.00"),
    )
    customer_invoice = CustomerInvoice.objects.create(
        partner=partner, customer=small, number=f"{slug[:3].upper()}-0001", state=InvoiceState.ISSUED, month="2026-05",
        issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), currency="USD", subtotal=Decimal("40.00"),
        total=Decimal("40.00"))  # the partner's own invoice to its customer (rebilling)
    api_key, _ = api_key_create(partner=partner, actor=Actor(label="test"), name=f"{slug} key")
    member = PartnerUserFactory(user=UserFactory(username=f"{slug}-member"), partner=partner, role="technician")
    return {"partner": partner, "service": service, "small": small, "big": big, "purchase": purchase,
            "invoice": invoice, "customer_invoice": customer_invoice, "api_key": api_key, "member": member}


@pytest.fixture
def a():
    return make_partner("alpha")


@pytest.fixture
def b():
    return make_partner("bravo")


def login(role: str, partner, username: str | None = None) -> Client:
    user = UserFactory(username=username or f"{partner.slug}-{role}")
    PartnerUserFactory(user=user, partner=partner, role=role)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner(a):
    return login(Role.OWNER, a["partner"])


@pytest.fixture
def technician(a):
    return login(Role.TECHNICIAN, a["partner"])


@pytest.fixture(autouse=True)
def _fast_pdf(monkeypatch):
    monkeypatch.setattr("invoicing.pdf.render_invoice_pdf", lambda invoice: b"%PDF-1.7 " + invoice.number.encode())


# --- scoping: every URL with an object id, given partner B's ids, is a 404 for partner A -----------

# which of the partner's objects each portal URL with an id takes
OBJECT_OF = {
    "invoice_pdf": "invoice", "invoice_xlsx": "invoice",
    "customer": "small", "seat_assign": "small", "seat_remove": "small", "seat_cap": "small",
    "seat_purchase": "purchase",
    "api_key_created": "api_key", "api_key_revoke": "api_key",
    "member_access_reset": "member",
    "customer_invoice_pdf": "customer_invoice", "customer_invoice_xlsx": "customer_invoice",
    "customer_invoice_issue": "customer_invoice", "customer_invoice_credit": "customer_invoice",
    "customer_account": "small", "customer_payment_add": "small", "customer_billing_details": "small",
}
# URLs without an id that take one in the query string
QUERY_OBJECT_OF = {"statements": "small", "statements_csv": "small"}
POST_DATA = {"seat_assign": {"member": "intruder"}, "seat_remove": {"member": "ana"}, "seat_cap": {"seat_cap": "0"}}


def id_patterns():
    return [p for p in portal_urls.urlpatterns if isinstance(p, URLPattern) and p.pattern.converters]


def test_every_url_with_an_id_is_covered_by_the_sweep():
    names = {p.name for p in id_patterns()}
    # statements_csv and margins_csv take a period; password_reset_confirm a signed token, not an object of a
    # partner; customer_payment_void takes a customer and a payment (billing/tests/test_portal_rebilling.py)
    assert names - {"statements_csv", "margins_csv", "password_reset_confirm", "customer_payment_void"} == set(
        OBJECT_OF), (
        "add new portal URLs with ids to OBJECT_OF")


def foreign_urls(b):
    for pattern in id_patterns():
        if pattern.name in OBJECT_OF:
            yield pattern.name, reverse(f"portal:{pattern.name}", args=[b[OBJECT_OF[pattern.name]].pk])
    for name, key in QUERY_OBJECT_OF.items():
        base = reverse("portal:statements_csv", args=["2026-05"]) if name == "statements_csv" else reverse(
            f"portal:{name}")
        yield name, f"{base}?customer={b[key].pk}"


def state_of(b):
    return (
        list(SeatAssignment.objects.filter(partner=b["partner"]).values_list("pk", "removed_at").order_by("pk")),
        list(Customer.objects.filter(partner=b["partner"]).values_list("pk", "seat_cap").order_by("pk")),
        ApiKey.objects.get(pk=b["api_key"].pk).revoked_at,
        Member.objects.filter(customer__partner=b["partner"]).count(),
        AuditLog.objects.filter(partner=b["partner"]).count(),
        CustomerInvoice.objects.filter(partner=b["partner"]).count(),
        CustomerPayment.objects.filter(partner=b["partner"]).count(),
    )


def test_another_partners_objects_are_404_on_every_url(a, b, owner):
    before = state_of(b)
    swept = set()
    for name, url in foreign_urls(b):
        swept.add(name)
        got = owner.get(url)
        assert got.status_code in (404, 405), (url, got.status_code)
        if got.status_code == 405:  # a POST-only URL
            got = owner.post(url, POST_DATA.get(name, {}))
        assert got.status_code == 404, (url, got.status_code)
    assert swept == set(OBJECT_OF) | set(QUERY_OBJECT_OF)
    assert state_of(b) == before  # nothing of B changed


def test_the_same_urls_work_for_the_partners_own_objects(a, owner):
    for name, key in OBJECT_OF.items():
        url = reverse(f"portal:{name}", args=[a[key].pk])
        got = owner.post(url, POST_DATA.get(name, {})) if name in (
            "seat_assign", "seat_remove", "seat_cap", "api_key_revoke", "member_access_reset", "customer_invoice_issue",
            "customer_payment_add", "customer_billing_details") else owner.get(url)
        assert got.status_code in (200, 302), (url, got.status_code)


def test_pages_show_only_the_partners_own_data(a, b, owner):
    for url in ("/portal/", "/portal/billing/", "/portal/customers/", "/portal/team/", "/portal/seats/add/",
                "/portal/billing/statements/?period=2026-04"):
        html = owner.get(url).content.decode()
        assert "bravo" not in html.lower(), url
    assert "alpha Small" in owner.get("/portal/customers/").content.decode()


# --- roles -----------------------------------------------------------------------------------------

def test_a_technician_gets_no_billing_page_and_no_billing_link(a, technician):
    billing_urls = [
        reverse("portal:billing"), reverse("portal:statements"),
        reverse("portal:statements_csv", args=["2026-04"]),
        reverse("portal:invoice_pdf", args=[a["invoice"].pk]), reverse("portal:invoice_xlsx", args=[a["invoice"].pk]),
        reverse("portal:add_seats"), reverse("portal:seat_purchase", args=[a["purchase"].pk]),
    ]
    for url in billing_urls:
        assert technician.get(url).status_code in (403, 404), url
    for url in ("/portal/", "/portal/customers/", "/portal/team/", reverse("portal:customer", args=[a["small"].pk])):
        page = technician.get(url)
        assert page.status_code == 200, url
        html = page.content.decode()
        for link in [*billing_urls[:2], reverse("portal:add_seats")]:
            assert f'href="{link}' not in html, (url, link)
        assert ">Billing<" not in html and "Add seats" not in html


def test_a_technician_cannot_buy_seats(a, technician):
    count = SeatPurchase.objects.count()
    got = technician.post(reverse("portal:add_seats"), {"service": a["service"].pk, "seats": "5"})
    assert got.status_code == 403
    assert SeatPurchase.objects.count() == count


def test_a_technician_cannot_change_caps_or_keys(a, technician):
    assert technician.post(reverse("portal:seat_cap", args=[a["small"].pk]), {"seat_cap": "9"}).status_code == 403
    assert technician.post(reverse("portal:api_key_create"), {"name": "x"}).status_code == 403
    assert technician.post(reverse("portal:api_key_revoke", args=[a["api_key"].pk])).status_code == 403
    assert Customer.objects.get(pk=a["small"].pk).seat_cap == 2
    assert ApiKey.objects.get(pk=a["api_key"].pk).revoked_at is None


def test_a_billing_user_sees_billing(a):
    client = login(Role.BILLING, a["partner"])
    html = client.get("/portal/").content.decode()
    assert f'href="{reverse("portal:billing")}"' in html and f'href="{reverse("portal:add_seats")}"' in html
    assert client.get(reverse("portal:billing")).status_code == 200


def test_a_staff_user_without_partner_user_is_refused(a):
    client = Client()
    client.force_login(UserFactory(username="clerk", is_staff=True, is_superuser=True))
    for url in ("/portal/", "/portal/billing/", "/portal/customers/", "/portal/team/"):
        assert client.get(url).status_code == 403, url


def test_anonymous_users_go_to_the_login_page(a):
    client = Client()
    for url in ("/portal/", "/portal/billing/", reverse("portal:customer", args=[a["small"].pk])):
        got = client.get(url)
        assert got.status_code == 302 and got["Location"].startswith("/portal/login/?next="), url


def test_login_and_logout(a):
    user = UserFactory(username="olga")
    PartnerUserFactory(user=user, partner=a["partner"], role=Role.OWNER)
    client = Client()
    assert client.get("/portal/login/").status_code == 200
    got = client.post("/portal/login/", {"username": "olga", "password": "pw"})
    assert got.status_code == 302 and got["Location"] == "/portal/"
    assert "Committed seats" in client.get("/portal/").content.decode()
    assert client.post("/portal/logout/").status_code == 302
    assert client.get("/portal/").status_code == 302


def test_posts_need_the_csrf_token(a):
    user = UserFactory(username="csrf-owner")
    PartnerUserFactory(user=user, partner=a["partner"], role=Role.OWNER)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    got = client.post(reverse("portal:seat_assign", args=[a["big"].pk]), {"member": "zed"})
    assert got.status_code == 403
    assert not Member.objects.filter(name="zed").exists()


# --- dashboard -------------------------------------------------------------------------------------

def test_dashboard_numbers_and_chart(a, owner):
    html = owner.get("/portal/").content.decode()
    # 10 committed + 2 bought in April (in force since May); 2 seats active
    assert 'data-kpi="committed">12<' in html
    assert 'data-kpi="assigned">2<' in html
    assert 'data-kpi="available">10<' in html
    assert 'data-kpi="utilization">17%<' in html  # 2 / 12: a whole percent (billing-rules decision (as))
    assert "<svg" in html and "<polyline" in html


def test_daily_assigned_seats_is_one_query(a, django_assert_num_queries):
    SeatAssignmentFactory(member=MemberFactory(customer=a["big"], name="cy"),
                          assigned_at=datetime(2026, 4, 3, 23, 0, tzinfo=UTC),
                          removed_at=datetime(2026, 4, 5, 1, 0, tzinfo=UTC))
    with django_assert_num_queries(1):
        series = daily_assigned_seats(partner_id=a["partner"].pk, first=date(2026, 3, 31), last=date(2026, 4, 6))
    assert series == [(date(2026, 3, 31), 0), (date(2026, 4, 1), 2), (date(2026, 4, 2), 2), (date(2026, 4, 3), 3),
                      (date(2026, 4, 4), 3), (date(2026, 4, 5), 3), (date(2026, 4, 6), 2)]


# --- seats -----------------------------------------------------------------------------------------

def test_assign_and_remove_a_seat(a, owner):
    customer = a["big"]
    got = owner.post(reverse("portal:seat_assign", args=[customer.pk]), {"member": "zoe"}, follow=True)
    assert "zoe now has a seat" in got.content.decode()
    seat = SeatAssignment.objects.active().get(customer=customer, member__name="zoe")
    assert seat.source == "portal"
    assert AuditLog.objects.filter(action="seat.assign", object_id=str(seat.pk), partner=a["partner"]).exists()
    got = owner.post(reverse("portal:seat_remove", args=[customer.pk]), {"member": "zoe"}, follow=True)
    assert "seat at" in got.content.decode() and "was removed" in got.content.decode()
    assert not SeatAssignment.objects.active().filter(customer=customer, member__name="zoe").exists()
    assert AuditLog.objects.filter(action="seat.unassign", partner=a["partner"]).exists()


def test_a_technician_assigns_seats(a, technician):
    got = technician.post(reverse("portal:seat_assign", args=[a["big"].pk]), {"member": "tia"})
    assert got.status_code == 302
    assert SeatAssignment.objects.active().filter(customer=a["big"], member__name="tia").exists()


def test_a_cap_breach_shows_the_error_and_writes_nothing(a, owner):
    customer = a["small"]  # cap 2, ana holds one seat
    owner.post(reverse("portal:seat_assign", args=[customer.pk]), {"member": "bo"})
    seats, members, audit = SeatAssignment.objects.count(), Member.objects.count(), AuditLog.objects.count()
    got = owner.post(reverse("portal:seat_assign", args=[customer.pk]), {"member": "cat"}, follow=True)
    html = got.content.decode()
    assert "cat was not given a seat" in html and "seat cap of 2 reached" in html
    assert (SeatAssignment.objects.count(), Member.objects.count(), AuditLog.objects.count()) == (seats, members, audit)


def test_removing_a_seat_nobody_holds_is_a_message(a, owner):
    got = owner.post(reverse("portal:seat_remove", args=[a["big"].pk]), {"member": "nobody"}, follow=True)
    assert "Nothing removed" in got.content.decode()


def test_an_owner_changes_a_cap_but_not_below_active_seats(a, owner):
    customer = a["big"]  # ben holds a seat
    got = owner.post(reverse("portal:seat_cap", args=[customer.pk]), {"seat_cap": "0"}, follow=True)
    assert "1 seats are active now" in got.content.decode()
    assert Customer.objects.get(pk=customer.pk).seat_cap is None
    got = owner.post(reverse("portal:seat_cap", args=[customer.pk]), {"seat_cap": "5"}, follow=True)
    assert "seat cap set to 5" in got.content.decode()
    assert Customer.objects.get(pk=customer.pk).seat_cap == 5
    entry = AuditLog.objects.get(action="customer.update", object_id=str(customer.pk))
    assert entry.before["seat_cap"] is None and entry.after["seat_cap"] == 5


def test_a_billing_user_cannot_change_a_cap(a):
    client = login(Role.BILLING, a["partner"])
    assert client.post(reverse("portal:seat_cap", args=[a["big"].pk]), {"seat_cap": "5"}).status_code == 403


# --- add seats -------------------------------------------------------------------------------------

def test_an_owner_adds_seats_and_sees_the_effective_date(a, owner):
    got = owner.post(reverse("portal:add_seats"), {"service": a["service"].pk, "seats": "3"})
    assert got.status_code == 302
    purchase = SeatPurchase.objects.filter(service=a["service"]).order_by("-purchased_at").first()
    assert purchase.seats == 3 and purchase.source == "portal"
    assert purchase.effective_date == next_month_start(timezone.now())
    html = owner.get(got["Location"]).content.decode()
    assert f'data-effective-date="{purchase.effective_date:%Y-%m-%d}"' in html
    assert f"{purchase.effective_date:%Y-%m-%d}" in html and "next UTC month boundary" in html
    assert AuditLog.objects.filter(action="seat_purchase.create", object_id=str(purchase.pk)).exists()


def test_add_seats_refuses_a_bad_count_and_another_partners_service(a, b, owner):
    count = SeatPurchase.objects.count()
    assert owner.post(reverse("portal:add_seats"), {"service": a["service"].pk, "seats": "0"}).status_code == 200
    got = owner.post(reverse("portal:add_seats"), {"service": b["service"].pk, "seats": "1"})
    assert got.status_code == 200 and "Select a valid choice" in got.content.decode()
    assert SeatPurchase.objects.count() == count


# --- billing and statements ------------------------------------------------------------------------

@pytest.fixture
def brightdesk(data_dir):
    replay(data_dir / "seat-days-basic")
    return login(Role.OWNER, Partner.objects.get(slug="brightdesk"), username="brightdesk-owner")


def test_billing_page_lists_periods_and_invoices(brightdesk):
    html = brightdesk.get(reverse("portal:billing")).content.decode()
    for text in ("3.1000", "4.0000", "7.6774", "161.94", "CI-0001", "CI-0002", "CI-0003"):
        assert text in html, text
    invoice = Invoice.objects.get(number="CI-0003")
    assert reverse("portal:invoice_pdf", args=[invoice.pk]) in html
    assert reverse("portal:invoice_xlsx", args=[invoice.pk]) in html


def test_statement_csv_matches_the_statements_report(brightdesk, data_dir):
    for period in ("2026-04", "2026-05"):
        got = brightdesk.get(reverse("portal:statements_csv", args=[period]))
        assert got.status_code == 200 and got["Content-Type"].startswith("text/csv")
        assert "attachment" in got["Content-Disposition"]
        stream = io.StringIO()
        write_csv(StatementsReport.columns,
                  StatementsReport().rows(ReportOptions(partner="brightdesk", period=Period.parse(period))), stream)
        assert got.content.decode() == stream.getvalue()
        rows = list(csv.DictReader(io.StringIO(got.content.decode())))
        expected = [r for r in expected_rows(data_dir / "seat-days-basic", "expected-statements.csv")
                    if r["period"] == period]
        assert rows == expected


def test_statement_page_for_a_month_and_a_customer(brightdesk):
    html = brightdesk.get(reverse("portal:statements") + "?period=2026-05").content.decode()
    assert "Pinecrest Law" in html and "145" in html and "4.6774" in html
    assert "not invoices" in html
    oakridge = Customer.objects.get(slug="oakridge")
    got = brightdesk.get(reverse("portal:statements_csv", args=["2026-05"]) + f"?customer={oakridge.pk}")
    rows = list(csv.DictReader(io.StringIO(got.content.decode())))
    assert [r["customer"] for r in rows] == ["oakridge"] and rows[0]["seat_days"] == "93"
    assert brightdesk.get(reverse("portal:statements_csv", args=["2026-13"])).status_code == 404


def test_billing_portal_link_only_when_set(brightdesk, settings):
    assert "Billing portal" not in brightdesk.get(reverse("portal:billing")).content.decode()
    settings.BILLING_PORTAL_URL = "https://pay.example/brightdesk"
    assert 'href="https://pay.example/brightdesk"' in brightdesk.get(reverse("portal:billing")).content.decode()


def test_invoice_downloads(a, owner):
    invoice = a["invoice"]
    got = owner.get(reverse("portal:invoice_pdf", args=[invoice.pk]))
    assert got.status_code == 200 and got["Content-Type"] == "application/pdf"
    assert got.content.startswith(b"%PDF") and f"{invoice.number}.pdf" in got["Content-Disposition"]
    got = owner.get(reverse("portal:invoice_xlsx", args=[invoice.pk]))
    assert got.status_code == 200 and got.content[:2] == b"PK"


def test_a_draft_invoice_is_not_downloadable(a, owner):
    draft = Invoice.objects.create(partner=a["partner"], kind=InvoiceKind.INV, issue_date=date(2026, 6, 1),
                                   due_date=date(2026, 6, 30), currency="USD")
    assert owner.get(reverse("portal:invoice_pdf", args=[draft.pk])).status_code == 404


# --- team, audit and API keys ----------------------------------------------------------------------

def test_team_page_lists_users_and_the_partners_audit_rows(a, b, owner):
    html = owner.get(reverse("portal:team")).content.decode()
    assert "alpha-owner" in html and "Owner" in html
    assert f"test created API key {a['api_key'].prefix}…" in html  # a sentence, not the action's code
    assert b["api_key"].prefix not in html


def test_audit_log_is_paginated_newest_first(a, owner):
    for i in range(30):
        AuditLog.objects.create(partner=a["partner"], action="seat.assign", object_type="x", object_repr=f"row-{i:02d}")
    first = owner.get(reverse("portal:team")).content.decode()
    assert "row-29" in first and "row-00" not in first and "Page 1 of 2" in first
    second = owner.get(reverse("portal:team") + "?page=2").content.decode()
    assert "row-00" in second


def test_create_an_api_key_shows_the_secret_once_then_revoke(a, owner):
    got = owner.post(reverse("portal:api_key_create"), {"name": "PSA sync"})
    assert got.status_code == 200 and got["Cache-Control"] == "no-store"
    html = got.content.decode()
    key = ApiKey.objects.get(partner=a["partner"], name="PSA sync")
    assert f"bk_{key.prefix}_" in html
    # the secret is in no session row: it was in this answer only
    assert not any(f"bk_{key.prefix}_" in str(s.get_decoded()) for s in Session.objects.all())
    again = owner.get(reverse("portal:api_key_created", args=[key.pk])).content.decode()
    assert f"bk_{key.prefix}_" not in again and "shown once" in again
    owner.post(reverse("portal:api_key_revoke", args=[key.pk]))
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditLog.objects.filter(action="api_key.revoke", object_id=str(key.pk)).exists()


def test_billing_page_links_the_partners_own_payment_portal(client, settings):
    """The Billing page's "Billing portal" link is configurable per partner, else the setting, else hidden."""
    partner = PartnerFactory(slug="linky")
    user = UserFactory(username="linky-owner")
    PartnerUser.objects.create(user=user, partner=partner, role=Role.OWNER)
    client.force_login(user)
    settings.BILLING_PORTAL_URL = ""
    assert "pay.linky.example" not in client.get("/portal/billing/").content.decode()
    partner.billing_portal_url = "https://pay.linky.example/account"
    partner.save()
    assert "https://pay.linky.example/account" in client.get("/portal/billing/").content.decode()


def test_technicians_team_page_shows_no_money_and_no_keys(client):
    """Billing is for Owner and Billing users: the audit log a Technician reads has no invoice, payment
    or seat-purchase entries, and no API keys."""
    partner = PartnerFactory(slug="techy")
    audit_record(actor=Actor(label="t"), action="payment.record", object_type="invoicing.Payment",
                 object_id="1", partner=partner, after={"amount": "88.00", "reference": "WIRE-123"})
    audit_record(actor=Actor(label="t"), action="seat.assign", object_type="partners.SeatAssignment",
                 object_id="2", partner=partner, after={"member": "ana-visible"})
    # prices, tax and billing contacts too: services, partners, customers and terms entries
    for action, after in (("service.create", {"unit_price": "417.00 USD", "overage_price": "419.00 USD"}),
                          ("partner.create", {"tax_rate": "8.25", "billing_emails": "ap@techy.example"}),
                          ("customer.update", {"host_limit": 4213, "payment_terms_days": 45}),
                          ("service.terms", {"unit_price": "431.0000", "effective_from": "2026-06-01"})):
        audit_record(actor=Actor(label="t"), action=action, object_type="partners.Service", object_id="3",
                     partner=partner, after=after)
    user = UserFactory(username="techy-tech")
    PartnerUser.objects.create(user=user, partner=partner, role=Role.TECHNICIAN)
    client.force_login(user)
    page = client.get("/portal/team/").content.decode()
    assert "WIRE-123" not in page and "88.00" not in page and "API keys" not in page
    for secret in ("417.00", "419.00", "8.25", "ap@techy.example", "4213", "431.0000"):
        assert secret not in page, secret
    assert "seat.assign" in page or "ana-visible" in page


def test_odd_input_is_refused_not_a_server_error(client):
    partner = PartnerFactory(slug="oddy")
    customer = CustomerFactory(partner=partner)
    ServiceFactory(partner=partner)  # a seat_days service: the cap form is there
    user = UserFactory(username="oddy-owner")
    PartnerUser.objects.create(user=user, partner=partner, role=Role.OWNER)
    client.force_login(user)
    assert client.get("/portal/billing/statements/?customer=%C2%B2").status_code == 404
    response = client.post(f"/portal/customers/{customer.pk}/cap/", {"seat_cap": "99999999999999999999"})
    assert response.status_code in (200, 302)
    customer.refresh_from_db()
    assert customer.seat_cap is None
