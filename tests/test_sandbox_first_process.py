"""The sandbox's first process, as root and as an ordinary user (same uid as the student's kernel there): the
kernel can neither ptrace it nor open its memory, and it runs under the kernel's own rlimits."""
import errno
import json
import os
import subprocess
import sys

import pytest
from test_autograder_nonroot import as_user, instructor  # noqa: F401 (a fixture)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HOSTILE = r'''
import ctypes, json
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
seen = {"attach": libc.ptrace(16, 1, None, None), "attach_errno": ctypes.get_errno()}  # PTRACE_ATTACH
try:
    with open("/proc/1/mem", "r+b") as mem:
        mem.seek(0x400000)
        mem.write(b"\xcc")
    seen["mem"] = "written"
except OSError as err:
    seen["mem"] = err.errno
def limits(pid):
    return {line[:26].strip(): line[26:47].strip() for line in open(f"/proc/{pid}/limits").read().splitlines()[1:]}
seen["first"], seen["kernel"] = limits(1), limits("self")
print(json.dumps(seen))
'''

GRADER = f'''
import json, os, sys, tempfile
sys.path.insert(0, {REPO!r})
from autograder.course import Course
from autograder.sandbox import Kernel, Limits, Settings, Uids, Zygote
root, scratch = os.geteuid() == 0, tempfile.mkdtemp()
open(os.path.join(scratch, "empty"), "w").close()
uids = Uids(66000, 1) if root else None
course = Course()
settings = Settings(Limits(memory=3 << 30, cell_timeout=60, submission_timeout=60, processes=100, tmp_size=64 << 20),
                    hidden=course.hidden(), visible=course.visible(), uids=uids and uids.free, userns=not root)
zygote = Zygote([])
kernel = Kernel(zygote, settings, scratch)
try:
    kernel.wait_ready()
    run = kernel.execute({HOSTILE!r}, 60)
    print(run.outputs[0]["text"] if run.status == "ok" else run.error)
finally:
    kernel.close()
    zygote.close()
'''


def seen_by_the_kernel(process) -> dict:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=["root", "ordinary user"])
def seen(request):
    if request.param == "root":
        return seen_by_the_kernel(subprocess.Popen([sys.executable, "-c", GRADER], stdout=subprocess.PIPE,
                                                   stderr=subprocess.PIPE, text=True, cwd="/"))
    return seen_by_the_kernel(as_user(request.getfixturevalue("instructor"), "-c", GRADER))


def test_the_kernel_cannot_ptrace_the_first_process_or_write_its_memory(seen):
    assert (seen["attach"], seen["attach_errno"]) == (-1, errno.EPERM)
    assert seen["mem"] in (errno.EACCES, errno.EPERM)


def test_the_first_process_has_the_kernels_limits(seen):
    for limit in ("Max address space", "Max processes", "Max core file size"):
        assert seen["first"][limit] == seen["kernel"][limit], limit
    assert (seen["kernel"]["Max address space"], seen["kernel"]["Max processes"]) == (str(3 << 30), "100")
