"""python manage.py export_report REPORT [--month M | --period M] [--partner SLUG] [--format csv|xlsx]
[--output FILE] (billing-rules 8.3, 10)."""

import sys
from collections.abc import Iterable, Iterator

from django.core.management.base import BaseCommand, CommandError

from billing.core.periods import Period, PeriodError
from billing.core.progress import Progress, progress
from billing.core.registry import reports
from billing.core.reporting import ReportError, ReportOptions, write_csv, write_xlsx
from partners.models import Partner


class Command(BaseCommand):
    help = "Export a report as CSV or XLSX (stdout by default)."

    def add_arguments(self, parser):
        parser.add_argument("report", help="one of: " + ", ".join(reports()))
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--month", help="YYYY-MM: invoices issued in that month")
        group.add_argument("--period", help="YYYY-MM: the usage period")
        parser.add_argument("--partner", help="partner slug")
        parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
        parser.add_argument("--output", help="file to write (default: standard output)")

    def handle(self, *args, report, month, period, partner, format, output, **options):
        available = reports()
        if report not in available:
            raise CommandError(f"unknown report {report!r} (one of {', '.join(available)})")
        try:
            opts = ReportOptions(
                partner=partner,
                month=Period.parse(month) if month else None,
                period=Period.parse(period) if period else None,
            )
        except PeriodError as exc:
            raise CommandError(str(exc)) from exc
        chosen = available[report]
        try:
            chosen.check(opts)
        except ReportError as exc:
            raise CommandError(str(exc)) from exc
        if partner and not Partner.objects.filter(slug=partner).exists():
            raise CommandError(f"unknown partner {partner!r}")
        if format == "xlsx" and not output and sys.stdout.isatty():
            raise CommandError("XLSX is binary: give --output FILE.xlsx")
        # progress on stderr only: without --output the report itself is standard output
        with progress(f"export_report {report}") as meter:
            rows = counted(chosen.rows(opts), meter)
            if format == "xlsx":
                target = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115
                try:
                    write_xlsx(chosen.columns, rows, target, title=report)
                finally:
                    if output:
                        target.close()
            else:
                if output:
                    with open(output, "w", newline="", encoding="utf-8") as target:
                        write_csv(chosen.columns, rows, target)
                else:
                    write_csv(chosen.columns, rows, self.stdout)


def counted(rows: Iterable[dict], meter: Progress) -> Iterator[dict]:
    """The report's rows as they are written, counted on the progress meter."""
    for row in rows:
        yield row
        meter.update()
