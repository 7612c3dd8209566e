"""RMM API tokens are sealed in the database (billing/core/sealed.py): a dump holds no usable token, the sync
still sends it, keys rotate, and a key that no longer opens a token is said plainly instead of breaking
the admin or sending garbage. The migration seals the tokens stored as typed before it."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from billing.core import sealed
from billing.core.actor import Actor
from conftest import examples
from metering.models import RmmIntegration, SyncStatus, SyncTrigger
from metering.sync import inventory_sync
from metering.tests.rmm_stub import agent
from partners.tests.factories import PartnerFactory, UserFactory

TOKEN = "rmmtok-Hk3sP9qLx7WvB2nM5cR8tY4uZ1dF6gJa"
KEY_A, KEY_B, KEY_C = (Fernet.generate_key().decode() for _ in range(3))


def stored(integration) -> str:
    """The column as a dump would show it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_token FROM metering_rmmintegration WHERE id = %s", [integration.pk])
        return cursor.fetchone()[0]


@given(st.text(max_size=300))
@hypothesis_settings(max_examples=examples(60), deadline=None)
def test_sealing_opens_to_the_same_text_and_never_shows_it(text):
    box = sealed.seal(text)
    assert sealed.unseal(box) == text
    if text:
        assert box.startswith(sealed.PREFIX) and box != sealed.seal(text)  # a fresh IV each time
        assert text not in box[len(sealed.PREFIX):] or len(text) < 3
    else:
        assert box == ""


def test_a_key_that_is_not_a_fernet_key_is_refused_by_name(settings):
    settings.FIELD_ENCRYPTION_KEYS = ["not-a-key"]
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS"):
        sealed.seal("x")


@pytest.fixture
def integration(settings, rmm):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    partner = PartnerFactory(slug="sealed")
    rmm.account(TOKEN, [agent("a1", organization="ORG")])
    return RmmIntegration.objects.create(partner=partner, kind="json", base_url=rmm.url, api_token=TOKEN)


def sync(integration):
    return inventory_sync(partner=integration.partner, as_of=timezone.now().date(), actor=Actor(label="t"),
                          trigger=SyncTrigger.MANUAL)


@pytest.mark.django_db
def test_the_column_holds_no_token_and_the_sync_still_sends_it(integration, rmm):
    column = stored(integration)
    assert column.startswith(sealed.PREFIX) and TOKEN not in column
    assert RmmIntegration.objects.get(pk=integration.pk).api_token == TOKEN
    assert sync(integration).status == SyncStatus.OK
    assert rmm.pages_served(TOKEN)


@pytest.mark.django_db
def test_keys_rotate_the_new_one_first_the_old_one_still_opens(integration, settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    loaded = RmmIntegration.objects.get(pk=integration.pk)
    assert loaded.api_token == TOKEN
    loaded.save()  # sealed again, with the new key
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]  # the old key retired
    assert RmmIntegration.objects.get(pk=integration.pk).api_token == TOKEN
    assert sync(integration).status == SyncStatus.OK


@pytest.mark.django_db
def test_a_token_no_key_opens_is_said_plainly_and_kept_as_stored(integration, settings, client):
    column = stored(integration)
    settings.FIELD_ENCRYPTION_KEYS = [KEY_C]  # the key was changed by mistake
    loaded = RmmIntegration.objects.get(pk=integration.pk)
    assert isinstance(loaded.api_token, sealed.Unreadable) and loaded.has_token

    run = sync(integration)
    assert run.status == SyncStatus.FAILED and "FIELD_ENCRYPTION_KEYS" in run.error and TOKEN not in run.error

    boss = UserFactory(username="boss", is_staff=True, is_superuser=True)
    client.force_login(boss)
    page = client.get(reverse("admin:metering_rmmintegration_change", args=[integration.pk]))
    assert page.status_code == 200 and "cannot be decrypted" in page.content.decode()
    assert client.get(reverse("admin:metering_rmmintegration_changelist")).status_code == 200
    loaded.notes = "edited while the key was wrong"
    loaded.save()
    assert stored(integration) == column  # not sealed again over itself, not emptied

    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]  # the right key is back
    assert RmmIntegration.objects.get(pk=integration.pk).api_token == TOKEN


@pytest.mark.django_db
def test_the_migration_seals_the_tokens_stored_as_typed_and_going_back_opens_them(integration):
    migration = importlib.import_module("metering.migrations.0009_api_token_sealed")
    editor = SimpleNamespace(connection=connection)
    with connection.cursor() as cursor:  # as the tables were before the migration
        cursor.execute("UPDATE metering_rmmintegration SET api_token = %s WHERE id = %s", [TOKEN, integration.pk])
    assert isinstance(RmmIntegration.objects.get(pk=integration.pk).api_token, sealed.Unreadable)

    migration.seal_tokens(None, editor)
    assert stored(integration).startswith(sealed.PREFIX)
    assert RmmIntegration.objects.get(pk=integration.pk).api_token == TOKEN
    migration.seal_tokens(None, editor)  # run twice: sealed once
    assert sealed.unseal(stored(integration)) == TOKEN

    migration.open_tokens(None, editor)
    assert stored(integration) == TOKEN


@pytest.mark.django_db
def test_reseal_tokens_moves_every_token_to_the_new_key_so_the_old_can_go(integration, settings, cli):
    other = RmmIntegration.objects.create(partner=PartnerFactory(slug="other"), base_url="https://rmm.example",
                                          api_token="tok-other")
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]  # a new key first
    before = stored(integration)
    out = cli("reseal_tokens")
    assert out.status == 0 and "2 RMM API token(s) sealed" in out.out
    assert stored(integration) != before
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]  # the old key retired
    assert RmmIntegration.objects.get(pk=integration.pk).api_token == TOKEN
    assert RmmIntegration.objects.get(pk=other.pk).api_token == "tok-other"


@pytest.mark.django_db
def test_reseal_tokens_names_a_token_no_key_opens_and_changes_nothing(integration, settings, cli):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]
    other = RmmIntegration.objects.create(partner=PartnerFactory(slug="other"), base_url="https://rmm.example",
                                          api_token="tok-other")
    columns = (stored(integration), stored(other))
    out = cli("reseal_tokens")
    assert out.status == 1 and "sealed" in out.err and "the API token of sealed" in out.err
    assert "other" not in out.err.split("token of", 1)[1].split(":")[0]
    assert (stored(integration), stored(other)) == columns
