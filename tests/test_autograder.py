"""The trusted grader against adversarial submissions: one sandboxed batch (--jobs 2), exact outcomes.

The course lives under /var/tmp, outside the sandbox's private /tmp, so hiding the gradebook, the solutions
and the other students really depends on the sandbox's mounts.
"""
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from adversarial.cases import ASSIGNMENT, CASES, DETACHED_MARKER, SLEEPS
from nbgrader.api import Gradebook

from autograder import grade_assignment, gradebook
from autograder.grading import time_solution
from autograder.notebook import solve
from autograder.course import Course
from autograder.export import export
from autograder.feedback import write_feedback
from autograder.report import write_report
from reslab import checks

REPO = Path(__file__).resolve().parents[1]
POINTS = {p.name: p.points for p in checks.parts_for(ASSIGNMENT)}
WRITTEN = "interpretation"  # the assignment's manually graded written answer (not a check)
BY_NAME = {case.name: case for case in CASES}
FIRST_UID = 63000
SOLUTION_FACTOR = 10  # a submission may run 10 times as long as the solution, plus one cell's limit


def cli(course, *args, env=None):
    return subprocess.run([sys.executable, "-m", "autograder", "--course-dir", str(course), *args],
                          capture_output=True, text=True, timeout=600, cwd=REPO, env=env)


def evidence(course: Path, student: str) -> dict:
    nb = nbformat.read(course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            for line in out.get("text", "").splitlines():
                if line.startswith("EVIDENCE "):
                    return json.loads(line.removeprefix("EVIDENCE "))
    raise AssertionError(f"{student} printed no evidence")


def sandbox_processes() -> list[str]:
    """Host processes that belong to a sandbox (its uids) or carry the detached children's marker."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        uid = int(status.split("Uid:")[1].split()[0])
        if FIRST_UID <= uid < FIRST_UID + 100 or (DETACHED_MARKER in cmdline and pid != str(os.getpid())):
            found.append(f"{pid} uid={uid} {cmdline}")
    return found


@pytest.fixture(scope="module")
def course():
    root = Path(tempfile.mkdtemp(prefix="autograder-test-", dir="/var/tmp"))
    shutil.copytree(REPO / "solutions" / ASSIGNMENT, root / "source" / ASSIGNMENT)  # the solution's timing goes there
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'adversarial'\nc.Autograder.timeouts = {'a06_scaling': 6}\n"
        f"c.Autograder.first_uid = {FIRST_UID}\nc.Autograder.solution_factor = {SOLUTION_FACTOR}\n")
    yield root
    shutil.rmtree(root)


def solve_release(course: Path):
    """(the solved release notebook, the source notebook's path) of the course's assignment."""
    layout = Course(course)
    source = layout.source_notebook(ASSIGNMENT)
    return solve(gradebook.release(layout, ASSIGNMENT), source), source


def write_submissions(course: Path, server: socket.socket) -> None:
    """Every adversarial submission in course/submitted/."""
    layout = Course(course)
    solved, source = solve_release(course)
    targets = {"source": str(source), "source_real": str(source.resolve()), "gradebook": str(course / "gradebook.db"),
               "submitted": str(course / "submitted"), "grader": str(REPO / "autograder" / "grading.py"),
               "key": str(REPO / "autograder" / "key" / f"{ASSIGNMENT}.py"),
               "course": str(course), "library": str(REPO / "reslab"), "host_port": server.getsockname(),
               "solutions": str(source.parent), "classmate": str(course / "submitted" / "correct" / ASSIGNMENT),
               "classmate_student": str(course / "submitted" / "correct")}
    for case in CASES:
        case.write(layout.path("submitted", case.name, ASSIGNMENT), solved, source, targets)


def check_outcome(results: dict, case) -> None:
    """The exact score, status and reason of every part, and the notes the case expects."""
    assert results["extra_data"]["graded"], results["output"]
    tests = {t["name"]: t for t in results["tests"]}
    assert set(tests) == set(POINTS)
    for name, test in tests.items():
        if name in case.passed:
            assert (test["score"], test["status"]) == (POINTS[name], "passed"), test
        else:
            assert (test["score"], test["status"]) == (0, "failed"), test
            assert case.messages.get(name, "") in test["output"], test
    assert results["score"] == sum(POINTS[name] for name in case.passed)
    assert results["max_score"] == sum(POINTS.values())
    for note in case.notes:
        assert any(note in n for n in results["extra_data"]["notes"]), results["extra_data"]["notes"]


@pytest.fixture(scope="module")
def batch(course):
    """Write every adversarial submission, grade them all at once, return (results, seconds)."""
    solution, solution_seconds = time_solution(course, ASSIGNMENT)  # as `python -m autograder release` does
    assert solution["score"] == solution["max_score"] == sum(POINTS.values())
    with socket.create_server(("127.0.0.1", 0)) as server:
        write_submissions(course, server)
        started = time.monotonic()
        results = grade_assignment(course, ASSIGNMENT, jobs=2)
        seconds = time.monotonic() - started
    print(f"graded {len(CASES)} adversarial submissions in {seconds:.1f} s (solution: {solution_seconds:.1f} s)")
    return results, seconds, solution_seconds


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_exact_outcome(batch, case):
    check_outcome(batch[0][case.name], case)


def test_nothing_secret_is_visible(batch, course):
    seen = evidence(course, "look_around")
    for name in ("source", "source_real", "gradebook", "submitted", "grader"):
        assert seen[name] == {"error": "FileNotFoundError"}, name
    assert seen["course"] == {"listing": []}
    assert FIRST_UID <= seen["uid"] < FIRST_UID + 100  # locked for this run: other runs take others
    assert len(seen["processes"]) <= 4  # the sandbox's init, its placeholder, the kernel (and ps-like children)
    assert not any("KEY" in var or "TOKEN" in var or "SECRET" in var for var in seen["environment"])


def test_the_answer_key_is_out_of_reach(batch, course):
    """Inside the sandbox the key can be neither imported nor read, and the student's side has no reference."""
    seen = evidence(course, "answer_key")
    assert seen == {"import_key": "ModuleNotFoundError", "import_key_module": "ModuleNotFoundError",
                    "read_key": "FileNotFoundError", "reference_in_checks": False}, seen


def test_flagged_parts_await_the_instructor_with_the_reason(batch, course):
    results = batch[0]["library_wrappers"]
    flags = {t["name"]: t["flagged"] for t in results["tests"]}
    assert any("partial" in r or "BasicBlock" in r for r in flags["scaled_block"]), flags
    assert any("__new__" in r for r in flags["rezero_block"]) and any("__code__" in r for r in flags["layerscale_block"])
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "adversarial") as gb:
        for part in POINTS:
            grade = gb.find_grade(part, ASSIGNMENT, ASSIGNMENT, "library_wrappers")
            assert grade.needs_manual_grade and grade.auto_score == 0
            comment = gb.find_comment(f"{part}_solution", ASSIGNMENT, ASSIGNMENT, "library_wrappers")
            assert comment.auto_comment.startswith("Flagged for manual grading: its solution cell")
            honest = gb.find_grade(part, ASSIGNMENT, ASSIGNMENT, "correct")
            assert not honest.needs_manual_grade and honest.auto_score == POINTS[part]


def test_nothing_can_be_written(batch, course):
    seen = evidence(course, "tamper")
    assert "done" not in seen.values(), seen
    assert not (course / "pwned.txt").exists() and not (REPO / "reslab" / "pwned.py").exists()
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "adversarial") as gb:
        assert all(grade.manual_score is None for s in gb.assignment_submissions(ASSIGNMENT)
                   for nb in s.notebooks for grade in nb.grades)


def test_sandbox_folders_cannot_be_swapped_for_links(batch, course):
    seen = evidence(course, "swap_links")
    assert seen == {"rename_work": "PermissionError", "rename_kernel": "PermissionError",
                    "link_in_kernel": "PermissionError", "remove_socket": "PermissionError"}, seen


def test_no_network(batch, course):
    seen = evidence(course, "network")
    assert seen["internet"] != "connected" and seen["host"] != "connected", seen


def test_every_process_dies_with_its_sandbox(batch):
    assert sandbox_processes() == []


def test_memory_and_output_are_capped(batch, course):
    hog = nbformat.read(course / "autograded" / "memory_bomb" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    assert any(out.get("ename") == "MemoryError" for cell in hog.cells for out in cell.get("outputs", []))
    graded = course / "autograded" / "huge_output" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert graded.stat().st_size < 1_000_000 and "[autograder: output truncated]" in graded.read_text()


def test_gradebook_holds_every_score(batch, course):
    results = batch[0]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "adversarial") as gb:
        for student, result in results.items():
            submission = gb.find_submission(ASSIGNMENT, student)
            assert submission.score == result["score"], student
            grades = {g.name: g.auto_score for nb in submission.notebooks for g in nb.grades}
            assert grades.pop(WRITTEN) is None, student  # the written answer waits for a person
            assert grades == {t["name"]: t["score"] for t in result["tests"]}, student


def test_rerun_is_idempotent_and_cli_exits_zero(batch, course):
    before = {s: batch[0][s]["score"] for s in ("correct", "invalid_json", "os_exit")}
    run = cli(course, "grade", ASSIGNMENT, *[arg for s in before for arg in ("--student", s)], "--jobs", "2")
    assert run.returncode == 0, run.stderr
    for student, score in before.items():
        assert f"{student}: {score:g}/8" in run.stdout
        again = json.loads((course / "autograded" / student / ASSIGNMENT / "results.json").read_text())
        assert again["score"] == score
    db = sqlite3.connect(course / "gradebook.db")
    assert db.execute("SELECT COUNT(*) FROM submitted_assignment").fetchone()[0] == len(CASES)
    assert db.execute("SELECT COUNT(*) FROM grade").fetchone()[0] == len(CASES) * (len(POINTS) + 1)  # + written


def test_feedback_never_shows_hidden_checks(batch, course):
    written = write_feedback(Course(course), ASSIGNMENT)
    assert len(written) == len(CASES)
    source = nbformat.read(REPO / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    hidden = [line.strip() for cell in source.cells for line in
              cell.source.partition("### BEGIN HIDDEN TESTS")[2].partition("### END HIDDEN TESTS")[0].splitlines()
              if line.strip()]
    check_code = [line.strip() for path in [*Path(checks.__file__).parent.glob("*.py"), *(REPO / "autograder" / "key").glob("*.py")]
                  for line in path.read_text().splitlines() if len(line.strip()) > 30]
    assert hidden and check_code
    for page in written:
        text = page.read_text()
        assert "HIDDEN TESTS" not in text, page
        assert not any(line in text for line in hidden), page
        assert not any(line in text for line in check_code), page
    wrong = (course / "feedback" / "edited_tests" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "5 / 8 points" in wrong and "relative error" in wrong
    assert "CheckFailed" in wrong and "reslab/checks/" not in wrong  # the visible check failed, without our frames


def test_export_and_report(batch, course, tmp_path):
    layout = Course(course)
    totals, parts = export(layout, tmp_path / "grades.csv")
    assert len(totals.read_text().splitlines()) == 1 + len(CASES)
    assert len(parts.read_text().splitlines()) == 1 + len(CASES) * (len(POINTS) + 1)  # + the written answer
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "adversarial") as gb:
        maximum = gb.find_assignment(ASSIGNMENT).max_score
    assert maximum > sum(POINTS.values())  # the written answer's points count, graded by a person
    assert f"correct,8.0,{maximum},yes" in totals.read_text()
    page = write_report(layout, ASSIGNMENT, tmp_path / "report")
    assert (tmp_path / "report" / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "report" / "failures.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    graded = [s for s, r in batch[0].items() if r["extra_data"]["graded"] and not r["extra_data"]["problem"]]
    failed = sum(BY_NAME[s].passed.count("scaled_block") == 0 for s in graded) / len(graded)  # not submitted: apart
    assert f"<td>scaled_block</td><td>{100 * failed:.0f}%</td>" in page.read_text()


def test_refuses_without_bubblewrap_unless_told(course):
    run = cli(course, "grade", ASSIGNMENT, "--student", "correct", env={"PATH": "/nonexistent"})
    assert run.returncode == 2 and "--unsandboxed" in run.stderr


def test_unsandboxed_mode_grades_the_same(batch, course):
    results = grade_assignment(course, ASSIGNMENT, ["correct_too"], jobs=1, sandboxed=False)
    assert results["correct_too"]["score"] == 8


def test_tmp_has_an_inode_limit(batch, course):
    seen = evidence(course, "many_files")
    assert seen["error"] == "No space left on device", seen
    assert 15_000 < seen["files"] < Course(course).settings.tmp_inodes, seen  # and the part after it still passed


def test_a_submission_may_run_a_multiple_of_the_solutions_time(batch, course):
    """Sleeping just under the cell limit in every cell costs the class a few times the solution's run time."""
    limit = Course(course).limits(ASSIGNMENT).submission_timeout
    assert limit == pytest.approx(min(900, SOLUTION_FACTOR * batch[2] + 6), abs=0.1)
    assert batch[0]["sleepy"]["execution_time"] < limit + 10 < SLEEPS * 5
    assert json.loads(Course(course).timing_file(ASSIGNMENT).read_text())["solution_seconds"] == round(batch[2], 2)
