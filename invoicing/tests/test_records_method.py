"""The `records` method (billing-rules 3.13): a service that bills the partner for a usage-record meter of its
customers, through the command line as a clerk runs it: the worked example (0.06 for April's 3 outbound minutes),
the meter's pattern and lock, a record sent late billed as a true-up, and the partner rebilling it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from billing.core.usage_meters import meter_total, meter_unit
from invoicing.rebilling.models import CustomerInvoice, RebillingProfile, ResalePrice
from partners.models import Service

pytestmark = pytest.mark.django_db
D = Decimal

SERVICES = ("partner,customer,code,name,method,meter,usage_meter,unit_price,tiers,tier_mode,start_date\n"
            "lakeside,,calls,Outbound calls,records,,Call_Minutes:Outbound:*,0.02,,,2026-03-01\n"
            "lakeside,company-b,meetings,Meeting minutes,records,,meeting_minutes,0.01,,,2026-03-01\n")
CALLS = ("partner,customer,record_id,user,started_at,duration_seconds,direction,destination\n"
         "lakeside,company-a,c1,101,2026-04-30T23:59:59Z,61,outbound,international\n"
         "lakeside,company-a,c2,102,2026-04-02T10:00:00Z,60,Outbound,mobile\n"
         "lakeside,company-a,c3,103,2026-04-02T11:00:00Z,600,inbound,local\n"
         "lakeside,company-b,c4,201,2026-04-03T09:00:00Z,59,outbound,local\n"
         "lakeside,company-a,c5,103,2026-05-01T00:00:00Z,600,outbound,local\n")
MEETINGS = ("partner,customer,meeting_id,host,started_at,duration_seconds,participants\n"
            "lakeside,company-b,m1,ann,2026-04-07T15:00:00Z,1800,5\n"
            "lakeside,company-a,m2,bob,2026-04-08T15:00:00Z,600,2\n")


def run(cli, tmp_path, *args, on=datetime(2026, 5, 1, 6, tzinfo=UTC)):
    with time_machine.travel(on, tick=False):
        result = cli(*args)
    return result


def imported(cli, tmp_path, kind: str, text: str, on=datetime(2026, 5, 1, 5, tzinfo=UTC)):
    path = tmp_path / f"{kind}.csv"
    path.write_text(text)
    result = run(cli, tmp_path, "import_csv", kind, str(path), on=on)
    assert result.status == 0, result.err
    return result


@pytest.fixture
def lakeside(cli, tmp_path):
    imported(cli, tmp_path, "partners", "slug,name,currency,tax_rate,payment_terms_days\nlakeside,Lakeside,USD,0,30\n",
             on=datetime(2026, 3, 1, 5, tzinfo=UTC))
    imported(cli, tmp_path, "customers",
             "partner,slug,name\nlakeside,company-a,Company A\nlakeside,company-b,Company B\n",
             on=datetime(2026, 3, 1, 5, tzinfo=UTC))
    imported(cli, tmp_path, "services", SERVICES, on=datetime(2026, 3, 1, 5, tzinfo=UTC))
    imported(cli, tmp_path, "call-usage", CALLS)
    imported(cli, tmp_path, "meeting-summaries", MEETINGS)


def lines(cli, tmp_path) -> list[tuple]:
    result = run(cli, tmp_path, "export_report", "invoice-lines", "--partner", "lakeside", "--format", "csv")
    assert result.status == 0, result.err
    return [(r["service"], r["customer"], r["period"], r["quantity"], r["amount"], r["description"])
            for r in csv.DictReader(io.StringIO(result.out)) if r["line_type"] != "tax"]


def test_the_worked_example_bills_each_customers_outbound_minutes_of_the_month_before(cli, tmp_path, lakeside):
    """billing-rules 3.13: 61 s and 60 s outbound are 2 + 1 minutes (each call rounded up), the inbound call is
    another meter and c5 is May's; Company B's customer-level meetings service reads its own customer only."""
    assert Service.objects.get(code="calls").usage_meter == "call_minutes:outbound:*"  # kept in lower case
    result = run(cli, tmp_path, "run_billing", "--through", "2026-05-01")
    assert result.status == 0, result.err
    april = [row for row in lines(cli, tmp_path) if row[2] == "2026-04"]
    assert april == [
        ("calls", "company-a", "2026-04", "3.0000", "0.06", "Outbound calls 2026-04: 3 minutes, Company A"),
        ("calls", "company-b", "2026-04", "1.0000", "0.02", "Outbound calls 2026-04: 1 minute, Company B"),
        ("meetings", "company-b", "2026-04", "30.0000", "0.30", "Meeting minutes 2026-04: 30 meeting minutes, "
                                                                "Company B"),
    ]


def test_a_call_sent_late_is_billed_as_a_true_up_on_the_next_run(cli, tmp_path, lakeside):
    assert run(cli, tmp_path, "run_billing", "--through", "2026-05-01").status == 0
    imported(cli, tmp_path, "call-usage", CALLS.splitlines()[0] + "\n"
             "lakeside,company-a,c9,101,2026-04-20T10:00:00Z,120,outbound,national\n",
             on=datetime(2026, 5, 20, 5, tzinfo=UTC))
    result = run(cli, tmp_path, "run_billing", "--through", "2026-06-01", on=datetime(2026, 6, 1, 6, tzinfo=UTC))
    assert result.status == 0, result.err
    true_ups = [row for row in lines(cli, tmp_path) if row[0] == "calls" and row[2] == "2026-04"
                and row[1] == "company-a"]
    assert [row[4] for row in true_ups] == ["0.06", "0.04"]  # 2 more minutes at 0.02


def test_a_bad_usage_meter_and_a_change_of_it_are_refused(cli, tmp_path, lakeside):
    bad = tmp_path / "bad.csv"
    bad.write_text("partner,code,name,method,usage_meter,unit_price,start_date\n"
                   "lakeside,x1,X,records,,0.02,2026-03-01\n"
                   "lakeside,x2,X,records,call_minutes:sideways,0.02,2026-03-01\n"
                   "lakeside,x3,X,flat,meetings,0.02,2026-03-01\n"
                   "lakeside,calls,Outbound calls,records,meetings,0.02,2026-03-01\n")
    result = run(cli, tmp_path, "import_csv", "services", str(bad))
    assert result.status == 1
    assert "row 2: usage_meter: required for method records" in result.err
    assert "row 3: usage_meter: 'call_minutes:sideways' is not a usage-record meter" in result.err
    assert "row 4: usage_meter: only records services take a usage-record meter, not flat" in result.err
    assert "row 5: usage_meter: cannot change" in result.err
    assert not Service.objects.filter(code__in=["x1", "x2", "x3"]).exists()


def test_the_partner_rebills_the_minutes_at_its_own_price(cli, tmp_path, lakeside):
    """billing-rules 12.6: a records line names its customer, so it is rebilled like any other."""
    partner = Service.objects.get(code="calls").partner
    RebillingProfile.objects.create(partner=partner, enabled=True, number_prefix="LAKE")
    ResalePrice.objects.create(partner=partner, service=Service.objects.get(code="calls"), mode="unit",
                               unit_price=D("0.05"), effective_from=date(2026, 3, 1))
    assert run(cli, tmp_path, "run_billing", "--through", "2026-05-01").status == 0
    invoice = CustomerInvoice.objects.get(customer__slug="company-a", month="2026-05")
    line = invoice.lines.get(service__code="calls")
    assert (line.quantity, line.amount, line.cost) == (D("3"), D("0.15"), D("0.06"))


def test_meter_patterns_sum_the_keys_they_name():
    readings = {"call_minutes:outbound:local": D(2), "call_minutes:outbound:mobile": D(3),
                "call_minutes:inbound:local": D(7), "calls:outbound:local": D(1), "meeting_minutes": D(30)}
    assert meter_total(readings, "call_minutes:outbound:*") == 5
    assert meter_total(readings, "call_minutes:*:local") == 9
    assert meter_total(readings, "call_minutes:*:*") == 12
    assert meter_total(readings, "calls:outbound:local") == 1
    assert meter_total(readings, "meeting_minutes") == 30
    assert meter_total(readings, "meetings") == 0
    assert meter_unit("call_minutes:outbound:*") == "minutes" and meter_unit("participant_minutes") == \
        "participant minutes"
