"""Command line of the trusted grader: ``python -m autograder [--course-dir PATH] COMMAND ...``.

Argument parsing imports nothing heavy (no torch, no nbgrader): ``--help`` answers at once, and every command
imports what it needs when it runs.
"""
from __future__ import annotations

import argparse
import subprocess
import sys

DESCRIPTION = """\
Grade an nbgrader course's submissions in sandboxes with hidden checks, into nbgrader's gradebook.

Every command acts on one course: the folder given by --course-dir, or else the nearest folder from the
current one upwards that holds an nbgrader_config.py and the course's source folder (solutions/ here).
In a term: release ASSIGNMENT; students submit and nbgrader collects; grade ASSIGNMENT; feedback
ASSIGNMENT; report ASSIGNMENT; export. Exit status: 0 done, 1 nothing graded or a grader error, 2 a usage error."""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m autograder", description=DESCRIPTION,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--course-dir", metavar="PATH",
                     help="the course folder (default: found from the current folder upwards)")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, details: str = "") -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, description=summary + (f"\n\n{details}" if details else ""),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)

    release = command("release", "make the student version of an assignment and time its solution",
                      "Runs nbgrader generate_assignment (release/ASSIGNMENT), then grades the instructor's "
                      "solution once in the\ntrusted grader: it must get full marks, and its run time sets the "
                      "per-submission time limit\n(c.Autograder.solution_factor times as long, plus one cell's limit).")
    release.add_argument("assignment", help="the assignment's folder name in the source folder, e.g. a04_identity_add")
    release.add_argument("--unsandboxed", action="store_true",
                         help="time the solution without the sandbox (default: sandboxed)")

    grade = command("grade", "grade the submissions of an assignment into the gradebook",
                    "Each submission (submitted/STUDENT/ASSIGNMENT/) runs in a sandbox of its own, several at once; "
                    "the hidden\nchecks run outside it. Prints one line per student, one per submission that could "
                    "not be graded\n(and why), then a summary. Exit status 1 when nothing was graded or the grader "
                    "failed on a submission.")
    grade.add_argument("assignment", help="the assignment to grade, e.g. a04_identity_add")
    grade.add_argument("--student", action="append", metavar="ID",
                       help="grade only this student; repeat it for several (default: everyone who submitted)")
    grade.add_argument("--jobs", type=int, metavar="N",
                       help="submissions graded at once on this machine (default: the number of cores)")
    grade.add_argument("--scheduler", metavar="ADDRESS",
                       help="grade on the Dask cluster of this scheduler, e.g. tls://host:8786 (see docs/cluster.md; "
                            "default: this machine)")
    grade.add_argument("--unsandboxed", action="store_true",
                       help="run student code WITHOUT the sandbox: no isolation, for trusted code only "
                            "(default: sandboxed)")
    grade.add_argument("--timeout", type=float, metavar="SECONDS",
                       help="seconds each cell may run (default: c.Autograder.cell_timeout in nbgrader_config.py, 60)")
    grade.add_argument("--memory", metavar="SIZE",
                       help="memory limit of each sandboxed process, e.g. 2G (default: c.Autograder.memory, 2G)")

    feedback = command("feedback", "write each graded student's feedback page",
                       "feedback/STUDENT/ASSIGNMENT/NOTEBOOK.html: the score and message of each part and the "
                       "graded notebook,\nwithout hidden checks; nbgrader release_feedback hands them out.")
    feedback.add_argument("assignment", help="a graded assignment, e.g. a04_identity_add")
    feedback.add_argument("--student", action="append", metavar="ID",
                          help="only this student; repeat it for several (default: every graded student)")

    export = command("export", "write the gradebook's scores as CSV",
                     "OUT has one row per student and assignment (score after any late penalty, submitted or not, "
                     "late by,\nneeds manual grading); OUT_parts.csv one row per part with the grader's message.")
    export.add_argument("--out", default="grades.csv", metavar="FILE", help="the totals' CSV (default: grades.csv)")

    report = command("report", "write the class report of an assignment (one HTML page)",
                     "Counts that add up (submitted, graded, flagged, problems, not submitted), the score "
                     "histogram, the\nmisconceptions by how many students hold them, why each part failed, "
                     "late submissions, and one\nrow per student with a link to their feedback page.")
    report.add_argument("assignment", help="a graded assignment, e.g. a04_identity_add")
    report.add_argument("--out", metavar="FOLDER",
                        help="folder for index.html and its figures (default: reports/ASSIGNMENT in the course)")

    roster = command("roster", "import students' names into the gradebook from a CSV",
                     "Columns: id (required), first_name, last_name, email: nbgrader's own roster format.")
    roster.add_argument("csv", help="the roster file")

    command("selfcheck-service", "serve the students' self-checks (run by JupyterHub as the instructor)",
            "Students ask with python -m reslab.selfcheck; see deploy/hub/README.md.")
    return top


def grade(course, args) -> int:
    """Grade, then one line per student, one per problem, and the summary; 1 when nothing was graded."""
    from .course import unknown_name
    from .report import problems, tally
    students = course.students(args.assignment)
    for student in args.student or ():
        if student not in students:
            raise unknown_name("student", student, students)
    if not students:
        for line in problems(course, args.assignment, {}).values():
            print(line)
        print(f"autograder: no submissions of {args.assignment} in {course.step('submitted')} "
              f"(expected submitted/STUDENT/{args.assignment}/; nbgrader collect puts them there)", file=sys.stderr)
        return 1
    from .assignment import grade_assignment
    results = grade_assignment(course.root, args.assignment, args.student, args.jobs,
                               sandboxed=not args.unsandboxed, progress=True, scheduler=args.scheduler,
                               cell_timeout=args.timeout, memory=args.memory)
    why = {s: p for s, p in problems(course, args.assignment, results).items() if s in (args.student or [s])}
    for student, r in sorted(results.items()):
        print(f"{student}: {r['score']:g}/{r['max_score']:g}" + (f"  not graded: {why[student]}" if student in why
                                                                 else ""))
    for student in sorted(set(why) - set(results)):
        print(f"{student}: not graded: {why[student]}")
    counts = tally(results, why)
    if counts.errors:
        print(f"not graded because of grader errors: {', '.join(counts.errors)}", file=sys.stderr)
    print(counts.line())
    return 1 if counts.errors or not counts.graded else 0


def main(argv: list[str] | None = None) -> int:
    command_line = parser()
    args = command_line.parse_args(argv)
    if args.command == "grade" and args.scheduler and args.jobs:
        command_line.error("--jobs is for grading on this machine; with --scheduler the workers' threads decide")
    try:
        from .course import Course, unknown_name
        course = Course.find(args.course_dir)
        if getattr(args, "assignment", None):
            course.check_assignment(args.assignment)
        if args.command == "selfcheck-service":
            from .selfcheck import serve
            serve(course.root)
        elif args.command == "grade":
            return grade(course, args)
        elif args.command == "release":
            from .gradebook import nbgrader_tools_on_path
            from .grading import time_solution
            nbgrader_tools_on_path()
            done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", args.assignment, "--force"],
                                  cwd=course.root)
            if done.returncode:
                raise ValueError(f"nbgrader generate_assignment {args.assignment} failed (see above)")
            results, seconds = time_solution(course.root, args.assignment, sandboxed=not args.unsandboxed)
            print(f"{args.assignment}: the solution scores {results['score']:g}/{results['max_score']:g} in "
                  f"{seconds:.1f} s; a submission may run {course.limits(args.assignment).submission_timeout:g} s")
        elif args.command == "feedback":
            from .feedback import write_feedback
            from .report import graded_students
            graded = graded_students(course, args.assignment)
            if not graded:
                print(f"autograder: no graded submissions of {args.assignment} in {course.step('autograded')}: "
                      f"run python -m autograder grade {args.assignment} first", file=sys.stderr)
                return 1
            for student in args.student or ():
                if student not in graded:
                    raise unknown_name("graded student", student, graded)
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
