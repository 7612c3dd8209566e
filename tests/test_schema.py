"""The database the migrations build holds every index and constraint the models declare, by name.

A migration can lose one without a word: altering a foreign key's `db_index` drops every plain index PostgreSQL
reports on its column, a partial unique constraint's index included (Django excludes Meta.indexes from that
search, not Meta.constraints). partners 0025 did, and the database stopped refusing a second open seat; this
test reads the schema back on whichever database the suite runs on (SQLite locally, PostgreSQL in CI)."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection

from partners.models import SeatAssignment

pytestmark = pytest.mark.django_db

OWN_APPS = ("core", "partners", "metering", "invoicing", "rebilling")


def _declared():
    for model in apps.get_models():
        if model._meta.app_label not in OWN_APPS or not model._meta.managed or model._meta.proxy:
            continue
        names = [index.name for index in model._meta.indexes]
        names += [constraint.name for constraint in model._meta.constraints]
        if names:
            yield model, names


def test_every_declared_index_and_constraint_is_in_the_database():
    missing = []
    with connection.cursor() as cursor:
        for model, names in _declared():
            found = connection.introspection.get_constraints(cursor, model._meta.db_table)
            missing += [f"{model._meta.label}: {name}" for name in names if name not in found]
    assert not missing, missing


def test_the_check_covers_the_seats_constraints():
    """The test above cannot pass vacuously: it reads the seats' table, and its one-open-seat constraint."""
    declared = dict(_declared())
    assert "one_open_seat_per_member" in declared[SeatAssignment]
    assert "seat_member_assigned_idx" in declared[SeatAssignment]
