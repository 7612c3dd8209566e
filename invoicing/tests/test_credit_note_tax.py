"""The tax of credit notes (billing-rules 4.5, 12.7): `credit_note_tax`, the one rule for ours and the partners'
customer credit notes. However an invoice's lines are credited, in any groups and order, the notes' taxes give
back exactly the invoice's tax, and every note but the last is taxed on its own lines, rounded once."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from billing.core.money import money_sum, tax_on
from invoicing.pricing import credit_note_tax

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999.99"), places=2)
rates = st.decimals(min_value=Decimal("0"), max_value=Decimal("27"), places=3)


@given(lines=st.lists(amounts, min_size=1, max_size=8), rate=rates, data=st.data())
def test_credit_notes_give_back_exactly_the_invoice_tax(lines, rate, data):
    invoice_tax = tax_on(money_sum(lines), rate, "USD")
    order = data.draw(st.permutations(range(len(lines))))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(lines) - 1), max_size=len(lines) - 1))) if len(lines) > 1 \
        else []
    groups = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(lines)], strict=True)]
    taxes: list[Decimal] = []
    for n, group in enumerate(groups):
        credited = money_sum(-lines[i] for i in group)
        last = n == len(groups) - 1
        tax = credit_note_tax(credited_taxable=credited, rate_percent=rate, currency="USD", invoice_tax=invoice_tax,
                              earlier_credited_tax=money_sum(taxes), last=last)
        if not last:
            assert tax == tax_on(credited, rate, "USD")
        taxes.append(tax)
    assert money_sum(taxes) == -invoice_tax
