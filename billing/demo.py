"""The demo's data (`load_demo`): partners, customers, services, seats, tenants, RMM inventories and charges,
dated relative to the first of the three months before the current one, and the CSV the command imports them
from. The command itself is billing/management/commands/load_demo.py."""


from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from billing.core.periods import Period, format_instant
from partners.choices import Proration
from partners.models import Role

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"
PARTNER_USER_PASSWORD = "demo-pass"
GB = 10**9
MB = 10**6


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

    def on(self, first: Period) -> date:
        return self.at(first).date()


START = When(0, 1)

# Who issues the demo's invoices (Invoicing > Company profile): every invoice prints it (billing-rules 4.13)
COMPANY_PROFILE = {
    "legal_name": "Northbridge Billing Ltd", "address": "14 Harbour Street\nLeith, Edinburgh EH6 6QA\nUnited Kingdom",
    "tax_id": "GB 123 4567 89", "registration": "Registered in Scotland, company no. SC712345",
    "email": "billing@northbridge.example", "phone": "+44 131 496 0000", "website": "northbridge.example",
    "bank_details": "Bank of Leith, account Northbridge Billing Ltd\nIBAN GB33 BUKB 2020 1555 5555 55 · BIC BUKBGB22",
    "remittance": "Pay by bank transfer and quote the invoice number as the reference.",
    "invoice_footer": "Questions about this invoice: billing@northbridge.example. Thank you for your business.",
}

PARTNERS = [
    {"slug": "northwind", "name": "Northwind Managed IT", "currency": "USD", "tax_rate": "8",
     "payment_terms_days": "30", "billing_emails": "billing@northwind-it.example; finance@northwind-it.example",
     "billing_address": "410 Lakeshore Drive, Suite 300\nChicago, IL 60611\nUnited States",
     "tax_id": "EIN 36-4821907", "purchase_order": "NW-PO-2026-118"},
    {"slug": "blue-harbor", "name": "Blue Harbor IT Services", "currency": "EUR", "tax_rate": "21",
     "payment_terms_days": "14", "billing_emails": "accounts@blueharbor-it.example",
     "billing_address": "Havenstraat 18\n1011 AB Amsterdam\nNetherlands",
     "tax_id": "NL 8234.56.789.B01", "purchase_order": ""},
    {"slug": "summit-cloud", "name": "Summit Cloud Partners", "currency": "USD", "tax_rate": "0",
     "payment_terms_days": "30", "billing_emails": "ap@summitcloud.example",
     "billing_address": "2200 Ridge Road\nDenver, CO 80202\nUnited States",
     "tax_id": "EIN 84-2210457", "purchase_order": ""},
    {"slug": "ridgeline", "name": "Ridgeline Technology Group", "currency": "USD", "tax_rate": "6",
     "payment_terms_days": "30", "billing_emails": "finance@ridgeline-tg.example",
     "billing_address": "77 Commerce Park\nColumbus, OH 43215\nUnited States",
     "tax_id": "EIN 31-5508812", "purchase_order": "RTG-4471"},
    {"slug": "brightline", "name": "Brightline Data Ltd", "currency": "GBP", "tax_rate": "20",
     "payment_terms_days": "30", "billing_emails": "accounts@brightline-data.example",
     "billing_address": "5 Canal Wharf\nLeeds LS11 5PS\nUnited Kingdom",
     "tax_id": "GB 284 1937 52", "purchase_order": ""},
    {"slug": "keystone", "name": "Keystone Managed Services", "currency": "USD", "tax_rate": "0",
     "payment_terms_days": "30", "billing_emails": "billing@keystone-ms.example; noc@keystone-ms.example",
     "billing_address": "120 Market Street\nHarrisburg, PA 17101\nUnited States",
     "tax_id": "EIN 23-7719034", "purchase_order": ""},
    {"slug": "clearwave", "name": "Clearwave Communications", "currency": "USD", "tax_rate": "7.5",
     "payment_terms_days": "15", "billing_emails": "billing@clearwave.example",
     "billing_address": "9 Bayview Avenue\nTampa, FL 33602\nUnited States",
     "tax_id": "EIN 59-3360128", "purchase_order": "CW-2026-07"},
    {"slug": "granite-it", "name": "Granite Peak IT", "currency": "EUR", "tax_rate": "19",
     "payment_terms_days": "14", "billing_emails": "buchhaltung@granite-it.example",
     "billing_address": "Bahnhofstraße 41\n80335 München\nGermany", "tax_id": "DE 298 114 653", "purchase_order": ""},
]
DEMO_PARTNERS = tuple(p["slug"] for p in PARTNERS)

# Northwind's own prices to its customers (docs/rebilling.md): a default list from the first demo month, and Contoso
# Dental's flat package. Northwind invoices its customers (rebilling on, Customer Billing on): the billing run issues
# NWIT-0001... after each of its CIs, and the demo records its customers' payments.
RESALE_PRICE_COLUMNS = ["partner", "customer", "service", "unit_price", "markup_percent", "package_units",
                        "package_price", "effective_from"]


def resale_prices(first: Period) -> list[dict]:
    start = first.first.isoformat()
    return [
        {"partner": "northwind", "service": "seats", "unit_price": "35.00", "effective_from": start},
        {"partner": "northwind", "service": "fabrikam-retainer", "markup_percent": "20", "effective_from": start},
        {"partner": "northwind", "customer": "contoso-dental", "service": "seats", "unit_price": "32.00",
         "package_units": "5", "package_price": "150.00", "effective_from": start},
    ]


# Northwind's rebilling profile and two customers' billing details (billing-rules 12.4)
REBILLING_PROFILE = {
    "partner": "northwind", "enabled": True, "number_prefix": "NWIT", "legal_name": "Northwind Managed IT LLC",
    "email": "billing@northwind-it.example", "phone": "+1 612 555 0142", "website": "northwind-it.example",
    "bank_details": "First Lakes Bank · routing 091000019 · account 4410 2219 87",
    "invoice_footer": "Thank you for your business. Questions about this invoice: billing@northwind-it.example",
    "payment_terms_days": 15, "customer_billing": True,
}
CUSTOMER_BILLING_PROFILES = [
    {"customer": "contoso-dental", "legal_name": "Contoso Dental Group PLLC",
     "address": "2200 Lake Street\nMinneapolis MN 55408", "tax_id": "US-41-5567812", "tax_rate": "7.375",
     "billing_emails": "ap@contoso-dental.example"},
    {"customer": "fabrikam-law", "legal_name": "Fabrikam Law LLP", "address": "90 South 7th Street\nMinneapolis MN",
     "tax_rate": "7.375", "purchase_order": "FL-2026-118", "billing_emails": "accounts@fabrikam-law.example"},
]


# One-time purchases, each billed on its own INV (dates relative to the second demo month).
ONE_TIME_CHARGES = [
    {"partner": "northwind", "customer": "alpine-ski", "description": "Onboarding: network assessment",
     "quantity": "1", "unit_price": "450.00", "taxable": "true", "date": lambda m: m.first + timedelta(days=6)},
    {"partner": "northwind", "customer": "contoso-dental", "description": "Firewall appliance (hardware)",
     "quantity": "2", "unit_price": "389.00", "taxable": "true", "date": lambda m: m.first + timedelta(days=13)},
    {"partner": "keystone", "customer": "", "description": "RMM agent rollout (project hours)",
     "quantity": "6.5", "unit_price": "95.00", "taxable": "false", "date": lambda m: m.first + timedelta(days=20)},
]

CUSTOMERS = [
    # seat_days
    {"partner": "northwind", "slug": "contoso-dental", "name": "Contoso Dental Group", "seat_cap": "5",
     "rmm_organization": "Contoso Dental"},
    {"partner": "northwind", "slug": "fabrikam-law", "name": "Fabrikam Law LLP", "payment_terms_days": "15",
     "rmm_organization": "Fabrikam"},
    {"partner": "northwind", "slug": "tailspin", "name": "Tailspin Logistics", "rmm_organization": "Tailspin"},
    {"partner": "northwind", "slug": "wingtip", "name": "Wingtip Architects", "rmm_organization": "Wingtip"},
    {"partner": "northwind", "slug": "alpine-ski", "name": "Alpine Ski House", "rmm_organization": "Alpine"},
    {"partner": "blue-harbor", "slug": "harbor-bakery", "name": "Harbor Bakery"},
    {"partner": "blue-harbor", "slug": "lighthouse-vet", "name": "Lighthouse Vet Clinic", "seat_cap": "6"},
    # peak
    {"partner": "summit-cloud", "slug": "evergreen-dental", "name": "Evergreen Dental"},
    {"partner": "summit-cloud", "slug": "marlow-finch", "name": "Marlow & Finch Accountants",
     "payment_terms_days": "45"},
    {"partner": "summit-cloud", "slug": "redwood-outdoor", "name": "Redwood Outdoor Supply"},
    # cmq (RMM organizations: the assets meter counts the partner's agents)
    {"partner": "ridgeline", "slug": "cedar-valley-cu", "name": "Cedar Valley Credit Union",
     "rmm_organization": "CedarValley"},
    {"partner": "ridgeline", "slug": "bluestone-eng", "name": "Bluestone Engineering", "rmm_organization": "Bluestone"},
    {"partner": "ridgeline", "slug": "hillcrest-living", "name": "Hillcrest Senior Living",
     "rmm_organization": "Hillcrest"},
    # licenses (tenants of an email archive)
    {"partner": "brightline", "slug": "harper-cole", "name": "Harper & Cole Solicitors"},
    {"partner": "brightline", "slug": "northfield-surveyors", "name": "Northfield Surveyors"},
    {"partner": "brightline", "slug": "quayside-hotel", "name": "Quayside Hotel"},
    {"partner": "brightline", "slug": "old-mill-bakery", "name": "Old Mill Bakery"},
    # per_asset
    {"partner": "keystone", "slug": "acme-mfg", "name": "Acme Manufacturing", "rmm_organization": "Acme"},
    {"partner": "keystone", "slug": "birchwood-clinic", "name": "Birchwood Family Clinic",
     "rmm_organization": "Birchwood"},
    {"partner": "keystone", "slug": "copperline", "name": "Copperline Logistics", "rmm_organization": "Copperline"},
    # per_host
    {"partner": "clearwave", "slug": "northgate-realty", "name": "Northgate Realty", "host_limit": "25"},
    {"partner": "clearwave", "slug": "lumen-design", "name": "Lumen Design Studio", "host_limit": "4"},
    {"partner": "clearwave", "slug": "pinecrest-academy", "name": "Pinecrest Academy", "host_limit": "10",
     "payment_terms_days": "30"},
    # flat
    {"partner": "granite-it", "slug": "vista-hotels", "name": "Vista Hotels Group"},
    {"partner": "granite-it", "slug": "orchard-pharmacy", "name": "Orchard Pharmacy"},
]

SERVICE_COLUMNS = ["partner", "customer", "code", "name", "method", "meter", "unit_price", "overage_price",
                   "committed_quantity", "overage_enabled", "storage_per_license_gb", "tiers", "tier_mode",
                   "proration", "start_date", "end_date", "rmm_filter", "taxable", "notification_emails"]


def services(first: Period) -> list[dict]:
    start = first.first.isoformat()

    def on(when: When) -> str:
        return when.on(first).isoformat()

    return [
        # --- seat_days -------------------------------------------------------------------------
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
        # --- peak: the highest day of the month ----------------------------------------------------
        {"partner": "summit-cloud", "code": "m365-backup", "name": "Microsoft 365 backup (per user)",
         "method": "peak", "meter": "users", "unit_price": "3.00", "start_date": start},
        {"partner": "summit-cloud", "customer": "marlow-finch", "code": "marlow-email-security",
         "name": "Advanced email security", "method": "peak", "meter": "users", "unit_price": "2.25",
         "start_date": start},
        # --- cmq: 50 agents in advance, Variable Monthly Usage above them in arrears -----------------
        {"partner": "ridgeline", "code": "rmm-agents", "name": "RMM agents (50 committed)", "method": "cmq",
         "meter": "assets", "unit_price": "2.50", "overage_price": "3.25", "committed_quantity": "50",
         "start_date": start, "notification_emails": "finance@ridgeline-tg.example"},
        # --- licenses: per tenant, users or storage, volume tiers -----------------------------------
        {"partner": "brightline", "code": "archive-licenses", "name": "Email archive licenses",
         "method": "licenses", "unit_price": "4.00", "storage_per_license_gb": "50",
         "tiers": "25:4.00;100:3.50;inf:3.00", "tier_mode": "volume", "start_date": start},
        # --- per_asset: RMM agents matching ORG or ORG/GROUP ------------------------------------------
        {"partner": "keystone", "customer": "acme-mfg", "code": "acme-endpoints", "name": "Managed endpoints",
         "method": "per_asset", "unit_price": "6.00", "rmm_filter": "Acme", "start_date": start,
         "notification_emails": "noc@keystone-ms.example"},
        {"partner": "keystone", "customer": "birchwood-clinic", "code": "birchwood-servers",
         "name": "Managed servers", "method": "per_asset", "unit_price": "35.00", "rmm_filter": "Birchwood/Servers",
         "start_date": start},
        {"partner": "keystone", "customer": "birchwood-clinic", "code": "birchwood-workstations",
         "name": "Managed workstations", "method": "per_asset", "unit_price": "6.00",
         "rmm_filter": "Birchwood/Workstations", "start_date": start},
        {"partner": "keystone", "customer": "copperline", "code": "copperline-endpoints",
         "name": "Managed endpoints", "method": "per_asset", "unit_price": "6.00", "rmm_filter": "Copperline",
         "start_date": on(When(1, 12))},
        # --- per_host: the host limit when the CI is issued ------------------------------------------
        {"partner": "clearwave", "customer": "northgate-realty", "code": "northgate-meetings",
         "name": "Video meetings (per host)", "method": "per_host", "unit_price": "15.00", "start_date": start},
        {"partner": "clearwave", "customer": "lumen-design", "code": "lumen-meetings",
         "name": "Video meetings (per host)", "method": "per_host", "unit_price": "15.00", "start_date": start},
        {"partner": "clearwave", "customer": "pinecrest-academy", "code": "pinecrest-meetings",
         "name": "Video meetings (per host)", "method": "per_host", "unit_price": "15.00",
         "proration": Proration.ROUNDED_DAILY_RATE, "start_date": on(When(2, 10))},
        # --- flat ----------------------------------------------------------------------------------
        {"partner": "granite-it", "code": "partner-plan", "name": "Partner support plan", "method": "flat",
         "unit_price": "250.00", "start_date": start},
        {"partner": "granite-it", "customer": "vista-hotels", "code": "vista-firewall", "name": "Managed firewall",
         "method": "flat", "unit_price": "180.00", "start_date": start},
        {"partner": "granite-it", "customer": "vista-hotels", "code": "vista-wifi-project",
         "name": "Wi-Fi migration project", "method": "flat", "unit_price": "400.00", "start_date": start,
         "end_date": first.next().last.isoformat()},
        {"partner": "granite-it", "customer": "orchard-pharmacy", "code": "orchard-helpdesk",
         "name": "Help desk retainer", "method": "flat", "unit_price": "600.00", "start_date": on(When(2, 17))},
    ]


# --- seats (seat_days partners) -----------------------------------------------------------------
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

PARTNER_USERS = [  # (username, email, partner, role, full name): a login for each billing kind
    ("northwind.billing", "billing@northwind-it.example", "northwind", Role.BILLING, "Anna Berg"),
    ("northwind.tech", "tech@northwind-it.example", "northwind", Role.TECHNICIAN, "Tom Reyes"),
    ("blueharbor.owner", "owner@blueharbor-it.example", "blue-harbor", Role.OWNER, "Maya Lind"),
    ("summit.billing", "billing@summit-cloud.example", "summit-cloud", Role.BILLING, "Priya Nair"),
    ("ridgeline.billing", "billing@ridgeline-msp.example", "ridgeline", Role.BILLING, "Lucas Moreau"),
    ("brightline.owner", "owner@brightline-data.example", "brightline", Role.OWNER, "Sofia Brandt"),
    ("keystone.billing", "billing@keystone-it.example", "keystone", Role.BILLING, "Omar Haddad"),
    ("clearwave.billing", "billing@clearwave.example", "clearwave", Role.BILLING, "Grace Kim"),
    ("granite.owner", "owner@granite-it.example", "granite-it", Role.OWNER, "Henrik Dahl"),
]


# --- tenant usage (peak and licenses partners) --------------------------------------------------
@dataclass(frozen=True)
class Tenant:
    """A tenant's daily usage as the nightly sync reports it: users change on the given days,
    storage grows every day, archived messages grow by working day."""

    partner: str
    customer: str
    users: tuple[tuple[When, int], ...]  # (from, users_count), the first from the first day
    storage_gb: int  # on the first day
    growth_mb: int  # per day
    messages: int  # on the first day
    mail_per_day: int  # per working day (a fifth of it at weekends)

    def users_on(self, first: Period, day: date) -> int:
        count = 0
        for when, users in self.users:
            if when.on(first) <= day:
                count = users
        return count


TENANTS = [
    # Summit Cloud: a partner-level backup service over all three, plus Marlow & Finch's own email security.
    # Evergreen hires temps for a few days of last month (the peak), Marlow & Finch moves both ways.
    Tenant("summit-cloud", "evergreen-dental", ((START, 18), (When(1, 6), 21), (When(2, 12), 24), (When(2, 16), 21),
                                                (When(3, 1), 22)), 140, 450, 210_000, 900),
    Tenant("summit-cloud", "marlow-finch", ((START, 32), (When(0, 22), 33), (When(1, 14), 31), (When(2, 3), 30),
                                            (When(2, 20), 34), (When(2, 27), 31)), 620, 1_300, 1_150_000, 2_400),
    Tenant("summit-cloud", "redwood-outdoor", ((START, 11), (When(1, 1), 12), (When(2, 8), 14), (When(3, 5), 15)),
           75, 200, 96_000, 420),
    # Brightline (50 GB per license): Northfield's plans fill storage with 6-7 users (about 19-20 licenses
    # by storage); Old Mill Bakery is suspended in the middle of last month; Quayside had a short suspension.
    Tenant("brightline", "harper-cole", ((START, 22), (When(1, 10), 24), (When(2, 18), 25)), 310, 800,
           480_000, 1_600),
    Tenant("brightline", "northfield-surveyors", ((START, 6), (When(2, 2), 7)), 860, 1_500, 64_000, 300),
    Tenant("brightline", "quayside-hotel", ((START, 14), (When(1, 20), 16), (When(2, 1), 15)), 180, 350,
           220_000, 700),
    Tenant("brightline", "old-mill-bakery", ((START, 9),), 95, 120, 41_000, 150),
]

# suspend / unsuspend (licenses: suspending stops counting from the next whole day)
TENANT_EVENTS = [
    ("brightline", "quayside-hotel", "suspend", When(1, 3, 10, 0)),
    ("brightline", "quayside-hotel", "unsuspend", When(1, 6, 9, 30)),
    ("brightline", "old-mill-bakery", "suspend", When(2, 14, 16, 30)),
]


# --- RMM inventories (per_asset and cmq partners) ---------------------------------------------------
WIN11, WIN10, SERVER22, SERVER19, MACOS = (
    "Windows 11 Pro", "Windows 10 Pro", "Windows Server 2022", "Windows Server 2019", "macOS 14",
)


def names(pattern: str, first: int, last: int) -> tuple[str, ...]:
    return tuple(pattern.format(n) for n in range(first, last + 1))


@dataclass(frozen=True)
class Add:
    organization: str
    group: str
    machines: tuple[str, ...]
    os: str


@dataclass(frozen=True)
class Move:
    machines: tuple[str, ...]
    organization: str
    group: str


@dataclass(frozen=True)
class Remove:
    machines: tuple[str, ...]


# partner: (first agent id, [(as of, changes since the previous inventory)]). Each step is a whole
# inventory as the RMM reports it that night; the first one is the state on the first demo day.
INVENTORIES = {
    # Keystone bills per agent: Acme by organization, Birchwood by group (servers and workstations apart).
    "keystone": (4_117_020_000, [
        (START, [
            Add("Acme", "Workstations", names("ACME-WS-{:02d}", 1, 12), WIN11),
            Add("Acme", "Servers", ("ACME-DC-01", "ACME-FS-01"), SERVER22),
            Add("Birchwood", "Workstations", names("BW-WS-{:02d}", 1, 8), WIN11),
            Add("Birchwood", "Servers", ("BW-SRV-01", "BW-SQL-01"), SERVER19),
            Add("Birchwood", "Lab", names("BW-LAB-{:02d}", 1, 3), WIN10),
            Add("Copperline", "Dispatch", names("CL-DSP-{:02d}", 1, 5), WIN11),
            Add("Copperline", "Warehouse", names("CL-WH-{:02d}", 1, 3), WIN10),
        ]),
        (When(0, 19), [Add("Acme", "Workstations", ("ACME-WS-13", "ACME-WS-14"), WIN11)]),
        (When(1, 8), [Move(("ACME-WS-07",), "Acme", "Servers"),  # repurposed: same organization, same units
                      Move(("BW-LAB-02",), "Birchwood", "Workstations")]),
        (When(1, 26), [Remove(("ACME-WS-03",))]),
        (When(2, 6), [Add("Birchwood", "Servers", ("BW-SQL-02",), SERVER22),
                      Add("Copperline", "Dispatch", ("CL-DSP-06",), WIN11)]),
        (When(2, 15), [Remove(("ACME-WS-05", "ACME-WS-09")), Move(("BW-WS-04",), "Birchwood", "Lab")]),
        (When(2, 23), [Add("Acme", "Workstations", names("ACME-WS-{:02d}", 15, 17), WIN11),
                       Remove(("CL-WH-03",))]),
        (When(3, 4), [Add("Acme", "Design", ("ACME-MAC-01",), MACOS)]),
    ]),
    # Ridgeline commits to 50 agents across its customers: 44-48 until last month, 56 at last month's peak.
    "ridgeline": (9_300_100_000, [
        (START, [
            Add("CedarValley", "Branches", names("CVCU-BR-{:02d}", 1, 18), WIN11),
            Add("CedarValley", "Servers", names("CVCU-SRV-{:02d}", 1, 4), SERVER22),
            Add("Bluestone", "Engineering", names("BSE-ENG-{:02d}", 1, 14), WIN11),
            Add("Bluestone", "Servers", ("BSE-SRV-01", "BSE-SRV-02"), SERVER19),
            Add("Hillcrest", "Nursing Stations", names("HSL-NS-{:02d}", 1, 6), WIN10),
        ]),
        (When(1, 2), [Add("Hillcrest", "Nursing Stations", ("HSL-NS-07", "HSL-NS-08"), WIN10)]),
        (When(1, 16), [Add("Bluestone", "Engineering", names("BSE-ENG-{:02d}", 15, 17), WIN11),
                       Remove(("CVCU-BR-11",))]),
        (When(2, 5), [Add("CedarValley", "Branches", names("CVCU-BR-{:02d}", 19, 23), WIN11)]),  # a new branch
        (When(2, 19), [Add("Hillcrest", "Nursing Stations", names("HSL-NS-{:02d}", 9, 11), WIN11),
                       Move(("BSE-ENG-03",), "Bluestone", "Servers")]),
        (When(3, 2), [Remove(names("CVCU-BR-{:02d}", 1, 4))]),  # an old branch closed
    ]),
}


def inventories(partner: str) -> Iterator[tuple[When, list[dict]]]:
    """Each whole inventory of a partner, as rmm-assets rows, in date order."""
    next_id, steps = INVENTORIES[partner]
    agents: dict[str, dict] = {}
    for when, changes in steps:
        for change in changes:
            if isinstance(change, Add):
                for machine in change.machines:
                    agents[machine] = {"agent_id": str(next_id), "machine_name": machine, "os": change.os,
                                       "organization": change.organization, "group": change.group}
                    next_id += 7
            elif isinstance(change, Move):
                for machine in change.machines:
                    agents[machine].update(organization=change.organization, group=change.group)
            else:
                for machine in change.machines:
                    del agents[machine]
        yield when, [dict(agent) for agent in agents.values()]


# --- files --------------------------------------------------------------------------------------
def csv_text(columns: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in columns})
    return out.getvalue()



def seat_events_csv(first: Period, now: datetime, partners=None) -> str:
    """The demo history as a seat-events file, leaving out anything later than now."""
    latest = now - timedelta(minutes=1)
    events = []
    for partner, customer, member, assigned, removed in SEATS:
        start = assigned.at(first)
        if start > latest or (partners is not None and partner not in partners):
            continue
        events.append((start, partner, customer, member, "assign"))
        if removed is not None and removed.at(first) <= latest:
            events.append((removed.at(first), partner, customer, member, "unassign"))
    events.sort()
    rows = [{"partner": p, "customer": c, "member": m, "action": a, "at": format_instant(t)}
            for t, p, c, m, a in events]
    return csv_text(["partner", "customer", "member", "action", "at"], rows)


def tenant_usage_rows(first: Period, today: date, partners) -> list[dict]:
    """One snapshot a day per tenant from the first demo day through today (never in the future)."""
    rows = []
    for tenant in TENANTS:
        if tenant.partner not in partners:
            continue
        day, index, messages = first.first, 0, tenant.messages
        while day <= today:
            rows.append({
                "partner": tenant.partner, "customer": tenant.customer, "date": day.isoformat(),
                "users_count": str(tenant.users_on(first, day)),
                "storage_bytes": str(tenant.storage_gb * GB + index * tenant.growth_mb * MB),
                "messages_count": str(messages),
            })
            day, index = day + timedelta(days=1), index + 1
            messages += tenant.mail_per_day if day.weekday() < 5 else tenant.mail_per_day // 5
    return rows


def last_seen(as_of: date, agent_id: str) -> str:
    """The RMM's last check-in: the evening before the inventory (informative only)."""
    minutes = int(agent_id) % 97
    evening = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC) - timedelta(hours=2, minutes=minutes)
    return format_instant(evening)
