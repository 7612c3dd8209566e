"""Production settings and the browser-facing security of the portal.

- `manage.py check --deploy --fail-level WARNING` is clean under billing.settings.production with
  the environment docs/operations.md documents, and production refuses to start without it.
- Under production settings a portal response is HTTPS only (redirect, HSTS with subdomains and
  preload), never framed, sends no referrer elsewhere, carries the strict Content-Security-Policy,
  and its cookies are Secure, HttpOnly and SameSite=Lax.
- Every portal page runs under that CSP: no inline script, no inline style (no <style>, no style
  attribute). The admin and the API docs also allow inline styles, never inline scripts, and load
  nothing from another site.
- Portal POSTs (sign in, seats, add seats, API keys, sign out) need the CSRF token.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse
from djmoney.money import Money

from billing.core.actor import Actor
from partners.api_keys import api_key_create
from partners.models import ApiKey, Method, Role, SeatAssignment, SeatPurchase
from partners.tests.factories import CustomerFactory, PartnerFactory, PartnerUserFactory, ServiceFactory, UserFactory

ROOT = Path(__file__).resolve().parents[1]

# The production environment of operations 14 ("Production settings"), with throwaway values.
DOCUMENTED_ENV = {
    "DJANGO_SETTINGS_MODULE": "billing.settings.production",
    "SECRET_KEY": "k" * 30 + "-a-long-random-production-secret-" + "z" * 20,
    "ALLOWED_HOSTS": "billing.example.com,testserver",
    "DATABASE_URL": "sqlite:////tmp/billing-production-settings-never-created.sqlite3",
    "CACHE_URL": "redis://127.0.0.1:6379/13",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/13",
    "EMAIL_HOST": "smtp.example.com",
}
STRICT_CSP = {"default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'",
              "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"}


def production(*args: str, env: dict | None = None, drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run python ARGS in a fresh process on the production settings, with only the given environment."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in DOCUMENTED_ENV and not k.startswith(("SECURE_", "SESSION_", "CSRF_", "DEBUG"))}
    environment.update({k: v for k, v in DOCUMENTED_ENV.items() if k not in drop})
    environment.update(env or {})
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=180)


def directives(header: str) -> set[str]:
    return {part.strip() for part in header.split(";") if part.strip()}


# --- check --deploy and start-up ----------------------------------------------------------------
def test_check_deploy_is_clean_under_production_settings():
    result = production("manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_fails_when_a_protection_is_switched_off():
    result = production("manage.py", "check", "--deploy", "--fail-level", "WARNING",
                        env={"SESSION_COOKIE_SECURE": "false", "SECURE_HSTS_SECONDS": "0"})
    assert result.returncode != 0
    assert "security.W012" in result.stderr + result.stdout and "security.W004" in result.stderr + result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "CACHE_URL"])
def test_production_does_not_start_without_its_environment(missing):
    result = production("manage.py", "check", drop=(missing,))
    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr


def test_production_never_runs_with_debug_on():
    result = production("manage.py", "check", env={"DEBUG": "true"})
    assert result.returncode != 0 and "DEBUG cannot be on" in result.stderr
    result = production("manage.py", "check", env={"SECRET_KEY": "dev-only-insecure-key-do-not-use-in-production"})
    assert result.returncode != 0 and "development SECRET_KEY" in result.stderr


PROBE = textwrap.dedent("""
    import json, django
    django.setup()
    from django.conf import settings
    from django.test import Client
    client = Client()
    page = client.get("/portal/login/", secure=True)
    plain = client.get("/portal/login/")
    admin = client.get("/admin/login/", secure=True)
    docs = client.get("/api/docs", secure=True)
    print(json.dumps({
        "debug": settings.DEBUG,
        "cache": settings.CACHES["default"]["BACKEND"],
        "session_age": settings.SESSION_COOKIE_AGE,
        "status": page.status_code,
        "headers": dict(page.headers),
        "csrf_cookie": page.cookies["csrftoken"].output(),
        "plain": [plain.status_code, plain.headers.get("Location")],
        "admin_csp": admin.headers.get("Content-Security-Policy"),
        "docs": [docs.status_code, docs.headers.get("Content-Security-Policy"), docs.content.decode()],
    }))
""")


@pytest.fixture(scope="module")
def probe():
    """A portal page, the admin login and the API docs fetched in a process on the production settings."""
    result = production("-c", PROBE)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_portal_responses_carry_the_security_headers(probe):
    assert probe["debug"] is False and probe["status"] == 200
    headers = probe["headers"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    csp = directives(headers["Content-Security-Policy"])
    assert csp >= STRICT_CSP and not any("unsafe" in d for d in csp)


def test_production_cookies_are_secure_httponly_and_samesite(probe):
    cookie = probe["csrf_cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert probe["session_age"] == 12 * 60 * 60


def test_production_redirects_plain_http_to_https(probe):
    status, location = probe["plain"]
    assert status == 301 and location == "https://testserver/portal/login/"


def test_production_counts_rate_limits_in_redis(probe):
    assert probe["cache"] == "django.core.cache.backends.redis.RedisCache"


def test_production_admin_and_api_docs_allow_inline_styles_never_inline_scripts(probe):
    admin = directives(probe["admin_csp"])
    assert "script-src 'self'" in admin and "style-src 'self' 'unsafe-inline'" in admin
    status, csp, html = probe["docs"]
    assert status == 200 and "script-src 'self'" in directives(csp)
    assert "cdn." not in html and "https://" not in html  # Swagger UI from our own static files
    assert not re.search(r"<script(?![^>]*\b(src|type=\"application/json\"))[^>]*>", html)


@pytest.mark.django_db
def test_portal_session_cookie_is_secure_httponly_samesite_under_production_values(client, settings):
    """A real sign-in with the cookie settings production uses (probe above: those are its values)."""
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    user = UserFactory(username="dana", password="portal-pass-123")
    PartnerUserFactory(user=user, partner=PartnerFactory(slug="acme"), role=Role.OWNER)
    response = client.post(reverse("portal:login"), {"username": "dana", "password": "portal-pass-123"},
                           secure=True)
    assert response.status_code == 302
    cookie = response.cookies[settings.SESSION_COOKIE_NAME].output()
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


# --- the CSP on every portal page -------------------------------------------------------------------
@pytest.fixture
def owner_world(db):
    partner = PartnerFactory(slug="acme", name="Acme MSP")
    customer = CustomerFactory(partner=partner, slug="alpha", name="Alpha", seat_cap=10)
    service = ServiceFactory(partner=partner, code="seats", method=Method.SEAT_DAYS, committed_quantity=5,
                             unit_price=Money("10.00", "USD"))
    user = UserFactory(username="olga", password="portal-pass-123")
    PartnerUserFactory(user=user, partner=partner, role=Role.OWNER)
    api_key, _ = api_key_create(partner=partner, actor=Actor(label="test"), name="ci")
    return {"partner": partner, "customer": customer, "service": service, "user": user, "api_key": api_key}


def portal_pages(world) -> list[str]:
    customer = world["customer"]
    return [reverse("portal:dashboard"), reverse("portal:billing"), reverse("portal:statements"),
            reverse("portal:customers"), reverse("portal:customer", args=[customer.pk]),
            reverse("portal:add_seats"), reverse("portal:team"),
            reverse("portal:api_key_created", args=[world["api_key"].pk])]


def test_every_portal_page_runs_under_the_strict_csp_with_nothing_inline(client, owner_world):
    anonymous = client.get(reverse("portal:login"))
    client.force_login(owner_world["user"])
    for response in [anonymous, *(client.get(path) for path in portal_pages(owner_world))]:
        assert response.status_code == 200, response.request["PATH_INFO"]
        csp = directives(response["Content-Security-Policy"])
        assert csp >= STRICT_CSP and not any("unsafe" in d for d in csp), response.request["PATH_INFO"]
        html = response.content.decode()
        assert "<style" not in html and " style=" not in html, response.request["PATH_INFO"]
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), response.request["PATH_INFO"]
        assert not re.search(r"\son[a-z]+=", html), response.request["PATH_INFO"]  # no onclick= and the like
        assert "/static/portal/portal.css" in html


def test_the_portal_stylesheet_is_served_from_static_files():
    path = finders.find("portal/portal.css")
    assert path and ".bar rect" in Path(path).read_text()


# --- CSRF on the portal -------------------------------------------------------------------------------
def token_of(response) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode())
    assert match, "the form carries a CSRF token"
    return match.group(1)


@pytest.mark.django_db
def test_portal_posts_are_refused_without_the_csrf_token_and_work_with_it(owner_world):
    browser = Client(enforce_csrf_checks=True)
    login = reverse("portal:login")
    credentials = {"username": "olga", "password": "portal-pass-123"}

    assert browser.post(login, credentials).status_code == 403  # no token: not even signed in
    assert "_auth_user_id" not in browser.session
    response = browser.post(login, {**credentials, "csrfmiddlewaretoken": token_of(browser.get(login))})
    assert response.status_code == 302 and "_auth_user_id" in browser.session

    customer, service = owner_world["customer"], owner_world["service"]
    page = browser.get(reverse("portal:customer", args=[customer.pk]))
    token = token_of(page)
    posts = [
        (reverse("portal:seat_assign", args=[customer.pk]), {"member": "ana"},
         lambda: SeatAssignment.objects.filter(member__name="ana").exists()),
        (reverse("portal:add_seats"), {"service": service.pk, "seats": "2"},
         lambda: SeatPurchase.objects.filter(service=service).exists()),
        (reverse("portal:api_key_create"), {"name": "new key"},
         lambda: ApiKey.objects.filter(name="new key").exists()),
        (reverse("portal:api_key_revoke", args=[owner_world["api_key"].pk]), {},
         lambda: ApiKey.objects.get(pk=owner_world["api_key"].pk).revoked_at is not None),
        (reverse("portal:seat_remove", args=[customer.pk]), {"member": "ana"},
         lambda: SeatAssignment.objects.filter(member__name="ana", removed_at__isnull=False).exists()),
    ]
    for path, data, done in posts:
        assert browser.post(path, data).status_code == 403, path
        assert not done(), path
        assert browser.post(path, {**data, "csrfmiddlewaretoken": "x" * 64}).status_code == 403, path
        assert not done(), path
        # a new API key is shown in the answer itself (200): its secret is never stored for a redirect
        assert browser.post(path, {**data, "csrfmiddlewaretoken": token}).status_code in (200, 302), path
        assert done(), path

    logout = reverse("portal:logout")
    assert browser.post(logout).status_code == 403
    assert "_auth_user_id" in browser.session
    assert browser.post(logout, {"csrfmiddlewaretoken": token}).status_code == 302
    assert "_auth_user_id" not in browser.session
