"""A review of the HTTP API as an outside integrator and an attacker would do it (billing-rules 11,
docs/security.md). Each test of a finding was an `xfail(strict=True)` until the bug was fixed; the tests
under "what was checked and found right" pin what was right from the start."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest
import time_machine
from django.test import Client
from djmoney.money import Money

import metering.usage_records as usage_records
from billing.api import api as ninja_api
from billing.core.actor import Actor
from metering.models import Suspension, UsageSnapshot
from partners.api_keys import api_key_create, api_key_revoke
from partners.models import Method, SeatAssignment
from partners.tests.factories import (
    CustomerFactory,
    MemberFactory,
    PartnerFactory,
    PartnerUserFactory,
    SeatAssignmentFactory,
    ServiceFactory,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 15, 12, 0, tzinfo=UTC)
STAFF = Actor(label="api review")


@pytest.fixture
def world():
    """Partner A (acme: alpha, bravo) and partner B (bolt: zulu), each with a seat_days service and a key."""
    with time_machine.travel(NOW, tick=False):
        acme = PartnerFactory(slug="acme", name="Acme MSP")
        alpha = CustomerFactory(partner=acme, slug="alpha", name="Alpha Ltd", seat_cap=2)
        bravo = CustomerFactory(partner=acme, slug="bravo", name="Bravo Inc")
        ServiceFactory(partner=acme, code="seats", name="Seats", method=Method.SEAT_DAYS,
                       unit_price=Money(Decimal("20.00"), "USD"), committed_quantity=10, start_date=date(2026, 1, 1))
        ServiceFactory(partner=acme, code="m365", name="M365", method=Method.LICENSES,
                       unit_price=Money(Decimal("5.125"), "USD"), storage_per_license_gb=Decimal("50"),
                       start_date=date(2026, 1, 1))
        SeatAssignmentFactory(member=MemberFactory(customer=alpha, name="ana"),
                              assigned_at=datetime(2026, 5, 1, 9, 0, tzinfo=UTC))
        UsageSnapshot.objects.create(customer=alpha, date=date(2026, 5, 10), users_count=3,
                                     storage_bytes=260 * 10**9, messages_count=12)
        bolt = PartnerFactory(slug="bolt", name="Bolt MSP")
        zulu = CustomerFactory(partner=bolt, slug="zulu", name="Zulu Co")
        a_obj, a_key = api_key_create(partner=acme, actor=STAFF, name="acme")
        b_obj, b_key = api_key_create(partner=bolt, actor=STAFF, name="bolt")
    return {"acme": acme, "alpha": alpha, "bravo": bravo, "bolt": bolt, "zulu": zulu,
            "a_key": a_key, "a_obj": a_obj, "b_key": b_key, "b_obj": b_obj}


@pytest.fixture
def frozen(world):
    with time_machine.travel(NOW, tick=False):
        yield


def bearer(key: str, **extra) -> dict:
    return {"Authorization": f"Bearer {key}", **extra}


def post(client, path, body, key, **headers):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(path, data, content_type="application/json", headers=bearer(key, **headers))


# --- 1. a batch of usage records sent again while the first is still running: 500 --------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_usage_record_batch_sent_again_while_the_first_runs_is_not_a_500(live_server, monkeypatch):
    """billing-rules 11.6: a batch sent again (a retry after a client timeout) is 200 'unchanged'. A client that
    times out retries while its first request is still being written: the retry must not be a 500."""
    acme = PartnerFactory(slug="acme")
    CustomerFactory(partner=acme, slug="alpha")
    _, key = api_key_create(partner=acme, actor=STAFF)
    real_insert = usage_records.insert_rows

    def slow_insert(*args, **kwargs):  # the first request is still writing when the retry arrives
        time.sleep(1.0)
        return real_insert(*args, **kwargs)

    monkeypatch.setattr(usage_records, "insert_rows", slow_insert)
    batch = [{"customer": "alpha", "started_at": "2026-05-01T10:00:00Z", "duration_seconds": 60,
              "meeting_id": f"meeting-{n}", "host": "host", "participants": 2} for n in range(20)]
    barrier = threading.Barrier(2)
    answers = [None, None]

    def send(i):
        barrier.wait(timeout=30)
        if i:
            time.sleep(0.3)  # the retry: shortly after the first
        with httpx.Client(base_url=live_server.url, timeout=60) as http:
            answers[i] = http.post("/api/usage-records/meeting-summaries", json=batch, headers=bearer(key))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200, 201], [(a.status_code, a.text[:200]) for a in answers]
    assert all(a.headers["content-type"].startswith("application/json") for a in answers)


# --- 2. the documented batch size is refused ------------------------------------------------------------------
def test_a_batch_of_the_documented_maximum_of_call_details_is_accepted(world, frozen, settings):
    """billing-rules 11.6: 'a JSON array of records (at most 10,000)'. Call legs with ids as vendors give them
    (UUIDs) and E.164 numbers, sent compact: 3.2 MB."""
    settings.IMPORT_BATCH_SIZE = 2000
    rows = [{"customer": "alpha", "started_at": "2026-05-03T14:22:05Z", "duration_seconds": 187,
             "leg_id": str(uuid.uuid4()), "call_id": str(uuid.uuid4()), "user": "Jane Smith (ext 2041)",
             "from_number": "+14155550123", "to_number": "+442071234567", "direction": "outbound",
             "destination": "international"} for _ in range(10_000)]
    body = json.dumps(rows, separators=(",", ":"))
    response = post(Client(), "/api/usage-records/call-details", body, world["a_key"])
    assert response.status_code == 201, response.content[:200]
    assert response.json()["created"] == 10_000


# --- 3. a revoked key still gets answers through Idempotency-Key replays --------------------------------------
def test_a_revoked_key_is_401_even_when_it_repeats_an_idempotency_key(world, frozen):
    """billing-rules 11.1: 'a revoked key stops working for good'; 11.2: 401 for a revoked key."""
    client = Client()
    first = post(client, "/api/partner/seats", {"customer": "bravo", "member": "bea"}, world["a_key"],
                 **{"Idempotency-Key": "retry-1"})
    assert first.status_code == 201
    api_key_revoke(api_key=world["a_obj"], actor=STAFF)
    assert client.get("/api/partner/dashboard", headers=bearer(world["a_key"])).status_code == 401
    again = post(client, "/api/partner/seats", {"customer": "bravo", "member": "bea"}, world["a_key"],
                 **{"Idempotency-Key": "retry-1"})
    assert again.status_code == 401, (again.status_code, again.content)


# --- 4. an Idempotency-Key reused for another request ----------------------------------------------------------
def test_an_idempotency_key_reused_on_another_path_is_422(world, frozen):
    """docs/security.md: 'a key reused for another request is 422' (as Stripe's API)."""
    client = Client()
    first = post(client, "/api/reseller/tenants/alpha/suspend", "", world["a_key"], **{"Idempotency-Key": "K-1"})
    assert first.status_code == 200
    other = post(client, "/api/reseller/tenants/bravo/suspend", "", world["a_key"], **{"Idempotency-Key": "K-1"})
    assert other.status_code == 422, (other.status_code, other.content)
    assert not Suspension.objects.filter(customer=world["bravo"]).exists()


def test_a_replayed_answer_never_stands_for_another_members_delete(world, frozen):
    """A 204 must mean the seat was ended (billing-rules 11.4); a replay may only answer the same request."""
    client = Client()
    first_name, second_name = "p" * 190 + "A", "p" * 190 + "B"
    for name in (first_name, second_name):
        assert post(client, "/api/partner/seats", {"customer": "bravo", "member": name}, world["a_key"]).status_code \
            == 201
    headers = bearer(world["a_key"], **{"Idempotency-Key": "del-1"})
    assert client.delete(f"/api/partner/seats/bravo/{first_name}", headers=headers).status_code == 204
    second = client.delete(f"/api/partner/seats/bravo/{second_name}", headers=headers)
    still_active = SeatAssignment.objects.active().filter(member__name=second_name).exists()
    assert not (second.status_code == 204 and still_active), "204 answered, but the seat was not ended"


# --- 5. a far month in the usage totals: 500 --------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/usage-records/totals?month=9999-12",
                                  "/api/usage-records/totals/alpha?month=9999-12"])
def test_the_last_month_of_the_calendar_in_usage_totals_is_not_a_500(world, frozen, path):
    """billing-rules 11.2/11.6: a month is YYYY-MM; 9999-12 passes the API's own check, so it is 200 (nothing
    recorded) or a 422, never a 500."""
    response = Client(raise_request_exception=False).get(path, headers=bearer(world["a_key"]))
    assert response.status_code in (200, 422), response.status_code
    assert response["Content-Type"].startswith("application/json")


# --- 6. a wrong method is an HTML/text answer ----------------------------------------------------------------
@pytest.mark.parametrize(("method", "path"), [("put", "/api/partner/seats"),
                                              ("get", "/api/reseller/tenants/alpha/suspend"),
                                              ("post", "/api/partner/dashboard")])
def test_a_wrong_method_is_a_json_error(world, frozen, method, path):
    """billing-rules 11.2: 'Errors are JSON: {"detail": "reason"}'."""
    client = Client()
    headers = bearer(world["a_key"])
    if method == "get":
        response = client.get(path, headers=headers)
    else:
        response = getattr(client, method)(path, "{}", content_type="application/json", headers=headers)
    assert response.status_code == 405
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    assert "detail" in response.json()


# --- 7. the schema leaves out what the API answers ------------------------------------------------------------
def test_the_schema_documents_rate_limits_and_idempotency_keys():
    """billing-rules 11.5: the schema 'comes from the code that answers the requests'; 11.2 lists 429 for every
    endpoint; docs/security.md: the API's writes take an Idempotency-Key header."""
    schema = ninja_api.get_openapi_schema(path_prefix="/api/")
    missing_429, missing_header = [], []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if "429" not in {str(code) for code in operation["responses"]}:
                missing_429.append(f"{method.upper()} {path}")
            if method in ("post", "delete"):
                names = {p["name"].lower() for p in operation.get("parameters", []) if p.get("in") == "header"}
                if "idempotency-key" not in names:
                    missing_header.append(f"{method.upper()} {path}")
    assert not missing_429 and not missing_header, (missing_429, missing_header)


# --- 8. a member name with spaces: assigned, then not found --------------------------------------------------
def test_a_member_is_removed_by_the_name_it_was_assigned_with(world, frozen):
    """billing-rules 11.4: DELETE ends the member's active seat; 404 only when the member holds none."""
    client = Client()
    assigned = post(client, "/api/partner/seats", {"customer": "bravo", "member": " Bob "}, world["a_key"])
    assert assigned.status_code == 201
    removed = client.delete("/api/partner/seats/bravo/%20Bob%20", headers=bearer(world["a_key"]))
    assert removed.status_code == 204, removed.content


# --- what was checked and found right ------------------------------------------------------------------------
def _floats(value, where="$"):
    if isinstance(value, float):
        yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _floats(item, f"{where}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _floats(item, f"{where}[{n}]")


def test_money_and_decimals_are_strings_and_instants_are_utc(world, frozen):
    client = Client()
    forecast = client.get("/api/reseller/forecast", headers=bearer(world["a_key"])).json()
    assert not list(_floats(forecast))
    assert forecast["currency"] == "USD"
    m365 = next(line for line in forecast["lines"] if line["service"] == "m365")
    assert Decimal(m365["unit_price"]) == Decimal("5.125")
    assert m365["quantity"] == "6.0000" and m365["amount"] == "30.75"
    dashboard = client.get("/api/partner/dashboard", headers=bearer(world["a_key"])).json()
    assert not list(_floats(dashboard)) and dashboard["utilization"] == "0.10"
    seat = post(client, "/api/partner/seats", {"customer": "bravo", "member": "bea"}, world["a_key"]).json()
    assert seat["assigned_at"] == "2026-05-15T12:00:00Z"


def test_a_session_cookie_never_authenticates_the_api_and_a_bearer_write_needs_no_csrf(world, frozen):
    portal = Client(enforce_csrf_checks=True)
    portal.force_login(PartnerUserFactory(partner=world["acme"]).user)
    refused = portal.post("/api/partner/seats", json.dumps({"customer": "bravo", "member": "x"}),
                          content_type="application/json")
    assert refused.status_code == 401
    assert not SeatAssignment.objects.filter(member__name="x").exists()
    api_client = Client(enforce_csrf_checks=True)
    assert post(api_client, "/api/partner/seats", {"customer": "bravo", "member": "y"}, world["a_key"]).status_code \
        == 201


def test_another_partners_customer_is_404_or_unknown_everywhere(world, frozen):
    client = Client()
    key = world["a_key"]
    for path in ("/api/reseller/tenants/zulu/usage", "/api/usage-records/totals/zulu"):
        assert client.get(path, headers=bearer(key)).json() == {"detail": "Not Found"}
    record = [{"customer": "zulu", "started_at": "2026-05-01T10:00:00Z", "duration_seconds": 60,
               "meeting_id": "m1", "host": "h", "participants": 2}]
    answer = post(client, "/api/usage-records/meeting-summaries", record, key)
    assert answer.status_code == 422 and "bolt" not in answer.content.decode().lower()


def test_over_the_rate_is_429_with_retry_after(world, frozen, settings):
    settings.NINJA_DEFAULT_THROTTLE_RATES = {"auth": "2/min", "anon": "2/min"}
    client = Client()
    answers = [client.get("/api/partner/dashboard", headers=bearer(world["a_key"])) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[-1]["Retry-After"]) >= 1
    # another key keeps its own budget
    assert client.get("/api/partner/dashboard", headers=bearer(world["b_key"])).status_code == 200
