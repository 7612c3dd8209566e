"""The HTTP API (billing-rules 11): JSON over django-ninja, `Authorization: Bearer KEY` with a partner's API key.

A key sees only its partner's data: another partner's objects are 404, never 403. Writes go through
the same services as the admin, portal and imports, which enforce the rules and write the audit log.
The OpenAPI schema is served at /api/openapi.json, interactive docs at /api/docs.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils.log import log_response
from ninja import NinjaAPI
from ninja.errors import HttpError, Throttled

from billing.api.auth import ApiKeyAuth
from billing.api.partner import router as partner_router
from billing.api.reseller import router as reseller_router
from billing.api.schemas import ErrorOut
from billing.api.throttling import ApiKeyRateThrottle
from billing.api.usage_records import router as usage_records_router
from billing.core.idempotency import API_WRITES, IDEMPOTENCY_HEADER, api_once


class BillingApi(NinjaAPI):
    """The API, whose OpenAPI schema also says what every operation may answer besides its own responses
    (billing-rules 11.2, 11.5), from the code that answers it: 429 with Retry-After (the throttles below and
    ApiKeyAuth's), 413 on an operation that reads a body (the `too_big` handler), and the `Idempotency-Key`
    header on the writes `api_once` does once (with 422 for a key reused for another request)."""

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("ErrorOut", ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}"))
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
        for operations in schema["paths"].values():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                responses.setdefault(429, {
                    "description": "Too many requests: over the rate limit of the key (or of the address without "
                                   "a valid key); come back after Retry-After seconds",
                    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
                    "content": error,
                })
                if "requestBody" in operation:
                    responses.setdefault(413, {"description": "The body is larger than the server accepts",
                                               "content": error})
                parameters = operation.setdefault("parameters", [])
                if method.upper() in API_WRITES and IDEMPOTENCY_HEADER not in {p["name"] for p in parameters}:
                    parameters.append({
                        "in": "header", "name": IDEMPOTENCY_HEADER, "required": False,
                        "schema": {"type": "string", "maxLength": 255},
                        "description": "Any unique text (a UUID): the write is done once for it, and a retry with "
                                       "the same key gets the first answer back (`Idempotent-Replayed: true`); "
                                       "the same key with another request is 422",
                    })
                    self._reuse_is_422(responses, error)
        return schema

    @staticmethod
    def _reuse_is_422(responses: dict, error: dict) -> None:
        """A write's 422 is also `{"detail": reason}` (an Idempotency-Key reused for another request)."""
        found = responses.get(422)
        if found is None:
            responses[422] = {"description": "An Idempotency-Key reused for another request", "content": error}
            return
        current = found.get("content", {}).get("application/json", {}).get("schema")
        if current is not None and current != error["application/json"]["schema"]:
            found["content"]["application/json"]["schema"] = {
                "anyOf": [current, error["application/json"]["schema"]]}


api = BillingApi(
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
# a write with an Idempotency-Key is done once; a replay passes each operation's authentication and throttles first
api.add_decorator(api_once, mode="view")  # ninja 1.7: mode "view" wraps the operation's run(), checks included


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
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE, or over the larger limit of the usage-records endpoints
    (billing.api.usage_records, API_USAGE_RECORDS_MAX_BYTES): 413 in the API's error shape (Django would answer
    500 under DEBUG and an HTML 400 otherwise)."""
    limit = getattr(request, "body_limit", None) or settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return api.create_response(request, {"detail": f"the body is larger than {limit:,} bytes"}, status=413)


@api.exception_handler(Exception)
def server_error(request, exc: Exception):
    """Any other fault of an operation: logged with its traceback as Django logs an unhandled exception, and
    answered 500 `{"detail": "server error"}`, telling the client nothing more (ninja would re-raise it to
    Django's HTML page, or under DEBUG answer the traceback as text)."""
    response = api.create_response(request, {"detail": "server error"}, status=500)
    log_response("Internal Server Error: %s", request.path, response=response, request=request, exception=exc)
    return response
