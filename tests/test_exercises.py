"""The exercises end to end with nbgrader itself: the committed release is exactly what generate_assignment
makes of solutions/; every solution scores full marks and every untouched release 0 under stock
`nbgrader autograde` and in the trusted grader; in the trusted grader every classic mistake of
tests/exercise_variants loses exactly its part and every valid alternative gets full marks; nbgrader's
Validate (what the JupyterLab extension's button runs) passes on a solved notebook."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.validator import Validator

import autograder
from exercise_variants import ROOT, submissions
from reslab.checks import ASSIGNMENTS, checks_for

BIN = Path(sys.executable).parent  # nbgrader runs alembic from here
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # the notebooks' tensors are tiny: one thread each is fastest


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
                       "`nbgrader generate_assignment '*' --force` at the repository root")


def test_stock_autograde_gives_solutions_full_marks_and_releases_none(stock):
    with Gradebook(f"sqlite:///{stock / 'gradebook.db'}") as gradebook:
        for assignment in ASSIGNMENTS:
            total = sum(c.points for c in checks_for(assignment))
            assert gradebook.find_submission(assignment, "solution").score == total, assignment
            assert gradebook.find_submission(assignment, "release").score == 0, assignment


@pytest.fixture(scope="module")
def trusted(tmp_path_factory):
    """Every submission of tests/exercise_variants graded by the trusted grader (sandboxed)."""
    root = make_course(tmp_path_factory.mktemp("trusted"))
    graded = {}
    for assignment in ASSIGNMENTS:
        for submission in submissions(assignment):
            submit(root, assignment, submission.student, submission.notebook(assignment))
        graded[assignment] = autograder.grade_assignment(root, assignment, jobs=2)
    return graded


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_trusted_grader_scores_every_part_as_expected(trusted, assignment):
    for submission in submissions(assignment):
        tests = trusted[assignment][submission.student]["tests"]
        scores = {test["name"]: test["score"] for test in tests}
        assert scores == submission.expected, (submission.student, submission.about,
                                               {test["name"]: test["output"] for test in tests})


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_validate_passes_on_a_solved_notebook(tmp_path, monkeypatch, assignment):
    monkeypatch.setenv("OMP_NUM_THREADS", ONE_THREAD["OMP_NUM_THREADS"])  # for the kernel it starts
    path = tmp_path / f"{assignment}.ipynb"
    nbformat.write(submissions(assignment)[0].notebook(assignment), path)
    assert Validator().validate(str(path)) == {}
