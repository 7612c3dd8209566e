"""The `statements` report: per-customer rebilling data, not invoices (RULES 7, 9.10)."""

from __future__ import annotations

from decimal import Decimal

from billing.money import quantize_quantity
from billing.registry import register_report
from billing.reporting import Report, ReportOptions
from metering.selectors import seat_days_by_customer
from partners.models import Customer


@register_report
class StatementsReport(Report):
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
        seats = seat_days_by_customer(partner_ids=partner_ids, first=period.first, last=period.last)
        for customer in customers.iterator():
            days, users = seats.get(customer.pk, (0, 0))
            yield {
                "partner": customer.partner.slug,
                "period": str(period),
                "customer": customer.slug,
                "customer_name": customer.name,
                "seat_days": days,
                "seat_months": quantize_quantity(Decimal(days) / Decimal(period.days)),
                "active_users": users,
                "peak_users": 0,
                "licenses": 0,
                "peak_assets": 0,
            }
