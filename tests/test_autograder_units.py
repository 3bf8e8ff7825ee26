"""The grader's parts that need no kernel: reading and rebuilding notebooks, untrusted outputs, the sandbox's
mount plan, settings, and the safe zip_collect extractor."""
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbgrader import utils
from nbgrader.apps import ZipCollectApp
from traitlets.config import Config

from autograder import grading, integrity
from autograder.collect import SafeExtractor, UnsafeArchive
from autograder.course import Autograder, Course, parse_size
from autograder.notebook import (BadSubmission, clean_traceback, merge, open_folder, read_submission,
                                 read_timestamp, notebook_text)
from autograder.sandbox import Limits, Settings
from reslab import checks
from reslab.checks import CheckFailed


def cell(kind, source, grade_id=None, **flags):
    new = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    c = new(source)
    if grade_id:
        c.metadata.nbgrader = {"grade_id": grade_id, "grade": False, "solution": False, "locked": False,
                               "schema_version": 3, **flags}
        c.metadata.nbgrader["checksum"] = utils.compute_checksum(c)
    return c


@pytest.fixture
def release():
    return nbformat.v4.new_notebook(cells=[
        cell("code", "import torch", "setup", locked=True),
        cell("code", "def f(x):\n    raise NotImplementedError()", "f_solution", solution=True),
        cell("code", "assert f(1) == 2", "f", grade=True, locked=True, points=2),
        cell("markdown", "## Part 2", "part2", locked=True),
        cell("code", "def g(x):\n    raise NotImplementedError()", "g_solution", solution=True),
        cell("code", "assert g(1) == 3", "g", grade=True, locked=True, points=1),
    ])


def submitted(release, **changes):
    """The release with the student's answers; changes: grade id -> new source, or None to delete."""
    nb = nbformat.from_dict(json.loads(json.dumps(release)))
    nb.cells = [c for c in nb.cells if changes.get(c.metadata.nbgrader.grade_id, "") is not None]
    for c in nb.cells:
        c.source = changes.get(c.metadata.nbgrader.grade_id, c.source)
    return nb


# -- reading submissions ------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, reason", [
    (b"", "is empty"),
    (b"  \n", "is empty"),
    (b'{"cells": [', "is not valid JSON (line 1, column 12"),
    (b"[" * 100_000, "is not valid JSON"),
    ('{"cells": [], "x": "caf\u00e9"}'.encode("latin-1"), "is not UTF-8 text (byte 0xe9 at offset 23)"),
    (b'[1, 2]', "is JSON but not a Jupyter notebook"),
    (b'{"cells": 3}', "is JSON but not a Jupyter notebook"),
    (b"x" * (3 << 20), "is 3.0 MB, more than the limit of 2 MB"),
])
def test_unreadable_submissions_get_a_reason(tmp_path, content, reason):
    path = tmp_path / "a.ipynb"
    path.write_bytes(content)
    with pytest.raises(BadSubmission) as err:
        read_submission(str(path), max_bytes=2 << 20)
    assert reason in str(err.value)


def test_links_and_special_files_are_not_followed(tmp_path, release):
    target = tmp_path / "secret.ipynb"
    nbformat.write(release, target)
    (tmp_path / "link.ipynb").symlink_to(target)
    os.mkfifo(tmp_path / "fifo.ipynb")
    with pytest.raises(BadSubmission, match="cannot be opened"):
        read_submission(str(tmp_path / "link.ipynb"), 10**6)
    with pytest.raises(BadSubmission, match="not a regular file"):
        read_submission(str(tmp_path / "fifo.ipynb"), 10**6)
    assert len(read_submission(str(target), 10**6)[0].cells) == len(release.cells)


def test_no_link_in_the_submission_path_is_followed(tmp_path):
    (tmp_path / "submitted" / "alice" / "a01").mkdir(parents=True)
    (tmp_path / "submitted" / "mallory").symlink_to(tmp_path / "submitted" / "alice")
    (tmp_path / "submitted" / "eve").mkdir()
    (tmp_path / "submitted" / "eve" / "a01").symlink_to(tmp_path / "submitted" / "alice" / "a01")
    os.mkfifo(tmp_path / "submitted" / "alice" / "fifo")
    os.close(open_folder(tmp_path / "submitted", "alice", "a01"))
    for student, name in (("mallory", "a01"), ("eve", "a01"), ("alice", "fifo")):
        with pytest.raises(BadSubmission, match="must be folders, not links"):
            open_folder(tmp_path / "submitted", student, name)


@pytest.mark.parametrize("make, outcome", [
    (lambda p: p.write_text("2026-12-01 10:00:00.000000 UTC\n"), "2026-12-01 10:00:00"),
    (lambda p: None, None),
    (lambda p: p.write_text(""), None),
    (lambda p: os.mkfifo(p), "is not a regular file"),
    (lambda p: p.symlink_to("/etc/hostname"), "cannot be opened"),
    (lambda p: p.write_text("9" * 2000), "more than the limit"),
    (lambda p: p.write_text("9" * 500), "holds no time"),
])
def test_timestamps_are_read_without_blocking_or_following_links(tmp_path, make, outcome):
    make(tmp_path / "timestamp.txt")
    folder = os.open(tmp_path, os.O_RDONLY)
    try:
        if outcome is None or outcome[0].isdigit():
            assert str(read_timestamp(folder)) == str(outcome)
        else:
            with pytest.raises(BadSubmission, match=outcome):
                read_timestamp(folder)
    finally:
        os.close(folder)


def test_malformed_cells_are_left_out_with_a_note(tmp_path):
    cells = [{"cell_type": "foo", "source": "x"}, {"cell_type": "code", "source": 5}, {"cell_type": "code"}, 7,
             {"cell_type": "markdown", "source": ["a", "b"], "metadata": ["not", "a", "dict"]},
             {"cell_type": "code", "source": "x = 1", "metadata": {"nbgrader": "forged"}, "outputs": [5]}]
    (tmp_path / "a.ipynb").write_text(json.dumps({"cells": cells, "metadata": "x", "nbformat": 4})[:-1]
                                      + ', "n": ' + "7" * 5000 + "}")  # more digits than Python's int() takes
    nb, notes = read_submission(str(tmp_path / "a.ipynb"), 10**6)
    assert [(c.cell_type, c.source) for c in nb.cells] == [("markdown", "ab"), ("code", "x = 1")]
    assert notes == ["left out 4 malformed cell(s) (unknown type or a source that is not text): number 1, 2, 3, 4"]


def test_big_notebooks_cost_seconds(tmp_path, release):
    """20 MB of empty markdown cells: read, merged and written in linear time (nbformat's validation of every
    cell made it ~2 minutes)."""
    nb = json.loads(json.dumps(release))
    nb["cells"] += [{"cell_type": "markdown", "metadata": {}, "source": "", "id": f"c{i}"} for i in range(290_000)]
    (tmp_path / "big.ipynb").write_text(json.dumps(nb))
    assert (tmp_path / "big.ipynb").stat().st_size > 20e6
    started = time.monotonic()
    merged, _ = merge(release, read_submission(str(tmp_path / "big.ipynb"), 30 << 20)[0])
    (tmp_path / "out.ipynb").write_text(notebook_text(merged), encoding="utf-8")
    assert time.monotonic() - started < 30
    assert len(merged.cells) == len(nb["cells"])
    small = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    small.cells = small.cells[:50]
    nbformat.validate(small)  # what the grader writes is a valid notebook


# -- rebuilding the notebook around the release -------------------------------------------------------------

def test_answers_are_kept_and_tests_restored(release):
    nb = submitted(release, f_solution="def f(x):\n    return 2 * x", f="pass", g=None, part2=None)
    merged, notes = merge(release, nb)
    nbformat.validate(merged)
    sources = {c.metadata.nbgrader.grade_id: c.source for c in merged.cells}
    assert [c.metadata.nbgrader.grade_id for c in merged.cells] == [c.metadata.nbgrader.grade_id for c in release.cells]
    assert sources["f_solution"] == "def f(x):\n    return 2 * x"
    assert sources["f"] == "assert f(1) == 2" and sources["g"] == "assert g(1) == 3"
    assert notes == ["test cell 'f' was edited: restored", "locked cell 'part2' was deleted: restored",
                     "test cell 'g' was deleted: restored"]


def test_students_own_cells_stay_where_they_were_without_forged_metadata(release):
    nb = submitted(release, g_solution=None)
    helper = nbformat.v4.new_code_cell("helper = 1")
    forged = cell("code", "print('free points')", "bonus", grade=True, locked=True, points=100)
    copy_of_test = cell("code", "assert f(1) == 2", "f", grade=True, locked=True, points=2)
    nb.cells[1:1] = [helper]
    nb.cells.append(forged)
    nb.cells.append(copy_of_test)
    merged, notes = merge(release, nb)
    assert [c.source for c in merged.cells][:3] == ["import torch", "helper = 1", release.cells[1].source]
    assert [c.source for c in merged.cells][-3:] == ["assert g(1) == 3", "print('free points')", "assert f(1) == 2"]
    assert "nbgrader" not in merged.cells[-2].metadata and "nbgrader" not in merged.cells[-1].metadata
    assert notes == ["solution cell 'g_solution' was missing: its original stub was used"]
    assert merged.cells[0] is not release.cells[0]  # never shared between submissions graded in parallel


@pytest.mark.parametrize("data", [b"[1, 2]", b'{"error": 5}', b"[" * 60000, b"1" * 5000, b"\xff", b'"text"'])
def test_forged_error_files_give_a_reason(data):
    assert grading.error_message(data).startswith("the check failed with an unreadable error file")


def test_checks_frames_are_cut_from_tracebacks():
    out = nbformat.v4.new_output("error", ename="CheckFailed", evalue="wrong",
                                 traceback=["header", "File \x1b[0;32m/x/reslab/checks/core.py:12\x1b[0m, in score",
                                            "Cell In[3], line 1"])
    assert clean_traceback(out, "reslab/checks/").traceback == ["header", "Cell In[3], line 1"]


# -- untrusted outputs --------------------------------------------------------------------------------------

def npz(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_outputs_load_as_plain_arrays_only(monkeypatch):
    assert grading.load_outputs(npz(out=np.arange(3.0)))["out"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(CheckFailed, match="could not be read as plain arrays"):
        grading.load_outputs(npz(out=np.array([{"evil": 1}], dtype=object)))  # would need pickle
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("out.npy", npz(out=np.ones(2))[:10])
        zf.writestr("payload.pkl", b"cos\nsystem\n")
    with pytest.raises(CheckFailed, match="not only arrays"):
        grading.load_outputs(archive.getvalue())
    with pytest.raises(CheckFailed, match="could not be read"):
        grading.load_outputs(b"not a zip")
    monkeypatch.setattr(grading, "OUTPUTS_LIMIT", 100)
    with pytest.raises(CheckFailed, match="too large"):
        grading.load_outputs(npz(out=np.zeros(1000)))


# -- settings and the sandbox's mount plan ------------------------------------------------------------------

def test_sizes():
    assert parse_size("2G") == 2 << 30 and parse_size("512M") == 512 << 20 and parse_size(1500) == 1500
    assert parse_size("1.5GiB") == 3 << 29
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


def test_settings_come_from_the_course_config_and_the_command_line(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.source_directory = 'solutions'\n"
        "c.Autograder.timeouts = {'a07_resnet': 300}\nc.Autograder.memory = '3G'\n")
    course = Course(tmp_path, cell_timeout=20)
    assert course.step("source") == tmp_path.resolve() / "solutions"
    assert course.settings.limits("a07_resnet") == Limits(memory=3 << 30, cell_timeout=300, submission_timeout=900,
                                                          processes=256, tmp_size=256 << 20, tmp_inodes=20_000)
    assert course.settings.limits("a01_cnn_basics").cell_timeout == 20
    assert str(tmp_path.resolve()) in course.hidden() and str(tmp_path.resolve() / "gradebook.db") in course.hidden()


def test_mount_plan_hides_folders_and_files_and_shows_the_library_again(tmp_path):
    (tmp_path / "link").symlink_to("/usr/share/doc")  # hidden wherever it really is
    settings = Settings(Autograder().limits("a01_cnn_basics"),
                        hidden=("/var/lib", "/var/lib/dpkg/status", "/etc/hostname", str(tmp_path),
                                str(tmp_path / "link")),
                        visible=("/var/lib/dpkg", "/var/lib/apt/lists", "/usr/bin"))
    plan = settings.bwrap_argv(3, "/empty")
    text = " ".join(plan)
    assert text.index("--tmpfs /var/lib ") < text.index("--ro-bind /var/lib/dpkg /var/lib/dpkg")
    assert "--perms 0755 --dir /var/lib/apt --ro-bind /var/lib/apt/lists /var/lib/apt/lists" in text
    assert "--ro-bind /empty /etc/hostname" in text and "/var/lib/dpkg/status" not in text
    assert "--tmpfs /usr/share/doc" in text and str(tmp_path) not in text  # /tmp is a fresh tmpfs anyway
    assert "--ro-bind /usr/bin" not in text  # visible paths outside hidden folders need nothing
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session"):
        assert flag in plan


# -- zip_collect --------------------------------------------------------------------------------------------

def make_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_unsafe_archives_are_rejected_whole(tmp_path):
    extractor = SafeExtractor()
    for name, members in {"dotdot": {"ok.ipynb": "{}", "../../escaped.txt": "x"},
                          "absolute": {"/tmp/absolute.txt": "x"}}.items():
        make_zip(tmp_path / f"{name}.zip", members)
        with pytest.raises(UnsafeArchive, match="outside the extraction folder"):
            extractor.extract_safely(str(tmp_path / f"{name}.zip"), str(tmp_path / name))
        assert not (tmp_path / name).exists()
    with tarfile.open(tmp_path / "link.tar.gz", "w:gz") as tf:
        link = tarfile.TarInfo("notebook.ipynb")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    with pytest.raises(UnsafeArchive, match="link or a special file"):
        extractor.extract_safely(str(tmp_path / "link.tar.gz"), str(tmp_path / "link"))
    assert not (tmp_path.parent / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()


def test_zip_collect_with_the_safe_extractor(tmp_path):
    archive = tmp_path / "downloaded" / "a01" / "archive"
    archive.mkdir(parents=True)
    make_zip(archive / "alice_a01.zip", {"alice_a01.ipynb": "{}"})
    make_zip(archive / "mallory_a01.zip", {"mallory_a01.ipynb": "{}", "../../../../mallory.txt": "x"})
    config = Config()
    config.CourseDirectory.root = str(tmp_path)
    config.ZipCollectApp.extractor_plugin = "autograder.collect.SafeExtractor"
    config.FileNameCollectorPlugin.named_regexp = r".*/(?P<student_id>[a-z]+)_(?P<file_id>a01\.ipynb)"
    app = ZipCollectApp(config=config)
    app.initialize(["a01"])
    app.start()
    assert (tmp_path / "submitted" / "alice" / "a01" / "a01.ipynb").read_text() == "{}"
    assert not (tmp_path / "submitted" / "mallory").exists()
    assert not list(tmp_path.rglob("mallory.txt")) and not (tmp_path.parent / "mallory.txt").exists()


# --- integrity flags -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("assignment", checks.ASSIGNMENTS)
def test_no_solution_or_valid_alternative_is_flagged(assignment):
    from exercise_variants import submissions
    parts = checks.parts_for(assignment)
    for submission in submissions(assignment):
        if submission.student == "solution" or submission.student.startswith(("valid", "mistakes")):
            assert integrity.scan(submission.notebook(assignment), parts) == {}, (submission.student, submission.about)


@pytest.mark.parametrize("code,reason,everywhere", [
    ("from reslab.models import BasicBlock as B\n", "imports the library's BasicBlock", False),
    ("from reslab.models import *\n", "imports the library's *", False),
    ("import reslab.models as lib\nx = lib.BasicBlock\n", "uses the library's BasicBlock", False),
    ("from reslab import models\nimport functools\nf = functools.partial(models.BasicBlock)\n", "uses the library's BasicBlock", False),
    ("from reslab import models\nf = getattr(models, 'BasicBlock')\n", "names the library's BasicBlock in a string", False),
    ("import types\nf = types.FunctionType(g.__code__, {})\n", "reaches into __code__", False),
    ("class BasicBlock(nn.Module):\n    def __new__(cls, c):\n        return object()\n", "defines __new__", False),
    ("%%capture\nfrom reslab.models import BasicBlock as B\n", "imports the library's BasicBlock", False),
    ("import torch.fx\n", "traces code with torch.fx", False),
    ("import torch\nm = torch.fx.symbolic_trace(block)\n", "traces code with torch's fx", False),
    ("import importlib\n", "imports through importlib", False),
    ("x = [c for c in ().__class__.__bases__[0].__subclasses__()]\n", "reaches into __subclasses__", False),
    # what changes how other code runs (the probe, the other parts' checks) flags every part
    ("m = __import__('reslab.models')\n", "imports by __import__", True),
    ("import sys\nsys.modules['reslab.checks'].probe = None\n", "uses sys.modules", True),
    ("get_ipython().events.register('post_execute', print)\n", "drives IPython itself", True),
    ("%load_ext autoreload\n", "drives IPython itself", True),
    ("%%capture\nget_ipython().events.register('post_execute', print)\n", "drives IPython itself", True),
    ("exec('x = 1')\n", "runs code with exec", True),
    ("import torch\ntorch.allclose = lambda *a, **k: True\n", "changes torch.allclose", True),
    ("import numpy as np\nsetattr(np, 'allclose', None)\n", "patches the module np", True),
    ("def __import__(name, *a):\n    pass\n", "replaces the built-in __import__", True),
])
def test_forging_and_copying_are_flagged(code, reason, everywhere):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import torch.nn as nn", metadata={"nbgrader": {"locked": True, "grade_id": "setup"}}),
        nbformat.v4.new_code_cell(code, metadata={"nbgrader": {"solution": True, "grade_id": "basic_block_solution"}}),
        nbformat.v4.new_code_cell("from reslab.models import BasicBlock",
                                  metadata={"nbgrader": {"locked": True, "grade_id": "given"}})])
    parts = checks.parts_for("a04_identity_add")
    flags = integrity.scan(nb, parts)
    # the part whose solution cell it is, or every part where it changes how other code runs; locked cells never
    assert list(flags) == ([p.name for p in parts] if everywhere else ["basic_block"]), flags
    assert any(reason in r for r in flags["basic_block"]), flags
    assert all(any(reason in r and "the solution cell of basic_block" in r for r in reasons)
               for name, reasons in flags.items() if name != "basic_block"), flags


def test_harmless_magics_are_not_flagged():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%matplotlib inline\n!ls\n"),
                                         nbformat.v4.new_code_cell("%%time\nx = 1\n")])
    assert integrity.scan(nb, checks.parts_for("a04_identity_add")) == {}


def test_a_students_own_cell_flags_every_part():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import importlib")])
    parts = checks.parts_for("a04_identity_add")
    assert set(integrity.scan(nb, parts)) == {p.name for p in parts}
    tests = integrity.apply([{"name": "plain_block", "score": 2.0, "status": "passed", "output": "passed"}],
                            integrity.scan(nb, parts))
    assert tests[0]["score"] == 0 and tests[0]["status"] == "failed" and tests[0]["flagged"]
    assert tests[0]["output"].startswith("flagged for manual grading (a cell of the student's imports through importlib)")


def test_the_time_limit_is_a_multiple_of_the_solutions_time(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\nc.Autograder.timeouts = {'a': 30}\n")
    course = Course(tmp_path)
    assert course.limits("a").submission_timeout == 900  # never timed: the cap
    course.timing_file("a").parent.mkdir(parents=True)
    for seconds, limit in ((4.0, 70), (1.0, 40), (200.0, 900)):  # 10x plus one cell's limit, at most the cap
        course.timing_file("a").write_text(json.dumps({"solution_seconds": seconds}))
        assert course.limits("a").submission_timeout == limit
    course.timing_file("a").write_text("[]")
    with pytest.raises(ValueError, match="autograder release a"):
        course.limits("a")


def test_nbgrader_autograde_is_the_trusted_grader_unless_opted_in(tmp_path):
    """Stock autograde never runs: nbgrader autograde goes to the trusted grader (graded by clicking Autograde in
    tests/test_autograder_browser.py), and what that cannot take (several assignments) is refused, naming the
    command, before any file is touched."""
    repo = Path(grading.__file__).resolve().parents[1]
    (tmp_path / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(repo / 'autograder' / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(tmp_path)!r}\n")
    (tmp_path / "solutions").symlink_to(repo / "solutions")
    (tmp_path / "submitted" / "zoe" / "a06_scaling").mkdir(parents=True)
    shutil.copy(repo / "exercises" / "a06_scaling" / "a06_scaling.ipynb", tmp_path / "submitted/zoe/a06_scaling")
    (tmp_path / "autograded" / "zoe" / "a06_scaling").mkdir(parents=True)
    (tmp_path / "autograded" / "zoe" / "a06_scaling" / "results.json").write_text("{}")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("AUTOGRADER_ALLOW_STOCK_AUTOGRADE", None)
    run = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "a0*", "--force"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "python -m autograder grade ASSIGNMENT" in run.stdout + run.stderr
    assert (tmp_path / "autograded" / "zoe" / "a06_scaling" / "results.json").read_text() == "{}"
    def autograde_config(**extra):
        done = subprocess.run([sys.executable, "-c", "from nbgrader.apps.nbgraderapp import NbGraderApp\n"
                               "app = NbGraderApp(); app.load_config_file()\nprint(app.config.Autograde)"],
                              cwd=tmp_path, env={**env, **extra}, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout
    assert "TrustedAutograde" in autograde_config()
    assert "TrustedAutograde" not in autograde_config(AUTOGRADER_ALLOW_STOCK_AUTOGRADE="1")
