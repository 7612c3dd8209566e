"""Partner portal pages. Every query goes through request.partner: another partner's object is a 404."""

from __future__ import annotations

import io

from django.contrib import messages
from django.contrib.auth.views import (
    LoginView,
    LogoutView,
    PasswordResetCompleteView,
    PasswordResetConfirmView,
    PasswordResetDoneView,
    PasswordResetView,
)
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST
from django_ratelimit.decorators import ratelimit

from billing.core.actor import Actor
from billing.core.idempotency import TOKEN_FIELD, once, once_per_form
from billing.core.periods import Period, PeriodError, utc_date
from billing.core.reporting import ReportOptions, write_csv, write_xlsx
from billing.portal.access import BILLING, OWNER, portal_view
from billing.portal.audit import audit_section
from billing.portal.forms import (
    AddSeatsForm,
    ApiKeyForm,
    AssignSeatForm,
    PeriodForm,
    PortalPasswordResetForm,
    SeatCapForm,
)
from billing.portal.meters import billed_on, customer_meters, forecast_rows, partner_meters
from billing.portal.selectors import seat_chart, seat_offers, seat_services
from invoicing import pdf as invoice_pdf
from invoicing.forecast import next_ci_forecast
from invoicing.models import Invoice, InvoiceState, PaymentStatus
from invoicing.reports import InvoiceLinesReport, PeriodsReport, line_row
from invoicing.selectors import open_amount, partner_balance, partner_overdue, with_settlement
from metering.reports import StatementsReport, seat_months
from partners.api_keys import api_key_create, api_key_revoke
from partners.models import ApiKey, Customer, PartnerUser, SeatAssignment, SeatPurchase
from partners.seating import SeatRuleError
from partners.services import (
    customer_update,
    partner_user_access_reset,
    seat_assign,
    seat_purchase_create,
    seat_unassign,
)

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _today():
    return utc_date(timezone.now())


def _actor(request) -> Actor:
    return Actor.of_user(request.user, label=f"{request.user.get_username()} (portal)")


def _page(request, section: str, template: str, **context):
    partner_user = request.partner_user
    context.setdefault("billed", billed_on(request.partner.pk, _today()))  # what the partner is billed on: its nav
    context.update(
        partner=request.partner, partner_user=partner_user, section=section,
        can_bill=partner_user.role in BILLING, is_owner=partner_user.role in OWNER,
    )
    return render(request, f"portal/{template}", context)


# --- sign in ------------------------------------------------------------------------------------

class PortalLoginView(LoginView):
    template_name = "portal/login.html"
    redirect_authenticated_user = True
    next_page = "/portal/"


class PortalLogoutView(LogoutView):
    next_page = "/portal/login/"


# --- password reset by email (Django's own views, the portal's templates; docs/security.md) ------------------

RESET_RATE = "5/h"  # reset requests per address, and per email address asked for, in an hour


@method_decorator(ratelimit(key="ip", rate=RESET_RATE, method="POST", block=True), name="post")
@method_decorator(ratelimit(key="post:email", rate=RESET_RATE, method="POST", block=True), name="post")
class PortalPasswordResetView(PasswordResetView):
    """Ask for a reset link by email. The answer is the same whether or not the address belongs to someone (no
    way to learn who has an account); requests are rate-limited per client address and per email address."""

    template_name = "portal/password_reset.html"
    form_class = PortalPasswordResetForm  # portal users only: no link for a staff account
    email_template_name = "portal/password_reset_email.txt"
    subject_template_name = "portal/password_reset_subject.txt"
    success_url = reverse_lazy("portal:password_reset_done")


class PortalPasswordResetDoneView(PasswordResetDoneView):
    template_name = "portal/password_reset_done.html"


class PortalPasswordResetConfirmView(PasswordResetConfirmView):
    template_name = "portal/password_reset_confirm.html"
    success_url = reverse_lazy("portal:password_reset_complete")


class PortalPasswordResetCompleteView(PasswordResetCompleteView):
    template_name = "portal/password_reset_complete.html"


# --- dashboard ----------------------------------------------------------------------------------

@portal_view()
def dashboard(request):
    """The meters the partner is billed on, this month so far; the seat chart for seat partners only; the
    forecast of the next CI for those who see billing."""
    today = _today()
    meters = partner_meters(request.partner, today)
    main = meters.seats[0] if meters.seats else None
    chart = seat_chart(partner_id=request.partner.pk, service=main.service, today=today) if main else None
    forecast = next_ci_forecast(request.partner, today) if request.partner_user.role in BILLING else None
    highlights = meters.highlights(money=request.partner_user.role in BILLING)[:4]
    return _page(request, "dashboard", "dashboard.html", meters=meters, billed=meters.billed, main=main,
                 highlights=highlights, chart=chart, forecast=forecast, today=today)


# --- billing ------------------------------------------------------------------------------------

def _issued_invoices(partner):
    return Invoice.objects.filter(partner=partner, state=InvoiceState.ISSUED)


@portal_view(roles=BILLING)
def billing(request):
    partner = request.partner
    invoices = list(with_settlement(_issued_invoices(partner)).order_by("-issue_date", "-number"))
    for invoice in invoices:
        invoice.open = open_amount(invoice)  # what is still to pay on it, apart from the account's balance
    by_number = {invoice.number: invoice for invoice in invoices}
    periods = [
        {**row, "invoice": by_number.get(row["invoice_number"]),
         "payment_label": PaymentStatus(row["payment_status"]).label if row["payment_status"] in PaymentStatus.values
         else row["payment_status"]}
        for row in PeriodsReport().rows(ReportOptions(partner=partner.slug))
    ]
    periods.sort(key=lambda row: (row["period"], row["service"]), reverse=True)
    names = dict(partner.services.values_list("code", "name"))  # a period shows its service's name, not its code
    for row in periods:
        row["service_name"] = names.get(row["service"], row["service"])
    billed = billed_on(partner.pk, _today())
    forecast = next_ci_forecast(partner, _today())
    return _page(request, "billing", "billing.html", periods=periods, invoices=invoices,
                 balance=partner_balance(partner), overdue=partner_overdue(partner),
                 billing_portal_url=partner.payment_portal_url, billed=billed,
                 forecast=forecast, forecast_rows=forecast_rows(forecast),
                 statement_period=Period.of(_today()).previous())


def _invoice_label(invoice: Invoice) -> str:
    return invoice.number or f"invoice-{invoice.pk}"


@portal_view(roles=BILLING)
def invoice_pdf_download(request, pk: int):
    invoice = get_object_or_404(_issued_invoices(request.partner), pk=pk)
    try:
        content = invoice_pdf.invoice_pdf_content(invoice)
    except (ImportError, OSError) as exc:  # WeasyPrint without its libraries
        messages.error(request, f"The PDF cannot be produced right now ({exc}); try again later.")
        return redirect("portal:billing")
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(True, f"{_invoice_label(invoice)}.pdf")
    return response


@portal_view(roles=BILLING)
def invoice_xlsx_download(request, pk: int):
    invoice = get_object_or_404(_issued_invoices(request.partner).select_related("partner"), pk=pk)
    rows = (line_row(line, invoice)
            for line in invoice.lines.select_related("customer", "service").order_by("position", "pk"))
    stream = io.BytesIO()
    write_xlsx(InvoiceLinesReport.columns, rows, stream, title=_invoice_label(invoice))
    response = HttpResponse(stream.getvalue(), content_type=XLSX_TYPE)
    response["Content-Disposition"] = content_disposition_header(True, f"{_invoice_label(invoice)}-lines.xlsx")
    return response


def _statement_customer(request) -> Customer | None:
    """?customer=ID narrows a statement to one of the partner's customers (another partner's: 404)."""
    raw = request.GET.get("customer", "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise Http404("no such customer")
    return get_object_or_404(Customer, pk=int(raw), partner=request.partner)


def _statement_rows(partner, period: Period, customer: Customer | None) -> list[dict]:
    rows = StatementsReport().rows(ReportOptions(partner=partner.slug, period=period))
    return [row for row in rows if customer is None or row["customer"] == customer.slug]


@portal_view(roles=BILLING)
def statements(request):
    default = Period.of(_today()).previous()
    form = PeriodForm(request.GET or {"period": str(default)})
    period = form.cleaned_data["period"] if form.is_valid() else default
    customer = _statement_customer(request)
    rows = _statement_rows(request.partner, period, customer)
    seat_days = sum(r["seat_days"] for r in rows)
    totals = {
        "seat_days": seat_days,
        # from the seat-days, as the invoice computes them, never the sum of the rows' rounded seat-months: 3 × 10
        # seat-days of a 31-day month are 0.9677, not 3 × 0.3226 (billing-rules 3.1, 6.10)
        "seat_months": seat_months(seat_days, period),
        "active_users": sum(r["active_users"] for r in rows),
    }
    return _page(request, "billing", "statements.html", form=form, period=period, rows=rows, totals=totals,
                 customer=customer, customers=request.partner.customers.order_by("name"),
                 billing_portal_url=request.partner.payment_portal_url)


@portal_view(roles=BILLING)
def statements_csv(request, period: str):
    try:
        period_value = Period.parse(period)
    except PeriodError as exc:
        raise Http404(str(exc)) from exc
    customer = _statement_customer(request)
    stream = io.StringIO()
    write_csv(StatementsReport.columns, _statement_rows(request.partner, period_value, customer), stream)
    name = f"statements-{request.partner.slug}-{period_value}" + (f"-{customer.slug}" if customer else "")
    response = HttpResponse(stream.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, f"{name}.csv")
    return response


# --- customers and seats ------------------------------------------------------------------------

def _customer(request, pk: int) -> Customer:
    return get_object_or_404(Customer, pk=pk, partner=request.partner)


def _seat_customer(request, pk: int) -> Customer:
    """A customer whose seats the partner manages: a seat_days service in force covers it (else 404, as a page
    of a method the partner does not use)."""
    customer = _customer(request, pk)
    if not billed_on(request.partner.pk, _today()).seats_for(customer):
        raise Http404("no seat-days service covers this customer")
    return customer


@portal_view()
def customers(request):
    rows = customer_meters(request.partner, _today())
    return _page(request, "customers", "customers.html", rows=rows)


@portal_view()
def customer_detail(request, pk: int):
    customer = _customer(request, pk)
    today = _today()
    meters = customer_meters(request.partner, today, [customer])[0]
    seats = (SeatAssignment.objects.active().filter(customer=customer).select_related("member")
             .order_by("member__name"))
    partner = partner_meters(request.partner, today)
    return _page(request, "customers", "customer.html", customer=customer, seats=seats, meters=meters,
                 licenses=[(m, [t for t in m.tenants if t.customer.pk == customer.pk]) for m in partner.licenses
                           if m.service.customer_id in (None, customer.pk)],
                 agents=[a for a in partner.agents if a.service.customer_id == customer.pk],
                 hosts=[h for h in partner.hosts if h.service.customer_id == customer.pk],
                 flats=[f for f in partner.flats if f.customer_id == customer.pk],
                 peaks=[p for p in partner.peaks if p.service.customer_id == customer.pk],
                 last_sync=partner.last_sync, billed=partner.billed,
                 assign_form=AssignSeatForm(), cap_form=SeatCapForm(initial={"seat_cap": customer.seat_cap}))


@require_POST
@portal_view()
def seat_assign_view(request, pk: int):
    customer = _seat_customer(request, pk)
    form = AssignSeatForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.error_text())
        return redirect("portal:customer", pk=customer.pk)
    name = form.cleaned_data["member"].strip()
    try:
        seat_assign(customer=customer, member_name=name, actor=_actor(request), source="portal")
    except SeatRuleError as exc:
        messages.error(request, f"{name} was not given a seat: {exc}.")
    else:
        messages.success(request, f"{name} now has a seat at {customer.name}.")
    return redirect("portal:customer", pk=customer.pk)


@require_POST
@portal_view()
def seat_remove_view(request, pk: int):
    customer = _customer(request, pk)
    if not SeatAssignment.objects.active().filter(customer=customer).exists():
        customer = _seat_customer(request, pk)  # a seat still held can be removed whatever the services say
    name = (request.POST.get("member") or "").strip()
    try:
        seat_unassign(customer=customer, member_name=name, actor=_actor(request), source="portal")
    except SeatRuleError as exc:
        messages.error(request, f"Nothing removed: {exc}.")
    else:
        messages.success(request, f"{name}'s seat at {customer.name} was removed (today still counts).")
    return redirect("portal:customer", pk=customer.pk)


@require_POST
@portal_view(roles=OWNER)
def seat_cap_view(request, pk: int):
    customer = _seat_customer(request, pk)
    form = SeatCapForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The cap must be a whole number of seats, or blank for no cap.")
        return redirect("portal:customer", pk=customer.pk)
    try:
        customer_update(customer=customer, data={"seat_cap": form.cleaned_data["seat_cap"]}, actor=_actor(request))
    except ValidationError as exc:
        messages.error(request, f"The cap was not changed: {'; '.join(exc.messages)}.")
    else:
        cap = customer.seat_cap
        messages.success(request, f"{customer.name}: seat cap {'removed' if cap is None else f'set to {cap}'}.")
    return redirect("portal:customer", pk=customer.pk)


# --- add seats ----------------------------------------------------------------------------------

@portal_view(roles=BILLING)
def add_seats(request):
    if not seat_services(request.partner.pk, _today()).exists():  # no seat-days service: no such page
        raise Http404("no seat-days service is in force")
    # a double click, or a POST sent again, buys once (billing/core/idempotency.py)
    return once_per_form(request, "portal:add_seats", lambda: _add_seats(request))


def _add_seats(request):
    services = seat_services(request.partner.pk, _today()).select_related("customer")
    form = AddSeatsForm(request.POST or None, services=services)
    if request.method == "POST" and form.is_valid():
        try:
            purchase = seat_purchase_create(service=form.cleaned_data["service"], seats=form.cleaned_data["seats"],
                                            actor=_actor(request), source="portal")
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            return redirect("portal:seat_purchase", pk=purchase.pk)
    purchases = (SeatPurchase.objects.filter(service__partner=request.partner)
                 .select_related("service", "purchased_by")[:20])
    offers = seat_offers(list(services), now=timezone.now())
    chosen = form["service"].value() or (offers[0].service.pk if offers else None)
    offer = next((o for o in offers if str(o.service.pk) == str(chosen)), offers[0] if offers else None)
    count = form["seats"].value()
    count = int(count) if str(count or "").isdigit() and int(count) > 0 else 1
    return _page(request, "seats", "add_seats.html", form=form, purchases=purchases, today=_today(),
                 has_services=services.exists(), offers=offers, offer=offer, cost=offer.cost(count) if offer else None,
                 count=count)


@portal_view(roles=BILLING)
def seat_purchase(request, pk: int):
    purchase = get_object_or_404(SeatPurchase.objects.select_related("service"), pk=pk,
                                 service__partner=request.partner)
    offer = seat_offers([purchase.service], effective=purchase.effective_date)[0]
    return _page(request, "seats", "seat_purchase.html", purchase=purchase, offer=offer,
                 cost=offer.cost(purchase.seats))


# --- team, audit and API keys -------------------------------------------------------------------

@require_POST
@portal_view(roles=OWNER)
def member_access_reset(request, pk: int):
    """An Owner resets a team member's access: their password stops working now (and their sessions end), and
    they are emailed a link to choose a new one. Audited."""
    member = get_object_or_404(PartnerUser.objects.select_related("user"), pk=pk, partner=request.partner)
    if member.user_id == request.user.pk:
        messages.error(request, "Use Forgot your password to reset your own.")
        return redirect("portal:team")
    emailed = partner_user_access_reset(partner_user=member, actor=_actor(request), request=request)
    name = member.user.get_username()
    messages.success(request, f"{name}'s password no longer works; " + (
        "a link to choose a new one was emailed to them." if emailed else "they have no email address: ask staff "
                                                                          "to set one, then reset again."))
    return redirect("portal:team")


@portal_view()
def team(request):
    partner = request.partner
    users = PartnerUser.objects.filter(partner=partner).select_related("user").order_by("user__username")
    can_bill = request.partner_user.role in BILLING
    # billing is for Owner and Billing users: money entries of the audit log and the API keys too
    keys = ApiKey.objects.filter(partner=partner).select_related("created_by").order_by("-created_at")
    if not can_bill:
        keys = keys.none()
    audit = audit_section(partner=partner, params=request.GET, allowed=None if can_bill else TECHNICIAN_ACTIONS)
    return _page(request, "team", "team.html", users=users, keys=keys, audit=audit, page=audit.page,
                 key_form=ApiKeyForm())


# what a Technician reads of the audit log: seats, RMM inventories, usage and suspensions, nothing else. An
# allow-list: a new kind of entry (prices, tax, terms, keys, payments, customers' billing fields) stays hidden
# from Technicians until it is added here.
TECHNICIAN_ACTIONS = ("seat.", "inventory.", "usage.", "suspension.")


@require_POST
@portal_view(roles=OWNER)
def api_key_create_view(request):
    """A new key, once per form shown: the same form sent again shows the key's page without its secret."""
    token = request.POST.get(TOKEN_FIELD)
    return once(scope=f"portal:api_key:{request.user.pk}", token=token, write=lambda: _api_key_create(request, token),
                succeeded=lambda response: response.status_code == 200)


def _api_key_create(request, token):
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The key name is too long.")
        return redirect("portal:team")
    api_key, secret = api_key_create(partner=request.partner, actor=_actor(request),
                                     name=form.cleaned_data["name"])
    # shown in this answer and nowhere else: never stored (a session row would keep it for the session's life),
    # never cached by the browser or a proxy
    response = _page(request, "team", "api_key_created.html", api_key=api_key, secret=secret)
    add_never_cache_headers(response)
    response["Cache-Control"] = "no-store"
    response["Content-Location"] = reverse("portal:api_key_created", args=[api_key.pk])  # what a resend shows
    return response


@portal_view(roles=OWNER)
def api_key_created(request, pk: int):
    api_key = get_object_or_404(ApiKey, pk=pk, partner=request.partner)
    return _page(request, "team", "api_key_created.html", api_key=api_key, secret=None)


@require_POST
@portal_view(roles=OWNER)
def api_key_revoke_view(request, pk: int):
    api_key = get_object_or_404(ApiKey, pk=pk, partner=request.partner)
    already = api_key.revoked_at is not None
    api_key_revoke(api_key=api_key, actor=_actor(request))
    if already:
        messages.info(request, f"Key {api_key.prefix}… was already revoked.")
    else:
        messages.success(request, f"Key {api_key.prefix}… is revoked: requests with it now get 401.")
    return redirect(reverse("portal:team") + "#keys")
