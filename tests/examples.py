"""Replay a worked example folder (tests/data/NAME) through the command line, as its README says."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from conftest import run_cli


def replay(folder: Path, *, upto_billing: bool = True) -> list[str]:
    """Run each step of steps.json; return what each printed. Stops at run_billing when asked."""
    printed = []
    for step in json.loads((folder / "steps.json").read_text()):
        if "import" in step:
            args = ["import_csv", step["import"], str(folder / step["file"])]
            if step.get("partner"):
                args += ["--partner", step["partner"]]
            if step.get("as_of"):
                args += ["--as-of", step["as_of"]]
        elif "run_billing" in step:
            if not upto_billing:
                break
            args = ["run_billing", "--through", step["run_billing"]]
        else:
            raise ValueError(f"unknown step {step}")
        result = run_cli(*args)
        assert result.status == 0, f"{args}: {result.err}"
        printed.append(result.out)
    return printed


def read_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def expected_rows(folder: Path, name: str) -> list[dict]:
    return read_rows((folder / name).read_text(encoding="utf-8"))


def export(*args: str) -> list[dict]:
    result = run_cli("export_report", *args, "--format", "csv")
    assert result.status == 0, result.err
    return read_rows(result.out)


def as_multiset(rows: list[dict], columns) -> list[tuple]:
    return sorted(tuple(row.get(c, "") for c in columns) for row in rows)
