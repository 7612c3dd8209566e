"""Numbering: gapless invoice numbers, one sequence per prefix (CI, INV, CN), taken under row locks."""

from __future__ import annotations

from invoicing.models import InvoiceKind, InvoiceSequence

GATE = InvoiceKind.CI  # the row every number taker locks first


def number_take(kind: str) -> str:
    """The next number of a prefix, taken under the sequence row's lock: unique and gapless, since a
    rolled-back transaction gives its number back."""
    return numbers_take([kind])[0]


def numbers_take(kinds: list[str]) -> list[str]:
    """The next numbers of the prefixes given, one for each in order, taken as one block per prefix
    under the sequence rows' locks.

    Every taker first locks one and the same row (the first prefix's, which sorts first), then its own:
    numbering is serialised, so a partner's run issuing a CI then an INV and another's issuing an INV
    then a CI never wait on each other in a cycle (parallel billing of partners, as the daily task does).
    A caller that issues for a partner holds the partner's lock already (`ledger.partners_lock`, as the billing
    run does): partner, then sequences, never the other way round.
    """
    prefixes = sorted({GATE, *kinds})
    if InvoiceSequence.objects.filter(prefix__in=prefixes).count() != len(prefixes):
        InvoiceSequence.objects.bulk_create([InvoiceSequence(prefix=p) for p in prefixes], ignore_conflicts=True)
    sequences = {s.prefix: s for s in InvoiceSequence.objects.select_for_update().filter(prefix__in=prefixes)
                 .order_by("prefix")}  # the gate (CI) sorts before CN and INV
    numbers = []
    for kind in kinds:
        sequences[kind].last += 1
        numbers.append(f"{kind}-{sequences[kind].last:04d}")
    for kind in set(kinds):
        InvoiceSequence.objects.filter(prefix=kind).update(last=sequences[kind].last)
    return numbers
