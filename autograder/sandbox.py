"""Sandboxed Jupyter kernels: one bubblewrap sandbox per submission, kernels forked from a warm zygote.

bubblewrap builds the sandbox (read-only host, private /tmp, /dev, /proc, no network, hidden course
files) around a placeholder process of ours (``INIT``, the first process of its pid namespace); the zygote
(zygote.py, torch already imported) forks a kernel that joins the sandbox's namespaces and drops root for an
unprivileged uid (as root; each run locks its uids), or stays the grader's own user inside the sandbox's user
namespace (as an ordinary user), so a submission costs a fork, not a fresh ``import torch``. Killing the
placeholder kills every process the submission started, detached ones included. The placeholder (relay.py) has the kernel's rlimits and is not dumpable, so the student's processes (the
same uid as it, as an ordinary user) can neither ptrace it nor write its memory to run code without limits;
no other process of the sandbox is one they did not start. The grader talks to the kernel over
ZeroMQ IPC sockets inside the sandbox's /tmp, reached through ``/proc/<pid>/root``, through the placeholder,
which passes on only whole messages of at most ``MESSAGE_LIMIT`` bytes: the grader's memory for one kernel is
bounded by its queues (``QUEUED`` messages per channel), whatever the kernel sends.
"""
from __future__ import annotations

import fcntl
import json
import os
import queue
import secrets
import shutil
import signal
import socket
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
RELAY = Path(__file__).with_name("relay.py")
MESSAGE_LIMIT = 2 << 20  # bytes of one kernel message, all its frames: larger ones are dropped inside the sandbox
QUEUED = 4  # kernel messages ZeroMQ may queue per channel before the grader reads them
RELAYED = ("shell", "iopub", "control")  # the channels the grader connects to
SOCKETS = dict(shell_port=1, iopub_port=2, stdin_port=3, control_port=4, hb_port=5)
UID_LOCKS = "/run/lock/autograder"  # one lock file per uid: grading runs on one machine never share a uid


class SandboxError(RuntimeError):
    """The sandbox could not be set up (an instructor's problem, not a student's)."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox (their defaults and meaning: course.Autograder)."""
    memory: int                    # RLIMIT_AS of every sandboxed process, bytes
    cell_timeout: float            # seconds per cell and per check
    submission_timeout: float      # seconds per submission
    processes: int                 # RLIMIT_NPROC of the sandbox's own uid (threads count too)
    tmp_size: int                  # bytes of each of the sandbox's /tmp, /tmp/work and /dev/shm
    tmp_inodes: int = 20_000       # files and folders in each of them (each costs the host kernel memory)
    output_bytes: int = 100_000    # text kept per cell in the graded notebook
    startup_timeout: float = 120.0


@dataclass
class Execution:
    """What one cell did: ok, error, interrupted (time limit, kernel survived), timeout (killed) or died."""
    status: str
    outputs: list = field(default_factory=list)
    error: str = ""
    reply: dict = field(default_factory=dict)  # the content of the kernel's reply

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


class Uids:
    """Unprivileged uids for the kernels of one grading run, each held under an flock on its own lock file, so
    that concurrent runs (other courses, other instructors) never share a uid and its RLIMIT_NPROC count."""

    def __init__(self, first: int, count: int, span: int = 10_000):
        os.makedirs(UID_LOCKS, mode=0o755, exist_ok=True)
        self.free, self._locks = queue.Queue(), []
        for uid in range(first, first + span):
            fd = os.open(f"{UID_LOCKS}/{uid}", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another grading run holds it
                os.close(fd)
                continue
            self._locks.append(fd)
            self.free.put(uid)
            if len(self._locks) == count:
                return
        self.close()
        raise SandboxError(f"fewer than {count} free uids from {first} to {first + span - 1} (other grading runs "
                           "hold them): wait, or set c.Autograder.first_uid elsewhere")

    def close(self):
        for fd in self._locks:
            os.close(fd)
        self._locks = []


def open_dir(base: str, *parts: str) -> int:
    """A file descriptor of the folder base/part/..., reached without following a link in any part."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    for part in parts:
        try:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        finally:
            os.close(fd)
        fd = inner
    return fd


@dataclass(frozen=True)
class Settings:
    """What every sandbox of a grading run shares."""
    limits: Limits
    hidden: tuple[str, ...] = ()      # host paths the student must not see (folders become empty)
    visible: tuple[str, ...] = ()     # host paths shown again inside hidden folders (the interpreter, the library)
    sandboxed: bool = True
    uids: "queue.Queue[int] | None" = None  # unprivileged uids for kernels (as root); None keeps the grader's
    userns: bool = False              # not root: an unprivileged user namespace per sandbox instead of a uid

    @property
    def rlimits(self) -> dict:
        """The rlimits of every process in the sandbox, its first one included. RLIMIT_NPROC counts per uid and
        user namespace: set only where the sandbox has a uid (as root) or a user namespace of its own."""
        own_count = self.uids is not None or self.userns
        return {"RLIMIT_AS": self.limits.memory, "RLIMIT_CORE": 0,
                **({"RLIMIT_NPROC": self.limits.processes} if own_count else {})}

    def bwrap_argv(self, info_fd: int, empty_file: str) -> list[str]:
        argv = [bubblewrap(), *(["--unshare-user"] if self.userns else []),
                "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--hostname", "sandbox",
                "--as-pid-1", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--info-fd", str(info_fd),
                "--perms", "1777", "--size", str(self.limits.tmp_size), "--tmpfs", "/tmp",
                "--perms", "1777", "--size", str(self.limits.tmp_size), "--tmpfs", "/dev/shm",
                # mounts of their own: nobody, not even their owner in a user namespace, can rename them
                "--perms", "1777", "--size", str(self.limits.tmp_size), "--tmpfs", WORK,
                "--perms", "1777", "--size", str(1 << 20), "--tmpfs", KERNEL,
                "--perms", "0700", "--dir", HOME]
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
        for path in covered[1:]:  # the empty folders are read-only too (in a user namespace they would be ours)
            argv += ["--remount-ro", path]
        relay = dict(limit=MESSAGE_LIMIT, channels=[
            (name, f"{KERNEL}/r-{SOCKETS[name + '_port']}", f"{KERNEL}/k-{SOCKETS[name + '_port']}") for name in RELAYED])
        return argv + ["--", sys.executable, "-I", "-S", "-c", RELAY.read_text(), json.dumps(self.rlimits),
                       json.dumps(relay)]


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
        self._bwrap = self._ns = self._ns_pid = self._tmp = None
        self._dirs, self.dropped = {}, []  # dropped: the channel of each kernel message over MESSAGE_LIMIT
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
            for path in (WORK, KERNEL, HOME):  # held open: whatever the student renames, we keep these folders
                self._dirs[path] = open_dir(host, *path.strip("/").split("/"))
            if self.uid is not None:
                os.fchown(self._dirs[HOME], self.uid, self.uid)
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
        os.set_blocking(self._bwrap.stdout.fileno(), False)  # from now on: its notes of dropped messages
        if not data or not ready:
            raise SandboxError(f"bubblewrap failed: {self._bwrap.stderr.read().decode(errors='replace').strip()}")
        self._ns_pid = json.loads(data)["child-pid"]
        self._ns = os.readlink(f"/proc/{self._ns_pid}/ns/pid")

    def _connect(self, zygote: Zygote):
        key = secrets.token_hex(32)
        info = dict(transport="ipc", ip=self._inner + KERNEL + "/k", key=key, signature_scheme="hmac-sha256",
                    kernel_name="", **SOCKETS)
        self._write(KERNEL, "connection.json", json.dumps(info).encode(), owner=self.uid)  # the kernel rewrites it
        inodes = f"nr_inodes={self.limits.tmp_inodes}"  # bubblewrap sets the sizes; the fork server adds this
        tmpfs = {path: inodes for path in ("/tmp", "/dev/shm", WORK, KERNEL)} if self._ns_pid else {}
        self.pid = zygote.spawn(dict(
            ns_pid=self._ns_pid, uid=self.uid, cwd=self._inner + WORK,
            connection_file=self._inner + KERNEL + "/connection.json", log=self._inner + KERNEL + "/log",
            env=_kernel_env(self._inner + HOME), tmpfs=tmpfs,
            rlimits=self.settings.rlimits))
        self._pid_start = _proc_start(self.pid)
        self.session = Session(key=key.encode(), signature_scheme="hmac-sha256")
        self._context = zmq.Context()
        self._sockets = {}
        self._await_sockets()
        if self._bwrap:  # the placeholder relays them: as root it is uid 0 without capabilities, not the kernel's uid
            for name in RELAYED:
                os.chmod(f"k-{SOCKETS[name + '_port']}", 0o666, dir_fd=self._dirs[KERNEL])
        for name, kind in (("shell", zmq.DEALER), ("iopub", zmq.SUB), ("control", zmq.DEALER)):
            sock = self._context.socket(kind)
            sock.setsockopt(zmq.MAXMSGSIZE, MESSAGE_LIMIT)
            sock.setsockopt(zmq.RCVHWM, QUEUED)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RECONNECT_IVL, -1)  # connected once, before student code runs: never again
            if kind == zmq.SUB:
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(f"ipc://{self._socket_path(SOCKETS[name + '_port'], 'r' if self._bwrap else 'k')}")
            self._sockets[name] = sock

    def _socket_path(self, number: int, kind: str = "k") -> str:
        """The kernel's socket (k), or the placeholder's relay to it (r)."""
        return f"/proc/self/fd/{self._dirs[KERNEL]}/{kind}-{number}"

    def _await_sockets(self):
        """Wait until the kernel listens on all its sockets. No student code has run yet, so these are the
        kernel's own; the grader never reconnects later, when the student could have put others there."""
        deadline = time.monotonic() + self.limits.startup_timeout
        waiting = set(SOCKETS.values())
        while waiting:
            if time.monotonic() > deadline or not self.alive():
                raise SandboxError(f"the sandboxed kernel did not start: {self.log()[-2000:]}")
            for number in sorted(waiting):
                with socket.socket(socket.AF_UNIX) as probe:
                    try:
                        probe.connect(self._socket_path(number))
                        waiting.discard(number)
                    except OSError:
                        break
            time.sleep(0.02 if waiting else 0)

    def wait_ready(self):
        """One empty execution (reply and idle status): the kernel runs and its output reaches us."""
        if self.execute("", self.limits.startup_timeout, silent=True).status != "ok":
            raise SandboxError(f"the sandboxed kernel did not start: {self.log()[-2000:]}")
        os.fchmod(self._dirs[KERNEL], 0o755)  # its sockets exist: from now on nobody may add links beside them

    def log(self) -> str:
        """What the kernel process wrote to its own stdout and stderr (start-up failures)."""
        try:
            return self._read(KERNEL, "log", 1 << 20).decode(errors="replace")
        except (OSError, ValueError):
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
        return self.request("execute_request", dict(
            code=code, silent=silent, store_history=not silent, user_expressions={}, allow_stdin=False,
            stop_on_error=False), timeout)

    def request(self, msg_type: str, content: dict, timeout: float) -> Execution:
        """Send a shell request (an execute_request, or a message type a handler in the kernel serves) and
        wait for its reply and idle status, with the time limit of ``execute``."""
        msg_id = self._send("shell", msg_type, content)
        outputs = _Outputs(self.limits.output_bytes)
        reply, idle, interrupted = None, False, False
        deadline = time.monotonic() + timeout
        poller, notes = zmq.Poller(), self._bwrap.stdout.fileno() if self._bwrap else None
        for name in ("shell", "iopub"):
            poller.register(self._sockets[name], zmq.POLLIN)
        if notes is not None:
            poller.register(notes, zmq.POLLIN)
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
            if notes in events and self._dropped(outputs):  # the reply itself may be the message dropped
                return Execution("error", outputs.items, f"the kernel sent a message of more than "
                                 f"{MESSAGE_LIMIT >> 20} MB on its shell channel: it was dropped")
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
        return Execution("ok" if status == "ok" else "error", outputs.items, error, reply["content"])

    def _dropped(self, outputs: "_Outputs") -> bool:
        """Read the placeholder's notes of dropped messages (noted in the cell's outputs); True if one was on
        the shell channel."""
        try:
            lines = os.read(self._bwrap.stdout.fileno(), 1 << 16).decode(errors="replace").splitlines()
        except BlockingIOError:
            return False
        channels = []
        for line in filter(None, lines):
            try:
                channels.append(str(json.loads(line)["channel"]))
            except (ValueError, KeyError, TypeError):
                channels.append("?")
        self.dropped += channels
        if channels:
            outputs.note(f"[autograder: messages of more than {MESSAGE_LIMIT >> 20} MB from the kernel were dropped "
                         f"({', '.join(sorted(set(channels)))})]")
        return "shell" in channels

    # -- files ----------------------------------------------------------------------------------------
    def path(self, name: str) -> str:
        """The path of a work-dir file as the kernel sees it."""
        return f"{self._inner}{WORK}/{name}"

    def _write(self, folder: str, name: str, data: bytes, owner: int | None = None):
        """Create a new file in one of the sandbox's folders (held open, so never through a link: O_EXCL |
        O_NOFOLLOW covers the last step)."""
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=self._dirs[folder])
        with os.fdopen(fd, "wb") as f:
            if owner is not None:
                os.fchown(fd, owner, owner)
            f.write(data)

    def _read(self, folder: str, name: str, limit: int) -> bytes | None:
        """A regular file in one of the sandbox's folders (no links, FIFOs or devices), None if absent or not a
        regular file; ValueError if larger than ``limit``."""
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=self._dirs[folder])
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None
            if st.st_size > limit:
                raise ValueError(f"{name} is {st.st_size} bytes, more than the limit of {limit}")
            return f.read(limit + 1)[:limit]

    def put(self, name: str, data: bytes):
        self._write(WORK, name, data)

    def get(self, name: str, limit: int) -> bytes | None:
        """A regular file the kernel wrote in its work folder, None if absent; ValueError if too big."""
        return self._read(WORK, name, limit)

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
            self._bwrap.stdout.close()
            deadline = time.monotonic() + 10
            while self._ns and _pid_namespace_members(self._ns) and time.monotonic() < deadline:
                time.sleep(0.02)
            self._bwrap = None
        elif getattr(self, "pid", None) and self.alive():
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs = {}
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
        self._noted = False

    def note(self, text: str):
        """The grader's own line in the cell's outputs (the first only: its size is bounded too)."""
        if not self._noted:
            self.items.append(new_output("stream", name="stderr", text=f"\n{text}\n"))
            self._noted = True

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
