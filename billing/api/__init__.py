"""The HTTP API (RULES 8): JSON over django-ninja, `Authorization: Bearer KEY` with a partner's API key.

A key sees only its partner's data: another partner's objects are 404, never 403. Writes go through
the same services as the admin, portal and imports, which enforce the rules and write the audit log.
The OpenAPI schema is served at /api/openapi.json, interactive docs at /api/docs.
"""

from __future__ import annotations

from ninja import NinjaAPI
from ninja.errors import HttpError

from billing.api.auth import ApiKeyAuth
from billing.api.partner import router as partner_router
from billing.api.reseller import router as reseller_router

api = NinjaAPI(
    title="MSP billing API",
    version="1",
    description="Tenants, usage, suspensions, seats and the forecast of the next consolidated invoice. "
                "Authenticate with `Authorization: Bearer KEY`. Money and decimals are strings.",
    urls_namespace="api",
    openapi_url="/openapi.json",
    auth=ApiKeyAuth(),
)
api.add_router("/reseller", reseller_router)
api.add_router("/partner", partner_router)


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
