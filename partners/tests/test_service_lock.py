"""The derivation lock: method, meter and RMM filter cannot change once a service is saved
(billing-rules 3.7), whatever writes it — save(), a queryset update, a bulk update."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from djmoney.money import Money

from partners.models import Method, Service
from partners.tests.factories import ServiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def service():
    return ServiceFactory(method=Method.PER_ASSET, rmm_filter="ACME/Servers",
                          unit_price=Money(Decimal("10.00"), "USD"))


@pytest.mark.parametrize(("field", "value"), [("method", Method.FLAT), ("rmm_filter", "ACME"),
                                               ("meter", "assets")])
def test_save_refuses_a_changed_derivation_field(service, field, value):
    setattr(service, field, value)
    with pytest.raises(ValidationError, match="cannot be changed once the service is saved"):
        service.save()
    service.refresh_from_db()
    assert (service.method, service.rmm_filter, service.meter) == (Method.PER_ASSET, "ACME/Servers", "")


def test_queryset_update_refuses_derivation_fields(service):
    with pytest.raises(ValidationError):
        Service.objects.filter(pk=service.pk).update(method=Method.FLAT)
    with pytest.raises(ValidationError):
        Service.objects.filter(pk=service.pk).update(rmm_org="OTHER")
    assert Service.objects.filter(pk=service.pk).update(name="Renamed") == 1


def test_bulk_update_refuses_derivation_fields(service):
    service.method = Method.FLAT
    with pytest.raises(ValidationError):
        Service.objects.bulk_update([service], ["method"])
    assert Service.objects.get(pk=service.pk).method == Method.PER_ASSET


def test_prices_and_names_stay_editable(service):
    service.name = "Managed endpoints"
    service.unit_price = Money(Decimal("12.50"), "USD")
    service.save()
    service.refresh_from_db()
    assert service.name == "Managed endpoints" and service.unit_price.amount == Decimal("12.50")
    assert (service.rmm_filter, service.rmm_org, service.rmm_group) == ("ACME/Servers", "acme", "servers")
