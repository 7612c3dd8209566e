"""/api/usage-records: a partner's call usage, call detail and meeting summary records, sent in batches, and their
monthly totals per customer (billing-rules 3.12, 11.6).

A batch is what a file of the same kind is to `import_csv`: checked row by row by the same engine, written all or
nothing, an exact duplicate of a record already sent (the same id, the same values) a no-op, so a batch can be
sent again after a timeout without counting twice. Another partner's customer is an unknown customer, as in a
file; another partner's totals are 404.
"""

from __future__ import annotations

import functools
import io

from django.conf import settings
from django.http import UnreadablePostError
from django.utils import timezone
from ninja import Query, Router, Schema, Status
from pydantic import Field

from billing.api.auth import actor_of, customer_of, partner_of
from billing.api.schemas import (
    CallDetailIn,
    CallUsageIn,
    ErrorOut,
    MeetingSummaryIn,
    RecordsOut,
    UsageTotalsOut,
    ValidationErrorOut,
)
from billing.core.importing import ImportFileError
from billing.core.periods import Period, PeriodError, utc_date
from metering.usage_records import (
    CALL_DETAILS,
    CALL_USAGE,
    MEETING_SUMMARIES,
    RecordKind,
    records_submit,
    usage_record_totals,
)
from partners.models import Customer

router = Router(tags=["usage records"])


def _body_up_to_setting(run):
    """A batch's body may be larger than Django's DATA_UPLOAD_MAX_MEMORY_SIZE, up to API_USAGE_RECORDS_MAX_BYTES:
    enough for 10,000 records (MAX_ITEMS) of the largest kind. Django reads a body once and checks it against the
    one setting, so a body between the two limits is read here, as HttpRequest.body reads it, before ninja asks
    for it; a larger one is left to HttpRequest.body, whose RequestDataTooBig the API answers 413 naming this
    limit (`request.body_limit`). Wraps each operation's run (Router.add_decorator, mode "view")."""

    @functools.wraps(run)
    def wrapper(request, *args, **kwargs):
        limit = request.body_limit = settings.API_USAGE_RECORDS_MAX_BYTES
        default = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if default is not None and default < length <= limit and not hasattr(request, "_body"):
            try:
                request._body = request.read()  # HttpRequest.body's own attributes
            except OSError as exc:
                raise UnreadablePostError(*exc.args) from exc
            request._stream = io.BytesIO(request._body)
        return run(request, *args, **kwargs)

    return wrapper


router.add_decorator(_body_up_to_setting, mode="view")  # outside the API's own (api_once reads the body)

POSTED = {200: RecordsOut, 201: RecordsOut, 401: ErrorOut, 422: ValidationErrorOut}
MAX_ITEMS = 10_000


def _cell(value) -> str:
    return "" if value is None else str(value)


def _submit(request, kind: RecordKind, items: list) -> Status:
    if not items:
        return Status(200, {"records": 0, "created": 0, "unchanged": 0})
    if len(items) > MAX_ITEMS:
        return Status(422, {"detail": [{"loc": ["body", "items"], "msg": f"more than {MAX_ITEMS:,} records: send them "
                                        f"in batches", "type": "value_error"}]})
    rows = [{name: _cell(value) for name, value in item.model_dump().items()} for item in items]
    try:
        summary = records_submit(kind=kind, partner=partner_of(request), rows=rows, actor=actor_of(request))
    except ImportFileError as exc:  # not reached with the API's own columns; said plainly if it ever is
        return Status(422, {"detail": [{"loc": ["body", "items"], "msg": str(exc), "type": "value_error"}]})
    if not summary.ok:
        return Status(422, {"detail": [
            {"loc": ["body", "items", error.row - 2, error.column], "msg": error.reason, "type": "value_error"}
            for error in summary.errors
        ]})
    body = {"records": summary.rows, "created": summary.created, "unchanged": summary.unchanged}
    return Status(201 if summary.created else 200, body)


@router.post("/call-usage", response=POSTED)
def call_usage_post(request, items: list[CallUsageIn]):
    """Call usage records (one per call, keyed by record_id). 201 when any record is new, 200 when every one was
    already recorded with the same values; 422 with each bad item's errors, and nothing written."""
    return _submit(request, CALL_USAGE, items)


@router.post("/call-details", response=POSTED)
def call_details_post(request, items: list[CallDetailIn]):
    """Call detail records (the legs of calls, keyed by leg_id, linked by call_id); as call-usage."""
    return _submit(request, CALL_DETAILS, items)


@router.post("/meeting-summaries", response=POSTED)
def meeting_summaries_post(request, items: list[MeetingSummaryIn]):
    """Meeting summary records (one per meeting held, keyed by meeting_id); as call-usage."""
    return _submit(request, MEETING_SUMMARIES, items)


class MonthQuery(Schema):
    month: str | None = Field(None, description="YYYY-MM, a UTC month (default: this month)", max_length=7)


def _month(query: MonthQuery) -> Period | None:
    """The month asked for; None for a text that is no month, or the calendar's last (9999-12), whose end (the
    first instant after it) the calendar cannot give: months 0001-01 to 9999-11, as Period's years 1 to 9999."""
    if query.month is None:
        return Period.of(utc_date(timezone.now()))
    try:
        month = Period.parse(query.month)
        month.next()  # its end
    except PeriodError:
        return None
    return month


def _bad_month(query: MonthQuery) -> Status:
    return Status(422, {"detail": [{"loc": ["query", "month"], "msg": f"month: not a month (YYYY-MM) from "
                                    f"{Period(1, 1)} to {Period(9999, 11)}: {query.month!r}", "type": "value_error"}]})


def _totals_out(customers: list[Customer], month: Period) -> list[dict]:
    totals = usage_record_totals({c.partner_id for c in customers}, month)
    meters: dict[int, dict[str, str]] = {c.pk: {} for c in customers}
    for (customer_id, key), quantity in sorted(totals.items()):
        if customer_id in meters:
            meters[customer_id][key] = format(quantity, "f")
    return [{"customer": c.slug, "meters": meters[c.pk]} for c in customers]


@router.get("/totals", response={200: UsageTotalsOut, 401: ErrorOut, 422: ValidationErrorOut})
def totals_list(request, query: Query[MonthQuery]):
    """Every customer's usage record meters for a UTC month (a record belongs to the month of its start): call
    minutes and calls by direction and destination class, meeting minutes, meetings and participant minutes."""
    month = _month(query)
    if month is None:
        return _bad_month(query)
    customers = list(Customer.objects.filter(partner=partner_of(request)).order_by("slug"))
    return Status(200, {"month": str(month), "customers": _totals_out(customers, month)})


@router.get("/totals/{customer}", response={200: UsageTotalsOut, 401: ErrorOut, 404: ErrorOut,
                                            422: ValidationErrorOut})
def totals_customer(request, customer: str, query: Query[MonthQuery]):
    """One customer's usage record meters for a UTC month; 404 for a customer that is not the partner's."""
    found = customer_of(request, customer)
    month = _month(query)
    if month is None:
        return _bad_month(query)
    return Status(200, {"month": str(month), "customers": _totals_out([found], month)})
