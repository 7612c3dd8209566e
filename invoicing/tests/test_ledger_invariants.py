"""The ledger's invariants (billing-rules 4, docs/architecture.md), as properties of random histories.

Hypothesis draws a world (one or two partners, customers, services of every billing method) and a
history of steps (tests/ledger_histories.py), played over some months through the real services:
seats assigned and removed, usage snapshots (backdated too), tenant suspensions, RMM inventories,
one-time charges (backdated into invoiced months too), services entered late with past start
dates, seat purchases, the daily billing job or single runs (also as drafts issued one by one),
payments (partial, full, over) dated back to their invoice, whole and per-line credit notes. After
every step that may move money, and in full at the end:

1. each CI's amount due is the ledger balance right after it, worked out here from the rows: the
   charge and tax lines of the documents dated before the CI and issued by the time it was, the CI's
   own lines, less the payments dated before it and recorded by then (what was recorded later counts
   on the next CI, billing-rules 4.6); `balance_at(..., known_at=...)` says the same;
2. the balance at any date (every date where it moves, and random ones) is the charges and taxes
   dated up to it less the payments and credits dated up to it: `invoicing.selectors.balance_at`,
   and `partner_balance` for today;
3. every invoice's total is the sum of its lines, with one tax line rounded once (CI, child, INV,
   CN; the last credit note of an invoice takes the tax still uncredited);
4. rating twice equals rating once (and writes nothing), and a billing run repeated at once issues
   nothing and changes no row and no export.

Each example runs inside a savepoint rolled back at its end, so examples never see each other's rows.
A failing example is reported with the history as played (Hypothesis notes). HYPOTHESIS_PROFILE=thorough
runs many more histories; HYPOTHESIS_PROFILE=noshrink reports a failure without shrinking it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
from collections import Counter, defaultdict
from dataclasses import astuple
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.core.management import call_command
from django.db import transaction
from hypothesis import HealthCheck, Phase, given, note, settings

from billing.core.actor import Actor
from billing.core.importing import run_import_text
from billing.core.money import currency_quantum
from billing.core.periods import Period, periods_between
from conftest import examples
from invoicing.models import (
    ChildInvoice,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceSequence,
    InvoiceState,
    LineType,
    Payment,
)
from invoicing.rating import rate_partner_month
from invoicing.selectors import balance_at
from invoicing.services import (
    BillingError,
    billed_units,
    billing_run,
    credit_note_issue,
    invoice_issue_draft,
    partner_balance,
    payment_record,
)
from metering.services import (
    AgentRow,
    TenantStateError,
    inventory_apply,
    tenant_suspend,
    tenant_unsuspend,
    usage_snapshot_record,
)
from partners.models import AuditLog, Customer, Method, Partner, Service
from partners.seating import SeatRuleError
from partners.services import seat_assign, seat_purchase_create, seat_unassign
from tests.ledger_histories import (
    END,
    START,
    AddService,
    Advance,
    Assign,
    BalanceOn,
    Bill,
    BillTwice,
    BuySeats,
    Charge,
    Clock,
    CreditLines,
    CreditWhole,
    Draft,
    DraftThenIssue,
    Idle,
    Inventory,
    IssueDrafts,
    NextFirst,
    Pay,
    RateTwice,
    SuspendOrUnsuspend,
    Unassign,
    Usage,
    World,
    customers_csv,
    histories,
    partners_csv,
    services_csv,
    worlds,
)

ACTOR = Actor(label="ledger properties")
HUNDRED = Decimal(100)
_QUIET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
          HealthCheck.filter_too_much]
_PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]  # no "explain": slow here
PROFILES = {
    # the default: runs in well under a minute on SQLite on a loaded two-core machine
    "default": settings(max_examples=examples(12), deadline=None, database=None, phases=_PHASES,
                        suppress_health_check=_QUIET),
    # HYPOTHESIS_PROFILE=thorough: many more histories, for a nightly job or before touching the ledger
    "thorough": settings(max_examples=examples(400), deadline=None, database=None, phases=_PHASES,
                         suppress_health_check=_QUIET),
    # HYPOTHESIS_PROFILE=noshrink: report the first failing history at once (shrinking one takes minutes)
    "noshrink": settings(max_examples=examples(40), deadline=None, database=None, phases=[Phase.generate],
                         suppress_health_check=_QUIET),
}
LEDGER_SETTINGS = PROFILES.get(os.environ.get("HYPOTHESIS_PROFILE", "default"), PROFILES["default"])


# --- the independent ledger -----------------------------------------------------------------------
def _round(amount: Decimal, currency: str) -> Decimal:
    rounded = amount.quantize(currency_quantum(currency), rounding=ROUND_HALF_UP)
    return abs(rounded) if rounded.is_zero() else rounded


class Ledger:
    """A partner's issued documents, their lines and its payments, read as plain rows: every figure the
    properties expect is summed here, never taken from the product's totals or statements."""

    def __init__(self, partner: Partner):
        self.partner = partner
        self.docs = list(Invoice.objects.filter(partner=partner, state=InvoiceState.ISSUED).order_by("issued_at",
                                                                                                      "pk"))
        self.lines = defaultdict(list)
        for line in InvoiceLine.objects.filter(invoice__partner=partner, invoice__state=InvoiceState.ISSUED) \
                .order_by("position", "pk"):
            self.lines[line.invoice_id].append(line)
        self.children = defaultdict(list)
        for child in ChildInvoice.objects.filter(invoice__partner=partner, invoice__state=InvoiceState.ISSUED):
            self.children[child.invoice_id].append(child)
        self.payments = list(Payment.objects.filter(partner=partner))
        self.amount = {doc.pk: sum((line.amount for line in self.lines[doc.pk]), Decimal(0)) for doc in self.docs}

    def balance_on(self, day: date) -> Decimal:
        """Charges and taxes dated up to `day`, less payments and credits dated up to it."""
        charged = sum((self.amount[d.pk] for d in self.docs if d.issue_date <= day), Decimal(0))
        return charged - sum((p.amount for p in self.payments if p.paid_on <= day), Decimal(0))

    def balance_after(self, ci: Invoice) -> Decimal:
        """The balance right after a CI: its own lines, plus what was dated before it and issued by the
        time it was, less the payments dated before it and recorded by then."""
        before = sum((self.amount[d.pk] for d in self.docs
                      if d.pk != ci.pk and d.issue_date < ci.issue_date and d.issued_at <= ci.issued_at), Decimal(0))
        paid = sum((p.amount for p in self.payments
                    if p.paid_on < ci.issue_date and p.recorded_at <= ci.issued_at), Decimal(0))
        return self.amount[ci.pk] + before - paid

    def dates(self) -> set[date]:
        """Every date where the balance may move, and the day before each."""
        days = {d.issue_date for d in self.docs} | {p.paid_on for p in self.payments}
        return days | {day - timedelta(days=1) for day in days}


def check_amounts_due(ledger: Ledger, *, skip=frozenset()) -> None:
    """Invariant 1 (`skip`: CIs already checked; a CI and what was recorded before it never change)."""
    for ci in ledger.docs:
        if ci.kind != InvoiceKind.CI or ci.pk in skip:
            continue
        expected = ledger.balance_after(ci)
        assert ci.amount_due == expected, (
            f"{ci.number} ({ci.issue_date}) states amount due {ci.amount_due}, the ledger right after it is "
            f"{expected}: previous {ci.previous_balance}, payments and credits {ci.payments_and_credits}, "
            f"individual invoices {ci.other_invoices}, total {ci.total}")
        assert ci.previous_balance - ci.payments_and_credits + ci.other_invoices + ci.total == ci.amount_due
        known = balance_at(ledger.partner, ci.issue_date - timedelta(days=1), known_at=ci.issued_at)
        assert known + ci.total == ci.amount_due, f"{ci.number}: balance_at as known then {known} + {ci.total}"


def check_balances(ledger: Ledger, days) -> None:
    """Invariant 2, at the given dates."""
    for day in sorted(days):
        expected = ledger.balance_on(day)
        shown = balance_at(ledger.partner, day)
        assert shown == expected, f"balance of {ledger.partner.slug} on {day}: {shown}, the ledger says {expected}"


def check_documents(ledger: Ledger, *, skip=frozenset()) -> None:
    """Invariant 3: totals are sums of lines, one tax line rounded once; children add up; credit notes
    negate what they credit and the credits of an invoice never exceed it (`skip`: documents already
    checked, as issued documents never change)."""
    currency = ledger.partner.currency
    by_pk = {doc.pk: doc for doc in ledger.docs}
    credited_by: dict[int, list[Invoice]] = defaultdict(list)
    for doc in ledger.docs:
        if doc.kind == InvoiceKind.CN:
            credited_by[doc.credits_id].append(doc)
        if doc.pk in skip:
            continue
        lines = ledger.lines[doc.pk]
        charges = [line for line in lines if line.line_type != LineType.TAX]
        taxes = [line for line in lines if line.line_type == LineType.TAX]
        name = f"{doc.number} ({doc.kind} {doc.issue_date})"
        assert doc.total == ledger.amount[doc.pk], f"{name}: total {doc.total} is not the sum of its lines"
        assert doc.subtotal == sum((line.amount for line in charges), Decimal(0)), name
        assert len(taxes) == (1 if doc.tax_rate > 0 else 0), f"{name}: {len(taxes)} tax lines at {doc.tax_rate}%"
        assert doc.tax_amount == (taxes[0].amount if taxes else 0), name
        assert charges, f"{name} has no charge line"
        for line in lines:
            assert line.amount == _round(line.amount, currency), f"{name}: {line.amount} is not rounded"
        taxable = sum((line.amount for line in charges if line.taxable), Decimal(0))
        if doc.kind == InvoiceKind.CN:
            assert doc.credits_id in by_pk, f"{name} credits an invoice of another partner or a draft"
            continue
        assert doc.tax_amount == _round(taxable * doc.tax_rate / HUNDRED, currency), (
            f"{name}: tax {doc.tax_amount} is not {doc.tax_rate}% of {taxable} rounded once")
        if doc.kind == InvoiceKind.INV:
            assert len(charges) == 1 and not ledger.children[doc.pk], name
            assert doc.amount_due == doc.total, name
            continue
        children = {child.pk: child for child in ledger.children[doc.pk]}
        assert children, f"{name} has no child invoice"
        assert doc.due_date == min(child.due_date for child in children.values()), name
        assert all(line.amount != 0 for line in charges), f"{name} carries a 0.00 line"
        for child in children.values():
            mine = [line for line in charges if line.child_id == child.pk]
            assert mine and child.subtotal == sum((line.amount for line in mine), Decimal(0)), (
                f"{name}: child {child.customer_id} subtotal {child.subtotal}")
        assert all(line.child_id in children for line in charges), f"{name}: a line outside every child"
    for invoice_pk, notes in credited_by.items():
        invoice = by_pk[invoice_pk]
        originals = {line.pk: line for line in ledger.lines[invoice_pk] if line.line_type != LineType.TAX}
        credited: set[int] = set()
        tax_credited = Decimal(0)
        for credit in sorted(notes, key=lambda n: (n.issued_at, n.pk)):
            name = f"{credit.number} for {invoice.number}"
            charges = [line for line in ledger.lines[credit.pk] if line.line_type != LineType.TAX]
            for line in charges:
                original = originals[int(line.key.removeprefix("credit:"))]
                assert line.line_type == LineType.CREDIT and original.pk not in credited, f"{name}: {line.key}"
                assert (line.amount, line.taxable) == (-original.amount, original.taxable), name
                credited.add(original.pk)
            tax_credited += credit.tax_amount
            if credited == set(originals):  # the last lines: the tax still uncredited, to the cent
                assert tax_credited == -invoice.tax_amount, f"{name}: credits {tax_credited} of {invoice.tax_amount}"
            else:
                taxable = sum((line.amount for line in charges if line.taxable), Decimal(0))
                assert credit.tax_amount == _round(taxable * invoice.tax_rate / HUNDRED, ledger.partner.currency), name
        if credited == set(originals):
            assert sum((n.total for n in notes), Decimal(0)) == -invoice.total, f"{invoice.number} credited in full"


def db_state(partner: Partner) -> tuple:
    """Every row a billing run could write or change, and the exports made from them."""
    exports = []
    for report in ("invoice-lines", "periods"):
        out = io.StringIO()
        call_command("export_report", report, "--partner", partner.slug, stdout=out)
        exports.append(out.getvalue())
    return (
        list(Invoice.objects.order_by("pk").values()),
        list(InvoiceLine.objects.order_by("pk").values()),
        list(ChildInvoice.objects.order_by("pk").values()),
        list(Payment.objects.order_by("pk").values()),
        list(InvoiceSequence.objects.order_by("prefix").values()),
        AuditLog.objects.count(),
        exports,
    )


def rated(lines) -> list[tuple]:
    return [(*astuple(line), line.details) for line in lines]


# --- the histories ------------------------------------------------------------------------------------
class History:
    """Plays a history's steps through the real services, on the history's clock."""

    def __init__(self, world: World):
        self.clock = Clock()
        self.count = 0  # numbers charges, payment references and services added late
        self.checked: set[int] = set()  # documents whose invariants held when issued
        with self.clock.moment():
            for kind, text in (("partners", partners_csv(world.partners)),
                               ("customers", customers_csv(world.customers)),
                               ("services", services_csv(world.services, world.customer_slugs()))):
                summary = run_import_text(kind, text)
                assert summary.ok, (kind, summary.errors)
        self.partners = list(Partner.objects.order_by("slug"))

    def partner(self, p: int) -> Partner:
        return self.partners[p % len(self.partners)]

    def customers(self, partner: Partner) -> list[Customer]:
        return list(Customer.objects.filter(partner=partner).order_by("slug"))

    def customer(self, p: int, c: int) -> Customer:
        customers = self.customers(self.partner(p))
        return customers[c % len(customers)]

    def invoice(self, p: int, pick: int) -> Invoice | None:
        invoices = list(Invoice.objects.issued().filter(partner=self.partner(p),
                                                        kind__in=[InvoiceKind.CI, InvoiceKind.INV])
                        .order_by("issue_date", "pk"))
        return invoices[pick % len(invoices)] if invoices else None

    def bill(self, partner: Partner, *, draft: bool = False) -> list[Invoice]:
        """A billing run through today (the command's `run_billing --through TODAY`)."""
        with self.clock.moment():
            return billing_run(through=self.clock.today, partner_slug=partner.slug, draft=draft, actor=ACTOR)

    def play(self, step) -> bool:
        """Play one step; True when it may have moved the ledger."""
        return getattr(self, "on_" + re.sub(r"(?<!^)([A-Z])", r"_\1", type(step).__name__).lower())(step)

    # -- time and billing
    def on_idle(self, step: Idle):
        return False

    def daily_job(self) -> bool:
        """The 03:00 job: every partner billed through today."""
        for partner in self.partners:
            self.bill(partner)
        return True

    def on_advance(self, step: Advance):
        self.clock.today = min(END, self.clock.today + timedelta(days=step.days))
        return step.daily_job and self.daily_job()

    def on_next_first(self, step: NextFirst):
        self.clock.today = min(END, Period.of(self.clock.today).next().first)
        return step.daily_job and self.daily_job()

    def on_bill(self, step: Bill):
        self.bill(self.partner(step.p))
        return True

    def on_bill_twice(self, step: BillTwice):
        """Invariant 4: the same run again at once, or one through an earlier date, issues nothing and
        changes no row nor export."""
        partner = self.partner(step.p)
        self.bill(partner)
        with self.clock.moment():
            before = db_state(partner)
            through = self.clock.today - timedelta(days=step.back)
            again = billing_run(through=through, partner_slug=partner.slug, actor=ACTOR)
            assert again == [], f"a second run through {through} issued {again}"
            assert db_state(partner) == before, "a second billing run changed rows or exports"
        return True

    def on_draft_then_issue(self, step: DraftThenIssue):
        """The admin's way: a draft run, then each draft issued in date order."""
        self.on_draft(Draft(step.p))
        return self.on_issue_drafts(IssueDrafts(step.p))

    def on_draft(self, step: Draft):
        self.bill(self.partner(step.p), draft=True)
        return False

    def on_issue_drafts(self, step: IssueDrafts):
        partner = self.partner(step.p)
        with self.clock.moment():
            for draft in Invoice.objects.drafts().filter(partner=partner).order_by("issue_date", "pk"):
                invoice_issue_draft(invoice=draft, actor=ACTOR)
        return True

    def on_rate_twice(self, step: RateTwice):
        """Invariant 4: rating is a function of the data: twice gives the same lines and writes nothing."""
        partner = self.partner(step.p)
        starts = Service.objects.filter(partner=partner).values_list("start_date", flat=True)
        months = list(periods_between(Period.of(min(START, *starts)), Period.of(self.clock.today).next()))
        month = months[step.month % len(months)]
        with self.clock.moment():
            before = db_state(partner)
            once = rate_partner_month(partner=partner, month=month, billed=billed_units(partner=partner))
            twice = rate_partner_month(partner=partner, month=month, billed=billed_units(partner=partner))
            assert rated(once) == rated(twice), f"rating {month} twice gave different lines"
            assert rated(rate_partner_month(partner=partner, month=month)) == rated(
                rate_partner_month(partner=partner, month=month))
            assert db_state(partner) == before, "rating wrote to the database"
        return False

    # -- usage
    def on_assign(self, step: Assign):
        with self.clock.moment(), contextlib.suppress(SeatRuleError):  # a cap, the commitment, a seat held
            seat_assign(customer=self.customer(step.p, step.c), member_name=step.member, actor=ACTOR)
        return False

    def on_unassign(self, step: Unassign):
        with self.clock.moment(), contextlib.suppress(SeatRuleError):  # no seat to end
            seat_unassign(customer=self.customer(step.p, step.c), member_name=step.member, actor=ACTOR)
        return False

    def on_buy_seats(self, step: BuySeats):
        services = list(Service.objects.filter(partner=self.partner(step.p), method=Method.SEAT_DAYS).order_by("code"))
        if services:
            with self.clock.moment():
                seat_purchase_create(service=services[step.s % len(services)], seats=step.seats, actor=ACTOR)
        return False

    def on_usage(self, step: Usage):
        with self.clock.moment():
            usage_snapshot_record(customer=self.customer(step.p, step.c),
                                  date=self.clock.today - timedelta(days=step.back), users_count=step.users,
                                  storage_bytes=step.storage_gb * 10**9, actor=ACTOR)
        return False

    def on_suspend_or_unsuspend(self, step: SuspendOrUnsuspend):
        customer = self.customer(step.p, step.c)
        with self.clock.moment():
            try:
                tenant_suspend(customer=customer, actor=ACTOR)
            except TenantStateError:
                tenant_unsuspend(customer=customer, actor=ACTOR)
        return False

    def on_inventory(self, step: Inventory):
        """The RMM inventory as of today: counts[i] agents in the i-th customer's organization, the last
        count in an organization no customer has."""
        partner = self.partner(step.p)
        orgs = [c.rmm_organization for c in self.customers(partner)][:3]
        orgs = [*orgs, *["elsewhere"] * (4 - len(orgs))]
        agents = {}
        for org, count in zip(orgs, step.counts, strict=True):
            for n in range(count):
                agents[f"{org}-{n}"] = AgentRow(f"{org}-{n}", f"pc-{org}-{n}", org, "g1" if n % 2 else "g2")
        with self.clock.moment():
            inventory_apply(partner=partner, as_of=self.clock.today, agents=agents, actor=ACTOR)
        return False

    # -- one-time charges and services added late
    def on_charge(self, step: Charge):
        partner = self.partner(step.p)
        customer = self.customer(step.p, step.c).slug if step.c is not None else ""
        self.count += 1
        text = ("partner,customer,description,quantity,unit_price,date,taxable\n"
                f"{partner.slug},{customer},Item {self.count},{step.quantity},{step.price},"
                f"{self.clock.today - timedelta(days=step.back)},{step.taxable}\n")
        with self.clock.moment():
            summary = run_import_text("one-time-charges", text)
        assert summary.ok, summary.errors
        return False

    def on_add_service(self, step: AddService):
        """A service entered late: its start date may fall in a month already invoiced, or before it."""
        partner = self.partner(step.p)
        self.count += 1
        start = min(step.service.start, self.clock.today)
        if step.service.method == "cmq":
            start = start.replace(day=1)
        end = step.service.end if step.service.end is None or step.service.end >= start else None
        service = dataclasses.replace(step.service, partner=partner.slug, code=f"late{self.count}", start=start,
                                      end=end)
        slugs = {partner.slug: [c.slug for c in self.customers(partner)]}
        with self.clock.moment():
            summary = run_import_text("services", services_csv([service], slugs))
        assert summary.ok, summary.errors
        return False

    # -- payments and credit notes
    def on_pay(self, step: Pay):
        invoice = self.invoice(step.p, step.pick)
        if invoice is None:
            return False
        quantum = currency_quantum(invoice.currency)
        paid = sum((payment.amount for payment in invoice.payments.all()), Decimal(0))
        credited = -sum((note.total for note in invoice.credit_notes.issued()), Decimal(0))
        owed = invoice.total - paid - credited
        if step.how == "full":
            amount = owed
        elif step.how == "part":
            amount = quantum * (step.units % max(1, int(owed / quantum)) + 1)
        else:
            amount = owed + quantum * (step.units % 5000 + 1)
        if amount <= 0:
            amount = quantum * (step.units % 5000 + 1)  # nothing owed: paid anyway, all of it extra
        self.count += 1
        paid_on = max(invoice.issue_date, self.clock.today - timedelta(days=step.back))
        with self.clock.moment():
            if step.imported:
                summary = run_import_text("payments", "invoice_number,amount,paid_on,reference\n"
                                                      f"{invoice.number},{amount},{paid_on},ref {self.count}\n")
                assert summary.ok and summary.created == 1, summary.errors
            else:
                payment_record(invoice=invoice, amount=amount, paid_on=paid_on, reference=f"ref {self.count}",
                               actor=ACTOR)
        return True

    def on_credit_whole(self, step: CreditWhole):
        invoice = self.invoice(step.p, step.pick)
        if invoice is None:
            return False
        with self.clock.moment():
            try:
                credit_note_issue(invoice=invoice, actor=ACTOR, reason="property test")
            except BillingError as exc:
                assert "already credited in full" in str(exc)
        return True

    def on_credit_lines(self, step: CreditLines):
        invoice = self.invoice(step.p, step.pick)
        if invoice is None:
            return False
        done = set(InvoiceLine.objects.filter(invoice__credits=invoice, line_type=LineType.CREDIT)
                   .values_list("key", flat=True))
        # the lines a clerk can choose: charges not credited yet (a negative line goes only with the whole invoice)
        left = [line for line in invoice.lines.exclude(line_type=LineType.TAX).order_by("position", "pk")
                if f"credit:{line.pk}" not in done and line.amount >= 0]
        if not left:
            return False
        chosen = [line for n, line in enumerate(left) if step.mask >> (n % 8) & 1] or left[:1]
        with self.clock.moment():
            credit_note_issue(invoice=invoice, lines=chosen, actor=ACTOR)
        return True

    def on_balance_on(self, step: BalanceOn):
        """Invariant 2 at a random date."""
        check_balances(Ledger(self.partner(step.p)), [step.day])
        return False

    # -- the properties
    def check(self, *, final: bool = False) -> None:
        """Invariants 1-3 for every partner: the documents issued since the last check (all of them when
        `final`), and the balance today (when `final`, on every date where it moves and the day before:
        the balance is a step function, so that covers every date)."""
        for partner in self.partners:
            ledger = Ledger(partner)
            skip = frozenset() if final else self.checked
            check_documents(ledger, skip=skip)
            check_amounts_due(ledger, skip=skip)
            check_balances(ledger, ledger.dates() if final else [self.clock.today])
            assert partner_balance(partner) == ledger.balance_on(self.clock.today)
            self.checked |= {doc.pk for doc in ledger.docs}


@contextlib.contextmanager
def example_rolled_back():
    """One example's rows live in a savepoint rolled back at its end: examples never see each other's."""
    with transaction.atomic():
        assert not Partner.objects.exists() and not Invoice.objects.exists(), "rows leaked from an earlier example"
        yield
        transaction.set_rollback(True)


@pytest.mark.django_db
@LEDGER_SETTINGS
@given(world=worlds(), steps=histories())
def test_ledger_invariants_hold_over_random_histories(world, steps):
    """After every step that may move money, and once more after a last daily job: invariants 1-3 for
    every partner; invariant 4 in the BillTwice and RateTwice steps."""
    with example_rolled_back():
        note(f"world: {world}")
        history = History(world)
        for step in steps:
            note(f"{history.clock.today}: {step}")  # the history as played, shown when a check fails
            if history.play(step):
                history.check()
        note(f"{history.clock.today}: the daily job, then the 1st of the next month and its daily job")
        history.daily_job()
        history.check()
        history.on_next_first(NextFirst(daily_job=True))  # what was recorded late shows on a next CI
        history.check(final=True)
        if os.environ.get("LEDGER_STATS"):  # how rich the histories are
            kinds = Counter(Invoice.objects.issued().values_list("kind", flat=True))
            print(f"until {history.clock.today}: {dict(kinds)}, {Payment.objects.count()} payments, "
                  f"{Service.objects.count()} services, {len(steps)} steps")
