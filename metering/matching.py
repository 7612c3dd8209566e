"""Which RMM agents a service or a customer takes (billing-rules 3.7): the rule in plain Python.

Metering matches agents in SQL (metering.selectors, `_agent_changes_sql`); this module is the reference
its property test checks it against, and what the sync uses to list the agents no customer takes. No
Django here.

An agent's *place* is where the RMM reports it: its organization (name, short reference, id), its group
as a path from the top and the machine views it is in. A filter or a customer's RMM organization names
an organization by any of the three, compared in lower case after trimming; `ORG/GROUP` takes that group
and every group below it, `ORG/GROUP/SUB` a group below; `view:NAME` the agents of a view.
"""

from __future__ import annotations

from dataclasses import dataclass


def key(text: str | None) -> str:
    """A name as it is compared: trimmed, in lower case."""
    return (text or "").strip().lower()


@dataclass(frozen=True)
class Place:
    organization: str
    group: str = ""
    org_ref: str = ""
    org_id: str = ""
    views: tuple[str, ...] = ()


def views_text(views) -> str:
    """Views as stored on a presence: "|a|b|" (sorted, each trimmed; "" for none), so that SQL finds a
    view by its delimited name."""
    names = sorted({v.strip() for v in views if v and v.strip()})
    return f"|{'|'.join(names)}|" if names else ""


def names_organization(name: str, place: Place) -> bool:
    """Whether `name` (a filter's ORG, a customer's RMM organization) names the place's organization."""
    wanted = key(name)
    return bool(wanted) and wanted in (key(place.organization), key(place.org_ref), key(place.org_id))


def in_group(path: str, group: str) -> bool:
    """Whether a group (a path from the top) is `path` or below it; "" takes every group."""
    path, group = key(path), key(group)
    return not path or group == path or group.startswith(path + "/")


def filter_takes(*, org: str, group: str, view: str, customer_org: str | None, place: Place) -> bool:
    """Whether a service takes an agent at `place`. org/group/view: the service's filter as
    partners.models.rmm_filter_parts splits it; customer_org: the RMM organization of the service's
    customer (None for a partner-level service).

    A view filter takes the view's agents; an ORG filter that organization (and group); no filter takes
    the customer's organization, or the partner's whole inventory for a partner-level service."""
    if view:
        return key(view) in {key(v) for v in place.views}
    if org:
        return names_organization(org, place) and in_group(group, place.group)
    if customer_org is not None:
        return names_organization(customer_org, place)
    return True
