"""Issue 17, security round two: what an attacker found, each with a test that fails without its fix."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from invoicing.models import Invoice
from metering.models import RmmIntegration
from partners.models import ApiKey, AuditLog
from tests.test_access import AUDITOR, _login, admin_url, apply_group_migrations

pytestmark = pytest.mark.django_db


@pytest.fixture
def auditor_client(client):
    apply_group_migrations()
    return _login(client, AUDITOR)


# --- 5. stored secrets cannot be probed through the admin's filters -----------------------------------------
@pytest.mark.parametrize(("model", "lookup"), [
    (ApiKey, "digest__startswith=ab"),
    (ApiKey, "partner__api_keys__digest__startswith=ab"),
    (RmmIntegration, "api_token__startswith=x"),
    (User, "password__startswith=pbkdf2"),
    (AuditLog, "actor__password__startswith=pbkdf2"),
])
def test_a_filter_on_a_stored_secret_is_refused(admin_client, model, lookup):
    response = admin_client.get(f"{admin_url(model)}?{lookup}")
    assert response.status_code == 400


def test_an_auditor_cannot_probe_an_api_key_digest(auditor_client):
    assert auditor_client.get(f"{admin_url(ApiKey)}?digest__startswith=0").status_code == 400


# --- 7. date filters with impossible values answer 400, not 500 --------------------------------------------------
@pytest.mark.parametrize(("model", "lookup"), [
    (Invoice, "issue_date__year=99999999999"),
    (Invoice, "issue_date__month=13"),
    (Invoice, "issue_date__year=twenty"),
    (AuditLog, "at__year=99999999999"),
    (AuditLog, "at__day=0"),
])
def test_an_impossible_date_filter_is_refused_not_a_500(admin_client, model, lookup):
    assert admin_client.get(f"{admin_url(model)}?{lookup}").status_code == 400


def test_a_possible_date_filter_still_works(admin_client):
    assert admin_client.get(f"{admin_url(Invoice)}?issue_date__year=2026&issue_date__month=4").status_code == 200
    assert admin_client.get(f"{admin_url(AuditLog)}?at__year=2026").status_code == 200


# --- 9. a member whose name holds "/" can be removed through the API -----------------------------------------
def test_a_member_named_with_a_slash_is_removed_through_the_api(client):
    from datetime import UTC, datetime
    from unittest import mock

    from billing.actor import Actor
    from partners.api_keys import api_key_create
    from partners.models import SeatAssignment
    from partners.tests.factories import CustomerFactory, PartnerFactory

    partner = PartnerFactory(slug="fabrikam")
    CustomerFactory(partner=partner, slug="fabrikam-law")
    _, key = api_key_create(partner=partner, actor=Actor(label="test"))
    auth = {"Authorization": f"Bearer {key}"}
    with mock.patch("django.utils.timezone.now", return_value=datetime(2026, 5, 15, 12, tzinfo=UTC)):
        added = client.post("/api/partner/seats", {"customer": "fabrikam-law", "member": "Smith/Jones"},
                            content_type="application/json", headers=auth)
        assert added.status_code == 201
        removed = client.delete("/api/partner/seats/fabrikam-law/Smith%2FJones", headers=auth)
    assert removed.status_code == 204
    assert SeatAssignment.objects.get(member__name="Smith/Jones").removed_at is not None


# --- 10. an API body over the size limit answers 413 in the API's JSON shape -------------------------------
@pytest.mark.parametrize("debug", [True, False])
def test_an_api_body_over_the_limit_is_a_413_in_json(client, settings, debug):
    from billing.actor import Actor
    from partners.api_keys import api_key_create
    from partners.tests.factories import CustomerFactory, PartnerFactory

    settings.DEBUG = debug
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    partner = PartnerFactory(slug="fabrikam")
    CustomerFactory(partner=partner, slug="fabrikam-law")
    _, key = api_key_create(partner=partner, actor=Actor(label="test"))
    body = '{"customer": "fabrikam-law", "member": "' + "x" * 2000 + '"}'
    response = client.post("/api/partner/seats", body, content_type="application/json",
                           headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 413
    assert response.json() == {"detail": "the body is larger than 1,000 bytes"}
