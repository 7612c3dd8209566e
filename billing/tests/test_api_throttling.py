"""Rate limits of the HTTP API: each key has its own budget, requests without a
valid key are limited per client address, and an answer over the rate is 429 with Retry-After."""

from __future__ import annotations

import logging

import pytest
from django.core.cache import cache

from billing.core.actor import Actor
from partners.api_keys import api_key_create
from partners.tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

STAFF = Actor(label="test")
DASHBOARD = "/api/partner/dashboard"


@pytest.fixture
def rates(settings):
    """Three requests a minute per key, two per address without a valid key; counts start empty."""
    cache.clear()
    settings.NINJA_DEFAULT_THROTTLE_RATES = {"auth": "3/min", "anon": "2/min"}
    yield
    cache.clear()


@pytest.fixture
def keys():
    _, first = api_key_create(partner=PartnerFactory(slug="acme"), actor=STAFF)
    _, second = api_key_create(partner=PartnerFactory(slug="bolt"), actor=STAFF)
    return first, second


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def test_a_key_over_its_rate_gets_429_with_retry_after_and_another_key_is_unaffected(client, rates, keys):
    first, second = keys
    assert [client.get(DASHBOARD, headers=bearer(first)).status_code for _ in range(3)] == [200] * 3
    over = client.get(DASHBOARD, headers=bearer(first))
    assert over.status_code == 429
    assert over.json() == {"detail": "Too many requests."}
    assert 1 <= int(over["Retry-After"]) <= 60
    # the same address, another key: its own budget
    assert [client.get(DASHBOARD, headers=bearer(second)).status_code for _ in range(3)] == [200] * 3
    assert client.get(DASHBOARD, headers=bearer(second)).status_code == 429


def test_a_key_counts_across_endpoints_and_methods(client, rates, keys):
    first, _ = keys
    assert client.get("/api/reseller/tenants", headers=bearer(first)).status_code == 200
    assert client.get(DASHBOARD, headers=bearer(first)).status_code == 200
    assert client.post("/api/partner/seats", "{}", content_type="application/json",
                       headers=bearer(first)).status_code == 422
    assert client.get("/api/reseller/forecast", headers=bearer(first)).status_code == 429


@pytest.mark.parametrize("authorization", [None, "Bearer bk_00000000_wrong", "Basic YWxpY2U6c2VjcmV0"])
def test_requests_without_a_valid_key_are_limited_per_address(client, rates, keys, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    assert [client.get(DASHBOARD, headers=headers).status_code for _ in range(2)] == [401, 401]
    flooded = client.get(DASHBOARD, headers=headers)
    assert flooded.status_code == 429 and int(flooded["Retry-After"]) >= 1
    # another address is not affected, and neither is a valid key from the flooded address
    assert client.get(DASHBOARD, headers=headers, REMOTE_ADDR="10.9.8.7").status_code == 401
    assert client.get(DASHBOARD, headers=bearer(keys[0])).status_code == 200


def test_a_spoofed_forwarded_for_header_does_not_escape_the_anonymous_rate(client, rates):
    """With no proxy configured (API_NUM_PROXIES=0) the address is REMOTE_ADDR, whatever the client sends."""
    statuses = [client.get(DASHBOARD, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code for n in range(4)]
    assert statuses == [401, 401, 429, 429]


def test_behind_one_proxy_the_forwarded_address_is_the_client(client, rates, settings):
    settings.NINJA_NUM_PROXIES = 1
    for _ in range(2):
        assert client.get(DASHBOARD, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 401
    assert client.get(DASHBOARD, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429
    assert client.get(DASHBOARD, HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 401


def test_rates_come_from_the_settings(client, keys, settings):
    cache.clear()
    settings.NINJA_DEFAULT_THROTTLE_RATES = {"auth": "1/min", "anon": "1/min"}
    assert client.get(DASHBOARD, headers=bearer(keys[0])).status_code == 200
    assert client.get(DASHBOARD, headers=bearer(keys[0])).status_code == 429
    cache.clear()


def test_a_key_sent_without_the_bearer_scheme_is_never_logged(client, rates, keys, settings, caplog):
    """ninja's HttpBearer logs the whole header of another scheme when DEBUG is on."""
    settings.DEBUG = True
    with caplog.at_level(logging.DEBUG):
        assert client.get(DASHBOARD, headers={"Authorization": keys[0]}).status_code == 401
        assert client.get(DASHBOARD, headers={"Authorization": f"Token {keys[0]}"}).status_code == 401
    assert keys[0] not in caplog.text
    assert keys[0].split("_", 2)[2] not in caplog.text  # the secret, whole (it may hold "_" itself)
