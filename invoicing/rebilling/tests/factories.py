"""factory_boy factories for rebilling."""

from datetime import date
from decimal import Decimal

import factory

from invoicing.rebilling.choices import ResaleMode
from invoicing.rebilling.models import ResaleItem, ResalePrice
from partners.tests.factories import PartnerFactory


class ResaleItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ResaleItem

    partner = factory.SubFactory(PartnerFactory)
    code = factory.Sequence(lambda n: f"item{n}")
    name = factory.LazyAttribute(lambda i: i.code.title())
    unit = "hour"


class ResalePriceFactory(factory.django.DjangoModelFactory):
    """A default-list price per unit of a service (give `service` or `item`)."""

    class Meta:
        model = ResalePrice

    partner = factory.LazyAttribute(lambda p: (p.service or p.item).partner)
    customer = None
    service = None
    item = None
    mode = ResaleMode.UNIT
    unit_price = Decimal("30.00")
    effective_from = date(2026, 1, 1)
