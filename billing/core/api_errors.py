"""Every error of the HTTP API is JSON, `{"detail": reason}` (billing-rules 11.2), including the ones its
operations never see, which would otherwise be Django's or ninja's HTML and text pages:

- a method a route does not take (ninja's PathView answers 405 in text/html): 405 `{"detail": ...}`, its `Allow`
  header kept;
- a path under /api/ that is no endpoint (Django's 404 page);
- a fault outside an operation (a middleware, the Idempotency-Key's record): Django has logged it with its
  traceback, as any unhandled exception; the client gets 500 `{"detail": "server error"}` and nothing more (no
  technical page under DEBUG either).

An operation's own errors are answered by the API's exception handlers (billing/api/__init__.py), JSON already:
this middleware leaves every JSON answer as it is.
"""

from __future__ import annotations

from http import HTTPStatus

from django.http import JsonResponse

API_PREFIX = "/api/"
KEPT_HEADERS = ("Allow", "Retry-After")


def _reason(request, response) -> str:
    if response.status_code >= 500:
        return "server error"
    if response.status_code == 405:
        allowed = response.get("Allow", "")
        return f"method {request.method} not allowed" + (f" (allowed: {allowed})" if allowed else "")
    try:
        return HTTPStatus(response.status_code).phrase
    except ValueError:
        return "error"


class ApiErrorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (not request.path.startswith(API_PREFIX) or response.status_code < 400
                or response.get("Content-Type", "").startswith("application/json")):
            return response
        answer = JsonResponse({"detail": _reason(request, response)}, status=response.status_code)
        for header in KEPT_HEADERS:
            if header in response:
                answer[header] = response[header]
        if getattr(response, "_has_been_logged", False):
            answer._has_been_logged = True  # logged once, by Django, with the traceback
        return answer
