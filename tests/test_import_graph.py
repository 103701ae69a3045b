"""The import graph of archai_aml, from an AST walk over every module (no import executed).

Two rules, each checked over the whole package:

- no cycles: the graph of runtime imports between modules (module-level and inside functions; imports
  under ``if TYPE_CHECKING:`` are left out, they never run) has no strongly connected component of two or
  more modules;
- backends are reached through the registry: a backend's implementation (a target, store or job runner
  package or module, :data:`BACKENDS`) is imported only from inside itself, except its ``settings`` module,
  which is what the registry loads (the entry point) and what typed code that needs that very backend may
  name. ``archai_aml/__init__.py`` (the public face: names resolved lazily) is exempt.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "archai_aml"

#: Every built-in backend: the module or package that implements it.
BACKENDS = (
    "archai_aml.ort",
    "archai_aml.qnn",
    "archai_aml.snpe",
    "archai_aml.aihub",
    "archai_aml.testing.fixed_cost",
    "archai_aml.store.embedded",
    "archai_aml.store.azure",
    "archai_aml.pipelines.local",
    "archai_aml.pipelines.azureml",
)
#: Modules of a backend package that others may import: what the registry loads, and test instruments that
#: imitate a backend's SDK (``testing/`` builds stand-ins on the backends it imitates).
OPEN_TO_ALL = ("settings",)
#: Importers allowed to name a backend: test instruments (``testing/`` builds stand-ins and test targets on
#: the backends they imitate or extend, e.g. ``work_target`` on ``fixed_cost``), and the schedule's on-demand
#: local run, which is by definition a run on the ``local`` job runner with its own environment.
MAY_NAME_BACKENDS = ("archai_aml.testing", "archai_aml.steps.schedule")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The archai_aml modules that ``path`` imports at run time (``from pkg import name`` of a submodule
    counts as that submodule)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("archai_aml"):
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.startswith("archai_aml"):
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.add(sub if sub in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    found.discard(me)
    return {m for m in found if m in modules}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(ROOT.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) for p in paths}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of two or more modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def _inside(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def backend_leaks(graph: dict[str, set[str]]) -> list[str]:
    leaks = []
    for importer, targets in sorted(graph.items()):
        if importer == "archai_aml" or any(_inside(importer, m) for m in MAY_NAME_BACKENDS):
            continue
        for target in sorted(targets):
            for backend in BACKENDS:
                if not _inside(target, backend) or _inside(importer, backend):
                    continue
                if target.rpartition(".")[2] in OPEN_TO_ALL:
                    continue
                leaks.append(f"{importer} imports {target}")
    return leaks


def test_the_walk_sees_imports() -> None:
    # the check cannot pass by seeing nothing: known edges of each kind are found
    graph = import_graph()
    assert len(graph) > 100
    assert "archai_aml.store.base" in graph["archai_aml.store.leases"]  # module level
    assert "archai_aml.store.azure.http_counter" in graph["archai_aml.store.azure.settings"]  # in a function
    assert "archai_aml.pipelines.azureml" not in graph["archai_aml"]  # under TYPE_CHECKING: left out


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert backend_leaks({"archai_aml.runner.steps": {"archai_aml.ort.target"}}) == [
        "archai_aml.runner.steps imports archai_aml.ort.target"
    ]


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_backends_are_imported_only_through_the_registry() -> None:
    leaks = backend_leaks(import_graph())
    assert not leaks, "concrete backends imported outside their package:\n" + "\n".join(leaks)
