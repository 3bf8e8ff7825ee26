"""Issue 22, items 1 to 3, through the real grader (sandboxed, as root and as an ordinary user): the probe cannot
be redirected from a solution cell, and such tampering flags every part; the library's implementation running
during a part's check flags that part with the evidence, whatever the route to it; a01's "no convolution"
holds at torch's dispatcher. The submissions: tests/adversarial/probe_cases.py.
"""
import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from adversarial.probe_cases import A01, A01_CASES, A04, A04_CASES
from test_autograder_nonroot import as_user, instructor, own  # noqa: F401 (a fixture)

from autograder import grade_assignment, gradebook
from autograder.course import Course
from autograder.notebook import solve
from reslab import checks

REPO = Path(__file__).resolve().parents[1]
FIRST_UID = 62000
CASES = {A04: A04_CASES, A01: A01_CASES}


def make_course(assignment: str) -> Path:
    """A course under /var/tmp (outside the sandbox's /tmp) with every hostile submission of ``assignment``."""
    root = Path(tempfile.mkdtemp(prefix="probe-hardening-", dir="/var/tmp"))
    shutil.copytree(REPO / "solutions" / assignment, root / "source" / assignment)
    (root / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.course_id = 'probe'\n"
                                             f"c.Autograder.first_uid = {FIRST_UID}\n")
    layout = Course(root)
    source = layout.source_notebook(assignment)
    solved = solve(gradebook.release(layout, assignment), source)
    for case in CASES[assignment]:
        dataclasses.replace(case, filename=f"{assignment}.ipynb").write(
            layout.path("submitted", case.name, assignment), solved, source, {})
    return root


def check(assignment: str, results: dict, case) -> None:
    """Exact scores: the case's passed parts full marks and unflagged, every other part 0 with its message."""
    points = {p.name: p.points for p in checks.parts_for(assignment)}
    assert results["extra_data"]["graded"], results["output"]
    tests = {t["name"]: t for t in results["tests"]}
    for name, test in tests.items():
        if name in case.passed:
            assert (test["score"], test["status"], test.get("flagged")) == (points[name], "passed", None), test
        else:
            assert (test["score"], test["status"]) == (0, "failed"), test
            assert case.messages.get(name, "") in test["output"], test
    assert results["score"] == sum(points[name] for name in case.passed)


@pytest.fixture(scope="module", params=[A04, A01])
def as_root(request):
    root = make_course(request.param)
    try:
        yield request.param, grade_assignment(root, request.param, jobs=2)
    finally:
        shutil.rmtree(root)


@pytest.fixture(scope="module", params=[A04, A01])
def as_ordinary_user(request, instructor):  # noqa: F811
    root = make_course(request.param)
    own(root, instructor)
    try:
        run = as_user(instructor, "-m", "autograder", "--course-dir", str(root), "grade", request.param,
                      "--jobs", "2")
        _, err = run.communicate(timeout=900)
        assert run.returncode == 0, err[-3000:]
        yield request.param, {case.name: json.loads((root / "autograded" / case.name / request.param /
                                                     "results.json").read_text()) for case in CASES[request.param]}
    finally:
        shutil.rmtree(root)


def check_all(assignment: str, results: dict) -> None:
    wrong = []
    for case in CASES[assignment]:
        try:
            check(assignment, results[case.name], case)
        except AssertionError as err:
            wrong.append(f"{case.name}: {err}")
    assert not wrong, "\n\n".join(wrong)


def test_every_hostile_submission_as_root(as_root):
    check_all(*as_root)


def test_every_hostile_submission_as_an_ordinary_user(as_ordinary_user):
    check_all(*as_ordinary_user)
