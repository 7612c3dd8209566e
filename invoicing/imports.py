"""Import kinds of invoicing: one-time-charges and payments (billing-rules 4.1, 4.8, 9, 6.5, 6.11).

Both follow the engine's contract (billing.importing): keys are resolved one query per batch, every
bad row is reported as `row N: column: reason`, and any bad row writes nothing. Neither kind ever
updates or deletes a stored row: a row either creates one record or, as an exact duplicate of a
record (earlier in the file or already imported), changes nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from billing.core.importing import ImportContext, ImportKind, ParsedRow
from billing.core.money import quantize_money, tax_on
from billing.core.periods import utc_date
from billing.core.registry import register_import
from invoicing.models import MAX_TOTAL, Invoice, OneTimeCharge, Payment
from invoicing.resources import OneTimeChargeResource, PaymentResource
from invoicing.services import invoice_statuses_refresh, payment_refusals
from invoicing.services.ledger import partners_lock
from partners.audit import audit_entry, jsonable
from partners.choices import AuditAction
from partners.lookups import customers_by_key
from partners.models import AuditLog, Partner


@register_import
class OneTimeChargesImport(ImportKind):
    """One-time charges (hardware, onboarding fees, true-ups): each is billed on its own INV, dated the
    charge's date, by `run_billing` (billing-rules 4.1, 6.5).

    A charge has no natural key beyond the whole row: partner, customer, description, quantity,
    unit_price, date and taxable (numbers compared by value, so 2 and 2.00 are the same). So:

    - a row equal to a charge already imported, or to an earlier row of the same file, is an exact
      duplicate and changes nothing (billing-rules 6.11): re-importing a file never charges twice;
    - two rows that differ in any column are two charges. Two identical items bought the same day
      are one row with quantity 2, not two identical rows;
    - an import never changes nor removes a stored charge. A charge already billed (its INV issued,
      an invoice line keyed `one_time:<pk>`) therefore stays as it was billed, and a row that
      "corrects" it is a new charge; a wrong charge is corrected by a credit note, never by an edit.

    A unit price of 0 is allowed (an item shown at no cost); a negative one is refused, since a
    credit is a credit note. The date may not be in the future (UTC); the charge's amount, with the
    partner's tax, must fit on one invoice.
    """

    name = "one-time-charges"
    resource_class = OneTimeChargeResource
    required_columns = ("partner", "description", "quantity", "unit_price", "date")

    @staticmethod
    def key(partner_id: int, customer_id: int | None, values: dict) -> tuple:
        return (partner_id, customer_id, values["description"], values["quantity"], values["unit_price"],
                values["date"], values["taxable"])

    def process_batch(self, batch: list[ParsedRow], ctx: ImportContext) -> None:
        today = utc_date(timezone.now())
        # the partners' rows are the billing run's lock: a charge is not half-seen by a concurrent run, and two
        # concurrent imports of one file see each other's charges (and so create them once)
        partners = {p.slug: p for p in partners_lock(
            Partner.objects.filter(slug__in={r.values["partner"] for r in batch}).values("pk")).values()}
        customers = customers_by_key(
            (r.values["partner"], r.values["customer"]) for r in batch if r.values["customer"]
        )
        candidates = []
        for row in batch:
            v = row.values
            partner = partners.get(v["partner"])
            if partner is None:
                ctx.error(row.number, "partner", f"unknown partner {v['partner']!r}")
                continue
            customer = None
            if v["customer"]:
                customer = customers.get((partner.slug, v["customer"]))
                if customer is None:
                    ctx.error(row.number, "customer", f"unknown customer {v['customer']!r} of partner {partner.slug}")
                    continue
            if v["date"] > today:
                ctx.error(row.number, "date", f"{v['date']} is in the future")
                continue
            amount = quantize_money(v["quantity"] * v["unit_price"], partner.currency)
            tax = tax_on(amount, partner.tax_rate, partner.currency)
            if amount + tax >= MAX_TOTAL:
                ctx.error(row.number, "unit_price", f"quantity x unit_price = {amount} {partner.currency} is too "
                                                    f"large for one invoice")
                continue
            candidates.append((row, partner, customer))
        existing = set()
        if candidates:
            stored = OneTimeCharge.objects.filter(
                partner__in={p.pk for _, p, _ in candidates}, date__in={r.values["date"] for r, _, _ in candidates}
            ).values("partner_id", "customer_id", "description", "quantity", "unit_price", "date", "taxable")
            existing = {self.key(s["partner_id"], s["customer_id"], s) for s in stored}
        seen: set[tuple] = ctx.state.setdefault("seen", set())
        creates = []
        for row, partner, customer in candidates:
            key = self.key(partner.pk, customer.pk if customer else None, row.values)
            if key in seen or key in existing:
                ctx.unchanged += 1  # an exact duplicate, in the file or already imported
                continue
            seen.add(key)
            v = row.values
            creates.append(OneTimeCharge(
                partner=partner, customer=customer, description=v["description"], quantity=v["quantity"],
                unit_price=v["unit_price"], date=v["date"], taxable=v["taxable"], source=ctx.source[:100],
            ))
            ctx.created += 1
        if not creates or not ctx.ok:
            return  # nothing will be kept: spare the writes, keep validating
        OneTimeCharge.objects.bulk_create(creates)
        actor = ctx.actor
        AuditLog.objects.bulk_create(
            audit_entry(
                actor=actor, action=AuditAction.ONE_TIME_CHARGE_CREATE, obj=charge, partner=charge.partner,
                after={"customer": charge.customer.slug if charge.customer else None,
                       "description": charge.description, "quantity": jsonable(charge.quantity),
                       "unit_price": jsonable(charge.unit_price), "currency": charge.partner.currency,
                       "date": jsonable(charge.date), "taxable": charge.taxable, "file": ctx.source},
            )
            for charge in creates
        )


@register_import
class PaymentsImport(ImportKind):
    """Payments received against issued invoices (billing-rules 4.6-4.8: the ledger and the payment status).

    `invoice_number` names an issued CI or INV (case does not matter: ci-0001 is CI-0001); a draft
    has no number to pay, and a credit note is not paid. The amount is above zero, in the invoice's
    currency, with at most its minor unit's places (2 for USD/EUR/GBP). `paid_on` is a UTC date, not
    in the future and not before the invoice's issue date.

    A payment's identity is (invoice, amount, paid_on, reference): a row equal to a payment already
    recorded, or to an earlier row of the file, is an exact duplicate and changes nothing, so a bank
    file can be imported again. Two real payments of the same amount on the same day to the same
    invoice need distinct references. More than the amount due is accepted (the invoice is paid; the
    rest stays on the partner's account balance), and so is a payment of a voided invoice, which
    stays void.

    The whole file is read first; then every partner it pays is locked at once (as the billing
    run locks its batch) and the payments are written in bulk, each audited as `payment.record` (as
    invoicing.services.payment_record does), then the payment status of every invoice touched is
    refreshed once, after the last batch: open, partially_paid, paid or overdue as of today.
    """

    name = "payments"
    resource_class = PaymentResource
    required_columns = ("invoice_number", "amount", "paid_on")

    def process_batch(self, batch: list[ParsedRow], ctx: ImportContext) -> None:
        # kept until the file is read: its partners are then locked at once, in one order (`finish`)
        ctx.state.setdefault("rows", []).extend(batch)

    def finish(self, ctx: ImportContext) -> None:
        rows = ctx.state.pop("rows", [])
        size = settings.IMPORT_BATCH_SIZE
        # every partner of the file first, at once and in primary-key order, as the billing run locks its batch
        # (`partners_lock`), before any payment is stamped recorded_at: a payment of a partner being billed waits
        # for the run and counts on the next CI. Locked batch by batch, a file of several partners and a run of
        # several could each hold a partner the other waits for (a deadlock).
        numbers = sorted({r.values["invoice_number"].upper() for r in rows})
        partner_ids = set()
        for start in range(0, len(numbers), size):
            partner_ids.update(Invoice.objects.filter(number__in=numbers[start:start + size])
                               .values_list("partner_id", flat=True))
        partners_lock(partner_ids)
        for start in range(0, len(rows), size):
            self._record(rows[start:start + size], ctx)
        self._refresh_statuses(ctx)

    def _record(self, rows: list[ParsedRow], ctx: ImportContext) -> None:
        """Record a batch of payment rows; the caller holds their partners' locks."""
        today = utc_date(timezone.now())
        numbers = {r.values["invoice_number"].upper() for r in rows}
        # locked: two concurrent imports of one bank file record each payment once
        invoices = {
            i.number: i for i in Invoice.objects.select_for_update(of=("self",)).filter(number__in=numbers)
            .select_related("partner").order_by("pk")
        }
        candidates = []
        for row in rows:
            v = row.values
            number = v["invoice_number"].upper()
            invoice = invoices.get(number)
            if invoice is None:
                ctx.error(row.number, "invoice_number", f"unknown invoice {v['invoice_number']!r}")
                continue
            if ctx.partner and invoice.partner.slug != ctx.partner:
                ctx.error(row.number, "invoice_number", f"{number} is an invoice of partner {invoice.partner.slug}, "
                                                        f"not of the partner given with --partner ({ctx.partner})")
                continue
            # the rules of a payment, the admin's and payment_record's too (billing-rules 4.8)
            refusals = payment_refusals(invoice=invoice, amount=v["amount"], paid_on=v["paid_on"], today=today)
            for column, reason in refusals:
                ctx.error(row.number, column, reason)
            if not refusals:
                candidates.append((row, invoice))
        existing = set()
        if candidates:
            existing = set(Payment.objects.filter(invoice__in={i.pk for _, i in candidates})
                           .values_list("invoice_id", "amount", "paid_on", "reference"))
        seen: set[tuple] = ctx.state.setdefault("seen", set())
        creates = []
        actor = ctx.actor
        for row, invoice in candidates:
            v = row.values
            key = (invoice.pk, v["amount"], v["paid_on"], v["reference"])
            if key in seen or key in existing:
                ctx.unchanged += 1  # an exact duplicate, in the file or already recorded
                continue
            seen.add(key)
            creates.append(Payment(
                partner_id=invoice.partner_id, invoice=invoice, amount=v["amount"], paid_on=v["paid_on"],
                reference=v["reference"], recorded_by=actor.user, source=ctx.source[:100],
            ))
            ctx.created += 1
        if not creates or not ctx.ok:
            return
        Payment.objects.bulk_create(creates)
        AuditLog.objects.bulk_create(
            audit_entry(actor=actor, action=AuditAction.PAYMENT_RECORD, obj=p, partner=p.invoice.partner,
                        after={"invoice": p.invoice.number, "amount": str(p.amount), "paid_on": str(p.paid_on),
                               "reference": p.reference, "file": ctx.source})
            for p in creates
        )
        ctx.state.setdefault("touched", set()).update(p.invoice_id for p in creates)

    def _refresh_statuses(self, ctx: ImportContext) -> None:
        touched = ctx.state.get("touched")
        if not ctx.ok or not touched:
            return
        locked = Invoice.objects.select_for_update().filter(pk__in=touched).order_by("pk")
        list(locked.values_list("pk", flat=True))
        invoice_statuses_refresh(invoices=Invoice.objects.filter(pk__in=touched))
