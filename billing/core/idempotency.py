"""Money writes done once (docs/security.md): a form that creates a purchase, a payment, a credit note or an API
key carries a one-time token, and the API's writes take an `Idempotency-Key` header (as Stripe's API does). A
repeated request with the same token gets the first answer back and writes nothing more.

`once` records the token and the write in one transaction: a second request with the same token waits on the
token's unique index until the first commits, then answers what the first answered. Only a write that succeeded
is remembered: a refused form or a 4xx answer can be sent again, corrected, with the same token. The scope and the
token are kept as SHA-256 digests (never cut short: two requests never share an answer because their scopes
begin alike).
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Callable

from django import forms
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse

from billing.core.models import IdempotentRequest

TOKEN_FIELD = "once_token"
SUCCESS = frozenset({200, 201, 204, 301, 302, 303})


class OnceField(forms.CharField):
    """The hidden one-time token of a money form (a new one each time the form is shown)."""

    def __init__(self, **kwargs):
        super().__init__(widget=forms.HiddenInput, required=False, max_length=100, initial=new_token, **kwargs)


class _Refused(Exception):
    def __init__(self, response):
        self.response = response


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def once(*, scope: str, token: str | None, write: Callable[[], HttpResponse],
         succeeded: Callable[[HttpResponse], bool] = lambda r: r.status_code in SUCCESS,
         request_digest: str = "", check: Callable[[], HttpResponse | None] | None = None) -> HttpResponse:
    """The answer of `write()`, done once per (scope, token); without a token, `write()` as it is.
    `request_digest`: what the request said; the same token with another request is refused (422).
    `check()`: what must let the request through before a stored answer is given again or a reuse refused
    (the API's authentication and rate limits, which `write()` runs itself): its answer, when it gives one,
    stands instead."""
    token = (token or "").strip()
    if not token:
        return write()
    scope, token = _digest(scope), _digest(token)  # stored whole, whatever their length
    try:
        with transaction.atomic():
            record = IdempotentRequest.objects.create(scope=scope, token=token, request_digest=request_digest)
            response = write()
            if not succeeded(response):
                raise _Refused(response)  # nothing kept: the same token may be sent again, corrected
            record.status = response.status_code
            # a redirect's target, or the page an answer stands for (Content-Location: a page shown once)
            record.location = (response.get("Location") or response.get("Content-Location") or "")[:500]
            if response.get("Content-Type", "").startswith("application/json"):
                record.body = response.content.decode()
            record.save(update_fields=["status", "location", "body"])
            return response
    except _Refused as refused:
        return refused.response
    except IntegrityError:
        record = IdempotentRequest.objects.filter(scope=scope, token=token).first()
        if record is None:  # the first request was refused meanwhile and kept nothing: do it now
            return write()
        refused = check() if check is not None else None
        if refused is not None:
            return refused
        if record.request_digest != request_digest:
            return JsonResponse({"detail": "this Idempotency-Key was used for another request"}, status=422)
        return replay(record)


def new_token() -> str:
    """A one-time token for a form written by hand in a template (`<input type="hidden" name="once_token">`)."""
    return uuid.uuid4().hex


def once_per_action(request, scope: str, write: Callable[[], None]) -> HttpResponse:
    """An admin action that writes, done once per page it was sent from (the page's one-time token, per user): a
    repeated POST is sent back to the list as the first was, without a second write."""

    def act():
        write()
        return HttpResponseRedirect(request.get_full_path())

    return once_per_form(request, scope, act)


def once_per_form(request, scope: str, view: Callable[[], HttpResponse]) -> HttpResponse:
    """A form view whose POST writes once per form shown (its hidden one-time token, per user): a write that
    succeeded answers with a redirect; a refused one re-renders the form and keeps no token."""
    if request.method != "POST":
        return view()
    return once(scope=f"{scope}:{request.user.pk}", token=request.POST.get(TOKEN_FIELD), write=view,
                succeeded=lambda response: response.status_code == 302)


def replay(record: IdempotentRequest) -> HttpResponse:
    """The first answer again: its redirect, or its JSON."""
    if record.location:
        return HttpResponseRedirect(record.location)
    response = HttpResponse(record.body, status=record.status, content_type="application/json")
    response["Idempotent-Replayed"] = "true"
    return response


API_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
IDEMPOTENCY_HEADER = "Idempotency-Key"


def api_once(run):
    """The API's writes (POST, PUT, PATCH, DELETE) with an `Idempotency-Key` header, done once per caller and key:
    a retry gets the first answer back (and `Idempotent-Replayed: true`); the key sent with another request (another
    method, path, query or body) is 422.

    A decorator of a django-ninja operation's `run` (`NinjaAPI.add_decorator(api_once, mode="view")`), so that a
    stored answer is given only to a request that passes the operation's own checks: the API key's authentication
    (a revoked key is 401, not a replay) and the rate limits (a replay counts as any request). A first request runs
    them in `run` itself, inside the transaction that records the key."""
    operation = run.__self__  # the ninja Operation whose bound run() this wraps
    checks = operation._run_checks  # ninja's authentication, then throttling, as run() does them

    @functools.wraps(run)
    def wrapper(request, *args, **kwargs):
        token = request.headers.get(IDEMPOTENCY_HEADER)
        if not token or request.method not in API_WRITES:
            return run(request, *args, **kwargs)
        try:
            body = request.body
        except RequestDataTooBig:
            return run(request, *args, **kwargs)  # the API answers 401 or 413
        caller = hashlib.sha256(request.headers.get("Authorization", "").encode()).hexdigest()
        digest = hashlib.sha256()
        for part in (request.method.encode(), request.get_full_path().encode(), body):
            digest.update(len(part).to_bytes(8, "big") + part)  # each part's length first: no two requests alike
        return once(scope=f"api:{caller}", token=token, request_digest=digest.hexdigest(),
                    write=lambda: run(request, *args, **kwargs),
                    succeeded=lambda response: 200 <= response.status_code < 300,
                    check=lambda: checks(request))

    return wrapper
