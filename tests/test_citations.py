"""Every citation of the project's docs names a section that exists, and nothing cites a file outside
the repository.

docs/billing-rules.md is the contract the code follows. Code, tests and docs cite it, and the two pages
that give the detail of files, commands and the API, by section number:

    billing-rules 3.7        billing-rules 3.1, 6.2      billing-rules 3.4-3.7 (both ends are checked)
    billing-rules decision (t)                           import-formats 5.8      operations 12 and 14

A cited number must be a heading of that page (`## 8. Command line`, `### 6.11 Re-imports`), and a cited
decision a `**(t) ...**` paragraph of billing-rules section 7. Inside one of those pages, a bare
`section 4.3` (or `decision (ab)` in billing-rules.md) is a citation of the page itself. The rules were
once written in a file kept outside the repository; a citation of it, or a path to it, is refused too.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = {
    "billing-rules": "docs/billing-rules.md",
    "import-formats": "docs/import-formats.md",
    "operations": "docs/operations.md",
}
SUFFIXES = (".py", ".md", ".html", ".txt")
SKIP_DIRS = {".venv", ".git", "__pycache__", "node_modules"}

NUMBER = r"\d+(?:\.\d+)*"
ITEM = rf"{NUMBER}(?:\s*[-–]\s*{NUMBER})?"
# a further number of a list ("3.1, 6.2", "7 and 8", "3.6 / 6.8") must end there, so that
# "billing-rules 3.8, 10 hosts" cites 3.8 only
MORE = rf"(?:,\s*|\s+and\s+|\s*/\s*){ITEM}(?=\s*[),;:]|\s+and\s|\.(?!\d)|\s*$)"
NUMBERS = rf"{ITEM}(?:{MORE})*"
CITATION = re.compile(rf"(?<![\w/.-])({'|'.join(DOCS)})\s+({NUMBERS})(?![\w.]*\w)", re.M)
LETTER = r"\(([a-z]{1,2})\)"
DECISIONS = rf"decisions?\s+{LETTER}((?:(?:,\s*|\s+and\s+|\s+to\s+){LETTER})*)"
CITED_DECISION = re.compile(rf"(?<![\w/.-])billing-rules\s+{DECISIONS}")
OWN_DECISION = re.compile(rf"(?<![\w-]){DECISIONS}")
OWN_SECTION = re.compile(rf"\bsections?\s+({NUMBERS})(?![\w.]*\w)", re.M)
# Another document named just before a bare "section N" ("`rmm.md`, section 4") is that document's.
OTHER_DOCUMENT = re.compile(r"[\w-]+\.md`?\)?,?\s*(?:\w+\s+){0,2}$")

CITES_OUTSIDE = "a citation of the rules file kept outside the repository"
OUTSIDE = [  # the name is split so that this file does not match itself
    (re.compile(r"\b" + "RUL" + r"ES\b\s*(?:section\s+)?\d[\d.]*"), CITES_OUTSIDE),
    (re.compile(r"(?<![\w-])[Rr]ules\s+section\s+\d"), CITES_OUTSIDE),
    (re.compile(r"\b" + "RUL" + r"ES\.md\b"), "a reference to the rules file kept outside the repository"),
    (re.compile(r"(?:\.\./|/work/)" + "shared" + r"\b"), "a path outside the repository"),
    (re.compile(r"\b(?:" + "STY" + "LE|DES" + "IGN|RMM-SOU" + "RCES|STACK-NO" + "TES)"
                r"(?:\.md|\s+\d|\b\W{0,2}\s*\"?Invariants)"), "a document kept outside the repository"),
]


def headings(text: str) -> set[str]:
    """The section numbers of a page: `## 8. Command line` is 8, `### 3.0 Rating` is 3.0 (code blocks skipped)."""
    numbers, fenced = set(), False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        found = None if fenced else re.match(rf"#{{2,6}}\s+({NUMBER})\.?\s", line)
        if found:
            numbers.add(found.group(1))
    return numbers


def decisions(text: str) -> set[str]:
    """The letters of billing-rules section 7: `**(a) Seat events in the future are refused.**`."""
    return set(re.findall(r"^\*\*\(([a-z]{1,2})\)", text, flags=re.M))


def contract() -> tuple[dict[str, set[str]], set[str]]:
    pages = {name: (ROOT / path).read_text(encoding="utf-8") for name, path in DOCS.items()}
    return {name: headings(text) for name, text in pages.items()}, decisions(pages["billing-rules"])


def _numbers(listed: str) -> list[str]:
    """Every number of "3.1, 6.2", "3.4-3.7" (both ends), "7 and 8"."""
    return re.findall(NUMBER, listed)


def _letters(first: str, rest: str) -> list[str]:
    return [first, *re.findall(LETTER, rest)]


def bad_citations(text: str, *, sections: dict[str, set[str]], letters: set[str], own: str | None = None):
    """(line number, cited text, why) for each citation of a missing section or decision, and each
    reference to a file outside the repository. `own`: the page `text` is, for its bare citations."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for pattern, why in OUTSIDE:
            for hit in pattern.finditer(line):
                found.append((number, hit.group(0), why))
    for hit in CITATION.finditer(text):
        page = hit.group(1)
        for cited in _numbers(hit.group(2)):
            if cited not in sections[page]:
                found.append((_line(text, hit), hit.group(0), f"{DOCS[page]} has no section {cited}"))
    for hit in CITED_DECISION.finditer(text):
        for letter in _letters(hit.group(1), hit.group(2)):
            if letter not in letters:
                found.append((_line(text, hit), hit.group(0), f"{DOCS['billing-rules']} has no decision ({letter})"))
    if own is not None:
        for hit in OWN_SECTION.finditer(text):
            if OTHER_DOCUMENT.search(text[max(0, hit.start() - 40):hit.start()]):
                continue
            for cited in _numbers(hit.group(1)):
                if cited not in sections[own]:
                    found.append((_line(text, hit), hit.group(0), f"{DOCS[own]} has no section {cited}"))
        if own == "billing-rules":
            for hit in OWN_DECISION.finditer(text):
                for letter in _letters(hit.group(1), hit.group(2)):
                    if letter not in letters:
                        found.append((_line(text, hit), hit.group(0), f"{DOCS[own]} has no decision ({letter})"))
    return sorted(found)


def _line(text: str, hit: re.Match) -> int:
    return text.count("\n", 0, hit.start()) + 1


def text_files() -> list[Path]:
    """The repository's text files: tracked and new ones (git), or a walk of the tree without git."""
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.split("\0")
    except (OSError, subprocess.CalledProcessError):
        listed = []
        for folder, dirs, names in os.walk(ROOT):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
            listed += [os.path.relpath(os.path.join(folder, name), ROOT) for name in names]
    return sorted(
        ROOT / name for name in listed
        if name.endswith(SUFFIXES) and not SKIP_DIRS.intersection(Path(name).parts) and (ROOT / name).is_file()
    )


def test_the_contract_has_its_sections():
    sections, letters = contract()
    assert {str(n) for n in range(1, 12)} <= sections["billing-rules"]
    assert {f"6.{n}" for n in range(1, 14)} <= sections["billing-rules"]
    assert {"3.0", "3.11", "4.12", "8.1", "9.7", "10.2", "11.4"} <= sections["billing-rules"]
    assert {"a", "t", "ar"} <= letters
    assert {"1", "5", "5.5", "5.10", "9"} <= sections["import-formats"]
    assert {"1", "12", "14"} <= sections["operations"]


def test_every_cited_section_exists_and_nothing_is_cited_outside_the_repository():
    sections, letters = contract()
    own = {path: name for name, path in DOCS.items()}
    problems = []
    files = text_files()
    assert ROOT / "docs" / "billing-rules.md" in files
    for path in files:
        relative = path.relative_to(ROOT).as_posix()
        if relative == "tests/test_citations.py":  # the examples of its docstring and of the test below
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, cited, why in bad_citations(text, sections=sections, letters=letters, own=own.get(relative)):
            problems.append(f"{relative}:{number}: {cited!r}: {why}")
    assert not problems, "bad citations:\n" + "\n".join(problems)


def test_the_check_finds_bad_citations():
    sections = {"billing-rules": {"1", "3", "3.7", "6", "6.11"}, "import-formats": {"5", "5.8"},
                "operations": {"12"}}
    letters = {"t"}
    text = "\n".join([
        "ok (billing-rules 3.7, 6.11), import-formats 5.8, operations 12 and decision (t): billing-rules decision (t)",
        "missing: billing-rules 3.12",
        "a range checks both ends: billing-rules 3-4.1",
        "a list checks each: (billing-rules 3.7, 6.2)",
        "operations 12 and 13; import-formats 5.8 / 5.9",
        "billing-rules decision (zz)",
        "RUL" + "ES 3.6 and " + "RUL" + "ES.md and ../" + "shared/x",
        "the rules section 10.5",
        "not a list: billing-rules 3.7, 10 hosts at 15.00",
    ])
    found = sorted((line, why) for line, _, why in bad_citations(text, sections=sections, letters=letters))
    assert found == [
        (2, "docs/billing-rules.md has no section 3.12"),
        (3, "docs/billing-rules.md has no section 4.1"),
        (4, "docs/billing-rules.md has no section 6.2"),
        (5, "docs/import-formats.md has no section 5.9"),
        (5, "docs/operations.md has no section 13"),
        (6, "docs/billing-rules.md has no decision (zz)"),
        (7, "a citation of the rules file kept outside the repository"),
        (7, "a path outside the repository"),
        (7, "a reference to the rules file kept outside the repository"),
        (8, "a citation of the rules file kept outside the repository"),
    ]
    own = "\n".join(["see section 3.7 and section 4", "(`rmm.md`, section 4)", "decision (a)"])
    found = [(line, why) for line, _, why in bad_citations(own, sections=sections, letters=letters,
                                                             own="billing-rules")]
    assert found == [(1, "docs/billing-rules.md has no section 4"), (3, "docs/billing-rules.md has no decision (a)")]
