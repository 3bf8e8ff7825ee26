"""Integrity flags: the student's cells, read (never run) in the grader's process, for code that copies the
library's implementation of a graded part or reaches into the interpreter to forge what a check sees.

Calling ``reslab.models.BasicBlock`` where the task is to write a ``BasicBlock`` is copying, not solving; and
``__import__``, ``sys.modules``, ``__code__``, IPython's events and transformers, ``exec`` or patching
imported modules have no place in an exercise's answer but are how a forged result would be made. A flagged
part scores 0 and is marked for manual grading in the gradebook, with the reason, so the instructor decides.
"""
from __future__ import annotations

import ast
import re
import threading
import time

from IPython.core.inputtransformer2 import TRANSFORM_LOOP_LIMIT, TransformerManager, make_tokens_by_line
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
# what changes how *other* code runs (the grader's probe, other parts' checks): flags every part, wherever it is
KERNEL_WIDE = {INTERNALS[name] for name in ("__import__", "get_ipython", "__builtins__", "builtins", "ctypes", "gc",
                                            "exec", "eval", "compile")}
KERNEL_WIDE_PREFIXES = ("uses sys.", "changes ", "patches the module ", "replaces the built-in ")
TRACERS = {"fx", "jit", "symbolic_trace", "export"}  # torch's tracers run a module and keep its operations
SAFE_MAGICS = {"matplotlib", "time", "timeit", "capture", "precision", "pprint", "who", "whos"}  # and shell (!cmd)
DUNDERS = {"__code__", "__globals__", "__closure__", "__builtins__", "__subclasses__", "__bases__", "__mro__",
           "__func__", "__wrapped__", "__getattribute__"}


LARGEST_CELL = 200_000  # characters of one cell the scan parses

# CPython 3.11 shares the AST constructor's recursion counter between threads: two parses at once (grading
# threads) can fail with "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905)
_PARSING = threading.Lock()


MAGIC_WORK = 400_000  # characters IPython's translation may re-tokenise for one cell (or one logical line)
_ESCAPED = re.compile(r"^[ \t]*[!?%,;/]|=[ \t]*[%!]|\?[ \t]*\\?$", re.M)  # lines IPython's transformers may rewrite


class Untranslatable(ValueError):
    """A cell whose magics cannot be translated within the scan's work limit: it needs a human look."""


class _Counting(TransformerManager):
    """IPython's transformer, counting the transforms over every logical line it is given (IPython fails a cell
    at 500 in all)."""
    count = 0

    def do_one_token_transform(self, lines):
        changed, lines = super().do_one_token_transform(lines)
        self.count += changed
        if self.count >= TRANSFORM_LOOP_LIMIT:
            raise RuntimeError(f"{self.count} magics: IPython refuses the cell")
        return changed, lines


def _work(lines: list[str]) -> int:
    """IPython's cost: it re-tokenises all of ``lines`` after every transform."""
    text = "".join(lines)
    return len(text) * (len(_ESCAPED.findall(text)) + 1)


def translate(source: str) -> str:
    """The cell as the kernel runs it: IPython's own transforms (``TransformerManager.transform_cell``) in linear
    time. IPython re-tokenises the whole cell after each magic it rewrites (quadratic: 20 s for 500 ``%time 1`` on
    a busy machine); its rewrites never leave a logical line, so a costly cell is translated one logical line
    at a time, and the result is accepted only if every logical line still starts where it did (a rewrite that
    changed how the lines after it tokenise, e.g. by quoting a string's end, raises ``Untranslatable``, as does
    one logical line whose own translation is costly). RuntimeError where IPython would give up."""
    manager = _Counting()
    lines = (source if source.endswith("\n") else source + "\n").splitlines(keepends=True)
    for transform in manager.cleanup_transforms + manager.line_transforms:
        lines = transform(lines)
    if _work(lines) <= MAGIC_WORK:
        return "".join(manager.do_token_transforms(lines))
    groups, starts, done = make_tokens_by_line(lines), [], []
    firsts = sorted({0, len(lines)} | {g[0].start[0] - 1 for g in groups if g and g[0].start[0] <= len(lines)})
    for first, end in zip(firsts, firsts[1:]):
        if _work(lines[first:end]) > MAGIC_WORK:
            raise Untranslatable(f"one logical line of {end - first} lines holds too many IPython magics to translate")
        starts.append(len(done))
        done += manager.do_token_transforms(lines[first:end])
    try:
        kept = set(starts) <= {g[0].start[0] - 1 for g in make_tokens_by_line(done) if g}
    except SyntaxError:
        kept = False
    if not kept:
        raise Untranslatable("its IPython magics change how the lines after them read")
    return "".join(done)


def _tree(source: str):
    """The cell's syntax tree, IPython magics turned into the calls they make (None if it does not parse)."""
    try:
        transformed = translate(source)
        with _PARSING:
            return ast.parse(transformed)
    except Untranslatable:
        raise
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    except RuntimeError:  # IPython gives up on 500 magics in one cell ("still changing"): so did the kernel
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
        elif isinstance(node, ast.ImportFrom) and node.module and TRACERS & set(node.module.split(".")[1:2]):
            reasons.append(f"traces code with {node.module}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in INTERNALS:
                    reasons.append(INTERNALS[top])
                elif TRACERS & set(alias.name.split(".")[1:2]):
                    reasons.append(f"traces code with {alias.name}")
        elif isinstance(node, ast.Attribute):
            if node.attr in library and _root(node) in reslab:
                reasons.append(f"uses the library's {node.attr}")
            elif node.attr in DUNDERS:
                reasons.append(f"reaches into {node.attr}")
            elif node.attr in ("modules", "_getframe", "settrace", "setprofile", "meta_path") and _root(node) == "sys":
                reasons.append(f"uses sys.{node.attr}")
            elif node.attr in TRACERS and _root(node) in modules:
                reasons.append(f"traces code with torch's {node.attr}")
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


def _kernel_wide(reason: str) -> bool:
    return reason in KERNEL_WIDE or reason.startswith(KERNEL_WIDE_PREFIXES)


def _with_magic_bodies(tree: ast.AST, depth: int = 0) -> list[ast.AST]:
    """The cell's tree and those of the code its cell magics run (``%%capture`` and the like hide code in a
    string)."""
    trees = [tree]
    for node in ast.walk(tree):
        if (depth < 5 and isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "run_cell_magic" and len(node.args) == 3 and isinstance(node.args[2], ast.Constant)
                and isinstance(node.args[2].value, str)):
            body = _tree(node.args[2].value)
            trees += _with_magic_bodies(body, depth + 1) if body is not None else []
    return trees


def _written_by_student(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and not (meta.get("locked") or meta.get("grade")) or bool(meta.get("solution"))


def scan(notebook: NotebookNode, parts: list, deadline: float | None = None) -> dict[str, list[str]]:
    """Part name -> why its answer needs a human look. A solution cell ``<part>_solution`` counts for its
    part, and for every part where it changes how other code runs (``KERNEL_WIDE``); the student's other cells
    count for every part; code in cell magics counts as the cell's. A scan still running at ``deadline`` (monotonic
    seconds) stops and flags every part: the grader's time is bounded, and such a notebook needs a human."""
    try:
        return _scan(notebook, parts, deadline)
    except Untranslatable as err:  # the scan cannot read what the kernel ran
        return {p.name: [f"a cell's IPython magics could not be translated for the scan ({err})"] for p in parts}


def _scan(notebook: NotebookNode, parts: list, deadline: float | None) -> dict[str, list[str]]:
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
        for part in parts:
            where = ("its solution cell" if part.name == owner else f"the solution cell of {owner}" if owner in names
                     else "a cell of the student's")
            for body in _with_magic_bodies(tree):
                for reason in _reasons(body, set(part.library), modules, reslab):
                    if owner not in names or part.name == owner or _kernel_wide(reason):
                        flags[part.name].append(f"{where} {reason}")
    return {name: list(dict.fromkeys(reasons)) for name, reasons in flags.items() if reasons}


def copied(library: tuple[str, ...], ran: list[str]) -> list[str]:
    """The library functions that implement a part (its ``library`` names) among those that ``ran`` during its
    check (``module.qualname``, as the kernel's guard records them)."""
    return [name for name in ran if set(re.findall(r"\w+", name)) & set(library)]


def behaviour(parts: list, ran: dict[str, list[str]], tampering: list[str]) -> dict[str, list[str]]:
    """Part name -> what the kernel saw while the checks ran: the part's own library implementation running
    during its check, and, for every part, anything that changed how other code runs."""
    flags = {}
    for part in parts:
        found = copied(part.library, ran.get(part.name, []))
        reasons = [f"its check ran the library's {', '.join(found[:5])}"] if found else []
        reasons += [f"the notebook {', '.join(tampering[:5])}"] if tampering else []
        if reasons:
            flags[part.name] = reasons
    return flags


def merge(*flags: dict[str, list[str]]) -> dict[str, list[str]]:
    merged = {}
    for one in flags:
        for name, reasons in one.items():
            merged[name] = list(dict.fromkeys(merged.get(name, []) + reasons))
    return merged


def apply(tests: list[dict], flags: dict[str, list[str]]) -> list[dict]:
    """The tests with every flagged part at 0 points, failed, and marked for manual grading with the reason."""
    for test in tests:
        reasons = flags.get(test["name"])
        if reasons:
            test.update(score=0.0, status="failed", flagged=reasons, output=(
                f"flagged for manual grading ({'; '.join(reasons)[:500]}): the instructor will review this part. "
                f"The automatic check said: {test['output']}"))
    return tests
