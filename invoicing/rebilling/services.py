"""Writes of price lists (billing-rules 12): set a resale price, cancel a scheduled one, add or change an own item.
The portal, the resale-prices import and a shell all come here; each write is audited in its transaction.

`resale_price_errors` is the one check of a price (its fields by mode, and that its customer, service and item
are the partner's); `resale_prices_save` the one bulk write, which the import calls per batch and
`resale_price_set` for one row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.core.actor import Actor
from billing.core.usage_meters import meter_pattern_error
from invoicing.rebilling.choices import ResaleMode
from invoicing.rebilling.models import ResaleItem, ResalePrice
from invoicing.rebilling.pricing import MODE_FIELDS, terms_errors
from partners.audit import audit_entry, audit_record, jsonable
from partners.choices import AuditAction, TierMode
from partners.models import AuditLog, Customer, Partner, Service, slug_validator

AMOUNT_DEFAULTS = {"unit_price": None, "markup_percent": None, "package_units": None, "package_price": None,
                   "tiers": ""}


def resale_price_errors(price: ResalePrice) -> dict[str, str]:
    """A price's errors by field (the import's columns; `service` names the service or own item): its
    customer, service and item belong to its partner, a customer-level service is priced for its own customer
    only, and its amounts are those its mode uses (pricing.terms_errors)."""
    errors: dict[str, str] = {}
    partner_id = price.partner_id
    if price.customer_id and price.customer.partner_id != partner_id:
        errors["customer"] = f"{price.customer.slug!r} is not a customer of this partner"
    if bool(price.service_id) == bool(price.item_id):
        errors["service"] = "name one service or one own item"
    elif price.service_id:
        service = price.service
        if service.partner_id != partner_id:
            errors["service"] = f"{service.code!r} is not a service of this partner"
        elif service.customer_id and price.customer_id and service.customer_id != price.customer_id:
            errors["service"] = f"{service.code} is a service of customer {service.customer.slug} only"
    elif price.item.partner_id != partner_id:
        errors["service"] = f"{price.item.code!r} is not an own item of this partner"
    errors.update(terms_errors(price.amounts(), mode=price.mode, for_customer=bool(price.customer_id),
                               for_service=bool(price.service_id)))
    return errors


def price_snapshot(price: ResalePrice) -> dict:
    """A price as its audit rows record it: the list, what it prices, and the amounts its mode uses."""
    data = {"customer": price.customer.slug if price.customer_id else None,
            "service": price.service.code if price.service_id else None,
            "item": price.item.code if price.item_id else None,
            "mode": price.mode, "effective_from": jsonable(price.effective_from),
            "currency": price.partner.currency}
    for name in MODE_FIELDS[price.mode]:
        data[name] = jsonable(getattr(price, name))
    if price.mode == ResaleMode.TIERS:
        data["tier_mode"] = price.tier_mode
    return data


def normalise(price: ResalePrice) -> ResalePrice:
    """Blank the fields the mode does not use (a form may post them all), and the tier mode outside tiers."""
    for name, blank in AMOUNT_DEFAULTS.items():
        if name not in MODE_FIELDS.get(price.mode, ()):
            setattr(price, name, blank)
    if price.mode != ResaleMode.TIERS:
        price.tier_mode = TierMode.VOLUME
    # the schedule as written, without the spaces or line breaks around its parts (a re-import compares it)
    price.tiers = ";".join(part.strip() for part in (price.tiers or "").split(";") if part.strip())
    return price


@dataclass
class PriceWrite:
    """One row to write: the price (new, or the stored row of its list, service and day with its new amounts)
    and the stored row's snapshot before (None: a new row)."""

    price: ResalePrice
    before: dict | None = None


def existing_prices(keys) -> dict[tuple, ResalePrice]:
    """The stored rows of (partner id, customer id, service id, item id, effective_from) keys, in one query."""
    keys = set(keys)
    if not keys:
        return {}
    rows = ResalePrice.objects.filter(partner_id__in={k[0] for k in keys},
                                      effective_from__in={k[4] for k in keys}).select_related(
        "partner", "customer", "service", "item")
    return {key: row for row in rows if (key := price_key(row)) in keys}


def price_key(price: ResalePrice) -> tuple:
    return (price.partner_id, price.customer_id, price.service_id, price.item_id, price.effective_from)


def resale_prices_save(*, writes: list[PriceWrite], actor: Actor, source: str = "", file: str = "") -> None:
    """Write checked prices in bulk and audit each (`resale_price.create` or `resale_price.update` with the
    amounts before and after, and the file's name for an import), in the caller's transaction. `source` is kept
    on the row: "portal", or the file it was imported from."""
    creates = [w.price for w in writes if w.before is None]
    updates = [w.price for w in writes if w.before is not None]
    now = timezone.now()
    for write in writes:
        write.price.source = source[:100]
        write.price.updated_at = now  # bulk_update leaves auto_now alone
    try:
        with transaction.atomic():
            ResalePrice.objects.bulk_create(creates)
            ResalePrice.objects.bulk_update(updates, [*AMOUNT_DEFAULTS, "mode", "tier_mode", "source", "updated_at"])
    except IntegrityError as exc:  # a concurrent write of the same list, service and day
        raise ValidationError({"effective_from": "a price of this list and service from this day was just set: "
                                                 "try again"}) from exc
    AuditLog.objects.bulk_create(
        audit_entry(actor=actor, action=AuditAction.RESALE_PRICE_CREATE if w.before is None
                    else AuditAction.RESALE_PRICE_UPDATE, obj=w.price, partner=w.price.partner,
                    before=w.before, after={**price_snapshot(w.price), **({"file": file} if file else {})})
        for w in writes
    )


def prices_in_force_before(keys) -> dict[tuple, ResalePrice]:
    """{key: the stored row of the key's list and service in force the day before the key's date}, for keys
    (as price_key gives them) that have one; in one query."""
    keys = set(keys)
    if not keys:
        return {}
    rows = (ResalePrice.objects.filter(partner_id__in={k[0] for k in keys},
                                       effective_from__lt=max(k[4] for k in keys))
            .select_related("partner", "customer", "service", "item").order_by("effective_from", "pk"))
    by_list: dict[tuple, list[ResalePrice]] = {}
    for row in rows:
        by_list.setdefault(price_key(row)[:4], []).append(row)
    found = {}
    for key in keys:
        earlier = [row for row in by_list.get(key[:4], ()) if row.effective_from < key[4]]
        if earlier:
            found[key] = earlier[-1]
    return found


def price_writes(prices: list[ResalePrice]) -> list[tuple[str, PriceWrite | None]]:
    """What writing checked prices does, each: ("created", write), ("updated", write) or ("unchanged", None).

    A price of a list, service and day already stored updates that row (unchanged when the amounts are the
    same). A new day's price equal to the one already in force then changes nothing, so an import without
    `effective_from` (today) imports again as a no-op; a customer's return to the default list is nothing
    when the customer had no price of its own (billing-rules 12.1). "In force" counts the file's own earlier rows:
    a customer's price and its return to the default list a month later, in one file, are both written."""
    keys = [price_key(price) for price in prices]
    stored = existing_prices(keys)
    earlier = prices_in_force_before([key for key in keys if key not in stored])
    in_file: dict[tuple, list[ResalePrice]] = {}  # the file's own rows of each list and service: an earlier one of
    for price, key in zip(prices, keys, strict=True):  # them is in force before a later one as a stored row is
        normalise(price)
        in_file.setdefault(key[:4], []).append(price)
    outcomes: list[tuple[str, PriceWrite | None]] = []
    for price, key in zip(prices, keys, strict=True):
        row = stored.get(key)
        if row is not None:
            if row.amounts() == price.amounts():
                outcomes.append(("unchanged", None))
                continue
            before = price_snapshot(row)
            for name, value in price.amounts().items():
                setattr(row, name, value)
            outcomes.append(("updated", PriceWrite(row, before)))
            continue
        previous = earlier.get(key)
        for other in in_file[key[:4]]:  # the latest in force before this day, stored or in the file
            if other.effective_from < key[4] and (previous is None or other.effective_from >= previous.effective_from):
                previous = other
        if (previous.amounts() == price.amounts() if previous is not None
                else price.mode == ResaleMode.DEFAULT):
            outcomes.append(("unchanged", None))
            continue
        outcomes.append(("created", PriceWrite(price)))
    return outcomes


@transaction.atomic
def resale_price_set(*, partner: Partner, customer: Customer | None = None, service: Service | None = None,
                     item: ResaleItem | None = None, mode: str, effective_from: date, actor: Actor,
                     source: str = "portal", **amounts) -> tuple[ResalePrice, str]:
    """Set the price of a service (or own item) in the partner's default list (`customer` None) or in a
    customer's list from `effective_from` (billing-rules 12.1): a new row, or the row of that very day changed.
    `amounts` are unit_price, markup_percent, package_units, package_price, tiers and tier_mode; those the mode
    does not use are refused. Returns the row written (unsaved when "unchanged") and "created", "updated" or
    "unchanged" (price_writes says when); ValidationError (by field) when the price is refused."""
    Partner.objects.select_for_update().filter(pk=partner.pk).first()  # one writer of a partner's lists at a time
    unknown = set(amounts) - {*AMOUNT_DEFAULTS, "tier_mode"}
    if unknown:
        raise TypeError(f"unknown amount(s): {', '.join(sorted(unknown))}")
    price = ResalePrice(partner=partner, customer=customer, service=service, item=item, mode=mode,
                        effective_from=effective_from, **{**AMOUNT_DEFAULTS, "tier_mode": TierMode.VOLUME, **amounts})
    errors = resale_price_errors(price)
    if errors:
        raise ValidationError(errors)
    outcome, write = price_writes([price])[0]
    if write is not None:
        resale_prices_save(writes=[write], actor=actor, source=source)
    return (write.price if write is not None else price), outcome


@transaction.atomic
def resale_price_cancel(*, price: ResalePrice, today: date, actor: Actor) -> None:
    """Remove a price that is not in force yet (`effective_from` after today, UTC): a scheduled change the
    partner no longer wants. A price that has been in force stays, as history; it is ended by a new price (or, in
    a customer's list, by returning to the default list) from a date."""
    if price.effective_from <= today:
        raise ValidationError({"effective_from": f"in force since {price.effective_from.isoformat()}: set a new "
                                                 f"price from a date instead"})
    snapshot = price_snapshot(price)
    audit_record(actor=actor, action=AuditAction.RESALE_PRICE_DELETE, obj=price, partner=price.partner,
                 before=snapshot, after=None)
    price.delete()


@transaction.atomic
def resale_item_save(*, partner: Partner, code: str, name: str, unit: str = "", meter: str = "",
                     actor: Actor) -> ResaleItem:
    """Add an own item, or change the name, unit and meter of the partner's item with this code (audited). A
    meter (billing-rules 12.11) bills each customer's monthly reading of it; blank, none."""
    code, name, unit, meter = code.strip().lower(), name.strip(), unit.strip(), meter.strip().lower()
    errors = {}
    try:
        slug_validator(code)
    except ValidationError as exc:
        errors["code"] = exc.messages[0]
    if not code:
        errors["code"] = "is required"
    if not name:
        errors["name"] = "is required"
    if meter and (problem := meter_pattern_error(meter)):
        errors["meter"] = problem
    if errors:
        raise ValidationError(errors)
    item = ResaleItem.objects.select_for_update().filter(partner=partner, code=code).first()
    if item is None:
        item = ResaleItem.objects.create(partner=partner, code=code, name=name[:200], unit=unit[:40], meter=meter)
        audit_record(actor=actor, action=AuditAction.RESALE_ITEM_CREATE, obj=item, partner=partner,
                     after={"code": item.code, "name": item.name, "unit": item.unit, "meter": item.meter})
        return item
    before = {"code": item.code, "name": item.name, "unit": item.unit, "meter": item.meter}
    item.name, item.unit, item.meter = name[:200], unit[:40], meter
    after = {"code": item.code, "name": item.name, "unit": item.unit, "meter": item.meter}
    if after != before:
        item.save(update_fields=["name", "unit", "meter"])
        audit_record(actor=actor, action=AuditAction.RESALE_ITEM_UPDATE, obj=item, partner=partner,
                     before=before, after=after)
    return item
    before = {"code": item.code, "name": item.name, "unit": item.unit}
    item.name, item.unit = name[:200], unit[:40]
    after = {"code": item.code, "name": item.name, "unit": item.unit}
    if after != before:
        item.save(update_fields=["name", "unit"])
        audit_record(actor=actor, action=AuditAction.RESALE_ITEM_UPDATE, obj=item, partner=partner,
                     before=before, after=after)
    return item
