"""Month-to-date seat-days beside each customer (billing-rules 3.1).

Data flows partners -> metering, so partners' admin cannot show metered values; metering adds its column
itself by re-registering a subclass of the partners CustomerAdmin (the app registry loads metering's admin
after partners').
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin
from django.utils.html import format_html

from billing.core.money import quantize_quantity
from billing.core.periods import Period
from metering.admin.common import utc_today
from metering.selectors import seat_days_by_customer
from partners.admin.customers import CustomerAdmin
from partners.models import Customer


class MeteredCustomerAdmin(CustomerAdmin):
    list_display = (*CustomerAdmin.list_display, "seat_days_to_date")

    def annotate_page(self, request, rows):
        """One set-based query for the whole page (metering.selectors)."""
        super().annotate_page(request, rows)
        today = utc_today()
        month = Period.of(today)
        counted = seat_days_by_customer(partner_ids={c.partner_id for c in rows}, first=month.first, last=today)
        for customer in rows:
            customer.page_seat_days = counted.get(customer.pk, (0, 0))[0]
            customer.page_month = month

    @admin.display(description="seat-days this month")
    def seat_days_to_date(self, obj):
        days = getattr(obj, "page_seat_days", None)
        if days is None:
            return "—"
        month = obj.page_month
        return format_html('{} <span class="quiet" title="seat-months of {} so far">({})</span>',
                           days, month, quantize_quantity(Decimal(days) / Decimal(month.days)))


admin.site.unregister(Customer)
admin.site.register(Customer, MeteredCustomerAdmin)
