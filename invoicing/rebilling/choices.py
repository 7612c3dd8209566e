"""The rebilling app's choices, in a module of their own so that the pure pricing module names them without the
models."""

from django.db import models


class ResaleMode(models.TextChoices):
    """How a resale price charges a quantity (docs/rebilling.md, billing-rules 12.2)."""

    UNIT = "unit", "Price per unit"
    MARKUP = "markup", "Markup on our price"
    PACKAGE = "package", "Package (up to N units for a fixed price)"
    TIERS = "tiers", "Tiers"
    # a customer's override only: from its date the customer is charged the default list's price again
    DEFAULT = "default", "The default list's price"


# the modes that charge something (DEFAULT only points back at the default list)
PRICING_MODES = (ResaleMode.UNIT, ResaleMode.MARKUP, ResaleMode.PACKAGE, ResaleMode.TIERS)


class CustomerInvoiceKind(models.TextChoices):
    """A partner's document to its customer (billing-rules 12.5)."""

    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit_note", "Credit note"


class UnbilledReason(models.TextChoices):
    """Why a charge of ours to the partner is on no customer invoice (billing-rules 12.6)."""

    NO_PRICE = "no_price", "No resale price for the customer"
    NOT_SPLIT = "not_split", "Billed to the partner as a whole: no quantity per customer"


class TransactionKind(models.TextChoices):
    """What a customer transaction records (billing-rules 12.10): the seed's "usage charges, subscription
    charges, payments and credits", and the taxes of its invoices. Charges and taxes add to what the customer
    owes; payments and credits take from it."""

    SUBSCRIPTION = "subscription", "Subscription charges"
    USAGE = "usage", "Usage charges"
    TAX = "tax", "Taxes"
    CREDIT = "credit", "Credit"
    PAYMENT = "payment", "Payment"
    PAYMENT_VOID = "payment_void", "Payment voided"


# the charges of an invoice line type, as its transaction records them: advance and first-month charges are
# subscription charges, the rest usage (own items with a meter, metered services in arrears)
SUBSCRIPTION_LINE_TYPES = ("recurring", "first_month")
