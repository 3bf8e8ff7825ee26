"""Wrong and valid implementations of every graded part, and the submissions built from them.

Each assignment's module here holds ``MISTAKES`` and ``VALID``: check name -> {what it is: variant}. A
variant is either the whole source of that part's solution cell (a str) or edits of the solution's source,
``(old, new)`` pairs whose ``old`` text must occur in it. Parts are graded independently, so submission
``mistakes<i>`` puts mistake ``i`` of every part into one notebook and loses exactly those parts' points;
``valid<i>`` likewise holds valid alternatives and gets full marks. A few notebooks cover every variant.
"""
from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.key import apply, solution_sources
from reslab import checks

ROOT = Path(__file__).resolve().parents[2]


def notebook_path(folder: str, assignment: str) -> Path:
    """``solutions/<a>/<a>.ipynb`` or ``exercises/<a>/<a>.ipynb``."""
    return ROOT / folder / assignment / f"{assignment}.ipynb"


def read(folder: str, assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(notebook_path(folder, assignment), as_version=4)


def grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


@dataclass(frozen=True)
class Submission:
    student: str
    sources: dict  # solution-cell grade_id -> source; cells not given stay as released
    expected: dict  # check name -> score
    about: dict  # check name -> which variant it holds

    def notebook(self, assignment: str) -> nbformat.NotebookNode:
        """The release notebook with these solution cells filled in."""
        nb = copy.deepcopy(read("exercises", assignment))
        for cell in nb.cells:
            if grade_id(cell) in self.sources:
                cell.source = self.sources[grade_id(cell)]
        return nb


def submissions(assignment: str) -> list[Submission]:
    """The solution, the untouched release, then rounds of mistakes (each loses the points of the parts it
    touches) and rounds of valid alternatives (full marks)."""
    variants = importlib.import_module(f"{__name__}.{assignment}")
    solution = solution_sources(assignment)
    full = {c.name: float(c.points) for c in checks.parts_for(assignment)}
    result = [Submission("solution", solution, full, {n: "solution" for n in full}),
              Submission("release", {}, dict.fromkeys(full, 0.0), dict.fromkeys(full, "release stub"))]
    for kind, parts, score in (("mistakes", variants.MISTAKES, 0.0), ("valid", variants.VALID, None)):
        for i in range(max(len(v) for v in parts.values())):
            sources, expected, about = dict(solution), dict(full), {}
            for name, options in parts.items():
                if i < len(options):
                    what, variant = list(options.items())[i]
                    sources[f"{name}_solution"] = apply(solution[f"{name}_solution"], variant)
                    about[name] = what
                    expected[name] = full[name] if score is None else score
            result.append(Submission(f"{kind}{i + 1}", sources, expected, about))
    return result


def run_in_process(assignment: str, sources: dict, tests: bool = True) -> tuple[dict, dict[str, str]]:
    """Stock-nbgrader semantics without a kernel: run the source notebook top to bottom with these solution
    cells (released stubs for the others), errors allowed; the notebook's globals afterwards and, for each test
    cell (visible and hidden checks), '' if it passed or else the message it failed with (what the student
    reads). ``tests=False`` skips the test cells."""
    released = {grade_id(c): c.source for c in read("exercises", assignment).cells}
    namespace, failed = {"__name__": "__main__"}, {}
    for cell in read("solutions", assignment).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or (meta.get("grade") and not tests):
            continue
        source = sources.get(grade_id(cell), released[grade_id(cell)]) if meta.get("solution") else cell.source
        try:
            exec(compile(source, f"<cell {grade_id(cell)}>", "exec"), namespace)
            message = ""
        except Exception as err:  # a student's cell may fail; nbgrader goes on
            message = str(err) or type(err).__name__
        if meta.get("grade"):
            failed[grade_id(cell)] = message
    return namespace, failed
