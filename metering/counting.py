"""Which agents of an RMM inventory are billed (docs/rmm.md, "Which agents count"). Pure rules: only
CountingRules.of reads an integration (and splits its filters as partners.models splits a service's).

The RMM reports more than the agents an MSP bills: Datto RMM keeps deleted devices in its lists, VSA
lists templates that never checked in, agents can be suspended or offline. Each integration says which
of those states are billed; an agent not billed is left out of the inventory (so an agent that becomes
suspended is removed from that date, like one uninstalled) and counted on the sync run by its reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from metering.matching import Place, filter_takes
from partners.models import rmm_filter_parts

DELETED, NEVER_CHECKED_IN, SUSPENDED, OFFLINE = "deleted", "never checked in", "suspended", "offline"
NO_AGENT = "no agent (monitored without one)"
OUTSIDE = "outside the integration's filter"


@dataclass(frozen=True)
class CountingRules:
    offline: bool = True
    suspended: bool = False
    never_checked_in: bool = False
    # the integration's own filters (split as partners.models.rmm_filter_parts splits a service's): an agent
    # some filter takes is the partner's; none: every agent
    filters: tuple[tuple[str, str, str], ...] = ()

    @classmethod
    def of(cls, integration) -> CountingRules:
        """The rules of an integration (None: the defaults, for an import without one)."""
        if integration is None:
            return cls()

        return cls(offline=integration.count_offline, suspended=integration.count_suspended,
                   never_checked_in=integration.count_never_checked_in,
                   filters=tuple(rmm_filter_parts(f) for f in integration.filters))


def has_no_agent(node_class: str, parent_id=None) -> bool:
    """Whether a NinjaOne node has no agent of its own (NodeWithDetailedReferences.nodeClass): a device monitored by
    SNMP (NMS_*), a cloud monitor target, an unmanaged device of the asset register, a VM guest seen through its
    host (a *_VM_GUEST class, or a node with a parent device). Never billed (decision (ak))."""
    node_class = (node_class or "").strip().upper()
    return (node_class.startswith("NMS_") or node_class in ("CLOUD_MONITOR_TARGET", "UNMANAGED_DEVICE")
            or node_class.endswith("_VM_GUEST") or parent_id not in (None, "", 0))


def not_billed_because(agent, rules: CountingRules) -> str | None:
    """Why an agent is not billed, or None when it is. Deleted agents never are; the first reason that
    applies is the one given."""
    if agent.deleted:
        return DELETED
    if agent.no_agent:
        return NO_AGENT
    if agent.never_checked_in and not rules.never_checked_in:
        return NEVER_CHECKED_IN
    if agent.suspended and not rules.suspended:
        return SUSPENDED
    if agent.online is False and not rules.offline:
        return OFFLINE
    if rules.filters:
        place = Place(agent.organization, agent.group, agent.org_ref, agent.org_id, tuple(agent.views))
        if not any(filter_takes(org=org, group=group, view=view, customer_org=None, place=place)
                   for org, group, view in rules.filters):
            return OUTSIDE
    return None


def agents_billed(agents, rules: CountingRules) -> tuple[list, dict[str, int]]:
    """(the agents billed, {reason: how many were left out})."""
    billed, skipped = [], Counter()
    for agent in agents:
        reason = not_billed_because(agent, rules)
        if reason is None:
            billed.append(agent)
        else:
            skipped[reason] += 1
    return billed, dict(skipped)
