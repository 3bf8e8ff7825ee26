"""Feedback HTML per student: the score of each part with its message, then the graded notebook.

The graded notebook holds only released cells (test cells without their hidden part) and tracebacks without
frames from the checks' code, so nothing here shows hidden check code. Everything the student wrote
(markdown, maths, raw cells, outputs) is hostile: it is sanitised as it enters the page (``sanitise``: no
script, no event handlers, no class names, no styles) and the whole page is sanitised again; the notebook
sits in a box that cannot cover the score table, under a Content-Security-Policy that forbids every script
and every network load. Maths is rendered here as MathML (latex2mathml), so the page needs no MathJax.

The student also sets the cost: markdown is rendered up to ``MARKDOWN_CELL`` characters per cell and
``MARKDOWN_TOTAL`` per notebook (the rest is shown as escaped text; Markdown parsers are superlinear on
hostile input), and each page is rendered in a child process killed after ``RENDER_SECONDS``.
"""
from __future__ import annotations

import base64
import binascii
import html
import json
import multiprocessing
import os
import re
import secrets
import shutil
import traceback
from pathlib import Path

import jinja2
import nbformat
from latex2mathml.converter import convert as latex_to_mathml
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from .course import Course
from .notebook import BadSubmission, open_folder, read_file
from .sanitise import CONTAINED, HEAD, sanitise, sanitise_page

ATTACHMENT = re.compile(r"attachment:([^\s()\"'<>]+)")
MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$\n]+?)\$", re.S)
MARKDOWN_CELL = 20_000  # characters of one markdown cell (or markdown output) rendered as markdown
MARKDOWN_TOTAL = 200_000  # characters of markdown rendered per notebook
RENDER_SECONDS = 60.0  # wall time to render one student's page
OUTPUT_TYPES = ("text/plain", "text/html", "text/markdown", "image/png", "image/jpeg")  # others are left out


class Markdown:
    """Markdown to HTML with maths as MathML, sanitised before the template sees it, within the notebook's
    markdown budget (one per page); images attached to the cell (``attachment:NAME``) as PNG/JPEG data."""

    def __init__(self):
        self.left = MARKDOWN_TOTAL

    def __call__(self, source: str, attachments=None) -> str:
        if len(source) > min(MARKDOWN_CELL, self.left):
            return f"<pre>{html.escape(source)}</pre>"
        self.left -= len(source)
        source = ATTACHMENT.sub(lambda match: _attachment(attachments, match.group(1)), source)
        prefix, maths = f"math{secrets.token_hex(8)}x", []

        def replace(match):
            block, tex = match.group(1) is not None, match.group(1) or match.group(2)
            try:
                maths.append(latex_to_mathml(tex.strip(), display="block" if block else "inline"))
            except Exception:  # not valid TeX: show it as written
                maths.append(html.escape(match.group(0)))
            return f"{prefix}{len(maths) - 1}x"

        rendered = markdown2html_mistune(MATH.sub(replace, source))  # TeX out of markdown's way first
        return sanitise(re.sub(f"{prefix}(\\d+)x", lambda m: maths[int(m.group(1))], rendered))


def _attachment(attachments, name: str) -> str:
    """A cell's attached PNG/JPEG as a data URL; anything else (missing, another type, not base64) as a URL the
    sanitiser drops, so the image's alt text shows instead of nbconvert failing the whole page."""
    attached = attachments.get(name) if isinstance(attachments, dict) else None
    for mime in ("image/png", "image/jpeg"):
        data = attached.get(mime) if isinstance(attached, dict) else None
        if isinstance(data, str) and _base64(data):
            return f"data:{mime};base64,{''.join(data.split())}"
    return "missing-attachment"


def _outputs(nb):
    """Outputs reduced to the types the page shows, their metadata (which the template writes into attributes
    unquoted) dropped, HTML sanitised, images only if they are base64; raw cells sanitised like HTML."""
    for cell in nb.cells:
        if cell.cell_type == "raw":
            cell.source = sanitise(cell.source)
        for out in cell.get("outputs", []):
            if "metadata" in out:
                out.metadata = nbformat.NotebookNode()
            if "data" in out:
                data = {k: v for k, v in out.data.items() if k in OUTPUT_TYPES and isinstance(v, str)}
                if "text/html" in data:
                    data["text/html"] = sanitise(data["text/html"])
                for image in ("image/png", "image/jpeg"):
                    if image in data and not _base64(data[image]):
                        del data[image]
                out.data = data


def _base64(text: str) -> bool:
    try:
        base64.b64decode("".join(text.split()), validate=True)
        return True
    except (binascii.Error, ValueError):
        return False


def notebook_html(nb) -> tuple[str, str]:
    """(styles, body) of the exported notebook: nbconvert's own CSS, and the sanitised cells."""
    nb.metadata.pop("widgets", None)
    _outputs(nb)
    exporter = HTMLExporter(template_name="lab")
    markdown = Markdown()
    exporter.register_filter("markdown2html", jinja2.pass_context(
        lambda context, source: markdown(source, context.get("cell", {}).get("attachments"))))
    exporter.register_filter("strip_files_prefix", lambda text: text)  # quadratic regexes; we serve no files
    page = exporter.from_notebook_node(nb)[0]
    head, _, rest = page.partition("<body")
    styles = "".join(re.findall(r"<style[^>]*>.*?</style>", head, re.S))  # the template's, not the student's
    return styles, sanitise_page(rest[rest.index(">") + 1:].rpartition("</body>")[0])


def summary(results: dict) -> str:
    """An HTML table of the parts; every text is escaped (messages can quote the student's code)."""
    info = results["extra_data"]
    rows = "".join(
        f"<tr class='{html.escape(t['status'])}'><td>{html.escape(t['name'])}</td>"
        f"<td>{t['score']:g} / {t['max_score']:g}</td><td>{html.escape(t['status'])}</td>"
        f"<td>{html.escape(t['output'])}</td></tr>" for t in results["tests"])
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in info["notes"])
    return (f"<section id='autograder-summary' style='margin:1em auto;max-width:1100px;font-family:sans-serif;"
            "position:relative;z-index:1;background:#fff'>"
            f"<h2>{html.escape(info['assignment'])}: {results['score']:g} / {results['max_score']:g} points "
            f"({html.escape(info['student'])})</h2>"
            "<table border='1' cellpadding='4' style='border-collapse:collapse'>"
            f"<tr><th>part</th><th>score</th><th>status</th><th>message</th></tr>{rows}</table>"
            + (f"<h3>Notes</h3><ul>{notes}</ul>" if notes else "") + "</section>")


def feedback_page(results: dict, notebook: Path, seconds: float = RENDER_SECONDS) -> str:
    """The whole page: our head (CSP), the score table, then the student's sanitised notebook, in a box it
    cannot paint outside of; if the notebook cannot be rendered within ``seconds``, a note says why."""
    styles = body = ""
    if notebook.is_file():
        try:
            styles, body = _within(seconds, _render, str(notebook))
        except Exception as err:  # the student's notebook made the renderer fail: the page says so
            body = f"<p><strong>The graded notebook is not shown: {html.escape(str(err))}.</strong></p>"
    title = html.escape(f"{results['extra_data']['assignment']}: feedback")
    return (f"<!DOCTYPE html><html><head>{HEAD}<title>{title}</title>{styles}</head>"
            f"<body class='jp-Notebook'>{summary(results)}<main style='{CONTAINED}'>{body}</main></body></html>")


def _render(notebook: str) -> tuple[str, str]:
    return notebook_html(nbformat.read(notebook, as_version=4))


def _within(seconds: float, function, *args):
    """``function(*args)`` (JSON in, JSON out) in a forked child, killed after ``seconds``: the student's
    notebook sets the cost of rendering it, and no thread could be stopped."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_answer, args=(send, function, args), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(seconds):
            raise TimeoutError(f"rendering it took longer than {seconds:g} s")
        ok, value = json.loads(receive.recv_bytes())
    except EOFError:
        raise RuntimeError("the renderer died (out of memory?)") from None
    finally:
        child.kill()
        child.join()
        receive.close()
    if not ok:
        raise RuntimeError(value)
    return value


def _answer(send, function, args):
    try:
        answer = [True, function(*args)]
    except BaseException as err:  # reported to the parent, which writes it into the page
        answer = [False, f"{type(err).__name__}: {str(err)[:300]}"]
    send.send_bytes(json.dumps(answer).encode())


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
        try:
            written.append(_write_one(course, assignment, student, folder))
        except Exception:  # this student's page only: the console says why, the others are written
            traceback.print_exc()
    return written


def _write_one(course: Course, assignment: str, student: str, folder: Path) -> Path:
    results = json.loads((folder / "results.json").read_text())
    page = feedback_page(results, folder / f"{results['extra_data']['notebook']}.ipynb")
    out = course.path("feedback", student, assignment) / f"{results['extra_data']['notebook']}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    if (folder / "timestamp.txt").is_file():  # written by the grader, from the submission's time
        shutil.copyfile(folder / "timestamp.txt", out.parent / "timestamp.txt")
    secret = submission_secret(course, student, assignment)
    if secret:
        (out.parent / "submission_secret.txt").write_text(secret)
    return out
