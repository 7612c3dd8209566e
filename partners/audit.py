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
from partners.models import AuditLog

__all__ = ["Actor", "audit_entry", "audit_record", "group_snapshot", "partner_user_snapshot", "snapshot",
           "user_snapshot"]


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


def audit_entry(*, actor: Actor, action: str, obj=None, partner=None, partner_id=None, object_type: str = "",
                object_id="", object_repr: str = "", before=None, after=None) -> AuditLog:
    """An unsaved audit row (for bulk writes)."""
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
