"""The widgets in a real browser: JupyterLab 4 serves chapter 2, Playwright drives the system Chromium.

Runs all cells, moves the explorer's depth slider, toggles residual, then trains and stops a run; asserts that
the widget rendered, the plot changed, Stop worked and the browser console stayed free of errors. Screenshots
go to artifacts/. Jupyter runs from this test's Python environment and is stopped by its own process id.
"""
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import psutil
import pytest
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LAB_SETTINGS = {  # no news popup, no update check (no network), every cell attached to the page
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}
TRAIN_CELL = "from reslab.widgets import train_few_steps\n\ntrain_few_steps(steps=1000, depth=2)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(url: str, server: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"JupyterLab did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(server: subprocess.Popen) -> None:
    """SIGTERM to Jupyter's own pid (it shuts its kernels down), then any child it left, by pid."""
    try:
        children = psutil.Process(server.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab on a free local port serving a copy of chapter 2 (plus a train-few-steps cell)."""
    path = next(ROOT.glob("course/02_*.ipynb"), None)
    assert path is not None, "chapter 2 (course/02_*.ipynb), which embeds the explorer, is missing"
    chapter = nbformat.read(path, as_version=4)
    chapter.cells.append(nbformat.v4.new_code_cell(TRAIN_CELL))
    nbformat.write(chapter, tmp_path / "chapter.ipynb")
    for name, values in LAB_SETTINGS.items():
        settings_file = tmp_path / "lab-settings" / f"{name}.jupyterlab-settings"
        settings_file.parent.mkdir(parents=True, exist_ok=True)
        settings_file.write_text(json.dumps(values))
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    port, log = free_port(), tmp_path / "jupyter.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
             f"--ServerApp.root_dir={tmp_path}"],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, server, log)
        yield url
    finally:
        stop(server)


def changed_screenshot(locator, before: bytes, timeout: float = 30.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        after = locator.screenshot()
        if after != before:
            return after
        time.sleep(0.2)
    pytest.fail("the plot did not change")


def test_explorer_and_training_in_jupyterlab(lab):
    errors: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda message: message.type == "error" and errors.append(message.text))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{lab}/lab/tree/chapter.ipynb")
            # before the kernel is connected, Run All Cells silently runs nothing
            kernel_ready = re.compile(r"\(ipykernel\) \| Idle")
            expect(page.locator("#jp-main-statusbar")).to_contain_text(kernel_ready, timeout=60_000)
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-item:not(.lm-mod-disabled)", has_text=re.compile(r"^Run All Cells$")).click()

            trainer = page.locator(".reslab-TrainFewSteps")
            failed = page.locator(".jp-OutputArea-output", has_text="Traceback (most recent call last)")
            expect(trainer.or_(failed).first).to_be_visible(timeout=240_000)  # the last cell, or an error
            if failed.count():
                pytest.fail(f"a cell of the chapter failed:\n{failed.first.inner_text()[-3000:]}")
            explorer = page.locator(".reslab-GradientFlowExplorer")
            plot, summary = explorer.locator("img"), explorer.locator(".reslab-summary")
            expect(plot).to_be_visible()
            expect(summary).to_contain_text("62 weight layers")
            before = plot.screenshot()

            explorer.locator(".noUi-handle").first.focus()  # the depth slider
            page.keyboard.press("ArrowRight")
            expect(summary).to_contain_text("64 weight layers", timeout=30_000)
            plain = changed_screenshot(plot, before)
            explorer.locator("input[type=checkbox]").first.check()  # residual
            expect(summary).to_contain_text("within 10x", timeout=30_000)
            changed_screenshot(plot, plain)
            explorer.screenshot(path=ARTIFACTS / "browser_explorer.png")

            status = trainer.locator(".reslab-status")
            trainer.locator("button", has_text="Train").click()
            expect(status).to_contain_text("step", timeout=30_000)
            trainer.locator("button", has_text="Stop").click()
            expect(status).to_contain_text("stopped after", timeout=30_000)
            trainer.screenshot(path=ARTIFACTS / "browser_train.png")
        except Exception:
            page.screenshot(path=ARTIFACTS / "browser_failure.png", full_page=True)
            raise
        finally:
            browser.close()
    assert errors == []
