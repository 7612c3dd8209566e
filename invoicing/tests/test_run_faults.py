"""A billing run that dies part way: faults injected into a run of four partners.

What must hold (billing-rules 4.9, 8.2, billing is idempotent, running twice = running once):
- each partner is one transaction: the partners billed before the fault stand, the partner being billed
  leaves nothing (no invoice, line, child, consumed number, queued email, stored PDF or audit row), the
  partners after it are not touched;
- the rerun bills the rest, and the whole result equals one clean run: the same `export_report`
  invoice-lines, periods and statements, numbers gapless, nothing twice, each invoice emailed once;
- a fault in the email or the PDF after commit leaves the invoice issued; the daily job sends the email
  later, and billing again issues nothing.

The faults are planted with monkeypatch (no product hook): the rating of a month of the third partner
raises (a worker dying in the middle of a partner), or the audit row of its last invoice does (after
every line is written and numbered, just before commit). The clean run is billed first inside a
transaction that is rolled back, and its exports are kept to compare with.

Transactional tests: commits and on-commit emails happen for real, on SQLite and on PostgreSQL.
Each partner (USD, 10% tax, billing emails; customer Acme pays in 15 days):
support flat 100.00 partner-level from 1 March; agents per_asset 10.00 for Acme from 1 March (3 agents,
then 4 from 10 April: a proration on the May CI); seats seat_days 20.00 for Acme from 1 March (one
seat from 5 March); backup flat 30.00 for Acme from 20 April (a first-month INV); a 2 x 250.00 firewall
on 15 April (a one-time INV). Through 1 June: CI March, CI April, INV 15 April, INV 20 April, CI May,
CI June; six invoices a partner, 4 CIs and 2 INVs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.db import transaction
from djmoney.money import Money
from kombu.exceptions import OperationalError as BrokerUnreachable

from billing.core.actor import Actor
from invoicing.models import ChildInvoice, Invoice, InvoiceLine, InvoiceSequence, InvoiceState
from invoicing.services import billing_run, ledger, run
from invoicing.tasks import refresh_payment_statuses_task, send_invoice_task
from metering.services import AgentRow, inventory_apply
from partners.models import AuditLog, Method
from partners.tests.factories import (
    CustomerFactory,
    MemberFactory,
    PartnerFactory,
    SeatAssignmentFactory,
    ServiceFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal
ACTOR = Actor(label="faults test")
THROUGH = date(2026, 6, 1)
SLUGS = ("alpha", "bravo", "charlie", "delta")
PER_PARTNER = {"CI": 4, "INV": 2}
REPORTS = (("invoice-lines",), ("periods",), ("statements", "--period", "2026-04"),
           ("statements", "--period", "2026-05"))


class WorkerDied(Exception):
    """The planted fault."""


def build(slug: str, *, emails: bool = True) -> None:
    partner = PartnerFactory(slug=slug, name=f"{slug.title()} MSP", tax_rate=D("10"),
                             billing_emails=f"billing@{slug}.example" if emails else "")
    acme = CustomerFactory(partner=partner, slug=f"{slug}-acme", name=f"Acme of {slug}",
                           rmm_organization=f"ACME-{slug}", payment_terms_days=15)

    def service(code, method, price, **fields):
        fields.setdefault("start_date", date(2026, 3, 1))
        ServiceFactory(partner=partner, code=code, name=code.title(), method=method,
                       unit_price=Money(D(price), "USD"), **fields)

    service("support", Method.FLAT, "100.00")
    service("agents", Method.PER_ASSET, "10.00", customer=acme)
    service("seats", Method.SEAT_DAYS, "20.00", customer=acme)
    service("backup", Method.FLAT, "30.00", customer=acme, start_date=date(2026, 4, 20))
    SeatAssignmentFactory(member=MemberFactory(customer=acme, name="ana"),
                          assigned_at=datetime(2026, 3, 5, 9, 0, tzinfo=UTC))
    for as_of, count in (("2026-03-01", 3), ("2026-04-10", 4)):
        inventory_apply(partner=partner, as_of=date.fromisoformat(as_of), actor=ACTOR, agents={
            f"{slug}-{n}": AgentRow(f"{slug}-{n}", f"PC-{n}", f"ACME-{slug}", "") for n in range(count)})
    partner.one_time_charges.create(customer=acme, description="Firewall", quantity=D("2"),
                                    unit_price=D("250.00"), date=date(2026, 4, 15))


def exports(cli) -> dict[tuple, list[str]]:
    """The CSV of each report: its header, then its rows sorted (row order is free)."""
    result = {}
    for report in REPORTS:
        out = cli("export_report", *report)
        assert out.status == 0, out.err
        header, *rows = out.out.splitlines()
        result[report] = [header, *sorted(rows)]
    return result


@pytest.fixture
def world(cli, monkeypatch):
    """Four partners; the exports of one clean run (billed, read, then rolled back); emails queued and PDFs
    rendered are recorded (the PDF is a stand-in: WeasyPrint is not what is tested here)."""
    for slug in SLUGS:
        build(slug)
    with pytest.raises(WorkerDied), transaction.atomic():
        assert len(billing_run(through=THROUGH, actor=ACTOR)) == 6 * len(SLUGS)
        clean = exports(cli)
        raise WorkerDied("roll the clean run back")
    assert not Invoice.objects.exists() and not InvoiceSequence.objects.filter(last__gt=0).exists()
    invoice_rows = clean[("invoice-lines",)][1:]
    assert len({row.split(",")[0] for row in invoice_rows}) == 6 * len(SLUGS)  # the comparison is not vacuous
    assert len(clean[("periods",)]) == 1 + 3 * len(SLUGS)  # seats: March, April, May

    queued: list[int] = []
    enqueue = ledger.invoice_emails_enqueue
    monkeypatch.setattr(ledger, "invoice_emails_enqueue", lambda pks: (queued.extend(pks), enqueue(pks)))
    monkeypatch.setattr("invoicing.pdf.render_invoice_pdf", lambda invoice: f"%PDF {invoice.number}".encode())
    mail.outbox.clear()
    return {"clean": clean, "queued": queued}


def issued(slug: str | None = None):
    invoices = Invoice.objects.filter(state=InvoiceState.ISSUED)
    return invoices.filter(partner__slug=slug) if slug else invoices


def stored_pdfs() -> list[str]:
    folder = Path(django_settings.MEDIA_ROOT) / "invoices"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def numbers(*slugs: str) -> set[str]:
    return set(Invoice.objects.filter(partner__slug__in=slugs).values_list("number", flat=True))


def assert_untouched(slug: str, world) -> None:
    """Nothing of the partner is left: invoices, lines, children, audit rows, emails queued or sent, PDFs."""
    assert not Invoice.objects.filter(partner__slug=slug).exists()
    assert not InvoiceLine.objects.filter(invoice__partner__slug=slug).exists()
    assert not ChildInvoice.objects.filter(invoice__partner__slug=slug).exists()
    assert not AuditLog.objects.filter(partner__slug=slug, action__startswith="invoice.").exists()
    assert not any(slug.title() in message.subject for message in mail.outbox)
    assert not any(slug in pdf for pdf in stored_pdfs())


def assert_like_one_clean_run(cli, world) -> None:
    """The result equals the clean run; every number once, gapless; one CI per partner and month; every
    invoice queued and emailed exactly once, with one stored PDF each."""
    assert exports(cli) == world["clean"]
    count = len(SLUGS)
    for prefix, per_partner in PER_PARTNER.items():
        got = sorted(issued().filter(kind=prefix).values_list("number", flat=True))
        assert got == [f"{prefix}-{n:04d}" for n in range(1, per_partner * count + 1)]
        assert InvoiceSequence.objects.get(prefix=prefix).last == per_partner * count
    for slug in SLUGS:
        assert sorted(issued(slug).filter(kind="CI").values_list("month", flat=True)) == [
            "2026-03", "2026-04", "2026-05", "2026-06"]
    everything = set(issued().values_list("pk", flat=True))
    assert sorted(world["queued"]) == sorted(everything)
    assert sorted(m.attachments[0][0] for m in mail.outbox) == sorted(f"{n}.pdf" for n in numbers(*SLUGS))
    assert stored_pdfs() == sorted(f"{n}-v1.pdf" for n in numbers(*SLUGS))
    assert AuditLog.objects.filter(action="invoice.issue").count() == len(everything)
    assert billing_run(through=THROUGH, actor=ACTOR) == []


# --- the fault plants -------------------------------------------------------------------------------

def fault_in_rating(monkeypatch) -> None:
    """Charlie's run dies while rating May: its March and April CIs and both April INVs are already
    written in its transaction, their emails registered for after commit. Months are rated for a
    batch of partners together: the batch dies, and so does charlie alone when the batch is billed
    again one partner at a time."""
    rate = run.rate_partners_month

    def dying(*, partners, month, billed, aside=False):
        if "charlie" in {p.slug for p in partners} and str(month) == "2026-05":
            raise WorkerDied("the worker died while rating charlie's May")
        return rate(partners=partners, month=month, billed=billed, aside=aside)

    monkeypatch.setattr(run, "rate_partners_month", dying)


def fault_in_last_step(monkeypatch) -> None:
    """Charlie's run dies on the audit row of its last invoice (the June CI): every line of every one of
    its invoices is written and every number taken; only the commit is missing (in its batch, and
    again when the batch is billed one partner at a time)."""
    entry = ledger.audit_entry

    def dying(**kwargs):
        obj = kwargs["obj"]
        if kwargs["action"] == "invoice.issue" and kwargs["partner"].slug == "charlie" and obj.month == "2026-06":
            assert obj.number and obj.lines.count() > 0
            raise WorkerDied("the worker died before charlie's commit")
        return entry(**kwargs)

    monkeypatch.setattr(ledger, "audit_entry", dying)


@pytest.mark.parametrize("plant", [fault_in_rating, fault_in_last_step], ids=["mid-partner", "before-commit"])
def test_a_run_that_dies_after_two_partners_leaves_nothing_half_billed_and_the_rerun_completes(
        cli, world, monkeypatch, plant):
    plant(monkeypatch)
    with pytest.raises(WorkerDied):
        billing_run(through=THROUGH, actor=ACTOR)

    # alpha and bravo are billed in full and stand; charlie left nothing; delta was never reached
    for slug in ("alpha", "bravo"):
        assert issued(slug).count() == 6
    assert_untouched("charlie", world)
    assert_untouched("delta", world)
    assert sorted(issued().values_list("number", flat=True)) == [
        "CI-0001", "CI-0002", "CI-0003", "CI-0004", "CI-0005", "CI-0006", "CI-0007", "CI-0008",
        "INV-0001", "INV-0002", "INV-0003", "INV-0004"]
    assert dict(InvoiceSequence.objects.filter(last__gt=0).values_list("prefix", "last")) == {"CI": 8, "INV": 4}
    assert not Invoice.objects.filter(state=InvoiceState.DRAFT).exists()
    assert sorted(world["queued"]) == sorted(issued().values_list("pk", flat=True))
    assert len(mail.outbox) == 12
    assert stored_pdfs() == sorted(f"{n}-v1.pdf" for n in numbers("alpha", "bravo"))

    monkeypatch.undo()  # the worker is back (the recorders too: put them back)
    queued = world["queued"]
    enqueue = ledger.invoice_emails_enqueue
    monkeypatch.setattr(ledger, "invoice_emails_enqueue", lambda pks: (queued.extend(pks), enqueue(pks)))
    monkeypatch.setattr("invoicing.pdf.render_invoice_pdf", lambda invoice: f"%PDF {invoice.number}".encode())
    rerun = billing_run(through=THROUGH, actor=ACTOR)
    assert sorted({i.partner.slug for i in rerun}) == ["charlie", "delta"] and len(rerun) == 12

    assert_like_one_clean_run(cli, world)


def smtp_down(monkeypatch) -> None:
    def refuse(self, messages):
        raise ConnectionRefusedError("SMTP server refused the connection")

    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", refuse)


def pdf_broken(monkeypatch) -> None:
    def crash(invoice):
        raise OSError("cannot load Pango")

    monkeypatch.setattr("invoicing.pdf.render_invoice_pdf", crash)


@pytest.mark.parametrize("fault", [smtp_down, pdf_broken], ids=["smtp-down", "pdf-broken"])
def test_a_fault_in_the_email_after_commit_keeps_the_invoice_and_the_daily_job_sends_it_once(
        cli, world, monkeypatch, fault):
    """The invoices are committed before their email is tried: a failing email (SMTP refused, or the PDF
    cannot be rendered) leaves them issued and unsent, with no PDF file left behind. The 06:00 job then
    emails each once; billing again issues nothing and emails nothing."""
    with monkeypatch.context() as patched:
        fault(patched)
        documents = billing_run(through=THROUGH, actor=ACTOR)
        assert len(documents) == 24
        assert mail.outbox == []
        assert issued().filter(emailed_at__isnull=True).count() == 24
        assert stored_pdfs() == []
        assert not issued().exclude(pdf="").exists() and not issued().filter(pdf_version__gt=0).exists()
        assert billing_run(through=THROUGH, actor=ACTOR) == []  # billing again does not re-bill

    refresh_payment_statuses_task()  # the daily job: the emails that never left
    refresh_payment_statuses_task()  # run twice: sends nothing more
    assert not issued().filter(emailed_at__isnull=True).exists()
    assert sorted(issued().values_list("pdf", flat=True)) == sorted(f"invoices/{n}-v1.pdf" for n in numbers(*SLUGS))
    world["queued"][:] = sorted(issued().values_list("pk", flat=True))  # queued at issue, then by the job
    assert_like_one_clean_run(cli, world)


def test_a_broker_that_cannot_be_reached_is_tried_once_and_the_daily_job_sends_the_emails(
        cli, world, monkeypatch, caplog):
    """Redis down when the run commits: the invoices stay issued, the queue is tried once for all of them
    (not three publish retries for each of hundreds of invoices), one log line names them, and the daily job
    sends each email once the broker is back."""

    tries = []

    def unreachable(args, **options):
        tries.append(args)
        raise BrokerUnreachable("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with monkeypatch.context() as patched:
        patched.setattr(send_invoice_task, "apply_async", unreachable)
        documents = billing_run(through=THROUGH, actor=ACTOR)
    assert len(documents) == 24 and mail.outbox == []
    assert len(tries) == 1  # one commit: the four partners are one batch
    assert sorted(world["queued"]) == sorted(issued().values_list("pk", flat=True))
    outage = [r for r in caplog.records if "could not reach the queue" in r.getMessage()]
    assert len(outage) == 1 and "the emails of 24 invoices" in outage[0].getMessage()

    refresh_payment_statuses_task()  # the daily job
    assert not issued().filter(emailed_at__isnull=True).exists() and len(mail.outbox) == 24


def test_an_error_queuing_one_email_does_not_keep_the_others(cli, world, monkeypatch, caplog):
    """One invoice's email cannot be queued (a fault of its own, not the broker's): it is logged, and the
    other invoices' emails are queued and sent."""

    queue = send_invoice_task.apply_async
    first = []

    def refuse_the_first(args, **options):
        if not first:
            first.append(args[0])
            raise ValueError("cannot serialize")
        return queue(args, **options)

    monkeypatch.setattr(send_invoice_task, "apply_async", refuse_the_first)
    assert len(billing_run(through=THROUGH, actor=ACTOR)) == 24
    assert len(mail.outbox) == 23
    assert list(issued().filter(emailed_at__isnull=True).values_list("pk", flat=True)) == first
    assert f"could not queue the email of invoice {first[0]}" in caplog.text
