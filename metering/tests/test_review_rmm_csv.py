"""PROBES (scratch)"""

from __future__ import annotations

import codecs
import csv
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from djmoney.money import Money

from metering.models import AgentPresence, InventorySync, RmmAgent
from metering.notices import asset_units_on
from partners.models import Method
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory
from tests.import_checks import table_rows

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
AS_OF = date(2026, 12, 7)
TRACKED = (RmmAgent, AgentPresence, InventorySync)

NC_COLUMNS = ("DeviceID", "CustomerName", "SiteName", "DeviceName", "MachineType", "LastLoggedInUser", "OS",
              "IPAddress", "BitlockerStatus", "EncryptionKey")
CW_COLUMNS = ("Computer ID", "Client Name", "Location Name", "Computer Name", "Operating System", "Last Contact")


@pytest.fixture(autouse=True)
def today():
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def keystone(db):
    return PartnerFactory(slug="keystone", name="Keystone IT")


def per_asset(partner, code, rmm_filter="", customer=None, price="10.00", start=date(2026, 1, 1)):
    return ServiceFactory(partner=partner, customer=customer, code=code, method=Method.PER_ASSET,
                          rmm_filter=rmm_filter, unit_price=Money(Decimal(price), partner.currency),
                          start_date=start)


def units(partner, day=AS_OF):
    services = list(partner.services.order_by("code"))
    found = asset_units_on(services=services, day=day)
    return {s.code: found[s.pk] for s in services}


def ps_csv(columns, rows, *, type_line=False, quote_all=True, delimiter=",") -> str:
    out = io.StringIO()
    if type_line:
        out.write("#TYPE System.Management.Automation.PSCustomObject\r\n")
    w = csv.writer(out, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL, lineterminator="\r\n",
                   delimiter=delimiter)
    w.writerow(columns)
    for r in rows:
        w.writerow(r)
    return out.getvalue()


def write(tmp_path, name, text, encoding="utf-8"):
    p = tmp_path / name
    if encoding == "utf-16-le-bom":
        p.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    elif encoding == "utf-8-sig":
        p.write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    else:
        p.write_bytes(text.encode(encoding))
    return p


def run(path, as_of=AS_OF, **options):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_csv", "rmm-assets", str(path), partner="keystone", as_of=as_of.isoformat(),
                     stdout=out, stderr=err, **options)
    except CommandError as exc:
        return 1, out.getvalue(), err.getvalue().splitlines() + [f"CommandError: {exc}"]
    return 0, out.getvalue(), err.getvalue().splitlines()


def nc_rows():
    return [
        ("789247677", "Birchwood Dental", "Main Office", "BW-FD-01", "Workstations - Windows", "BIRCHWOOD\\jmorgan",
         "Microsoft Windows 11 Pro 64-bit", "10.20.1.21", "Protection On", "302478-115236"),
        ("789247681", "Birchwood Dental", "Main Office", "BW-LT-03", "Laptop - Windows", "BIRCHWOOD\\dr.lee",
         "Microsoft Windows 11 Pro 64-bit", "10.20.1.57", "Protection On", "117040-543290"),
        ("789247702", "Birchwood Dental", "", "BW-SRV-01", "Servers - Windows", "",
         "Microsoft Windows Server 2022 Standard 64-bit", "10.20.1.5", "Protection Off", ""),
        ("789247711", "Birchwood Dental", "Main Office", "BW-CORE-SW", "Switch/Router", "",
         "Cisco IOS", "10.20.1.1", "", ""),
    ]


def test_probe_utf16_type_line(keystone, tmp_path):
    CustomerFactory(partner=keystone, slug="bw", name="Birchwood", rmm_organization="birchwood dental")
    per_asset(keystone, "bw", customer=keystone.customers.get())
    text = ps_csv(NC_COLUMNS, nc_rows()[:3], type_line=True) + "\r\n\r\n"
    p = write(tmp_path, "nc.csv", text, "utf-16-le-bom")
    print(run(p))
    print(units(keystone))
    rows = nc_rows()[:3]
    rows[0] = rows[0][:3] + ("",) + rows[0][4:]
    p = write(tmp_path, "nc2.csv", ps_csv(NC_COLUMNS, rows, type_line=True) + "\r\n", "utf-16-le-bom")
    print(run(p))


def test_probe_switch(keystone, tmp_path):
    CustomerFactory(partner=keystone, slug="bw", name="Birchwood", rmm_organization="Birchwood Dental")
    per_asset(keystone, "bw", customer=keystone.customers.get())
    p = write(tmp_path, "nc.csv", ps_csv(NC_COLUMNS, nc_rows()))
    print(run(p))
    print(units(keystone))


def test_probe_dates(keystone, tmp_path):
    rows = [("1042", "Birchwood Dental", "Main Office", "BW-FD-01", "Win 11", "12/6/2026 12:41:03\u202fPM"),
            ("1043", "Birchwood Dental", "Main Office", "BW-FD-02", "Win 11", "06/12/2026 12:41:03"),
            ("1044", "Birchwood Dental", "Main Office", "BW-FD-03", "Win 11", "2026/12/06 12:41:03"),
            ("1045", "Birchwood Dental", "Main Office", "BW-FD-04", "Win 11", "6/12/2026 12:41:03 p.m."),
            ("1046", "Birchwood Dental", "Main Office", "BW-FD-05", "Win 11", "12/6/2026 12:41:03\u00a0PM"),
            ]
    p = write(tmp_path, "cw.csv", ps_csv(CW_COLUMNS, rows))
    print(run(p))
    print(list(RmmAgent.objects.values_list("agent_id", "last_seen")))


def test_probe_excel_trailing(keystone, tmp_path):
    rows = [("1042", "Birchwood Dental", "Main Office", "BW-FD-01", "Win 11", "06.12.2026 12:41"),
            ("1043", "Birchwood Dental", "Main Office", "BW-FD-02", "Win 11", "06.12.2026 12:41")]
    text = ps_csv([*CW_COLUMNS, "", ""], [(*r, "", "") for r in rows], quote_all=False, delimiter=";")
    text += ";;;;;;;\r\n;;;;;;;\r\n"
    p = write(tmp_path, "cw.csv", text, "utf-8-sig")
    print(run(p))
    print(list(RmmAgent.objects.values_list("agent_id", "last_seen")))


def test_probe_cp1252(keystone, tmp_path):
    rows = [("1042", "Birchwood Dental", "Main Office", "BW-FD-01", "Win 11", "06.12.2026 12:41"),
            ("1120", "Zahnarztpraxis Müller", "Hauptstraße", "ZM-EMPFANG", "Win 11", "06.12.2026 12:41")]
    text = ps_csv(CW_COLUMNS, rows, quote_all=False, delimiter=";")
    p = write(tmp_path, "cw.csv", text, "cp1252")
    print(run(p))


def test_probe_vsa_org_id(keystone, tmp_path):
    cols = ("AgentId", "AgentName", "Online", "OrgId", "MachineGroupId", "MachineGroup", "ComputerName",
            "OperatingSystem", "LastCheckInTime")
    rows = [("694825728222021", "bw-fd-01.root.birchwood", "1", "381746928105532", "928374615243817",
             "root.Birchwood", "BW-FD-01", "Win 11", "12/6/2026 12:41:03 PM"),
            ("694825728222022", "bw-fd-02.lab.root.birchwood", "0", "381746928105532", "928374615243818",
             "lab.root.Birchwood", "BW-FD-02", "Win 11", "06/12/2026 12:41:03")]
    CustomerFactory(partner=keystone, slug="bw", name="Birchwood", rmm_organization="381746928105532")
    CustomerFactory(partner=keystone, slug="bw2", name="Birchwood2", rmm_organization="BIRCHWOOD ")
    per_asset(keystone, "bw", customer=keystone.customers.get(slug="bw"))
    per_asset(keystone, "bw2", customer=keystone.customers.get(slug="bw2"))
    per_asset(keystone, "lab", rmm_filter="birchwood/root/lab")
    p = write(tmp_path, "vsa.csv", ps_csv(cols, rows, type_line=True), "utf-16-le-bom")
    print(run(p))
    print(units(keystone))


def test_probe_unmatched_org(keystone, tmp_path):
    CustomerFactory(partner=keystone, slug="zm", name="ZM", rmm_organization="Zahnarztpraxis Müller")
    per_asset(keystone, "zm", customer=keystone.customers.get())
    rows = [("1120", "Zahnarztpraxis Müller", "Hauptstraße", "ZM-EMPFANG", "Win 11", "12/6/2026 12:41:03 PM"),
            ("1121", "Zahnarztpraxis Müller", "Hauptstraße", "ZM-2", "Win 11", "12/6/2026 12:41:03 PM")]
    p = write(tmp_path, "cw.csv", ps_csv(CW_COLUMNS, rows, type_line=True))
    print(run(p))
    print(units(keystone))
    ascii_rows = [tuple(c.replace("ü", "?").replace("ß", "?") for c in r) for r in rows]
    p = write(tmp_path, "cw2.csv", ps_csv(CW_COLUMNS, ascii_rows, type_line=True))
    print(run(p))
    print(units(keystone))


def test_probe_multiline(keystone, tmp_path):
    rows = nc_rows()[:3]
    rows[0] = rows[0][:9] + ("line1\nline2",)
    rows[2] = ("789247702", "", "", "BW-SRV-01", "Servers - Windows", "", "", "", "", "")
    p = write(tmp_path, "nc.csv", ps_csv(NC_COLUMNS, rows, type_line=True), "utf-16-le-bom")
    print(run(p))


def test_probe_reimport_variants(keystone, tmp_path):
    CustomerFactory(partner=keystone, slug="bw", name="Birchwood", rmm_organization="Birchwood Dental")
    per_asset(keystone, "bw", customer=keystone.customers.get())
    rows = nc_rows()[:3]
    p = write(tmp_path, "nc.csv", ps_csv(NC_COLUMNS, rows, type_line=True), "utf-16-le-bom")
    print(run(p))
    before = table_rows(TRACKED)
    p2 = write(tmp_path, "nc2.csv", ps_csv(NC_COLUMNS, rows, quote_all=False, delimiter=";"), "utf-8-sig")
    print(run(p2))
    after = table_rows(TRACKED)
    print(before["RmmAgent"] == after["RmmAgent"], before["AgentPresence"] == after["AgentPresence"],
          len(before["InventorySync"]), len(after["InventorySync"]))
    print(run(p2, as_of=date(2026, 12, 5)))
    print(units(keystone), units(keystone, date(2026, 12, 5)))


def test_probe_money(keystone, tmp_path):
    from invoicing.models import InvoiceLine, InvoiceState
    bw = CustomerFactory(partner=keystone, slug="bw", name="Birchwood", rmm_organization="Birchwood Dental")
    per_asset(keystone, "bw", customer=bw, start=date(2026, 11, 1))
    rows = nc_rows()[:3]
    p = write(tmp_path, "nc-nov.csv", ps_csv(NC_COLUMNS, rows, type_line=True) + "\r\n", "utf-16-le-bom")
    print(run(p, as_of=date(2026, 11, 1)))
    out = io.StringIO()
    call_command("run_billing", "--through", "2026-12-01", stdout=out)
    new = ("789247690", "Birchwood Dental", "Main Office", "BW-WS-09", "Workstations - Windows", "", "Win 11", "", "", "")
    rows2 = [*rows, new, rows[0]]
    p2 = write(tmp_path, "nc-dec.csv", ps_csv(NC_COLUMNS, rows2, quote_all=False, delimiter=";"), "utf-8-sig")
    print(run(p2))
    with time_machine.travel(datetime(2027, 1, 1, 3, 0, tzinfo=UTC), tick=True):
        call_command("run_billing", "--through", "2027-01-01", stdout=out)
    print(list(InvoiceLine.objects.filter(invoice__state=InvoiceState.ISSUED).order_by("invoice__month", "pk").values_list(
        "invoice__month", "line_type", "period", "quantity", "effective_date", "amount")))
