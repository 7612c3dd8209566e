"""Licenses per day, one rule (billing-rules 3.6; issue 18, item 2): metering.selectors.licenses_on_day. The
admin's usage list and the reseller API call it; the set-based SQL of licenses_by_service is checked against it on
random histories in test_meter_properties (test_usage_meters_agree_with_the_reference)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import examples
from metering.selectors import licenses_on_day

FAST = settings(max_examples=examples(300), deadline=None, database=None)
GB = 10**9


@pytest.mark.parametrize(("users", "storage", "gb", "licenses"), [
    (4, 20 * GB, "50", 4),           # billing-rules 3.10, Harbourside: max(4, ceil(0.4) = 1)
    (9, 480 * GB, "50", 10),         # Millbrook from 9 March: max(9, ceil(9.6)), driven by storage
    (9, 300 * GB, "50", 9),          # Millbrook from the 19th: max(9, 6)
    (6, 250 * GB, "50", 6),          # exactly 5 licenses of storage
    (5, 250 * GB + 1, "50", 6),      # one byte more is one license more
    (6, 912_345_678_901, "50", 19),
    (0, 1, "0.001", 1),
    (0, 1_001_000_000, "1.001", 1),  # an exact multiple of a size that is not a whole GB
    (0, 1_001_000_001, "1.001", 2),
    (7, 10**15, None, 7),            # without storage_per_license_gb: users only
    (0, 0, "2.5", 0),
])
def test_examples(users, storage, gb, licenses):
    assert licenses_on_day(users, storage, Decimal(gb) if gb else None) == licenses


@FAST
@given(users=st.integers(0, 10**6), storage=st.integers(0, 10**15),
       gb=st.one_of(st.none(), st.decimals(min_value=Decimal("0.001"), max_value=Decimal("100000"), places=3)))
def test_the_larger_of_users_and_the_storage_divided_up(users, storage, gb):
    """Against exact rational arithmetic: ceil(storage / (gb x 10^9))."""
    if gb is None:
        assert licenses_on_day(users, storage, gb) == users
        return
    quotient = Fraction(storage) / (Fraction(gb) * GB)
    by_storage = -(-quotient.numerator // quotient.denominator)
    assert licenses_on_day(users, storage, gb) == max(users, by_storage)
