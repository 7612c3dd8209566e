"""`manage.py screenshots` (billing/screenshots.py): its pictures name pages that exist, and a wrong name is
refused before anything runs. The pictures themselves are taken in a real browser by the command."""

from urllib.parse import urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.urls import Resolver404, resolve

from billing import screenshots


@pytest.mark.parametrize("shot", screenshots.SHOTS, ids=lambda shot: shot.name)
def test_every_picture_is_of_a_page_that_exists(shot):
    try:
        match = resolve(urlsplit(shot.path).path)
    except Resolver404:
        match = None
    # the admin answers any other path with its catch-all view, which has no name
    assert match is not None and match.url_name, f"{shot.name}: {shot.path} is no page of the project"


def test_picture_names_are_unique_and_are_the_docs_files():
    names = [s.name for s in screenshots.SHOTS] + [name for name, _ in screenshots.INVOICES]
    assert len(names) == len(set(names))
    assert {"admin-customers", "portal-dashboard", "invoice-ci"} <= set(names)  # what the README shows


def test_an_unknown_picture_is_refused_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(screenshots.DemoSite, "load", lambda self: pytest.fail("nothing may run"))
    with pytest.raises(CommandError, match="no such picture: portal-nope"):
        call_command("screenshots", "--out", str(tmp_path), "--only", "portal-nope")
