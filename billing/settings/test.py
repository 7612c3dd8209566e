"""Settings for the test suite: fast hashing, eager tasks, mail kept in memory."""

import tempfile

from billing.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = "memory://localhost/"
IMPORT_JOBS_RUN = "inline"  # the admin's imports run in the request; tests of the background set it
IMPORT_JOBS_DIR = tempfile.mkdtemp(prefix="billing-import-jobs-")
IMPORT_BATCH_SIZE = 3  # small batches so tests cross batch boundaries
# API rate limits far above what any test sends; the throttling tests set their own.
NINJA_DEFAULT_THROTTLE_RATES = {"auth": "100000/min", "anon": "100000/min"}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "billing-tests"}}
EMAIL_TIMEOUT = 2  # a stalled relay gives up at once in the tests
