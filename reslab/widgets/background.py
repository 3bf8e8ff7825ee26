"""Daemon threads for the widgets (warm-up, training), stopped and joined before Python exits.

Torch aborts the process when a daemon thread is still inside an op at interpreter exit, so every thread a
widget starts goes through ``background``.
"""
from __future__ import annotations

import atexit
import threading

_background: list[tuple[threading.Thread, threading.Event | None]] = []


def background(target, *args, stop: threading.Event | None = None) -> threading.Thread:
    """Run ``target(*args)`` on a daemon thread (the kernel stays free for clicks and slider moves); at exit
    ``stop`` is set and the thread joined."""
    _background[:] = [(t, e) for t, e in _background if t.is_alive()]
    thread = threading.Thread(target=target, args=args, daemon=True)
    _background.append((thread, stop))
    thread.start()
    return thread


@atexit.register
def _stop_background():
    for thread, stop in _background:
        if stop is not None:
            stop.set()
        thread.join(timeout=30)
