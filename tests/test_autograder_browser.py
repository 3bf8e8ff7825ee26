"""Formgrader's Autograde button in a real browser: it refuses (naming the trusted grader's command) and
deletes nothing, since stock nbgrader autograde would run the student's code unsandboxed."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from nbgrader.api import Gradebook
from playwright.sync_api import expect, sync_playwright
from test_browser import CHROMIUM, CHROMIUM_ARGS, free_port, stop, wait_until_serving

from autograder import gradebook
from autograder.course import Course

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "a06_scaling"


def test_formgraders_autograde_button_refuses_and_keeps_results(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(REPO / 'autograder' / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(tmp_path)!r}\n")
    (tmp_path / "solutions").symlink_to(REPO / "solutions")
    submitted = tmp_path / "submitted" / "zoe" / ASSIGNMENT
    submitted.mkdir(parents=True)
    shutil.copy(REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", submitted)
    results = tmp_path / "autograded" / "zoe" / ASSIGNMENT / "results.json"
    results.parent.mkdir(parents=True)
    results.write_text('{"score": 8.0}')  # what the trusted grader wrote
    course = Course(tmp_path)
    gradebook.release(course, ASSIGNMENT)
    with Gradebook(course.coursedir.db_url, course.coursedir.course_id) as gb:
        gb.update_or_create_student("zoe")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    env.pop("AUTOGRADER_ALLOW_STOCK_AUTOGRADE", None)
    port, log = free_port(), tmp_path / "jupyter.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "server", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
             f"--ServerApp.root_dir={tmp_path}"], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, server, log)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.goto(f"{url}/formgrader/manage_submissions/{ASSIGNMENT}")
                page.locator("td.autograde a").first.click(timeout=60_000)
                modal = page.locator("#error-modal")
                expect(modal).to_be_visible(timeout=120_000)
                expect(modal).to_contain_text("python -m autograder grade")
                expect(modal).to_contain_text("AUTOGRADER_ALLOW_STOCK_AUTOGRADE")
            finally:
                browser.close()
    finally:
        stop(server)
    assert results.read_text() == '{"score": 8.0}'
    assert (tmp_path / "autograded" / "zoe" / ASSIGNMENT).exists()
