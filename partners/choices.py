"""The partners app's choices, in a module of their own so that the pure modules (pricing, tiers) use the same
names as the models without importing them."""

from django.db import models


class Method(models.TextChoices):
    SEAT_DAYS = "seat_days", "Seat-days (arrears)"
    PEAK = "peak", "Peak / high-watermark (arrears)"
    CMQ = "cmq", "Committed minimum quantity"
    LICENSES = "licenses", "Licenses per tenant (arrears)"
    PER_ASSET = "per_asset", "Per RMM agent (advance + proration)"
    PER_HOST = "per_host", "Per host (advance)"
    FLAT = "flat", "Flat (advance)"


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
