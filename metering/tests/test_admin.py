"""Usage data in the admin: snapshots, suspensions, RMM agents, presences and inventory syncs.

History is read-only (it changes only through the imports and metering.services, audited); the
tenant-usage and tenant-events Import buttons run the bulk engine; rmm-assets has no Import button
(it needs --partner and --as-of); lists cost a fixed number of queries whatever the rows.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from djmoney.money import Money
from import_export.formats.base_formats import CSV

from billing.core.actor import Actor
from metering.admin.usage import UsageSnapshotAdmin
from metering.models import AgentPresence, InventorySync, RmmAgent, Suspension, UsageSnapshot
from metering.selectors import licenses_on_day
from metering.services import AgentRow, inventory_apply
from partners.models import AuditLog, Method
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory, UserFactory
from tests.import_checks import admin_confirm, admin_import

pytestmark = pytest.mark.django_db

MODELS = ["usagesnapshot", "suspension", "rmmagent", "agentpresence", "inventorysync"]


def url(model, action="changelist", *args):
    return reverse(f"admin:metering_{model}_{action}", args=args)


@pytest.fixture
def clerk(client):
    user = UserFactory(username="clerk", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def agents(*rows) -> dict[str, AgentRow]:
    return {agent_id: AgentRow(agent_id, name, org, group) for agent_id, name, org, group in rows}


@pytest.fixture
def world():
    """A licenses partner (50 GB per license) with a storage-driven tenant and a tenant suspended
    mid-day on 2026-05-14, and two inventories: one agent added, one moved, one removed."""
    partner = PartnerFactory(slug="brightline", name="Brightline Data", currency="GBP")
    heavy = CustomerFactory(partner=partner, slug="northfield", name="Northfield Surveyors")
    bakery = CustomerFactory(partner=partner, slug="old-mill", name="Old Mill Bakery")
    ServiceFactory(partner=partner, code="archive", method=Method.LICENSES, unit_price=Money("4.00", "GBP"),
                   storage_per_license_gb=Decimal("50"), tiers="25:4.00;100:3.50;inf:3.00",
                   start_date=date(2026, 5, 1))
    UsageSnapshot.objects.create(customer=heavy, date=date(2026, 5, 20), users_count=6,
                                 storage_bytes=912_345_678_901, messages_count=64_000, source="may.csv")
    UsageSnapshot.objects.create(customer=bakery, date=date(2026, 5, 20), users_count=9,
                                 storage_bytes=95 * 10**9, source="may.csv")
    suspension = Suspension.objects.create(customer=bakery, suspended_at=datetime(2026, 5, 14, 16, 30, tzinfo=UTC))
    Suspension.objects.create(customer=heavy, suspended_at=datetime(2026, 5, 3, 10, 0, tzinfo=UTC),
                              unsuspended_at=datetime(2026, 5, 6, 9, 30, tzinfo=UTC))
    rmm = PartnerFactory(slug="keystone", name="Keystone Managed Services")
    CustomerFactory(partner=rmm, slug="acme", name="Acme Manufacturing", rmm_organization="Acme")
    actor = Actor(label="test")
    inventory_apply(partner=rmm, as_of=date(2026, 5, 1), actor=actor, source="may-01.csv", agents=agents(
        ("1", "ACME-WS-01", "Acme", "Workstations"), ("2", "ACME-WS-02", "Acme", "Workstations"),
        ("3", "ACME-DC-01", "Acme", "Servers"),
    ))
    inventory_apply(partner=rmm, as_of=date(2026, 5, 15), actor=actor, source="may-15.csv", agents=agents(
        ("1", "ACME-WS-01", "Acme", "Servers"), ("3", "ACME-DC-01", "Acme", "Servers"),
        ("4", "ACME-WS-03", "Acme", "Workstations"),
    ))
    return {"partner": partner, "heavy": heavy, "bakery": bakery, "suspension": suspension, "rmm": rmm}


# --- every page opens ---------------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_every_usage_changelist_opens(clerk, world, model):
    response = clerk.get(url(model))
    assert response.status_code == 200
    assert response.context["cl"].result_count > 0


@pytest.mark.parametrize(("model", "query"), [
    ("usagesnapshot", {"customer__partner__id__exact": "{partner}", "q": "northfield"}),
    ("usagesnapshot", {"date__gte": "2026-05-01", "date__lt": "2026-06-01"}),
    ("suspension", {"status": "open"}),
    ("suspension", {"status": "ended", "customer__partner__id__exact": "{partner}"}),
    ("rmmagent", {"status": "removed"}),
    ("rmmagent", {"status": "present", "q": "Acme"}),
    ("agentpresence", {"in_force": "today", "organization": "Acme", "group": "Servers"}),
    ("agentpresence", {"in_force": "2026-05-01"}),
    ("agentpresence", {"in_force": "ended"}),
    ("agentpresence", {"in_force": "not-a-date"}),
    ("inventorysync", {"q": "may-15"}),
])
def test_filters_and_searches_open(clerk, world, model, query):
    query = {key: value.format(partner=world["partner"].pk) for key, value in query.items()}
    response = clerk.get(url(model), query)
    assert response.status_code == 200
    assert "?e=1" not in response.get("Location", "")  # an unknown filter redirects with ?e=1


@pytest.mark.parametrize("model", MODELS)
def test_every_detail_page_opens_read_only(clerk, world, model):
    obj = {"usagesnapshot": UsageSnapshot, "suspension": Suspension, "rmmagent": RmmAgent,
           "agentpresence": AgentPresence, "inventorysync": InventorySync}[model].objects.first()
    response = clerk.get(url(model, "change", obj.pk))
    assert response.status_code == 200
    form = response.content.decode().split(f'id="{model}_form"')[1].split("</form>")[0]
    fields = [tag for tag in re.findall(r"<(?:input|select|textarea)[^>]*>", form) if 'type="hidden"' not in tag]
    assert fields == [] and 'name="_save"' not in form


# --- history stays history ----------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_usage_history_cannot_be_added_changed_or_deleted(clerk, world, model):
    model_class = {"usagesnapshot": UsageSnapshot, "suspension": Suspension, "rmmagent": RmmAgent,
                   "agentpresence": AgentPresence, "inventorysync": InventorySync}[model]
    obj = model_class.objects.first()
    before = model_class.objects.count()
    assert clerk.get(url(model, "add")).status_code == 403
    assert clerk.post(url(model, "add"), {}).status_code == 403
    assert clerk.post(url(model, "change", obj.pk), {}).status_code == 403
    assert clerk.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    listing = clerk.get(url(model)).content.decode()
    assert "delete_selected" not in listing
    assert url(model, "add") not in listing
    assert model_class.objects.count() == before


def test_rmm_inventories_have_no_import_button_and_say_why(clerk, world):
    for model in ("rmmagent", "agentpresence", "inventorysync"):
        page = clerk.get(url(model)).content.decode()
        assert "/import/" not in page
        assert "import_csv rmm-assets FILE --partner SLUG --as-of YYYY-MM-DD" in page


# --- what the lists show --------------------------------------------------------------------------
def test_snapshots_show_gigabytes_licenses_and_suspended_days(clerk, world):
    response = clerk.get(url("usagesnapshot"))
    page = response.content.decode()
    assert "912.35 GB" in page and "912,345,678,901 bytes" in page
    assert "64,000" in page
    rows = {row.customer.slug: row for row in response.context["cl"].result_list}
    admin_page = UsageSnapshotAdmin(UsageSnapshot, None)
    assert "19" in admin_page.licenses(rows["northfield"]) and "storage" in admin_page.licenses(rows["northfield"])
    assert rows["old-mill"].suspended_all_day and not rows["northfield"].suspended_all_day
    assert "all day" in admin_page.suspended(rows["old-mill"])
    assert ">0<" in admin_page.licenses(rows["old-mill"])


def test_the_list_counts_licenses_with_the_one_rule(clerk, world):
    """The list's licenses are metering.selectors.licenses_on_day's (billing-rules 3.6; the rule's own tests are
    in metering/tests/test_licenses_on_day.py), marked "storage" when storage decided them."""

    response = clerk.get(url("usagesnapshot"))
    admin_page = response.context["cl"].model_admin
    for row in response.context["cl"].result_list:
        if not row.licensed or row.suspended_all_day:
            continue
        count = licenses_on_day(row.users_count, row.storage_bytes, row.per_license_gb)
        shown = admin_page.licenses(row)
        assert f">{count}" in shown
        assert ("storage" in shown) == (count > row.users_count)


def test_suspensions_show_the_whole_days_suspended(clerk, world):
    response = clerk.get(url("suspension"))
    rows = {s.customer.slug: s for s in response.context["cl"].result_list}
    admin_page = response.context["cl"].model_admin
    assert "2026-05-04 → 2026-05-05" in admin_page.whole_days(rows["northfield"])
    assert "(2 days)" in admin_page.whole_days(rows["northfield"])
    assert "2026-05-15 → open" in admin_page.whole_days(rows["old-mill"])
    same_day = Suspension(customer=world["heavy"], suspended_at=datetime(2026, 6, 1, 9, 0, tzinfo=UTC),
                          unsuspended_at=datetime(2026, 6, 1, 17, 0, tzinfo=UTC)).set_days()
    assert "less than a whole day" in admin_page.whole_days(same_day)


def test_agents_show_where_they_are_and_removed_ones(clerk, world):
    response = clerk.get(url("rmmagent"))
    admin_page = response.context["cl"].model_admin
    rows = {a.machine_name: a for a in response.context["cl"].result_list}
    assert admin_page.place(rows["ACME-WS-01"]) == '<span style="white-space:nowrap">Acme / Servers</span>'
    assert rows["ACME-WS-01"].place_from == date(2026, 5, 15)
    assert "removed" in admin_page.place(rows["ACME-WS-02"]) and "until 2026-05-14" in admin_page.place(
        rows["ACME-WS-02"])
    removed = clerk.get(url("rmmagent"), {"status": "removed"}).context["cl"].result_list
    assert [a.machine_name for a in removed] == ["ACME-WS-02"]
    detail = clerk.get(url("rmmagent", "change", rows["ACME-WS-01"].pk)).content.decode()
    assert "Workstations" in detail and "Servers" in detail  # both places, from the inline


def test_presences_filter_by_the_day_in_force(clerk, world):
    def machines(query):
        cl = clerk.get(url("agentpresence"), query).context["cl"]
        return sorted(f"{p.agent.machine_name}:{p.group}" for p in cl.result_list)

    assert machines({"in_force": "2026-05-01"}) == ["ACME-DC-01:Servers", "ACME-WS-01:Workstations",
                                                    "ACME-WS-02:Workstations"]
    assert machines({"in_force": "today"}) == ["ACME-DC-01:Servers", "ACME-WS-01:Servers",
                                               "ACME-WS-03:Workstations"]
    assert machines({"in_force": "today", "group": "Workstations"}) == ["ACME-WS-03:Workstations"]
    assert machines({"in_force": "ended"}) == ["ACME-WS-01:Workstations", "ACME-WS-02:Workstations"]


def test_inventory_syncs_list_the_changes(clerk, world):
    rows = clerk.get(url("inventorysync")).context["cl"].result_list
    latest = rows[0]
    assert (latest.as_of, latest.agents, latest.added, latest.moved, latest.removed) == (
        date(2026, 5, 15), 3, 1, 1, 1)
    assert latest.source == "may-15.csv"


def test_usage_lists_cost_the_same_queries_for_more_rows(clerk, world):
    def queries(model):
        with CaptureQueriesContext(connection) as ctx:
            assert clerk.get(url(model)).status_code == 200
        return len(ctx.captured_queries)

    before = {m: queries(m) for m in MODELS}
    for day in range(1, 10):
        UsageSnapshot.objects.create(customer=world["heavy"], date=date(2026, 6, day), users_count=day,
                                     storage_bytes=day * 10**9)
    Suspension.objects.create(customer=world["heavy"], suspended_at=datetime(2026, 6, 2, 8, 0, tzinfo=UTC),
                              unsuspended_at=datetime(2026, 6, 4, 8, 0, tzinfo=UTC))
    inventory_apply(partner=world["rmm"], as_of=date(2026, 6, 1), actor=Actor(label="test"), agents=agents(
        *[(str(10 + n), f"ACME-WS-{10 + n}", "Acme", "Workstations") for n in range(8)],
    ))
    assert {m: queries(m) for m in MODELS} == before


# --- Import and Export run the bulk engine ------------------------------------------------------
def test_the_tenant_usage_import_page_shows_the_columns(clerk, world):
    response = clerk.get(url("usagesnapshot", "import"))
    assert response.status_code == 200
    assert "partner, customer, date, users_count, storage_bytes, messages_count" in response.content.decode()


def test_the_suspension_import_page_shows_the_tenant_event_columns(clerk, world):
    response = clerk.get(url("suspension", "import"))
    assert response.status_code == 200
    assert "partner, customer, action, at" in response.content.decode()


def upload(clerk, model, text):
    return admin_import(clerk, url(model, "import"), text, name="usage.csv")


def test_importing_usage_through_the_admin_checks_rows_and_audits(clerk, world):
    bad = ("partner,customer,date,users_count,storage_bytes\n"
           "brightline,northfield,2026-05-21,7,900000000000\n"
           "brightline,nobody,2026-05-21,7,900000000000\n")
    page = upload(clerk, "usagesnapshot", bad)
    assert page.context["job"].status == "refused"
    assert "row 3: customer: unknown customer &#x27;nobody&#x27;" in page.content.decode()
    assert not UsageSnapshot.objects.filter(date=date(2026, 5, 21)).exists()

    good = "partner,customer,date,users_count,storage_bytes\nbrightline,northfield,2026-05-21,7,900000000000\n"
    page = upload(clerk, "usagesnapshot", good)
    assert page.context["job"].status == "checked" and not UsageSnapshot.objects.filter(date=date(2026, 5, 21)).exists()
    page = admin_confirm(clerk, page)
    assert page.context["job"].status == "imported"
    assert UsageSnapshot.objects.get(customer=world["heavy"], date=date(2026, 5, 21)).users_count == 7
    entry = AuditLog.objects.get(action="usage.import")
    assert entry.actor.username == "clerk" and entry.partner == world["partner"]


def test_importing_tenant_events_through_the_admin_merges_the_history(clerk, world):
    text = "partner,customer,action,at\nbrightline,old-mill,unsuspend,2026-05-20T08:00:00Z\n"
    page = admin_confirm(clerk, upload(clerk, "suspension", text))
    assert page.context["job"].status == "imported"
    ended = Suspension.objects.get(customer=world["bakery"])
    assert (ended.first_full_day, ended.last_full_day) == (date(2026, 5, 15), date(2026, 5, 19))
    assert AuditLog.objects.filter(action="suspension.import").exists()


@pytest.mark.parametrize(("model", "resource", "columns"), [
    ("usagesnapshot", "tenantusageresource",
     ["partner", "customer", "date", "users_count", "storage_bytes", "messages_count"]),
    ("suspension", "suspensionresource", ["partner", "customer", "suspended_at", "unsuspended_at"]),
])
def test_exports_use_the_file_columns(clerk, world, model, resource, columns):
    formats = [f.__name__ for f in UsageSnapshotAdmin(UsageSnapshot, None).get_export_formats()]
    data = {"format": formats.index(CSV.__name__), "resource": "0", **{f"{resource}_{c}": "on" for c in columns}}
    response = clerk.post(url(model, "export"), data)
    assert response.status_code == 200
    lines = response.content.decode().lstrip("\ufeff").splitlines()
    assert lines[0] == ",".join(columns)
    assert len(lines) == 3


def test_a_view_only_clerk_sees_usage_but_cannot_import_it(client, world):
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_usagesnapshot",
                                                                         "view_suspension"]))
    client.force_login(viewer)
    assert client.get(url("usagesnapshot")).status_code == 200
    assert "/import/" not in client.get(url("usagesnapshot")).content.decode()
    assert client.get(url("usagesnapshot", "import")).status_code == 403
    assert client.get(url("suspension", "import")).status_code == 403
