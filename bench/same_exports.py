"""Behaviour unchanged across a refactoring: every export of the worked examples and of a generated dataset,
written to a folder, and compared byte for byte with a folder written before.

    .venv/bin/python bench/same_exports.py /tmp/exports-before              # on the old commit
    .venv/bin/python bench/same_exports.py /tmp/exports-after --compare /tmp/exports-before

Each scenario runs in its own fresh SQLite database, with the clock held at --now (default 2026-12-07 12:00
UTC) so statuses and dates do not move:

  - each folder of tests/data with a steps.json (the worked examples): its imports and billing runs;
  - `generate_data` (7 partners, one of each profile, fixed seed, 3 months) billed through --now's month.

Exports: `invoice-lines`, `statements` for every period billed, `periods`, `billing-gaps` (CSV and XLSX cells),
and each invoice's totals and lines as the ledger holds them. Exit status 1 and the differing files when
--compare finds a difference.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from openpyxl import load_workbook

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"

RUN = r"""
import io, json, os, sys
from datetime import datetime, timezone
from pathlib import Path
import time_machine
sys.path.insert(0, {root!r})
os.environ["DJANGO_SETTINGS_MODULE"] = "billing.settings.base"
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
import django
django.setup()
from django.core.management import call_command

out, scenario, now = Path(sys.argv[1]), sys.argv[2], datetime.fromisoformat(sys.argv[3]).replace(tzinfo=timezone.utc)
with time_machine.travel(now, tick=False):
    call_command("migrate", verbosity=0)
    if scenario == "generated":
        call_command("generate_data", partners=7, customers=3, members=4, months=3, seed=7, agents=60,
                     first=f"{{now.year - (now.month <= 3)}}-{{(now.month - 4) % 12 + 1:02d}}", stdout=io.StringIO())
        call_command("run_billing", through=now.date().replace(day=1).isoformat(), stdout=io.StringIO())
    else:
        folder = Path(scenario)
        for step in json.loads((folder / "steps.json").read_text()):
            if "import" in step:
                call_command("import_csv", step["import"], str(folder / step["file"]), stdout=io.StringIO())
            elif "run_billing" in step:
                call_command("run_billing", through=step["run_billing"], stdout=io.StringIO())
    from invoicing.models import Invoice
    periods = sorted({{line.period for inv in Invoice.objects.all() for line in inv.lines.all() if line.period}})
    reports = [("invoice-lines", []), ("periods", []), ("billing-gaps", []),
               *(("statements", ["--period", p]) for p in periods)]
    for name, extra in reports:
        label = "-".join([name, *extra[1:]])
        call_command("export_report", name, *extra, output=str(out / f"{{label}}.csv"), stdout=io.StringIO())
        call_command("export_report", name, *extra, format="xlsx", output=str(out / f"{{label}}.xlsx"),
                     stdout=io.StringIO())
    with (out / "ledger.txt").open("w") as ledger:
        for inv in Invoice.objects.order_by("kind", "number", "pk"):
            ledger.write(f"{{inv.kind}} {{inv.number}} {{inv.partner.slug}} {{inv.issue_date}} {{inv.due_date}} "
                         f"{{inv.subtotal}} {{inv.tax_rate}} {{inv.tax_amount}} {{inv.total}} {{inv.amount_due}} "
                         f"{{inv.payment_status}}\n")
            for line in inv.lines.order_by("pk"):
                ledger.write(f"  {{line.line_type}} {{line.period}} {{line.quantity}} {{line.unit_price}} "
                             f"{{line.amount}} {{line.description}}\n")
"""


def xlsx_cells(path: Path) -> str:
    """An XLSX's cell values (its zip holds timestamps that change on every write)."""

    book = load_workbook(path, read_only=True)
    return "\n".join(repr(row) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True))


def run(out: Path, now: str) -> None:
    scenarios = [str(folder) for folder in sorted(DATA.iterdir()) if (folder / "steps.json").exists()]
    for scenario in [*scenarios, "generated"]:
        name = Path(scenario).name
        target = out / name
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as folder:
            env = {**os.environ, "DATABASE_URL": f"sqlite:///{folder}/db.sqlite3", "MEDIA_ROOT": folder}
            done = subprocess.run([sys.executable, "-c", RUN.format(root=str(ROOT)), str(target), scenario, now],
                                  env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"{name}: failed\n{done.stderr[-4000:]}")
        for book in target.glob("*.xlsx"):
            book.with_suffix(".xlsx.txt").write_text(xlsx_cells(book))
            book.unlink()
        print(f"{name}: {len(list(target.iterdir()))} files")


def compare(out: Path, base: Path) -> int:
    differ = []
    for path in sorted(base.rglob("*")):
        if path.is_file():
            other = out / path.relative_to(base)
            if not other.exists() or not filecmp.cmp(path, other, shallow=False):
                differ.append(str(path.relative_to(base)))
    extra = [str(p.relative_to(out)) for p in out.rglob("*")
             if p.is_file() and not (base / p.relative_to(out)).exists()]
    for name in differ + extra:
        print(f"differs: {name}")
    print("same exports" if not differ and not extra else f"{len(differ) + len(extra)} file(s) differ")
    return 1 if differ or extra else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--compare", type=Path, help="a folder written before, to compare with")
    parser.add_argument("--now", default="2026-12-07T12:00:00")
    options = parser.parse_args()
    run(options.out, options.now)
    if options.compare:
        sys.exit(compare(options.out, options.compare))


if __name__ == "__main__":
    main()
