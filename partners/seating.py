"""Seat rules shared by the live seat service and the history import (billing-rules 3.1-3.2).

Pure: the live service feeds it counts read under row locks; the import feeds
it a replay of the merged event history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

# seats one "Add seats" of the portal or the admin buys: more is a typo of a few digits (the seat-purchases import
# takes what the column holds, row by row)
SEATS_PER_PURCHASE_MAX = 10_000


@dataclass(frozen=True)
class Commitment:
    """A seat_days service's commitment in force at an instant, and its scope."""

    service_code: str
    committed: int
    overage_enabled: bool
    customer_id: int | None  # None: the whole partner


class SeatRuleError(Exception):
    """An assignment the rules deny; `column` names the file column to blame."""

    def __init__(self, message: str, column: str = "member", conflict: bool = True):
        super().__init__(message)
        self.column = column
        self.conflict = conflict


def check_assignment(*, member_active: bool, customer_active: int, seat_cap: int | None,
                     partner_active: int, commitments, customer_id: int) -> None:
    """Raise SeatRuleError when one more seat for this member would break a rule.

    customer_active / partner_active are the active seats before the new one.
    """
    if member_active:
        raise SeatRuleError("already holds an active seat in this customer")
    if seat_cap is not None and customer_active + 1 > seat_cap:
        raise SeatRuleError(
            f"seat cap of {seat_cap} reached ({customer_active} seats active); raise the cap first",
        )
    for commitment in commitments:
        if commitment.overage_enabled or commitment.committed <= 0:
            continue
        if commitment.customer_id is not None and commitment.customer_id != customer_id:
            continue
        in_scope = customer_active if commitment.customer_id is not None else partner_active
        if in_scope >= commitment.committed:
            raise SeatRuleError(
                f"commitment of {commitment.committed} seats on {commitment.service_code} reached "
                f"and overage is disabled; buy seats (effective next month) first",
            )


def committed_seats_on(day: date, *, committed_quantity: int | None, purchases: Iterable[tuple[date, int]]) -> int:
    """Committed seats in force on `day` (billing-rules 3.1, 6.2): the committed quantity in force that day
    plus the seats of every purchase effective by then. The one place this rule is written: the live seat
    checks, the seat-events import, alerts, the admin, the portal, the API and billing all come here.

    `committed_quantity` is the service's commitment as it stood on `day` (terms have effective dates,
    billing-rules 3.11: pass the service as `partners.terms.TermsBook.on(service, day)` gives it); blank counts
    0. `purchases` are (effective date, seats) pairs in any order; a purchase is effective from the UTC month
    boundary after it was made (`SeatPurchase.effective_date`), so one made at 00:00 on 1 May counts from
    1 June. Billing asks for the usage month's 1st (billing-rules 3.1: the seats in force on that 1st).
    """
    return (committed_quantity or 0) + sum(seats for effective, seats in purchases if effective <= day)


def utilization(active: int, committed: int) -> Decimal | None:
    """Active seats / committed, as an exact Decimal fraction (billing-rules 3.3); None without a commitment.
    Thresholds (the 90% warning, overage) are judged on this exact ratio; people are shown
    `utilization_percent`."""
    if committed <= 0:
        return None
    return Decimal(active) / Decimal(committed)


def utilization_percent(active: int, committed: int) -> int | None:
    """Utilization as shown to people, in the admin, the portal and the API (billing-rules 3.3 and
    billing-rules decision (as)): active ÷ committed as a whole percent, rounded half away from zero like
    every figure of billing-rules 2 (3 of 7 is 43%, 1 of 8 is 13%, 2 of 3 is 67%, 4 of 3 is 133%); None
    without a commitment. Thresholds are judged on the exact ratio (`utilization`), not on this figure."""
    if committed <= 0:
        return None
    return int((Decimal(active * 100) / Decimal(committed)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
