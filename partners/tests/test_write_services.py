"""The write services of partners, customers and services (partners.services): each writes, checks the rules
the admin and the imports check, audits with its model's one snapshot (partners.audit) and dates changed terms
(billing-rules 3.11); the admin, the imports and the portal, making the same change, write the same audit row."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.test import Client
from django.urls import reverse
from djmoney.money import Money

from billing.core.actor import Actor
from billing.core.importing import run_import_text
from partners.audit import customer_snapshot, partner_snapshot, service_snapshot
from partners.models import AuditLog, Customer, Method, Partner, Role, Service, TermsVersion
from partners.services import (
    Upsert,
    customer_create,
    customer_delete,
    customer_update,
    customers_upsert,
    partner_create,
    partner_delete,
    partner_update,
    service_create,
    service_delete,
    service_update,
    write_errors,
)
from partners.terms import values_of
from partners.tests.factories import (
    CustomerFactory,
    MemberFactory,
    PartnerFactory,
    PartnerUserFactory,
    SeatAssignmentFactory,
    ServiceFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ACTOR = Actor(label="tester")
SINCE = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def acme():
    return PartnerFactory(slug="acme", name="Acme MSP", tax_rate=Decimal("8"))


def entries(action: str) -> list[AuditLog]:
    return list(AuditLog.objects.filter(action=action).order_by("id"))


def errors_of(excinfo) -> dict[str, list[str]]:
    return excinfo.value.message_dict


# --- partners -------------------------------------------------------------------------------------------
def test_partner_create_writes_and_audits_with_the_partner_snapshot():
    partner = partner_create(partner=Partner(slug="zeta", name="Zeta IT", currency="EUR", tax_rate=Decimal("19")),
                             actor=ACTOR)
    assert Partner.objects.get(slug="zeta").currency == "EUR"
    [entry] = entries("partner.create")
    assert entry.after == partner_snapshot(partner) == {
        "slug": "zeta", "name": "Zeta IT", "currency": "EUR", "tax_rate": "19", "payment_terms_days": 30,
        "billing_emails": "", "billing_portal_url": "", "billing_address": "", "tax_id": "",
        "purchase_order": ""}
    assert (entry.before, entry.partner_id, entry.actor_label, entry.object_id) == (None, partner.pk, "tester",
                                                                                    str(partner.pk))


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"tax_rate": Decimal("101")}, "tax_rate", "is a percent: at most 100"),
    ({"currency": "XYZ"}, "currency", "unknown currency 'XYZ'"),
    ({"slug": "Not A Slug"}, "slug", "use lower-case letters"),
])
def test_partner_create_refuses_what_the_admin_and_the_import_refuse(fields, field, message):
    with pytest.raises(ValidationError) as excinfo:
        partner_create(partner=Partner(**{"slug": "zeta", "name": "Zeta", **fields}), actor=ACTOR)
    assert any(message in m for m in errors_of(excinfo)[field])
    assert not Partner.objects.exists() and not AuditLog.objects.exists()


def test_partner_update_audits_the_change_and_dates_the_terms(acme):
    acme.tax_rate = Decimal("10")
    partner, effective = partner_update(partner=acme, actor=ACTOR, effective=date(2026, 6, 15))
    assert effective == date(2026, 6, 15)
    assert Partner.objects.get(pk=acme.pk).tax_rate == Decimal("10")
    [entry] = entries("partner.update")
    assert (entry.before["tax_rate"], entry.after["tax_rate"]) == ("8", "10")
    assert entry.after == partner_snapshot(partner) and entry.partner_id == acme.pk
    [terms] = entries("partner.terms")
    assert terms.after == {"tax_rate": "10", "effective_from": "2026-06-15"}
    assert TermsVersion.objects.get(object_type="partner", object_id=acme.pk).valid_until == date(2026, 6, 14)


def test_partner_update_with_data_and_nothing_changed_writes_no_audit(acme):
    partner_update(partner=acme, data={"name": acme.name}, actor=ACTOR)
    assert not AuditLog.objects.exists()


def test_a_partners_currency_is_fixed_once_it_has_services(acme):
    ServiceFactory(partner=acme, code="web", method=Method.FLAT)
    with pytest.raises(ValidationError) as excinfo:
        partner_update(partner=acme, data={"currency": "EUR"}, actor=ACTOR)
    assert errors_of(excinfo)["currency"] == [
        "cannot change from USD once the partner has services (prices are in it)"]
    assert Partner.objects.get(pk=acme.pk).currency == "USD" and not AuditLog.objects.exists()


def test_partner_delete_audits_what_was_deleted():
    partner = PartnerFactory(slug="gone", name="Gone MSP")
    before = partner_snapshot(partner)
    partner_delete(partner=Partner.objects.get(pk=partner.pk), actor=ACTOR)
    assert not Partner.objects.filter(slug="gone").exists()
    [entry] = entries("partner.delete")
    assert (entry.before, entry.after, entry.partner_id, entry.object_repr) == (before, None, None, "Gone MSP")


# --- customers ------------------------------------------------------------------------------------------
def test_customer_create_update_and_delete_audit_with_the_customer_snapshot(acme):
    customer = customer_create(customer=Customer(partner=acme, slug="west", name="West", host_limit=10), actor=ACTOR)
    [created] = entries("customer.create")
    assert created.after == customer_snapshot(customer) and created.partner_id == acme.pk

    _, effective = customer_update(customer=customer, data={"host_limit": 25}, actor=ACTOR,
                                   effective=date(2026, 5, 20))
    assert effective == date(2026, 5, 20)
    [updated] = entries("customer.update")
    assert (updated.before["host_limit"], updated.after["host_limit"]) == (10, 25)
    assert updated.after == customer_snapshot(Customer.objects.get(pk=customer.pk))
    assert entries("customer.terms")[0].after == {"host_limit": 25, "effective_from": "2026-05-20"}

    customer_delete(customer=Customer.objects.get(pk=customer.pk), actor=ACTOR)
    [deleted] = entries("customer.delete")
    assert deleted.before == updated.after and deleted.partner_id == acme.pk
    assert not Customer.objects.filter(slug="west").exists()


def test_a_cap_below_the_active_seats_is_refused_and_nothing_is_written(acme):
    customer = CustomerFactory(partner=acme, slug="west", name="West")
    SeatAssignmentFactory(member=MemberFactory(customer=customer, name="ana"), assigned_at=SINCE)
    SeatAssignmentFactory(member=MemberFactory(customer=customer, name="ben"), assigned_at=SINCE)
    with pytest.raises(ValidationError) as excinfo:
        customer_update(customer=customer, data={"seat_cap": 1}, actor=ACTOR)
    assert errors_of(excinfo)["seat_cap"] == ["2 seats are active now; unassign seats before lowering the cap to 1"]
    assert Customer.objects.get(pk=customer.pk).seat_cap is None and not AuditLog.objects.exists()
    customer_update(customer=customer, data={"seat_cap": 2}, actor=ACTOR)
    assert Customer.objects.get(pk=customer.pk).seat_cap == 2


def test_a_second_customer_with_the_same_slug_is_refused(acme):
    CustomerFactory(partner=acme, slug="west", name="West")
    with pytest.raises(ValidationError):
        customer_create(customer=Customer(partner=acme, slug="west", name="West again"), actor=ACTOR)
    assert Customer.objects.filter(slug="west").count() == 1 and not AuditLog.objects.exists()


# --- services -------------------------------------------------------------------------------------------
def test_service_create_checks_the_method_rules(acme):
    service = Service(partner=acme, code="m365", name="M365", method=Method.CMQ, meter="users",
                      unit_price=Money("5", "USD"), start_date=date(2026, 5, 10))
    with pytest.raises(ValidationError) as excinfo:
        service_create(service=service, actor=ACTOR)
    assert errors_of(excinfo)["committed_quantity"] == ["required for method cmq"]
    assert errors_of(excinfo)["start_date"] == ["a cmq service must start on the 1st of a month"]
    assert not Service.objects.exists() and not AuditLog.objects.exists()


def test_service_create_and_update_audit_with_the_service_snapshot_and_date_the_price(acme):
    west = CustomerFactory(partner=acme, slug="west", name="West")
    service = service_create(service=Service(partner=acme, customer=west, code="web", name="Web", method=Method.FLAT,
                                             unit_price=Money("10", "USD"), start_date=date(2026, 1, 1)), actor=ACTOR)
    [created] = entries("service.create")
    assert created.after == service_snapshot(service)
    assert (created.after["customer"], created.after["code"], created.after["unit_price"]) == ("west", "web", "10 USD")

    service.unit_price = Money("12", "USD")
    with pytest.raises(ValidationError) as excinfo:  # a price changes on a month's 1st (billing-rules 3.11)
        service_update(service=service, actor=ACTOR, effective=date(2026, 6, 15))
    assert "takes effect on a month's 1st" in errors_of(excinfo)["effective_from"][0]
    assert Service.objects.get(pk=service.pk).unit_price == Money("10", "USD")

    _, effective = service_update(service=service, actor=ACTOR, effective=date(2026, 6, 1))
    assert effective == date(2026, 6, 1)
    [updated] = entries("service.update")
    assert (updated.before["unit_price"], updated.after["unit_price"]) == ("10 USD", "12 USD")
    assert entries("service.terms")[0].after == {"unit_price": "12.0000", "effective_from": "2026-06-01"}
    assert TermsVersion.objects.get(object_type="service", object_id=service.pk).valid_until == date(2026, 5, 31)


def test_how_a_services_units_are_derived_is_fixed_once_saved(acme):
    service = ServiceFactory(partner=acme, code="seats", method=Method.SEAT_DAYS)
    service.method = "flat"
    with pytest.raises(ValidationError) as excinfo:
        service_update(service=service, actor=ACTOR)
    assert "cannot change from 'seat_days' to 'flat'" in errors_of(excinfo)["method"][0]
    assert Service.objects.get(pk=service.pk).method == Method.SEAT_DAYS and not AuditLog.objects.exists()


def test_service_delete_audits_what_was_deleted(acme):
    service = ServiceFactory(partner=acme, code="old", method=Method.FLAT)
    before = service_snapshot(service)
    service_delete(service=service, actor=ACTOR)
    [entry] = entries("service.delete")
    assert (entry.before, entry.partner_id, entry.object_type) == (before, acme.pk, "partners.Service")


# --- the bulk form (the imports) -------------------------------------------------------------------------
def test_customers_upsert_writes_a_batch_with_the_same_audit_rows(acme):
    west = CustomerFactory(partner=acme, slug="west", name="West", host_limit=10)
    same = CustomerFactory(partner=acme, slug="same", name="Same")
    before, terms_before = customer_snapshot(west), values_of(west)
    west.host_limit = 25
    upserts = [Upsert(Customer(partner=acme, slug="east", name="East")),
               Upsert(west, before=before, terms_before=terms_before, effective=date(2026, 5, 1)),
               Upsert(same, before=customer_snapshot(same), terms_before=values_of(same))]
    assert [u.changed for u in upserts] == [True, True, False]
    customers_upsert(upserts=upserts, update_fields=["name", "host_limit"], actor=ACTOR)
    assert Customer.objects.get(slug="west").host_limit == 25 and Customer.objects.filter(slug="east").exists()
    [created], [updated] = entries("customer.create"), entries("customer.update")
    assert created.after == customer_snapshot(Customer.objects.get(slug="east"))
    assert (updated.before, updated.after) == (before, customer_snapshot(Customer.objects.get(slug="west")))
    assert entries("customer.terms")[0].after == {"host_limit": 25, "effective_from": "2026-05-01"}


def test_write_errors_are_the_imports_row_errors(acme):
    """The import reports a row's errors as write_errors gives them, column by column."""
    service = Service(partner=acme, code="m365", name="M365", method=Method.CMQ, meter="users",
                      unit_price=Money("5", "USD"), start_date=date(2026, 5, 10))
    expected = write_errors(service, before=None)
    assert expected == {"committed_quantity": "required for method cmq",
                        "start_date": "a cmq service must start on the 1st of a month"}
    summary = run_import_text("services", "partner,code,name,method,meter,unit_price,start_date\n"
                                          "acme,m365,M365,cmq,users,5,2026-05-10\n")
    assert sorted((e.row, e.column, e.reason) for e in summary.errors) == [(2, c, r) for c, r in expected.items()]
    assert not Service.objects.exists()


# --- the same change through each door, the same audit row ----------------------------------------------
@pytest.fixture
def boss():
    client = Client()
    client.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
    return client


def audit_rows(action: str) -> list[tuple]:
    return [(e.object_type, e.object_id, e.partner_id, e.before, e.after) for e in entries(action)]


def test_a_caps_change_in_the_admin_the_import_and_the_portal_writes_the_same_audit_row(acme, boss):
    customer = CustomerFactory(partner=acme, slug="west", name="West", host_limit=3, rmm_organization="WEST")
    ServiceFactory(partner=acme, code="seats")  # the portal's seat forms are for customers that seats cover
    owner = Client()
    owner.force_login(PartnerUserFactory(user=UserFactory(username="owner"), partner=acme, role=Role.OWNER).user)

    response = boss.post(reverse("admin:partners_customer_change", args=[customer.pk]), {
        "name": "West", "seat_cap": "5", "host_limit": "3", "payment_terms_days": "", "rmm_organization": "WEST",
        "services-TOTAL_FORMS": "0", "services-INITIAL_FORMS": "0"})
    assert response.status_code == 302
    Customer.objects.filter(pk=customer.pk).update(seat_cap=None)
    summary = run_import_text("customers", "partner,slug,name,seat_cap\nacme,west,West,5\n")
    assert (summary.error_count, summary.updated) == (0, 1)
    Customer.objects.filter(pk=customer.pk).update(seat_cap=None)
    assert owner.post(reverse("portal:seat_cap", args=[customer.pk]), {"seat_cap": "5"}).status_code == 302

    admin_row, import_row, portal_row = audit_rows("customer.update")
    assert admin_row == import_row == portal_row
    assert admin_row[3:] == ({**customer_snapshot(customer), "seat_cap": None}, {**customer_snapshot(customer),
                                                                                 "seat_cap": 5})


def test_a_partners_change_in_the_admin_and_the_import_writes_the_same_audit_row(acme, boss):
    response = boss.post(reverse("admin:partners_partner_change", args=[acme.pk]), {
        "name": acme.name, "currency": "USD", "tax_rate": "10", "payment_terms_days": "30",
        "billing_emails": acme.billing_emails, "customers-TOTAL_FORMS": "0", "customers-INITIAL_FORMS": "0",
        "services-TOTAL_FORMS": "0", "services-INITIAL_FORMS": "0", "users-TOTAL_FORMS": "0",
        "users-INITIAL_FORMS": "0"})
    assert response.status_code == 302
    Partner.objects.filter(pk=acme.pk).update(tax_rate=Decimal("8"))
    summary = run_import_text("partners", "slug,name,currency,tax_rate,payment_terms_days,billing_emails\n"
                                          f"acme,{acme.name},USD,10,30,{acme.billing_emails}\n")
    assert (summary.error_count, summary.updated) == (0, 1)
    admin_row, import_row = audit_rows("partner.update")
    assert admin_row == import_row
    assert (admin_row[2], admin_row[3]["tax_rate"], admin_row[4]["tax_rate"]) == (acme.pk, "8", "10")
    assert admin_row[4] == {**partner_snapshot(acme), "tax_rate": "10"}


def test_a_price_change_in_the_admin_and_the_import_writes_the_same_audit_row(acme, boss):
    service = ServiceFactory(partner=acme, code="web", name="Web", method=Method.FLAT, unit_price=Money("10", "USD"))
    response = boss.post(reverse("admin:partners_service_change", args=[service.pk]), {
        "customer": "", "name": "Web", "unit_price_0": "12", "unit_price_1": "USD", "overage_price_0": "",
        "overage_price_1": "USD", "committed_quantity": "", "tiers": "", "tier_mode": "volume",
        "proration": "day_fraction", "taxable": "on", "notification_emails": "", "storage_per_license_gb": "",
        "start_date": "2026-01-01", "end_date": "", "terms_effective_from": "2026-06-01",
        "seat_purchases-TOTAL_FORMS": "0", "seat_purchases-INITIAL_FORMS": "0"})
    assert response.status_code == 302
    QuerySet.update(Service.objects.filter(pk=service.pk), unit_price=Decimal("10"))
    summary = run_import_text("services", "partner,code,name,method,unit_price,start_date,effective_from\n"
                                          "acme,web,Web,flat,12,2026-01-01,2026-06-01\n")
    assert (summary.error_count, summary.updated) == (0, 1)
    admin_row, import_row = audit_rows("service.update")
    assert admin_row == import_row
    assert (admin_row[3]["unit_price"], admin_row[4]["unit_price"]) == ("10 USD", "12 USD")
    assert set(admin_row[4]) == set(service_snapshot(service))
    dated = {"unit_price": "12.0000", "effective_from": "2026-06-01"}
    assert [e.after for e in entries("service.terms")] == [dated, dated]


def test_the_admin_deletes_a_service_through_the_service(acme, boss):
    service = ServiceFactory(partner=acme, code="old", method=Method.FLAT)
    before = service_snapshot(service)
    response = boss.post(reverse("admin:partners_service_delete", args=[service.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Service.objects.filter(pk=service.pk).exists()
    [entry] = entries("service.delete")
    assert entry.before == before and entry.actor.username == "boss"


def test_the_partner_pages_customer_rows_are_written_by_the_customer_services(acme, boss):
    west = CustomerFactory(partner=acme, slug="west", name="West", host_limit=3)
    page = reverse("admin:partners_partner_change", args=[acme.pk])
    response = boss.post(page, {
        "name": acme.name, "currency": "USD", "tax_rate": "8", "payment_terms_days": "30",
        "billing_emails": acme.billing_emails, "services-TOTAL_FORMS": "0", "services-INITIAL_FORMS": "0",
        "users-TOTAL_FORMS": "0", "users-INITIAL_FORMS": "0",
        "customers-TOTAL_FORMS": "2", "customers-INITIAL_FORMS": "1",
        "customers-0-id": west.pk, "customers-0-partner": acme.pk, "customers-0-name": "West",
        "customers-0-slug": "west", "customers-0-host_limit": "7", "customers-0-payment_terms_days": "",
        "customers-0-rmm_organization": "",
        "customers-1-name": "East", "customers-1-slug": "east", "customers-1-host_limit": "0"})
    assert response.status_code == 302, response.context["errors"] if response.context else None
    east = Customer.objects.get(partner=acme, slug="east")
    [created], [updated] = entries("customer.create"), entries("customer.update")
    assert created.after == customer_snapshot(east)
    assert (updated.before["host_limit"], updated.after["host_limit"]) == (3, 7)
    assert entries("customer.terms")[0].after["host_limit"] == 7  # dated from today, as on the customer's page
