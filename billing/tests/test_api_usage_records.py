"""/api/usage-records (billing-rules 3.12, 11.6): batches of call usage, call detail and meeting summary records,
checked by the import engine (all or nothing, each bad item named, exact duplicates no-ops), and the monthly
totals; another partner's customer is unknown to a batch and 404 to the totals."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import time_machine

from billing.core.actor import Actor
from metering.models import CallDetailRecord, CallUsageRecord, MeetingSummaryRecord
from partners.api_keys import api_key_create
from partners.models import AuditLog
from partners.tests.factories import CustomerFactory, PartnerFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 15, 12, 0, tzinfo=UTC)
CALL = {"customer": "alpha", "record_id": "r-1", "user": "201", "started_at": "2026-05-01T00:30:00+01:00",
        "duration_seconds": 61, "direction": "outbound", "destination": "International"}
LEG = {"customer": "alpha", "leg_id": "l-1", "call_id": "c-1", "from_number": "201", "to_number": "+4420",
       "started_at": "2026-05-02T10:00:00Z", "duration_seconds": 30, "direction": "outbound"}
MEETING = {"customer": "alpha", "meeting_id": "m-1", "host": "ana@alpha.example", "started_at": "2026-05-03T09:00:00Z",
           "duration_seconds": 1799, "participants": 4}


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def world():
    acme = PartnerFactory(slug="acme", name="Acme MSP")
    CustomerFactory(partner=acme, slug="alpha", name="Alpha Ltd")
    CustomerFactory(partner=acme, slug="bravo", name="Bravo Inc")
    CustomerFactory(partner=PartnerFactory(slug="bolt", name="Bolt MSP"), slug="zulu", name="Zulu Co")
    return acme


@pytest.fixture
def api(client, world):
    key = api_key_create(partner=world, actor=Actor(label="test"))[1]
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


def post(api, path, items):
    return api.post(f"/api/usage-records/{path}", json.dumps(items), content_type="application/json")


@pytest.mark.parametrize(("path", "item", "model"), [
    ("call-usage", CALL, CallUsageRecord), ("call-details", LEG, CallDetailRecord),
    ("meeting-summaries", MEETING, MeetingSummaryRecord)])
def test_a_batch_is_recorded_once_and_sent_again_changes_nothing(api, world, path, item, model):
    response = post(api, path, [item])
    assert (response.status_code, response.json()) == (201, {"records": 1, "created": 1, "unchanged": 0})
    again = post(api, path, [item, item])
    assert (again.status_code, again.json()) == (200, {"records": 2, "created": 0, "unchanged": 2})
    assert model.objects.filter(partner=world).count() == 1
    audit = AuditLog.objects.get(action="usage.import")
    assert audit.partner_id == world.pk and audit.actor_label.startswith("api key ")


def test_the_record_is_stored_as_an_import_stores_it(api, world):
    post(api, "call-usage", [CALL])
    record = CallUsageRecord.objects.get()
    assert (record.started_at, record.destination, record.source) == (
        datetime(2026, 4, 30, 23, 30, tzinfo=UTC), "international", "api")


def test_a_bad_item_refuses_the_batch_and_is_named(api, world):
    """All or nothing: each bad item's errors, located by its index and field; nothing written."""
    items = [CALL, {**CALL, "record_id": "r-2", "customer": "zulu"},
             {**CALL, "record_id": "r-3", "duration_seconds": -5, "direction": "up"},
             {**CALL, "record_id": "r-1", "duration_seconds": 62},
             {**CALL, "record_id": "r-4", "started_at": "2026-05-16T00:00:00Z"}]
    response = post(api, "call-usage", items)
    assert response.status_code == 422
    assert [(e["loc"], e["msg"]) for e in response.json()["detail"]] == [
        (["body", "items", 1, "customer"], "unknown customer 'zulu' of partner acme"),
        (["body", "items", 2, "direction"], "unknown direction 'up' (one of inbound, outbound, internal)"),
        (["body", "items", 2, "duration_seconds"], "must not be negative"),
        (["body", "items", 3, "record_id"],
         "'r-1' is already recorded with other values (duration_seconds 61 recorded, 62 here)"),
        (["body", "items", 4, "started_at"], "2026-05-16T00:00:00Z is in the future"),
    ]
    assert not CallUsageRecord.objects.exists()
    assert not AuditLog.objects.filter(action="usage.import").exists()


def test_a_text_that_is_not_utf8_or_a_line_break_never_fails_the_server(api, world):
    weird = [{**CALL, "user": "a\ud800b"}]
    assert post(api, "call-usage", weird).status_code == 422
    broken = post(api, "call-usage", [{**CALL, "user": "a\rb\nc", "record_id": "r\n9"}])
    assert broken.status_code == 201
    assert CallUsageRecord.objects.get().record_id == "r\n9"


def test_an_empty_batch_is_nothing_to_do(api, world):
    assert (post(api, "call-usage", []).status_code, post(api, "call-usage", []).json()["created"]) == (200, 0)


def test_totals_per_customer_and_month(api, world):
    """billing-rules 3.12: each call and meeting rounded up to the minute; a record in the UTC month of its start."""
    post(api, "call-usage", [CALL, {**CALL, "record_id": "r-2", "started_at": "2026-05-01T00:00:00Z",
                                    "duration_seconds": 120}])
    post(api, "meeting-summaries", [MEETING])
    may = api.get("/api/usage-records/totals?month=2026-05").json()
    assert may == {"month": "2026-05", "customers": [
        {"customer": "alpha", "meters": {"call_minutes:outbound:international": "2",
                                         "calls:outbound:international": "1", "meeting_minutes": "30",
                                         "meetings": "1", "participant_minutes": "120"}},
        {"customer": "bravo", "meters": {}}]}
    april = api.get("/api/usage-records/totals/alpha?month=2026-04").json()
    assert april["customers"] == [{"customer": "alpha", "meters": {"call_minutes:outbound:international": "2",
                                                                   "calls:outbound:international": "1"}}]
    assert api.get("/api/usage-records/totals/alpha").json()["month"] == "2026-05"  # this month by default
    assert api.get("/api/usage-records/totals?month=May").status_code == 422


def test_another_partners_customer_is_404_to_the_totals_and_unknown_to_a_batch(api, world):
    assert api.get("/api/usage-records/totals/zulu?month=2026-05").status_code == 404
    response = post(api, "meeting-summaries", [{**MEETING, "customer": "zulu"}])
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "unknown customer 'zulu' of partner acme"
    assert not MeetingSummaryRecord.objects.exists()


def test_the_same_record_id_of_two_partners_is_two_records(api, world, client):
    """A record's key is its id within the partner."""
    post(api, "call-usage", [CALL])
    other = PartnerFactory(slug="crux")
    CustomerFactory(partner=other, slug="alpha")
    key = api_key_create(partner=other, actor=Actor(label="test"))[1]
    response = client.post("/api/usage-records/call-usage", json.dumps([CALL]), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 201
    assert CallUsageRecord.objects.count() == 2


def test_without_a_key_it_is_401(client, world):
    assert client.get("/api/usage-records/totals").status_code == 401
    assert client.post("/api/usage-records/call-usage", "[]", content_type="application/json").status_code == 401
