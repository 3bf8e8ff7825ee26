"""The grader's command line as an instructor meets it: which course it acts on, what it says when something
is wrong, its exit status, and a --help that answers at once; then the class report's content.

Each command runs as a subprocess in a throwaway course (a copy of the real configuration with one assignment);
only test_grade_names_each_problem_and_sums_up starts a grading run (no student code runs in it).
"""
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from nbformat.v4 import new_notebook
from nbgrader.api import Gradebook

from autograder import gradebook
from autograder.course import Course
from autograder.export import export
from autograder.feedback import write_feedback
from autograder.report import write_report
from test_cli import imported_modules

REPO = Path(__file__).resolve().parents[1]
A = "a04_identity_add"
PARTS = {"plain_block": 2, "basic_block": 3, "remove_block": 2}
COMMANDS = ["release", "grade", "feedback", "export", "report", "roster", "selfcheck-service"]


def make_course(root: Path, config: str = "") -> Course:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "nbgrader_config.py", root)
    (root / "autograder").mkdir()
    (root / "autograder" / "nbgrader_config.py").write_text(
        (REPO / "autograder" / "nbgrader_config.py").read_text() + "c.Autograder.first_uid = 64000\n" + config)
    shutil.copytree(REPO / "solutions" / A, root / "solutions" / A)
    return Course(root)


def cli(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Course:
    return make_course(tmp_path_factory.mktemp("cli") / "course")


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_help_imports_neither_torch_nor_nbgrader(command, tmp_path):
    done, modules = imported_modules([sys.executable, "-m", "autograder", *command, "--help"], cwd=tmp_path,
                                     env={"PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert not {m.split(".")[0] for m in modules} & {"torch", "nbgrader", "numpy", "matplotlib"}
    assert "Command line" not in done.stdout  # a description that says what it does
    if command[:1] not in (["roster"], ["selfcheck-service"]):  # the others have options: what they default to
        assert "(default:" in done.stdout


def test_outside_any_course_nothing_runs(tmp_path):
    for args in (["grade", A], ["report", A], ["export"]):
        done = cli(*args, cwd=tmp_path)
        assert done.returncode == 2 and done.stderr == (
            f"autograder: not a course directory: {tmp_path.resolve()} (run it inside a course folder or pass "
            "--course-dir)\n"), done.stderr
    not_a_course = tmp_path / "empty"
    not_a_course.mkdir()
    done = cli("--course-dir", str(not_a_course), "export", cwd=REPO)
    assert done.returncode == 2 and f"not a course directory: {not_a_course}" in done.stderr
    assert not list(tmp_path.glob("**/gradebook.db"))


def test_the_course_is_found_from_a_subfolder(course):
    inside = course.root / "solutions" / A
    done = cli("grade", A, cwd=inside)
    assert done.returncode == 1, done.stderr  # nothing graded
    assert f"no submissions of {A} in {course.root / 'submitted'}" in done.stderr  # this course, not the repository


def test_misspelt_names_get_a_suggestion(course):
    done = cli("grade", "a04_identity_ad", cwd=course.root)
    assert done.returncode == 2 and done.stderr == \
        "autograder: unknown assignment 'a04_identity_ad' — did you mean a04_identity_add?\n"
    done = cli("report", "zzz", cwd=course.root)
    assert done.returncode == 2 and f"unknown assignment 'zzz' (assignments here: {A})" in done.stderr


def test_feedback_before_grading_says_so(course):
    done = cli("feedback", A, cwd=course.root)
    assert done.returncode == 1 and f"run python -m autograder grade {A} first" in done.stderr


def test_grade_names_each_problem_and_sums_up(tmp_path):
    course = make_course(tmp_path / "course")
    submitted = course.step("submitted")
    (submitted / "dave" / A).mkdir(parents=True)  # an empty folder
    (submitted / "gina" / A).mkdir(parents=True)
    for name in ("notes.ipynb", "draft.ipynb"):  # two notebooks, neither named right
        (submitted / "gina" / A / name).write_text(json.dumps(new_notebook()))
    (submitted / "frank").mkdir()
    shutil.copy(REPO / "exercises" / A / f"{A}.ipynb", submitted / "frank")  # not in its assignment's folder
    done = cli("grade", A, "--student", "gin", cwd=course.root)
    assert done.returncode == 2 and "unknown student 'gin' — did you mean gina?" in done.stderr
    done = cli("grade", A, "--unsandboxed", cwd=course.root)
    lines = done.stdout.splitlines()
    assert lines == [
        "dave: 0/7  not graded: the submission folder is empty",
        f"gina: 0/7  not graded: {A}.ipynb was not submitted (found 'draft.ipynb', 'notes.ipynb': rename yours)",
        f"frank: not graded: {A}.ipynb is directly in submitted/frank/: move it into submitted/frank/{A}/ and "
        "grade again",
        "graded 0, full marks 0, flagged 0, errors 0, problems 3"], done.stdout + done.stderr[-2000:]
    assert done.returncode == 1  # nothing was graded

    page = write_report(course, A, tmp_path / "report").read_text()
    assert "3 students: <b>3 submitted</b> = 0 graded" in page and "+ 3 that could not be graded" in page
    assert "the submission folder is empty" in page and "is directly in submitted/frank/" in page


def result(student: str, scores: dict, messages: dict | None = None, diagnoses: dict | None = None,
           timestamp: str | None = None, problem: str = "") -> dict:
    tests = [dict(name=n, score=float(scores.get(n, 0)), max_score=float(m),
                  status="passed" if scores.get(n, 0) == m else "failed", output=(messages or {}).get(n, ""),
                  visibility="visible", **({"diagnosis": diagnoses[n]} if n in (diagnoses or {}) else {}))
             for n, m in PARTS.items()]
    return dict(score=sum(t["score"] for t in tests), max_score=7.0, tests=tests, output="",
                extra_data=dict(student=student, assignment=A, notebook=A, notes=[], graded=True,
                                timestamp=timestamp, problem=problem))


def test_report_for_instructors(tmp_path):
    course = make_course(tmp_path / "course", "c.LateSubmissionPlugin.penalty_method = 'zero'\n")
    gradebook.release(course, A)
    due = datetime(2026, 3, 1, 12, 0)
    with gradebook.Gradebook(course.coursedir.db_url, course.coursedir.course_id) as gb:
        gb.update_or_create_assignment(A, duedate=due)
    (tmp_path / "roster.csv").write_text("id,first_name,last_name\nann,Ann,Lee\nbo,Bo,Ng\nnoshow,No,Show\n")
    gradebook.import_roster(course, tmp_path / "roster.csv")
    relu = "applies the ReLU before adding the shortcut, so the block can only add to its input"
    long = ("basic block: the output: relative error 3.2e-01 against the reference implementation (tolerance 1e-05); "
            "2 more quantities are off too")
    diagnosed = {"basic_block": f"Diagnosis: your code {relu}.\n{long}"}
    results = {
        "ann": result("ann", {"plain_block": 2, "remove_block": 2}, diagnosed, {"basic_block": relu},
                      (due - timedelta(hours=1)).isoformat()),
        "bo": result("bo", {"plain_block": 2, "remove_block": 2}, diagnosed, {"basic_block": relu},
                     (due + timedelta(hours=2, minutes=5)).isoformat()),  # late: the plugin's penalty is all
        "cy": result("cy", {"basic_block": 3, "remove_block": 2}, {"plain_block": "plain block: wrong shape"},
                     {"plain_block": "forgets the second BatchNorm"}),  # not on the roster
        "dee": result("dee", PARTS),
    }
    results["ann"]["tests"][2].update(score=0.0, status="failed", flagged=["imports reslab.models"],
                                      output="flagged for manual grading")
    results["ann"]["score"] = 2.0
    for student, r in results.items():
        folder = course.path("autograded", student, A)
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(r))
        (folder / f"{A}.ipynb").write_text(json.dumps(new_notebook()))
        gradebook.record(course, r)
    empty = course.path("autograded", "eve", A)  # a submission that could not be graded
    empty.mkdir(parents=True)
    (empty / "results.json").write_text(json.dumps(result("eve", {}, problem="the submission folder is empty")))
    write_feedback(course, A, ["bo"])

    page = write_report(course, A, tmp_path / "report").read_text()
    # counts that add up: submitted = graded + could not be graded + errors; the no-show is counted apart
    assert ("6 students: <b>5 submitted</b> = 4 graded (1 with full marks, 1 flagged for manual grading) + "
            "1 that could not be graded + 0 grader errors; <b>1 not submitted</b>") in page
    # full reasons with their diagnosis, never cut; misconceptions ranked by how many students hold them
    assert f"<td>{long} Diagnosis: your code {relu}.</td><td>2</td>" in page
    ranked = page.index(f"<td>{relu}</td><td>2</td>")
    assert ranked < page.index("<td>forgets the second BatchNorm</td><td>1</td>")
    # the late submission, with the penalty of nbgrader's plugin; students by id, names where known
    assert "<td>bo</td><td>2026-03-01T14:05:00</td><td>2 h 05 min</td><td>4</td>" in page
    assert "<td>cy</td><td>(not in the roster)</td><td>graded</td><td>5</td>" in page
    assert "None, None" not in page and "<td>None" not in page
    assert "<td>bo</td><td>Bo Ng</td><td>graded</td><td>0</td>" in page  # 4 points, all taken by the penalty
    assert "<td>noshow</td><td>No Show</td><td>not submitted</td>" in page
    assert f"<a href='../course/feedback/bo/{A}/{A}.html'>feedback</a>" in page
    totals, _ = export(course, tmp_path / "grades.csv")
    with Gradebook(course.coursedir.db_url, course.coursedir.course_id) as gb:
        maximum = gb.find_assignment(A).max_score  # 7 autograded points and the written answer's
    assert maximum > 7
    # the written answer waits for a person: every graded submission needs manual grading
    assert f"{A},bo,0.0,{maximum},yes,2026-03-01T14:05:00,yes,7500,4.0" in totals.read_text()
