"""Writes about partners and seats: every entry point (admin, portal, API, import) goes through here."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import models, transaction
from django.utils import timezone

from billing.core.emails import split_emails
from billing.core.money import MoneyError, currency_places
from billing.core.periods import utc_date
from partners.audit import (
    Actor,
    audit_entry,
    audit_record,
    audit_snapshot,
    snapshot,
)
from partners.choices import AuditAction
from partners.models import (
    BILLING_ROLES,
    DERIVATION_FIELDS,
    AlertKind,
    AuditLog,
    Customer,
    Member,
    Method,
    Partner,
    SeatAssignment,
    SeatPurchase,
    Service,
    TermsVersion,
    UtilizationAlert,
    rmm_filter_validator,
    service_rule_errors,
)
from partners.resources import INT_MAX
from partners.seating import SeatRuleError, check_assignment, utilization, utilization_percent
from partners.selectors import active_seat_counts, commitments_in_force, committed_seats
from partners.terms import (
    LABELS,
    TERM_FIELDS,
    Piece,
    TermsDateError,
    changed_terms,
    check_effective,
    default_effective,
    kind_of,
    pieces_changed,
    shown,
    values_of,
)

logger = logging.getLogger(__name__)

SEAT_FIELDS = ("customer_id", "member_id", "assigned_at", "removed_at", "source")


def _lock_partner(partner_id: int) -> Partner:
    """Seat changes of one partner are serialised on its row (caps and commitments hold under
    concurrency: N parallel assignments against K free seats admit exactly K)."""
    return Partner.objects.select_for_update().get(pk=partner_id)


@transaction.atomic
def seat_assign(*, customer: Customer, member_name: str, actor: Actor, source: str = "admin") -> SeatAssignment:
    """Give a member of the customer a seat now, or raise SeatRuleError (cap, commitment, double)."""
    member_name = (member_name or "").strip()
    if not member_name:
        raise SeatRuleError("a member name is required")
    partner = _lock_partner(customer.partner_id)
    customer = Customer.objects.get(pk=customer.pk)  # the cap as it is now, read under the lock
    now = timezone.now()
    member, _ = Member.objects.get_or_create(customer=customer, name=member_name)
    counts = active_seat_counts(partner_ids=[partner.pk], at=now)
    check_assignment(
        member_active=SeatAssignment.objects.active(now).filter(member=member).exists(),
        customer_active=counts.by_customer.get(customer.pk, 0),
        seat_cap=customer.seat_cap,
        partner_active=counts.by_partner.get(partner.pk, 0),
        commitments=commitments_in_force(partner_ids=[partner.pk], day=utc_date(now)).get(partner.pk, []),
        customer_id=customer.pk,
    )
    assignment = SeatAssignment(
        partner=partner, customer=customer, member=member, assigned_at=now, source=source
    )
    assignment.save()
    audit_record(actor=actor, action=AuditAction.SEAT_ASSIGN, obj=assignment, partner=partner,
                 after=snapshot(assignment, SEAT_FIELDS))
    alerts_evaluate(partner_ids=[partner.pk])
    return assignment


@transaction.atomic
def seat_unassign(*, customer: Customer, member_name: str, actor: Actor, source: str = "admin") -> SeatAssignment:
    """End the member's active seat now. The member is named as seat_assign names one (trimmed)."""
    member_name = (member_name or "").strip()
    partner = _lock_partner(customer.partner_id)
    now = timezone.now()
    assignment = (
        SeatAssignment.objects.active(now).filter(customer=customer, member__name=member_name)
        .select_for_update().first()
    )
    if assignment is None:
        raise SeatRuleError(f"{member_name} has no active seat at {customer.slug}")
    before = snapshot(assignment, SEAT_FIELDS)
    assignment.removed_at = now
    assignment.save()
    audit_record(actor=actor, action=AuditAction.SEAT_UNASSIGN, obj=assignment, partner=partner,
                 before=before, after=snapshot(assignment, SEAT_FIELDS))
    alerts_evaluate(partner_ids=[partner.pk])
    return assignment


@transaction.atomic
def seat_purchase_create(*, service: Service, seats: int, actor: Actor, purchased_at=None,
                         source: str = "admin") -> SeatPurchase:
    """"Add seats": raise the commitment from the next UTC month boundary (Owner or Billing role)."""
    partner_user = getattr(actor.user, "partner_user", None) if actor.user else None
    if partner_user is not None and partner_user.role not in BILLING_ROLES:
        raise PermissionDenied("only an Owner or Billing user can buy seats")
    if service.method != Method.SEAT_DAYS:
        raise ValidationError({"service": "seats are bought on a seat_days service"})
    if not isinstance(seats, int) or seats < 1:
        raise ValidationError({"seats": "buy at least one seat"})
    if seats > INT_MAX:  # what the column holds: never a database error (the import refuses it by row too)
        raise ValidationError({"seats": f"at most {INT_MAX:,} seats in one purchase"})
    if purchased_at is not None and purchased_at > timezone.now():
        raise ValidationError({"purchased_at": "a seat purchase cannot be dated in the future"})
    _lock_partner(service.partner_id)
    purchase = SeatPurchase(service=service, seats=seats, purchased_at=purchased_at or timezone.now(),
                            purchased_by=actor.user, source=source)
    purchase.save()
    audit_record(actor=actor, action=AuditAction.SEAT_PURCHASE_CREATE, obj=purchase, partner=service.partner,
                 after=snapshot(purchase, ("service_id", "seats", "purchased_at", "effective_date")))
    return purchase


def alerts_evaluate(*, partner_ids) -> list[UtilizationAlert]:
    """Raise or clear utilization alerts from the state now (billing-rules 3.3).

    One alert per crossing: raised when utilization first reaches 90% (or
    overage starts), cleared when it falls back below, so the next crossing
    alerts again. Emails leave after the transaction commits. Runs under the partners' row
    locks, the ones seat changes take, so two evaluations never raise the same alert twice.
    """
    with transaction.atomic():
        list(Partner.objects.select_for_update().filter(pk__in=list(partner_ids)).order_by("pk").values_list("pk"))
        return _alerts_evaluate_locked(partner_ids)


def _alerts_evaluate_locked(partner_ids) -> list[UtilizationAlert]:
    now = timezone.now()
    today = utc_date(now)
    raised: list[UtilizationAlert] = []
    counts = active_seat_counts(partner_ids=partner_ids, at=now)
    services = Service.objects.filter(partner_id__in=partner_ids, method=Method.SEAT_DAYS).active_on(today)
    open_alerts = {
        (a.service_id, a.kind): a
        for a in UtilizationAlert.objects.filter(service__in=services, cleared_at__isnull=True)
    }
    services = list(services.select_related("partner"))
    in_force = committed_seats(services, today)
    for service in services:
        active = counts.in_scope(service)
        committed = in_force[service.pk]
        ratio = utilization(active, committed)
        conditions = {
            AlertKind.WARNING: ratio is not None and ratio * 100 >= _warning_percent(),
            AlertKind.OVERAGE: ratio is not None and active > committed,
        }
        for kind, holds in conditions.items():
            current = open_alerts.get((service.pk, kind))
            if holds and current is None:
                alert = UtilizationAlert.objects.create(
                    service=service, kind=kind, raised_at=now, active_seats=active, committed_seats=committed,
                    recipients=", ".join(_alert_recipients(service)),
                )
                raised.append(alert)
                transaction.on_commit(lambda pk=alert.pk: _enqueue_alert_email(pk))
            elif not holds and current is not None:
                current.cleared_at = now
                current.save(update_fields=["cleared_at"])
    return raised


def _warning_percent():
    return settings.UTILIZATION_WARNING_PERCENT


def _alert_recipients(service: Service) -> list[str]:
    seen: dict[str, None] = {}
    for email in [*service.partner.billing_contacts, *split_emails(service.notification_emails)]:
        seen.setdefault(email.lower(), None)
    return list(seen)


def _enqueue_alert_email(alert_id: int) -> None:
    """Queue the email; with the broker down the alert stays unsent and the daily job sends it."""
    # a named cycle: the task sends the email with alert_email_send, in this module
    from partners.tasks import send_utilization_alert_task  # noqa: PLC0415

    try:
        send_utilization_alert_task.delay(alert_id)
    except Exception:  # the seats are committed: never fail the request over a queue outage
        logger.exception("could not queue utilization alert %s; the daily alerts job will send it", alert_id)


def alerts_evaluate_all() -> int:
    """The daily job: judge every partner's utilization (commitments change on the 1st when purchases
    take effect) and send alerts whose email never left. Returns the number of alerts sent."""
    partner_ids = sorted(
        set(Service.objects.filter(method=Method.SEAT_DAYS).values_list("partner_id", flat=True))
    )
    for partner_id in partner_ids:  # one short transaction per partner: live seat changes wait little
        alerts_evaluate(partner_ids=[partner_id])
    sent = 0
    stale = timezone.now() - timedelta(minutes=10)
    pending = UtilizationAlert.objects.filter(emailed_at__isnull=True, cleared_at__isnull=True, raised_at__lt=stale)
    for alert_id in pending.values_list("pk", flat=True):
        try:  # each alert on its own: one refused address (an SMTP 550) holds back no other partner's alert
            if alert_email_send(alert=UtilizationAlert.objects.get(pk=alert_id)).emailed_at is not None:
                sent += 1
        except OSError:  # smtplib's errors included: left unsent, tried again by tomorrow's job
            logger.exception("the email of utilization alert %s could not be sent", alert_id)
    return sent


@transaction.atomic
def alert_email_send(*, alert: UtilizationAlert) -> UtilizationAlert:
    """Send one alert to the billing contacts and record when it left (once: the row is locked, so
    a retried task and the daily job cannot both send it). A cleared alert is not sent late."""
    alert = UtilizationAlert.objects.select_for_update().select_related("service__partner").get(pk=alert.pk)
    if alert.emailed_at is not None or alert.cleared_at is not None:
        return alert
    recipients = [r for r in alert.recipients.split(", ") if r]
    service = alert.service
    if recipients:
        percent = utilization_percent(alert.active_seats, alert.committed_seats) or 0  # as the admin shows it
        subject = (
            f"[{service.partner.name}] {service.name}: overage has started"
            if alert.kind == AlertKind.OVERAGE
            else f"[{service.partner.name}] {service.name}: seat utilization reached {percent}%"
        )
        body = (
            f"{alert.active_seats} seats are assigned against a commitment of {alert.committed_seats} "
            f"({percent}% utilization) on {service.name} ({service.scope_label}).\n\n"
            + (
                "Seats above the commitment are billed as overage this month.\n"
                if alert.kind == AlertKind.OVERAGE
                else "Buy seats before the month ends to raise the commitment from the 1st of next month.\n"
            )
        )
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    alert.emailed_at = timezone.now()
    alert.save(update_fields=["emailed_at"])
    return alert


# --- partners, customers and services ----------------------------------------------------------------------
# One write path for the admin, the portal and the imports: the same rules, the same audit snapshot
# (partners.audit) and the same dated terms (billing-rules 3.11). The admin and the portal write one object
# (`partner_create`, `customer_update`, ...); the imports write a batch at once (`partners_upsert`, ...), after
# checking each row with `write_errors`, the rules the single services check too.


def _audit_partner_id(obj) -> int | None:
    """The partner an audit row of a partner, customer or service is filed under."""
    return obj.pk if isinstance(obj, Partner) else obj.partner_id


def partner_errors(partner: Partner, *, before: dict | None) -> dict[str, str]:
    """A partner's rules beyond its fields' own: a currency it may bill in, a tax rate that is a percent, and
    the currency fixed once the partner has services (their prices are in it, billing-rules 2). `before`: its
    audit snapshot as saved (None: new)."""
    errors = {}
    try:
        currency_places(partner.currency)
        if partner.currency not in settings.CURRENCIES:
            raise MoneyError
    except MoneyError:
        errors["currency"] = f"unknown currency {partner.currency!r} (one of {', '.join(settings.CURRENCIES)})"
    if partner.tax_rate is not None and partner.tax_rate > 100:
        errors["tax_rate"] = "is a percent: at most 100"
    if before and before["currency"] != partner.currency and partner.services.exists():
        errors["currency"] = (
            f"cannot change from {before['currency']} once the partner has services (prices are in it)"
        )
    return errors


def customer_errors(customer: Customer, *, active_seats: int | None = None) -> dict[str, str]:
    """A cap never goes below the seats active now (billing-rules 3.2). `active_seats`: the customer's active
    seats, when the caller counted them (under the partner's row lock); None: counted here."""
    if customer.seat_cap is None:
        return {}
    if active_seats is None:
        active_seats = (SeatAssignment.objects.active().filter(customer_id=customer.pk).count()
                        if customer.pk else 0)
    if active_seats > customer.seat_cap:
        return {"seat_cap": f"{active_seats} seats are active now; unassign seats before lowering the cap to "
                            f"{customer.seat_cap}"}
    return {}


def service_errors(service: Service, *, before: dict | None) -> dict[str, str]:
    """A service's method rules (`service_rule_errors`), its RMM filter's form, and how its units are derived
    fixed once saved (billing-rules 3.7). `before`: its audit snapshot as saved (None: new)."""
    errors = service_rule_errors(service)
    if service.rmm_filter and "rmm_filter" not in errors:
        try:
            rmm_filter_validator(service.rmm_filter)  # a field validator: only forms run those
        except ValidationError:
            errors["rmm_filter"] = f"{service.rmm_filter!r} is not ORG, ORG/GROUP, ORG/GROUP/SUB or view:NAME"
    if before is not None:
        for name in DERIVATION_FIELDS:
            if before[name] != getattr(service, name):
                errors[name] = (
                    f"cannot change from {before[name]!r} to {getattr(service, name)!r} once the service is "
                    f"saved (units would be derived differently); end it and create a new service"
                )
    return errors


def write_errors(obj, *, before: dict | None, terms_before: dict | None = None, effective: date | None = None,
                 active_seats: int | None = None) -> dict[str, str]:
    """What is wrong with a new or changed partner, customer or service, keyed by field (the import's column):
    its kind's rules, then, when its terms changed and a date is given, that the date can take them (a price
    change on a month's 1st, billing-rules 3.11) as `effective_from`. `before`, `terms_before`: its audit
    snapshot and terms as saved (None: new)."""
    kind = kind_of(obj)
    if kind == "partner":
        errors = partner_errors(obj, before=before)
    elif kind == "customer":
        errors = customer_errors(obj, active_seats=active_seats)
    else:
        errors = service_errors(obj, before=before)
    if terms_before is not None and effective is not None and not errors:
        changes = changed_terms(terms_before, values_of(obj))
        if changes:
            try:
                check_effective(changes, effective)
            except TermsDateError as exc:
                errors["effective_from"] = str(exc)
    return errors


def _validate(obj, errors: dict[str, str], *, saved=None) -> None:
    """Raise one ValidationError with the errors of the fields' own validators and constraints (those of the
    fields that change, when `saved` is the object as saved) and the kind's rules (`errors`)."""
    exclude = None
    if saved is not None:
        exclude = {f.name for f in obj._meta.concrete_fields
                   if f.value_from_object(obj) == f.value_from_object(saved)}
    found: dict[str, list[str]] = {}
    for check in (obj.clean_fields, obj.validate_unique, obj.validate_constraints):
        try:
            check(exclude=exclude)
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                found.setdefault(name, []).extend(messages)
    for name, message in errors.items():
        found.setdefault(name, []).append(message)
    if found:
        raise ValidationError(found)


def _create(obj, *, actor: Actor):
    _validate(obj, write_errors(obj, before=None))
    obj.save()
    audit_record(actor=actor, action=AuditAction.of(kind_of(obj), "create"), obj=obj,
                 partner_id=_audit_partner_id(obj), after=audit_snapshot(obj))
    return obj


def _update(obj, saved, *, actor: Actor, data: dict | None, effective: date | None):
    """Save `obj` (its changes set, or `data` set on it) over `saved` (the row as saved, locked); audit it when
    its snapshot changed, and date its changed terms (billing-rules 3.11)."""
    for name, value in (data or {}).items():
        setattr(obj, name, value)
    kind = kind_of(obj)
    before = audit_snapshot(saved)
    terms_before = values_of(saved) if kind in TERM_FIELDS else None
    _validate(obj, write_errors(obj, before=before, terms_before=terms_before, effective=effective), saved=saved)
    if data is None:
        obj.save()
    else:
        obj.save(update_fields=[*_columns_of(type(obj), data), "updated_at"])
    after = audit_snapshot(obj)
    if after != before:
        audit_record(actor=actor, action=AuditAction.of(kind, "update"), obj=obj, partner_id=_audit_partner_id(obj),
                     before=before, after=after)
    if terms_before is None:
        return obj, None
    return obj, terms_change_record(obj=obj, before=terms_before, effective=effective, actor=actor)


def _columns_of(model, names) -> list[str]:
    """The fields to save for `names`: a money field with its currency, a service's RMM filter with its parts."""
    columns = []
    for name in names:
        columns.append(model._meta.get_field(name).name)
        if f"{name}_currency" in {f.name for f in model._meta.concrete_fields}:
            columns.append(f"{name}_currency")
        if model is Service and name == "rmm_filter":
            columns += ["rmm_org", "rmm_group", "rmm_view"]
    return columns


def _delete(obj, *, actor: Actor) -> None:
    before, object_id, partner_id, label = audit_snapshot(obj), obj.pk, _audit_partner_id(obj), str(obj)
    kind = kind_of(obj)
    obj.delete()
    audit_record(actor=actor, action=AuditAction.of(kind, "delete"), object_type=obj._meta.label,
                 object_id=object_id, object_repr=label, partner_id=None if kind == "partner" else partner_id,
                 before=before)


@transaction.atomic
def partner_create(*, partner: Partner, actor: Actor) -> Partner:
    """Save a new partner (unsaved, its fields set), checked and audited (`partner.create`)."""
    return _create(partner, actor=actor)


@transaction.atomic
def partner_update(*, partner: Partner, actor: Actor, data: dict | None = None,
                   effective: date | None = None) -> tuple[Partner, date | None]:
    """Save a partner's changes: `data` ({field: value}) set on it, or else the changes it carries (a form's).
    Checked, audited (`partner.update`, when its snapshot changed) and its changed terms dated: from
    `effective`, or the default of terms_change_record (billing-rules 3.11). Returns the partner and the date
    its changed terms take effect (None: no term changed)."""
    saved = Partner.objects.select_for_update().get(pk=partner.pk)
    return _update(partner, saved, actor=actor, data=data, effective=effective)


@transaction.atomic
def partner_delete(*, partner: Partner, actor: Actor) -> None:
    """Delete a partner (its customers, services and history protect it), audited (`partner.delete`)."""
    _delete(partner, actor=actor)


@transaction.atomic
def customer_create(*, customer: Customer, actor: Actor) -> Customer:
    """Save a new customer (unsaved, its fields set), checked and audited (`customer.create`)."""
    return _create(customer, actor=actor)


@transaction.atomic
def customer_update(*, customer: Customer, actor: Actor, data: dict | None = None,
                    effective: date | None = None) -> tuple[Customer, date | None]:
    """Save a customer's changes, as `partner_update` does (`customer.update`). A cap is judged under the
    partner's row lock, the one seat changes take, against seats that cannot change meanwhile (billing-rules
    3.2)."""
    cap = (data or {}).get("seat_cap", customer.seat_cap)
    if cap is not None:
        _lock_partner(customer.partner_id)
    saved = Customer.objects.select_for_update().get(pk=customer.pk)
    return _update(customer, saved, actor=actor, data=data, effective=effective)


@transaction.atomic
def customer_delete(*, customer: Customer, actor: Actor) -> None:
    """Delete a customer (its seats, services and invoices protect it), audited (`customer.delete`)."""
    _delete(customer, actor=actor)


@transaction.atomic
def service_create(*, service: Service, actor: Actor) -> Service:
    """Save a new service (unsaved, its fields set), checked and audited (`service.create`)."""
    return _create(service, actor=actor)


@transaction.atomic
def service_update(*, service: Service, actor: Actor, data: dict | None = None,
                   effective: date | None = None) -> tuple[Service, date | None]:
    """Save a service's changes, as `partner_update` does (`service.update`). How its units are derived
    (method, meter, RMM filter) cannot change (billing-rules 3.7)."""
    saved = Service.objects.select_for_update().get(pk=service.pk)
    return _update(service, saved, actor=actor, data=data, effective=effective)


@transaction.atomic
def service_delete(*, service: Service, actor: Actor) -> None:
    """Delete a service (its seat purchases and invoice lines protect it), audited (`service.delete`)."""
    _delete(service, actor=actor)


# --- the same, a batch at once (the imports) --------------------------------------------------------------
@dataclass(eq=False)
class Upsert:
    """One object of a batch: new (no pk yet) or saved, with its new values set."""

    obj: models.Model
    before: dict | None = None  # its audit snapshot as saved (None: new)
    terms_before: dict | None = None  # its terms as saved (values_of), for an object whose terms are dated
    effective: date | None = None  # when its changed terms take effect (None: terms_change_record's default)
    after: dict = field(init=False)  # its audit snapshot now

    def __post_init__(self):
        self.after = audit_snapshot(self.obj)

    @property
    def new(self) -> bool:
        return self.before is None

    @property
    def changed(self) -> bool:
        """New, or its snapshot differs from the saved one (an identical row changes nothing)."""
        return self.before is None or self.after != self.before

    @property
    def terms_changed(self) -> bool:
        return self.terms_before is not None and bool(changed_terms(self.terms_before, values_of(self.obj)))


@transaction.atomic
def _upsert(model, *, upserts: list[Upsert], update_fields, actor: Actor) -> None:
    """Write a batch checked by `write_errors` (row by row, by the caller, so that each row's errors are
    reported): one bulk insert of the new objects, one bulk update of `update_fields` of the changed ones, their
    audit rows (the same snapshot and actions as the single services) and their dated terms."""
    creates = [u for u in upserts if u.new]
    updates = [u for u in upserts if not u.new and u.changed]
    now = timezone.now()
    audits = []
    for upsert in updates:
        upsert.obj.updated_at = now
        audits.append(audit_entry(actor=actor, action=AuditAction.of(model._meta.model_name, "update"),
                                  obj=upsert.obj, partner_id=_audit_partner_id(upsert.obj), before=upsert.before,
                                  after=upsert.after))
    if creates:
        model.objects.bulk_create([u.obj for u in creates])
        audits.extend(audit_entry(actor=actor, action=AuditAction.of(model._meta.model_name, "create"), obj=u.obj,
                                  partner_id=_audit_partner_id(u.obj), after=u.after) for u in creates)
    if updates:
        model.objects.bulk_update([u.obj for u in updates], [*update_fields, "updated_at"])
    AuditLog.objects.bulk_create(audits)
    for upsert in updates:
        if upsert.terms_before is not None:
            terms_change_record(obj=upsert.obj, before=upsert.terms_before, effective=upsert.effective, actor=actor)


def partners_upsert(*, upserts: list[Upsert], update_fields, actor: Actor) -> None:
    """A batch of new and changed partners (each checked by `write_errors`), written in bulk and audited."""
    _upsert(Partner, upserts=upserts, update_fields=update_fields, actor=actor)


def customers_upsert(*, upserts: list[Upsert], update_fields, actor: Actor) -> None:
    """A batch of new and changed customers (each checked by `write_errors` under the partners' row locks),
    written in bulk and audited."""
    _upsert(Customer, upserts=upserts, update_fields=update_fields, actor=actor)


def services_upsert(*, upserts: list[Upsert], update_fields, actor: Actor) -> None:
    """A batch of new and changed services (each checked by `write_errors`), written in bulk and audited. How
    units are derived is never among `update_fields` (billing-rules 3.7)."""
    _upsert(Service, upserts=upserts, update_fields=update_fields, actor=actor)


# --- terms with effective dates (billing-rules 3.11) -------------------------------------------------------
def terms_change_record(*, obj, before: dict, effective: date | None, actor: Actor | None = None) -> date | None:
    """Record that `obj`'s terms (saved already) changed from `before` (values_of before the change), taking
    effect on `effective` (None: the day it is made, a price change the next 1st; date.min: from the start).
    What was in force before that date stays so (TermsVersion rows); returns the date used, None when no term
    changed. Audited as `<kind>.terms` when an actor is given."""
    after = values_of(obj)
    changes = changed_terms(before, after)
    if not changes:
        return None
    effective = effective or default_effective(changes, utc_date(timezone.now()))
    check_effective(changes, effective)
    kind = kind_of(obj)
    partner_id = obj.pk if kind == "partner" else obj.partner_id
    pieces = pieces_changed([*_closed_pieces(obj), Piece(None, before)], effective=effective, changes=changes)
    TermsVersion.objects.filter(object_type=kind, object_id=obj.pk).delete()
    TermsVersion.objects.bulk_create(TermsVersion(object_type=kind, object_id=obj.pk, partner_id=partner_id,
                                                  valid_until=piece.until, values=piece.values)
                                     for piece in pieces if piece.until is not None)
    if actor is not None:
        audit_record(actor=actor, action=AuditAction.of(kind, "terms"), obj=obj, partner_id=partner_id,
                     before={name: before.get(name) for name in changes},
                     after={**changes, "effective_from": effective.isoformat() if effective > date.min else "start"})
    return effective


def _closed_pieces(obj) -> list[Piece]:
    """An object's terms before its latest change, oldest first (its TermsVersion rows)."""
    versions = TermsVersion.objects.filter(object_type=kind_of(obj), object_id=obj.pk).order_by("valid_until")
    return [Piece(until, values) for until, values in versions.values_list("valid_until", "values")]


def terms_history(obj) -> list[dict]:
    """An object's terms over time, oldest first: [{"from": date or None, "until": date or None, "values": {label:
    value}}] (the admin's history of terms)."""
    pieces = [*_closed_pieces(obj), Piece(None, values_of(obj))]
    history, start = [], None
    for piece in pieces:
        history.append({"from": start, "until": piece.until,
                        "values": {LABELS[name]: shown(name, value) for name, value in piece.values.items()}})
        start = piece.until + timedelta(days=1) if piece.until else None
    return history


# --- a team member's access ---------------------------------------------------------------------------
def partner_user_access_reset(*, partner_user, actor: Actor, request=None) -> bool:
    """A partner user's password stops working now (their sessions end with it) and, when they have an email
    address, they are sent the portal's password reset link. Audited; returns whether the email was sent."""
    user = partner_user.user
    # a random password nobody knows: the old one stops working, sessions end (their hash changed), and the
    # reset link (whose token hangs on the password) is valid
    user.set_password(secrets.token_urlsafe(32))
    user.save(update_fields=["password"])
    emailed = False
    if user.email:
        form = PasswordResetForm({"email": user.email})
        if form.is_valid():
            form.save(request=request, subject_template_name="portal/password_reset_subject.txt",
                      email_template_name="portal/password_reset_email.txt", use_https=bool(
                          request and request.is_secure()))
            emailed = True
    audit_record(actor=actor, action=AuditAction.PARTNER_USER_RESET_ACCESS, obj=partner_user,
                 partner=partner_user.partner,
                 after={"username": user.get_username(), "emailed": emailed})
    return emailed
