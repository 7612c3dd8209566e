"""What is owed: invoices (CI with child invoices, INV, credit notes), lines, payments, one-time
charges, and the gapless numbering. An issued invoice never changes (billing-rules 4.4)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from invoicing.choices import InvoiceKind, InvoiceState, LineType, PaymentStatus, RunSource, RunStatus

AMOUNT = {"max_digits": 14, "decimal_places": 2}
# the largest amount a document holds is below it: its amount columns have 14 digits, 2 of them decimal places
MAX_TOTAL = Decimal(10) ** (AMOUNT["max_digits"] - AMOUNT["decimal_places"])
QUANTITY = {"max_digits": 24, "decimal_places": 10}  # exact enough for seat-months; shown to 4 places


# What may still change on an issued invoice: its payment standing and its rendered file.
MUTABLE_WHEN_ISSUED = frozenset({"payment_status", "pdf", "pdf_version", "emailed_at"})


class IssuedInvoiceError(ValidationError):
    """An attempt to change an issued invoice or its lines: corrections are new documents."""


class IssuedGuardQuerySet(models.QuerySet):
    """Issued documents (and their parts) never change (billing-rules 4.4, 12.7), in bulk either: for a model whose
    state is at `state_path`, only the `mutable` fields may change once issued. Our invoices and their lines, and
    rebilling's customer invoices and theirs."""

    state_path = "state"
    mutable: frozenset = frozenset()
    noun = "issued invoices"

    def update(self, **kwargs):
        frozen = set(kwargs) - self.mutable
        if frozen and self.filter(**{self.state_path: InvoiceState.ISSUED}).exists():
            raise IssuedInvoiceError(f"{self.noun} cannot change ({', '.join(sorted(frozen))})")
        document = self._document_field()
        if document is not None:  # nor are parts moved onto an issued document
            targets = {getattr(v, "pk", v) for k, v in kwargs.items() if k in (document.name, document.attname)}
            if self._issued_documents(targets):
                raise IssuedInvoiceError(f"{self.noun} cannot change; issue a credit note")
        return super().update(**kwargs)

    def delete(self):
        if self.filter(**{self.state_path: InvoiceState.ISSUED}).exists():
            raise IssuedInvoiceError(f"{self.noun} cannot be deleted; issue a credit note")
        return super().delete()

    def bulk_create(self, objs, *args, **kwargs):
        """No part is added to an issued document: the run and the credit notes write the lines and children of
        their documents while those are drafts, and issue them after."""
        objs = list(objs)
        document = self._document_field()
        if document is not None and self._issued_documents({getattr(o, document.attname) for o in objs}):
            raise IssuedInvoiceError(f"{self.noun} cannot change; issue a credit note")
        return super().bulk_create(objs, *args, **kwargs)

    def _document_field(self):
        """The foreign key to the document of a part (`invoice` of `invoice__state`); None for a document."""
        head, _, rest = self.state_path.partition("__")
        return self.model._meta.get_field(head) if rest else None

    def _issued_documents(self, pks) -> bool:
        pks = {pk for pk in pks if isinstance(pk, int)}
        return bool(pks) and self._document_field().related_model.objects.filter(
            pk__in=pks, state=InvoiceState.ISSUED).exists()


class IssuedDocumentMixin:
    """A document that never changes once issued but for MUTABLE_WHEN_ISSUED, and is never deleted: the stored
    state decides, not this copy's (a copy loaded as a draft may have been issued since)."""

    def save(self, *args, **kwargs):
        if self.pk:
            stored = type(self).objects.filter(pk=self.pk).values_list("state", flat=True).first()
            fields = set(kwargs.get("update_fields") or ())
            if stored == InvoiceState.ISSUED and (not fields or fields - MUTABLE_WHEN_ISSUED):
                raise IssuedInvoiceError(f"{self.number} is issued and cannot change; issue a credit note")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        stored = type(self).objects.filter(pk=self.pk).values_list("state", flat=True).first() if self.pk else None
        if InvoiceState.ISSUED in (self.state, stored):
            raise IssuedInvoiceError(f"{self.number or 'this invoice'} is issued and cannot be deleted; "
                                     "issue a credit note")
        return super().delete(*args, **kwargs)

    @property
    def is_issued(self) -> bool:
        return self.state == InvoiceState.ISSUED


class IssuedPartMixin:
    """A part of a document (a line, a child invoice) that cannot change or go once its `invoice` is issued;
    `part_noun` names it in the refusal ("lines of issued invoices")."""

    part_noun = "lines of issued invoices"

    def _document_issued(self) -> bool:
        """Whether the document it is on, or the one stored for it (a part moved off an issued document, or its
        invoice_id changed before a delete), is issued."""
        document = type(self)._meta.get_field("invoice").related_model
        on = Q(pk=self.invoice_id) if self.invoice_id else Q(pk__in=[])
        if self.pk:
            on |= Q(pk__in=type(self).objects.filter(pk=self.pk).values("invoice_id"))
        return document.objects.filter(on, state=InvoiceState.ISSUED).exists()

    def save(self, *args, **kwargs):
        if self._document_issued():
            raise IssuedInvoiceError(f"{self.part_noun} cannot change; issue a credit note")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self._document_issued():
            raise IssuedInvoiceError(f"{self.part_noun} cannot be deleted")
        return super().delete(*args, **kwargs)


class InvoiceQuerySet(IssuedGuardQuerySet):
    mutable = MUTABLE_WHEN_ISSUED

    def issued(self):
        return self.filter(state=InvoiceState.ISSUED)

    def drafts(self):
        return self.filter(state=InvoiceState.DRAFT)

    def last_invoiced_months(self, partner_ids, *, first_months: bool = True) -> dict[int, str]:
        """{partner id: the latest month (YYYY-MM) its issued invoices billed: its latest CI's, or a later
        first month billed on an INV (a service started mid-month before any CI of that month)} (billing-rules
        3.11); `first_months=False`: its latest CI's alone."""
        latest = dict(self.filter(partner_id__in=partner_ids, kind=InvoiceKind.CI, state=InvoiceState.ISSUED)
                      .order_by().values_list("partner_id").annotate(month=models.Max("month")))
        if first_months:
            for partner_id, period in (InvoiceLine.objects.filter(
                    invoice__partner_id__in=partner_ids, invoice__kind=InvoiceKind.INV,
                    invoice__state=InvoiceState.ISSUED, line_type=LineType.FIRST_MONTH)
                    .order_by().values_list("invoice__partner_id").annotate(month=models.Max("period"))):
                latest[partner_id] = max(latest.get(partner_id, ""), period)
        return latest


class CompanyProfile(models.Model):
    """Who issues the invoices (one row): printed on every invoice and credit note (billing-rules 4.13)."""

    legal_name = models.CharField(max_length=200, blank=True, help_text="as registered, e.g. Northbridge Billing Ltd")
    address = models.TextField(blank=True, help_text="postal address, one line per line")
    tax_id = models.CharField("tax ID", max_length=60, blank=True, help_text="VAT or sales tax number")
    registration = models.CharField(max_length=100, blank=True,
                                    help_text="company registration, e.g. Company no. 01234567")
    email = models.EmailField(blank=True, help_text="billing questions")
    phone = models.CharField(max_length=40, blank=True)
    website = models.CharField(max_length=200, blank=True)
    bank_details = models.TextField(blank=True, help_text="bank, account holder, IBAN / account and routing, BIC/SWIFT")
    remittance = models.TextField(blank=True, help_text="how to pay, e.g. quote the invoice number as reference")
    logo = models.ImageField(upload_to="company/", blank=True, help_text="PNG or JPEG, printed at 18 mm high")
    invoice_footer = models.TextField(blank=True, help_text="printed at the end of every invoice")
    updated_at = models.DateTimeField(auto_now=True)

    REQUIRED = {"legal_name": "legal name", "address": "address", "tax_id": "tax ID"}

    class Meta:
        verbose_name = "company profile"
        verbose_name_plural = "company profile"

    def __str__(self):
        return self.legal_name or "Company profile (not filled in)"

    @classmethod
    def current(cls) -> CompanyProfile:
        return cls.objects.order_by("pk").first() or cls()

    def missing(self) -> list[str]:
        """The legal details an invoice cannot be issued without, that are blank."""
        return [label for field, label in self.REQUIRED.items() if not getattr(self, field).strip()]


class Invoice(IssuedDocumentMixin, models.Model):
    """A CI (one per partner and month, dated the 1st), an INV (dated its purchase or start date), or
    a credit note (CN) correcting an issued invoice."""

    # no index of its own: the (partner, kind, issue_date) index begins with it
    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT, db_index=False, related_name="invoices")
    kind = models.CharField(max_length=3, choices=InvoiceKind.choices)
    number = models.CharField(max_length=20, null=True, blank=True, unique=True)
    state = models.CharField(max_length=10, choices=InvoiceState.choices, default=InvoiceState.DRAFT)
    payment_status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.OPEN)
    issue_date = models.DateField()
    due_date = models.DateField()
    currency = models.CharField(max_length=3)
    month = models.CharField(max_length=7, blank=True, help_text="CI: the invoice month YYYY-MM")
    customer = models.ForeignKey("partners.Customer", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="invoices", help_text="INV: the customer it is for, if any")
    credits = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="credit_notes",
                                help_text="CN: the invoice it corrects")
    tax_rate = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("0"))
    subtotal = models.DecimalField(**AMOUNT, default=Decimal("0"))
    tax_amount = models.DecimalField(**AMOUNT, default=Decimal("0"))
    total = models.DecimalField(**AMOUNT, default=Decimal("0"))
    # the statement of the account on a CI (billing-rules 4.6)
    previous_balance = models.DecimalField(**AMOUNT, default=Decimal("0"))
    payments_and_credits = models.DecimalField(**AMOUNT, default=Decimal("0"))
    other_invoices = models.DecimalField(**AMOUNT, default=Decimal("0"),
                                         help_text="individual invoices issued since the previous CI")
    amount_due = models.DecimalField(**AMOUNT, default=Decimal("0"))
    issued_at = models.DateTimeField(null=True, blank=True)
    # who issued it and to whom, as they stood when it was issued (billing-rules 4.13): a later change of the
    # company profile or the partner's address never changes an issued invoice
    issuer = models.JSONField(null=True, blank=True)
    recipient = models.JSONField(null=True, blank=True)
    pdf = models.FileField("PDF", upload_to="invoices/", blank=True)
    pdf_version = models.PositiveIntegerField("PDF version", default=0)
    emailed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = InvoiceQuerySet.as_manager()

    class Meta:
        ordering = ["-issue_date", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "month"], condition=Q(kind="CI", state="issued"),
                                    name="one_issued_ci_per_partner_month"),
            # the database backs what a rerun relies on (a month with an issued CI is never billed again)
            models.CheckConstraint(condition=~Q(kind="CI") | ~Q(month=""), name="ci_names_its_month"),
            models.CheckConstraint(condition=~Q(state="issued") | Q(number__isnull=False),
                                   name="issued_invoice_has_number"),
        ]
        indexes = [models.Index(fields=["partner", "kind", "issue_date"])]

    def __str__(self):
        return self.number or f"draft {self.get_kind_display().lower()} {self.issue_date}"



class ChildInvoiceQuerySet(IssuedGuardQuerySet):
    """A child is part of its CI: once the CI is issued it cannot change, and deleting it would
    delete its lines."""

    state_path = "invoice__state"
    noun = "child invoices of issued invoices"


class ChildInvoice(IssuedPartMixin, models.Model):
    """The part of a CI for one customer (or for the partner-level services), with its own due date."""

    part_noun = "child invoices of issued invoices"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="children")
    customer = models.ForeignKey("partners.Customer", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="+")
    due_date = models.DateField()
    subtotal = models.DecimalField(**AMOUNT, default=Decimal("0"))

    objects = ChildInvoiceQuerySet.as_manager()

    class Meta:
        ordering = ["invoice", "customer__name"]
        constraints = [  # one child per customer, and one for the partner-level services (customer blank)
            models.UniqueConstraint(fields=["invoice", "customer"], condition=Q(customer__isnull=False),
                                    name="one_child_per_customer_per_ci"),
            models.UniqueConstraint(fields=["invoice"], condition=Q(customer__isnull=True),
                                    name="one_partner_child_per_ci"),
        ]

    def __str__(self):
        return f"{self.invoice} / {self.customer.name if self.customer_id else 'partner services'}"



class InvoiceLineQuerySet(IssuedGuardQuerySet):
    state_path = "invoice__state"
    noun = "lines of issued invoices"


class InvoiceLine(IssuedPartMixin, models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    child = models.ForeignKey(ChildInvoice, on_delete=models.CASCADE, null=True, blank=True, related_name="lines")
    service = models.ForeignKey("partners.Service", on_delete=models.PROTECT, null=True, blank=True,
                                related_name="+")
    customer = models.ForeignKey("partners.Customer", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="+")
    line_type = models.CharField(max_length=20, choices=LineType.choices)
    period = models.CharField(max_length=7, help_text="the month the line covers, YYYY-MM")
    quantity = models.DecimalField(**QUANTITY, null=True, blank=True)
    unit_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    amount = models.DecimalField(**AMOUNT)
    description = models.CharField(max_length=300)
    taxable = models.BooleanField(default=True)
    effective_date = models.DateField(null=True, blank=True)
    key = models.CharField(max_length=120, blank=True, help_text="what makes the charge unique")
    details = models.JSONField(default=dict, blank=True, help_text="facts the amount was computed from")
    position = models.PositiveIntegerField(default=0)
    posting = models.PositiveIntegerField(
        null=True, blank=True, editable=False,
        help_text="proration: 1 for the first line posted for this service, month and effective date, 2 for a "
                  "later correction of the same date (a corrected inventory), and so on")

    objects = InvoiceLineQuerySet.as_manager()

    class Meta:
        ordering = ["invoice", "position", "id"]
        indexes = [models.Index(fields=["key"])]
        # A rerun must never charge anything twice; the database refuses it even if the Python would not.
        constraints = [
            models.UniqueConstraint(fields=["invoice", "key"], condition=~Q(key=""),
                                    name="one_line_per_charge_per_invoice"),
            models.UniqueConstraint(fields=["key"], condition=Q(line_type="one_time"),
                                    name="one_time_charge_billed_once"),
            models.UniqueConstraint(fields=["key"], condition=Q(line_type="first_month"),
                                    name="first_month_billed_once"),
            models.UniqueConstraint(fields=["key"], condition=Q(line_type="credit"), name="line_credited_once"),
            # A unit change is posted once: the n-th posting of a (service, month, date) exists once. The
            # same date may be posted again only as a correction (posting 2, 3, ...): billed-units reads
            # the earlier postings to number the next one, so a rerun that missed one collides here.
            models.UniqueConstraint(fields=["service", "period", "effective_date", "posting"],
                                    condition=Q(line_type="proration"), name="one_posting_per_proration_change"),
            models.CheckConstraint(
                condition=~Q(line_type="proration")
                | Q(posting__isnull=False, service__isnull=False, effective_date__isnull=False),
                name="proration_line_is_numbered",
            ),
        ]

    def __str__(self):
        return f"{self.invoice}: {self.description}"



class InvoiceSequence(models.Model):
    """The last number used per prefix; locked while a number is taken, so numbers are gapless and
    unique under concurrent issuing (a rolled-back issue gives its number back)."""

    prefix = models.CharField(max_length=5, primary_key=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.prefix}-{self.last:04d}"


class RecordedPaymentError(ValidationError):
    """An attempt to edit or delete a recorded payment."""


PAYMENT_NEVER_CHANGES = ("a recorded payment never changes nor goes (billing-rules 4.4, 4.8): the statements of "
                         "the CIs issued since count it")


class PaymentQuerySet(models.QuerySet):
    """A payment, once recorded, is never edited nor deleted, in bulk either (decision (aw): a payment is voided,
    never edited): the CI issued after it printed it on its statement, which never changes (billing-rules 4.4).
    Recorded with `payment_record` or the payments import, both audited. (Deleting a staff user who recorded
    payments still clears their `recorded_by`: Django does that below the query set, and it changes no amount.)"""

    def update(self, **kwargs):
        if self.exists():
            raise RecordedPaymentError(f"{PAYMENT_NEVER_CHANGES} ({', '.join(sorted(kwargs))})")
        return super().update(**kwargs)

    def delete(self):
        if self.exists():
            raise RecordedPaymentError(PAYMENT_NEVER_CHANGES)
        return super().delete()


class Payment(models.Model):
    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT, related_name="payments")
    # no index of its own: payment_once begins with it
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, db_index=False, related_name="payments")
    amount = models.DecimalField(**AMOUNT)
    paid_on = models.DateField()
    reference = models.CharField(max_length=200, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    source = models.CharField(max_length=100, blank=True)

    objects = PaymentQuerySet.as_manager()

    class Meta:
        ordering = ["-paid_on", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "paid_on", "amount", "reference"], name="payment_once"),
        ]

    def __str__(self):
        return f"{self.amount} on {self.invoice} ({self.paid_on})"

    def save(self, *args, **kwargs):
        """Recorded once; a row already stored is never written again."""
        if not self._state.adding or (self.pk and type(self).objects.filter(pk=self.pk).exists()):
            raise RecordedPaymentError(f"payment {self.amount} on {self.invoice}: {PAYMENT_NEVER_CHANGES}")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RecordedPaymentError(f"payment {self.amount} on {self.invoice}: {PAYMENT_NEVER_CHANGES}")


class OneTimeCharge(models.Model):
    """A one-time purchase (hardware, onboarding, a true-up): billed on its own INV (billing-rules 6.5)."""

    partner = models.ForeignKey("partners.Partner", on_delete=models.PROTECT, related_name="one_time_charges")
    customer = models.ForeignKey("partners.Customer", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="one_time_charges")
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=14, decimal_places=4)
    unit_price = models.DecimalField(max_digits=14, decimal_places=4)
    date = models.DateField()
    taxable = models.BooleanField(default=True)
    source = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date", "-id"]
        verbose_name = "one-time charge"

    def __str__(self):
        return f"{self.description} ({self.date})"


class FactChange(models.Model):
    """A write that may change what a month already invoiced measures (billing-rules 4.11): a partner and the
    earliest day the written rows cover. Written by PostgreSQL triggers on the tables the true-up methods read
    (seats, seat purchases, usage snapshots, suspensions, agent presences, terms, services, customers), whatever
    wrote them (admin, API, portal, imports, syncs, a shell); read and consumed by the billing run that measures
    months again, so that a run measures again only the months some fact changed in. On SQLite there are no
    triggers and a run measures every month of the window again."""

    # no foreign key: a trigger may log a write of a partner being deleted (its terms, say)
    partner_id = models.BigIntegerField(db_index=True)
    day = models.DateField(help_text="the earliest day the change covers")
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["partner_id", "day"]

    def __str__(self):
        return f"{self.partner_id} from {self.day}"


class BillingRun(models.Model):
    """A billing run as it went (`invoicing.services.runs.billing_run_recorded`): who started it, from where, for
    which partners and through which day, what it issued (or, a preview, drafted), and which partners it did not
    bill and why. The admin's billing page, `run_billing` and the daily task each record theirs."""

    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    through = models.DateField(help_text="everything due up to this day")
    partner = models.ForeignKey("partners.Partner", on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="+", help_text="the one partner billed, if it was one")
    scope = models.CharField(max_length=300, help_text="all partners, one partner, or the partners of a batch")
    draft = models.BooleanField("preview", default=False, help_text="a preview: drafts only, nothing issued")
    source = models.CharField(max_length=10, choices=RunSource.choices)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    actor_label = models.CharField(max_length=200, blank=True, help_text="the user, command or task")
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.RUNNING)
    documents = models.JSONField(default=list, blank=True,
                                 help_text="[{id, number, kind, partner}] of what it wrote, in the order written")
    counts = models.JSONField(default=dict, blank=True, help_text="{kind: documents written}")
    document_count = models.PositiveIntegerField(default=0)
    held = models.JSONField(default=list, blank=True,
                            help_text="[{partner, reason}]: not billed for missing legal details (a preview: would "
                                      "not be)")
    failures = models.JSONField(default=list, blank=True, help_text="[{partner, reason}]: billing them failed")

    class Meta:
        ordering = ["-started_at", "-id"]
        permissions = [("run_billing", "Can preview and run billing from the admin")]

    def __str__(self):
        what = "preview" if self.draft else "billing run"
        return f"{what} #{self.pk} through {self.through}"

    @property
    def problem_count(self) -> int:
        """Partners not billed, or (a preview) that would not be: held and failed."""
        return len(self.held) + len(self.failures)

    def problems_text(self) -> str:
        """One line naming what was not billed and why ("" when everything was): what run_billing prints."""
        reasons = [entry["reason"] for entry in self.held if not self.draft]
        reasons += [f"partner {entry['partner']!r} failed: {entry['reason']}" if entry["partner"]
                    else entry["reason"] for entry in self.failures]
        if not reasons:
            return ""
        if not self.document_count:
            return f"nothing billed: {'; '.join(reasons)}"
        verb = "drafted" if self.draft else "issued"
        return f"{self.document_count} document(s) {verb} for the others; not billed: {'; '.join(reasons)}"
