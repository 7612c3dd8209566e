"""Two-factor authentication for staff in the admin (TOTP with django-otp; docs/security.md).

After the password, a staff user who must use a second factor is sent to /admin/two-factor/ before any admin
page: with `ADMIN_TWO_FACTOR` on (on under the production settings) superusers and the groups of
`ADMIN_TWO_FACTOR_GROUPS` (the Billing clerk) must; anyone who enrolled a device always does. The page enrolls a
TOTP device (any authenticator app: the key, or the otpauth link) and shows ten recovery codes once, or asks for a
code from the app or a recovery code (each works once). django-otp throttles wrong codes.
"""

from __future__ import annotations

from base64 import b32encode

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import login as otp_login
from django_otp import match_token, user_has_device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.core.actor import Actor
from partners.audit import audit_record
from partners.choices import AuditAction

PAGE = "/admin/two-factor/"
RECOVERY_CODES = 10
EXEMPT = ("/admin/login/", "/admin/logout/", PAGE, "/admin/jsi18n/")


def second_factor_required(user) -> bool:
    """Whether this staff user must give a second factor in the admin."""
    if user_has_device(user, confirmed=True):
        return True
    if not settings.ADMIN_TWO_FACTOR:
        return False
    return user.is_superuser or user.groups.filter(name__in=settings.ADMIN_TWO_FACTOR_GROUPS).exists()


class StaffTwoFactorMiddleware:
    """Admin pages need a verified second factor from the staff users who must give one (after OTPMiddleware)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        path = request.path
        if (path.startswith("/admin/") and not path.startswith(EXEMPT) and user is not None
                and user.is_authenticated and user.is_staff and not user.is_verified()
                and second_factor_required(user)):
            return redirect(f"{PAGE}?next={path}")
        return self.get_response(request)


class CodeForm(forms.Form):
    code = forms.CharField(max_length=32, label="Code", widget=forms.TextInput(attrs={
        "autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}))


@staff_member_required(login_url="/admin/login/")
def two_factor(request):
    """Enroll an authenticator app, or give a code from it (or a recovery code)."""

    def page(**context):  # in the admin's frame: its title, its header
        frame = {**admin.site.each_context(request), "is_nav_sidebar_enabled": False, "available_apps": []}
        return render(request, "admin/two_factor.html", {**frame, **context})

    user = request.user
    next_url = request.GET.get("next") or request.POST.get("next") or "/admin/"
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = "/admin/"
    form = CodeForm(request.POST or None)
    enrolled = user_has_device(user, confirmed=True)
    if enrolled:
        if request.method == "POST" and form.is_valid():
            device = match_token(user, form.cleaned_data["code"].replace(" ", ""))
            if device is not None:
                otp_login(request, device)
                return redirect(next_url)
            form.add_error("code", "That code is not right, or was used already.")
        return page(form=form, enrolled=True, next=next_url, title="Second factor")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first() or TOTPDevice.objects.create(
        user=user, name="authenticator app", confirmed=False)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"].replace(" ", "")):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            recovery, _ = StaticDevice.objects.get_or_create(user=user, name="recovery codes")
            recovery.token_set.all().delete()
            codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
            StaticToken.objects.bulk_create(StaticToken(device=recovery, token=code) for code in codes)
            otp_login(request, device)
            audit_record(actor=Actor.of_user(user), action=AuditAction.USER_TWO_FACTOR_ENROLLED, obj=user,
                         after={"username": user.get_username(), "recovery_codes": RECOVERY_CODES})
            return page(codes=codes, next=next_url, title="Recovery codes")
        form.add_error("code", "That code is not right: check the time of the device and try again.")
    key = b32encode(device.bin_key).decode().rstrip("=")  # as the otpauth link gives it
    return page(form=form, enrolled=False, next=next_url, title="Set up a second factor",
                key=" ".join(key[i:i + 4] for i in range(0, len(key), 4)), config_url=device.config_url)
