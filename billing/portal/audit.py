"""The audit section of the portal's Team page: the partner's entries as sentences with their changes
(partners.audit_text), filtered by person and kind (GET parameters), newest first, a page at a time.

A role that reads only some kinds (a Technician: `allowed` prefixes) is offered only those kinds, and only the
people who have entries of them."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.utils.http import urlencode

from partners.audit_log import audit_by_kind, audit_by_person, audit_kinds, audit_people
from partners.audit_text import AuditText, audit_texts
from partners.choices import AuditAction
from partners.models import AuditLog

PER_PAGE = 25


@dataclass(frozen=True)
class AuditRow:
    entry: AuditLog
    text: AuditText


@dataclass(frozen=True)
class AuditSection:
    page: Page
    rows: list[AuditRow]
    people: list[tuple[str, str]]
    kinds: list[tuple[str, str, list[tuple[str, str]]]]
    person: str
    kind: str

    @property
    def filtered(self) -> bool:
        return bool(self.person or self.kind)

    @property
    def query(self) -> str:
        """The filters as a query string for the pager's links ("" or "person=...&kind=...&")."""
        chosen = {name: value for name, value in (("person", self.person), ("kind", self.kind)) if value}
        return f"{urlencode(chosen)}&" if chosen else ""


def audit_section(*, partner, params, allowed: tuple[str, ...] | None = None) -> AuditSection:
    """The partner's entries for the Team page, filtered by `params` ("person", "kind", "page"); only the
    actions starting with one of `allowed` when given (an allow-list: other kinds stay hidden)."""
    entries = AuditLog.objects.filter(partner=partner)
    actions = None
    if allowed is not None:
        actions = [a for a in AuditAction.values if a.startswith(allowed)]
        entries = entries.filter(action__in=actions)
    people = audit_people(entries)
    person = params.get("person", "")
    person = person if person in dict(people) else ""
    kinds = audit_kinds(actions)
    kind = params.get("kind", "")
    kind = kind if kind in {k for topic, _label, options in kinds for k in (topic, *dict(options))} else ""
    shown = audit_by_kind(audit_by_person(entries, person), kind)
    page = Paginator(shown.select_related("actor", "partner").order_by("-at", "-id"), PER_PAGE).get_page(
        params.get("page"))
    page_entries = list(page.object_list)
    rows = [AuditRow(entry, text) for entry, text in zip(page_entries, audit_texts(page_entries), strict=True)]
    return AuditSection(page=page, rows=rows, people=people, kinds=kinds, person=person, kind=kind)
