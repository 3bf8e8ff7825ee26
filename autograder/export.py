"""CSV exports from the gradebook: one row per student x assignment, and one per student x assignment x part."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from .course import Course

TOTALS = ["assignment", "student", "score", "max_score", "submitted", "timestamp", "needs_manual_grade"]
PARTS = ["assignment", "student", "part", "score", "max_score", "status", "message"]


def _messages(course: Course, student: str, assignment: str) -> dict:
    """part -> (status, message) from results.json, when the grader has written one."""
    path = course.path("autograded", student, assignment) / "results.json"
    if not path.is_file():
        return {}
    return {t["name"]: (t["status"], t["output"]) for t in json.loads(path.read_text())["tests"]}


def export(course: Course, out: str | Path) -> tuple[Path, Path]:
    """Write ``out`` (totals) and ``<out stem>_parts.csv`` (parts); scores are the gradebook's (a manual
    score, where an instructor gave one, wins over the autograder's)."""
    out = Path(out)
    parts_out = out.with_name(f"{out.stem}_parts.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    with Gradebook(course.coursedir.db_url, course.coursedir.course_id) as gb, \
            open(out, "w", newline="") as f_totals, open(parts_out, "w", newline="") as f_parts:
        totals, parts = csv.writer(f_totals), csv.writer(f_parts)
        totals.writerow(TOTALS)
        parts.writerow(PARTS)
        for assignment in sorted(gb.assignments, key=lambda a: a.name):
            for student in sorted(gb.students, key=lambda s: s.id):
                try:
                    submission = gb.find_submission(assignment.name, student.id)
                except MissingEntry:
                    totals.writerow([assignment.name, student.id, 0, assignment.max_score, "no", "", "no"])
                    continue
                totals.writerow([assignment.name, student.id, submission.score, assignment.max_score, "yes",
                                 submission.timestamp.isoformat() if submission.timestamp else "",
                                 "yes" if submission.needs_manual_grade else "no"])
                messages = _messages(course, student.id, assignment.name)
                for notebook in submission.notebooks:
                    for grade in sorted(notebook.grades, key=lambda g: g.name):
                        status, message = messages.get(grade.name, ("", ""))
                        parts.writerow([assignment.name, student.id, grade.name, grade.score, grade.max_score,
                                        status, message])
    return out, parts_out
