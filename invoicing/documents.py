"""Who issues an invoice and to whom, as printed on it (billing-rules 4.13): plain values kept with the invoice
when it is issued (Invoice.issuer, Invoice.recipient), so that a later change of the company profile or of the
partner's address never changes an issued invoice or its PDF."""

from __future__ import annotations

ISSUER_FIELDS = ("legal_name", "address", "tax_id", "registration", "email", "phone", "website", "bank_details",
                 "remittance", "invoice_footer")


def issuer_snapshot(profile) -> dict:
    """The issuer (a CompanyProfile) as printed on an invoice."""
    values = {field: getattr(profile, field) for field in ISSUER_FIELDS}
    return values | {"logo": profile.logo.name if profile.logo else ""}


def recipient_snapshot(partner) -> dict:
    """The partner as printed on its invoice."""
    return {"name": partner.name, "account": partner.slug, "address": partner.billing_address,
            "tax_id": partner.tax_id, "purchase_order": partner.purchase_order}
