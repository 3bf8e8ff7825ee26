"""Grading on a Dask cluster (a LocalCluster of two worker processes): the same results as grading here, every
grade written once when a worker dies mid-batch, the same limits for a submission that hangs, and no Dask
import without --scheduler."""
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest
from adversarial.cases import ASSIGNMENT, CASES, Case
from autograder.notebook import solve
from distributed import Client, LocalCluster

from autograder import grade_assignment, gradebook, grading
from autograder.__main__ import main
from autograder.course import Course

REPO = Path(__file__).resolve().parents[1]
FIRST_UID = 62400  # apart from test_autograder's range: both may run at once
CELL_LIMIT = 6
SLOW = Case("slow_but_right", after={"setup": "import time\ntime.sleep(4)\n", "scaled_block": "time.sleep(4)\n"})
CHOSEN = [c for c in CASES if c.name in ("correct", "edited_tests", "sigint_ignored", "os_exit", "invalid_json")] + [SLOW]


def sandbox_processes() -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            uid = int(Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0])
        except OSError:
            continue
        if FIRST_UID <= uid < FIRST_UID + 100:
            found.append(pid)
    return found


def graded_files(course: Path) -> dict[str, str]:
    return {str(p.relative_to(course)): p.read_text() for p in sorted((course / "autograded").rglob("*")) if p.is_file()}


def comparable(notebook: str) -> str:
    """A graded notebook without what differs between any two runs, local ones too: object addresses in
    outputs and the fresh ids of the student's own cells."""
    return re.sub(r'0x[0-9a-f]+|"id": "[0-9a-f]{8}"', "", notebook)


def without_times(results: dict) -> dict:
    return {student: {k: v for k, v in r.items() if k != "execution_time"} for student, r in results.items()}


@pytest.fixture(scope="module")
def course():
    root = Path(tempfile.mkdtemp(prefix="autograder-cluster-", dir="/var/tmp"))
    (root / "source").symlink_to(REPO / "solutions")
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'cluster'\n"
        f"c.Autograder.timeouts = {{'{ASSIGNMENT}': {CELL_LIMIT}}}\nc.Autograder.first_uid = {FIRST_UID}\n")
    layout = Course(root)
    solved = solve(gradebook.release(layout, ASSIGNMENT), layout.source_notebook(ASSIGNMENT))
    for case in CHOSEN:
        case.write(layout.path("submitted", case.name, ASSIGNMENT), solved, layout.source_notebook(ASSIGNMENT), {})
    yield root
    shutil.rmtree(root)


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local


@pytest.fixture(scope="module")
def both(course, cluster):
    """The batch graded here, then on the cluster, with the same secret seed: (results, files, seconds) each."""
    runs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(grading.secrets, "randbits", lambda bits: 0x5EED)
        for where, scheduler in (("local", None), ("cluster", cluster.scheduler_address)):
            started = time.monotonic()
            results = grade_assignment(course, ASSIGNMENT, jobs=2, scheduler=scheduler)
            runs[where] = results, graded_files(course), time.monotonic() - started
    print({where: f"{run[2]:.1f} s" for where, run in runs.items()})
    return runs


def test_cluster_grades_as_this_machine_does(both):
    (local, local_files, _), (remote, remote_files, _) = both["local"], both["cluster"]
    assert set(remote) == {c.name for c in CHOSEN}
    assert without_times(remote) == without_times(local)
    assert remote_files.keys() == local_files.keys()
    notebooks = [k for k in local_files if k.endswith(".ipynb")]
    assert len(notebooks) == len(CHOSEN) - 1  # all but the invalid JSON
    assert {k: comparable(remote_files[k]) for k in notebooks} == {k: comparable(local_files[k]) for k in notebooks}
    assert remote["correct"]["score"] == remote["correct"]["max_score"] > 0
    assert remote["edited_tests"]["score"] < 8 and "is not valid JSON" in remote["invalid_json"]["output"]


def test_a_hanging_submission_keeps_the_local_limits(both):
    hung = both["cluster"][0]["sigint_ignored"]
    assert any(f"ran past the time limit of {CELL_LIMIT:g} s and ignored the interrupt" in n
               for n in hung["extra_data"]["notes"]), hung["extra_data"]["notes"]
    assert hung["execution_time"] < 4 * CELL_LIMIT + 20  # its time-outs, not forever
    assert sandbox_processes() == []


def test_a_lost_worker_still_yields_every_grade_once(course, cluster, both, monkeypatch):
    written = collections.Counter()
    record = gradebook.record
    monkeypatch.setattr(gradebook, "record", lambda c, results: (written.update([results["extra_data"]["student"]]),
                                                                 record(c, results)))
    students = ["correct", "invalid_json", SLOW.name]
    out = {}
    grader = threading.Thread(target=lambda: out.update(
        grade_assignment(course, ASSIGNMENT, students, scheduler=cluster.scheduler_address)))
    grader.start()
    killed = None
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        deadline = time.monotonic() + 120
        while killed is None and time.monotonic() < deadline:
            executing = client.run(lambda dask_worker: [str(ts.key) for ts in dask_worker.state.executing])
            for address, keys in executing.items():
                if any(SLOW.name in key for key in keys):
                    killed = client.run(os.getpid, workers=[address])[address]
                    os.kill(killed, signal.SIGKILL)
                    break
            time.sleep(0.2)
        grader.join(300)
    assert killed is not None, "the slow submission never ran"
    assert written == {student: 1 for student in students}
    reference = without_times(both["cluster"][0])
    assert without_times(out) == {s: reference[s] for s in students}  # the rerun graded it just the same
    time.sleep(1)
    assert sandbox_processes() == []


def test_without_scheduler_dask_is_not_imported(course):
    code = ("import sys\nfrom autograder.__main__ import main\n"
            f"rc = main(['--course-dir', {str(course)!r}, 'grade', {ASSIGNMENT!r}, '--student', 'invalid_json'])\n"
            "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    # exit 1: the one submission asked for is unreadable, so nothing was graded; and no Dask module loaded
    assert done.stdout.strip().splitlines()[-1] == "1 []", done.stdout + done.stderr


def test_jobs_and_scheduler_together_are_a_usage_error(course, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--course-dir", str(course), "grade", ASSIGNMENT, "--scheduler", "tcp://127.0.0.1:1", "--jobs", "2"])
    assert stopped.value.code == 2 and "--jobs is for grading on this machine" in capsys.readouterr().err
