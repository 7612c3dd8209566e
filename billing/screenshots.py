"""The pictures in docs/img, taken anew from the demo (`python manage.py screenshots`).

A throw-away SQLite database gets the demo (`migrate`, `load_demo`), a `runserver` of its own serves it, and
Debian's Chromium (through Playwright) signs in as the admin and as the demo's partner users and photographs
the main pages at 1440 x 900; the first page of a CI and of an INV are rendered by `render_invoice` and turned
into PNGs by poppler's `pdftoppm`. Nothing of the caller's database is read or written.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CHROMIUM = Path("/usr/bin/chromium")
ADMIN = ("admin", "admin")
DEMO_PASSWORD = "demo-pass"
VIEWPORT = {"width": 1440, "height": 900}


@dataclass(frozen=True)
class Shot:
    """One picture: who signs in (None: the admin), the page, and how much of it."""

    name: str
    path: str
    portal_user: str | None = None
    full_page: bool = False
    viewport: dict = field(default_factory=lambda: VIEWPORT)
    ready: str = "body"  # a selector the page shows once drawn


SHOTS = [
    Shot("admin-customers", "/admin/partners/customer/"),
    Shot("admin-invoices", "/admin/invoicing/invoice/"),
    Shot("admin-partner", "/admin/partners/partner/?q=northwind"),
    Shot("admin-usage", "/admin/metering/usagesnapshot/"),
    Shot("admin-audit", "/admin/partners/auditlog/"),
    Shot("admin-billing", "/admin/invoicing/billingrun/"),
    Shot("portal-dashboard", "/portal/", portal_user="northwind.billing", full_page=True),
    Shot("portal-dashboard-phone", "/portal/", portal_user="northwind.billing",
         viewport={"width": 390, "height": 844}, full_page=True),
    Shot("portal-dashboard-licenses", "/portal/", portal_user="brightline.owner", full_page=True),
    Shot("portal-dashboard-rmm", "/portal/", portal_user="keystone.billing", full_page=True),
    Shot("portal-dashboard-hosts", "/portal/", portal_user="clearwave.billing", full_page=True),
    Shot("portal-billing", "/portal/billing/", portal_user="northwind.billing", full_page=True),
    Shot("portal-statements", "/portal/billing/statements/", portal_user="northwind.billing"),
    Shot("portal-add-seats", "/portal/seats/add/", portal_user="northwind.billing"),
    Shot("portal-price-lists", "/portal/prices/", portal_user="northwind.billing", full_page=True),
    Shot("portal-customer-invoices", "/portal/customer-invoices/", portal_user="northwind.billing"),
    Shot("portal-margins", "/portal/margins/", portal_user="northwind.billing", full_page=True),
    Shot("portal-rebilling", "/portal/rebilling/", portal_user="northwind.billing", full_page=True),
]

# (picture, kind): the latest issued of the kind (Northwind's CI; a customer invoice of Northwind's, with its account)
INVOICES = [("invoice-ci", "CI"), ("invoice-inv", "INV"), ("invoice-customer", "customer")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DemoSite:
    """The demo in a database of its own, and a server for it."""

    def __init__(self, folder: Path, log: Callable[[str], None]):
        self.folder = folder
        self.log = log
        self.env = {**os.environ, "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
                    "MEDIA_ROOT": str(folder / "media"), "IMPORT_JOBS_DIR": str(folder / "imports"),
                    "DEBUG": "true", "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend"}
        self.manage = [sys.executable, str(Path(__file__).resolve().parents[1] / "manage.py")]

    def run(self, *args: str) -> str:
        done = subprocess.run([*self.manage, *args], env=self.env, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def load(self) -> None:
        self.log("migrating a fresh database")
        self.run("migrate", "--noinput", "-v0")
        self.log("loading the demo")
        self.run("load_demo")

    @contextmanager
    def serving(self) -> Iterator[str]:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([*self.manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
                                  env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{url}/admin/login/", timeout=2)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("the demo server did not start") from None
                    time.sleep(0.3)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=10)


def _sign_in(page, url: str, portal_user: str | None) -> None:
    if portal_user is None:
        page.goto(f"{url}/admin/login/")
        page.fill("#id_username", ADMIN[0])
        page.fill("#id_password", ADMIN[1])
        page.click("input[type=submit]")
    else:
        page.goto(f"{url}/portal/login/")
        page.fill("#id_username", portal_user)
        page.fill("#id_password", DEMO_PASSWORD)
        page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def take_pages(url: str, out: Path, shots: list[Shot], log: Callable[[str], None]) -> list[Path]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 (a development tool: only this command needs it)

    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            for shot in shots:
                context = browser.new_context(viewport=shot.viewport)
                page = context.new_page()
                page.set_default_timeout(20_000)
                _sign_in(page, url, shot.portal_user)
                response = page.goto(f"{url}{shot.path}")
                if response is None or response.status >= 400:
                    context.close()
                    raise RuntimeError(f"{shot.name}: {shot.path} answered {response and response.status}")
                page.wait_for_selector(shot.ready)
                target = out / f"{shot.name}.png"
                page.screenshot(path=str(target), full_page=shot.full_page)
                context.close()
                log(f"{target.name}: {shot.path}")
                written.append(target)
        finally:
            browser.close()
    return written


def take_invoices(site: DemoSite, out: Path, log: Callable[[str], None]) -> list[Path]:
    numbers = [line.removeprefix("number: ") for line in site.run("shell", "-v", "0", "-c", (
        "from invoicing.models import Invoice\n"
        "issued = Invoice.objects.filter(state='issued').order_by('issue_date', 'number')\n"
        "print('number:', issued.filter(kind='CI', partner__slug='northwind').last().number)\n"
        "print('number:', issued.filter(kind='INV').last().number)\n"
        "from invoicing.rebilling.models import CustomerInvoice\n"
        "print('number:', CustomerInvoice.objects.issued().filter(customer__slug='fabrikam-law')"
        ".order_by('issue_date').last().number)\n"
    )).splitlines() if line.startswith("number: ")]
    written = []
    for (name, _kind), number in zip(INVOICES, numbers, strict=True):
        pdf = site.folder / f"{number}.pdf"
        site.run("render_invoice", number, "--output", str(pdf))
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                        str(out / name)], check=True)
        log(f"{name}.png: page 1 of {number}")
        written.append(out / f"{name}.png")
    return written


def regenerate(out: Path, *, only: list[str] | None = None, log: Callable[[str], None] = print) -> list[Path]:
    """Every picture (or those named in `only`) written to `out`; returns their paths."""
    known = [s.name for s in SHOTS] + [name for name, _ in INVOICES]
    unknown = sorted(set(only or ()) - set(known))
    if unknown:
        raise RuntimeError(f"no such picture: {', '.join(unknown)} (there are: {', '.join(known)})")
    shots = [s for s in SHOTS if not only or s.name in only]
    if shots and not CHROMIUM.exists():
        raise RuntimeError("needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        site = DemoSite(Path(tmp), log)
        site.load()
        written = []
        if shots:
            with site.serving() as url:
                written += take_pages(url, out, shots, log)
        if not only or any(name in only for name, _ in INVOICES):
            written += take_invoices(site, out, log)
    return written
