"""The audit log: every change of seats or money writes a row in the same transaction."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.db import models
from djmoney.money import Money

from billing.actor import Actor
from partners.models import AuditLog

__all__ = ["Actor", "audit_entry", "audit_record", "snapshot"]


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
