"""Sandboxed Jupyter kernels: one bubblewrap sandbox per submission, kernels forked from a warm zygote.

bubblewrap builds the sandbox (read-only host, private /tmp, /dev, /proc, no network, hidden course
files) around a placeholder process; the zygote (zygote.py, torch already imported) forks a kernel that
joins the sandbox's namespaces and drops root for an unprivileged uid, so a submission costs a fork, not a
fresh ``import torch``. Killing the placeholder, the first process of the sandbox's pid namespace, kills
every process the submission started, detached ones included. The grader talks to the kernel over
ZeroMQ IPC sockets inside the sandbox's /tmp, reached through ``/proc/<pid>/root``.
"""
from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import zmq
from jupyter_client.session import Session
from nbformat.v4 import new_output, output_from_msg

ZYGOTE = Path(__file__).with_name("zygote.py")
WORK, KERNEL, HOME = "/tmp/work", "/tmp/kernel", "/tmp/home"
MAX_MESSAGE = 32 << 20  # larger kernel messages are dropped by ZeroMQ, never buffered by the grader


class SandboxError(RuntimeError):
    """The sandbox could not be set up (an instructor's problem, not a student's)."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox (their defaults and meaning: course.Autograder)."""
    memory: int                    # RLIMIT_AS of every sandboxed process, bytes
    cell_timeout: float            # seconds per cell and per check
    submission_timeout: float      # seconds per submission
    processes: int                 # RLIMIT_NPROC of the sandbox's own uid (threads count too)
    tmp_size: int                  # bytes of the sandbox's /tmp and /dev/shm
    output_bytes: int = 100_000    # text kept per cell in the graded notebook
    startup_timeout: float = 120.0


@dataclass
class Execution:
    """What one cell did: ok, error, interrupted (time limit, kernel survived), timeout (killed) or died."""
    status: str
    outputs: list = field(default_factory=list)
    error: str = ""

    @property
    def alive(self) -> bool:
        return self.status in ("ok", "error", "interrupted")


def bubblewrap() -> str | None:
    return shutil.which("bwrap")


def _kernel_env(home: str) -> dict:
    """The environment of student kernels: no secrets, one thread each (jobs run in parallel)."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home, "TMPDIR": str(Path(home).parent), "LANG": "C.UTF-8", "VIRTUAL_ENV": sys.prefix,
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "2", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }


class Zygote:
    """The fork server process (see zygote.py); one per grading run, shared by all workers."""

    def __init__(self, preload: list[str]):
        """Starts importing at once; the first spawn waits until it is ready."""
        self._lock, self._ready = threading.Lock(), False
        self._proc = subprocess.Popen(
            [sys.executable, str(ZYGOTE), json.dumps(preload)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=_kernel_env(tempfile.gettempdir()), cwd="/", start_new_session=True)

    def spawn(self, request: dict) -> int:
        with self._lock:
            if not self._ready and not self._proc.stdout.readline():
                raise SandboxError("the kernel fork server failed to start")
            self._ready = True
            self._proc.stdin.write(json.dumps(request).encode() + b"\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        reply = json.loads(line or b'{"error": "the kernel fork server died"}')
        if "error" in reply:
            raise SandboxError(f"could not start a kernel: {reply['error']}")
        return reply["pid"]

    def close(self):
        self._proc.kill()
        self._proc.wait()


@dataclass(frozen=True)
class Settings:
    """What every sandbox of a grading run shares."""
    limits: Limits
    hidden: tuple[str, ...] = ()      # host paths the student must not see (folders become empty)
    visible: tuple[str, ...] = ()     # host paths shown again inside hidden folders (the interpreter, the library)
    sandboxed: bool = True
    uids: "queue.Queue[int] | None" = None  # unprivileged uids for kernels; None keeps the grader's uid

    def bwrap_argv(self, info_fd: int, empty_file: str) -> list[str]:
        argv = [bubblewrap(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--hostname", "sandbox",
                "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--info-fd", str(info_fd),
                "--perms", "1777", "--size", str(self.limits.tmp_size), "--tmpfs", "/tmp",
                "--perms", "1777", "--size", str(self.limits.tmp_size), "--tmpfs", "/dev/shm"]
        for path, mode in ((WORK, "1777"), (KERNEL, "1777"), (HOME, "0700")):  # root's, so the student
            argv += ["--perms", mode, "--dir", path]  # can never swap the first two for links
        hidden = sorted({os.path.realpath(p) for p in self.hidden if os.path.exists(p)}, key=lambda p: p.count("/"))
        covered = ["/tmp"]
        for path in ["/run", str(Path.home())] + [p for p in hidden if os.path.isdir(p)]:
            if not any(_inside(path, c) for c in covered):  # an empty tmpfs over each hidden folder
                argv += ["--tmpfs", path]
                covered.append(path)
        for path in self.visible:
            cover = max((c for c in covered if _inside(path, c)), key=len, default=None)
            if cover is not None:
                for parent in reversed(Path(path).relative_to(cover).parents[:-1]):  # bwrap would make them 0700
                    argv += ["--perms", "0755", "--dir", str(Path(cover) / parent)]
                argv += ["--ro-bind", path, path]
        for path in hidden:
            if not os.path.isdir(path) and not any(_inside(path, c) for c in covered):
                argv += ["--ro-bind", empty_file, path]
        return argv + ["--", "/bin/sh", "-c", "echo ready && exec sleep infinity"]


def _inside(path: str, parent: str) -> bool:
    return os.path.commonpath([os.path.realpath(path), os.path.realpath(parent)]) == os.path.realpath(parent)


def _proc_start(pid: int) -> str | None:
    """Start time of a live process (guards against pid reuse), None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in "ZX" else fields[19]


def _pid_namespace_members(ns: str) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == ns:
                    members.append(int(entry))
            except OSError:
                pass
    return members


class Kernel:
    """A student kernel in a fresh sandbox: run code with time limits, move files in and out, kill it all."""

    def __init__(self, zygote: Zygote, settings: Settings, scratch: str):
        self.settings, self.limits = settings, settings.limits
        self.uid = settings.uids.get() if settings.uids is not None else None
        self._bwrap = self._ns = self._tmp = None
        try:
            if settings.sandboxed:
                self._start_bwrap(scratch)
                host, inner = f"/proc/{self._ns_pid}/root", ""
            else:
                self._tmp = tempfile.mkdtemp(prefix="kernel-", dir=scratch)
                host = inner = self._tmp
                for path in (WORK, KERNEL, HOME):
                    os.makedirs(host + path)
            self._host, self._inner = host, inner
            if self.uid is not None:
                os.chown(host + HOME, self.uid, self.uid)
            self._connect(zygote)
        except BaseException:
            self.close()
            raise

    # -- start-up -----------------------------------------------------------------------------------
    def _start_bwrap(self, scratch: str):
        read_end, write_end = os.pipe()
        self._bwrap = subprocess.Popen(
            self.settings.bwrap_argv(write_end, os.path.join(scratch, "empty")),
            pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"})
        os.close(write_end)
        with os.fdopen(read_end, "rb") as info:
            data = info.read()
        ready = self._bwrap.stdout.readline()  # the placeholder runs: every mount is in place
        self._bwrap.stdout.close()
        if not data or not ready:
            raise SandboxError(f"bubblewrap failed: {self._bwrap.stderr.read().decode(errors='replace').strip()}")
        self._ns_pid = json.loads(data)["child-pid"]
        self._ns = os.readlink(f"/proc/{self._ns_pid}/ns/pid")

    def _connect(self, zygote: Zygote):
        key = secrets.token_hex(32)
        ports = dict(shell_port=1, iopub_port=2, stdin_port=3, control_port=4, hb_port=5)
        info = dict(transport="ipc", ip=self._inner + KERNEL + "/k", key=key, signature_scheme="hmac-sha256",
                    kernel_name="", **ports)
        conn = KERNEL + "/connection.json"
        self._write(conn, json.dumps(info).encode(), owner=self.uid)  # the kernel rewrites it
        self.pid = zygote.spawn(dict(
            ns_pid=getattr(self, "_ns_pid", None), uid=self.uid, cwd=self._inner + WORK,
            connection_file=self._inner + conn, log=self._inner + KERNEL + "/log", env=_kernel_env(self._inner + HOME),
            rlimits={"RLIMIT_AS": self.limits.memory, "RLIMIT_CORE": 0,
                     **({"RLIMIT_NPROC": self.limits.processes} if self.uid is not None else {})}))
        self._pid_start = _proc_start(self.pid)
        self.session = Session(key=key.encode(), signature_scheme="hmac-sha256")
        self._context = zmq.Context()
        self._sockets = {}
        for name, kind in (("shell", zmq.DEALER), ("iopub", zmq.SUB), ("control", zmq.DEALER)):
            sock = self._context.socket(kind)
            sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)
            sock.setsockopt(zmq.LINGER, 0)
            if kind == zmq.SUB:
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(f"ipc://{self._host}{KERNEL}/k-{ports[name + '_port']}")
            self._sockets[name] = sock

    def wait_ready(self):
        """One empty execution (reply and idle status): the kernel runs and its output reaches us."""
        if self.execute("", self.limits.startup_timeout, silent=True).status != "ok":
            raise SandboxError(f"the sandboxed kernel did not start: {self.log()[-2000:]}")
        os.chmod(self._host + KERNEL, 0o755)  # its sockets exist: from now on nobody may add links beside them

    def log(self) -> str:
        """What the kernel process wrote to its own stdout and stderr (start-up failures)."""
        try:
            with open(f"{self._host}{KERNEL}/log", "rb") as f:
                return f.read(1 << 20).decode(errors="replace")
        except OSError:
            return ""

    # -- running code -------------------------------------------------------------------------------
    def alive(self) -> bool:
        return self._pid_start is not None and _proc_start(self.pid) == self._pid_start

    def _send(self, channel: str, msg_type: str, content: dict) -> str:
        return self.session.send(self._sockets[channel], msg_type, content)["header"]["msg_id"]

    def _recv(self, sock) -> dict | None:
        """The next message, None if there is none, {} if it is malformed (student code can forge them)."""
        try:
            _, frames = self.session.feed_identities(sock.recv_multipart(zmq.NOBLOCK))
            msg = self.session.deserialize(frames)
        except zmq.Again:
            return None
        except Exception:
            return {}
        shaped = all(isinstance(msg.get(key), dict) for key in ("header", "parent_header", "content"))
        return msg if shaped and isinstance(msg.get("msg_type"), str) else {}

    def execute(self, code: str, timeout: float, silent: bool = False) -> Execution:
        """Run code; on time-out interrupt it, and kill the kernel if that does not help within 3 s."""
        msg_id = self._send("shell", "execute_request", dict(
            code=code, silent=silent, store_history=not silent, user_expressions={}, allow_stdin=False,
            stop_on_error=False))
        outputs = _Outputs(self.limits.output_bytes)
        reply, idle, interrupted = None, False, False
        deadline = time.monotonic() + timeout
        poller = zmq.Poller()
        for name in ("shell", "iopub"):
            poller.register(self._sockets[name], zmq.POLLIN)
        while reply is None or not idle:
            now = time.monotonic()
            if now > deadline:
                if reply is not None:  # the reply came, only its idle status was lost
                    break
                if interrupted:
                    self.close()
                    return Execution("timeout", outputs.items, "time limit exceeded")
                self._send("control", "interrupt_request", {})
                interrupted, deadline = True, now + 3.0
            if reply is not None:  # idle must follow the reply promptly
                deadline = min(deadline, now + 2.0)
            events = dict(poller.poll(min(500, max(1, int((deadline - now) * 1000)))))
            if not events and not self.alive():
                return Execution("died", outputs.items, "the kernel died")
            for name in ("shell", "iopub"):
                sock = self._sockets[name]
                for _ in range(1000 if sock in events else 0):  # bounded: a flood must not starve the clock
                    msg = self._recv(sock)
                    if msg is None:
                        break
                    if msg.get("parent_header", {}).get("msg_id") != msg_id:
                        continue
                    if name == "shell":
                        reply = msg
                    elif msg.get("msg_type") == "status":
                        idle = idle or msg["content"].get("execution_state") == "idle"
                    else:
                        outputs.add(msg)
        if interrupted:
            return Execution("interrupted", outputs.items, "time limit exceeded")
        status = reply["content"].get("status", "error")
        error = outputs.error or (f"{reply['content'].get('ename', '')}: {reply['content'].get('evalue', '')}"
                                  if status != "ok" else "")
        return Execution("ok" if status == "ok" else "error", outputs.items, error)

    # -- files ----------------------------------------------------------------------------------------
    def path(self, name: str) -> str:
        """The path of a work-dir file as the kernel sees it."""
        return f"{self._inner}{WORK}/{name}"

    def _write(self, path: str, data: bytes, owner: int | None = None):
        """Create a new file (never through a link: the student cannot rename the root-owned folders on
        the way, and O_EXCL | O_NOFOLLOW covers the last step)."""
        fd = os.open(self._host + path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            if owner is not None:
                os.fchown(fd, owner, owner)
            f.write(data)

    def put(self, name: str, data: bytes):
        self._write(f"{WORK}/{name}", data)

    def get(self, name: str, limit: int) -> bytes | None:
        """A regular file the kernel wrote (no links, FIFOs or devices), None if absent; ValueError if too big."""
        try:
            fd = os.open(f"{self._host}{WORK}/{name}", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None
            if st.st_size > limit:
                raise ValueError(f"{name} is {st.st_size} bytes, more than the limit of {limit}")
            return f.read(limit + 1)[:limit]

    # -- teardown -------------------------------------------------------------------------------------
    def close(self):
        """Kill every process of the submission and wait until they are gone."""
        for sock in getattr(self, "_sockets", {}).values():
            sock.close()
        if getattr(self, "_context", None) is not None:
            self._context.term()
            self._context = None
        self._sockets = {}
        if self._bwrap is not None:
            if self._ns is not None:
                try:
                    os.kill(self._ns_pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:  # bubblewrap reaps its first process and exits: no zombie left for the host's init
                self._bwrap.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._bwrap.kill()
                self._bwrap.wait()
            self._bwrap.stderr.close()
            deadline = time.monotonic() + 10
            while self._ns and _pid_namespace_members(self._ns) and time.monotonic() < deadline:
                time.sleep(0.02)
            self._bwrap = None
        elif getattr(self, "pid", None) and self.alive():
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        if self.uid is not None:
            self.settings.uids.put(self.uid)
            self.uid = None


class _Outputs:
    """Notebook outputs of one cell from IOPub messages, with the size of the text kept bounded."""

    def __init__(self, limit: int):
        self.items, self.error, self._limit, self._used, self._clear = [], "", limit, 0, False

    def add(self, msg: dict):
        kind = msg.get("msg_type")
        if kind == "clear_output":
            if msg["content"].get("wait"):
                self._clear = True
            else:
                self.items = []
            return
        try:
            out = output_from_msg(msg)  # validates it: only well-formed outputs are kept
        except Exception:
            return
        if self._clear:
            self.items, self._clear = [], False
        if out.output_type == "error":
            self.error = f"{out.ename}: {out.evalue}"[:2000]
        size = len(json.dumps(out))
        if self._used + size > self._limit:
            if self._used <= self._limit:
                self.items.append(new_output("stream", name="stderr", text="\n[autograder: output truncated]\n"))
            self._used = self._limit + 1
            return
        self._used += size
        if out.output_type == "stream" and self.items and self.items[-1].get("name") == out.name:
            self.items[-1].text += out.text
        else:
            self.items.append(out)
