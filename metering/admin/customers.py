"""Month-to-date seat-days beside each customer and on its page (billing-rules 3.1).

Data flows partners -> metering, so partners' admin cannot show metered values; metering adds its column
itself by re-registering a subclass of the partners CustomerAdmin (the app registry loads metering's admin
after partners').
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from billing.core.periods import Period
from metering.admin.common import utc_today
from metering.reports import seat_months as month_seat_months
from metering.selectors import seat_days_by_customer
from partners.admin.customers import CustomerAdmin
from partners.models import Customer


class MeteredCustomerAdmin(CustomerAdmin):
    list_display = (*CustomerAdmin.list_display, "seat_days_to_date")

    def get_fieldsets(self, request, obj=None):
        """The customer page shows the same figure under its seats."""
        fieldsets = [(name, dict(options)) for name, options in super().get_fieldsets(request, obj)]
        if obj is not None and obj.pk:
            for name, options in fieldsets:
                if name == "Seats":
                    options["fields"] = (*options["fields"], "seat_days_on_page")
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "seat_days_on_page")

    @admin.display(description="seat-days this month")
    def seat_days_on_page(self, obj):
        if obj is None or not obj.pk:
            return "—"
        self._annotate_seat_days([obj])
        return self.seat_days_to_date(obj)

    def annotate_page(self, request, rows):
        super().annotate_page(request, rows)
        self._annotate_seat_days(rows)

    @staticmethod
    def _annotate_seat_days(rows):
        """One set-based query for the whole page (metering.selectors)."""
        today = utc_today()
        month = Period.of(today)
        counted = seat_days_by_customer(partner_ids={c.partner_id for c in rows}, first=month.first, last=today)
        for customer in rows:
            customer.page_seat_days = counted.get(customer.pk, (0, 0))[0]
            customer.page_month = month

    @admin.display(description="seat-days this month")
    def seat_days_to_date(self, obj):
        """The seat-days counted from the 1st to today, and what they make in seat-months (seat-days ÷ days in
        the month, billing-rules 3.1), to 4 places as an invoice shows them."""
        days = getattr(obj, "page_seat_days", None)
        if days is None:
            return "—"
        month = obj.page_month
        seat_months = month_seat_months(days, month)
        title = (f"{days} seat-days from {month.first:%d %b} to today; {days} ÷ {month.days} days of {month} = "
                 f"{seat_months} seat-months so far")
        counted = format_html('<span style="white-space:nowrap">{} seat-day{}</span>', days, "" if days == 1 else "s")
        if not days:
            return counted
        return format_html('<span title="{}">{} <span class="quiet" style="white-space:nowrap">({} seat-months)</span>'
                           '</span>', title, counted, seat_months)


admin.site.unregister(Customer)
admin.site.register(Customer, MeteredCustomerAdmin)
