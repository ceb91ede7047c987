"""The package's layers point one way, drawn from its own imports.

Every ``import`` of every module is read with ``ast``, those inside functions
included (a lazy import is still a dependency); imports under
``if TYPE_CHECKING:`` are left out, as they never run (they only name types
for annotations). The layers, lowest first, are those of ARCHITECTURE.md: a
module may import modules of its own layer or below, never above, and no
group of modules may import one another in a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import livestack_nb

ROOT = Path(livestack_nb.__file__).parent
PKG = "livestack_nb"

# Lowest first. A name ending in "." stands for every module of that subpackage.
LAYERS: list[tuple[str, set[str]]] = [
    (
        "foundation",
        {
            "_version",
            "errors",
            "graph",
            "_interrupt",
            "_limits",
            "_current",
            "_types",
            "storage",
            "runtime",
            "agg",
            "_windows",
            "feeding",
            "status_feed",
            "vault.",
        },
    ),
    ("spec", {"spec", "_describe", "_workerdef", "dead_letter", "rx_operator"}),
    (
        "stream/job",
        {
            "stream",
            "_chunk",
            "_streambase",
            "_flusher",
            "_delivery",
            "_reads",
            "reading",
            "named",
            "job",
            "_status",
            "_inbox",
            "_ports",
            "_livejob",
            "_lifecycle",
            "_handle",
            "keys",
            "step",
            "lineage",
        },
    ),
    (
        "worker/flow",
        {
            "worker",
            "_retry",
            "_pool",
            "_inline",
            "slots",
            "flow",
            "_flowrun",
            "attempts",
            "window",
            "_frames",
        },
    ),
    ("env", {"env", "_jobs", "_stepstart", "_queued", "relay", "testing"}),
    ("remote/cli", {"remote", "queue_worker", "cli"}),
    ("widgets", {"widgets.", "_kernel", "_displayed", "__init__", "__main__"}),
]


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, name: str) -> set[str]:
    """The package modules ``name`` imports when it runs (module level or in a function)."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg and name != "__init__" else name.split(".")[:-1]
    if name == "__init__":
        base = []
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for n in node.orelse:
                visit(n)
            return
        if isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join([*anchor, *(node.module.split(".") if node.module else [])])
            elif node.module and (node.module == PKG or node.module.startswith(PKG + ".")):
                mod = node.module[len(PKG) + 1 :]
            else:
                mod = None
            if mod is not None:
                for alias in node.names:  # `from . import x` may name a module
                    sub = f"{mod}.{alias.name}" if mod else alias.name
                    found.add(sub if sub in ALL else mod or "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PKG + "."):
                    found.add(alias.name[len(PKG) + 1 :])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(name)
    return {m for m in found if m in ALL}


FILES = {_module_name(p): p for p in ROOT.rglob("*.py") if "labextension" not in p.parts}
FILES["__init__"] = ROOT / "__init__.py"
ALL = set(FILES)
GRAPH = {name: _imports(path, name) for name, path in FILES.items()}


def layer_of(name: str) -> int:
    for i, (_, members) in enumerate(LAYERS):
        for m in members:
            if name == m or (m.endswith(".") and (name + ".").startswith(m)):
                return i
    raise AssertionError(f"module {name!r} has no layer: add it to LAYERS (and to ARCHITECTURE.md)")


def _cycles(nodes: set[str]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH[v] & nodes:
            if w not in index:
                strong(w)
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
                out.append(sorted(group))

    for v in sorted(nodes):
        if v not in index:
            strong(v)
    return out


def test_the_import_reader_sees_lazy_imports() -> None:
    # job.py reads the keyed state only when a job asks for it: still a dependency.
    assert "keys" in GRAPH.get("_livejob", set()) | GRAPH["job"]
    assert "env" in GRAPH["__init__"]
    assert all(GRAPH[m] <= ALL for m in GRAPH)


def test_every_module_has_a_layer() -> None:
    for name in sorted(ALL):
        layer_of(name)


def test_layers_point_one_way() -> None:
    wrong = [
        f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
        for a in sorted(ALL)
        for b in sorted(GRAPH[a])
        if layer_of(b) > layer_of(a)
    ]
    assert not wrong, "imports up the layers:\n" + "\n".join(wrong)


def test_no_import_cycle_in_the_core() -> None:
    core = {m for m in ALL if not m.startswith(("vault.", "widgets.")) and m not in ("vault", "widgets")}
    assert _cycles(core) == []


def test_no_import_cycle_anywhere() -> None:
    assert _cycles(ALL) == []
