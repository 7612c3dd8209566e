"""factory_boy factories for the partners app."""

from datetime import UTC, date, datetime
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from djmoney.money import Money

from partners.models import (
    Customer,
    Member,
    Method,
    Partner,
    PartnerUser,
    Role,
    SeatAssignment,
    SeatPurchase,
    Service,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw")


class PartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partner
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"partner{n}")
    name = factory.LazyAttribute(lambda p: f"{p.slug.title()} MSP")
    currency = "USD"
    tax_rate = Decimal("0")
    payment_terms_days = 30
    billing_emails = factory.LazyAttribute(lambda p: f"billing@{p.slug}.example")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    partner = factory.SubFactory(PartnerFactory)
    slug = factory.Sequence(lambda n: f"customer{n}")
    name = factory.LazyAttribute(lambda c: c.slug.title())


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    customer = factory.SubFactory(CustomerFactory)
    name = factory.Sequence(lambda n: f"member{n}")


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    partner = factory.SubFactory(PartnerFactory)
    customer = None
    code = factory.Sequence(lambda n: f"service{n}")
    name = factory.LazyAttribute(lambda s: s.code.title())
    method = Method.SEAT_DAYS
    unit_price = factory.LazyAttribute(lambda s: Money(Decimal("20.00"), s.partner.currency))
    overage_price = None
    committed_quantity = None
    overage_enabled = False
    start_date = date(2026, 1, 1)


class SeatAssignmentFactory(factory.django.DjangoModelFactory):
    """A seat in the history (bypasses the live rules: for building metering fixtures)."""

    class Meta:
        model = SeatAssignment

    member = factory.SubFactory(MemberFactory)
    customer = factory.LazyAttribute(lambda a: a.member.customer)
    partner = factory.LazyAttribute(lambda a: a.member.customer.partner)
    assigned_at = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    removed_at = None
    source = "factory"


class SeatPurchaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SeatPurchase

    service = factory.SubFactory(ServiceFactory)
    seats = 1
    purchased_at = datetime(2026, 4, 20, 16, 0, tzinfo=UTC)


class PartnerUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PartnerUser

    user = factory.SubFactory(UserFactory)
    partner = factory.SubFactory(PartnerFactory)
    role = Role.OWNER
