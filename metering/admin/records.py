"""Usage records in the admin: calls, call legs and meetings (billing-rules 3.12), read-only.

They change only through `import_csv` and the API (metering.usage_records), which check them and audit each
import. A month is tens of millions of rows, so these lists never read the whole table: no count of an
unfiltered list (LargeTablePaginator, and no "N total" link), the newest first by id (the primary key's index),
a customer's list by its (customer, started_at) index, and months offered from the calendar rather than by a
scan of the dates recorded (Django's date_hierarchy asks the table for its first and last date and then for
every distinct year, month and day).
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from billing.core.paging import LargeTablePaginator
from billing.core.periods import Period, PeriodError
from metering.admin.common import SourceColumnMixin, utc_today
from metering.models import CallDetailRecord, CallUsageRecord, MeetingSummaryRecord
from partners.admin.kit import CustomerFilter, ReadOnlyAdminMixin

MONTHS_OFFERED = 13


class MonthFilter(admin.SimpleListFilter):
    """The UTC month of the record's start (billing-rules 3.12): this month and the twelve before."""

    title = "month (UTC)"
    parameter_name = "utc_month"  # not "month": billing.admin_guard reads that as a date part (1-12)

    def lookups(self, request, model_admin):
        month = Period.of(utc_today())
        offered = [month.shift(-n) for n in range(MONTHS_OFFERED)]
        chosen = self._period()
        if chosen is not None and chosen not in offered:
            offered.append(chosen)
        return [(str(m), str(m)) for m in offered]

    def _period(self) -> Period | None:
        try:
            return Period.parse(self.value()) if self.value() else None
        except PeriodError:
            return None

    def queryset(self, request, queryset):
        month = self._period()
        if month is None:
            return queryset
        return queryset.filter(started_at__gte=month.start, started_at__lt=month.end)


def _nowrap(field: str, label: str):
    """A column of ids on one line (a call-000123 is not broken at its hyphen)."""

    @admin.display(description=label, ordering=field)
    def column(self, obj):
        return format_html('<span style="white-space:nowrap">{}</span>', getattr(obj, field))

    return column


class RecordAdmin(SourceColumnMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_filter = ("partner", CustomerFilter, MonthFilter)
    list_select_related = ("partner", "customer")
    ordering = ("-id",)
    paginator = LargeTablePaginator
    show_full_result_count = False
    list_per_page = 100

    @admin.display(description="customer", ordering="customer__name")
    def customer_name(self, obj):
        return obj.customer.name

    @admin.display(description="partner", ordering="partner__name")
    def partner_name(self, obj):
        return obj.partner.name


@admin.register(CallUsageRecord)
class CallUsageRecordAdmin(RecordAdmin):
    """Rated calls, as imported (import_csv call-usage, the API); the call minutes meters sum them."""

    list_display = ("started_at", "customer_name", "partner_name", "record", "user", "duration_seconds",
                    "direction", "destination", "source_file")
    record = _nowrap("record_id", "record ID")


@admin.register(CallDetailRecord)
class CallDetailRecordAdmin(RecordAdmin):
    """The legs of calls (import_csv call-details, the API): detail only, never billed (billing-rules 3.12)."""

    list_display = ("started_at", "customer_name", "partner_name", "call", "leg", "user", "from_number",
                    "to_number", "duration_seconds", "direction", "destination")
    call = _nowrap("call_id", "call ID")
    leg = _nowrap("leg_id", "leg ID")


@admin.register(MeetingSummaryRecord)
class MeetingSummaryRecordAdmin(RecordAdmin):
    """Meetings held (import_csv meeting-summaries, the API); the meeting meters sum them."""

    list_display = ("started_at", "customer_name", "partner_name", "meeting", "host", "duration_seconds",
                    "participants", "source_file")
    meeting = _nowrap("meeting_id", "meeting ID")
