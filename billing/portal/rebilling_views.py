"""The portal's rebilling pages (billing-rules 12, docs/rebilling.md), for the partner's Owner and Billing users:
Price lists (what the partner charges its own customers), Customer invoices (its invoices to them: files, drafts
issued, credit notes), a customer's Account (transactions, payments, billing details), Rebilling settings and
Margins. Every lookup goes through request.partner: another partner's customer, service, item, price, invoice or
payment is a 404. The writes are the services' (invoicing.rebilling.*), which check and audit them."""

from __future__ import annotations

import io
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Prefetch
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.http import content_disposition_header, urlencode
from django.views.decorators.http import require_POST

from billing.core.idempotency import once_per_form
from billing.core.money import money_sum
from billing.core.periods import Period, PeriodError
from billing.core.reporting import write_csv
from billing.portal.access import BILLING, portal_view
from billing.portal.rebilling_forms import (
    CustomerBillingProfileForm,
    CustomerPaymentForm,
    ReasonForm,
    RebillingProfileForm,
    ResaleItemForm,
    ResalePriceForm,
)
from billing.portal.views import _actor, _page, _today
from invoicing.choices import InvoiceState, LineType
from invoicing.rebilling.accounts import (
    customer_balance,
    customer_payment_errors,
    customer_payment_record,
    customer_payment_void,
    running_balances,
)
from invoicing.rebilling.choices import CustomerInvoiceKind, ResaleMode, UnbilledReason
from invoicing.rebilling.invoices import customer_credit_note_issue, customer_invoice_issue_draft
from invoicing.rebilling.margins import customer_margins, margin_totals, unbilled_counts
from invoicing.rebilling.models import (
    CustomerBillingProfile,
    CustomerInvoice,
    CustomerPayment,
    CustomerTransaction,
    RebillingProfile,
    ResaleItem,
    ResalePrice,
)
from invoicing.rebilling.pdf import customer_invoice_pdf_content
from invoicing.rebilling.pricing import AMOUNT_FIELDS
from invoicing.rebilling.profiles import customer_billing_profile_save, rebilling_profile_save
from invoicing.rebilling.reports import customer_invoice_xlsx
from invoicing.rebilling.selectors import (
    customers_with_own_prices,
    price_list_rows,
    resale_items,
    resale_price_history,
    resale_prices_scheduled,
)
from invoicing.rebilling.services import resale_item_save, resale_price_cancel, resale_price_set
from invoicing.rebilling.text import percent_text, price_text, unit_of
from invoicing.services.errors import BillingError
from invoicing.templatetags.invoice_format import format_money
from partners.models import Customer, Service


def _list_customer(request, raw: str | None) -> Customer | None:
    """The list shown: ?customer=ID, one of the partner's customers (another partner's: 404); blank: the default
    list."""
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise Http404("no such customer")
    return get_object_or_404(Customer, pk=int(raw), partner=request.partner)


def _list_url(customer: Customer | None) -> str:
    url = reverse("portal:price_lists")
    return f"{url}?customer={customer.pk}" if customer is not None else url


def _targets(partner, today) -> dict:
    """{"service:ID" or "item:ID": (label, object)}: the partner's services not ended before today, its own items."""
    services = (Service.objects.filter(partner=partner).exclude(end_date__lt=today).select_related("customer")
                .order_by("name", "code"))
    targets = {f"service:{s.pk}": (f"{s.name} ({s.scope_label})", s) for s in services}
    targets.update({f"item:{i.pk}": (f"{i.name} (your own item)", i) for i in resale_items(partner.pk)})
    return targets


@portal_view(roles=BILLING)
def price_lists(request):
    """The default list or one customer's list in force today, the form that sets a price, the own items and the
    scheduled changes. A price set with the same form twice is set once (billing/core/idempotency.py)."""
    return once_per_form(request, "portal:price_lists", lambda: _price_lists(request))


def _price_lists(request):
    partner, today = request.partner, _today()
    customers = partner.customers.order_by("name")
    targets = _targets(partner, today)
    customer = _list_customer(request, request.GET.get("customer"))
    form = ResalePriceForm(request.POST or None, customers=customers, targets=targets,
                           initial=_initial(request, customer, targets, today))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        target = data["target"]
        try:
            price, outcome = resale_price_set(
                partner=partner, customer=data["customer"], mode=data["mode"], effective_from=data["effective_from"],
                actor=_actor(request), source="portal", **{"item" if isinstance(target, ResaleItem) else "service":
                                                           target}, **form.amounts())
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                field = "target" if field == "service" else field
                form.add_error(field if field in form.fields else None, errors)
        else:
            where = data["customer"].name if data["customer"] else "the default list"
            if outcome == "unchanged":
                messages.info(request, f"{target.name}: {where} already has this price from "
                                       f"{_day(data['effective_from'])}; nothing changed.")
            else:
                messages.success(request, f"{target.name}: price {'set' if outcome == 'created' else 'changed'} "
                                          f"for {where} from {_day(price.effective_from)}.")
            return redirect(_list_url(data["customer"]))
        customer = data.get("customer")
    own = customers_with_own_prices(partner.pk)
    return _page(request, "prices", "price_lists.html", customer=customer, today=today,
                 rows=price_list_rows(partner, customer, today), form=form, item_form=ResaleItemForm(),
                 lists=[(c, own.get(c.pk, 0)) for c in customers], items=resale_items(partner.pk),
                 scheduled=resale_prices_scheduled(partner.pk, today),
                 history=[(p, price_text(p, partner.currency, unit_of(p))) for p in
                          resale_price_history(partner.pk, customer.pk if customer else None)],
                 currency=partner.currency)


def _initial(request, customer, targets, today) -> dict:
    """The form as a Change link opens it (?target=service:ID): the list shown, that service or item, and the
    price of the list in force today when the list has one of its own."""
    initial = {"customer": customer, "effective_from": today}
    key = request.GET.get("target", "")
    if key not in targets:
        return initial
    initial["target"] = key
    kind, _, pk = key.partition(":")
    own = (ResalePrice.objects.filter(partner=request.partner, customer=customer, **{f"{kind}_id": int(pk)},
                                      effective_from__lte=today).order_by("-effective_from").first())
    if own is not None and own.mode != ResaleMode.DEFAULT:
        initial.update({"mode": own.mode, "tier_mode": own.tier_mode,
                        **{name: _typed(getattr(own, name)) for name in AMOUNT_FIELDS}})
    return initial


def _typed(value):
    """A stored amount as a person types it: 32.0000 -> 32.00, 0.1250 -> 0.125."""
    if not isinstance(value, Decimal):
        return value
    cents = value.quantize(Decimal("0.01"))
    return cents if cents == value else value.normalize()


def _day(day) -> str:
    return f"{day.day} {day:%b %Y}"


@require_POST
@portal_view(roles=BILLING)
def resale_price_cancel_view(request):
    """Cancel a price set for a later day (the partner's own: another's is a 404)."""
    raw = request.POST.get("price", "")
    if not (raw.isascii() and raw.isdigit()):
        raise Http404("no such price")
    price = get_object_or_404(ResalePrice.objects.select_related("partner", "customer", "service", "item"),
                              pk=int(raw), partner=request.partner)
    try:
        resale_price_cancel(price=price, today=_today(), actor=_actor(request))
    except ValidationError as exc:
        messages.error(request, f"Not cancelled: {'; '.join(exc.messages)}.")
    else:
        messages.success(request, f"{price.service or price.item}: the price from "
                                  f"{_day(price.effective_from)} is cancelled.")
    return redirect(_list_url(price.customer))


@require_POST
@portal_view(roles=BILLING)
def resale_item_add(request):
    """Add an own item (or rename the one with this code); once per form shown."""
    return once_per_form(request, "portal:resale_item_add", lambda: _resale_item_add(request))


def _resale_item_add(request):
    form = ResaleItemForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(f"{form.fields[f].label}: {' '.join(e)}" if f in form.fields else " ".join(e)
                             for f, e in form.errors.items())
        messages.error(request, f"The item was not added: {problems}")
        return redirect(reverse("portal:price_lists") + "#items")
    try:
        item = resale_item_save(partner=request.partner, actor=_actor(request), **{
            name: form.cleaned_data[name] for name in ("code", "name", "unit", "meter")})
    except ValidationError as exc:
        messages.error(request, f"The item was not added: {'; '.join(exc.messages)}")
    else:
        messages.success(request, f"Own item {item.name} ({item.code}) saved: set its price below.")
    return redirect(reverse("portal:price_lists") + "#items")


# --- customer invoices (billing-rules 12.5, 12.7) ---------------------------------------------------------------
PER_PAGE = 25
INVOICE_STATES = {"draft": "Drafts", "issued": "Issued", "credited": "Credited"}
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _invoice(request, pk: int, *rel) -> CustomerInvoice:
    """One of the partner's customer invoices (another partner's: 404)."""
    return get_object_or_404(CustomerInvoice.objects.select_related("partner", "customer", *rel), pk=pk,
                             partner=request.partner)


def _month_filter(raw: str) -> tuple[Period | None, str]:
    """?month=YYYY-MM: the month, or None and why it was not read."""
    if not raw:
        return None, ""
    try:
        return Period.parse(raw), ""
    except PeriodError as exc:
        return None, f"Month: {exc}; showing every month."


def _credit_notes():
    """An invoice's issued credit notes, oldest first (an invoice may be credited a part at a time)."""
    return Prefetch("credit_notes", to_attr="notes", queryset=CustomerInvoice.objects.filter(
        state=InvoiceState.ISSUED).only("pk", "number", "total", "credits_id").order_by("issue_date", "pk"))


def _credited(invoice: CustomerInvoice) -> None:
    """Set what its credit notes took back (`credited`, positive) and whether they took it all (`in_full`)."""
    invoice.credited = -money_sum(note.total for note in invoice.notes)
    invoice.in_full = bool(invoice.notes) and invoice.credited >= invoice.total


def _invoice_rows(partner, customer, month, state):
    """The partner's customer invoices and credit notes (drafts too), newest first, each with its credit notes
    (`notes`) and, for a credit note, the invoice it credits."""
    rows = (CustomerInvoice.objects.filter(partner=partner).select_related("customer", "credits")
            .prefetch_related(_credit_notes()).order_by("-issue_date", "-id"))
    if customer is not None:
        rows = rows.filter(customer=customer)
    if month is not None:
        rows = rows.filter(month=str(month))
    if state == "draft":
        rows = rows.filter(state=InvoiceState.DRAFT)
    elif state == "issued":
        rows = rows.filter(state=InvoiceState.ISSUED)
    elif state == "credited":
        rows = rows.filter(Exists(CustomerInvoice.objects.filter(credits=OuterRef("pk"), state=InvoiceState.ISSUED)))
    return rows


@portal_view(roles=BILLING)
def customer_invoices(request):
    """The partner's invoices to its customers: filter by customer, billing month and state, a page at a time,
    each with its files and what can be done with it (issue a draft, credit, record a payment)."""
    partner = request.partner
    customer = _list_customer(request, request.GET.get("customer"))
    month, month_error = _month_filter(request.GET.get("month", "").strip())
    state = request.GET.get("state", "")
    state = state if state in INVOICE_STATES else ""
    page = Paginator(_invoice_rows(partner, customer, month, state), PER_PAGE).get_page(request.GET.get("page"))
    for invoice in page.object_list:
        # the amount due printed on it, when Customer Billing was on when it was issued (billing-rules 12.8)
        invoice.amount_due = Decimal(invoice.account["amount_due"]) if invoice.account else None
        _credited(invoice)
    chosen = {"customer": customer.pk if customer else "", "month": str(month) if month else "", "state": state}
    query = urlencode({k: v for k, v in chosen.items() if v})
    return _page(request, "billing", "customer_invoices.html", page=page, invoices=page.object_list,
                 customers=partner.customers.order_by("name"), customer=customer, month=month, state=state,
                 states=INVOICE_STATES, month_error=month_error, query=query, filtered=bool(query),
                 profile=RebillingProfile.objects.filter(partner=partner).first(), currency=partner.currency)


def _back_to_list(request):
    """The list as it was shown (its filters and page, sent back by the form as `back`)."""
    back = QueryDict(request.POST.get("back", ""))
    query = urlencode({k: back[k] for k in ("customer", "month", "state", "page") if back.get(k)})
    return redirect(reverse("portal:customer_invoices") + (f"?{query}" if query else ""))


def _file_name(invoice: CustomerInvoice) -> str:
    return invoice.number or f"draft-{invoice.customer.slug}-{invoice.month}"


@portal_view(roles=BILLING)
def customer_invoice_pdf(request, pk: int):
    invoice = _invoice(request, pk)
    try:
        content = customer_invoice_pdf_content(invoice)
    except (ImportError, OSError) as exc:  # WeasyPrint without its libraries
        messages.error(request, f"The PDF cannot be produced right now ({exc}); try again later.")
        return redirect("portal:customer_invoices")
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(True, f"{_file_name(invoice)}.pdf")
    return response


@portal_view(roles=BILLING)
def customer_invoice_xlsx_download(request, pk: int):
    invoice = _invoice(request, pk)
    response = HttpResponse(customer_invoice_xlsx(invoice), content_type=XLSX_TYPE)
    response["Content-Disposition"] = content_disposition_header(True, f"{_file_name(invoice)}-lines.xlsx")
    return response


@require_POST
@portal_view(roles=BILLING)
def customer_invoice_issue(request, pk: int):
    """Issue a draft the partner reviewed, as it stands (numbered now; the earlier drafts first)."""
    invoice = _invoice(request, pk)
    try:
        issued = customer_invoice_issue_draft(invoice=invoice, actor=_actor(request))
    except (BillingError, RebillingProfile.DoesNotExist) as exc:
        reason = exc if isinstance(exc, BillingError) else "set up rebilling first (Rebilling settings)"
        messages.error(request, f"Not issued: {reason}.")
    else:
        messages.success(request, f"Issued {issued.number} to {issued.customer.name}.")
    return _back_to_list(request)


@portal_view(roles=BILLING)
def customer_invoice_credit(request, pk: int):
    """Credit an issued invoice (billing-rules 12.7): a page that says what will be credited (what earlier credit
    notes left) and asks why, then the credit note. Once per form shown."""
    invoice = get_object_or_404(CustomerInvoice.objects.select_related("partner", "customer")
                                .prefetch_related(_credit_notes()), pk=pk, partner=request.partner)
    _credited(invoice)
    refusal = _credit_refusal(invoice)
    if refusal:
        messages.error(request, f"{invoice}: {refusal}.")
        return redirect("portal:customer_invoices")
    return once_per_form(request, "portal:customer_invoice_credit", lambda: _credit(request, invoice))


def _credit_refusal(invoice: CustomerInvoice) -> str:
    if not invoice.is_issued:
        return "a draft is not credited: it is issued, or left as it is"
    if invoice.is_credit_note:
        return "a credit note is never credited"
    if invoice.in_full:
        return f"already credited in full by {', '.join(note.number for note in invoice.notes)}"
    return ""


def _credit(request, invoice):
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            note = customer_credit_note_issue(invoice=invoice, actor=_actor(request),
                                              reason=form.cleaned_data["reason"].strip())
        except BillingError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Credit note {note.number} issued for {invoice.number} "
                                      f"({format_money(note.total, note.currency)}).")
            return redirect(reverse("portal:customer_invoices") + f"?customer={invoice.customer_id}")
    lines = invoice.lines.exclude(line_type=LineType.TAX).order_by("position", "pk")
    return _page(request, "billing", "customer_invoice_credit.html", invoice=invoice, form=form, lines=lines,
                 remaining=invoice.total - invoice.credited, tax_rate=percent_text(invoice.tax_rate),
                 currency=invoice.currency)


# --- a customer's account (billing-rules 12.10) -----------------------------------------------------------------
def _account_customer(request, pk: int) -> Customer:
    return get_object_or_404(Customer.objects.select_related("partner"), pk=pk, partner=request.partner)


def _account_url(customer, anchor: str = "") -> str:
    return reverse("portal:customer_account", args=[customer.pk]) + (f"#{anchor}" if anchor else "")


def _transactions(customer):
    """The customer's transactions, newest first, each with the balance after it (`running_balances`: a window
    sum in the database over date, then id, the order they count in), so a page never reads the rows before it."""
    return running_balances(CustomerTransaction.objects.filter(partner_id=customer.partner_id, customer=customer)
                            ).order_by("-date", "-id")


def _payment_form(request, customer, data=None, prefill: CustomerInvoice | None = None) -> CustomerPaymentForm:
    partner = request.partner
    invoices = (CustomerInvoice.objects.issued().filter(partner=partner, customer=customer,
                                                        kind=CustomerInvoiceKind.INVOICE)
                .order_by("-issue_date", "-id"))
    initial = {"customer": customer, "received_on": _today()}
    if prefill is not None:
        initial.update(invoice=prefill, amount=prefill.total, reference=prefill.number)
    return CustomerPaymentForm(data, customers=partner.customers.order_by("name"), invoices=invoices,
                               currency=partner.currency, initial=initial)


def _account_page(request, customer, *, payment_form=None, profile_form=None):
    partner = request.partner
    today = _today()
    prefill = None
    raw = request.GET.get("invoice", "")
    if payment_form is None and raw:
        if not (raw.isascii() and raw.isdigit()):
            raise Http404("no such invoice")
        prefill = get_object_or_404(CustomerInvoice.objects.issued(), pk=int(raw), partner=partner, customer=customer,
                                    kind=CustomerInvoiceKind.INVOICE)
    billing = CustomerBillingProfile.objects.filter(customer=customer).first()
    transactions = Paginator(_transactions(customer), PER_PAGE).get_page(request.GET.get("page"))
    payments = Paginator(CustomerPayment.objects.filter(partner=partner, customer=customer).select_related("invoice")
                         .order_by("-received_on", "-id"), PER_PAGE).get_page(request.GET.get("payments"))
    return _page(request, "customers", "customer_account.html", customer=customer, today=today,
                 balance=customer_balance(customer.pk, today), transactions=transactions, payments=payments,
                 payment_form=payment_form or _payment_form(request, customer, prefill=prefill), prefill=prefill,
                 profile_form=profile_form or CustomerBillingProfileForm(
                     instance=billing or CustomerBillingProfile(customer=customer)),
                 billing=billing, tax_rate=percent_text(billing.tax_rate if billing else Decimal(0)),
                 currency=partner.currency)


@portal_view(roles=BILLING)
def customer_account(request, pk: int):
    """A customer's account with the partner: its balance today, its transactions with the balance after each,
    its payments (void one), a form to record one, and its billing details."""
    return _account_page(request, _account_customer(request, pk))


@require_POST
@portal_view(roles=BILLING)
def customer_payment_add(request, pk: int):
    """Record a payment (once per form shown): checked by the service, whose refusals show on the form."""
    customer = _account_customer(request, pk)
    return once_per_form(request, "portal:customer_payment", lambda: _payment_add(request, customer))


def _payment_add(request, customer):
    form = _payment_form(request, customer, data=request.POST)
    if form.is_valid():
        data = form.cleaned_data
        payment = CustomerPayment(
            partner=request.partner, customer=data["customer"], invoice=data["invoice"],
            received_on=data["received_on"], amount=data["amount"], currency=request.partner.currency,
            reference=data["reference"].strip(), method=data["method"].strip(), note=data["note"].strip(),
            source="portal")
        errors = customer_payment_errors(payment, today=_today())
        if errors:
            form.add_service_errors(errors)
        else:
            try:
                payment = customer_payment_record(payment=payment, actor=_actor(request))
            except BillingError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Payment of {format_money(payment.amount, payment.currency)} from "
                                          f"{payment.customer.name} recorded"
                                          + (f" against {payment.invoice.number}" if payment.invoice_id else "")
                                          + ".")
                return redirect(_account_url(payment.customer, "payments"))
    return _account_page(request, customer, payment_form=form)


@require_POST
@portal_view(roles=BILLING)
def customer_payment_void_view(request, pk: int, payment_pk: int):
    """Void a mistaken payment, saying why: its amount goes back on the account today."""
    customer = _account_customer(request, pk)
    payment = get_object_or_404(CustomerPayment.objects.select_related("invoice"), pk=payment_pk,
                                partner=request.partner, customer=customer)
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        customer_payment_void(payment=payment, actor=_actor(request), reason=reason)
    except BillingError as exc:
        messages.error(request, f"Not voided: {exc}.")
    else:
        messages.success(request, f"The payment of {format_money(payment.amount, payment.currency)} of "
                                  f"{payment.received_on:%-d %b %Y} is voided: the amount is back on the account.")
    return redirect(_account_url(customer, "payments"))


@require_POST
@portal_view(roles=BILLING)
def customer_billing_details(request, pk: int):
    """Save the customer's billing details (audited): later invoices print them; issued ones keep theirs."""
    customer = _account_customer(request, pk)
    billing = CustomerBillingProfile.objects.filter(customer=customer).first()
    form = CustomerBillingProfileForm(request.POST, instance=billing or CustomerBillingProfile(customer=customer))
    if form.is_valid():
        try:
            customer_billing_profile_save(customer=customer, data=form.cleaned_data, actor=_actor(request))
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"{customer.name}'s billing details are saved: the next invoices print them.")
            return redirect(_account_url(customer, "billing-details"))
    return _account_page(request, customer, profile_form=form)


def _form_errors(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


# --- rebilling settings (billing-rules 12.4) ---------------------------------------------------------------------
@portal_view(roles=BILLING)
def rebilling_settings(request):
    """The partner's rebilling profile: on or off, numbering, the issuer printed, delivery and Customer
    Billing. Saved through the audited service; a prefix another partner uses is an error of its field."""
    partner = request.partner
    profile = RebillingProfile.objects.filter(partner=partner).first()
    form = RebillingProfileForm(request.POST or None, request.FILES or None,
                                instance=profile or RebillingProfile(partner=partner))
    if request.method == "POST" and form.is_valid():
        try:
            rebilling_profile_save(partner=partner, data=form.cleaned_data, actor=_actor(request))
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, "Rebilling settings saved." if profile else "Rebilling is set up.")
            return redirect("portal:rebilling_settings")
    return _page(request, "billing", "rebilling_settings.html", form=form, profile=profile)


# --- margins ---------------------------------------------------------------------------------------------------
def _months(raw_first: str, raw_last: str = "") -> tuple[Period, Period]:
    first = Period.parse(raw_first)
    last = Period.parse(raw_last) if raw_last else first
    if last < first:
        raise PeriodError(f"{last} is before {first}")
    return first, last


@portal_view(roles=BILLING)
def margins(request):
    """Per customer and billing month: what the partner charged, what it pays us for the same, and the margin
    (invoicing.rebilling.margins); ?month=YYYY-MM, and ?to=YYYY-MM for a range."""
    partner = request.partner
    default = Period.of(_today())
    error = ""
    try:
        first, last = _months(request.GET.get("month", "").strip() or str(default), request.GET.get("to", "").strip())
    except PeriodError as exc:
        error, (first, last) = f"{exc}; showing {default}.", (default, default)
    rows = customer_margins(partner.pk, first, last)
    unbilled = unbilled_counts(partner.pk, first, last)
    span = str(first) if first == last else f"{first}..{last}"
    return _page(request, "billing", "margins.html", rows=rows, totals=margin_totals(rows), first=first, last=last,
                 span=span, error=error, unbilled=unbilled, unbilled_total=sum(unbilled.values()),
                 unbilled_reasons=[(UnbilledReason(k).label, n) for k, n in sorted(unbilled.items())],
                 currency=partner.currency, previous=_neighbour(first.previous), next=_neighbour(last.next))


def _neighbour(step) -> Period | None:
    """The month before or after a page's, or None at the ends of the calendar (0001-01, 9999-12): no link."""
    try:
        return step()
    except PeriodError:
        return None


MARGIN_COLUMNS = ("month", "customer", "customer_name", "charged", "cost", "margin", "margin_percent", "currency")


@portal_view(roles=BILLING)
def margins_csv(request, span: str):
    """The Margin page as CSV: /portal/margins/2026-05.csv, or a range /portal/margins/2026-01..2026-06.csv."""
    try:
        first, last = _months(*span.split("..", 1))
    except (PeriodError, TypeError) as exc:
        raise Http404(str(exc)) from exc
    currency = request.partner.currency
    stream = io.StringIO()
    write_csv(MARGIN_COLUMNS, ({
        "month": row.month, "customer": row.customer_slug, "customer_name": row.customer_name,
        "charged": row.charged, "cost": row.cost, "margin": row.margin, "margin_percent": row.margin_percent,
        "currency": currency} for row in customer_margins(request.partner.pk, first, last)), stream)
    response = HttpResponse(stream.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, f"margins-{request.partner.slug}-{span}.csv")
    return response
