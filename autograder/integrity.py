"""Integrity flags: the student's cells, read (never run) in the grader's process, for code that copies the
library's implementation of a graded part or reaches into the interpreter to forge what a check sees.

Calling ``reslab.models.BasicBlock`` where the task is to write a ``BasicBlock`` is copying, not solving; and
``__import__``, ``sys.modules``, ``__code__``, IPython's events and transformers, ``exec`` or patching
imported modules have no place in an exercise's answer but are how a forged result would be made. A flagged
part scores 0 and is marked for manual grading in the gradebook, with the reason, so the instructor decides.
"""
from __future__ import annotations

import ast
import threading
import time

from nbformat import NotebookNode

INTERNALS = {  # names whose mere use in an answer needs a human look
    "__import__": "imports by __import__", "importlib": "imports through importlib", "exec": "runs code with exec",
    "eval": "runs code with eval", "compile": "compiles code at run time", "globals": "edits the notebook's globals",
    "vars": "reads objects' internals with vars()", "get_ipython": "drives IPython itself (events, transformers, "
    "magics)", "__builtins__": "reaches the interpreter's builtins", "builtins": "reaches the interpreter's builtins",
    "ctypes": "uses ctypes", "gc": "walks the interpreter's objects (gc)", "inspect": "inspects code objects",
    "marshal": "loads code objects (marshal)", "pickle": "uses pickle", "FunctionType": "builds functions from "
    "code objects", "CodeType": "builds code objects",
}
SAFE_MAGICS = {"matplotlib", "time", "timeit", "capture", "precision", "pprint", "who", "whos"}  # and shell (!cmd)
DUNDERS = {"__code__", "__globals__", "__closure__", "__builtins__", "__subclasses__", "__bases__", "__mro__",
           "__func__", "__wrapped__", "__getattribute__"}


LARGEST_CELL = 200_000  # characters of one cell the scan parses

# CPython 3.11 shares the AST constructor's recursion counter between threads: two parses at once (grading
# threads) can fail with "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905)
_PARSING = threading.Lock()


def _tree(source: str):
    """The cell's syntax tree, IPython magics turned into the calls they make (None if it does not parse)."""
    from IPython.core.inputtransformer2 import TransformerManager
    try:
        transformed = TransformerManager().transform_cell(source)
        with _PARSING:
            return ast.parse(transformed)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    except RuntimeError:  # IPython gives up on over 500 magics in one cell ("still changing"): so did the kernel
        return None


def _root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _imports(trees) -> tuple[set[str], set[str]]:
    """(names bound to imported modules, those bound to reslab modules) over the whole notebook."""
    modules, reslab = set(), set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    modules.add(bound)
                    if alias.name.split(".")[0] == "reslab":
                        reslab.add(bound)
            elif isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    bound = alias.asname or alias.name
                    if node.module.split(".")[0] == "reslab" and alias.name[:1].islower():
                        reslab.add(bound)  # from reslab import models
                    if alias.name[:1].islower():
                        modules.add(bound)
    return modules, reslab


def _harmless_magics(tree: ast.AST) -> set[int]:
    """The nodes of ``get_ipython().run_line_magic("matplotlib", ...)`` and the like: magics a student may use."""
    safe = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _root(node.func) == "get_ipython"
                and (node.func.attr in ("system", "getoutput") or node.func.attr in ("run_line_magic", "run_cell_magic")
                     and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in SAFE_MAGICS)):
            safe.update(id(n) for n in ast.walk(node.func))
    return safe


def _reasons(tree: ast.AST, library: set[str], modules: set[str], reslab: set[str]) -> list[str]:
    reasons, safe = [], _harmless_magics(tree)
    for node in ast.walk(tree):
        if id(node) in safe:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "reslab":
            taken = [a.name for a in node.names if a.name in library or a.name == "*"]
            if taken:
                reasons.append(f"imports the library's {', '.join(taken)} from {node.module}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in INTERNALS:
                    reasons.append(INTERNALS[top])
        elif isinstance(node, ast.Attribute):
            if node.attr in library and _root(node) in reslab:
                reasons.append(f"uses the library's {node.attr}")
            elif node.attr in DUNDERS:
                reasons.append(f"reaches into {node.attr}")
            elif node.attr in ("modules", "_getframe", "settrace", "setprofile", "meta_path") and _root(node) == "sys":
                reasons.append(f"uses sys.{node.attr}")
        elif isinstance(node, ast.Name) and node.id in INTERNALS:
            reasons.append(INTERNALS[node.id])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in library:
            reasons.append(f"names the library's {node.value} in a string")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in ("__new__", "__init_subclass__"):
            reasons.append(f"defines {node.name}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in INTERNALS:
            reasons.append(f"replaces the built-in {node.name}")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and (_root(target) in modules or target.attr == "__class__"):
                    reasons.append(f"changes {ast.unparse(target)[:60]}, an attribute of an imported module "
                                   "or an object's class")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
            if node.args and _root(node.args[0]) in modules:
                reasons.append(f"patches the module {_root(node.args[0])} with {node.func.id}")
    return list(dict.fromkeys(reasons))


def _written_by_student(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and not (meta.get("locked") or meta.get("grade")) or bool(meta.get("solution"))


def scan(notebook: NotebookNode, parts: list, deadline: float | None = None) -> dict[str, list[str]]:
    """Part name -> why its answer needs a human look. A solution cell ``<part>_solution`` counts for its
    part; the student's other cells count for every part. A scan still running at ``deadline`` (monotonic
    seconds) stops and flags every part: the grader's time is bounded, and such a notebook needs a human."""
    late = {p.name: ["its notebook is too large to scan within the time limit"] for p in parts}
    cells = []
    for c in notebook.cells:
        if deadline is not None and time.monotonic() > deadline:
            return late
        if c.cell_type == "code" and len(c.source) > LARGEST_CELL:  # minutes to parse; no answer is that long
            return {p.name: [f"a cell of {len(c.source) >> 10} kB is too large to scan"] for p in parts}
        if c.cell_type == "code":
            cells.append((c, _tree(c.source)))
    modules, reslab = _imports(tree for _, tree in cells if tree is not None)
    names = {p.name for p in parts}
    flags = {p.name: [] for p in parts}
    for cell, tree in cells:
        if deadline is not None and time.monotonic() > deadline:
            return late
        if tree is None or not _written_by_student(cell):
            continue
        owner = str(cell.metadata.get("nbgrader", {}).get("grade_id", "")).removesuffix("_solution")
        concerned = [p for p in parts if p.name == owner] if owner in names else parts
        for part in concerned:
            for reason in _reasons(tree, set(part.library), modules, reslab):
                where = "its solution cell" if owner in names else "a cell of the student's"
                flags[part.name].append(f"{where} {reason}")
    return {name: list(dict.fromkeys(reasons)) for name, reasons in flags.items() if reasons}


def apply(tests: list[dict], flags: dict[str, list[str]]) -> list[dict]:
    """The tests with every flagged part at 0 points, failed, and marked for manual grading with the reason."""
    for test in tests:
        reasons = flags.get(test["name"])
        if reasons:
            test.update(score=0.0, status="failed", flagged=reasons, output=(
                f"flagged for manual grading ({'; '.join(reasons)[:500]}): the instructor will review this part. "
                f"The automatic check said: {test['output']}"))
    return tests
