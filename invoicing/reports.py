"""The `periods` report: seat_days usage periods (RULES 7)."""

from __future__ import annotations

from billing.money import quantize_quantity
from billing.registry import register_report
from billing.reporting import Report, ReportOptions
from invoicing.selectors import last_complete_period, seat_periods
from partners.models import Method, Service


@register_report
class PeriodsReport(Report):
    """Until invoices exist, every completed usage period of every seat_days service is listed with
    blank invoice columns; with --period, that month alone (nothing for a month not yet over)."""

    name = "periods"
    columns = ("partner", "period", "service", "actual_seat_months", "minimum_seat_months",
               "billable_seat_months", "subtotal", "currency", "invoice_number", "payment_status")

    def rows(self, options: ReportOptions):
        services = Service.objects.filter(method=Method.SEAT_DAYS).select_related("partner").order_by(
            "partner__slug", "code"
        )
        if options.partner:
            services = services.filter(partner__slug=options.partner)
        # only usage periods that have ended: the current month is still being used
        last = min(options.period, last_complete_period()) if options.period else last_complete_period()
        for item in seat_periods(services=services, first=options.period, last=last):
            yield {
                "partner": item.service.partner.slug,
                "period": str(item.period),
                "service": item.service.code,
                "actual_seat_months": quantize_quantity(item.price.actual),
                "minimum_seat_months": quantize_quantity(item.price.minimum),
                "billable_seat_months": quantize_quantity(item.price.billable),
                "subtotal": item.price.subtotal,
                "currency": item.service.partner.currency,
                "invoice_number": "",
                "payment_status": "",
            }
