"""Reports behind `export_report` (billing-rules 10): each app registers its own; this module writes them
as CSV or XLSX, streaming rows, escaping cells against spreadsheet formula injection."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from billing.core.periods import Period

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_FORMULA_START = ("=", "+", "-", "@")


class ReportError(Exception):
    """A request a report cannot answer (a missing --period, say): one clear line."""


@dataclass(frozen=True)
class ReportOptions:
    partner: str | None = None
    month: Period | None = None  # --month: invoices issued in that month
    period: Period | None = None  # --period: the usage period


class Report:
    name: str = ""
    columns: tuple[str, ...] = ()
    needs_period = False
    takes_period = False  # --period narrows it
    takes_month = False  # --month narrows it

    def check(self, options: ReportOptions) -> None:
        if self.needs_period and options.period is None:
            raise ReportError(f"the {self.name} report needs --period YYYY-MM")
        if options.period is not None and not (self.needs_period or self.takes_period):
            raise ReportError(f"the {self.name} report takes no --period" + (
                " (use --month for the invoices issued in a month)" if self.takes_month else ""))
        if options.month is not None and not self.takes_month:
            raise ReportError(f"the {self.name} report takes no --month" + (
                " (use --period for the usage period)" if self.needs_period or self.takes_period else ""))

    def rows(self, options: ReportOptions) -> Iterator[dict]:
        raise NotImplementedError


def escape_cell(value: str) -> str:
    """Prefix text that a spreadsheet would run as a formula; numbers like -5.00 stay numbers."""
    if value and value.startswith(_FORMULA_START) and not _NUMBER.match(value):
        return "'" + value
    return value


def cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return escape_cell(str(value))


def write_csv(columns: Iterable[str], rows: Iterable[dict], stream) -> int:
    columns = list(columns)
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([cell_text(row.get(c)) for c in columns])
        count += 1
    return count


def write_xlsx(columns: Iterable[str], rows: Iterable[dict], stream, title: str = "report") -> int:
    columns = list(columns)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    sheet.append(columns)
    count = 0
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            if isinstance(value, Decimal):
                # shown with the places it was written with: 4.0000 seat-months, 80.00 money
                cell = WriteOnlyCell(sheet, value=value)
                places = max(0, -value.as_tuple().exponent) if isinstance(value.as_tuple().exponent, int) else 0
                cell.number_format = "0." + "0" * places if places else "0"
                cells.append(cell)
            elif isinstance(value, int) and not isinstance(value, bool):
                cells.append(value)
            elif isinstance(value, date):
                cells.append(value.isoformat())
            else:
                cells.append(cell_text(value))
        sheet.append(cells)
        count += 1
    workbook.save(stream)
    return count
