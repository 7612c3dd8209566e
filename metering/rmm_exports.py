"""RMM exports as downloaded (import-formats 9): which RMM's export a file is, and how
its rows read as agents. No database here: the rmm-assets import (metering.imports.RmmAssetsImport) hands
the agents read to the inventory as before.

A file is recognised by its header: the product's own columns (`native`), or the columns of a Kaseya VSA,
Datto RMM, NinjaOne, N-able N-central or ConnectWise Automate export; `--format` forces one and
`--map COLUMN=FIELD` takes any column for one of our fields. The file may be UTF-8 (with or without a
byte-order mark) or UTF-16 with one, its cells separated by commas, semicolons or tabs (whichever the header
line holds most of), and begin with the `#TYPE ...` line of PowerShell 5.1's Export-Csv: that line is skipped
but counted, so rows keep the numbers a spreadsheet shows them with (the header is then row 2).

Agent id, machine name and organization must be read (a row error otherwise, the file is refused, as for
any import); a date and time or an operating system that cannot be read is left blank with a warning. A
native file without --map is left to the import engine, which reads it exactly as before (UTF-8, commas,
last_seen an instant with a zone, the PostgreSQL COPY path).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from billing.core.importing import MAX_RECORD_CHARS, ImportFileError, read_csv, unreadable_text
from billing.core.widgets import SCIENTIFIC, SCIENTIFIC_REASON, TextWidget
from metering.counting import has_no_agent
from metering.services import AgentRow

NATIVE = "native"
FORMATS = (NATIVE, "kaseya-vsa", "datto", "ninjaone", "n-central", "cw-automate")
# our fields a column can be mapped to with --map
FIELDS = ("agent_id", "machine_name", "organization", "group", "os", "last_seen", "org_ref", "org_id", "online",
          "suspended", "deleted")
REQUIRED = ("agent_id", "machine_name", "organization")
NATIVE_COLUMNS = ("agent_id", "machine_name", "organization", "group")  # the header that makes a file native
ROW = "__rmm_export__"  # the key under which a row read here goes to RmmAssetsImport.parse_row
TEXT_MAX = 200


TRUE_WORDS = frozenset({"true", "yes", "1", "online"})
FALSE_WORDS = frozenset({"false", "no", "0", "offline"})
_TEXT = TextWidget(max_length=TEXT_MAX)


def column_key(name: str) -> str:
    """A column's name as headers are compared: letters and digits only, in lower case ("Computer ID",
    "computerid" and "Computer_ID" are one column)."""
    return "".join(c for c in name.casefold() if c.isalnum())


# --- timestamps -------------------------------------------------------------------------------------------------
class TimestampError(ValueError):
    pass


_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?")
_SLASHES = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4})(?:,?\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:\s*([AaPp])\.?[Mm]\.?)?)?")
_DOTS = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})(?:,?\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?")
_EPOCH = re.compile(r"\d{1,16}(?:\.\d+)?")
EPOCH_MODES = (None, "ms", "s", "auto")
MS_FROM = 10**11  # "auto": a number this large is milliseconds (10**11 seconds is the year 5138)


def parse_timestamp(text: str, *, epoch: str | None = None) -> datetime | None:
    """An instant (in UTC) from the forms RMM exports write; a form without a zone is UTC.

    - ISO 8601, with or without a zone: `2026-12-06T12:41:03Z`, `2026-12-06 12:41:03`, `…T12:41:03.0300000Z`,
      `…+02:00`; a date alone is its midnight;
    - slashes: month/day/year as in the US (`12/6/2026 12:41:03 PM`, `12/6/2026 13:05`), unless the first
      number is above 12: then day/month/year (`13/6/2026 12:41`). `6/12/2026` is therefore 12 June;
    - dots: day.month.year (`06.12.2026 12:41:03`);
    - a number, where the export writes epoch time: `epoch="ms"` milliseconds (Datto RMM), `"s"` seconds,
      `"auto"` milliseconds from 10**11 on; 0 means never (None). Without `epoch`, a number is refused.

    Hours are 0-23, or 1-12 with AM/PM; seconds and fractions are optional. Raises TimestampError."""
    text = text.strip()
    try:
        if match := _EPOCH.fullmatch(text):
            return _epoch(text, epoch)
        if match := _ISO.fullmatch(text):
            y, mo, d, h, mi, s, frac, zone = match.groups()
            return _instant(int(y), int(mo), int(d), h, mi, s, frac, None, _zone(zone))
        if match := _SLASHES.fullmatch(text):
            a, b, y, h, mi, s, frac, half = match.groups()
            month, day = (int(b), int(a)) if int(a) > 12 else (int(a), int(b))
            return _instant(int(y), month, day, h, mi, s, frac, half, UTC)
        if match := _DOTS.fullmatch(text):
            d, mo, y, h, mi, s, frac = match.groups()
            return _instant(int(y), int(mo), int(d), h, mi, s, frac, None, UTC)
    except (ValueError, OverflowError) as exc:
        if isinstance(exc, TimestampError):
            raise
        raise TimestampError("is not a date and time") from None
    raise TimestampError("is not a date and time")


def _epoch(text: str, mode: str | None) -> datetime | None:
    if mode is None:
        raise TimestampError("is not a date and time")
    value = Decimal(text)
    if value == 0:
        return None  # never (an API's 0 for a device that never reported)
    seconds = value / 1000 if mode == "ms" or (mode == "auto" and value >= MS_FROM) else value
    whole = int(seconds)
    micro = int((seconds - whole) * 1_000_000)
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=whole, microseconds=micro)
    except OverflowError:
        raise TimestampError("is out of range (years 0001 to 9999)") from None


def _zone(text: str | None):
    if text is None or text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 14 or minutes > 59:
        raise TimestampError("has an offset that is not a time zone")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _instant(year, month, day, hour, minute, second, fraction, half, zone) -> datetime:
    h = int(hour) if hour is not None else 0
    if half is not None:
        if not 1 <= h <= 12:
            raise TimestampError("is not a date and time")
        h = h % 12 + (12 if half in "Pp" else 0)
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    local = datetime(year, month, day, h, int(minute or 0), int(second or 0), micro, tzinfo=zone)
    try:
        return local.astimezone(UTC)
    except OverflowError:
        raise TimestampError("is out of range (years 0001 to 9999 in UTC)") from None


def parse_flag(text: str) -> bool:
    """True/False, Yes/No, 1/0, Online/Offline, in any case; ValueError otherwise."""
    word = text.strip().casefold()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(text)


def scientific(text: str) -> bool:
    """Whether an id reads as a number a spreadsheet wrote in scientific notation (`6.94826E+14`)."""
    return bool(SCIENTIFIC.fullmatch(text.strip()))


# --- the vendors' columns ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """A cell's text (trimmed; "" when blank or the column is absent) and the file's column it came from."""

    text: str = ""
    column: str = ""


# A vendor's reading of one row gives our fields: a Cell each (then read by the field's rule), or a value it
# already decided (its flags).
Fields = dict


@dataclass(frozen=True)
class ExportFormat:
    name: str
    title: str  # the RMM and the export, for messages
    # the vendor's columns read: input name -> column names it may have (compared by column_key), first found wins
    inputs: dict[str, tuple[str, ...]]
    # the inputs a header must have to be recognised as this format
    signature: tuple[str, ...]
    read: Callable[[dict[str, Cell], Callable[[Cell, str], None]], Fields]
    epoch: str | None = None  # how a number in a date column reads (parse_timestamp)
    # each required field: the ways to get it, each a set of inputs all needed (default: the input of its name)
    needs: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    # an agent with no last check-in (blank, epoch 0, .NET's 0001-01-01) never checked in (VSA, Datto RMM)
    never_without_last_seen: bool = False

    def needed(self, name: str) -> tuple[tuple[str, ...], ...]:
        return self.needs.get(name, ((name,),))


def _same(*names: str) -> Callable:
    """A reading that takes each input as the field of the same name."""

    def read(cells, warn):
        return Fields({name: cells[name] for name in names if name in cells})

    return read


# N-central's device classes of devices its probe monitors over the network, with no agent of their own (the
# device count of c-vohs/NCentral GetMachineCountAPI.ps1 leaves Switch/Router out)
N_CENTRAL_NO_AGENT = ("switch", "router", "printer", "firewall", "ups", "access point", "wireless")


def _n_central(cells: dict[str, Cell], warn) -> Fields:
    """N-able N-central's device list: each input its field; a device of a class monitored without an agent
    (MachineType Switch/Router, a printer, a firewall) is never billed."""
    out = _same("agent_id", "machine_name", "organization", "group", "os")(cells, warn)
    device_class = cells["device_class"].text.casefold() if "device_class" in cells else ""
    out["no_agent"] = any(word in device_class for word in N_CENTRAL_NO_AGENT)
    return out


def _vsa(cells: dict[str, Cell], warn) -> Fields:
    """Kaseya VSA: MachineGroup `sub.group.org` is organization `org` (the organization's reference) and group
    `group/sub`; Online is VSA's status code (0 offline, 1, 2, 11, 12 online, 198 suspended, 199 never
    checked in: the VSA REST API's Agent Status Response Codes)."""
    out = Fields(agent_id=cells["agent_id"], os=cells["os"], last_seen=cells["last_seen"], org_id=cells["org_id"])
    computer, agent = cells["machine_name"], cells["agent_name"]
    out["machine_name"] = agent if agent.text and not computer.text else computer
    path = cells["machine_group"]
    parts = [p.strip() for p in path.text.split(".")] if path.text else []
    out["organization"] = Cell(parts[-1] if parts else "", path.column)
    out["org_ref"] = Cell(parts[-1] if parts else "", path.column)
    out["group"] = Cell("/".join(p for p in reversed(parts[:-1]) if p), path.column)
    status = cells["online"]
    if status.text:
        code = status.text.strip()
        if code in ("0",):
            out["online"] = False
        elif code in ("1", "2", "11", "12"):
            out["online"] = True
        elif code == "198":
            out["suspended"] = True
        elif code == "199":
            out["never_checked_in"] = True
            out["online"] = False
        else:
            try:
                out["online"] = parse_flag(code)
            except ValueError:
                warn(status, f"{status.text!r} is not a VSA agent status (0, 1, 2, 11, 12, 198, 199); left unknown")
    return out


def _datto(cells, warn) -> Fields:
    return Fields(agent_id=cells["agent_id"], machine_name=cells["machine_name"],
                  organization=cells["organization"], org_id=cells["org_id"], os=cells["os"],
                  last_seen=cells["last_seen"], online=cells["online"], suspended=cells["suspended"],
                  deleted=cells["deleted"])


def _ninjaone(cells, warn) -> Fields:
    """NinjaOne's device report has no device id: the agent is its organization and system name
    (`organizationName/systemName`). `offline` says the contrary of online; a device whose approval is
    PENDING has never been let in (never_checked_in), one DECOMMISSIONED is no longer managed (deleted), and a
    node of a class with no agent (nodeClass NMS_*, CLOUD_MONITOR_TARGET, *_VM_GUEST, ...) is never billed."""
    org, name = cells["organization"], cells["machine_name"]
    out = Fields(machine_name=name, organization=org, group=cells["group"], last_seen=cells["last_seen"],
                 os=cells["node_class"])  # the device list's class, as the API sync keeps it
    # a node with no agent of its own (an SNMP device, a cloud monitor, a VM guest): never billed
    out["no_agent"] = has_no_agent(cells["node_class"].text)
    out["agent_id"] = Cell(f"{org.text}/{name.text}" if org.text and name.text else "", name.column)
    offline = cells["offline"]
    if offline.text:
        try:
            out["online"] = not parse_flag(offline.text)
        except ValueError:
            warn(offline, f"{offline.text!r} is not true or false; left unknown")
    approval = cells["approval"].text.strip().upper()
    if approval == "PENDING":
        out["never_checked_in"] = True
    elif approval == "DECOMMISSIONED":  # kept by NinjaOne, no longer managed
        out["deleted"] = True
    return out


EXPORT_FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat(
        NATIVE, "the product's own rmm-assets columns",
        {name: (name,) for name in FIELDS}, NATIVE_COLUMNS, _same(*FIELDS), epoch="auto"),
    ExportFormat(
        "kaseya-vsa", "Kaseya VSA agent list (REST API / VSAModule Get-VSAAgent)",
        {"agent_id": ("AgentId",), "machine_name": ("ComputerName",), "agent_name": ("AgentName",),
         "machine_group": ("MachineGroup",), "org_id": ("OrgId",), "os": ("OperatingSystem",),
         "last_seen": ("LastCheckInTime",), "online": ("Online",)},
        ("agent_id", "machine_group"), _vsa, never_without_last_seen=True,
        needs={"machine_name": (("machine_name",), ("agent_name",)), "organization": (("machine_group",),)}),
    ExportFormat(
        "datto", "Datto RMM device list (API v2 / DattoRMM Get-DrmmAccountDevices)",
        {"agent_id": ("uid",), "machine_name": ("hostname",), "organization": ("siteName",),
         "org_id": ("siteUid",), "os": ("operatingSystem",), "last_seen": ("lastSeen",), "online": ("online",),
         "suspended": ("suspended",), "deleted": ("deleted",)},
        ("agent_id", "machine_name", "organization"), _datto, epoch="ms", never_without_last_seen=True),
    ExportFormat(
        "ninjaone", "NinjaOne device report (Get-NinjaDeviceReport)",
        {"machine_name": ("systemName",), "organization": ("organizationName",), "group": ("locationName",),
         "last_seen": ("lastContact",), "offline": ("offline",), "approval": ("approvalStatus",),
         "node_class": ("nodeClass",)},
        ("machine_name", "organization"), _ninjaone, epoch="s",
        needs={"agent_id": (("machine_name", "organization"),)}),
    ExportFormat(
        "n-central", "N-able N-central device list",
        {"agent_id": ("DeviceID",), "machine_name": ("DeviceName",), "organization": ("CustomerName",),
         "group": ("SiteName",), "os": ("OS",), "device_class": ("MachineType", "deviceclass")},
        ("agent_id", "machine_name", "organization"), _n_central),
    ExportFormat(
        "cw-automate", "ConnectWise Automate computers data view",
        {"agent_id": ("Computer ID", "computerid"), "machine_name": ("Computer Name", "Computer"),
         "organization": ("Client Name", "Client"), "group": ("Location Name", "Location"),
         "os": ("Operating System", "OS"), "last_seen": ("Last Contact", "lastcontact", "Last Contact Date")},
        ("agent_id", "machine_name", "organization"), _same("agent_id", "machine_name", "organization", "group",
                                                              "os", "last_seen")),
)}
VENDORS = tuple(name for name in FORMATS if name != NATIVE)


def detect_format(header: list[str]) -> str | None:
    """The format a header is the header of, or None. The product's own columns are matched as the engine
    matches them (trimmed, any case); a vendor's by column_key, all its signature columns present."""
    plain = {cell.strip().lower() for cell in header}
    if all(name in plain for name in NATIVE_COLUMNS):
        return NATIVE
    keys = {column_key(cell) for cell in header}
    for name in VENDORS:
        fmt = EXPORT_FORMATS[name]
        if all(any(column_key(c) in keys for c in fmt.inputs[i]) for i in fmt.signature):
            return name
    return None


def unknown_header_message(header: list[str]) -> str:
    shown = ", ".join(cell.strip() for cell in header[:12]) + (", …" if len(header) > 12 else "")
    return (f"the header is not one of the RMM exports read here ({', '.join(FORMATS)}): {shown}; "
            f"name the columns with --map COLUMN=FIELD (fields: {', '.join(FIELDS)}), or force one with --format")


def parse_column_map(items) -> tuple[tuple[str, str], ...]:
    """`COLUMN=FIELD` options as pairs; ValueError with the reason."""
    pairs = []
    for item in items or ():
        column, sep, name = str(item).rpartition("=")
        column, name = column.strip(), name.strip().lower()
        if not sep or not column:
            raise ValueError(f"--map {item!r}: write it as COLUMN=FIELD")
        if name not in FIELDS:
            raise ValueError(f"--map {item!r}: unknown field {name!r} (one of {', '.join(FIELDS)})")
        pairs.append((column, name))
    fields = [name for _, name in pairs]
    twice = sorted({name for name in fields if fields.count(name) > 1})
    if twice:
        raise ValueError(f"--map: {', '.join(twice)} mapped twice")
    return tuple(pairs)


# --- the file --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shape:
    """How a file is written: its encoding, whether a #TYPE line comes first, its separator, its header."""

    encoding: str  # a Python codec
    bom: int  # bytes of byte-order mark to skip
    type_line: bool
    delimiter: str
    header: list[str]  # as written (trimmed)
    header_fault: str | None = None  # why the header line is not text (a workbook, NUL, bytes not of its encoding)


_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
ENCODING_NAMES = {"utf-8": "UTF-8", "utf-16-le": "UTF-16 LE", "utf-16-be": "UTF-16 BE"}


def _open(path, encoding: str, bom: int):
    stream = open(path, "rb")  # noqa: SIM115 - handed on, closed by the caller
    stream.seek(bom)
    return io.TextIOWrapper(stream, encoding=encoding, errors="surrogateescape", newline="")


def sniff(path) -> Shape | None:
    """The shape of a file, from its first bytes and lines; None for an empty file (the engine says so)."""
    with open(path, "rb") as raw:
        head = raw.read(4)
    encoding, bom = "utf-8", 0
    for mark, name in _BOMS:
        if head.startswith(mark):
            encoding, bom = name, len(mark)
            break
    with _open(path, encoding, bom) as stream:
        first = stream.readline(MAX_RECORD_CHARS + 1)
        type_line = first.lstrip().lower().startswith("#type")
        line = stream.readline(MAX_RECORD_CHARS + 1) if type_line else first
    if not first:
        return None
    text = line.rstrip("\r\n")
    delimiter = _delimiter(text)
    try:
        header = [c.strip() for c in next(csv.reader([text], delimiter=delimiter))] if text else []
    except (csv.Error, StopIteration):
        header = [text]
    fault = "is a ZIP archive (an .xlsx workbook?), not CSV text" if text.startswith("PK\x03\x04") else None
    reason = unreadable_text(text)
    if reason:
        fault = f"is {reason.removeprefix('contains ')}" if reason.startswith("contains") else f"is {reason}"
    return Shape(encoding, bom, type_line, delimiter, header, fault)


def _delimiter(line: str) -> str:
    """The separator a header line uses: the most frequent of , ; and tab outside quotes (a comma on a tie)."""
    counts, quoted = {",": 0, ";": 0, "\t": 0}, False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(counts.values())
    return next(d for d in (",", ";", "\t") if counts[d] == best) if best else ","


@dataclass
class RowRead:
    """One row of an export: the agent, or the errors that refuse the row; warnings either way."""

    agent: AgentRow | None
    agent_column: str
    errors: list[tuple[str, str]]
    warnings: list[tuple[str, str]]


@dataclass
class Reader:
    """How the rows of one file are read: its format, where each input is, and the --map columns."""

    fmt: ExportFormat
    inputs: dict[str, str]  # input -> the column's key in the rows (the engine's lower-cased header name)
    shown: dict[str, str]  # a row key -> the column as the file writes it
    mapped: dict[str, str]  # our field -> row key, from --map

    def read(self, raw: dict) -> RowRead:
        errors, warnings = [], []

        def cell(key: str | None) -> Cell:
            if key is None:
                return Cell()
            text = raw.get(key)
            return Cell("" if text is None else str(text).strip(), self.shown.get(key, key))

        fields = self.fmt.read({name: cell(self.inputs.get(name)) for name in self.fmt.inputs},
                               lambda c, reason: warnings.append((c.column, reason)))
        for name, key in self.mapped.items():
            fields[name] = cell(key)
        values = {}
        for name in ("agent_id", "machine_name", "organization", "group", "org_ref", "org_id", "os"):
            values[name] = self._text(name, fields.get(name, Cell()), errors, warnings)
        values["last_seen"], unreadable = self._instant(fields.get("last_seen", Cell()), warnings)
        if values["last_seen"] is not None and values["last_seen"].year == 1:
            values["last_seen"] = None  # .NET's DateTime.MinValue: never
        if (self.fmt.never_without_last_seen and "last_seen" in self.inputs and "last_seen" not in self.mapped
                and values["last_seen"] is None and not unreadable):
            fields["never_checked_in"] = True  # no last check-in (blank, epoch 0, 0001-01-01)
        for name in ("online", "suspended", "deleted", "never_checked_in", "no_agent"):
            value = fields.get(name)
            values[name] = self._flag(name, value, warnings) if isinstance(value, Cell) else value
        agent_column = fields.get("agent_id", Cell()).column or "agent_id"
        if errors:
            return RowRead(None, agent_column, errors, warnings)
        agent = AgentRow(
            agent_id=values["agent_id"], machine_name=values["machine_name"], organization=values["organization"],
            group=values["group"], os=values["os"], last_seen=values["last_seen"], org_ref=values["org_ref"],
            org_id=values["org_id"], online=values["online"], suspended=bool(values["suspended"]),
            deleted=bool(values["deleted"]), never_checked_in=bool(values["never_checked_in"]),
            no_agent=bool(values["no_agent"]))
        return RowRead(agent, agent_column, errors, warnings)

    @staticmethod
    def _text(name: str, cell: Cell, errors: list, warnings: list) -> str:
        column = cell.column or name
        informational = name == "os"
        reason = unreadable_text(cell.text)
        if reason is None:
            try:
                text = _TEXT.clean(cell.text)
            except ValueError as exc:
                reason = str(exc)
        if reason is not None:
            (warnings if informational else errors).append(
                (column, f"{reason}; left blank" if informational else reason))
            return ""
        if not text and name in REQUIRED:
            errors.append((column, "is required"))
        elif name in ("agent_id", "org_id") and scientific(text):
            errors.append((column, f"{text!r}: {SCIENTIFIC_REASON}"))
        return text

    def _instant(self, cell: Cell, warnings: list) -> tuple[datetime | None, bool]:
        """The instant of a cell, and whether it could not be read (a warning, left blank)."""
        if not cell.text:
            return None, False
        epoch = "auto" if "last_seen" in self.mapped else self.fmt.epoch  # a column named by hand: either epoch
        try:
            return parse_timestamp(cell.text, epoch=epoch), False
        except TimestampError as exc:
            warnings.append((cell.column or "last_seen", f"{cell.text!r} {exc}; left blank"))
            return None, True

    @staticmethod
    def _flag(name: str, cell: Cell, warnings: list):
        default = None if name == "online" else False
        if not cell.text:
            return default
        try:
            return parse_flag(cell.text)
        except ValueError:
            warnings.append((cell.column or name, f"{cell.text!r} is not true or false (True/False, Yes/No, 1/0, "
                                                  f"Online/Offline); left {'unknown' if default is None else 'false'}"))
            return default


@dataclass
class Export:
    """A file the import reads here: the header and rows for the engine (`rows` closes the file when done)."""

    shape: Shape
    fmt: ExportFormat
    header: list[str]
    rows: Iterator[tuple[int, dict]]


def read_export(path, *, file_format: str | None = None, column_map=()) -> Export | None:
    """The rows of an RMM export as the import engine takes them ({ROW: RowRead} per row), or None when the
    engine reads the file itself, exactly as before: a file with the product's own columns (or some of them)
    and no --map, an empty file, a header that is not CSV text. ImportFileError for a file that cannot be read."""
    if file_format == NATIVE and not column_map:
        return None
    shape = sniff(path)
    if shape is None:
        return None  # empty: the engine says so
    if shape.header_fault:
        if shape.encoding == "utf-8" and not shape.type_line:
            return None  # the engine's own words (workbook, UTF-16 without a byte-order mark, not UTF-8)
        raise ImportFileError(f"the header {shape.header_fault}")
    if not any(shape.header):
        if shape.type_line:
            raise ImportFileError("the header row (after the #TYPE line) is empty")
        return None
    name = file_format or detect_format(shape.header)
    plain = {cell.lower() for cell in shape.header}
    if not column_map and (name == NATIVE or (name is None and plain & set(NATIVE_COLUMNS))):
        # the product's own columns: read by the engine as they always were (CSV UTF-8, commas)
        if shape.type_line:
            raise ImportFileError("a #TYPE line (PowerShell 5.1's Export-Csv) comes before the header: a file of the "
                                  "product's own columns is CSV UTF-8 without it (Export-Csv -NoTypeInformation)")
        if shape.delimiter == "\t" and shape.encoding == "utf-8":
            raise ImportFileError("the cells are separated by tabs: save the file with commas (CSV UTF-8)")
        return None
    if name is None and not column_map:
        raise ImportFileError(unknown_header_message(shape.header))
    fmt = EXPORT_FORMATS[name] if name else ExportFormat("--map", "file (columns named with --map)", {}, (), _same(),
                                                         epoch="auto")
    stream = _open(path, shape.encoding, shape.bom)
    try:
        if shape.type_line:
            stream.readline(MAX_RECORD_CHARS + 1)
        header, rows = read_csv(stream, delimiter=shape.delimiter, header_row=2 if shape.type_line else 1)
        reader = _reader(fmt, header, shape.header, column_map)
    except BaseException:
        stream.close()
        raise

    heading = [cell.strip().casefold() for cell in shape.header]

    def read_rows():
        try:
            for number, raw in rows:
                if "__too_many__" in raw:  # counted against the file's header, not the engine's columns
                    error = ("(line)", f"{raw['__too_many__']} cells for {len(header)} columns")
                    yield number, {ROW: RowRead(None, "", [error], [])}
                elif ([str(cell or "").strip().casefold() for cell in raw.values()] == heading
                      or str(next(iter(raw.values()), "") or "").startswith("#TYPE ")):
                    # two exports joined into one file (one per customer): never an agent named by the column names
                    error = ("(line)", "the header again: two exports joined into one file? keep one header")
                    yield number, {ROW: RowRead(None, "", [error], [])}
                else:
                    yield number, {ROW: reader.read(raw)}
        finally:
            stream.close()

    return Export(shape, fmt, [*NATIVE_COLUMNS], read_rows())


def _reader(fmt: ExportFormat, header: list[str], written: list[str], column_map) -> Reader:
    """Where each input of the format and each --map column is in the header; ImportFileError for a column
    that is there twice, a --map column that is not there, and a required field no column gives."""
    shown = dict(zip(header, written, strict=False))
    by_key: dict[str, list[str]] = {}
    for name in header:
        if name not in by_key.setdefault(column_key(name), []):
            by_key[column_key(name)].append(name)

    def find(candidate: str) -> str | None:
        lowered = candidate.strip().lower()
        found = [lowered] if lowered in header else by_key.get(column_key(candidate), [])
        if len(found) > 1:
            raise ImportFileError(f"columns {', '.join(repr(shown.get(f, f)) for f in found)} are one column to "
                                  f"this import: name the one to read with --map COLUMN=FIELD")
        if found and header.count(found[0]) > 1:
            raise ImportFileError(f"column {shown.get(found[0], found[0])!r} appears twice in the header")
        return found[0] if found else None

    inputs = {}
    for name, candidates in fmt.inputs.items():
        for candidate in candidates:
            if (key := find(candidate)) is not None:
                inputs[name] = key
                break
    mapped = {}
    for column, name in column_map:
        key = find(column)
        if key is None:
            raise ImportFileError(f"--map {column}={name}: no column {column!r} in the header "
                                  f"({', '.join(written[:12])}{', …' if len(written) > 12 else ''})")
        mapped[name] = key
    missing = []
    for name in REQUIRED:
        ways = fmt.needed(name)
        if name in mapped or any(all(i in inputs for i in way) for way in ways if fmt.inputs):
            continue
        columns = " or ".join(" and ".join(fmt.inputs[i][0] for i in way) for way in ways if fmt.inputs)
        missing.append(f"{name} ({columns})" if columns else name)
    if missing:
        raise ImportFileError(f"no column gives {', '.join(missing)} in this {fmt.title}: name one with "
                              f"--map COLUMN=FIELD")
    return Reader(fmt, inputs, shown, mapped)
