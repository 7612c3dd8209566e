"""python manage.py load_demo: a superuser and realistic demo data on a fresh database.

Two partners, their customers and services, a seat purchase and about three
months of seat history ending now (the three months before the current one and
the current month so far), all dated relative to today. Everything but the
users goes through the import engine, so the history obeys the rules (caps,
commitments, no double seats) and is audited like any import. Idempotent: when
the demo partners exist it changes nothing.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from billing.actor import Actor
from billing.importing import ImportFileError, run_import_text
from billing.periods import Period
from partners.models import Partner, PartnerUser, Role

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"
PARTNER_USER_PASSWORD = "demo-pass"
DEMO_PARTNERS = ("northwind", "blue-harbor")

PARTNERS = [
    {"slug": "northwind", "name": "Northwind Managed IT", "currency": "USD", "tax_rate": "8",
     "payment_terms_days": "30", "billing_emails": "billing@northwind-it.example; finance@northwind-it.example"},
    {"slug": "blue-harbor", "name": "Blue Harbor IT Services", "currency": "EUR", "tax_rate": "21",
     "payment_terms_days": "14", "billing_emails": "accounts@blueharbor-it.example"},
]

CUSTOMERS = [
    {"partner": "northwind", "slug": "contoso-dental", "name": "Contoso Dental Group", "seat_cap": "5",
     "rmm_organization": "Contoso Dental"},
    {"partner": "northwind", "slug": "fabrikam-law", "name": "Fabrikam Law LLP", "payment_terms_days": "15",
     "rmm_organization": "Fabrikam"},
    {"partner": "northwind", "slug": "tailspin", "name": "Tailspin Logistics", "rmm_organization": "Tailspin"},
    {"partner": "northwind", "slug": "wingtip", "name": "Wingtip Architects", "rmm_organization": "Wingtip"},
    {"partner": "northwind", "slug": "alpine-ski", "name": "Alpine Ski House", "rmm_organization": "Alpine"},
    {"partner": "blue-harbor", "slug": "harbor-bakery", "name": "Harbor Bakery"},
    {"partner": "blue-harbor", "slug": "lighthouse-vet", "name": "Lighthouse Vet Clinic", "seat_cap": "6"},
]


def _services(start: str) -> list[dict]:
    return [
        # partner-level: meters every Northwind customer; 12 committed, overage allowed at a higher price
        {"partner": "northwind", "code": "seats", "name": "Managed workstation seats", "method": "seat_days",
         "unit_price": "24.00", "overage_price": "28.00", "committed_quantity": "12", "overage_enabled": "true",
         "start_date": start, "notification_emails": "it-lead@northwind-it.example"},
        {"partner": "northwind", "customer": "fabrikam-law", "code": "fabrikam-retainer",
         "name": "On-site support retainer", "method": "flat", "unit_price": "450.00", "start_date": start},
        # customer-level commitments: one that stops at it, one in overage
        {"partner": "blue-harbor", "customer": "harbor-bakery", "code": "bakery-seats", "name": "Bakery seats",
         "method": "seat_days", "unit_price": "18.00", "committed_quantity": "5", "overage_enabled": "false",
         "start_date": start},
        {"partner": "blue-harbor", "customer": "lighthouse-vet", "code": "vet-seats", "name": "Clinic seats",
         "method": "seat_days", "unit_price": "18.00", "overage_price": "22.00", "committed_quantity": "3",
         "overage_enabled": "true", "start_date": start},
    ]


@dataclass(frozen=True)
class When:
    """An instant as (months after the first demo month, day, hour, minute); month 3 is the current one."""

    month: int
    day: int
    hour: int = 9
    minute: int = 0

    def at(self, first: Period) -> datetime:
        period = first
        for _ in range(self.month):
            period = period.next()
        return datetime(period.year, period.month, self.day, self.hour, self.minute, tzinfo=UTC)


# (partner, customer, member, assigned, removed or None). Northwind: 10-11 seats in month 0 against 12
# committed, 13 (overage) in month 1, +3 seats bought in month 1 (15 from month 2), 14-15 seats since.
# Contoso Dental reaches its cap of 5 and never passes it. Assignments in the current month are only
# additions, so that leaving out the ones later than now can never break a cap.
SEATS = [
    ("northwind", "contoso-dental", "Maria Garcia", When(0, 1, 8, 0), None),
    ("northwind", "contoso-dental", "David Chen", When(0, 1, 8, 5), None),
    ("northwind", "contoso-dental", "Priya Patel", When(0, 1, 8, 10), None),
    ("northwind", "contoso-dental", "Tom Becker", When(0, 1, 8, 15), When(2, 14, 17, 0)),
    ("northwind", "contoso-dental", "Lena Novak", When(1, 3, 9, 0), None),
    ("northwind", "contoso-dental", "Sam Ortiz", When(2, 20, 9, 30), None),
    ("northwind", "fabrikam-law", "Olivia Brooks", When(0, 1, 9, 0), None),
    ("northwind", "fabrikam-law", "James Wright", When(0, 1, 9, 5), None),
    ("northwind", "fabrikam-law", "Hannah Lee", When(0, 1, 9, 10), When(2, 10, 18, 0)),
    ("northwind", "fabrikam-law", "Noah Kim", When(1, 6, 10, 0), None),
    ("northwind", "fabrikam-law", "Temp Auditor", When(1, 12, 9, 0), When(1, 12, 15, 0)),
    ("northwind", "fabrikam-law", "Grace Turner", When(2, 10, 18, 30), None),
    ("northwind", "tailspin", "Ethan Ross", When(0, 1, 10, 0), None),
    ("northwind", "tailspin", "Mia Fischer", When(0, 1, 10, 5), When(1, 25, 16, 0)),
    ("northwind", "wingtip", "Lucas Moreau", When(0, 2, 11, 0), None),
    ("northwind", "wingtip", "Chloe Dubois", When(0, 16, 9, 0), None),
    ("northwind", "wingtip", "Ava Schmidt", When(3, 2, 9, 0), None),
    ("northwind", "alpine-ski", "Jonas Berg", When(2, 3, 8, 0), None),
    ("northwind", "alpine-ski", "Elsa Lind", When(2, 3, 8, 5), None),
    ("blue-harbor", "harbor-bakery", "Pierre Martin", When(0, 1, 7, 0), None),
    ("blue-harbor", "harbor-bakery", "Sofia Rossi", When(0, 1, 7, 5), None),
    ("blue-harbor", "harbor-bakery", "Jan de Vries", When(0, 1, 7, 10), When(1, 20, 12, 0)),
    ("blue-harbor", "harbor-bakery", "Eva Jansen", When(1, 21, 8, 0), None),
    ("blue-harbor", "harbor-bakery", "Luca Bianchi", When(2, 5, 8, 0), None),
    ("blue-harbor", "lighthouse-vet", "Dr. Anna Weber", When(0, 1, 8, 0), None),
    ("blue-harbor", "lighthouse-vet", "Ben Keller", When(0, 1, 8, 5), None),
    ("blue-harbor", "lighthouse-vet", "Carla Meier", When(0, 3, 8, 0), None),
    ("blue-harbor", "lighthouse-vet", "Dario Conti", When(1, 8, 8, 0), None),
]

# "Add seats": bought in month 1, effective from the 1st of month 2.
PURCHASES = [("northwind", "seats", 3, When(1, 18, 14, 30))]

PARTNER_USERS = [
    ("northwind.billing", "billing@northwind-it.example", "northwind", Role.BILLING),
    ("northwind.tech", "tech@northwind-it.example", "northwind", Role.TECHNICIAN),
]


def _csv(columns: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in columns})
    return out.getvalue()


def _fmt(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def seat_events_csv(first: Period, now: datetime) -> str:
    """The demo history as a seat-events file, leaving out anything later than now."""
    latest = now - timedelta(minutes=1)
    events = []
    for partner, customer, member, assigned, removed in SEATS:
        start = assigned.at(first)
        if start > latest:
            continue
        events.append((start, partner, customer, member, "assign"))
        if removed is not None and removed.at(first) <= latest:
            events.append((removed.at(first), partner, customer, member, "unassign"))
    events.sort()
    rows = [{"partner": p, "customer": c, "member": m, "action": a, "at": _fmt(t)} for t, p, c, m, a in events]
    return _csv(["partner", "customer", "member", "action", "at"], rows)


class Command(BaseCommand):
    help = "Load a superuser (admin/admin) and demo partners with three months of seat history (idempotent)."

    def handle(self, *args, **options):
        now = timezone.now()
        current = Period.of(now.date())
        first = current.previous().previous().previous()
        with transaction.atomic():
            self._superuser()
            if Partner.objects.filter(slug__in=DEMO_PARTNERS).exists():
                self.stdout.write("Demo data already loaded (partner northwind exists): nothing changed.")
            else:
                self._load(first, now)
                self._partner_users()
                self.stdout.write(self.style.SUCCESS(
                    f"Demo data loaded: {len(PARTNERS)} partners, {len(CUSTOMERS)} customers, seat history "
                    f"from {first.first} to now."
                ))
        self.stdout.write(f"Admin: http://127.0.0.1:8000/admin/  user: {ADMIN_USERNAME}  password: {ADMIN_PASSWORD}")
        self.stdout.write(
            "Partner users (password " + PARTNER_USER_PASSWORD + "): "
            + ", ".join(f"{name} ({role.label})" for name, _email, _partner, role in PARTNER_USERS)
        )

    def _superuser(self) -> None:
        users = get_user_model()
        if not users.objects.filter(username=ADMIN_USERNAME).exists():
            users.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", ADMIN_PASSWORD)
            self.stdout.write(f"Created superuser {ADMIN_USERNAME}.")

    def _partner_users(self) -> None:
        users = get_user_model()
        for username, email, partner_slug, role in PARTNER_USERS:
            user, created = users.objects.get_or_create(username=username, defaults={"email": email})
            if created:
                user.set_password(PARTNER_USER_PASSWORD)
                user.save()
            PartnerUser.objects.get_or_create(user=user, defaults={
                "partner": Partner.objects.get(slug=partner_slug), "role": role,
            })

    def _load(self, first: Period, now: datetime) -> None:
        actor = Actor(label="load_demo")
        start = first.first.isoformat()
        files = [
            ("partners", _csv(["slug", "name", "currency", "tax_rate", "payment_terms_days", "billing_emails"],
                              PARTNERS)),
            ("customers", _csv(["partner", "slug", "name", "seat_cap", "payment_terms_days", "rmm_organization"],
                               CUSTOMERS)),
            ("services", _csv(["partner", "customer", "code", "name", "method", "unit_price", "overage_price",
                               "committed_quantity", "overage_enabled", "start_date", "notification_emails"],
                              _services(start))),
            ("seat-purchases", _csv(["partner", "service", "seats", "purchased_at"], [
                {"partner": p, "service": s, "seats": str(n), "purchased_at": _fmt(w.at(first))}
                for p, s, n, w in PURCHASES if w.at(first) <= now
            ])),
            ("seat-events", seat_events_csv(first, now)),
        ]
        for kind, text in files:
            try:
                summary = run_import_text(kind, text, actor=actor, source=f"load_demo {kind}.csv")
            except ImportFileError as exc:
                raise CommandError(f"demo {kind}: {exc}") from exc
            if not summary.ok:
                errors = "\n".join(f"  {e}" for e in summary.errors)
                raise CommandError(f"demo {kind} file was refused:\n{errors}")
            self.stdout.write(f"  {summary.describe()}")
