"""The HTTP API (billing-rules 11) through Django's test client: every endpoint's JSON, 401 for a missing,
malformed or revoked key, 404 (never 403) for another partner's objects, 409 with a reason for a
seat rule, 422 for a bad body, and keys kept only as digests, out of the audit log."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from djmoney.money import Money

from billing.core.actor import Actor
from metering.models import Suspension, UsageSnapshot
from partners.api_keys import api_key_create, api_key_revoke
from partners.models import ApiKey, AuditLog, Method, SeatAssignment
from partners.tests.factories import (
    CustomerFactory,
    MemberFactory,
    PartnerFactory,
    SeatAssignmentFactory,
    ServiceFactory,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 15, 12, 0, tzinfo=UTC)
STAFF = Actor(label="test")


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def world():
    """Partner A (acme) and partner B (bolt), each with customers, services, seats, usage and a key."""
    acme = PartnerFactory(slug="acme", name="Acme MSP")
    alpha = CustomerFactory(partner=acme, slug="alpha", name="Alpha Ltd", seat_cap=2)
    bravo = CustomerFactory(partner=acme, slug="bravo", name="Bravo Inc")
    ServiceFactory(partner=acme, code="seats", name="Seats", method=Method.SEAT_DAYS,
                   unit_price=Money(Decimal("20.00"), "USD"), committed_quantity=3, start_date=date(2026, 1, 1))
    ServiceFactory(partner=acme, code="m365", name="M365", method=Method.LICENSES,
                   unit_price=Money(Decimal("5.00"), "USD"), storage_per_license_gb=Decimal("50"),
                   start_date=date(2026, 1, 1))
    SeatAssignmentFactory(member=MemberFactory(customer=alpha, name="ana"),
                          assigned_at=datetime(2026, 5, 1, 9, 0, tzinfo=UTC))
    UsageSnapshot.objects.create(customer=alpha, date=date(2026, 5, 10), users_count=4,
                                 storage_bytes=260 * 10**9, messages_count=1200)

    bolt = PartnerFactory(slug="bolt", name="Bolt MSP")
    zulu = CustomerFactory(partner=bolt, slug="zulu", name="Zulu Co")
    ServiceFactory(partner=bolt, code="bolt-seats", name="Bolt seats", method=Method.SEAT_DAYS,
                   unit_price=Money(Decimal("9.00"), "USD"), committed_quantity=10, start_date=date(2026, 1, 1))
    SeatAssignmentFactory(member=MemberFactory(customer=zulu, name="zed"),
                          assigned_at=datetime(2026, 5, 2, 9, 0, tzinfo=UTC))
    UsageSnapshot.objects.create(customer=zulu, date=date(2026, 5, 12), users_count=77,
                                 storage_bytes=1, messages_count=None)
    Suspension.objects.create(customer=zulu, suspended_at=datetime(2026, 5, 3, tzinfo=UTC))

    a_key_obj, a_key = api_key_create(partner=acme, actor=STAFF, name="acme ci")
    b_key_obj, b_key = api_key_create(partner=bolt, actor=STAFF, name="bolt ci")
    return {"acme": acme, "alpha": alpha, "bravo": bravo, "bolt": bolt, "zulu": zulu,
            "a_key": a_key, "a_key_obj": a_key_obj, "b_key": b_key, "b_key_obj": b_key_obj}


class Api:
    """The test client speaking JSON with a bearer key."""

    def __init__(self, client, key: str | None):
        self.client, self.key = client, key

    def _headers(self):
        return {"Authorization": f"Bearer {self.key}"} if self.key is not None else {}

    def get(self, path):
        return self.client.get(path, headers=self._headers())

    def post(self, path, body=None):
        data = json.dumps(body) if body is not None else ""
        return self.client.post(path, data, content_type="application/json", headers=self._headers())

    def delete(self, path):
        return self.client.delete(path, headers=self._headers())

    def call(self, method, path, body=None):
        if method == "post":
            return self.post(path, body)
        return getattr(self, method)(path)


@pytest.fixture
def api(client, world):
    return Api(client, world["a_key"])


# --- reseller: tenants, usage, suspensions ----------------------------------------------------------
def test_tenants_lists_the_partners_customers_with_latest_usage(api):
    response = api.get("/api/reseller/tenants")
    assert response.status_code == 200
    assert response.json() == [
        {"slug": "alpha", "name": "Alpha Ltd", "suspended": False,
         "latest_usage": {"date": "2026-05-10", "users_count": 4, "storage_bytes": 260_000_000_000,
                          "messages_count": 1200}},
        {"slug": "bravo", "name": "Bravo Inc", "suspended": False, "latest_usage": None},
    ]


def test_tenant_usage_with_licenses(api):
    response = api.get("/api/reseller/tenants/alpha/usage")
    assert response.status_code == 200
    # licenses = max(4 users, ceil(260 GB / 50 GB per license) = 6)
    assert response.json() == {"slug": "alpha", "date": "2026-05-10", "users_count": 4,
                               "storage_bytes": 260_000_000_000, "messages_count": 1200, "licenses": 6,
                               "suspended": False}
    assert api.get("/api/reseller/tenants/bravo/usage").json() == {
        "slug": "bravo", "date": None, "users_count": 0, "storage_bytes": 0, "messages_count": None,
        "licenses": 0, "suspended": False}


def test_suspend_and_unsuspend_now(api, world):
    response = api.post("/api/reseller/tenants/alpha/suspend")
    assert response.status_code == 200
    assert response.json() == {"slug": "alpha", "suspended": True, "suspended_at": "2026-05-15T12:00:00Z",
                               "unsuspended_at": None}
    suspension = Suspension.objects.get(customer=world["alpha"])
    assert suspension.first_full_day == date(2026, 5, 16)  # counting stops from the next whole day
    assert api.get("/api/reseller/tenants/alpha/usage").json()["suspended"] is True

    again = api.post("/api/reseller/tenants/alpha/suspend")
    assert again.status_code == 409
    assert again.json() == {"detail": "alpha is already suspended (since 2026-05-15T12:00:00Z)"}

    response = api.post("/api/reseller/tenants/alpha/unsuspend")
    assert response.status_code == 200
    assert response.json() == {"slug": "alpha", "suspended": False, "suspended_at": "2026-05-15T12:00:00Z",
                               "unsuspended_at": "2026-05-15T12:00:00Z"}
    assert api.post("/api/reseller/tenants/alpha/unsuspend").status_code == 409
    assert api.post("/api/reseller/tenants/alpha/unsuspend").json() == {"detail": "alpha is not suspended"}

    label = f"api key {world['a_key_obj'].prefix}"
    assert list(AuditLog.objects.filter(actor_label=label).order_by("id").values_list("action", flat=True)) == [
        "suspension.suspend", "suspension.unsuspend"]


def test_record_usage_snapshot_last_of_a_date_wins(api, world):
    body = {"date": "2026-05-14", "users_count": 7, "storage_bytes": 10, "messages_count": 3}
    created = api.post("/api/reseller/tenants/bravo/usage", body)
    assert created.status_code == 201
    assert created.json() == {"slug": "bravo", "date": "2026-05-14", "users_count": 7, "storage_bytes": 10,
                              "messages_count": 3, "outcome": "created"}
    same = api.post("/api/reseller/tenants/bravo/usage", body)
    assert (same.status_code, same.json()["outcome"]) == (200, "unchanged")
    updated = api.post("/api/reseller/tenants/bravo/usage", {**body, "users_count": 9})
    assert (updated.status_code, updated.json()["outcome"], updated.json()["users_count"]) == (200, "updated", 9)
    assert UsageSnapshot.objects.get(customer=world["bravo"], date=date(2026, 5, 14)).users_count == 9

    today = api.post("/api/reseller/tenants/bravo/usage", {"users_count": 1, "storage_bytes": 0})
    assert today.status_code == 201
    assert today.json() == {"slug": "bravo", "date": "2026-05-15", "users_count": 1, "storage_bytes": 0,
                            "messages_count": None, "outcome": "created"}
    audit = AuditLog.objects.filter(action="usage.record", actor_label=f"api key {world['a_key_obj'].prefix}")
    assert audit.count() == 3  # created, updated, created: the unchanged one wrote nothing


@pytest.mark.parametrize("body", [
    {"users_count": -1, "storage_bytes": 0},
    {"users_count": 1, "storage_bytes": -5},
    {"users_count": 1, "storage_bytes": 0, "messages_count": -1},
    {"users_count": 1, "storage_bytes": 0, "date": "2026-05-16"},  # the future (UTC)
    {"users_count": 1, "storage_bytes": 0, "date": "15/05/2026"},
    {"users_count": "1", "storage_bytes": 0},
    {"users_count": 1.5, "storage_bytes": 0},
    {"storage_bytes": 0},
    {"users_count": 2**40, "storage_bytes": 0},
])
def test_record_usage_bad_body_is_422(api, world, body):
    response = api.post("/api/reseller/tenants/alpha/usage", body)
    assert response.status_code == 422, response.content
    assert isinstance(response.json()["detail"], list)
    assert UsageSnapshot.objects.filter(customer=world["alpha"]).count() == 1


@pytest.mark.parametrize("path", ["/api/reseller/tenants/alpha/usage", "/api/partner/seats"])
def test_a_body_that_is_not_json_is_422(api, path):
    response = api.client.post(path, "{not json", content_type="application/json",
                               headers={"Authorization": f"Bearer {api.key}"})
    assert response.status_code == 422
    assert response.json() == {"detail": [{"loc": ["body"], "msg": "the body is not valid JSON",
                                           "type": "json_invalid"}]}


# --- forecast ---------------------------------------------------------------------------------------
def test_forecast_is_the_next_ci_from_the_data_so_far(api):
    response = api.get("/api/reseller/forecast")
    assert response.status_code == 200
    # June CI: May's seats (ana open to the month's end: 1 seat-month, under the minimum of 3) and May's
    # licenses (alpha 6 from 10 May on; bravo 0 gives no line). Money as strings.
    assert response.json() == {
        "month": "2026-06",
        "currency": "USD",
        "lines": [
            {"service": "seats", "customer": None, "line_type": "usage", "period": "2026-05",
             "quantity": "3.0000", "unit_price": "20.00", "amount": "60.00",
             "description": "Seats 2026-05: 31 seat-days, actual 1.0000, minimum 3.0000"},
            {"service": "m365", "customer": "alpha", "line_type": "usage", "period": "2026-05",
             "quantity": "6.0000", "unit_price": "5.00", "amount": "30.00",
             "description": "M365 2026-05: 6 licenses, Alpha Ltd"},
        ],
        "subtotal": "90.00", "tax_rate": "0", "tax": "0.00", "total": "90.00",
    }


# --- partner: seats and dashboard -------------------------------------------------------------------
def test_assign_and_unassign_a_seat(api, world):
    response = api.post("/api/partner/seats", {"customer": "bravo", "member": "bea"})
    assert response.status_code == 201
    assert response.json() == {"customer": "bravo", "member": "bea", "assigned_at": "2026-05-15T12:00:00Z",
                               "removed_at": None}
    seat = SeatAssignment.objects.get(member__name="bea")
    assert seat.source == "api"

    double = api.post("/api/partner/seats", {"customer": "bravo", "member": "bea"})
    assert double.status_code == 409
    assert double.json() == {"detail": "already holds an active seat in this customer"}

    removed = api.delete("/api/partner/seats/bravo/bea")
    assert removed.status_code == 204
    assert removed.content == b""
    seat.refresh_from_db()
    assert seat.removed_at == NOW
    again = api.delete("/api/partner/seats/bravo/bea")
    assert again.status_code == 404
    assert api.delete("/api/partner/seats/bravo/nobody").status_code == 404

    label = f"api key {world['a_key_obj'].prefix}"
    assert list(AuditLog.objects.filter(actor_label=label).order_by("id").values_list("action", flat=True)) == [
        "seat.assign", "seat.unassign"]


def test_seat_cap_breach_is_409_with_a_json_reason(api, world):
    assert api.post("/api/partner/seats", {"customer": "alpha", "member": "bob"}).status_code == 201
    response = api.post("/api/partner/seats", {"customer": "alpha", "member": "cat"})
    assert response.status_code == 409
    assert response.json() == {"detail": "seat cap of 2 reached (2 seats active); raise the cap first"}
    assert not SeatAssignment.objects.filter(member__name="cat").exists()


def test_commitment_breach_without_overage_is_409(api, world):
    assert api.post("/api/partner/seats", {"customer": "bravo", "member": "b1"}).status_code == 201
    assert api.post("/api/partner/seats", {"customer": "bravo", "member": "b2"}).status_code == 201
    response = api.post("/api/partner/seats", {"customer": "bravo", "member": "b3"})
    assert response.status_code == 409
    assert response.json()["detail"].startswith("commitment of 3 seats on seats reached")


@pytest.mark.parametrize("body", [
    {"customer": "alpha"},
    {"customer": "alpha", "member": "   "},
    {"customer": "alpha", "member": "bad\x00name"},
    {"customer": "alpha", "member": "x" * 201},
    {"customer": 5, "member": "bob"},
    [],
])
def test_seat_bad_body_is_422(api, body):
    response = api.post("/api/partner/seats", body)
    assert response.status_code == 422, response.content


def test_dashboard(api):
    response = api.get("/api/partner/dashboard")
    assert response.status_code == 200
    assert response.json() == {
        # 1 of 3 is 33%, a whole percent as everywhere (billing-rules decision (as))
        "committed": 3, "assigned": 1, "available": 2, "utilization": "0.33",
        "services": [{"service": "seats", "customer": None, "committed": 3, "assigned": 1, "available": 2,
                      "utilization": "0.33", "overage_enabled": False}],
    }


def test_dashboard_without_a_commitment_has_null_utilization(client, world):
    lone = PartnerFactory(slug="lone")
    _, key = api_key_create(partner=lone, actor=STAFF)
    assert Api(client, key).get("/api/partner/dashboard").json() == {
        "committed": 0, "assigned": 0, "available": 0, "utilization": None, "services": []}


# --- authentication ---------------------------------------------------------------------------------
ALL_ENDPOINTS = [
    ("get", "/api/reseller/tenants", None),
    ("get", "/api/reseller/tenants/alpha/usage", None),
    ("post", "/api/reseller/tenants/alpha/suspend", None),
    ("post", "/api/reseller/tenants/alpha/unsuspend", None),
    ("post", "/api/reseller/tenants/alpha/usage", {"users_count": 1, "storage_bytes": 1}),
    ("get", "/api/reseller/forecast", None),
    ("post", "/api/partner/seats", {"customer": "alpha", "member": "bob"}),
    ("delete", "/api/partner/seats/alpha/ana", None),
    ("get", "/api/partner/dashboard", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ALL_ENDPOINTS)
@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer nonsense", "Bearer bk_00000000_secret", "Basic YWxpY2U6c2VjcmV0", "KEY",
])
def test_without_a_valid_key_every_endpoint_is_401(client, world, method, path, body, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    kwargs = {"content_type": "application/json", "headers": headers}
    data = json.dumps(body) if body is not None else ""
    response = client.post(path, data, **kwargs) if method == "post" else getattr(client, method)(path, **kwargs)
    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}


def test_a_tampered_key_is_401(api, world):
    tampered = world["a_key"][:-2] + ("AA" if not world["a_key"].endswith("AA") else "BB")
    assert Api(api.client, tampered).get("/api/reseller/tenants").status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), ALL_ENDPOINTS)
def test_a_revoked_key_is_401_on_every_endpoint(client, world, method, path, body):
    api_key_revoke(api_key=world["a_key_obj"], actor=STAFF)
    response = Api(client, world["a_key"]).call(method, path, body)
    assert response.status_code == 401
    assert SeatAssignment.objects.active().filter(member__name="ana").exists()


def test_the_key_is_stored_only_as_a_digest_and_never_audited(api, world):
    key = world["a_key"]
    # writes through every write endpoint
    api.post("/api/reseller/tenants/alpha/suspend")
    api.post("/api/reseller/tenants/alpha/unsuspend")
    api.post("/api/reseller/tenants/alpha/usage", {"users_count": 1, "storage_bytes": 1})
    api.post("/api/partner/seats", {"customer": "bravo", "member": "bea"})
    api.delete("/api/partner/seats/bravo/bea")
    secret = key.split("_", 2)[2]
    for row in ApiKey.objects.values():
        assert key not in json.dumps(row, default=str)
        assert secret not in json.dumps(row, default=str)
    rows = list(AuditLog.objects.values())
    assert len(rows) >= 7  # two key creations and five API writes
    for row in rows:
        text = json.dumps(row, default=str)
        assert key not in text and secret not in text
    assert ApiKey.objects.get(pk=world["a_key_obj"].pk).last_used_at == NOW


# --- one partner's key never reaches another partner's objects ----------------------------------------
B_OBJECTS = [
    ("get", "/api/reseller/tenants/zulu/usage", None),
    ("post", "/api/reseller/tenants/zulu/suspend", None),
    ("post", "/api/reseller/tenants/zulu/unsuspend", None),
    ("post", "/api/reseller/tenants/zulu/usage", {"date": "2026-05-12", "users_count": 1, "storage_bytes": 1}),
    ("post", "/api/partner/seats", {"customer": "zulu", "member": "intruder"}),
    ("post", "/api/partner/seats", {"customer": "zulu", "member": "zed"}),
    ("delete", "/api/partner/seats/zulu/zed", None),
]


@pytest.mark.parametrize(("method", "path", "body"), B_OBJECTS)
def test_another_partners_objects_are_404_on_every_endpoint(api, world, method, path, body):
    response = api.call(method, path, body)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
    zulu = world["zulu"]
    # nothing of B changed: its suspension stays open, its snapshot and its seat are as they were
    assert Suspension.objects.get(customer=zulu).unsuspended_at is None
    assert Suspension.objects.filter(customer=zulu).count() == 1
    assert list(UsageSnapshot.objects.filter(customer=zulu).values_list("users_count", flat=True)) == [77]
    assert list(SeatAssignment.objects.active().filter(customer=zulu).values_list("member__name", flat=True)) == [
        "zed"]
    assert not AuditLog.objects.filter(partner=world["bolt"]).exclude(action="api_key.create").exists()


def test_the_same_objects_work_with_their_own_partners_key(client, world):
    b = Api(client, world["b_key"])
    assert b.get("/api/reseller/tenants/zulu/usage").json()["users_count"] == 77
    assert b.post("/api/reseller/tenants/zulu/unsuspend").status_code == 200
    assert b.delete("/api/partner/seats/zulu/zed").status_code == 204
    # and B's key cannot reach A's objects either
    assert b.get("/api/reseller/tenants/alpha/usage").status_code == 404
    assert b.delete("/api/partner/seats/alpha/ana").status_code == 404


def test_another_partners_data_never_appears_in_lists(api, world):
    tenants = api.get("/api/reseller/tenants").json()
    assert {t["slug"] for t in tenants} == {"alpha", "bravo"}
    forecast = api.get("/api/reseller/forecast").json()
    assert {line["service"] for line in forecast["lines"]} <= {"seats", "m365"}
    assert all(line["customer"] in (None, "alpha", "bravo") for line in forecast["lines"])
    dashboard = api.get("/api/partner/dashboard").json()
    assert dashboard["assigned"] == 1 and [s["service"] for s in dashboard["services"]] == ["seats"]
    for path in ("/api/reseller/tenants", "/api/reseller/forecast", "/api/partner/dashboard"):
        text = api.get(path).content.decode()
        assert "zulu" not in text and "bolt" not in text and "Zulu" not in text


def test_a_nul_byte_or_a_non_slug_in_a_customer_or_member_is_not_found(api):
    """PostgreSQL refuses NUL in text: such a slug or member name is simply not found (schemathesis
    found the 500), on every endpoint that looks a customer up."""
    for path in ("/api/reseller/tenants/al%00pha/usage", "/api/reseller/tenants/ALPHA/usage"):
        assert api.get(path).status_code == 404
    assert api.post("/api/reseller/tenants/al%00pha/suspend").status_code == 404
    assert api.post("/api/partner/seats", {"customer": "br\x00avo", "member": "bea"}).status_code == 404
    assert api.delete("/api/partner/seats/bravo/be%00a").status_code == 404


@pytest.mark.parametrize("path", ["/api/partner/seats/alpha/ana%0A", "/api/reseller/tenants/alpha%0A",
                                  "/api/no/such/endpoint"])
@pytest.mark.parametrize("method", ["get", "delete", "post"])
def test_a_path_no_route_matches_is_the_api_s_json_404(world, path, method):
    """A line break at the end of a slug matched no route and got Django's HTML page (found by schemathesis); a
    DELETE or a POST there got Django's CSRF 403 (found by schemathesis again): 404 whatever the method, with
    CSRF checked as a real server checks it."""
    response = Api(Client(enforce_csrf_checks=True), world["a_key"]).call(method, path, None)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json") and response.json() == {"detail": "Not Found"}
