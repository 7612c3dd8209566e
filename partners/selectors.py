"""Reads about partners, customers and seats."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from django.db.models import Count, Sum

from partners.models import Method, SeatAssignment, SeatPurchase, Service
from partners.seating import Commitment, committed_seats_on
from partners.terms import TermsBook


@dataclass(frozen=True)
class SeatCounts:
    by_customer: dict[int, int]
    by_partner: dict[int, int]

    def in_scope(self, service: Service) -> int:
        if service.customer_id:
            return self.by_customer.get(service.customer_id, 0)
        return self.by_partner.get(service.partner_id, 0)


def active_seat_counts(*, partner_ids=None, at=None) -> SeatCounts:
    """Active seats at an instant (now by default), per customer and per partner, in one query."""
    qs = SeatAssignment.objects.active(at)
    if partner_ids is not None:
        qs = qs.filter(partner_id__in=partner_ids)
    by_customer: dict[int, int] = {}
    by_partner: dict[int, int] = defaultdict(int)
    for partner_id, customer_id, n in (
        qs.order_by().values_list("partner_id", "customer_id").annotate(n=Count("id"))
    ):
        by_customer[customer_id] = n
        by_partner[partner_id] += n
    return SeatCounts(by_customer, dict(by_partner))


def committed_seats(services, day: date) -> dict[int, int]:
    """{service id: committed seats in force on `day`} (billing-rules 3.1, 6.2): each service's committed
    quantity in force that day (its terms over time, billing-rules 3.11) plus the purchases effective by then,
    by `partners.seating.committed_seats_on`, for any number of services in two queries."""
    services = list(services)
    purchases: dict[int, list[tuple[date, int]]] = defaultdict(list)
    for service_id, effective, seats in (
        SeatPurchase.objects.filter(service__in=services).effective_by(day)
        .order_by().values_list("service_id", "effective_date").annotate(s=Sum("seats"))
    ):
        purchases[service_id].append((effective, seats))
    book = TermsBook(services)
    return {
        service.pk: committed_seats_on(day, committed_quantity=book.on(service, day).committed_quantity,
                                       purchases=purchases[service.pk])
        for service in services
    }


def commitments_in_force(*, partner_ids, day: date) -> dict[int, list[Commitment]]:
    """The seat_days commitments in force on `day`, per partner id (two queries)."""
    services = list(
        Service.objects.filter(partner_id__in=partner_ids, method=Method.SEAT_DAYS).active_on(day)
    )
    committed = committed_seats(services, day)
    result: dict[int, list[Commitment]] = defaultdict(list)
    for service in services:
        result[service.partner_id].append(
            Commitment(
                service_code=service.code,
                committed=committed[service.pk],
                overage_enabled=service.overage_enabled,
                customer_id=service.customer_id,
            )
        )
    return result
