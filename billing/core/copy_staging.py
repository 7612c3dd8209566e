"""COPY a CSV file into PostgreSQL as the import engine would read it (billing/core/importing.py): the pieces the
fast paths of the big import kinds share (metering.staging for rmm-assets, metering.usage_staging for usage records,
partners.seat_staging for seat events, metering.tenant_staging for tenant usage): the header as the engine reads
it, a watch over the bytes on their way to COPY (`_Scan`: what COPY could read otherwise than the csv module on
UTF-8 text, and how cells must be trimmed to read as str.strip() leaves them), the instant forms both read alike,
`NotClean`, which leaves a file to the engine, and `staged_import`, the frame of a fast path's transaction."""

from __future__ import annotations

import codecs
import logging
import os
import re
from collections.abc import Callable, Iterable
from typing import TypeVar

import psycopg
from django.db import DatabaseError, connection, transaction

from billing.core.importing import ImportContext, ImportFileError, ImportKind, open_csv, read_csv
from billing.core.sql import Params

logger = logging.getLogger(__name__)
T = TypeVar("T")

CHUNK = 1 << 20
MAX_COLUMNS = 1000
CARRY_LIMIT = 4 << 20  # a quoted cell of more bytes is left to the engine (its limit: 131,072 characters)
TEXT_MAX = 200  # the resource's TextWidget(max_length=200), the columns' max_length
# Every character str.strip() takes off the ends of a cell (str.isspace); metering/tests/test_rmm_staging.py checks it
# against Python's own. Only " ", CR and LF are trimmed when the file holds none of the others.
PY_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
                 "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
PLAIN_WHITESPACE = " \r\n"
_OTHER_WHITESPACE = "".join(c for c in PY_WHITESPACE if c not in PLAIN_WHITESPACE)
_OTHER_SPACE_TEXT = re.compile("[" + re.escape(_OTHER_WHITESPACE) + "]")
_OTHER_SPACE_BYTES = [c.encode() for c in _OTHER_WHITESPACE if c.isascii()]  # one memchr each: faster than a regex
# In a file without quotes, a cell begins or ends with a space only next to a comma or a line end (or at the
# very end): the file's bytes as "," (those), " " and "x" (the rest), in which to look for ", " and " ,".
_SEPARATORS = bytes.maketrans(b",\r\n " + bytes(c for c in range(256) if c not in b",\r\n "),
                              b",,, " + b"x" * 252)
_QUOTED = re.compile(rb'"[^"]*(?:""[^"]*)*"')
_CELL_ENDS = (b",", b"\r", b"\n")
# The instants read here besides the plain YYYY-MM-DDTHH:MM:SSZ (checked by formatting it back): each is read by
# datetime.fromisoformat and by PostgreSQL as the same instant: T, t or a space between date and time (as
# databases and PSAs export them), seconds or not, Z, z, +HH, +HHMM or +HH:MM. Years 1000-9998, so that no
# offset takes it out of 0001-9999 in UTC (the engine refuses those); at most 6 decimals (PostgreSQL would round
# a 7th, Python drops it); no hour 24 or second 60 (PostgreSQL takes them).
INSTANT_RE = (r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}[Tt ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
              r"([Zz]|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)$")
SLUG_RE = r"^[a-z0-9][a-z0-9_-]*$"  # billing.core.widgets.SlugWidget: a cell naming a partner or a customer


class NotClean(Exception):
    """The file is left to the row-by-row engine (the message says why, for the log)."""


def staged_import(path, ctx: ImportContext, kind: ImportKind, *, label: str, tables: Iterable[str],
                  apply: Callable[..., T], after: Callable[[T], None] | None = None,
                  numbered: bool = False) -> tuple[int, T] | None:
    """A fast path's frame, on PostgreSQL: in one transaction, the file COPYed into `tables`' first (the stage) and
    `apply(cursor, header, scan, rows)` run over it, the working `tables` dropped, then `after(result)` (its audit,
    its alerts); rolled back under --dry-run. Returns (data rows, apply's result), or None when the engine must read
    the file: not on PostgreSQL, no data rows, a NotClean (logged under `label`) or a database error (nothing was
    written)."""
    if connection.vendor != "postgresql":
        return None
    tables = tuple(tables)
    try:
        with transaction.atomic():
            try:
                with connection.cursor() as cursor:
                    header = _header(path, kind)
                    cursor.execute(f"DROP TABLE IF EXISTS {', '.join(tables)}")  # an earlier try's
                    rows, scan = copy_to_stage(cursor, path, tables[0], len(header), numbered=numbered,
                                               on_chunk=chunk_progress(ctx))
                    if rows == 0:
                        raise NotClean("no data rows")
                    if ctx.on_progress is not None:
                        ctx.on_progress(rows, os.path.getsize(path))
                    ctx.step("checking and writing")
                    result = apply(cursor, header, scan, rows)
                    cursor.execute(f"DROP TABLE IF EXISTS {', '.join(tables)}")
            except (DatabaseError, psycopg.Error) as exc:  # a line COPY refused, a value it cannot read, a key
                raise NotClean(f"PostgreSQL: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
            if after is not None:
                after(result)
            if ctx.dry_run:
                transaction.set_rollback(True)
    except NotClean as exc:
        logger.info("%s %s: read row by row (%s)", label, path, exc)
        ctx.step("reading row by row")
        return None
    return rows, result


def chunk_progress(ctx: ImportContext) -> Callable[[int, int], None] | None:
    """The COPY's progress as the engine's batches report theirs: (rows, bytes read)."""
    if ctx.on_progress is None:
        return None
    return lambda read, lines: ctx.on_progress(lines, read)


def _header(path, kind: ImportKind) -> list[str]:
    """The header as the engine reads it; a header it would refuse is left to it (it says why)."""
    try:
        with open_csv(path) as stream:
            header, _ = read_csv(stream)
        kind.check_header(header)
    except ImportFileError as exc:
        raise NotClean(str(exc)) from None
    if len(header) > MAX_COLUMNS:
        raise NotClean(f"{len(header)} columns")
    return header


class _Scan:
    """Watches the bytes on their way to COPY, chunk by chunk: refuses what COPY could read otherwise than the
    engine (the csv module on UTF-8 text), and notes how the cells must be trimmed to read as str.strip()
    leaves them: not at all, of " ", CR and LF, or of every character str.strip() takes off."""

    def __init__(self):
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.other_whitespace = False  # whitespace other than " ", CR and LF, anywhere
        self.quotes = False
        self.apostrophes = False
        self.spaced = False  # a space next to a comma or a line end, or at the very end
        self.tail = b""  # the last byte of the previous chunk
        self.before = b"\n"  # the byte before `carry` (the start of the file is a cell's start)
        self.carry = b""  # a quoted cell not closed by the end of the previous chunk, from its opening quote

    def feed(self, chunk: bytes, final: bool = False) -> None:
        if b"\x00" in chunk:
            raise NotClean("a NUL byte")
        joined = self.tail + chunk  # a pair of bytes may straddle two chunks
        if b"\\" in joined and b"\\." in joined:  # COPY's end-of-data marker (on a line of its own)
            raise NotClean("\\. in the file")
        if not self.spaced and (b" " in joined or final):  # the space may end the previous chunk
            marks = joined.translate(_SEPARATORS)
            self.spaced = b", " in marks or b" ," in marks or (final and self.tail == b" ")
        self.tail = chunk[-1:] or self.tail
        self.apostrophes = self.apostrophes or b"'" in chunk
        if chunk.isascii() and not self.decoder.getstate()[0]:
            if not self.other_whitespace and any(c in chunk for c in _OTHER_SPACE_BYTES):
                self.other_whitespace = True
        else:
            try:
                text = self.decoder.decode(chunk, final)
            except UnicodeDecodeError as exc:
                raise NotClean(f"not UTF-8 ({exc.reason})") from None
            if not self.other_whitespace and _OTHER_SPACE_TEXT.search(text):
                self.other_whitespace = True
        if self.carry or b'"' in chunk:
            self.quotes = True
            self._quotes(chunk, final)
        elif chunk:
            self.before = chunk[-1:]

    def finish(self) -> None:
        self.feed(b"", final=True)

    @property
    def trim(self) -> str | None:
        """The characters to trim off the cells, or None: no cell begins or ends with whitespace."""
        if self.other_whitespace:
            return PY_WHITESPACE
        if self.quotes or self.spaced:  # a quoted cell may begin or end with anything
            return PLAIN_WHITESPACE
        return None

    def _quotes(self, chunk: bytes, final: bool) -> None:
        """Every quote must open a cell (after a comma, a line end or at the start) and close it (before a comma,
        a line end or at the end), with "" inside: the CSV both readers read alike. The csv module keeps a
        quote inside a cell as text (COPY opens a quoted part there) and refuses text after a closing quote
        (COPY joins it to the cell)."""
        buf = self.carry + chunk
        pos = 0
        while (i := buf.find(b'"', pos)) >= 0:
            before = buf[i - 1:i] if i else self.before
            if before not in _CELL_ENDS:
                raise NotClean("a quote inside a cell")
            match = _QUOTED.match(buf, i)
            end = match.end() if match else len(buf)
            after = buf[end:end + 1]
            if match is None or after == b'"' or (not after and not final):
                if final:
                    raise NotClean("a quoted cell is not closed")
                if len(buf) - i > CARRY_LIMIT:
                    raise NotClean("a quoted cell of megabytes")
                self.before, self.carry = before, buf[i:]
                return
            if after and after not in _CELL_ENDS:
                raise NotClean("text after the closing quote of a cell")
            pos = end
        self.carry = b""
        self.before = buf[-1:] or self.before


def copy_to_stage(cursor, path, table: str, width: int, *, numbered: bool = False,
                  on_chunk: Callable[[int, int], None] | None = None) -> tuple[int, _Scan]:
    """The file's data rows COPYed into a TEMP table `table` of `width` text columns c0, c1…, watched by `_Scan`
    on the way (a UTF-8 byte-order mark skipped, as the engine skips it); `numbered`: with `n`, each row's place in
    the file (file order decides ties); `on_chunk(bytes read, lines read)` after each chunk, for progress (a line
    break inside a quoted cell counts as a line there). Returns (data rows, the scan: how cells must be
    trimmed)."""
    scan = _Scan()
    columns = ", ".join(f"c{i}" for i in range(width))
    cursor.execute(f"DROP TABLE IF EXISTS {table}")
    cursor.execute("SELECT set_config('work_mem', '64MB', true)")
    cursor.execute(f"CREATE TEMP TABLE {table} ({'n bigserial, ' if numbered else ''}"
                   f"{', '.join(f'c{i} text' for i in range(width))}) ON COMMIT DROP")
    with open(path, "rb") as source, cursor.copy(
        f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')"
    ) as copy:
        first, ends, read, lines = True, b"", 0, 0
        while chunk := source.read(CHUNK):
            read, lines = read + len(chunk), lines + chunk.count(b"\n")
            if first:
                chunk, first = chunk.removeprefix(codecs.BOM_UTF8), False
            scan.feed(chunk)
            # line ends at the end of a chunk wait until more text follows: blank lines at the end of a file (the
            # csv module skips them; COPY would read a row of empty cells, leaving the file to the engine) are
            # never sent (megabytes of them are, and go to the engine)
            body = ends + chunk
            text = body.rstrip(b"\r\n") if len(body) <= CARRY_LIMIT else body
            ends = body[len(text):]
            if text:
                copy.write(text)
            if on_chunk is not None:
                on_chunk(read, max(lines - 1, 0))  # the header's line is no row
        scan.finish()
        if ends:  # the end of the last row, without the blank lines after it
            copy.write(ends[:2] if ends.startswith(b"\r\n") else ends[:1])
    return cursor.rowcount, scan


RAW_MAX = 4096  # bytes of a cell before it is trimmed: a longer one is left to the engine (the csv module's limits)


class CellReader:
    """The staged cells (c0, c1… of `copy_to_stage`) as the engine reads them, in SQL: a missing column or a blank
    cell is "", trimmed as str.strip() trims (`trim`: the scan's characters to trim, "" for none). A trimmed cell of
    kilobytes may be past the csv module's limits: `raw_checks` gathers the conditions that leave those rows to the
    engine."""

    def __init__(self, header: list[str], trim: str, p: Params):
        self.header, self.trim, self.p = header, trim, p
        self.raw_checks: list[str] = []

    def cell(self, name: str) -> str:
        if name not in self.header:
            return "''"
        column = f"c{self.header.index(name)}"
        if self.trim:
            self.raw_checks.append(f"octet_length({column}) > {RAW_MAX}")
            return f"btrim(coalesce({column}, ''), {self.p.ref('ws', self.trim)})"
        return f"coalesce({column}, '')"


def instant_read(text: str, value: str, p: Params, now) -> tuple[str, str]:
    """An instant cell `text` read as the engine reads it: (the cast to timestamptz, the condition of a row the
    engine must read, naming the cast as `value`). PostgreSQL reads more than the engine (a date without a zone,
    'today', hour 24): only the forms both read alike are taken, the usual one checked by writing the instant back
    (a regular expression costs three times the rest of the row), and so is a database's UTC export
    (`2026-11-02 08:00:00+00`); a later instant than `now` is the engine's to
    refuse; text PostgreSQL cannot read at all stops the statement (not clean either)."""
    cast = f"CASE WHEN {text} <> '' THEN ({text})::timestamptz END"
    bad = (f"{value} IS NULL OR {value} > {p.ref('now', now)} OR left({text}, 4) NOT BETWEEN '1000' AND '9998' "
           f"OR NOT CASE "
           f"WHEN {text} LIKE '____-__-__T__:__:__Z' THEN to_char({value} AT TIME ZONE 'UTC', "
           f"'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') = {text} "
           f"WHEN {text} LIKE '____-__-__ __:__:__+00' THEN to_char({value} AT TIME ZONE 'UTC', "
           f"'YYYY-MM-DD HH24:MI:SS\"+00\"') = {text} "
           f"ELSE {text} ~ {p.ref('instant', INSTANT_RE)} END")
    return cast, bad
