"""One way to grade, whatever the instructor clicks: nbgrader's own commands and formgrader's buttons run the
trusted grader, or refuse, naming the command to use. Each hooks in through nbgrader's configuration
(``autograder/nbgrader_config.py``), never by patching nbgrader:

- ``nbgrader autograde`` and formgrader's *Autograde* run ``python -m autograder grade``
  (``Autograde.exporter_class``): stock autograde runs student code unsandboxed, with the hidden tests in the
  student's kernel. nbgrader builds the converter's exporter before it touches any submission or graded folder,
  and the exporter leaves it nothing to convert, so stock nbgrader neither runs nor deletes anything.
- ``nbgrader generate_feedback`` and formgrader's *Generate Feedback* (per student and for all) run
  ``python -m autograder feedback`` (``GenerateFeedback.exporter_class``) instead of writing stock pages, which
  load MathJax from a CDN and carry no Content-Security-Policy.
- ``nbgrader release_feedback`` and *Release Feedback* release only pages the trusted grader wrote
  (``ExchangeFactory.release_feedback``).
- Formgrader's manual-grading page shows the submission through ``SanitisedSubmission``
  (``HTMLExporter.preprocessors``): no student markup runs in the instructor's Jupyter origin.

``AUTOGRADER_ALLOW_STOCK_AUTOGRADE=1`` restores stock nbgrader's commands (trusted code only).
"""
from __future__ import annotations

import glob
import html
import os
import re
import subprocess
import sys

from nbconvert.exporters import Exporter
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from nbgrader.converters.base import NbGraderException
from nbgrader.exchange.default.release_feedback import ExchangeReleaseFeedback

from .feedback import Markdown
from .sanitise import CONTAINED, HEAD, sanitise

FEEDBACK = "python -m autograder feedback ASSIGNMENT [--student ID]"
TRUSTED_PAGE = f"<!DOCTYPE html><html><head>{HEAD}"  # how every page of autograder.feedback begins


class TrustedCommand(Exporter):
    """Runs the trusted grader's ``command`` for the converter's assignment (and student), then leaves the stock
    converter nothing to convert, so stock nbgrader runs no student code, writes no page and deletes nothing."""

    command = ""

    def __init__(self, *args, parent=None, **kwargs):
        super().__init__(*args, parent=parent, **kwargs)
        coursedir = parent.coursedir
        assignment, student = coursedir.assignment_id, coursedir.student_id
        usage = f"python -m autograder {self.command} ASSIGNMENT [--student ID]"
        if not assignment or glob.has_magic(assignment) or (student != "*" and glob.has_magic(student)):
            self._fail(f"this course grades with the trusted grader, one assignment at a time: {usage}")
        command = [sys.executable, "-m", "autograder", "--course-dir", coursedir.root, self.command, assignment]
        if student and student != "*":
            command += ["--student", student]
        self.log.info("Run by the trusted grader: python %s", " ".join(command[1:]))
        done = subprocess.run(command, cwd=coursedir.root, capture_output=True, text=True)
        stderr = [line.rpartition("\r")[2] for line in done.stderr.split("\n")]  # a progress bar's last state
        if done.returncode:
            self._fail(f"python {' '.join(command[1:])} exited {done.returncode}:\n"
                       + "\n".join(done.stdout.splitlines() + stderr).strip())
        for line in done.stdout.splitlines():
            self.log.info("%s", line)
        for line in filter(str.strip, stderr):  # e.g. a student whose page could not be written, and why
            self.log.warning("%s", line)
        parent.assignments = {}

    def _fail(self, message: str):
        """nbgrader's command line exits 1 on NbGraderException without a word: the reason goes to the log."""
        self.log.error("%s", message)
        raise NbGraderException(message)


class TrustedAutograde(TrustedCommand):
    """``nbgrader autograde`` and formgrader's Autograde: the trusted grader grades, sandboxed."""

    command = "grade"


class TrustedFeedback(TrustedCommand):
    """``nbgrader generate_feedback`` and formgrader's Generate Feedback: the trusted grader's pages."""

    command = "feedback"


class ReleaseTrustedFeedback(ExchangeReleaseFeedback):
    """nbgrader's release_feedback, refusing when a page in the feedback folder was not written by the trusted
    grader (stock pages run MathJax from a CDN and carry no Content-Security-Policy)."""

    def copy_files(self):
        for page in sorted(glob.glob(os.path.join(self.src_path, "*.html"))):
            with open(page, encoding="utf-8", errors="replace") as file:
                if not file.read(len(TRUSTED_PAGE)) == TRUSTED_PAGE:
                    self.fail(f"{page} was not written by the trusted grader; nothing released. Write the "
                              f"feedback with {FEEDBACK}, then release it.")
        super().copy_files()


SAFE_ID = re.compile(r"[A-Za-z0-9_.\-]{1,100}")
IMAGES = {"image/png", "image/jpeg"}
BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")


def _number(value, kind=float):
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _boxed(clean: str) -> str:
    """Sanitised HTML in a box MathJax skips (tex2jax_ignore) and nothing paints outside of, in one line, so
    the formgrader template's markdown filter passes it through unchanged (a one-line HTML block)."""
    return f'<div class="tex2jax_ignore" style="{CONTAINED}">' + clean.replace("\r", "").replace("\n", "&#10;") \
        + "</div>"


def _output(output, markdown) -> NotebookNode:
    """An output rebuilt from the fields the template prints, each checked: text stays text (the template
    escapes it), HTML is sanitised, PNG/JPEG only as base64; script, SVG, LaTeX and widgets become their text."""
    kind = output.get("output_type")
    if kind == "stream":
        return NotebookNode(output_type="stream", name="stderr" if output.get("name") == "stderr" else "stdout",
                            text=str(output.get("text", "")))
    if kind == "error":
        return NotebookNode(output_type="error", ename=str(output.get("ename", "")),
                            evalue=str(output.get("evalue", "")),
                            traceback=[str(line) for line in output.get("traceback", [])])
    data = output.get("data", {})
    kept = {"text/plain": str(data.get("text/plain", ""))}
    for mime in IMAGES & set(data):
        if isinstance(data[mime], str) and BASE64.fullmatch(data[mime]):
            kept[mime] = data[mime]
    if isinstance(data.get("text/html"), (str, list)):
        kept["text/html"] = _boxed(sanitise("".join(data["text/html"])))
    elif isinstance(data.get("text/markdown"), (str, list)):
        kept["text/html"] = _boxed(markdown("".join(data["text/markdown"])))
    clean = NotebookNode(output_type="display_data", data=kept, metadata={})
    if kind == "execute_result":
        clean.output_type, clean.execution_count = kind, _number(output.get("execution_count"), int)
    return clean


def _nbgrader(metadata) -> dict:
    """nbgrader's cell metadata with a grade id that is safe in an HTML attribute and numeric points; other
    values (the template prints them unescaped) drop the cell's grading controls."""
    info = metadata.get("nbgrader", {}) if isinstance(metadata, dict) else {}
    if not isinstance(info, dict) or not SAFE_ID.fullmatch(str(info.get("grade_id", ""))):
        return {}
    kept = {key: bool(info.get(key)) for key in ("grade", "solution", "task", "locked")}
    points = _number(info.get("points", 0))
    return {**kept, "grade_id": info["grade_id"], "points": points or 0.0}


class SanitisedSubmission(Preprocessor):
    """Formgrader's manual-grading view of a submission, rebuilt from checked fields: markdown and HTML
    outputs sanitised (autograder.feedback's sanitiser, maths as MathML), no class or id a student picks, no
    script, SVG or widget, numbers where the template prints numbers. The student controls every byte of the
    notebook, and the page runs in the instructor's Jupyter origin, where their token lives."""

    def preprocess(self, nb, resources):
        markdown, cells = Markdown(), []
        for cell in nb.cells:
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            metadata = {"nbgrader": _nbgrader(cell.get("metadata", {}))}
            ids = {"id": f"cell-{len(cells)}"}  # nbformat 4.5 wants one; the student's is not needed
            if cell.get("cell_type") == "code":
                cells.append(NotebookNode(
                    cell_type="code", source=source, metadata=metadata, **ids,
                    execution_count=_number(cell.get("execution_count"), int),
                    outputs=[_output(o, markdown) for o in cell.get("outputs", []) if isinstance(o, dict)]))
            else:
                rendered = markdown(source, cell.get("attachments")) if cell.get("cell_type") == "markdown" else \
                    f"<pre>{html.escape(source)}</pre>"
                cells.append(NotebookNode(cell_type="markdown", source=_boxed(rendered), metadata=metadata, **ids))
        nb.cells, nb.nbformat, nb.nbformat_minor = cells, 4, 5
        nb.metadata = NotebookNode(language_info={"name": "python"})
        return nb, resources
