"""The `statements` report: per-customer rebilling data, not invoices (billing-rules 10.3, 6.10)."""

from __future__ import annotations

from decimal import Decimal

from billing.core.money import quantize_quantity
from billing.core.periods import Period
from billing.core.registry import register_report
from billing.core.reporting import Report, ReportOptions
from metering.selectors import (
    licenses_by_service,
    peak_assets_by_customer,
    peak_users_by_customer,
    seat_days_by_customer,
)
from partners.models import Customer, Method, Service


def seat_months(seat_days: int, period: Period) -> Decimal:
    """Seat-days as seat-months of the period, with 4 places (billing-rules 3.1): 30 seat-days of March are
    0.9677. A total is computed from its seat-days, never summed from rounded seat-months."""
    return quantize_quantity(Decimal(seat_days) / Decimal(period.days))

@register_report
class StatementsReport(Report):
    """Every customer of every partner (or of --partner) for the period, zeros included, from all
    data known now: seat-days and active users, peak users (0 on whole suspended days), billable
    licenses under a licenses service covering the customer, and the peak agent count of its
    RMM organization."""

    name = "statements"
    columns = ("partner", "period", "customer", "customer_name", "seat_days", "seat_months", "active_users",
               "peak_users", "licenses", "peak_assets")
    needs_period = True

    def rows(self, options: ReportOptions):
        period = options.period
        customers = Customer.objects.select_related("partner").order_by("partner__slug", "slug")
        if options.partner:
            customers = customers.filter(partner__slug=options.partner)
        partner_ids = set(customers.values_list("partner_id", flat=True))
        span = {"first": period.first, "last": period.last}
        seats = seat_days_by_customer(partner_ids=partner_ids, **span)
        peak_users = peak_users_by_customer(partner_ids=partner_ids, **span)
        peak_assets = peak_assets_by_customer(partner_ids=partner_ids, **span)
        licenses: dict[int, int] = {}
        licensing = Service.objects.filter(partner_id__in=partner_ids, method=Method.LICENSES)
        for (_, customer_id), count in licenses_by_service(
            service_ids=list(licensing.values_list("pk", flat=True)), **span
        ).items():
            licenses[customer_id] = max(count, licenses.get(customer_id, 0))
        for customer in customers.iterator():
            days, users = seats.get(customer.pk, (0, 0))
            yield {
                "partner": customer.partner.slug,
                "period": str(period),
                "customer": customer.slug,
                "customer_name": customer.name,
                "seat_days": days,
                "seat_months": seat_months(days, period),
                "active_users": users,
                "peak_users": peak_users.get(customer.pk, 0),
                "licenses": licenses.get(customer.pk, 0),
                "peak_assets": peak_assets.get(customer.pk, 0),
            }
