"""Grading a batch of submissions: sandboxed kernels run the students' cells, the checks run here.

For every test cell of the release notebook the grader runs the cell's visible part (the student's
feedback), then, in place of its hidden part, a probe request to the handler that ``reslab.checks.guard``
installed in the kernel before any student code ran: it reads inputs drawn in this process from a secret
per-run seed and writes the student's outputs as a plain .npz, which this process loads without pickle
(after checking the reply's signature and the file's hash), validates and grades against the answer key
(``autograder.key``, never in the sandbox), naming the mistake where the outputs match a known one. Solution
cells that call the library's own implementation of a part, or reach into the interpreter to forge results,
are flagged (``integrity``), and so are parts whose check ran the library's implementation, and every part
of a notebook that changed how other code runs. Parts graded before a crash, a time-out or a
memory blow-up keep their points; every part records why it scored what it did.
"""
from __future__ import annotations

import ast
import hashlib
import hmac
import io
import json
import os
import queue
import secrets
import shutil
import sys
import tempfile
import threading
import time
import traceback
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

import nbformat
import numpy as np
import torch
from nbformat import NotebookNode
from tqdm import tqdm

from reslab import checks
from reslab.checks import guard

from . import gradebook, integrity
from . import key as answer_key
from .course import Course, parse_size
from .notebook import (BadSubmission, OutputBudget, clean_traceback, merge, notebook_text, open_folder,
                       read_submission, read_timestamp, solve, unicode_text)
from .sandbox import MESSAGE_LIMIT, Kernel, Limits, SandboxError, Settings, Uids, Zygote, bubblewrap

OUTPUTS_LIMIT = 64 << 20  # bytes of one probe's .npz
ERROR_LIMIT = 64 << 10
SCAN_GRACE = 10.0  # seconds the integrity scan may take past the submission's time limit
CHECKS_FILE = f"{Path(checks.__file__).parent.parent.name}/{Path(checks.__file__).parent.name}/"
NOT_PRELOADED = {"matplotlib", "ipywidgets", "IPython", "ipykernel"}  # they hook into the kernel on import


@dataclass
class Plan:
    """What every submission of one grading run shares."""
    course: Course
    assignment: str
    release: NotebookNode
    notebook: str  # the notebook's file name
    checks: dict  # part name -> its answer key
    inputs: dict  # part name -> the secret inputs, and their .npz bytes
    expected: dict  # part name -> the expected outputs on the secret inputs
    mistakes: dict  # part name -> {known mistake: its outputs on the secret inputs}
    limits: Limits

    @classmethod
    def make(cls, course: Course, assignment: str, limits: Limits) -> "Plan":
        release = gradebook.release(course, assignment)
        graded = {c.metadata.nbgrader["grade_id"] for c in release.cells
                  if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata.nbgrader.get("solution")}
        found = {k.name: k for k in answer_key.keys_for(assignment)}
        if graded != set(found):
            raise ValueError(f"{assignment}: the autograded test cells {sorted(graded)} and the checks in "
                             f"reslab.checks {sorted(found)} must match one to one")
        secret = secrets.randbits(128)  # never leaves this process
        inputs, expected, mistakes = {}, {}, {}
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny tensors: one thread is many times faster than several on a busy machine
        try:
            for name, key in found.items():
                arrays = key.make_inputs(np.random.default_rng([secret, zlib.crc32(name.encode())]))
                buffer = io.BytesIO()
                np.savez(buffer, **arrays)
                inputs[name] = (arrays, buffer.getvalue())
                expected[name], mistakes[name] = key.expected(arrays), key.mistake_outputs(arrays)
        finally:
            torch.set_num_threads(threads)
        return cls(course, assignment, release, course.source_notebook(assignment).name, found, inputs, expected,
                   mistakes, limits)


def preload(notebook: NotebookNode, assignment: str) -> list[str]:
    """Modules the fork server imports once: the checks, the probe's guard (torch._dynamo: seconds) and what the
    notebook imports."""
    names = [checks.__name__, f"{checks.__name__}.{assignment}", guard.__name__]
    for cell in notebook.cells:
        try:
            tree = ast.parse(cell.source) if cell.cell_type == "code" else None
        except SyntaxError:  # IPython magics
            continue
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.append(node.module)
    return [n for n in dict.fromkeys(names) if n.split(".")[0] not in NOT_PRELOADED]


def _test(name: str, max_score: float, score: float = 0.0, message: str = "", passed: bool = False,
          diagnosis: str = "") -> dict:
    return dict(name=name, score=float(score), max_score=float(max_score), status="passed" if passed else "failed",
                output=message, visibility="visible", **({"diagnosis": diagnosis} if diagnosis else {}))


def load_outputs(data: bytes) -> dict:
    """The arrays of an untrusted .npz: a zip of .npy members only, sizes bounded, no pickle."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > 10_000 or sum(m.file_size for m in members) > OUTPUTS_LIMIT:
                raise ValueError("too large")
            if not all(m.filename.endswith(".npy") for m in members):
                raise ValueError("not only arrays")
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    except Exception as err:  # anything the student wrote may be malformed
        raise checks.CheckFailed(f"the outputs could not be read as plain arrays ({err})") from None


def error_message(data: bytes) -> str:
    """The message of a probe's error file, which the student's code may have written: any JSON, or none."""
    try:
        message = json.loads(data, parse_int=float)
    except (ValueError, RecursionError):
        message = None
    if isinstance(message, dict) and isinstance(message.get("error"), str):
        return message["error"][:2000]
    return f"the check failed with an unreadable error file ({data[:200]!r})"


class Submission:
    """One student's notebook, read and merged with the release, or the reason it cannot be graded. Nothing
    in the student's folder is trusted: no link is followed, no FIFO or device opened (see notebook.py)."""

    def __init__(self, plan: Plan, student: str, notebook: NotebookNode | None = None,
                 where: tuple[str, ...] | None = None):
        """The student's submitted notebook, or ``notebook`` (the instructor's solution) when given. ``where``
        is (base, folder, ...) of another submission folder than submitted/<student>/<assignment>, e.g. one in
        the exchange's inbound (selfcheck.py); no part after base may be a link."""
        self.plan, self.student = plan, student
        self.notes, self.notebook, self.reason, self.timestamp = [], None, "", None
        if notebook is not None:
            self.notebook = merge(plan.release, notebook)[0]
            return
        try:
            folder = open_folder(*(where or (plan.course.step("submitted"), student, plan.assignment)))
        except BadSubmission as err:
            self.reason = str(err)
            return
        try:
            try:
                self.timestamp = read_timestamp(folder)
            except BadSubmission as err:
                self.notes.append(f"{err}: the submission time was not recorded")
            submitted, repaired = read_submission(self._locate(folder),
                                                  parse_size(plan.course.settings.max_notebook_size), folder)
            self.notebook, restored = merge(plan.release, submitted)
            self.notes += repaired + restored
        except BadSubmission as err:
            self.reason = str(err)
        finally:
            os.close(folder)

    def _locate(self, folder: int) -> str:
        """The expected notebook, or the only other notebook there (a renamed copy), noting extra files."""
        names = set(os.listdir(folder))
        if not names - {"timestamp.txt", "submission_secret.txt"}:
            raise BadSubmission("the submission folder is empty")
        present = self.plan.notebook in names
        files = sorted(names - {self.plan.notebook, "timestamp.txt", "submission_secret.txt"})  # nbgrader's own
        notebooks = [name for name in files if name.endswith(".ipynb")]
        extra = [name for name in files if name not in notebooks or present]
        if extra:
            self.notes.append(f"ignored extra files: {', '.join(map(repr, extra[:10]))}"
                              + (f" and {len(extra) - 10} more" if len(extra) > 10 else ""))
        if present:
            return self.plan.notebook
        if len(notebooks) == 1:
            self.notes.append(f"{self.plan.notebook} is missing; graded {notebooks[0]!r} in its place")
            return notebooks[0]
        raise BadSubmission(f"{self.plan.notebook} was not submitted" +
                            (f" (found {', '.join(map(repr, notebooks[:10]))}: rename yours)" if notebooks else ""))

    def zero(self, reason: str) -> list[dict]:
        return [_test(name, k.part.points, message=f"not graded: {reason}") for name, k in self.plan.checks.items()]

    def run(self, kernel: Kernel) -> list[dict]:
        """Execute the notebook cell by cell; at each test cell run its check. Returns the tests."""
        plan, tests, stop, count, ran, kept = self.plan, {}, "", 0, [], OutputBudget()
        deadline = time.monotonic() + plan.limits.submission_timeout
        kernel.wait_ready()
        self._install(kernel)
        def budget() -> float:  # seconds the next cell or check may take
            return min(plan.limits.cell_timeout, deadline - time.monotonic())

        for number, cell in enumerate(self.notebook.cells, 1):
            if cell.cell_type != "code" or stop:
                continue
            if budget() <= 0:
                stop = f"the submission ran out of its total time limit ({plan.limits.submission_timeout:g} s)"
                break
            try:
                result = kernel.execute(cell.source, budget())
                count += 1
                ran.append(cell)
                cell.execution_count = count
                cell.outputs = kept.keep([clean_traceback(o, CHECKS_FILE) for o in result.outputs])
                if result.status == "interrupted":
                    self.notes.append(f"cell {number} was interrupted after the time limit of "
                                      f"{plan.limits.cell_timeout:g} s")
                stop = _why_stopped(result, number, plan.limits)
                name = cell.metadata.get("nbgrader", {}).get("grade_id")
                if name in plan.checks and not stop:
                    tests[name], stop = self._probe(kernel, name, number, max(budget(), 1.0))
                    test = tests[name]
                    cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=(
                        f"[autograder] {test['score']:g}/{test['max_score']:g} points: {test['output']}\n")))
            except Exception as err:  # the grader's own failure: parts graded before it keep their points
                traceback.print_exc()
                stop = f"grader error in cell {number} ({type(err).__name__}: {str(err)[:300]})"
        if stop:
            self.notes.append(stop)
        if kernel.dropped:
            self.notes.append(f"{len(kernel.dropped)} message(s) from the kernel over {MESSAGE_LIMIT >> 20} MB "
                              f"({', '.join(sorted(set(kernel.dropped)))}) were dropped in the sandbox")
        if kept.exhausted:
            self.notes.append(f"the notebook's outputs were cut at {kept.limit / 2**20:g} MB")
        tests = [tests.get(name) or _test(name, k.part.points, message=f"not graded: {stop or 'its test cell did not run'}")
                 for name, k in plan.checks.items()]
        # only the cells that ran can have earned or forged a score; the scan, too, ends with the time limit
        parts = [k.part for k in plan.checks.values()]
        static = integrity.scan(NotebookNode(cells=ran), parts, max(deadline, time.monotonic() + SCAN_GRACE))
        return integrity.apply(tests, integrity.merge(static, integrity.behaviour(parts, self.ran, self.tampering)))

    def _install(self, kernel: Kernel) -> None:
        """Before any student code: the probe's handler in the kernel, with a secret for its replies."""
        self.secret, self.ran, self.tampering = secrets.token_hex(32), {}, []
        result = kernel.execute(f"__import__({guard.__name__!r}, fromlist=['install']).install(get_ipython(), "
                                f"{self.secret!r})", self.plan.limits.startup_timeout, silent=True)
        if result.status != "ok":
            raise SandboxError(f"the probe could not be installed in the kernel: {result.error or result.status}")

    def _probe(self, kernel: Kernel, name: str, number: int, timeout: float) -> tuple[dict, str]:
        """Run check ``name``'s student side in the kernel on the secret inputs (a request to ``guard``'s
        handler, not code the notebook's names resolve); check the reply's signature and the file's hash, note
        what the kernel saw; grade the outputs here."""
        plan, check = self.plan, self.plan.checks[name].part
        arrays, data = plan.inputs[name]
        token, nonce = secrets.token_hex(8), secrets.token_hex(16)
        inputs, outputs = f"in-{token}.npz", f"out-{token}.npz"
        try:
            kernel.put(inputs, data)
        except OSError as err:  # e.g. the student filled the sandbox's /tmp
            return _test(name, check.points, message=f"{check.description}: the check's inputs could not be "
                                                     f"written into the sandbox ({err.strerror})"), ""
        result = kernel.request(guard.REQUEST, dict(assignment=plan.assignment, name=name, inputs=kernel.path(inputs),
                                                    outputs=kernel.path(outputs), nonce=nonce), timeout)
        stop = _why_stopped(result, number, plan.limits, "while its check ran")
        if result.status != "ok":
            return _test(name, check.points, message=f"{check.description}: the check did not finish: "
                                                     f"{stop or result.error or 'time limit exceeded'}"), stop
        reply = result.reply
        if reply.get("nonce") != nonce or not hmac.compare_digest(str(reply.get("mac")), guard.sign(self.secret, reply)):
            self.tampering.append("answered the grader's check in its place (the reply is not the check's own)")
            return _test(name, check.points, message=f"{check.description}: the check's reply was forged"), ""
        self.tampering += [str(t)[:200] for t in reply["tampered"]]
        self.ran[name] = [str(f)[:200] for f in reply["library"]]
        try:
            written = kernel.get(outputs + (".error.json" if reply["written"] == "error" else ""),
                                 ERROR_LIMIT if reply["written"] == "error" else OUTPUTS_LIMIT)
            if written is None or hashlib.sha256(written).hexdigest() != reply["digest"]:
                self.tampering.append("rewrote the check's output file after the check")
                raise checks.CheckFailed(f"{check.description}: the check's outputs were changed after it ran")
            if reply["written"] == "error":
                message = error_message(written)
                mistake = checks.diagnose_failure(message, plan.mistakes[name])
                return _test(name, check.points, message=checks.with_diagnosis(message, mistake)[:2000],
                             diagnosis=mistake), ""
            result = checks.score(check, load_outputs(written), plan.expected[name], plan.mistakes[name])
        except (checks.CheckFailed, ValueError) as err:
            return _test(name, check.points, message=str(err)[:2000]), ""
        return _test(name, result.max_score, result.score, result.message, result.passed, result.diagnosis), ""

    def results(self, tests: list[dict], seconds: float) -> dict:
        return _results(self.plan, self.student, tests, self.notes + ([self.reason] if self.reason else []),
                        seconds, self.timestamp, problem=self.reason)


def _results(plan: Plan, student: str, tests: list[dict], notes: list[str], seconds: float, timestamp=None,
             error: str = "", problem: str = "") -> dict:
    """Gradescope's results.json, with what nbgrader needs in extra_data (``problem``: why the submission
    could not be graded at all, e.g. an empty folder, for the console and the report)."""
    notes = notes + ([f"grader error: {error}"] if error else [])
    return dict(
        score=sum(t["score"] for t in tests), max_score=sum(t["max_score"] for t in tests),
        execution_time=round(seconds, 2), output="\n".join(notes), tests=tests,
        extra_data=dict(student=student, assignment=plan.assignment, notebook=Path(plan.notebook).stem,
                        timestamp=timestamp.isoformat() if timestamp else None, notes=notes, graded=not error,
                        problem=problem))


def _why_stopped(result, number: int, limits: Limits, during: str = "") -> str:
    if result.status == "died":
        return f"the kernel died in cell {number}{' ' + during if during else ''} (os._exit, a crash, or memory)"
    if result.status == "timeout":
        return (f"cell {number}{' ' + during if during else ''} ran past the time limit of {limits.cell_timeout:g} s "
                "and ignored the interrupt: the kernel was stopped")
    return ""


class Graded(NamedTuple):
    """One graded submission as plain data: what a worker, local or remote, hands to the single writer."""
    student: str
    results: dict            # results.json content
    notebook: str | None     # the executed notebook as nbformat JSON text, None if there is none
    timestamp: str | None    # timestamp.txt content


def grade_one(plan: Plan, student: str, new_kernel: Callable[[], Kernel],
              where: tuple[str, ...] | None = None) -> Graded:
    """Read, run and check one submission (``where``: see Submission) in a kernel from ``new_kernel``; a grader
    failure is recorded."""
    started, kernel = time.monotonic(), None
    try:
        submission = Submission(plan, student, where=where)
        if submission.reason:
            tests, seconds = submission.zero(submission.reason), 0.0
        else:
            kernel = new_kernel()
            tests = submission.run(kernel)
            seconds = time.monotonic() - started
        return Graded(student, submission.results(tests, seconds),
                      notebook_text(submission.notebook) if submission.notebook is not None else None,
                      str(submission.timestamp) if submission.timestamp else None)
    except Exception as err:  # the grader's own failure: recorded, the batch goes on
        traceback.print_exc()
        return failed(plan, student, err)
    finally:
        if kernel is not None:
            kernel.close()


def failed(plan: Plan, student: str, err: BaseException) -> Graded:
    """A submission the grader itself failed on: no points, the error recorded."""
    tests = [_test(name, k.part.points, message="not graded: grader error") for name, k in plan.checks.items()]
    return Graded(student, _results(plan, student, tests, [], 0.0, error=f"{type(err).__name__}: {err}"), None, None)


def write_all(plan: Plan, graded: Iterable[Graded], total: int, progress: bool) -> dict[str, dict]:
    """The single writer: autograded/<student>/<assignment>/ (executed notebook, results.json, timestamp)
    and the gradebook, as each submission comes in. Returns student -> results."""
    everything = {}
    with tqdm(total=total, desc=f"grading {plan.assignment}", unit="submission", disable=not progress,
              file=sys.stderr) as bar:
        for one in graded:
            try:
                _write(plan, one)
            except Exception as err:  # this student's files or gradebook entry: recorded, the batch goes on
                traceback.print_exc()
                one = failed(plan, one.student, err)
                try:
                    _write(plan, one)
                except Exception:  # e.g. the disk or the gradebook itself: the console says why
                    traceback.print_exc()
            everything[one.student] = one.results
            bar.update()
    return everything


def _write(plan: Plan, one: Graded):
    """One student's autograded folder and gradebook entry, in text that UTF-8 can encode."""
    folder = plan.course.path("autograded", one.student, plan.assignment)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if one.notebook is not None:
        (folder / plan.notebook).write_text(one.notebook, encoding="utf-8")  # notebook_text: encodable
    if one.timestamp:
        (folder / "timestamp.txt").write_text(one.timestamp)
    results = json.loads(unicode_text(json.dumps(one.results, ensure_ascii=False)))
    (folder / "results.json").write_text(json.dumps(results, indent=1))
    gradebook.record(plan.course, results)


class Batch:
    """Workers grade submissions in parallel, each pre-warming its next sandbox while it grades; the calling
    thread is the only writer of files and of the gradebook."""

    def __init__(self, plan: Plan, zygote: Zygote, settings: Settings, jobs: int, progress: bool):
        self.plan, self.zygote, self.settings, self.jobs, self.progress = plan, zygote, settings, jobs, progress

    def run(self, students: list[str]) -> dict[str, dict]:
        return write_all(self.plan, self.graded(students), len(students), self.progress)

    def graded(self, students: list[str]) -> Iterator[Graded]:
        pending, done = queue.Queue(), queue.Queue()
        for student in students:
            pending.put(student)
        with scratch_folder() as scratch:
            workers = [threading.Thread(target=self._work, args=(scratch, pending, done), daemon=True)
                       for _ in range(min(self.jobs, len(students)))]
            try:
                for worker in workers:
                    worker.start()
                for _ in students:
                    yield done.get()
            finally:
                try:  # after an interruption: let the workers stop after their submission
                    while True:
                        pending.get_nowait()
                except queue.Empty:
                    pass
                for worker in workers:
                    worker.join()

    def _work(self, scratch: str, pending: queue.Queue, done: queue.Queue):
        spare = None

        def new_kernel() -> Kernel:
            nonlocal spare
            kernel, spare = spare or Kernel(self.zygote, self.settings, scratch), None
            try:
                if not pending.empty():  # warm up the next sandbox while this one runs
                    spare = Kernel(self.zygote, self.settings, scratch)
            except BaseException:
                kernel.close()
                raise
            return kernel

        while True:
            try:
                student = pending.get_nowait()
            except queue.Empty:
                break
            done.put(grade_one(self.plan, student, new_kernel))
        if spare is not None:
            spare.close()


@contextmanager
def scratch_folder() -> Iterator[str]:
    """The grader's private folder for one run: the sandboxes' kernel folders (unsandboxed) and the empty file
    bound over hidden files."""
    scratch = tempfile.mkdtemp(prefix="autograder-")
    try:
        (Path(scratch) / "empty").touch()
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def grading_run(course: Course, assignment: str, jobs: int, sandboxed: bool, limits: Limits):
    """The plan, the fork server and the sandbox settings that every submission of one run shares."""
    if sandboxed and not bubblewrap():
        raise SandboxError("bubblewrap (bwrap) is not installed, so student code cannot be sandboxed: install it "
                           "(apt-get install bubblewrap), or pass --unsandboxed to run it unprotected")
    userns = sandboxed and os.geteuid() != 0  # an ordinary user: unprivileged user namespaces instead of uids
    zygote = Zygote(preload(nbformat.read(course.source_notebook(assignment), as_version=4), assignment))  # warms up meanwhile
    uids = None
    try:
        plan = Plan.make(course, assignment, limits)
        if sandboxed and not userns:
            uids = Uids(course.settings.first_uid, 2 * jobs + 2)
        yield plan, zygote, Settings(limits, hidden=course.hidden(), visible=course.visible(), sandboxed=sandboxed,
                                     uids=uids and uids.free, userns=userns)
    finally:
        zygote.close()
        if uids is not None:
            uids.close()


def time_solution(course_dir, assignment: str, sandboxed: bool = True, **settings) -> tuple[dict, float]:
    """Grade the instructor's own solution once, as a submission; it must get full marks (ValueError
    otherwise). Its run time, stored next to the source, sets the per-submission time limit
    (Course.limits). Returns its results and the seconds."""
    course = Course(course_dir, **settings)
    with grading_run(course, assignment, 1, sandboxed, course.settings.limits(assignment)) as (plan, zygote, box):
        submission = Submission(plan, "solution", solve(plan.release, course.source_notebook(assignment)))
        with scratch_folder() as scratch:
            kernel = Kernel(zygote, box, scratch)
            try:
                started = time.monotonic()
                results = submission.results(submission.run(kernel), 0.0)
                seconds = time.monotonic() - started
            finally:
                kernel.close()
    if results["score"] != results["max_score"]:
        raise ValueError(f"{assignment}: the solution scores {results['score']:g}/{results['max_score']:g} in the "
                         f"trusted grader: {results['output'] or [t['output'] for t in results['tests']]}")
    course.timing_file(assignment).write_text(json.dumps({"solution_seconds": round(seconds, 2)}) + "\n")
    return results, seconds
