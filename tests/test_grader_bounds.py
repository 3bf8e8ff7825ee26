"""The grader's own cost and failures are not the student's to set: hostile submissions through the real
grader (as root and as an ordinary user), and the feedback page against hostile markup in Chromium.

Each class here zeroed or stalled something before: a lone surrogate (valid JSON) in a code cell zeroed the
submission and in a markdown cell killed the batch's writer; 501 magics in one cell made IPython's transformer
give up inside the grader; a few kB of printing cells made a graded notebook of many MB; a kernel that died at
once was then scanned for minutes; nbconvert's markdown took hours on one long line; student class names and
HTML inside maths reached the page past the sanitiser.
"""
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest
from adversarial.cases import ALL, ASSIGNMENT, Case
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell
from test_autograder import POINTS, REPO, check_outcome, solve_release
from test_autograder_nonroot import grade, instructor, make_course, own, results_of  # noqa: F401 (fixture)

from autograder import grade_assignment
from autograder.feedback import _within, feedback_page
from autograder.notebook import NOTEBOOK_OUTPUT_LIMIT, OutputBudget, read_submission

FIRST_UID = 63100  # this test's own range (test_autograder: 63000)
SURROGATE = "\ud800"
PRINT_100KB = "print('x' * 99_000)\n"
# two 128 MB messages on IOPub and one on the shell channel, each of 8 frames of one 16 MB buffer (cheap for the
# kernel): ZeroMQ would buffer each whole in the grader; the sandbox's first process drops them
MESSAGE_FLOOD = """from ipykernel.kernelapp import IPKernelApp
k = IPKernelApp.instance().kernel
buf = bytearray(16 << 20)
for _ in range(2):
    k.iopub_socket.send_multipart([b"flood"] + [buf] * 8, copy=False)
k.session.send(k.shell_stream, "execute_reply", {"status": "ok"}, parent=k.get_parent("shell"),
               ident=k._parent_ident["shell"], buffers=[buf] * 8)
"""
GROWTH = 250 << 20  # bytes the grader's resident memory may grow in the whole batch (the flood: 384 MB)
CASES = [
    Case("surrogate_in_code", after={"scaled_block": f"text = '{SURROGATE}'\nprint(len(text))\n"},
         notes=("held lone surrogates",)),
    Case("surrogate_in_markdown", after={"rezero_block": f"# {SURROGATE} notes"}, notes=("held lone surrogates",)),
    # not here: a cell of 501 magics. The scan now translates it in linear time (tests/test_integrity_magics.py),
    # but the kernel's own IPython is quadratic: on a busy 2-core machine the cell outruns this test's 6 s cell
    # limit in the kernel (measured: killed after 6 s, the later parts lost), which is the student's own time
    Case("message_flood", after={"scaled_block": MESSAGE_FLOOD}, notes=("dropped in the sandbox",)),
    Case("output_flood", notes=("outputs were cut",)),  # and FLOOD_CELLS cells at the end (write)
    Case("died_then_huge", passed=(), after={"setup": "import os\nos._exit(0)\n",
                                             "layerscale_block": "x = 1\n" * 1_000_000}, notes=("the kernel died",)),
]
FLOOD_CELLS = 40  # cells printing 99 kB each: 4 MB of output from a 1 kB notebook


def write(root: Path) -> None:
    solved, source = solve_release(root)
    for case in CASES:
        case.write(root / "submitted" / case.name / ASSIGNMENT, solved, source, {})
    path = root / "submitted" / "output_flood" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    content = json.loads(path.read_text())  # many small cells, each printing the cell's limit
    content["cells"] += [nbformat.v4.new_code_cell(PRINT_100KB) for _ in range(FLOOD_CELLS)]
    path.write_text(json.dumps(content))
    path = root / "submitted" / "surrogate_in_markdown" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    content = json.loads(path.read_text())  # its extra cell becomes a markdown cell
    for cell in content["cells"]:
        if SURROGATE in "".join(cell["source"]):
            cell["cell_type"] = "markdown"
            del cell["outputs"], cell["execution_count"]
    path.write_text(json.dumps(content))


def check(results: dict, root: Path) -> None:
    for case in CASES:
        check_outcome(results[case.name], case)
    assert results["died_then_huge"]["execution_time"] < 60  # not a scan of 1,000,000 lines that never ran (200 s)
    graded = root / "autograded" / "output_flood" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert graded.stat().st_size < NOTEBOOK_OUTPUT_LIMIT + 200_000, graded.stat().st_size
    text = (root / "autograded" / "surrogate_in_markdown" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    assert "\ufffd notes" in text


@pytest.fixture(scope="module")
def course():
    root = Path(tempfile.mkdtemp(prefix="autograder-bounds-", dir="/var/tmp"))
    shutil.copytree(REPO / "solutions" / ASSIGNMENT, root / "source" / ASSIGNMENT)
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'bounds'\nc.Autograder.timeouts = {'a06_scaling': 6}\n"
        f"c.Autograder.first_uid = {FIRST_UID}\nc.Autograder.submission_timeout = 120.0\n")
    write(root)
    yield root
    shutil.rmtree(root)


def test_hostile_cost_and_encoding_as_root(course):
    peak, done = [0], threading.Event()

    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    before = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        results = grade_assignment(course, ASSIGNMENT, jobs=2)
    finally:
        done.set()
        sampler.join()
    check(results, course)
    assert peak[0] - before < GROWTH, f"the grader grew by {(peak[0] - before) >> 20} MB"


def test_hostile_cost_and_encoding_as_an_ordinary_user(instructor):  # noqa: F811
    root = make_course(instructor, "c.Autograder.submission_timeout = 120.0\n")
    try:
        write(root)
        own(root, instructor)
        run = grade(instructor, root, "--jobs", "2")
        out, err = run.communicate(timeout=900)
        assert run.returncode == 0, err[-3000:]
        check({case.name: results_of(root, case.name) for case in CASES}, root)
    finally:
        shutil.rmtree(root)


def test_lone_surrogates_are_replaced_and_noted(tmp_path):
    nb = new_notebook(cells=[new_code_cell(f"s = '{SURROGATE}'"), new_markdown_cell(f"a {SURROGATE}")])
    (tmp_path / "n.ipynb").write_text(json.dumps(json.loads(nbformat.writes(nb))))  # "\ud800" escaped: valid JSON
    read, notes = read_submission(str(tmp_path / "n.ipynb"), 1 << 20)
    assert [c.source for c in read.cells] == ["s = '\ufffd'", "a \ufffd"]
    assert notes == ["cell(s) 1, 2 held lone surrogates (characters that are not Unicode text): each was replaced "
                     "by U+FFFD"]


def test_output_budget_keeps_whole_outputs_up_to_the_limit():
    out = new_output("stream", name="stdout", text="x" * 300)
    budget = OutputBudget(int(3.5 * len(json.dumps(out))))
    first, second, third = (budget.keep([out, out]) for _ in range(3))
    assert first == [out, out] and second[0] == out and third == []
    assert "outputs left out from here on" in second[1].text and len(second) == 2 and budget.exhausted


RESULTS = dict(score=1.0, max_score=2.0, tests=[
    dict(name="part", score=1.0, max_score=2.0, status="failed", output="wrong", visibility="visible")],
    extra_data=dict(student="mallory", assignment=ASSIGNMENT, notebook=ASSIGNMENT, notes=[], graded=True))


def page_of(tmp_path: Path, cells: list, **kwargs) -> Path:
    nbformat.write(new_notebook(cells=cells), tmp_path / "n.ipynb")
    page = tmp_path / "page.html"
    page.write_text(feedback_page(RESULTS, tmp_path / "n.ipynb", **kwargs))
    return page


def test_a_long_hostile_markdown_line_renders_in_seconds(tmp_path):
    started = time.monotonic()
    text = page_of(tmp_path, [new_markdown_cell("[a](b ![c $d " * 160_000)]).read_text()  # 2 MB, one line
    assert time.monotonic() - started < 30
    assert "wrong" in text and "[a](b ![c $d [a](b" in text  # shown as text, escaped


def test_rendering_is_stopped_at_the_wall_limit(tmp_path):
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="longer than 0.5 s"):
        _within(0.5, time.sleep, 30)
    assert time.monotonic() - started < 5
    text = page_of(tmp_path, [new_markdown_cell("hi")], seconds=0.001).read_text()
    assert "The graded notebook is not shown: rendering it took longer than 0.001 s" in text and "wrong" in text


COVER = "position:fixed;top:0;left:0;width:100%;height:100%;z-index:99999;background:#fff"
JS = "window.pwned=1"
HOSTILE = [
    new_markdown_cell('<div class="jp-Dialog">dialog</div>\n\n'
                      '$\\text{<div class="jp-Dialog"><script>' + JS + '</script>maths</div>}$ and '
                      '$$<img src=x onerror="' + JS + '"><div class="jp-Dialog">block</div>$$\n\n'
                      f'<svg><foreignObject><div class="jp-Dialog" style="{COVER}">svg</div></foreignObject></svg>\n\n'
                      '<math><mtext><div class="jp-Dialog">mathml</div></mtext></math>'),
    new_raw_cell(f'<div class="jp-Dialog" style="{COVER}">raw</div><script>{JS}</script>'),
    new_code_cell("1", outputs=[
        new_output("display_data", data={"text/html": '<div class="jp-Dialog lm-Widget">html</div>',
                                         "text/plain": "html"}),
        new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "png"},
                   metadata={"image/png": {"width": '1 class=jp-Dialog onload=' + JS}}),
        new_output("display_data", data={"image/png": '" class="jp-Dialog', "text/plain": "bad png"}),
        new_output("display_data", data={"text/vnd.mermaid": f'<div class="jp-Dialog">mermaid</div>',
                                         "image/svg+xml": f'<svg onload="{JS}"><rect class="jp-Dialog"/></svg>',
                                         "text/plain": "mermaid"})]),
]


def test_hostile_markup_neither_runs_nor_covers_the_score_table_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM, CHROMIUM_ARGS
    page_file = page_of(tmp_path, HOSTILE)
    body = page_file.read_text().split("<main", 1)[1]
    assert "jp-Dialog" not in body and "<script" not in body and "onerror" not in body and "onload" not in body
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.goto(page_file.as_uri())
        dialogs = page.eval_on_selector_all("main .jp-Dialog, main [style]", "els => els.length")
        on_top = page.eval_on_selector_all(
            "#autograder-summary td, #autograder-summary h2",
            "els => els.map(e => { const r = e.getBoundingClientRect(); "
            "return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2).closest('#autograder-summary') "
            "!== null })")
        pwned = page.evaluate("window.pwned")
        browser.close()
    assert dialogs == 0 and pwned is None
    assert on_top and all(on_top), on_top
