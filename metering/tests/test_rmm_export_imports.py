"""`import_csv rmm-assets FILE --partner P --as-of D` with the RMMs' exports as downloaded,
end to end: the command, the inventory written (agents, presences) and the units of per_asset services
(metering.notices.asset_units_on).

The files are tests/data/rmm-exports/; SOURCES.md there names the public source each header and cell form is
copied from (Kaseya VSA 9 REST API "Get Agent" and VSAModule's Get-VSAAgent; Datto RMM API v2 devices of the
DattoRMM module's Get-DrmmAccountDevices; walker-AU/NinjaOne-Scripts Get-NinjaDeviceReport; c-vohs/NCentral
BitlockerReportAPI.ps1; ProVal-Tech/proval-docs docs/cwa/dataviews). Customers' RMM organizations are the
organizations of the files, exactly, and filters are ORG or ORG/GROUP with exact names, so that these tests
hold whatever the matching rules add (case, references, sub-groups).

The clock stands at 2026-12-07 09:00 UTC; every import is as of that day.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from djmoney.money import Money

from billing.core.importing import ImportContext, run_import_file
from billing.core.registry import import_kinds
from metering import staging
from metering.models import AgentPresence, InventorySync, RmmAgent, RmmIntegration
from metering.notices import asset_units_on
from partners.models import Method
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory
from tests.import_checks import table_rows

pytestmark = pytest.mark.django_db

EXPORTS = Path(__file__).resolve().parents[2] / "tests" / "data" / "rmm-exports"
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
AS_OF = date(2026, 12, 7)
TRACKED = (RmmAgent, AgentPresence, InventorySync)


def summary_line(out: str) -> str:
    """The summary line without the format it names ("rmm-assets (read as Datto RMM ...): imported ...")."""
    return re.sub(r"^rmm-assets \(read as .*\): ", "rmm-assets: ", out.strip())


@pytest.fixture(autouse=True)
def today():
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def keystone(db):
    return PartnerFactory(slug="keystone", name="Keystone IT")


def customers(partner, *organizations: str) -> None:
    for n, organization in enumerate(organizations):
        CustomerFactory(partner=partner, slug=f"c{n}", name=organization, rmm_organization=organization)


def service(partner, code: str, rmm_filter: str = "", customer_org: str | None = None):
    customer = partner.customers.get(rmm_organization=customer_org) if customer_org else None
    return ServiceFactory(partner=partner, customer=customer, code=code, method=Method.PER_ASSET,
                          rmm_filter=rmm_filter, unit_price=Money(Decimal("10.00"), partner.currency),
                          start_date=date(2026, 1, 1))


def units(partner) -> dict[str, int]:
    services = list(partner.services.order_by("code"))
    found = asset_units_on(services=services, day=AS_OF)
    return {s.code: found[s.pk] for s in services}


def run(name_or_path, partner: str = "keystone", **options) -> tuple[str, list[str]]:
    """import_csv rmm-assets as a clerk runs it: (standard output, the lines of standard error)."""
    path = name_or_path if isinstance(name_or_path, Path) else EXPORTS / name_or_path
    out, err = io.StringIO(), io.StringIO()
    call_command("import_csv", "rmm-assets", str(path), partner=partner, as_of=AS_OF.isoformat(), stdout=out,
                 stderr=err, **options)
    return out.getvalue(), err.getvalue().splitlines()


def refused(name_or_path, **options) -> tuple[str, list[str]]:
    """An import that must write nothing: (the CommandError's line, the lines of standard error)."""
    before = table_rows(TRACKED)
    path = name_or_path if isinstance(name_or_path, Path) else EXPORTS / name_or_path
    err = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("import_csv", options.pop("kind", "rmm-assets"), str(path), partner="keystone",
                     as_of=AS_OF.isoformat(), stdout=io.StringIO(), stderr=err, **options)
    assert table_rows(TRACKED) == before
    return str(caught.value).replace(str(path), "FILE"), err.getvalue().splitlines()


def presences() -> list[tuple]:
    return list(AgentPresence.objects.order_by("agent__agent_id").values_list(
        "agent__agent_id", "organization", "group", "org_ref", "org_id", "present_from", "present_until"))


# --- Kaseya VSA -------------------------------------------------------------------------------------------------
def vsa_world(partner) -> None:
    customers(partner, "birchwood", "harbor")
    service(partner, "bw", customer_org="birchwood")
    service(partner, "lab", rmm_filter="birchwood/workstations/lab")
    service(partner, "harbor", rmm_filter="harbor")
    service(partner, "all")


def test_kaseya_vsa_agent_list(keystone):
    """VSA's MachineGroup `lab.workstations.birchwood` puts the agent in organization birchwood, group
    workstations/lab; an offline agent (Online 0) is billed by default."""
    vsa_world(keystone)
    out, err = run("kaseya-vsa-agents.csv")
    assert out.strip() == ("rmm-assets (read as Kaseya VSA agent list (REST API / VSAModule Get-VSAAgent)): "
                           "imported 5 rows: 5 created, 0 updated, 0 unchanged")  # the clerk sees what was read
    assert err == []
    assert units(keystone) == {"all": 5, "bw": 3, "harbor": 2, "lab": 1}
    assert presences() == [
        ("694825728222021", "birchwood", "root", "birchwood", "381746928105532", AS_OF, None),
        ("694825728222022", "birchwood", "workstations/lab", "birchwood", "381746928105532", AS_OF, None),
        ("694825728222023", "birchwood", "workstations", "birchwood", "381746928105532", AS_OF, None),
        ("694825728222031", "harbor", "root", "harbor", "381746928105533", AS_OF, None),
        ("694825728222032", "harbor", "root", "harbor", "381746928105533", AS_OF, None),
    ]
    lab = RmmAgent.objects.get(agent_id="694825728222022")
    assert (lab.machine_name, lab.os, lab.last_seen) == ("BW-LAB-01", "Win 11",
                                                         datetime(2026, 12, 6, 12, 39, 48, tzinfo=UTC))
    out, _ = run("kaseya-vsa-agents.csv")  # the same file again changes nothing
    assert summary_line(out) == "rmm-assets: imported 5 rows: 0 created, 0 updated, 5 unchanged"


def test_kaseya_vsa_powershell_5_export(keystone):
    """The #TYPE line is skipped and counted (the first agent is row 3); a suspended agent (Online 198) and one
    that never checked in (199) are not billed by default: named on standard error, left out."""
    vsa_world(keystone)
    out, err = run("kaseya-vsa-powershell.csv")
    assert err == [
        "row 5: AgentId: '694825728222024' is not billed (suspended): left out of the inventory",
        "row 6: AgentId: '694825728222025' is not billed (never checked in): left out of the inventory",
    ]
    assert summary_line(out) == "rmm-assets: imported 5 rows: 3 created, 0 updated, 2 unchanged"
    assert units(keystone) == {"all": 3, "bw": 2, "harbor": 1, "lab": 1}
    assert RmmAgent.objects.get(agent_id="694825728222021").last_seen == datetime(2026, 12, 6, 12, 41, 3, 517000,
                                                                                  tzinfo=UTC)


def test_the_partners_integration_decides_which_agents_are_billed(keystone):
    """docs/rmm.md, "Which agents count": an import follows the partner's integration's settings."""
    vsa_world(keystone)
    RmmIntegration.objects.create(partner=keystone, kind="kaseya-vsa", base_url="https://vsa.example.net",
                                  username="api", count_suspended=True, count_offline=False)
    _, err = run("kaseya-vsa-powershell.csv")
    assert err == ["row 6: AgentId: '694825728222025' is not billed (never checked in): left out of the inventory"]
    assert units(keystone) == {"all": 4, "bw": 3, "harbor": 1, "lab": 2}
    _, err = run("kaseya-vsa-agents.csv")  # BW-WS-02 is offline (Online 0)
    assert err == ["row 4: AgentId: '694825728222023' is not billed (offline): left out of the inventory"]
    assert units(keystone) == {"all": 4, "bw": 2, "harbor": 2, "lab": 1}


def test_ids_excel_wrote_in_scientific_notation_refuse_the_file(keystone):
    vsa_world(keystone)
    line, err = refused("kaseya-vsa-agents-excel.csv")
    advice = ("a spreadsheet turned this id into a number in scientific notation; export the file again without "
              "opening it in Excel, or format the column as text")
    assert err == [f"row {n}: {column}: '{value}': {advice}"
                   for n in (2, 3, 4) for column, value in (("AgentId", "6.94826E+14"), ("OrgId", "3.81747E+14"))]
    assert line == "FILE: 3 bad row(s), 6 error(s); nothing was imported"


# --- Datto RMM --------------------------------------------------------------------------------------------------
def datto_world(partner) -> None:
    customers(partner, "Birchwood Dental", "Harbor Logistics")
    service(partner, "bw", customer_org="Birchwood Dental")
    service(partner, "harbor", rmm_filter="Harbor Logistics")
    service(partner, "all")


def test_datto_device_list(keystone):
    """A device Datto keeps as deleted is never billed; an offline one is (by default)."""
    datto_world(keystone)
    out, err = run("datto-devices.csv")
    assert err == ["row 5: uid: '5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d' is not billed (deleted): left out of the "
                   "inventory"]
    assert summary_line(out) == "rmm-assets: imported 4 rows: 3 created, 0 updated, 1 unchanged"
    assert units(keystone) == {"all": 3, "bw": 2, "harbor": 1}
    assert presences()[0] == ("4b5c0d2e-6f5e-4a71-9d1a-0f6c1e2d3a4b", "Birchwood Dental", "", "",
                              "2f6d8b4e-58a3-4c0e-9c71-3b1d5e7a9f20", AS_OF, None)
    assert RmmAgent.objects.get(machine_name="BW-FD-01").last_seen == datetime(2026, 12, 6, 12, 41, 3, tzinfo=UTC)


def test_datto_powershell_5_export(keystone):
    datto_world(keystone)
    _, err = run("datto-powershell.csv")
    assert err == ["row 6: uid: 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f7a' is not billed (never checked in): left out "
                   "of the inventory"]
    assert units(keystone) == {"all": 3, "bw": 2, "harbor": 1}


# --- NinjaOne ---------------------------------------------------------------------------------------------------
def test_ninjaone_device_report(keystone):
    """No device id in the report: an agent is organizationName/systemName; locationName is its group."""
    customers(keystone, "Birchwood Dental", "Harbor Logistics")
    service(keystone, "bw", customer_org="Birchwood Dental")
    service(keystone, "lab", rmm_filter="Birchwood Dental/Lab")
    service(keystone, "harbor", rmm_filter="Harbor Logistics")
    out, err = run("ninjaone-device-report.csv")
    assert err == ["row 4: systemName: 'Birchwood Dental/BW-NEW-02' is not billed (never checked in): left out of "
                   "the inventory"]
    assert summary_line(out) == "rmm-assets: imported 5 rows: 4 created, 0 updated, 1 unchanged"
    assert units(keystone) == {"bw": 2, "harbor": 2, "lab": 1}
    assert [p[:3] for p in presences()] == [
        ("Birchwood Dental/BW-FD-01", "Birchwood Dental", "Main Office"),
        ("Birchwood Dental/BW-LAB-01", "Birchwood Dental", "Lab"),
        ("Harbor Logistics/HL-MAC-02", "Harbor Logistics", "Warehouse"),
        ("Harbor Logistics/HL-SRV-01", "Harbor Logistics", "Warehouse"),
    ]


def test_ninjaone_two_devices_of_one_name_cannot_be_told_apart(keystone, tmp_path):
    path = tmp_path / "report.csv"
    path.write_bytes((EXPORTS / "ninjaone-device-report.csv").read_bytes()
                     + b'"6/2/2025 10:00:00 AM","BW-FD-01","WINDOWS_WORKSTATION","Birchwood Dental","Lab",'
                       b'"APPROVED","False","12/6/2026 9:00:00 AM"\r\n')
    line, err = refused(path)
    assert err == ["row 7: systemName: same agent as row 2 with different values (NinjaOne's device report has no "
                   "device id: an agent is its organization and system name, so two devices of one name in one "
                   "organization cannot be told apart; rename one in NinjaOne)"]
    assert line == "FILE: 1 bad row(s), 1 error(s); nothing was imported"


# --- N-able N-central -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["n-central-devices.csv", "n-central-devices-utf16.csv"])
def test_n_central_device_list(keystone, name):
    """CustomerName is the organization, SiteName the group; the UTF-16 LE, tab-separated copy (Excel's
    "Unicode Text") reads the same."""
    customers(keystone, "Birchwood Dental", "Harbor Logistics")
    service(keystone, "bw", customer_org="Birchwood Dental")
    service(keystone, "main", rmm_filter="Birchwood Dental/Main Office")
    service(keystone, "harbor", rmm_filter="Harbor Logistics/Warehouse")
    out, err = run(name)
    assert (summary_line(out), err) == ("rmm-assets: imported 4 rows: 4 created, 0 updated, 0 unchanged", [])
    assert units(keystone) == {"bw": 3, "harbor": 1, "main": 2}
    assert RmmAgent.objects.get(agent_id="789247702").os == "Microsoft Windows Server 2022 Standard 64-bit"


# --- ConnectWise Automate ---------------------------------------------------------------------------------------
def test_cw_automate_computers(keystone):
    customers(keystone, "Birchwood Dental", "Harbor Logistics")
    service(keystone, "bw", customer_org="Birchwood Dental")
    service(keystone, "lab", rmm_filter="Birchwood Dental/Lab")
    service(keystone, "harbor", rmm_filter="Harbor Logistics")
    out, err = run("cw-automate-computers.csv")
    assert (summary_line(out), err) == ("rmm-assets: imported 4 rows: 4 created, 0 updated, 0 unchanged", [])
    assert units(keystone) == {"bw": 3, "harbor": 1, "lab": 1}
    assert RmmAgent.objects.get(agent_id="1107").last_seen == datetime(2026, 12, 6, 8, 15, 27, tzinfo=UTC)


def test_semicolons_from_a_european_excel(keystone):
    customers(keystone, "Birchwood Dental", "Zahnarztpraxis Müller")
    service(keystone, "bw", customer_org="Birchwood Dental")
    service(keystone, "zm", rmm_filter="Zahnarztpraxis Müller/Hauptstraße")
    out, err = run("cw-automate-computers-semicolons.csv")
    assert (summary_line(out), err) == ("rmm-assets: imported 3 rows: 3 created, 0 updated, 0 unchanged", [])
    assert units(keystone) == {"bw": 2, "zm": 1}
    assert RmmAgent.objects.get(agent_id="1042").last_seen == datetime(2026, 12, 6, 12, 41, tzinfo=UTC)


def test_last_contact_that_cannot_be_read_is_a_warning(keystone):
    """Informational cells never refuse the file: each is named on standard error, before the summary, and
    left blank."""
    customers(keystone, "Birchwood Dental", "Harbor Logistics")
    service(keystone, "bw", customer_org="Birchwood Dental")
    out, err = run("cw-automate-computers-bad-dates.csv")
    assert err == [
        "row 3: Last Contact: '0000-00-00 00:00:00' is not a date and time; left blank",
        "row 4: Last Contact: 'Never' is not a date and time; left blank",
        "row 5: Last Contact: '31/02/2026 10:00' is not a date and time; left blank",
    ]
    assert summary_line(out) == "rmm-assets: imported 4 rows: 4 created, 0 updated, 0 unchanged"
    assert units(keystone) == {"bw": 3}
    assert dict(RmmAgent.objects.values_list("agent_id", "last_seen")) == {
        "1042": datetime(2026, 12, 6, 12, 41, 3, tzinfo=UTC), "1060": None, "1061": None, "1107": None}


def test_a_dry_run_writes_nothing_and_still_warns(keystone):
    before = table_rows(TRACKED)
    out, err = run("cw-automate-computers-bad-dates.csv", dry_run=True)
    # the unreadable dates, and the two organizations no customer names, listed as a sync run lists them
    assert len([line for line in err if "match no customer" not in line]) == 3
    assert len([line for line in err if "match no customer (not billed)" in line]) == 2
    assert summary_line(out) == ("rmm-assets: would import 4 rows: 4 created, 0 updated, 0 unchanged "
                           "(dry run: nothing written)")
    assert table_rows(TRACKED) == before


# --- --format and --map -----------------------------------------------------------------------------------------
def test_format_forces_a_reading(keystone):
    customers(keystone, "Birchwood Dental")
    out, _ = run("n-central-devices.csv", format="N-Central")
    assert "4 created" in out
    line, _ = refused("n-central-devices.csv", format="datto")
    assert line == ("FILE: no column gives agent_id (uid), machine_name (hostname) in this Datto RMM device list "
                    "(API v2 / DattoRMM Get-DrmmAccountDevices): name one with --map COLUMN=FIELD")


def test_map_reads_a_file_of_other_columns(keystone, tmp_path):
    path = tmp_path / "assets.csv"
    path.write_text("Serial;Device;Customer;Seen\r\nX1;PC-1;Birchwood Dental;06.12.2026 10:00\r\n"
                    "X2;PC-2;Birchwood Dental;yesterday\r\n", encoding="utf-8")
    customers(keystone, "Birchwood Dental")
    service(keystone, "bw", customer_org="Birchwood Dental")
    out, err = run(path, map=["Serial=agent_id", "Device=machine_name", "Customer=organization", "Seen=last_seen"])
    assert err == ["row 3: Seen: 'yesterday' is not a date and time; left blank"]
    assert "2 created" in out
    assert units(keystone) == {"bw": 2}
    line, _ = refused(path)
    assert line.startswith("FILE: the header is not one of the RMM exports read here (native, kaseya-vsa, datto, "
                           "ninjaone, n-central, cw-automate): Serial, Device, Customer, Seen; name the columns with "
                           "--map COLUMN=FIELD")


def test_the_options_are_checked(keystone, tmp_path):
    partners = tmp_path / "partners.csv"
    partners.write_text("slug,name\nacme,Acme\n")
    assert refused(partners, kind="partners", format="datto")[0] == (
        "FILE: --format and --map are for rmm-assets files, not partners")
    assert refused(partners, kind="partners", map=["a=os"])[0] == (
        "FILE: --format and --map are for rmm-assets files, not partners")
    assert refused("datto-devices.csv", format="vsa")[0] == (
        "FILE: --format: unknown format 'vsa' (one of native, kaseya-vsa, datto, ninjaone, n-central, cw-automate)")
    assert refused("datto-devices.csv", map=["uid"])[0] == "FILE: --map 'uid': write it as COLUMN=FIELD"
    assert refused("datto-devices.csv", map=["uid=serial"])[0].startswith(
        "FILE: --map 'uid=serial': unknown field 'serial' (one of agent_id, machine_name, organization, group")


def test_the_products_own_columns_read_as_before(keystone, tmp_path):
    """A native file is the engine's: a last_seen without a zone is still a row error there (billing-rules 1), and
    --format native changes nothing."""
    path = tmp_path / "inventory.csv"
    path.write_text("agent_id,machine_name,organization,group,os,last_seen\na1,PC-1,ACME,,,2026-12-06 10:00\n")
    _, err = refused(path, format="native")
    assert err == ["row 2: last_seen: instant '2026-12-06 10:00' has no time zone: add Z or an offset such as +02:00"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the staging path is PostgreSQL's (COPY)")
def test_an_export_never_takes_the_copy_path(keystone):
    """metering.staging refuses a header that is not the product's (its header check), so even called directly
    it leaves an export to the engine; run_import_file hands exports to their reader before asking it."""

    ctx = ImportContext(kind="rmm-assets", partner="keystone", as_of=AS_OF, state={"partner": keystone})
    assert staging.rmm_assets_fast_path(EXPORTS / "datto-devices.csv", ctx, import_kinds()["rmm-assets"]) is None
    summary = run_import_file("rmm-assets", EXPORTS / "datto-devices.csv", partner="keystone", as_of=AS_OF)
    assert (summary.ok, summary.staged, summary.created) == (True, False, 3)
