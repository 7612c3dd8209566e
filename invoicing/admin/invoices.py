"""Invoices in the admin, read-only (billing-rules 4.4: an issued invoice never changes): what a clerk does
to an invoice is an action on the list (issue drafts, credit whole invoices, regenerate PDFs, refresh
payment statuses) or a tool on its page (download the PDF or its lines as XLSX, record a payment, credit
chosen lines). Those views are admin views (admin_site.admin_view): staff only, and they take the invoice
change permission. Every change is a call of invoicing.services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import content_disposition_header

from billing.core.idempotency import OnceField, new_token, once_per_action, once_per_form
from billing.core.money import quantize_quantity
from billing.core.periods import utc_date
from invoicing import pdf as invoice_pdf
from invoicing.admin.common import DocumentDatesMixin, change_url, money_html, money_text, status_badge
from invoicing.admin.payments import InvoicePaymentForm
from invoicing.models import (
    ChildInvoice,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceState,
    LineType,
    Payment,
    PaymentStatus,
)
from invoicing.reports import invoice_lines_xlsx, shown_price
from invoicing.selectors import open_amount, settlement, with_settlement
from invoicing.services import (
    BillingError,
    credit_note_issue,
    invoice_issue_draft,
    invoice_status_refresh,
    payment_record,
)
from partners.admin.kit import EMPTY, EmptyStateInlineMixin, ReadOnlyAdminMixin, actor_of
from partners.audit import audit_record, jsonable
from partners.choices import AuditAction

REASONS_SHOWN = 5
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- helpers ------------------------------------------------------------------------------------
def _invoice_url(invoice: Invoice, tool: str = "change") -> str:
    return reverse(f"admin:invoicing_invoice_{tool}", args=[invoice.pk])


def _report(request, model_admin, done: int, verb: str, failed: list[str], extra: str = "") -> None:
    """`N <verb> (M failed: reasons)`, as the partners actions report."""
    message = f"{done} {verb}{extra}"
    if failed:
        shown = "; ".join(failed[:REASONS_SHOWN]) + ("; ..." if len(failed) > REASONS_SHOWN else "")
        message += f" ({len(failed)} failed: {shown})"
    level = messages.SUCCESS if not failed else (messages.WARNING if done else messages.ERROR)
    model_admin.message_user(request, message, level)


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(exc)


def credited_lines(invoice: Invoice) -> dict[int, str]:
    """Line pk -> number of the issued credit note that credited it."""
    keys = (InvoiceLine.objects.filter(invoice__credits=invoice, invoice__state=InvoiceState.ISSUED,
                                       key__startswith="credit:")
            .values_list("key", "invoice__number"))
    credited = {}
    for key, number in keys:
        pk = key.removeprefix("credit:")
        if pk.isdigit():
            credited[int(pk)] = number
    return credited


def _creditable(invoice: Invoice) -> bool:
    return invoice.is_issued and invoice.kind != InvoiceKind.CN


def payment_summary_html(invoice: Invoice):
    """The status, then what settled the invoice so far: the payments (how many) and what credit notes took off,
    as the status is judged (billing-rules 4.7: "partially paid" may be a credit alone), then what is open."""
    paid, credited = settlement(invoice)
    payments = invoice.payments.count()
    parts = []
    if payments:
        parts.append(format_html("{} paid in {} payment{}", money_html(paid, invoice.currency), payments,
                                 pluralize(payments)))
    if credited:
        notes = invoice.credit_notes.filter(state=InvoiceState.ISSUED).order_by("issue_date", "pk")
        parts.append(format_html("{} credited by {}", money_html(credited, invoice.currency),
                                 format_html_join(", ", '<a href="{}">{}</a>', ((change_url(n), n) for n in notes))))
    if not payments:
        parts.append("nothing paid yet" if credited else "nothing paid or credited yet")
    settled = format_html_join(", ", "{}", ((part,) for part in parts))
    return format_html("{} {}; {} open on it", status_badge(invoice), settled,
                       money_html(open_amount(invoice), invoice.currency))


# --- forms --------------------------------------------------------------------------------------
class LineIdsField(forms.Field):
    """The ids of the lines ticked, as posted. Which of them may be credited is judged by the credit note itself
    (`lines_to_credit`, billing-rules 4.5), so that a line credited meanwhile (a page left open, a second clerk)
    or one that is not a charge gets the contract's refusal, not "Select a valid choice"."""

    widget = forms.CheckboxSelectMultiple

    def to_python(self, value):
        if value in self.empty_values:
            return []
        values = value if isinstance(value, (list, tuple)) else [value]
        try:
            return sorted({int(v) for v in values})
        except (TypeError, ValueError):
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None


class CreditLinesForm(forms.Form):
    lines = LineIdsField(error_messages={"required": "choose at least one line to credit"})
    reason = forms.CharField(max_length=200, help_text="kept in the audit log",
                             widget=forms.TextInput(attrs={"size": 60}))
    once_token = OnceField()  # sent twice, credited once

    def __init__(self, *args, invoice: Invoice, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lines"].error_messages["invalid"] = f"a chosen line is not a charge of {invoice}"
        # what the page offers: the charges not credited yet; a line down (a negative true-up or proration) is
        # not a charge and goes only with the whole invoice's credit (billing-rules 4.5)
        self.offered = (invoice.lines.exclude(line_type=LineType.TAX).exclude(pk__in=list(credited_lines(invoice)))
                        .exclude(amount__lt=0))


# --- invoices -----------------------------------------------------------------------------------
class ReadOnlyInlineMixin(EmptyStateInlineMixin, ReadOnlyAdminMixin):
    """Rows of an invoice: shown to whoever may see the invoice, never edited here."""

    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return (request.user.has_perm("invoicing.view_invoice")
                or request.user.has_perm("invoicing.change_invoice"))


class ChildInvoiceInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = ChildInvoice
    fields = ("organization", "due_date", "subtotal_shown")
    readonly_fields = fields
    verbose_name = "child invoice"
    verbose_name_plural = "child invoices (one per organization)"
    empty_text = "No child invoice: only a CI has them."

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("customer", "invoice")

    @admin.display(description="organization")
    def organization(self, obj):
        if obj.customer_id:
            return obj.customer.name
        return format_html('<span class="quiet">{}</span>', "partner-level services")

    @admin.display(description="subtotal")
    def subtotal_shown(self, obj):
        return money_html(obj.subtotal, obj.invoice.currency)


class InvoiceLineInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = InvoiceLine
    fk_name = "invoice"
    fields = ("child_organization", "service_code", "customer_name", "line_type", "period", "quantity_shown",
              "unit_price_shown", "amount_shown", "description")
    readonly_fields = fields
    verbose_name_plural = "lines"
    empty_text = "No lines."

    def get_queryset(self, request):
        return (super().get_queryset(request)
                .select_related("invoice", "child__customer", "service", "customer").order_by("position", "pk"))

    @admin.display(description="child organization")
    def child_organization(self, obj):
        if obj.child_id is None:
            return EMPTY
        return obj.child.customer.name if obj.child.customer_id else "partner-level services"

    @admin.display(description="service")
    def service_code(self, obj):
        if not obj.service_id:
            return EMPTY
        return format_html('<span title="{}">{}</span>', obj.service.name, obj.service.code)

    @admin.display(description="customer")
    def customer_name(self, obj):
        return obj.customer.name if obj.customer_id else EMPTY

    @admin.display(description="quantity")
    def quantity_shown(self, obj):
        return EMPTY if obj.quantity is None else quantize_quantity(obj.quantity)

    @admin.display(description="unit price")
    def unit_price_shown(self, obj):
        if obj.unit_price is None:
            return EMPTY
        if obj.line_type == LineType.TAX:
            return f"{obj.unit_price.normalize():f}%"
        return shown_price(obj.unit_price, obj.invoice.currency)

    @admin.display(description="amount")
    def amount_shown(self, obj):
        return money_html(obj.amount, obj.invoice.currency)


class PaymentInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = Payment
    fields = ("paid_on", "amount_shown", "reference", "source", "recorded_by", "recorded_at")
    readonly_fields = fields
    verbose_name_plural = "payments"
    empty_text = "No payment recorded against this invoice yet."

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("recorded_by", "invoice")

    @admin.display(description="amount")
    def amount_shown(self, obj):
        return money_html(obj.amount, obj.invoice.currency)


@admin.register(Invoice)
class InvoiceAdmin(DocumentDatesMixin, admin.ModelAdmin):
    """Invoices, read-only: every change is a service call from an action or a tool of the page."""

    change_list_template = "admin/invoicing/invoice/change_list.html"
    change_form_template = "admin/invoicing/invoice/change_form.html"
    list_display = ("number_shown", "kind_shown", "partner", "issued_on", "due_on", "total_shown",
                    "open_shown", "status_shown", "pdf_link")
    list_display_links = ("number_shown",)
    list_filter = ("kind", "state", "payment_status", "partner", "issue_date")
    search_fields = ("number", "partner__slug", "partner__name")
    search_help_text = "Invoice number (CI-0001), or partner slug or name."
    list_select_related = ("partner",)
    date_hierarchy = "issue_date"
    fieldsets = (
        (None, {"fields": ("document", "partner", "customer", "month", "issue_date", "due_date", "issued_at",
                           "related")}),
        ("Statement", {"fields": ("statement",)}),
        ("Payment", {"fields": ("payment_summary",)}),
        ("File", {"fields": ("pdf_file", "emailed_at"), "classes": ("collapse",)}),
    )
    HEAD_FIELDS = {  # what the first fieldset shows per kind: a CI has a month, an INV or CN a customer
        InvoiceKind.CI: ("document", "partner", "month", "issue_date", "due_date", "issued_at", "related"),
        InvoiceKind.INV: ("document", "partner", "customer", "issue_date", "due_date", "issued_at", "related"),
        InvoiceKind.CN: ("document", "partner", "customer", "issue_date", "issued_at", "related"),
    }
    readonly_fields = ("document", "partner", "customer", "month", "issue_date", "due_date", "issued_at", "related",
                       "statement", "payment_summary", "pdf_file", "emailed_at")
    inlines = (ChildInvoiceInline, InvoiceLineInline, PaymentInline)
    actions = ("issue_drafts", "credit_whole_invoice", "regenerate_pdf", "refresh_payment_status")

    # permissions: nothing is added or edited here; only drafts can be deleted
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # the list's actions take the change permission; a page never saves an invoice
        return False if obj is not None else super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_issued:
            return False
        return super().has_delete_permission(request, obj)

    def changelist_view(self, request, extra_context=None):
        # the actions that write (issue drafts, credit whole invoices) run once per page they are sent from
        return super().changelist_view(request, {**(extra_context or {}), "once_token": new_token()})

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # issued invoices are never deleted; a draft from its page
        return actions

    def get_deleted_objects(self, objs, request):
        """A draft's lines go with it: the invoice-lines list being read only (no delete permission for
        anyone) must not stop a draft from being deleted. Issued invoices never get here."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        if all(not invoice.is_issued for invoice in objs):
            perms_needed.discard(InvoiceLine._meta.verbose_name)
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj):
        """Only a draft gets here (has_delete_permission); its deletion is audited like any money record."""
        before = {"kind": obj.kind, "issue_date": jsonable(obj.issue_date), "total": jsonable(obj.total),
                  "currency": obj.currency, "state": obj.state}
        object_id, label, partner = obj.pk, str(obj), obj.partner
        super().delete_model(request, obj)
        audit_record(actor=actor_of(request), action=AuditAction.INVOICE_DELETE_DRAFT, object_type=obj._meta.label,
                     object_id=object_id, object_repr=label, partner=partner, before=before)

    def get_queryset(self, request):
        return with_settlement(super().get_queryset(request).select_related("partner", "customer", "credits"))

    def get_search_results(self, request, queryset, search_term):
        queryset, distinct = super().get_search_results(request, queryset, search_term)
        if request.GET.get("app_label") == "invoicing" and request.GET.get("model_name") == "payment":
            queryset = queryset.issued().exclude(kind=InvoiceKind.CN)  # the payment page's autocomplete
        return queryset, distinct

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and obj.kind in self.HEAD_FIELDS:
            fieldsets[0] = (None, {"fields": self.HEAD_FIELDS[obj.kind]})
        return fieldsets

    def get_inlines(self, request, obj):
        if obj is not None and obj.kind != InvoiceKind.CI:
            return (InvoiceLineInline, PaymentInline) if obj.kind == InvoiceKind.INV else (InvoiceLineInline,)
        return super().get_inlines(request, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        extra_context = {**(extra_context or {}), **self._tool_context(request, obj)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _tool_context(self, request, invoice):
        may_act = invoice is not None and self._may_act(request)
        return {
            "invoice_tools": may_act,
            "can_download": invoice is not None and self.has_view_permission(request, invoice),
            "can_pay": may_act and _creditable(invoice),
            "can_credit": may_act and _creditable(invoice) and invoice.payment_status != PaymentStatus.VOID,
        }

    # list columns
    @admin.display(description="number", ordering="number")
    def number_shown(self, obj):
        if obj.number:
            return obj.number
        return format_html('<span class="quiet">draft #{}</span>', obj.pk)

    @admin.display(description="kind", ordering="kind")
    def kind_shown(self, obj):
        return format_html('<span title="{}">{}</span>', obj.get_kind_display(), obj.kind)

    @admin.display(description="total", ordering="total")
    def total_shown(self, obj):
        return money_html(obj.total, obj.currency)

    @admin.display(description="open on it")
    def open_shown(self, obj):
        """What is still to pay on this invoice itself; the account's balance is on the partner's page and,
        as it stood at issue, on a CI's statement."""
        remaining = open_amount(obj)
        if remaining is None:
            return EMPTY
        return money_html(remaining, obj.currency, strong=remaining > 0)

    @admin.display(description="payment status", ordering="payment_status")
    def status_shown(self, obj):
        return status_badge(obj)

    @admin.display(description="PDF")
    def pdf_link(self, obj):
        return format_html('<a href="{}" title="Download the PDF">PDF</a>', _invoice_url(obj, "pdf"))

    # page fields
    @admin.display(description="document")
    def document(self, obj):
        number = obj.number or f"draft #{obj.pk}"
        return format_html("<b>{}</b> {} {} <span class=\"quiet\">in {}</span>", number, obj.get_kind_display(),
                           status_badge(obj), obj.currency)

    @admin.display(description="corrections")
    def related(self, obj):
        parts = []
        if obj.credits_id:
            parts.append(format_html('credits <a href="{}">{}</a>', change_url(obj.credits), obj.credits))
        notes = list(obj.credit_notes.order_by("issue_date", "pk"))
        if notes:
            parts.append(format_html(
                "credited by {}", format_html_join(", ", '<a href="{}">{}</a> ({})', (
                    (change_url(n), n, money_text(n.total, n.currency)) for n in notes
                )),
            ))
        return format_html_join(" · ", "{}", ((p,) for p in parts)) if parts else EMPTY

    @admin.display(description="statement")
    def statement(self, obj):
        currency = obj.currency
        rows = []
        if obj.kind == InvoiceKind.CI:
            rows += [
                ("Previous balance", money_html(obj.previous_balance, currency)),
                ("Payments and credits since the previous CI", money_html(-obj.payments_and_credits, currency)),
                ("Individual invoices since the previous CI", money_html(obj.other_invoices, currency)),
            ]
        tax = f"Tax {obj.tax_rate.normalize():f}%"
        rows += [
            ("New charges", money_html(obj.subtotal, currency)),
            (tax, money_html(obj.tax_amount, currency)),
            ("Total of this invoice", money_html(obj.total, currency, strong=True)),
            ("Amount due", money_html(obj.amount_due, currency, strong=True)),
        ]
        body = format_html_join("", '<tr><td>{}</td><td style="text-align:right">{}</td></tr>', rows)
        return format_html('<table class="invoice-statement">{}</table>', body)

    @admin.display(description="payments")
    def payment_summary(self, obj):
        if not obj.is_issued:
            return format_html('{} <span class="quiet">{}</span>', status_badge(obj),
                               "a draft is not paid; issue it first")
        if obj.kind == InvoiceKind.CN:
            return format_html('{} <span class="quiet">{}</span>', status_badge(obj), "a credit note is not paid")
        return payment_summary_html(obj)

    @admin.display(description="stored PDF")
    def pdf_file(self, obj):
        if not obj.pdf:
            return format_html('<span class="quiet">{}</span>',
                               "none stored (downloads render it); “Regenerate PDF” stores one")
        return format_html("{} (version {})", obj.pdf.name, obj.pdf_version)

    # tools of the change page: admin views
    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name

        def wrap(view):
            return self.admin_site.admin_view(view)

        return [
            path("<path:object_id>/pdf/", wrap(self.pdf_view), name="{}_{}_pdf".format(*info)),
            path("<path:object_id>/xlsx/", wrap(self.xlsx_view), name="{}_{}_xlsx".format(*info)),
            path("<path:object_id>/payment/", wrap(self.payment_view), name="{}_{}_payment".format(*info)),
            path("<path:object_id>/credit-lines/", wrap(self.credit_lines_view),
                 name="{}_{}_credit_lines".format(*info)),
            *super().get_urls(),
        ]

    def _may_act(self, request) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")

    def _tool_invoice(self, request, object_id, *, change: bool = True) -> Invoice:
        """The invoice a tool works on. Recording a payment or a credit takes the change permission;
        downloading the PDF or the lines (change=False) only the view permission (an Auditor reads)."""
        if not (self._may_act(request) if change else self.has_view_permission(request)):
            raise PermissionDenied
        invoice = self.get_object(request, unquote(object_id))
        if invoice is None:
            raise Http404("no such invoice")
        return invoice

    def _tool_context_base(self, request, invoice, title):
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "subtitle": None,
            "original": invoice,
            "invoice": invoice,
            "change_url": _invoice_url(invoice),
        }

    @staticmethod
    def _file_label(invoice: Invoice) -> str:
        return invoice.number or f"draft-{invoice.pk}"

    def pdf_view(self, request, object_id):
        """The stored PDF if one was stored (by "Regenerate PDF"), else rendered now."""
        invoice = self._tool_invoice(request, object_id, change=False)
        try:
            content = invoice_pdf.invoice_pdf_content(invoice)
        except (ImportError, OSError) as exc:  # WeasyPrint without its libraries
            self.message_user(request, f"Cannot render the PDF here: {exc}", messages.ERROR)
            return HttpResponseRedirect(_invoice_url(invoice))
        response = HttpResponse(content, content_type="application/pdf")
        response["Content-Disposition"] = content_disposition_header(True, f"{self._file_label(invoice)}.pdf")
        return response

    def xlsx_view(self, request, object_id):
        """The invoice's lines with the invoice-lines report's columns."""
        invoice = self._tool_invoice(request, object_id, change=False)
        response = HttpResponse(invoice_lines_xlsx(invoice, title=self._file_label(invoice)), content_type=XLSX_TYPE)
        response["Content-Disposition"] = content_disposition_header(True, f"{self._file_label(invoice)}-lines.xlsx")
        return response

    def payment_view(self, request, object_id):
        """Record a payment against this invoice through payment_record; its refusals come back on the form.
        The form sent again (a double click) records it once."""
        return once_per_form(request, f"admin:payment:{object_id}", lambda: self._payment_view(request, object_id))

    def _payment_view(self, request, object_id):
        invoice = self._tool_invoice(request, object_id)
        data = request.POST if request.method == "POST" else None
        form = InvoicePaymentForm(data, invoice=invoice, initial={"paid_on": utc_date(timezone.now())})
        if form.is_bound and form.is_valid():
            try:
                with transaction.atomic():
                    payment = payment_record(
                        invoice=invoice, amount=form.cleaned_data["amount"], paid_on=form.cleaned_data["paid_on"],
                        reference=form.cleaned_data["reference"], actor=actor_of(request), source="admin",
                    )
                    self.log_addition(request, payment, [{"added": {}}])
            except (BillingError, ValidationError) as exc:
                form.add_error(None, _error_text(exc))
            except IntegrityError:
                form.add_error(None, "this payment (same date, amount and reference) is already recorded")
            else:
                invoice.refresh_from_db(fields=["payment_status"])
                self.message_user(request, f"Payment of {money_text(payment.amount, invoice.currency)} "
                                           f"{invoice.currency} recorded; {invoice} is "
                                           f"{invoice.get_payment_status_display().lower()}.", messages.SUCCESS)
                return HttpResponseRedirect(_invoice_url(invoice))
        credited = settlement(invoice)[1]  # what its credit notes took off
        context = {
            **self._tool_context_base(request, invoice, f"Record a payment against {invoice}"),
            "form": form,
            "total_text": money_text(invoice.total, invoice.currency),
            "open_text": money_text(open_amount(invoice), invoice.currency),  # its own remainder (4.7)
            "credited_text": money_text(credited, invoice.currency) if credited else None,
            "payments": [(p, money_text(p.amount, invoice.currency))
                         for p in invoice.payments.order_by("paid_on", "pk")],
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/invoicing/invoice/record_payment.html", context)

    def credit_lines_view(self, request, object_id):
        """A credit note for the lines ticked here (credit_note_issue with lines=...), once per form sent."""
        return once_per_form(request, f"admin:credit:{object_id}",
                             lambda: self._credit_lines_view(request, object_id))

    def _credit_lines_view(self, request, object_id):
        invoice = self._tool_invoice(request, object_id)
        data = request.POST if request.method == "POST" else None
        form = CreditLinesForm(data, invoice=invoice)
        if form.is_bound and form.is_valid():
            chosen = form.cleaned_data["lines"]  # ids: credit_note_issue judges them (lines_to_credit)
            try:
                with transaction.atomic():
                    note = credit_note_issue(invoice=invoice, lines=chosen, actor=actor_of(request),
                                             reason=form.cleaned_data["reason"])
                    self.log_change(request, invoice, f"Credited {len(chosen)} line(s) by {note.number}")
            except (BillingError, ValidationError) as exc:
                form.add_error(None, _error_text(exc))
            else:
                self.message_user(request, format_html(
                    'Credit note <a href="{}">{}</a> issued for {} line(s) of {}: {} {}.', change_url(note),
                    note.number, len(chosen), invoice, money_text(note.total, note.currency), note.currency,
                ), messages.SUCCESS)
                return HttpResponseRedirect(_invoice_url(invoice))
        credited = credited_lines(invoice)
        offered = set(form.offered.values_list("pk", flat=True))
        chosen_pks = {str(v) for v in (form["lines"].value() or [])}
        rows = []
        for line in invoice.lines.select_related("child__customer", "service", "customer").order_by("position", "pk"):
            if line.line_type == LineType.TAX:
                continue
            rows.append({"line": line, "credited_by": credited.get(line.pk), "offered": line.pk in offered,
                         "checked": str(line.pk) in chosen_pks,
                         "quantity": quantize_quantity(line.quantity) if line.quantity is not None else None,
                         "unit_price": shown_price(line.unit_price, invoice.currency),
                         "amount": money_text(line.amount, invoice.currency)})
        context = {
            **self._tool_context_base(request, invoice, f"Credit chosen lines of {invoice}"),
            "form": form,
            "rows": rows,
            "creditable": _creditable(invoice),
            "tax_note": (f"Tax of {invoice.tax_rate.normalize():f}% is added on the taxable lines chosen."
                         if invoice.tax_rate > 0 else ""),
        }
        return TemplateResponse(request, "admin/invoicing/invoice/credit_lines.html", context)

    # actions
    @admin.action(permissions=["change"], description="Issue selected drafts")
    def issue_drafts(self, request, queryset):
        """Number and issue each selected draft as it stands (invoice_issue_draft), oldest first so
        each CI's statement sees the invoices before it; each is its own transaction. Sent twice from one
        page (a double click), it issues once."""
        return once_per_action(request, "admin:issue-drafts", lambda: self._issue_drafts(request, queryset))

    def _issue_drafts(self, request, queryset):
        issued, failed = [], []
        actor = actor_of(request)
        for invoice in queryset.select_related("partner").order_by("issue_date", "kind", "pk"):
            if invoice.is_issued:
                failed.append(f"{invoice}: already issued")
                continue
            try:
                done = invoice_issue_draft(invoice=invoice, actor=actor)
            except (BillingError, ValidationError) as exc:
                failed.append(f"{invoice}: {_error_text(exc)}")
            else:
                issued.append(done.number)
                self.log_change(request, done, f"Issued as {done.number}")
        extra = f": {', '.join(issued[:10])}{', ...' if len(issued) > 10 else ''}" if issued else ""
        _report(request, self, len(issued), "issued", failed, extra)

    @admin.action(permissions=["change"], description="Credit note for the whole invoice")
    def credit_whole_invoice(self, request, queryset):
        """After a confirmation page with a reason: a credit note negating every line and the tax of
        each selected issued invoice (credit_note_issue with lines=None), voiding it."""
        invoices = list(queryset.select_related("partner").order_by("issue_date", "pk"))
        reason = request.POST.get("reason", "").strip()
        if request.POST.get("confirm") != "yes" or not reason:
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Credit whole invoices",
                "subtitle": None,
                "invoices": [{"invoice": i, "ok": _creditable(i) and i.payment_status != PaymentStatus.VOID}
                             for i in invoices],
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "action": "credit_whole_invoice",
                "reason": reason,
                "reason_missing": request.POST.get("confirm") == "yes" and not reason,
                "once_token": request.POST.get("once_token") or new_token(),
            }
            return TemplateResponse(request, "admin/invoicing/invoice/credit_confirm.html", context)
        # sent twice (a double click on the confirmation page), credited once
        return once_per_action(request, "admin:credit-whole", lambda: self._credit_whole(request, invoices, reason))

    def _credit_whole(self, request, invoices, reason):
        notes, failed = [], []
        actor = actor_of(request)
        for invoice in invoices:
            try:
                note = credit_note_issue(invoice=invoice, lines=None, actor=actor, reason=reason)
            except (BillingError, ValidationError) as exc:
                failed.append(f"{invoice}: {_error_text(exc)}")
            else:
                notes.append(f"{invoice} by {note.number}")
                self.log_change(request, invoice, f"Credited in full by {note.number}: {reason}")
        extra = f" ({', '.join(notes[:10])}{', ...' if len(notes) > 10 else ''})" if notes else ""
        _report(request, self, len(notes), "credited in full", failed, extra)

    @admin.action(permissions=["change"], description="Regenerate PDF")
    def regenerate_pdf(self, request, queryset):
        """Render each selected invoice's PDF again and store it as its next version (the file and
        its version are the two things an issued invoice may still change)."""
        done, failed = 0, []
        for invoice in queryset.order_by("pk"):
            try:
                content = invoice_pdf.render_invoice_pdf(invoice)
            except (ImportError, OSError) as exc:
                failed.append(f"{invoice}: cannot render ({exc})")
                continue
            try:
                with transaction.atomic():
                    locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
                    locked.pdf_version += 1
                    locked.pdf.save(f"{self._file_label(locked)}-v{locked.pdf_version}.pdf", ContentFile(content),
                                    save=False)
                    locked.save(update_fields=["pdf", "pdf_version"])
                    self.log_change(request, locked, f"PDF regenerated (version {locked.pdf_version})")
            except (ValidationError, OSError) as exc:
                failed.append(f"{invoice}: {_error_text(exc)}")
            else:
                done += 1
        _report(request, self, done, "PDF(s) regenerated", failed)

    @admin.action(permissions=["change"], description="Refresh payment status")
    def refresh_payment_status(self, request, queryset):
        """Judge each selected issued invoice's payment status again from its payments, credit notes
        and due date (invoice_status_refresh)."""
        done, changed, failed = 0, 0, []
        for invoice in queryset.order_by("pk"):
            if not invoice.is_issued:
                failed.append(f"{invoice}: a draft has no payment status yet")
                continue
            before = invoice.payment_status
            try:
                invoice_status_refresh(invoice)
            except ValidationError as exc:
                failed.append(f"{invoice}: {_error_text(exc)}")
                continue
            done += 1
            if invoice.payment_status != before:
                changed += 1
                self.log_change(request, invoice, f"Payment status {before} -> {invoice.payment_status}")
        _report(request, self, done, "refreshed", failed, f", {changed} changed")
