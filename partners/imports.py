"""Import kinds of the partners app: partners, customers, services, seat-purchases, seat-events."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal

from django.db.models import Count
from django.utils import timezone
from djmoney.money import Money

from billing.core.importing import ImportContext, ImportKind, ParsedRow
from billing.core.periods import Period, format_instant, next_month_start
from billing.core.registry import last_invoiced_months, register_import
from partners.audit import audit_entry, audit_snapshot, jsonable
from partners.choices import AuditAction
from partners.lookups import customers_by_key, partners_by_slug, services_by_key
from partners.models import (
    DERIVATION_FIELDS,
    AuditLog,
    Customer,
    Method,
    Partner,
    SeatAssignment,
    SeatPurchase,
    Service,
)
from partners.resources import (
    CustomerResource,
    PartnerResource,
    SeatPurchaseResource,
    ServiceResource,
)
from partners.services import (
    Upsert,
    alerts_evaluate,
    customers_upsert,
    partners_upsert,
    services_upsert,
    write_errors,
)
from partners.terms import TERM_FIELDS, values_of

_LOW_64 = (1 << 64) - 1


def _digest(value) -> int:
    """A 64-bit digest of a key or a row's values, to tell the rows of a file apart without keeping them."""
    return int.from_bytes(hashlib.blake2b(repr(value).encode(), digest_size=8).digest(), "big")


class UpsertKind(ImportKind):
    """Rows keyed by natural keys: a new key creates, a known key updates the columns present in
    the file (a blank cell sets the default), an identical row changes nothing (billing-rules 6.11).

    Each row is checked by partners.services.write_errors, the rules the admin's and the portal's writes
    check, and each batch is written in bulk by the kind's `upsert` service (partners_upsert, ...), which
    audits it with the same snapshot as the admin and the portal."""

    model = None
    key_columns: tuple[str, ...] = ()
    # column -> model attribute, for the columns a row may update
    value_columns: dict[str, str] = {}
    money_columns: tuple[str, ...] = ()
    # columns checked unchanged by validate() and never written on update
    locked_columns: tuple[str, ...] = ()
    upsert = None  # the kind's bulk write (partners.services: partners_upsert, ...), as a staticmethod

    def key(self, row: ParsedRow) -> tuple:
        return tuple(row.values[c] for c in self.key_columns)

    def resolve(self, rows: list[ParsedRow], ctx: ImportContext) -> dict[int, dict]:
        """References of each row (e.g. its partner), with errors for unknown keys."""
        return {row.number: {} for row in rows}

    def existing(self, rows: list[ParsedRow], refs: dict[int, dict]) -> dict[tuple, object]:
        raise NotImplementedError

    def new_object(self, row: ParsedRow, refs: dict):
        raise NotImplementedError

    def validate(self, obj, row: ParsedRow, refs: dict, before: dict | None, terms_before: dict | None,
                 ctx: ImportContext) -> dict[str, str]:
        """The row's errors by column: the service's rules (write_errors), and its effective_from."""
        return write_errors(obj, before=before, terms_before=terms_before, effective=row.values.get("effective_from"))

    def apply(self, obj, row: ParsedRow, refs: dict, ctx: ImportContext, new: bool) -> None:
        for column, attr in self.value_columns.items():
            if column not in ctx.header and not new:
                continue  # a column left out of the file keeps its value
            value = row.values[column]
            if column not in ctx.header and new:
                continue  # the model's default
            if column in self.money_columns and value is not None:
                value = Money(value, refs["currency"])
            setattr(obj, attr, value)

    def process_batch(self, batch: list[ParsedRow], ctx: ImportContext) -> None:
        # each key of the file so far, as one int: its first row and a digest of its values (a file of a million
        # rows keeps a million small ints, not a million rows)
        seen: dict[int, int] = ctx.state.setdefault("seen", {})
        rows = []
        for row in batch:
            key = _digest(self.key(row))
            signature = _digest(sorted((k, repr(v)) for k, v in row.values.items()))
            if key in seen:
                first_row, first_signature = seen[key] >> 64, seen[key] & _LOW_64
                if first_signature != signature:
                    ctx.error(row.number, self.key_columns[-1],
                              f"same key as row {first_row} with different values")
                else:
                    ctx.unchanged += 1
                continue
            seen[key] = row.number << 64 | signature
            rows.append(row)
        refs = self.resolve(rows, ctx)
        rows = [r for r in rows if r.number not in ctx.failed_rows]
        existing = self.existing(rows, refs)
        upserts = []
        dated = self.model._meta.model_name in TERM_FIELDS
        for row in rows:
            obj = existing.get(self.key(row))
            new = obj is None
            before = None if new else audit_snapshot(obj)
            terms_before = values_of(obj) if dated and not new else None
            if new:
                obj = self.new_object(row, refs[row.number])
            self.apply(obj, row, refs[row.number], ctx, new)
            errors = self.validate(obj, row, refs[row.number], before, terms_before, ctx)
            for column, reason in errors.items():
                ctx.error(row.number, column, reason)
            if errors:
                continue
            upsert = Upsert(obj, before=before, terms_before=terms_before, effective=row.values.get("effective_from"))
            if new:
                ctx.created += 1
            elif upsert.changed:
                ctx.updated += 1
            else:
                ctx.unchanged += 1
                continue
            upserts.append(upsert)
        if not ctx.ok:
            return  # nothing will be kept: spare the writes, keep validating
        fields = [self.model._meta.get_field(a.split("__")[0]).name for c, a in self.value_columns.items()
                  if c not in self.locked_columns]
        if self.money_columns:
            fields += [f"{self.value_columns[c]}_currency" for c in self.money_columns]
        self._terms_dates(upserts)
        self.upsert(upserts=upserts, update_fields=fields, actor=ctx.actor)
        self.after_write([u.obj for u in upserts if u.new] + [u.obj for u in upserts if not u.new], ctx)

    @staticmethod
    def _terms_dates(upserts: list[Upsert]) -> None:
        """Changed terms take effect on the row's effective_from, or else on the first month not yet invoiced
        (billing-rules 3.11): months invoiced keep the terms they were invoiced with."""
        undated = [u for u in upserts if u.effective is None and u.terms_changed]
        firsts = first_months_not_invoiced({u.obj.pk if isinstance(u.obj, Partner) else u.obj.partner_id
                                            for u in undated})
        for upsert in undated:
            upsert.effective = firsts[upsert.obj.pk if isinstance(upsert.obj, Partner) else upsert.obj.partner_id]

    def after_write(self, objects, ctx: ImportContext) -> None:
        """A hook for kinds whose writes have consequences beyond their rows."""


def first_months_not_invoiced(partner_ids) -> dict[int, date]:
    """{partner id: the 1st of the month after its latest issued CI} (date.min: none issued, the start)."""
    latest = last_invoiced_months(partner_ids)
    return {pk: Period.parse(latest[pk]).next().first if pk in latest else date.min for pk in partner_ids}


@register_import
class PartnersImport(UpsertKind):
    name = "partners"
    resource_class = PartnerResource
    model = Partner
    upsert = staticmethod(partners_upsert)
    required_columns = ("slug", "name")
    key_columns = ("slug",)
    value_columns = {
        "name": "name", "currency": "currency", "tax_rate": "tax_rate",
        "payment_terms_days": "payment_terms_days", "billing_emails": "billing_emails",
        "billing_address": "billing_address", "tax_id": "tax_id", "purchase_order": "purchase_order",
    }

    def existing(self, rows, refs):
        return {(p.slug,): p for p in Partner.objects.filter(slug__in=[r.values["slug"] for r in rows])}

    def new_object(self, row, refs):
        return Partner(slug=row.values["slug"])

    def apply(self, obj, row, refs, ctx, new):
        super().apply(obj, row, refs, ctx, new)
        obj.currency = (obj.currency or "USD").upper()
        if obj.tax_rate is None:
            obj.tax_rate = Decimal("0")


@register_import
class CustomersImport(UpsertKind):
    name = "customers"
    resource_class = CustomerResource
    model = Customer
    upsert = staticmethod(customers_upsert)
    required_columns = ("partner", "slug", "name")
    key_columns = ("partner", "slug")
    value_columns = {
        "name": "name", "seat_cap": "seat_cap", "host_limit": "host_limit",
        "payment_terms_days": "payment_terms_days", "rmm_organization": "rmm_organization",
    }

    def resolve(self, rows, ctx):
        partners = partners_by_slug(r.values["partner"] for r in rows)
        refs = {}
        for row in rows:
            partner = partners.get(row.values["partner"])
            if partner is None:
                ctx.error(row.number, "partner", f"unknown partner {row.values['partner']!r}")
            refs[row.number] = {"partner": partner}
        return refs

    def existing(self, rows, refs):
        # the seat service's lock: a cap is checked against seats that cannot change meanwhile
        list(Partner.objects.select_for_update().filter(
            pk__in={r["partner"].pk for r in refs.values() if r.get("partner")}
        ).order_by("pk").values_list("pk", flat=True))
        found = customers_by_key((r.values["partner"], r.values["slug"]) for r in rows)
        ctx_active = dict(
            SeatAssignment.objects.active().filter(customer__in=found.values())
            .order_by().values_list("customer_id").annotate(n=Count("id"))
        )
        for customer in found.values():
            customer._active_seats = ctx_active.get(customer.pk, 0)
        return found

    def new_object(self, row, refs):
        return Customer(partner=refs["partner"], slug=row.values["slug"])

    def validate(self, obj, row, refs, before, terms_before, ctx):
        # the active seats were counted for the whole batch, under the partners' row locks (existing)
        return write_errors(obj, before=before, terms_before=terms_before, effective=row.values.get("effective_from"),
                            active_seats=getattr(obj, "_active_seats", 0))


@register_import
class ServicesImport(UpsertKind):
    name = "services"
    resource_class = ServiceResource
    model = Service
    upsert = staticmethod(services_upsert)
    required_columns = ("partner", "code", "name", "method", "unit_price", "start_date")
    key_columns = ("partner", "code")
    value_columns = {
        "customer": "customer", "name": "name", "method": "method", "meter": "meter", "usage_meter": "usage_meter",
        "unit_price": "unit_price", "overage_price": "overage_price",
        "committed_quantity": "committed_quantity", "overage_enabled": "overage_enabled",
        "storage_per_license_gb": "storage_per_license_gb", "tiers": "tiers", "tier_mode": "tier_mode",
        "proration": "proration", "start_date": "start_date", "end_date": "end_date",
        "rmm_filter": "rmm_filter", "taxable": "taxable", "notification_emails": "notification_emails",
    }
    money_columns = ("unit_price", "overage_price")
    locked_columns = DERIVATION_FIELDS

    def after_write(self, objects, ctx):
        ctx.state.setdefault("partner_ids", set()).update(s.partner_id for s in objects)

    def finish(self, ctx):
        # a changed commitment changes utilization now: alerts judge the new state
        if ctx.ok and ctx.state.get("partner_ids"):
            alerts_evaluate(partner_ids=sorted(ctx.state["partner_ids"]))

    def resolve(self, rows, ctx):
        partners = partners_by_slug(r.values["partner"] for r in rows)
        customers = customers_by_key(
            (r.values["partner"], r.values["customer"]) for r in rows if r.values["customer"]
        )
        refs = {}
        for row in rows:
            partner = partners.get(row.values["partner"])
            customer = None
            if partner is None:
                ctx.error(row.number, "partner", f"unknown partner {row.values['partner']!r}")
            elif row.values["customer"]:
                customer = customers.get((partner.slug, row.values["customer"]))
                if customer is None:
                    ctx.error(row.number, "customer",
                              f"unknown customer {row.values['customer']!r} of partner {partner.slug}")
            refs[row.number] = {"partner": partner, "customer": customer,
                                "currency": partner.currency if partner else "USD"}
        return refs

    def existing(self, rows, refs):
        return services_by_key((r.values["partner"], r.values["code"]) for r in rows)

    def new_object(self, row, refs):
        return Service(partner=refs["partner"], code=row.values["code"])

    def apply(self, obj, row, refs, ctx, new):
        for column, attr in self.value_columns.items():
            if column not in ctx.header:
                continue
            value = row.values[column]
            if column == "customer":
                value = refs["customer"]
            elif column in self.money_columns and value is not None:
                value = Money(value, refs["currency"])
            elif value is None and column in ("meter", "usage_meter", "tiers", "rmm_filter", "notification_emails"):
                value = ""
            elif column == "usage_meter":
                value = value.lower()  # Call_Minutes:Outbound:* is call_minutes:outbound:*
            setattr(obj, attr, value)
        if obj.overage_price is None:
            obj.overage_price_currency = refs["currency"]
        obj.unit_price_currency = refs["currency"]
        obj.set_rmm_parts()



@register_import
class SeatPurchasesImport(ImportKind):
    """Seat purchases ("Add seats"), keyed by (partner, service, purchased_at)."""

    name = "seat-purchases"
    resource_class = SeatPurchaseResource
    required_columns = ("partner", "service", "seats", "purchased_at")

    def process_batch(self, batch, ctx):
        seen: dict[tuple, tuple[int, int]] = ctx.state.setdefault("seen", {})
        services = services_by_key((r.values["partner"], r.values["service"]) for r in batch)
        partners = partners_by_slug(r.values["partner"] for r in batch)
        purchases = {
            (p.service_id, p.purchased_at): p
            for p in SeatPurchase.objects.filter(
                service__in=services.values(), purchased_at__in=[r.values["purchased_at"] for r in batch]
            )
        }
        creates, audits = [], []
        actor = ctx.actor
        now = timezone.now()
        for row in batch:
            v = row.values
            if v["partner"] not in partners:
                ctx.error(row.number, "partner", f"unknown partner {v['partner']!r}")
                continue
            service = services.get((v["partner"], v["service"]))
            if service is None:
                ctx.error(row.number, "service", f"unknown service {v['service']!r} of partner {v['partner']}")
                continue
            if service.method != Method.SEAT_DAYS:
                ctx.error(row.number, "service", f"{service.code} is a {service.method} service; seats are bought "
                                                 f"on seat_days services")
                continue
            if v["purchased_at"] > now:
                ctx.error(row.number, "purchased_at", f"{format_instant(v['purchased_at'])} is in the future")
                continue
            key = (service.pk, v["purchased_at"])
            if key in seen:
                if seen[key][1] != v["seats"]:
                    ctx.error(row.number, "seats", f"same purchase as row {seen[key][0]} with different seats")
                else:
                    ctx.unchanged += 1
                continue
            seen[key] = (row.number, v["seats"])
            current = purchases.get(key)
            if current is not None:
                if current.seats != v["seats"]:
                    ctx.error(row.number, "seats", f"a purchase of {current.seats} seats at this instant is already "
                                                   f"imported")
                else:
                    ctx.unchanged += 1
                continue
            purchase = SeatPurchase(service=service, seats=v["seats"], purchased_at=v["purchased_at"],
                                    effective_date=next_month_start(v["purchased_at"]), source=ctx.source[:100])
            creates.append(purchase)
            ctx.created += 1
        if creates and ctx.ok:
            SeatPurchase.objects.bulk_create(creates)
            for p in creates:
                audits.append(audit_entry(
                    actor=actor, action=AuditAction.SEAT_PURCHASE_CREATE, obj=p, partner=p.service.partner,
                    after={"service": p.service.code, "seats": p.seats, "purchased_at": jsonable(p.purchased_at),
                           "effective_date": jsonable(p.effective_date)},
                ))
            AuditLog.objects.bulk_create(audits)


# seat-events has its own module: the replay of merged history
from partners import seat_import  # noqa: E402,F401
