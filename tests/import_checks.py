"""Checks shared by the import tests of every app: a rejected file writes nothing and names its rows."""

from __future__ import annotations

import dataclasses

from django.core.files.uploadedfile import SimpleUploadedFile

from billing.core.importing import ImportFileError


def table_rows(models) -> dict[str, list[dict]]:
    """Every row of the given models, so that 'nothing was written' covers updates too."""
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in models}


def staged_answer(run):
    """What an import answered, to compare a fast path with the engine: (the summary without its `staged` flag, or
    the fault), and whether the staging path took the file."""
    try:
        summary = run()
    except ImportFileError as exc:
        return ("fault", str(exc)), False
    return ("summary", dataclasses.replace(summary, staged=False)), summary.staged


def csv_text(header: str, *rows: str) -> str:
    return "\n".join([header, *rows]) + "\n"


def row_error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("row ")]


def import_rejected(cli, kind: str, path, *options: str, tracked):
    """Run the import; it must exit 1, say nothing was imported, and leave the tracked tables as they were.
    Returns (result, its `row N: ...` lines)."""
    before = table_rows(tracked)
    result = cli("import_csv", kind, str(path), *options)
    assert result.status == 1, result.out
    assert "nothing was imported" in result.err
    assert table_rows(tracked) == before
    return result, row_error_lines(result.err)


def admin_import(client, import_url: str, text: str | bytes, name: str = "file.csv"):
    """Upload a file with the admin's Import button (it is checked in the request: the test settings run import
    jobs inline); the job's page it leads to."""

    data = text.encode() if isinstance(text, str) else text
    response = client.post(import_url, {"import_file": SimpleUploadedFile(name, data, content_type="text/csv")})
    assert response.status_code == 302, response.content.decode()[:2000]
    return client.get(response["Location"])


def admin_confirm(client, job_page):
    """Press Confirm import on a checked job's page; the page it leads to."""
    response = client.post(job_page.wsgi_request.path, {"confirm": "Confirm import"})
    assert response.status_code == 302
    return client.get(response["Location"])
