"""The import engine behind `import_csv` and the admin's Import buttons (billing-rules 8.1, 9).

A file is streamed (bounded memory) and handed to its kind a batch of parsed
rows at a time, so that keys are resolved and rules checked per batch rather
than with one database round trip per row. Everything runs in one
transaction: when any row is bad, or on a dry run, it is rolled back, so an
import either writes all of its rows or nothing, and every bad row is named
as `row N: column: reason` (the header is row 1).

A hostile or broken file gets the same answer (import-formats 8): bytes that are not
UTF-8 and NUL characters are row errors on their cell (the file is read with surrogateescape, so a bad
byte never stops the reader at some chunk boundary far from its row), CSV the reader cannot follow (a
quote never closed, a row over MAX_RECORD_CHARS) is one line naming its row, and no row is ever held
longer than its batch.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.db import connection, reset_queries, transaction
from django.db.models.fields import NOT_PROVIDED
from import_export.fields import Field
from import_export.resources import Resource

from billing.core.actor import Actor
from billing.core.registry import import_kinds


class ImportFileError(Exception):
    """A fault of the whole file (encoding, header, empty): one clear line."""


# A row (one record, however many lines its quoted cells span) longer than this is refused before it is
# parsed: no import kind has rows anywhere near it, and a file of one endless row must not fill the memory.
MAX_RECORD_CHARS = 1_048_576
# A byte that is not UTF-8, as read with errors="surrogateescape"
_UNDECODED = re.compile("[\udc80-\udcff]")
SAVE_AS_UTF8 = "save the file as CSV UTF-8"


# A workbook's cell with nothing to import (an error value, a formula never calculated), as the CSV written from
# the workbook holds it (billing.core.import_jobs): this prefix, then the reason, reported on its row and column
CELL_FAULT = "\x00\x01"


def unreadable_text(text: str) -> str | None:
    """Why a cell's text cannot be stored, or None: a byte that was not UTF-8, a NUL character, or a workbook's
    cell fault (CELL_FAULT)."""
    if "\x00" in text:
        if text.startswith(CELL_FAULT):
            return text[len(CELL_FAULT):]
        return "contains a NUL character: the file is not plain text"
    undecoded = _UNDECODED.search(text)
    if undecoded:
        return f"not UTF-8 text (byte 0x{ord(undecoded.group()) - 0xDC00:02X}): {SAVE_AS_UTF8}"
    return None


@dataclass(frozen=True, order=True)
class RowError:
    row: int
    column: str
    reason: str

    def __str__(self):
        return f"row {self.row}: {self.column}: {self.reason}"


@dataclass
class ImportContext:
    """What a kind needs while it runs: options, the error list and the counters."""

    kind: str
    dry_run: bool = False
    partner: str | None = None
    as_of: date | None = None
    actor: Actor | None = None
    source: str = ""
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    failed_rows: set[int] = field(default_factory=set)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rows: int = 0
    header: frozenset = frozenset()
    state: dict = field(default_factory=dict)  # a kind's working memory for one run
    # import_csv --format NAME and --map COLUMN=FIELD (as given), for kinds that read other exports (rmm-assets)
    file_format: str | None = None
    column_map: tuple[str, ...] = ()
    # cells left blank because they could not be read, where a kind allows that (rmm-assets: last_seen, os)
    warnings: list[RowError] = field(default_factory=list)
    warning_count: int = 0
    # called after each batch with the rows read and the bytes of the file read so far (0 when unknown): the
    # admin's import page shows it (billing/core/import_jobs.py)
    on_progress: Callable[[int, int], None] | None = None
    position: Callable[[], int] = lambda: 0
    # called with a few words when a fast path moves on to work that reads no more rows ("checking the seat
    # rules"): the command's bar and the admin's import page show it beside the counts
    on_step: Callable[[str], None] | None = None

    def __post_init__(self):
        if self.actor is None:  # a script or test that names no actor: the import itself
            self.actor = Actor(label=f"import {self.kind}")

    # the errors of the row reported last: the same error twice on a row (a cell that two fields are read from, as
    # an RMM export's agent id built from its machine name) is reported once
    _row_errors: tuple[int, set] = field(default_factory=lambda: (0, set()), repr=False)

    def error(self, row: int, column: str, reason: str) -> None:
        if self._row_errors[0] != row:
            self._row_errors = (row, set())
        if (column, reason) in self._row_errors[1]:
            return
        self._row_errors[1].add((column, reason))
        self.error_count += 1
        self.failed_rows.add(row)
        if len(self.errors) < settings.IMPORT_MAX_REPORTED_ERRORS:
            self.errors.append(RowError(row, column, reason))

    def warn(self, row: int, column: str, reason: str) -> None:
        """A cell the kind leaves blank rather than refuse the file (the import goes on)."""
        self.warning_count += 1
        if len(self.warnings) < settings.IMPORT_MAX_REPORTED_ERRORS:
            self.warnings.append(RowError(row, column, reason))

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def progressed(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.rows, self.position())

    def step(self, text: str) -> None:
        if self.on_step is not None:
            self.on_step(text)


@dataclass
class ImportSummary:
    kind: str
    rows: int
    created: int
    updated: int
    unchanged: int
    errors: list[RowError]
    error_count: int
    bad_rows: int
    dry_run: bool
    staged: bool = False  # read by the kind's fast path (a COPY into a staging table), not row by row
    warnings: list[RowError] = field(default_factory=list)
    warning_count: int = 0
    read_as: str = ""  # what the kind recognised the file as (an RMM's export, say), for the summary line

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def describe(self) -> str:
        verb = "would import" if self.dry_run else "imported"
        return (
            f"{self.kind}{f' ({self.read_as})' if self.read_as else ''}: {verb} {self.rows} rows: "
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"
        )


@dataclass(frozen=True)
class ParsedRow:
    number: int
    values: dict
    present: frozenset  # the columns given a non-blank value in the file


class ImportKind:
    """One kind of import file. Subclasses name their resource (the columns) and process batches."""

    name: str = ""
    resource_class: type[Resource]
    # Columns a file must have; the others of the resource are optional.
    required_columns: tuple[str, ...] = ()
    # Columns that may be present but left blank.
    blank_allowed: tuple[str, ...] = ()
    allow_extra_columns = False
    allow_no_rows = False
    needs_partner_option = False
    needs_as_of_option = False

    def fields(self) -> dict[str, Field]:
        # built once per kind: a resource deep-copies its fields, which cost more than the rest of a row
        fields = self.__dict__.get("_fields")
        if fields is None:
            fields = {f.column_name: f for f in self.resource_class().get_import_fields()}
            self._fields = fields
        return fields

    def process_batch(self, batch: list[ParsedRow], ctx: ImportContext) -> None:
        raise NotImplementedError

    def finish(self, ctx: ImportContext) -> None:
        """Checks and writes that need the whole file (called once, after the last batch)."""

    @classmethod
    def reads_exports(cls) -> bool:
        """Whether the kind reads files itself (and so takes --format and --map)."""
        return cls.read_file is not ImportKind.read_file

    def read_file(self, path, ctx: ImportContext) -> tuple[list[str], Iterator[tuple[int, dict]]] | None:
        """A kind may read its files itself (rmm-assets reads the RMMs' own exports): the header and the
        (row number, cells) pairs for the engine, or None to leave the file to the engine's CSV reader."""
        return None

    def fast_path(self, path, ctx: ImportContext) -> ImportSummary | None:
        """A kind may import a clean file by a faster way (run_import_file asks on PostgreSQL): the summary of
        an import that gives exactly what the row-by-row engine would, or None to leave the file to the
        engine (then nothing may have been written, and the engine names the errors)."""
        return None

    # --- parsing -------------------------------------------------------------------
    def check_options(self, ctx: ImportContext) -> None:
        if (ctx.file_format or ctx.column_map) and not self.reads_exports():
            takers = [name for name, kind in import_kinds().items() if kind.reads_exports()]
            raise ImportFileError(f"--format and --map are for {', '.join(takers) or 'no'} files, not {self.name}")
        if self.needs_partner_option and not ctx.partner:
            raise ImportFileError(f"{self.name} imports need --partner SLUG")
        if self.needs_as_of_option and not ctx.as_of:
            raise ImportFileError(f"{self.name} imports need --as-of YYYY-MM-DD")

    def check_header(self, header: list[str]) -> None:
        fields = self.fields()
        seen = set()
        for column in header:
            if column in seen and column:  # columns with no name are unknown columns (below)
                raise ImportFileError(f"column {column!r} appears twice in the header")
            seen.add(column)
        missing = [c for c in self.required_columns if c not in seen]
        if missing:
            hint = ""
            if len(header) == 1 and ";" in header[0]:  # a spreadsheet set to a comma decimal separator
                hint = "; the cells are separated by semicolons: save the file with commas (CSV UTF-8)"
            elif len(header) == 1 and "\t" in header[0]:  # Excel's "Text (Tab delimited)", or a TSV export
                hint = "; the cells are separated by tabs: save the file with commas (CSV UTF-8)"
            raise ImportFileError(f"missing column(s): {', '.join(missing)} (header: {', '.join(header)}){hint}")
        unknown = [c or f"(column {i}, no name)" for i, c in enumerate(header, 1) if c not in fields]
        if unknown and not self.allow_extra_columns:
            raise ImportFileError(
                f"unknown column(s): {', '.join(unknown)} (expected: {', '.join(fields)})"
            )

    def parse_row(self, number: int, raw: dict, ctx: ImportContext) -> ParsedRow | None:
        values, present = {}, set()
        ok = True
        unreadable = set()
        try:
            whole = "".join(raw.values())  # one look at a good row
        except TypeError:  # a caller's row with other values than text
            whole = "".join(c for c in raw.values() if isinstance(c, str))
        if unreadable_text(whole):
            for column, cell in raw.items():  # every cell, those a kind ignores too: none reaches a widget or log
                reason = unreadable_text(cell) if isinstance(cell, str) else None
                if reason:
                    ctx.error(number, column, reason)
                    unreadable.add(column)
                    ok = False
        for column, fld in self.fields().items():
            if column in unreadable:
                continue
            cell = raw.get(column)
            text = "" if cell is None else str(cell).strip()
            if text == "":
                if column in self.required_columns and column not in self.blank_allowed:
                    ctx.error(number, column, "is required")
                    ok = False
                values[column] = None if fld.default is NOT_PROVIDED else fld.default
                continue
            try:
                values[column] = fld.widget.clean(text)
            except ValueError as exc:
                ctx.error(number, column, str(exc))
                ok = False
                continue
            present.add(column)
        if ok and ctx.partner and "partner" in values and values["partner"] != ctx.partner:
            ctx.error(number, "partner", f"{values['partner']!r} is not the partner given with --partner "
                                         f"({ctx.partner})")
            ok = False
        return ParsedRow(number, values, frozenset(present)) if ok else None


class _RecordTooLong(Exception):
    pass


class _Lines:
    """The lines of a text stream for csv.reader, read at most MAX_RECORD_CHARS at a time, counting the
    characters of the record being read (reset by the caller after each record)."""

    def __init__(self, stream):
        self.readline = getattr(stream, "readline", None)
        self.lines = None if self.readline else iter(stream)
        self.used = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.readline(MAX_RECORD_CHARS + 1) if self.readline else next(self.lines, "")
        if not line:
            raise StopIteration
        self.used += len(line)
        if self.used > MAX_RECORD_CHARS:
            raise _RecordTooLong
        return line


def _csv_fault(exc: csv.Error) -> str:
    reason = str(exc)
    if reason == "unexpected end of data":
        return 'a quoted cell is never closed (a " is missing): the file ends inside it'
    if reason.startswith("field larger than field limit"):
        return f"a cell is longer than {csv.field_size_limit():,} characters (is a quote left open?)"
    if reason == "',' expected after '\"'":
        return 'text after the closing quote of a cell (a " inside a quoted cell is written "")'
    return f"the line cannot be read as CSV: {reason}"


def _header_fault(text: str) -> str | None:
    """Why a header line shows the file is not UTF-8 CSV text, or None."""
    if text.startswith(("\udcff\udcfe", "\udcfe\udcff")) or "\x00" in text[:2]:
        return f"the file is UTF-16 text, not UTF-8: {SAVE_AS_UTF8}"
    if text.startswith("PK\x03\x04"):
        return f"the file is a ZIP archive (an .xlsx workbook?), not CSV text: {SAVE_AS_UTF8}"
    # the OLE2 container (D0 CF 11 E0 A1 B1 1A E1): Excel 97-2003, or a workbook protected by a password
    if text.startswith("\udcd0\udccf\x11"):
        return ("the file is an Excel 97-2003 workbook (.xls) or a workbook protected by a password, not CSV text: "
                "save it as an Excel workbook (.xlsx) without a password, or as CSV UTF-8")
    reason = unreadable_text(text)
    if reason is None:
        return None
    return f"the header {reason}" if reason.startswith("contains") else f"the header is {reason}"


def read_csv(stream: Iterable[str], *, delimiter: str = ",",
             header_row: int = 1) -> tuple[list[str], Iterator[tuple[int, dict]]]:
    """The header (normalised) and an iterator of (row number, cells) over a text stream.

    Row numbers count records, as a spreadsheet does (a cell with a line break in quotes is one row),
    blank lines included; the header is row `header_row` (2 when a line before it was skipped)."""
    lines = _Lines(stream)
    reader = csv.reader(lines, strict=True, delimiter=delimiter)
    try:
        header_cells = next(reader)
    except StopIteration:
        raise ImportFileError("the file is empty") from None
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise ImportFileError(f"the header cannot be read as CSV: {_csv_fault(exc)}") from None
    except _RecordTooLong:
        raise ImportFileError(f"the header is longer than {MAX_RECORD_CHARS:,} characters") from None
    fault = _header_fault(",".join(header_cells))
    if fault:
        raise ImportFileError(fault)
    header = [cell.strip().lower() for cell in header_cells]
    if not any(header):
        raise ImportFileError("the header row is empty")

    def rows():
        number = header_row
        try:
            lines.used = 0
            for cells in reader:
                lines.used = 0
                number += 1
                if not any(cell.strip() for cell in cells):
                    continue  # a blank line
                if len(cells) > len(header):
                    extra = cells[len(header):]
                    if any(c.strip() for c in extra):
                        yield number, {"__too_many__": len(cells)}
                        continue
                yield number, dict(zip(header, cells, strict=False))
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"the file is not UTF-8 text (after row {number}: {exc.reason} at byte {exc.start})"
            ) from None
        except csv.Error as exc:
            raise ImportFileError(f"row {number + 1}: {_csv_fault(exc)}") from None
        except _RecordTooLong:
            raise ImportFileError(
                f"row {number + 1}: longer than {MAX_RECORD_CHARS:,} characters (is a quote left open?)"
            ) from None

    return header, rows()


def run_import(kind_name: str, stream: Iterable[str], **options) -> ImportSummary:
    """Import a text stream of CSV of the given kind, all or nothing."""
    kind, ctx = _start(kind_name, options)  # options are checked before the file is read
    header, rows = read_csv(stream)
    return _run(kind, ctx, header, rows)


def _start(kind_name: str, options: dict) -> tuple[ImportKind, ImportContext]:
    kind = _kind(kind_name)
    ctx = ImportContext(kind=kind_name, **options)
    kind.check_options(ctx)
    return kind, ctx


def _kind(kind_name: str) -> ImportKind:
    kinds = import_kinds()
    if kind_name not in kinds:
        raise ImportFileError(f"unknown import kind {kind_name!r} (one of {', '.join(kinds)})")
    return kinds[kind_name]


def _run(kind: ImportKind, ctx: ImportContext, header: list[str], rows) -> ImportSummary:
    kind_name = ctx.kind
    kind.check_header(header)
    ctx.header = frozenset(header)
    with transaction.atomic():
        batch: list[ParsedRow] = []
        for number, raw in rows:
            ctx.rows += 1
            if "__too_many__" in raw:
                ctx.error(number, "(line)", f"{raw['__too_many__']} cells for {len(header)} columns")
                continue
            parsed = kind.parse_row(number, raw, ctx)
            if parsed is not None:
                batch.append(parsed)
            if len(batch) >= settings.IMPORT_BATCH_SIZE:
                kind.process_batch(batch, ctx)
                batch = []
                reset_queries()  # under DEBUG, Django keeps the SQL of the last 9,000 queries: a batch's is large
            if ctx.rows % settings.IMPORT_BATCH_SIZE == 0:
                ctx.progressed()
        if batch:
            kind.process_batch(batch, ctx)
        ctx.progressed()
        if ctx.rows == 0 and not kind.allow_no_rows:
            raise ImportFileError("the file has a header but no data rows")
        kind.finish(ctx)
        if not ctx.ok or ctx.dry_run:
            transaction.set_rollback(True)
    return ImportSummary(
        kind=kind_name, rows=ctx.rows, created=ctx.created, updated=ctx.updated, unchanged=ctx.unchanged,
        errors=sorted(ctx.errors), error_count=ctx.error_count,
        bad_rows=len(ctx.failed_rows), dry_run=ctx.dry_run,
        warnings=sorted(ctx.warnings), warning_count=ctx.warning_count, read_as=ctx.state.get("read_as", ""),
    )


def open_csv(path):
    """A CSV file as a text stream: UTF-8 with or without a BOM. A byte that is not UTF-8 is read as a lone
    surrogate and answered as a row error on its cell (see unreadable_text), or as a header fault."""
    return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")


def run_import_file(kind_name: str, path, **options) -> ImportSummary:
    """Import a CSV file. A kind may read the file itself (ImportKind.read_file); otherwise, on PostgreSQL, it
    may take the file by its fast path first (ImportKind.fast_path); a file it leaves goes through the engine
    row by row."""
    with open_csv(path) as stream:
        kind, ctx = _start(kind_name, options)
        ctx.position = stream.buffer.tell  # bytes read, for progress
        own = kind.read_file(path, ctx)
        if own is not None:
            header, rows = own
            try:
                return _run(kind, ctx, header, rows)
            finally:
                getattr(rows, "close", lambda: None)()  # the kind's reader closes its file
        if connection.vendor == "postgresql":
            summary = kind.fast_path(path, ctx)
            if summary is not None:
                return summary
        header, rows = read_csv(stream)
        return _run(kind, ctx, header, rows)


def run_import_text(kind_name: str, text: str, **options) -> ImportSummary:
    return run_import(kind_name, io.StringIO(text.removeprefix("\ufeff"), newline=""), **options)
