"""`import_csv` for usage data: tenant-usage, tenant-events and rmm-assets (billing-rules 3.4-3.7, 8.1, 9, 6.7, 6.8,
6.11), through the command line as a clerk runs it.

Rejected files are checked as in partners/tests/test_imports: exit 1, exactly the expected
`row N: column: reason` lines (no more, no fewer), and every table identical to before the run. The bad
row is the last of a file longer than IMPORT_BATCH_SIZE (3 under test settings), so a full batch of good
rows has been handled inside the import's transaction before it. A file-level fault is one line.

The clock stands at 2026-11-21 12:00 UTC for every test ("today" for the future checks).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine

from metering.models import AgentPresence, InventorySync, RmmAgent, Suspension, UsageSnapshot
from metering.tests.factories import acme_and_globex
from partners.models import AuditLog, Customer, Partner
from partners.tests.factories import CustomerFactory, PartnerFactory
from tests.import_checks import csv_text, import_rejected, row_error_lines, table_rows

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TRACKED = (Partner, Customer, UsageSnapshot, Suspension, RmmAgent, AgentPresence, InventorySync, AuditLog)


@pytest.fixture(autouse=True)
def today():
    """Today is 2026-11-21 (the clock ticks, so `auto_now` stamps still move between imports)."""
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def acme(db):
    """acme with customers north and south; globex with east (a customer of another partner)."""
    return acme_and_globex(rmm_organization="ACME")


# --- helpers -----------------------------------------------------------------------------------------------
def db_state() -> dict[str, list[dict]]:
    return table_rows(TRACKED)


def assert_rejected(cli, kind: str, path, expected: list[str], *options: str):
    """Exit 1, exactly the expected `row N: column: reason` lines in row order, nothing written."""
    result, lines = import_rejected(cli, kind, path, *options, tracked=TRACKED)
    assert lines == expected, result.err
    return result


def assert_file_fault(cli, kind: str, path, line: str, *options: str):
    """A file-level fault: exit 1, exactly one line (naming the file), no row lines, nothing written."""
    before = db_state()
    result = cli("import_csv", kind, str(path), *options)
    assert result.status == 1, result.out
    lines = [text for text in result.err.splitlines() if text.strip()]
    assert lines == [line.format(path=path)], result.err
    assert result.out == ""
    assert db_state() == before
    return result


def assert_imported(cli, kind: str, path, *options: str) -> str:
    result = cli("import_csv", kind, str(path), *options)
    assert result.status == 0, result.err
    # the agents of no customer are listed, not refused (GLOBO: docs/rmm.md 3)
    assert not [line for line in row_error_lines(result.err) if "match no customer" not in line]
    return result.out


@pytest.fixture
def write(csv_file):
    """Write a file of a kind from rows (after the kind's header); each call is a new file."""
    counter = iter(range(1000))
    return lambda kind, *rows, header=None: csv_file(
        f"{kind}-{next(counter)}.csv", csv_text(header or HEADERS[kind], *rows))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


USAGE_HEADER = "partner,customer,date,users_count,storage_bytes,messages_count"
EVENTS_HEADER = "partner,customer,action,at"
RMM_HEADER = "agent_id,machine_name,organization,group,os,last_seen"
HEADERS = {"tenant-usage": USAGE_HEADER, "tenant-events": EVENTS_HEADER, "rmm-assets": RMM_HEADER}

USAGE_GOOD = [
    "acme,north,2026-04-01,10,1000000000,50",
    "acme,north,2026-04-02,12,1000000000,",
    "acme,south,2026-04-01,3,0,",
    "acme,south,2026-04-02,4,500,7",
]
# north is suspended 1-5 April, south 3-10 April
EVENTS_GOOD = [
    "acme,north,suspend,2026-04-01T09:00:00Z",
    "acme,south,suspend,2026-04-03T09:00:00Z",
    "acme,north,unsuspend,2026-04-05T09:00:00Z",
    "acme,south,unsuspend,2026-04-10T09:00:00Z",
]
RMM_GOOD = [
    "a1,srv-01,ACME,Servers,Windows Server 2022,2026-03-31T22:00:00Z",
    "a2,ws-01,ACME,Workstations,Windows 11,",
    "a3,ws-02,ACME,Workstations,Windows 11,",
    "a4,mac-01,GLOBO,,macOS,",
]
GOOD = {"tenant-usage": USAGE_GOOD, "tenant-events": EVENTS_GOOD, "rmm-assets": RMM_GOOD}
RMM_OPTIONS = ("--partner", "acme", "--as-of", "2026-04-01")
OPTIONS = {"tenant-usage": (), "tenant-events": (), "rmm-assets": RMM_OPTIONS}
NO_TZ = "has no time zone: add Z or an offset such as +02:00"

# --- row errors: four good rows (a batch and a bit), then the bad row 6 ----------------------------------------
ROW_ERRORS = [
    # tenant-usage
    pytest.param("tenant-usage", "ghost,north,2026-04-03,1,0,", "partner: unknown partner 'ghost'",
                 id="usage-unknown-partner"),
    pytest.param("tenant-usage", "acme,west,2026-04-03,1,0,", "customer: unknown customer 'west' of partner acme",
                 id="usage-unknown-customer"),
    pytest.param("tenant-usage", "acme,east,2026-04-03,1,0,", "customer: unknown customer 'east' of partner acme",
                 id="usage-customer-of-another-partner"),
    pytest.param("tenant-usage", "acme,north,2026-04-03,ten,0,", "users_count: not a whole number: 'ten'",
                 id="usage-bad-number"),
    pytest.param("tenant-usage", "acme,north,2026-04-03,1,1.5,", "storage_bytes: not a whole number: '1.5'",
                 id="usage-fractional-bytes"),
    pytest.param("tenant-usage", "acme,north,2026-04-03,1,0,many", "messages_count: not a whole number: 'many'",
                 id="usage-bad-optional-number"),
    pytest.param("tenant-usage", "acme,north,2026-04-03,-1,0,", "users_count: must not be negative",
                 id="usage-negative-users"),
    pytest.param("tenant-usage", "acme,north,2026-04-03,1,-5,", "storage_bytes: must not be negative",
                 id="usage-negative-storage"),
    pytest.param("tenant-usage", "acme,north,2026-04-03,1,0,-7", "messages_count: must not be negative",
                 id="usage-negative-messages"),
    pytest.param("tenant-usage", "acme,north,2026-04-03,2147483648,0,", "users_count: must be at most 2147483647",
                 id="usage-users-too-large"),
    pytest.param("tenant-usage", "acme,north,2026-04-03,,0,", "users_count: is required", id="usage-required"),
    pytest.param("tenant-usage", "acme,north,2026-02-30,1,0,",
                 "date: expected a date as YYYY-MM-DD, got '2026-02-30'", id="usage-bad-date"),
    pytest.param("tenant-usage", "acme,north,03/04/2026,1,0,",
                 "date: expected a date as YYYY-MM-DD, got '03/04/2026'", id="usage-date-format"),
    pytest.param("tenant-usage", "acme,north,2026-11-22,1,0,", "date: 2026-11-22 is in the future",
                 id="usage-future-date"),
    # tenant-events
    pytest.param("tenant-events", "ghost,north,suspend,2026-04-12T09:00:00Z", "partner: unknown partner 'ghost'",
                 id="events-unknown-partner"),
    pytest.param("tenant-events", "acme,west,suspend,2026-04-12T09:00:00Z",
                 "customer: unknown customer 'west' of partner acme", id="events-unknown-customer"),
    pytest.param("tenant-events", "acme,east,suspend,2026-04-12T09:00:00Z",
                 "customer: unknown customer 'east' of partner acme", id="events-customer-of-another-partner"),
    pytest.param("tenant-events", "acme,north,resume,2026-04-12T09:00:00Z",
                 "action: unknown action 'resume' (one of suspend, unsuspend)", id="events-unknown-action"),
    pytest.param("tenant-events", "acme,north,suspend,2026-04-12T09:00:00",
                 f"at: instant '2026-04-12T09:00:00' {NO_TZ}", id="events-naive-instant"),
    pytest.param("tenant-events", "acme,north,suspend,2026-04-12", f"at: instant '2026-04-12' {NO_TZ}",
                 id="events-date-not-instant"),
    pytest.param("tenant-events", "acme,north,suspend,2026-04-31T09:00:00Z",
                 "at: expected an ISO 8601 instant with Z or an offset, got '2026-04-31T09:00:00Z'",
                 id="events-bad-instant"),
    pytest.param("tenant-events", "acme,north,suspend,2026-11-21T13:00:00Z",
                 "at: 2026-11-21T13:00:00Z is in the future", id="events-future-instant"),
    pytest.param("tenant-events", "acme,north,suspend,2026-11-21T14:30:00+01:00",
                 "at: 2026-11-21T13:30:00Z is in the future", id="events-future-instant-with-offset"),
    pytest.param("tenant-events", "acme,north,suspend,0001-01-01T00:00:00Z",
                 "at: 0001-01-01T00:00:00Z is before 2000-01-01, the first day metering counts",
                 id="events-before-the-calendar"),
    pytest.param("tenant-events", "acme,north,unsuspend,2026-04-07T09:00:00Z",
                 "action: unsuspend at 2026-04-07T09:00:00Z while not suspended", id="events-unsuspend-twice"),
    pytest.param("tenant-events", "acme,north,unsuspend,2026-03-01T09:00:00Z",
                 "action: unsuspend at 2026-03-01T09:00:00Z while not suspended",
                 id="events-unsuspend-before-any-suspend"),
    pytest.param("tenant-events", "acme,south,suspend,2026-04-05T09:00:00Z",
                 "action: already suspended at 2026-04-05T09:00:00Z (since 2026-04-03T09:00:00Z)",
                 id="events-suspend-while-suspended"),
    # rmm-assets (with --partner acme --as-of 2026-04-01)
    pytest.param("rmm-assets", "a5,,ACME,Servers,,", "machine_name: is required", id="rmm-machine-required"),
    pytest.param("rmm-assets", "a5,srv-02,,Servers,,", "organization: is required", id="rmm-organization-required"),
    pytest.param("rmm-assets", ",srv-02,ACME,Servers,,", "agent_id: is required", id="rmm-agent-id-required"),
    pytest.param("rmm-assets", "a5,srv-02,ACME,Servers,,2026-03-31T22:00:00",
                 f"last_seen: instant '2026-03-31T22:00:00' {NO_TZ}", id="rmm-naive-last-seen"),
    pytest.param("rmm-assets", "a5,srv-02,ACME,Servers,,last week",
                 "last_seen: expected an ISO 8601 instant with Z or an offset, got 'last week'",
                 id="rmm-bad-last-seen"),
    pytest.param("rmm-assets", f"a5,{'x' * 201},ACME,Servers,,", "machine_name: longer than 200 characters",
                 id="rmm-name-too-long"),
    pytest.param("rmm-assets", "a1,srv-01,ACME,Workstations,Windows Server 2022,2026-03-31T22:00:00Z",
                 "agent_id: same agent as row 2 with different values", id="rmm-same-agent-other-group"),
    pytest.param("rmm-assets", "a2,ws-01,ACME,Workstations,Windows 11,2026-04-01T08:00:00Z",
                 "agent_id: same agent as row 3 with different values", id="rmm-same-agent-other-last-seen"),
]


@pytest.mark.parametrize(("kind", "bad_row", "line"), ROW_ERRORS)
def test_a_bad_last_row_is_reported_and_nothing_is_written(acme, cli, write, kind, bad_row, line):
    """billing-rules 8.1, 9.6: the bad row, after a full batch of good ones, is reported as `row 6: column: reason`,
    exit 1, and not even the good rows (nor any audit row) are written."""
    assert_rejected(cli, kind, write(kind, *GOOD[kind], bad_row), [f"row 6: {line}"], *OPTIONS[kind])
    # the same file without the bad row imports: the error really is that row's
    out = assert_imported(cli, kind, write(kind, *GOOD[kind]), *OPTIONS[kind])
    assert f"{kind}: imported 4 rows: 4 created, 0 updated, 0 unchanged" in out


def test_usage_of_today_is_not_in_the_future(acme, cli, write):
    """billing-rules decision (v): a snapshot dated today (UTC) is accepted; only later dates are refused."""
    assert_imported(cli, "tenant-usage", write("tenant-usage", "acme,north,2026-11-21,5,0,"))
    assert UsageSnapshot.objects.get().date == date(2026, 11, 21)


def test_every_bad_row_is_reported_across_batches(acme, cli, write):
    """billing-rules 8.1: every bad row is reported, one line each, in row order, whichever batch it falls in."""
    path = write(
        "tenant-usage",
        "acme,north,2026-04-01,10,0,",
        "acme,west,2026-04-01,10,0,",       # row 3, batch 1
        "acme,north,2026-04-02,10,0,",
        "acme,north,2026-04-03,x,-1,",      # row 5, batch 2: two bad cells
        "acme,north,2026-04-04,10,0,",
        "acme,north,2026-04-05,10,0,",
        "acme,north,2099-01-01,10,0,",      # row 8, batch 3
    )
    assert_rejected(cli, "tenant-usage", path, [
        "row 3: customer: unknown customer 'west' of partner acme",
        "row 5: storage_bytes: must not be negative",
        "row 5: users_count: not a whole number: 'x'",
        "row 8: date: 2099-01-01 is in the future",
    ])


# --- events judged against the history already imported ----------------------------------------------------
def test_suspend_while_suspended_by_an_earlier_file_is_refused(acme, cli, write):
    """billing-rules 9.4: events merge into the history already imported; the merged history must be valid, so
    suspending a tenant left suspended by an earlier file is a row error."""
    assert_imported(cli, "tenant-events", write("tenant-events", "acme,north,suspend,2026-04-01T09:00:00Z"))
    path = write("tenant-events", *EVENTS_GOOD[1:2], *EVENTS_GOOD[3:], "acme,south,suspend,2026-04-20T09:00:00Z",
                 "acme,north,suspend,2026-04-06T09:00:00Z")
    assert_rejected(cli, "tenant-events", path, [
        "row 5: action: already suspended at 2026-04-06T09:00:00Z (since 2026-04-01T09:00:00Z)",
    ])


def test_unsuspend_of_a_tenant_an_earlier_file_left_active_is_refused(acme, cli, write):
    """billing-rules 9.4: unsuspending after the history's own unsuspend is a row error."""
    assert_imported(cli, "tenant-events", write("tenant-events", *EVENTS_GOOD))
    path = write("tenant-events", "acme,north,unsuspend,2026-04-06T09:00:00Z")
    assert_rejected(cli, "tenant-events", path, [
        "row 2: action: unsuspend at 2026-04-06T09:00:00Z while not suspended",
    ])


def test_an_event_that_breaks_the_history_names_its_own_row(acme, cli, write):
    """billing-rules 9.4: "the rows that break it are errors": an unsuspend slipped inside a suspension already
    imported (1-5 April) leaves the recorded unsuspend of the 5th without a suspension; the error names
    the row that did it (row 3), not another row of the file."""
    assert_imported(cli, "tenant-events", write("tenant-events", *EVENTS_GOOD))
    path = write("tenant-events", "acme,north,suspend,2026-05-01T09:00:00Z",
                 "acme,north,unsuspend,2026-04-03T09:00:00Z")
    result = assert_rejected(cli, "tenant-events", path, [
        "row 3: action: unsuspend at 2026-04-05T09:00:00Z (already imported) while not suspended",
    ])
    assert "row 2" not in result.err


# --- file-level faults -----------------------------------------------------------------------------------------
FILE_FAULTS = [
    pytest.param(kind, fault, id=f"{kind}-{fault}")
    for kind in ("tenant-usage", "tenant-events", "rmm-assets")
    for fault in ("not-utf8", "missing-column", "empty", "header-only", "unknown-column")
    # not faults for rmm-assets: an empty inventory and extra RMM columns (tested with the inventories)
    if kind != "rmm-assets" or fault in ("not-utf8", "missing-column", "empty")
]


@pytest.mark.parametrize(("kind", "fault"), FILE_FAULTS)
def test_a_file_level_fault_is_one_line(acme, cli, tmp_path, kind, fault):
    """billing-rules 8.1: a file-level fault (encoding, missing column, empty file) is one clear line, exit 1, and
    writes nothing."""
    header, row = HEADERS[kind], GOOD[kind][0]
    path = tmp_path / f"{kind}.csv"
    first, *others = header.split(",")
    if fault == "not-utf8":  # in the header (in a row, it is a row error on its cell: tests/test_bad_input.py)
        path.write_bytes(csv_text(header.replace(",", ",\xe9", 1), *GOOD[kind]).encode("latin-1"))
        line = "CommandError: {path}: the header is not UTF-8 text (byte 0xE9): save the file as CSV UTF-8"
    elif fault == "missing-column":
        path.write_text(csv_text(",".join(others), row.split(",", 1)[1]))
        line = f"CommandError: {{path}}: missing column(s): {first} (header: {', '.join(others)})"
    elif fault == "empty":
        path.write_text("")
        line = "CommandError: {path}: the file is empty"
    elif fault == "header-only":
        path.write_text(header + "\n")
        line = "CommandError: {path}: the file has a header but no data rows"
    else:
        path.write_text(csv_text(header + ",colour", row + ",blue"))
        line = f"CommandError: {{path}}: unknown column(s): colour (expected: {header.replace(',', ', ')})"
    assert_file_fault(cli, kind, path, line, *OPTIONS[kind])


def test_not_utf8_in_a_later_batch_writes_nothing(acme, cli, tmp_path):
    """billing-rules 8.1: a byte that is not UTF-8 far into the file (read after many batches were written) is a row
    error on its own row and cell, and still writes nothing."""
    rows = [f"acme,{('north', 'south')[i % 2]},2026-{1 + i // 56:02d}-{1 + i // 2 % 28:02d},{i},0,"
            for i in range(600)]
    path = tmp_path / "usage.csv"
    path.write_bytes(csv_text(USAGE_HEADER, *rows, "acme,caf\xe9,2026-04-01,1,0,").encode("latin-1"))
    assert_rejected(cli, "tenant-usage", path,
                    ["row 602: customer: not UTF-8 text (byte 0xE9): save the file as CSV UTF-8"])


RMM_FAULTS = [
    pytest.param(("--as-of", "2026-04-01"), "CommandError: {path}: rmm-assets imports need --partner SLUG",
                 id="no-partner"),
    pytest.param(("--partner", "acme"), "CommandError: {path}: rmm-assets imports need --as-of YYYY-MM-DD",
                 id="no-as-of"),
    pytest.param((), "CommandError: {path}: rmm-assets imports need --partner SLUG", id="no-options"),
    pytest.param(("--partner", "ghost", "--as-of", "2026-04-01"), "CommandError: {path}: unknown partner 'ghost'",
                 id="unknown-partner"),
    pytest.param(("--partner", "acme", "--as-of", "2026-11-22"),
                 "CommandError: {path}: --as-of 2026-11-22 is in the future", id="as-of-in-the-future"),
    pytest.param(("--partner", "acme", "--as-of", "2026-04-31"),
                 "CommandError: --as-of: expected a date as YYYY-MM-DD, got '2026-04-31'", id="as-of-not-a-date"),
]


@pytest.mark.parametrize(("options", "line"), RMM_FAULTS)
def test_rmm_assets_options_are_file_level_faults(acme, cli, write, options, line):
    """billing-rules 8.1, 9.5: rmm-assets needs --partner (a known one) and --as-of (not in the future); without
    them the whole file is refused in one line, exit 1, nothing written."""
    assert_file_fault(cli, "rmm-assets", write("rmm-assets", *RMM_GOOD), line, *options)


def test_rmm_as_of_today_is_accepted(acme, cli, write):
    assert_imported(cli, "rmm-assets", write("rmm-assets", *RMM_GOOD), "--partner", "acme", "--as-of", "2026-11-21")
    assert InventorySync.objects.get().as_of == date(2026, 11, 21)


def test_an_inventory_older_than_one_imported_fills_in_its_night(acme, cli, write):
    """billing-rules 3.7, decision (t): an --as-of before the latest inventory already imported is a missed night filled
    in later: it holds from its date until the next inventory recorded (metering/tests/test_inventory_backfill.py
    has the rules)."""
    assert_imported(cli, "rmm-assets", write("rmm-assets", *RMM_GOOD[:2]), "--partner", "acme", "--as-of", "2026-04-15")
    assert_imported(cli, "rmm-assets", write("rmm-assets", *RMM_GOOD), "--partner", "acme", "--as-of", "2026-04-14")
    a4 = AgentPresence.objects.get(agent__agent_id="a4")
    assert (a4.present_from, a4.present_until) == (date(2026, 4, 14), date(2026, 4, 14))
    assert list(InventorySync.objects.filter(partner__slug="acme").order_by("as_of").values_list("as_of", flat=True)) \
        == [date(2026, 4, 14), date(2026, 4, 15)]


# --- tenant-usage semantics ------------------------------------------------------------------------------------
def snapshots() -> list[tuple[str, date, int, int, int | None]]:
    return list(UsageSnapshot.objects.order_by("customer__slug", "date").values_list(
        "customer__slug", "date", "users_count", "storage_bytes", "messages_count"))


def test_usage_is_stored_per_customer_and_date_and_audited(acme, cli, write):
    """billing-rules 9.3: one snapshot per (customer, date); the import writes one usage.import audit row per
    customer."""
    out = assert_imported(cli, "tenant-usage", write("tenant-usage", *USAGE_GOOD))
    assert "tenant-usage: imported 4 rows: 4 created, 0 updated, 0 unchanged" in out
    assert snapshots() == [
        ("north", date(2026, 4, 1), 10, 1_000_000_000, 50),
        ("north", date(2026, 4, 2), 12, 1_000_000_000, None),
        ("south", date(2026, 4, 1), 3, 0, None),
        ("south", date(2026, 4, 2), 4, 500, 7),
    ]
    audits = AuditLog.objects.filter(action="usage.import").order_by("object_repr")
    assert [(a.object_type, a.object_repr, a.partner, a.after["snapshots"]) for a in audits] == [
        ("partners.Customer", "North (acme)", acme, 2), ("partners.Customer", "South (acme)", acme, 2),
    ]


def test_the_last_snapshot_of_a_date_in_the_file_wins(acme, cli, write):
    """billing-rules 3.4, 6.11: several snapshots of one date in a file: the last one (in file order) is kept; the
    others count as unchanged. Row 7 is in a later batch than row 2."""
    path = write(
        "tenant-usage",
        "acme,north,2026-04-01,10,0,",
        "acme,north,2026-04-01,11,0,",
        "acme,south,2026-04-01,1,0,",
        "acme,south,2026-04-02,2,0,",
        "acme,north,2026-04-02,20,0,",
        "acme,north,2026-04-01,13,0,",
    )
    assert_imported(cli, "tenant-usage", path)
    assert [(c, d.day, users) for c, d, users, *_ in snapshots()] == [
        ("north", 1, 13), ("north", 2, 20), ("south", 1, 1), ("south", 2, 2),
    ]


def test_reimporting_a_usage_file_changes_nothing(acme, cli, write):
    """billing-rules 8.1: the same file again writes nothing (no snapshot touched, no audit row) and says so, even
    when a date appears twice, in two batches, with different values."""
    path = write("tenant-usage", *USAGE_GOOD, "acme,north,2026-04-01,14,1000000000,50")
    first = assert_imported(cli, "tenant-usage", path)
    assert UsageSnapshot.objects.count() == 4
    assert UsageSnapshot.objects.get(customer__slug="north", date=date(2026, 4, 1)).users_count == 14
    assert "imported 5 rows: 4 created, 0 updated, 1 unchanged" in first
    before = db_state()
    second = assert_imported(cli, "tenant-usage", path)
    assert "tenant-usage: imported 5 rows: 0 created, 0 updated, 5 unchanged" in second
    assert db_state() == before


def test_a_changed_snapshot_on_reimport_updates_it(acme, cli, write):
    """billing-rules 6.11: for usage the last snapshot of a date wins against history too: a re-import with a new
    value replaces the stored one (one update, audited for that customer only)."""
    assert_imported(cli, "tenant-usage", write("tenant-usage", *USAGE_GOOD))
    AuditLog.objects.all().delete()
    changed = [*USAGE_GOOD[:3], "acme,south,2026-04-02,9,500,7"]
    out = assert_imported(cli, "tenant-usage", write("tenant-usage", *changed))
    assert "imported 4 rows: 0 created, 1 updated, 3 unchanged" in out
    assert UsageSnapshot.objects.count() == 4
    assert UsageSnapshot.objects.get(customer__slug="south", date=date(2026, 4, 2)).users_count == 9
    audit = AuditLog.objects.get()
    assert (audit.action, audit.object_repr, audit.after["snapshots"]) == ("usage.import", "South (acme)", 1)


def test_usage_dry_run_writes_nothing(acme, cli, write):
    before = db_state()
    out = assert_imported(cli, "tenant-usage", write("tenant-usage", *USAGE_GOOD), "--dry-run")
    assert "tenant-usage: would import 4 rows: 4 created, 0 updated, 0 unchanged (dry run: nothing written)" in out
    assert db_state() == before


# --- tenant-events semantics -----------------------------------------------------------------------------------
def suspensions() -> list[tuple[str, datetime, datetime | None, date, date | None]]:
    return list(Suspension.objects.order_by("customer__slug", "suspended_at").values_list(
        "customer__slug", "suspended_at", "unsuspended_at", "first_full_day", "last_full_day"))


def test_events_become_suspensions_with_their_whole_days(acme, cli, write):
    """billing-rules 3.6, 6.8: suspending stops counting from the next whole day, unsuspending counts its day; each
    change is audited per customer."""
    out = assert_imported(cli, "tenant-events", write("tenant-events", *EVENTS_GOOD))
    assert "tenant-events: imported 4 rows: 4 created, 0 updated, 0 unchanged" in out
    assert suspensions() == [
        ("north", at("2026-04-01T09:00:00Z"), at("2026-04-05T09:00:00Z"), date(2026, 4, 2), date(2026, 4, 4)),
        ("south", at("2026-04-03T09:00:00Z"), at("2026-04-10T09:00:00Z"), date(2026, 4, 4), date(2026, 4, 9)),
    ]
    audits = AuditLog.objects.filter(action="suspension.import").order_by("object_repr")
    assert [(a.object_repr, a.partner, a.after["suspended"], a.after["unsuspended"]) for a in audits] == [
        ("North (acme)", acme, 1, 1), ("South (acme)", acme, 1, 1),
    ]


def test_events_merge_into_history_imported_earlier(acme, cli, write):
    """billing-rules 9.4: a second file adding the unsuspend closes the suspension the first file opened."""
    assert_imported(cli, "tenant-events", write("tenant-events", "acme,north,suspend,2026-04-01T09:00:00Z"))
    assert suspensions() == [("north", at("2026-04-01T09:00:00Z"), None, date(2026, 4, 2), None)]
    out = assert_imported(cli, "tenant-events", write("tenant-events", "acme,north,unsuspend,2026-04-05T09:00:00Z"))
    assert "imported 1 rows: 1 created, 0 updated, 0 unchanged" in out
    assert suspensions() == [
        ("north", at("2026-04-01T09:00:00Z"), at("2026-04-05T09:00:00Z"), date(2026, 4, 2), date(2026, 4, 4)),
    ]
    assert AuditLog.objects.filter(action="suspension.import").count() == 2
    latest = AuditLog.objects.filter(action="suspension.import").order_by("-id").first()
    assert (latest.after["suspended"], latest.after["unsuspended"]) == (0, 1)


def test_an_earlier_suspension_can_be_added_before_the_history(acme, cli, write):
    """billing-rules 9.4: merged by instant, not appended: a March suspension imported after April's."""
    assert_imported(cli, "tenant-events", write("tenant-events", *EVENTS_GOOD))
    assert_imported(cli, "tenant-events", write("tenant-events", "acme,north,unsuspend,2026-03-10T00:00:00Z",
                                                "acme,north,suspend,2026-03-01T00:00:00Z"))
    assert [(c, s.date(), u.date()) for c, s, u, *_ in suspensions()] == [
        ("north", date(2026, 3, 1), date(2026, 3, 10)),
        ("north", date(2026, 4, 1), date(2026, 4, 5)),
        ("south", date(2026, 4, 3), date(2026, 4, 10)),
    ]


def test_rows_out_of_order_are_applied_by_instant(acme, cli, write):
    """billing-rules 9.4: rows of an events file are applied in order of their instant, not of the file."""
    path = write(
        "tenant-events",
        "acme,north,unsuspend,2026-04-05T09:00:00Z",
        "acme,north,suspend,2026-04-20T00:00:00Z",
        "acme,north,suspend,2026-04-01T09:00:00Z",
        "acme,north,unsuspend,2026-04-25T00:00:00Z",
    )
    assert_imported(cli, "tenant-events", path)
    assert suspensions() == [
        ("north", at("2026-04-01T09:00:00Z"), at("2026-04-05T09:00:00Z"), date(2026, 4, 2), date(2026, 4, 4)),
        ("north", at("2026-04-20T00:00:00Z"), at("2026-04-25T00:00:00Z"), date(2026, 4, 20), date(2026, 4, 24)),
    ]


def test_exact_duplicate_events_are_no_ops(acme, cli, write):
    """billing-rules 9.3, 6.11: an exact duplicate event, in the file or already imported (whatever offset the
    instant is written with), is a no-op."""
    out = assert_imported(cli, "tenant-events", write("tenant-events", *EVENTS_GOOD, EVENTS_GOOD[0]))
    assert "imported 5 rows: 4 created, 0 updated, 1 unchanged" in out
    before = db_state()
    again = write("tenant-events", "acme,north,suspend,2026-04-01T11:00:00+02:00", EVENTS_GOOD[3])
    out = assert_imported(cli, "tenant-events", again)
    assert "imported 2 rows: 0 created, 0 updated, 2 unchanged" in out
    assert db_state() == before


def test_reimporting_an_events_file_changes_nothing(acme, cli, write):
    path = write("tenant-events", *EVENTS_GOOD, "acme,north,suspend,2026-05-01T00:00:00Z")
    assert_imported(cli, "tenant-events", path)
    before = db_state()
    out = assert_imported(cli, "tenant-events", path)
    assert "tenant-events: imported 5 rows: 0 created, 0 updated, 5 unchanged" in out
    assert db_state() == before


def test_events_dry_run_writes_nothing(acme, cli, write):
    before = db_state()
    out = assert_imported(cli, "tenant-events", write("tenant-events", *EVENTS_GOOD), "--dry-run")
    assert "tenant-events: would import 4 rows: 4 created, 0 updated, 0 unchanged (dry run: nothing written)" in out
    assert db_state() == before


# --- rmm-assets semantics --------------------------------------------------------------------------------------
def inventory(partner: str, as_of: str) -> tuple[str, ...]:
    return ("--partner", partner, "--as-of", as_of)


def presences() -> list[tuple[str, str, str, date, date | None]]:
    return list(AgentPresence.objects.order_by("agent__agent_id", "present_from").values_list(
        "agent__agent_id", "organization", "group", "present_from", "present_until"))


def in_force(day: date, partner: str = "acme") -> dict[str, tuple[str, str]]:
    """{agent_id: (organization, group)} of a partner's agents in the inventory in force on a date."""
    rows = AgentPresence.objects.filter(partner__slug=partner, present_from__lte=day).exclude(present_until__lt=day)
    places = [(p.agent.agent_id, (p.organization, p.group)) for p in rows.select_related("agent")]
    assert len(places) == len(dict(places)), "an agent is in two places on one date"
    return dict(places)


def test_first_inventory_is_present_from_its_as_of_date(acme, cli, write):
    """billing-rules 3.7, 6.7: a change takes effect on the date it was detected, never earlier."""
    out = assert_imported(cli, "rmm-assets", write("rmm-assets", *RMM_GOOD), *inventory("acme", "2026-04-10"))
    assert "rmm-assets: imported 4 rows: 4 created, 0 updated, 0 unchanged" in out
    assert presences() == [
        ("a1", "ACME", "Servers", date(2026, 4, 10), None),
        ("a2", "ACME", "Workstations", date(2026, 4, 10), None),
        ("a3", "ACME", "Workstations", date(2026, 4, 10), None),
        ("a4", "GLOBO", "", date(2026, 4, 10), None),
    ]
    assert in_force(date(2026, 4, 9)) == {}
    agent = RmmAgent.objects.get(agent_id="a1")
    assert (agent.partner, agent.machine_name, agent.os, agent.last_seen) == (
        acme, "srv-01", "Windows Server 2022", at("2026-03-31T22:00:00Z"))
    sync = InventorySync.objects.get()
    assert (sync.partner, sync.as_of, sync.agents, sync.added, sync.moved, sync.removed) == (
        acme, date(2026, 4, 10), 4, 4, 0, 0)
    audit = AuditLog.objects.get(action="inventory.apply")
    assert (audit.object_type, audit.object_id, audit.partner) == ("metering.InventorySync", str(sync.pk), acme)
    assert {k: audit.after[k] for k in ("as_of", "agents", "added", "moved", "removed")} == {
        "as_of": "2026-04-10", "agents": 4, "added": 4, "moved": 0, "removed": 0}


def test_absent_agents_are_gone_and_moved_agents_switch_on_the_as_of_date(acme, cli, write):
    """billing-rules 9.5, 3.7: in a later inventory an absent agent is present through the day before its as-of
    date; an agent moved to another group switches on the as-of date; a new one appears on it."""
    assert_imported(cli, "rmm-assets", write("rmm-assets", *RMM_GOOD), *inventory("acme", "2026-04-01"))
    later = write("rmm-assets", RMM_GOOD[0], "a2,ws-01,ACME,Servers,Windows 11,", RMM_GOOD[3],
                  "a5,srv-02,ACME,Servers,Linux,")
    out = assert_imported(cli, "rmm-assets", later, *inventory("acme", "2026-04-15"))
    # a5 added; a2 moved and a3 removed are the two updates; a1 and a4 unchanged
    assert "rmm-assets: imported 4 rows: 1 created, 2 updated, 2 unchanged" in out
    assert presences() == [
        ("a1", "ACME", "Servers", date(2026, 4, 1), None),
        ("a2", "ACME", "Workstations", date(2026, 4, 1), date(2026, 4, 14)),
        ("a2", "ACME", "Servers", date(2026, 4, 15), None),
        ("a3", "ACME", "Workstations", date(2026, 4, 1), date(2026, 4, 14)),
        ("a4", "GLOBO", "", date(2026, 4, 1), None),
        ("a5", "ACME", "Servers", date(2026, 4, 15), None),
    ]
    assert in_force(date(2026, 4, 14))["a2"] == ("ACME", "Workstations")
    assert in_force(date(2026, 4, 15))["a2"] == ("ACME", "Servers")
    assert "a3" in in_force(date(2026, 4, 14)) and "a3" not in in_force(date(2026, 4, 15))
    sync = InventorySync.objects.get(as_of=date(2026, 4, 15))
    assert (sync.agents, sync.added, sync.moved, sync.removed) == (4, 1, 1, 1)
    assert AuditLog.objects.filter(action="inventory.apply").count() == 2


def test_a_returning_agent_comes_back_on_its_as_of_date(acme, cli, write):
    """billing-rules 3.7: an agent gone from one inventory and back in a later one counts again from that date only."""
    assert_imported(cli, "rmm-assets", write("rmm-assets", *RMM_GOOD), *inventory("acme", "2026-04-01"))
    assert_imported(cli, "rmm-assets", write("rmm-assets", *RMM_GOOD[:3]), *inventory("acme", "2026-04-10"))
    assert_imported(cli, "rmm-assets", write("rmm-assets", *RMM_GOOD), *inventory("acme", "2026-04-20"))
    assert [(f, u) for a, _, _, f, u in presences() if a == "a4"] == [
        (date(2026, 4, 1), date(2026, 4, 9)), (date(2026, 4, 20), None),
    ]


def test_the_same_inventory_twice_changes_nothing(acme, cli, write):
    """billing-rules 8.1, 3.7: the same inventory again (same file, same date) writes nothing: no presence, no sync,
    no audit row."""
    path = write("rmm-assets", *RMM_GOOD)
    assert_imported(cli, "rmm-assets", path, *inventory("acme", "2026-04-01"))
    before = db_state()
    out = assert_imported(cli, "rmm-assets", path, *inventory("acme", "2026-04-01"))
    assert "rmm-assets: imported 4 rows: 0 created, 0 updated, 4 unchanged" in out
    assert db_state() == before


def test_the_same_agents_at_a_later_date_change_no_presence(acme, cli, write):
    """billing-rules 3.7: an unchanged inventory at a later date moves no agent (it records that the inventory
    was taken, so that an older one cannot follow it)."""
    path = write("rmm-assets", *RMM_GOOD)
    assert_imported(cli, "rmm-assets", path, *inventory("acme", "2026-04-01"))
    before = presences()
    out = assert_imported(cli, "rmm-assets", path, *inventory("acme", "2026-05-01"))
    assert "imported 4 rows: 0 created, 0 updated, 4 unchanged" in out
    assert presences() == before
    assert list(InventorySync.objects.order_by("as_of").values_list("as_of", flat=True)) == [
        date(2026, 4, 1), date(2026, 5, 1)]


def test_a_corrected_inventory_for_the_same_date_replaces_its_changes(acme, cli, write):
    """billing-rules 3.7: a corrected inventory for the latest date replaces that date's changes: each date is then
    in force as if only the correction had been imported."""
    assert_imported(cli, "rmm-assets", write("rmm-assets", *RMM_GOOD), *inventory("acme", "2026-04-01"))
    wrong = write("rmm-assets", RMM_GOOD[0], "a2,ws-01,ACME,Servers,Windows 11,", "a5,srv-02,ACME,Servers,Linux,")
    assert_imported(cli, "rmm-assets", wrong, *inventory("acme", "2026-04-15"))
    corrected = write("rmm-assets", *RMM_GOOD[:3], "a6,srv-03,ACME,Servers,Linux,")
    assert_imported(cli, "rmm-assets", corrected, *inventory("acme", "2026-04-15"))
    assert in_force(date(2026, 4, 14)) == {
        "a1": ("ACME", "Servers"), "a2": ("ACME", "Workstations"), "a3": ("ACME", "Workstations"),
        "a4": ("GLOBO", ""),
    }
    assert in_force(date(2026, 4, 15)) == {
        "a1": ("ACME", "Servers"), "a2": ("ACME", "Workstations"), "a3": ("ACME", "Workstations"),
        "a6": ("ACME", "Servers"),
    }
    # a3 never left and a5 never came: their presences are as if the wrong file had not been imported
    assert [(a, f, u) for a, _, _, f, u in presences() if a in ("a3", "a5")] == [("a3", date(2026, 4, 1), None)]
    assert [(a, f, u) for a, _, _, f, u in presences() if a == "a4"] == [("a4", date(2026, 4, 1), date(2026, 4, 14))]
    # the correction imported again changes nothing
    before = db_state()
    assert_imported(cli, "rmm-assets", corrected, *inventory("acme", "2026-04-15"))
    assert db_state() == before


def test_an_empty_inventory_removes_every_agent(acme, cli, write):
    """billing-rules 9.5, decision (u): a header-only rmm-assets file is a whole inventory with no agent: every
    agent is gone from its as-of date."""
    assert_imported(cli, "rmm-assets", write("rmm-assets", *RMM_GOOD), *inventory("acme", "2026-04-01"))
    out = assert_imported(cli, "rmm-assets", write("rmm-assets"), *inventory("acme", "2026-05-01"))
    assert "rmm-assets: imported 0 rows: 0 created, 4 updated, 0 unchanged" in out
    assert {u for *_, u in presences()} == {date(2026, 4, 30)}
    assert in_force(date(2026, 5, 1)) == {}
    sync = InventorySync.objects.get(as_of=date(2026, 5, 1))
    assert (sync.agents, sync.added, sync.moved, sync.removed) == (0, 0, 0, 4)


def test_inventories_are_per_partner(acme, cli, write):
    """billing-rules 9.5: --partner names whose inventory it is: another partner's agents are untouched, and the same
    agent_id at two partners is two agents."""
    assert_imported(cli, "rmm-assets", write("rmm-assets", *RMM_GOOD), *inventory("acme", "2026-04-01"))
    assert_imported(cli, "rmm-assets", write("rmm-assets", RMM_GOOD[0]), *inventory("globex", "2026-04-10"))
    assert RmmAgent.objects.filter(agent_id="a1").count() == 2
    assert len(in_force(date(2026, 4, 10))) == 4
    assert in_force(date(2026, 4, 10), "globex") == {"a1": ("ACME", "Servers")}
    assert AgentPresence.objects.filter(present_until__isnull=False).count() == 0


def test_extra_columns_of_an_rmm_export_are_accepted(acme, cli, write):
    """billing-rules 9.5, decision (u): RMM exports carry more columns than we read; they are ignored, in any order,
    and os and last_seen are optional."""
    path = write("rmm-assets", "A-1,ACME,,srv-01,10.0.0.1,online", "A-2,ACME,Servers,srv-02,10.0.0.2,offline",
                 header="Agent_ID,Organization,Group,Machine_Name,IP Address,Status")
    assert_imported(cli, "rmm-assets", path, *inventory("acme", "2026-04-01"))
    assert presences() == [
        ("A-1", "ACME", "", date(2026, 4, 1), None), ("A-2", "ACME", "Servers", date(2026, 4, 1), None),
    ]
    assert list(RmmAgent.objects.order_by("agent_id").values_list("machine_name", "os", "last_seen")) == [
        ("srv-01", "", None), ("srv-02", "", None),
    ]


def test_an_exact_duplicate_agent_row_is_a_no_op(acme, cli, write):
    path = write("rmm-assets", *RMM_GOOD, RMM_GOOD[0])
    out = assert_imported(cli, "rmm-assets", path, *inventory("acme", "2026-04-01"))
    assert "imported 5 rows: 4 created, 0 updated, 1 unchanged" in out
    assert AgentPresence.objects.count() == 4


def test_new_agent_details_update_the_agent_not_its_presence(acme, cli, write):
    """billing-rules 6.7: last_seen (and name, os) are informative: a change updates the agent and moves nothing.
    An agent both moved and renamed is one updated row of the file."""
    assert_imported(cli, "rmm-assets", write("rmm-assets", *RMM_GOOD), *inventory("acme", "2026-04-01"))
    path = write("rmm-assets", "a1,srv-01,ACME,Servers,Windows Server 2022,2026-04-14T22:00:00Z",
                 "a2,ws-01-renamed,ACME,Servers,Windows 11,", *RMM_GOOD[2:])
    out = assert_imported(cli, "rmm-assets", path, *inventory("acme", "2026-04-15"))
    assert "rmm-assets: imported 4 rows: 0 created, 2 updated, 2 unchanged" in out
    assert RmmAgent.objects.get(agent_id="a1").last_seen == at("2026-04-14T22:00:00Z")
    assert RmmAgent.objects.get(agent_id="a2").machine_name == "ws-01-renamed"
    assert [(f, u) for a, *_, f, u in presences() if a == "a1"] == [(date(2026, 4, 1), None)]
    assert [(g, f) for a, _, g, f, _ in presences() if a == "a2"] == [
        ("Workstations", date(2026, 4, 1)), ("Servers", date(2026, 4, 15))]


def test_rmm_dry_run_writes_nothing(acme, cli, write):
    """billing-rules 8.1: --dry-run applies the inventory inside the transaction and rolls it back."""
    assert_imported(cli, "rmm-assets", write("rmm-assets", *RMM_GOOD), *inventory("acme", "2026-04-01"))
    before = db_state()
    out = assert_imported(cli, "rmm-assets", write("rmm-assets", RMM_GOOD[0], "a5,srv-02,ACME,Servers,Linux,"),
                          *inventory("acme", "2026-04-15"), "--dry-run")
    assert "rmm-assets: would import 2 rows: 1 created, 3 updated, 1 unchanged (dry run: nothing written)" in out
    assert db_state() == before


@pytest.mark.django_db
def test_tenant_events_at_one_instant_apply_in_file_order(cli, csv_file):
    """billing-rules 9.4: file order breaks ties: unsuspend then suspend at one instant is valid, in that order."""

    CustomerFactory(partner=PartnerFactory(slug="acme"), slug="north")
    path = csv_file("ev.csv", """\
        partner,customer,action,at
        acme,north,suspend,2026-04-01T09:00:00Z
        acme,north,unsuspend,2026-04-10T00:00:00Z
        acme,north,suspend,2026-04-10T00:00:00Z
        acme,north,unsuspend,2026-04-20T12:00:00Z
    """)
    result = cli("import_csv", "tenant-events", str(path))
    assert result.status == 0, result.err
    days = sorted(Suspension.objects.values_list("first_full_day", "last_full_day"))
    assert [(str(a), str(b)) for a, b in days] == [("2026-04-02", "2026-04-09"), ("2026-04-10", "2026-04-19")]
    reordered = csv_file("ev2.csv", """\
        partner,customer,action,at
        acme,north,suspend,2026-05-01T09:00:00Z
        acme,north,suspend,2026-05-02T00:00:00Z
        acme,north,unsuspend,2026-05-02T00:00:00Z
    """)
    result = cli("import_csv", "tenant-events", str(reordered))
    assert result.status == 1
    assert "row 3: action: already suspended at 2026-05-02T00:00:00Z" in result.err


@pytest.mark.django_db
def test_a_later_tenant_events_file_keeps_the_suspensions_it_does_not_change(cli, csv_file):
    """Merging history keeps untouched suspensions as they were: same row, same source file."""

    CustomerFactory(partner=PartnerFactory(slug="acme"), slug="north")
    first = csv_file("first.csv", "partner,customer,action,at\n"
                                  "acme,north,suspend,2026-04-01T09:00:00Z\nacme,north,unsuspend,2026-04-05T09:00:00Z\n")
    assert cli("import_csv", "tenant-events", str(first)).status == 0
    old = Suspension.objects.get()
    later = csv_file("later.csv", "partner,customer,action,at\nacme,north,suspend,2026-06-01T09:00:00Z\n")
    assert cli("import_csv", "tenant-events", str(later)).status == 0
    kept = Suspension.objects.get(suspended_at=old.suspended_at)
    assert (kept.pk, kept.source) == (old.pk, old.source) and old.source.endswith("first.csv")
    assert Suspension.objects.get(unsuspended_at__isnull=True).source.endswith("later.csv")
