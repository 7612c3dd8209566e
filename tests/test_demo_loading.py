"""`load_demo` on an empty database: a database with an older demo gains only what it lacks, the demo can issue
under the production rule for legal details, and its CIs show the payments made month by month. The tests that
read the loaded demo are tests/test_demo.py (which loads it once for all of them)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from billing.demo import PARTNERS
from billing.management.commands.load_demo import Command
from invoicing.models import CompanyProfile, Invoice, InvoiceKind
from invoicing.services.ledger import company_details_missing, partner_details_missing
from partners.models import Partner, SeatAssignment
from tests.test_demo import load_demo, quick_pdfs, this_month  # noqa: F401 (quick_pdfs: the autouse fixture)

pytestmark = pytest.mark.django_db


def test_a_database_with_the_older_demo_gains_only_the_partners_it_lacks():
    """Each demo partner is loaded only when it does not exist yet."""

    now = timezone.now()
    first = this_month().previous().previous().previous()
    Command(stdout=io.StringIO())._load(first, now, {"northwind", "blue-harbor"})
    seats = list(SeatAssignment.objects.values_list("pk", "assigned_at", "removed_at").order_by("pk"))
    output = load_demo()
    assert "6 partners (summit-cloud, ridgeline, brightline, keystone, clearwave, granite-it)" in output
    assert set(Partner.objects.values_list("slug", flat=True)) == {p["slug"] for p in PARTNERS}
    assert list(SeatAssignment.objects.values_list("pk", "assigned_at", "removed_at").order_by("pk")) == seats


@pytest.mark.django_db
def test_the_demo_can_issue_under_the_production_rule_for_legal_details(settings):
    """The demo fills in a complete company profile and every partner's billing address and tax id, so its
    invoices could be issued where the production settings require them (billing-rules 4.13)."""
    settings.INVOICE_LEGAL_DETAILS_REQUIRED = True
    call_command("load_demo", stdout=io.StringIO())
    assert company_details_missing() == []
    assert all(partner_details_missing(p) == [] and p.tax_id for p in Partner.objects.all())
    assert CompanyProfile.current().bank_details
    assert Invoice.objects.issued().filter(issuer__legal_name="Northbridge Billing Ltd").exists()


@pytest.mark.django_db(transaction=True)  # emails leave on commit, as in a real run
def test_the_demo_s_cis_show_the_payments_made_since_the_last_one(mailoutbox):
    """Payments are recorded month by month, before the next CI is issued: CIs after the first show them in their
    statement (billing-rules 4.6), and the demo sends (and prints) no email."""
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    assert mailoutbox == []
    showing = Invoice.objects.issued().filter(kind=InvoiceKind.CI).exclude(payments_and_credits=0)
    assert showing.count() >= 8  # the second and third months' CIs of the partners that were paid
    assert all(ci.previous_balance != 0 for ci in showing)
    assert len(out.getvalue().splitlines()) < 40
