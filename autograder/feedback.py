"""Feedback HTML per student: the score of each part with its message, then the graded notebook.

The graded notebook holds only released cells (test cells without their hidden part) and tracebacks without
frames from the checks' code, so nothing here shows hidden check code.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

from .course import Course


def summary(results: dict) -> str:
    """An HTML table of the parts; every text is escaped (messages can quote the student's code)."""
    info = results["extra_data"]
    rows = "".join(
        f"<tr class='{html.escape(t['status'])}'><td>{html.escape(t['name'])}</td>"
        f"<td>{t['score']:g} / {t['max_score']:g}</td><td>{html.escape(t['status'])}</td>"
        f"<td>{html.escape(t['output'])}</td></tr>" for t in results["tests"])
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in info["notes"])
    return (f"<section id='autograder-summary' style='margin:1em auto;max-width:1100px;font-family:sans-serif'>"
            f"<h2>{html.escape(info['assignment'])}: {results['score']:g} / {results['max_score']:g} points "
            f"({html.escape(info['student'])})</h2>"
            "<table border='1' cellpadding='4' style='border-collapse:collapse'>"
            f"<tr><th>part</th><th>score</th><th>status</th><th>message</th></tr>{rows}</table>"
            + (f"<h3>Notes</h3><ul>{notes}</ul>" if notes else "") + "</section>")


def write_feedback(course: Course, assignment: str, students: list[str] | None = None) -> list[Path]:
    """feedback/<student>/<assignment>/<notebook>.html for each graded student; returns the files."""
    exporter, written = HTMLExporter(), []
    for folder in sorted(course.step("autograded").glob(f"*/{assignment}")):
        student = folder.parent.name
        if (students is not None and student not in students) or not (folder / "results.json").is_file():
            continue
        results = json.loads((folder / "results.json").read_text())
        notebook = folder / f"{results['extra_data']['notebook']}.ipynb"
        body = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))[0] if notebook.is_file() else \
            "<html><body></body></html>"
        head, _, tail = body.partition("<body")
        tag_end = tail.index(">") + 1
        page = f"{head}<body{tail[:tag_end]}{summary(results)}{tail[tag_end:]}"
        out = course.path("feedback", student, assignment) / f"{results['extra_data']['notebook']}.html"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page)
        written.append(out)
    return written
