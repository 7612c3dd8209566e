"""Rate limits of the HTTP API, with django-ninja's throttling (ninja.throttling), counted in Django's
cache (Redis in production, so every web process shares the counts).

- Per API key (scope "auth"): each key has its own budget; one busy integration never slows another.
  Checked by ninja after authentication, on every endpoint (NinjaAPI(throttle=...)).
- Without a valid key (scope "anon"), per client address: ninja authenticates before it throttles,
  so a request with a missing or wrong key would get its 401 without ever being counted. ApiKeyAuth
  counts those requests here instead; once an address is over its rate they get 429, not 401.

Rates come from settings.NINJA_DEFAULT_THROTTLE_RATES (read on each request, so tests and settings
overrides apply at once). Over the rate: 429 {"detail": "Too many requests."} with Retry-After.

ninja keeps one throttle object per API and calls allow_request() then wait() on it for each request;
the per-request state of SimpleRateThrottle (key, history, now) is kept per thread so that
concurrent requests of a threaded server never read each other's.
"""

from __future__ import annotations

import threading

from ninja.conf import settings as ninja_settings
from ninja.throttling import SimpleRateThrottle


class _PerThreadState:
    """A SimpleRateThrottle attribute stored per thread."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return getattr(obj._local, self.name, None)

    def __set__(self, obj, value):
        setattr(obj._local, self.name, value)


class SettingsRateThrottle(SimpleRateThrottle):
    """A SimpleRateThrottle whose rate is read from the settings on each request."""

    key = _PerThreadState()
    history = _PerThreadState()
    now = _PerThreadState()
    rate = _PerThreadState()
    num_requests = _PerThreadState()
    duration = _PerThreadState()

    def __init__(self):  # the rate is read per request, not once at import
        self._local = threading.local()

    def _load_rate(self) -> bool:
        self.rate = ninja_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return self.rate is not None

    def allow_request(self, request) -> bool:
        if not self._load_rate():
            return True
        return super().allow_request(request)

    def wait(self) -> float:
        """Seconds until the oldest counted request leaves the window (ninja sends it as Retry-After,
        rounded up); never None, so a 429 always says when to come back."""
        if not self.history:
            return float(self.duration or 1)
        return max(1.0, self.duration - (self.now - self.history[-1]))


class ApiKeyRateThrottle(SettingsRateThrottle):
    """Requests per API key (by its id: never the secret, which the server does not keep)."""

    scope = "auth"

    def get_cache_key(self, request):
        api_key = getattr(request, "auth", None)
        if api_key is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": f"key{api_key.pk}"}


class AnonymousRateThrottle(SettingsRateThrottle):
    """Requests without a valid key, per client address (ninja's NUM_PROXIES decides which one)."""

    scope = "anon"

    def get_cache_key(self, request):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def over_rate(self, request) -> bool:
        """Whether the address has already used its budget (counts nothing)."""
        if not self._load_rate():
            return False
        self.key = self.get_cache_key(request)
        self.now = self.timer()
        self.history = [at for at in self.cache.get(self.key, []) if at > self.now - self.duration]
        return len(self.history) >= self.num_requests

    def record(self, request) -> None:
        """Count one request without a valid key."""
        self.allow_request(request)


anonymous_throttle = AnonymousRateThrottle()
