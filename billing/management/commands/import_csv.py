"""python manage.py import_csv KIND FILE [--dry-run] [--partner SLUG] [--as-of DATE]
[--format NAME] [--map COLUMN=FIELD ...] (billing-rules 8.1; --format and --map: rmm-assets, import-formats 9)."""

import os

from django.core.management.base import BaseCommand, CommandError

from billing.core.actor import Actor
from billing.core.importing import ImportFileError, run_import_file
from billing.core.periods import PeriodError, parse_date
from billing.core.progress import progress
from billing.core.registry import import_kinds


class Command(BaseCommand):
    help = "Import a CSV file, all or nothing: any bad row writes nothing and is reported as 'row N: column: reason'."

    def add_arguments(self, parser):
        kinds = import_kinds()
        readers = [name for name, kind in kinds.items() if kind.reads_exports()]  # rmm-assets
        formats = sorted({f for name in readers for f in getattr(kinds[name], "formats", ())})
        fields = sorted({f for name in readers for f in getattr(kinds[name], "map_fields", ())})
        parser.add_argument("kind", help="one of: " + ", ".join(kinds))
        parser.add_argument("file")
        parser.add_argument("--dry-run", action="store_true", help="check the file, write nothing")
        parser.add_argument("--partner", help="partner slug (rmm-assets)")
        parser.add_argument("--as-of", help="the inventory date, YYYY-MM-DD (rmm-assets)")
        parser.add_argument("--format", dest="format", metavar="NAME",
                            help=f"{', '.join(readers)}: read the file as this export ({', '.join(formats)}); "
                                 f"without it, the header decides")
        parser.add_argument("--map", dest="map", action="append", default=[], metavar="COLUMN=FIELD",
                            help=f"{', '.join(readers)}: read this column of the file as one of our fields "
                                 f"({', '.join(fields)}); repeat for more")

    def handle(self, *args, kind, file, dry_run, partner, as_of, **options):
        try:
            as_of_date = parse_date(as_of) if as_of else None
        except PeriodError as exc:
            raise CommandError(f"--as-of: {exc}") from exc
        try:
            size = os.path.getsize(file)
            with progress(f"import_csv {kind}") as meter:
                summary = run_import_file(
                    kind, file, dry_run=dry_run, partner=partner, as_of=as_of_date,
                    actor=Actor(label=f"import_csv {kind} {file}"), source=str(file)[-100:],
                    file_format=options.get("format"), column_map=tuple(options.get("map") or ()),
                    on_progress=lambda rows, read: meter.set(rows, rows_expected(rows, read, size)),
                    on_step=meter.note,  # a fast path's work after the file is read ("checking the seat rules")
                )
                meter.note("")  # done: the bar ends on the counts
                meter.set(summary.rows)
        except FileNotFoundError as exc:
            raise CommandError(f"{file}: no such file") from exc
        except ImportFileError as exc:
            raise CommandError(f"{file}: {exc}") from exc
        if not summary.ok:
            for error in summary.errors:
                self.stderr.write(str(error))
            hidden = summary.error_count - len(summary.errors)
            if hidden:
                self.stderr.write(f"... and {hidden} more errors")
            raise CommandError(
                f"{file}: {summary.bad_rows} bad row(s), {summary.error_count} error(s); nothing was imported"
            )
        for warning in summary.warnings:  # cells left blank (rmm-assets: last_seen, os): the import went on
            self.stderr.write(str(warning))
        hidden = summary.warning_count - len(summary.warnings)
        if hidden:
            self.stderr.write(f"... and {hidden} more warnings")
        self.stdout.write(summary.describe() + (" (dry run: nothing written)" if dry_run else ""))


def rows_expected(rows: int, read: int, size: int) -> int | None:
    """The rows the whole file will have, from the rows in the part read so far (the engine's bytes read):
    what gives the bar its time left. None until a first batch is read, or when a kind reads the file itself
    (no bytes counted)."""
    if not rows or not read or not size:
        return None
    return max(rows, round(rows * size / min(read, size)))
