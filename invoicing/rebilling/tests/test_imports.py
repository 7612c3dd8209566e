"""`import_csv resale-prices` (billing-rules 12.3, import-formats 5.11), as a clerk runs it: a good file, the same
file again (a no-op), a changed day, every row error at once with nothing written (the bad row is the last of a
file longer than IMPORT_BATCH_SIZE, 3 under test settings, so only the rollback removes the good batches), and the
audit rows with the file's name."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from conftest import write_csv
from invoicing.rebilling.choices import ResaleMode
from invoicing.rebilling.models import ResaleItem, ResalePrice
from invoicing.rebilling.tests.factories import ResaleItemFactory
from partners.choices import AuditAction
from partners.models import AuditLog, Method
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory
from tests.import_checks import import_rejected, row_error_lines

pytestmark = pytest.mark.django_db

D = Decimal
TRACKED = (ResalePrice, ResaleItem, AuditLog)
HEADER = "partner,customer,service,unit_price,markup_percent,package_units,package_price,tiers,effective_from"
GOOD = f"""
{HEADER}
northwind,,seats,35.00,,,,,2026-09-01
northwind,,retainer,,20,,,,2026-09-01
northwind,contoso,seats,32.00,,5,150.00,,2026-09-01
northwind,,item:helpdesk,95.00,,,,,2026-10-01
northwind,wingtip,seats,,,,,10:30.00;inf:25.00,
northwind,contoso,seats,,,,,,2026-12-01
"""


@pytest.fixture(autouse=True)
def today():
    with time_machine.travel(datetime(2026, 11, 20, 12, tzinfo=UTC), tick=False):
        yield


@pytest.fixture
def world():
    partner = PartnerFactory(slug="northwind")
    contoso = CustomerFactory(partner=partner, slug="contoso")
    fabrikam = CustomerFactory(partner=partner, slug="fabrikam")
    CustomerFactory(partner=partner, slug="wingtip")
    ServiceFactory(partner=partner, code="seats")
    ServiceFactory(partner=partner, code="retainer", customer=fabrikam, method=Method.FLAT)
    ResaleItemFactory(partner=partner, code="helpdesk")
    other = PartnerFactory(slug="other")
    ServiceFactory(partner=other, code="seats")
    return {"partner": partner, "contoso": contoso}


def imported(cli, path, *options) -> str:
    result = cli("import_csv", "resale-prices", str(path), *options)
    assert result.status == 0, result.err
    assert not row_error_lines(result.err)
    return result.out.strip()


def test_a_good_file_sets_every_mode_and_the_same_file_again_changes_nothing(cli, tmp_path, world):
    path = write_csv(tmp_path, "prices.csv", GOOD)
    assert imported(cli, path) == "resale-prices: imported 6 rows: 6 created, 0 updated, 0 unchanged"
    rows = {(p.customer.slug if p.customer else "", (p.service or p.item).code, p.effective_from): p
            for p in ResalePrice.objects.select_related("customer", "service", "item")}
    assert rows[("", "seats", date(2026, 9, 1))].unit_price == D("35.00")
    assert rows[("", "retainer", date(2026, 9, 1))].mode == ResaleMode.MARKUP
    package = rows[("contoso", "seats", date(2026, 9, 1))]
    assert (package.mode, package.package_units, package.package_price, package.unit_price) == (
        ResaleMode.PACKAGE, 5, D("150.00"), D("32.00"))
    assert rows[("", "helpdesk", date(2026, 10, 1))].item.code == "helpdesk"
    assert rows[("wingtip", "seats", date(2026, 11, 20))].tiers == "10:30.00;inf:25.00"  # blank: today
    assert rows[("contoso", "seats", date(2026, 12, 1))].mode == ResaleMode.DEFAULT
    entries = AuditLog.objects.filter(action=AuditAction.RESALE_PRICE_CREATE)
    assert entries.count() == 6 and all(e.after["file"] == str(path) for e in entries)
    assert all(e.actor_label for e in entries)
    # the same file again, a day later too (the blank effective_from is then tomorrow): nothing changes
    assert imported(cli, path) == "resale-prices: imported 6 rows: 0 created, 0 updated, 6 unchanged"
    with time_machine.travel(datetime(2026, 11, 21, 12, tzinfo=UTC), tick=False):
        assert imported(cli, path) == "resale-prices: imported 6 rows: 0 created, 0 updated, 6 unchanged"
    assert ResalePrice.objects.count() == 6 and AuditLog.objects.count() == 6


def test_a_row_of_a_known_day_changes_that_days_price(cli, tmp_path, world):
    imported(cli, write_csv(tmp_path, "a.csv", GOOD))
    changed = write_csv(tmp_path, "b.csv", f"""
        {HEADER}
        northwind,,seats,36.00,,,,,2026-09-01
        northwind,,seats,38.00,,,,,2027-01-01
        """)
    assert imported(cli, changed) == "resale-prices: imported 2 rows: 1 created, 1 updated, 0 unchanged"
    update = AuditLog.objects.get(action=AuditAction.RESALE_PRICE_UPDATE)
    assert (update.before["unit_price"], update.after["unit_price"]) == ("35", "36")


def test_identical_rows_are_one_and_different_ones_of_one_key_are_refused(cli, tmp_path, world):
    path = write_csv(tmp_path, "dup.csv", f"""
        {HEADER}
        northwind,,seats,35.00,,,,,2026-09-01
        northwind,,seats,35.00,,,,,2026-09-01
        """)
    assert imported(cli, path) == "resale-prices: imported 2 rows: 1 created, 0 updated, 1 unchanged"
    bad = write_csv(tmp_path, "bad.csv", f"""
        {HEADER}
        northwind,,seats,35.00,,,,,2026-09-01
        northwind,,seats,40.00,,,,,2026-09-01
        """)
    _, lines = import_rejected(cli, "resale-prices", bad, tracked=TRACKED)
    assert lines == ["row 3: service: same partner, customer, service and effective_from as row 2 with different "
                     "prices"]


def test_every_bad_row_is_named_and_nothing_is_written(cli, tmp_path, world):
    """The good rows fill batches of 3 first: only the rollback can remove them."""
    path = write_csv(tmp_path, "bad.csv", f"""
        {HEADER}
        northwind,,seats,35.00,,,,,2026-09-01
        northwind,,retainer,,20,,,,2026-09-01
        northwind,contoso,seats,32.00,,5,150.00,,2026-09-01
        northwind,,backups,1,,,,,
        northwind,,item:nope,1,,,,,
        northwind,,seats,abc,,,,,
        northwind,wingtip,retainer,1,,,,,
        northwind,,seats,1,10,,,,
        northwind,,seats,,,5,,,2026-10-01
        northwind,,seats,,,5,100,,2026-11-01
        northwind,,seats,,,,,,2026-12-01
        northwind,,item:helpdesk,,10,,,,
        northwind,,seats,,,,,10:5;5:4,2027-01-01
        ghost,,seats,1,,,,,
        northwind,ghost,seats,1,,,,,
        northwind,,seats,1.23456,,,,,2027-02-01
        northwind,,seats,-1,,,,,2027-03-01
        northwind,,seats,1,,,,,2026-02-30
        northwind,,seats,,1.2345,,,,2027-04-01
        northwind,,seats,,,0,1,1,2027-05-01
        """)
    _, lines = import_rejected(cli, "resale-prices", path, tracked=TRACKED)
    assert lines == [
        "row 5: service: unknown service 'backups' of partner northwind (an own item is written item:CODE)",
        "row 6: service: unknown own item 'nope' of partner northwind",
        "row 7: unit_price: not a number: 'abc'",
        "row 8: service: retainer is a service of customer fabrikam only",
        "row 9: markup_percent: give one way of pricing: unit_price; package_units and package_price (with "
        "unit_price for each unit above); markup_percent; or tiers",
        "row 10: package_price: is required: the price of the package",
        "row 10: unit_price: is required: the price of each unit above the package (0 for none)",
        "row 11: unit_price: is required: the price of each unit above the package (0 for none)",
        "row 12: unit_price: give a price: unit_price, markup_percent, package_units with package_price, or tiers",
        "row 13: markup_percent: a markup is on our price: your own items have none (give a unit_price)",
        "row 14: tiers: tier bounds must be ascending, with inf last",
        "row 15: partner: unknown partner 'ghost'",
        "row 16: customer: unknown customer 'ghost' of partner northwind",
        "row 17: unit_price: at most 4 decimal places",
        "row 18: unit_price: must not be negative",
        "row 19: effective_from: expected a date as YYYY-MM-DD, got '2026-02-30'",
        "row 20: markup_percent: at most 3 decimal places",
        "row 21: package_units: must be at least 1",
    ]
    assert not ResalePrice.objects.exists()


def test_the_partner_option_refuses_another_partners_rows(cli, tmp_path, world):
    path = write_csv(tmp_path, "p.csv", f"""
        {HEADER}
        northwind,,seats,35.00,,,,,2026-09-01
        other,,seats,35.00,,,,,2026-09-01
        """)
    _, lines = import_rejected(cli, "resale-prices", path, "--partner", "northwind", tracked=TRACKED)
    assert lines == ["row 3: partner: 'other' is not the partner given with --partner (northwind)"]


def test_a_dry_run_checks_everything_and_writes_nothing(cli, tmp_path, world):
    path = write_csv(tmp_path, "prices.csv", GOOD)
    out = imported(cli, path, "--dry-run")
    assert out.startswith("resale-prices: would import 6 rows: 6 created")
    assert not ResalePrice.objects.exists() and not AuditLog.objects.exists()


def test_an_own_item_with_a_tier_mode_column(cli, tmp_path, world):
    path = write_csv(tmp_path, "t.csv", """
        partner,customer,service,tiers,tier_mode,unit_price,effective_from
        northwind,contoso,item:helpdesk,10:95;inf:80,graduated,,2026-09-01
        northwind,,seats,,graduated,30,2026-09-01
        """)
    _, lines = import_rejected(cli, "resale-prices", path, tracked=TRACKED)
    assert lines == ["row 3: tier_mode: not used by a unit price: leave it blank"]
    path.write_text(path.read_text().replace(",graduated,30,", ",,30,"))
    imported(cli, path)
    tiers = ResalePrice.objects.get(item__code="helpdesk")
    assert (tiers.mode, tiers.tier_mode, tiers.customer) == (ResaleMode.TIERS, "graduated", world["contoso"])
