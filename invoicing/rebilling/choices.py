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
