"""A batch's meters read in a second connection (billing/core/aside.py) are those one connection reads in turn.

On PostgreSQL a billing batch that is the outermost transaction reads its meters other than seat-days in
a second connection, on the other core, while its own counts the seat-days. The readings must be the
same, the second connection must really be another one (and closed after), an error there must reach the
batch, and no batch inside a caller's transaction may use it (what it reads could be uncommitted)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, transaction

from billing.core import aside
from billing.core.actor import Actor
from billing.core.aside import aside_possible
from billing.core.periods import Period
from invoicing import rating
from invoicing.models import Invoice
from invoicing.rating import Readings, partner_services
from invoicing.services import billed_units_by_partner, billing_run
from partners.models import Method, Partner, Service

NOW = Period.of(datetime.now(UTC).date())
FIRST = NOW.shift(-3)
ACTOR = Actor(label="aside test")


def generate():
    call_command("generate_data", partners=7, customers=3, members=4, months=3, seed=11, agents=70,
                 first=str(FIRST), prefix="asd")
    assert set(Service.objects.values_list("method", flat=True)) == set(Method.values)


def readings(month: Period, *, aside: bool) -> dict:
    partners = list(Partner.objects.order_by("pk"))
    services = partner_services(partners)
    billed = billed_units_by_partner(partner_ids=[p.pk for p in partners])
    read = Readings([s for p in partners for s in services[p.pk]], month, billed, aside=aside)
    return {"seats": read.seats, "purchases": dict(read.purchases), "peaks": read.peaks,
            "licenses": read.licenses, "steps": {sid: list(steps) for sid, steps in read.steps.items()},
            "customers": sorted(read.customers)}


def backend_pids(monkeypatch) -> dict[str, set[int]]:
    """The PostgreSQL backend that read the seat-days, and the one that read the licenses."""
    pids: dict[str, set[int]] = {"seats": set(), "licenses": set()}
    for name, meter in (("seats", "seat_days_by_service"), ("licenses", "licenses_by_service")):
        original = getattr(rating, meter)

        def recorded(*args, _name=name, _original=original, **kwargs):
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pids[_name].add(cursor.fetchone()[0])
            return _original(*args, **kwargs)

        monkeypatch.setattr(rating, meter, recorded)
    return pids


def still_open(pids: set[int], *, wait: float = 10.0) -> set[int]:
    """Those of the backends that are still there once they have had `wait` seconds to end.

    A backend leaves pg_stat_activity a moment after its client closes the connection, not at once:
    counting right after the close read a closed connection as open (CI, stop 28)."""
    deadline = time.monotonic() + wait
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", [list(pids)])
            found = {row[0] for row in cursor.fetchall()}
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_meters_read_aside_are_those_read_in_turn(monkeypatch):
    generate()
    pids = backend_pids(monkeypatch)
    seconds: set[int] = set()
    for month in (FIRST.next(), FIRST.shift(2), NOW):
        in_turn = readings(month, aside=False)
        assert pids["seats"] == pids["licenses"]  # one connection
        beside = readings(month, aside=True)
        assert beside == in_turn, month
        assert in_turn["seats"] and in_turn["peaks"] and in_turn["licenses"] and in_turn["steps"]
        assert len(pids["licenses"] - pids["seats"]) == 1  # the licenses came from another backend
        seconds |= pids["licenses"] - pids["seats"]
        for found in pids.values():
            found.clear()
    assert len(seconds) == 3  # a second connection for each batch...
    assert still_open(seconds) == set()  # ...closed after it


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_without_a_second_connection_the_meters_are_read_in_turn(monkeypatch, caplog):
    """The server's max_connections reached: the batch reads everything in its own connection."""
    generate()
    in_turn = readings(NOW, aside=False)
    pids = backend_pids(monkeypatch)

    def refused():
        raise OperationalError("FATAL: sorry, too many clients already")

    monkeypatch.setattr(aside, "_connect", refused)
    assert readings(NOW, aside=True) == in_turn
    assert pids["licenses"] == pids["seats"]
    assert "no second database connection for the meters" in caplog.text


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_error_aside_fails_the_batch_and_leaves_nothing(monkeypatch):
    generate()

    def broken(**kwargs):
        raise RuntimeError("the licenses meter failed")

    monkeypatch.setattr(rating, "licenses_by_service", broken)
    pids = backend_pids(monkeypatch)
    with pytest.raises(RuntimeError, match="the licenses meter failed"):
        billing_run(through=NOW.first, actor=ACTOR)
    assert pids["licenses"] - pids["seats"]  # the run read it aside
    # the batch failed and was billed again one partner at a time: those before the first with licenses stand
    slugs = list(Partner.objects.order_by("slug").values_list("slug", flat=True))
    licensed = set(Service.objects.filter(method=Method.LICENSES).values_list("partner__slug", flat=True))
    first_licensed = min(slugs.index(slug) for slug in licensed)
    assert set(Invoice.objects.values_list("partner__slug", flat=True)) == set(slugs[:first_licensed])
    monkeypatch.undo()
    billing_run(through=NOW.first, actor=ACTOR)
    assert Invoice.objects.filter(kind="CI", month=str(NOW)).count() == Partner.objects.count()


@pytest.mark.django_db
def test_no_batch_inside_a_transaction_reads_aside(settings):
    """Inside a caller's transaction the batch's data may be uncommitted: a second connection would not
    see it. (Under pytest-django's django_db every test is in one, so the suite bills in turn.)"""
    settings.BILLING_METERS_ASIDE = True
    assert connection.in_atomic_block
    assert not aside_possible()


@pytest.mark.django_db(transaction=True)
def test_aside_only_on_postgresql_and_when_on(settings):
    settings.BILLING_METERS_ASIDE = True
    assert aside_possible() == (connection.vendor == "postgresql")
    with transaction.atomic():
        assert not aside_possible()
    settings.BILLING_METERS_ASIDE = False
    assert not aside_possible()


def test_a_result_read_in_turn_is_read_once_however_often_it_is_asked(monkeypatch):
    """No second connection: the reading runs in the caller's connection once, not at every result()."""
    calls = []

    def refused():
        raise OperationalError("FATAL: sorry, too many clients already")

    def reading():
        calls.append(1)
        return {"peaks": len(calls)}

    monkeypatch.setattr(aside, "_connect", refused)
    with aside.Aside(True) as pool:
        result = pool.submit(reading)
    assert result() == {"peaks": 1} and result() == {"peaks": 1}
    assert len(calls) == 1
