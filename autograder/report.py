"""Class report for one assignment, and the counts the command line prints after grading.

The page: counts that add up (submitted = graded + could not be graded + grader errors; not submitted is its
own count, never a failed check), the score histogram, the misconceptions (the known mistakes the checks
diagnosed) ranked by how many students hold them, per part the failure rate over graded submissions and the
full reasons, late submissions with nbgrader's late penalty, and one row per student with a link to their
feedback page. Every text from a submission is escaped; the page runs no script and loads nothing.
"""
from __future__ import annotations

import base64
import html
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from nbgrader.api import Gradebook, MissingEntry

from .course import Course
from .feedback import HEAD
from .gradebook import student_names
from .similarity import report_section

DIAGNOSIS = re.compile(r"Diagnosis: your code (.+?)\.?$", re.M)
STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1.5em;line-height:1.4}"
         "table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #999;padding:4px 8px;"
         "vertical-align:top;text-align:left}img{max-width:100%}")


def graded_students(course: Course, assignment: str) -> list[str]:
    """Students the grader has written results for."""
    return sorted(p.parent.parent.name for p in course.step("autograded").glob(f"*/{assignment}/results.json"))


def load_results(course: Course, assignment: str) -> dict[str, dict]:
    """student -> results.json content."""
    return {s: json.loads((course.path("autograded", s, assignment) / "results.json").read_text())
            for s in graded_students(course, assignment)}


def problems(course: Course, assignment: str, results: dict[str, dict]) -> dict[str, str]:
    """student -> why their submission could not be graded, in one line: the grader's reason (an empty
    folder, no or misnamed notebooks, an unreadable one) or notebooks left outside the assignment's folder."""
    found = {s: r["extra_data"]["problem"] for s, r in results.items() if r["extra_data"].get("problem")}
    for student, names in course.misplaced(assignment).items():
        found[student] = (f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} directly in submitted/{student}/"
                          f": move {'it' if len(names) == 1 else 'the right one'} into "
                          f"submitted/{student}/{assignment}/ and grade again")
    return dict(sorted(found.items()))


@dataclass
class Tally:
    """Submitted = graded + problems + errors; full marks and flagged are among the graded."""
    graded: list[str]
    full_marks: list[str]
    flagged: list[str]
    errors: list[str]  # the grader failed on these
    problems: dict[str, str]  # student -> why it could not be graded

    def line(self) -> str:
        return (f"graded {len(self.graded)}, full marks {len(self.full_marks)}, flagged {len(self.flagged)}, "
                f"errors {len(self.errors)}, problems {len(self.problems)}")


def tally(results: dict[str, dict], why: dict[str, str]) -> Tally:
    errors = sorted(s for s, r in results.items() if not r["extra_data"]["graded"] and s not in why)
    graded = sorted(s for s in results if s not in why and s not in errors)
    return Tally(graded, [s for s in graded if results[s]["score"] == results[s]["max_score"]],
                 [s for s in graded if any(t.get("flagged") for t in results[s]["tests"])], errors, why)


def reason(test: dict) -> str:
    """Why a part failed, uncut: its first line other than the diagnosis, with the diagnosis (lines below
    vary between students: tracebacks, values). '' for a passed part."""
    if test["status"] == "passed":
        return ""
    lines = [line.strip() for line in test["output"].splitlines() if line.strip()]
    first = next((line for line in lines if not line.startswith("Diagnosis: ")), "no message")
    told = misconception(test)
    return first if not told or told in first else f"{first} Diagnosis: your code {told}."


def misconception(test: dict) -> str:
    """The known mistake a failed part's outputs matched ('' if none)."""
    if test["status"] == "passed":
        return ""
    found = DIAGNOSIS.search(test["output"])
    return test.get("diagnosis") or (found[1] if found else "")


def lateness(course: Course, assignment: str) -> tuple[object, dict[str, tuple[float, float]]]:
    """(the due date or None, student -> (seconds late, late penalty)) from the gradebook, where nbgrader's
    late-penalty plugin (c.AssignLatePenalties.plugin_class) put the penalty when the submission was graded."""
    with Gradebook(course.coursedir.db_url, course.coursedir.course_id) as gb:
        try:
            due = gb.find_assignment(assignment).duedate
        except MissingEntry:
            return None, {}
        return due, {s.student.id: (s.total_seconds_late, s.late_submission_penalty or 0.0)
                     for s in gb.assignment_submissions(assignment)}


def roster(course: Course) -> list[str]:
    with Gradebook(course.coursedir.db_url, course.coursedir.course_id) as gb:
        return [s.id for s in gb.students]


def _table(header: list[str], rows: list[list], raw: int | None = None) -> str:
    """Every cell escaped, except column ``raw`` (markup made here, e.g. a link)."""
    cells = "".join("<tr>" + "".join(f"<td>{c if i == raw else html.escape(str(c))}</td>" for i, c in enumerate(row))
                    + "</tr>" for row in rows)
    return "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + f"</tr>{cells}</table>"


def histogram(scores: list[float], max_score: float, title: str):
    """Students per score, one bar per integer score; both axes count in whole numbers."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(scores, bins=[x - 0.5 for x in range(int(max_score) + 2)], color="#4c72b0", edgecolor="white")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="score", ylabel="students", title=title)
    fig.tight_layout()
    return fig


def _save(fig, path: Path) -> str:
    """The figure written to ``path`` and as a data: URL, so the page is one self-contained file (the CSP
    loads nothing else)."""
    import matplotlib.pyplot as plt
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _late(seconds: float) -> str:
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _feedback_link(course: Course, folder: Path, student: str, assignment: str, notebook: str) -> str:
    page = course.path("feedback", student, assignment) / f"{notebook}.html"
    if not page.is_file():
        return "not written yet (python -m autograder feedback)"
    return f"<a href='{html.escape(quote(os.path.relpath(page, folder)))}'>feedback</a>"


def write_report(course: Course, assignment: str, out: str | Path | None = None) -> Path:
    """``reports/<assignment>/index.html`` (or ``out/index.html``) with scores.png and failures.png."""
    import matplotlib.pyplot as plt

    results = load_results(course, assignment)
    why = problems(course, assignment, results)
    if not results and not why:
        raise ValueError(f"no graded submissions of {assignment} in {course.step('autograded')}: grade it first")
    counts = tally(results, why)
    folder = Path(out) if out else course.root / "reports" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    due, late = lateness(course, assignment)
    score = {s: max(0.0, results[s]["score"] - late.get(s, (0, 0))[1]) for s in counts.graded}
    graded = [results[s] for s in counts.graded]
    max_score = max((r["max_score"] for r in results.values()), default=0)
    names = [t["name"] for t in next(iter(results.values()))["tests"]] if results else []  # notebook order
    tests = {name: [t for r in graded for t in r["tests"] if t["name"] == name] for name in names}
    reasons = {name: Counter(reason(t) for t in tests[name] if reason(t)) for name in names}
    failures = {name: sum(reasons[name].values()) / max(len(graded), 1) for name in names}
    held = Counter(m for r in graded for m in {misconception(t) for t in r["tests"]} if m)
    parts_of = {m: sorted({t["name"] for r in graded for t in r["tests"] if misconception(t) == m}) for m in held}

    scores = _save(histogram(list(score.values()), max_score, f"{assignment}: scores of {len(graded)} graded "
                                                                "submissions"), folder / "scores.png")
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(names)))
    ax.barh(names[::-1], [100 * failures[n] for n in names[::-1]], color="#c44e52")
    ax.set(xlabel="failed (% of graded submissions)", xlim=(0, 100), title="failure rate per check")
    fig.tight_layout()
    rates = _save(fig, folder / "failures.png")

    known, everyone = student_names(course), roster(course)
    submitted = sorted({*results, *why})
    missing = sorted(set(everyone) - set(submitted))
    total = len(submitted) + len(missing)
    mean = sum(score.values()) / len(score) if score else 0.0
    summary = (f"<p>{total} students: <b>{len(submitted)} submitted</b> = {len(counts.graded)} graded "
               f"({len(counts.full_marks)} with full marks, {len(counts.flagged)} flagged for manual grading) + "
               f"{len(why)} that could not be graded + {len(counts.errors)} grader errors; "
               f"<b>{len(missing)} not submitted</b> (on the roster, no submission: not counted as failed checks)."
               f"</p><p>Mean score of the graded submissions {mean:.2f} / {max_score:g}"
               + (", after late penalties" if any(p for _, p in late.values()) else "") + ".</p>")
    checks = _table(["check", "failed (of graded)"], [[n, f"{100 * failures[n]:.0f}%"] for n in names])
    ranked = _table(["misconception: the student's code …", "students", "parts"],
                    [[m, n, ", ".join(parts_of[m])] for m, n in held.most_common()]) if held else \
        "<p>No known mistake was diagnosed.</p>"
    why_failed = "".join(f"<h3>{html.escape(n)}</h3>" + _table(["reason", "submissions"], reasons[n].most_common())
                         for n in names if reasons[n]) or "<p>No part failed.</p>"
    unusable = _table(["student", "why it could not be graded"], list(why.items())) if why else ""
    errors = _table(["student", "grader error"], [[s, results[s]["output"]] for s in counts.errors]) \
        if counts.errors else ""
    plugin = course.config.AssignLatePenalties.get("plugin_class") or \
        f"LateSubmissionPlugin, penalty_method '{course.config.LateSubmissionPlugin.get('penalty_method', 'none')}'"
    late_rows = [[s, results[s]["extra_data"].get("timestamp") or "", _late(seconds), f"{penalty:g}"]
                 for s, (seconds, penalty) in sorted(late.items()) if seconds > 0 and s in results]
    late_part = (f"<p>Due {html.escape(str(due))}; penalties by {html.escape(str(plugin))} "
                 "(c.AssignLatePenalties.plugin_class).</p>"
                 + (_table(["student", "submitted", "late by", "penalty (points)"], late_rows) if late_rows
                    else "<p>No submission was late.</p>")) if due else \
        (f"<p>No due date is set (nbgrader db assignment add {html.escape(assignment)} --duedate=...), so no "
         "submission counts as late.</p>")

    def row(student: str) -> list:
        name = known.get(student) or "(not in the roster)"
        if student in missing:
            return [student, name, "not submitted", "", *[""] * len(names), ""]
        if student in why:
            return [student, name, "could not be graded", "", *[""] * len(names), ""]
        r = results[student]
        status = "grader error" if student in counts.errors else "flagged" if student in counts.flagged else "graded"
        return [student, name, status, f"{score.get(student, r['score']):g}", *(f"{t['score']:g}" for t in r["tests"]),
                _feedback_link(course, folder.resolve(), student, assignment, r["extra_data"]["notebook"])]

    students = _table(["student", "name", "status", "score", *names, "feedback"],
                      [row(s) for s in sorted({*submitted, *missing})], raw=len(names) + 4)
    page = (f"<!DOCTYPE html><html><head>{HEAD}<title>{html.escape(assignment)} report</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(assignment)}</h1>{summary}"
            f"<img src='{scores}' alt='score histogram'><img src='{rates}' alt='failure rate per check'>{checks}"
            f"<h2>Misconceptions, by how many students hold them</h2>{ranked}"
            f"<h2>Why parts failed</h2>{why_failed}"
            + (f"<h2>Submissions that could not be graded</h2>{unusable}{errors}" if why or errors else "")
            + f"<h2>Late submissions</h2>{late_part}<h2>Students</h2>{students}"
            + f"{report_section(course, assignment)}</body></html>")
    (folder / "index.html").write_text(page)
    return folder / "index.html"
