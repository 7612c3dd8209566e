"""Who may use the portal: a logged-in user with a PartnerUser, scoped to that partner.

Objects of another partner are looked up through the partner's own querysets, so they answer 404
(never 403): a partner cannot learn that another partner's object exists.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import reverse

from partners.models import BILLING_ROLES, PartnerUser, Role


def portal_view(*, roles=None):
    """Require a logged-in partner user (anonymous: the login page; no PartnerUser: 403) and,
    when `roles` is given, one of those roles (403 otherwise). Sets request.partner_user and
    request.partner. A 403 is the portal's own page (`forbidden`), not the site's bare one."""

    def decorate(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), login_url=reverse("portal:login"))
            partner_user = PartnerUser.objects.select_related("partner").filter(user=request.user).first()
            if partner_user is None or not request.user.is_active:
                return forbidden(request, None, "This portal is for the users of a partner account, and your "
                                                "sign-in has none.")
            if roles is not None and partner_user.role not in roles:
                return forbidden(request, partner_user, f"Your role ({partner_user.get_role_display()}) cannot "
                                                        "open this page: ask an Owner of your account.")
            request.partner_user = partner_user
            request.partner = partner_user.partner
            try:
                return view(request, *args, **kwargs)
            except PermissionDenied as exc:
                return forbidden(request, partner_user, str(exc) or "You cannot do this.")

        return wrapped

    return decorate


def forbidden(request, partner_user: PartnerUser | None, reason: str):
    """The portal's 403 page: styled, saying why, with the way back (the admin keeps Django's own 403)."""
    return render(request, "portal/403.html", {
        "reason": reason, "partner_user": partner_user,
        "partner": partner_user.partner if partner_user is not None else None,
    }, status=403)


BILLING = BILLING_ROLES
OWNER = (Role.OWNER,)
