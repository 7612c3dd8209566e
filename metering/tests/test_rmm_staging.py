"""rmm-assets on PostgreSQL: a clean file takes the COPY staging path (metering.staging) and
gives exactly what the row-by-row engine gives; any file that path is not sure of goes to the engine.

Each file here is imported twice from the same state: first by the engine (billing.importing.run_import on a
text stream, always row by row), looked at and rolled back, then by run_import_file, which takes the staging
path on PostgreSQL. The answers (the summary, or the fault) and everything the import writes for the partner
(agents, presences, inventory syncs, audit rows, unit change notices; ids and timestamps aside, but the order
rows were created in kept) must be the same. On SQLite both runs are the engine: the tests still run, and the
ones about the staging path itself are skipped with the reason.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.core import copy_staging
from billing.core.actor import Actor
from billing.core.importing import ImportContext, open_csv, run_import, run_import_file
from billing.core.registry import import_kinds
from conftest import examples
from metering import staging
from metering.models import AgentPresence, InventorySync, RmmAgent, UnitChangeNotice
from partners.models import AuditLog, Method
from partners.tests.factories import PartnerFactory, ServiceFactory
from tests.import_checks import staged_answer

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
MAY_10, MAY_11, MAY_12 = date(2026, 5, 10), date(2026, 5, 11), date(2026, 5, 12)
HEADER = ["agent_id", "machine_name", "organization", "group", "os", "last_seen"]
ACTOR = Actor(label="import_csv rmm-assets inventory.csv")
CORPUS = Path(__file__).resolve().parents[2] / "tests" / "data" / "bad-input" / "rmm-assets"
on_postgres = pytest.mark.skipif("connection.vendor != 'postgresql'",
                                 reason="the staging path is PostgreSQL's (COPY); SQLite always reads row by row")


@pytest.fixture(autouse=True)
def today():
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def partner():
    """A partner with two per_asset services (North's agents, and North/WS's), so that unit change notices
    are written too."""
    partner = PartnerFactory(slug="tide")
    for code, rmm_filter in (("north", "North"), ("north-ws", "North/WS")):
        ServiceFactory(partner=partner, code=code, name=code, method=Method.PER_ASSET, rmm_filter=rmm_filter,
                       unit_price=Money("10.00", "USD"), notification_emails="ops@tide.example",
                       start_date=date(2026, 3, 1))
    return partner


# --- importing a file both ways ---------------------------------------------------------------------------------
def engine(path, **options):
    """The row-by-row engine, whatever the database."""
    with open_csv(path) as stream:
        return run_import("rmm-assets", stream, **options)


def tables(partner) -> dict:
    """What an inventory import writes for the partner, ids and timestamps aside (an audit row names its
    InventorySync by the sync's values), and the order the agents and presences were created in."""
    syncs = {str(s.pk): (s.as_of, s.agents, s.added, s.moved, s.removed, s.source)
             for s in InventorySync.objects.filter(partner=partner)}
    agents = RmmAgent.objects.filter(partner=partner).order_by("pk")
    presences = AgentPresence.objects.filter(partner=partner).order_by("pk")
    return {
        "agents": sorted(agents.values_list("agent_id", "machine_name", "os", "last_seen"), key=repr),
        "agents created": list(agents.values_list("agent_id", flat=True)),
        "presences": sorted(presences.values_list("agent__agent_id", "organization", "group", "present_from",
                                                  "present_until", "partner_id"), key=repr),
        "presences created": list(presences.values_list("agent__agent_id", "present_from")),
        "syncs": sorted(syncs.values(), key=repr),
        "audit": sorted(((a.action, a.actor_label, a.actor_id, a.object_type, a.object_repr, syncs.get(a.object_id),
                          json.dumps(a.before, sort_keys=True), json.dumps(a.after, sort_keys=True))
                         for a in AuditLog.objects.filter(partner=partner)), key=repr),
        "notices": sorted(UnitChangeNotice.objects.filter(service__partner=partner).values_list(
            "service__code", "effective_date", "units_before", "units_after", "recipients", "sync_run", "emailed_at"),
            key=repr),
        "all agents": RmmAgent.objects.count(), "all presences": AgentPresence.objects.count(),
    }


def both(path, partner, as_of: date, *, tables_of=None, **options):
    """Import the file by the engine (rolled back), then by run_import_file: the same answer and tables (`tables_of`
    the partner, `tables` by default). Returns (the answer, whether run_import_file took the staging path)."""
    tables_of = tables_of or tables
    options = {"partner": partner.slug, "as_of": as_of, "actor": ACTOR, "source": "inventory.csv", **options}
    with transaction.atomic():
        expected, staged = staged_answer(lambda: engine(path, **options))
        expected_tables = tables_of(partner)
        transaction.set_rollback(True)
    assert not staged
    got, staged = staged_answer(lambda: run_import_file("rmm-assets", path, **options))
    assert got == expected
    assert tables_of(partner) == expected_tables
    return got, staged


def write(tmp_path, text: str | bytes, name: str = "inventory.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def inventory(rows: list[tuple], header=HEADER, newline="\n") -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def agent(n: int, org: str = "North", group: str = "WS", name: str | None = None, os: str = "Windows 11",
          seen: str = "2026-05-01T08:00:00Z") -> tuple:
    return (f"a{n}", name or f"PC-{n}", org, group, os, seen)


def clean_expected(staged: bool) -> None:
    assert staged == (connection.vendor == "postgresql")


# --- equivalence: a history of inventories ---------------------------------------------------------------------
def test_a_history_of_inventories_gives_the_same_tables_both_ways(tmp_path, partner):
    """New partner, the same file again, a later date, moves, removals, new details, a corrected inventory
    for the same date (back, wrongly added, moved back), an empty inventory, agents back, a back-filled night."""
    def step(rows, as_of, **options):
        result, staged = both(write(tmp_path, inventory(rows)), partner, as_of, **options)
        return result, staged

    first = [agent(1), agent(2, group=""), agent(3, "South", "Servers", os="", seen=""),
             agent(4, seen="2026-05-01T10:00:00+02:00"), agent(5, "North", "Lab"), agent(6, "South", "WS")]
    result, staged = step(first, MAY_10)
    clean_expected(staged)
    assert result[1].ok
    assert result[1].describe() == "rmm-assets: imported 6 rows: 6 created, 0 updated, 0 unchanged"
    result, staged = step(first, MAY_10)  # the same again: nothing changes, no new sync
    clean_expected(staged)
    assert (result[1].created, result[1].updated, result[1].unchanged) == (0, 0, 6)
    result, staged = step(first, MAY_11)  # the same agents later: recorded, nothing changes
    assert (result[1].created, result[1].updated, result[1].unchanged) == (0, 0, 6)
    changed = [agent(1, "South"),  # moved
               agent(2, group="WS"),  # moved within North
               agent(3, "South", "Servers", name="SRV-3", os="Linux", seen="2026-05-11T01:02:03Z"),  # new details
               agent(5, "North", "Lab"),
               agent(7), agent(8, "Acme, Inc.", 'say "hi"')]  # new; a4 and a6 gone
    result, staged = step(changed, MAY_12)
    clean_expected(staged)
    assert (result[1].created, result[1].updated, result[1].unchanged) == (2, 5, 1)
    corrected = [agent(1, "North"),  # moved back on the same date: it never moved
                 agent(2, group="Lab"),  # moved again the same date
                 agent(3, "South", "Servers", name="SRV-3", os="Linux", seen="2026-05-11T01:02:03Z"),
                 agent(4),  # wrongly left out: back as if it never left
                 agent(5, "North", "Lab"),
                 agent(7, "South")]  # added that date and moved: the same presence; a8 wrongly added: removed
    result, staged = step(corrected, MAY_12)
    clean_expected(staged)
    result, staged = step([], MAY_12)  # an empty inventory on the same date
    clean_expected(staged)
    result, staged = step([agent(1), agent(9)], date(2026, 5, 20))
    clean_expected(staged)
    result, staged = step([agent(1)], MAY_11)  # out of order: a back-filled night, which the engine applies
    assert not staged and result[1].ok
    result, staged = step([agent(1), agent(2)], date(2026, 5, 21), dry_run=True)  # a dry run writes nothing
    assert result[1].dry_run and result[1].created == 1
    assert not InventorySync.objects.filter(as_of=date(2026, 5, 21)).exists()
    assert UnitChangeNotice.objects.filter(service__partner=partner).exists()


def test_an_agent_moved_and_back_over_several_dates(tmp_path, partner):
    """Presences closed yesterday are only reopened by a corrected inventory of the latest date, never by a
    later one (then the agent is back from the new date)."""
    for as_of, rows in ((MAY_10, [agent(1), agent(2)]), (MAY_11, [agent(2)]), (MAY_12, [agent(1), agent(2)]),
                        (MAY_12, [agent(2)]), (MAY_12, [agent(1, "South"), agent(2)]),
                        (date(2026, 5, 13), [agent(1, "South"), agent(2, "South")]),
                        (date(2026, 5, 14), [agent(1, "South"), agent(2, "South")]),
                        (date(2026, 5, 15), [agent(2, "South")]),  # a1 closed on the 14th
                        (date(2026, 5, 15), [agent(1, "North"), agent(2, "South")]),  # back elsewhere: not reopened
                        (date(2026, 5, 15), [agent(1, "South"), agent(2, "South")]),  # moved back: the same presence
                        (date(2026, 5, 15), [agent(2, "South")]),
                        (date(2026, 5, 15), [agent(1, "South"), agent(2, "South")])):  # back in place: reopened
        _, staged = both(write(tmp_path, inventory(rows)), partner, as_of)
        clean_expected(staged)


def test_presences_written_by_hand_are_read_as_the_engine_reads_them(tmp_path, partner):
    """Presences written by hand (not by inventories) may overlap, end in the future, or end the day before an
    inventory that is not a correction: the staging path reads them as the engine does. a1 has two presences
    in force (the engine keeps the earliest: its dict, in the model's order); a2 ended yesterday, but no
    inventory was recorded for today (not reopened); a3 began today and ends later (moved where it is)."""
    def presence(agent_id, organization, first, last):
        pc = RmmAgent.objects.get_or_create(partner=partner, agent_id=agent_id,
                                            defaults={"machine_name": f"PC-{agent_id[1:]}", "os": "Windows 11"})[0]
        AgentPresence.objects.create(agent=pc, partner=partner, organization=organization, group="WS",
                                     present_from=first, present_until=last)

    presence("a1", "South", date(2026, 5, 1), date(2026, 5, 31))
    presence("a1", "North", date(2026, 5, 5), date(2026, 5, 20))
    presence("a2", "North", date(2026, 5, 1), date(2026, 5, 9))
    presence("a3", "South", MAY_10, date(2026, 5, 20))
    _, staged = both(write(tmp_path, inventory([agent(1, "North"), agent(2, "North"), agent(3, "North")])),
                     partner, MAY_10)
    clean_expected(staged)
    assert AgentPresence.objects.get(agent__agent_id="a1", present_from=date(2026, 5, 1)).present_until == date(
        2026, 5, 9)
    assert AgentPresence.objects.get(agent__agent_id="a2", present_from=date(2026, 5, 1)).present_until == date(
        2026, 5, 9)
    assert AgentPresence.objects.get(agent__agent_id="a3").organization == "North"


# --- equivalence: the same inventory written every way a clean file may be --------------------------------------
ROWS = [agent(1), agent(2, group="", os="", seen=""),
        agent(3, "South", "Servers", seen="2026-05-01T10:00:00.5+02:00"),
        ("a4", "Café ☕ 🖥", "Zürich", "", "macOS", "2026-05-01T23:59:59-14:00"),
        ("a5", "x" * 200, "North", "WS", "", "")]


def quoted_all(rows, header=HEADER, newline="\r\n") -> str:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator=newline).writerows([header, *rows])
    return out.getvalue()


CLEAN_FILES = {
    "plain": inventory(ROWS),
    "crlf": inventory(ROWS, newline="\r\n"),
    "cr": inventory(ROWS, newline="\r"),
    "no final line end": inventory(ROWS).rstrip("\n"),
    "bom": "\ufeff" + inventory(ROWS, newline="\r\n"),
    "every cell quoted": quoted_all(ROWS),
    "quotes, commas and line breaks in cells": inventory(
        [*ROWS, ("a6", 'PC "six", the\nsecond', "Acme, Inc.", "a\r\nb", 'x""y', "")]),
    "columns in another order, in capitals, with extra columns": inventory(
        [(r[5], "serial", r[2], r[0], "", r[3], r[1], "x" * 1000, r[4]) for r in ROWS],
        header=["Last_Seen", "serial", " ORGANIZATION ", "Agent_ID", "", "group", "machine_name", "notes", "os"]),
    "no os or last_seen column": inventory([r[:4] for r in ROWS], header=HEADER[:4]),
    "spaces around cells": inventory([(f"  {r[0]}", f"{r[1]}  ", f" {r[2]} ", r[3] + " ", r[4], f" {r[5]} ")
                                      for r in ROWS]),
    "tabs, no-break spaces and other whitespace around cells": inventory(
        [(f"\t{r[0]}\u00a0", f"\u3000{r[1]}\x1f", f"{r[2]}\u2028", f"\x0b{r[3]}", r[4], f"\u202f{r[5]}\x85")
         for r in ROWS]),
    "quoted line breaks around cells": quoted_all([(f"\n{r[0]}", f"{r[1]}\r\n", *r[2:]) for r in ROWS]),
    "characters that are not whitespace": inventory([(r[0], f"\u200b{r[1]}\ufeff", *r[2:]) for r in ROWS[:4]]),
    "the same agent twice, identically": inventory([*ROWS, ROWS[1], ROWS[0]]),
    "the same agent twice, last_seen written two ways": inventory(
        [*ROWS, ("a1", "PC-1", "North", "WS", "Windows 11", "2026-05-01T10:00:00+02:00")]),
    "last_seen forms": inventory([
        ("a1", "PC-1", "North", "WS", "", "2026-05-01T08:00:00z"),
        ("a2", "PC-2", "North", "WS", "", "2026-05-01T08:00:00.123456Z"),
        ("a3", "PC-3", "North", "WS", "", "2026-05-01T08:00:00.1-00:00"),
        ("a4", "PC-4", "North", "WS", "", "2026-02-28T23:59:59+14:00"),
        ("a5", "PC-5", "North", "WS", "", "1000-01-01T00:00:00-14:59"),
        ("a6", "PC-6", "North", "WS", "", "9998-12-31T23:59:59Z"),
        ("a7", "PC-7", "North", "WS", "", "2024-02-29T12:00:00+05:30"),
        ("a8", "PC-8", "North", "WS", "", "0999-01-01T00:00:00Z"),
        ("a9", "PC-9", "North", "WS", "", "2026-05-01 08:00:00+00"),  # a database's export
        ("a10", "PC-10", "North", "WS", "", "2026-05-01t08:00Z"),
        ("a11", "PC-11", "North", "WS", "", "2026-05-01T08:00:00+0530"),
        ("a12", "PC-12", "North", "WS", "", "2026-05-01 13:30-05"),
    ]),
    "formula-like text, and apostrophes inside": inventory(
        [("a1", "=1+2", "+North", "@WS", "-Windows", ""), ("a2", "Bob's PC", "North", "WS", "it's", "")]),
    "a backslash": inventory([("a1", "C:\\PC\\one", "North", "WS\\", "\\", "")]),
    "header only": inventory([]),
    "blank lines at the end": inventory(ROWS) + "\n\n",
    "CRLF blank lines at the end": inventory(ROWS, newline="\r\n") + "\r\n\r\n\r\n",
}


@pytest.mark.parametrize("chunk", [1 << 20, 7], ids=["1 MiB chunks", "7-byte chunks"])
@pytest.mark.parametrize("case", list(CLEAN_FILES))
def test_a_clean_file_gives_the_same_tables_both_ways_in_any_form(tmp_path, partner, monkeypatch, case, chunk):
    """Each form of a clean file is taken by the staging path on PostgreSQL (read in chunks of any size: a
    quoted cell, a character or a line end split between two chunks), with the engine's result."""
    monkeypatch.setattr(copy_staging, "CHUNK", chunk)  # what copy_to_stage reads
    both(write(tmp_path, inventory([agent(1, "South"), agent(9)])), partner, MAY_10)  # something to change
    result, staged = both(write(tmp_path, CLEAN_FILES[case]), partner, MAY_11)
    assert result[0] == "summary" and result[1].ok, result
    clean_expected(staged)


# --- files the staging path leaves to the engine ----------------------------------------------------------------
def row(*cells: str) -> str:
    return ",".join(cells)


GOOD = "\n".join([",".join(HEADER), row("a1", "PC-1", "North", "WS", "Windows 11", "2026-05-01T08:00:00Z"),
                  row("a2", "PC-2", "South", "", "", "")])
ENGINE_FILES = {
    # the engine accepts them; the staging path is not sure it reads them alike
    "an exported formula escape": GOOD + "\na3,'=1+2,North,WS,,\n",
    "a leading apostrophe kept": GOOD + "\na3,'PC-3,North,WS,,\n",
    "a blank line": GOOD + "\n\na3,PC-3,North,WS,,\n",
    "a line of commas": GOOD + "\n,,,,,\na3,PC-3,North,WS,,\n",
    "a short line": GOOD + "\na3,PC-3,North\n",
    "blank cells past the header": GOOD + "\na3,PC-3,North,WS,,,,\n",
    "mixed line ends": GOOD.replace("\n", "\r\n", 1) + "\na3,PC-3,North,WS,,\n",
    "a quote inside a cell": GOOD + '\na3,PC "3",North,WS,,\n',
    "COPY's end marker in a cell": GOOD + "\na3,C:\\.hidden,North,WS,,\n",
    "last_seen with 7 decimals": GOOD + "\na3,PC-3,North,WS,,2026-05-01T08:00:00.1234567Z\n",
    "last_seen with an offset of 16 hours": GOOD + "\na3,PC-3,North,WS,,2026-05-01T08:00:00+16:00\n",
    "last_seen in the year 9999": GOOD + "\na3,PC-3,North,WS,,9999-12-31T23:00:00+01:00\n",
    # the engine refuses them (row errors or a fault)
    "COPY's end marker on a line": GOOD + "\n\\.\na3,PC-3,North,WS,,\n",
    "text after a closing quote": GOOD + '\na3,"PC"3,North,WS,,\n',
    "a quote never closed": GOOD + '\na3,"PC-3,North,WS,,\n',
    "a name of 201 characters": GOOD + "\na3," + "x" * 201 + ",North,WS,,\n",
    "an organization of 201 characters after trimming": GOOD + "\na3,PC-3, " + "y" * 201 + " ,WS,,\n",
    "a blank machine name": GOOD + "\na3, ,North,WS,,\n",
    "a blank organization": GOOD + "\na3,PC-3,\u00a0,WS,,\n",
    "the same agent with other values": GOOD + "\na1,PC-1,North,Lab,Windows 11,2026-05-01T08:00:00Z\n",
    "last_seen without a zone": GOOD + "\na3,PC-3,North,WS,,2026-05-01T08:00:00\n",
    "last_seen 'today'": GOOD + "\na3,PC-3,North,WS,,today\n",
    "last_seen on February 30": GOOD + "\na3,PC-3,North,WS,,2026-02-30T08:00:00Z\n",
    "last_seen at 24:00": GOOD + "\na3,PC-3,North,WS,,2026-05-01T24:00:00Z\n",
    "last_seen at second 60": GOOD + "\na3,PC-3,North,WS,,2026-05-01T23:59:60Z\n",
    "last_seen in the year 0": GOOD + "\na3,PC-3,North,WS,,0000-05-01T08:00:00Z\n",
    "last_seen out of range in UTC": GOOD + "\na3,PC-3,North,WS,,9999-12-31T23:00:00-05:00\n",
    "last_seen with Arabic-Indic digits": GOOD + "\na3,PC-3,North,WS,,٢٠٢٦-05-01T08:00:00Z\n",
    "a NUL": GOOD + "\na3,PC\x00-3,North,WS,,\n",
    "a duplicate column": GOOD.replace("last_seen", "os", 1),
    "a missing column": GOOD.replace("organization", "org", 1),
}
ENGINE_BYTES = {
    "Latin-1": (GOOD + "\na3,Caf\xe9,North,WS,,\n").encode("latin-1"),
    "a UTF-8 character cut short at the end": GOOD.encode() + b"\na3,PC-3,North,WS,,\xc3",
    "UTF-16": GOOD.encode("utf-16"),
    "a surrogate encoded in UTF-8": GOOD.encode() + b"\na3,PC\xed\xa0\x80,North,WS,,\n",
}


@pytest.mark.parametrize("chunk", [1 << 20, 5], ids=["1 MiB chunks", "5-byte chunks"])
@pytest.mark.parametrize("case", [*ENGINE_FILES, *ENGINE_BYTES])
def test_a_file_the_staging_path_is_not_sure_of_goes_to_the_engine(tmp_path, partner, monkeypatch, case, chunk):
    """Whatever the engine answers (an import, row errors or a fault), the answer and the tables are its own;
    on PostgreSQL the staging path left the file (nothing it did remains)."""
    monkeypatch.setattr(copy_staging, "CHUNK", chunk)  # what copy_to_stage reads
    both(write(tmp_path, inventory([agent(1, "South"), agent(9)])), partner, MAY_10)
    content = ENGINE_FILES.get(case) or ENGINE_BYTES[case]
    result, staged = both(write(tmp_path, content), partner, MAY_11)
    assert not staged, result


def test_cells_and_rows_near_the_csv_modules_limits(tmp_path, partner):
    """The staging path knows cells and rows by their bytes: under the csv module's limits in bytes it takes
    them; a cell or a row that may be over them in characters goes to the engine, which accepts or refuses."""
    limit = csv.field_size_limit()

    cases = [("x" * (limit - 10),), ("x" * (limit + 1),), ("é" * (limit // 2 + 10),),
             *(("x" * 131_000,) * n for n in (8, 9))]
    outcomes = []
    for notes in cases:
        path = write(tmp_path, inventory([(*agent(1, seen=""), *[""] * len(notes)), (*agent(2, seen=""), *notes)],
                                         header=[*HEADER, *(f"notes{i}" for i in range(len(notes)))]))
        result, staged = both(path, partner, MAY_10)
        outcomes.append((result[0], result[1][:36] if result[0] == "fault" else "", staged))
    on_pg = connection.vendor == "postgresql"
    assert outcomes == [
        ("summary", "", on_pg),  # under the limit in bytes
        ("fault", "row 3: a cell is longer than 131,072", False),
        ("summary", "", False),  # under the limit in characters, over it in bytes
        ("summary", "", False),  # a row of 1,048,000 characters: under the engine's limit, not by a safe margin
        ("fault", "row 3: longer than 1,048,576 charact", False),
    ], outcomes


# --- the bad-input corpus ---------------------------------------------------------------------------------------
CORPUS_ACCEPTED = {"bom-valid", "header-only", "blank-lines-only"}


@on_postgres
@pytest.mark.parametrize("case", sorted(p.stem for p in CORPUS.glob("*.csv")))
def test_the_staging_path_leaves_every_broken_corpus_file_to_the_engine(case):
    """tests/test_bad_input.py checks each corpus answer through import_csv (on PostgreSQL: the staging path,
    then the engine); here, that the staging path itself takes only the valid ones (bom-valid, header-only)
    and writes nothing for the others."""
    acme = PartnerFactory(slug="acme")
    ctx = ImportContext(kind="rmm-assets", partner="acme", as_of=date(2026, 6, 15), state={"partner": acme})
    before = tables(acme)
    summary = staging.rmm_assets_fast_path(CORPUS / f"{case}.csv", ctx, import_kinds()["rmm-assets"])
    if case in CORPUS_ACCEPTED - {"blank-lines-only"}:  # blank lines: COPY refuses them, the engine skips them
        assert summary is not None and summary.staged
    else:
        assert summary is None
        assert tables(acme) == before
    assert ctx.errors == [] and ctx.error_count == 0


# --- the staging path is taken ----------------------------------------------------------------------------------
@on_postgres
def test_a_clean_file_takes_the_staging_path_in_a_fixed_number_of_queries(tmp_path):
    """On PostgreSQL a clean file is one COPY and a fixed number of statements, however many rows it has: a
    partner's first inventory of 20 or 2,000 agents, then a changed one (some moved, one gone, one new), run
    the same queries (the engine's batches grow with the file)."""
    counts = []
    for n in (20, 2000):
        partner = PartnerFactory(slug=f"tide-{n}")
        first = [agent(i, ("North", "South")[i % 2]) for i in range(n)]
        then = [agent(i, "South") for i in range(1, n + 1)]
        for rows, as_of in ((first, MAY_10), (then, MAY_11)):
            with CaptureQueriesContext(connection) as queries:
                summary = run_import_file("rmm-assets", write(tmp_path, inventory(rows)), partner=partner.slug,
                                          as_of=as_of, actor=ACTOR)
            assert summary.staged and summary.ok
            assert any("CREATE TEMP TABLE rmm_stage" in q["sql"] for q in queries.captured_queries)
            counts.append(len(queries.captured_queries))
    assert counts[:2] == counts[2:], counts
    assert max(counts) < 40, counts


def test_python_whitespace_is_what_str_strip_takes_off():
    """The staging path trims cells of exactly the characters str.strip() takes off."""
    python = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    assert python == staging.PY_WHITESPACE
    assert all(f"{c}x{c}".strip() == "x" for c in staging.PY_WHITESPACE)


# --- generated inventories -------------------------------------------------------------------------------------
AGENT_IDS = [f"a{i}" for i in range(8)]
ORGS = ["North", "South", "Acme, Inc.", 'The "Q" Co']
GROUPS = ["", "WS", "Servers", "Lab"]
SEEN = ["", "2026-05-01T08:00:00Z", "2026-05-01T10:00:00+02:00", "2026-05-02T00:00:00.25Z"]

agents_strategy = st.dictionaries(
    st.sampled_from(AGENT_IDS),
    st.tuples(st.sampled_from(["PC", "PC-2", "Bob's PC", "PC, the first", "PC\nline 2"]), st.sampled_from(ORGS),
              st.sampled_from(GROUPS), st.sampled_from(["", "Windows 11", "Linux"]), st.sampled_from(SEEN)),
    max_size=8,
)
form_strategy = st.fixed_dictionaries({
    "newline": st.sampled_from(["\n", "\r\n", "\r"]),
    "quoting": st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    "bom": st.booleans(),
    "pad": st.sampled_from(["", " ", "\u00a0"]),
    "extra": st.booleans(),
    "shuffle": st.randoms(use_true_random=False),
    "repeat": st.booleans(),
})


def generated_file(agents: dict, form: dict) -> str:
    header = [*HEADER, *(["site", "notes"] if form["extra"] else [])]
    form["shuffle"].shuffle(header)
    rows = []
    for agent_id, (name, org, group, os, seen) in agents.items():
        cells = {"agent_id": agent_id, "machine_name": name, "organization": org, "group": group, "os": os,
                 "last_seen": seen, "site": "HQ", "notes": 'a "note", long'}
        rows.append([form["pad"] + cells[c] + form["pad"] if c != "last_seen" else cells[c] for c in header])
    if form["repeat"] and rows:
        rows.append(rows[0])
    # csv.writer quotes a line break only when it is in its line terminator: then quote every cell
    quoting = csv.QUOTE_ALL if any("\n" in cell for r in rows for cell in r) else form["quoting"]
    out = io.StringIO()
    csv.writer(out, quoting=quoting, lineterminator=form["newline"]).writerows([header, *rows])
    return ("\ufeff" if form["bom"] else "") + out.getvalue()


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(agents_strategy, form_strategy, st.integers(0, 2)), min_size=1, max_size=4))
def test_generated_inventories_give_the_same_tables_both_ways(tmp_path, steps):
    """Random histories of inventories (same-date corrections included), in random clean forms."""
    with transaction.atomic():
        partner = PartnerFactory(slug="gen")
        ServiceFactory(partner=partner, code="north", name="north", method=Method.PER_ASSET, rmm_filter="North",
                       unit_price=Money("10.00", "USD"), notification_emails="ops@gen.example",
                       start_date=date(2026, 3, 1))
        as_of = MAY_10
        for agents, form, days in steps:
            as_of += timedelta(days=days)
            result, staged = both(write(tmp_path, generated_file(agents, form)), partner, as_of)
            assert result[0] == "summary" and result[1].ok, result
            clean_expected(staged)
        transaction.set_rollback(True)
