"""The static course site: built once per session by ``python -m website build``'s function, served by
http.server, every page loaded in headless Chromium with every request off the local server refused.

Checks: no console error and no request leaving the site on any page; every explorer answers every control
it offers, redrawing within 100 ms; every internal link and source resolves; the assignments show task text
and no solution; the launch links. Screenshots of each chapter at desktop and phone widths go to
test-artifacts/site/ for a person to look at.
"""
import functools
import html.parser
import http.server
import json
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from playwright.sync_api import sync_playwright

from test_browser import CHROMIUM, CHROMIUM_ARGS  # Debian's chromium, no background network
from reslab.widgets import flow, flow_view, gradient_flow_explorer
from reslab.widgets.flow import summary_html
from reslab.widgets.static import DIGITS, ESM, flow_grid, grid_name, view
from website.build import build, chapters, task_page

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "site"
HUB, REPO = "https://hub.example.org", "https://git.example.org/course/blob/main"
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
EXPLORER_CHAPTERS = ("02", "04", "06")
REDRAW_MS = 100


# --- the library's side, without a build ------------------------------------------------------------------

def test_the_grid_holds_the_kernel_widgets_own_numbers():
    start = flow.FlowSettings(depth=3, residual=True)
    grid = flow_grid(start, ["norm", "branch_scale"])
    assert grid["free"] == ["norm", "branch_scale"] and len(grid["results"]) == 2 * 9
    alpha = next(c for c in grid["controls"] if c["name"] == "branch_scale")
    view = grid["results"][f"0,{alpha['values'].index(0.5)}"]
    stats = flow.gradient_flow(flow.FlowSettings(depth=3, residual=True, norm=False, branch_scale=0.5))
    assert view["grad"] == pytest.approx(stats.grad_norm, rel=10 ** (1 - DIGITS))
    assert view["std"] == pytest.approx(stats.act_std, rel=10 ** (1 - DIGITS))
    assert view["summary"] == summary_html(stats)
    with pytest.raises(ValueError, match="unknown control"):
        flow_grid(start, ["depht"])


def test_in_a_kernel_the_same_front_end_draws_the_kernels_numbers():
    widget = flow_view(residual=True, depth=3)
    assert "export function render" in str(widget._esm) and str(widget._esm) == ESM.read_text()
    depth = next(c for c in widget.controls if c["name"] == "depth")
    assert depth["values"] == list(range(1, flow.MAX_DEPTH + 1)) and all(c["free"] for c in widget.controls)
    widget.picks = {**widget.picks, "depth": depth["values"].index(7)}  # what the front end sends
    assert widget.settings == flow.FlowSettings(depth=7, residual=True)
    assert widget.view == view(widget.settings) and len(widget.view["grad"]) == 2 * 7 + 2


def test_the_explorers_output_names_its_grid_for_pages_without_a_kernel():
    explorer = gradient_flow_explorer(residual=True, block="basic")
    page = explorer._repr_mimebundle_()["text/html"]
    assert f'data-grid="{grid_name(explorer.settings)}"' in page
    assert grid_name(explorer.settings) != grid_name(flow.FlowSettings())


def test_an_assignment_page_refuses_hidden_tests_and_drops_solution_code(tmp_path):
    release = next(ROOT.glob("exercises/a04*/a04*.ipynb"))
    page = task_page(release)
    solutions = [c for c in page.cells if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"]
    assert solutions and all(c.source == "# YOUR CODE HERE (in the notebook)" for c in solutions)
    leaked = nbformat.read(release, as_version=4)
    leaked.cells.append(nbformat.v4.new_code_cell("### BEGIN HIDDEN TESTS\nassert True\n### END HIDDEN TESTS"))
    nbformat.write(leaked, tmp_path / "a04.ipynb")
    with pytest.raises(ValueError, match="hidden tests"):
        task_page(tmp_path / "a04.ipynb")


# --- the built site ---------------------------------------------------------------------------------------

class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One build per session (its execution cache in _build/site, shared with the command) and a local server."""
    out = tmp_path_factory.mktemp("site")
    build(out, cache=ROOT / "_build" / "site", hub_url=HUB, repo_url=REPO)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield out, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_page(browser, base, path, size=WIDTHS["desktop"]):
    """A page with every request off ``base`` refused; returns it with its lists of errors and refusals."""
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    errors, refused = [], []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url.startswith(base + "/"):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()
    page.route("**/*", route)
    page.goto(f"{base}/{path}", wait_until="networkidle")
    return page, errors, refused


def test_the_landing_page_lays_out_the_learning_path(site):
    out, _ = site
    index = (out / "index.html").read_text()
    for path in chapters():
        minutes = nbformat.read(path, as_version=4).cells[0].source.split("**Time:** about ")[1].split()[0]
        assert f'href="course/{path.stem}.html"' in index and f"{minutes} min" in index, path.stem
    assert index.count('href="exercises/a0') >= 8 and "https://arxiv.org/abs/1512.03385" in index


def test_chapters_carry_executed_outputs_and_launch_links(site):
    out, _ = site
    for path in chapters():
        page = (out / "course" / f"{path.stem}.html").read_text()
        assert "cell_output" in page, f"{path.stem} shows no executed output"
        assert f'href="{REPO}/course/{path.name}"' in page
        assert f'href="{HUB}/hub/user-redirect/lab/tree/course/{path.name}"' in page
    for stem in EXPLORER_CHAPTERS:
        page = next((out / "course").glob(f"{stem}_*.html")).read_text()
        grid = page.split('data-grid="')[1].split('"')[0]
        assert (out / "_static" / "flow" / grid).exists()
    assert (out / "_static" / ESM.name).read_text() == ESM.read_text()  # the notebook's front end, unchanged


def test_assignment_pages_show_the_task_and_how_to_hand_it_in_without_solutions(site):
    out, _ = site
    pages = sorted((out / "exercises").glob("a0*/a0*.html"))
    assert len(pages) == len(list(ROOT.glob("exercises/a0*/a0*.ipynb"))) >= 8
    for page in pages:
        text = page.read_text()
        assert "How to get and hand in this assignment" in text and "reslab.selfcheck" in text
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "NotImplementedError" not in text
        assert (out / "notebooks" / "exercises" / page.parent.name / f"{page.stem}.ipynb").exists()


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        self.urls += [(tag, name, value) for name, value in attrs if name in ("href", "src") and value]


def test_every_internal_link_resolves_and_nothing_loads_from_elsewhere(site):
    out, _ = site
    broken, external = [], []
    for page in out.rglob("*.html"):
        if page.parts[len(out.parts)] == "_static":
            continue  # the themes' template fragments, copied with their assets; no page
        parser = Links()
        parser.feed(page.read_text())
        for tag, name, url in parser.urls:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https"):
                if tag != "a":  # a link may leave the site; nothing the page loads may
                    external.append(f"{page.relative_to(out)}: <{tag} {name}={url}>")
                continue
            if parts.scheme or not parts.path:
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(out)}: {url}")
    assert not broken, broken[:20]
    assert not external, external[:20]


def test_every_page_loads_without_errors_or_requests_leaving_the_site(site, browser):
    out, base = site
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems = []
    for html_file in sorted(out.rglob("*.html")):
        path = html_file.relative_to(out).as_posix()
        if path.startswith("_static/"):
            continue  # the themes' template fragments, copied with their assets; no page
        chapter = path.startswith("course/")
        for width, size in WIDTHS.items() if chapter else [("desktop", WIDTHS["desktop"])]:
            page, errors, refused = open_page(browser, base, path, size)
            if chapter:
                page.wait_for_function("() => document.querySelectorAll('mjx-container').length > 0 "
                                       "|| !document.body.innerText.includes('$')", timeout=20_000)
                page.screenshot(path=str(ARTIFACTS / f"{html_file.stem}-{width}.png"), full_page=True)
            if errors or refused:
                problems.append((path, width, errors, refused))
            page.close()
    assert not problems, problems


def redraw(page, name, kind):
    """Moves control ``name`` one option on; returns (ms to the redrawn plot, numbers before, after)."""
    return page.evaluate("""async ([name, kind]) => {
        const input = document.querySelector(`.reslab-flow [name="${name}"]`);
        const drawn = () => document.querySelector('.reslab-grad').dataset.values + '|' +
            document.querySelector('.reslab-std').dataset.values + '|' +
            document.querySelector('.reslab-summary').textContent;
        const before = drawn();
        const t0 = performance.now();
        if (kind === 'checkbox') input.checked = !input.checked;
        else if (kind === 'range') input.value = Number(input.value) + (input.value === input.max ? -1 : 1);
        else input.selectedIndex = (input.selectedIndex + 1) % input.options.length;
        input.dispatchEvent(new Event('change'));
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));  // painted
        return [performance.now() - t0, before, drawn()];
    }""", [name, kind])


@pytest.mark.parametrize("stem", EXPLORER_CHAPTERS)
def test_the_explorer_answers_every_control_it_offers_within_100_ms(site, browser, stem):
    out, base = site
    path = next((out / "course").glob(f"{stem}_*.html")).relative_to(out).as_posix()
    page, errors, refused = open_page(browser, base, path)
    page.wait_for_selector(".reslab-flow .reslab-summary", timeout=20_000)
    controls = page.eval_on_selector_all(".reslab-flow [name]", "els => els.map(e => [e.name, e.type, e.disabled])")
    offered = [(name, kind) for name, kind, disabled in controls if not disabled]
    assert len(offered) >= 3, controls
    timings = {}
    for name, kind in offered:
        if page.eval_on_selector(f'.reslab-flow [name="{name}"]', "e => e.disabled"):
            continue  # a move before greyed it out (the scales of a plain net)
        ms, before, after = redraw(page, name, "range" if kind == "range" else kind.split("-")[0])
        assert after != before, f"{stem}: moving {name} changed no drawn number"
        timings[name] = ms
    assert max(timings.values()) <= REDRAW_MS, timings
    assert not errors and not refused, (errors, refused)
    (ARTIFACTS / f"explorer-{stem}.json").write_text(json.dumps(timings, indent=1))
    page.close()
