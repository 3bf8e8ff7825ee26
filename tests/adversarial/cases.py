"""Adversarial submissions of a06_scaling and the exact outcome the trusted grader must give each.

Every case starts from the solved release notebook (what an honest student submits) and adds what a student
could do: extra cells, edited or deleted cells, wrong implementations, or a broken file. ``passed`` lists the
parts that must get their points; every other part must score 0 with a message containing ``messages[part]``
(if given); ``notes`` are fragments the submission's notes must contain. Attacks that look around print a
line ``EVIDENCE {json}`` that the tests read from the graded notebook.
"""
from __future__ import annotations

import copy
import json
import os
import stat
from dataclasses import dataclass, field
from typing import Callable

import nbformat

ASSIGNMENT = "a06_scaling"
CLASSES = {"scaled_block": "ScaledBlock", "rezero_block": "ReZeroBlock", "layerscale_block": "LayerScaleBlock"}
ALL = tuple(CLASSES)
DETACHED_MARKER = "4242.4243"
SLEEPS = 25
HUGE_INT = "<a 5000-digit integer>"  # Python's json refuses to read (and write) integers that long


def wrong(part: str) -> str:
    """A plausible-looking wrong implementation: the right block plus a constant."""
    cls = CLASSES[part]
    return f"class {cls}({cls}):\n    def forward(self, x):\n        return super().forward(x) + 0.5\n"


MONKEYPATCH = """\
import numpy as np, torch, reslab.checks as rc
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
np.allclose = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
rc.rel_error = lambda *a, **k: 0.0
rc.validate = lambda *a, **k: None
rc.score = lambda part, *a, **k: rc.Result(part.name, part.points, part.points, True, "passed")
"""

ALWAYS_EQUAL = """\
class AlwaysEqual(torch.Tensor):
    def __eq__(self, other):
        return True

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})


class ScaledBlock(ScaledBlock):
    def forward(self, x):
        return torch.zeros_like(x).as_subclass(AlwaysEqual)
"""

TRANSFORMER = """\
def _blank(lines):
    text = "".join(lines)
    return ["pass\\n"] if any(word in text for word in ("run_in_kernel", "probe", "assert")) else lines

get_ipython().input_transformers_post.append(_blank)
"""

LOOK_AROUND = """\
import json, os

def _look(path):
    try:
        if os.path.isdir(path):
            return {"listing": sorted(os.listdir(path))}
        with open(path, "rb") as f:
            return {"bytes": len(f.read())}
    except OSError as err:
        return {"error": type(err).__name__}

found = {name: _look(path) for name, path in TARGETS.items() if isinstance(path, str)}
found["uid"] = os.getuid()
found["processes"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
found["environment"] = sorted(os.environ)
print("EVIDENCE " + json.dumps(found))
"""

TAMPER = """\
import json, os, sqlite3

def _try(action):
    try:
        action()
        return "done"
    except Exception as err:
        return type(err).__name__

def _update_gradebook():
    db = sqlite3.connect(TARGETS["gradebook"])
    db.execute("UPDATE grade SET manual_score = 100")
    db.commit()

def _write(path):
    with open(path, "w") as f:
        f.write("pwned")

found = {"gradebook": _try(_update_gradebook),
         "gradebook_file": _try(lambda: _write(TARGETS["gradebook"])),
         "course": _try(lambda: _write(TARGETS["course"] + "/pwned.txt")),
         "library": _try(lambda: _write(TARGETS["library"] + "/pwned.py"))}
print("EVIDENCE " + json.dumps(found))
"""

NETWORK = """\
import json, socket

def _connect(address):
    try:
        socket.create_connection(address, timeout=3).close()
        return "connected"
    except OSError as err:
        return type(err).__name__

print("EVIDENCE " + json.dumps({"internet": _connect(("1.1.1.1", 53)), "host": _connect(TARGETS["host_port"])}))
"""

SWAP_LINKS = """\
import json, os

def _try(action):
    try:
        action()
        return "done"
    except OSError as err:
        return type(err).__name__

found = {"rename_work": _try(lambda: os.rename("/tmp/work", "/tmp/elsewhere")),
         "rename_kernel": _try(lambda: os.rename("/tmp/kernel", "/tmp/elsewhere")),
         "link_in_kernel": _try(lambda: os.symlink("/etc/passwd", "/tmp/kernel/k-9")),
         "remove_socket": _try(lambda: os.remove("/tmp/kernel/k-1"))}
print("EVIDENCE " + json.dumps(found))
"""

FILL_TMP = """\
with open("/tmp/work/filler", "wb") as f:
    try:
        while True:
            f.write(bytes(1 << 20))
    except OSError as err:
        print("full:", err)
"""

FORK_BOMB = """\
import os, signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.01)
"""

DETACHED = f"""\
import os, subprocess
subprocess.Popen(["sleep", "{DETACHED_MARKER}"], start_new_session=True, stdout=subprocess.DEVNULL)
if os.fork() == 0:  # a classic daemon: double fork, new session, then exec
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "{DETACHED_MARKER}"])
    os._exit(0)
"""

NOISY = """\
import sys, warnings
print("noise on stderr", file=sys.stderr)
warnings.warn("a warning: stock nbgrader would zero the next test cell for it")
_forward = {cls}.forward

def _noisy_forward(self, x):
    warnings.warn("every forward pass warns")
    print("more noise", file=sys.stderr)
    return _forward(self, x)

{cls}.forward = _noisy_forward
"""


FORGED_ERRORS = """\
import reslab.checks as _rc
_payloads = {"scaled_block": b"[1, 2]", "rezero_block": b'{"error": 5}', "layerscale_block": b"[" * 60000}

def _probe(assignment, name, namespace, inputs_path, outputs_path):
    with open(str(outputs_path) + ".error.json", "wb") as f:
        f.write(_payloads[name])

_rc.probe = _probe
"""

MANY_FILES = """\
import json, os, shutil
os.makedirs("/tmp/many")
count = 0
try:
    while count < 200_000:
        open(f"/tmp/many/{count}", "w").close()
        count += 1
except OSError as err:
    error = err.strerror
shutil.rmtree("/tmp/many")
print("EVIDENCE " + json.dumps({"files": count, "error": error}))
"""


@dataclass
class Case:
    name: str
    passed: tuple = ALL
    after: dict = field(default_factory=dict)     # grade id -> code of the cell(s) the student inserts after it
    prepend: dict = field(default_factory=dict)   # solution grade id -> code put before the student's solution
    edit: dict = field(default_factory=dict)      # grade id -> the cell's new source
    delete: tuple = ()                            # grade ids of deleted cells
    raw: bytes | None = None                      # the submitted file's bytes instead of a notebook
    filename: str | None = None                   # submitted under another name
    symlink: bool = False                         # the notebook is a symbolic link to the source notebook
    special: str | None = None                    # the notebook is a "fifo" or a "device"
    folder_link: str | None = None                # the assignment folder is a link to this target
    student_link: str | None = None               # the student's folder is a link to this target
    timestamp: str | bytes | None = None          # timestamp.txt: its bytes, or "fifo" / "link"
    mangle: Callable[[dict], None] | None = None  # edits the notebook's JSON before it is written
    v3: bool = False                              # written in nbformat 3
    notes: tuple = ()
    messages: dict = field(default_factory=dict)
    evidence: bool = False

    def write(self, folder, solved: nbformat.NotebookNode, source_notebook, targets: dict) -> None:
        """Write this submission into ``folder`` (submitted/<student>/<assignment>/)."""
        if self.student_link or self.folder_link:
            link = folder.parent if self.student_link else folder
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(targets[self.student_link or self.folder_link])
            return
        folder.mkdir(parents=True)
        path = folder / (self.filename or f"{ASSIGNMENT}.ipynb")
        if self.symlink:
            path.symlink_to(source_notebook)
        elif self.special == "fifo":
            os.mkfifo(path)
        elif self.special == "device":
            os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero: endless
        elif self.raw is not None:
            path.write_bytes(self.raw)
        else:
            nb = self.notebook(solved, targets)
            if self.v3:
                nb = nbformat.convert(nb, 3)
            content = json.loads(nbformat.writes(nb, version=nbformat.NO_CONVERT))
            if self.mangle:
                self.mangle(content)
            path.write_text(json.dumps(content).replace(f'"{HUGE_INT}"', "7" * 5000))
        if self.timestamp == "fifo":
            os.mkfifo(folder / "timestamp.txt")
        elif self.timestamp == "link":
            (folder / "timestamp.txt").symlink_to(targets["source_real"])
        elif self.timestamp is not None:
            (folder / "timestamp.txt").write_bytes(self.timestamp)

    def notebook(self, solved: nbformat.NotebookNode, targets: dict) -> nbformat.NotebookNode:
        nb = copy.deepcopy(solved)
        cells = []
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in self.delete:
                continue
            if gid in self.prepend:
                cell.source = self.prepend[gid] + cell.source
            if gid in self.edit:
                cell.source = self.edit[gid]
            cells.append(cell)
            codes = self.after.get(gid, [])
            for code in [codes] if isinstance(codes, str) else codes:
                if "TARGETS" in code:
                    code = f"TARGETS = {json.dumps(targets)}\n" + code
                cells.append(nbformat.v4.new_code_cell(code))
        nb.cells = cells
        return nb


STUBS = {f"{p}_solution": f"class {cls}(nn.Module):\n    def __init__(self, *args):\n        raise NotImplementedError\n"
         for p, cls in CLASSES.items()}

# The forged probe of the first round, written against the split registry: it has no answer key to call,
# so it rebuilds the answer from the library's own block and writes it where the grader reads outputs.
FORGED_PROBE = """\
import numpy as np, torch.nn as nn, reslab.checks as rc
from reslab import models
from reslab.checks import harness

def _library(name, channels, *extra):
    scale = models.Scale(extra[0]) if name == "scaled_block" else models.Scale(
        extra[0] if extra else 0.0, channels if name == "layerscale_block" else None, learnable=True)
    return models.BasicBlock(channels, channels, shortcut=nn.Identity(), scale=scale)

def _forged(assignment, name, namespace, inputs_path, outputs_path):
    with np.load(inputs_path) as stored:
        inputs = {k: stored[k] for k in stored.files}
    modules = harness.Modules({"scaled_block": "ScaledBlock", "rezero_block": "ReZeroBlock"}.get(name, "LayerScaleBlock"))
    outputs = modules.outputs(inputs, lambda **a: _library(name, *a.values()), str, str)
    np.savez(outputs_path + ".npz", **outputs)
    import os
    os.replace(outputs_path + ".npz", outputs_path)

rc.probe = _forged
"""

POST_EXECUTE_HOOK = """\
import glob, os, shutil

def _rewrite(*args):
    for error in glob.glob("out-*.error.json"):
        os.remove(error)
    for out in glob.glob("in-*.npz"):
        shutil.copy(out, out.replace("in-", "out-"))

get_ipython().events.register("post_execute", _rewrite)
"""

SHADOWED_IMPORT = """\
_real_import = __builtins__.__import__ if hasattr(__builtins__, "__import__") else __builtins__["__import__"]

def __import__(name, *args, **kwargs):
    return _real_import(name, *args, **kwargs)
"""

LIBRARY_WRAPPERS = {
    "scaled_block_solution": "import functools\nfrom reslab.models import BasicBlock, Scale\n"
                             "ScaledBlock = functools.partial(BasicBlock)\n",
    "rezero_block_solution": "from reslab import models\n\nclass ReZeroBlock(nn.Module):\n"
                             "    def __new__(cls, channels):\n"
                             "        return models.BasicBlock(channels, channels, shortcut=nn.Identity(),\n"
                             "                                 scale=models.Scale(0.0, learnable=True))\n",
    "layerscale_block_solution": "import types\nfrom reslab import models as m\n"
                                 "LayerScaleBlock = types.FunctionType(m.build.__code__, globals())\n",
}

ANSWER_KEY = """\
import json, importlib

def _try(action):
    try:
        action()
        return "done"
    except Exception as err:
        return type(err).__name__

found = {"import_key": _try(lambda: importlib.import_module("autograder.key")),
         "import_key_module": _try(lambda: importlib.import_module("autograder.key.a06_scaling")),
         "read_key": _try(lambda: open(TARGETS["key"]).read()),
         "reference_in_checks": hasattr(importlib.import_module("reslab.checks").part("a06_scaling", "scaled_block"),
                                        "reference")}
print("EVIDENCE " + json.dumps(found))
"""

FLAGGED = {p: "flagged for manual grading" for p in ALL}


def _wrong_everywhere(**after) -> dict:
    return {f"{part}_solution": wrong(part) for part in ALL} | after


def _notebook_text(text: str) -> str:
    return json.dumps(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)]), ensure_ascii=False)


CASES = [
    Case("correct"),
    Case("correct_too"),
    Case("monkeypatch", passed=(), after=_wrong_everywhere(setup=MONKEYPATCH),
         messages={p: "relative error" for p in ALL}),
    Case("tensor_subclass", passed=("rezero_block", "layerscale_block"),
         after={"scaled_block_solution": ALWAYS_EQUAL}),
    Case("input_transformer", passed=(), after=_wrong_everywhere(setup=TRANSFORMER),  # the probe is no cell
         messages={p: "relative error" for p in ALL}),
    Case("forged_probe", passed=(), edit=STUBS, after={"setup": FORGED_PROBE}, messages=FLAGGED),
    Case("post_execute_hook", passed=(), edit=STUBS, after={"setup": POST_EXECUTE_HOOK}, messages=FLAGGED),
    Case("shadowed_import", passed=(), after={"setup": SHADOWED_IMPORT}, messages=FLAGGED),
    Case("library_wrappers", passed=(), edit=LIBRARY_WRAPPERS, messages=FLAGGED),
    Case("answer_key", passed=(), after={"setup": ANSWER_KEY}, evidence=True, messages=FLAGGED),
    Case("look_around", after={"setup": LOOK_AROUND}, evidence=True),
    Case("tamper", after={"setup": TAMPER}, evidence=True),
    Case("network", after={"setup": NETWORK}, evidence=True),
    Case("swap_links", after={"setup": SWAP_LINKS}, evidence=True),
    Case("fill_tmp", passed=("scaled_block",), after={"scaled_block": FILL_TMP},
         messages={"rezero_block": "could not be written", "layerscale_block": "could not be written"}),
    Case("fork_bomb", passed=("scaled_block",), after={"scaled_block": FORK_BOMB},
         messages={"rezero_block": "not graded", "layerscale_block": "not graded"}, notes=("kernel was stopped",)),
    Case("memory_bomb", passed=("scaled_block", "layerscale_block"),
         prepend={"rezero_block_solution": "_hog = bytearray(8 * 2**30)\n"},
         messages={"rezero_block": "not defined"}),
    Case("infinite_loop", passed=("scaled_block", "rezero_block"),
         prepend={"layerscale_block_solution": "while True:\n    pass\n"},
         messages={"layerscale_block": "not defined"}, notes=("interrupted after the time limit",)),
    Case("sigint_ignored", passed=("scaled_block", "rezero_block"),
         after={"rezero_block": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n"},
         messages={"layerscale_block": "not graded"}, notes=("ignored the interrupt",)),
    Case("os_exit", passed=("scaled_block",), after={"scaled_block": "import os\nos._exit(0)\n"},
         messages={"rezero_block": "kernel died", "layerscale_block": "kernel died"}),
    Case("sys_exit", after={"setup": "import sys\nsys.exit('bye')\n"}),
    Case("detached_child", after={"setup": DETACHED}),
    Case("edited_tests", passed=("scaled_block", "rezero_block"),
         after={"layerscale_block_solution": wrong("layerscale_block")},
         edit={"scaled_block": "pass\n", "layerscale_block": "pass\n",
               "setup": "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
                        "torch.allclose = lambda *a, **k: True\n"},
         notes=("test cell 'scaled_block' was edited: restored", "test cell 'layerscale_block' was edited: restored",
                "locked cell 'setup' was edited: restored"),
         messages={"layerscale_block": "relative error"}),
    Case("deleted_tests", delete=("rezero_block", "layerscale_block", "part3"),
         notes=("test cell 'rezero_block' was deleted: restored", "test cell 'layerscale_block' was deleted: restored",
                "locked cell 'part3' was deleted: restored")),
    Case("huge_output", after={"setup": "print('x' * 20_000_000)\nfor i in range(100_000):\n    print(i)\n"}),
    Case("stderr_warnings", after={f"{p}_solution": NOISY.format(cls=CLASSES[p]) for p in ALL}),
    Case("renamed", filename="my_solution.ipynb", notes=("graded 'my_solution.ipynb' in its place",)),
    Case("invalid_json", passed=(), raw=b'{"cells": [', notes=("is not valid JSON",)),
    Case("empty", passed=(), raw=b"", notes=("is empty",)),
    Case("not_utf8", passed=(), raw=_notebook_text("caf\u00e9").encode("latin-1"), notes=("is not UTF-8",)),
    Case("too_large", passed=(), raw=_notebook_text("x" * (21 << 20)).encode(),
         notes=("more than the limit of 20 MB",)),
    Case("missing", passed=(), raw=b"my answers are in my head", filename="notes.txt", notes=("was not submitted",)),
    Case("symlink", passed=(), symlink=True, notes=("cannot be opened",)),
    # links, FIFOs and devices anywhere in the submission's path: never followed, never blocking
    Case("folder_to_solutions", passed=(), folder_link="solutions", notes=("must be folders, not links",)),
    Case("folder_to_classmate", passed=(), folder_link="classmate", notes=("must be folders, not links",)),
    Case("student_to_classmate", passed=(), student_link="classmate_student", notes=("must be folders, not links",)),
    Case("fifo_notebook", passed=(), special="fifo", notes=("is not a regular file",)),
    Case("device_notebook", passed=(), special="device", notes=("is not a regular file",)),
    Case("fifo_timestamp", timestamp="fifo", notes=("timestamp.txt is not a regular file",)),
    Case("linked_timestamp", timestamp="link", notes=("timestamp.txt cannot be opened",)),
    Case("huge_timestamp", timestamp=b"2026-12-01 10:00:00 UTC" * 100_000, notes=("more than the limit",)),
    Case("garbage_timestamp", timestamp=b"\xff\x00 yesterday", notes=("timestamp.txt holds no time",)),
    # malformed notebooks: recorded reasons, never a grader error
    Case("foo_cell", mangle=lambda nb: nb["cells"].insert(1, {"cell_type": "foo", "metadata": {}, "source": "x"}),
         notes=("left out 1 malformed cell",)),
    Case("int_source", mangle=lambda nb: nb["cells"].append({"cell_type": "code", "metadata": {}, "source": 5,
                                                            "outputs": [], "execution_count": None}),
         notes=("left out 1 malformed cell",)),
    Case("huge_integer", mangle=lambda nb: nb["metadata"].update(n=HUGE_INT)),
    Case("bad_outputs_and_metadata", mangle=lambda nb: [
        nb.update(metadata="not a dict"),
        *(c.update(outputs=[5, {"output_type": "nonsense"}], execution_count="x") for c in nb["cells"]
          if c["cell_type"] == "code"),
        *(c.update(metadata=["not", "a", "dict"]) for c in nb["cells"] if c["cell_type"] == "markdown")]),
    Case("nbformat_v3", v3=True, notes=("upgraded to nbformat 4",)),
    Case("forged_error_files", passed=(), after={"setup": FORGED_ERRORS},  # the probe does not call it
         messages={p: "replaces reslab.checks.probe" for p in ALL}),
    # bounds
    Case("many_files", after={"setup": MANY_FILES}, evidence=True),
    Case("sleepy", passed=(), after={"setup": ["import time\ntime.sleep(5)\n"] * SLEEPS},
         messages={p: "total time limit" for p in ALL}),  # each cell under its limit (6 s), the sum far over
]

