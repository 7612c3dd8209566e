"""Utilization as people are shown it, one rule with one rounding (billing-rules 3.3 and billing-rules
decision (as); issue 18, item 2): partners.seating.utilization_percent, a whole percent rounded half away from
zero. The admin's bar, the portal's cards and the API's dashboard show that number; thresholds (the warning
colour, the alerts) are judged on the exact ratio."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.api.partner import _ratio_text
from billing.portal.selectors import SeatSummary
from conftest import examples
from partners.admin.seats import utilization_html
from partners.seating import utilization, utilization_percent

FAST = settings(max_examples=examples(300), deadline=None, database=None)


@pytest.mark.parametrize(("active", "committed", "percent"), [
    (3, 7, 43),     # 42.857...
    (1, 8, 13),     # 12.5: half away from zero
    (2, 3, 67),     # 66.666...
    (1, 6, 17),     # 16.666...
    (4, 3, 133),    # 133.333...: overage
    (9, 10, 90),
    (179, 200, 90),  # 89.5 is shown 90 ...
    (0, 5, 0),
    (5, 5, 100),
])
def test_a_whole_percent_half_away_from_zero(active, committed, percent):
    assert utilization_percent(active, committed) == percent


def test_no_commitment_has_no_utilization():
    assert utilization_percent(3, 0) is None
    assert utilization(3, 0) is None


@FAST
@given(active=st.integers(0, 100_000), committed=st.integers(1, 100_000))
def test_the_percent_is_the_exact_ratio_rounded_once(active, committed):
    """Against integer arithmetic: floor(100 a / c + 1/2) = floor((200 a + c) / 2c)."""
    percent = utilization_percent(active, committed)
    assert percent == (200 * active + committed) // (2 * committed)
    assert abs(Decimal(percent) - utilization(active, committed) * 100) <= Decimal("0.5")


@FAST
@given(active=st.integers(0, 5_000), committed=st.integers(0, 5_000))
def test_the_admin_the_portal_and_the_api_show_the_same_number(active, committed):
    percent = utilization_percent(active, committed)
    summary = SeatSummary(service=None, committed=committed, assigned=active, available=0, utilization=percent,
                          overage=0, scheduled=[])
    if percent is None:
        assert _ratio_text(active, committed) is None
        assert summary.utilization_bar == 0 and summary.utilization_level == ""
        return
    assert f">{percent}%<" in utilization_html(active, committed)
    assert _ratio_text(active, committed) == f"{Decimal(percent) / 100:.2f}"
    assert summary.utilization_bar == min(100, percent)


def test_the_warning_colour_is_judged_on_the_exact_ratio_as_the_alerts_are():
    """89.5% is shown 90% but has not reached the 90% warning (billing-rules 3.3): neither the admin's amber nor
    the portal's warn; 9 of 10 has."""
    assert django_settings.UTILIZATION_WARNING_PERCENT == 90
    below, reached = (179, 200), (9, 10)
    assert "#b36b00" not in utilization_html(*below) and "#b36b00" in utilization_html(*reached)

    def level(active, committed):
        return SeatSummary(None, committed, active, 0, utilization_percent(active, committed), 0, []).utilization_level

    assert (level(*below), level(*reached), level(10, 10), level(11, 10)) == ("", "warn", "bad", "bad")
