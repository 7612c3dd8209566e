"""What the metering pages share: today's date (UTC), an empty cell, the source column and a tenant's columns."""

from __future__ import annotations

from datetime import date

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from billing.core.periods import utc_date
from partners.admin.kit import EMPTY

BLANK = mark_safe("&nbsp;")  # an empty cell ("" would show the admin's empty-value dash)


def utc_today() -> date:
    return utc_date(timezone.now())


class SourceColumnMixin:
    @admin.display(description="source", ordering="source")
    def source_file(self, obj):
        """The file or sync a row came from, on one line."""
        return format_html('<span class="quiet" style="white-space:nowrap">{}</span>', obj.source or EMPTY)


class TenantColumnsMixin:
    """The customer and partner columns of a list of a tenant's rows (usage snapshots, suspensions)."""

    @admin.display(description="customer", ordering="customer__name")
    def customer_name(self, obj):
        return obj.customer.name

    @admin.display(description="partner", ordering="customer__partner__name")
    def partner_name(self, obj):
        return format_html('<span style="white-space:nowrap">{}</span>', obj.customer.partner.name)
