"""Request and response bodies. Money and decimals travel as strings, never floats (billing-rules 2, 11.2)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from django.utils import timezone
from ninja import Schema
from pydantic import AfterValidator, Field, StringConstraints, field_validator

from billing.core.periods import utc_date

# whole numbers only (no "5", 5.0 or true), within what the database columns hold
Count = Annotated[int, Field(strict=True, ge=0, le=2_147_483_647)]
BigCount = Annotated[int, Field(strict=True, ge=0, le=9_223_372_036_854_775_807)]
# a printable name: no control characters (PostgreSQL refuses NUL in text), not blank
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200,
                                         pattern=r"^[^\x00-\x1f\x7f]+$")]


class ErrorOut(Schema):
    detail: str


class ValidationErrorOut(Schema):
    detail: list[dict]


class UsageOut(Schema):
    date: dt.date | None
    users_count: int
    storage_bytes: int
    messages_count: int | None


class TenantOut(Schema):
    slug: str
    name: str
    suspended: bool
    latest_usage: UsageOut | None


class TenantUsageOut(Schema):
    slug: str
    date: dt.date | None = Field(description="the date of the latest snapshot (null before any)")
    users_count: int
    storage_bytes: int
    messages_count: int | None
    licenses: int = Field(description="max(users, ceil(storage / storage per license)) under the licenses "
                                      "service covering the tenant; 0 without one")
    suspended: bool


class SuspensionOut(Schema):
    slug: str
    suspended: bool
    suspended_at: dt.datetime
    unsuspended_at: dt.datetime | None


class UsageIn(Schema):
    date: dt.date | None = Field(None, description="UTC date of the snapshot; default today (UTC), never in the future")
    users_count: Count
    storage_bytes: BigCount
    messages_count: BigCount | None = None

    @field_validator("date")
    @classmethod
    def not_in_future(cls, value: dt.date | None) -> dt.date | None:
        if value is not None and value > utc_date(timezone.now()):
            raise ValueError(f"{value} is in the future")
        return value


class UsageRecordOut(Schema):
    slug: str
    date: dt.date
    users_count: int
    storage_bytes: int
    messages_count: int | None
    outcome: str = Field(description="created, updated (the last snapshot of a date wins) or unchanged")


class ForecastLineOut(Schema):
    service: str
    customer: str | None
    line_type: str
    period: str
    quantity: str
    unit_price: str | None
    amount: str
    description: str


class ForecastOut(Schema):
    month: str = Field(description="the invoice month of the next CI (YYYY-MM)")
    currency: str
    lines: list[ForecastLineOut]
    subtotal: str
    tax_rate: str = Field(description="the partner's tax rate in percent on the CI's date")
    tax: str
    total: str


class SeatIn(Schema):
    customer: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    member: Name


class SeatOut(Schema):
    customer: str
    member: str
    assigned_at: dt.datetime
    removed_at: dt.datetime | None


class ServiceSeatsOut(Schema):
    service: str
    customer: str | None
    committed: int
    assigned: int
    available: int
    utilization: str | None
    overage_enabled: bool


class DashboardOut(Schema):
    committed: int
    assigned: int
    available: int
    utilization: str | None = Field(description="assigned / committed as a decimal string; null without a "
                                                "commitment")
    services: list[ServiceSeatsOut]


# --- usage records (billing/api/usage_records.py): cells as a file has them, checked by the import engine ---------
def _utf8(value: str) -> str:
    """Text PostgreSQL can store: a lone surrogate (JSON's "\\ud800") is not UTF-8."""
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("not UTF-8 text") from None
    return value


RecordText = Annotated[str, StringConstraints(max_length=1000), AfterValidator(_utf8)]
RecordNumber = Annotated[int, Field(strict=True)]


class _RecordIn(Schema):
    customer: RecordText = Field(description="the customer's key (slug)")
    started_at: RecordText = Field(description="ISO 8601 with Z or an offset; the record belongs to the UTC month "
                                               "of its start")
    duration_seconds: RecordNumber


class CallUsageIn(_RecordIn):
    record_id: RecordText = Field(description="the call's id at the vendor: the record's key")
    user: RecordText = Field("", description="the user or extension")
    direction: RecordText = Field(description="inbound, outbound or internal")
    destination: RecordText = Field(description="the destination class in the vendor's words (local, national, "
                                                "international, mobile, toll-free...)")


class CallDetailIn(_RecordIn):
    leg_id: RecordText = Field(description="the leg's id: the record's key")
    call_id: RecordText = Field(description="the call the leg belongs to")
    user: RecordText = ""
    from_number: RecordText = ""
    to_number: RecordText = ""
    direction: RecordText
    destination: RecordText = ""


class MeetingSummaryIn(_RecordIn):
    meeting_id: RecordText = Field(description="the id of the meeting held: the record's key")
    host: RecordText
    participants: RecordNumber


class RecordsOut(Schema):
    records: int
    created: int
    unchanged: int = Field(description="exact duplicates of records already recorded (or of an earlier item)")


class CustomerTotalsOut(Schema):
    customer: str
    meters: dict[str, str] = Field(description="meter key -> quantity as a decimal string: call_minutes:<direction>:"
                                               "<destination>, calls:<direction>:<destination>, meeting_minutes, "
                                               "meetings, participant_minutes (billing-rules 3.12)")


class UsageTotalsOut(Schema):
    month: str
    customers: list[CustomerTotalsOut]
