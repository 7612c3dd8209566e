"""The audit section of the portal's Team page reads as sentences with names (issue 19 item 4), filters by person
and kind within the partner, keeps a Technician to the kinds they may read, says so when there is nothing, and
costs the same queries for a page of 5 entries or 25."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.core.actor import Actor
from invoicing.models import Invoice, InvoiceKind, InvoiceLine, LineType
from partners.audit import audit_record
from partners.choices import AuditAction
from partners.models import AuditLog, Role
from partners.services import customer_update, seat_assign
from partners.tests.factories import CustomerFactory, PartnerFactory, PartnerUserFactory, UserFactory

TEAM = reverse("portal:team")
pytestmark = pytest.mark.django_db


def login(partner, role, username, **names) -> Client:
    user = UserFactory(username=username, **names)
    PartnerUserFactory(user=user, partner=partner, role=role)
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def world():
    partner = PartnerFactory(slug="northwind", currency="USD")
    customer = CustomerFactory(partner=partner, name="Contoso Dental", seat_cap=5)
    owner = login(partner, Role.OWNER, "anna", first_name="Anna", last_name="Berg")
    tech = login(partner, Role.TECHNICIAN, "tom", first_name="Tom", last_name="Reed")
    seat_assign(customer=customer, member_name="j.smith", actor=Actor.of_user(owner.user, label="anna (portal)"))
    customer_update(customer=customer, actor=Actor.of_user(owner.user), data={"seat_cap": 8})
    invoice = Invoice.objects.create(partner=partner, kind=InvoiceKind.CN, number="CN-0001",
                                     issue_date=date(2026, 12, 5), due_date=date(2026, 12, 5), currency="USD")
    line = InvoiceLine.objects.create(invoice=invoice, line_type=LineType.CREDIT, period="2026-11",
                                      amount=Decimal("-120"), description="Credit for CI-000012: Help desk")
    audit_record(actor=Actor(label="api key ab12cd34"), action=AuditAction.PAYMENT_RECORD,
                 object_type="invoicing.Payment", object_id="5", partner=partner,
                 after={"invoice": "CI-000012", "amount": "120", "paid_on": "2026-12-04", "reference": "WIRE-77"})
    audit_record(actor=Actor.of_user(owner.user), action=AuditAction.INVOICE_CREDIT, obj=invoice, partner=partner,
                 after={"credits": "CI-000012", "total": "-120", "reason": "", "lines": [line.pk]})
    audit_record(actor=Actor(label="other"), action=AuditAction.SEAT_ASSIGN, object_type="partners.SeatAssignment",
                 partner=PartnerFactory(slug="elsewhere"), after={"member_id": 1})  # another partner's
    AuditLog.objects.update(at=datetime(2026, 12, 5, 9, 10, tzinfo=UTC))
    return {"partner": partner, "owner": owner, "tech": tech}


def test_the_team_page_reads_the_audit_log_as_sentences(world):
    html = world["owner"].get(TEAM).content.decode()
    assert "Anna Berg assigned a seat to j.smith at Contoso Dental" in html
    assert "Anna Berg changed the seat cap of Contoso Dental" in html
    assert "api key ab12cd34 recorded a payment of USD 120.00 on CI-000012" in html
    assert "Anna Berg issued credit note CN-0001 for CI-000012 (USD -120.00)" in html
    assert "Credit for CI-000012: Help desk" in html  # `lines: [107]` by what the line says
    assert "5 Dec 2026 09:10" in html
    assert "elsewhere" not in html and "other</option>" not in html  # another partner's entry and actor
    for raw in ("customer_id", "{&#x27;", "&#x27;lines&#x27;: [", "removed_at", "None", "→ —"):
        assert raw not in html, raw


def test_the_filters_narrow_the_entries_to_a_person_or_a_kind(world):
    owner, anna = world["owner"], world["owner"].user

    def actions(**params):
        return {row.entry.action for row in owner.get(TEAM, params).context["audit"].rows}

    assert actions() == {"seat.assign", "customer.update", "payment.record", "invoice.credit"}
    assert actions(person=f"user:{anna.pk}") == {"seat.assign", "customer.update", "invoice.credit"}
    assert actions(person="label:api key ab12cd34") == {"payment.record"}
    assert actions(kind="money") == {"payment.record", "invoice.credit"}
    assert actions(kind="seat.assign") == {"seat.assign"}
    assert actions(kind="money", person=f"user:{anna.pk}") == {"invoice.credit"}
    assert actions(kind="no-such-kind") == actions()  # an unknown filter filters nothing
    html = owner.get(TEAM, {"kind": "seats"}).content.decode()
    assert '<option value="seats" selected>' in html and '<option value="">Everyone</option>' in html
    assert f'<option value="user:{anna.pk}">Anna Berg</option>' in html


def test_pages_keep_the_filters(world):
    partner, owner = world["partner"], world["owner"]
    for i in range(30):
        audit_record(actor=Actor(label="import"), action=AuditAction.SEAT_IMPORT, object_type="partners.Customer",
                     object_repr=f"row-{i}", partner=partner, after={"assigned": 1, "unassigned": 0})
    html = owner.get(TEAM, {"kind": "seats"}).content.decode()
    assert "Page 1 of 2" in html and 'href="?kind=seats&amp;page=2#audit"' in html
    second = owner.get(TEAM, {"kind": "seats", "page": 2}).context["audit"]
    assert {row.entry.action for row in second.rows} <= {"seat.assign", "seat.import"}


def test_an_empty_log_and_an_empty_filter_say_so():
    partner = PartnerFactory(slug="quiet")
    owner = login(partner, Role.OWNER, "quiet-owner")
    assert "Nothing recorded yet." in owner.get(TEAM).content.decode()
    audit_record(actor=Actor(label="import"), action=AuditAction.SEAT_IMPORT, object_type="partners.Customer",
                 partner=partner, after={"assigned": 1, "unassigned": 0})
    assert "No entries match these filters." in owner.get(TEAM, {"kind": "money"}).content.decode()


def test_a_technician_reads_only_the_allowed_kinds_whatever_the_filter(world):
    tech = world["tech"]
    audit_section = tech.get(TEAM).context["audit"]
    assert {row.entry.action for row in audit_section.rows} == {"seat.assign"}  # no cap, payment or credit
    assert [topic for topic, _label, _options in audit_section.kinds] == ["seats", "usage"]
    assert audit_section.people == [(f"user:{world['owner'].user.pk}", "Anna Berg")]  # not the API key
    page = tech.get(TEAM, {"kind": "money"})
    assert {row.entry.action for row in page.context["audit"].rows} == {"seat.assign"}
    html = page.content.decode()
    for hidden in ("WIRE-77", "120.00", "seat cap", "CN-0001", "Invoices and payments", "ab12cd34"):
        assert hidden not in html, hidden


def test_a_page_of_25_entries_costs_the_queries_of_5(world, django_assert_max_num_queries):
    partner, owner = world["partner"], world["owner"]
    with CaptureQueriesContext(connection) as few:
        assert owner.get(TEAM).status_code == 200
    customers = [CustomerFactory(partner=partner) for _ in range(3)]
    for i in range(60):
        seat_assign(customer=customers[i % 3], member_name=f"member-{i}",
                    actor=Actor.of_user(owner.user, label="anna (portal)"))
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = owner.get(TEAM)
    assert len(response.context["audit"].rows) == 25
