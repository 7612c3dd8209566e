"""Sign-in lockout (django-axes does the counting and the locking; docs/security.md): the page a locked sign-in
gets, and the audit row each lock writes."""

from __future__ import annotations

from axes.signals import user_locked_out
from django.conf import settings
from django.db.models import Q
from django.dispatch import receiver
from django.shortcuts import render
from django.utils import timezone

from billing.core.actor import Actor
from partners.audit import audit_record
from partners.choices import AuditAction
from partners.models import AuditLog


def lockout_response(request, original_response=None, credentials=None):
    """429 with a page that says what happened and for how long (AXES_LOCKOUT_CALLABLE)."""
    return render(request, "registration/locked_out.html", {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
    }, status=429)


@receiver(user_locked_out)
def audit_lock(sender, request, username, ip_address, **kwargs):
    """Every lock is audited once: which account, from which address, on which sign-in page (the attempts
    refused while it holds write nothing more, so that a guesser cannot flood the log)."""

    recent = AuditLog.objects.filter(action=AuditAction.LOGIN_LOCKED,
                                     at__gte=timezone.now() - settings.AXES_COOLOFF_TIME)
    recent = recent.filter(Q(after__username=username) | Q(after__ip_address=ip_address))
    if recent.exists():
        return
    audit_record(actor=Actor(label=f"sign-in as {username or '?'} from {ip_address or '?'}"[:200]),
                 action=AuditAction.LOGIN_LOCKED, object_type="auth.User", object_repr=(username or "")[:300],
                 after={"username": username, "ip_address": ip_address,
                        "path": getattr(request, "path", ""), "failures": settings.AXES_FAILURE_LIMIT,
                        "minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)})


def rate_limited(request, exception=None):
    """429 for a request over a rate limit (RATELIMIT_VIEW: the password reset requests)."""
    return render(request, "registration/rate_limited.html", status=429)
