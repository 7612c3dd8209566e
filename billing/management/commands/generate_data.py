"""python manage.py generate_data --partners P --customers C --members M --months N --seed S
[--agents A] [--first YYYY-MM] [--prefix gen]: bulk realistic data for benchmarks (billing/datagen.py)."""

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from billing.core.periods import Period, PeriodError
from billing.core.progress import progress
from billing.datagen import PROFILES, Spec, generate


def positive(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


class Command(BaseCommand):
    help = ("Generate partners, customers, members with seat histories, daily tenant usage and RMM inventories "
            "for N whole months before the current one, with every billing method (COPY on PostgreSQL).")

    def add_arguments(self, parser):
        parser.add_argument("--partners", type=positive, default=2)
        parser.add_argument("--customers", type=positive, default=10, help="per partner")
        parser.add_argument("--members", type=positive, default=20, help="per customer")
        parser.add_argument("--months", type=positive, default=3, help="months of history")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--agents", type=positive,
                            help="RMM agents in all (default: 2 per member, at most 100,000)")
        parser.add_argument("--first", help="YYYY-MM: the first month of history (default: N months before this one)")
        parser.add_argument("--prefix", default="gen", help="partner slugs are PREFIX-p0000, ...")
        parser.add_argument("--profile", choices=PROFILES, default="",
                            help="give every partner this profile (default: the seven profiles in turn)")

    def handle(self, *args, partners, customers, members, months, seed, agents, first, prefix, profile, **options):
        if months < 1:
            raise CommandError("--months must be at least 1")
        try:
            start = Period.parse(first) if first else Period.of(timezone.now().date()).shift(-months)
        except PeriodError as exc:
            raise CommandError(str(exc)) from exc
        if agents is None:
            agents = min(100_000, 2 * partners * customers * members)
        spec = Spec(partners=partners, customers=customers, members=members, months=months, seed=seed,
                    first=start, agents=agents, prefix=prefix, only=profile)
        began = time.monotonic()
        try:
            with progress("generate_data") as meter:

                def written(table: str, rows: int) -> None:
                    meter.note(table)
                    meter.set(rows)

                counts = generate(spec, on_progress=written)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        seconds = time.monotonic() - began
        self.stdout.write(f"database: {connection.vendor}; history {start} to {spec.last_day}")
        for name, n in counts.rows.items():
            self.stdout.write(f"{name:>18} {n:>12,}")
        self.stdout.write(f"done in {seconds:.1f} s")
