"""The probe's side in the sandboxed kernel, out of the notebook's reach.

The grader's first request to a fresh kernel, before any student code runs, calls ``install``. It takes every
reference the probe needs, notes what decides how *other* code runs (the builtins, the functions and classes
of the library, torch and numpy, IPython's events and transformers, import hooks, trace and profile hooks)
and registers a handler for a message type of its own (``REQUEST``). A probe is that message: it goes through
none of IPython's transformers, events or namespaces, and no name the notebook can rebind. The handler runs
the check with IPython's events and transformers detached, a profile hook recording which library code runs
and torch.fx graphs traced from the library, and replies with what it wrote (its SHA-256), the state that
changed since ``install`` (tampering), and the library code that ran, signed with the secret the first
request gave it (HMAC-SHA256) over the grader's fresh nonce: a reply forged by the notebook, or a file
rewritten after the check, shows.
"""
from __future__ import annotations

import builtins
import contextlib
import hashlib
import hmac
import json
import sys
import threading
import types
import weakref
from pathlib import Path

import numpy as np
import torch
import torch._dynamo  # noqa: F401 (it replaces torch.manual_seed when first imported: before the state is noted)
import torch.fx
import torch.overrides
import torch.utils._python_dispatch
from torch import nn

from . import harness

REQUEST, REPLY = "autograder_probe_request", "autograder_probe_reply"
LIBRARY = harness.RESLAB + "/"
CHECKS = str(Path(__file__).resolve().parent) + "/"
FX_CODE = "<eval_with_key>"  # the file name of the code torch.fx generates for a GraphModule
SWAPPED = {builtins: {"get_ipython", "display", "exit", "quit", "__IPYTHON__", "_", "__", "___", "input"},
           sys: {"displayhook", "excepthook", "breakpointhook", "unraisablehook"}}  # IPython swaps these per cell
HOOK_LISTS = ("input_transformers_post", "input_transformers_cleanup", "ast_transformers")


def sign(secret: str, content: dict) -> str:
    """HMAC-SHA256 of a reply's content (its ``mac`` left out), keyed by the secret of ``install``."""
    body = json.dumps({k: v for k, v in content.items() if k != "mac"}, sort_keys=True).encode()
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _behaviour(value) -> bool:
    """Whether ``value`` changes what code does when it replaces another (a function, not a cached list)."""
    return callable(value) or isinstance(value, (classmethod, property))


def _name(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _ours(callback) -> bool:
    """An installed package's function or method (matplotlib's post_execute hook), not the notebook's."""
    func = getattr(callback, "__func__", callback)
    code = getattr(func, "__code__", None)
    return isinstance(func, types.FunctionType) and "site-packages" in code.co_filename and not code.co_filename.startswith(LIBRARY)


class State:
    """What decides how other code runs, as it was at ``install``; ``changes`` lists what differs now."""

    def __init__(self, shell):
        self.shell = shell
        modules = [builtins, sys, torch, torch.nn.functional, torch.nn.init, torch.autograd, torch.overrides,
                   torch.fx, torch.utils._python_dispatch, np, np.testing, torch.testing]
        modules += [m for n, m in list(sys.modules.items()) if n.split(".")[0] == "reslab" and isinstance(m, types.ModuleType)]
        classes = [torch.Tensor, torch._C.TensorBase, nn.Module, torch.fx.Tracer, torch.fx.GraphModule,
                   torch._ops.OpOverload, torch._ops.OpOverloadPacket, np.ndarray]
        classes += [v for v in vars(nn).values() if isinstance(v, type) and issubclass(v, nn.Module)]
        classes += [v for m in modules if m.__name__.startswith("reslab") for v in vars(m).values()
                    if isinstance(v, type) and v.__module__ == m.__name__]
        self.modules = {m.__name__: m for m in modules}
        self.entries = [(_name(owner) if isinstance(owner, type) else owner.__name__, vars(owner), key, value)
                        for owner in modules + classes for key, value in list(vars(owner).items())
                        if _behaviour(value) and key not in SWAPPED.get(owner, ())]
        self.keys = [(_name(c), vars(c), set(vars(c))) for c in classes]
        self.meta_path, self.path_hooks = list(sys.meta_path), list(sys.path_hooks)
        self.hooks = {name: list(getattr(shell, name)) for name in HOOK_LISTS}
        self.events = {event: list(callbacks) for event, callbacks in shell.events.callbacks.items()}

    def changes(self) -> list[str]:
        found = [f"replaces {owner}.{key}" for owner, space, key, value in self.entries if space.get(key, self) is not value]
        found += [f"adds {key} to {owner}" for owner, space, keys in self.keys if len(space) != len(keys)
                  for key in set(space) - keys if _behaviour(space[key])]
        found += [f"replaces sys.modules[{name!r}]" for name, module in self.modules.items() if sys.modules.get(name) is not module]
        if sys.gettrace() is not None or sys.getprofile() is not None:
            found.append("sets a trace or profile hook (sys.settrace/setprofile)")
        if [f for f in sys.meta_path if f not in self.meta_path] or [h for h in sys.path_hooks if h not in self.path_hooks]:
            found.append("adds an import hook (sys.meta_path/path_hooks)")
        for name in HOOK_LISTS:
            found += [f"adds an IPython {name[:-1]} ({_name(h)})" for h in getattr(self.shell, name)
                      if h not in self.hooks[name] and not _ours(h)]
        for event, callbacks in self.shell.events.callbacks.items():
            found += [f"registers an IPython {event} callback ({_name(c)})" for c in callbacks
                      if c not in self.events.get(event, ()) and not _ours(c)]
        return list(dict.fromkeys(found))


@contextlib.contextmanager
def detached(shell):
    """IPython's events and transformers off while the check runs (student code may call run_cell)."""
    events, hooks = shell.events.callbacks, {name: list(getattr(shell, name)) for name in HOOK_LISTS}
    shell.events.callbacks = {event: [] for event in events}
    for name in HOOK_LISTS:
        getattr(shell, name)[:] = []
    try:
        yield
    finally:
        shell.events.callbacks = events
        for name, value in hooks.items():
            getattr(shell, name)[:] = value


class Recorder:
    """Which library code (outside the checks) runs while installed as the profile hook, and which torch.fx
    graphs traced from a library module run; ``tampered`` says whether someone replaced the hook meanwhile."""

    def __init__(self, traced: weakref.WeakKeyDictionary):
        self.codes, self.fx, self.traced, self.tampered = set(), set(), traced, []

    def __call__(self, frame, event, arg):
        if event == "call":
            code = frame.f_code
            if code not in self.codes:
                self.codes.add(code)
            if code.co_filename.startswith(FX_CODE):
                graph = getattr(frame.f_locals.get("self"), "_graph", None)
                origin = self.traced.get(graph) if graph is not None else None
                if origin:
                    self.fx.add(f"a torch.fx graph traced from {origin}")

    def __enter__(self):
        sys.setprofile(self)
        threading.setprofile(self)
        return self

    def __exit__(self, *exc):
        if sys.getprofile() is not self:
            self.tampered.append("switched off the check's recorder of library code (sys.setprofile)")
        sys.setprofile(None)
        threading.setprofile(None)

    def library(self) -> list[str]:
        """``module.qualname`` of each library function that ran (the checks' own left out), sorted."""
        ran = {f"{_module(code.co_filename)}.{code.co_qualname}" for code in self.codes
               if code.co_filename.startswith(LIBRARY) and not code.co_filename.startswith(CHECKS)}
        return sorted(ran | self.fx)


def _module(filename: str) -> str:
    return "reslab." + filename[len(LIBRARY):].removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def _trace_origins(traced: weakref.WeakKeyDictionary) -> None:
    """Make torch.fx note each graph it traces from a library module (or function), before any student code."""
    trace, from_library = torch.fx.Tracer.trace, harness._from_library

    def traced_trace(self, root, *args, **kwargs):
        graph = trace(self, root, *args, **kwargs)
        if from_library(root):
            traced[graph] = _name(type(root) if isinstance(root, nn.Module) else root)
        return graph

    torch.fx.Tracer.trace = traced_trace


def install(shell, secret: str) -> None:
    """Register the probe's handler in the kernel of ``shell`` (IPython), with ``secret`` for its replies."""
    from . import probe
    kernel, send = shell.kernel, shell.kernel.session.send
    traced = weakref.WeakKeyDictionary()
    _trace_origins(traced)
    changes, namespace = State(shell).changes, shell.user_ns

    def handle(stream, idents, parent):
        request = parent["content"]
        reply = {"status": "ok", "nonce": str(request.get("nonce"))}
        try:
            before = changes()
            with detached(shell), Recorder(traced) as recorder:
                written, data = probe(request["assignment"], request["name"], namespace, request["inputs"],
                                      request["outputs"])
            reply.update(written=written, digest=hashlib.sha256(data).hexdigest(), library=recorder.library(),
                         tampered=list(dict.fromkeys(before + recorder.tampered + changes())))
        except KeyboardInterrupt:
            reply.update(status="error", ename="KeyboardInterrupt", evalue="interrupted")
        except BaseException as err:  # the check itself failed (a bug of ours or a kernel in trouble)
            reply.update(status="error", ename=type(err).__name__, evalue=str(err)[:500])
        reply["mac"] = sign(secret, reply)
        send(stream, REPLY, reply, parent, ident=idents)

    kernel.shell_handlers[REQUEST] = handle
