"""python manage.py sync_inventory --partner SLUG [--dry-run] [--as-of DATE] (docs/rmm.md): the admin's "Get
units now" from the shell. Exit status 0 applied, 3 held for review, 1 failed."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.core.actor import Actor
from billing.core.periods import PeriodError, parse_date, utc_date
from billing.core.progress import progress
from metering.connectors.common import FetchWatch, fetch_watched
from metering.models import SyncStatus, SyncTrigger
from metering.notices import service_units_on
from metering.selectors import unmatched_summary
from metering.sync import inventory_sync
from partners.models import Partner

HELD = 3


class Command(BaseCommand):
    help = ("Sync a partner's RMM inventory now and print the units per service before and after. Exit status: "
            "0 applied, 3 held for review (approve it in the admin), 1 failed.")

    def add_arguments(self, parser):
        parser.add_argument("--partner", required=True, help="partner slug")
        parser.add_argument("--as-of", help="the inventory's date, YYYY-MM-DD (default: today, UTC); an earlier "
                                            "date fills in a missed night")
        parser.add_argument("--dry-run", action="store_true", help="fetch and compare, change nothing")

    def handle(self, *args, partner, as_of, dry_run, **options):
        found = Partner.objects.filter(slug=partner).first()
        if found is None:
            raise CommandError(f"unknown partner {partner!r}")
        try:
            day = parse_date(as_of) if as_of else utc_date(timezone.now())
        except PeriodError as exc:
            raise CommandError(f"--as-of: {exc}") from exc
        self.stdout.write(f"{found.slug}: fetching the RMM inventory as of {day}...")
        # the bar counts the agent rows as the pages come in, then the agents the inventory holds
        with progress(f"sync_inventory {found.slug}", unit="agents") as meter:
            meter.note("fetching")

            def show(watch: FetchWatch) -> None:
                meter.set(watch.rows)
                if watch.pages:  # an API's pages (a drop folder's file is one)
                    meter.note(f"page {watch.pages:,}" + (f", read {watch.reads} (nothing moved?)"
                                                          if watch.reads > 1 else ""))

            with fetch_watched(show):
                run = inventory_sync(partner=found, as_of=day, trigger=SyncTrigger.COMMAND, dry_run=dry_run,
                                     actor=Actor(label=f"sync_inventory --partner {partner}"))
            meter.set(run.agents_seen or 0)
            meter.close(stopped=run.status == SyncStatus.FAILED)
        if run.status == SyncStatus.FAILED:
            raise CommandError(f"{found.slug}: the sync failed: {run.error}"
                               + (" (a transient fault: try again later)" if run.retryable else ""))
        review = run.review or {}
        self.stdout.write(f"read {run.agents_seen} agents in {run.pages} page(s) from {run.source}; "
                          f"{run.agents_billed} billed"
                          + (f" ({', '.join(f'{n} {why}' for why, n in sorted(run.skipped.items()))} not billed)"
                             if run.skipped else ""))
        for line in unmatched_summary(review.get("unmatched", run.unmatched or [])):
            self.stdout.write(f"  {line}")
        services = review.get("services") or service_units_on(partner=found, day=run.as_of)
        if services:
            width = max(len(s["code"]) for s in services)
            self.stdout.write(f"  {'service':<{width}}  before  after  change")
            for s in services:
                self.stdout.write(f"  {s['code']:<{width}}  {s['before']:>6}  {s['after']:>5}  "
                                  f"{s['change']:+6d}" if s["change"] else
                                  f"  {s['code']:<{width}}  {s['before']:>6}  {s['after']:>5}       -")
        if dry_run:
            verdict = "would be held for review: " + review["reason"] if review.get("held") else "would apply"
            self.stdout.write(f"dry run: nothing changed; the inventory {verdict}")
            return
        if run.status == SyncStatus.HELD:
            self.stdout.write(f"held for review: {review.get('reason')}; nothing changed. Approve or reject it in the "
                              f"admin: Metering > RMM sync runs > #{run.pk} > Review")
            raise CommandError(f"{found.slug}: sync #{run.pk} is held for review", returncode=HELD)
        self.stdout.write(f"applied as of {run.as_of}: {run.added} added, {run.moved} moved, {run.removed} removed "
                          f"(sync #{run.pk})")
