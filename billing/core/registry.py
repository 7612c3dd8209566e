"""Where each app registers its import kinds and reports, so that the commands
`import_csv` and `export_report` (in this project package) never import a later app."""

from __future__ import annotations

_import_kinds: dict[str, object] = {}
_reports: dict[str, object] = {}


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
