"""The audit log: every change of seats, money, roles, API keys and integration secrets writes a row
in the same transaction, naming who (a user, or a command, task or API key) and when.

Secrets never go in: an API key is named by its public prefix, an RMM token only as set / not set
with a keyed fingerprint (metering.admin), a password not at all (user_snapshot leaves it out)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.db import models
from djmoney.money import Money

from billing.core.actor import Actor
from partners.choices import AuditAction
from partners.models import AuditLog, Customer

__all__ = ["Actor", "audit_entry", "audit_record", "audit_snapshot", "customer_snapshot", "group_snapshot",
           "partner_snapshot", "partner_user_snapshot", "service_snapshot", "snapshot", "user_snapshot"]


def _decimal_text(value: Decimal) -> str:
    """The same number always reads the same (10, 10.000 -> "10"), so snapshots compare by value."""
    return format(value.normalize(), "f")


def jsonable(value):
    if isinstance(value, Money):
        return f"{_decimal_text(value.amount)} {value.currency}"
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, models.Model):
        return str(value.pk)
    return value


def snapshot(obj: models.Model, fields) -> dict:
    return {name: jsonable(getattr(obj, name)) for name in fields}


# The one snapshot of each of partners, customers and services: the `before` and `after` of their
# `partners.*`, `customers.*` and `services.*` audit rows, whichever door the change came through (the
# admin, the portal, the imports: all write through partners.services).
PARTNER_AUDIT_FIELDS = ("slug", "name", "currency", "tax_rate", "payment_terms_days", "billing_emails",
                        "billing_portal_url", "billing_address", "tax_id", "purchase_order")
CUSTOMER_AUDIT_FIELDS = ("slug", "name", "seat_cap", "host_limit", "payment_terms_days", "rmm_organization")
SERVICE_AUDIT_FIELDS = (
    "code", "name", "method", "meter", "usage_meter", "unit_price", "overage_price", "committed_quantity",
    "overage_enabled", "storage_per_license_gb", "tiers", "tier_mode", "proration", "start_date", "end_date",
    "rmm_filter", "taxable", "notification_emails",
)


def partner_snapshot(partner) -> dict:
    return snapshot(partner, PARTNER_AUDIT_FIELDS)


def customer_snapshot(customer) -> dict:
    return snapshot(customer, CUSTOMER_AUDIT_FIELDS)


def service_snapshot(service) -> dict:
    """The service's fields, and its customer by slug (None: a partner-level service)."""
    data = snapshot(service, SERVICE_AUDIT_FIELDS)
    data["customer"] = service.customer.slug if service.customer_id else None
    return data


_SNAPSHOTS = {"partner": partner_snapshot, "customer": customer_snapshot, "service": service_snapshot}


def audit_snapshot(obj: models.Model) -> dict:
    """The snapshot of a partner, a customer or a service (the one function of its model)."""
    return _SNAPSHOTS[obj._meta.model_name](obj)


def audit_entry(*, actor: Actor, action: AuditAction | str, obj=None, partner=None, partner_id=None,
                object_type: str = "",
                object_id="", object_repr: str = "", before=None, after=None) -> AuditLog:
    """An unsaved audit row (for bulk writes). `action` is an AuditAction (a plain string is checked against
    them: ValueError for any other)."""
    action = AuditAction(action)
    if obj is not None:
        object_type = object_type or obj._meta.label
        object_id = object_id or obj.pk
        object_repr = object_repr or str(obj)[:300]
    entry = AuditLog(
        actor=actor.user, actor_label=str(actor)[:200], partner=partner, action=action,
        object_type=object_type, object_id=str(object_id or ""), object_repr=object_repr[:300],
        before=before, after=after,
    )
    if partner_id is not None:
        entry.partner_id = partner_id
    return entry


def audit_record(**kwargs) -> AuditLog:
    entry = audit_entry(**kwargs)
    entry.save()
    return entry


def audit_import_per_customer(*, actor: Actor, action: AuditAction | str, source: str,
                              counts: dict[int, dict]) -> None:
    """An import's audit: one entry per customer it touched, with its counts and the file (usage and tenant events,
    by the engine and by the set-based paths alike)."""
    if not counts:
        return
    customers = Customer.objects.in_bulk(list(counts))
    AuditLog.objects.bulk_create(
        audit_entry(actor=actor, action=action, obj=customers[cid], partner_id=customers[cid].partner_id,
                    after={**values, "file": source})
        for cid, values in counts.items()
    )


def _permission_names(permissions) -> list[str]:
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in permissions.select_related("content_type"))


def user_snapshot(user) -> dict:
    """A staff account's access: its flags, groups and own permissions (never the password hash)."""
    return {
        "username": user.get_username(),
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": sorted(user.groups.values_list("name", flat=True)) if user.pk else [],
        "user_permissions": _permission_names(user.user_permissions.all()) if user.pk else [],
    }


def group_snapshot(group) -> dict:
    return {"name": group.name, "permissions": _permission_names(group.permissions.all()) if group.pk else []}


def partner_user_snapshot(partner_user) -> dict:
    """A portal login's partner and role (billing-rules 3.2, 11.1: Owner and Billing buy seats, Owners make keys)."""
    return {
        "user": partner_user.user.get_username() if partner_user.user_id else None,
        "partner": partner_user.partner.slug if partner_user.partner_id else None,
        "role": partner_user.role,
    }
