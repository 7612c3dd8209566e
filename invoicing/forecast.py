"""The forecast of a partner's next CI (billing-rules decision (at)): the rating engine itself, run on the month
ahead as a dry computation, for the portal and the API alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from billing.core.money import ZERO, money_sum, tax_on
from billing.core.periods import Period
from invoicing.rating import CI, RatedLine, rate_partners_month
from invoicing.selectors import billed_units_by_partner
from partners.models import Partner
from partners.terms import TermsBook


@dataclass(frozen=True)
class Forecast:
    """What the CI dated the 1st of next month would carry, rated now."""

    month: Period  # the CI's month: issued on its 1st
    currency: str
    lines: list[RatedLine]
    subtotal: Decimal
    tax_rate: Decimal
    tax: Decimal

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax

    @property
    def usage(self) -> Period:
        return self.month.previous()

    @property
    def issue_date(self) -> date:
        return self.month.first


def next_ci_forecast(partner: Partner, today: date) -> Forecast:
    """The CI dated the 1st of next month as the billing run would issue it if usage stayed as it is today until
    the month's end: `rate_partners_month` for that month (next month's advance charges, this month's arrears,
    per_asset prorations of months already invoiced), its CI lines of a non-zero amount, and the tax at the rate in
    force on its date. Read-only: nothing is written, no number taken."""
    month = Period.of(today).next()
    billed = billed_units_by_partner(partner_ids=[partner.pk])
    lines = [line for line in rate_partners_month(partners=[partner], month=month, billed=billed)[partner.pk]
             if line.document == CI and line.amount != ZERO]
    rate = TermsBook([partner]).on(partner, month.first).tax_rate
    subtotal = money_sum(line.amount for line in lines)
    taxable = money_sum(line.amount for line in lines if line.taxable)
    return Forecast(month=month, currency=partner.currency, lines=lines, subtotal=subtotal, tax_rate=rate,
                    tax=tax_on(taxable, rate, partner.currency))
