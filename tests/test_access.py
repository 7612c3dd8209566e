"""Who may do what in the admin: the "Billing clerk" and "Auditor" groups of
partners/migrations/0007_admin_groups.py, logged in through Django's test client.

A clerk opens every billing list and page, adds and edits what a clerk works with, runs the actions
(issue drafts, credit, regenerate, refresh, unassign, revoke keys, sync, get units now) and the
invoice tools (record a payment, credit lines, PDF and XLSX), and imports. An Auditor reads the same
pages, exports and downloads, and is refused everything else: add and change pages, POSTs, actions,
imports and tools. Users, groups, permissions, partner users' roles and scheduled jobs stay with
superusers: both groups are refused there.
"""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from import_export.admin import ImportMixin

from billing.core.actor import Actor
from invoicing.models import Invoice, InvoiceKind, OneTimeCharge, Payment
from metering.models import RmmIntegration, SyncRun, SyncStatus, SyncTrigger
from metering.tests.factories import SuspensionFactory, UsageSnapshotFactory
from partners.api_keys import api_key_create
from partners.models import ApiKey, AuditLog, Customer, Partner, PartnerUser, Role, SeatAssignment, Service
from partners.tests.factories import PartnerUserFactory, UserFactory
from tests.examples import replay

pytestmark = pytest.mark.django_db

admin_groups = importlib.import_module("partners.migrations.0007_admin_groups")
BILLING_APPS = ("partners", "metering", "invoicing", "rebilling", "django_celery_beat")
CLERK, AUDITOR = "Billing clerk", "Auditor"


def admin_url(model, action="changelist", *args):
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{action}", args=args)


def billing_admins():
    return [(model, model_admin) for model, model_admin in admin.site._registry.items()
            if model._meta.app_label in BILLING_APPS]


def action_names(response) -> set[str]:
    form = response.context["action_form"] if response.context else None
    return {name for name, _ in form.fields["action"].choices if name} if form else set()


def apply_group_migrations():
    """The groups as the partners migrations leave them, then the invoicing and rebilling ones that add to them
    (billing runs, price lists), in order (a transactional test's flush may have emptied them): each migration
    about the groups has an apply_to_groups(apps)."""
    for app in ("partners", "metering", "invoicing", "invoicing.rebilling"):
        folder = Path(admin_groups.__file__).parent.parent.parent.joinpath(*app.split(".")) / "migrations"
        for path in sorted(folder.glob("[0-9]*.py")):
            module = importlib.import_module(f"{app}.migrations.{path.stem}")
            if hasattr(module, "apply_to_groups"):
                module.apply_to_groups(django_apps)


@pytest.fixture
def groups():
    apply_group_migrations()


def _login(client, group_name):
    user = UserFactory(username=group_name.lower().replace(" ", "-"), is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def clerk(client, groups):
    return _login(client, CLERK)


@pytest.fixture
def auditor(client, groups):
    return _login(client, AUDITOR)


@pytest.fixture
def world(data_dir):
    """The seat-days-basic example billed (brightdesk, CI-0001..3), plus one row of every other kind."""
    replay(data_dir / "seat-days-basic")
    partner = Partner.objects.get(slug="brightdesk")
    customer = Customer.objects.filter(partner=partner).order_by("slug").first()
    UsageSnapshotFactory(customer=customer, date=date(2026, 4, 2), users_count=3)
    SuspensionFactory(customer=customer, suspended_at=datetime(2026, 4, 20, tzinfo=UTC),
                      unsuspended_at=datetime(2026, 4, 25, tzinfo=UTC))
    integration = RmmIntegration.objects.create(partner=partner, base_url="https://rmm.example",
                                                api_token="tok-not-shown")
    SyncRun.objects.create(partner=partner, integration=integration, as_of=date(2026, 5, 1),
                           trigger=SyncTrigger.MANUAL, status=SyncStatus.FAILED, error="refused")
    charge = OneTimeCharge.objects.create(partner=partner, customer=customer, description="Onboarding",
                                          quantity=Decimal("1"), unit_price=Decimal("100"), date=date(2026, 5, 3))
    api_key, _ = api_key_create(partner=partner, actor=Actor(label="test"), name="psa")
    PartnerUserFactory(partner=partner, user=UserFactory(username="dana"), role=Role.BILLING)
    schedule = CrontabSchedule.objects.create(minute="0", hour="3")
    PeriodicTask.objects.get_or_create(name="test job", defaults={"task": "x.y", "crontab": schedule})
    return {"partner": partner, "customer": customer, "charge": charge, "api_key": api_key,
            "integration": integration, "invoice": Invoice.objects.get(number="CI-0003")}


# --- the groups -----------------------------------------------------------------------------------
def test_the_groups_hold_exactly_their_permissions(groups):
    clerk = set(Group.objects.get(name=CLERK).permissions.values_list("content_type__app_label", "codename"))
    auditor = set(Group.objects.get(name=AUDITOR).permissions.values_list("content_type__app_label", "codename"))
    assert all(codename.startswith("view_") for _, codename in auditor)
    assert {app for app, _ in clerk | auditor} <= set(BILLING_APPS)  # nothing of auth, admin, sessions
    assert {(a, c) for a, c in clerk if c.startswith("delete_")} == {("invoicing", "delete_invoice"),
                                                                    ("invoicing", "delete_onetimecharge")}
    assert ("partners", "change_partneruser") not in clerk and ("partners", "add_partneruser") not in clerk
    assert not {(a, c) for a, c in clerk if a == "django_celery_beat" and not c.startswith("view_")}
    assert {("partners", "view_auditlog"), ("invoicing", "view_invoice"),
            ("metering", "view_rmmintegration")} <= auditor


def test_every_billing_model_of_the_admin_is_in_both_groups(groups):
    """A model registered later fails here until a migration gives the groups its permissions."""
    auditor = set(Group.objects.get(name=AUDITOR).permissions.values_list("content_type__app_label", "codename"))
    clerk = set(Group.objects.get(name=CLERK).permissions.values_list("content_type__app_label", "codename"))
    for model, _ in billing_admins():
        needed = (model._meta.app_label, f"view_{model._meta.model_name}")
        assert needed in auditor and needed in clerk, model


def test_running_the_migration_again_resets_the_groups(groups):
    clerk = Group.objects.get(name=CLERK)
    clerk.permissions.add(Permission.objects.get(codename="delete_partner"))
    apply_group_migrations()
    assert not clerk.permissions.filter(codename="delete_partner").exists()
    assert clerk.permissions.filter(codename="view_invoiceline").exists()


# --- pages ----------------------------------------------------------------------------------------
def test_both_groups_open_every_billing_list_and_object_page(client, groups, world):
    for group in (CLERK, AUDITOR):
        _login(client, group)
        for model, _ in billing_admins():
            assert client.get(admin_url(model)).status_code == 200, (group, model)
            obj = model._default_manager.order_by("pk").first()
            if obj is not None:
                assert client.get(admin_url(model, "change", obj.pk)).status_code == 200, (group, model)
                assert client.get(admin_url(model, "history", obj.pk)).status_code == 200, (group, model)
        client.logout()


def test_the_auditor_gets_no_add_page_and_no_save(auditor, world):
    for model, _ in billing_admins():
        assert auditor.get(admin_url(model, "add")).status_code == 403, model
    partner, charge = world["partner"], world["charge"]
    before = Partner.objects.filter(pk=partner.pk).values().get()
    response = auditor.post(admin_url(Partner, "change", partner.pk),
                            {"name": "Renamed", "currency": "USD", "tax_rate": "0", "payment_terms_days": "30"})
    assert response.status_code == 403
    assert Partner.objects.filter(pk=partner.pk).values().get() == before
    response = auditor.post(admin_url(OneTimeCharge, "change", charge.pk),
                            {"partner": partner.pk, "description": "x", "quantity": "9", "unit_price": "9",
                             "date": "2026-05-03", "taxable": "on"})
    assert response.status_code == 403
    assert OneTimeCharge.objects.get(pk=charge.pk).quantity == Decimal("1")
    assert auditor.post(admin_url(OneTimeCharge, "delete", charge.pk), {"post": "yes"}).status_code == 403
    assert OneTimeCharge.objects.filter(pk=charge.pk).exists()


EDITABLE_BY_CLERK = ["partner", "customer", "service", "seatassignment", "seatpurchase", "apikey", "rmmintegration",
                     "payment", "onetimecharge", "companyprofile", "rebillingprofile", "customerbillingprofile"]


def test_the_clerk_gets_the_add_pages_of_what_a_clerk_works_with(clerk, world):
    for model, _ in billing_admins():
        expected = 200 if model._meta.model_name in EDITABLE_BY_CLERK else 403
        assert clerk.get(admin_url(model, "add")).status_code == expected, model


def test_the_clerk_edits_a_partner_and_the_edit_is_audited(clerk, world):
    partner = world["partner"]
    response = clerk.post(admin_url(Partner, "change", partner.pk), {
        "name": partner.name, "currency": partner.currency, "tax_rate": "12.5",
        "payment_terms_days": partner.payment_terms_days, "billing_emails": partner.billing_emails,
        "customers-TOTAL_FORMS": "0", "customers-INITIAL_FORMS": "0",
        "services-TOTAL_FORMS": "0", "services-INITIAL_FORMS": "0",
        "users-TOTAL_FORMS": "0", "users-INITIAL_FORMS": "0",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Partner.objects.get(pk=partner.pk).tax_rate == Decimal("12.5")
    entry = AuditLog.objects.get(action="partner.update", object_id=str(partner.pk))
    assert entry.actor == clerk.user and entry.after["tax_rate"] == "12.5"


def test_the_clerk_cannot_delete_issued_money_or_billed_charges(clerk, world):
    invoice = world["invoice"]
    assert clerk.get(admin_url(Invoice, "delete", invoice.pk)).status_code == 403
    assert clerk.post(admin_url(Invoice, "delete", invoice.pk), {"post": "yes"}).status_code == 403
    payment_pk = Payment.objects.create(invoice=invoice, partner=invoice.partner, amount=Decimal("1.00"),
                                        paid_on=date(2026, 6, 2), reference="x").pk
    assert clerk.get(admin_url(Payment, "delete", payment_pk)).status_code == 403
    assert clerk.get(admin_url(Partner, "delete", world["partner"].pk)).status_code == 403
    # an unbilled charge can still be taken back
    assert clerk.get(admin_url(OneTimeCharge, "delete", world["charge"].pk)).status_code == 200


def test_partner_users_roles_are_for_administrators(clerk, world):
    partner_user = PartnerUser.objects.get(user__username="dana")
    assert clerk.get(admin_url(PartnerUser, "change", partner_user.pk)).status_code == 200  # read
    response = clerk.post(admin_url(PartnerUser, "change", partner_user.pk),
                          {"user": partner_user.user_id, "partner": partner_user.partner_id, "role": Role.OWNER})
    assert response.status_code == 403
    assert PartnerUser.objects.get(pk=partner_user.pk).role == Role.BILLING


# --- imports and exports -------------------------------------------------------------------------
def import_admins():
    return [(model, model_admin) for model, model_admin in billing_admins() if isinstance(model_admin, ImportMixin)]


def test_imports_take_the_add_permission_exports_the_view_permission(client, groups, world):
    assert {m._meta.model_name for m, _ in import_admins()} >= {
        "partner", "customer", "service", "seatassignment", "seatpurchase", "usagesnapshot", "suspension",
        "onetimecharge"}
    for model, _ in import_admins():
        _login(client, AUDITOR)
        assert client.get(admin_url(model, "import")).status_code == 403, model
        assert client.post(admin_url(model, "process_import"), {}).status_code == 403, model
        assert client.get(admin_url(model, "export")).status_code == 200, model
        _login(client, CLERK)
        assert client.get(admin_url(model, "import")).status_code == 200, model
        assert client.get(admin_url(model, "export")).status_code == 200, model


def test_an_auditor_import_writes_nothing(auditor, world):
    upload = SimpleUploadedFile("partners.csv", b"slug,name\nsneaky,Sneaky MSP\n", content_type="text/csv")
    response = auditor.post(admin_url(Partner, "import"), {"import_file": upload, "format": "0", "resource": "0"})
    assert response.status_code == 403
    assert not Partner.objects.filter(slug="sneaky").exists()


# --- actions --------------------------------------------------------------------------------------
ACTIONS = {
    SeatAssignment: {"unassign_selected"},
    ApiKey: {"revoke_keys"},
    RmmIntegration: {"sync_now"},
    Invoice: {"issue_drafts", "credit_whole_invoice", "regenerate_pdf", "refresh_payment_status"},
}


def test_the_clerk_has_every_action_and_the_auditor_none(client, groups, world):
    for model, names in {**ACTIONS, Service: {"get_units_now"}}.items():
        _login(client, CLERK)
        assert names <= action_names(client.get(admin_url(model))), model
        _login(client, AUDITOR)
        assert not action_names(client.get(admin_url(model))), model


def test_an_auditor_posting_an_action_changes_nothing(auditor, world):
    api_key, invoice = world["api_key"], world["invoice"]
    auditor.post(admin_url(ApiKey), {"action": "revoke_keys", ACTION_CHECKBOX_NAME: [api_key.pk]})
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is None
    auditor.post(admin_url(Invoice), {"action": "credit_whole_invoice", ACTION_CHECKBOX_NAME: [invoice.pk],
                                      "confirm": "yes", "reason": "test"})
    assert not Invoice.objects.filter(kind=InvoiceKind.CN).exists()
    seat = SeatAssignment.objects.filter(removed_at__isnull=True).first()
    auditor.post(admin_url(SeatAssignment), {"action": "unassign_selected", ACTION_CHECKBOX_NAME: [seat.pk]})
    assert SeatAssignment.objects.get(pk=seat.pk).removed_at is None
    runs = SyncRun.objects.count()
    auditor.post(admin_url(RmmIntegration), {"action": "sync_now", ACTION_CHECKBOX_NAME: [world["integration"].pk]})
    assert SyncRun.objects.count() == runs


def test_the_clerk_runs_actions_and_they_are_audited(clerk, world):
    api_key, invoice = world["api_key"], world["invoice"]
    clerk.post(admin_url(ApiKey), {"action": "revoke_keys", ACTION_CHECKBOX_NAME: [api_key.pk]})
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is not None
    assert AuditLog.objects.get(action="api_key.revoke", object_id=str(api_key.pk)).actor == clerk.user
    clerk.post(admin_url(Invoice), {"action": "credit_whole_invoice", ACTION_CHECKBOX_NAME: [invoice.pk],
                                    "confirm": "yes", "reason": "wrong seats"})
    note = Invoice.objects.get(kind=InvoiceKind.CN)
    assert AuditLog.objects.get(action="invoice.credit", object_id=str(note.pk)).actor == clerk.user


# --- the invoice tools ----------------------------------------------------------------------------
def tool(invoice, name):
    return reverse(f"admin:invoicing_invoice_{name}", args=[invoice.pk])


def test_invoice_tools_money_for_the_clerk_downloads_for_both(client, groups, world):
    invoice = world["invoice"]
    _login(client, AUDITOR)
    for name in ("payment", "credit_lines"):
        assert client.get(tool(invoice, name)).status_code == 403, name
    assert client.post(tool(invoice, "payment"), {"amount": "1.00", "paid_on": "2026-06-02"}).status_code == 403
    assert not Payment.objects.filter(invoice=invoice).exists()
    assert client.get(tool(invoice, "xlsx")).status_code == 200
    assert client.get(tool(invoice, "pdf")).status_code != 403
    page = client.get(admin_url(Invoice, "change", invoice.pk)).content.decode()
    assert tool(invoice, "xlsx") in page and tool(invoice, "payment") not in page

    _login(client, CLERK)
    for name in ("payment", "credit_lines", "xlsx"):
        assert client.get(tool(invoice, name)).status_code == 200, name
    page = client.get(admin_url(Invoice, "change", invoice.pk)).content.decode()
    assert tool(invoice, "payment") in page and tool(invoice, "credit_lines") in page
    response = client.post(tool(invoice, "payment"), {"amount": "1.00", "paid_on": "2026-06-02", "reference": "r"})
    assert response.status_code == 302
    payment = Payment.objects.get(invoice=invoice)
    entry = AuditLog.objects.get(action="payment.record", object_id=str(payment.pk))
    assert entry.actor == client.user and entry.at is not None


# --- superusers only ------------------------------------------------------------------------------
def test_accounts_and_scheduled_jobs_stay_with_superusers(client, groups, world):
    task = PeriodicTask.objects.get(name="test job")
    for group in (CLERK, AUDITOR):
        _login(client, group)
        user = client.user
        for path in (reverse("admin:auth_user_changelist"), reverse("admin:auth_group_changelist"),
                     reverse("admin:auth_user_add"), reverse("admin:auth_user_change", args=[user.pk]),
                     reverse("admin:auth_group_change", args=[Group.objects.get(name=group).pk])):
            assert client.get(path).status_code == 403, (group, path)
        response = client.post(reverse("admin:auth_user_change", args=[user.pk]),
                               {"username": user.username, "is_staff": "on", "is_superuser": "on"})
        assert response.status_code == 403
        user.refresh_from_db()
        assert not user.is_superuser
        assert client.get(admin_url(PeriodicTask, "change", task.pk)).status_code == 200  # read only
        assert client.post(admin_url(PeriodicTask, "change", task.pk), {"name": "x", "enabled": ""}).status_code == 403
        assert PeriodicTask.objects.get(pk=task.pk).enabled
        index = client.get(reverse("admin:index")).content.decode()
        assert reverse("admin:auth_user_changelist") not in index
