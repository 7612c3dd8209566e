"""A billing clerk's command line in a test: files imported, runs made and reports read as `manage.py` does them
(import_csv, run_billing, export_report), each asserted to succeed unless said otherwise."""

from __future__ import annotations

import csv
import io
import itertools

from conftest import run_cli

_files = itertools.count(1)


def imp(tmp_path, kind, text, *extra, ok=True):
    """`import_csv KIND FILE` of `text` (stripped, one line end) written to a file of its own under tmp_path."""
    path = tmp_path / f"{kind}-{next(_files)}.csv"
    path.write_text(text.strip() + "\n", encoding="utf-8")
    result = run_cli("import_csv", kind, str(path), *extra)
    if ok:
        assert result.status == 0, (kind, result.out, result.err)
    return result


def bill(through, *extra):
    """`run_billing --through THROUGH`; what it printed."""
    result = run_cli("run_billing", "--through", through, *extra)
    assert result.status == 0, result.err
    return result.out


def report(name, *extra):
    """`export_report NAME --format csv` as rows (dicts of strings)."""
    result = run_cli("export_report", name, "--format", "csv", *extra)
    assert result.status == 0, result.err
    return list(csv.DictReader(io.StringIO(result.out)))


def lines(*extra):
    """The invoice-lines export as rows."""
    return report("invoice-lines", *extra)
