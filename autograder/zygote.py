"""Fork server for student kernels: import torch once, fork a ready Jupyter kernel per submission.

Run by the grader as a script (``python zygote.py PRELOAD_JSON``), never imported by it: it holds only
public libraries, never a seed, a check result or a path of the course. Protocol: one JSON request per
line on stdin, one JSON reply per line on stdout.

Request: ``{"ns_pid": P or null, "uid": U or null, "cwd": ..., "connection_file": ..., "log": ...,
"env": {...}, "rlimits": {"RLIMIT_AS": bytes, ...}, "tmpfs": {"/tmp": "size=...,nr_inodes=...", ...}}``. With
``ns_pid`` the kernel joins the namespaces (user when the sandbox has its own, mount, pid, network, IPC, UTS)
of the bubblewrap sandbox whose first process is P, so it sees only that sandbox's file system, dies with its
pid namespace and has no network; its tmpfs mounts are remounted with ``tmpfs`` options (bubblewrap cannot
limit inodes). With ``uid`` (as root) it drops root for that uid; in a user namespace it keeps the grader's
uid; either way it has no capabilities left before any student code runs. Reply: ``{"pid": kernel pid on the
host}`` or ``{"error": message}``.
"""
import ctypes
import fcntl
import importlib
import json
import os
import random
import resource
import signal
import sys
import traceback

PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 24, 36, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
CLONE_NEWUSER, NS_GET_USERNS = 0x10000000, 0xB701
MS_NOSUID, MS_NODEV, MS_REMOUNT = 2, 4, 32
NAMESPACES = (("ipc", 0x08000000), ("uts", 0x04000000), ("net", 0x40000000), ("pid", 0x20000000),
              ("mnt", 0x00020000))  # mount last: afterwards /proc is the sandbox's
libc = ctypes.CDLL(None, use_errno=True)


def _check(result):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _same(fd, other_fd):
    return os.fstat(fd).st_ino == os.fstat(other_fd).st_ino


def _join_sandbox(ns_pid, tmpfs):
    """Enter every namespace of the sandbox and make its root ours (as nsenter --root does). Unprivileged
    bubblewrap nests two user namespaces: the outer one owns the mounts and the other namespaces, the inner
    one holds the sandbox's processes; join the outer, remount, then the inner."""
    fds = [(os.open(f"/proc/{ns_pid}/ns/{name}", os.O_RDONLY), flag) for name, flag in NAMESPACES]
    ours, theirs = os.open("/proc/self/ns/user", os.O_RDONLY), os.open(f"/proc/{ns_pid}/ns/user", os.O_RDONLY)
    owner = fcntl.ioctl(fds[-1][0], NS_GET_USERNS)
    root = os.open(f"/proc/{ns_pid}/root", os.O_RDONLY | os.O_DIRECTORY)
    if not _same(owner, ours):
        _check(libc.setns(owner, CLONE_NEWUSER))
    for fd, flag in fds:
        _check(libc.setns(fd, flag))
        os.close(fd)
    os.fchdir(root)
    os.chroot(".")
    os.close(root)
    for path, options in tmpfs.items():
        _check(libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV, options.encode()))
    if not _same(theirs, owner):
        _check(libc.setns(theirs, CLONE_NEWUSER))
    for fd in (ours, theirs, owner):
        os.close(fd)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _drop_privileges(uid):
    """No capability left, none to regain; as root, also another uid."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last_cap = int(f.read())
    for cap in range(last_cap + 1):
        _check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0))
    _check(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0))
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # from root to another uid: the kernel clears every capability
    _check(libc.capset(ctypes.byref(_CapHeader(0x20080522, 0)), (_CapData * 2)()))  # and in a user namespace


def _become_kernel(request):
    """Runs in the forked child: confine it, then serve the kernel until it dies."""
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for name, value in request["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    if request["uid"] is not None or request["ns_pid"] is not None:
        _drop_privileges(request["uid"])
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
    os.chdir(request["cwd"])
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.closerange(3, 1 << 16)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.clear()
    os.environ.update(request["env"])
    random.seed()  # forked children would otherwise share the zygote's random state
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    sys.argv = ["ipykernel_launcher", "-f", request["connection_file"]]
    from ipykernel.kernelapp import IPKernelApp
    app = IPKernelApp.instance()
    app.initialize(sys.argv[1:])
    app.start()


def spawn(request):
    """Fork twice: the middle process joins the sandbox so that its child is inside the pid namespace."""
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:
        reply = {}
        try:
            os.close(read_end)
            if request["ns_pid"] is not None:
                _join_sandbox(request["ns_pid"], request["tmpfs"])
            kernel = os.fork()
            if kernel == 0:
                try:
                    os.close(write_end)
                    _become_kernel(request)
                except BaseException:
                    traceback.print_exc()  # into the kernel's log, which the grader reports
                finally:
                    os._exit(1)
            reply = {"pid": kernel}
        except BaseException as exc:  # reported to the grader, which raises it there
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            os.write(write_end, json.dumps(reply).encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    return json.loads(data or b'{"error": "the fork server child died"}')


def _reap(signum, frame):
    """Kernels are orphaned to us (we are their subreaper): reap them so their sandbox can go away."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def main():
    sys.path[:] = [p for p in sys.path if os.path.realpath(p) != os.path.dirname(os.path.realpath(__file__))]
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0))  # never outlive the grader
    _check(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever an imported module prints must not mix with the replies
    for module in json.loads(sys.argv[1]):
        try:
            importlib.import_module(module)
        except Exception:  # only a head start: the kernel imports it again and reports the error
            pass
    importlib.import_module("ipykernel.kernelapp")
    print(json.dumps({"ready": True}), file=replies, flush=True)
    for line in sys.stdin:
        print(json.dumps(spawn(json.loads(line))), file=replies, flush=True)


if __name__ == "__main__":
    main()
