"""Writes of the rebilling profiles (billing-rules 12.4): a partner's rebilling settings and a customer's billing
details, as the portal saves them. Each save is checked whole before anything is written, and audited in its
transaction with the profile before and after (`rebilling_profile.*`, `customer_billing_profile.*`), in the same
snapshot as the admin's edits, so the audit log reads one way whichever door the change came through."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from billing.core.actor import Actor
from billing.core.emails import split_emails
from invoicing.rebilling.models import CustomerBillingProfile, RebillingProfile
from partners.audit import audit_record, jsonable
from partners.choices import AuditAction
from partners.models import Customer, Partner

# what a partner sets of its rebilling profile (the logo apart: a file, recorded by its name)
REBILLING_FIELDS = ("enabled", "number_prefix", "payment_terms_days", "legal_name", "address", "tax_id", "email",
                    "phone", "website", "bank_details", "invoice_footer", "review_drafts", "email_invoices",
                    "customer_billing")
CUSTOMER_BILLING_FIELDS = ("legal_name", "address", "tax_id", "purchase_order", "tax_rate", "billing_emails")


def rebilling_profile_snapshot(profile: RebillingProfile) -> dict:
    return {name: jsonable(getattr(profile, name)) for name in REBILLING_FIELDS} | {
        "partner": profile.partner.slug, "logo": profile.logo.name if profile.logo else ""}


def customer_billing_profile_snapshot(profile: CustomerBillingProfile) -> dict:
    return {name: jsonable(getattr(profile, name)) for name in CUSTOMER_BILLING_FIELDS} | {
        "customer": profile.customer.slug}


def prefix_taken(prefix: str, partner_id: int) -> bool:
    """Another partner's customer invoices already begin with this prefix (they are unique across partners)."""
    return RebillingProfile.objects.filter(number_prefix=prefix).exclude(partner_id=partner_id).exists()


def prefix_taken_message(prefix: str) -> str:
    return f"{prefix} is already the prefix of another partner's invoices: choose another"


@transaction.atomic
def rebilling_profile_save(*, partner: Partner, data: dict, actor: Actor) -> RebillingProfile:
    """Create or change the partner's rebilling profile with `data` (any of REBILLING_FIELDS, and `logo`: an
    uploaded file, False to remove it, or left out to keep it). Refused whole with a ValidationError by field:
    a prefix another partner uses or one of ours, a bad email. Audited only when something changed."""
    profile = RebillingProfile.objects.select_for_update().select_related("partner").filter(partner=partner).first()
    created = profile is None
    if created:
        profile = RebillingProfile(partner=partner)
    before = None if created else rebilling_profile_snapshot(profile)
    for name in REBILLING_FIELDS:
        if name in data:
            setattr(profile, name, data[name])
    if "logo" in data and data["logo"] is not None:
        # as a form saves a file field: an upload replaces the logo, False removes it
        RebillingProfile._meta.get_field("logo").save_form_data(profile, data["logo"])
    profile.number_prefix = (profile.number_prefix or "").strip().upper()
    errors: dict[str, list[str]] = {}
    try:
        profile.full_clean(validate_unique=False)
    except ValidationError as exc:
        errors = exc.message_dict
    if "number_prefix" not in errors and prefix_taken(profile.number_prefix, partner.pk):
        errors["number_prefix"] = [prefix_taken_message(profile.number_prefix)]
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():  # a partner taking the same prefix at the same moment: the index refuses one
            profile.save()
    except IntegrityError as exc:
        raise ValidationError({"number_prefix": prefix_taken_message(profile.number_prefix)}) from exc
    after = rebilling_profile_snapshot(profile)
    if after != before:
        audit_record(actor=actor, action=AuditAction.REBILLING_PROFILE_CREATE if created
                     else AuditAction.REBILLING_PROFILE_UPDATE, obj=profile, partner=partner, before=before,
                     after=after)
    return profile


def billing_emails_errors(text: str) -> list[str]:
    """Each address of a billing emails list that is not one, named."""
    errors = []
    for email in split_emails(text):
        try:
            validate_email(email)
        except ValidationError:
            errors.append(f"{email!r} is not an email address")
    return errors


@transaction.atomic
def customer_billing_profile_save(*, customer: Customer, data: dict, actor: Actor) -> CustomerBillingProfile:
    """Create or change a customer's billing details (any of CUSTOMER_BILLING_FIELDS in `data`): what its
    partner's invoices print as the recipient, its tax rate and who receives them. Refused whole with a
    ValidationError by field; audited only when something changed. Issued invoices keep what they printed."""
    profile = (CustomerBillingProfile.objects.select_for_update().select_related("customer")
               .filter(customer=customer).first())
    created = profile is None
    if created:
        profile = CustomerBillingProfile(customer=customer)
    before = None if created else customer_billing_profile_snapshot(profile)
    for name in CUSTOMER_BILLING_FIELDS:
        if name in data:
            setattr(profile, name, data[name])
    profile.billing_emails = ", ".join(split_emails(profile.billing_emails))
    errors: dict[str, list[str]] = {}
    try:
        profile.full_clean(exclude=["customer"], validate_unique=False)
    except ValidationError as exc:
        errors = exc.message_dict
    if email_errors := billing_emails_errors(profile.billing_emails):
        errors.setdefault("billing_emails", []).extend(email_errors)
    if errors:
        raise ValidationError(errors)
    profile.save()
    after = customer_billing_profile_snapshot(profile)
    if after != before:
        audit_record(actor=actor, action=AuditAction.CUSTOMER_BILLING_PROFILE_CREATE if created
                     else AuditAction.CUSTOMER_BILLING_PROFILE_UPDATE, obj=profile, partner=customer.partner,
                     before=before, after=after)
    return profile
