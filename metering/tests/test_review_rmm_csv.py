"""Review: `import_csv rmm-assets FILE --partner P --as-of D` with N-able N-central, ConnectWise Automate and
Kaseya VSA 9 exports, written as Windows tools really write them.

Sources of the shapes (never what our code expects):
- N-central: repository c-vohs/NCentral, `BitlockerReportAPI.ps1` (Get-NCDeviceList selected into `DeviceID,
  CustomerName, SiteName, DeviceName, MachineType, LastLoggedInUser, OS, IPAddress, BitlockerStatus,
  EncryptionKey`, `Export-Csv -NoTypeInformation`, run per customer: `Get-NCDeviceList -CustomerIDs 100`), and
  `GetMachineCountAPI.ps1` of the same repository, which counts machines leaving out `deviceclass -eq
  "Switch/Router"` (N-central lists agentless network devices beside agents).
- ConnectWise Automate: ProVal-Tech/proval-docs `docs/cwa/dataviews/` (columns `Computer ID, Client Name,
  Location Name, Computer Name, Operating System, Last Contact`; other views write `Client_Name`,
  `Location_Name`, `Operating_System`, `Last Contact Date`).
- Kaseya VSA 9: the REST API's agent record as VSAModule's Get-VSAAgent objects (Kaseya-Automation-Team
  VSAModule, `api/v1.0/assetmgmt/agents`: AgentId, AgentName, Online, OrgId, MachineGroupId, MachineGroup,
  ComputerName, OperatingSystem, LastCheckInTime; Online 0/1/2/11/12/198/199).
- How Windows writes them: PowerShell 5.1 `ConvertTo-Csv | Out-File` (a `#TYPE` first line, every cell quoted,
  UTF-16 LE with a byte-order mark, CRLF, a trailing blank line); PowerShell 7 dates in the machine's culture
  (.NET 5+ on ICU puts U+202F before AM/PM in en-US; en-GB writes 06/12/2026); Excel re-saves with `;` in
  European locales, in the ANSI code page for "CSV (Trennzeichen-getrennt)".

Each finding was first a strict xfail that failed on the code as it was; the defects are fixed and the tests pass.
The clock stands at 2026-12-07 09:00 UTC.
"""

from __future__ import annotations

import codecs
import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from djmoney.money import Money

from invoicing.models import InvoiceLine, InvoiceState
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
VSA_COLUMNS = ("AgentId", "AgentName", "Online", "OrgId", "MachineGroupId", "MachineGroup", "ComputerName",
               "OperatingSystem", "LastCheckInTime")


@pytest.fixture(autouse=True)
def today():
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def keystone(db):
    return PartnerFactory(slug="keystone", name="Keystone IT")


def customer(partner, slug, rmm_organization):
    return CustomerFactory(partner=partner, slug=slug, name=slug.title(), rmm_organization=rmm_organization)


def per_asset(partner, code, rmm_filter="", customer=None, start=date(2026, 1, 1)):
    return ServiceFactory(partner=partner, customer=customer, code=code, method=Method.PER_ASSET,
                          rmm_filter=rmm_filter, unit_price=Money(Decimal("10.00"), partner.currency),
                          start_date=start)


def units(partner, day=AS_OF):
    services = list(partner.services.order_by("code"))
    found = asset_units_on(services=services, day=day)
    return {s.code: found[s.pk] for s in services}


def export_text(columns, rows, *, type_line=False, quote_all=True, delimiter=",") -> str:
    """PowerShell's Export-Csv / ConvertTo-Csv (every cell quoted, CRLF; 5.1 writes the #TYPE line), or Excel's
    re-save (quotes only where needed, `;` in European locales)."""
    out = io.StringIO()
    if type_line:
        out.write("#TYPE System.Management.Automation.PSCustomObject\r\n")
    writer = csv.writer(out, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL, lineterminator="\r\n",
                        delimiter=delimiter)
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def write(tmp_path, name, text, encoding="utf-8"):
    """`utf-16` is PowerShell's `-Encoding Unicode` / Out-File 5.1: UTF-16 LE with its byte-order mark."""
    path = tmp_path / name
    if encoding == "utf-16":
        path.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    elif encoding == "utf-8-sig":
        path.write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    else:
        path.write_bytes(text.encode(encoding))
    return path


def run(path, as_of=AS_OF):
    """The clerk's command: (exit status, standard output, lines of standard error and the CommandError)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_csv", "rmm-assets", str(path), partner="keystone", as_of=as_of.isoformat(),
                     stdout=out, stderr=err)
    except CommandError as exc:
        return 1, out.getvalue(), [*err.getvalue().splitlines(), f"CommandError: {exc}"]
    return 0, out.getvalue(), err.getvalue().splitlines()


def summary(out: str) -> str:
    return out.strip().split("): ", 1)[-1]


def nc_rows():
    return [
        ("789247677", "Birchwood Dental", "Main Office", "BW-FD-01", "Workstations - Windows", "BIRCHWOOD\\jmorgan",
         "Microsoft Windows 11 Pro 64-bit", "10.20.1.21", "Protection On", "302478-115236-662233"),
        ("789247681", "Birchwood Dental", "Main Office", "BW-LT-03", "Laptop - Windows", "BIRCHWOOD\\dr.lee",
         "Microsoft Windows 11 Pro 64-bit", "10.20.1.57", "Protection On", "117040-543290-001133"),
        ("789247702", "Birchwood Dental", "", "BW-SRV-01", "Servers - Windows", "",
         "Microsoft Windows Server 2022 Standard 64-bit", "10.20.1.5", "Protection Off", ""),
    ]


# --- what holds ---------------------------------------------------------------------------------------------------

def test_powershell_51_unicode_export_is_read_and_a_bad_row_is_named_as_a_spreadsheet_shows_it(keystone, tmp_path):
    """billing-rules 9.5 and 9.6: N-central's list as PowerShell 5.1 writes it with `Out-File` (UTF-16 LE, #TYPE,
    quoted, CRLF, blank lines at the end) is the whole inventory: 3 agents of Birchwood Dental (any case),
    Main Office holds 2. A later export whose first agent's EncryptionKey spans two lines and whose third agent
    lost its CustomerName is refused at row 5 (#TYPE 1, header 2, agents 3, 4, 5), naming the file's column, and
    writes nothing."""
    bw = customer(keystone, "bw", "birchwood dental")
    per_asset(keystone, "bw", customer=bw)
    per_asset(keystone, "main", rmm_filter="Birchwood Dental/main office")
    path = write(tmp_path, "nc.csv", export_text(NC_COLUMNS, nc_rows(), type_line=True) + "\r\n\r\n", "utf-16")
    status, out, err = run(path)
    assert (status, summary(out), err) == (0, "imported 3 rows: 3 created, 0 updated, 0 unchanged", [])
    assert units(keystone) == {"bw": 3, "main": 2}

    rows = nc_rows()
    rows[0] = (*rows[0][:9], "302478-115236\n662233-487102")
    rows[2] = (rows[2][0], "", *rows[2][2:])
    before = table_rows(TRACKED)
    status, _, err = run(write(tmp_path, "nc-bad.csv", export_text(NC_COLUMNS, rows, type_line=True), "utf-16"))
    assert status == 1
    assert err[0] == "row 5: CustomerName: is required"
    assert err[1].endswith("1 bad row(s), 1 error(s); nothing was imported")
    assert table_rows(TRACKED) == before


def test_the_same_night_resaved_by_a_german_excel_changes_nothing(keystone, tmp_path):
    """billing-rules 6.11 and 9.5: the same inventory imported again changes nothing, whatever the file's
    encoding and separator (UTF-16 with #TYPE, then Excel's `;` with a UTF-8 byte-order mark, an identical
    row twice): every agent counted once, no new inventory recorded, nothing rewritten."""
    per_asset(keystone, "bw", customer=customer(keystone, "bw", "Birchwood Dental"))
    assert run(write(tmp_path, "a.csv", export_text(NC_COLUMNS, nc_rows(), type_line=True), "utf-16"))[0] == 0
    before = table_rows(TRACKED)
    resaved = export_text(NC_COLUMNS, [*nc_rows(), nc_rows()[0]], quote_all=False, delimiter=";")
    status, out, err = run(write(tmp_path, "b.csv", resaved, "utf-8-sig"))
    assert (status, summary(out), err) == (0, "imported 4 rows: 0 created, 0 updated, 4 unchanged", [])
    assert table_rows(TRACKED) == before
    assert units(keystone) == {"bw": 3}


def test_a_new_agent_found_by_an_export_is_prorated_to_the_cent_on_the_next_ci(keystone, tmp_path):
    """billing-rules 3.7 and 6.6: per_asset at 10.00 from 1 November. 3 agents as of 1 November (UTF-16 export):
    the November and December CIs bill 3 x 10.00 = 30.00 each. The export of 7 December (Excel `;` re-save, one
    agent listed twice) has 4 agents: +1 from 7 December, 25 of December's 31 days: 1 x 10.00 x 25/31 =
    8.0645... = 8.06 on the January CI, beside January's 4 x 10.00 = 40.00."""
    per_asset(keystone, "bw", customer=customer(keystone, "bw", "Birchwood Dental"), start=date(2026, 11, 1))
    path = write(tmp_path, "nov.csv", export_text(NC_COLUMNS, nc_rows(), type_line=True), "utf-16")
    assert run(path, as_of=date(2026, 11, 1))[0] == 0
    call_command("run_billing", "--through", "2026-12-01", stdout=io.StringIO())
    new = ("789247690", "Birchwood Dental", "Main Office", "BW-WS-09", "Workstations - Windows", "", "Windows 11",
           "", "", "")
    dec = export_text(NC_COLUMNS, [*nc_rows(), new, nc_rows()[0]], quote_all=False, delimiter=";")
    status, out, _ = run(write(tmp_path, "dec.csv", dec, "utf-8-sig"))
    assert (status, summary(out)) == (0, "imported 5 rows: 1 created, 0 updated, 4 unchanged")
    with time_machine.travel(datetime(2027, 1, 1, 3, 0, tzinfo=UTC), tick=True):
        call_command("run_billing", "--through", "2027-01-01", stdout=io.StringIO())
    lines = InvoiceLine.objects.filter(invoice__partner=keystone, invoice__state=InvoiceState.ISSUED).values_list(
        "invoice__month", "line_type", "period", "quantity", "effective_date", "amount")
    assert sorted((m, t, p, q.normalize(), e, a) for m, t, p, q, e, a in lines) == [
        ("2026-11", "recurring", "2026-11", Decimal("3"), None, Decimal("30.00")),
        ("2026-12", "recurring", "2026-12", Decimal("3"), None, Decimal("30.00")),
        ("2027-01", "proration", "2026-12", Decimal("1"), date(2026, 12, 7), Decimal("8.06")),
        ("2027-01", "recurring", "2027-01", Decimal("4"), None, Decimal("40.00")),
    ]


def test_vsa_unicode_export_finds_customers_by_reference_or_id_in_any_case(keystone, tmp_path):
    """billing-rules 3.7 and 10.6 (an organization by name, reference or id, any case): VSA's MachineGroup
    `lab.root.Birchwood` is organization reference Birchwood, group root/lab; a customer naming the OrgId and one
    naming ` BIRCHWOOD ` both take the 3 agents billed. A template (Online 199, LastCheckInTime .NET's MinValue as
    PowerShell 7 en-US writes it) never checked in and is left out, named (decision (ak)); an en-GB
    LastCheckInTime is information only."""
    by_id = customer(keystone, "byid", "381746928105532")
    by_ref = customer(keystone, "byref", " BIRCHWOOD ")
    per_asset(keystone, "id", customer=by_id)
    per_asset(keystone, "ref", customer=by_ref)
    per_asset(keystone, "lab", rmm_filter="birchwood/Root/LAB")
    rows = [
        ("694825728222021", "bw-fd-01.root.birchwood", "1", "381746928105532", "928374615243817", "root.Birchwood",
         "BW-FD-01", "Win 11", "12/6/2026 12:41:03 PM"),
        ("694825728222022", "bw-lab-01.lab.root.birchwood", "0", "381746928105532", "928374615243818",
         "lab.root.Birchwood", "BW-LAB-01", "Win 11", "06/12/2026 12:41:03"),
        ("694825728222023", "bw-ws-02.root.birchwood", "2", "381746928105532", "928374615243817", "root.Birchwood",
         "BW-WS-02", "Win 10", "12/5/2026 8:00:00 AM"),
        ("694825728222029", "template.root.birchwood", "199", "381746928105532", "928374615243817",
         "root.Birchwood", "", "Win 11", "1/1/0001 12:00:00 AM"),
    ]
    status, _, err = run(write(tmp_path, "vsa.csv", export_text(VSA_COLUMNS, rows, type_line=True), "utf-16"))
    assert status == 0, err
    assert err == ["row 6: AgentId: '694825728222029' is not billed (never checked in): left out of the inventory"]
    assert units(keystone) == {"id": 3, "lab": 1, "ref": 3}


def test_cw_automate_view_with_renamed_captions_and_culture_dates(keystone, tmp_path):
    """billing-rules 9.5, import-formats 9: ProVal's views caption `Client_Name`, `Location_Name`,
    `Operating_System`, `Last Contact Date`; read as Client Name and so on. PowerShell 7 on .NET 8 (ICU) writes
    `12/6/2026 12:41:03<U+202F>PM`: read as 6 December 12:41:03; a date no reader takes is a warning only."""
    per_asset(keystone, "lab", rmm_filter="Birchwood Dental/Lab")
    per_asset(keystone, "bw", customer=customer(keystone, "bw", "Birchwood Dental"))
    columns = ("Computer_ID", "Client_Name", "Location_Name", "Computer_Name", "Operating_System",
               "Last Contact Date")
    rows = [("1042", "Birchwood Dental", "Main Office", "BW-FD-01", "Windows 11 Pro x64", "12/6/2026 12:41:03\u202fPM"),
            ("1043", "Birchwood Dental", "Lab", "BW-LAB-01", "Windows 11 Pro x64", "2026/12/06 12:39:48")]
    status, out, err = run(write(tmp_path, "cw.csv", export_text(columns, rows)))
    assert (status, summary(out)) == (0, "imported 2 rows: 2 created, 0 updated, 0 unchanged")
    assert err == ["row 3: Last Contact Date: '2026/12/06 12:39:48' is not a date and time; left blank"]
    assert dict(RmmAgent.objects.values_list("agent_id", "last_seen")) == {
        "1042": datetime(2026, 12, 6, 12, 41, 3, tzinfo=UTC), "1043": None}
    assert units(keystone) == {"bw": 2, "lab": 1}


def test_cw_automate_saved_by_excel_in_the_ansi_code_page_is_refused_naming_rows_and_columns(keystone, tmp_path):
    """billing-rules 9.6: Excel's "CSV (Trennzeichen-getrennt)" writes Windows-1252: `ü` and `ß` are not UTF-8.
    Each cell is a row error naming its row, its column as the file writes it, and the byte; nothing written."""
    rows = [("1042", "Birchwood Dental", "Main Office", "BW-FD-01", "Win 11", "06.12.2026 12:41"),
            ("1120", "Zahnarztpraxis Müller", "Hauptstraße", "ZM-EMPFANG", "Win 11", "06.12.2026 12:41")]
    before = table_rows(TRACKED)
    status, _, err = run(write(tmp_path, "cw.csv", export_text(CW_COLUMNS, rows, quote_all=False, delimiter=";"),
                               "cp1252"))
    assert status == 1
    assert err[:2] == ["row 3: Client Name: not UTF-8 text (byte 0xFC): save the file as CSV UTF-8",
                       "row 3: Location Name: not UTF-8 text (byte 0xDF): save the file as CSV UTF-8"]
    assert table_rows(TRACKED) == before


# --- findings -----------------------------------------------------------------------------------------------------

def test_n_central_network_device_without_an_agent_is_not_billed(keystone, tmp_path):
    """billing-rules 3.7 and decision (ak) (rmm.md 4, "no agent (monitored without one)": never billed; exports
    follow the same rules where they say the state): N-central's device list holds the switch its probe
    monitors, MachineType `Switch/Router`, which the vendor's own count (c-vohs/NCentral GetMachineCountAPI.ps1)
    leaves out. Birchwood has 3 agents, so 3 units (30.00 a month), not 4 (40.00)."""
    per_asset(keystone, "bw", customer=customer(keystone, "bw", "Birchwood Dental"))
    switch = ("789247711", "Birchwood Dental", "Main Office", "BW-CORE-SW", "Switch/Router", "", "Cisco IOS",
              "10.20.1.1", "", "")
    status, _, err = run(write(tmp_path, "nc.csv", export_text(NC_COLUMNS, [*nc_rows(), switch])))
    assert status == 0
    assert units(keystone) == {"bw": 3}
    assert any(line.startswith("row 5: ") and "789247711" in line and "not billed" in line for line in err)


def test_a_header_repeated_in_the_file_is_not_an_agent(keystone, tmp_path):
    """billing-rules 9.5/9.6 and 3.7 (units are the agents): BitlockerReportAPI.ps1 exports one customer at a
    time (`-CustomerIDs 100`); two PowerShell 7 exports joined (`Get-Content a.csv, b.csv`) repeat the header at
    row 4. That row is no agent: today it becomes agent `DeviceID` of organization `CustomerName` and the
    partner-level service bills 4 units (40.00) instead of 3. Either it is refused naming row 4, or skipped."""
    customer(keystone, "bw", "Birchwood Dental")
    per_asset(keystone, "all")
    rows = nc_rows()
    status, _, err = run(write(tmp_path, "nc.csv", export_text(NC_COLUMNS, rows[:2]) + export_text(NC_COLUMNS,
                                                                                                    rows[2:])))
    assert not RmmAgent.objects.filter(agent_id="DeviceID").exists()
    if status == 0:
        assert units(keystone) == {"all": 3}
    else:
        assert any(line.startswith("row 4: ") for line in err)


def test_agents_of_no_customer_are_listed_by_the_import(keystone, tmp_path):
    """billing-rules decision (an) and rmm.md 3 ("agents of no customer are listed, never dropped silently"; 3.7:
    syncs and imports apply an inventory the same way). PowerShell 5.1's Export-Csv writes ASCII by default:
    `Zahnarztpraxis Müller` becomes `Zahnarztpraxis M?ller`. Imported, the customer's 2 agents leave its service
    (2 -> 0 units: a credit on the next CI) and the clerk reads only `0 created, 2 updated`. The import must say
    `2 agent(s) in organization 'Zahnarztpraxis M?ller' match no customer (not billed)` as the sync run does."""
    zm = customer(keystone, "zm", "Zahnarztpraxis Müller")
    per_asset(keystone, "zm", customer=zm)
    rows = [("1120", "Zahnarztpraxis Müller", "Hauptstraße", "ZM-EMPFANG", "Win 11", "12/6/2026 12:41:03 PM"),
            ("1121", "Zahnarztpraxis Müller", "Hauptstraße", "ZM-PRAXIS-2", "Win 11", "12/6/2026 12:40:00 PM")]
    assert run(write(tmp_path, "utf8.csv", export_text(CW_COLUMNS, rows, type_line=True)))[0] == 0
    assert units(keystone) == {"zm": 2}
    mangled = [tuple(cell.replace("ü", "?").replace("ß", "?") for cell in row) for row in rows]
    status, out, err = run(write(tmp_path, "ascii.csv", export_text(CW_COLUMNS, mangled, type_line=True), "ascii"),
                           as_of=date(2026, 12, 7))
    assert status == 0
    assert units(keystone) == {"zm": 0}
    said = out + "\n".join(err)
    assert "2 agent(s) in organization 'Zahnarztpraxis M?ller' match no customer" in said

