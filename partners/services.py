"""Writes about partners and seats: every entry point (admin, portal, API, import) goes through here."""

from __future__ import annotations

import logging
from datetime import date, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from billing.core.emails import split_emails
from billing.core.periods import utc_date
from partners.audit import Actor, audit_record, snapshot
from partners.models import (
    BILLING_ROLES,
    AlertKind,
    Customer,
    Member,
    Method,
    Partner,
    SeatAssignment,
    SeatPurchase,
    Service,
    TermsVersion,
    UtilizationAlert,
)
from partners.seating import SeatRuleError, check_assignment, utilization, utilization_percent
from partners.selectors import active_seat_counts, commitments_in_force, committed_seats
from partners.terms import (
    LABELS,
    Piece,
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
    audit_record(actor=actor, action="seat.assign", obj=assignment, partner=partner,
                 after=snapshot(assignment, SEAT_FIELDS))
    alerts_evaluate(partner_ids=[partner.pk])
    return assignment


@transaction.atomic
def seat_unassign(*, customer: Customer, member_name: str, actor: Actor, source: str = "admin") -> SeatAssignment:
    """End the member's active seat now."""
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
    audit_record(actor=actor, action="seat.unassign", obj=assignment, partner=partner,
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
    if purchased_at is not None and purchased_at > timezone.now():
        raise ValidationError({"purchased_at": "a seat purchase cannot be dated in the future"})
    _lock_partner(service.partner_id)
    purchase = SeatPurchase(service=service, seats=seats, purchased_at=purchased_at or timezone.now(),
                            purchased_by=actor.user, source=source)
    purchase.save()
    audit_record(actor=actor, action="seat_purchase.create", obj=purchase, partner=service.partner,
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
    from partners.tasks import send_utilization_alert_task

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
        if alert_email_send(alert=UtilizationAlert.objects.get(pk=alert_id)).emailed_at is not None:
            sent += 1
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
        audit_record(actor=actor, action=f"{kind}.terms", obj=obj, partner_id=partner_id,
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
    import secrets

    from django.contrib.auth.forms import PasswordResetForm

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
    audit_record(actor=actor, action="partner_user.reset_access", obj=partner_user, partner=partner_user.partner,
                 after={"username": user.get_username(), "emailed": emailed})
    return emailed
