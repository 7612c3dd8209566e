"""Reads of the audit log for the admin and the portal: who has entries, what kinds there are, and the entries
of a person or a kind. The sentences the entries read as are partners.audit_text."""

from __future__ import annotations

import hashlib

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import QuerySet

from partners.audit_text import TOPICS, model_of, topic_actions
from partners.choices import AuditAction

USER, LABEL = "user:", "label:"
# the filters' choices are read with DISTINCT over the whole log (millions of rows once seat imports are audited
# seat by seat): kept this long, so a list's every page and click does not read them again
CHOICES_SECONDS = 300


def _cached(name: str, entries: QuerySet, compute):
    """`compute()` kept in the cache for CHOICES_SECONDS under `name` and the entries' query."""
    key = "audit-choices:" + name + ":" + hashlib.sha256(str(entries.query).encode()).hexdigest()[:32]
    return cache.get_or_set(key, compute, CHOICES_SECONDS)


def audit_object_types(entries: QuerySet) -> list[str]:
    """The object types that have entries among `entries` (cached, as the people are)."""
    return _cached("types", entries, lambda: list(
        entries.order_by("object_type").values_list("object_type", flat=True).distinct()))


def audit_people(entries: QuerySet, *, most: int = 100) -> list[tuple[str, str]]:
    """Who has entries among `entries`, as (filter value, name): the people by full name (else username),
    then the commands, tasks and API keys by label (at most `most` of each). Two queries, kept in the cache for
    CHOICES_SECONDS."""
    return _cached(f"people:{most}", entries, lambda: _audit_people(entries, most))


def _audit_people(entries: QuerySet, most: int) -> list[tuple[str, str]]:
    users = get_user_model().objects.filter(pk__in=entries.filter(actor__isnull=False).values("actor_id"))
    people = sorted(((f"{USER}{u.pk}", u.get_full_name().strip() or u.get_username()) for u in users[:most]),
                    key=lambda choice: choice[1].lower())
    labels = (entries.filter(actor__isnull=True).exclude(actor_label="").order_by("actor_label")
              .values_list("actor_label", flat=True).distinct()[:most])
    return people + [(f"{LABEL}{label}", label) for label in labels]


def audit_by_person(entries: QuerySet, value: str | None) -> QuerySet:
    """The entries of a person (`user:<id>`) or of a command, task or API key (`label:<label>`)."""
    value = value or ""
    if value.startswith(USER) and value[len(USER):].isdigit():
        return entries.filter(actor_id=int(value[len(USER):]))
    if value.startswith(LABEL) and value[len(LABEL):]:
        return entries.filter(actor__isnull=True, actor_label=value[len(LABEL):])
    return entries


def audit_kinds(allowed: list[str] | None = None) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """The kinds of entries, grouped: [(topic, topic label, [(action, label), ...])], only the `allowed`
    actions when given (a topic with none of them is left out)."""
    labels = dict(AuditAction.choices)
    groups = []
    for topic, (label, _prefixes) in TOPICS.items():
        actions = [a for a in topic_actions(topic) if allowed is None or a in allowed]
        if actions:
            groups.append((topic, label, [(a, labels[a]) for a in actions]))
    return groups


def audit_by_kind(entries: QuerySet, kind: str | None) -> QuerySet:
    """The entries of a topic (TOPICS: "seats", "money", ...) or of one action ("seat.assign")."""
    if kind in TOPICS:
        return entries.filter(action__in=topic_actions(kind))
    if kind in AuditAction.values:
        return entries.filter(action=kind)
    return entries


def object_type_label(object_type: str) -> str:
    """An object type as people name it: "Seat assignment" for partners.SeatAssignment."""
    model = model_of(object_type)
    if model is None:
        return object_type
    name = str(model._meta.verbose_name)
    return name[:1].upper() + name[1:]
