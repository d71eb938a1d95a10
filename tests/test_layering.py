"""The package follows the data flow, and imports only go down it.

instrument → export → collect / import → spans → features → verify → judge → report / rewards.
`LAYERS` below is the order, lowest first; `docs/architecture.md` explains it. A module may
import from its own package and from packages in lower layers, never from a peer in the same
layer or from above. Every import counts (module level and inside functions), except those under
`if TYPE_CHECKING:`, which exist for the type checker only. No module imports itself back
through others (no circles), and `import agentsignals` reaches nothing of the analysis side.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PACKAGE = "agentsignals"

# Lowest first. Names are top-level modules or packages under src/agentsignals/. Packages of the
# analysis stage that do not exist yet are listed where they go, so they are checked on arrival.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("semconv",),  # generated constants
    ("_classify",),  # pure readings of tool calls: category, shell effects, test logs, labels
    ("_instrument",),  # inside the agent: handles, scope, capture, workspace, propagation
    ("_export", "_spans"),  # span exporters (agent side); the typed span model (collection side)
    ("_settings",),  # the configuration model and its variables
    ("_import", "_features"),  # importers only produce spans; features only read them
    ("_verify",),  # outcomes and gold localization merged into feature records
    ("_store",),  # ClickHouse: spans and records at scale
    ("_collector",),  # the OTLP service
    ("_judge",),  # transcripts, model clients, rubrics, cache, attribution, evaluation
    ("_reward",),  # dense rewards from records and judge results
    ("_report",),  # statistics and rendering
    ("_config", "_faults"),  # in-process wiring (configure); fault injection into live runs
    ("integrations",),  # one module per framework, each importing its framework lazily
    # The façade: public modules, the command line and the demo. They may use each other.
    (
        "__init__",
        "__main__",
        "features",
        "verify",
        "propagate",
        "testing",
        "judge",
        "report",
        "rewards",
        "faults",
        "cli",
        "_demo",
    ),
)
FACADE = LAYERS[-1]
# What `import agentsignals` may load (eagerly): the instrumentation side only.
EAGER_ALLOWED = {"__init__", "semconv", "_classify", "_instrument", "_config"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    found[PACKAGE] = SRC / PACKAGE / "__init__.py"
    found.pop(f"{PACKAGE}.__init__", None)
    return found


MODULES = _modules()


def _unit(module: str) -> str:
    """The layer unit of a module: `agentsignals._features.extract` -> `_features`."""
    if module == PACKAGE:
        return "__init__"
    return module.split(".")[1]


def _resolve(target: str) -> str | None:
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                skip.update(id(n) for n in ast.walk(stmt))
    return skip


def _imports(module: str, *, eager_only: bool = False) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every agentsignals import in `module`."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    nodes: list[ast.AST] = list(tree.body) if eager_only else list(ast.walk(tree))
    is_package = path.name == "__init__.py"
    for node in nodes:
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                full = f"{target}.{alias.name}"
                resolved = full if full in MODULES else _resolve(target)
                if resolved:
                    yield resolved, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    resolved = _resolve(alias.name)
                    if resolved:
                        yield resolved, node.lineno


def _layer_of() -> dict[str, int]:
    return {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def test_every_module_has_a_layer() -> None:
    layer = _layer_of()
    missing = sorted({_unit(m) for m in MODULES} - set(layer))
    assert not missing, (
        f"{missing} belong to no layer: add them to LAYERS here and to docs/architecture.md"
    )


def test_imports_only_go_down() -> None:
    layer = _layer_of()
    wrong = []
    for module in sorted(MODULES):
        unit = _unit(module)
        for target, line in _imports(module):
            other = _unit(target)
            if other == unit or (unit in FACADE and other in FACADE):
                continue
            if layer[other] >= layer[unit]:
                where = "a peer" if layer[other] == layer[unit] else "a higher layer"
                wrong.append(f"{module}:{line} imports {target} ({where})")
    assert not wrong, "\n".join(wrong)


def test_no_import_circles() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        for target, _ in _imports(module):
            if target != module:
                graph[module].add(target)
    # Tarjan's strongly connected components, iteratively.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = 0
    for root in sorted(MODULES):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    assert not circles, f"import circles: {circles}"


def test_import_agentsignals_reaches_no_analysis_code() -> None:
    """What `import agentsignals` loads eagerly (module-level imports, followed transitively)."""
    seen = {PACKAGE}
    todo = [PACKAGE]
    while todo:
        module = todo.pop()
        for target, _ in _imports(module, eager_only=True):
            # Importing a submodule runs its packages' __init__ too.
            parts = target.split(".")
            for i in range(2, len(parts) + 1):
                name = ".".join(parts[:i])
                if name in MODULES and name not in seen:
                    seen.add(name)
                    todo.append(name)
    outside = sorted(m for m in seen if _unit(m) not in EAGER_ALLOWED)
    assert not outside, f"`import agentsignals` loads {outside}"


def test_the_architecture_document_places_every_package() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    units = {_unit(m) for m in MODULES} | {u for layer in LAYERS[:-1] for u in layer}
    undocumented = sorted(
        u for u in units if u not in FACADE and not re.search(rf"`{re.escape(u)}(/|\.py)?`", text)
    )
    assert not undocumented, f"docs/architecture.md does not say where {undocumented} live"


def test_the_checker_sees_a_planted_upward_import(tmp_path: Path) -> None:
    """The checks above read real files; make sure an upward import is actually caught."""
    global MODULES
    saved = MODULES
    planted = tmp_path / "agentsignals" / "_instrument"
    planted.mkdir(parents=True)
    bad = planted / "bad.py"
    bad.write_text("def f():\n    from agentsignals._features import extract\n")
    MODULES = {**saved, "agentsignals._instrument.bad": bad}
    try:
        targets = [t for t, _ in _imports("agentsignals._instrument.bad")]
        assert targets == ["agentsignals._features.extract"]
        try:
            test_imports_only_go_down()
        except AssertionError as exc:
            assert "agentsignals._instrument.bad:2 imports agentsignals._features.extract" in str(
                exc
            )
        else:
            raise AssertionError("the upward import was not reported")
    finally:
        MODULES = saved
