"""The exercises end to end with nbgrader itself: the committed release is exactly what generate_assignment
makes of solutions/; every solution scores full marks and every untouched release 0 under stock
`nbgrader autograde` and in the trusted grader; in the trusted grader every classic mistake of
tests/exercise_variants loses exactly its part and every valid alternative gets full marks; nbgrader's
Validate (what the JupyterLab extension's button runs) passes on a solved notebook. Every assignment ends with
an experiment and a written answer that a person grades with the rubric in solutions/: the release asks the
question without the answer, the grader leaves it for manual grading, its points count in the gradebook and
the feedback shows it; the blocks' pictures in the task text are the library's, drawn now."""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.validator import Validator

import autograder
from autograder.course import Course
from autograder.feedback import write_feedback
from exercise_variants import ROOT, grade_id, read, submissions
from reslab.checks import ASSIGNMENTS, parts_for

BIN = Path(sys.executable).parent  # nbgrader runs alembic from here
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # the notebooks' tensors are tiny: one thread each is fastest
WRITTEN = "interpretation"  # every assignment's written answer (a graded markdown solution cell)
ANSWER = "My answer, with the numbers my run printed: {}."  # what the solution's student writes there


def written_points(assignment: str) -> float:
    return next(c for c in read("solutions", assignment).cells if grade_id(c) == WRITTEN).metadata.nbgrader["points"]


def answered(assignment: str, notebook):
    """``notebook`` with the written question answered."""
    for cell in notebook.cells:
        if grade_id(cell) == WRITTEN:
            cell.source = ANSWER.format(assignment)
    return notebook


def make_course(root: Path) -> Path:
    """A course directory with the repository's nbgrader configuration and solutions/ as its source."""
    shutil.copy(ROOT / "nbgrader_config.py", root)
    (root / "autograder").mkdir()
    shutil.copy(ROOT / "autograder" / "nbgrader_config.py", root / "autograder")
    shutil.copytree(ROOT / "solutions", root / "solutions", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return root


def nbgrader(root: Path, *args: str) -> None:
    env = {**os.environ, **ONE_THREAD, "AUTOGRADER_ALLOW_STOCK_AUTOGRADE": "1",  # the unprotected mode
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def submit(root: Path, assignment: str, student: str, notebook) -> None:
    folder = root / "submitted" / student / assignment
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / f"{assignment}.ipynb")


def files(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def stock(tmp_path_factory):
    """A course whose release nbgrader generated afresh, then autograded (stock) for the solution and the
    untouched release of every assignment."""
    root = make_course(tmp_path_factory.mktemp("stock"))
    nbgrader(root, "generate_assignment", "*", "--force")
    for assignment in ASSIGNMENTS:
        for submission in submissions(assignment)[:2]:  # the solution, the untouched release
            submit(root, assignment, submission.student, submission.notebook(assignment))
    nbgrader(root, "autograde", "*", "--force")
    return root


def test_committed_release_is_what_nbgrader_generates(stock):
    generated, committed = files(stock / "exercises"), files(ROOT / "exercises")
    assert sorted(committed) == sorted(generated)
    stale = [name for name in generated if committed[name] != generated[name]]
    assert not stale, (f"exercises/ is not what nbgrader generates from solutions/ ({stale}): run "
                       "`python scripts/release_assignments.py` at the repository root")


def test_stock_autograde_gives_solutions_full_marks_and_releases_none(stock):
    with Gradebook(f"sqlite:///{stock / 'gradebook.db'}") as gradebook:
        for assignment in ASSIGNMENTS:
            total = sum(c.points for c in parts_for(assignment))
            assert gradebook.find_assignment(assignment).max_score == total + written_points(assignment)
            assert gradebook.find_submission(assignment, "solution").score == total, assignment
            assert gradebook.find_submission(assignment, "release").score == 0, assignment


@pytest.fixture(scope="module")
def trusted(tmp_path_factory):
    """The course and every submission of tests/exercise_variants graded by the trusted grader (sandboxed);
    the solution's student has answered the written question."""
    root = make_course(tmp_path_factory.mktemp("trusted"))
    graded = {}
    for assignment in ASSIGNMENTS:
        for submission in submissions(assignment):
            notebook = submission.notebook(assignment)
            submit(root, assignment, submission.student,
                   answered(assignment, notebook) if submission.student == "solution" else notebook)
        graded[assignment] = autograder.grade_assignment(root, assignment, jobs=2)
    return root, graded


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_trusted_grader_scores_every_part_as_expected(trusted, assignment):
    for submission in submissions(assignment):
        tests = trusted[1][assignment][submission.student]["tests"]
        scores = {test["name"]: test["score"] for test in tests}
        assert scores == submission.expected, (submission.student, submission.about,
                                               {test["name"]: test["output"] for test in tests})


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_validate_passes_on_a_solved_notebook(tmp_path, monkeypatch, assignment):
    monkeypatch.setenv("OMP_NUM_THREADS", ONE_THREAD["OMP_NUM_THREADS"])  # for the kernel it starts
    path = tmp_path / f"{assignment}.ipynb"
    nbformat.write(answered(assignment, submissions(assignment)[0].notebook(assignment)), path)
    assert Validator().validate(str(path)) == {}


def test_validate_reminds_the_student_of_the_written_answer(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", ONE_THREAD["OMP_NUM_THREADS"])
    path = tmp_path / "a01_cnn_basics.ipynb"
    nbformat.write(submissions("a01_cnn_basics")[0].notebook("a01_cnn_basics"), path)  # parts solved, not answered
    failed = Validator().validate(str(path))["failed"]
    assert [(f["source"], f["error"]) for f in failed] == [("YOUR ANSWER HERE", "You did not provide a response.")]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_trusted_grader_leaves_the_written_answer_to_a_person(trusted, assignment):
    """The grader runs the experiment, gives the written answer no score and marks it for manual grading; its
    points are in the gradebook's maximum, a manual score counts in the total (what formgrader writes), and the
    feedback page shows the question and the student's answer."""
    root, graded = trusted
    auto, written = sum(c.points for c in parts_for(assignment)), written_points(assignment)
    assert WRITTEN not in {t["name"] for t in graded[assignment]["solution"]["tests"]}
    ran = nbformat.read(root / "autograded" / "solution" / assignment / f"{assignment}.ipynb", as_version=4)
    experiment = next(c for c in ran.cells if grade_id(c) == "experiment")
    assert experiment.outputs and all(o.output_type == "stream" for o in experiment.outputs), experiment.outputs
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        assert gradebook.find_assignment(assignment).max_score == auto + written
        for submission in submissions(assignment):
            grade = gradebook.find_grade(WRITTEN, assignment, assignment, submission.student)
            assert (grade.auto_score, grade.needs_manual_grade, grade.max_score) == (None, True, written)
        grade = gradebook.find_grade(WRITTEN, assignment, assignment, "solution")
        grade.manual_score = written / 2
        gradebook.db.commit()
        assert gradebook.find_submission(assignment, "solution").score == auto + written / 2
    page = write_feedback(Course(root), assignment, ["solution"])[0].read_text()
    assert ANSWER.format(assignment) in page and "graded by a person" in page


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_assignment_has_an_experiment_and_a_written_task_with_a_rubric(assignment):
    """Part 4: a locked experiment cell, then one markdown answer cell graded by a person, with points, a model
    answer and a rubric whose points add up to the cell's; the header counts them."""
    cells = read("solutions", assignment).cells
    manual = [c for c in cells if c.metadata.get("nbgrader", {}).get("grade") and c.metadata.nbgrader.get("solution")]
    assert [grade_id(c) for c in manual] == [WRITTEN]
    answer = manual[0]
    points = answer.metadata.nbgrader["points"]
    assert answer.cell_type == "markdown" and points > 0
    solution = answer.source.split("### BEGIN SOLUTION\n")[1].split("### END SOLUTION")[0]
    assert "**Model answer.**" in solution and f"**Rubric ({points:g} points).**" in solution
    assert sum(float(p) for p in re.findall(r"^- (\d+(?:\.\d+)?) points?:", solution, re.M)) == points
    task, experiment = cells[cells.index(answer) - 2:cells.index(answer)]
    assert experiment.cell_type == "code" and grade_id(experiment) == "experiment"
    assert experiment.metadata.nbgrader["locked"] and not experiment.metadata.nbgrader["grade"]
    heading = f"({points:g} points, graded by a person)"
    assert heading in task.source and "Run the cell below" in task.source
    assert heading in " ".join(cells[0].source.split())  # the header counts it


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_release_asks_the_written_question_without_its_answer(assignment):
    released = read("exercises", assignment)
    answer = next(c for c in released.cells if grade_id(c) == WRITTEN)
    assert answer.source.strip() == "YOUR ANSWER HERE"
    text = "\n".join(c.source for c in released.cells)
    assert not any(word in text for word in ("Model answer", "Rubric", "BEGIN SOLUTION")), assignment
    assert "graded by a person" in text


def test_task_pictures_are_the_library_blocks_drawn_now():
    """The pictures in the task text are the library's reference blocks as drawn now (diagram <-> module), in
    the sources and, unchanged, in the release."""
    spec = importlib.util.spec_from_file_location("release_assignments", ROOT / "scripts" / "release_assignments.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    wanted = script.attachments()
    assert set(wanted) == {a for a in ASSIGNMENTS if a >= "a03"}
    assert not script.stale(wanted), "run `python scripts/release_assignments.py`"
    for assignment, cells in wanted.items():
        released = {grade_id(c): c for c in read("exercises", assignment).cells}
        for cell, attached in cells.items():
            assert released[cell].get("attachments") == attached, (assignment, cell)
