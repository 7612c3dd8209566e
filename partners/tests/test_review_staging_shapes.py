"""The shapes Excel and Google Sheets write, fed to the set-based (COPY) paths of the big import kinds
(partners.seat_staging, metering.tenant_staging, metering.usage_staging, metering.staging; the frame
billing.core.copy_staging) and to the row-by-row engine, the reference: each file must give the same answer and the
same tables both ways (billing-rules 9.3; import-formats), or be handed to the engine. The comparison is the review
tests' own helpers (imported, not copied): partners/tests/test_seat_staging_review._compare,
metering/tests/test_tenant_staging.both, metering/tests/test_staging_review.records_both and
metering/tests/test_rmm_staging_review.compare."""

from __future__ import annotations

import pytest
import time_machine
from django.db import connection

import billing.core.copy_staging as copy_staging
from billing.core.importing import ImportFileError, run_import_file
from metering.tests import test_rmm_staging as rmm_base
from metering.tests import test_rmm_staging_review as rmm_review
from metering.tests import test_staging_review as records_review
from metering.tests import test_tenant_staging as tenant
from metering.tests.factories import acme_and_globex
from metering.tests.test_rmm_staging import partner  # noqa: F401  (fixture, used through getfixturevalue)
from metering.tests.test_usage_records import HEADERS
from partners.tests import test_seat_staging_review as seat_review
from partners.tests.test_seat_staging import acme  # noqa: F401  (fixture, used through getfixturevalue)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: the set-based paths are PostgreSQL's; SQLite reads row by row")]

# kind: (header, good rows, the column of free text to dress up)
KINDS = {
    "seat-events": ("partner,customer,member,action,at",
                    ["acme,south,ana,assign,2026-11-02T08:00:00Z", "acme,south,ben,assign,2026-11-02T09:00:00Z",
                     "acme,north,cy,assign,2026-11-03T09:00:00Z"], 2),
    "tenant-usage": (tenant.USAGE, ["acme,north,2026-04-01,10,100,5", "acme,south,2026-04-01,3,0,",
                                    "acme,north,2026-04-02,11,100,7"], 1),
    "tenant-events": (tenant.EVENTS, ["acme,north,suspend,2026-04-01T09:00:00Z",
                                      "acme,north,unsuspend,2026-04-02T09:00:00Z",
                                      "acme,south,suspend,2026-04-03T09:00:00Z"], 1),
    "call-usage": (HEADERS["call-usage"], ["acme,north,c-1,201,2026-10-31T23:59:59Z,61,outbound,International",
                                           "acme,north,c-2,202,2026-11-01T00:30:00+01:00,60,outbound,international",
                                           "acme,south,c-4,301,2026-11-02T08:00:00Z,3599,internal,internal"], 3),
    "rmm-assets": (",".join(rmm_base.HEADER), ["a1,PC-1,North,WS,Windows 11,2026-05-01T08:00:00Z",
                                               "a2,PC-2,South,,,", "a3,PC-3,North,Lab,macOS,"], 1),
}


@pytest.fixture
def world(request, kind):
    """The state each kind's review tests start from, with its clock."""
    if kind == "rmm-assets":
        with time_machine.travel(rmm_base.NOW, tick=True):
            yield request.getfixturevalue("partner")
        return
    with time_machine.travel(tenant.NOW, tick=True):
        yield request.getfixturevalue("acme") if kind == "seat-events" else acme_and_globex()


def _engine_reading_as_run_import_file(path, **options):
    """The engine as run_import_file feeds it (open_csv: a byte that is not UTF-8 is a row error, not a crash)."""
    return tenant.engine("seat-events", path, **options)


@pytest.fixture(autouse=True)
def _seat_engine(monkeypatch):
    # seat_review._compare's engine opens the file strictly as UTF-8; run_import_file reads it with open_csv
    monkeypatch.setattr(seat_review, "_engine", _engine_reading_as_run_import_file)


def run(kind, path, world) -> tuple[object, bool]:
    """Both ways, compared by the review tests' helper: (the staged answer or summary, whether COPY took it)."""
    if kind == "seat-events":
        try:
            _, staged = seat_review._compare(path)
        except ImportFileError as exc:  # a fault of the file: the same fault both ways (the helper compares summaries)
            with pytest.raises(ImportFileError) as got:
                run_import_file(kind, path, source="seats.csv", actor=seat_review.ACTOR)
            assert str(got.value) == str(exc)
            return ("fault", str(exc)), False
        return staged, staged.staged
    if kind.startswith("tenant"):
        return tenant.both(kind, path)
    if kind == "rmm-assets":
        return rmm_review.compare(path, world, rmm_base.MAY_11)
    return records_review.records_both(kind, path)


def cells(line: str) -> list[str]:
    return line.split(",")


def dress(rows: list[str], column: int, fn) -> list[str]:
    out = []
    for line in rows:
        c = cells(line)
        c[column] = fn(c[column])
        out.append(",".join(c))
    return out


def q(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"'


def shapes(kind: str) -> dict[str, bytes]:
    header, rows, col = KINDS[kind]
    width = len(cells(header))
    commas = "," * (width - 1)

    def text(lines, nl="\n", bom=False, end=True):
        body = nl.join(lines) + (nl if end else "")
        return (("\ufeff" if bom else "") + body).encode()

    excel_header = ",".join(f" {c.replace('_', '_').title()} " for c in cells(header))
    return {
        "bom crlf": text([header, *rows], "\r\n", bom=True),
        "bom crlf no final line end": text([header, *rows], "\r\n", bom=True, end=False),
        "header in other case with spaces": text([excel_header, *rows], "\r\n", bom=True),
        "header in capitals, quoted": text([",".join(q(c.upper()) for c in cells(header)), *rows]),
        "trailing empty columns on header and rows": text([header + ",,,", *(r + ",,," for r in rows)], "\r\n"),
        "trailing empty columns on the rows only": text([header, *(r + ",,," for r in rows)], "\r\n"),
        "trailing empty columns on the header only": text([header + ",,,", *rows], "\r\n"),
        "a row of bare commas in the middle": text([header, rows[0], commas, *rows[1:]], "\r\n"),
        "a row of bare commas at the end": text([header, *rows, commas], "\r\n"),
        "rows of bare commas at the end (Sheets)": text([header, *rows, commas, commas, commas], "\r\n"),
        "a row of quoted empty cells": text([header, rows[0], ",".join(['""'] * width), *rows[1:]], "\r\n"),
        "a row of spaces and commas": text([header, rows[0], ",".join([" "] * width), *rows[1:]]),
        "a row of commas longer than the header": text([header, rows[0], commas + ",,,", *rows[1:]]),
        "every cell quoted, crlf": text([",".join(q(c) for c in cells(header)),
                                         *(",".join(q(c) for c in cells(r)) for r in rows)], "\r\n", bom=True),
        "quoted text with a comma, quotes and a line break": text(
            [header, *dress(rows, col, lambda c: q(f'{c}, "x"\r\ny'))], "\r\n"),
        "quoted text with a comma": text([header, *dress(rows, col, lambda c: q(f"{c}, Inc."))]),
        "a leading and trailing tab": text([header, *dress(rows, col, lambda c: f"\t{c}\t")]),
        "a leading and trailing no-break space": text([header, *dress(rows, col, lambda c: f"\u00a0{c}\u00a0")]),
        "a quoted cell with a trailing no-break space": text([header, *dress(rows, col, lambda c: q(c + "\u00a0"))]),
        "no-break spaces in every cell": text([header, *(",".join(f"\u00a0{c}\u00a0" for c in cells(r))
                                                         for r in rows)], "\r\n"),
        "tabs in every cell": text([header, *(",".join(f"\t{c}" for c in cells(r)) for r in rows)]),
        "windows-1252 bytes": ("\n".join([header, *dress(rows, col, lambda c: c + "\u2019s caf\u00e9")]) + "\n"
                               ).encode("cp1252"),
        "windows-1252 no-break space": ("\n".join([header, *dress(rows, col, lambda c: c + "\u00a0")]) + "\n"
                                        ).encode("cp1252"),
        "empty file": b"",
        "a BOM only": "\ufeff".encode(),
        "header only": text([header], "\r\n", bom=True),
        "header only without a line end": text([header], end=False),
        "header and blank lines": text([header, "", ""], "\r\n"),
        "a cell of 201 characters": text([header, *dress(rows, col, lambda c: c + "x" * (201 - len(c)))]),
        "a cell of 200 characters with spaces around": text(
            [header, *dress(rows, col, lambda c: "  " + c + "x" * (200 - len(c)) + " \u00a0")]),
        "a cell of 200 characters": text([header, *dress(rows, col, lambda c: c + "\u00e9" * (200 - len(c)))]),
        "a NUL byte": text([header, *dress(rows, col, lambda c: c + "\x00")]),
        "header crlf, rows lf": ("\r\n".join([header, rows[0]]) + "\r\n" + "\n".join(rows[1:]) + "\n").encode(),
        "rows lf, the last crlf": ("\n".join([header, *rows[:-1]]) + "\n" + rows[-1] + "\r\n").encode(),
        "cr line ends": text([header, *rows], "\r"),
        "crlf with a lone cr line": ("\r\n".join([header, rows[0]]) + "\r" + "\r\n".join(rows[1:]) + "\r\n"
                                     ).encode(),
        "blank crlf lines at the end of an lf file": text([header, *rows]) + b"\r\n\r\n",
        "a blank line in the middle": text([header, rows[0], "", *rows[1:]], "\r\n"),
    }


CASES = [(kind, name) for kind in KINDS for name in shapes(kind)]

# findings: (kind, shape) -> reason
FINDINGS: dict[tuple[str, str], str] = {}


@pytest.mark.parametrize("chunk", [1 << 20, 1, 2, 3, 7], ids=lambda c: f"chunk {c}")
@pytest.mark.parametrize(("kind", "shape"), [
    pytest.param(kind, name, marks=[pytest.mark.xfail(strict=True, reason=FINDINGS[kind, name])]
                 if (kind, name) in FINDINGS else [], id=f"{kind}: {name}") for kind, name in CASES])
def test_a_spreadsheet_shape_gives_the_engine_s_answer_both_ways(world, tmp_path, monkeypatch, kind, shape, chunk):
    monkeypatch.setattr(copy_staging, "CHUNK", chunk)  # what copy_to_stage reads
    path = tmp_path / "sheet.csv"
    path.write_bytes(shapes(kind)[shape])
    run(kind, path, world)


RMM = ",".join(rmm_base.HEADER)


@pytest.mark.parametrize(("notes", "name"), [
    ("x" * 140_000, "an unquoted cell past the csv module's field limit"),
    ('"' + "x" * 140_000 + '"', "a quoted cell past the csv module's field limit"),
    ("x" * 1_100_000, "a row past the engine's record limit"),
    ("x" * 131_072, "a cell at the field limit"),
])
@pytest.mark.parametrize("kind", ["rmm-assets"])
def test_a_very_long_cell_in_a_column_rmm_assets_does_not_read(world, tmp_path, kind, notes, name):
    """RMM exports carry columns the import does not read (allow_extra_columns): a notes column of a
    spreadsheet with a huge cell. The engine refuses a cell past csv.field_size_limit() (131,072) or a row past
    MAX_RECORD_CHARS as a fault of the file; the COPY path must not import it."""
    path = tmp_path / "sheet.csv"
    path.write_text(f"{RMM},notes\r\na1,PC-1,North,WS,Windows 11,2026-05-01T08:00:00Z,{notes}\r\n"
                    "a2,PC-2,South,,,,\r\n")
    run(kind, path, world)
