"""Feedback, report and CSVs against hostile student content: nothing runs, nothing loads, no formula.

The course here is a copy of the real configuration with one real assignment; the graded results are written
the way the grader writes them (results.json, the merged notebook, the gradebook), so no kernel is needed.
"""
import csv
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from autograder import gradebook
from autograder.course import Course
from autograder.export import export
from autograder.feedback import write_feedback
from autograder.report import histogram, write_report

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "a04_identity_add"
PARTS = ["plain_block", "basic_block", "remove_block"]  # notebook order, not alphabetical
EVIL_ID = "=cmd|' -C calc'!A0<b>x"
TABLE_JS = "document.getElementById('autograder-summary').innerHTML='<h2>9 / 9 points</h2>';window.pwned=1"
HOSTILE = [
    new_markdown_cell(f"# Notes\n<script>{TABLE_JS}</script>\n\nEnergy $E = mc^2$ and $$\\frac{{a}}{{b}}$$\n\n"
                      "<a href=\"javascript:window.pwned=1\">click</a> <a href=\"data:text/html,<script>1</script>\">d</a>"
                      "\n\n<div style=\"position:fixed;top:0;left:0;width:100%;height:100%;background:#fff\">8/8</div>"
                      "\n\n<img src=x onerror=\"window.pwned=1\"><iframe src=\"https://example.com\"></iframe>"),
    new_code_cell("display(HTML('<script>...</script>'))", outputs=[
        new_output("display_data", data={"text/html": f"<script>{TABLE_JS}</script><b onmouseover='x()'>hi</b>"
                                         "<img src='http://example.com/t.png'><style>#autograder-summary{display:none}"
                                         "</style>",
                                         "text/plain": "<IPython.core.display.HTML object>"}),
        new_output("display_data", data={"image/svg+xml": f"<svg onload=\"{TABLE_JS}\"><script>{TABLE_JS}</script>"
                                         "</svg>", "text/plain": "svg"}),
        new_output("display_data", data={"application/javascript": TABLE_JS, "text/plain": "js"})]),
]


def results(student: str, scores: list[float], message: str = "") -> dict:
    tests = [dict(name=n, score=float(s), max_score=float(m), status="passed" if s == m else "failed",
                  output="" if s == m else message, visibility="visible")
             for n, s, m in zip(PARTS, scores, (2, 3, 2))]
    return dict(score=sum(scores), max_score=7.0, tests=tests,
                extra_data=dict(student=student, assignment=ASSIGNMENT, notebook=ASSIGNMENT, notes=[],
                                graded=True, timestamp=None))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    shutil.copy(REPO / "nbgrader_config.py", root)
    (root / "autograder").mkdir()
    shutil.copy(REPO / "autograder" / "nbgrader_config.py", root / "autograder")
    shutil.copytree(REPO / "solutions" / ASSIGNMENT, root / "solutions" / ASSIGNMENT)
    layout = Course(root)
    gradebook.release(layout, ASSIGNMENT)
    graded = {EVIL_ID: results(EVIL_ID, [0, 0, 2], "-relative error 0.5 > 1e-05\nat index 3"),
              "alice": results("alice", [0, 0, 2], "@relative error 0.7 > 1e-05\ndetails"),
              "bob": results("bob", [2, 3, 2])}
    graded["alice"]["tests"][1]["output"] = "-relative error 0.5 > 1e-05\nother details"
    for student, result in graded.items():
        folder = layout.path("autograded", student, ASSIGNMENT)
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(result))
        nbformat.write(new_notebook(cells=HOSTILE), folder / f"{ASSIGNMENT}.ipynb")
        gradebook.record(layout, result)
    return layout


@pytest.fixture(scope="module")
def pages(course):
    return {p.parent.parent.name: p for p in write_feedback(course, ASSIGNMENT)}


def test_feedback_keeps_no_script_and_renders_maths_offline(pages):
    text = pages[EVIL_ID].read_text()
    head, _, body = text.lower().partition("</head>")
    assert "<script" not in head and "@import" not in head and "url(http" not in head  # nbconvert's CSS only
    for forbidden in ("<script", "<style", "style=\"", "onerror", "onload", "onmouseover", "javascript:",
                      "data:text/html", "<iframe", "http://example.com", "https://", "<svg", EVIL_ID):
        assert forbidden not in body.split("</section>", 1)[1], forbidden
    assert re.search(r"\son\w+=", body) is None
    assert "Content-Security-Policy" in text and "script-src 'none'" in text
    assert text.count("<math") == 2 and "<mfrac>" in text  # maths as MathML: no MathJax, no network
    assert "mathjax" not in text.lower() and "require.js" not in text.lower()
    assert "=cmd|&#x27; -C calc&#x27;!A0&lt;b&gt;x" in text  # the id is shown, escaped


def test_feedback_score_table_is_unchanged_in_chromium(pages):
    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM, CHROMIUM_ARGS
    requests = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.goto(pages[EVIL_ID].as_uri())
        page.mouse.move(10, 10)
        heading = page.inner_text("#autograder-summary h2")
        cells = page.eval_on_selector_all("#autograder-summary td", "tds => tds.map(t => t.innerText)")
        pwned = page.evaluate("window.pwned")
        visible = page.is_visible("#autograder-summary")
        on_top = page.evaluate("(() => { const r = document.querySelector('#autograder-summary h2')"
                               ".getBoundingClientRect(); return document.elementFromPoint(r.x + 5, r.y + 5)"
                               ".closest('#autograder-summary') !== null })()")
        browser.close()
    assert heading == f"{ASSIGNMENT}: 2 / 7 points ({EVIL_ID})"
    assert cells[:3] == ["plain_block", "0 / 2", "failed"] and cells[8:10] == ["remove_block", "2 / 2"]
    assert pwned is None and visible and on_top
    assert all(url.startswith(("file://", "data:")) for url in requests), requests


def test_csv_cells_never_start_a_formula(course, tmp_path):
    totals, parts = export(course, tmp_path / "grades.csv")
    for path in (totals, parts):
        for row in list(csv.reader(path.open()))[1:]:
            assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), row
    rows = list(csv.DictReader(parts.open()))
    assert {r["student"] for r in rows} == {"'" + EVIL_ID, "alice", "bob"}
    assert [r["message"] for r in rows if r["student"] == "alice"][1] == "'-relative error 0.5 > 1e-05\nother details"
    assert [r["part"] for r in rows if r["student"] == "bob"] == [*PARTS, "interpretation"]  # notebook order


def test_report_counts_reasons_lists_students_and_escapes(course, tmp_path):
    (tmp_path / "roster.csv").write_text("id,first_name,last_name,email\nalice,Alice,Liddell,a@x.org\n")
    assert gradebook.import_roster(course, tmp_path / "roster.csv") == 1
    text = write_report(course, ASSIGNMENT, tmp_path / "report").read_text()
    assert "<script" not in text and "script-src 'none'" in text and EVIL_ID not in text
    assert "<td>-relative error 0.5 &gt; 1e-05</td><td>2</td>" in text  # basic_block: two students, one reason
    assert "<td>@relative error 0.7 &gt; 1e-05</td><td>1</td>" in text  # plain_block
    assert "<td>alice</td><td>Alice Liddell</td><td>graded</td><td>2</td><td>0</td><td>0</td><td>2</td>" in text
    assert "<td>bob</td><td>(not in the roster)</td><td>graded</td><td>7</td>" in text
    assert text.count("data:image/png;base64,") == 2


def test_histogram_counts_whole_students():
    ticks = histogram([3.0], 7, "one student").axes[0].get_yticks()
    assert len(ticks) > 1 and all(t == int(t) for t in ticks)


def test_bad_roster_gets_one_clear_message(course, tmp_path):
    (tmp_path / "bad.csv").write_text("name,mail\nalice,a@x.org\n")
    with pytest.raises(ValueError, match="needs an 'id' column"):
        gradebook.import_roster(course, tmp_path / "bad.csv")
