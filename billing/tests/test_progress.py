"""Progress of the long commands (billing/core/progress.py, docs/operations.md "Progress"): a tqdm bar on a
terminal, exactly one summary line on a stream that is not one (logs, CI), always on the process's stderr and
never in a command's standard output (export_report's CSV included).

The CLI tests run each command with stderr not a terminal (pytest captures it): the command's stdout is what it
always printed and stderr holds one summary line whose count is the command's own (rows imported, partners
billed, rows generated, agents fetched, rows exported, billing runs)."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import date

import pytest
from django.core.management import call_command
from django.utils import timezone
from djmoney.money import Money

from billing.core import progress as progress_module
from billing.core.actor import Actor
from billing.core.periods import Period
from billing.core.progress import live, progress
from billing.demo import DEMO_PARTNERS, ONE_TIME_CHARGES
from billing.management.commands.import_csv import rows_expected
from billing.management.commands.load_demo import Command as LoadDemo
from invoicing.models import Invoice
from invoicing.services import billing_run
from metering.models import RmmIntegration
from metering.tests.rmm_stub import agent
from partners.models import Method, Partner
from partners.tests.factories import CustomerFactory, PartnerFactory, ServiceFactory


class Tty(io.StringIO):
    """A stream that says it is a terminal (what tqdm draws on)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def bars_allowed(monkeypatch):
    monkeypatch.delenv("NO_PROGRESS", raising=False)


@pytest.fixture
def clock(monkeypatch):
    """A clock that stands still until a test moves it: `clock.now = 12.3`."""

    class Clock:
        now = 0.0

    monkeypatch.setattr(progress_module.time, "monotonic", lambda: Clock.now)
    return Clock


def summary_line(err: str, label: str) -> re.Match:
    """The one summary line on stderr: '<label>: N <unit> in S s[ (R <unit>/s)]'."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    found = re.fullmatch(rf"{re.escape(label)}: ([\d,]+) ([a-z ]+?) in \d+\.\d s( \([\d,.]+ [a-z ]+/s\))?", lines[0])
    assert found, lines[0]
    return found


# --- the helper --------------------------------------------------------------------------------------------

def test_not_a_terminal_gives_exactly_one_summary_line_on_stderr_and_nothing_on_stdout(capsys, clock):
    with progress("import_csv seat-events") as meter:
        for _ in range(145):
            meter.update(1000)
        meter.set(145_586)
        clock.now = 12.3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "import_csv seat-events: 145,586 rows in 12.3 s (11,836 rows/s)\n"


def test_the_summary_line_is_written_once_and_slow_rates_keep_a_decimal(clock):
    err = io.StringIO()
    meter = progress("run_billing --through 2026-06-30", unit="partners", stream=err)
    meter.set(3, total=8)
    clock.now = 4.0
    meter.close()
    meter.close()
    assert err.getvalue() == "run_billing --through 2026-06-30: 3 partners in 4.0 s (0.8 partners/s)\n"


def test_work_that_ends_on_an_error_says_where_it_stopped(clock):
    err = io.StringIO()
    with pytest.raises(ValueError), progress("export_report periods", stream=err) as meter:
        meter.update(7)
        clock.now = 1.0
        raise ValueError("boom")
    assert err.getvalue() == "export_report periods: stopped after 7 rows in 1.0 s (7.0 rows/s)\n"


def test_on_a_terminal_tqdm_draws_the_bar_with_rows_per_second_and_the_time_left():
    tty = Tty()
    with progress("import_csv customers", stream=tty) as meter:
        meter.set(50, total=200)
        meter.set(200)
    drawn = tty.getvalue()
    assert "\r" in drawn and "rows/s" in drawn
    assert "200/200" in drawn and "100%" in drawn
    assert "import_csv customers: 200 rows in" not in drawn  # the bar, not the summary line


def test_an_estimated_total_gives_way_to_the_count_when_the_work_ends():
    tty = Tty()
    with progress("import_csv customers", stream=tty) as meter:
        meter.set(40, total=110)  # estimated from the bytes read
        meter.set(100)
    assert tty.getvalue().rstrip().endswith("]") and "100/100" in tty.getvalue()


def test_no_progress_turns_the_bar_off_on_a_terminal_and_keeps_the_summary_line(monkeypatch, clock):
    monkeypatch.setenv("NO_PROGRESS", "1")
    tty = Tty()
    with progress("generate_data", stream=tty) as meter:
        meter.note("members")
        meter.set(10)
        clock.now = 2.0
    assert tty.getvalue() == "generate_data: 10 rows in 2.0 s (5.0 rows/s)\n"


def test_a_bar_keeps_its_clock_running_while_nothing_is_counted(monkeypatch):
    """One long SQL statement counts nothing for a minute: the bar is redrawn anyway, its time running, and the
    redrawing stops with the bar."""
    monkeypatch.setattr(progress_module, "TICK", 0.01)
    tty = Tty()
    with progress("import_csv seat-events", stream=tty) as meter:
        meter.set(145_000, total=145_000)
        meter.note("writing the seats")
        drawn = tty.getvalue().count("\r")
        time.sleep(0.2)
        assert tty.getvalue().count("\r") >= drawn + 3
        assert "writing the seats" in tty.getvalue().rsplit("\r", 1)[-1]
    assert not meter._ticking.is_alive()


def test_a_bar_needs_a_terminal():
    assert live(Tty()) and not live(io.StringIO())
    closed = io.StringIO()
    closed.close()
    assert not live(closed)  # isatty() on a closed stream raises


def test_import_csv_estimates_the_rows_of_the_whole_file_from_the_bytes_read():
    assert rows_expected(1000, 25_000, 100_000) == 4000
    assert rows_expected(1000, 200_000, 100_000) == 1000  # read ahead past the end: never fewer than read
    assert rows_expected(0, 0, 100_000) is None and rows_expected(5, 0, 100) is None  # nothing read / not counted


# --- the commands --------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_import_csv_prints_what_it_printed_and_one_summary_line(cli, capsys, tmp_path):
    path = tmp_path / "partners.csv"
    path.write_text("slug,name\n" + "".join(f"p{n},Partner {n}\n" for n in range(7)))
    result = cli("import_csv", "partners", str(path))
    assert result.status == 0 and result.err == ""
    assert result.out == "partners: imported 7 rows: 7 created, 0 updated, 0 unchanged\n"
    err = capsys.readouterr().err
    assert summary_line(err, "import_csv partners").group(1, 2) == ("7", "rows")


@pytest.mark.django_db
def test_import_csv_on_a_terminal_shows_the_share_of_the_file_read(cli, monkeypatch, tmp_path):
    tty = Tty()
    monkeypatch.setattr("sys.stderr", tty)
    path = tmp_path / "partners.csv"
    path.write_text("slug,name\n" + "".join(f"p{n},Partner {n}\n" for n in range(50)))
    result = cli("import_csv", "partners", str(path))
    assert result.out == "partners: imported 50 rows: 50 created, 0 updated, 0 unchanged\n"
    drawn = tty.getvalue()
    assert "%|" in drawn and "50/50" in drawn and "rows/s" in drawn  # the bar has a total: a time left


def flat(partner: Partner, code: str = "support") -> None:
    ServiceFactory(partner=partner, code=code, name=code.title(), method=Method.FLAT, start_date=date(2026, 3, 1),
                   end_date=date(2026, 3, 31), unit_price=Money("100.00", partner.currency))


@pytest.mark.django_db
def test_run_billing_prints_its_invoices_and_one_summary_line_of_partners(cli, capsys):
    for slug in ("alpha", "bravo", "charlie"):
        flat(PartnerFactory(slug=slug))
    result = cli("run_billing", "--through", "2026-03-15")
    assert result.status == 0, result.err
    lines = result.out.splitlines()
    assert lines[-1] == "3 invoice(s) issued"
    assert [line.split()[:3] for line in lines[:-1]] == [
        [i.number, "CI", i.partner.slug] for i in Invoice.objects.order_by("number")]
    assert summary_line(capsys.readouterr().err, "run_billing --through 2026-03-15").group(1, 2) == ("3", "partners")


@pytest.mark.django_db
def test_billing_run_reports_partners_billed_of_partners_to_bill_after_each_batch():
    for slug in ("alpha", "bravo", "charlie"):
        flat(PartnerFactory(slug=slug))
    seen: list[tuple[int, int]] = []
    billing_run(through=date(2026, 3, 15), actor=Actor(label="test"), batch_size=2,
                on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 3), (2, 3), (3, 3)]


@pytest.mark.django_db
def test_generate_data_prints_its_counts_and_one_summary_line_of_the_rows_written(cli, capsys):
    result = cli("generate_data", "--partners", "2", "--customers", "2", "--members", "2", "--months", "1",
                 "--first", "2026-01", "--agents", "4")
    assert result.status == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("database: ") and re.fullmatch(r"done in \d+\.\d s", lines[-1])
    counts = {line.rsplit(None, 1)[0].strip(): int(line.rsplit(None, 1)[1].replace(",", "")) for line in lines[1:-1]}
    assert counts["partners"] == 2 and counts["members"] == 8
    found = summary_line(capsys.readouterr().err, "generate_data")
    assert int(found.group(1).replace(",", "")) == sum(counts.values())


@pytest.mark.django_db
def test_sync_inventory_prints_its_report_and_one_summary_line_of_agents(cli, capsys, tmp_path):
    partner = PartnerFactory(slug="keystone")
    RmmIntegration.objects.create(partner=partner, kind="folder", folder_path=str(tmp_path))
    (tmp_path / "agents.csv").write_text("agent_id,machine_name,organization,group\n"
                                         + "".join(f"a{n},PC-{n},org,Workstations\n" for n in range(3)))
    result = cli("sync_inventory", "--partner", "keystone", "--as-of", "2026-05-10")
    assert result.status == 0, result.err
    assert result.out.splitlines()[0] == "keystone: fetching the RMM inventory as of 2026-05-10..."
    assert result.out.splitlines()[1].startswith("read 3 agents in 1 page(s) from ")
    assert summary_line(capsys.readouterr().err, "sync_inventory keystone").group(1, 2) == ("3", "agents")


@pytest.mark.django_db
def test_a_failed_sync_says_it_stopped(cli, capsys, tmp_path):
    RmmIntegration.objects.create(partner=PartnerFactory(slug="keystone"), kind="folder",
                                  folder_path=str(tmp_path / "missing"))
    result = cli("sync_inventory", "--partner", "keystone")
    assert result.status == 1 and "no such folder" in result.err
    assert re.fullmatch(r"sync_inventory keystone: stopped after 0 agents in \d+\.\d s\n", capsys.readouterr().err)


@pytest.fixture
def exported():
    for slug in ("alpha", "bravo"):
        flat(PartnerFactory(slug=slug))
    billing_run(through=date(2026, 3, 15), actor=Actor(label="test"))


@pytest.mark.django_db
def test_export_report_writes_only_the_csv_to_stdout_and_one_summary_line_to_stderr(cli, capsys, exported):
    result = cli("export_report", "invoice-lines", "--month", "2026-03")
    assert result.status == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert result.out.startswith("invoice_number,") and {r["partner"] for r in rows} == {"alpha", "bravo"}
    found = summary_line(capsys.readouterr().err, "export_report invoice-lines")
    assert int(found.group(1)) == len(rows) > 0


@pytest.mark.django_db
def test_export_report_on_a_terminal_draws_on_stderr_and_the_csv_is_the_same(cli, capsys, monkeypatch, exported):
    plain = cli("export_report", "invoice-lines", "--month", "2026-03").out
    capsys.readouterr()
    tty = Tty()
    monkeypatch.setattr("sys.stderr", tty)
    assert cli("export_report", "invoice-lines", "--month", "2026-03").out == plain
    assert "rows/s" in tty.getvalue() and "\r" in tty.getvalue()


@pytest.mark.django_db
def test_load_demo_prints_what_it_printed_and_one_summary_line_of_billing_runs(capsys):
    for slug in DEMO_PARTNERS:  # loaded already: only the one-time charges, the billing runs and the PDFs
        PartnerFactory(slug=slug)
    for charge in ONE_TIME_CHARGES:
        if charge["customer"]:
            CustomerFactory(partner=Partner.objects.get(slug=charge["partner"]), slug=charge["customer"])
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    assert "Demo data already loaded (every demo partner exists): nothing changed." in out.getvalue()
    assert "billing runs" not in out.getvalue()
    first = Period.of(timezone.now().date()).shift(-3)
    runs = len(LoadDemo._month_firsts(first, timezone.now())) + 1  # the month firsts since, and today
    assert summary_line(capsys.readouterr().err, "load_demo").group(1, 2) == (str(runs), "billing runs")


@pytest.mark.django_db
def test_sync_inventory_on_a_terminal_counts_the_agents_page_by_page(cli, monkeypatch, rmm):
    """An RMM of many pages: the bar counts the agent rows and names the page while they come in."""
    tty = Tty()
    monkeypatch.setattr("sys.stderr", tty)
    rmm.account("keystone-token", [agent(f"a{n}") for n in range(7)], per_page=2)
    RmmIntegration.objects.create(partner=PartnerFactory(slug="keystone"), kind="json", base_url=rmm.url,
                                  api_token="keystone-token")
    result = cli("sync_inventory", "--partner", "keystone", "--as-of", "2026-05-10")
    assert result.status == 0, result.err
    assert "read 7 agents in 8 page(s)" in result.out  # 4 pages, read twice (the pages are numbered)
    drawn = tty.getvalue()
    assert "7 agents" in drawn and "page 4" in drawn and "page 8, read 2" in drawn, drawn
