"""/api/reseller: a partner's tenants, their usage and suspensions, and the forecast of the next CI."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from ninja import Router, Status

from billing.api.auth import actor_of, customer_of, partner_of
from billing.api.schemas import (
    ErrorOut,
    ForecastLineOut,
    ForecastOut,
    SuspensionOut,
    TenantOut,
    TenantUsageOut,
    UsageIn,
    UsageRecordOut,
    ValidationErrorOut,
)
from billing.core.money import currency_quantum, quantize_money, quantize_quantity
from billing.core.periods import utc_date
from invoicing.forecast import next_ci_forecast
from metering.models import Suspension, UsageSnapshot
from metering.selectors import licenses_on_day
from metering.services import TenantStateError, tenant_suspend, tenant_unsuspend, usage_snapshot_record
from partners.models import Customer, Method, Service

router = Router(tags=["reseller"])

ERRORS = {401: ErrorOut, 404: ErrorOut}


def _suspended_ids(customer_ids) -> set[int]:
    now = timezone.now()
    return set(
        Suspension.objects.filter(customer_id__in=list(customer_ids), suspended_at__lte=now,
                                  unsuspended_at__isnull=True).values_list("customer_id", flat=True)
    )


def _usage(snapshot: UsageSnapshot | None) -> dict:
    if snapshot is None:  # before any snapshot, values are 0 (billing-rules 6.8)
        return {"date": None, "users_count": 0, "storage_bytes": 0, "messages_count": None}
    return {"date": snapshot.date, "users_count": snapshot.users_count, "storage_bytes": snapshot.storage_bytes,
            "messages_count": snapshot.messages_count}


def _licenses(customer: Customer, snapshot: UsageSnapshot | None) -> int:
    """Licenses of the latest snapshot (billing-rules 3.6) under the licenses service covering the tenant
    (its own before a partner-level one); 0 when no licenses service covers it (as statements, billing-rules 6.10)."""
    today = utc_date(timezone.now())
    services = list(Service.objects.covering_customer(customer).filter(method=Method.LICENSES).active_on(today))
    services.sort(key=lambda s: (s.customer_id is None, s.pk))
    service = services[0] if services else None
    if service is None or snapshot is None:
        return 0
    return licenses_on_day(snapshot.users_count, snapshot.storage_bytes, service.storage_per_license_gb)


@router.get("/tenants", response={200: list[TenantOut], 401: ErrorOut})
def tenants_list(request):
    """The partner's customers (tenants), each with whether it is suspended and its latest usage."""
    partner = partner_of(request)
    latest = UsageSnapshot.objects.filter(customer=OuterRef("pk")).order_by("-date").values("pk")[:1]
    customers = list(
        Customer.objects.filter(partner=partner).annotate(latest_snapshot=Subquery(latest)).order_by("slug")
    )
    snapshots = UsageSnapshot.objects.in_bulk([c.latest_snapshot for c in customers if c.latest_snapshot])
    suspended = _suspended_ids(c.pk for c in customers)
    return [
        {
            "slug": c.slug,
            "name": c.name,
            "suspended": c.pk in suspended,
            "latest_usage": _usage(snapshots[c.latest_snapshot]) if c.latest_snapshot else None,
        }
        for c in customers
    ]


@router.get("/tenants/{slug}/usage", response={200: TenantUsageOut, **ERRORS})
def tenant_usage(request, slug: str):
    """The tenant's latest usage snapshot, its licenses now and whether it is suspended."""
    customer = customer_of(request, slug)
    snapshot = UsageSnapshot.objects.filter(customer=customer).order_by("-date").first()
    return {
        "slug": customer.slug,
        **_usage(snapshot),
        "licenses": _licenses(customer, snapshot),
        "suspended": customer.pk in _suspended_ids([customer.pk]),
    }


def _suspension_out(customer: Customer, suspension: Suspension) -> dict:
    return {"slug": customer.slug, "suspended": suspension.unsuspended_at is None,
            "suspended_at": suspension.suspended_at, "unsuspended_at": suspension.unsuspended_at}


@router.post("/tenants/{slug}/suspend", response={200: SuspensionOut, 409: ErrorOut, **ERRORS})
def tenant_suspend_view(request, slug: str):
    """Suspend the tenant now (counting stops from the next whole day). 409 when already suspended."""
    customer = customer_of(request, slug)
    try:
        suspension = tenant_suspend(customer=customer, actor=actor_of(request), source="api")
    except TenantStateError as exc:
        return Status(409, {"detail": str(exc)})
    return Status(200, _suspension_out(customer, suspension))


@router.post("/tenants/{slug}/unsuspend", response={200: SuspensionOut, 409: ErrorOut, **ERRORS})
def tenant_unsuspend_view(request, slug: str):
    """End the tenant's suspension now (the day it happens counts). 409 when it is not suspended."""
    customer = customer_of(request, slug)
    try:
        suspension = tenant_unsuspend(customer=customer, actor=actor_of(request), source="api")
    except TenantStateError as exc:
        return Status(409, {"detail": str(exc)})
    return Status(200, _suspension_out(customer, suspension))


@router.post("/tenants/{slug}/usage",
             response={200: UsageRecordOut, 201: UsageRecordOut, 422: ValidationErrorOut, **ERRORS})
def tenant_usage_record(request, slug: str, payload: UsageIn):
    """Record a usage snapshot for a UTC date (default today). The last snapshot of a date wins:
    201 when the date had none, 200 when it replaced (or equalled) the date's snapshot."""
    customer = customer_of(request, slug)
    day = payload.date or utc_date(timezone.now())
    try:
        snapshot, outcome = usage_snapshot_record(
            customer=customer, date=day, users_count=payload.users_count, storage_bytes=payload.storage_bytes,
            messages_count=payload.messages_count, actor=actor_of(request), source="api",
        )
    except ValidationError as exc:
        return Status(422, {"detail": [{"loc": ["body", "payload", k], "msg": " ".join(v), "type": "value_error"}
                                for k, v in exc.message_dict.items()]})
    body = {"slug": customer.slug, **_usage(snapshot), "outcome": outcome}
    return Status(201 if outcome == "created" else 200, body)


def _text(value: Decimal) -> str:
    return format(value, "f")


def _price_text(value: Decimal, currency: str) -> str:
    """A unit price at the currency's places when that loses nothing (20.0000 -> "20.00"), else exact."""
    short = value.quantize(currency_quantum(currency))
    return _text(short if short == value else value)


@router.get("/forecast", response={200: ForecastOut, 401: ErrorOut})
def forecast(request):
    """The next CI (dated the 1st of next month) as the portal shows it (billing-rules decision (at)): next
    month's advance charges and this month's arrears, with open seats assumed to stay open to the month's end and
    usage meters keeping their last value, and its tax."""
    partner = partner_of(request)
    result = next_ci_forecast(partner, utc_date(timezone.now()))
    currency = partner.currency
    out = [
        ForecastLineOut(
            service=line.service.code,
            customer=line.customer.slug if line.customer is not None else None,
            line_type=line.line_type,
            period=str(line.period),
            quantity=_text(quantize_quantity(Decimal(line.quantity))),
            unit_price=_price_text(line.unit_price, currency) if line.unit_price is not None else None,
            amount=_text(quantize_money(line.amount, currency)),
            description=line.description,
        )
        for line in result.lines
    ]
    return {"month": str(result.month), "currency": currency, "lines": out,
            "subtotal": _text(quantize_money(result.subtotal, currency)),
            "tax_rate": _text(result.tax_rate.normalize()), "tax": _text(quantize_money(result.tax, currency)),
            "total": _text(quantize_money(result.total, currency))}
