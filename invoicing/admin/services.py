"""The partners ServiceAdmin re-registered with a panel of what a seat_days service's recent periods would
bill, priced by invoicing.selectors (partners never imports invoicing), and metering's "Get units now"."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from billing.core.money import quantize_quantity
from invoicing.selectors import last_complete_period, seat_periods
from metering.admin.rmm import MeteredServiceAdminMixin
from partners.admin.kit import EMPTY
from partners.admin.services import ServiceAdmin
from partners.models import Method, Service

PERIODS_SHOWN = 6


class PricedServiceAdmin(MeteredServiceAdminMixin, ServiceAdmin):
    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and obj.method == Method.SEAT_DAYS:
            fieldsets.insert(-1, ("Recent periods (what the arrears line would bill)",
                                  {"fields": ("recent_periods",)}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "recent_periods")

    @admin.display(description="periods")
    def recent_periods(self, obj):
        if obj is None or not obj.pk or obj.method != Method.SEAT_DAYS:
            return EMPTY
        last = last_complete_period()
        first = last
        for _ in range(PERIODS_SHOWN - 1):
            first = first.previous()
        periods = seat_periods(services=[obj], first=first, last=last)
        if not periods:
            return "no completed period yet"
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td></tr>", (
            (p.period, p.seat_days, p.committed, quantize_quantity(p.price.actual),
             quantize_quantity(p.price.minimum), p.price.subtotal, obj.partner.currency)
            for p in reversed(periods)
        ))
        return format_html(
            "<table><thead><tr><th>period</th><th>seat-days</th><th>committed</th><th>actual seat-months</th>"
            "<th>minimum</th><th>subtotal</th></tr></thead><tbody>{}</tbody></table>", rows,
        )


admin.site.unregister(Service)
admin.site.register(Service, PricedServiceAdmin)
