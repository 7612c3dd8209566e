"""Audit actions are one closed list (partners.choices.AuditAction): `<object>.<verb>` in the singular, with a
label people read; any other action is refused before it is written."""

import pytest

from billing.core.actor import Actor
from partners.audit import audit_entry
from partners.choices import AuditAction
from partners.tests.factories import PartnerFactory


def test_every_action_is_an_object_and_a_verb_in_the_singular():
    for action in AuditAction:
        kind, _, verb = action.value.partition(".")
        assert kind and verb and not kind.endswith("s"), action
        assert action.label and action.label[0].isupper(), action


def test_an_action_is_named_by_its_object_and_verb():
    assert AuditAction.of("customer", "update") is AuditAction.CUSTOMER_UPDATE
    with pytest.raises(ValueError):
        AuditAction.of("customers", "update")


@pytest.mark.django_db
def test_an_unknown_action_is_refused_and_a_known_one_reads_as_its_label():
    partner = PartnerFactory()
    with pytest.raises(ValueError):
        audit_entry(actor=Actor(label="test"), action="customers.create", obj=partner)
    entry = audit_entry(actor=Actor(label="test"), action="partner.update", obj=partner)
    assert entry.action == AuditAction.PARTNER_UPDATE and entry.get_action_display() == "Partner changed"
