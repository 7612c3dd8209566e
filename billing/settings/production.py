"""Production settings: DJANGO_SETTINGS_MODULE=billing.settings.production.

Everything of base.py, with DEBUG forced off (start-up fails without SECRET_KEY, ALLOWED_HOSTS and
CACHE_URL) and the HTTPS settings at their strict values: HTTPS only (redirect and HSTS for a year,
subdomains included, preload), cookies Secure, HttpOnly and SameSite=Lax, never framed, no referrer
to other sites, and the Content-Security-Policy of base.py. Each can still be overridden from the
environment (operations 14), which `manage.py check --deploy` then reports.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from billing.settings.env import env

if env.bool("DEBUG", default=False):
    raise ImproperlyConfigured("DEBUG cannot be on with billing.settings.production.")
# base.py derives its defaults from DEBUG (required SECRET_KEY and ALLOWED_HOSTS, SMTP email, secure
# cookies): production never runs with it on, whatever a stray .env says.
os.environ["DEBUG"] = "false"

from billing.settings.base import *  # noqa: F403

DEBUG = False

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)  # noqa: F405 - persistent
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
# A staff or partner session ends after a working day (Django's default is two weeks).
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 60 * 60)
ADMIN_TWO_FACTOR = env.bool("ADMIN_TWO_FACTOR", default=True)  # superusers and Billing clerks give a second factor
INVOICE_LEGAL_DETAILS_REQUIRED = env.bool("INVOICE_LEGAL_DETAILS_REQUIRED", default=True)  # billing-rules 4.13

# Rate limits must be counted in one place for every web process: a shared cache is required.
try:
    CACHES = {"default": env.cache("CACHE_URL")}
except ImproperlyConfigured as exc:
    raise ImproperlyConfigured(
        f"{exc}. billing.settings.production needs a cache shared by every web process, "
        "e.g. CACHE_URL=redis://127.0.0.1:6379/1."
    ) from exc
