"""API keys: shown once, stored as a digest, revocable; from the command line and the admin (RULES 8)."""

import hashlib

import pytest
from django.contrib.messages import get_messages

from partners.api_keys import api_key_check
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
