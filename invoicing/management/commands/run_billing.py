"""python manage.py run_billing --through YYYY-MM-DD [--partner SLUG] [--draft] (billing-rules 8.2). Each run is
recorded (Invoicing > Billing runs in the admin); a partner not billed is named and the command exits 1."""

from django.core.management.base import BaseCommand, CommandError

from billing.core.actor import Actor
from billing.core.hooks import document_followers
from billing.core.money import quantize_money
from billing.core.periods import PeriodError, parse_date
from billing.core.progress import progress
from invoicing.choices import RunSource
from invoicing.selectors import billing_run_invoices, true_ups_of
from invoicing.services import BillingError, billing_run_recorded


class Command(BaseCommand):
    help = ("Bill everything due up to a date that is not billed yet: INVs for one-time charges and first "
            "months, and the CI of every month whose 1st is on or before it. Running it again changes nothing.")

    def add_arguments(self, parser):
        parser.add_argument("--through", required=True, help="YYYY-MM-DD")
        parser.add_argument("--partner", help="partner slug (default: every partner)")
        parser.add_argument("--draft", action="store_true", help="build drafts (regenerated on every run)")

    def handle(self, *args, through, partner, draft, **options):
        try:
            day = parse_date(through)
        except PeriodError as exc:
            raise CommandError(f"--through: {exc}") from exc
        try:
            with progress(f"run_billing --through {through}", unit="partners") as meter:
                run = billing_run_recorded(through=day, partner_slug=partner, draft=draft, source=RunSource.COMMAND,
                                           actor=Actor(label=f"run_billing --through {through}"),
                                           on_progress=meter.set)
        except BillingError as exc:
            raise CommandError(str(exc)) from exc
        documents = billing_run_invoices(run)
        true_ups = true_ups_of(invoice.pk for invoice in documents)
        for invoice in documents:
            label = invoice.number or "draft"
            self.stdout.write(
                f"{label:10} {invoice.kind:3} {invoice.partner.slug:20} {invoice.issue_date} "
                f"due {invoice.due_date} total {quantize_money(invoice.total, invoice.currency)} {invoice.currency}"
            )  # amounts in the currency's places (billing-rules 2): total 4072 JPY, total 365.13 USD
            for description, amount in true_ups.get(invoice.pk, []):  # billing-rules 4.11
                self.stdout.write(f"           {description}: {quantize_money(amount, invoice.currency)} "
                                  f"{invoice.currency}")
        for line in document_followers([invoice.pk for invoice in documents]):  # rebilling's (billing-rules 12.5)
            self.stdout.write(line)
        if run.problems_text():  # the partners not billed, after what the others got (the run is recorded)
            raise CommandError(run.problems_text())
        verb = "drafted" if draft else "issued"
        self.stdout.write(f"{len(documents)} invoice(s) {verb}" if documents else "nothing to bill")
