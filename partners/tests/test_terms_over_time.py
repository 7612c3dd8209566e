"""Terms with effective dates, end to end through the CLI (billing-rules 3.11): a month is billed with the terms
in force on the date it is billed for, whether it is billed on time or caught up later."""

from datetime import date

import pytest

from partners.models import Service, TermsVersion
from partners.services import terms_history
from tests.examples import export

PARTNERS = "slug,name,tax_rate\nacme,Acme,0\n"
CUSTOMERS = "partner,slug,name,host_limit\nacme,birch,Birch,10\n"
SERVICES = ("partner,customer,code,name,method,unit_price,start_date\n"
            "acme,birch,hosts,Hosts,per_host,15.00,2026-04-01\n")


@pytest.fixture
def acme(cli, csv_file):
    for kind, text in (("partners", PARTNERS), ("customers", CUSTOMERS), ("services", SERVICES)):
        result = cli("import_csv", kind, str(csv_file(f"{kind}.csv", text)))
        assert result.status == 0, result.err


def amounts(service="hosts", line_types=("recurring", "true_up")):
    return sorted((row["kind"], row["period"], row["line_type"], row["quantity"], row["amount"])
                  for row in export("invoice-lines") if row["service"] == service and row["line_type"] in line_types)


def import_ok(cli, csv_file, kind, text):
    result = cli("import_csv", kind, str(csv_file(f"{kind}-change.csv", text)))
    assert result.status == 0, result.err
    return result


@pytest.mark.django_db
@pytest.mark.parametrize("on_time", [True, False], ids=["billed on time", "caught up in one late run"])
def test_a_host_limit_raised_on_25_april_bills_april_at_10_and_may_at_25(acme, cli, csv_file, on_time):
    if on_time:
        assert cli("run_billing", "--through", "2026-04-01").status == 0
    import_ok(cli, csv_file, "customers",
              "partner,slug,name,host_limit,effective_from\nacme,birch,Birch,25,2026-04-25\n")
    assert cli("run_billing", "--through", "2026-05-02").status == 0
    lines = [(period, quantity, amount) for _, period, _, quantity, amount in amounts()]
    assert lines == [("2026-04", "10.0000", "150.00"), ("2026-05", "25.0000", "375.00")]


@pytest.mark.django_db
def test_a_price_change_effective_1_may_reaches_may_but_not_april_in_a_catch_up_run(acme, cli, csv_file):
    import_ok(cli, csv_file, "services", SERVICES.replace("15.00", "20.00").replace(
        "start_date\n", "start_date,effective_from\n").replace("2026-04-01\n", "2026-04-01,2026-05-01\n"))
    assert cli("run_billing", "--through", "2026-05-01").status == 0
    lines = [(period, row_price, amount) for period, row_price, amount in (
        (row["period"], row["unit_price"], row["amount"]) for row in export("invoice-lines")
        if row["service"] == "hosts" and row["line_type"] == "recurring")]
    assert sorted(lines) == [("2026-04", "15.00", "150.00"), ("2026-05", "20.00", "200.00")]


@pytest.mark.django_db
def test_a_price_change_without_effective_from_applies_from_the_first_month_not_yet_invoiced(acme, cli, csv_file):
    assert cli("run_billing", "--through", "2026-04-01").status == 0
    import_ok(cli, csv_file, "services", SERVICES.replace("15.00", "20.00"))
    assert cli("run_billing", "--through", "2026-05-01").status == 0
    assert [(period, amount) for _, period, _, _, amount in amounts()] == [("2026-04", "150.00"),
                                                                           ("2026-05", "200.00")]

    history = terms_history(Service.objects.get(code="hosts"))
    assert [(row["from"], row["until"], row["values"]["unit price"]) for row in history] == [
        (None, date(2026, 4, 30), "15.00"), (date(2026, 5, 1), None, "20.00")]


@pytest.mark.django_db
def test_without_an_invoice_a_change_without_a_date_holds_from_the_start(acme, cli, csv_file):
    import_ok(cli, csv_file, "customers", CUSTOMERS.replace(",10\n", ",12\n"))
    assert cli("run_billing", "--through", "2026-04-01").status == 0
    assert [(period, amount) for _, period, _, _, amount in amounts()] == [("2026-04", "180.00")]


@pytest.mark.django_db
def test_a_price_change_on_another_day_than_a_first_is_refused_naming_the_row(acme, cli, csv_file):
    result = cli("import_csv", "services", str(csv_file("s.csv", SERVICES.replace("15.00", "20.00").replace(
        "start_date\n", "start_date,effective_from\n").replace("2026-04-01\n", "2026-04-01,2026-04-25\n"))))
    assert result.status == 1
    assert "row 2: effective_from: a change of unit price takes effect on a month's 1st, not 2026-04-25" in result.err

    assert Service.objects.get(code="hosts").unit_price.amount == 15
    assert not TermsVersion.objects.exists()


@pytest.mark.django_db
def test_tax_rate_is_the_one_in_force_on_the_issue_date(acme, cli, csv_file):
    import_ok(cli, csv_file, "partners", "slug,name,tax_rate,effective_from\nacme,Acme,10,2026-05-01\n")
    assert cli("run_billing", "--through", "2026-05-01").status == 0
    taxes = sorted((row["kind"], row["period"], row["amount"]) for row in export("invoice-lines")
                   if row["line_type"] == "tax")
    assert taxes == [("CI", "2026-05", "15.00")]  # April's CI was issued at 0%: no tax line
