"""What the invoicing pages share: amounts in their currency's places, the payment status as a pill,
and the link to an object's page."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from billing.core.money import currency_places
from invoicing.models import Invoice, InvoiceKind, PaymentStatus
from partners.admin.kit import EMPTY

STATUS_COLOURS = {
    PaymentStatus.OPEN: "#417690",
    PaymentStatus.PARTIALLY_PAID: "#b36b00",
    PaymentStatus.PAID: "#2e7d32",
    PaymentStatus.OVERDUE: "#ba2121",
    PaymentStatus.VOID: "#767676",
}


def change_url(obj) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def money_text(amount: Decimal | None, currency: str) -> str:
    if amount is None:
        return EMPTY
    places = currency_places(currency)
    return f"{amount:,.{places}f}"


def money_html(amount: Decimal | None, currency: str, *, strong: bool = False):
    """An amount with its currency's places and thousands separators, on one line."""
    if amount is None:
        return EMPTY
    if strong:
        return format_html('<span style="white-space:nowrap"><b>{}</b> <span class="quiet">{}</span></span>',
                           money_text(amount, currency), currency)
    return format_html('<span style="white-space:nowrap">{} <span class="quiet">{}</span></span>',
                       money_text(amount, currency), currency)


def status_badge(invoice: Invoice):
    """The payment status as a coloured pill; a draft has none yet."""
    style = ("display:inline-block;padding:1px 8px;border-radius:9px;font-size:11px;font-weight:600;"
             "white-space:nowrap;")
    if not invoice.is_issued:
        return format_html('<span style="{}border:1px solid #999;color:#666">draft</span>', style)
    if invoice.kind == InvoiceKind.CN:  # never owed, so never "paid": it is a credit
        return format_html('<span style="{}border:1px solid #767676;color:#444">credit</span>', style)
    colour = STATUS_COLOURS.get(invoice.payment_status, "#767676")
    return format_html('<span style="{}background:{};color:#fff">{}</span>', style, colour,
                       invoice.get_payment_status_display().lower())


class DocumentDatesMixin:
    """A document list's issue and due dates as ISO dates (2026-12-01): narrow columns that sort by date."""

    @admin.display(description="issue date", ordering="issue_date")
    def issued_on(self, obj):
        return obj.issue_date.isoformat()

    @admin.display(description="due date", ordering="due_date")
    def due_on(self, obj):
        return obj.due_date.isoformat()
