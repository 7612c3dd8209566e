"""Secrets never leak: an API key and an RMM integration token with known values are
created and used, then every place a person or a log could read is searched for them: the admin's
lists, forms and history pages, the audit log, the portal, the API's answers and schema, the reports
and the admin's exports, captured logs at DEBUG (key creation, API calls, a sync that fails with the
token in use, an import, a billing run) and Django's error reports of a form that posted a token.

An API key is shown once, when it is created (the admin's message, the portal's page, the command's
output), and never again; only its public prefix appears after that.
"""

from __future__ import annotations

import io
import logging
import re

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.views.debug import ExceptionReporter

from billing.core.actor import Actor
from invoicing.models import Invoice
from metering.models import RmmIntegration, SyncRun, SyncStatus, SyncTrigger
from metering.sync import inventory_sync
from metering.tests.rmm_stub import agent
from partners.api_keys import api_key_create
from partners.models import ApiKey, AuditLog, Partner, Role
from partners.tests.factories import PartnerUserFactory, UserFactory
from tests.examples import replay

JSON_FEED = {"kind": "json", "enabled": "on", "removal_guard_percent": "20", "count_offline": "on"}
pytestmark = pytest.mark.django_db

RMM_TOKEN = "rmmtok-Zq8fK2vLw9XyP4mN7bR1sT6uV3cD0eHg"


def assert_clean(text: str, secrets: list[str], where: str) -> None:
    for secret in secrets:
        assert secret not in text, f"a secret appears in {where}"


def key_parts(key: str) -> list[str]:
    """The whole key and its secret part (the public prefix is meant to be shown)."""
    return [key, key.split("_", 2)[2]]


@pytest.fixture
def world(data_dir, rmm):
    """The seat-days-basic example billed, an API key, an RMM integration whose token the rmm
    RMM knows, a superuser and the partner's Owner."""
    replay(data_dir / "seat-days-basic")
    partner = Partner.objects.get(slug="brightdesk")
    api_key, key = api_key_create(partner=partner, actor=Actor(label="test"), name="psa")
    rmm.account(RMM_TOKEN, [agent("a1", organization="ORG")])
    integration = RmmIntegration.objects.create(partner=partner, kind="json", base_url=rmm.url, api_token=RMM_TOKEN)
    boss = UserFactory(username="boss", is_staff=True, is_superuser=True)
    owner = UserFactory(username="olga")
    PartnerUserFactory(user=owner, partner=partner, role=Role.OWNER)
    return {"partner": partner, "api_key": api_key, "key": key, "integration": integration, "boss": boss,
            "owner": owner, "secrets": [*key_parts(key), RMM_TOKEN]}


def admin_pages(world) -> list[str]:
    api_key, integration = world["api_key"], world["integration"]
    pages = [reverse("admin:index")]
    for name, obj in (("partners_apikey", api_key), ("metering_rmmintegration", integration),
                      ("partners_partner", world["partner"])):
        pages += [reverse(f"admin:{name}_changelist"), reverse(f"admin:{name}_change", args=[obj.pk]),
                  reverse(f"admin:{name}_history", args=[obj.pk])]
    pages.append(reverse("admin:metering_syncrun_changelist"))
    pages += [reverse("admin:metering_syncrun_change", args=[pk])
              for pk in SyncRun.objects.values_list("pk", flat=True)]
    pages.append(reverse("admin:partners_auditlog_changelist"))
    pages += [reverse("admin:partners_auditlog_change", args=[pk])
              for pk in AuditLog.objects.filter(action__regex=r"^(api_key|rmm_integration)\.").values_list("pk",
                                                                                                         flat=True)]
    return pages


def test_admin_pages_never_show_the_key_or_the_token(client, world):
    client.force_login(world["boss"])
    # the token is changed through the admin (a history entry and an audit row), and a sync runs
    change = reverse("admin:metering_rmmintegration_change", args=[world["integration"].pk])
    response = client.post(change, {"partner": world["partner"].pk, **JSON_FEED,
                                    "base_url": world["integration"].base_url, "new_api_token": RMM_TOKEN})
    assert response.status_code == 302
    client.post(reverse("admin:metering_rmmintegration_changelist"),
                {"action": "sync_now", "_selected_action": [world["integration"].pk]})
    assert SyncRun.objects.filter(status=SyncStatus.OK).exists()
    pages = admin_pages(world)
    assert len(pages) > 12
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert_clean(response.content.decode(), world["secrets"], page)
    # the token field is write-only: never rendered back into the form
    form = client.get(change).content.decode()
    assert re.search(r'name="new_api_token"[^>]*>', form) and 'value="rmmtok' not in form


def test_an_admin_created_key_is_shown_once(client, world):
    client.force_login(world["boss"])
    response = client.post(reverse("admin:partners_apikey_add"), {"partner": world["partner"].pk, "name": "new"},
                           follow=True)
    shown = re.search(r"shown this once: (bk_\S+?)<", response.content.decode())
    assert shown, "the new key is shown when it is made"
    key = shown.group(1)
    api_key = ApiKey.objects.get(name="new")
    for page in (reverse("admin:partners_apikey_changelist"), reverse("admin:partners_apikey_change",
                                                                      args=[api_key.pk]),
                 reverse("admin:partners_apikey_history", args=[api_key.pk])):
        assert_clean(client.get(page).content.decode(), key_parts(key), page)
    assert_clean(str(list(AuditLog.objects.values_list("before", "after", "object_repr"))), key_parts(key),
                 "the audit log")


def test_portal_pages_never_show_a_key_after_it_was_shown_once(client, world):
    client.force_login(world["owner"])
    response = client.post(reverse("portal:api_key_create"), {"name": "portal key"})
    created = response.content.decode()  # shown in the answer to the POST, stored nowhere
    key = re.search(r"data-secret>(bk_[^<]+)<", created).group(1)
    api_key = ApiKey.objects.get(name="portal key")
    assert client.get(reverse("portal:api_key_created", args=[api_key.pk])).content.decode().count(key) == 0
    secrets = [*world["secrets"], *key_parts(key)]
    customer = world["partner"].customers.order_by("pk").first()
    for path in (reverse("portal:dashboard"), reverse("portal:billing"), reverse("portal:statements"),
                 reverse("portal:customers"), reverse("portal:customer", args=[customer.pk]),
                 reverse("portal:add_seats"), reverse("portal:team"),
                 reverse("portal:api_key_created", args=[world["api_key"].pk])):
        page = client.get(path)
        assert page.status_code == 200, path
        assert_clean(page.content.decode(), secrets, path)
    assert_clean(str(dict(client.session)), secrets, "the session once the key was shown")


def test_api_answers_never_echo_the_key(client, world):
    key = world["key"]
    headers = {"Authorization": f"Bearer {key}"}
    customer = world["partner"].customers.order_by("pk").first()
    for path in ("/api/reseller/tenants", f"/api/reseller/tenants/{customer.slug}/usage", "/api/reseller/forecast",
                 "/api/partner/dashboard", "/api/openapi.json"):
        response = client.get(path, headers=headers)
        assert response.status_code == 200, path
        assert_clean(response.content.decode(), world["secrets"], path)
    for bad in (f"Bearer {key}x", key, f"Token {key}"):
        response = client.get("/api/partner/dashboard", headers={"Authorization": bad})
        assert response.status_code == 401
        assert_clean(response.content.decode() + str(response.headers), world["secrets"], "a 401")


def test_reports_and_admin_exports_never_hold_a_secret(client, world, tmp_path):
    for args in (["invoice-lines"], ["statements", "--period", "2026-04"], ["periods"]):
        for fmt in ("csv", "xlsx"):
            target = tmp_path / f"{args[0]}.{fmt}"
            call_command("export_report", *args, "--format", fmt, "--output", str(target))
            assert_clean(target.read_bytes().decode("latin-1"), world["secrets"], f"export_report {args[0]} {fmt}")
    client.force_login(world["boss"])
    for model in ("partners_partner", "partners_customer", "partners_service", "partners_seatassignment",
                  "partners_seatpurchase", "metering_usagesnapshot", "metering_suspension",
                  "invoicing_onetimecharge"):
        url = reverse(f"admin:{model}_export")
        response = client.get(url)
        form, model_admin = response.context["form"], admin.site._registry[response.context["opts"].model]
        data = {name: "on" for name, field in form.fields.items() if field.__class__.__name__ == "BooleanField"}
        formats = [f.__name__ for f in model_admin.get_export_formats()]
        for fmt in ("CSV", "XLSX"):
            response = client.post(url, {**data, "format": formats.index(fmt), "resource": "0"})
            assert response.status_code == 200 and len(response.content) > 20, (model, fmt)
            assert_clean(response.content.decode("latin-1"), world["secrets"], f"admin export {model} {fmt}")
    for pk in Invoice.objects.filter(partner=world["partner"]).values_list("pk", flat=True):
        for tool in ("xlsx", "pdf"):
            response = client.get(reverse(f"admin:invoicing_invoice_{tool}", args=[pk]))
            assert_clean(response.content.decode("latin-1"), world["secrets"], f"invoice {tool}")


def test_logs_at_debug_never_hold_a_secret(client, world, rmm, caplog, settings, data_dir, tmp_path):
    settings.DEBUG = True  # ninja logs more with DEBUG on
    secrets = list(world["secrets"])
    with caplog.at_level(logging.DEBUG):
        # keys: the command, the API with good and bad headers
        out = io.StringIO()
        call_command("create_api_key", "--partner", "brightdesk", "--name", "cli", stdout=out)
        cli_key = out.getvalue().strip().split()[-1]
        secrets += key_parts(cli_key)
        for authorization in (f"Bearer {world['key']}", world["key"], f"Basic {world['key']}", f"Bearer {cli_key}x"):
            client.get("/api/partner/dashboard", headers={"Authorization": authorization})
        # a sync that works, one the RMM refuses (401) and one that fails on a server error, token in use
        partner, today = world["partner"], None

        today = timezone.now().date()
        assert inventory_sync(partner=partner, as_of=today, actor=Actor(label="t"),
                              trigger=SyncTrigger.MANUAL).status == SyncStatus.OK
        rmm.account(RMM_TOKEN, [agent("a1")], always_status={1: 500})
        failed = inventory_sync(partner=partner, as_of=today, actor=Actor(label="t"), trigger=SyncTrigger.MANUAL)
        assert failed.status == SyncStatus.FAILED
        del rmm.accounts[RMM_TOKEN]
        refused = inventory_sync(partner=partner, as_of=today, actor=Actor(label="t"), trigger=SyncTrigger.MANUAL)
        assert refused.status == SyncStatus.FAILED and "401" in refused.error
        assert rmm.pages_served(RMM_TOKEN)  # the token was in use
        # an import and a billing run
        charges = tmp_path / "charges.csv"
        charges.write_text("partner,description,quantity,unit_price,date\nbrightdesk,Setup,1,50.00,2026-05-02\n")
        call_command("import_csv", "one-time-charges", str(charges), stdout=io.StringIO())
        call_command("run_billing", "--through", "2026-06-30", stdout=io.StringIO())
        # the admin: a token typed into the integration form
        client.force_login(world["boss"])
        client.post(reverse("admin:metering_rmmintegration_change", args=[world["integration"].pk]),
                    {"partner": partner.pk, **JSON_FEED, "base_url": rmm.url,
                     "new_api_token": RMM_TOKEN})
    records = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    assert caplog.records, "something was logged"
    assert_clean(records, secrets, "the logs")
    assert_clean(str(list(SyncRun.objects.values_list("error", "source", "actor_label"))), secrets, "sync runs")


def test_error_reports_mask_the_token_posted_to_the_integration_form(world):
    """A crash while saving the integration form must not put the typed token in Django's error report
    (the admin email / technical 500 page): the field is a sensitive POST parameter."""
    client = Client(raise_request_exception=False)
    client.force_login(world["boss"])
    response = client.post(reverse("admin:metering_rmmintegration_change", args=[world["integration"].pk]),
                           {"partner": world["partner"].pk, **JSON_FEED,
                            "base_url": world["integration"].base_url, "new_api_token": RMM_TOKEN})
    request = response.wsgi_request
    assert list(request.sensitive_post_parameters) == ["new_api_token"]
    report = ExceptionReporter(request, RuntimeError, RuntimeError("boom"), None)  # the request's part
    text, html = report.get_traceback_text(), report.get_traceback_html()
    assert "new_api_token" in text and "********" in text
    assert RMM_TOKEN not in text and RMM_TOKEN not in html


def test_a_token_no_header_can_carry_fails_the_sync_without_being_quoted(world):
    """urllib refuses such a header with the whole value in its message; the sync run's error (shown
    in the admin, logged) must not carry it."""
    RmmIntegration.objects.filter(pk=world["integration"].pk).update(api_token=f"{RMM_TOKEN}\nX-Injected: 1")

    run = inventory_sync(partner=world["partner"], as_of=timezone.now().date(), actor=Actor(label="t"),
                         trigger=SyncTrigger.MANUAL)
    assert run.status == SyncStatus.FAILED and "type it again" in run.error
    assert RMM_TOKEN not in run.error


def test_the_integration_form_refuses_such_a_token_without_echoing_it(client, world):
    client.force_login(world["boss"])
    bad = f"{RMM_TOKEN} with spaces"
    response = client.post(reverse("admin:metering_rmmintegration_change", args=[world["integration"].pk]),
                           {"partner": world["partner"].pk, **JSON_FEED,
                            "base_url": world["integration"].base_url, "new_api_token": bad})
    assert response.status_code == 200 and "visible ASCII" in response.content.decode()
    assert RMM_TOKEN not in response.content.decode()
    assert RmmIntegration.objects.get(pk=world["integration"].pk).api_token == RMM_TOKEN
