"""The nbgrader course layout and the grader's settings, both read from the course's nbgrader_config.py."""
from __future__ import annotations

import difflib
import json
import os
import re
import sys
from pathlib import Path

from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange.default.exchange import Exchange
from traitlets import Dict, Float, Int, List, Unicode
from traitlets.config import Config, Configurable
from traitlets.config.loader import PyFileConfigLoader

from .sandbox import Limits

REPO = Path(__file__).resolve().parents[1]
TIMING_FILE = "autograder-timing.json"
NOT_A_COURSE = "not a course directory: {} (run it inside a course folder or pass --course-dir)"


class NotACourse(ValueError):
    """The command line was run outside any course folder, or --course-dir names no course."""


def unknown_name(kind: str, name: str, known: list[str]) -> ValueError:
    """'unknown assignment 'a04_identity_ad' — did you mean a04_identity_add?' (or the names there are)."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" — did you mean {close[0]}?" if close else f" ({kind}s here: {', '.join(known) or 'none'})"
    return ValueError(f"unknown {kind} {name!r}{hint}")


def parse_size(text: str | int) -> int:
    """Bytes from ``2G``, ``512M``, ``1500000`` or an int."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. 2G or 512M)")
    return int(float(match[1]) * 1024 ** " KMGT".index(match[2].upper() or " "))


class Autograder(Configurable):
    """Settings of the trusted grader; set them as ``c.Autograder.<name>`` in nbgrader_config.py."""

    memory = Unicode("2G", help="Address-space limit of every sandboxed process (torch needs ~1G to import)"
                     ).tag(config=True)
    cell_timeout = Float(60.0, help="Seconds each cell (and each check) may run").tag(config=True)
    timeouts = Dict(value_trait=Float(), help="Per-assignment cell time limits, e.g. {'a07_resnet': 300}"
                    ).tag(config=True)
    submission_timeout = Float(900.0, help="Seconds one submission may run in total, at most").tag(config=True)
    solution_factor = Float(10.0, help="Without a submission_timeout of its own, a submission may run this many "
                            "times as long as the solution (timed by `python -m autograder release`), plus one cell's "
                            "limit").tag(config=True)
    max_notebook_size = Unicode("20M", help="Larger submitted notebooks are not graded").tag(config=True)
    processes = Int(256, help="Processes and threads a submission may have at once (RLIMIT_NPROC)").tag(config=True)
    tmp_size = Unicode("256M", help="Size of the sandbox's private /tmp, its only writable place").tag(config=True)
    tmp_inodes = Int(20_000, help="Files and folders the sandbox's /tmp (and /dev/shm) may hold").tag(config=True)
    first_uid = Int(61000, help="As root, sandboxed kernels run as free uids from first_uid up (2 jobs + 2 of "
                    "them, each locked for the run)").tag(config=True)
    hidden_paths = List(Unicode(), help="More host paths the sandbox must not see").tag(config=True)
    selfchecks_per_hour = Int(3, help="Self-checks (python -m reslab.selfcheck, served by python -m autograder "
                              "selfcheck-service) each student may ask for per assignment in any hour").tag(config=True)

    def limits(self, assignment: str, solution_seconds: float | None = None) -> Limits:
        """The limits of one assignment; with the solution's run time, a submission may take solution_factor
        times as long plus one cell's limit (so one interrupted cell does not cost the parts after it), at most
        submission_timeout."""
        cell = self.timeouts.get(assignment, self.cell_timeout)
        total = self.submission_timeout if solution_seconds is None else \
            min(self.submission_timeout, self.solution_factor * solution_seconds + cell)
        return Limits(memory=parse_size(self.memory), cell_timeout=cell,
                      submission_timeout=total, processes=self.processes,
                      tmp_size=parse_size(self.tmp_size), tmp_inodes=self.tmp_inodes)


class Course:
    """Paths of an nbgrader course directory (``submitted/``, ``autograded/``, ``feedback/``, gradebook)."""

    def __init__(self, root: str | os.PathLike | None = None, **overrides):
        self.root = Path(root or REPO).resolve()
        self.config = Config()
        if (self.root / "nbgrader_config.py").is_file():
            self.config.merge(PyFileConfigLoader("nbgrader_config.py", str(self.root)).load_config())
        for name, value in overrides.items():  # command-line options win over the file
            if value is not None:
                self.config.Autograder[name] = value
        self.coursedir = CourseDirectory(config=self.config, root=str(self.root))
        self.settings = Autograder(config=self.config)

    @classmethod
    def find(cls, course_dir: str | os.PathLike | None = None) -> "Course":
        """The course of ``course_dir``, or else the nearest folder from the current one upwards that is a
        course: never the folder the grader happens to be installed in (NotACourse otherwise)."""
        start = Path(course_dir if course_dir is not None else os.getcwd()).resolve()
        for folder in [start] if course_dir is not None else [start, *start.parents]:
            if (folder / "nbgrader_config.py").is_file():
                try:
                    course = cls(folder)
                except Exception as err:  # the instructor's file: say which and why, no traceback
                    raise ValueError(f"{folder / 'nbgrader_config.py'} cannot be loaded: {err}") from None
                if course.step("source").is_dir():
                    return course
        raise NotACourse(NOT_A_COURSE.format(start))

    def step(self, name: str) -> Path:
        """The folder of an nbgrader step: source, submitted, autograded or feedback."""
        return self.root / getattr(self.coursedir, f"{name}_directory")

    def path(self, step: str, student: str, assignment: str) -> Path:
        return self.step(step) / student / assignment

    def timing_file(self, assignment: str) -> Path:
        """Where `python -m autograder release` stores the solution's run time (never released: see
        CourseDirectory.ignore in autograder/nbgrader_config.py)."""
        return self.step("source") / assignment / TIMING_FILE

    def limits(self, assignment: str) -> Limits:
        """The assignment's limits, with the solution's measured run time if there is one."""
        try:
            seconds = float(json.loads(self.timing_file(assignment).read_text())["solution_seconds"])
        except FileNotFoundError:
            seconds = None
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{self.timing_file(assignment)} is unreadable ({err}): run python -m autograder "
                             f"release {assignment} again") from None
        return self.settings.limits(assignment, seconds)

    def source_notebook(self, assignment: str) -> Path:
        """The one source notebook of ``assignment`` (ValueError if there is none or several)."""
        found = sorted((self.step("source") / assignment).glob("*.ipynb"))
        if len(found) != 1:
            raise ValueError(f"{self.step('source') / assignment} must hold exactly one notebook, found "
                             f"{len(found)}; assignments here: {self.assignments()}")
        return found[0]

    def assignments(self) -> list[str]:
        return sorted(p.parent.name for p in self.step("source").glob("*/*.ipynb"))

    def check_assignment(self, assignment: str) -> None:
        """ValueError with a did-you-mean for an assignment the course does not have."""
        if assignment not in self.assignments():
            raise unknown_name("assignment", assignment, self.assignments())

    def misplaced(self, assignment: str) -> dict[str, list[str]]:
        """student -> notebooks of ``assignment`` put directly in submitted/<student>/ instead of
        submitted/<student>/<assignment>/ (the grader never sees them there). Links are not followed."""
        found, submitted = {}, self.step("submitted")
        if not submitted.is_dir():
            return found
        with os.scandir(submitted) as folders:
            for student in folders:
                if not student.is_dir(follow_symlinks=False) or os.path.lexists(Path(student.path) / assignment):
                    continue
                try:
                    loose = sorted(name for name in os.listdir(student.path)
                                   if name.endswith(".ipynb") and name.startswith(assignment))
                except OSError:  # unreadable: nothing the grader could take from there either
                    continue
                if loose:
                    found[student.name] = loose
        return dict(sorted(found.items()))

    def students(self, assignment: str) -> list[str]:
        """Students with a submission folder for ``assignment``, sorted."""
        return sorted(p.parent.name for p in self.step("submitted").glob(f"*/{assignment}") if p.is_dir())

    def exchange(self) -> Path:
        """nbgrader's exchange folder (``c.Exchange.root``): the inbound holds every student's submissions."""
        return Path(self.config.Exchange.get("root", Exchange.root.default_value))

    def hidden(self) -> tuple[str, ...]:
        """What a sandboxed kernel must not see: the whole course folder (solutions, other students, the
        gradebook), its steps wherever they really are, the gradebook, the exchange (as an ordinary user the
        kernel has the instructor's uid, who can read every submission there) and the grader itself."""
        db = self.coursedir.db_url.removeprefix("sqlite:///")
        steps = [str(self.step(name)) for name in ("source", "submitted", "autograded", "feedback")]
        return (str(self.root), *steps, db, db + "-journal", str(self.exchange()), str(Path(__file__).parent),
                *self.settings.hidden_paths)

    @staticmethod
    def visible() -> tuple[str, ...]:
        """Paths that must stay visible inside hidden ones: the interpreter, the environment, the library, and
        every package folder on the path (a venv may read another's packages, e.g. one under /tmp)."""
        import reslab
        packages = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and os.path.isdir(p)]
        paths = (sys.base_prefix, sys.prefix, Path(reslab.__file__).parent, *packages)
        return tuple(dict.fromkeys(os.path.realpath(p) for p in paths))
