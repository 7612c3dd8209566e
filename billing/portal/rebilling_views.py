"""The portal's Price lists page (billing-rules 12, docs/rebilling.md): what the partner charges its own customers,
set by its Owner and Billing users. Every lookup goes through request.partner: another partner's customer, service,
item or price is a 404."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from billing.core.idempotency import once_per_form
from billing.portal.access import BILLING, portal_view
from billing.portal.rebilling_forms import ResaleItemForm, ResalePriceForm
from billing.portal.views import _actor, _page, _today
from invoicing.rebilling.choices import ResaleMode
from invoicing.rebilling.models import ResaleItem, ResalePrice
from invoicing.rebilling.pricing import AMOUNT_FIELDS
from invoicing.rebilling.selectors import (
    customers_with_own_prices,
    price_list_rows,
    resale_items,
    resale_price_history,
    resale_prices_scheduled,
)
from invoicing.rebilling.services import resale_item_save, resale_price_cancel, resale_price_set
from invoicing.rebilling.text import price_text, unit_of
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
            name: form.cleaned_data[name] for name in ("code", "name", "unit")})
    except ValidationError as exc:
        messages.error(request, f"The item was not added: {'; '.join(exc.messages)}")
    else:
        messages.success(request, f"Own item {item.name} ({item.code}) saved: set its price below.")
    return redirect(reverse("portal:price_lists") + "#items")
