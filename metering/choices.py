"""Choices of metering's models, importable by pure modules (docs/architecture.md, section 2)."""

from django.db import models


class CallDirection(models.TextChoices):
    """Which way a call went (billing-rules 3.12)."""

    INBOUND = "inbound", "inbound"
    OUTBOUND = "outbound", "outbound"
    INTERNAL = "internal", "internal"
