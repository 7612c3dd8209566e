"""Reads about partners, customers and seats."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from django.db.models import Count, Sum

from partners.models import Method, SeatAssignment, SeatPurchase, Service
from partners.seating import Commitment


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
    """{service id: committed seats in force on `day`}: the contract plus the purchases effective by
    then (billing-rules 6.2), for any number of services in one query."""
    purchased = dict(
        SeatPurchase.objects.filter(service__in=services).effective_by(day)
        .order_by().values_list("service_id").annotate(s=Sum("seats"))
    )
    return {service.pk: (service.committed_quantity or 0) + purchased.get(service.pk, 0) for service in services}


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
