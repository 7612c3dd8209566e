"""API keys: shown once, stored as a digest, revocable; from the command line and the admin
(billing-rules 8.5, 11.1)."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.core.actor import Actor
from partners.api_keys import api_key_check, api_key_create
from partners.models import ApiKey, AuditLog
from partners.tests.factories import PartnerFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_the_key_once_and_stores_its_digest(cli):
    partner = PartnerFactory(slug="acme")
    result = cli("create_api_key", "--partner", "acme", "--name", "PSA")
    assert result.status == 0
    key = result.out.strip()
    stored = ApiKey.objects.get(partner=partner)
    assert stored.digest == hashlib.sha256(key.encode()).hexdigest() and key not in stored.digest
    assert api_key_check(key) == stored
    assert api_key_check(key + "x") is None and api_key_check("bk_nope_nope") is None
    assert all(key not in str(entry.after) for entry in AuditLog.objects.all())
    assert cli("create_api_key", "--partner", "nobody").status == 1


def test_admin_creates_a_key_shows_it_once_and_revokes_it(client):
    partner = PartnerFactory(slug="acme")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.post("/admin/partners/apikey/add/", {"partner": partner.pk, "name": "PSA"}, follow=True)
    shown = [str(m) for m in get_messages(response.wsgi_request)] + [response.content.decode()]
    secret = next(word for text in shown for word in text.split() if word.startswith("bk_"))
    api_key = ApiKey.objects.get(partner=partner)
    assert api_key_check(secret) == api_key
    page = client.get(f"/admin/partners/apikey/{api_key.pk}/change/").content.decode()
    assert secret not in page
    client.post("/admin/partners/apikey/", {"action": "revoke_keys", "_selected_action": [api_key.pk]})
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None and api_key_check(secret) is None
    assert AuditLog.objects.filter(action="api_key.revoke", object_id=str(api_key.pk)).exists()


def test_last_used_is_kept_to_the_minute_not_written_on_every_request(db, time_machine):
    """A client polling many times a second would write the key's row on every request."""

    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    time_machine.move_to(start, tick=False)
    api_key, key = api_key_create(partner=PartnerFactory(), actor=Actor(label="test"))
    assert api_key_check(key).pk == api_key.pk
    time_machine.move_to(start + timedelta(seconds=59), tick=False)
    with CaptureQueriesContext(connection) as queries:
        assert api_key_check(key).pk == api_key.pk
    assert not any(q["sql"].startswith("UPDATE") for q in queries.captured_queries)
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at == start
    time_machine.move_to(start + timedelta(minutes=1), tick=False)
    api_key_check(key)
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at == start + timedelta(minutes=1)


def test_a_key_with_a_nul_byte_or_other_odd_text_is_no_key(db):
    """PostgreSQL refuses NUL in text: such a key must be refused before any query, not raise."""
    assert api_key_check("bk_abc\x00def_xyz") is None
    assert api_key_check("bk_ab c_xyz") is None
    assert api_key_check("bk_" + "a" * 500) is None
