"""The live seat service: caps, the account-wide commitment, purchases, alerts, audit (billing-rules 3.2, 3.3)."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import PermissionDenied

from billing.core.actor import Actor
from partners import tasks
from partners.models import AlertKind, AuditLog, Role, SeatAssignment, UtilizationAlert
from partners.seating import SeatRuleError
from partners.services import alerts_evaluate_all, seat_assign, seat_purchase_create, seat_unassign
from partners.tests.factories import (
    CustomerFactory,
    PartnerFactory,
    PartnerUserFactory,
    ServiceFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
STAFF = Actor(label="test")


def assign(customer, name):
    return seat_assign(customer=customer, member_name=name, actor=STAFF)


def test_assign_creates_a_seat_and_an_audit_row():
    customer = CustomerFactory()
    seat = assign(customer, "ana")
    assert seat.removed_at is None and seat.member.name == "ana"
    entry = AuditLog.objects.get(action="seat.assign")
    assert entry.object_id == str(seat.pk) and entry.after["member_id"] == seat.member_id
    assert entry.partner == customer.partner


def test_second_assign_refused():
    """An assign for a member who already holds an active seat is refused (billing-rules 3.1)."""
    customer = CustomerFactory()
    assign(customer, "ana")
    with pytest.raises(SeatRuleError, match="already holds an active seat"):
        assign(customer, "ana")
    assert SeatAssignment.objects.count() == 1


def test_seat_cap_denies_the_assignment_past_it():
    customer = CustomerFactory(seat_cap=2)
    assign(customer, "ana")
    assign(customer, "ben")
    with pytest.raises(SeatRuleError, match="seat cap of 2 reached"):
        assign(customer, "cleo")
    assert SeatAssignment.objects.filter(customer=customer).count() == 2
    assert not AuditLog.objects.filter(action="seat.assign", object_repr__startswith="cleo").exists()


def test_cap_frees_up_after_unassign():
    customer = CustomerFactory(seat_cap=1)
    assign(customer, "ana")
    seat_unassign(customer=customer, member_name="ana", actor=STAFF)
    assert assign(customer, "ben").member.name == "ben"


def test_commitment_without_overage_blocks_at_the_commitment_across_customers():
    """A partner-level commitment counts every customer's seats (billing-rules 3.2)."""
    partner = PartnerFactory()
    ServiceFactory(partner=partner, committed_quantity=2, overage_enabled=False)
    a, b = CustomerFactory(partner=partner), CustomerFactory(partner=partner)
    assign(a, "ana")
    assign(b, "ben")
    with pytest.raises(SeatRuleError, match=r"commitment of 2 seats .* overage is disabled"):
        assign(a, "cleo")


def test_commitment_with_overage_allows_the_excess():
    partner = PartnerFactory()
    ServiceFactory(partner=partner, committed_quantity=1, overage_enabled=True)
    customer = CustomerFactory(partner=partner)
    assign(customer, "ana")
    assert assign(customer, "ben")
    assert SeatAssignment.objects.active().count() == 2


def test_customer_level_commitment_counts_only_that_customer():
    partner = PartnerFactory()
    a, b = CustomerFactory(partner=partner), CustomerFactory(partner=partner)
    ServiceFactory(partner=partner, customer=a, committed_quantity=1, overage_enabled=False)
    assign(b, "bob")  # another customer: outside the scope
    assign(a, "ana")
    with pytest.raises(SeatRuleError, match="commitment of 1 seats"):
        assign(a, "al")


def test_ended_service_does_not_enforce_its_commitment():
    partner = PartnerFactory()
    ServiceFactory(partner=partner, committed_quantity=1, overage_enabled=False, end_date=date(2026, 2, 28))
    customer = CustomerFactory(partner=partner)
    assign(customer, "ana")
    assert assign(customer, "ben")


def test_unassign_without_a_seat_is_refused():
    customer = CustomerFactory()
    with pytest.raises(SeatRuleError, match="no active seat"):
        seat_unassign(customer=customer, member_name="ghost", actor=STAFF)


def test_seat_purchase_raises_the_commitment_from_next_month():
    """"Add seats" takes effect at the next UTC month boundary (billing-rules 3.2, 6.2)."""
    partner = PartnerFactory()
    service = ServiceFactory(partner=partner, committed_quantity=1, overage_enabled=False)
    customer = CustomerFactory(partner=partner)
    with time_machine.travel(datetime(2026, 11, 10, 12, tzinfo=UTC), tick=False):
        assign(customer, "ana")
        purchase = seat_purchase_create(service=service, seats=2, actor=STAFF)
        assert purchase.effective_date == date(2026, 12, 1)
        with pytest.raises(SeatRuleError):
            assign(customer, "ben")  # still November: the commitment is 1
    with time_machine.travel(datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC), tick=False):
        assign(customer, "ben")
        assign(customer, "cleo")
        with pytest.raises(SeatRuleError, match="commitment of 3 seats"):
            assign(customer, "dev")
    assert AuditLog.objects.filter(action="seat_purchase.create", object_id=str(purchase.pk)).exists()


@pytest.mark.parametrize(("role", "allowed"), [(Role.OWNER, True), (Role.BILLING, True), (Role.TECHNICIAN, False)])
def test_only_owner_or_billing_buys_seats(role, allowed):
    partner_user = PartnerUserFactory(role=role)
    service = ServiceFactory(partner=partner_user.partner, committed_quantity=1)
    actor = Actor.of_user(partner_user.user)
    if allowed:
        assert seat_purchase_create(service=service, seats=1, actor=actor).seats == 1
    else:
        with pytest.raises(PermissionDenied):
            seat_purchase_create(service=service, seats=1, actor=actor)


def test_staff_user_without_partner_role_may_buy_seats():
    service = ServiceFactory(committed_quantity=1)
    purchase = seat_purchase_create(service=service, seats=3, actor=Actor.of_user(UserFactory(is_staff=True)))
    assert purchase.seats == 3


class TestUtilizationAlerts:
    """One email at 90% and one when overage starts, per crossing (billing-rules 3.3)."""

    @pytest.fixture
    def setup(self):
        partner = PartnerFactory(billing_emails="ops@msp.example; cfo@msp.example")
        service = ServiceFactory(partner=partner, committed_quantity=10, overage_enabled=True,
                                 notification_emails="seats@msp.example")
        return partner, service, CustomerFactory(partner=partner)

    def test_alerts_once_per_crossing(self, setup, django_capture_on_commit_callbacks):
        _, _, customer = setup
        with django_capture_on_commit_callbacks(execute=True):
            for n in range(8):
                assign(customer, f"m{n}")
        assert mail.outbox == []
        with django_capture_on_commit_callbacks(execute=True):
            assign(customer, "m8")  # 9 of 10: 90%
        assert len(mail.outbox) == 1
        assert "utilization reached 90%" in mail.outbox[0].subject
        assert sorted(mail.outbox[0].to) == ["cfo@msp.example", "ops@msp.example", "seats@msp.example"]
        with django_capture_on_commit_callbacks(execute=True):
            assign(customer, "m9")  # 100%: still the same crossing, no repeat
        assert len(mail.outbox) == 1
        with django_capture_on_commit_callbacks(execute=True):
            assign(customer, "m10")  # 11 of 10: overage starts
        assert len(mail.outbox) == 2 and "overage has started" in mail.outbox[1].subject
        with django_capture_on_commit_callbacks(execute=True):
            for n in (10, 9, 8, 7):
                seat_unassign(customer=customer, member_name=f"m{n}", actor=STAFF)  # down to 7: both clear
        assert UtilizationAlert.objects.filter(cleared_at__isnull=True).count() == 0
        with django_capture_on_commit_callbacks(execute=True):
            assign(customer, "m7")
            assign(customer, "m8")  # 9 of 10 again: a new crossing
        assert len(mail.outbox) == 3
        assert UtilizationAlert.objects.filter(kind=AlertKind.WARNING).count() == 2
        assert all(a.emailed_at for a in UtilizationAlert.objects.all())

    def test_no_commitment_no_alert(self, django_capture_on_commit_callbacks):
        customer = CustomerFactory()
        ServiceFactory(partner=customer.partner, committed_quantity=None)
        with django_capture_on_commit_callbacks(execute=True):
            for n in range(5):
                assign(customer, f"m{n}")
        assert mail.outbox == [] and not UtilizationAlert.objects.exists()

    def test_importing_history_alerts_only_on_the_state_now(self, setup, csv_file, cli,
                                                           django_capture_on_commit_callbacks):
        """History that crossed 90% and fell back sends nothing; alerts judge the state now (billing-rules 3.3)."""
        partner, _, customer = setup
        rows = ["partner,customer,member,action,at"]
        rows += [f"{partner.slug},{customer.slug},m{n},assign,2026-03-02T10:0{n}:00Z" for n in range(10)]
        rows += [f"{partner.slug},{customer.slug},m{n},unassign,2026-03-20T10:0{n}:00Z" for n in range(10)]
        path = csv_file("events.csv", "\n".join(rows) + "\n")
        with django_capture_on_commit_callbacks(execute=True):
            assert cli("import_csv", "seat-events", str(path)).status == 0
        assert mail.outbox == [] and not UtilizationAlert.objects.exists()
        rows = ["partner,customer,member,action,at"]
        rows += [f"{partner.slug},{customer.slug},n{n},assign,2026-10-02T10:0{n}:00Z" for n in range(9)]
        path = csv_file("events2.csv", "\n".join(rows) + "\n")
        with django_capture_on_commit_callbacks(execute=True):
            assert cli("import_csv", "seat-events", str(path)).status == 0
        assert len(mail.outbox) == 1 and "90%" in mail.outbox[0].subject


def test_daily_job_sends_alerts_whose_email_never_left(django_capture_on_commit_callbacks, monkeypatch):
    """A queue outage must not fail a seat change; the daily job sends the alert later (billing-rules 3.3)."""
    partner = PartnerFactory()
    ServiceFactory(partner=partner, committed_quantity=1, overage_enabled=True)
    customer = CustomerFactory(partner=partner)

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.send_utilization_alert_task, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        assign(customer, "ana")  # 100%: a warning alert, its email cannot be queued
    assert SeatAssignment.objects.count() == 1 and mail.outbox == []
    alert = UtilizationAlert.objects.get()
    assert alert.emailed_at is None
    UtilizationAlert.objects.update(raised_at=alert.raised_at - timedelta(hours=1))
    assert alerts_evaluate_all() == 1
    assert len(mail.outbox) == 1 and UtilizationAlert.objects.get().emailed_at is not None
    assert alerts_evaluate_all() == 0  # sent once


def test_commitment_lowered_by_services_import_raises_the_alert(csv_file, cli, django_capture_on_commit_callbacks):
    partner = PartnerFactory(slug="acme")
    ServiceFactory(partner=partner, code="seats", committed_quantity=10, overage_enabled=True)
    customer = CustomerFactory(partner=partner)
    for name in ("ana", "ben"):
        assign(customer, name)
    assert not UtilizationAlert.objects.exists()
    path = csv_file("services.csv", """\
        partner,code,name,method,unit_price,committed_quantity,overage_enabled,start_date
        acme,seats,Seats,seat_days,20.00,2,true,2026-01-01
    """)
    with django_capture_on_commit_callbacks(execute=True):
        assert cli("import_csv", "services", str(path)).status == 0
    assert set(UtilizationAlert.objects.values_list("kind", flat=True)) == {AlertKind.WARNING}
    assert len(mail.outbox) == 1
