"""python manage.py load_demo: a superuser and realistic demo data on a fresh database.

Eight partners, at least one per billing method, with about three months of
history ending now (the three months before the current one and the current
month so far), all dated relative to today:

- seat_days: Northwind (a partner-wide commitment with overage, a capped
  customer, a seat purchase) and Blue Harbor (customer-level commitments);
- peak: Summit Cloud (users meter, partner-level and customer-level);
- cmq: Ridgeline (assets meter, 50 committed: variable usage last month only);
- licenses: Brightline (50 GB per license, volume tiers, a storage-driven
  tenant, a tenant suspended in the middle of last month);
- per_asset: Keystone (RMM inventories as of several dates: agents added,
  moved between groups and removed; ORG and ORG/GROUP filters);
- per_host: Clearwave (host limits, one service starting mid-month with the
  rounded daily rate);
- flat: Granite Peak IT (and Northwind's retainer).

Everything but the users goes through the import engine (`import_csv`'s),
inventories included (`rmm-assets` with --partner and --as-of, which calls
metering.services.inventory_apply), so the history obeys the rules (caps,
commitments, no double seats, no date in the future, inventories forward in
time) and is audited like any import. Idempotent: a partner that exists is
left alone, so a second run changes nothing and a database loaded by an older
version gains only the partners it lacks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from billing.core.actor import Actor
from billing.core.importing import ImportFileError, run_import_text
from billing.core.money import quantize_money
from billing.core.periods import Period, format_instant
from billing.core.progress import progress
from billing.demo import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    COMPANY_PROFILE,
    CUSTOMER_BILLING_PROFILES,
    CUSTOMERS,
    DEMO_PARTNERS,
    INVENTORIES,
    ONE_TIME_CHARGES,
    PARTNER_USER_PASSWORD,
    PARTNER_USERS,
    PARTNERS,
    PURCHASES,
    REBILLING_PROFILE,
    RESALE_PRICE_COLUMNS,
    SERVICE_COLUMNS,
    TENANT_EVENTS,
    csv_text,
    inventories,
    last_seen,
    resale_prices,
    seat_events_csv,
    services,
    tenant_usage_rows,
)
from invoicing.choices import RunSource
from invoicing.models import CompanyProfile, Invoice, InvoiceKind, InvoiceState, Payment
from invoicing.rebilling.accounts import customer_payment_record
from invoicing.rebilling.models import CustomerInvoice, CustomerPayment
from invoicing.rebilling.profiles import customer_billing_profile_save, rebilling_profile_save
from invoicing.services import billing_run_recorded, credit_note_issue, invoice_pdf_store, payment_record
from partners.models import Customer, Partner, PartnerUser


class Command(BaseCommand):
    help = ("Load a superuser (admin/admin) and demo partners, one or more per billing method, with three months "
            "of history (idempotent).")

    def handle(self, *args, **options):
        now = timezone.now()
        current = Period.of(now.date())
        first = current.previous().previous().previous()
        # the demo's utilization alerts are recorded, not printed (the embedded set-up prints emails)
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"), transaction.atomic():
            self._superuser()
            if not CompanyProfile.objects.exists():
                CompanyProfile.objects.create(**COMPANY_PROFILE)
            existing = set(Partner.objects.filter(slug__in=DEMO_PARTNERS).values_list("slug", flat=True))
            missing = [slug for slug in DEMO_PARTNERS if slug not in existing]
            if not missing:
                self.stdout.write("Demo data already loaded (every demo partner exists): nothing changed.")
            else:
                self._load(first, now, set(missing))
                self._partner_users()
                self.stdout.write(self.style.SUCCESS(
                    f"Demo data loaded: {len(missing)} partners ({', '.join(missing)}), history from "
                    f"{first.first} to now."
                ))
        self._invoices(first, now)
        self.stdout.write(f"Admin: http://127.0.0.1:8000/admin/  user: {ADMIN_USERNAME}  password: {ADMIN_PASSWORD}")
        self.stdout.write(
            "Partner users (password " + PARTNER_USER_PASSWORD + "): "
            + ", ".join(f"{name} ({role.label})" for name, _email, _partner, role, _full in PARTNER_USERS)
        )

    def _invoices(self, first: Period, now: datetime) -> None:
        """One-time charges, the billing run through today, a few payments and a credit note, and the
        PDFs: the demo ends with issued invoices of every kind. Demo invoices are not emailed."""

        actor = Actor(label="load_demo")
        second = first.next()
        charges = [c for c in ONE_TIME_CHARGES if c["date"](second) <= now.date()]
        if charges and not Invoice.objects.filter(kind=InvoiceKind.INV, lines__line_type="one_time").exists():
            self._import("one-time-charges", csv_text(
                ["partner", "customer", "description", "quantity", "unit_price", "date", "taxable"],
                [{**c, "date": c["date"](second).isoformat()} for c in charges]), source="load_demo one-time.csv")
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
            with transaction.atomic():
                # month by month, each month's payments recorded before the next CI is issued, so that every CI
                # after the first shows the payments and credits since the last one (billing-rules 4.6)
                paying = not Payment.objects.exists()
                issued = 0
                days = [*self._month_firsts(first, now), now.date()]
                # most of the command's time (the PDFs of the invoices issued): progress on stderr, run by run
                with progress("load_demo", total=len(days), unit="billing runs") as meter:
                    for day in days:
                        meter.note(f"through {day}")
                        # recorded as the command's runs, so the admin's billing page shows the demo's history
                        run = billing_run_recorded(through=day, actor=actor, source=RunSource.COMMAND)
                        if run.problem_count:
                            raise CommandError(f"the demo's billing run through {day} failed: {run.problems_text()}")
                        issued += run.document_count
                        if paying and day < second.next().first:
                            self._payments(actor, issued_by=day)
                            self._customer_payments(actor, issued_by=day)
                        meter.update()
                if paying:
                    disputed = (Invoice.objects.issued().filter(kind=InvoiceKind.CI, partner__slug="northwind")
                                .order_by("-issue_date").first())
                    if disputed is not None:
                        line = disputed.lines.exclude(line_type="tax").order_by("position").first()
                        credit_note_issue(invoice=disputed, lines=[line], actor=actor,
                                          reason="demo: goodwill credit for an onboarding week")
            rendered = 0
            for invoice in Invoice.objects.filter(state=InvoiceState.ISSUED, pdf="").order_by("pk"):
                invoice_pdf_store(invoice=invoice)
                rendered += 1
        count = Invoice.objects.issued().count()
        with_pdf = Invoice.objects.issued().exclude(pdf="").count()
        self.stdout.write(f"Invoices: {issued} issued now, {count} in all, {with_pdf} with their PDF "
                          f"({rendered} rendered here, the others when they were issued).")

    @staticmethod
    def _month_firsts(first: Period, now: datetime) -> list:
        days, month = [], first
        while month.first <= now.date():
            days.append(month.first)
            month = month.next()
        return days

    @staticmethod
    def _payments(actor: Actor, *, issued_by) -> None:
        """The CIs issued by `issued_by` and not paid yet: paid three days before they are due, one in three
        only half (the first two months of the demo)."""
        for invoice in (Invoice.objects.issued().filter(kind=InvoiceKind.CI, issue_date__lte=issued_by,
                                                         payments__isnull=True).order_by("pk")):
            if invoice.total > 0:
                half = quantize_money(invoice.total / 2, invoice.currency)
                part = invoice.total if invoice.pk % 3 else half
                payment_record(invoice=invoice, amount=part, paid_on=invoice.due_date - timedelta(days=3),
                               reference=f"ACH {invoice.number}", actor=actor, source="load_demo")

    @staticmethod
    def _rebilling() -> None:
        """Northwind invoices its own customers (billing-rules 12.4), with Customer Billing on; set up as its
        Owner would in the portal, audited."""
        partner = Partner.objects.get(slug=REBILLING_PROFILE["partner"])
        rebilling_profile_save(partner=partner, data={k: v for k, v in REBILLING_PROFILE.items() if k != "partner"},
                               actor=Actor(label="load_demo"))
        for row in CUSTOMER_BILLING_PROFILES:
            customer = Customer.objects.get(partner=partner, slug=row["customer"])
            customer_billing_profile_save(customer=customer, data={k: v for k, v in row.items() if k != "customer"},
                                          actor=Actor(label="load_demo"))

    @staticmethod
    def _customer_payments(actor: Actor, *, issued_by) -> None:
        """Northwind's customers pay its invoices issued by `issued_by` a few days before they are due, Fabrikam
        a little short, so its next invoice carries a previous balance (billing-rules 12.8)."""
        invoices = (CustomerInvoice.objects.issued().filter(kind="invoice", issue_date__lte=issued_by,
                                                            payments__isnull=True, total__gt=0).order_by("pk"))
        for invoice in invoices:
            short = invoice.customer.slug == "fabrikam-law"
            amount = invoice.total - (quantize_money(invoice.total / 10, invoice.currency) if short else 0)
            customer_payment_record(payment=CustomerPayment(
                partner=invoice.partner, customer=invoice.customer, invoice=invoice, amount=amount,
                received_on=invoice.due_date - timedelta(days=2), reference=f"ACH {invoice.number}",
                method="bank transfer", source="load_demo"), actor=actor)

    def _superuser(self) -> None:
        users = get_user_model()
        if not users.objects.filter(username=ADMIN_USERNAME).exists():
            users.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", ADMIN_PASSWORD)
            self.stdout.write(f"Created superuser {ADMIN_USERNAME}.")

    def _partner_users(self) -> None:
        users = get_user_model()
        for username, email, partner_slug, role, full_name in PARTNER_USERS:
            first_name, _, last_name = full_name.partition(" ")
            user, created = users.objects.get_or_create(username=username, defaults={
                "email": email, "first_name": first_name, "last_name": last_name})
            if created:
                user.set_password(PARTNER_USER_PASSWORD)
                user.save()
            PartnerUser.objects.get_or_create(user=user, defaults={
                "partner": Partner.objects.get(slug=partner_slug), "role": role,
            })

    def _load(self, first: Period, now: datetime, partners: set[str]) -> None:
        def mine(rows, key="partner"):
            return [row for row in rows if row[key] in partners]

        latest = now - timedelta(minutes=1)
        files = [
            ("partners", csv_text(["slug", "name", "currency", "tax_rate", "payment_terms_days", "billing_emails",
                                   "billing_address", "tax_id", "purchase_order"], mine(PARTNERS, "slug"))),
            ("customers", csv_text(["partner", "slug", "name", "seat_cap", "host_limit", "payment_terms_days",
                                "rmm_organization"], mine(CUSTOMERS))),
            ("services", csv_text(SERVICE_COLUMNS, mine(services(first)))),
            ("seat-purchases", csv_text(["partner", "service", "seats", "purchased_at"], mine([
                {"partner": p, "service": s, "seats": str(n), "purchased_at": format_instant(w.at(first))}
                for p, s, n, w in PURCHASES if w.at(first) <= latest
            ]))),
            ("seat-events", seat_events_csv(first, now, partners)),
            ("tenant-usage", csv_text(["partner", "customer", "date", "users_count", "storage_bytes", "messages_count"],
                                  tenant_usage_rows(first, now.date(), partners))),
            ("tenant-events", csv_text(["partner", "customer", "action", "at"], mine([
                {"partner": p, "customer": c, "action": a, "at": format_instant(w.at(first))}
                for p, c, a, w in TENANT_EVENTS if w.at(first) <= latest
            ]))),
            ("resale-prices", csv_text(RESALE_PRICE_COLUMNS, mine(resale_prices(first)))),
        ]
        for kind, text in files:
            if text.count("\n") > 1:  # a header and at least one row
                self._import(kind, text, source=f"load_demo {kind}.csv")
        if REBILLING_PROFILE["partner"] in partners:
            self._rebilling()
        for partner in INVENTORIES:
            if partner not in partners:
                continue
            for when, agents in inventories(partner):
                as_of = when.on(first)
                if as_of > now.date():
                    break  # inventories go forward in time and are never dated in the future
                rows = [{**agent, "last_seen": last_seen(as_of, agent["agent_id"])} for agent in agents]
                text = csv_text(["agent_id", "machine_name", "organization", "group", "os", "last_seen"], rows)
                self._import("rmm-assets", text, source=f"load_demo rmm-assets {partner} {as_of}.csv",
                             partner=partner, as_of=as_of)

    def _import(self, kind: str, text: str, **options) -> None:
        try:
            summary = run_import_text(kind, text, actor=Actor(label="load_demo"), **options)
        except ImportFileError as exc:
            raise CommandError(f"demo {kind}: {exc}") from exc
        if not summary.ok:
            errors = "\n".join(f"  {e}" for e in summary.errors)
            raise CommandError(f"demo {kind} file was refused:\n{errors}")
        self.stdout.write(f"  {summary.describe()}")
