"""The sandbox's first process (pid 1 of its pid namespace), and the relay between the grader and the kernel.

Run by bubblewrap as ``python -I -S -c <this file> RLIMITS RELAY`` (standard library only: the grader's own
folder is not visible in the sandbox). It takes the kernel's rlimits, makes itself non-dumpable (so no process
without CAP_SYS_PTRACE, which the student's kernel lacks, may ptrace it or open its /proc/1/mem), listens on one
socket per kernel channel the grader uses, reaps orphans, and relays bytes between the grader and the kernel's
ZeroMQ sockets. What the kernel sends is read as ZMTP 3 frames and passed on only as whole messages of at most
``limit`` bytes: libzmq buffers a multipart message whole before its reader sees any part of it (its
``MAXMSGSIZE`` is per frame, its high-water mark per message), so without this a kernel could grow the grader's
memory by gigabytes with one message. A larger message is dropped here, in the sandbox's memory (a skipped
frame is never held), and a line ``{"channel": ..., "limit": ...}`` on stdout (a pipe only the grader reads)
says so. Each listener accepts one connection, the grader's, made before any student code runs.
"""
import ctypes
import json
import os
import resource
import selectors
import signal
import socket
import sys
import time

GREETING = 64  # bytes of a ZMTP 3 greeting, passed on as they are
CHUNK = 1 << 20


class Messages:
    """The kernel's side of one connection: ZMTP 3 frames in, whole messages of at most ``limit`` bytes out."""

    def __init__(self, limit: int):
        self.limit, self.greeting, self.header, self.left, self.more = limit, bytearray(), bytearray(), None, 0
        self.message, self.size, self.dropping = bytearray(), 0, False

    def feed(self, data: bytes, out: bytearray) -> int:
        """Append to ``out`` the messages that ``data`` completes; returns how many went over the limit."""
        over, i, view = 0, 0, memoryview(data)
        while i < len(data):
            if len(self.greeting) < GREETING:  # passed on at once: each side sends its version after the other's
                take = min(GREETING - len(self.greeting), len(data) - i)
                self.greeting += view[i:i + take]
                i += take
                if self.greeting[0] != 0xFF or len(self.greeting) > 10 and self.greeting[10] < 3:
                    raise ValueError("the kernel does not speak ZMTP 3")
                out += view[i - take:i]
                continue
            if self.left is None:  # a frame's flags (MORE 1, LONG 2, COMMAND 4) and size, 1 or 8 bytes
                self.header.append(data[i])
                i += 1
                if len(self.header) < (9 if self.header[0] & 2 else 2):
                    continue
                self.left, self.more = int.from_bytes(self.header[1:], "big"), self.header[0] & 1
                self.size += len(self.header) + self.left
                if not self.dropping and self.size > self.limit:
                    self.dropping, self.message, over = True, bytearray(), over + 1
                if not self.dropping:
                    self.message += self.header
                self.header = bytearray()
            else:
                take = min(self.left, len(data) - i)
                if not self.dropping:
                    self.message += view[i:i + take]
                self.left -= take
                i += take
            if self.left == 0:
                self.left = None
                if not self.more:
                    if not self.dropping:
                        out += self.message
                    self.message, self.size, self.dropping = bytearray(), 0, False
        return over


class Link:
    """One channel: the grader's connection and the kernel's, with what each side has yet to receive."""

    def __init__(self, name: str, grader: socket.socket, kernel: socket.socket, limit: int):
        self.name, self.grader, self.kernel, self.messages = name, grader, kernel, Messages(limit)
        self.out = {grader: bytearray(), kernel: bytearray()}
        self.high = limit + CHUNK  # stop reading a side while the other has this much waiting

    def other(self, sock):
        return self.kernel if sock is self.grader else self.grader

    def events(self, sock) -> int:
        return ((selectors.EVENT_READ if len(self.out[self.other(sock)]) < self.high else 0)
                | (selectors.EVENT_WRITE if self.out[sock] else 0))


def _connect(path: str) -> socket.socket:
    """The kernel's socket (the grader has seen it listen; a few retries cover a slow start)."""
    for _ in range(250):
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            time.sleep(0.02)
    raise OSError(f"cannot connect to {path}")


def main(rlimits: dict, relay: dict) -> None:
    for name, value in rlimits.items():
        resource.setrlimit(getattr(resource, name), (value, value))
    if ctypes.CDLL(None).prctl(4, 0, 0, 0, 0):  # PR_SET_DUMPABLE, 0
        sys.exit("cannot make the sandbox's first process non-dumpable")
    limit, selector, notes = relay["limit"], selectors.DefaultSelector(), bytearray()
    for name, listen, target in relay["channels"]:
        server = socket.socket(socket.AF_UNIX)
        server.bind(listen)
        server.listen(1)
        selector.register(server, selectors.EVENT_READ, (name, listen, target))
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector.register(wake_read, selectors.EVENT_READ, None)
    print("ready", flush=True)
    os.set_blocking(1, False)

    registered = set()

    def update(link: Link):
        """Read a side only while the other has room; write a side while it has something waiting."""
        for sock in (link.grader, link.kernel):
            events = link.events(sock)
            if events and sock in registered:
                selector.modify(sock, events, link)
            elif events:
                selector.register(sock, events, link)
                registered.add(sock)
            elif sock in registered:
                selector.unregister(sock)
                registered.discard(sock)

    def close(link: Link):
        for sock in (link.grader, link.kernel):
            if sock in registered:
                selector.unregister(sock)
                registered.discard(sock)
            sock.close()

    while True:
        for key, mask in selector.select(0.1 if notes else None):
            if key.data is None:  # SIGCHLD: reap the orphans
                os.read(wake_read, 4096)
                try:
                    while os.waitpid(-1, os.WNOHANG)[0]:
                        pass
                except ChildProcessError:
                    pass
                continue
            if isinstance(key.data, tuple):  # the grader connects: one connection per listener, ever
                name, listen, target = key.data
                grader, _ = key.fileobj.accept()
                selector.unregister(key.fileobj)
                key.fileobj.close()
                os.unlink(listen)
                link = Link(name, grader, _connect(target), limit)
                for sock in (grader, link.kernel):
                    sock.setblocking(False)
                update(link)
                continue
            link, sock = key.data, key.fileobj
            if sock.fileno() < 0:
                continue
            try:
                if mask & selectors.EVENT_WRITE:
                    del link.out[sock][:sock.send(link.out[sock])]
                if mask & selectors.EVENT_READ:
                    data = sock.recv(CHUNK)
                    if not data:
                        raise ConnectionError
                    if sock is link.kernel:
                        for _ in range(link.messages.feed(data, link.out[link.grader])):
                            if len(notes) < 64 << 10:  # the grader reads them as it waits on the kernel
                                notes += (json.dumps({"channel": link.name, "limit": limit}) + "\n").encode()
                    else:
                        link.out[link.kernel] += data
            except BlockingIOError:
                pass
            except (OSError, ValueError):  # either side gone, or not ZeroMQ: the channel closes
                close(link)
                continue
            update(link)
        if notes:
            try:
                del notes[:os.write(1, notes)]
            except BlockingIOError:
                pass


if __name__ == "__main__":
    main(json.loads(sys.argv[1]), json.loads(sys.argv[2]))
