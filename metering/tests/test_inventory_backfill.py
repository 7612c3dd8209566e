"""Back-filled inventories (billing-rules 3.7, decision (t)): a missed night filled in later.

An inventory dated between two recorded ones is accepted: its changes take effect on its date and last
until the next recorded inventory; months already invoiced get proration lines on the next CI, as for
any change found after invoicing. The property: inventories applied in any order leave the presences
that applying them in date order leaves.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import transaction
from djmoney.money import Money
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.core.actor import Actor
from conftest import examples
from invoicing.models import InvoiceLine, InvoiceState
from metering.models import AgentPresence, InventorySync
from metering.selectors import asset_unit_steps
from metering.services import AgentRow, inventory_apply
from partners.models import AuditLog, Method
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory

pytestmark = pytest.mark.django_db

ACTOR = Actor(label="test")
D = Decimal


def agents(*specs: tuple[str, str, str]) -> dict[str, AgentRow]:
    """(agent id, organization, group) -> the inventory."""
    return {a: AgentRow(a, f"PC-{a}", org, group) for a, org, group in specs}


def apply(partner, day: str | date, inventory: dict[str, AgentRow]):
    day = date.fromisoformat(day) if isinstance(day, str) else day
    return inventory_apply(partner=partner, as_of=day, agents=inventory, actor=ACTOR, source="test")


def timeline(partner) -> list[tuple]:
    return sorted(AgentPresence.objects.filter(partner=partner).values_list(
        "agent__agent_id", "organization", "group", "present_from", "present_until"))


def test_a_missed_night_holds_from_its_date_until_the_next_inventory():
    """1 May: a, b, c in ACME; 10 May: the same. The night of 5 May, filled in on the 12th: a moved to
    Servers, c gone, d new in BETA. From the 5th to the 9th the back-filled night is in force; from the
    10th the 10 May inventory again (a back in WS, c back, d gone)."""
    partner = PartnerFactory(slug="keystone")
    everyone = agents(("a", "ACME", "WS"), ("b", "ACME", "WS"), ("c", "ACME", "WS"))
    apply(partner, "2026-05-01", everyone)
    apply(partner, "2026-05-10", everyone)

    result = apply(partner, "2026-05-05", agents(("a", "ACME", "Servers"), ("b", "ACME", "WS"), ("d", "BETA", "")))

    assert (result.added, result.moved, result.removed) == (1, 1, 1)
    assert timeline(partner) == [
        ("a", "ACME", "Servers", date(2026, 5, 5), date(2026, 5, 9)),
        ("a", "ACME", "WS", date(2026, 5, 1), date(2026, 5, 4)),
        ("a", "ACME", "WS", date(2026, 5, 10), None),
        ("b", "ACME", "WS", date(2026, 5, 1), None),  # never changed: still one presence
        ("c", "ACME", "WS", date(2026, 5, 1), date(2026, 5, 4)),
        ("c", "ACME", "WS", date(2026, 5, 10), None),
        ("d", "BETA", "", date(2026, 5, 5), date(2026, 5, 9)),
    ]
    assert list(InventorySync.objects.filter(partner=partner).order_by("as_of").values_list("as_of", flat=True)) == [
        date(2026, 5, 1), date(2026, 5, 5), date(2026, 5, 10)]
    audit = AuditLog.objects.filter(action="inventory.apply").order_by("pk").last()
    assert audit.after["as_of"] == "2026-05-05" and audit.after["back_filled_until"] == "2026-05-09"

    # the same night again: nothing changes, nothing more is recorded
    again = apply(partner, "2026-05-05", agents(("a", "ACME", "Servers"), ("b", "ACME", "WS"), ("d", "BETA", "")))
    assert (again.added, again.moved, again.removed, again.sync) == (0, 0, 0, None)
    assert InventorySync.objects.filter(partner=partner).count() == 3


def test_a_night_before_the_first_inventory_and_a_later_correction_of_it():
    """The first inventory recorded is 10 May; 3 May is filled in (a, b): they are present from the 3rd and
    a's presence joins the one of the 10th. Then the 3 May night corrected: b was not there after all."""
    partner = PartnerFactory()
    apply(partner, "2026-05-10", agents(("a", "ACME", "")))
    apply(partner, "2026-05-03", agents(("a", "ACME", ""), ("b", "ACME", "")))
    assert timeline(partner) == [("a", "ACME", "", date(2026, 5, 3), None),
                                 ("b", "ACME", "", date(2026, 5, 3), date(2026, 5, 9))]
    apply(partner, "2026-05-03", agents(("a", "ACME", "")))
    assert timeline(partner) == [("a", "ACME", "", date(2026, 5, 3), None)]


def test_the_meter_sees_the_back_filled_night():
    partner = PartnerFactory()
    service = ServiceFactory(partner=partner, code="agents", method=Method.PER_ASSET, rmm_filter="acme",
                             unit_price=Money("10.00", partner.currency), start_date=date(2026, 4, 1))
    apply(partner, "2026-05-01", agents(*((f"a{i}", "ACME", "") for i in range(3))))
    apply(partner, "2026-05-20", agents(*((f"a{i}", "ACME", "") for i in range(3))))
    apply(partner, "2026-05-08", agents(*((f"a{i}", "ACME", "") for i in range(7))))
    steps = asset_unit_steps(service_ids=[service.pk], first=date(2026, 5, 1), last=date(2026, 5, 31))
    assert steps[service.pk] == [(date(2026, 5, 1), 3), (date(2026, 5, 8), 7), (date(2026, 5, 20), 3)]


# --- any order = date order (hypothesis) ------------------------------------------------------------
PLACES = [("ACME", ""), ("ACME", "Servers"), ("BETA", "")]


@st.composite
def inventories(draw):
    """2-5 inventories on distinct dates of May; each a random subset of 5 agents in random places."""
    days = sorted(draw(st.lists(st.integers(1, 31), min_size=2, max_size=5, unique=True)))
    result = []
    for day in days:
        present = draw(st.lists(st.sampled_from("abcde"), unique=True, max_size=5))
        result.append((date(2026, 5, day), {a: draw(st.sampled_from(PLACES)) for a in present}))
    return result


class Rollback(Exception):
    pass


@settings(max_examples=examples(40), deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=inventories(), order=st.randoms(use_true_random=False))
def test_inventories_in_any_order_leave_what_date_order_leaves(history, order):
    def play(sequence) -> list[tuple]:
        try:
            with transaction.atomic():
                partner = PartnerFactory()
                for day, spec in sequence:
                    apply(partner, day, {a: AgentRow(a, a, org, group) for a, (org, group) in spec.items()})
                got = timeline(partner)
                raise Rollback(got)
        except Rollback as done:
            return done.args[0]

    shuffled = list(history)
    order.shuffle(shuffled)
    assert play(shuffled) == play(history)


# --- the acceptance: a missed night after the month was invoiced, through the command line ---------------

def test_a_missed_night_filled_in_after_the_month_was_invoiced_posts_prorations_on_the_next_ci(cli, tmp_path):
    """Acme's agents at 10.00, billed in advance: 10 agents on 1 April (April billed 100.00 on the April CI),
    10 again on 20 April. The night of 10 April was missed; its export (14 agents) is imported after April was
    invoiced and after the 20 April inventory. The May CI carries April +4 from the 10th
    (4 x 10.00 x 21/30 = 28.00) and -4 from the 20th (-4 x 10.00 x 11/30 = -14.67), besides May's 100.00."""
    partner = PartnerFactory(slug="rmm")
    acme = CustomerFactory(partner=partner, slug="acme", rmm_organization="ACME")
    ServiceFactory(partner=partner, customer=acme, code="agents", name="Agents", method=Method.PER_ASSET,
                   rmm_filter="ACME", unit_price=Money("10.00", partner.currency), start_date=date(2026, 3, 1))

    def export(name: str, count: int):
        path = tmp_path / name
        path.write_text("agent_id,machine_name,organization,group\n"
                        + "".join(f"acme-{i},PC-{i},ACME,\n" for i in range(count)))
        return str(path)

    def imported(name: str, count: int, as_of: str) -> None:
        result = cli("import_csv", "rmm-assets", export(name, count), "--partner", "rmm", "--as-of", as_of)
        assert result.status == 0, result.err

    imported("apr1.csv", 10, "2026-04-01")
    assert cli("run_billing", "--through", "2026-04-01").status == 0
    imported("apr20.csv", 10, "2026-04-20")
    imported("apr10.csv", 14, "2026-04-10")  # the missed night, filled in after April was invoiced
    assert cli("run_billing", "--through", "2026-05-01").status == 0

    rows = InvoiceLine.objects.filter(invoice__partner=partner, invoice__state=InvoiceState.ISSUED,
                                      invoice__month="2026-05").values_list(
        "line_type", "period", "quantity", "effective_date", "amount")
    assert sorted((t, p, q.normalize(), e, a) for t, p, q, e, a in rows) == [
        ("proration", "2026-04", D("-4"), date(2026, 4, 20), D("-14.67")),
        ("proration", "2026-04", D("4"), date(2026, 4, 10), D("28.00")),
        ("recurring", "2026-05", D("10"), None, D("100.00")),
    ]
    # exported as a partner's clerk reads it
    out = cli("export_report", "invoice-lines", "--month", "2026-05", "--partner", "rmm")
    assert out.status == 0, out.err
    assert sum(1 for line in out.out.splitlines() if ",proration,2026-04," in line) == 2

