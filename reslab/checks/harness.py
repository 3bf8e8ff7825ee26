"""Running the student's code for a check, identically in the student's kernel and in the grader's probe.

Everything here only *runs* code and packs what it returns as plain arrays; nothing here knows the right
answer. Errors become one readable sentence that points at the student's line; rules a task states ("do not
call F.conv2d") are enforced by watching the torch calls the code makes, so an alias does not get through.
"""
from __future__ import annotations

import contextlib
import functools
import linecache
import re
import sys
import sysconfig
import traceback
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode, _get_current_function_mode as _current_function_mode
from torch.utils._python_dispatch import TorchDispatchMode, _get_current_dispatch_mode as _current_dispatch_mode

from .core import ELSEWHERE, Arrays, CheckFailed

RESLAB = str(Path(__file__).resolve().parents[1])
_LIBRARY_DIRS = tuple(str(Path(p).resolve()) for p in (
    RESLAB, Path(torch.__file__).parent, Path(np.__file__).parent, sysconfig.get_paths()["stdlib"]))

# error text -> what it usually means, for the student
HINTS = [
    ("cannot assign module before Module.__init__() call", "call super().__init__() first in __init__"),
    ("modified by an inplace operation", "an in-place operation (+=, relu_, inplace=True) overwrote a tensor "
                                         "that autograd still needs"),
    ("a leaf Variable that requires grad is being used in an in-place operation",
     "edit parameters in place under torch.no_grad()"),
]


@contextlib.contextmanager
def isolated():
    """Autograd on, a fixed seed and no warnings inside; the kernel's RNG state, autograd mode and warning
    filters as they were afterwards (a warning on stderr would zero a test cell in stock nbgrader)."""
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]), torch.enable_grad():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        yield


def _in_library(filename: str) -> bool:
    return str(Path(filename).resolve()).startswith(_LIBRARY_DIRS) or "site-packages" in filename


def student_line(tb) -> str:
    """`` at line N of your cell (`source`) in Class.method`` of the innermost frame in the student's own code,
    if any: the line for the student to find it, the function (and ``calling``) for matching a crash to a
    known mistake, whose line differs (``core.failure`` drops the line and its source, nothing else)."""
    for frame, lineno in reversed(list(traceback.walk_tb(tb))):
        if not _in_library(frame.f_code.co_filename):
            source = linecache.getline(frame.f_code.co_filename, lineno, frame.f_globals).strip().replace("`", "'")
            function = frame.f_code.co_qualname
            return (f" at line {lineno} of your cell{f' (`{source}`)' if source else ''}"
                    f"{'' if function == '<module>' else f' in {function}'}")
    return ""


def calling(err: BaseException) -> str:
    """``, calling torch's conv2d on shapes (2, 3, 5, 6), (4, 5, 3, 3)``: the torch call that raised (``_Where``)."""
    return f", calling torch's {err._torch_call}" if hasattr(err, "_torch_call") else ""


class _Where(TorchFunctionMode):
    """Note on an exception which torch call raised it and on what shapes, so that a crash is matched to a known
    mistake by the operation that failed and not by its message alone."""

    def __torch_function__(self, func, types_, args=(), kwargs=None):
        try:
            return func(*args, **(kwargs or {}))
        except Exception as err:
            if not hasattr(err, "_torch_call") and not isinstance(err, CheckFailed):
                with contextlib.suppress(AttributeError):  # an exception type without a __dict__
                    err._torch_call = f"{getattr(func, '__name__', 'call')} on shapes {_shapes(args)}"
            raise


def _shapes(args) -> str:
    tensors = [a for arg in args for a in (arg if isinstance(arg, (list, tuple)) else (arg,))
               if isinstance(a, torch.Tensor)]
    return ", ".join(str(tuple(t.shape)) for t in tensors[:4]) or "none"


def explain(err: BaseException) -> str:
    """``TypeName: message`` of an exception in the student's code, shortened, with a hint where we know one."""
    text = " ".join(str(err).split())
    text = text if len(text) <= 300 else text[:297] + "..."
    hint = next((h for pattern, h in HINTS if pattern in str(err)), "")
    return f"{type(err).__name__}: {text}" + (f" (hint: {hint})" if hint else "")


@contextlib.contextmanager
def step(what: str):
    """Turn any exception inside into ``CheckFailed("<what> failed at line N of your cell: ...")``."""
    try:
        yield
    except CheckFailed:
        raise
    except NotImplementedError:
        raise CheckFailed("not implemented yet (a stub still raises NotImplementedError)") from None
    except Exception as err:  # the student's code may raise anything
        raise CheckFailed(f"{what} failed{student_line(err.__traceback__)}{calling(err)}: {explain(err)}") from None


def run(description: str, run_student: Callable[[dict, Arrays], Arrays], namespace: dict, inputs: Arrays) -> Arrays:
    """``run_student``, isolated; any error becomes a CheckFailed prefixed with the part's description."""
    try:
        with isolated(), step("your code"), _Where():
            return run_student(namespace, inputs)
    except CheckFailed as err:
        raise CheckFailed(f"{description}: {err}") from None


# --- the student's objects -----------------------------------------------------------------------------------

def _from_library(obj) -> bool:
    """Whether ``obj`` is (a wrapper of) something defined in reslab: a class, a function, a copy of a
    function's code, a partial, a bound method, or an instance of a library module. (A student's module
    may hold library parts that are not what it is graded on, e.g. option A's shortcut in a later part.)"""
    seen = 0
    while seen < 20:
        seen += 1
        if isinstance(obj, functools.partial):
            obj = obj.func
        elif isinstance(obj, types.MethodType):
            obj = obj.__func__
        elif isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        else:
            break
    if isinstance(obj, nn.Module):
        return _from_library(type(obj))
    owners = obj.__mro__ if isinstance(obj, type) else (obj,)
    for owner in owners:
        if str(getattr(owner, "__module__", "") or "").startswith("reslab"):
            return True
        code = getattr(owner, "__code__", None)
        if isinstance(code, types.CodeType) and str(Path(code.co_filename).resolve()).startswith(RESLAB):
            return True
    return False


def student(namespace: dict, name: str):
    """The student's definition of ``name``; the library's own version, however wrapped, does not count."""
    obj = namespace.get(name)
    if obj is None:
        raise CheckFailed(f"`{name}` is not defined: run the cell with your implementation first")
    if _from_library(obj):
        raise CheckFailed(f"`{name}` comes from the reslab library: the exercise is to write your own")
    return obj


def using(name: str, outputs: Callable) -> Callable[[dict, Arrays], Arrays]:
    """A part's run_student: ``outputs(the student's <name>, inputs)``."""
    return lambda namespace, inputs: outputs(student(namespace, name), inputs)


def own(value, what: str):
    """A value the student's code made; refused if it is the library's (e.g. a class whose ``__new__``
    returns the library's block)."""
    if _from_library(value):
        raise CheckFailed(f"{what} returned an object of the reslab library: the exercise is to write your own")
    return value


class _Rules(TorchFunctionMode):
    """Refuse torch calls by name, and any torch call made from inside the forbidden library files."""

    def __init__(self, message: str, functions: tuple, files: tuple):
        super().__init__()
        self.message, self.functions, self.files = message, set(functions), files

    def __torch_function__(self, func, types_, args=(), kwargs=None):
        if getattr(func, "__name__", None) in self.functions or (self.files and self._called_from_files()):
            raise CheckFailed(self.message)
        return func(*args, **(kwargs or {}))

    def __exit__(self, *exc):
        _still_on_top(self)
        return super().__exit__(*exc)

    def _called_from_files(self) -> bool:
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code.co_filename.endswith(self.files):
                return True
            frame = frame.f_back
        return False


class _Operators(TorchDispatchMode):
    """Refuse every operator of torch's dispatcher whose name matches: what each route (F.conv2d, nn.Conv2d,
    torch.ops.aten.*, OpOverloads, C entry points, autograd's backward) ends in."""

    def __init__(self, message: str, ops: str):
        super().__init__()
        self.message, self.ops = message, re.compile(ops)

    def __torch_dispatch__(self, func, types_, args=(), kwargs=None):
        if self.ops.search(func._schema.name.partition("::")[2]):
            raise CheckFailed(f"{self.message} (it ran {func._schema.name})")
        return func(*args, **(kwargs or {}))

    def __exit__(self, *exc):
        _still_on_top(self)
        return super().__exit__(*exc)


def _still_on_top(mode) -> None:
    """The student's code must not have popped the check's mode off torch's stack (it would stop seeing calls)."""
    current = _current_function_mode() if isinstance(mode, TorchFunctionMode) else _current_dispatch_mode()
    if current is not mode:
        raise CheckFailed("your code switched off the check's watch over torch calls")


@contextlib.contextmanager
def forbidding(message: str, functions: tuple = (), files: tuple = (), ops: str = ""):
    """While the block runs, the student's code may not call the torch ``functions`` (by name, however
    imported), anything defined in the torch source ``files`` (e.g. ``("torch/nn/init.py",)``), nor any
    dispatcher operator whose name matches the regular expression ``ops`` (e.g. ``"conv"``), however reached."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(_Rules(message, functions, files))
        if ops:
            stack.enter_context(_Operators(message, ops))
        yield


@contextlib.contextmanager
def library_setup():
    """The check's own use of the library (a net to hand over, reference weights): not recorded as the
    student's by ``guard``'s profile hook, which is paused meanwhile."""
    hook = sys.getprofile()
    sys.setprofile(None)
    try:
        yield
    finally:
        sys.setprofile(hook)


# --- plain arrays in and out --------------------------------------------------------------------------------

def array(value, what: str) -> np.ndarray:
    """What the student returned as a plain float64 array (tensor subclasses and all lose their magic)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().to(torch.float64).numpy()
    try:
        return np.array(value, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError):
        raise CheckFailed(f"{what} must be numbers, got {type(value).__name__}") from None


def integer(value, what: str) -> int:
    """An ``int`` exactly (a float such as 4.0 is refused: sizes and counts are integers)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise CheckFailed(f"{what} must return an int, got {type(value).__name__} ({value!r:.40})")
    return int(value)


def floats(value, what: str) -> np.ndarray:
    """One number per entry: a list or tuple of numbers (or one-element tensors), or a 1-D tensor or array."""
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 1:
        return array(value, what)
    if not isinstance(value, (list, tuple)):
        raise CheckFailed(f"{what} must return a list of floats, got {type(value).__name__}")
    bad = next((v for v in value if isinstance(v, bool) or not (isinstance(v, (float, int, np.floating)) or (
        isinstance(v, torch.Tensor) and v.numel() == 1))), None)
    if bad is not None:
        raise CheckFailed(f"{what} must return a list of floats, but it holds a {type(bad).__name__}")
    return np.array([float(v) for v in value], dtype=np.float64)


def module(value, what: str) -> nn.Module:
    if not isinstance(value, nn.Module):
        raise CheckFailed(f"{what} returned {type(value).__name__}, expected a torch.nn.Module")
    return value


def tensor_out(value, shape, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise CheckFailed(f"{what} returned {type(value).__name__}, expected a tensor")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise CheckFailed(f"{what} returned shape {tuple(value.shape)}, expected {tuple(shape)}")
    return value


def call(name: str, args: dict) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


def grad(tensor: torch.Tensor) -> torch.Tensor:
    """The gradient of ``tensor``; zeros where it got none (an unused parameter)."""
    return torch.zeros_like(tensor, dtype=torch.float64) if tensor.grad is None else tensor.grad


def prefixed(label: str, arrays: Arrays) -> Arrays:
    return {f"{label}.{key}": value for key, value in arrays.items()}


def squeezed(shape) -> tuple:
    return tuple(n for n in shape if n != 1)


# --- weights in, outputs and gradients out ----------------------------------------------------------------

def checked_state(module_: nn.Module, weights: Arrays, what: str, keys: Callable[[str], str]) -> dict:
    """``module_``'s state by name, after checking that every given entry exists in it with the same shape
    (up to dimensions of size 1), every parameter is given (extra buffers, e.g. a constant, are fine), and no
    parameter serves two names (a module shared where two were asked for)."""
    state = module_.state_dict(keep_vars=True)
    given = {keys(k): k for k in weights}
    missing = sorted(k for k in given if k not in state)
    unexpected = sorted(k for k, _ in module_.named_parameters() if k not in given)
    if missing or unexpected:
        raise CheckFailed(f"{what} does not have the prescribed parameters and buffers "
                          f"(missing: {missing or 'none'}; unexpected parameters: {unexpected or 'none'})")
    for key, source in given.items():
        if squeezed(state[key].shape) != squeezed(weights[source].shape):
            raise CheckFailed(f"{what}: {key} has shape {tuple(state[key].shape)}, expected {weights[source].shape}")
    owners = {}
    for key in given:
        if isinstance(state[key], nn.Parameter):
            owners.setdefault(id(state[key]), []).append(key)
    shared = [names for names in owners.values() if len(names) > 1]
    if shared:
        raise CheckFailed(f"{what}: {' and '.join(shared[0])} are the same parameter. Diagnosis: your code reuses "
                          "one module for two layers, where each layer needs a module of its own")
    return state


def load(module_: nn.Module, weights: Arrays, what: str, keys: Callable[[str], str] = str, fresh: tuple = ()) -> Arrays:
    """Copy ``weights`` into ``module_`` by name, strictly (see checked_state; ``keys`` maps a given name to
    the module's); returns the values the ``fresh`` entries had before, their initialisation."""
    state = checked_state(module_, weights, what, keys)
    initial = {f"fresh.{key}": array(state[keys(key)], what).reshape(weights[key].shape) for key in fresh}
    with torch.no_grad():
        for key, value in weights.items():
            state[keys(key)].copy_(torch.from_numpy(value).reshape(state[keys(key)].shape))
    return initial


def forward_backward(module_: nn.Module, x: np.ndarray, dout: np.ndarray | None, what: str,
                     params: dict | None = None) -> Arrays:
    """The output on ``x`` and, if ``dout`` is given, the input gradient and the gradients of ``params``
    (given name -> module name) after backpropagating ``dout``."""
    inp = torch.tensor(x, requires_grad=dout is not None)
    with step(f"{what}: your forward, on an input of shape {tuple(x.shape)},"):
        out = module_(inp)
    out = tensor_out(out, None if dout is None else dout.shape, what)
    if out.dtype != inp.dtype:
        raise CheckFailed(f"{what} returned {out.dtype} for a {inp.dtype} input. Diagnosis: your code {ELSEWHERE.format('dtype ')}")
    result = {"out": array(out, what)}
    if dout is None:
        return result
    module_.zero_grad(set_to_none=True)
    with step(f"{what}: backpropagating through your forward"):
        out.backward(torch.from_numpy(dout))
    result["dx"] = array(grad(inp), what)
    named = dict(module_.named_parameters())
    for key, name in (params or {}).items():
        if name in named:
            result[f"grad.{key}"] = array(grad(named[name]), what)
    return result


# an error of a forward on the meta device that says a tensor is elsewhere (not, e.g., that .item() has no data)
_NOT_ON_META = re.compile(r"is not on the expected device|on the same device|Cannot copy out of meta tensor")


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def portable(module_: nn.Module, x: np.ndarray, modes) -> Arrays:
    """Whether the module follows its input's dtype and device, as a model moved to a GPU or run in lower
    precision must: ``float32`` is 1 if a float32 input gives a float32 output in every mode while torch's
    default dtype is float64 (so a tensor made in forward without dtype=x.dtype shows), and ``device`` is 1
    unless a forward on the meta device (shapes only, no data) returns elsewhere or meets a tensor that is not
    on it. A forward that fails on meta for any other reason (e.g. ``.item()`` needs data) tells nothing: 1.
    Run last: it converts the module."""
    kept = 1.0
    try:
        with default_dtype(torch.float64), torch.no_grad():
            module_.float()
            for mode in modes:
                out = module_.train(mode == "train")(torch.from_numpy(x).float())
                kept = min(kept, float(isinstance(out, torch.Tensor) and out.dtype == torch.float32))
    except Exception:  # noqa: BLE001 - the float64 run worked: a failure in float32 is the dtype's
        kept = 0.0
    return {"float32": np.array(kept), "device": np.array(_stays_on_meta(module_, x, modes))}


def _stays_on_meta(module_: nn.Module, x: np.ndarray, modes) -> float:
    try:
        with torch.no_grad():
            module_.to("meta")
            for mode in modes:
                out = module_.train(mode == "train")(torch.from_numpy(x).to("meta"))
                if isinstance(out, torch.Tensor) and out.device.type != "meta":
                    return 0.0
    except Exception as err:  # noqa: BLE001 - the student's code may raise anything
        return 0.0 if _NOT_ON_META.search(str(err)) else 1.0
    return 1.0


def module_io(module_, weights: Arrays, x: np.ndarray, dout: np.ndarray | None, what: str, modes=("train", "eval"),
              keys: Callable[[str], str] = str, fresh: tuple = (), movable: bool = True) -> Arrays:
    """Load ``weights`` into ``module_`` in float64 and run it on ``x`` in each of ``modes``: outputs, input
    and parameter gradients, and (after training mode) the buffers such as BatchNorm's running statistics;
    also which parameters require gradients, the initial values of the ``fresh`` entries and, if ``movable``,
    whether it follows its input's dtype and device (``portable``)."""
    module_ = module(module_, what).double()
    result = load(module_, weights, what, keys, fresh)
    named = dict(module_.named_parameters())
    params = [k for k in weights if keys(k) in named]
    result["requires_grad"] = np.array([float(named[keys(k)].requires_grad) for k in params])
    for mode in modes:
        module_.train(mode == "train")
        case = forward_backward(module_, x, dout, what, {key: keys(key) for key in weights})
        for key, value in weights.items():  # gradients in the prescribed shapes, whatever shape the module chose
            if f"grad.{key}" in case:
                case[f"grad.{key}"] = case[f"grad.{key}"].reshape(value.shape)
        if mode == "train":
            state = module_.state_dict()
            case.update({f"after.{k}": array(state[keys(k)], what).reshape(v.shape) for k, v in weights.items()
                         if keys(k) not in named and np.issubdtype(v.dtype, np.floating)})
        result.update(case if mode == "train" else prefixed("eval", case))
    return {**result, **portable(module_, x, modes)} if movable else result


def accuracy(logits: np.ndarray, y: np.ndarray) -> Arrays:
    return {"logits": logits, "accuracy": np.array(np.mean(logits.argmax(1) == y), np.float64)}


def exact32(values: np.ndarray) -> np.ndarray:
    """Values rounded to float32 precision, so float32 and float64 models hold the same weights."""
    return np.asarray(values, np.float32).astype(np.float64)


# --- cases as flat arrays ------------------------------------------------------------------------------------

def case_inputs(label: str, args: dict, weights: Arrays, x: np.ndarray, dout: np.ndarray | None = None,
                y: np.ndarray | None = None) -> Arrays:
    """One case as flat arrays: constructor arguments, weights, input, upstream gradient or labels."""
    arrays = {f"{label}.arg.{k}": np.asarray(v) for k, v in args.items()}
    arrays.update({f"{label}.w.{k}": v for k, v in weights.items()})
    arrays[f"{label}.x"] = x
    arrays.update({f"{label}.{k}": v for k, v in (("dout", dout), ("y", y)) if v is not None})
    return arrays


def cases(inputs: Arrays):
    """(label, args, weights, x, dout, y) for each case in ``inputs``, in the order they were drawn."""
    for label in dict.fromkeys(key.partition(".")[0] for key in inputs if key.endswith(".x")):
        args = {k[len(label) + 5:]: value(v) for k, v in inputs.items() if k.startswith(f"{label}.arg.")}
        weights = {k[len(label) + 3:]: v for k, v in inputs.items() if k.startswith(f"{label}.w.")}
        yield label, args, weights, inputs[f"{label}.x"], inputs.get(f"{label}.dout"), inputs.get(f"{label}.y")


def value(array_: np.ndarray):
    if array_.dtype.kind == "U":
        return str(array_)
    return array_.item() if array_.ndim == 0 else tuple(array_.tolist())


def reference_weights(name: str) -> Arrays:
    """The shipped reference model ``name``'s weights as float64 / int64 arrays (public: in the library)."""
    from .. import reference
    with library_setup():
        model, _ = reference.load(name)
    return {k: v.numpy().astype(np.float64 if v.is_floating_point() else np.int64)
            for k, v in model.state_dict().items()}


@dataclass(frozen=True)
class Modules:
    """Run a module class on every case of the inputs: ``cls(**args)`` with the case's weights loaded by
    name, in train and eval mode, outputs and all gradients; a case with labels ``y`` and no ``dout`` is
    evaluated (eval mode) for logits and accuracy, with the weights of the shipped model named by its
    ``model`` argument if it has one."""

    cls: str
    rename: tuple = ()  # (library key, prescribed key) pairs; the prescribed entry is squeezed: (1, C, 1, 1) -> (C,)
    fresh: tuple = ()  # prescribed entries whose initial value is checked too
    modes: Callable[[dict], tuple] | None = None  # the modes a case runs in, from its args (default: both)

    def run_student(self, namespace: dict, inputs: Arrays) -> Arrays:
        cls = student(namespace, self.cls)
        return self.outputs(inputs, lambda **args: own(cls(**args), call(self.cls, args)),
                            lambda args: call(self.cls, args), str)

    def outputs(self, inputs: Arrays, build, describe, keys) -> Arrays:
        results = {}
        for label, args, weights, x, dout, y in cases(inputs):
            what = describe(args)
            model = args.pop("model", None)
            with step(f"constructing {describe(args)}"):
                made = build(**args)
            if y is None:
                modes = self.modes(args) if self.modes else ("train", "eval")
                case = module_io(made, weights, x, dout, what, modes, keys=keys, fresh=self.fresh)
            else:
                weights = weights or reference_weights(model)
                case = accuracy(module_io(made, weights, x, None, what, ("eval",), keys, movable=False)["eval.out"], y)
            results.update(prefixed(label, case))
        return results


def net(inputs: Arrays, label: str = "net", train: bool = True) -> nn.Module:
    """The library net of case ``label`` (its config in the case's args), in float64 with its weights."""
    from ..models import Net, NetConfig
    (_, args, weights, *_), = (case for case in cases(inputs) if case[0] == label)
    with library_setup():
        built = Net(NetConfig(**args)).double()
    load(built, weights, "the net")
    return built.train(train)
