"""Command line: ``python -m autograder [--course-dir PATH] {release,grade,feedback,export,report,roster,
selfcheck-service} ...``."""
from __future__ import annotations

import argparse
import subprocess
import sys

from .course import Course


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.split(":")[0])
    parser.add_argument("--course-dir", help="nbgrader course directory (default: this repository)")
    commands = parser.add_subparsers(dest="command", required=True)
    release = commands.add_parser("release", help="nbgrader generate_assignment, then grade the solution once in "
                                  "the trusted grader: its run time sets the per-submission time limit")
    release.add_argument("assignment")
    release.add_argument("--unsandboxed", action="store_true", help="time the solution without the sandbox")
    grade = commands.add_parser("grade", help="grade submissions in sandboxes, in parallel, into the gradebook")
    grade.add_argument("assignment")
    grade.add_argument("--student", action="append", help="grade only this student (repeatable)")
    grade.add_argument("--jobs", type=int, help="submissions graded at once (default: number of cores)")
    grade.add_argument("--scheduler", metavar="ADDRESS",
                       help="grade on the Dask cluster of this scheduler, e.g. tls://host:8786 (see docs/cluster.md)")
    grade.add_argument("--unsandboxed", action="store_true",
                       help="run student code WITHOUT the sandbox (no isolation: trusted code only)")
    grade.add_argument("--timeout", type=float, help="seconds per cell (default: c.Autograder.cell_timeout, 60)")
    grade.add_argument("--memory", help="memory limit per sandboxed process, e.g. 2G (default 2G)")
    feedback = commands.add_parser("feedback", help="write feedback HTML per student (no hidden checks)")
    feedback.add_argument("assignment")
    feedback.add_argument("--student", action="append")
    export = commands.add_parser("export", help="CSV: one row per student x assignment, plus a per-part CSV")
    export.add_argument("--out", default="grades.csv")
    report = commands.add_parser("report", help="class report: score histogram and failure rate per check")
    report.add_argument("assignment")
    report.add_argument("--out", help="folder for index.html and its figures (default: reports/ASSIGNMENT)")
    roster = commands.add_parser("roster", help="import students' names from a CSV (id,first_name,last_name,email)")
    roster.add_argument("csv")
    commands.add_parser("selfcheck-service", help="(run by JupyterHub as the instructor) the students' self-checks of "
                        "their submissions (python -m reslab.selfcheck; see deploy/hub/)")
    args = parser.parse_args(argv)

    try:
        if args.command == "selfcheck-service":
            from .selfcheck import serve
            serve(args.course_dir)
            return 0
        if args.command == "grade":
            if args.scheduler and args.jobs:
                parser.error("--jobs is for grading on this machine; with --scheduler the workers' threads decide")
            from .grading import grade_assignment
            results = grade_assignment(args.course_dir, args.assignment, args.student, args.jobs,
                                       sandboxed=not args.unsandboxed, progress=True, scheduler=args.scheduler,
                                       cell_timeout=args.timeout, memory=args.memory)
            failed = sorted(s for s, r in results.items() if not r["extra_data"]["graded"])
            for student, r in sorted(results.items()):
                print(f"{student}: {r['score']:g}/{r['max_score']:g}")
            if failed:
                print(f"not graded because of grader errors: {', '.join(failed)}", file=sys.stderr)
            return 1 if failed else 0
        course = Course(args.course_dir)
        if args.command == "release":
            from .gradebook import nbgrader_tools_on_path
            from .grading import time_solution
            nbgrader_tools_on_path()
            done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", args.assignment, "--force"],
                                  cwd=course.root)
            if done.returncode:
                raise ValueError(f"nbgrader generate_assignment {args.assignment} failed (see above)")
            results, seconds = time_solution(args.course_dir, args.assignment, sandboxed=not args.unsandboxed)
            print(f"{args.assignment}: the solution scores {results['score']:g}/{results['max_score']:g} in "
                  f"{seconds:.1f} s; a submission may run {course.limits(args.assignment).submission_timeout:g} s")
        elif args.command == "feedback":
            from .feedback import write_feedback
            for path in write_feedback(course, args.assignment, args.student):
                print(path)
        elif args.command == "export":
            from .export import export
            print(*export(course, args.out), sep="\n")
        elif args.command == "roster":
            from .gradebook import import_roster
            print(f"{import_roster(course, args.csv)} students imported into the gradebook")
        else:
            from .report import write_report
            print(write_report(course, args.assignment, args.out))
    except (ValueError, RuntimeError, OSError) as err:
        print(f"autograder: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
