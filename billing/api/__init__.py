"""The HTTP API (billing-rules 11): JSON over django-ninja, `Authorization: Bearer KEY` with a partner's API key.

A key sees only its partner's data: another partner's objects are 404, never 403. Writes go through
the same services as the admin, portal and imports, which enforce the rules and write the audit log.
The OpenAPI schema is served at /api/openapi.json, interactive docs at /api/docs.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from ninja import NinjaAPI
from ninja.errors import HttpError, Throttled

from billing.api.auth import ApiKeyAuth
from billing.api.partner import router as partner_router
from billing.api.reseller import router as reseller_router
from billing.api.throttling import ApiKeyRateThrottle
from billing.api.usage_records import router as usage_records_router

api = NinjaAPI(
    title="MSP billing API",
    version="1",
    description="Tenants, usage, suspensions, seats and the forecast of the next consolidated invoice. "
                "Authenticate with `Authorization: Bearer KEY`. Money and decimals are strings.",
    urls_namespace="api",
    openapi_url="/openapi.json",
    auth=ApiKeyAuth(),
    throttle=[ApiKeyRateThrottle()],  # per key; requests without a valid key: ApiKeyAuth
)
api.add_router("/reseller", reseller_router)
api.add_router("/reseller/customer-charges", "billing.api.rebilling.router")  # the sync out (issue 20 item 6)
api.add_router("/partner", partner_router)
api.add_router("/usage-records", usage_records_router)


@api.exception_handler(HttpError)
def http_error(request, exc: HttpError):
    """A body that is not JSON at all is a bad body like any other: 422 with the validation shape
    (ninja says 400 "Cannot parse request body"), so clients meet one status for every bad body."""
    if exc.status_code == 400 and str(exc).startswith("Cannot parse request body"):
        return api.create_response(
            request, {"detail": [{"loc": ["body"], "msg": "the body is not valid JSON", "type": "json_invalid"}]},
            status=422,
        )
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


@api.exception_handler(Throttled)
def throttled(request, exc: Throttled):
    """Over a rate limit (billing.api.throttling): 429 with Retry-After in whole seconds."""
    response = api.create_response(request, {"detail": "Too many requests."}, status=429)
    response["Retry-After"] = str(max(1, math.ceil(exc.wait or 1)))
    return response


@api.exception_handler(RequestDataTooBig)
def too_big(request, exc: RequestDataTooBig):
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE: 413 in the API's error shape (Django would answer 500 under
    DEBUG and an HTML 400 otherwise)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return api.create_response(request, {"detail": f"the body is larger than {limit:,} bytes"}, status=413)
