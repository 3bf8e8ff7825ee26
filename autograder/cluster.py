"""Grading on a Dask cluster (``grade --scheduler ADDRESS``): one task per submission, written here.

Imported only then. Each task runs ``grading.grade_one`` on a worker, in a sandbox of that worker, exactly as
a local job does, and returns plain data (the results.json dict, the executed notebook as JSON text); this
process stays the only writer of ``autograded/`` and of the gradebook. Workers need root, bubblewrap, this
environment and the course directory at the same paths (a shared filesystem).

What crosses the network: the plan, once per run (the release notebook, the check inputs drawn from this
run's secret seed), to the worker processes that grade; they need the inputs to grade, and the sandboxes they
start never see them (the kernels are forked from a fork server that never holds them, and the worker's
Dask folders are hidden like the course). Use ``tls://`` between the machines. A task whose worker dies is
run again elsewhere by the scheduler; a submission's grade depends only on the plan and the submission, so
running it twice gives the same result, and each is written once.
"""
from __future__ import annotations

import os
import pickle
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import cloudpickle
import nbformat
from distributed import Client, as_completed, get_worker

from .grading import Graded, Plan, failed, grade_one, preload, write_all
from .sandbox import Kernel, SandboxError, Settings, Uids, Zygote, bubblewrap

_lock = threading.Lock()
_runs: dict[str, tuple[Zygote, str]] = {}  # in a worker process: run -> (its fork server, a scratch folder)
_uids: list = []  # this worker process's kernel uids (sandbox.Uids), held until the process ends


def _kernel(plan: Plan, run: str, modules: list[str], sandboxed: bool) -> Kernel:
    """A fresh sandboxed kernel on this worker, from the run's fork server (started by its first task)."""
    worker = get_worker()
    with _lock:
        if run not in _runs:
            scratch = tempfile.mkdtemp(prefix="autograder-")
            (Path(scratch) / "empty").touch()
            _runs[run] = Zygote(modules), scratch
        zygote, scratch = _runs[run]
        if sandboxed and not _uids:
            _uids.append(Uids(plan.course.settings.first_uid, 2 * worker.state.nthreads + 2))
        uids = _uids[0].free if sandboxed else None
    settings = Settings(plan.limits, hidden=(*plan.course.hidden(), worker.local_directory),
                        visible=plan.course.visible(), sandboxed=sandboxed, uids=uids)
    return Kernel(zygote, settings, scratch)


def _grade(plan: Plan, student: str, run: str, modules: list[str], sandboxed: bool) -> dict:
    """The task: grade one submission on this worker; plain data back."""
    return grade_one(plan, student, lambda: _kernel(plan, run, modules, sandboxed))._asdict()


def _finish(run: str):
    """On every worker after a run: stop its fork server."""
    with _lock:
        zygote, scratch = _runs.pop(run, (None, None))
    if zygote is not None:
        zygote.close()
        for path in Path(scratch).iterdir():
            path.unlink()
        os.rmdir(scratch)


def _problem(submitted: str, sandboxed: bool) -> str:
    """Why this worker cannot grade ('' if it can)."""
    if not Path(submitted).is_dir():
        return f"{submitted} is not there (put the course on a filesystem the workers share)"
    if sandboxed and not bubblewrap():
        return "bubblewrap (bwrap) is not installed"
    if sandboxed and os.geteuid() != 0:
        return "the worker does not run as root (it gives each kernel an unprivileged uid of its own)"
    return ""


def grade_on_cluster(plan: Plan, students: list[str], scheduler: str, sandboxed: bool = True,
                     progress: bool = False) -> dict[str, dict]:
    """Grade ``students`` on the Dask cluster at ``scheduler``; returns student -> results.json content."""
    modules = preload(nbformat.read(plan.course.source_notebook(plan.assignment), as_version=4), plan.assignment)
    run = uuid.uuid4().hex
    with Client(scheduler, timeout=30) as client:
        client.wait_for_workers(1, timeout=120)
        problems = {w: p for w, p in client.run(_problem, str(plan.course.step("submitted")), sandboxed).items() if p}
        if problems:
            raise SandboxError("workers cannot grade: " + "; ".join(f"{w}: {p}" for w, p in problems.items()))
        # the plan as bytes in one task: the scheduler never needs to unpickle it, and it is recomputed if
        # every worker holding it dies
        shared = client.submit(pickle.loads, cloudpickle.dumps(plan), key=f"plan-{run}")
        futures = {client.submit(_grade, shared, student, run, modules, sandboxed, key=f"grade-{run}-{student}",
                                 retries=0): student for student in students}
        del shared

        def graded():
            for future in as_completed(list(futures)):
                student = futures.pop(future)
                try:
                    yield Graded(**future.result())
                except Exception as err:  # e.g. KilledWorker: the submission took down several workers
                    print(f"{student}: {type(err).__name__}: {err}", file=sys.stderr)
                    yield failed(plan, student, err)
                future.release()  # its result is written: never recomputed after a worker loss

        try:
            return write_all(plan, graded(), len(students), progress)
        finally:
            client.cancel(list(futures))
            client.run(_finish, run)
