"""Who issues a customer invoice and to whom, as printed on it (billing-rules 12.5): plain values kept with the
invoice when it is issued (CustomerInvoice.issuer, .recipient), as invoicing.documents does for ours, so that a
later change of the partner's profile or the customer's address never changes an issued invoice or its PDF."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from invoicing.rebilling.models import CustomerBillingProfile, RebillingProfile
    from partners.models import Customer


def issuer_snapshot(profile: RebillingProfile) -> dict:
    """The partner as the issuer printed on its customer invoices (its rebilling profile, else its own
    details), kept with each invoice when it is issued."""
    partner = profile.partner
    return {"legal_name": profile.legal_name or partner.name, "address": profile.address or partner.billing_address,
            "tax_id": profile.tax_id or partner.tax_id, "registration": "", "email": profile.email,
            "phone": profile.phone, "website": profile.website, "bank_details": profile.bank_details,
            "remittance": "", "invoice_footer": profile.invoice_footer,
            "logo": profile.logo.name if profile.logo else ""}


def recipient_snapshot(customer: Customer, billing: CustomerBillingProfile | None) -> dict:
    """The customer as the recipient printed on its invoice."""
    return {"name": (billing.legal_name if billing else "") or customer.name, "account": customer.slug,
            "address": billing.address if billing else "", "tax_id": billing.tax_id if billing else "",
            "purchase_order": billing.purchase_order if billing else "",
            "emails": billing.billing_contacts if billing else []}
