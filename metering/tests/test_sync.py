"""RMM inventory syncs (seed bill-by-rmm-agent: the nightly job, "Get units now", notifications).

The sync records a run, fetches outside the inventory transaction, applies the whole inventory as of
its date (billing-rules 3.7) in one transaction, and emails each per_asset unit change once. Connectors are
exercised against the stub RMM on a real local socket (metering/tests/rmm_stub.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.contrib import admin
from django.contrib.admin.sites import AdminSite
from django.contrib.auth.models import Permission
from django.contrib.messages import constants as levels
from django.contrib.messages.storage.cookie import CookieStorage
from django.core import mail
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from djmoney.money import Money

import metering.sync
from billing.celery import app
from billing.core.actor import Actor
from metering import connectors
from metering.admin.rmm import MeteredServiceAdminMixin, get_units_now
from metering.models import (
    AgentPresence,
    InventorySync,
    RmmAgent,
    RmmIntegration,
    SyncRun,
    SyncStatus,
    UnitChangeNotice,
)
from metering.services import AgentRow, inventory_apply
from metering.sync import inventory_sync, sync_runs_abandoned, units_now
from metering.tasks import retry_delay, send_unit_change_notice_task, sync_inventories_task
from metering.tests.rmm_stub import agent
from partners.models import AuditLog, Method, Service
from partners.tests.factories import PartnerFactory, ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "keystone-token"
ACTOR = Actor(label="test")
MAY_1, MAY_10, MAY_11 = date(2026, 5, 1), date(2026, 5, 10), date(2026, 5, 11)
OPS = "ops@keystone.example; cfo@keystone.example"


def acme(n: int, start: int = 1, group: str = "WS") -> list[dict]:
    return [agent(f"acme-{i}", "ACME", group) for i in range(start, start + n)]


def beta(n: int) -> list[dict]:
    return [agent(f"beta-{i}", "BETA") for i in range(1, n + 1)]


def rmm_partner(rmm, slug: str = "keystone", token: str = TOKEN, **integration):
    """A partner whose integration reads the JSON feed of the stub RMM; the removal guard's share is off
    (these small inventories lose a quarter of their agents; metering/tests/test_sync_review.py tests it)."""
    partner = PartnerFactory(slug=slug, name=f"{slug.title()} MSP")
    integration = {"kind": "json", "removal_guard_percent": 100, **integration}
    RmmIntegration.objects.create(partner=partner, base_url=rmm.url, api_token=token, **integration)
    return partner


def per_asset(partner, code: str, rmm_filter: str = "", emails: str = "", **fields) -> Service:
    fields = {"start_date": date(2026, 3, 1), **fields}
    return ServiceFactory(partner=partner, code=code, name=code.title(), method=Method.PER_ASSET,
                          rmm_filter=rmm_filter, unit_price=Money("10.00", partner.currency),
                          notification_emails=emails, **fields)


def sync(partner, as_of: date = MAY_10, trigger: str = "manual") -> SyncRun:
    return inventory_sync(partner=partner, as_of=as_of, actor=ACTOR, trigger=trigger)


def imported(partner, as_of: date, rows: list[dict]) -> None:
    """An inventory recorded by the rmm-assets import (which notifies nobody)."""
    inventory_apply(partner=partner, as_of=as_of, actor=ACTOR, agents={
        r["agent_id"]: AgentRow(r["agent_id"], r["machine_name"], r["organization"], r["group"]) for r in rows})


def inventory_state(partner) -> tuple:
    return (
        sorted(AgentPresence.objects.filter(partner=partner).values_list(
            "agent__agent_id", "organization", "group", "present_from", "present_until")),
        sorted(RmmAgent.objects.filter(partner=partner).values_list("agent_id", "machine_name", "os", "last_seen")),
        InventorySync.objects.filter(partner=partner).count(),
    )


# --- the sync service ---------------------------------------------------------------------------
def test_sync_applies_the_whole_inventory_as_of_its_date(rmm):
    partner = rmm_partner(rmm)
    imported(partner, MAY_1, acme(3) + beta(1))
    rmm.account(TOKEN, acme(1) + acme(2, start=2, group="Servers") + acme(1, start=4) + beta(0))

    run = sync(partner)

    assert (run.status, run.error, run.agents_seen) == (SyncStatus.OK, "", 4)
    assert (run.added, run.moved, run.removed) == (1, 2, 1)  # acme-4 new; acme-2, -3 to Servers; beta-1 gone
    assert run.inventory == InventorySync.objects.get(partner=partner, as_of=MAY_10)
    assert run.inventory.source.startswith(f"sync #{run.pk}: {rmm.url}")
    assert run.finished_at >= run.started_at and run.source == rmm.url
    in_force = AgentPresence.objects.filter(partner=partner, present_until__isnull=True)
    assert sorted(in_force.values_list("agent__agent_id", "group", "present_from")) == [
        ("acme-1", "WS", MAY_1), ("acme-2", "Servers", MAY_10), ("acme-3", "Servers", MAY_10),
        ("acme-4", "WS", MAY_10)]
    assert AgentPresence.objects.get(agent__agent_id="beta-1").present_until == date(2026, 5, 9)
    assert AuditLog.objects.filter(action="inventory.apply", actor_label="test").count() == 2


def test_a_second_sync_the_same_day_with_the_same_agents_changes_nothing(rmm, committed):
    partner = rmm_partner(rmm)
    per_asset(partner, "agents", "ACME", emails=OPS)
    imported(partner, MAY_1, acme(2))
    rmm.account(TOKEN, acme(3) + beta(2))
    with committed():
        first = sync(partner)
    state, emails = inventory_state(partner), len(mail.outbox)
    with committed():
        second = sync(partner)
    assert first.status == second.status == SyncStatus.OK
    assert (second.added, second.moved, second.removed, second.inventory) == (0, 0, 0, None)
    assert inventory_state(partner) == state
    assert len(mail.outbox) == emails == 1
    assert UnitChangeNotice.objects.count() == 1


def test_a_unit_change_produces_exactly_one_email_also_when_the_sync_runs_twice(rmm, committed):
    """Seed: "The system will also notify you when this has happened if the notifications in the contract are
    defined" — once per change, to the service's notification emails, after commit."""
    partner = rmm_partner(rmm)
    agents = per_asset(partner, "agents", "ACME", emails=OPS)
    per_asset(partner, "beta", "BETA", emails="beta@keystone.example")  # its units do not change
    imported(partner, MAY_1, acme(3) + beta(2))
    rmm.account(TOKEN, acme(5) + beta(2))

    with committed():
        sync(partner)
    with committed():
        sync(partner)
    with time_machine.travel(datetime(2026, 5, 10, 2, 0, tzinfo=UTC), tick=False), committed():
        assert sync_inventories_task() == 1  # the nightly job finds the same inventory again

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@keystone.example", "cfo@keystone.example"]
    assert message.subject == "[Keystone MSP] Agents: RMM units 3 -> 5 from 2026-05-10"
    assert "from 3 to 5 (+2), effective 2026-05-10" in message.body
    notice = UnitChangeNotice.objects.get()
    assert (notice.service, notice.effective_date, notice.units_before, notice.units_after) == (agents, MAY_10, 3, 5)
    assert notice.emailed_at is not None

    rmm.account(TOKEN, acme(4) + beta(2))  # the next day one agent leaves: a new change, a new email
    with committed():
        sync(partner, as_of=MAY_11)
    assert [m.subject for m in mail.outbox][1:] == ["[Keystone MSP] Agents: RMM units 5 -> 4 from 2026-05-11"]


def test_same_day_corrections_are_told_and_a_change_back_is_told_again(rmm, committed):
    partner = rmm_partner(rmm)
    per_asset(partner, "agents", "ACME", emails=OPS)
    imported(partner, MAY_1, acme(3))
    for count in (5, 4, 5, 5):
        rmm.account(TOKEN, acme(count))
        with committed():
            sync(partner)
    assert [m.subject.rsplit(": ", 1)[1] for m in mail.outbox] == [
        "RMM units 3 -> 5 from 2026-05-10", "RMM units 5 -> 4 from 2026-05-10", "RMM units 4 -> 5 from 2026-05-10"]
    assert UnitChangeNotice.objects.count() == 2  # one row per (service, date, units after)


def test_notices_only_for_active_per_asset_services_and_emails_only_with_recipients(rmm, committed):
    partner = rmm_partner(rmm)
    quiet = per_asset(partner, "quiet", "ACME")  # no notification emails: recorded, never emailed
    per_asset(partner, "ended", "ACME", emails=OPS, end_date=date(2026, 4, 30))
    per_asset(partner, "later", "ACME", emails=OPS, start_date=date(2026, 6, 1))
    ServiceFactory(partner=partner, code="cmq", method=Method.CMQ, meter="assets", committed_quantity=1,
                   rmm_filter="ACME", notification_emails=OPS)
    imported(partner, MAY_1, acme(1))
    rmm.account(TOKEN, acme(2))
    with committed():
        sync(partner)
    assert mail.outbox == []
    notice = UnitChangeNotice.objects.get()
    assert (notice.service, notice.units_before, notice.units_after, notice.recipients) == (quiet, 1, 2, "")
    send_unit_change_notice_task(notice.pk)
    notice.refresh_from_db()
    assert notice.emailed_at is None and mail.outbox == []


def test_an_empty_inventory_is_held_while_agents_are_in_force(rmm):
    """An RMM answering "no agents" is far more often a fault than a partner losing every machine: the
    sync is held for review, whatever the integration's share (an empty rmm-assets import still records it
    on purpose)."""
    partner = rmm_partner(rmm)
    rmm.account(TOKEN, [])
    assert sync(partner, as_of=MAY_1).status == SyncStatus.OK  # nothing in force yet: fine
    imported(partner, date(2026, 5, 2), acme(2))
    state = inventory_state(partner)
    run = sync(partner)
    assert run.status == SyncStatus.HELD and not run.retryable
    assert run.review["reason"] == "it would remove every agent (2)"
    assert inventory_state(partner) == state


def test_runs_that_cannot_start(rmm):
    lonely = PartnerFactory(slug="lonely")
    run = sync(lonely)
    assert (run.status, run.integration) == (SyncStatus.FAILED, None)
    assert "lonely has no RMM integration" in run.error
    off = rmm_partner(rmm, slug="off", enabled=False)
    assert "is disabled" in sync(off).error
    partner = rmm_partner(rmm)
    rmm.account(TOKEN, acme(2))
    assert "in the future" in sync(partner, as_of=timezone.now().date() + timedelta(days=1)).error
    assert rmm.requests == []  # none of them reached the RMM
    assert set(SyncRun.objects.values_list("status", flat=True)) == {SyncStatus.FAILED}


def test_a_connector_bug_or_an_apply_error_is_a_failed_run_that_writes_nothing(rmm, monkeypatch):
    partner = rmm_partner(rmm)
    imported(partner, MAY_1, acme(2))
    state = inventory_state(partner)

    class Broken:
        def fetch_inventory(self, integration):
            raise RuntimeError("boom")

    monkeypatch.setitem(connectors.CONNECTORS, "json", Broken())
    run = sync(partner)
    assert (run.status, run.error, run.retryable) == (SyncStatus.FAILED, "the connector failed: RuntimeError: boom",
                                                      False)
    monkeypatch.undo()

    real_apply = metering.sync.inventory_apply

    def apply_then_fail(**kwargs):
        real_apply(**kwargs)  # written, then rolled back with the run's transaction
        raise ValueError("disk full")

    monkeypatch.setattr(metering.sync, "inventory_apply", apply_then_fail)
    rmm.account(TOKEN, acme(5) + beta(3))
    run = sync(partner)
    assert (run.status, run.error) == (SyncStatus.FAILED, "applying the inventory failed: ValueError: disk full")
    assert inventory_state(partner) == state


# --- the nightly job ----------------------------------------------------------------------------
def test_nightly_sync_fans_out_per_partner_and_one_failing_partner_does_not_stop_the_others(
        rmm, tmp_path, settings, monkeypatch, committed):
    settings.RMM_SYNC_RETRIES = 2

    class Broken:
        def fetch_inventory(self, integration):
            raise RuntimeError("bug")

    monkeypatch.setitem(connectors.CONNECTORS, "folder", Broken())
    rmm_partner(rmm, slug="crashing", kind="folder", folder_path=str(tmp_path))  # first in line
    rmm_partner(rmm, slug="good", token="good")
    rmm.account("good", acme(3))
    rmm_partner(rmm, slug="revoked", token="revoked")  # the RMM no longer knows the token: 401
    rmm_partner(rmm, slug="down", token="down")
    rmm.account("down", acme(3), always_status={1: 503})
    rmm_partner(rmm, slug="flaky", token="flaky")
    rmm.account("flaky", acme(2), status={1: [502]})  # fails once, then answers
    rmm_partner(rmm, slug="off", token="good", enabled=False)

    with time_machine.travel(datetime(2026, 5, 10, 2, 0, tzinfo=UTC), tick=False), committed():
        assert sync_inventories_task() == 5

    runs: dict[str, list] = {}
    for run in SyncRun.objects.order_by("pk").select_related("partner"):
        runs.setdefault(run.partner.slug, []).append((run.attempt, run.status, run.trigger, run.as_of))
    ok, failed = SyncStatus.OK, SyncStatus.FAILED
    assert runs == {
        "crashing": [(1, failed, "nightly", MAY_10)],  # not transient: no retry
        "good": [(1, ok, "nightly", MAY_10)],
        "revoked": [(1, failed, "nightly", MAY_10)],  # not transient: no retry
        "down": [(1, failed, "nightly", MAY_10), (2, failed, "nightly", MAY_10), (3, failed, "nightly", MAY_10)],
        "flaky": [(1, failed, "nightly", MAY_10), (2, ok, "nightly", MAY_10)],
    }
    assert AgentPresence.objects.filter(partner__slug="good").count() == 3
    assert AgentPresence.objects.filter(partner__slug="flaky").count() == 2
    assert not AgentPresence.objects.filter(partner__slug__in=["down", "revoked", "crashing"]).exists()


def test_retries_back_off_exponentially(settings):
    settings.RMM_SYNC_RETRY_BASE_SECONDS = 120
    assert [retry_delay(n) for n in range(4)] == [120, 240, 480, 960]


def test_the_nightly_job_sends_notices_whose_email_never_left():
    partner = PartnerFactory(slug="keystone", name="Keystone MSP")
    service = per_asset(partner, "agents", "ACME", emails=OPS)
    old = timezone.now() - timedelta(hours=1)
    stale = UnitChangeNotice.objects.create(service=service, effective_date=MAY_10, units_before=3, units_after=5,
                                            recipients="ops@keystone.example", created_at=old)
    UnitChangeNotice.objects.create(service=service, effective_date=MAY_11, units_before=5, units_after=6,
                                    recipients="", created_at=old)
    assert sync_inventories_task() == 0
    assert sync_inventories_task() == 0
    stale.refresh_from_db()
    assert stale.emailed_at is not None
    assert [m.to for m in mail.outbox] == [["ops@keystone.example"]]


def test_beat_runs_the_nightly_sync_at_two_utc():
    app.loader.import_default_modules()
    entry = PeriodicTask.objects.get(task="metering.tasks.sync_inventories_task")
    assert entry.enabled
    assert (entry.crontab.minute, entry.crontab.hour, str(entry.crontab.timezone)) == ("0", "2", "UTC")
    assert "metering.tasks.sync_inventories_task" in app.tasks
    assert "metering.tasks.sync_partner_inventory_task" in app.tasks


# --- "Get units now" ----------------------------------------------------------------------------
class UnitsServiceAdmin(MeteredServiceAdminMixin, admin.ModelAdmin):
    """A throwaway admin: the registered ServiceAdmin mixes MeteredServiceAdminMixin in the same way."""


def admin_request(user):
    request = RequestFactory().post("/admin/partners/service/")
    request.user = user
    request._messages = CookieStorage(request)
    return request


def test_get_units_now_syncs_each_partner_once_and_reports_the_units_in_force(rmm):
    keystone = rmm_partner(rmm)
    agents = per_asset(keystone, "agents", "ACME")
    everything = per_asset(keystone, "all")
    seats = ServiceFactory(partner=keystone, code="seats")
    imported(keystone, MAY_1, acme(2))
    rmm.account(TOKEN, acme(3) + beta(2))
    solo = rmm_partner(rmm, slug="solo", token="revoked")
    solo_agents = per_asset(solo, "solo-agents", "ACME")
    imported(solo, MAY_1, acme(1))

    model_admin = UnitsServiceAdmin(Service, AdminSite(name="units_test"))
    request = admin_request(UserFactory(username="clerk", is_staff=True, is_superuser=True))
    assert "get_units_now" in model_admin.get_actions(request)
    with time_machine.travel(datetime(2026, 5, 10, 15, 0, tzinfo=UTC), tick=False):
        get_units_now(model_admin, request, Service.objects.filter(
            pk__in=[agents.pk, everything.pk, seats.pk, solo_agents.pk]))

    assert [(m.level, m.message) for m in request._messages] == [
        (levels.WARNING, "Skipped (method not “Per RMM agent (advance + proration)”: no RMM units): seats"),
        (levels.SUCCESS, "Agents [agents]: 3 units in force on 2026-05-10 (was 2)"),
        (levels.SUCCESS, "All [all]: 5 units in force on 2026-05-10 (was 2)"),
        (levels.ERROR, "Solo-Agents [solo-agents]: 1 units in force on 2026-05-10 from the last inventory, as of "
                       f"2026-05-01; the RMM sync failed: {rmm.url}/api/v1/agents?page=1: authentication failed "
                       "(HTTP 401): check the API token and the integrator user's rights"),
    ]
    runs = SyncRun.objects.order_by("pk")
    assert [(r.partner.slug, r.status, r.trigger, r.as_of) for r in runs] == [
        ("keystone", SyncStatus.OK, "manual", MAY_10), ("solo", SyncStatus.FAILED, "manual", MAY_10)]
    assert runs[0].actor_label == "clerk (admin: Get units now)"


def test_get_units_now_is_offered_to_users_who_may_start_a_sync():
    model_admin = UnitsServiceAdmin(Service, AdminSite(name="units_test"))
    staff = UserFactory(username="viewer", is_staff=True)
    assert "get_units_now" not in model_admin.get_actions(admin_request(staff))
    staff.user_permissions.add(Permission.objects.get(codename="add_syncrun"))
    staff = type(staff).objects.get(pk=staff.pk)  # permissions are cached per user object
    assert "get_units_now" in model_admin.get_actions(admin_request(staff))


def test_units_now_as_a_service(rmm):
    partner = rmm_partner(rmm)
    agents = per_asset(partner, "agents", "ACME/WS")
    rmm.account(TOKEN, acme(2) + acme(1, start=3, group="Lab"))
    with time_machine.travel(datetime(2026, 5, 10, 15, 0, tzinfo=UTC), tick=False):
        [report] = units_now(services=[agents], actor=ACTOR)
    assert (report.service, report.day, report.units_before, report.units, report.run.status) == (
        agents, MAY_10, 0, 2, SyncStatus.OK)


# --- admin pages --------------------------------------------------------------------------------
@pytest.fixture
def clerk(client):
    client.force_login(UserFactory(username="clerk", is_staff=True, is_superuser=True))
    return client


def url(model: str, action: str = "changelist", *args) -> str:
    return reverse(f"admin:metering_{model}_{action}", args=args)


def form_data(integration_or_partner, **values) -> dict:
    data = {"kind": "json", "enabled": "on", "base_url": "https://vsa.example.com", "folder_path": "", "notes": "",
            "new_api_token": "", "username": "", "count_offline": "on", "removal_guard_percent": "20"}
    data["partner"] = integration_or_partner.pk
    data.update(values)
    return data


def test_the_api_token_is_write_only(clerk):
    partner = PartnerFactory(slug="keystone")
    response = clerk.post(url("rmmintegration", "add"), form_data(partner))
    assert "this RMM needs a secret" in response.content.decode()

    response = clerk.post(url("rmmintegration", "add"), form_data(partner, new_api_token="tok-111-secret"))
    assert response.status_code == 302
    integration = RmmIntegration.objects.get()
    assert integration.api_token == "tok-111-secret"

    page = clerk.get(url("rmmintegration", "change", integration.pk)).content.decode()
    assert "tok-111-secret" not in page
    assert "New secret" in page and "Write-only" in page
    assert "tok-111-secret" not in clerk.get(url("rmmintegration")).content.decode()

    change = url("rmmintegration", "change", integration.pk)
    assert clerk.post(change, form_data(partner, notes="kept")).status_code == 302  # blank: the token stays
    integration.refresh_from_db()
    assert (integration.api_token, integration.notes) == ("tok-111-secret", "kept")
    assert clerk.post(change, form_data(partner, new_api_token="tok-222-secret")).status_code == 302
    integration.refresh_from_db()
    assert integration.api_token == "tok-222-secret"
    response = clerk.post(change, form_data(partner, clear_api_token="on"))
    assert "this RMM needs a secret" in response.content.decode()
    assert clerk.post(change, form_data(partner, kind="folder", folder_path="/srv/rmm",
                                        clear_api_token="on")).status_code == 302
    integration.refresh_from_db()
    assert (integration.kind, integration.api_token) == ("folder", "")

    audit = AuditLog.objects.filter(action__startswith="rmm_integration.").order_by("pk")
    # a change of notes alone is not audited; the token's change is, by a fingerprint, never the token
    assert [a.action for a in audit] == ["rmm_integration.create", *["rmm_integration.update"] * 2]
    text = str([(a.before, a.after) for a in audit])
    assert "tok-111-secret" not in text and "tok-222-secret" not in text
    assert audit[0].after["api_token"].startswith("set (") and audit[2].after["api_token"] == "not set"
    assert audit[1].before["api_token"] != audit[1].after["api_token"]


def test_sync_pages_and_the_sync_now_action(clerk, rmm):
    partner = rmm_partner(rmm)
    per_asset(partner, "agents", "ACME")
    rmm.account(TOKEN, acme(2))
    integration = partner.rmm_integration
    response = clerk.post(url("rmmintegration"), {"action": "sync_now", "_selected_action": [integration.pk]},
                          follow=True)
    text = response.content.decode()
    assert "inventory as of" in text and "2 agents billed of 2 read, 2 added" in text
    rmm.account(TOKEN, [], raw={1: b"oops"})
    clerk.post(url("rmmintegration"), {"action": "sync_now", "_selected_action": [integration.pk]})
    ok, failed = SyncRun.objects.order_by("pk")
    assert (ok.status, failed.status) == (SyncStatus.OK, SyncStatus.FAILED)

    page = clerk.get(url("syncrun"), {"status__exact": "failed"}).content.decode()
    assert "not valid JSON" in page and "2 added" not in page
    assert clerk.get(url("syncrun", "change", ok.pk)).status_code == 200
    assert clerk.get(url("syncrun", "add")).status_code == 403
    page = clerk.get(url("rmmintegration")).content.decode()
    assert "failed" in page
    assert clerk.get(url("unitchangenotice")).status_code == 200
    assert clerk.get(url("unitchangenotice"), {"emailed": "none"}).status_code == 200
    notice = UnitChangeNotice.objects.get()
    assert "0 → 2 (+2)" in clerk.get(url("unitchangenotice")).content.decode()
    assert clerk.get(url("unitchangenotice", "change", notice.pk)).status_code == 200


def test_an_rmm_assets_import_that_changes_units_notifies_once(cli, csv_file, django_capture_on_commit_callbacks):
    """billing-rules 3.7 and decision (ai), notification_emails: a unit change told once, whether it arrived by sync
    or by import."""

    partner = PartnerFactory(slug="imp")
    ServiceFactory(partner=partner, code="endpoints", method=Method.PER_ASSET, rmm_filter="ACME",
                   unit_price=Money("10.00", "USD"), notification_emails="noc@imp.example",
                   start_date=date(2026, 1, 1))
    path = csv_file("inv.csv", "agent_id,machine_name,organization,group\na1,PC-1,ACME,\na2,PC-2,ACME,\n")
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            result = cli("import_csv", "rmm-assets", str(path), "--partner", "imp", "--as-of", "2026-03-02")
            assert result.status == 0, result.err
    assert UnitChangeNotice.objects.count() == 1
    assert [m.to for m in mail.outbox] == [["noc@imp.example"]]


def test_a_run_abandoned_by_its_process_is_marked_failed_by_the_nightly_job():
    """A sync whose worker died stays "running" only until the next nightly job (two hours at least)."""

    partner = PartnerFactory(slug="stuck")
    integration = RmmIntegration.objects.create(partner=partner, kind="folder", folder_path="/nonexistent")
    now = timezone.now()
    old = SyncRun.objects.create(partner=partner, integration=integration, as_of=now.date(), trigger="nightly",
                                 status=SyncStatus.RUNNING)
    SyncRun.objects.filter(pk=old.pk).update(started_at=now - timedelta(hours=3))
    fresh = SyncRun.objects.create(partner=partner, integration=integration, as_of=now.date(), trigger="manual",
                                   status=SyncStatus.RUNNING)
    assert sync_runs_abandoned(now=now) == 1
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.status == SyncStatus.FAILED and "abandoned" in old.error and old.finished_at == now
    assert fresh.status == SyncStatus.RUNNING
