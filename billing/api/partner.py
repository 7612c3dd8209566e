"""/api/partner: seats (assign, unassign) and the seat dashboard. Seat rules are the services' own
(caps, commitments, one seat per member: billing-rules 3.2), so the API denies what every entry point denies."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone
from ninja import Router, Status

from billing.api.auth import actor_of, customer_of, partner_of
from billing.api.schemas import DashboardOut, ErrorOut, SeatIn, SeatOut, ValidationErrorOut
from billing.core.periods import utc_date
from partners.models import Method, SeatAssignment, Service
from partners.seating import SeatRuleError, utilization_percent
from partners.selectors import active_seat_counts, committed_seats
from partners.services import seat_assign, seat_unassign

router = Router(tags=["partner"])


def _seat_out(assignment: SeatAssignment) -> dict:
    return {"customer": assignment.customer.slug, "member": assignment.member.name,
            "assigned_at": assignment.assigned_at, "removed_at": assignment.removed_at}


@router.post("/seats", response={201: SeatOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut,
                                 422: ValidationErrorOut})
def seat_create(request, payload: SeatIn):
    """Give a member of one of the partner's customers a seat now (the member is created if new).
    409 with the reason when a seat cap or a commitment without overage is reached, or when the
    member already holds a seat."""
    customer = customer_of(request, payload.customer)
    try:
        assignment = seat_assign(customer=customer, member_name=payload.member, actor=actor_of(request), source="api")
    except SeatRuleError as exc:
        return Status(409, {"detail": str(exc)})
    return Status(201, _seat_out(assignment))


@router.delete("/seats/{customer}/{path:member}", response={204: None, 401: ErrorOut, 404: ErrorOut})
def seat_delete(request, customer: str, member: str):
    """End the member's active seat now. 404 when the customer is not the partner's or the member
    holds no active seat."""
    found = customer_of(request, customer)
    if not member or any(ord(c) < 32 or ord(c) == 127 for c in member):  # no member is named so
        return Status(404, {"detail": f"{member!r} holds no seat"})
    try:
        seat_unassign(customer=found, member_name=member, actor=actor_of(request), source="api")
    except SeatRuleError as exc:
        return Status(404, {"detail": str(exc)})
    return Status(204, None)


def _ratio_text(active: int, committed: int) -> str | None:
    """Utilization as a decimal string of the whole percent people are shown everywhere (`utilization_percent`:
    half away from zero, billing-rules decision (as)): 1 of 3 is "0.33", 4 of 3 "1.33"; None without a
    commitment."""
    percent = utilization_percent(active, committed)
    return None if percent is None else format(Decimal(percent) / 100, ".2f")


@router.get("/dashboard", response={200: DashboardOut, 401: ErrorOut})
def dashboard(request):
    """Committed seats (contract + purchases in force today), seats assigned now, seats available
    before the commitment is reached, utilization (assigned / committed), in total and per seat_days service."""
    partner = partner_of(request)
    today = utc_date(timezone.now())
    counts = active_seat_counts(partner_ids=[partner.pk])
    services = list(
        Service.objects.filter(partner=partner, method=Method.SEAT_DAYS).active_on(today)
        .select_related("customer").order_by("code")
    )
    in_force = committed_seats(services, today)
    rows = []
    for service in services:
        committed = in_force[service.pk]
        assigned = counts.in_scope(service)
        rows.append({
            "service": service.code,
            "customer": service.customer.slug if service.customer_id else None,
            "committed": committed,
            "assigned": assigned,
            "available": max(0, committed - assigned),
            "utilization": _ratio_text(assigned, committed),
            "overage_enabled": service.overage_enabled,
        })
    committed = sum(row["committed"] for row in rows)
    assigned = counts.by_partner.get(partner.pk, 0)
    # each commitment's unused seats, added up: a seat over one service's commitment (or under a service of the
    # whole partner beside a customer's own) never makes room under another's (billing-rules 11.4)
    available = sum(row["available"] for row in rows)
    return {"committed": committed, "assigned": assigned, "available": available,
            "utilization": _ratio_text(assigned, committed), "services": rows}
