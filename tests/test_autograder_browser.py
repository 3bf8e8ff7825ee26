"""Formgrader in a real browser (Chromium): every button that would bypass the trusted grader runs it or
refuses (the submission is hostile: its markdown, maths, outputs and tags carry script).

Autograde runs the trusted grader (stock nbgrader autograde would run the student's code unsandboxed); Generate
Feedback (per student and for all) writes the trusted grader's pages; Release Feedback hands out only those; the
manual-grading view shows the student's text with none of their markup running and formgrader's own controls
usable."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output
from nbgrader.api import Gradebook
from playwright.sync_api import expect, sync_playwright
from test_browser import CHROMIUM, CHROMIUM_ARGS, free_port, stop, wait_until_serving

from autograder import gradebook
from autograder.course import Course
from autograder.notebook import solve
from autograder.stock import TRUSTED_PAGE

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "a06_scaling"
SECRET = "ab" * 16
HOSTILE_MARKDOWN = """# Hostile
<script>window.pwned = 'script'; console.log('PWNED'); fetch('/pwned-script')</script>
<img src="/pwned-img.png"><link rel="stylesheet" href="/pwned.css"><style>body {display: none}</style>
<meta http-equiv="refresh" content="0; url=/pwned-refresh"><base href="http://127.0.0.1:9/">
<img src=x onerror="window.pwned = 'img'">
<svg onload="window.pwned = 'svg'"><circle r="5"/></svg>
<iframe srcdoc="<script>parent.pwned = 'iframe'</script>"></iframe>
<a href="javascript:window.pwned = 'link'" id="bad-link">click</a>
<div class="navbar navbar-fixed-top modal-backdrop" style="position:fixed;inset:0;z-index:99999;background:red"
 id="cover">COVER</div>

$\\href{javascript:window.pwned='tex'}{x}$ and $$\\style{position:fixed;inset:0;background:red}{\\text{<b>x</b>}}$$
and \\(\\unicode{x}\\) <math><mtext><img src=x onerror="window.pwned='mathml'"></mtext></math>
and $<div class="jp-Dialog modal in" style="position:fixed;inset:0;z-index:99999">maths</div>$ and
$<script>window.pwned = 'maths'</script>$ <div class="jp-Dialog modal-backdrop in">dialog</div> The student's own words.
![an image the cell does not have](attachment:missing.png) <img src="attachment:x.svg" onerror="window.pwned='att'">
"""
HUGE = "<b>" + "W" * 150_000 + "</b>\n\n" + "<div>" * 5_000 + "nested</div>"  # one unbroken line, deep nesting


def _hostile_notebook(release):
    nb = nbformat.from_dict(release)
    nb.cells.append(new_markdown_cell(HOSTILE_MARKDOWN))
    nb.cells.append(new_markdown_cell(HUGE))
    cell = new_code_cell("1", execution_count=1)
    cell.outputs = [
        new_output("display_data", data={"text/html": "<img src=x onerror=\"window.pwned='html output'\">",
                                         "image/svg+xml": "<svg onload=\"window.pwned='svg output'\"/>",
                                         "application/javascript": "window.pwned = 'js output'",
                                         "text/plain": "x"}),
        new_output("display_data", data={"text/markdown": "<script>window.pwned='md output'</script>",
                                         "text/plain": "y"}),
    ]
    cell.metadata["tags"] = ['x" onmouseover="window.pwned=\'tag\'']
    nb.cells.append(cell)
    return nb


@pytest.fixture
def course(tmp_path):
    """A course with one submission (zoe's solution) graded as if by the trusted grader, but its graded notebook
    hostile and its results 0 points, and an exchange."""
    (tmp_path / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(REPO / 'autograder' / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(tmp_path)!r}\nc.Exchange.root = {str(tmp_path / 'exchange')!r}\n"
        "c.Autograder.first_uid = 66000\n")
    (tmp_path / "exchange").mkdir()
    (tmp_path / "solutions").symlink_to(REPO / "solutions")
    course = Course(tmp_path)
    release = gradebook.release(course, ASSIGNMENT)
    submitted = tmp_path / "submitted" / "zoe" / ASSIGNMENT
    submitted.mkdir(parents=True)
    nbformat.write(solve(release, REPO / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"),
                   submitted / f"{ASSIGNMENT}.ipynb")
    (submitted / "submission_secret.txt").write_text(SECRET)
    (submitted / "timestamp.txt").write_text("2026-12-01 10:00:00.000000 UTC")
    graded = tmp_path / "autograded" / "zoe" / ASSIGNMENT
    graded.mkdir(parents=True)
    nbformat.write(_hostile_notebook(release), graded / f"{ASSIGNMENT}.ipynb")
    (graded / "timestamp.txt").write_text("2026-12-01 10:00:00.000000 UTC")
    with Gradebook(course.coursedir.db_url, course.coursedir.course_id) as gb:
        cells = [c.name for c in gb.find_notebook(ASSIGNMENT, ASSIGNMENT).grade_cells]
    results = {"score": 0.0, "max_score": float(len(cells)),
               "tests": [{"name": name, "score": 0.0, "max_score": 1.0, "status": "failed", "output": "no"}
                         for name in cells],
               "extra_data": {"student": "zoe", "assignment": ASSIGNMENT, "notebook": ASSIGNMENT, "notes": [],
                              "graded": True}}
    (graded / "results.json").write_text(json.dumps(results))
    gradebook.record(course, results)
    return course


@pytest.fixture
def formgrader(course):
    """(url, page) of a Jupyter server on the course, the instructor's Chromium on it."""
    root = course.root
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTER_RUNTIME_DIR": str(root / "runtime"), "PYTHONPATH": str(REPO)}
    env.pop("AUTOGRADER_ALLOW_STOCK_AUTOGRADE", None)
    port, log = free_port(), root / "jupyter.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "server", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
             f"--ServerApp.root_dir={root}"], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, server, log)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield url, browser.new_page()
            finally:
                browser.close()
    finally:
        stop(server)


def _feedback(course):
    return course.path("feedback", "zoe", ASSIGNMENT) / f"{ASSIGNMENT}.html"


def _click(page, url, path, selector):
    page.goto(f"{url}/formgrader/{path}")
    page.locator(selector).first.click(timeout=60_000)


def test_the_laptop_course_has_an_exchange_so_formgrader_does_not_warn():
    assert Path(Course(REPO).config.Exchange.root) == REPO / "exchange" and (REPO / "exchange").is_dir()


def test_formgraders_autograde_button_runs_the_trusted_grader(course, formgrader):
    url, page = formgrader
    page.goto(f"{url}/formgrader/manage_assignments")
    expect(page.locator("td.generate-feedback a")).to_have_count(1, timeout=60_000)
    assert page.locator("#warning-exchange").count() == 0  # an exchange folder exists, as on the laptop
    _click(page, url, f"manage_submissions/{ASSIGNMENT}", "td.autograde a")
    modal = page.locator("#success-modal")
    expect(modal).to_be_visible(timeout=300_000)
    expect(modal).to_contain_text(f"python -m autograder --course-dir {course.root} grade {ASSIGNMENT} --student zoe")
    results = json.loads((course.path("autograded", "zoe", ASSIGNMENT) / "results.json").read_text())
    points = results["max_score"]  # results.json: only the trusted grader writes it
    assert results["score"] == points > 0 and results["extra_data"]["graded"]  # was 0: the solution, graded
    expect(modal).to_contain_text(f"zoe: {points:g}/{points:g}")
    with Gradebook(course.coursedir.db_url, course.coursedir.course_id) as gb:
        assert gb.find_submission(ASSIGNMENT, "zoe").score == points
    graded = (course.path("autograded", "zoe", ASSIGNMENT) / f"{ASSIGNMENT}.ipynb").read_text()
    assert "Hostile" not in graded  # the graded notebook is the submission's, run by the grader
    page.reload()
    expect(page.locator("td.score").first).to_contain_text(f"{points:g} / ", timeout=60_000)


def test_generate_and_release_feedback_buttons_use_the_trusted_grader(course, formgrader):
    url, page = formgrader
    _click(page, url, f"manage_submissions/{ASSIGNMENT}", "td.generate-feedback a")
    expect(page.locator("#success-modal")).to_contain_text("python -m autograder", timeout=120_000)
    assert _feedback(course).read_text().startswith(TRUSTED_PAGE)
    _feedback(course).unlink()
    _click(page, url, "manage_assignments", "td.generate-feedback a")  # for all students
    expect(page.locator("#success-modal")).to_be_visible(timeout=120_000)
    page_text = _feedback(course).read_text()
    assert page_text.startswith(TRUSTED_PAGE) and "<script" not in page_text

    _click(page, url, f"manage_submissions/{ASSIGNMENT}", "td.release-feedback a")
    expect(page.locator("#success-modal")).to_be_visible(timeout=60_000)
    released = list((course.root / "exchange" / course.coursedir.course_id / "feedback").glob("*.html"))
    assert [p.read_text() for p in released] == [page_text]

    _feedback(course).write_text("<!DOCTYPE html><html><head><script src='https://cdn/mathjax.js'></script>")
    _click(page, url, f"manage_submissions/{ASSIGNMENT}", "td.release-feedback a")
    expect(page.locator("#error-modal")).to_contain_text("python -m autograder feedback", timeout=60_000)
    assert [p.read_text() for p in released] == [page_text]  # the stock page was not released


def _nbgrader(course, *args):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("AUTOGRADER_ALLOW_STOCK_AUTOGRADE", None)
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course.root, env=env, capture_output=True,
                          text=True, timeout=300)


def test_nbgrader_generate_feedback_runs_the_trusted_feedback(course):
    done = _nbgrader(course, "generate_feedback", ASSIGNMENT, "--student", "zoe")
    assert done.returncode == 0, done.stderr
    assert _feedback(course).read_text().startswith(TRUSTED_PAGE)


def test_manual_grading_view_runs_no_student_markup(course, formgrader):
    """Zoe's graded notebook opened for manual grading: her words are there, none of her markup runs, loads or
    covers formgrader's own controls, and a score typed in is saved."""
    url, page = formgrader
    ran, requests = [], []
    page.on("dialog", lambda dialog: (ran.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda message: ran.append(message.text) if "PWNED" in message.text else None)
    page.on("request", lambda request: requests.append(request.url))
    with Gradebook(course.coursedir.db_url, course.coursedir.course_id) as gb:
        submission = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, "zoe").id
    page.goto(f"{url}/formgrader/submissions/{submission}/")
    expect(page.locator("h1", has_text="Hostile")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("The student's own words.")).to_be_visible()
    expect(page.get_by_text("W" * 1000)).to_have_count(1)  # the huge line is shown, in its box
    assert page.locator("math").count() >= 1  # maths rendered, as MathML
    page.mouse.move(300, 300)
    page.wait_for_timeout(1000)
    assert page.evaluate("window.pwned") is None and ran == []
    page_own = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/"  # formgrade template's MathJax (never reached in CI)
    assert [u for u in requests if not u.startswith((url, page_own)) or "pwned" in u] == []
    students = page.locator(".tex2jax_ignore")  # every box of the student's content
    hostile = "script, iframe, style, link, meta, base, [onload], [onerror], [onmouseover], [style*=fixed], " \
              "[class*=jp-], [class*=modal], [class*=navbar], a[href^=javascript]"
    assert students.count() > 3 and sum(box.locator(hostile).count() for box in students.all()) == 0
    assert page.locator(".modal-backdrop, .jp-Dialog").count() == 0

    score = page.locator("input.score").first  # formgrader's controls: on top where they are, and working
    score.scroll_into_view_if_needed()
    score.click()
    page.keyboard.type("0.5")
    page.keyboard.press("Enter")
    grade_id = score.get_attribute("id")
    deadline = time.monotonic() + 30
    while _manual_score(course, grade_id) != 0.5:
        assert time.monotonic() < deadline, "the manual score was not saved"
        time.sleep(0.2)
    next_link = page.locator("li.next a")
    box = next_link.bounding_box()
    assert page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('li.next') !== null",
                         [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
    next_link.click()
    page.wait_for_url(f"**/formgrader/gradebook/{ASSIGNMENT}/{ASSIGNMENT}**", timeout=60_000)  # the last one


def _manual_score(course, grade_id):
    with Gradebook(course.coursedir.db_url, course.coursedir.course_id) as gb:
        return gb.find_grade(grade_id, ASSIGNMENT, ASSIGNMENT, "zoe").manual_score
