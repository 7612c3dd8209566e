"""The partners app's choices, in a module of their own so that the pure modules (pricing, tiers) use the same
names as the models without importing them."""

from __future__ import annotations

from django.db import models


class Method(models.TextChoices):
    SEAT_DAYS = "seat_days", "Seat-days (arrears)"
    PEAK = "peak", "Peak / high-watermark (arrears)"
    CMQ = "cmq", "Committed minimum quantity"
    LICENSES = "licenses", "Licenses per tenant (arrears)"
    PER_ASSET = "per_asset", "Per RMM agent (advance + proration)"
    PER_HOST = "per_host", "Per host (advance)"
    FLAT = "flat", "Flat (advance)"
    RECORDS = "records", "Usage records (arrears)"


class Meter(models.TextChoices):
    USERS = "users", "Users"
    ASSETS = "assets", "RMM assets"


class TierMode(models.TextChoices):
    VOLUME = "volume", "Volume"
    GRADUATED = "graduated", "Graduated"


class Proration(models.TextChoices):
    DAY_FRACTION = "day_fraction", "Day fraction (start date included)"
    ROUNDED_DAILY_RATE = "rounded_daily_rate", "Rounded daily rate (days after start)"


# methods billed in advance, on the month's 1st (billing-rules 3.7, 3.8); the others in arrears
ADVANCE_METHODS = (Method.FLAT, Method.PER_HOST, Method.PER_ASSET)


class AuditAction(models.TextChoices):
    """What an audit row records (partners.models.AuditLog.action): `<object>.<verb>`, the object in the
    singular. Every audit row takes one of these (partners.audit.audit_entry refuses any other)."""

    PARTNER_CREATE = "partner.create", "Partner added"
    PARTNER_UPDATE = "partner.update", "Partner changed"
    PARTNER_DELETE = "partner.delete", "Partner deleted"
    PARTNER_TERMS = "partner.terms", "Partner's terms changed (dated)"
    CUSTOMER_CREATE = "customer.create", "Customer added"
    CUSTOMER_UPDATE = "customer.update", "Customer changed"
    CUSTOMER_DELETE = "customer.delete", "Customer deleted"
    CUSTOMER_TERMS = "customer.terms", "Customer's terms changed (dated)"
    SERVICE_CREATE = "service.create", "Service added"
    SERVICE_UPDATE = "service.update", "Service changed"
    SERVICE_DELETE = "service.delete", "Service deleted"
    SERVICE_TERMS = "service.terms", "Service's terms changed (dated)"
    SEAT_ASSIGN = "seat.assign", "Seat assigned"
    SEAT_UNASSIGN = "seat.unassign", "Seat unassigned"
    SEAT_IMPORT = "seat.import", "Seat events imported"
    SEAT_IMPORT_SEAT = "seat.import.seat", "Seat recorded by an import"
    SEAT_IMPORT_REPLACED = "seat.import.replaced", "Seat history replaced by an import"
    SEAT_PURCHASE_CREATE = "seat_purchase.create", "Seats bought"
    USAGE_IMPORT = "usage.import", "Usage imported"
    USAGE_RECORD = "usage.record", "Usage recorded"
    SUSPENSION_IMPORT = "suspension.import", "Suspensions imported"
    SUSPENSION_SUSPEND = "suspension.suspend", "Tenant suspended"
    SUSPENSION_UNSUSPEND = "suspension.unsuspend", "Tenant unsuspended"
    INVENTORY_APPLY = "inventory.apply", "RMM inventory applied"
    INVENTORY_APPROVE = "inventory.approve", "Held RMM sync approved"
    INVENTORY_REJECT = "inventory.reject", "Held RMM sync rejected"
    RMM_INTEGRATION_CREATE = "rmm_integration.create", "RMM integration added"
    RMM_INTEGRATION_UPDATE = "rmm_integration.update", "RMM integration changed"
    RMM_INTEGRATION_DELETE = "rmm_integration.delete", "RMM integration deleted"
    INVOICE_ISSUE = "invoice.issue", "Invoice issued"
    INVOICE_CREDIT = "invoice.credit", "Credit note issued"
    INVOICE_DELETE_DRAFT = "invoice.delete_draft", "Draft invoice deleted"
    PAYMENT_RECORD = "payment.record", "Payment recorded"
    ONE_TIME_CHARGE_CREATE = "one_time_charge.create", "One-time charge added"
    ONE_TIME_CHARGE_UPDATE = "one_time_charge.update", "One-time charge changed"
    ONE_TIME_CHARGE_DELETE = "one_time_charge.delete", "One-time charge deleted"
    API_KEY_CREATE = "api_key.create", "API key created"
    API_KEY_REVOKE = "api_key.revoke", "API key revoked"
    PARTNER_USER_CREATE = "partner_user.create", "Portal user added"
    PARTNER_USER_UPDATE = "partner_user.update", "Portal user changed"
    PARTNER_USER_DELETE = "partner_user.delete", "Portal user deleted"
    PARTNER_USER_RESET_ACCESS = "partner_user.reset_access", "Portal user's access reset"
    USER_CREATE = "user.create", "Staff user added"
    USER_UPDATE = "user.update", "Staff user changed"
    USER_DELETE = "user.delete", "Staff user deleted"
    USER_TWO_FACTOR_ENROLLED = "user.two_factor_enrolled", "Second factor enrolled"
    GROUP_CREATE = "group.create", "Group added"
    GROUP_UPDATE = "group.update", "Group changed"
    GROUP_DELETE = "group.delete", "Group deleted"
    PERIODIC_TASK_CREATE = "periodic_task.create", "Scheduled job added"
    PERIODIC_TASK_UPDATE = "periodic_task.update", "Scheduled job changed"
    PERIODIC_TASK_DELETE = "periodic_task.delete", "Scheduled job deleted"
    PERIODIC_TASK_ENABLE = "periodic_task.enable", "Scheduled job enabled"
    PERIODIC_TASK_DISABLE = "periodic_task.disable", "Scheduled job disabled"
    PERIODIC_TASK_TOGGLE = "periodic_task.toggle", "Scheduled job toggled"
    PERIODIC_TASK_RUN = "periodic_task.run", "Scheduled job run by hand"
    LOGIN_LOCKED = "login.locked", "Sign-in locked"
    COMPANY_PROFILE_CREATE = "company_profile.create", "Company profile filled in"
    COMPANY_PROFILE_UPDATE = "company_profile.update", "Company profile changed"
    # rebilling: a partner's prices to its own customers (invoicing.rebilling, billing-rules 12)
    RESALE_ITEM_CREATE = "resale_item.create", "Own item added"
    RESALE_ITEM_UPDATE = "resale_item.update", "Own item changed"
    RESALE_PRICE_CREATE = "resale_price.create", "Resale price set"
    RESALE_PRICE_UPDATE = "resale_price.update", "Resale price changed"
    RESALE_PRICE_DELETE = "resale_price.delete", "Scheduled resale price cancelled"
    # rebilling: the partners' invoices to their customers (billing-rules 12.4-12.8)
    REBILLING_PROFILE_CREATE = "rebilling_profile.create", "Rebilling profile added"
    REBILLING_PROFILE_UPDATE = "rebilling_profile.update", "Rebilling profile changed"
    REBILLING_PROFILE_DELETE = "rebilling_profile.delete", "Rebilling profile deleted"
    CUSTOMER_BILLING_PROFILE_CREATE = "customer_billing_profile.create", "Customer billing profile added"
    CUSTOMER_BILLING_PROFILE_UPDATE = "customer_billing_profile.update", "Customer billing profile changed"
    CUSTOMER_BILLING_PROFILE_DELETE = "customer_billing_profile.delete", "Customer billing profile deleted"
    CUSTOMER_INVOICE_ISSUE = "customer_invoice.issue", "Customer invoice issued"
    CUSTOMER_INVOICE_CREDIT = "customer_invoice.credit", "Customer credit note issued"
    CUSTOMER_PAYMENT_RECORD = "customer_payment.record", "Customer payment recorded"
    CUSTOMER_PAYMENT_VOID = "customer_payment.void", "Customer payment voided"

    @classmethod
    def of(cls, kind: str, verb: str) -> AuditAction:
        """The action `<kind>.<verb>` (ValueError when there is none)."""
        return cls(f"{kind}.{verb}")
