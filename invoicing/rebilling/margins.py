"""A partner's margin on its customers (the portal's Margin page and its CSV): per customer and billing month,
what the partner charged them and what we charged the partner for the same.

- **charged**: the amounts of the lines of the partner's issued customer invoices of the month (the invoice's
  `month`), taxes left out (they are the customer's tax, not the partner's income); credit notes are issued
  customer invoices too, of the credited invoice's month, so their negative lines net the charge away;
- **cost**: the same lines' `cost`, what our own invoice charged the partner for the same quantity (an own item
  has none: it costs the partner nothing of ours). A credit note's lines carry the credited lines' cost,
  negated, so a charge credited to the customer leaves the month's margin as if it had never been billed;
- **margin**: charged - cost; **margin %**: the margin as a share of what was charged (none when nothing was).

Charges of ours that no customer invoice carries (`UnbilledCharge`) are not in the margin: the page counts
them apart."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, DecimalField, Sum, Value
from django.db.models.functions import Coalesce

from billing.core.money import money_sum, quantize_money
from billing.core.periods import Period
from invoicing.choices import InvoiceState, LineType
from invoicing.models import AMOUNT
from invoicing.rebilling.models import CustomerInvoiceLine, UnbilledCharge

ZERO = Decimal("0")
HUNDRED = Decimal("100")
PERCENT_PLACES = Decimal("0.1")


@dataclass(frozen=True)
class CustomerMargin:
    month: str  # YYYY-MM, the invoices' billing month
    customer_id: int
    customer_slug: str
    customer_name: str
    charged: Decimal
    cost: Decimal
    currency: str = ""

    @property
    def margin(self) -> Decimal:
        return self.charged - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        """The margin as a percent of what was charged, to one place (None when nothing was charged)."""
        if not self.charged:
            return None
        return (self.margin * HUNDRED / self.charged).quantize(PERCENT_PLACES)


def customer_margins(partner_id: int, first_month: Period, last_month: Period) -> list[CustomerMargin]:
    """The partner's margin per customer and month from `first_month` through `last_month`, by month then
    customer name: one GROUP BY query over its issued customer invoice lines. The sums are of rounded lines,
    shown in the currency's places (a database may sum 150.00 to 150)."""
    money = DecimalField(**AMOUNT)
    rows = (
        CustomerInvoiceLine.objects
        .filter(invoice__partner_id=partner_id, invoice__state=InvoiceState.ISSUED,
                invoice__month__gte=str(first_month), invoice__month__lte=str(last_month))
        .exclude(line_type=LineType.TAX)
        .order_by()
        # the currency is the partner's, one for all its invoices: grouped by, it adds no group
        .values("invoice__month", "invoice__customer_id", "invoice__customer__slug", "invoice__customer__name",
                "invoice__currency")
        .annotate(charged=Coalesce(Sum("amount"), Value(ZERO), output_field=money),
                  cost=Coalesce(Sum("cost"), Value(ZERO), output_field=money))
        .order_by("invoice__month", "invoice__customer__name", "invoice__customer_id")
    )
    return [CustomerMargin(month=row["invoice__month"], customer_id=row["invoice__customer_id"],
                           customer_slug=row["invoice__customer__slug"], customer_name=row["invoice__customer__name"],
                           charged=quantize_money(row["charged"], row["invoice__currency"]),
                           cost=quantize_money(row["cost"], row["invoice__currency"]),
                           currency=row["invoice__currency"])
            for row in rows]


@dataclass(frozen=True)
class MarginTotals:
    charged: Decimal
    cost: Decimal

    @property
    def margin(self) -> Decimal:
        return self.charged - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        return CustomerMargin("", 0, "", "", self.charged, self.cost).margin_percent


def margin_totals(rows: list[CustomerMargin]) -> MarginTotals:
    return MarginTotals(charged=money_sum(r.charged for r in rows), cost=money_sum(r.cost for r in rows))


def unbilled_counts(partner_id: int, first_month: Period, last_month: Period) -> dict[str, int]:
    """{reason: how many} of the partner's charges not rebilled whose period is in the months (one GROUP BY)."""
    return dict(UnbilledCharge.objects.filter(partner_id=partner_id, period__gte=str(first_month),
                                              period__lte=str(last_month))
                .order_by().values_list("reason").annotate(n=Count("id")))
