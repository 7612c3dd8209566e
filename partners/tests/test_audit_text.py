"""The audit log as people read it (partners.audit_text, issue 19 item 4): every entry a sentence with names, not
ids, and the before and after of its changed fields by their labels; the names of a page read in one query per
model."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.core.actor import Actor
from partners.audit import audit_record
from partners.audit_log import audit_by_kind, audit_by_person, audit_kinds, audit_people, object_type_label
from partners.audit_text import (
    PHRASES,
    TOPICS,
    Change,
    Names,
    audit_texts,
    describe,
    field_label,
    model_of,
    money_text,
    topic_actions,
    when_text,
)
from partners.choices import AuditAction
from partners.models import AuditLog
from partners.services import customer_update, seat_assign, seat_unassign
from partners.tests.factories import CustomerFactory, MemberFactory, PartnerFactory, ServiceFactory, UserFactory

AT = datetime(2026, 12, 5, 9, 10, tzinfo=UTC)


def text_of(entry):
    entry = AuditLog.objects.select_related("actor", "partner").get(pk=entry.pk)
    return audit_texts([entry])[0]


def dated(entry, at=AT):
    AuditLog.objects.filter(pk=entry.pk).update(at=at)
    return entry


# --- values as people read them (no database) -----------------------------------------------------------
def test_times_dates_and_money_read_as_people_write_them():
    assert when_text(AT) == "5 Dec 2026 09:10 UTC"
    assert when_text(datetime(2026, 12, 5, 10, 10, tzinfo=UTC).astimezone(ZoneInfo("Europe/Berlin"))) == \
        "5 Dec 2026 10:10 UTC"
    assert money_text("120", "USD") == "USD 120.00"
    assert money_text(Decimal("1234.5"), "EUR") == "EUR 1,234.50"
    assert money_text("20.1234", "USD") == "USD 20.1234"  # a price's places are kept, never rounded here
    assert money_text("-486", "JPY") == "JPY -486"


def test_fields_are_named_by_their_labels_in_lower_case():
    assert field_label(model_of("partners.Customer"), "seat_cap") == "seat cap"
    assert field_label(model_of("partners.SeatAssignment"), "customer_id") == "customer"
    assert field_label(model_of("partners.Partner"), "payment_terms_days") == "payment terms (days)"
    assert field_label(model_of("metering.RmmIntegration"), "kind") == "RMM"
    assert field_label(model_of("django_celery_beat.PeriodicTask"), "task") == "task name"
    assert field_label(None, "back_filled_until") == "back filled until"


def test_every_action_has_a_sentence_and_every_topic_its_actions():
    assert set(PHRASES) == set(AuditAction)
    topics = [topic for action in AuditAction for topic in TOPICS if action.value in topic_actions(topic)]
    assert len(topics) == len(AuditAction)  # each action in exactly one topic


@pytest.mark.parametrize("action", list(AuditAction))
def test_every_action_reads_as_a_sentence_even_with_nothing_recorded(action):
    """An entry of any action, with an empty before and after (an old or hand-written row), still reads as
    a sentence: no raw value, no `None`, no error."""
    entry = AuditLog(action=action, object_type="partners.Customer", object_id="7", object_repr="Contoso Dental",
                     actor_label="import_csv", at=AT)
    text = describe(entry, Names())
    assert text.sentence.endswith(", 5 Dec 2026 09:10 UTC")
    assert "None" not in text.sentence and "{" not in text.sentence
    assert text.changes == ()


# --- sentences -------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_seat_assigned_by_a_named_user_reads_as_the_issue_asks():
    """The issue's example: "Anna Berg assigned a seat to j.smith at Contoso Dental, 5 Dec 2026 09:10 UTC"
    (the row holds customer_id and member_id)."""
    customer = CustomerFactory(name="Contoso Dental")
    anna = UserFactory(username="anna", first_name="Anna", last_name="Berg")
    seat = seat_assign(customer=customer, member_name="j.smith", actor=Actor.of_user(anna, label="anna (portal)"))
    entry = dated(AuditLog.objects.get(action=AuditAction.SEAT_ASSIGN))
    assert entry.after["customer_id"] == customer.pk  # ids in the row...
    text = text_of(entry)
    assert text.sentence == "Anna Berg assigned a seat to j.smith at Contoso Dental, 5 Dec 2026 09:10 UTC"
    assert text.via == "portal"
    changes = {c.label: c for c in text.changes}
    assert changes["customer"].after == "Contoso Dental"  # ...names in the text
    assert changes["member"].after == "j.smith"
    assert changes["assigned at"].after == when_text(seat.assigned_at) and not changes["assigned at"].was
    assert "removed at" not in changes  # nothing on either side

    seat_unassign(customer=customer, member_name="j.smith", actor=Actor.of_user(anna))
    text = text_of(AuditLog.objects.get(action=AuditAction.SEAT_UNASSIGN))
    assert text.summary == "Anna Berg unassigned the seat of j.smith at Contoso Dental"
    assert [(c.label, c.before) for c in text.changes] == [("removed at", "—")]


@pytest.mark.django_db
def test_a_changed_field_is_named_by_its_label_with_before_and_after():
    customer = CustomerFactory(name="Contoso Dental", seat_cap=5)
    clerk = UserFactory(username="clerk")  # no full name: the username
    customer_update(customer=customer, actor=Actor.of_user(clerk), data={"seat_cap": 8})
    text = text_of(AuditLog.objects.get(action=AuditAction.CUSTOMER_UPDATE))
    assert text.summary == "clerk changed the seat cap of Contoso Dental"
    assert text.changes == (Change("seat cap", "5", "8"),)


@pytest.mark.django_db
def test_terms_changed_from_a_date_say_the_date_and_the_prices_in_money():
    partner = PartnerFactory(currency="EUR")
    service = ServiceFactory(partner=partner, name="Managed seats")
    audit_record(actor=Actor(label="run"), action=AuditAction.SERVICE_TERMS, obj=service, partner=partner,
                 before={"unit_price": "20.0000"}, after={"unit_price": "25.5000", "effective_from": "2027-01-01"})
    text = text_of(AuditLog.objects.get(action=AuditAction.SERVICE_TERMS))
    assert text.summary == "run changed the unit price of Managed seats from 1 Jan 2027"
    assert text.changes == (Change("unit price", "EUR 20.00", "EUR 25.50"),)


@pytest.mark.django_db
def test_money_entries_name_the_amount_and_the_document():
    partner = PartnerFactory(currency="USD")
    audit_record(actor=Actor(label="api key ab12cd34"), action=AuditAction.PAYMENT_RECORD,
                 object_type="invoicing.Payment", object_id="5", partner=partner,
                 after={"invoice": "CI-000012", "amount": "120", "paid_on": "2026-12-04", "reference": ""})
    audit_record(actor=Actor(), action=AuditAction.INVOICE_ISSUE, object_type="invoicing.Invoice", object_id="9",
                 object_repr="CI-000012", partner=partner,
                 after={"number": "CI-000012", "total": "1234.5", "due_date": "2027-01-04"})
    payment, issued = (text_of(e) for e in AuditLog.objects.order_by("id"))
    assert payment.summary == "api key ab12cd34 recorded a payment of USD 120.00 on CI-000012"
    assert ("paid on", "4 Dec 2026") in [(c.label, c.after) for c in payment.changes]
    assert ("reference", "—") not in [(c.label, c.after) for c in payment.changes]  # empty: left out
    assert issued.summary == "system issued CI-000012 (USD 1,234.50, due 4 Jan 2027)"


@pytest.mark.django_db
def test_an_import_replacing_seats_names_the_customer_and_member_by_name():
    """`seat.import.replaced` wrote `{'customer_id': 3, 'assigned_at': '...', 'removed_at': None}` (the issue)."""
    customer = CustomerFactory(name="Contoso Dental")
    audit_record(actor=Actor(label="import_csv seat-events seats.csv"), action=AuditAction.SEAT_IMPORT_REPLACED,
                 object_type="partners.SeatAssignment", object_id="44", object_repr="j.smith",
                 partner=customer.partner,
                 before={"customer_id": customer.pk, "assigned_at": "2026-12-05T09:10:00+00:00", "removed_at": None})
    audit_record(actor=Actor(label="import_csv seat-events seats.csv"), action=AuditAction.SEAT_IMPORT,
                 object_type="partners.Customer", object_id=customer.pk, object_repr=customer.slug,
                 partner=customer.partner, after={"assigned": 12, "unassigned": 28, "file": "seats.csv"})
    replaced, imported = (text_of(e) for e in AuditLog.objects.order_by("id"))
    assert replaced.summary == ("import_csv seat-events seats.csv replaced an earlier seat of j.smith at "
                                "Contoso Dental by an import")
    assert replaced.changes == (Change("customer", "Contoso Dental", "—"),
                                Change("assigned at", "5 Dec 2026 09:10 UTC", "—"))
    assert imported.summary == ("import_csv seat-events seats.csv imported 40 seat events for Contoso Dental "
                                "(12 assigned, 28 unassigned)")


@pytest.mark.django_db
def test_a_seat_import_names_the_seats_already_recorded_that_it_ended():
    """billing-rules (ax): one entry per customer; the seats it ended are listed in it, as they were."""
    customer = CustomerFactory(name="Contoso Dental", slug="contoso")
    ended = [{"id": 7, "member": "j.smith", "assigned_at": "2026-12-05T09:10:00+00:00", "removed_at": None},
             {"id": 9, "member": "a.berg", "assigned_at": "2026-12-05T10:00:00+00:00", "removed_at": None}]
    audit_record(actor=Actor(label="import_csv seat-events seats.csv"), action=AuditAction.SEAT_IMPORT,
                 object_type="partners.Customer", object_id=customer.pk, object_repr=customer.slug,
                 partner=customer.partner, after={"assigned": 3, "unassigned": 2, "file": "seats.csv",
                                                  "replaced": ended})
    text = text_of(AuditLog.objects.get())
    assert text.summary == ("import_csv seat-events seats.csv imported 5 seat events for Contoso Dental "
                            "(3 assigned, 2 unassigned), ending 2 seats already recorded")
    ended_text = "j.smith from 5 Dec 2026 09:10 UTC; a.berg from 5 Dec 2026 10:00 UTC"
    assert Change("seats ended", "—", ended_text, was=False) in text.changes
    many = [{"id": n, "member": f"m{n}", "assigned_at": "2026-12-05T09:10:00+00:00", "removed_at": None}
            for n in range(7)]
    AuditLog.objects.update(after={"assigned": 0, "unassigned": 7, "file": "seats.csv", "replaced": many})
    changes = text_of(AuditLog.objects.get()).changes
    assert Change("seats ended", "—", "; ".join(f"m{n} from 5 Dec 2026 09:10 UTC" for n in range(5))
                  + "; and 2 more seats", was=False) in changes


@pytest.mark.django_db
def test_snapshots_by_slug_and_code_name_the_customer_and_service():
    customer = CustomerFactory(name="Contoso Dental", slug="contoso")
    service = ServiceFactory(partner=customer.partner, code="m365", name="Microsoft 365")
    audit_record(actor=Actor(label="import"), action=AuditAction.SEAT_PURCHASE_CREATE,
                 object_type="partners.SeatPurchase", object_id="1", partner=customer.partner,
                 after={"service": service.code, "seats": 5, "effective_date": "2027-01-01"})
    audit_record(actor=Actor(label="import"), action=AuditAction.ONE_TIME_CHARGE_CREATE,
                 object_type="invoicing.OneTimeCharge", object_id="1", partner=customer.partner,
                 after={"customer": "contoso", "description": "Onboarding", "quantity": "2", "unit_price": "25",
                        "currency": "USD", "taxable": False})
    bought, charge = (text_of(e) for e in AuditLog.objects.order_by("id"))
    assert bought.summary == "import bought 5 seats on Microsoft 365, effective 1 Jan 2027"
    assert charge.summary == "import added the one-time charge “Onboarding” (2 × USD 25.00) for Contoso Dental"
    assert ("taxable", "no") in [(c.label, c.after) for c in charge.changes]


@pytest.mark.django_db
def test_who_acted():
    partner = PartnerFactory()
    user = UserFactory(username="olga", first_name="Olga", last_name="Ivanova")
    for actor in (Actor.of_user(user, label="olga (admin: Sync now)"), Actor(label="nightly RMM sync"), Actor()):
        audit_record(actor=actor, action=AuditAction.PARTNER_UPDATE, obj=partner, partner=partner,
                     before={"name": "A"}, after={"name": "B"})
    texts = [text_of(e) for e in AuditLog.objects.order_by("id")]
    assert [(t.who, t.via) for t in texts] == [("Olga Ivanova", "admin: Sync now"), ("nightly RMM sync", ""),
                                               ("system", "")]
    assert texts[0].summary == "Olga Ivanova changed the name of B"


@pytest.mark.django_db
def test_a_locked_sign_in_reads_as_what_happened():
    audit_record(actor=Actor(label="sign-in as bob from 10.0.0.1"), action=AuditAction.LOGIN_LOCKED,
                 object_type="auth.User", object_repr="bob",
                 after={"username": "bob", "ip_address": "10.0.0.1", "failures": 5, "minutes": 15})
    assert text_of(AuditLog.objects.get()).summary == (
        "Sign-in as bob was locked for 15 minutes after 5 failed attempts from 10.0.0.1")


# --- a page of entries: one query per model --------------------------------------------------------------
def _entries(n: int):
    partner = PartnerFactory()
    customers = [CustomerFactory(partner=partner) for _ in range(3)]
    user = UserFactory(first_name="Anna", last_name="Berg")
    for i in range(n):
        customer = customers[i % 3]
        member = MemberFactory(customer=customer)
        audit_record(actor=Actor.of_user(user), action=AuditAction.SEAT_ASSIGN, object_type="partners.SeatAssignment",
                     object_id=i + 1, partner=partner, after={"customer_id": customer.pk, "member_id": member.pk})
        audit_record(actor=Actor(label="import"), action=AuditAction.SEAT_IMPORT, obj=customer, partner=partner,
                     after={"assigned": 1, "unassigned": 0})
    return AuditLog.objects.select_related("actor", "partner").order_by("-id")


@pytest.mark.django_db
def test_a_page_of_entries_reads_its_names_in_one_query_per_model(django_assert_max_num_queries):
    few = list(_entries(3))
    with CaptureQueriesContext(connection) as small:
        audit_texts(few)
    AuditLog.objects.all().delete()
    many = list(_entries(30))  # 60 entries
    with django_assert_max_num_queries(len(small.captured_queries)):
        texts = audit_texts(many)
    assert len(small.captured_queries) <= 3  # customers, members (and nothing per row)
    assert all(t.summary.startswith(("Anna Berg assigned a seat to member", "import imported 1 seat event for "))
               for t in texts)


# --- filters ---------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_people_and_kinds_filter_the_entries():
    partner = PartnerFactory()
    anna = UserFactory(username="anna", first_name="Anna", last_name="Berg")
    audit_record(actor=Actor.of_user(anna), action=AuditAction.PARTNER_UPDATE, obj=partner, partner=partner)
    audit_record(actor=Actor(label="nightly RMM sync"), action=AuditAction.INVENTORY_APPLY, obj=partner,
                 partner=partner)
    audit_record(actor=Actor.of_user(anna), action=AuditAction.SEAT_ASSIGN, obj=partner, partner=partner)
    entries = AuditLog.objects.all()
    people = audit_people(entries)
    assert people == [(f"user:{anna.pk}", "Anna Berg"), ("label:nightly RMM sync", "nightly RMM sync")]
    assert audit_by_person(entries, f"user:{anna.pk}").count() == 2
    assert audit_by_person(entries, "label:nightly RMM sync").get().action == AuditAction.INVENTORY_APPLY
    assert audit_by_person(entries, "bogus").count() == 3
    assert audit_by_kind(entries, "seats").get().action == AuditAction.SEAT_ASSIGN
    assert audit_by_kind(entries, "partner.update").get().action == AuditAction.PARTNER_UPDATE
    assert audit_by_kind(entries, "nonsense").count() == 3
    assert [topic for topic, _label, _actions in audit_kinds(["seat.assign", "inventory.apply"])] == ["seats", "usage"]
    assert object_type_label("partners.SeatAssignment") == "Seat assignment"
    assert object_type_label("gone.Model") == "gone.Model"


@pytest.mark.django_db
def test_a_customer_invoice_reads_with_its_number_customer_and_total():
    customer = CustomerFactory(name="Company A")
    entry = audit_record(actor=Actor(label="run_billing"), action=AuditAction.CUSTOMER_INVOICE_ISSUE,
                         object_type="rebilling.CustomerInvoice", object_id="7", object_repr="NW-0001",
                         partner=customer.partner,
                         after={"number": "NW-0001", "customer": customer.slug, "total": "101.64 USD"})
    assert text_of(dated(entry)).sentence == \
        "run_billing issued customer invoice NW-0001 to Company A (USD 101.64), 5 Dec 2026 09:10 UTC"
