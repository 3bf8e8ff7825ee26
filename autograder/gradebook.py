"""nbgrader stays the system of record: assignments and scores go into its gradebook through its own API."""
from __future__ import annotations

import logging
import os
import sys

import nbformat
from nbconvert.exporters.exporter import ResourcesDict
from nbformat import NotebookNode
from nbgrader.api import Gradebook
from nbgrader.converters import GenerateAssignment

from .course import Course

QUIET = logging.getLogger("autograder.late")
QUIET.propagate = False
QUIET.addHandler(logging.NullHandler())


def nbgrader_tools_on_path():
    """nbgrader runs ``alembic`` when it creates a gradebook: make this environment's tools findable."""
    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def release(course: Course, assignment: str) -> NotebookNode:
    """The release version of the assignment's notebook, made in memory by nbgrader's own generate_assignment
    preprocessors, which also record its cells and their checksums in the gradebook (as generate_assignment
    does; nothing is written to the release folder)."""
    nbgrader_tools_on_path()
    source = course.source_notebook(assignment)
    nb = nbformat.read(source, as_version=4)
    with Gradebook(course.coursedir.db_url, course.coursedir.course_id) as gb:
        gb.update_or_create_assignment(assignment)
    resources = ResourcesDict(nbgrader=dict(notebook=source.stem, assignment=assignment,
                                            db_url=course.coursedir.db_url))
    for preprocessor in GenerateAssignment(coursedir=course.coursedir, config=course.config).preprocessors:
        nb, resources = preprocessor(config=course.config).preprocess(nb, resources)
    return nb


def record(course: Course, results: dict) -> None:
    """Write one student's results (results.json content) into the gradebook. Autograded cells get their
    check's score; grade cells without a check (manually graded answers) are left to the instructor."""
    info = results["extra_data"]
    student, assignment, notebook = info["student"], info["assignment"], info["notebook"]
    scores = {test["name"]: test["score"] for test in results["tests"]}
    flagged = {test["name"]: test["flagged"] for test in results["tests"] if test.get("flagged")}
    with Gradebook(course.coursedir.db_url, course.coursedir.course_id) as gb:
        gb.update_or_create_student(student)
        with gb.db.no_autoflush:  # else SQLAlchemy warns about nbgrader's half-built submission
            gb.update_or_create_submission(assignment, student, **({"timestamp": info["timestamp"]}
                                                                   if info.get("timestamp") else {}))
        for cell in gb.find_notebook(notebook, assignment).grade_cells:
            grade = gb.find_grade(cell.name, notebook, assignment, student)
            grade.auto_score = scores.get(cell.name)
            grade.needs_manual_grade = (grade.auto_score is None or grade.manual_score is not None
                                        or cell.name in flagged)
            if cell.name in flagged:  # formgrader shows the reason beside the student's answer
                comment = gb.find_comment(f"{cell.name}_solution", notebook, assignment, student)
                comment.auto_comment = "Flagged for manual grading: " + "; ".join(flagged[cell.name])
        gb.db.commit()
        due = gb.find_assignment(assignment).duedate
    if due is not None:
        assign_late_penalty(course, student, assignment, notebook)


def assign_late_penalty(course: Course, student: str, assignment: str, notebook: str) -> None:
    """nbgrader's own late-penalty step, as stock autograde runs it: the plugin of
    ``c.AssignLatePenalties.plugin_class`` (default: no penalty) sets the penalty of a submission past its
    due date (``nbgrader db assignment add ASSIGNMENT --duedate=...``, with any extension)."""
    from nbgrader.preprocessors import AssignLatePenalties
    resources = ResourcesDict(nbgrader=dict(notebook=notebook, assignment=assignment, student=student,
                                            db_url=course.coursedir.db_url))
    step = AssignLatePenalties(config=course.config, log=QUIET)  # lateness is the report's to tell
    step.preprocess(nbformat.v4.new_notebook(), resources)


ROSTER_FIELDS = ("id", "first_name", "last_name", "email")


def import_roster(course: Course, path) -> int:
    """Students' names from a CSV (columns ``id`` and any of first_name, last_name, email; nbgrader's own
    ``nbgrader db student import`` format) into the gradebook, so formgrader and the report show names."""
    import csv
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    header = set(rows[0]) if rows else set()
    if "id" not in header or not header <= set(ROSTER_FIELDS):
        raise ValueError(f"{path}: a roster needs an 'id' column and only {', '.join(ROSTER_FIELDS)}; "
                         f"found {sorted(header) or 'no rows'}")
    if any(not (row["id"] or "").strip() for row in rows):
        raise ValueError(f"{path}: every row needs an id")
    with Gradebook(course.coursedir.db_url, course.coursedir.course_id) as gb:
        for row in rows:
            gb.update_or_create_student(row["id"].strip(), **{k: (v or "").strip() or None for k, v in row.items()
                                                              if k != "id"})
    return len(rows)


def student_names(course: Course) -> dict[str, str]:
    """student id -> "First Last" for the students whose names the gradebook knows."""
    with Gradebook(course.coursedir.db_url, course.coursedir.course_id) as gb:
        return {s.id: " ".join(n for n in (s.first_name, s.last_name) if n) for s in gb.students
                if s.first_name or s.last_name}
