"""The student bundle (python -m autograder.bundle OUT): the library, chapters and released exercises, and no
solution, hidden test or grader; a Jupyter server started the bundle's way offers no formgrader."""
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from test_browser import free_port, stop, wait_until_serving

from autograder.bundle import MARKERS, main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "reslab-student"
    assert main([str(out)]) == 0
    return out


def test_bundle_holds_what_students_need_and_no_solution(bundle):
    assert sorted(p.name for p in (bundle / "course").glob("*.ipynb")) == \
        sorted(p.name for p in (REPO / "course").glob("*.ipynb"))
    assert sorted(p.name for p in (bundle / "exercises").iterdir()) == sorted(p.name for p in (REPO / "solutions").iterdir())
    assert (bundle / "reslab" / "references" / "manifest.json").is_file()
    assert any((bundle / "reslab" / "datasets").iterdir())
    assert not (bundle / "solutions").exists() and not list(bundle.rglob("autograder"))
    assert not list(bundle.rglob("autograder-timing.json")) and not list(bundle.rglob("__pycache__"))
    for notebook in bundle.rglob("*.ipynb"):
        nb = nbformat.read(notebook, as_version=4)
        text = "\n".join(cell.source for cell in nb.cells)
        assert not any(marker in text for marker in MARKERS), notebook
    stub = nbformat.read(bundle / "exercises" / "a04_identity_add" / "a04_identity_add.ipynb", as_version=4)
    assert "YOUR CODE HERE" in "\n".join(cell.source for cell in stub.cells)
    assert "JUPYTER_CONFIG_PATH=jupyter jupyter lab" in (bundle / "README.md").read_text()


def test_bundle_refuses_a_release_with_a_solution_in_it(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(REPO / 'autograder' / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(tmp_path)!r}\n")
    for name in ("course", "pyproject.toml", "requirements.lock"):
        (tmp_path / name).symlink_to(REPO / name)
    shutil.copytree(REPO / "solutions" / "a04_identity_add", tmp_path / "exercises" / "a04_identity_add")  # oops
    out = tmp_path / "out"
    assert main(["--course-dir", str(tmp_path), str(out)]) == 2
    assert not out.exists()
    assert main([str(tmp_path / "nbgrader_config.py")]) == 2  # not an empty folder


def _status(url):
    try:
        return urllib.request.urlopen(url, timeout=30).status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.mark.parametrize("student", [True, False])
def test_a_server_started_the_bundles_way_offers_no_formgrader(bundle, tmp_path, student):
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("JUPYTER_CONFIG_PATH", None)
    if student:
        env["JUPYTER_CONFIG_PATH"] = "jupyter"  # relative, as the bundle's README says
    port, log = free_port(), tmp_path / "jupyter.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token="],
            cwd=bundle, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, server, log)
        assert (_status(f"{url}/formgrader") == 404) is student
        lab = urllib.request.urlopen(f"{url}/lab", timeout=30).read().decode()
        config = json.loads(lab.split('id="jupyter-config-data" type="application/json">')[1].split("</script>")[0])
        disabled = config.get("disabledExtensions", [])
        assert ("@jupyter/nbgrader:formgrader" in disabled and "@jupyter/nbgrader:create-assignment" in disabled) \
            is student
    finally:
        stop(server)
