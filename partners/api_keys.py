"""API keys: created once, stored as a digest, checked in constant time, revoked for good (billing-rules 11.1)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from billing.core.actor import Actor
from partners.audit import audit_record
from partners.choices import AuditAction
from partners.models import ApiKey, Partner

KEY_PREFIX = "bk"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def api_key_create(*, partner: Partner, actor: Actor, name: str = "") -> tuple[ApiKey, str]:
    """A new key: returns (the stored key, the secret to show once)."""
    prefix = secrets.token_hex(4)
    while ApiKey.objects.filter(prefix=prefix).exists():
        prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(partner=partner, name=name[:100], prefix=prefix, digest=_digest(key),
                                    created_by=actor.user)
    audit_record(actor=actor, action=AuditAction.API_KEY_CREATE, obj=api_key, partner=partner,
                 after={"prefix": prefix, "name": name})  # never the secret
    return api_key, key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: Actor) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action=AuditAction.API_KEY_REVOKE, obj=api_key, partner=api_key.partner,
                     after={"prefix": api_key.prefix})
    return api_key


LAST_USED_PRECISION = timedelta(minutes=1)
KEY_TEXT = re.compile(r"[A-Za-z0-9_-]{1,200}")


def api_key_check(key: str) -> ApiKey | None:
    """The active key matching a presented secret, or None. The digest is compared in constant time."""
    if not KEY_TEXT.fullmatch(key or ""):  # a key is URL-safe text; anything else (a NUL byte, say) is no key
        return None
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != KEY_PREFIX:
        return None
    candidate = ApiKey.objects.active().select_related("partner").filter(prefix=parts[1]).first()
    if candidate is None or not hmac.compare_digest(candidate.digest, _digest(key)):
        return None
    now = timezone.now()
    if candidate.last_used_at is None or now - candidate.last_used_at >= LAST_USED_PRECISION:
        # to the minute: not one write per request for a client polling many times a second
        ApiKey.objects.filter(pk=candidate.pk).update(last_used_at=now)
    return candidate
