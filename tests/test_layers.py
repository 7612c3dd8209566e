"""The layers of the code, drawn from its imports (docs/architecture.md): the kernel (`billing.core`) imports no
app; `partners` imports only the kernel; `metering` the kernel and `partners`; `invoicing` those and `metering`;
rebilling (`invoicing.rebilling`, the partners' own prices and invoices to their customers) those four, and no
module of them (invoicing outside `invoicing/rebilling/` included) imports it; the project's shell (the rest of
`billing`: settings, portal, API, commands) may import everything. Imports inside functions count too: a layer
is not crossed by hiding the import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "billing.core": {"billing.core"},
    "partners": {"billing.core", "partners"},
    "metering": {"billing.core", "partners", "metering"},
    "invoicing": {"billing.core", "partners", "metering", "invoicing"},
    "invoicing.rebilling": {"billing.core", "partners", "metering", "invoicing", "invoicing.rebilling"},
}
REBILLING = "invoicing.rebilling"
PACKAGES = ("billing", "partners", "metering", "invoicing")


def layer_of(module: str) -> str | None:
    if module == "billing.core" or module.startswith("billing.core."):
        return "billing.core"
    if module == REBILLING or module.startswith(REBILLING + "."):
        return REBILLING
    top = module.split(".")[0]
    return None if top == "billing" else top if top in ALLOWED else None


def imported(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] in PACKAGES]


def crossings(root: Path) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] not in PACKAGES or "tests" in rel.parts or "migrations" in rel.parts:
            continue
        layer = layer_of(".".join(rel.with_suffix("").parts))
        if layer is None:
            continue  # the shell
        for line, name in imported(path):
            target = layer_of(name) or "billing (the shell)"
            if target not in ALLOWED[layer]:
                bad.append(f"{rel}:{line}: {layer} imports {name}")
    return bad


def test_no_layer_imports_a_later_one():
    assert crossings(ROOT) == []


def test_the_check_finds_a_crossing(tmp_path):
    (tmp_path / "partners").mkdir()
    (tmp_path / "billing" / "core").mkdir(parents=True)
    (tmp_path / "partners" / "x.py").write_text("def f():\n    from invoicing.models import Invoice\n")
    (tmp_path / "billing" / "core" / "y.py").write_text("from billing.portal import views\nfrom partners import z\n")
    assert crossings(tmp_path) == [
        "billing/core/y.py:1: billing.core imports billing.portal.views",
        "billing/core/y.py:2: billing.core imports partners.z",
        "partners/x.py:2: partners imports invoicing.models.Invoice",
    ]


def test_the_check_finds_invoicing_importing_rebilling(tmp_path):
    """Rebilling is read by nothing below it: invoicing outside invoicing/rebilling/ may not import it, while
    rebilling imports every layer under it and the shell imports rebilling."""
    (tmp_path / "invoicing" / "rebilling").mkdir(parents=True)
    (tmp_path / "billing" / "portal").mkdir(parents=True)
    (tmp_path / "metering").mkdir()
    (tmp_path / "invoicing" / "rating.py").write_text("from invoicing.rebilling.pricing import resale_amount\n")
    (tmp_path / "metering" / "m.py").write_text("def f():\n    import invoicing.rebilling.models\n")
    (tmp_path / "invoicing" / "rebilling" / "pricing.py").write_text(
        "from invoicing.pricing import tiered_amount\nfrom metering import selectors\n"
        "from partners.tiers import parse_tiers\nfrom billing.core.money import quantize_money\n"
        "from invoicing.rebilling import choices\n")
    (tmp_path / "invoicing" / "rebilling" / "views.py").write_text("from billing.portal import access\n")
    (tmp_path / "billing" / "portal" / "rebilling_views.py").write_text("from invoicing.rebilling import selectors\n")
    assert crossings(tmp_path) == [
        "invoicing/rating.py:1: invoicing imports invoicing.rebilling.pricing.resale_amount",
        "invoicing/rebilling/views.py:1: invoicing.rebilling imports billing.portal.access",
        "metering/m.py:2: metering imports invoicing.rebilling.models",
    ]


@pytest.mark.parametrize("module", ["billing.core.money", "billing.core.periods", "billing.core.importing"])
def test_kernel_modules_are_in_the_kernel(module):
    assert layer_of(module) == "billing.core"


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the project's modules it imports, inside functions too, save the imports named as breaking a
    cycle (`# noqa: PLC0415`) and AppConfig.ready()'s registrations."""
    modules = {}
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if rel.parts[0] not in PACKAGES or "tests" in rel.parts or "migrations" in rel.parts:
            continue
        name = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        if path.name == "apps.py":
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        edges = set()
        for line, target in imported(path):
            if "noqa: PLC0415" in lines[line - 1]:
                continue
            found = resolve(target)
            if found and found != name and not name.startswith(found + "."):
                edges.add(found)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_cycles_between_modules():
    assert cycles(import_graph(ROOT)) == []


def test_the_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
