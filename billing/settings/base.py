"""Settings, every value read from the environment.

The embedded default (no variable set) is DEBUG on, SQLite in the project
folder, Celery tasks run in-process and email printed to the console. With
DEBUG off, SECRET_KEY and ALLOWED_HOSTS must be given or start-up fails.
"""

from datetime import timedelta as _timedelta

from django.core.exceptions import ImproperlyConfigured
from import_export.formats import base_formats

from billing.settings.env import BASE_DIR, env

DEBUG = env.bool("DEBUG", default=True)

_DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY)
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
else:
    try:
        SECRET_KEY = env.str("SECRET_KEY")
        ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(
            f"{exc}. With DEBUG off, SECRET_KEY and ALLOWED_HOSTS are required."
        ) from exc
    if SECRET_KEY == _DEV_SECRET_KEY:
        raise ImproperlyConfigured("The development SECRET_KEY cannot be used with DEBUG off.")

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
]
THIRD_PARTY_APPS = [
    "djmoney",
    "import_export",
    "django_celery_beat",
    "ninja",  # serves the API docs' Swagger UI from our static files, not a CDN (the CSP allows 'self' only)
    "csp",
    # login throttling and lockout by account and by address (docs/security.md): a maintained library, not code
    # of our own
    "axes",
    # a second factor (TOTP, recovery codes) for staff in the admin (billing/two_factor.py, docs/security.md)
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
]
LOCAL_APPS = [
    "billing.core.apps.CoreConfig",  # the kernel's records (one-time tokens, import jobs)
    "billing.apps.BillingConfig",
    "partners.apps.PartnersConfig",
    "metering.apps.MeteringConfig",
    "invoicing.apps.InvoicingConfig",
    "invoicing.rebilling.apps.RebillingConfig",  # the partners' own prices to their customers (docs/rebilling.md)
]
INSTALLED_APPS = [*DJANGO_APPS, *THIRD_PARTY_APPS, *LOCAL_APPS]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "billing.security.ContentSecurityPolicyMiddleware",
    "billing.core.api_errors.ApiErrorsMiddleware",  # every error under /api/ in JSON, what ninja never sees too
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): a second factor given this session
    "billing.two_factor.StaffTwoFactorMiddleware",  # admin pages need it from the staff who must give one
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_ratelimit.middleware.RatelimitMiddleware",  # a rate-limited request: RATELIMIT_VIEW (429)
    "axes.middleware.AxesMiddleware",  # last: answers a locked sign-in with the lockout page
]

ROOT_URLCONF = "billing.urls"
WSGI_APPLICATION = "billing.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Seconds a web or worker process keeps its database connection (0: one per request). Each new
# PostgreSQL connection forks a server process: a busy API spends more on that than on its queries.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded set-up: write-ahead logging lets pages read while an import in the background writes (SQLite
    # still takes one write at a time: other writes wait for it, up to `timeout` seconds)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 20, "transaction_mode": "IMMEDIATE"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"  # every instant is stored and shown in UTC (billing-rules 1)
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(BASE_DIR / "media"))
MEDIA_URL = "media/"

_EMAIL_DEFAULT = "console" if DEBUG else "smtp"
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default=f"django.core.mail.backends.{_EMAIL_DEFAULT}.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
# seconds an SMTP connection may wait for the relay: a relay that accepts and never answers must not hold a worker
# (and an invoice's row lock) for ever; the send fails, is retried, and the 06:00 job sends what never left
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="billing@localhost")
# A CI with more charge lines than this lists each organization's subtotal in its PDF, and its
# lines go to a spreadsheet attached to the email (docs/performance.md: a PDF renders ~200 rows/s)
INVOICE_PDF_DETAIL_MAX_LINES = env.int("INVOICE_PDF_DETAIL_MAX_LINES", default=400)
# No invoice is issued without the issuer's legal name, address and tax id (the admin's company profile) and the
# partner's billing address (billing-rules 4.13): on under the production settings, off for the embedded set-up
INVOICE_LEGAL_DETAILS_REQUIRED = env.bool("INVOICE_LEGAL_DETAILS_REQUIRED", default=False)
# A billing run bills this many partners per transaction (their meters read together, their documents
# written together); a batch that fails is billed again one partner at a time (docs/operations.md).
BILLING_BATCH_PARTNERS = env.int("BILLING_BATCH_PARTNERS", default=250)
# how many months back a run measures invoiced months again for true-ups (billing-rules 4.11)
BILLING_TRUE_UP_MONTHS = env.int("BILLING_TRUE_UP_MONTHS", default=12)
# The daily job's fan-out: partners per Celery task (each task one batch), for the workers to share
BILLING_TASK_PARTNERS = env.int("BILLING_TASK_PARTNERS", default=25)
# PostgreSQL's work_mem inside a billing transaction (sorting a batch's seats in memory); "" leaves the
# server's setting
BILLING_WORK_MEM = env.str("BILLING_WORK_MEM", default="64MB")
# PostgreSQL: a billing batch reads its meters other than seat-days in a second connection meanwhile
# (billing/core/aside.py); off, one connection reads them all in turn
BILLING_METERS_ASIDE = env.bool("BILLING_METERS_ASIDE", default=True)

# Fernet keys for secrets kept in the database (RMM API tokens, billing/core/sealed.py): the first encrypts,
# every one decrypts (rotation: put the new key first, run reseal_tokens, then drop the old one).
# Empty: a key derived from SECRET_KEY.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

# HTTPS hardening, on by default once DEBUG is off (behind a TLS-terminating proxy set
# SECURE_PROXY_SSL_HEADER_ENABLED=true). billing.settings.production sets stricter defaults.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # no script of ours reads the CSRF cookie: forms carry the token
SESSION_COOKIE_SAMESITE = env.str("SESSION_COOKIE_SAMESITE", default="Lax")
CSRF_COOKIE_SAMESITE = env.str("CSRF_COOKIE_SAMESITE", default="Lax")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("SECURE_PROXY_SSL_HEADER_ENABLED", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Content-Security-Policy (django-csp; billing.security): this site only, no inline script or style,
# no plugins, never framed. The admin and the API docs also allow inline styles (billing.security says
# why); inline scripts stay refused there too.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}
CSP_RELAXED_STYLE_PREFIXES = ["/admin/", "/api/docs"]

# Cache: rate limits of the API are counted in it, so every web process must share it in production
# (Redis: CACHE_URL=redis://127.0.0.1:6379/1). One process's memory by default.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# HTTP API rate limits (django-ninja throttling, billing.api.throttling), counted in the cache above:
# requests per API key, and requests without a valid key per client address (401s included).
# NINJA_NUM_PROXIES: how many proxies in front of the app append to X-Forwarded-For (0: the client
# address is REMOTE_ADDR, and a client cannot pick another address by sending the header itself).
NINJA_DEFAULT_THROTTLE_RATES = {
    "auth": env.str("API_RATE_PER_KEY", default="600/min"),
    "anon": env.str("API_RATE_ANONYMOUS", default="60/min"),
}
NINJA_NUM_PROXIES = env.int("API_NUM_PROXIES", default=0)
# The largest body the API's usage-records batches take (billing.api.usage_records; every other endpoint keeps
# DATA_UPLOAD_MAX_MEMORY_SIZE, Django's 2.5 MB): 10,000 call-detail records (the most a batch holds, billing-rules
# 11.6) with every text at its longest are 8.6 MB pretty-printed; as vendors give them (UUIDs, E.164), 3.2 MB.
API_USAGE_RECORDS_MAX_BYTES = env.int("API_USAGE_RECORDS_MAX_BYTES", default=10 * 1024 * 1024)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
}

# Money: prices are stored with more places than they are shown (billing-rules 2).
PRICE_DECIMAL_PLACES = 4
PRICE_MAX_DIGITS = 14
AMOUNT_DECIMAL_PLACES = 2
AMOUNT_MAX_DIGITS = 14
CURRENCIES = env.list("CURRENCIES", default=["USD", "EUR", "GBP", "CAD", "AUD", "CHF", "JPY"])

# The admin's Export button escapes cells a spreadsheet would run as formulas, as export_report does.
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = True
# Import takes the model's add permission and Export its view permission (import-export allows both
# to every staff user otherwise): a read-only Auditor exports, never imports.
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "add"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"
# Export offers what Import reads back (import-formats 1: an exported file is edited and imported again): CSV and
# Excel, not tsv, json, yaml or html
IMPORT_EXPORT_FORMATS = [base_formats.CSV, base_formats.XLSX]

# Imports stream the file and validate a batch of rows at a time.
IMPORT_BATCH_SIZE = env.int("IMPORT_BATCH_SIZE", default=2000)
IMPORT_MAX_REPORTED_ERRORS = env.int("IMPORT_MAX_REPORTED_ERRORS", default=1000)
# The admin's Import button (billing/core/import_jobs.py): uploads are stored in IMPORT_JOBS_DIR (shared by the web
# processes and the workers) until imported; a file over IMPORT_INLINE_MAX_BYTES is checked and imported in the
# background (IMPORT_JOBS_RUN: "celery" with a broker, else "thread" in the web process; "inline" runs every file
# in its request), with a progress page. A file checked but never confirmed is dropped after IMPORT_JOBS_KEEP_HOURS.
IMPORT_JOBS_DIR = env.str("IMPORT_JOBS_DIR", default=str(BASE_DIR / "var" / "imports"))
IMPORT_INLINE_MAX_BYTES = env.int("IMPORT_INLINE_MAX_BYTES", default=1_048_576)
IMPORT_MAX_UPLOAD_BYTES = env.int("IMPORT_MAX_UPLOAD_BYTES", default=1_073_741_824)
IMPORT_JOBS_KEEP_HOURS = env.int("IMPORT_JOBS_KEEP_HOURS", default=48)

# Utilization alert thresholds (billing-rules 3.3)
UTILIZATION_WARNING_PERCENT = 90

# Nightly RMM inventory syncs (metering.connectors, metering.tasks): each HTTP request of a sync
# times out after RMM_SYNC_TIMEOUT_SECONDS; a sync reads at most RMM_SYNC_MAX_PAGES pages of at
# most RMM_SYNC_MAX_PAGE_BYTES each; a fault that looks transient (timeout, HTTP 5xx) is tried
# again RMM_SYNC_RETRIES times, after RMM_SYNC_RETRY_BASE_SECONDS x 2^n.
RMM_SYNC_TIMEOUT_SECONDS = env.float("RMM_SYNC_TIMEOUT_SECONDS", default=30.0)
RMM_SYNC_MAX_PAGES = env.int("RMM_SYNC_MAX_PAGES", default=5000)
RMM_SYNC_MAX_PAGE_BYTES = env.int("RMM_SYNC_MAX_PAGE_BYTES", default=20 * 1024 * 1024)
RMM_SYNC_RETRIES = env.int("RMM_SYNC_RETRIES", default=3)
RMM_SYNC_RETRY_BASE_SECONDS = env.int("RMM_SYNC_RETRY_BASE_SECONDS", default=120)

from billing.settings.celery import *  # noqa: E402,F403

IMPORT_JOBS_RUN = env.str("IMPORT_JOBS_RUN", default="thread" if CELERY_TASK_ALWAYS_EAGER else "celery")  # noqa: F405

# --- sign-in throttling and lockout (django-axes; docs/security.md) -----------------------------------------
# AxesStandaloneBackend first: it refuses a locked account or address before the password is checked
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)  # failed sign-ins before a lock
LOGIN_LOCKOUT_MINUTES = env.int("LOGIN_LOCKOUT_MINUTES", default=15)
AXES_COOLOFF_TIME = _timedelta(minutes=LOGIN_LOCKOUT_MINUTES)  # a lock lifts by itself after this
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # an account is locked, and so is an address, each alone
AXES_RESET_ON_SUCCESS = True  # a successful sign-in forgets the failures before it
AXES_LOCKOUT_CALLABLE = "billing.login_lock.lockout_response"  # 429: what happened and for how long
# the address is the connection's: behind a proxy, set LOGIN_CLIENT_IP_HEADER (e.g. HTTP_X_FORWARDED_FOR) only
# when the proxy overwrites that header, or anyone could choose the address counted
AXES_IPWARE_META_PRECEDENCE_ORDER = [*env.list("LOGIN_CLIENT_IP_HEADER", default=[]), "REMOTE_ADDR"]
AXES_VERBOSE = False
# requests over a rate limit (django-ratelimit: the password reset requests) get a 429 page
RATELIMIT_VIEW = "billing.login_lock.rate_limited"

# --- a second factor for staff in the admin (billing/two_factor.py; docs/security.md) ---------------------------
ADMIN_TWO_FACTOR = env.bool("ADMIN_TWO_FACTOR", default=False)  # on under the production settings
ADMIN_TWO_FACTOR_GROUPS = env.list("ADMIN_TWO_FACTOR_GROUPS", default=["Billing clerk"])  # and superusers
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="MSP billing")
