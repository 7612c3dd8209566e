"""The audit log as people read it: each entry as a sentence with names, not ids ("Anna Berg assigned a seat to
j.smith at Contoso Dental, 5 Dec 2026 09:10 UTC"), and the before and after of its changed fields by their labels.

`audit_texts(entries)` reads the names a whole page of entries needs in one query per model (the customers,
members, services, invoice lines... their `before`/`after` name by id, and the objects themselves), then
`describe` turns each entry into an `AuditText` without touching the database. The entries come with their
actor and partner (`select_related("actor", "partner")`): the callers' lists do that, so a page costs the same
queries for 5 entries or 500.

What each action writes in `before`/`after` is set where it is written (partners.audit and the services that
call it); the sentences below read those keys and fall back to the object's name when one is missing, so an
older or hand-written row still reads as a sentence."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ValidationError

from billing.core.money import currency_places
from partners.choices import AuditAction
from partners.terms import LABELS as TERM_LABELS

EMPTY = "—"

# kinds of entries, as the filters offer them: a topic and the `<object>.` prefixes of its actions
TOPICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "seats": ("Seats", ("seat.", "seat_purchase.")),
    "usage": ("Usage and RMM", ("usage.", "suspension.", "inventory.", "rmm_integration.")),
    "money": ("Invoices and payments", ("invoice.", "payment.", "one_time_charge.")),
    "contracts": ("Partners, customers and services", ("partner.", "customer.", "service.")),
    "access": ("Access", ("partner_user.", "api_key.", "user.", "group.", "login.")),
    "settings": ("Settings", ("periodic_task.", "company_profile.")),
    "prices": ("Price lists", ("resale_price.", "resale_item.")),
    "rebilling": ("Customer invoices", ("rebilling_profile.", "customer_billing_profile.", "customer_invoice.",
                                        "customer_payment.")),
}

# keys whose values are amounts of money (in the entry's currency when the value does not name one)
MONEY_KEYS = frozenset({"amount", "total", "subtotal", "tax_amount", "unit_price", "overage_price", "package_price"})
# keys an entry's sentence says already, kept out of its changes
_IN_SENTENCE = frozenset({"effective_from"})
# the keys of a snapshot that name the object itself, in the order tried
_NAME_KEYS = ("name", "legal_name", "number", "description", "username", "user", "prefix")
# the column that names a row of a model, in the order tried (a customer's name for rows that have none)
_NAME_COLUMNS = ("name", "number", "description", "legal_name")
# keys whose values name a partner's customer by slug or service by code (the imports' snapshots)
_KEYED = {"customer": ("partners.Customer", "slug"), "service": ("partners.Service", "code"),
          "item": ("rebilling.ResaleItem", "code")}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_MONEY = re.compile(r"^(-?\d+(?:\.\d+)?) ([A-Z]{3})$")


def topic_actions(topic: str) -> list[str]:
    """The actions of a topic (TOPICS), as stored."""
    prefixes = TOPICS[topic][1]
    return [action.value for action in AuditAction if action.value.startswith(prefixes)]


def topic_of(action: str) -> str:
    for topic, (_label, prefixes) in TOPICS.items():
        if action.startswith(prefixes):
            return topic
    return ""


# --- values as people read them ------------------------------------------------------------------------
def when_text(at: datetime) -> str:
    """An instant as the audit log shows it: "5 Dec 2026 09:10 UTC"."""
    at = at.astimezone(UTC)
    return f"{at.day} {at:%b %Y %H:%M} UTC"


def day_text(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def money_text(amount, currency: str = "") -> str:
    """An amount as "USD 1,234.50": the currency's places, or more when the amount has more (a price to the
    hundredth of a cent is shown as stored, never rounded here)."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    places = currency_places(currency) if currency else 2
    exponent = value.normalize().as_tuple().exponent
    places = max(places, -exponent if isinstance(exponent, int) else 0)
    text = f"{value:,.{places}f}"
    return f"{currency} {text}" if currency else text


def _count(n, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@cache
def model_of(label: str):
    """The model an audit row's object_type names (None: not a model here)."""
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        return None


def _field(model, key: str):
    if model is None:
        return None
    try:
        return model._meta.get_field(key)
    except FieldDoesNotExist:
        pass
    for f in model._meta.concrete_fields:
        if f.attname == key:
            return f
    return None


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _related_model(model, key: str, value):
    """The model whose ids `value` holds under `key` (a foreign key's `<name>_id`, a reverse relation or a
    many-to-many's list of ids), or None."""
    f = _field(model, key)
    if f is None or not f.is_relation or f.related_model is None:
        return None
    if _is_id(value) and (getattr(f, "attname", None) == key or f.many_to_one or f.one_to_one):
        return f.related_model
    if isinstance(value, list) and value and all(_is_id(v) for v in value) and (f.one_to_many or f.many_to_many):
        return f.related_model
    return None


# keys of before/after that are no model field and read better in words of their own
# a seat import's seats written, and its seats already recorded that it ended (decision (ax))
KEY_LABELS = {"written": "seats written", "replaced": "seats ended"}
SEATS_SHOWN = 5  # seats named in an entry's text; the raw entry has them all


def field_label(model, key: str) -> str:
    """A key of `before`/`after` by its label: the model field's verbose name, else the key in words."""
    if key in TERM_LABELS:
        return TERM_LABELS[key]
    if key in KEY_LABELS:
        return KEY_LABELS[key]
    f = _field(model, key)
    label = getattr(f, "verbose_name", None) if f is not None else None
    if not label:
        return key.removesuffix("_id").replace("_", " ")
    # in lower case as the other labels ("Task Name" of a beat job: "task name"), initialisms kept ("RMM")
    return " ".join(w.lower() if w[:1].isupper() and w[1:].islower() else w for w in str(label).split(" "))


def _pk(model, value):
    try:
        return model._meta.pk.to_python(value)
    except (ValidationError, TypeError, ValueError):
        return None


# --- names: one query per model for a whole page ------------------------------------------------------
@dataclass
class Names:
    """The names a page of entries refers to: {(model label, pk): name}, and customers and services named by
    their partner's slug or code."""

    rows: dict[tuple[str, object], str] = field(default_factory=dict)
    keyed: dict[tuple[str, int, str], str] = field(default_factory=dict)  # (key, partner id, slug or code): name

    def of(self, model, pk) -> str | None:
        return self.rows.get((model._meta.label, pk)) if model is not None else None


def _name_column(model) -> str | None:
    columns = {f.name for f in model._meta.concrete_fields}
    for name in _NAME_COLUMNS:
        if name in columns:
            return name
    if "customer" in columns and _field(model, "customer").related_model._meta.label == "partners.Customer":
        return "customer__name"
    return None


def _dicts(entry) -> tuple[dict, dict]:
    before = entry.before if isinstance(entry.before, dict) else {}
    after = entry.after if isinstance(entry.after, dict) else {}
    return before, after


def audit_names(entries: Iterable) -> Names:
    """Read every name the entries refer to: one query per model (and one for customers named by slug)."""
    wanted: dict = defaultdict(set)
    keyed: dict[str, set[tuple[int, str]]] = defaultdict(set)
    for entry in entries:
        model = model_of(entry.object_type)
        named = any(isinstance(values.get(key), str) for values in _dicts(entry) for key in _NAME_KEYS)
        if model is not None and entry.object_id and not named and _name_column(model):
            pk = _pk(model, entry.object_id)
            if pk is not None:
                wanted[model].add(pk)
        for values in _dicts(entry):
            for key, value in values.items():
                related = _related_model(model, key, value)
                if related is not None:
                    wanted[related].update(value if isinstance(value, list) else [value])
                elif key in _KEYED and isinstance(value, str) and value and entry.partner_id:
                    keyed[key].add((entry.partner_id, value))
    names = Names()
    for model, pks in wanted.items():
        column = _name_column(model)
        rows = model._default_manager.filter(pk__in=pks)
        if column:
            found = rows.values_list("pk", column)
        else:  # no naming column (a beat schedule): its own text
            found = ((obj.pk, str(obj)) for obj in rows)
        names.rows.update(((model._meta.label, pk), name) for pk, name in found if name not in (None, ""))
    for key, pairs in keyed.items():
        label, column = _KEYED[key]
        rows = model_of(label)._default_manager.filter(partner_id__in={p for p, _ in pairs},
                                                       **{f"{column}__in": {s for _, s in pairs}})
        names.keyed.update(((key, p, s), n) for p, s, n in rows.values_list("partner_id", column, "name")
                           if (p, s) in pairs)
    return names


# --- one entry ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    label: str
    before: str
    after: str
    was: bool = True  # the entry records a value before (False: the field was set by a creation or a record)


class _Whole(str):
    """A phrase that is a whole sentence (no actor in front of it)."""


@dataclass(frozen=True)
class AuditText:
    who: str  # the person (their full name, else their username), or the command, task or API key
    via: str  # where a person acted from when the entry says so ("portal", "admin: Sync now"), else ""
    what: str  # the rest of the sentence: "assigned a seat to j.smith at Contoso Dental"
    when: str  # "5 Dec 2026 09:10 UTC"
    changes: tuple[Change, ...]
    whole: bool = False  # `what` is the whole sentence (a locked sign-in: nobody acted)

    @property
    def summary(self) -> str:
        text = self.what if self.whole else f"{self.who} {self.what}"
        return text[:1].upper() + text[1:] if self.whole else text

    @property
    def sentence(self) -> str:
        return f"{self.summary}, {self.when}"

    def __str__(self):
        return self.sentence


def who_of(entry) -> tuple[str, str]:
    """(who, via): a user by their full name (else username) and where they acted from when the label says
    so; a command, task or API key by its label as written; "system" when the entry names nobody."""
    label = entry.actor_label or ""
    if entry.actor_id:
        user = entry.actor
        username = user.get_username()
        name = user.get_full_name().strip() or username
        if label.startswith(f"{username} (") and label.endswith(")"):
            return name, label[len(username) + 2:-1]
        return name, "" if label in ("", username) else label
    return label or "system", ""


_OWN = object()


class _Read:
    """One entry's values with the names the page read."""

    def __init__(self, entry, names: Names):
        self.entry, self.names = entry, names
        self.model = model_of(entry.object_type)
        self.before, self.after = _dicts(entry)
        self.values = {**self.before, **self.after}
        partner = entry.partner if entry.partner_id else None
        self.partner_name = partner.name if partner is not None else ""
        self.currency = str(self.values.get("currency") or (partner.currency if partner is not None else ""))

    def get(self, key, default=None):
        value = self.values.get(key)
        return default if value in (None, "") else value

    def show(self, key, value=_OWN) -> str:
        """A value as people read it (the entry's own when `value` is not given)."""
        value = self.values.get(key) if value is _OWN else value
        if value is None or value == "" or value == []:
            return EMPTY
        related = _related_model(self.model, key, value)
        if related is not None:
            ids = value if isinstance(value, list) else [value]
            return ", ".join(self.names.of(related, pk) or f"#{pk}" for pk in ids)
        if key in _KEYED and isinstance(value, str) and self.entry.partner_id:
            return self.names.keyed.get((key, self.entry.partner_id, value), value)
        if isinstance(value, bool):
            return "yes" if value else "no"
        f = _field(self.model, key)
        if f is not None and f.choices and not isinstance(value, list | dict):
            return str(dict(f.flatchoices).get(value, value))
        if isinstance(value, str):
            return self._text(key, value)
        if key in MONEY_KEYS and isinstance(value, int | float | Decimal):
            return money_text(value, self.currency)
        if _is_id(value):
            return f"{value:,}" if abs(value) >= 10000 else str(value)
        if isinstance(value, list):
            if all(isinstance(v, dict) and {"member", "assigned_at"} <= v.keys() for v in value):
                # a night's feed may end hundreds: the first few here, every one in the raw entry
                def seat(v):
                    until = f" until {self.show('removed_at', v['removed_at'])}" if v.get("removed_at") else ""
                    return f"{v['member']} from {self.show('assigned_at', v['assigned_at'])}{until}"
                shown = "; ".join(seat(v) for v in value[:SEATS_SHOWN])
                rest = len(value) - SEATS_SHOWN
                return f"{shown}; and {_count(rest, 'more seat')}" if rest > 0 else shown
            return ", ".join(self.show(key, v) if not isinstance(v, list | dict) else str(v) for v in value)
        if isinstance(value, dict):
            return "; ".join(f"{k.replace('_', ' ')}: {self.show(k, v)}" for k, v in value.items())
        return str(value)

    def _text(self, key: str, value: str) -> str:
        money = _MONEY.match(value)
        if money:
            return money_text(money.group(1), money.group(2))
        if key in MONEY_KEYS:
            return money_text(value, self.currency)
        if key == "tax_rate":
            try:
                return f"{Decimal(value).normalize():f}%"
            except InvalidOperation:
                return value
        if _DATE.match(value):
            return day_text(date.fromisoformat(value))
        if _INSTANT.match(value):
            try:
                return when_text(datetime.fromisoformat(value))
            except ValueError:
                return value
        return value

    # --- what the sentences say -------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The object by name: the snapshot's name, else its name now, else as it was written."""
        for key in _NAME_KEYS:
            value = self.get(key)
            if isinstance(value, str):
                return value
        pk = _pk(self.model, self.entry.object_id) if self.model is not None and self.entry.object_id else None
        return (self.names.of(self.model, pk) if pk is not None else None) or self.entry.object_repr or (
            f"#{self.entry.object_id}" if self.entry.object_id else "")

    def changed_keys(self) -> list[str]:
        """The keys of before/after in the model's field order, then by name: the same order whatever order the
        database keeps a JSON object's keys in (PostgreSQL's jsonb sorts them its own way)."""
        order = {}
        if self.model is not None:
            for i, f in enumerate(self.model._meta.get_fields()):
                order.setdefault(f.name, i)
                order.setdefault(getattr(f, "attname", f.name), i)
        keys = sorted({*self.after, *self.before}, key=lambda k: (order.get(k, len(order)), k))
        if self.entry.before is not None and self.entry.after is not None:
            keys = [k for k in keys if self.before.get(k) != self.after.get(k)]
        return [k for k in keys if k not in _IN_SENTENCE]

    def keys_once(self) -> list[str]:
        """The changed keys, a foreign key once: an entry that holds one both by name and by id (`customer`, a slug,
        and `customer_id`: a customer payment's) has two keys of one label, and its id says it (by the name it has
        now). The stored entry keeps both."""
        keys = self.changed_keys()
        by_id = {k for k in keys if k.endswith("_id") and self.get(k) is not None}
        return [k for k in keys
                if not (f"{k}_id" in by_id and field_label(self.model, k) == field_label(self.model, f"{k}_id"))]

    def changes(self) -> tuple[Change, ...]:
        rows = []
        for key in self.keys_once():
            old = self.show(key, self.before.get(key)) if key in self.before else EMPTY
            new = self.show(key, self.after.get(key)) if key in self.after else EMPTY
            if old == EMPTY and new == EMPTY:
                continue
            rows.append(Change(field_label(self.model, key), old, new, was=key in self.before))
        return tuple(rows)

    def fields(self) -> str:
        """The changed fields in words: "the seat cap", "the seat cap and host limit", "4 details"."""
        labels = [field_label(self.model, k) for k in self.keys_once()
                  if not (self.entry.before is None and self.show(k) == EMPTY)]
        if not labels:
            return "the details"
        if len(labels) > 3:
            return f"{len(labels)} details"
        if len(labels) == 1:
            return f"the {labels[0]}"
        return f"the {', '.join(labels[:-1])} and {labels[-1]}"

    def customer(self) -> str:
        for key in ("customer_id", "customer"):
            if self.get(key) is not None:
                return self.show(key)
        return ""

    def holder(self) -> str:
        """A seat's holder: "j.smith at Contoso Dental"."""
        member = self.show("member_id") if self.get("member_id") is not None else self.entry.object_repr
        customer = self.customer()
        return f"{member} at {customer}" if customer and member else member or customer

    def effective(self) -> str:
        value = self.get("effective_from")
        if value == "start":
            return " from the start"
        return f" from {self.show('effective_from')}" if value else ""

    def partner(self) -> str:
        return self.partner_name or str(self.get("partner") or "")


# --- the sentences, one per action -----------------------------------------------------------------------
def _added(noun: str) -> Callable[[_Read], str]:
    return lambda r: f"added {noun} {r.name}"


def _deleted(noun: str) -> Callable[[_Read], str]:
    return lambda r: f"deleted {noun} {r.name}"


def _changed(noun: str = "") -> Callable[[_Read], str]:
    return lambda r: f"changed {r.fields()} of {noun + ' ' if noun else ''}{r.name}"


def _terms(r: _Read) -> str:
    return f"changed {r.fields()} of {r.name}{r.effective()}"


def _seat_import(r: _Read) -> str:
    assigned, unassigned = r.get("assigned", 0), r.get("unassigned", 0)
    total = assigned + unassigned if _is_id(assigned) and _is_id(unassigned) else "the"
    text = f"imported {_count(total, 'seat event')} for {r.name} ({assigned} assigned, {unassigned} unassigned)"
    replaced = r.get("replaced")
    if isinstance(replaced, list) and replaced:
        text += f", ending {_count(len(replaced), 'seat')} already recorded"
    return text


def _purchase(r: _Read) -> str:
    service = r.show("service_id") if r.get("service_id") is not None else r.show("service") if r.get(
        "service") else ""
    text = f"bought {_count(r.get('seats', '?'), 'seat')}"
    text += f" on {service}" if service else ""
    return text + (f", effective {r.show('effective_date')}" if r.get("effective_date") else "")


def _inventory(verb: str) -> Callable[[_Read], str]:
    def phrase(r: _Read) -> str:
        text = f"{verb} of {r.partner()}" if r.partner() else verb
        if r.get("as_of"):
            text += f" as of {r.show('as_of')}"
        if r.get("agents") is not None:
            text += f": {_count(r.get('agents'), 'agent')}"
        if r.get("added") is not None:
            text += f" ({r.get('added')} added, {r.get('moved', 0)} moved, {r.get('removed', 0)} removed)"
        return text
    return phrase


def _invoice_issue(r: _Read) -> str:
    parts = [r.show("total")] if r.get("total") is not None else []
    if r.get("due_date"):
        parts.append(f"due {r.show('due_date')}")
    return f"issued {r.name}" + (f" ({', '.join(parts)})" if parts else "")


def _credit(r: _Read) -> str:
    text = f"issued credit note {r.name}"
    text += f" for {r.get('credits')}" if r.get("credits") else ""
    return text + (f" ({r.show('total')})" if r.get("total") is not None else "")


def _draft_deleted(r: _Read) -> str:
    kind = r.show("kind").lower() if r.get("kind") else "invoice"
    text = f"deleted a draft {kind}"
    text += f" dated {r.show('issue_date')}" if r.get("issue_date") else ""
    return text + (f" ({r.show('total')})" if r.get("total") is not None else "")


def _payment(r: _Read) -> str:
    text = f"recorded a payment of {r.show('amount')}" if r.get("amount") is not None else "recorded a payment"
    text += f" on {r.get('invoice')}" if r.get("invoice") else ""
    return text + (f", reference {r.get('reference')}" if r.get("reference") else "")


def _charge(verb: str) -> Callable[[_Read], str]:
    def phrase(r: _Read) -> str:
        text = f"{verb} the one-time charge “{r.name}”"
        if verb == "added" and r.get("unit_price") is not None:
            text += f" ({r.show('quantity')} × {r.show('unit_price')})"
        return text + (f" for {r.customer()}" if verb == "added" and r.customer() else "")
    return phrase


def _resale_price(verb: str) -> Callable[[_Read], str]:
    def phrase(r: _Read) -> str:
        what = r.show("service") if r.get("service") else r.show("item") if r.get("item") else r.name
        text = f"{verb} the resale price of {what}" if what else f"{verb} a resale price"
        text += f" for {r.customer()}" if r.customer() else " in the default list"
        return text + r.effective()
    return phrase


def _api_key(verb: str) -> Callable[[_Read], str]:
    def phrase(r: _Read) -> str:
        prefix = r.get("prefix") or r.entry.object_repr.split("…")[0] or r.entry.object_id
        return f"{verb} API key {prefix}…" + (f" “{r.get('name')}”" if r.get("name") else "")
    return phrase


def _portal_user_added(r: _Read) -> str:
    return f"added portal user {r.name}" + (f" as {r.show('role')}" if r.get("role") else "")


def _reset(r: _Read) -> str:
    text = f"reset the access of {r.name}"
    if r.get("emailed") is True:
        return text + "; a reset link was emailed"
    return text + ("; no reset link was sent (no email address)" if r.get("emailed") is False else "")


def _second_factor(r: _Read) -> str:
    if r.entry.actor_id and str(r.entry.actor_id) == str(r.entry.object_id):
        return "set up their second factor"
    return f"set up a second factor for {r.name}"


def _toggle(r: _Read) -> str:
    state = {True: " on", False: " off"}.get(r.get("enabled"), "")
    return f"switched scheduled job {r.name}{state}"


def _locked(r: _Read) -> str:
    who = r.get("username") or r.entry.object_repr or "?"
    text = f"sign-in as {who} was locked"
    if r.get("minutes") is not None:
        text += f" for {r.get('minutes')} minutes"
    if r.get("failures") is not None:
        text += f" after {r.get('failures')} failed attempts"
    return _Whole(text + (f" from {r.get('ip_address')}" if r.get("ip_address") else ""))


A = AuditAction
PHRASES: dict[AuditAction, Callable[[_Read], str]] = {
    A.PARTNER_CREATE: _added("partner"),
    A.PARTNER_UPDATE: _changed(),
    A.PARTNER_DELETE: _deleted("partner"),
    A.PARTNER_TERMS: _terms,
    A.CUSTOMER_CREATE: _added("customer"),
    A.CUSTOMER_UPDATE: _changed(),
    A.CUSTOMER_DELETE: _deleted("customer"),
    A.CUSTOMER_TERMS: _terms,
    A.SERVICE_CREATE: _added("service"),
    A.SERVICE_UPDATE: _changed(),
    A.SERVICE_DELETE: _deleted("service"),
    A.SERVICE_TERMS: _terms,
    A.SEAT_ASSIGN: lambda r: f"assigned a seat to {r.holder()}",
    A.SEAT_UNASSIGN: lambda r: f"unassigned the seat of {r.holder()}",
    A.SEAT_IMPORT: _seat_import,
    A.SEAT_IMPORT_SEAT: lambda r: f"recorded a seat for {r.holder()} by an import",
    A.SEAT_IMPORT_REPLACED: lambda r: f"replaced an earlier seat of {r.holder()} by an import",
    A.SEAT_PURCHASE_CREATE: _purchase,
    A.USAGE_IMPORT: lambda r: f"imported usage for {r.name}"
                              + (f" ({_count(r.get('snapshots'), 'daily snapshot')})" if r.get("snapshots") else ""),
    A.USAGE_RECORD: lambda r: f"recorded the usage of {r.name}"
                              + (f" on {r.show('date')}" if r.get("date") else ""),
    A.SUSPENSION_IMPORT: lambda r: f"imported tenant events for {r.name} "
                                   f"({r.get('suspended', 0)} suspended, {r.get('unsuspended', 0)} unsuspended)",
    A.SUSPENSION_SUSPEND: lambda r: f"suspended the tenant {r.customer() or r.name}",
    A.SUSPENSION_UNSUSPEND: lambda r: f"ended the suspension of {r.customer() or r.name}",
    A.INVENTORY_APPLY: _inventory("applied the RMM inventory"),
    A.INVENTORY_APPROVE: _inventory("approved the held RMM sync"),
    A.INVENTORY_REJECT: _inventory("rejected the held RMM sync"),
    A.RMM_INTEGRATION_CREATE: lambda r: f"set up the RMM integration of {r.partner() or r.name}",
    A.RMM_INTEGRATION_UPDATE: lambda r: f"changed {r.fields()} of the RMM integration of {r.partner() or r.name}",
    A.RMM_INTEGRATION_DELETE: lambda r: f"removed the RMM integration of {r.partner() or r.name}",
    A.INVOICE_ISSUE: _invoice_issue,
    A.INVOICE_CREDIT: _credit,
    A.INVOICE_DELETE_DRAFT: _draft_deleted,
    A.PAYMENT_RECORD: _payment,
    A.ONE_TIME_CHARGE_CREATE: _charge("added"),
    A.ONE_TIME_CHARGE_UPDATE: lambda r: f"changed {r.fields()} of the one-time charge “{r.name}”",
    A.ONE_TIME_CHARGE_DELETE: _charge("deleted"),
    A.API_KEY_CREATE: _api_key("created"),
    A.API_KEY_REVOKE: _api_key("revoked"),
    A.PARTNER_USER_CREATE: _portal_user_added,
    A.PARTNER_USER_UPDATE: _changed("portal user"),
    A.PARTNER_USER_DELETE: lambda r: f"removed portal user {r.name}",
    A.PARTNER_USER_RESET_ACCESS: _reset,
    A.USER_CREATE: _added("staff user"),
    A.USER_UPDATE: _changed("staff user"),
    A.USER_DELETE: _deleted("staff user"),
    A.USER_TWO_FACTOR_ENROLLED: _second_factor,
    A.GROUP_CREATE: _added("group"),
    A.GROUP_UPDATE: _changed("group"),
    A.GROUP_DELETE: _deleted("group"),
    A.PERIODIC_TASK_CREATE: _added("scheduled job"),
    A.PERIODIC_TASK_UPDATE: _changed("scheduled job"),
    A.PERIODIC_TASK_DELETE: _deleted("scheduled job"),
    A.PERIODIC_TASK_ENABLE: lambda r: f"enabled scheduled job {r.name}",
    A.PERIODIC_TASK_DISABLE: lambda r: f"disabled scheduled job {r.name}",
    A.PERIODIC_TASK_TOGGLE: _toggle,
    A.PERIODIC_TASK_RUN: lambda r: f"ran scheduled job {r.name} by hand",
    A.LOGIN_LOCKED: _locked,
    A.COMPANY_PROFILE_CREATE: lambda r: "filled in the company profile",
    A.COMPANY_PROFILE_UPDATE: lambda r: f"changed {r.fields()} of the company profile",
    A.RESALE_ITEM_CREATE: _added("own item"),
    A.RESALE_ITEM_UPDATE: _changed("own item"),
    A.RESALE_PRICE_CREATE: _resale_price("set"),
    A.RESALE_PRICE_UPDATE: _resale_price("changed"),
    A.RESALE_PRICE_DELETE: _resale_price("cancelled"),
    A.REBILLING_PROFILE_CREATE: lambda r: f"set up the rebilling of {r.partner() or r.name}",
    A.REBILLING_PROFILE_UPDATE: lambda r: f"changed {r.fields()} of the rebilling of {r.partner() or r.name}",
    A.REBILLING_PROFILE_DELETE: lambda r: f"removed the rebilling profile of {r.partner() or r.name}",
    A.CUSTOMER_BILLING_PROFILE_CREATE: lambda r: f"added the billing details of {r.customer() or r.name}",
    A.CUSTOMER_BILLING_PROFILE_UPDATE: lambda r: f"changed {r.fields()} of the billing details of "
                                                 f"{r.customer() or r.name}",
    A.CUSTOMER_BILLING_PROFILE_DELETE: lambda r: f"removed the billing details of {r.customer() or r.name}",
    A.CUSTOMER_INVOICE_ISSUE: lambda r: f"issued customer invoice {r.get('number') or r.name}"
                                        + (f" to {r.customer()}" if r.customer() else "")
                                        + (f" ({r.show('total')})" if r.get("total") is not None else ""),
    A.CUSTOMER_INVOICE_CREDIT: lambda r: f"issued customer credit note {r.get('number') or r.name}"
                                         + (f" for {r.get('credits')}" if r.get("credits") else "")
                                         + (f" ({r.show('total')})" if r.get("total") is not None else ""),
    A.CUSTOMER_PAYMENT_RECORD: lambda r: f"recorded a payment of {r.show('amount')}"
                                         + (f" from {r.customer()}" if r.customer() else "")
                                         + (f" (ref. {r.get('reference')})" if r.get("reference") else ""),
    A.CUSTOMER_PAYMENT_VOID: lambda r: f"voided a payment of {r.show('amount')}"
                                       + (f" from {r.customer()}" if r.customer() else "")
                                       + (f": {r.get('reason')}" if r.get("reason") else ""),
}


def describe(entry, names: Names) -> AuditText:
    """One entry as people read it, with the names already read (`audit_names`): no query of its own."""
    read = _Read(entry, names)
    phrase = PHRASES.get(entry.action)
    if phrase is None:  # not an action any more: its label, or the action as written
        label = dict(AuditAction.choices).get(entry.action, entry.action)
        what = f"{label[:1].lower()}{label[1:]}: {read.name}" if read.name else label
    else:
        what = phrase(read)
    who, via = who_of(entry)
    return AuditText(who=who, via=via, what=str(what), when=when_text(entry.at), changes=read.changes(),
                     whole=isinstance(what, _Whole))


def audit_texts(entries) -> list[AuditText]:
    """The entries (with their actor and partner selected) as sentences and changes, in their order."""
    entries = list(entries)
    names = audit_names(entries)
    return [describe(entry, names) for entry in entries]
