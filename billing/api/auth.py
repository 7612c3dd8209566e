"""Bearer authentication with a partner's API key (RULES 8): the key is checked against its stored
digest by partners.api_keys; a missing, malformed, unknown or revoked key is a 401."""

from __future__ import annotations

from ninja.security import HttpBearer

from billing.actor import Actor
from partners.api_keys import api_key_check
from partners.models import ApiKey, Partner


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request, token: str) -> ApiKey | None:
        api_key = api_key_check(token)
        if api_key is None:
            return None
        request.api_key = api_key
        return api_key


def partner_of(request) -> Partner:
    """The partner whose key made the request: every query of the API is scoped to it."""
    return request.auth.partner


def actor_of(request) -> Actor:
    """Who the audit log names for a write: the key, by its public prefix (never the secret)."""
    return Actor(label=f"api key {request.auth.prefix}")
