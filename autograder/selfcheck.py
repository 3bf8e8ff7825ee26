"""Trusted self-check: a student asks the grader to check their latest submission before the deadline.

The check grades the newest folder the student submitted to nbgrader's exchange (``inbound/``) exactly as
``python -m autograder grade`` would, in a fresh sandbox, on inputs from a fresh secret seed, and hands back
only what feedback shows: the per-part table, the diagnosis of known mistakes and the notes; never the
graded notebook, the hidden tests or the seed. Nothing goes into the gradebook's scores. Each student may ask
``c.Autograder.selfchecks_per_hour`` times per assignment in any hour; every request is recorded in
``selfcheck-log.jsonl`` in the course directory (the time, the student, the assignment, the submission, the
score). Checks share the service fairly (``Turns``): one at a time, at most one per student running or waiting
(another request of theirs is refused at once), students served in the order they asked, so a classmate waits
at most for the checks already waiting, each under the same limits as grading (``Course.limits``).

On a JupyterHub this runs as a hub-managed service under the instructor's user (``serve``), which knows the
student from their hub token; students ask with ``python -m reslab.selfcheck ASSIGNMENT`` in a terminal of
their server. See deploy/hub/.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import re
import signal
import stat
import threading
import time
import urllib.parse
from collections import deque
from datetime import datetime, timezone
from pathlib import Path

from nbgrader.utils import parse_utc

from .course import Course
from .sandbox import Kernel

LOG = "selfcheck-log.jsonl"
NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


class Refused(ValueError):
    """A check that is not run; ``status`` is the HTTP status the service answers with."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def latest_submission(inbound: Path, student: str, assignment: str) -> tuple[str, str]:
    """The name and time of the student's newest submission folder of ``assignment`` in the exchange's inbound
    (``student+assignment+timestamp+random``, as nbgrader submit names it). Only real folders the student owns
    count: anyone may create folders in the inbound, under any name."""
    try:
        uid = pwd.getpwnam(student).pw_uid
    except KeyError:
        raise Refused(f"{student} has no account on this machine", 404) from None
    newest, when = None, None
    for name in os.listdir(inbound):
        parts = name.rsplit("+", 3) if name.startswith(f"{student}+{assignment}+") else []
        if len(parts) < 3 or parts[0] != student or parts[1] != assignment:
            continue
        info = os.lstat(inbound / name)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
            continue
        try:
            stamp = parse_utc(parts[2])
        except (ValueError, OverflowError):
            continue
        if when is None or stamp > when:
            newest, when = name, stamp
    if newest is None:
        raise Refused(f"no submission of {assignment} from {student} in the exchange: submit it first", 404)
    return newest, newest.rsplit("+", 3)[2]


class Turns:
    """A fair share of the service: ``slots`` checks at once, at most one per student running or waiting, the
    others first come first served, so that no student can hold the service by asking many times."""

    def __init__(self, slots: int = 1):
        self._slots, self._running, self._waiting, self._students = slots, 0, deque(), set()
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def turn(self, student: str):
        """Wait for the student's turn (Refused if one of theirs is running or waiting), then hold a slot."""
        with self._changed:
            if student in self._students:
                raise Refused("a check of yours is running or waiting already: wait for its answer", 429)
            self._students.add(student)
            self._waiting.append(student)
            self._changed.wait_for(lambda: self._waiting[0] == student and self._running < self._slots)
            self._waiting.popleft()
            self._running += 1
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._students.discard(student)
                self._changed.notify_all()


class SelfCheck:
    """The checks of one course, taking turns (a check takes a sandbox and seconds of CPU)."""

    def __init__(self, course_dir=None):
        self.course_dir = course_dir
        self.log = Course(course_dir).root / LOG
        self.turns = Turns()

    def recent(self, student: str, assignment: str, now: float) -> list[float]:
        """Times of this student's checks of this assignment in the last hour."""
        try:
            lines = self.log.read_text().splitlines()
        except FileNotFoundError:
            return []
        times = []
        for line in lines:
            entry = json.loads(line)
            if entry["student"] == student and entry["assignment"] == assignment and now - entry["time"] < 3600:
                times.append(entry["time"])
        return times

    def _record(self, **entry) -> None:
        with self.log.open("a") as log:
            log.write(json.dumps(entry) + "\n")

    def check(self, student: str, assignment: str) -> dict:
        """Grade the student's latest submission; Refused (unknown assignment, nothing submitted, too many
        checks) before anything runs. The course's settings are read again for every check."""
        course = Course(self.course_dir)
        if not NAME.fullmatch(assignment) or assignment not in course.assignments():
            raise Refused(f"no assignment {assignment!r} in this course", 404)
        inbound = course.exchange() / course.coursedir.course_id / "inbound"
        with self.turns.turn(student):
            now, allowed = time.time(), course.settings.selfchecks_per_hour
            recent = self.recent(student, assignment, now)
            if len(recent) >= allowed:
                wait = 3600 - (now - min(recent))
                raise Refused(f"{allowed} self-checks of {assignment} per hour: the next one in {wait / 60:.0f} min",
                              429)
            folder, submitted = latest_submission(inbound, student, assignment)
            results = {}
            try:  # recorded even when the grader fails, so that a failing submission cannot be retried forever
                results = self._grade(course, student, assignment, (str(inbound), folder))
            finally:
                self._record(time=now, student=student, assignment=assignment, submission=submitted,
                             score=results.get("score"), max_score=results.get("max_score"))
        return dict(assignment=assignment, student=student, submitted=submitted,
                    checked=datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"),
                    score=results["score"], max_score=results["max_score"],
                    parts=[{k: t[k] for k in ("name", "score", "max_score", "status", "output", "diagnosis") if k in t}
                           for t in results["tests"]],
                    notes=results["extra_data"]["notes"], checks_left=allowed - len(recent) - 1)

    def _grade(self, course: Course, student: str, assignment: str, where: tuple[str, str]) -> dict:
        from .grading import grade_one, grading_run, scratch_folder  # torch: only once a check runs
        with grading_run(course, assignment, 1, True, course.limits(assignment)) as (plan, zygote, box), \
                scratch_folder() as scratch:
            graded = grade_one(plan, student, lambda: Kernel(zygote, box, scratch), where=where)
        if not graded.results["extra_data"]["graded"]:
            raise RuntimeError(f"the grader failed on {student}'s {assignment}: {graded.results['output']}")
        return graded.results


def serve(course_dir=None) -> None:
    """The JupyterHub service: ``POST {prefix}check/<assignment>`` with the student's hub token checks their
    latest submission and answers JSON. The hub starts it (JUPYTERHUB_* variables set) as the instructor and
    stops it with SIGTERM."""
    from jupyterhub.services.auth import HubAuthenticated
    from jupyterhub.utils import url_path_join
    from tornado import web

    checker = SelfCheck(course_dir)

    class Check(HubAuthenticated, web.RequestHandler):
        """Authenticated by the hub token only (HubAuth, not OAuth cookies), so no cross-site request can
        spend a student's checks."""

        @web.authenticated
        async def post(self, assignment: str):
            if self.current_user.get("kind") != "user":
                raise web.HTTPError(403, "only users have submissions to check")
            try:
                answer = await asyncio.get_running_loop().run_in_executor(None, checker.check,
                                                                          self.current_user["name"], assignment)
            except Refused as err:
                self.set_status(err.status)
                answer = {"error": str(err)}
            self.set_header("Content-Type", "application/json")
            self.write(json.dumps(answer))

    class About(web.RequestHandler):  # the hub's health check, and a human who opens the URL
        def get(self):
            self.write({"service": "self-check", "usage": "python -m reslab.selfcheck ASSIGNMENT"})

    async def run():
        prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
        url = urllib.parse.urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
        web.Application([(url_path_join(prefix, r"check/([^/]+)"), Check), (prefix, About)]).listen(
            url.port, url.hostname)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()

    asyncio.run(run())
