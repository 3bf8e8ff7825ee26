"""Sandboxed grading as an ordinary user (unprivileged user namespaces), and two graders at once.

CI runs as root, so the test makes the ordinary user itself, and an environment that user can run: a venv of
Debian's /usr/bin/python3 (the pyenv interpreter under /root is not executable for others) that reads this
environment's packages. The whole adversarial batch then runs as that user, with the same exact outcomes.
"""
import json
import os
import pwd
import shutil
import site
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import pytest
from adversarial.cases import ASSIGNMENT, CASES
from test_autograder import REPO, SOLUTION_FACTOR, check_outcome, evidence, write_submissions

USER = "autograder-instructor"
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def instructor():
    """(uid, gid, python) of an ordinary user who can run this project's code."""
    assert os.geteuid() == 0, "this test creates an ordinary user: run it as root (as CI does)"
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
    user = pwd.getpwnam(USER)
    venv = Path(tempfile.mkdtemp(prefix="autograder-venv-", dir="/var/tmp"))
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = subprocess.run([str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "project.pth").write_text(f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n")
    (venv / "bin/alembic").write_text(f"#!{venv}/bin/python\nfrom alembic.config import main\nmain()\n")
    (venv / "bin/alembic").chmod(0o755)
    os.chmod(venv, 0o755)
    yield user.pw_uid, user.pw_gid, str(venv / "bin/python")
    shutil.rmtree(venv)


def as_user(instructor, *argv, **kwargs):
    uid, gid, python = instructor
    env = {"PATH": f"{Path(python).parent}:/usr/bin:/bin", "HOME": pwd.getpwuid(uid).pw_dir, "LANG": "C.UTF-8"}
    return subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", python, *argv],
                            env=env, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def make_course(instructor, config: str = "") -> Path:
    root = Path(tempfile.mkdtemp(prefix="autograder-nonroot-", dir="/var/tmp"))
    shutil.copytree(REPO / "solutions" / ASSIGNMENT, root / "source" / ASSIGNMENT)  # the solution's timing goes there
    (root / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.course_id = 'nonroot'\n"
                                             "c.Autograder.timeouts = {'a06_scaling': 6}\n"
                                             f"c.Autograder.solution_factor = {SOLUTION_FACTOR}\n" + config)
    return root


def own(root: Path, instructor) -> None:
    subprocess.run(["chown", "-R", "--no-dereference", f"{instructor[0]}:{instructor[1]}", str(root)], check=True)


def grade(instructor, root: Path, *args: str) -> subprocess.Popen:
    return as_user(instructor, "-m", "autograder", "--course-dir", str(root), "grade", ASSIGNMENT, *args)


def results_of(root: Path, student: str) -> dict:
    return json.loads((root / "autograded" / student / ASSIGNMENT / "results.json").read_text())


@pytest.fixture(scope="module")
def batch(instructor):
    root = make_course(instructor)
    with socket.create_server(("127.0.0.1", 0)) as server:
        write_submissions(root, server)
        own(root, instructor)
        timing = as_user(instructor, "-c", "from autograder.grading import time_solution\n"
                         f"print(time_solution({str(root)!r}, {ASSIGNMENT!r})[1])")
        out, err = timing.communicate(timeout=600)
        assert timing.returncode == 0, err[-3000:]
        started = time.monotonic()
        run = grade(instructor, root, "--jobs", "2")
        out, err = run.communicate(timeout=900)
    print(f"graded {len(CASES)} adversarial submissions as an ordinary user in {time.monotonic() - started:.1f} s")
    assert run.returncode == 0, err[-3000:]
    yield root
    shutil.rmtree(root)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_exact_outcome_as_an_ordinary_user(batch, case):
    check_outcome(results_of(batch, case.name), case)


def test_same_guarantees_as_an_ordinary_user(batch, instructor):
    seen = evidence(batch, "look_around")
    for name in ("source", "source_real", "gradebook", "submitted", "grader"):
        assert seen[name] == {"error": "FileNotFoundError"}, name
    assert seen["course"] == {"listing": []} and seen["uid"] == instructor[0]
    assert len(seen["processes"]) <= 4  # its own pid namespace: no other sandbox, no host process
    network = evidence(batch, "network")
    assert network["internet"] != "connected" and network["host"] != "connected", network
    assert "done" not in evidence(batch, "tamper").values() and not (batch / "pwned.txt").exists()
    swapped = evidence(batch, "swap_links")  # the student owns the folders here, but they are mount points
    assert swapped["rename_work"] == swapped["rename_kernel"] == "OSError", swapped
    many = evidence(batch, "many_files")
    assert many["error"] == "No space left on device" and 15_000 < many["files"] < 20_000, many
    left = subprocess.run(["pgrep", "-u", str(instructor[0])], capture_output=True, text=True).stdout.split()
    assert left == [], left  # every process died with its sandbox


THREADS = """\
import threading, time
def _spin():
    time.sleep(60)
for _ in range(10_000):
    try:
        threading.Thread(target=_spin, daemon=True).start()
    except RuntimeError:
        break
"""


def test_two_graders_at_once_never_share_uids_or_limits(instructor):
    """Two courses graded at the same time, as root, with the same first_uid: one student there starts every
    thread the limit allows; the honest student here still gets full marks, and the uids differ."""
    from adversarial.cases import Case
    from test_autograder import solve_release
    roots = [make_course(instructor, "c.Autograder.first_uid = 64000\n") for _ in range(2)]
    honest, greedy = Case("honest", after={"setup": "import os\nprint('EVIDENCE {\"uid\": %d}' % os.getuid())\n"}), \
        Case("greedy", after={"setup": THREADS})
    try:
        for root in roots:
            solved, source = solve_release(root)
            for case in (honest, greedy):
                case.write(root / "submitted" / case.name / ASSIGNMENT, solved, source, {})
        runs = [subprocess.Popen([sys.executable, "-m", "autograder", "--course-dir", str(root), "grade", ASSIGNMENT,
                                  "--jobs", "2"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for root in roots]
        for run in runs:
            assert run.wait(timeout=600) == 0, run.stderr.read()[-3000:]
        uids = [evidence(root, "honest")["uid"] for root in roots]
        assert uids[0] != uids[1] and all(64000 <= uid < 64012 for uid in uids), uids
        for root in roots:
            assert results_of(root, "honest")["score"] == 8
    finally:
        for root in roots:
            shutil.rmtree(root)
