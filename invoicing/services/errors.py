"""The error every invoicing service raises for a request it refuses."""


class BillingError(Exception):
    """A billing request that cannot be carried out (one clear line)."""
