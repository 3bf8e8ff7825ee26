"""CSV exports from the gradebook: one row per student x assignment, and one per student x assignment x part."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from .course import Course

TOTALS = ["assignment", "student", "score", "max_score", "submitted", "timestamp", "needs_manual_grade",
          "seconds_late", "late_penalty"]
PARTS = ["assignment", "student", "part", "score", "max_score", "status", "message"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """A spreadsheet must not read a student's text (an id, a message) as a formula: prefix it with a quote."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_START) else value


class SafeWriter:
    """csv.writer whose text cells can never start a formula."""

    def __init__(self, file):
        self._writer = csv.writer(file)

    def writerow(self, row):
        self._writer.writerow([safe_cell(value) for value in row])


def part_order(course: Course, assignment: str) -> list[str]:
    """The graded cells' names in notebook order (the source notebook's)."""
    try:
        nb = nbformat.read(course.source_notebook(assignment), as_version=4)
    except (OSError, ValueError):
        return []
    return [c.metadata.nbgrader["grade_id"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


def _messages(course: Course, student: str, assignment: str) -> dict:
    """part -> (status, message) from results.json, when the grader has written one."""
    path = course.path("autograded", student, assignment) / "results.json"
    if not path.is_file():
        return {}
    return {t["name"]: (t["status"], t["output"]) for t in json.loads(path.read_text())["tests"]}


def export(course: Course, out: str | Path) -> tuple[Path, Path]:
    """Write ``out`` (totals) and ``<out stem>_parts.csv`` (parts); scores are the gradebook's (a manual
    score, where an instructor gave one, wins over the autograder's), the totals' after the late penalty
    that nbgrader's plugin set (as nbgrader's own CSV export does)."""
    out = Path(out)
    parts_out = out.with_name(f"{out.stem}_parts.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    with Gradebook(course.coursedir.db_url, course.coursedir.course_id) as gb, \
            open(out, "w", newline="") as f_totals, open(parts_out, "w", newline="") as f_parts:
        totals, parts = SafeWriter(f_totals), SafeWriter(f_parts)
        totals.writerow(TOTALS)
        parts.writerow(PARTS)
        for assignment in sorted(gb.assignments, key=lambda a: a.name):
            order = {name: i for i, name in enumerate(part_order(course, assignment.name))}
            for student in sorted(gb.students, key=lambda s: s.id):
                try:
                    submission = gb.find_submission(assignment.name, student.id)
                except MissingEntry:
                    totals.writerow([assignment.name, student.id, 0, assignment.max_score, "no", "", "no", 0, 0])
                    continue
                penalty = submission.late_submission_penalty or 0.0
                totals.writerow([assignment.name, student.id, max(0.0, submission.score - penalty),
                                 assignment.max_score, "yes",
                                 submission.timestamp.isoformat() if submission.timestamp else "",
                                 "yes" if submission.needs_manual_grade else "no",
                                 round(submission.total_seconds_late), penalty])
                messages = _messages(course, student.id, assignment.name)
                for notebook in submission.notebooks:
                    for grade in sorted(notebook.grades, key=lambda g: (order.get(g.name, len(order)), g.name)):
                        status, message = messages.get(grade.name, ("", ""))
                        parts.writerow([assignment.name, student.id, grade.name, grade.score, grade.max_score,
                                        status, message])
    return out, parts_out
