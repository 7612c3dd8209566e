"""The admin's Import button runs the same all-or-nothing engine as `import_csv`."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from import_export.results import Error, Result, RowResult

from billing.actor import Actor
from billing.importing import ImportFileError, run_import_rows


def dataset_rows(dataset):
    header = [str(h or "").strip().lower() for h in (dataset.headers or [])]
    rows = []
    for index, values in enumerate(dataset, start=2):
        cells = ["" if v is None else str(v) for v in values]
        if any(c.strip() for c in cells):
            rows.append((index, dict(zip(header, cells, strict=False))))
    return header, rows


class BulkImportResourceMixin:
    """Resources of an import kind: `import_data` delegates to the bulk engine and reports its
    row errors in import-export's Result, so the admin shows `row N: column: reason`."""

    import_kind: str = ""

    def import_data(self, dataset, dry_run=False, raise_errors=False, use_transactions=None,
                    collect_failed_rows=False, rollback_on_validation_errors=False, **kwargs):
        result = Result()
        header, rows = dataset_rows(dataset)
        result.diff_headers = header
        result.total_rows = len(rows)
        user = kwargs.get("user")
        try:
            summary = run_import_rows(
                self.import_kind, header, iter(rows), dry_run=dry_run,
                actor=Actor.of_user(user, label=f"admin import by {user}"),
                source=kwargs.get("file_name") or "admin import",
            )
        except ImportFileError as exc:
            result.append_base_error(Error(exc))
            return result
        cells_by_row = dict(rows)
        for error in summary.errors:
            result.append_invalid_row(
                error.row, cells_by_row.get(error.row, {}), ValidationError({error.column: [error.reason]})
            )
        if summary.ok:
            result.totals[RowResult.IMPORT_TYPE_NEW] = summary.created
            result.totals[RowResult.IMPORT_TYPE_UPDATE] = summary.updated
            result.totals[RowResult.IMPORT_TYPE_SKIP] = summary.unchanged
        return result
