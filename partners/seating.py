"""Seat rules shared by the live seat service and the history import (billing-rules 3.1-3.2).

Pure: the live service feeds it counts read under row locks; the import feeds
it a replay of the merged event history.
"""

from __future__ import annotations

from dataclasses import dataclass


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


def utilization(active: int, committed: int):
    """Active seats / committed, as a Decimal fraction; None without a commitment."""
    from decimal import Decimal

    if committed <= 0:
        return None
    return Decimal(active) / Decimal(committed)
