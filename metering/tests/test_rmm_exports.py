"""metering.rmm_exports (no database): which RMM export a file is, how its cells read, the timestamp forms.

The files are tests/data/rmm-exports/ (SOURCES.md there names the public source of each header and cell form):
- kaseya-vsa-agents.csv, kaseya-vsa-powershell.csv, kaseya-vsa-agents-excel.csv: the Kaseya VSA 9 REST API's
  agent record ("Get Agent", help.vsa9.kaseya.com/help/Content/Modules/rest-api/31655.htm), the properties of
  Get-VSAAgent objects (repository Kaseya-Automation-Team/Kaseya-Automation-Team, VSAModule), exported by
  PowerShell 7, by Windows PowerShell 5.1 (#TYPE line) and after a round trip through Excel;
- datto-devices.csv, datto-powershell.csv: Datto RMM API v2 devices as Get-DrmmAccountDevices returns them
  (repository aaronengels/DattoRMM);
- ninjaone-device-report.csv: repository walker-AU/NinjaOne-Scripts, Reports/Get-NinjaDeviceReport;
- n-central-devices.csv, n-central-devices-utf16.csv: repository c-vohs/NCentral, BitlockerReportAPI.ps1;
- cw-automate-computers*.csv: ConnectWise Automate data views, repository ProVal-Tech/proval-docs,
  docs/cwa/dataviews/.
"""

from __future__ import annotations

import codecs
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from billing.core.importing import ImportFileError
from metering.rmm_exports import (
    ROW,
    TimestampError,
    column_key,
    detect_format,
    parse_column_map,
    parse_flag,
    parse_timestamp,
    read_export,
    scientific,
    sniff,
)
from metering.services import AgentRow

EXPORTS = Path(__file__).resolve().parents[2] / "tests" / "data" / "rmm-exports"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def rows(name: str, **options) -> list[tuple[int, object]]:
    """(row number, RowRead) of every row of an export file."""
    export = read_export(EXPORTS / name, **options)
    assert export is not None
    return [(number, raw[ROW]) for number, raw in export.rows]


def agents(name: str, **options) -> dict[str, object]:
    read = rows(name, **options)
    assert [r.errors for _, r in read] == [[] for _ in read]
    return {r.agent.agent_id: r.agent for _, r in read}


# --- recognising a file ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "fmt", "encoding", "delimiter", "type_line"), [
    ("kaseya-vsa-agents.csv", "kaseya-vsa", "utf-8", ",", False),
    ("kaseya-vsa-powershell.csv", "kaseya-vsa", "utf-8", ",", True),
    ("kaseya-vsa-agents-excel.csv", "kaseya-vsa", "utf-8", ",", False),
    ("datto-devices.csv", "datto", "utf-8", ",", False),
    ("datto-powershell.csv", "datto", "utf-8", ",", True),
    ("ninjaone-device-report.csv", "ninjaone", "utf-8", ",", False),
    ("n-central-devices.csv", "n-central", "utf-8", ",", False),
    ("n-central-devices-utf16.csv", "n-central", "utf-16-le", "\t", False),
    ("cw-automate-computers.csv", "cw-automate", "utf-8", ",", False),
    ("cw-automate-computers-semicolons.csv", "cw-automate", "utf-8", ";", False),
    ("cw-automate-computers-bad-dates.csv", "cw-automate", "utf-8", ",", False),
])
def test_each_export_is_recognised_from_its_header(name, fmt, encoding, delimiter, type_line):
    shape = sniff(EXPORTS / name)
    assert (shape.encoding, shape.delimiter, shape.type_line) == (encoding, delimiter, type_line)
    assert detect_format(shape.header) == fmt
    assert read_export(EXPORTS / name).fmt.name == fmt


def test_the_products_own_columns_are_left_to_the_engine(tmp_path):
    """A native file (or one with some of the product's columns) is the engine's, as before: None here."""
    for text in ("agent_id,machine_name,organization,group\na1,PC,ACME,\n",
                 "Agent_ID,Organization,Group,Machine_Name,IP Address\nA-1,ACME,,srv,10.0.0.1\n",
                 "machine_name,organization,group\nPC,ACME,\n",  # agent_id missing: the engine names it
                 "agent_id;machine_name;organization;group\na1;PC;ACME;\n"):  # the engine's semicolon hint
        path = tmp_path / "f.csv"
        path.write_text(text)
        assert detect_format(sniff(path).header) in ("native", None)
        assert read_export(path) is None
    assert read_export(EXPORTS / "datto-devices.csv", file_format="native") is None


def test_a_native_header_after_a_type_line_or_with_tabs_is_one_clear_line(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text('#TYPE System.Management.Automation.PSCustomObject\n"agent_id","machine_name","organization",'
                    '"group"\n"a1","PC","ACME",""\n')
    with pytest.raises(ImportFileError, match=r"^a #TYPE line \(PowerShell 5.1's Export-Csv\) comes before the "
                                              r"header: .*-NoTypeInformation\)$"):
        read_export(path)
    path.write_text("agent_id\tmachine_name\torganization\tgroup\na1\tPC\tACME\t\n")
    with pytest.raises(ImportFileError, match=r"^the cells are separated by tabs: save the file with commas"):
        read_export(path)


def test_an_unknown_header_is_one_line_naming_the_formats_and_map(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("Device,Customer,Serial\nPC-1,Acme,X1\n")
    with pytest.raises(ImportFileError) as caught:
        read_export(path)
    assert str(caught.value) == (
        "the header is not one of the RMM exports read here (native, kaseya-vsa, datto, ninjaone, n-central, "
        "cw-automate): Device, Customer, Serial; name the columns with --map COLUMN=FIELD (fields: agent_id, "
        "machine_name, organization, group, os, last_seen, org_ref, org_id, online, suspended, deleted), or force "
        "one with --format")


def test_map_reads_any_header(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("Device,Customer,Serial,Seen,State\nPC-1,Acme,X1,2026-12-06 10:00,Online\n")
    found = agents(path, column_map=parse_column_map(
        ["Serial=agent_id", "Device=machine_name", "customer=organization", "Seen=last_seen", "State=online"]))
    assert found == {"X1": AgentRow(agent_id="X1", machine_name="PC-1", organization="Acme", group="",
                                    last_seen=at("2026-12-06T10:00:00"), online=True)}
    with pytest.raises(ImportFileError, match=r"^no column gives agent_id, machine_name in this file "
                                              r"\(columns named with --map\): name one with --map COLUMN=FIELD$"):
        read_export(path, column_map=parse_column_map(["Customer=organization"]))
    with pytest.raises(ImportFileError, match=r"^--map Nope=os: no column 'Nope' in the header \(Device, Customer"):
        read_export(path, column_map=parse_column_map(["Nope=os", "Serial=agent_id"]))


def test_map_overrides_a_vendors_column(tmp_path):
    """A mapped column replaces what the export's own reading gives that field; a date column named by hand
    takes epoch seconds or milliseconds."""
    found = agents("n-central-devices.csv", column_map=parse_column_map(["MachineType=group"]))
    assert found["789247702"].group == "Servers - Windows"
    path = tmp_path / "f.csv"
    path.write_text("DeviceID,CustomerName,DeviceName,Seen\n1,Acme,PC-1,1796560863000\n2,Acme,PC-2,1796560863\n")
    found = agents(path, column_map=parse_column_map(["Seen=last_seen"]))
    assert {a.last_seen for a in found.values()} == {at("2026-12-06T12:41:03")}


def test_a_forced_format_needs_its_columns():
    # N-central's SiteName is the column a Datto export has as siteName; uid and hostname it has not
    with pytest.raises(ImportFileError, match=r"^no column gives agent_id \(uid\), machine_name \(hostname\) in "
                                              r"this Datto RMM device list \(API v2 / DattoRMM "
                                              r"Get-DrmmAccountDevices\): name one with --map COLUMN=FIELD$"):
        read_export(EXPORTS / "n-central-devices.csv", file_format="datto")


def test_parse_column_map_refuses_what_it_cannot_use():
    assert parse_column_map(["Last Contact = last_seen", "a=b=Agent_ID"]) == (("Last Contact", "last_seen"),
                                                                             ("a=b", "agent_id"))
    for item, reason in (("Serial", "write it as COLUMN=FIELD"), ("=os", "write it as COLUMN=FIELD"),
                         ("Serial=serial", "unknown field 'serial' (one of agent_id, machine_name")):
        with pytest.raises(ValueError, match=re.escape(reason)):
            parse_column_map([item])
    with pytest.raises(ValueError, match=r"^--map: os mapped twice$"):
        parse_column_map(["A=os", "B=os"])


def test_column_keys_ignore_case_spaces_and_punctuation():
    assert column_key("Computer ID") == column_key("computerid") == column_key("Computer_ID") == "computerid"


# --- what each export reads as ---------------------------------------------------------------------------------
def test_kaseya_vsa_agents():
    """MachineGroup `lab.workstations.birchwood` is organization (and reference) `birchwood`, group
    `workstations/lab`; `root.birchwood` keeps VSA's group `root`; Online is VSA's status code."""
    found = agents("kaseya-vsa-agents.csv")
    lab = found["694825728222022"]
    assert (lab.machine_name, lab.organization, lab.org_ref, lab.org_id, lab.group) == (
        "BW-LAB-01", "birchwood", "birchwood", "381746928105532", "workstations/lab")
    assert (lab.os, lab.last_seen, lab.online) == ("Win 11", at("2026-12-06T12:39:48"), True)
    assert [(a.group, a.online) for a in found.values()] == [
        ("root", True), ("workstations/lab", True), ("workstations", False), ("root", True), ("root", True)]
    assert {a.organization for a in found.values()} == {"birchwood", "harbor"}


def test_kaseya_vsa_powershell_5_skips_the_type_line_and_reads_states():
    read = rows("kaseya-vsa-powershell.csv")
    assert [number for number, _ in read] == [3, 4, 5, 6, 7]  # #TYPE is row 1, the header row 2
    found = {r.agent.agent_id: r.agent for _, r in read}
    assert found["694825728222021"].last_seen == datetime(2026, 12, 6, 12, 41, 3, 517000, tzinfo=UTC)
    suspended, never = found["694825728222024"], found["694825728222025"]
    assert (suspended.suspended, suspended.online, suspended.never_checked_in) == (True, None, False)
    assert (never.never_checked_in, never.online, never.last_seen) == (True, False, None)
    assert never.machine_name == "bw-new-01.root.birchwood"  # no ComputerName: its AgentName


def test_excel_scientific_ids_are_row_errors():
    read = rows("kaseya-vsa-agents-excel.csv")
    assert [(number, r.agent) for number, r in read] == [(2, None), (3, None), (4, None)]
    reason = ("'6.94826E+14': a spreadsheet turned this id into a number in scientific notation; export the file "
              "again without opening it in Excel, or format the column as text")
    assert read[0][1].errors == [("AgentId", reason), ("OrgId", reason.replace("6.94826E+14", "3.81747E+14"))]
    assert read[0][1].warnings == []  # Excel's 12/6/2026 12:41 still reads


def test_datto_devices():
    found = agents("datto-devices.csv")
    front = found["4b5c0d2e-6f5e-4a71-9d1a-0f6c1e2d3a4b"]
    assert (front.machine_name, front.organization, front.org_id, front.group, front.os) == (
        "BW-FD-01", "Birchwood Dental", "2f6d8b4e-58a3-4c0e-9c71-3b1d5e7a9f20", "",
        "Microsoft Windows 11 Pro 10.0.22631")
    assert front.last_seen == at("2026-12-06T12:41:03")  # epoch milliseconds
    assert [(a.online, a.suspended, a.deleted) for a in found.values()] == [
        (True, False, False), (False, False, False), (True, False, False), (False, False, True)]


def test_datto_powershell_a_device_never_seen():
    found = agents("datto-powershell.csv")
    assert found["d4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f7a"].never_checked_in is True
    assert found["c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"].never_checked_in is False


def test_ninjaone_report_has_no_device_id():
    """The agent id is organizationName/systemName; offline is the contrary of online; PENDING never checked in."""
    found = agents("ninjaone-device-report.csv")
    assert list(found) == ["Birchwood Dental/BW-FD-01", "Birchwood Dental/BW-LAB-01", "Birchwood Dental/BW-NEW-02",
                           "Harbor Logistics/HL-MAC-02", "Harbor Logistics/HL-SRV-01"]
    lab = found["Birchwood Dental/BW-LAB-01"]
    assert (lab.machine_name, lab.organization, lab.group, lab.online) == (
        "BW-LAB-01", "Birchwood Dental", "Lab", False)
    assert lab.last_seen == at("2026-11-28T17:30:00")
    assert found["Birchwood Dental/BW-NEW-02"].never_checked_in is True


@pytest.mark.parametrize("name", ["n-central-devices.csv", "n-central-devices-utf16.csv"])
def test_n_central_devices(name):
    found = agents(name)
    assert [(a.agent_id, a.machine_name, a.organization, a.group, a.os) for a in found.values()] == [
        ("789247677", "BW-FD-01", "Birchwood Dental", "Main Office", "Microsoft Windows 11 Pro 64-bit"),
        ("789247681", "BW-LT-03", "Birchwood Dental", "Main Office", "Microsoft Windows 11 Pro 64-bit"),
        ("789247702", "BW-SRV-01", "Birchwood Dental", "", "Microsoft Windows Server 2022 Standard 64-bit"),
        ("801553410", "HL-WS-07", "Harbor Logistics", "Warehouse", "Microsoft Windows 10 Pro 64-bit"),
    ]
    assert {a.last_seen for a in found.values()} == {None}


def test_cw_automate_computers():
    found = agents("cw-automate-computers.csv")
    assert [(a.agent_id, a.organization, a.group, a.machine_name, a.last_seen) for a in found.values()] == [
        ("1042", "Birchwood Dental", "Main Office", "BW-FD-01", at("2026-12-06T12:41:03")),
        ("1043", "Birchwood Dental", "Lab", "BW-LAB-01", at("2026-12-06T12:39:48")),
        ("1051", "Birchwood Dental", "Main Office", "BW-LT-03", at("2026-11-28T17:30:00")),
        ("1107", "Harbor Logistics", "Warehouse", "HL-SRV-01", at("2026-12-06T08:15:27")),
    ]


def test_utf16_big_endian_with_its_byte_order_mark(tmp_path):
    text = (EXPORTS / "n-central-devices-utf16.csv").read_bytes().decode("utf-16")
    path = tmp_path / "devices.csv"
    path.write_bytes(codecs.BOM_UTF16_BE + text.encode("utf-16-be"))
    assert sniff(path).encoding == "utf-16-be"
    assert agents(path) == agents("n-central-devices-utf16.csv")


def test_semicolons_utf8_bom_and_german_dates():
    found = agents("cw-automate-computers-semicolons.csv")
    assert found["1042"].last_seen == at("2026-12-06T12:41:00")
    assert (found["1120"].organization, found["1120"].group) == ("Zahnarztpraxis Müller", "Hauptstraße")


def test_unreadable_last_seen_is_a_warning_and_left_blank():
    read = rows("cw-automate-computers-bad-dates.csv")
    assert all(r.agent is not None for _, r in read)
    assert [(number, r.warnings) for number, r in read if r.warnings] == [
        (3, [("Last Contact", "'0000-00-00 00:00:00' is not a date and time; left blank")]),
        (4, [("Last Contact", "'Never' is not a date and time; left blank")]),
        (5, [("Last Contact", "'31/02/2026 10:00' is not a date and time; left blank")]),
    ]
    assert [r.agent.last_seen for _, r in read] == [at("2026-12-06T12:41:03"), None, None, None]


def test_required_cells_are_row_errors_informational_ones_warnings(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text('"Computer ID","Client Name","Location Name","Computer Name","Operating System","Last Contact"\n'
                    f'"1","Acme","","","{"x" * 201}",""\n'
                    '"","Acme","","PC-2","Windows","12/6/2026 1:00 PM"\n')
    read = rows(path)
    assert read[0][1].errors == [("Computer Name", "is required")]
    assert read[0][1].warnings == [("Operating System", "longer than 200 characters; left blank")]
    assert read[1][1].errors == [("Computer ID", "is required")]


def test_a_row_of_more_cells_than_the_header_is_a_row_error(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("DeviceID;CustomerName;DeviceName\n1;Acme;PC-1;extra\n2;Acme;PC-2\n")
    read = rows(path)
    assert [(number, r.errors) for number, r in read] == [(2, [("(line)", "4 cells for 3 columns")]), (3, [])]


def test_flags_that_cannot_be_read_are_warnings(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("uid,hostname,siteName,online,deleted,lastSeen\nu1,PC,Acme,maybe,True,1796560863000\n"
                    "u2,PC2,Acme,Yes,no,\n")
    read = rows(path)
    assert read[0][1].warnings == [("online", "'maybe' is not true or false (True/False, Yes/No, 1/0, Online/Offline); "
                                              "left unknown")]
    assert (read[0][1].agent.online, read[0][1].agent.deleted) == (None, True)
    assert (read[1][1].agent.online, read[1][1].agent.deleted, read[1][1].agent.never_checked_in) == (True, False, True)


# --- cells -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("True", True), ("false", False), ("YES", True), ("no", False), ("1", True), ("0", False), ("Online", True),
    ("OFFLINE", False),
])
def test_flags(text, expected):
    assert parse_flag(text) is expected


@pytest.mark.parametrize(("text", "expected"), [
    ("6.94826E+14", True), ("6,94826E+14", True), ("1E5", True), ("-2.5e-3", True),
    ("694825728222021", False), ("4b5c0d2e-6f5e", False), ("E5", False), ("1042", False),
])
def test_scientific_notation(text, expected):
    assert scientific(text) is expected


@pytest.mark.parametrize(("text", "epoch", "expected"), [
    ("2026-12-06T12:41:03Z", None, "2026-12-06T12:41:03"),
    ("2026-12-06T12:41:03.0300000Z", None, "2026-12-06T12:41:03.030000"),
    ("2026-12-06 12:41:03", None, "2026-12-06T12:41:03"),
    ("2026-12-06T14:41:03+02:00", None, "2026-12-06T12:41:03"),
    ("2026-12-06T07:41:03-0500", None, "2026-12-06T12:41:03"),
    ("2026-12-06", None, "2026-12-06T00:00:00"),
    ("12/6/2026 12:41:03 PM", None, "2026-12-06T12:41:03"),
    ("12/6/2026 12:41:03 AM", None, "2026-12-06T00:41:03"),
    ("12/6/2026 1:05 p.m.", None, "2026-12-06T13:05:00"),
    ("12/6/2026 13:05", None, "2026-12-06T13:05:00"),
    ("6/12/2026 12:41", None, "2026-06-12T12:41:00"),  # slashes: month first unless the first number is over 12
    ("13/6/2026 12:41", None, "2026-06-13T12:41:00"),
    ("12/6/2026", None, "2026-12-06T00:00:00"),
    ("06.12.2026 12:41:03", None, "2026-12-06T12:41:03"),  # dots: day first
    ("6.12.2026", None, "2026-12-06T00:00:00"),
    ("1796560863000", "ms", "2026-12-06T12:41:03"),
    ("1796560863", "s", "2026-12-06T12:41:03"),
    ("1796560863.25", "s", "2026-12-06T12:41:03.250000"),
    ("1796560863000", "auto", "2026-12-06T12:41:03"),
    ("1796560863", "auto", "2026-12-06T12:41:03"),
])
def test_timestamp_forms(text, epoch, expected):
    assert parse_timestamp(text, epoch=epoch) == at(expected)


@pytest.mark.parametrize(("text", "epoch", "reason"), [
    ("Never", None, "is not a date and time"),
    ("0000-00-00 00:00:00", None, "is not a date and time"),
    ("31/02/2026 10:00", None, "is not a date and time"),
    ("13/13/2026", None, "is not a date and time"),
    ("12/6/2026 13:05 PM", None, "is not a date and time"),
    ("1796560863000", None, "is not a date and time"),  # a number where the export writes no epoch time
    ("1.79656E+12", "ms", "is not a date and time"),  # epoch milliseconds Excel turned into a float
    ("2026-12-06T12:41:03+15:00", None, "has an offset that is not a time zone"),
    ("9999-12-31T23:00:00-05:00", None, "is out of range (years 0001 to 9999 in UTC)"),
    ("99999999999999", "s", "is out of range (years 0001 to 9999)"),
])
def test_timestamps_that_cannot_be_read(text, epoch, reason):
    with pytest.raises(TimestampError) as caught:
        parse_timestamp(text, epoch=epoch)
    assert str(caught.value) == reason


def test_epoch_zero_is_never():
    assert parse_timestamp("0", epoch="ms") is None


# --- round trips (hypothesis): each form written from an instant reads back as that instant -----------------------
instants = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9000, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC))
seconds = instants.map(lambda d: d.replace(microsecond=0))
minutes = seconds.map(lambda d: d.replace(second=0))


@given(instants)
def test_iso_with_z_round_trips(when):
    assert parse_timestamp(when.isoformat().replace("+00:00", "Z")) == when


@given(instants)
def test_iso_without_a_zone_is_utc(when):
    assert parse_timestamp(when.replace(tzinfo=None).isoformat(sep=" ")) == when


@given(instants, st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_iso_with_an_offset_round_trips(when, offset):
    zone = timezone(timedelta(minutes=offset))
    assume(datetime(1970, 1, 3, tzinfo=UTC) < when < datetime(8999, 12, 31, tzinfo=UTC))
    assert parse_timestamp(when.astimezone(zone).isoformat()) == when


@given(seconds)
def test_us_twelve_hour_round_trips(when):
    """PowerShell 7's en-US `12/6/2026 12:41:03 PM`."""
    hour = when.hour % 12 or 12
    text = f"{when.month}/{when.day}/{when.year} {hour}:{when:%M:%S} {'PM' if when.hour >= 12 else 'AM'}"
    assert parse_timestamp(text) == when


@given(minutes)
def test_slashes_read_day_first_only_when_the_first_number_is_over_12(when):
    text = f"{when.day}/{when.month}/{when.year} {when:%H:%M}"
    if when.day > 12 or when.day == when.month:
        assert parse_timestamp(text) == when
    else:  # read as month/day, as written in the docs
        assert parse_timestamp(text) == when.replace(month=when.day, day=when.month)


@given(seconds)
def test_dots_round_trip(when):
    assert parse_timestamp(f"{when:%d.%m}.{when.year} {when:%H:%M:%S}") == when


@given(instants.filter(lambda d: d.year >= 1974).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)))
def test_epoch_milliseconds_round_trip(when):
    millis = (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    assert parse_timestamp(str(millis), epoch="ms") == when
    assert parse_timestamp(str(millis), epoch="auto") == when


@given(seconds.filter(lambda d: d.year < 5000))
def test_epoch_seconds_round_trip(when):
    assert parse_timestamp(str(int(when.timestamp())), epoch="s") == when
    assert parse_timestamp(str(int(when.timestamp())), epoch="auto") == when
