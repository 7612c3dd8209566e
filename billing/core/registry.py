"""Where each app registers what an earlier layer asks of it: import kinds and reports (so that `import_csv`
and `export_report` never import an app), and the months invoicing has invoiced (so that partners, which
invoicing reads, never imports invoicing: tests/test_layers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

_import_kinds: dict[str, object] = {}
_reports: dict[str, object] = {}
_invoiced_months: list[Callable[[Iterable[int]], dict[int, str]]] = []
_document_finders: list[Callable[[str], Callable[[], bytes] | None]] = []


def register_import(kind):
    """Register an ImportKind instance under its name (used as a class decorator too)."""
    instance = kind() if isinstance(kind, type) else kind
    if instance.name in _import_kinds:
        raise ValueError(f"import kind {instance.name!r} registered twice")
    _import_kinds[instance.name] = instance
    return kind


def import_kinds() -> dict[str, object]:
    return dict(sorted(_import_kinds.items()))


def register_report(report):
    instance = report() if isinstance(report, type) else report
    if instance.name in _reports:
        raise ValueError(f"report {instance.name!r} registered twice")
    _reports[instance.name] = instance
    return report


def reports() -> dict[str, object]:
    return dict(sorted(_reports.items()))


def register_invoiced_months(reader: Callable[[Iterable[int]], dict[int, str]]):
    """The app that issues CIs (invoicing) says which month each partner was last invoiced for."""
    _invoiced_months[:] = [reader]
    return reader


def last_invoiced_months(partner_ids: Iterable[int]) -> dict[int, str]:
    """{partner id: the month (YYYY-MM) of its latest issued CI}; partners never invoiced are left out."""
    return _invoiced_months[0](partner_ids) if _invoiced_months else {}


def register_document_pdf(finder: Callable[[str], Callable[[], bytes] | None]):
    """A later app's documents for `render_invoice` (billing-rules 8.4): `finder(number)` gives a function that
    renders the document's PDF, or None when no document has that number (rebilling's customer invoices)."""
    if finder not in _document_finders:
        _document_finders.append(finder)
    return finder


def document_pdf(number: str) -> Callable[[], bytes] | None:
    """The renderer of the registered document numbered `number`, or None."""
    for finder in _document_finders:
        found = finder(number)
        if found is not None:
            return found
    return None
