"""Who may use the portal: a logged-in user with a PartnerUser, scoped to that partner.

Objects of another partner are looked up through the partner's own querysets, so they answer 404
(never 403): a partner cannot learn that another partner's object exists.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from partners.models import BILLING_ROLES, PartnerUser, Role


def portal_view(*, roles=None):
    """Require a logged-in partner user (anonymous: the login page; no PartnerUser: 403) and,
    when `roles` is given, one of those roles (403 otherwise). Sets request.partner_user and
    request.partner."""

    def decorate(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), login_url=reverse("portal:login"))
            partner_user = PartnerUser.objects.select_related("partner").filter(user=request.user).first()
            if partner_user is None or not request.user.is_active:
                raise PermissionDenied("the portal is for partner users")
            if roles is not None and partner_user.role not in roles:
                raise PermissionDenied("your role cannot do this")
            request.partner_user = partner_user
            request.partner = partner_user.partner
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


BILLING = BILLING_ROLES
OWNER = (Role.OWNER,)
