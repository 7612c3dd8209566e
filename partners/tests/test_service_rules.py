"""Method-specific rules of a service: what a method takes and what it refuses
(billing-rules 3, 9.7; import-formats 5.3)."""

import pytest

from partners.models import Customer, SeatPurchase, Service

HEADER = "partner,code,name,method,meter,unit_price,overage_price,committed_quantity,tiers,start_date\n"


@pytest.fixture
def acme(cli, csv_file):
    assert cli("import_csv", "partners", str(csv_file("p.csv", "slug,name\nacme,Acme\n"))).status == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("row", "error"), [
    ("acme,s,S,seat_days,,20.00,,4,10:1.00;inf:0.50,2026-01-01",
     "row 2: tiers: a seat_days service is priced by its unit price, not by tiers"),
    ("acme,f,F,flat,,20.00,,,10:1.00;inf:0.50,2026-01-01",
     "row 2: tiers: a flat service is priced by its unit price, not by tiers"),
    ("acme,f,F,flat,,20.00,,3,,2026-01-01",
     "row 2: committed_quantity: only seat_days and cmq services have a commitment"),
    ("acme,h,H,peak,users,20.00,25.00,,,2026-01-01",
     "row 2: overage_price: only seat_days and cmq services have an overage price"),
    # a tier price takes the places a unit price takes (4): the line stores the price it charged
    ("acme,l,L,licenses,,3.00,,,10:4.00;inf:5.12345,2026-01-01",
     "row 2: tiers: tier 'inf:5.12345': price has more than 4 decimal places"),
])
def test_a_method_refuses_what_it_does_not_use(acme, cli, csv_file, row, error):
    result = cli("import_csv", "services", str(csv_file("s.csv", HEADER + row + "\n")))
    assert result.status == 1
    assert error in result.err
    assert not Service.objects.exists()


@pytest.mark.django_db
def test_tiers_are_taken_by_the_methods_they_price(acme, cli, csv_file):
    rows = ("acme,l,L,licenses,,3.00,,,25:4.00;inf:3.00,2026-01-01\n"
            "acme,p,P,peak,users,3.00,,,10:2.00;inf:1.00,2026-01-01\n")
    assert cli("import_csv", "services", str(csv_file("s.csv", HEADER + rows))).status == 0


@pytest.mark.django_db
def test_a_seat_purchase_in_the_future_is_refused(acme, cli, csv_file):
    assert cli("import_csv", "services", str(csv_file(
        "s.csv", HEADER + "acme,seats,Seats,seat_days,,20.00,,4,,2026-01-01\n"))).status == 0
    result = cli("import_csv", "seat-purchases", str(csv_file(
        "sp.csv", "partner,service,seats,purchased_at\nacme,seats,2,2099-06-15T00:00:00Z\n")))
    assert result.status == 1
    assert "row 2: purchased_at: 2099-06-15T00:00:00Z is in the future" in result.err
    assert not SeatPurchase.objects.exists()


@pytest.mark.django_db
def test_partner_option_refuses_rows_of_another_partner(acme, cli, csv_file):
    """--partner narrows an import to one partner: a row of another one is an error, not imported."""
    assert cli("import_csv", "partners", str(csv_file("p2.csv", "slug,name\nglobex,Globex\n"))).status == 0
    path = csv_file("c.csv", "partner,slug,name\nacme,a1,A1\nglobex,g1,G1\n")
    result = cli("import_csv", "customers", str(path), "--partner", "acme")
    assert result.status == 1
    assert "row 3: partner: 'globex' is not the partner given with --partner (acme)" in result.err
    assert not Customer.objects.exists()
    assert cli("import_csv", "customers", str(path)).status == 0
