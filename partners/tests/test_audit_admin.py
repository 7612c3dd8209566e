"""The audit log in the admin reads as sentences with names (issue 19 item 4): the list's main column is the
sentence, the detail page has the changes by their labels (the raw JSON folded below for support), and it
filters by person, kind, object type and partner; a page costs the same queries for 5 rows or 50."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.core.actor import Actor
from billing.core.importing import run_import_text
from partners.audit import audit_record
from partners.choices import AuditAction
from partners.models import AuditLog
from partners.services import customer_update, seat_assign
from partners.tests.factories import CustomerFactory, MemberFactory, PartnerFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = reverse("admin:partners_auditlog_changelist")


@pytest.fixture
def clerk(client):
    client.force_login(UserFactory(username="clerk", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def log():
    customer = CustomerFactory(name="Contoso Dental", seat_cap=5)
    anna = UserFactory(username="anna", first_name="Anna", last_name="Berg")
    seat_assign(customer=customer, member_name="j.smith", actor=Actor.of_user(anna, label="anna (portal)"))
    customer_update(customer=customer, actor=Actor.of_user(anna), data={"seat_cap": 8})
    audit_record(actor=Actor(label="import_csv seat-events seats.csv"), action=AuditAction.SEAT_IMPORT_REPLACED,
                 object_type="partners.SeatAssignment", object_id="44", object_repr="j.smith",
                 partner=customer.partner,
                 before={"customer_id": customer.pk, "assigned_at": "2026-12-05T09:10:00+00:00", "removed_at": None})
    other = PartnerFactory(name="Blue Harbor")
    audit_record(actor=Actor(label="api key ab12cd34"), action=AuditAction.PAYMENT_RECORD,
                 object_type="invoicing.Payment", object_id="5", partner=other,
                 after={"invoice": "CI-000012", "amount": "120", "paid_on": "2026-12-04", "reference": "WIRE-1"})
    AuditLog.objects.update(at=datetime(2026, 12, 5, 9, 10, tzinfo=UTC))
    return {"customer": customer, "anna": anna, "other": other}


def ids(response):
    return {obj.action for obj in response.context["cl"].result_list}


def test_the_list_reads_as_sentences_with_names_not_raw_data(clerk, log):
    html = clerk.get(LIST).content.decode()
    assert "Anna Berg assigned a seat to j.smith at Contoso Dental" in html
    assert "Anna Berg changed the seat cap of Contoso Dental" in html
    assert "seat cap: 5 → 8" in html
    assert "import_csv seat-events seats.csv replaced an earlier seat of j.smith at Contoso Dental" in html
    assert "api key ab12cd34 recorded a payment of USD 120.00 on CI-000012" in html
    assert "5 Dec 2026 09:10" in html
    for raw in ("customer_id", "{&#x27;", "&#x27;lines&#x27;", "seat.import.replaced", "removed_at", "None"):
        assert raw not in html, raw


def test_the_detail_page_has_the_sentence_the_changes_by_label_and_the_raw_entry_folded(clerk, log):
    entry = AuditLog.objects.get(action=AuditAction.CUSTOMER_UPDATE)
    html = clerk.get(reverse("admin:partners_auditlog_change", args=[entry.pk])).content.decode()
    assert "Anna Berg changed the seat cap of Contoso Dental" in html
    assert "<h2>2026-12-05 09:10 Customer changed: Contoso Dental" in html  # the title by the action's label
    assert '<th scope="row">seat cap</th>' in html
    assert "Raw entry (for support)" in html and "collapse" in html
    assert "&quot;seat_cap&quot;: 8" in html  # the JSON for support, folded
    replaced = AuditLog.objects.get(action=AuditAction.SEAT_IMPORT_REPLACED)
    html = clerk.get(reverse("admin:partners_auditlog_change", args=[replaced.pk])).content.decode()
    assert '<th scope="row">customer</th><td style="white-space:pre-line">Contoso Dental</td>' in html


def test_filters_by_person_kind_object_type_and_partner(clerk, log):
    anna = log["anna"]
    assert ids(clerk.get(LIST, {"person": f"user:{anna.pk}"})) == {"seat.assign", "customer.update"}
    assert ids(clerk.get(LIST, {"person": "label:api key ab12cd34"})) == {"payment.record"}
    assert ids(clerk.get(LIST, {"kind": "seats"})) == {"seat.assign", "seat.import.replaced"}
    assert ids(clerk.get(LIST, {"kind": "seat.assign"})) == {"seat.assign"}
    assert ids(clerk.get(LIST, {"kind": "money"})) == {"payment.record"}
    assert ids(clerk.get(LIST, {"object_type": "partners.Customer"})) == {"customer.update"}
    assert ids(clerk.get(LIST, {"partner__id__exact": log["other"].pk})) == {"payment.record"}
    assert ids(clerk.get(LIST, {"q": "Berg"})) == {"seat.assign", "customer.update"}
    html = clerk.get(LIST, {"kind": "seats"}).content.decode()
    # people by name, object types by name, the chosen kind opened into its actions
    assert "Anna Berg</a>" in html and "Seat assignment</a>" in html and "· Seat assigned</a>" in html
    assert "· Payment recorded" not in html


def test_a_page_of_fifty_entries_costs_the_queries_of_five(clerk, django_assert_max_num_queries):
    def entries(n):
        partner = PartnerFactory()
        customer = CustomerFactory(partner=partner)
        user = UserFactory(first_name="Anna", last_name="Berg")
        for i in range(n):
            member = MemberFactory(customer=customer)
            audit_record(actor=Actor.of_user(user), action=AuditAction.SEAT_ASSIGN, partner=partner,
                         object_type="partners.SeatAssignment", object_id=i + 1,
                         after={"customer_id": customer.pk, "member_id": member.pk})
            audit_record(actor=Actor(label=f"import {i % 4}"), action=AuditAction.SEAT_IMPORT, obj=customer,
                         partner=partner, after={"assigned": 1, "unassigned": 0})

    entries(3)
    with CaptureQueriesContext(connection) as few:
        assert clerk.get(LIST).status_code == 200
    entries(30)  # 66 entries in all: a full page of 50
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = clerk.get(LIST)
    assert len(response.context["cl"].result_list) == 50


def test_the_filters_choices_are_read_once_then_kept_for_a_while(clerk, log):
    """Seat imports audit seat by seat: the people and object types are DISTINCT reads over the whole log, so
    they are kept (partners.audit_log.CHOICES_SECONDS) rather than read again on every page and click."""
    def distinct_reads():
        with CaptureQueriesContext(connection) as queries:
            assert clerk.get(LIST).status_code == 200
        return [q["sql"] for q in queries.captured_queries if "DISTINCT" in q["sql"].upper()]

    assert distinct_reads()
    assert distinct_reads() == []
    assert "Anna Berg" in clerk.get(LIST).content.decode()  # the kept choices still list the people


def test_a_seat_import_reads_as_one_entry_per_customer_with_the_seats_it_ended(clerk):
    """billing-rules (ax): a seat import is one entry per customer; the seat it ended shows under "seats ended"."""
    customer = CustomerFactory(name="Contoso Dental", slug="contoso")
    header = "partner,customer,member,action,at\n"
    row = f"{customer.partner.slug},contoso,j.smith,{{}},{{}}\n"
    assert run_import_text("seat-events", header + row.format("assign", "2026-11-02T09:10:00Z"),
                           source="monday.csv").ok
    assert run_import_text("seat-events", header + row.format("unassign", "2026-11-20T17:00:00Z"),
                           source="friday.csv").ok
    html = clerk.get(LIST, {"kind": "seats"}).content.decode()
    assert html.count("seat event for Contoso Dental") == 2
    entry = AuditLog.objects.filter(action=AuditAction.SEAT_IMPORT).latest("id")
    detail = clerk.get(reverse("admin:partners_auditlog_change", args=[entry.pk])).content.decode()
    assert "imported 1 seat event for Contoso Dental (0 assigned, 1 unassigned), ending 1 seat already recorded" \
        in detail
    assert "seats ended" in detail and "j.smith from 2 Nov 2026 09:10 UTC" in detail
    assert "friday.csv" in detail
