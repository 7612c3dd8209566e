"""Shared fixtures: the command line as a user runs it, the example folders, PostgreSQL markers, the browser."""

from __future__ import annotations

import importlib
import io
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from hypothesis import settings as hypothesis_settings

from metering.models import Day
from metering.tests.rmm_stub import StubRmm
from tests.browser import chromium, new_page

# Hypothesis budgets per profile: `make test` (the "dev" profile, what a newcomer runs first) tries a quarter of
# the examples of CI (the "ci" profile, set by .ci/run), so the suite stays under 3 minutes as it grows while CI
# keeps the full search. Tests that set their own budget write it as `max_examples=examples(N)`.
HYPOTHESIS_SHARE = {"dev": 0.25, "ci": 1.0}
hypothesis_settings.register_profile("ci", max_examples=100)
hypothesis_settings.register_profile("dev", max_examples=25)
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")
hypothesis_settings.load_profile(HYPOTHESIS_PROFILE)


def examples(n: int) -> int:
    """A test's own Hypothesis budget, scaled to the profile (at least 5 examples)."""
    return max(5, round(n * HYPOTHESIS_SHARE.get(HYPOTHESIS_PROFILE, 1.0)))

DATA = Path(__file__).resolve().parent / "tests" / "data"


@dataclass
class CliResult:
    status: int
    out: str
    err: str


def run_cli(*args: str) -> CliResult:
    """Run `python manage.py ARGS` in-process; on CommandError the status the shell sees (1, or the
    command's own returncode)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        err.write(f"CommandError: {exc}\n")
        return CliResult(exc.returncode, out.getvalue(), err.getvalue())
    return CliResult(0, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run the block's on-commit callbacks (the queued emails) as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def data_dir() -> Path:
    return DATA


def write_csv(tmp_path: Path, name: str, text: str) -> Path:
    """A CSV file from dedented text (tests write small import files with this)."""

    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def csv_file(tmp_path):
    return lambda name, text: write_csv(tmp_path, name, text)


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` need row locks and real concurrency: skip them, with the reason, on SQLite."""

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (row locks, concurrent transactions); CI runs it there")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


def pytest_report_header(config):
    return f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Say plainly whether the PostgreSQL-only tests ran (CI) or were skipped (SQLite)."""
    ran = skipped = 0
    for key in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(key, []):
            if "postgres" in getattr(report, "keywords", {}) and report.when in ("call", "setup"):
                if key == "skipped":
                    skipped += 1
                elif report.when == "call":
                    ran += 1
    terminalreporter.write_line(f"PostgreSQL-only tests: {ran} ran, {skipped} skipped")


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Rendered PDFs go to a throwaway folder, never into the project's media/."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(autouse=True)
def _cache_cleared():
    """Each test starts with an empty cache: what one test cached (the audit filters' choices, rate limits) is
    not another's."""
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _calendar(request):
    """A transactional test flushes every table when it ends, the calendar that metering counts on
    included (filled by a data migration): put it back for the tests that follow."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))
    if transactional or "transactional_db" in request.fixturenames:
        request.getfixturevalue("transactional_db")
    elif marker is not None or "db" in request.fixturenames:
        request.getfixturevalue("db")
    else:
        return

    if not Day.objects.exists():
        importlib.import_module("metering.migrations.0002_fill_calendar").fill(apps, None)


@pytest.fixture(scope="session", autouse=True)
def _stray_connections_closed(django_db_setup, django_db_blocker):
    """Threads of the worker and live-server tests keep their own database connections; on PostgreSQL
    they would stop the test database from being dropped at the end. End them first."""
    yield

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture
def rmm():
    """A stub RMM API on a real local socket (metering/tests/rmm_stub.py)."""

    with StubRmm() as stub:
        yield stub


@pytest.fixture
def browser(live_server, monkeypatch):
    """Debian's Chromium for a test against live_server (tests/browser.py; mark the module `pytestmark = BROWSER`)."""

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop runs in this thread, which reads the db
    with chromium() as browser:
        yield browser


@pytest.fixture
def browser_page(browser):
    """A page of 1440 x 900 in that Chromium."""

    return new_page(browser)
