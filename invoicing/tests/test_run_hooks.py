"""The billing run's hook for later layers (billing.core.hooks, billing-rules 12.5): after a partner's documents are
issued, in the partner's transaction, each registered callback gets the partner and the documents issued for it;
a preview calls none, a partner with nothing to bill calls none, and a callback's error rolls the partner's
billing back with it."""

from __future__ import annotations

from datetime import date

import pytest

from billing.core import hooks
from invoicing.models import Invoice
from invoicing.services import billing_run
from partners.models import Method
from partners.tests.factories import PartnerFactory, ServiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def calls(monkeypatch):
    """A callback registered for the test only (the registry as the apps left it, then this one)."""
    seen = []
    monkeypatch.setattr(hooks, "_after_partner_billed", [])
    hooks.register_after_partner_billed(
        lambda *, partner, documents, through, actor: seen.append(
            (partner.slug, [(d.kind, d.number, d.state) for d in documents], through)))
    return seen


@pytest.fixture
def partners():
    busy = PartnerFactory(slug="busy")
    ServiceFactory(partner=busy, code="support", method=Method.FLAT, start_date=date(2026, 3, 1))
    ServiceFactory(partner=busy, code="late", method=Method.FLAT, start_date=date(2026, 3, 12))
    PartnerFactory(slug="idle")  # nothing to bill
    return busy


def test_called_for_each_partner_billed_with_its_issued_documents(calls, partners):
    billing_run(through=date(2026, 3, 31))
    assert calls == [("busy", [("CI", "CI-0001", "issued"), ("INV", "INV-0001", "issued")], date(2026, 3, 31))]
    billing_run(through=date(2026, 3, 31))  # nothing new: no call
    assert len(calls) == 1


def test_a_preview_calls_nothing(calls, partners):
    billing_run(through=date(2026, 3, 31), draft=True)
    assert calls == []


def test_a_callback_that_fails_rolls_the_partners_billing_back(monkeypatch, partners):
    monkeypatch.setattr(hooks, "_after_partner_billed", [])

    def broken(**kwargs):
        raise RuntimeError("rebilling failed")

    hooks.register_after_partner_billed(broken)
    with pytest.raises(RuntimeError, match="rebilling failed"):
        billing_run(through=date(2026, 3, 31))
    assert not Invoice.objects.exists()


def test_registering_twice_registers_once(monkeypatch):
    monkeypatch.setattr(hooks, "_after_partner_billed", [])

    def callback(**kwargs):
        return None

    hooks.register_after_partner_billed(callback)
    hooks.register_after_partner_billed(callback)
    assert hooks._after_partner_billed == [callback]
