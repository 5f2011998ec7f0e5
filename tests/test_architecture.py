"""The package's floors: a module may import its own folder, and folders on lower floors, never higher ones.
Read from the source (every import statement, those inside functions too), so a lazy import cannot hide an
upward tie."""

import ast
from pathlib import Path

import rerank_bench

PACKAGE = Path(rerank_bench.__file__).parent
# Lowest first. Same floor: folders that do not import each other.
FLOORS = (
    ("errors", "paths", "catalog", "__init__"),
    ("common",),
    ("probe", "models", "workload"),
    ("backends", "results"),
    ("sweep",),
    ("tune", "willrun", "compare", "report", "endpoint"),
    ("render",),
    ("cli",),
    ("__main__",),
)
FLOOR = {name: level for level, names in enumerate(FLOORS) for name in names}


def top_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else "__init__"


def imports_of(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rerank_bench"):
            names = [node.module] if node.module != "rerank_bench" else [f"rerank_bench.{a.name}" for a in node.names]
            found += [(node.lineno, name) for name in names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("rerank_bench")]
    return found


def test_every_module_belongs_to_a_floor():
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.rglob("*.py")}
    assert tops - set(FLOOR) == set()


def test_no_module_imports_a_higher_floor_or_a_sibling_folder():
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for line, module in imports_of(path):
            there = top_of(module)
            if there == "__init__" and module != "rerank_bench":
                there = module.split(".")[1]
            if there == here or there not in FLOOR:
                continue
            if FLOOR[there] > FLOOR[here] or (FLOOR[there] == FLOOR[here] and here != "__init__"):
                offences.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
    assert offences == []


def test_the_checker_sees_a_lazy_upward_import(tmp_path):
    """The rule can fail: an import inside a function is found like any other."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from rerank_bench.cli.common import stdout\n")
    assert imports_of(module) == [(2, "rerank_bench.cli.common")]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for _, module in imports_of(path):
            # `from rerank_bench.x import y` may name a module y or a name in x: count the module it reaches
            targets.add(module if module in modules else module.rsplit(".", 1)[0])
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_two_modules_import_each_other_in_a_circle():
    """Lazy imports included: a circle hidden inside a function still ties two modules into one."""
    assert _cycles(_import_graph()) == []


def test_the_cycle_finder_sees_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
