"""Every change of money, seats, roles, API keys and integration secrets is in the audit log with who
and when, whichever screen or door it came through; secrets never are."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from billing.core.actor import Actor
from invoicing.models import Invoice
from metering.models import RmmIntegration
from partners.api_keys import api_key_create
from partners.models import ApiKey, AuditLog, Method, PartnerUser, Role, SeatAssignment
from partners.tests.factories import (
    CustomerFactory,
    PartnerFactory,
    PartnerUserFactory,
    ServiceFactory,
    UserFactory,
)
from tests.examples import replay

JSON_FEED = {"kind": "json", "enabled": "on", "removal_guard_percent": "20", "count_offline": "on"}
pytestmark = pytest.mark.django_db

TOKEN_A, TOKEN_B = "rmm-token-AAAA-0123456789", "rmm-token-BBBB-9876543210"


@pytest.fixture
def boss(client):
    user = UserFactory(username="boss", is_staff=True, is_superuser=True)
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def partner():
    partner = PartnerFactory(slug="acme", name="Acme MSP")
    ServiceFactory(partner=partner, code="seats", method=Method.SEAT_DAYS, committed_quantity=5,
                   unit_price=Money("10.00", "USD"))
    CustomerFactory(partner=partner, slug="alpha", name="Alpha")
    return partner


def only(action, **filters) -> AuditLog:
    entry = AuditLog.objects.get(action=action, **filters)
    assert timezone.now() - entry.at < timedelta(minutes=1)  # when
    return entry


# --- roles ----------------------------------------------------------------------------------------
def test_a_partner_users_role_change_is_audited(boss, partner):
    partner_user = PartnerUserFactory(partner=partner, user=UserFactory(username="dana"), role=Role.TECHNICIAN)
    response = boss.post(reverse("admin:partners_partneruser_change", args=[partner_user.pk]),
                         {"user": partner_user.user_id, "partner": partner.pk, "role": Role.OWNER})
    assert response.status_code == 302
    entry = only("partner_user.update", object_id=str(partner_user.pk))
    assert entry.actor == boss.user and entry.partner == partner
    assert (entry.before["role"], entry.after["role"]) == (Role.TECHNICIAN, Role.OWNER)
    assert entry.after["user"] == "dana"


def test_partner_users_added_and_removed_on_the_partner_page_are_audited(boss, partner):
    dana = UserFactory(username="dana")
    page = reverse("admin:partners_partner_change", args=[partner.pk])
    base = {"name": partner.name, "currency": "USD", "tax_rate": "0", "payment_terms_days": "30",
            "billing_emails": partner.billing_emails,
            "customers-TOTAL_FORMS": "0", "customers-INITIAL_FORMS": "0",
            "services-TOTAL_FORMS": "0", "services-INITIAL_FORMS": "0"}
    response = boss.post(page, {**base, "users-TOTAL_FORMS": "1", "users-INITIAL_FORMS": "0",
                                "users-0-user": dana.pk, "users-0-role": Role.BILLING})
    assert response.status_code == 302, response.content.decode()[:3000]
    partner_user = PartnerUser.objects.get(user=dana)
    assert only("partner_user.create", object_id=str(partner_user.pk)).after["role"] == Role.BILLING
    response = boss.post(page, {**base, "users-TOTAL_FORMS": "1", "users-INITIAL_FORMS": "1",
                                "users-0-id": partner_user.pk, "users-0-partner": partner.pk,
                                "users-0-user": dana.pk, "users-0-role": Role.BILLING, "users-0-DELETE": "on"})
    assert response.status_code == 302
    assert not PartnerUser.objects.filter(pk=partner_user.pk).exists()
    entry = only("partner_user.delete", object_id=str(partner_user.pk))
    assert entry.actor == boss.user and entry.before == {"user": "dana", "partner": "acme", "role": Role.BILLING}


def test_staff_flags_and_group_membership_are_audited_without_the_password(boss, django_user_model):
    clerk_group, _ = Group.objects.get_or_create(name="Billing clerk")
    ann = UserFactory(username="ann", is_staff=False)
    response = boss.post(reverse("admin:auth_user_change", args=[ann.pk]), {
        "username": "ann", "is_active": "on", "is_staff": "on", "groups": [clerk_group.pk],
        "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00", "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    entry = only("user.update", object_id=str(ann.pk))
    assert entry.actor == boss.user
    assert (entry.before["is_staff"], entry.after["is_staff"]) == (False, True)
    assert (entry.before["groups"], entry.after["groups"]) == ([], ["Billing clerk"])
    ann.refresh_from_db()
    assert "password" not in str(entry.before) + str(entry.after)
    assert ann.password.split("$")[-1] not in str(entry.after)


def test_a_groups_permissions_change_is_audited(boss):
    group = Group.objects.create(name="Temps")
    permission = Permission.objects.get(codename="view_invoice")
    response = boss.post(reverse("admin:auth_group_change", args=[group.pk]),
                         {"name": "Temps", "permissions": [permission.pk]})
    assert response.status_code == 302
    entry = only("group.update", object_id=str(group.pk))
    assert entry.actor == boss.user and entry.after["permissions"] == ["invoicing.view_invoice"]


# --- integration secrets -------------------------------------------------------------------------
def test_an_rmm_token_set_changed_and_removed_is_audited_never_its_value(boss, partner):
    add = reverse("admin:metering_rmmintegration_add")
    form = {"partner": partner.pk, **JSON_FEED, "base_url": "https://rmm.example"}
    assert boss.post(add, {**form, "new_api_token": TOKEN_A}).status_code == 302
    integration = RmmIntegration.objects.get(partner=partner)
    change = reverse("admin:metering_rmmintegration_change", args=[integration.pk])
    assert boss.post(change, {**form, "new_api_token": TOKEN_B}).status_code == 302
    assert boss.post(change, {**form, "base_url": "https://rmm2.example"}).status_code == 302  # token kept
    assert boss.post(change, {**form, "kind": "folder", "folder_path": "/srv/drop",
                              "clear_api_token": "on"}).status_code == 302
    created = only("rmm_integration.create", object_id=str(integration.pk))
    updates = list(AuditLog.objects.filter(action="rmm_integration.update").order_by("id"))
    assert created.actor == boss.user and created.after["api_token"].startswith("set (")
    first, second, third = (u.after["api_token"] for u in updates)
    assert first.startswith("set (") and first != created.after["api_token"]  # a new token, a new fingerprint
    assert second == first and third == "not set"
    everything = str(list(AuditLog.objects.values_list("before", "after", "object_repr")))
    assert TOKEN_A not in everything and TOKEN_B not in everything
    assert "AAAA" not in everything and "BBBB" not in everything


# --- API keys, money and seats from every door ------------------------------------------------------
def test_api_keys_created_and_revoked_anywhere_are_audited(boss, partner, client, capsys):
    response = boss.post(reverse("admin:partners_apikey_add"), {"partner": partner.pk, "name": "psa"})
    assert response.status_code == 302
    key = ApiKey.objects.get(name="psa")
    assert only("api_key.create", object_id=str(key.pk)).actor == boss.user
    call_command("create_api_key", "--partner", "acme", "--name", "cli")
    cli_key = ApiKey.objects.get(name="cli")
    assert only("api_key.create", object_id=str(cli_key.pk)).actor_label
    boss.post(reverse("admin:partners_apikey_changelist"), {"action": "revoke_keys", "_selected_action": [key.pk]})
    assert only("api_key.revoke", object_id=str(key.pk)).actor == boss.user
    secret = capsys.readouterr().out.strip().split()[-1]
    assert secret not in str(list(AuditLog.objects.values_list("before", "after", "object_repr", "actor_label")))


def test_seats_and_money_changes_name_their_actor(boss, partner, client):
    """One change through each door: admin, portal, API; each row names who and when."""
    customer = partner.customers.get(slug="alpha")
    boss.post(reverse("admin:partners_seatassignment_add"), {"customer": customer.pk, "member_name": "ana"})
    assert only("seat.assign").actor == boss.user
    service = partner.services.get(code="seats")
    boss.post(reverse("admin:partners_seatpurchase_add"), {"service": service.pk, "seats": "2"})
    assert only("seat_purchase.create").actor == boss.user
    boss.post(reverse("admin:partners_service_change", args=[service.pk]), {
        "customer": "", "name": service.name, "unit_price_0": "12.00", "unit_price_1": "USD",
        "overage_price_0": "", "overage_price_1": "USD", "committed_quantity": "5", "tier_mode": "volume",
        "proration": "day_fraction", "start_date": "2026-01-01", "taxable": "on"})
    price = only("service.update", object_id=str(service.pk))
    assert price.actor == boss.user and (price.before["unit_price"], price.after["unit_price"]) == (
        "10 USD", "12 USD")
    _, key = api_key_create(partner=partner, actor=Actor(label="test"))
    client.post("/api/partner/seats", {"customer": "alpha", "member": "bob"}, content_type="application/json",
                headers={"Authorization": f"Bearer {key}"})
    api_entry = AuditLog.objects.get(action="seat.assign", object_repr__contains="bob")
    assert api_entry.actor_label.startswith("api key ") and key.split("_", 2)[2] not in api_entry.actor_label
    assert SeatAssignment.objects.filter(member__name="bob").exists()


def test_a_deleted_draft_invoice_is_audited(boss, data_dir, cli):
    replay(data_dir / "seat-days-basic", upto_billing=False)
    cli("run_billing", "--through", "2026-04-01", "--draft")
    draft = Invoice.objects.drafts().get()
    assert boss.post(reverse("admin:invoicing_invoice_delete", args=[draft.pk]), {"post": "yes"}).status_code == 302
    entry = only("invoice.delete_draft", object_id=str(draft.pk))
    assert entry.actor == boss.user and entry.before["state"] == "draft" and entry.partner.slug == "brightdesk"
