"""Tax on an amount, one rule (billing-rules 2, 4.3; issue 18, item 2): billing.core.money.tax_on, rate percent
of the amount rounded once, half away from zero. An invoice's tax line, a credit note's tax and the "fits on one
invoice" check of a one-time charge (the admin's form and the import alike) come from it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
import time_machine
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.core.importing import run_import_text
from billing.core.money import currency_places, tax_on
from conftest import examples
from invoicing.admin.charges import OneTimeChargeForm
from partners.tests.factories import PartnerFactory

FAST = settings(max_examples=examples(300), deadline=None, database=None)

amounts = st.decimals(min_value=Decimal("-1000000000"), max_value=Decimal("1000000000"), places=2,
                      allow_nan=False, allow_infinity=False)
rates = st.decimals(min_value=Decimal("0"), max_value=Decimal("100"), places=3, allow_nan=False,
                    allow_infinity=False)


def rounded(value: Fraction, places: int) -> Decimal:
    """Independent reference: an exact rational rounded half away from zero."""
    scaled = abs(value) * 10**places
    whole = scaled.numerator // scaled.denominator
    if scaled - whole >= Fraction(1, 2):
        whole += 1
    return Decimal(-whole if value < 0 else whole).scaleb(-places)


@pytest.mark.parametrize(("taxable", "rate", "currency", "tax"), [
    ("191.94", "10", "USD", "19.19"),   # billing-rules 4.3: the June CI of section 3.1, 19.194
    ("101.64", "20", "EUR", "20.33"),   # the INV of section 3.10, 20.328
    ("0.05", "10", "USD", "0.01"),      # 0.005: half away from zero
    ("-0.05", "10", "USD", "-0.01"),    # a credit note's tax (billing-rules 4.5)
    ("0.00", "10", "USD", "0.00"),      # a tax line at 0.00 when nothing is taxable
    ("-0.04", "10", "USD", "0.00"),     # never -0.00
    ("1005", "8.25", "JPY", "83"),      # 82.9125
])
def test_examples(taxable, rate, currency, tax):
    assert str(tax_on(Decimal(taxable), Decimal(rate), currency)) == tax


@FAST
@given(taxable=amounts, rate=rates, currency=st.sampled_from(["USD", "EUR", "JPY", "BHD"]))
def test_tax_is_the_exact_product_rounded_once(taxable, rate, currency):
    """Against exact rational arithmetic; and a credit's tax is the charge's, negated."""
    expected = rounded(Fraction(taxable) * Fraction(rate) / 100, currency_places(currency))
    assert tax_on(taxable, rate, currency) == expected
    assert tax_on(-taxable, rate, currency) == -tax_on(taxable, rate, currency)


# --- the admin and the import judge a one-time charge with it ------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(("unit_price", "fits"), [
    ("909090909.0909", True),   # 909,090,909,090.90 + 10% tax 90,909,090,909.09 = 999,999,999,999.99
    ("909090909.0910", False),  # 909,090,909,091.00 + 90,909,090,909.10: one invoice cannot hold it
])
def test_the_admin_and_the_import_agree_on_a_charge_too_large_with_its_tax(unit_price, fits):
    partner = PartnerFactory(slug="taxed", tax_rate=Decimal("10"))
    row = {"partner": partner.pk, "description": "Racks", "quantity": "1000", "unit_price": unit_price,
           "date": "2026-06-01", "taxable": True}
    with time_machine.travel(datetime(2026, 6, 15, 12, tzinfo=UTC), tick=False):
        form = OneTimeChargeForm(row)
        summary = run_import_text("one-time-charges", f"partner,description,quantity,unit_price,date\n"
                                                      f"taxed,Racks,1000,{unit_price},2026-06-01\n", dry_run=True)
    assert form.is_valid() is fits, form.errors
    assert summary.ok is fits, summary.errors
    if not fits:
        assert form.errors["unit_price"] == [str(summary.errors[0]).split("unit_price: ", 1)[1]]
