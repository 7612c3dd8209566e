"""Bearer authentication with a partner's API key (billing-rules 11.1): the key is checked against its stored
digest by partners.api_keys; a missing, malformed, unknown or revoked key is a 401."""

from __future__ import annotations

import re

from django.http import Http404
from django.shortcuts import get_object_or_404
from ninja.errors import Throttled
from ninja.security import HttpBearer

from billing.api.throttling import anonymous_throttle
from billing.core.actor import Actor
from partners.api_keys import api_key_check
from partners.models import ApiKey, Customer, Partner

SLUG = re.compile(r"[a-z0-9][a-z0-9_-]*")  # partners.models.slug_validator's rule


class ApiKeyAuth(HttpBearer):
    def __call__(self, request) -> ApiKey | None:
        """The key of `Authorization: Bearer KEY`, or None (401). Requests without a valid key are
        rate-limited per client address (billing.api.throttling): over the rate they get 429 instead
        of 401. A valid key is never held back by another client's bad requests from the same address.
        Unlike ninja's HttpBearer, a header of another scheme is never logged (with DEBUG on, ninja
        logs the whole header: a key sent without "Bearer " would land in the log)."""
        scheme, _, token = (request.headers.get(self.header) or "").partition(" ")
        api_key = self.authenticate(request, token) if scheme.lower() == self.openapi_scheme and token else None
        if api_key is None:
            if anonymous_throttle.over_rate(request):
                raise Throttled(wait=anonymous_throttle.wait())
            anonymous_throttle.record(request)
        return api_key

    def authenticate(self, request, token: str) -> ApiKey | None:
        api_key = api_key_check(token)
        if api_key is None:
            return None
        request.api_key = api_key
        return api_key


def partner_of(request) -> Partner:
    """The partner whose key made the request: every query of the API is scoped to it."""
    return request.auth.partner


def customer_of(request, slug: str) -> Customer:
    """The key's partner's customer with that slug, or 404: another partner's tenant is never revealed,
    and a text that cannot be a slug (a NUL byte, which PostgreSQL refuses, say) is simply not found."""
    if not SLUG.fullmatch(slug or ""):
        raise Http404("no such customer")
    return get_object_or_404(Customer, partner=partner_of(request), slug=slug)


def actor_of(request) -> Actor:
    """Who the audit log names for a write: the key, by its public prefix (never the secret)."""
    return Actor(label=f"api key {request.auth.prefix}")
