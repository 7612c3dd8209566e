"""Strict cell readers for import-export resources: each raises ValueError with the reason a
clerk should read (the column name is added by the importer)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from djmoney.money import Money
from import_export import widgets

from billing.core.emails import split_emails
from billing.core.money import MoneyError, parse_decimal
from billing.core.periods import PeriodError, parse_date, parse_instant
from billing.core.reporting import escape_cell

TRUE_WORDS = {"true", "yes", "1"}
FALSE_WORDS = {"false", "no", "0"}


# a long numeric id a spreadsheet rewrote as a number in scientific notation (6.94826E+14): the id is lost
SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+")
SCIENTIFIC_REASON = ("a spreadsheet turned this id into a number in scientific notation; export the file again "
                     "without opening it in Excel, or format the column as text")


class TextWidget(widgets.CharWidget):
    """Text as written, formula-looking or not: it is data, never evaluated. On export (the admin's Export
    button) such text gets the leading ' that billing.reporting gives it, and an import takes that ' off
    again, so an exported file imports back unchanged."""

    def __init__(self, max_length: int | None = None, *, an_id: bool = False, **kwargs):
        """`an_id`: the text names something by an id a PSA or an RMM gave it (a member): one a spreadsheet
        rewrote in scientific notation is refused, never taken as another name."""
        self.max_length, self.an_id = max_length, an_id
        super().__init__(**kwargs)

    def clean(self, value, row=None, **kwargs):
        text = "" if value is None else str(value).strip()
        if _escaped(text):
            text = text[1:]  # as an export wrote it
        if self.max_length and len(text) > self.max_length:
            raise ValueError(f"longer than {self.max_length} characters")
        if self.an_id and SCIENTIFIC.fullmatch(text):
            raise ValueError(f"{text!r}: {SCIENTIFIC_REASON}")
        return text

    def render(self, value, obj=None, **kwargs):
        text = "" if value is None else str(value)
        return "'" + text if escape_cell(text) != text or _escaped(text) else text


def _escaped(text: str) -> bool:
    """Text an export escaped: quotes before text a spreadsheet would run as a formula (one more quote than
    the text had)."""
    rest = text.lstrip("'")
    return rest != text and escape_cell(rest) != rest


class SlugWidget(TextWidget):
    _re = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

    def clean(self, value, row=None, **kwargs):
        text = super().clean(value, row, **kwargs)
        if text and not self._re.match(text):
            raise ValueError(f"{text!r} is not a valid key: use lower-case letters, digits, - and _")
        return text


class DecimalWidget(widgets.Widget):
    """`places` and `max_digits` are the model field's: a value the column cannot hold exactly is refused
    rather than rounded by the database (which would also make every re-import an update)."""

    def __init__(self, min_value: Decimal | None = Decimal("0"), places: int | None = None,
                 max_digits: int | None = None, **kwargs):
        self.min_value = min_value
        self.places = places
        self.max_digits = max_digits
        super().__init__(**kwargs)

    def clean(self, value, row=None, **kwargs):
        if isinstance(value, float):
            value = repr(value)  # a spreadsheet number; read its shortest exact text
        try:
            number = parse_decimal(str(value))
        except MoneyError as exc:
            raise ValueError(str(exc)) from exc
        if self.min_value is not None and number < self.min_value:
            raise ValueError("must not be negative" if self.min_value == 0 else f"must be at least {self.min_value}")
        if self.max_digits is not None and number != 0:
            whole_digits = self.max_digits - (self.places or 0)
            if number.adjusted() >= whole_digits:
                raise ValueError(f"too large: at most {whole_digits} digits before the decimal point")
        if self.places is not None:
            try:
                exact = number == number.quantize(Decimal(1).scaleb(-self.places))
            except InvalidOperation:
                exact = False
            if not exact:
                raise ValueError(f"at most {self.places} decimal places")
        return number

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else str(value)


class MoneyAmountWidget(DecimalWidget):
    """Reads and writes a django-money field as its Decimal amount (an empty cell otherwise)."""

    def render(self, value, obj=None, **kwargs):
        if isinstance(value, Money):
            value = value.amount
        return super().render(value, obj, **kwargs)


class IntegerWidget(widgets.Widget):
    def __init__(self, min_value: int | None = 0, max_value: int | None = None, **kwargs):
        self.min_value = min_value
        self.max_value = max_value
        super().__init__(**kwargs)

    def clean(self, value, row=None, **kwargs):
        text = str(value).strip()
        if isinstance(value, float) and value.is_integer():
            text = str(int(value))
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError(f"not a whole number: {text!r}")
        sign, digits = ("-" if text[0] == "-" else ""), text.lstrip("+-").lstrip("0") or "0"
        # beyond any column (and int() refuses 4,300 digits in its own words)
        number = int(sign + digits) if len(digits) <= 100 else None
        if self.min_value is not None and (number < self.min_value if number is not None else sign):
            raise ValueError("must not be negative" if self.min_value == 0 else f"must be at least {self.min_value}")
        if number is None or (self.max_value is not None and number > self.max_value):
            raise ValueError(f"must be at most {self.max_value}" if self.max_value is not None else "too large")
        return number

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else str(value)


class BooleanWidget(widgets.Widget):
    def clean(self, value, row=None, **kwargs):
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError(f"not a boolean: {value!r} (true/false, yes/no, 1/0)")

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else ("true" if value else "false")


class ChoiceWidget(TextWidget):
    def __init__(self, choices, what: str, **kwargs):
        self.choices = list(choices)
        self.what = what
        super().__init__(**kwargs)

    def clean(self, value, row=None, **kwargs):
        text = super().clean(value, row, **kwargs).lower()
        if text not in self.choices:
            raise ValueError(f"unknown {self.what} {text!r} (one of {', '.join(self.choices)})")
        return text


class DateWidget(widgets.Widget):
    def clean(self, value, row=None, **kwargs):
        if isinstance(value, datetime):
            value = value.date()
        if isinstance(value, date):
            return value
        try:
            return parse_date(str(value))
        except PeriodError as exc:
            raise ValueError(str(exc)) from exc

    def render(self, value, obj=None, **kwargs):
        return value.isoformat() if value else ""


class InstantWidget(widgets.Widget):
    def clean(self, value, row=None, **kwargs):
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("instant has no time zone: add Z or an offset such as +02:00")
            value = value.isoformat()  # read as text: one set of checks (range included)
        try:
            return parse_instant(str(value))
        except PeriodError as exc:
            raise ValueError(str(exc)) from exc

    def render(self, value, obj=None, **kwargs):
        if not value:
            return ""
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class EmailListWidget(TextWidget):
    def clean(self, value, row=None, **kwargs):
        emails = split_emails(super().clean(value, row, **kwargs))
        for email in emails:
            try:
                validate_email(email)
            except ValidationError as exc:
                raise ValueError(f"not an email address: {email!r}") from exc
        return ", ".join(emails)
