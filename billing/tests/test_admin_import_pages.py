"""The admin's import pages say when a table of theirs is empty (issue 19, item 8): a file with a header and no
rows that checks says it has none, and a clerk who never imported a kind is told so under "Your recent imports"."""

from __future__ import annotations

import pytest
from django.test import Client

from billing.core.registry import import_kinds
from partners.tests.factories import UserFactory
from tests.import_checks import admin_import

pytestmark = pytest.mark.django_db

URL = "/admin/partners/seatassignment/import/"


@pytest.fixture
def clerk(client):
    client.force_login(UserFactory(username="clerk", is_staff=True, is_superuser=True))
    return client


def test_the_upload_page_says_when_the_clerk_has_imported_nothing_yet(clerk):
    page = clerk.get(URL).content.decode()
    assert "Recent seat-events imports" in page  # a superuser's list is everyone's (the test below)
    assert "None yet: the files you upload here are listed with their status." in page


def test_a_checked_file_without_rows_says_so_instead_of_an_empty_preview(clerk, monkeypatch):
    """Only a kind that takes an empty file (an RMM inventory: every agent gone) checks one; its page says there is
    nothing under the header rather than showing a table of headings alone."""
    kind = import_kinds()["seat-events"]
    monkeypatch.setattr(kind if isinstance(kind, type) else type(kind), "allow_no_rows", True)
    page = admin_import(clerk, URL, "partner,customer,member,action,at\n")
    assert page.context["job"].status == "checked"
    text = page.content.decode()
    assert "The file has no rows under its header: importing it changes nothing." in text
    assert '<div class="preview">' not in text


def test_a_header_only_file_of_another_kind_is_refused_with_its_reason(clerk):
    page = admin_import(clerk, URL, "partner,customer,member,action,at\n")
    assert page.context["job"].status == "refused"
    assert "the file has a header but no data rows" in page.content.decode()


def test_a_superuser_sees_everyones_recent_imports_with_who_uploaded_them(clerk):
    """import-formats 1: a clerk sees their own imports, a superuser anyone's, with who uploaded each."""
    other = Client()
    other.force_login(UserFactory(username="dana", is_staff=True, is_superuser=True))
    admin_import(other, URL, "partner,customer,member,action,at\nnope,x,ann,assign,2026-05-01T00:00:00Z\n",
                 name="dana.csv")
    page = clerk.get(URL).content.decode()
    assert "dana.csv" in page and "<td>dana</td>" in page
