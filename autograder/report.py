"""Class report for one assignment: the score histogram, per part the failure rate and the reasons with their
counts, and one row per student (HTML + PNG). Every text from a submission is escaped; the page runs no script.
"""
from __future__ import annotations

import base64
import html
import json
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .course import Course  # noqa: E402
from .feedback import HEAD  # noqa: E402
from .gradebook import student_names  # noqa: E402

REASON_LENGTH = 160  # a reason is the first line of a part's message, cut here


def reason(test: dict) -> str:
    """The failure reason of one part: the first line of its message (tracebacks and values vary below)."""
    lines = [line for line in test["output"].splitlines() if line.strip()]
    return (lines[0][:REASON_LENGTH] if lines else "no message") if test["status"] != "passed" else ""


def _table(header: list[str], rows: list[list]) -> str:
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return ("<table border='1' cellpadding='4' style='border-collapse:collapse'><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in header) + f"</tr>{cells}</table>")


def histogram(scores: list[float], max_score: float, title: str):
    """Students per score, one bar per integer score; both axes count in whole numbers."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(scores, bins=[x - 0.5 for x in range(int(max_score) + 2)], color="#4c72b0", edgecolor="white")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="score", ylabel="students", title=title)
    fig.tight_layout()
    return fig


def _inline(png: Path) -> str:
    """The figure as a data: URL, so the page is one self-contained file (the CSP loads nothing else)."""
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()


def write_report(course: Course, assignment: str, out: str | Path | None = None) -> Path:
    """``reports/<assignment>/index.html`` (or ``out/index.html``) with scores.png and failures.png."""
    paths = sorted(course.step("autograded").glob(f"*/{assignment}/results.json"))
    results = [json.loads(p.read_text()) for p in paths]
    if not results:
        raise ValueError(f"no graded submissions of {assignment} in {course.step('autograded')}: grade it first")
    folder = Path(out) if out else course.root / "reports" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    scores = [r["score"] for r in results]
    max_score = max(r["max_score"] for r in results)
    names = [t["name"] for t in results[0]["tests"]]  # notebook order
    reasons = {name: Counter(reason(t) for r in results for t in r["tests"] if t["name"] == name and reason(t))
               for name in names}
    failures = {name: sum(reasons[name].values()) / len(results) for name in names}

    fig = histogram(scores, max_score, f"{assignment}: scores of {len(results)} submissions")
    fig.savefig(folder / "scores.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(names)))
    ax.barh(names[::-1], [100 * failures[n] for n in names[::-1]], color="#c44e52")
    ax.set(xlabel="failed (% of submissions)", xlim=(0, 100), title="failure rate per check")
    fig.tight_layout()
    fig.savefig(folder / "failures.png", dpi=100)
    plt.close(fig)

    checks = "".join(f"<tr><td>{html.escape(n)}</td><td>{100 * failures[n]:.0f}%</td></tr>" for n in names)
    why = "".join(f"<h3>{html.escape(n)}</h3>" + _table(["reason", "submissions"], reasons[n].most_common())
                  for n in names if reasons[n])
    known = student_names(course)
    students = _table(["student", "name", "score", *names],
                      [[r["extra_data"]["student"], known.get(r["extra_data"]["student"], ""), f"{r['score']:g}",
                        *(f"{t['score']:g}" for t in r["tests"])] for r in results])
    mean = sum(scores) / len(scores)
    page = (f"<!DOCTYPE html><html><head>{HEAD}<title>{html.escape(assignment)} report</title></head>"
            f"<body style='font-family:sans-serif'><h1>{html.escape(assignment)}</h1>"
            f"<p>{len(results)} graded submissions, mean score {mean:.2f} / {max_score:g}, "
            f"{sum(s == max_score for s in scores)} with full marks.</p>"
            f"<img src='{_inline(folder / 'scores.png')}' alt='score histogram'>"
            f"<img src='{_inline(folder / 'failures.png')}' alt='failure rate per check'>"
            f"<table border='1' cellpadding='4'><tr><th>check</th><th>failed</th></tr>{checks}</table>"
            f"<h2>Why parts failed</h2>{why or '<p>No part failed.</p>'}<h2>Students</h2>{students}</body></html>")
    (folder / "index.html").write_text(page)
    return folder / "index.html"
