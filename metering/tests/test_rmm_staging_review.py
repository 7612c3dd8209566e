"""Adversarial cases for the set-based (COPY) path of rmm-assets (metering.staging) against the row-by-row engine
(metering.imports.RmmAssetsImport, metering.services.inventory_apply), the reference: each file is imported both
ways from the same state and must give the same answer (the summary with its warnings, or the fault) and the same
agents, presences (their whole place: organization, group, reference, id and views), inventory syncs, audit rows and
unit change notices, in the order they were written (import-formats 5.8; billing-rules 3.7, 9.3). Cases the tests
of test_rmm_staging.py do not reach: the partner's RMM integration (its filter of the agents billed), presences an
RMM's API placed, the same agent twice in edge forms, agents moving between organizations written in other cases,
agents of another partner, customers matched by rmm_organization, re-added agents, several imports on one day,
late files, last_seen of extreme years, odd group/os text, header and extra-column edge forms, and text cut by a
COPY chunk boundary.

The clock stands at 2026-06-15 12:00 UTC (test_rmm_staging's `today` fixture).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from djmoney.money import Money

import billing.core.copy_staging as copy_staging
from metering.models import AgentPresence, InventorySync, RmmAgent, RmmIntegration, UnitChangeNotice
from metering.services import AgentRow, inventory_apply
from metering.tests.test_rmm_staging import (
    ACTOR,
    HEADER,
    MAY_10,
    MAY_11,
    MAY_12,
    agent,
    both,
    inventory,
    partner,
    tables,
    today,
    write,
)
from partners.models import AuditLog, Method
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: the rmm-assets staging path is PostgreSQL's (COPY); SQLite reads row by row")]
__all__ = ["partner", "today"]  # the fixtures: tide (per_asset services north, north-ws); the clock on 2026-06-15


# --- both ways, everything compared ----------------------------------------------------------------------------
def full_tables(partner) -> dict:
    """test_rmm_staging.tables, plus what it leaves out: each presence's whole place (org_ref, org_id, views: a
    change of any part is a move), the order the presences, syncs, audit rows and notices were written in, and
    every partner's agents and presences (another partner's must stay as they were)."""
    presences = AgentPresence.objects.order_by("pk")
    return {
        **tables(partner),
        "places": sorted(presences.values_list("agent__partner__slug", "agent__agent_id", "partner__slug",
                                               "organization", "group", "org_ref", "org_id", "views",
                                               "present_from", "present_until"), key=repr),
        "every presence in order": list(presences.values_list("agent__agent_id", "present_from", "present_until")),
        "every agent": sorted(RmmAgent.objects.values_list("partner__slug", "agent_id", "machine_name", "os",
                                                           "last_seen"), key=repr),
        "syncs in order": list(InventorySync.objects.order_by("pk").values_list(
            "partner__slug", "as_of", "agents", "added", "moved", "removed", "source")),
        "audit in order": [(a.action, a.actor_label, a.object_type, a.partner_id, json.dumps(a.after, sort_keys=True))
                           for a in AuditLog.objects.order_by("pk")],
        "notices in order": list(UnitChangeNotice.objects.order_by("pk").values_list(
            "service__code", "effective_date", "units_before", "units_after", "recipients", "emailed_at")),
    }


def compare(path, partner, as_of: date, **options):
    """The file imported by the engine (rolled back), then by run_import_file (kept: histories build on it): the
    same answer, warnings included, and the same tables, whole. Returns (the answer, whether the staging path took
    it)."""
    return both(path, partner, as_of, tables_of=full_tables, **options)


def ok(result) -> None:
    assert result[0] == "summary" and result[1].ok, result


def counts(result) -> tuple[int, int, int, int]:
    summary = result[1]
    return summary.rows, summary.created, summary.updated, summary.unchanged


def step(tmp_path, partner, rows, as_of, **options):
    """One inventory of `rows` both ways; it must be accepted."""
    result, staged = compare(write(tmp_path, inventory(rows)), partner, as_of, **options)
    ok(result)
    return result, staged


# --- the partner's RMM integration: which agents are billed ----------------------------------------------------
@pytest.mark.parametrize("only", ["North", "North/WS\nSouth/Lab", "view:Servers"], ids=["org", "groups", "view"])
def test_an_integration_filter_leaves_the_same_agents_out_both_ways(tmp_path, partner, only):
    """A partner whose RMM holds machines billed elsewhere has an integration with 'only agents of' a filter: an
    imported inventory leaves out the agents no line takes (a warning names each): the engine reads the file (a
    file's agents have no views: a view filter takes none of them)."""
    RmmIntegration.objects.create(partner=partner, kind="folder", folder_path="/srv/rmm/tide", inventory_filter=only)
    result, staged = compare(write(tmp_path, inventory([agent(1), agent(2, "South")])), partner, MAY_10)
    ok(result)
    assert result[1].warning_count >= 1
    assert not staged


def test_an_integration_that_bills_every_agent_changes_nothing(tmp_path, partner):
    """An integration without a filter (and its default rules: offline agents billed) leaves every agent of a plain
    file in: both ways the same, and the staging path takes the file."""
    RmmIntegration.objects.create(partner=partner, kind="folder", folder_path="/srv/rmm/tide", count_offline=False)
    result, staged = step(tmp_path, partner, [agent(1), agent(2, "South")], MAY_10)
    # no agent left out; the organization no customer names and no service bills is listed, both ways (decision (an))
    assert staged and [w.reason for w in result[1].warnings] == [
        "1 agent(s) in organization 'South' match no customer (not billed)"]


# --- presences an RMM's API placed (organization reference, id, views) ----------------------------------------
def api_history(partner, **place):
    """a1 placed by a sync on May 10 (with `place`: an org_ref, org_id or views), gone on May 11 (its presence
    closed May 10), a2 and a3 placed plainly throughout: no open presence carries an API part."""
    seen = datetime(2026, 5, 1, 8, tzinfo=UTC)  # as agent() writes it
    plain = {f"a{n}": AgentRow(f"a{n}", f"PC-{n}", "North", "WS", "Windows 11", seen) for n in (2, 3)}
    inventory_apply(partner=partner, as_of=MAY_10, actor=ACTOR, source="sync",
                    agents={"a1": AgentRow("a1", "PC-1", "North", "WS", "Windows 11", seen, **place), **plain})
    inventory_apply(partner=partner, as_of=MAY_11, actor=ACTOR, source="sync", agents=plain)


@pytest.mark.parametrize("place", [{"org_ref": "R1"}, {"org_id": "1001"}, {"views": ("Servers",)}],
                         ids=["org_ref", "org_id", "views"])
def test_a_correction_does_not_reopen_a_presence_of_another_place(tmp_path, partner, place):
    """a1 was placed by the RMM's API (with its organization's reference, id or a view) and left on May 11; a
    corrected May 11 file puts it back in North/WS without them: a move, not 'it never left' (its place differs
    from the presence closed on May 10). Both ways: a new presence from May 11. A partner with presences from the
    API is the engine's (services.with_known_places)."""
    api_history(partner, **place)
    _result, staged = step(tmp_path, partner, [agent(1), agent(2), agent(3)], MAY_11)
    assert not staged
    assert list(AgentPresence.objects.filter(agent__agent_id="a1").order_by("present_from").values_list(
        "present_from", "present_until")) == [(MAY_10, MAY_10), (MAY_11, None)]


def test_a_correction_reopens_a_plain_presence_closed_yesterday(tmp_path, partner):
    """The same history with a1 placed plainly: the corrected file puts it back where it was, as if it never left
    (one presence, open), both ways."""
    api_history(partner)
    result, staged = step(tmp_path, partner, [agent(1), agent(2), agent(3)], MAY_11)
    assert staged and counts(result) == (3, 1, 0, 2)
    assert AgentPresence.objects.get(agent__agent_id="a1").present_until is None


def test_a_presence_in_force_with_a_reference_and_an_end_sends_the_file_to_the_engine(tmp_path, partner):
    """A presence written by hand (as test_rmm_staging's hand-written ones): a1 in North/WS with the organization's
    reference R1 from May 1 through May 31, closed, so no open presence carries an API part. A May 11 file puts a1
    in North/WS without a reference: the engine reads it, and gives a1 the reference the file cannot say
    (services.with_known_places): the same place, nothing moved."""
    step(tmp_path, partner, [agent(2)], MAY_10)
    pc = RmmAgent.objects.create(partner=partner, agent_id="a1", machine_name="PC-1", os="Windows 11",
                                 last_seen=datetime(2026, 5, 1, 8, tzinfo=UTC))
    AgentPresence.objects.create(agent=pc, partner=partner, organization="North", group="WS", org_ref="R1",
                                 present_from=date(2026, 5, 1), present_until=date(2026, 5, 31))
    result, staged = step(tmp_path, partner, [agent(1), agent(2)], MAY_11)
    assert not staged and counts(result) == (2, 0, 0, 2)
    assert AgentPresence.objects.get(agent=pc).org_ref == "R1"


def test_an_open_presence_from_the_api_sends_the_file_to_the_engine(tmp_path, partner):
    """An agent the API placed in North with a reference, still in force: the file (the same agent, no reference)
    is read by the engine, a move."""
    inventory_apply(partner=partner, as_of=MAY_10, actor=ACTOR, source="sync",
                    agents={"a1": AgentRow("a1", "PC-1", "North", "WS", "Windows 11", org_ref="R1")})
    result, staged = step(tmp_path, partner, [agent(1)], MAY_11)
    assert not staged and counts(result) == (1, 0, 1, 0)


# --- the same agent twice ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("rows", "accepted"), [
    # identical after trimming, in other spacing and quoting
    ([agent(1), ("a1 ", " PC-1", "North ", " WS", "Windows 11 ", "2026-05-01T08:00:00Z")], True),
    # last_seen as the same instant, written three ways (an offset, decimals, a space)
    ([agent(1), agent(1, seen="2026-05-01T10:00:00+02:00"), agent(1, seen="2026-05-01 08:00:00.000000+00")], True),
    # last_seen blank the second time: other values
    ([agent(1), agent(1, seen="")], False),
    # last_seen one microsecond apart
    ([agent(1, seen="2026-05-01T08:00:00.000001Z"), agent(1)], False),
    # organization in another case, or group
    ([agent(1), agent(1, "north")], False),
    ([agent(1), agent(1, group="ws")], False),
    # the agent id in another case: two agents
    ([agent(1), ("A1", "PC-1", "North", "WS", "Windows 11", "2026-05-01T08:00:00Z")], True),
    # identical three times, interleaved with another
    ([agent(1), agent(2), agent(1), agent(2), agent(1)], True),
    # a text a Turkish capital would lower to the same: not the same text
    ([agent(1, "İstanbul"), agent(1, "i̇stanbul")], False),
], ids=["spaces", "last_seen-3-ways", "last_seen-blank", "microsecond", "org-case", "group-case", "id-case",
        "three-times", "turkish-i"])
def test_the_same_agent_twice_both_ways(tmp_path, partner, rows, accepted):
    """Identical rows of one agent count once (the later ones unchanged); other values are a row error naming
    the first row. The staging path takes only the accepted files, with the engine's counts."""
    step(tmp_path, partner, [agent(9)], MAY_10)
    result, staged = compare(write(tmp_path, inventory(rows)), partner, MAY_11)
    assert result[0] == "summary" and result[1].ok == accepted, result
    assert staged == accepted


# --- agents moving between organizations, removed and re-added, over dates -----------------------------------------
def test_agents_moving_between_organizations_written_in_other_cases_and_spacing(tmp_path, partner):
    """Organizations are matched exactly (trimmed): 'North' to 'north' is a move, ' North ' is no move; a group
    made blank is a move; an organization with a trailing no-break space trims the same both ways."""
    step(tmp_path, partner, [agent(1), agent(2), agent(3), agent(4), agent(5)], MAY_10)
    history = [
        (MAY_11, [agent(1, "north"), agent(2, " North "), agent(3, group=""), agent(4, "North\u00a0"),
                  agent(5, "South")]),
        (MAY_12, [agent(1, "North"), agent(2, "NORTH"), agent(3, group="WS"), agent(4, "South"), agent(5, "North")]),
        (MAY_12, [agent(1, "North"), agent(2, "North"), agent(3), agent(4, "North"), agent(5, "South")]),
    ]
    for as_of, rows in history:
        _result, staged = step(tmp_path, partner, rows, as_of)
        assert staged


def test_an_agent_removed_and_re_added_later_and_on_the_same_date(tmp_path, partner):
    """a1 leaves on May 11 and is back on May 12 (a new presence: the gap is kept); a2 leaves on May 12 and a
    correction of May 12 puts it back in another group (a move: not reopened), then in its own (reopened)."""
    history = [
        (MAY_10, [agent(1), agent(2), agent(3)]),
        (MAY_11, [agent(2), agent(3)]),
        (MAY_12, [agent(1), agent(3)]),
        (MAY_12, [agent(1), agent(2, group="Lab"), agent(3)]),
        (MAY_12, [agent(1), agent(2), agent(3)]),
        (MAY_12, [agent(1), agent(3)]),
        (date(2026, 5, 13), [agent(1), agent(2), agent(3)]),
    ]
    for as_of, rows in history:
        _result, staged = step(tmp_path, partner, rows, as_of)
        assert staged


def test_several_imports_on_one_day_and_late_files(tmp_path, partner):
    """Imports on one date (the same file again, corrections, an empty one, the first one again) and files for
    earlier dates (a back-filled night: the engine's), then the latest again: both ways alike throughout."""
    first = [agent(1), agent(2), agent(3, "South")]
    history = [
        (MAY_10, first, True), (MAY_10, first, True),
        (date(2026, 5, 14), [agent(1, "South"), agent(2)], True),
        (date(2026, 5, 14), [], True),
        (date(2026, 5, 14), first, True),
        (MAY_12, [agent(1), agent(4)], False),  # late: between May 10 and May 14
        (MAY_11, [agent(4)], False),
        (date(2026, 5, 14), [*first, agent(4)], True),
        (MAY_10, [], False),  # the first date again, now before the latest
    ]
    for as_of, rows, on_stage in history:
        _result, staged = step(tmp_path, partner, rows, as_of)
        assert staged == on_stage, (as_of, rows)


def test_a_first_inventory_after_an_empty_one(tmp_path, partner):
    """An empty inventory first (a sync, no agents), then agents the same day and the next: the staging path's
    'first inventory' branch (no agents, no presences) against the engine's."""
    for as_of, rows in ((MAY_10, []), (MAY_10, [agent(1)]), (MAY_10, []), (MAY_11, [agent(1), agent(2)])):
        step(tmp_path, partner, rows, as_of)


def test_an_agent_id_another_partner_uses(tmp_path, partner):
    """Another partner has agents a1 and a2 (with presences): tide's inventory of a1 and a2 makes tide's own, and
    leaves the other partner's as they were, moving or removing them never."""
    other = PartnerFactory(slug="reef")
    step(tmp_path, other, [agent(1, "North"), agent(2, "North")], MAY_10)
    step(tmp_path, partner, [agent(1, "South"), agent(2)], MAY_11)
    step(tmp_path, partner, [agent(1)], MAY_12)
    assert AgentPresence.objects.filter(partner=other, present_until__isnull=True).count() == 2


def test_dry_run_writes_nothing_either_way(tmp_path, partner):
    """--dry-run: the same counts, nothing written (no agents, sync, audit row or notice)."""
    step(tmp_path, partner, [agent(1)], MAY_10)
    result, staged = step(tmp_path, partner, [agent(1, "South"), agent(2)], MAY_11, dry_run=True)
    assert staged and result[1].dry_run and counts(result) == (2, 1, 1, 0)
    assert not InventorySync.objects.filter(as_of=MAY_11).exists()


# --- customers matched by rmm_organization: unit change notices ----------------------------------------------------
def test_customers_matched_by_organization_get_the_same_notices(tmp_path, partner):
    """Per-customer per_asset services (a customer's rmm_organization in another case, with spaces; a customer of
    another partner naming the same organization; an ended service): the units each inventory changes, and so the
    notices, are the same both ways, in the same order."""
    acme = CustomerFactory(partner=partner, slug="acme", rmm_organization="  acme, inc. ")
    zed = CustomerFactory(partner=partner, slug="zed", rmm_organization="Zed")
    stranger = CustomerFactory(partner=PartnerFactory(slug="reef"), slug="acme", rmm_organization="Acme, Inc.")
    for code, customer, end in (("acme-assets", acme, None), ("zed-assets", zed, date(2026, 5, 11)),
                                ("reef-assets", stranger, None)):
        ServiceFactory(partner=customer.partner, customer=customer, code=code, name=code, method=Method.PER_ASSET,
                       unit_price=Money("5.00", "USD"), notification_emails="ops@example.com",
                       start_date=date(2026, 3, 1), end_date=end)
    history = [
        (MAY_10, [agent(1, "Acme, Inc."), agent(2, "ACME, INC."), agent(3, "Zed"), agent(4, "North")]),
        (MAY_11, [agent(1, "Acme, Inc."), agent(3, "Zed", "Lab"), agent(4, "Zed")]),
        (MAY_12, [agent(1, "acme, inc."), agent(2, "Acme, Inc.", "Lab"), agent(4, "Zed")]),
        (MAY_12, [agent(4, "Acme, Inc.")]),
        (MAY_12, [agent(1, "Acme, Inc."), agent(2, "Acme, Inc.", "Lab"), agent(4, "Zed")]),
    ]
    for as_of, rows in history:
        _result, staged = step(tmp_path, partner, rows, as_of)
        assert staged
    assert UnitChangeNotice.objects.filter(service__code="acme-assets").exists()


# --- last_seen ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("seen", "on_stage"), [
    ("", True),
    ("2099-12-31T23:59:59Z", True),  # in the future: only informative
    ("9999-12-31T23:59:59Z", True),  # the last instant, written back as it is
    ("0001-01-01T00:00:00Z", True),  # the first instant
    ("0100-02-28T12:00:00Z", True),  # a year of three digits once written on four
    ("1582-10-10T00:00:00Z", True),  # a date the Julian calendar never had: proleptic both ways
    ("0999-12-31T23:59:59+01:00", False),
    ("1000-01-01T00:30:00+01:00", True),  # the year 999 in UTC
    ("2026-05-01T08:00:00-00:00", True),
    ("2026-05-01T08:00:00.999999+14:59", True),
    ("2026-05-01T08:00:00,5Z", False),  # a decimal comma
    ("20260501T080000Z", False),  # the basic form
    ("2026-W18-5T08:00:00Z", False),  # an ISO week date
    ("2026-05-01T08:00:00 Z", False),
    ("2026-05-01T08:00:00+0000", True),
    ("2026-05-01T08Z", False),  # the hour alone
], ids=lambda v: repr(v) if isinstance(v, str) else None)
def test_last_seen_of_any_year_and_form(tmp_path, partner, seen, on_stage):
    """A last_seen the engine reads or refuses (a row error), read alike; the staging path takes only the forms
    it reads exactly as the engine does."""
    step(tmp_path, partner, [agent(1), agent(2)], MAY_10)
    result, staged = compare(write(tmp_path, inventory([agent(1, seen=seen), agent(2)])), partner, MAY_11)
    assert staged == on_stage, result


def test_a_last_seen_changed_only_in_how_it_is_written_is_no_update(tmp_path, partner):
    """The same instant written again with an offset, decimals of zeros or a space: no new details (unchanged);
    one microsecond later: new details (updated), both ways."""
    step(tmp_path, partner, [agent(1), agent(2), agent(3)], MAY_10)
    result, staged = step(tmp_path, partner, [agent(1, seen="2026-05-01T09:00:00+01:00"),
                                              agent(2, seen="2026-05-01 08:00:00.000000+00"),
                                              agent(3, seen="2026-05-01T08:00:00.000001Z")], MAY_11)
    assert staged and counts(result) == (3, 0, 1, 2)


# --- group and os text ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("group, os", [
    ("/", "/"), ("WS/", "%"), ("North/WS/Lab", "_"), ("\\", "C:\\\\"), ("a\r\nb", "x\ny"), ("🖥" * 200, "é" * 200),
    ("g\u0307", "ﬁ"), ("N\u00a0W", "tab\tinside"), ('"', "it's"), ("NULL", "\\N"), ("\uffff", "\U0010ffff"),
], ids=lambda v: ascii(v)[:30])
def test_group_and_os_text_both_ways(tmp_path, partner, group, os):
    """Groups and OS names of any text (paths, LIKE's wildcards, backslashes, line breaks, 200 characters of 4 bytes,
    combining and ligature characters, inner whitespace, COPY's NULL spellings) are stored as the engine stores
    them."""
    step(tmp_path, partner, [agent(1)], MAY_10)
    _result, staged = step(tmp_path, partner, [agent(1, group=group, os=os), agent(2, group=group, os=os)], MAY_11)
    assert staged


# --- headers and extra columns ----------------------------------------------------------------------------------
@pytest.mark.parametrize("header, cells", [
    (["\u00a0Agent_ID\t", " MACHINE_NAME", "Organization ", "GROUP", "Os", "LAST_SEEN"], None),
    ([*HEADER, "", ""], ["x", ""]),  # two columns without a name
    ([*HEADER, "notes\nof the tech"], ['a "quoted"\nnote']),  # a header cell with a line break
    ([*HEADER, "notes\r\nof the tech"], ["x"]),  # a CRLF inside a header cell of a LF file
    ([*HEADER, "Agent ID"], ["other"]),  # a vendor's column of a similar name
    (["agent_id", "machine_name", "organization", "group"], None),
    ([*HEADER, "\\."], ["x"]),  # COPY's end marker as a header cell (unquoted, on a line of text)
], ids=["case-and-whitespace", "unnamed", "line-break", "crlf-in-header", "similar-name", "no-optional", "end-marker"])
def test_header_forms_both_ways(tmp_path, partner, header, cells):
    """Headers the engine reads (names in any case and spacing, unnamed or extra columns, a quoted line break in a
    header cell): the same import both ways."""
    rows = [agent(1), agent(2, "South")]
    if cells is not None:
        rows = [(*r, *cells) for r in rows]
    elif len(header) == 4:
        rows = [r[:4] for r in rows]
    step(tmp_path, partner, [agent(3)], MAY_10)
    compare(write(tmp_path, inventory(rows, header=header)), partner, MAY_11)


# --- text cut by a COPY chunk boundary --------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", range(2, 12))
def test_cells_cut_by_a_chunk_boundary(tmp_path, partner, monkeypatch, chunk):
    """Spaces, no-break spaces, quotes, CRLF and multi-byte characters falling on either side of a chunk boundary
    (chunks of 2 to 11 bytes): the same agents and places both ways."""
    monkeypatch.setattr(copy_staging, "CHUNK", chunk)
    rows = [("a1", "PC-1 ", " North", "WS", "Win", ""), ("a2", "Zürich\u00a0", "Acme, Inc.", "", " ", " "),
            ("a3", "PC", "North", " WS ", "🖥", "2026-05-01T08:00:00Z ")]
    step(tmp_path, partner, [agent(1, "South")], MAY_10)
    _result, staged = step(tmp_path, partner, rows, MAY_11)
    assert staged
    assert RmmAgent.objects.get(agent_id="a2").machine_name == "Zürich"


# --- long cells --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, on_stage", [
    ("x" * 200, True), ("x" * 201, False), ("🖥" * 200, True), ("🖥" * 201, False),
    ("  " + "x" * 200 + "  ", True),  # 200 once trimmed
    ("e\u0301" * 100, True),  # 200 code points, 100 characters as seen
], ids=["200", "201", "200-4-byte", "201-4-byte", "200-trimmed", "combining"])
@pytest.mark.parametrize("column", ["agent_id", "machine_name", "organization", "group", "os"])
def test_cells_of_200_characters_in_every_column(tmp_path, partner, text, on_stage, column):
    """The 200-character limit of each text column counts code points after trimming, both ways."""
    step(tmp_path, partner, [agent(9)], MAY_10)
    cells = dict(zip(HEADER, agent(1), strict=True)) | {column: text}
    result, staged = compare(write(tmp_path, inventory([tuple(cells.values()), agent(2)])), partner, MAY_11)
    assert staged == on_stage, result
    assert (result[0] == "summary" and result[1].ok) == on_stage


def test_the_days_after_are_the_same_whatever_path_wrote_the_first(tmp_path, partner):
    """A week of nightly files with agents coming, going, moving and renamed: each night both ways from the state
    the staging path left, so that a difference in what it wrote shows on a later night."""
    nights = [
        [agent(1), agent(2), agent(3, "South")],
        [agent(1, name="PC-1b"), agent(2, "South"), agent(4)],
        [agent(2, "South", "Lab"), agent(4), agent(5, "North", "")],
        [agent(1), agent(2, "South", "Lab"), agent(5, "North", "WS")],
        [],
        [agent(1), agent(2), agent(3), agent(4), agent(5)],
    ]
    for day, rows in enumerate(nights):
        _result, staged = step(tmp_path, partner, rows, MAY_10 + timedelta(days=day))
        assert staged
