"""Settings come from the environment; production refuses to start without its secrets."""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def run_check(**env):
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ALLOWED_HOSTS", "DEBUG")}
    environment.update(env, DJANGO_SETTINGS_MODULE="billing.settings.base")
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


def test_debug_off_without_secret_key_stops_startup():
    result = run_check(DEBUG="false", DATABASE_URL="sqlite:////tmp/never-created.sqlite3")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr and "required" in result.stderr


def test_debug_off_with_secrets_starts():
    result = run_check(DEBUG="false", SECRET_KEY="x" * 60, ALLOWED_HOSTS="billing.example",
                       DATABASE_URL="sqlite:////tmp/never-created.sqlite3")
    assert result.returncode == 0, result.stderr


def test_embedded_defaults_need_no_environment():
    assert settings.TIME_ZONE == "UTC" and settings.USE_TZ
    assert settings.CELERY_TASK_ALWAYS_EAGER
