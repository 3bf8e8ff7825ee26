"""Class report for one assignment: a score histogram and the failure rate of each check (HTML + PNG)."""
from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .course import Course  # noqa: E402


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
    names = [t["name"] for t in results[0]["tests"]]
    failures = {name: sum(t["status"] != "passed" for r in results for t in r["tests"] if t["name"] == name)
                / len(results) for name in names}

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(scores, bins=[x - 0.5 for x in range(int(max_score) + 2)], color="#4c72b0", edgecolor="white")
    ax.set(xlabel="score", ylabel="students", title=f"{assignment}: scores of {len(results)} submissions")
    fig.tight_layout()
    fig.savefig(folder / "scores.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(names)))
    ax.barh(names[::-1], [100 * failures[n] for n in names[::-1]], color="#c44e52")
    ax.set(xlabel="failed (% of submissions)", xlim=(0, 100), title="failure rate per check")
    fig.tight_layout()
    fig.savefig(folder / "failures.png", dpi=100)
    plt.close(fig)

    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{100 * failures[n]:.0f}%</td></tr>" for n in names)
    mean = sum(scores) / len(scores)
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(assignment)} report</title></head>"
            f"<body style='font-family:sans-serif'><h1>{html.escape(assignment)}</h1>"
            f"<p>{len(results)} graded submissions, mean score {mean:.2f} / {max_score:g}, "
            f"{sum(s == max_score for s in scores)} with full marks.</p>"
            "<img src='scores.png' alt='score histogram'><img src='failures.png' alt='failure rate per check'>"
            f"<table border='1' cellpadding='4'><tr><th>check</th><th>failed</th></tr>{rows}</table></body></html>")
    (folder / "index.html").write_text(page)
    return folder / "index.html"
