"""The rooms' imports point one way: library <- course, solutions, autograder; and no package imports in a
cycle (a module-level or function-level import both count: a lazy import is still a dependency)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imports(package: str) -> dict[str, set[str]]:
    """module -> the modules of the project it imports, read from the source."""
    graph = {}
    for path in (ROOT / package).rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = module.split(".")[: len(module.split(".")) - node.level + (parts[-1] == "__init__")] \
                    if node.level else []
                name = ".".join([*base, node.module] if node.module else base)
                found.update([name] + [f"{name}.{a.name}" for a in node.names])
        graph[module] = found
    return {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (found := visit(nxt, path + [node])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [])):
            return found
    return None


def test_no_module_of_the_grader_or_the_library_imports_in_a_cycle():
    for package in ("autograder", "reslab"):
        graph = {m: {d for d in deps if not graph_parent(m, d)} for m, deps in imports(package).items()}
        assert cycle(graph) is None, f"{package}: import cycle {' -> '.join(cycle(graph))}"


def graph_parent(module: str, dependency: str) -> bool:
    """A package importing its own submodules (its __init__) is not a cycle worth cutting."""
    return module.count(".") < dependency.count(".") and dependency.startswith(module + ".")


def test_the_library_imports_neither_the_grader_nor_the_course():
    for module, deps in imports("reslab").items():
        assert not any(d.startswith("autograder") for d in deps), module
    for path in (ROOT / "reslab").rglob("*.py"):
        assert "import autograder" not in path.read_text() and "from autograder" not in path.read_text(), path


def test_the_cycle_check_finds_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None
