"""The answer key: for every graded part, how its secret inputs are drawn, what the right outputs are, and
the classic mistakes it can name. It lives in the grader's package, which the sandbox can neither import nor
read (the course folder is hidden there); the student's kernel sees only ``reslab.checks``, which runs code
and compares but never computes an expected output.

One module per assignment (``a01_cnn_basics`` …) defines ``KEYS``. A mistake is a sentence ("applies the
ReLU before adding the shortcut") and a mutant: edits ``(old, new)`` of the instructor's solution cell (or the
whole cell's source), executed here and run through the student's harness, so that a submission whose outputs
match the mutant's is told which mistake it made. ``python -m autograder.key write`` stores the inputs,
expected outputs and mistakes' outputs of the public seeds for the visible checks.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat
import numpy as np

from reslab import checks
from reslab.checks import harness

ROOT = Path(__file__).resolve().parents[2]  # the course folder: autograder/ and solutions/ live in it
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
EXPERIMENT = "experiment"  # grade_id of every assignment's locked experiment cell (runs the student's code)


@dataclass(frozen=True)
class Key:
    part: checks.Part
    make_inputs: Callable[[np.random.Generator], checks.Arrays]  # draws every declared case class
    reference: Callable[[checks.Arrays], checks.Arrays]  # the right outputs, from the library's implementation
    mistakes: dict = field(default_factory=dict)  # sentence -> edits of the solution cell, or its whole source
    cases: dict = field(default_factory=dict)  # label -> CaseClass: what make_inputs must cover

    @property
    def name(self) -> str:
        return self.part.name

    def expected(self, inputs: checks.Arrays) -> checks.Arrays:
        with harness.isolated():
            return self.reference(inputs)

    def mistake_outputs(self, inputs: checks.Arrays) -> dict:
        """What each known mistake outputs on ``inputs``: its arrays, or the failure message (lines left out)
        where its code fails the check before it outputs anything."""
        outputs = {}
        for sentence in self.mistakes:
            namespace = mutant(self.part.assignment, self.name, self.mistakes[sentence])
            try:
                outputs[sentence] = harness.run(self.part.description, self.part.run_student, namespace, inputs)
            except checks.CheckFailed as err:
                outputs[sentence] = checks.failure(str(err))
        return outputs

    def grade(self, outputs, inputs: checks.Arrays, mistakes: dict | None = None) -> checks.Result:
        """Score the student's outputs on ``inputs``; ``mistakes`` (from mistake_outputs) names the mistake."""
        return checks.score(self.part, outputs, self.expected(inputs),
                            self.mistake_outputs(inputs) if mistakes is None else mistakes)


def keys_for(assignment: str) -> list[Key]:
    parts = checks.parts_for(assignment)
    keys = importlib.import_module(f"{__name__}.{assignment}").KEYS
    if [k.part for k in keys] != parts:
        raise ValueError(f"autograder.key.{assignment} must hold one key per part of reslab.checks.{assignment}, "
                         "in the same order")
    return list(keys)


def key(assignment: str, name: str) -> Key:
    found = {k.name: k for k in keys_for(assignment)}
    if name not in found:
        raise ValueError(f"no check {name!r} in {assignment!r}; its checks: {list(found)}")
    return found[name]


# --- the instructor's solution, and mutants of it ------------------------------------------------------------

def solution_cells(assignment: str) -> list[tuple[str, str, bool]]:
    """(grade_id, source without the solution markers, is it a solution cell) of every code cell of the source
    notebook that is not a test cell, in order."""
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    cells = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and not meta.get("grade"):
            source = "\n".join(line for line in cell.source.splitlines() if line.strip() not in MARKERS)
            cells.append((meta.get("grade_id"), source, bool(meta.get("solution"))))
    return cells


def solution_sources(assignment: str) -> dict[str, str]:
    """The solution cells by grade_id, as a student would hand them in (no markers)."""
    return {gid: source for gid, source, solution in solution_cells(assignment) if solution}


def apply(source: str, variant) -> str:
    """A variant of a cell: its whole new source (a str) or ``(old, new)`` edits, each ``old`` in the source."""
    if isinstance(variant, str):
        return variant
    for old, new in variant:
        if old not in source:
            raise ValueError(f"variant edit {old!r} does not occur in the solution:\n{source}")
        source = source.replace(old, new)
    return source


@functools.lru_cache(maxsize=None)
def _solved(assignment: str) -> dict:
    """The globals of the solution notebook run top to bottom, test cells and the student's experiment (it
    defines nothing a part needs) left out; whatever the cells print stays off the instructor's console."""
    namespace = {"__name__": "__main__"}
    with harness.isolated(), contextlib.redirect_stdout(io.StringIO()):
        for gid, source, _ in solution_cells(assignment):
            if gid != EXPERIMENT:
                exec(compile(source, f"<solution {assignment} {gid}>", "exec"), namespace)
    return namespace


def mutant(assignment: str, name: str, variant) -> dict:
    """The solved notebook's globals with part ``name``'s solution cell replaced by ``variant``."""
    cell = f"{name}_solution"
    namespace = dict(_solved(assignment))
    source = apply(solution_sources(assignment)[cell], variant)
    with harness.isolated():
        exec(compile(source, f"<mistake {assignment} {cell}>", "exec"), namespace)
    return namespace
