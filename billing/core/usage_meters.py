"""The names of usage-record meters (billing-rules 3.12, 3.13, 12.11): pure, so that a service (partners) and an
own item (rebilling) check the meter they name without reading the records, and metering sums them.

A meter key is what `metering.usage_records.usage_record_totals` reads per customer and month:
`call_minutes:<direction>:<destination>`, `calls:<direction>:<destination>`, `meeting_minutes`, `meetings` and
`participant_minutes`. A pattern names one or more of them: a call meter's direction or destination may be `*`
(any), so `call_minutes:outbound:*` is every outbound minute."""

from __future__ import annotations

import re
from decimal import Decimal

METER_PATTERN = re.compile(
    r"^(?:(?:call_minutes|calls):(?:inbound|outbound|internal|\*):(?:[a-z0-9][a-z0-9-]{0,39}|\*)"
    r"|meeting_minutes|meetings|participant_minutes)$")


def meter_pattern_error(pattern: str) -> str:
    """Why `pattern` names no usage-record meter ("" when it does)."""
    if METER_PATTERN.match(pattern or ""):
        return ""
    return (f"{pattern!r} is not a usage-record meter: call_minutes:<direction>:<destination>, "
            "calls:<direction>:<destination> (either may be *), meeting_minutes, meetings or participant_minutes")


def meter_total(readings: dict[str, Decimal], pattern: str) -> Decimal:
    """The sum of one customer's month readings ({meter key: quantity}) the pattern names (* matches any part)."""
    wanted = pattern.split(":")
    total = Decimal(0)
    for key, quantity in readings.items():
        parts = key.split(":")
        if len(parts) == len(wanted) and all(w in ("*", p) for w, p in zip(wanted, parts, strict=True)):
            total += quantity
    return total




UNIT_WORDS = {"call_minutes": "minutes", "calls": "calls", "meeting_minutes": "meeting minutes",
              "meetings": "meetings", "participant_minutes": "participant minutes"}


def meter_unit(pattern: str) -> str:
    """What a meter counts, as a line says it: "minutes", "calls", "meeting minutes"…"""
    return UNIT_WORDS.get(pattern.split(":")[0], "units")


def readings_by_customer(totals: dict[tuple[int, str], Decimal]) -> dict[int, dict[str, Decimal]]:
    """`usage_record_totals`'s {(customer id, key): quantity} as {customer id: {key: quantity}}."""
    readings: dict[int, dict[str, Decimal]] = {}
    for (customer_id, key), quantity in totals.items():
        readings.setdefault(customer_id, {})[key] = quantity
    return readings


def meter_by_customer(readings: dict[int, dict[str, Decimal]], pattern: str,
                      customer_id: int | None = None) -> dict[int, Decimal]:
    """{customer id: its month's reading of the pattern} of `readings_by_customer`, the customers with more than
    0 (only `customer_id`'s when given: a customer-level service reads its own customer only)."""
    return {cid: quantity for cid, reading in readings.items()
            if (customer_id is None or cid == customer_id) and (quantity := meter_total(reading, pattern))}
