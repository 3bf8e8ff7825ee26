"""Grade the same 20 submissions with stock ``nbgrader autograde`` and with the trusted grader; print both.

    python benchmarks/bench_grading.py [--assignment a05_projected_add] [--submissions 20] [--jobs 2]

Both run end to end from their command line in a fresh copy of the same course (solved release notebooks,
as honest students submit them): stock nbgrader serially and unprotected, the trusted grader sandboxed with
--jobs N. Both must give every submission full marks, otherwise the timing means nothing and this fails.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from autograder import gradebook  # noqa: E402
from autograder.notebook import solve  # noqa: E402
from autograder.course import Course  # noqa: E402

ENV = {**os.environ, "AUTOGRADER_ALLOW_STOCK_AUTOGRADE": "1",  # stock nbgrader: the unprotected mode
       "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def run(*argv, cwd) -> float:
    started = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, env=ENV, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.monotonic() - started


def make_course(root: Path, assignment: str, submissions: int) -> None:
    (root / "source").symlink_to(REPO / "solutions")
    (root / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.course_id = 'bench'\n")
    run(sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force", cwd=root)
    course = Course(root)
    solved = solve(gradebook.release(course, assignment), course.source_notebook(assignment))
    for i in range(submissions):
        folder = course.path("submitted", f"student{i:02d}", assignment)
        folder.mkdir(parents=True)
        nbformat.write(solved, folder / f"{assignment}.ipynb")


def full_marks(root: Path, assignment: str) -> tuple[int, int]:
    """(submissions with full marks, submissions) according to the gradebook."""
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "bench") as gb:
        submissions = gb.assignment_submissions(assignment)
        return sum(s.score == s.max_score > 0 for s in submissions), len(submissions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assignment", default="a05_projected_add")
    parser.add_argument("--submissions", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        stock, trusted = Path(tmp) / "stock", Path(tmp) / "trusted"
        stock.mkdir()
        make_course(stock, args.assignment, args.submissions)
        shutil.copytree(stock, trusted, symlinks=True)
        seconds = {
            "stock nbgrader autograde (serial, unprotected)":
                run(sys.executable, "-m", "nbgrader", "autograde", args.assignment, "--force", cwd=stock),
            f"trusted grader (sandboxed, --jobs {args.jobs})":
                run(sys.executable, "-m", "autograder", "--course-dir", trusted, "grade", args.assignment,
                    "--jobs", str(args.jobs), cwd=REPO),
        }
        for root in (stock, trusted):
            good, total = full_marks(root, args.assignment)
            if good != args.submissions or total != args.submissions:
                raise SystemExit(f"{root.name}: {good} of {total} submissions got full marks, expected all "
                                 f"{args.submissions}")

    (slow, t_stock), (fast, t_trusted) = seconds.items()
    print(f"{args.submissions} submissions of {args.assignment} on {os.cpu_count()} CPU cores, all with full marks")
    for name, value in seconds.items():
        print(f"  {name:48s} {value:7.1f} s  ({value / args.submissions:.2f} s per submission)")
    print(f"  speed-up of the trusted grader: {t_stock / t_trusted:.1f}x")
    print(json.dumps({"assignment": args.assignment, "submissions": args.submissions, "cores": os.cpu_count(),
                      "stock_s": round(t_stock, 2), "trusted_s": round(t_trusted, 2),
                      "ratio": round(t_stock / t_trusted, 2)}))


if __name__ == "__main__":
    main()
