"""Feedback HTML per student: the score of each part with its message, then the graded notebook.

The graded notebook holds only released cells (test cells without their hidden part) and tracebacks without
frames from the checks' code, so nothing here shows hidden check code. Everything the student wrote
(markdown, outputs) is hostile: the notebook part is sanitised with nh3 (no script, no event handlers, no
``javascript:`` links, no styles that could cover the score table), and a Content-Security-Policy forbids
every script and every network load. Maths is rendered here as MathML (latex2mathml), so the page needs no
MathJax and no network.
"""
from __future__ import annotations

import html
import json
import os
import re
import secrets
import shutil
from pathlib import Path

import nbformat
import nh3
from latex2mathml.converter import convert as latex_to_mathml
from nbconvert import HTMLExporter

from .course import Course
from .notebook import BadSubmission, open_folder, read_file

CSP = ("default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
       "form-action 'none'; base-uri 'none'")
HEAD = (f"<meta charset='utf-8'><meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        "<meta name='referrer' content='no-referrer'>")
MATHML = {"math", "mrow", "mi", "mo", "mn", "ms", "mtext", "mspace", "msup", "msub", "msubsup", "mfrac", "msqrt",
          "mroot", "mover", "munder", "munderover", "mtable", "mtr", "mtd", "mstyle", "mpadded", "mphantom",
          "menclose", "semantics", "annotation"}
TAGS = (nh3.ALLOWED_TAGS | MATHML | {"div", "span", "pre", "table", "thead", "tbody", "tr", "th", "td", "img",
                                     "details", "summary", "section"})
ATTRIBUTES = {"*": {"class", "title"}, "a": {"href"}, "img": {"src", "alt", "width", "height"},
              "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"},
              **{tag: {"mathvariant", "display", "stretchy", "fence", "separator", "lspace", "rspace", "accent",
                       "columnalign", "width", "notation", "xmlns"} for tag in MATHML}}
MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$\n]+?)\$", re.S)


def sanitise(fragment: str) -> str:
    """Student-made HTML without anything that runs or loads: images only as data: URLs, links only to
    http(s) and mailto (they open nothing by themselves)."""
    return nh3.clean(fragment, tags=TAGS, attributes=ATTRIBUTES, url_schemes={"http", "https", "mailto", "data"},
                     link_rel="noopener noreferrer nofollow", strip_comments=True, attribute_filter=_safe_url)


def _safe_url(tag: str, attribute: str, value: str) -> str | None:
    """Images may only be inline data, links may not be data: (a page of its own, with its own scripts)."""
    scheme = value.strip().lower()
    if attribute == "src":
        return value if scheme.startswith("data:image/") and not scheme.startswith("data:image/svg") else None
    if attribute == "href":
        return None if scheme.startswith("data:") else value
    return value


def _render_maths(nb) -> dict[str, str]:
    """Replace the TeX in markdown cells by tokens that markdown leaves alone; returns token -> MathML."""
    prefix, rendered = f"math{secrets.token_hex(8)}x", {}

    def replace(match):
        block, tex = match.group(1) is not None, match.group(1) or match.group(2)
        try:
            mathml = latex_to_mathml(tex.strip(), display="block" if block else "inline")
        except Exception:  # not valid TeX: show it as written
            mathml = html.escape(match.group(0))
        token = f"{prefix}{len(rendered)}"
        rendered[token] = mathml
        return token

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = MATH.sub(replace, cell.source)
    return rendered


def notebook_html(nb) -> tuple[str, str]:
    """(styles, body) of the exported notebook: nbconvert's own CSS, and the sanitised cells."""
    nb.metadata.pop("widgets", None)
    maths = _render_maths(nb)
    page = HTMLExporter(template_name="lab").from_notebook_node(nb)[0]
    head, _, rest = page.partition("<body")
    styles = "".join(re.findall(r"<style[^>]*>.*?</style>", head, re.S))  # the template's, not the student's
    body = sanitise(rest[rest.index(">") + 1:].rpartition("</body>")[0])
    for token, mathml in maths.items():
        body = body.replace(token, mathml)
    return styles, body


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


def feedback_page(results: dict, notebook: Path) -> str:
    """The whole page: our head (CSP), the score table, then the student's sanitised notebook."""
    styles, body = notebook_html(nbformat.read(notebook, as_version=4)) if notebook.is_file() else ("", "")
    title = html.escape(f"{results['extra_data']['assignment']}: feedback")
    return (f"<!DOCTYPE html><html><head>{HEAD}<title>{title}</title>{styles}</head>"
            f"<body class='jp-Notebook'>{summary(results)}<main>{body}</main></body></html>")


def submission_secret(course: Course, student: str, assignment: str) -> str | None:
    """The secret `nbgrader submit` left beside the submission, which names the student's feedback file in the
    exchange; None if there is none or it is not nbgrader's hex (the student wrote that file)."""
    try:
        folder = open_folder(course.step("submitted"), student, assignment)
    except BadSubmission:
        return None
    try:
        secret = read_file("submission_secret.txt", 1024, folder).decode("ascii", errors="replace").strip()
    except BadSubmission:
        return None
    finally:
        os.close(folder)
    return secret if re.fullmatch(r"[0-9a-f]{16,256}", secret) else None


def write_feedback(course: Course, assignment: str, students: list[str] | None = None) -> list[Path]:
    """feedback/<student>/<assignment>/<notebook>.html for each graded student, with the timestamp.txt and
    submission_secret.txt that `nbgrader release_feedback` needs; returns the HTML files."""
    written = []
    for folder in sorted(course.step("autograded").glob(f"*/{assignment}")):
        student = folder.parent.name
        if (students is not None and student not in students) or not (folder / "results.json").is_file():
            continue
        results = json.loads((folder / "results.json").read_text())
        page = feedback_page(results, folder / f"{results['extra_data']['notebook']}.ipynb")
        out = course.path("feedback", student, assignment) / f"{results['extra_data']['notebook']}.html"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page)
        if (folder / "timestamp.txt").is_file():  # written by the grader, from the submission's time
            shutil.copyfile(folder / "timestamp.txt", out.parent / "timestamp.txt")
        secret = submission_secret(course, student, assignment)
        if secret:
            (out.parent / "submission_secret.txt").write_text(secret)
        written.append(out)
    return written
