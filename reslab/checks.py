"""The one registry of graded checks: every graded part of every assignment is defined once, here.

A check is used in two ways. In the student's own kernel, ``run_in_kernel`` draws inputs from a public seed,
runs the student's code and compares it at once (instant feedback; also what stock ``nbgrader autograde``
runs, unprotected). In the trusted grader, inputs come from a secret seed, only ``probe`` runs inside the
sandboxed kernel, and ``validate`` and ``grade`` compare the plain arrays it wrote in the grader's own process.

Checks compare the student's code with the library's implementation (``reslab.models`` and friends) given the
same random weights, in float64, on outputs and on gradients (input and parameters), by CS231n's relative
error ``max(|x - y| / max(1e-8, |x| + |y|))`` against a tolerance stated per check.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import sysconfig
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import data, probes, reference
from .models import (BasicBlock, Bottleneck, Net, NetConfig, PreActBlock, Scale, ZeroPadShortcut, build,
                     make_shortcut)

Arrays = dict[str, np.ndarray]

ASSIGNMENTS = ["a01_cnn_basics", "a02_gradients", "a03_nested", "a04_identity_add", "a05_projected_add",
               "a06_scaling", "a07_resnet"]


@dataclass(frozen=True)
class Check:
    assignment: str
    name: str  # unique in its assignment; the nbgrader grade_id of its autograded test cell
    points: float
    make_inputs: Callable[[np.random.Generator], Arrays]  # trusted side: inputs and weights from a seed
    run_student: Callable[[dict, Arrays], Arrays]  # student side: (notebook globals, inputs) -> outputs
    reference: Callable[[Arrays], Arrays]  # trusted side: the expected outputs
    rtol: float  # CS231n relative-error tolerance
    description: str  # one line for feedback, no solution in it


@dataclass(frozen=True)
class Result:
    name: str
    score: float
    max_score: float
    passed: bool
    message: str


class CheckFailed(AssertionError):
    """A submission that does not meet a check; the message is meant for the student."""


# --- comparing ---------------------------------------------------------------------------------------------

def rel_error(x: np.ndarray, y: np.ndarray) -> float:
    """CS231n's relative error: the largest elementwise |x - y| / max(1e-8, |x| + |y|)."""
    if x.size == 0:
        return 0.0
    x, y = x.astype(np.float64), y.astype(np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def validate(outputs, expected: Arrays) -> None:
    """Raise CheckFailed unless ``outputs`` has exactly the expected keys, and each value is a plain
    np.ndarray of the expected dtype and shape with finite entries."""
    if not isinstance(outputs, dict):
        raise CheckFailed(f"outputs must be a dict of arrays, got {type(outputs).__name__}")
    missing, extra = sorted(set(expected) - set(outputs)), sorted(set(outputs) - set(expected))
    if missing or extra:
        raise CheckFailed(f"outputs do not have the expected entries (missing {missing}, unexpected {extra})")
    for key, want in expected.items():
        got = outputs[key]
        what = _phrase(key)
        if type(got) is not np.ndarray:
            raise CheckFailed(f"{what} must be a numpy array, got {type(got).__name__}")
        if got.dtype != want.dtype:
            raise CheckFailed(f"{what}: dtype {got.dtype}, expected {want.dtype}")
        if got.shape != want.shape:
            raise CheckFailed(f"{what}: shape {got.shape}, expected {want.shape}")
        if got.dtype.kind in "fc" and not np.isfinite(got).all():
            raise CheckFailed(f"{what} contains NaN or infinity")


_PHRASES = {
    "out": "the output", "dx": "the gradient with respect to the input", "sizes": "the output sizes",
    "norms": "the gradient norms", "stds": "the activation standard deviations",
    "hooks_left": "the number of hooks left on the model", "rms": "the root mean square of the weights",
    "kurtosis": "the shape of the weight distribution (kurtosis)",
    "logits": "the logits", "shallow_logits": "the shallow net's logits after deepening",
    "shallow_blocks": "the shallow net's blocks per stage after deepening",
    "new_bn2": "the last BatchNorm's weight and bias in the new blocks",
    "new_convs_nonzero": "which convolutions of the new blocks have non-zero weights",
    "original_logits": "the original net's logits afterwards", "accuracy": "the test accuracy",
    "out_no_bias": "the output with bias=None", "fields": "the receptive fields",
}


def _phrase(key: str) -> str:
    """A readable name for an output key such as ``B.grad.conv1.weight`` or ``fresh.alpha``."""
    head, _, rest = key.partition(".")
    if head in _CASE_LABELS:
        return f"{_CASE_LABELS[head]}: {_phrase(rest)}"
    if head == "grad":
        return f"the gradient of {rest}"
    if head == "fresh":
        return f"the initial value of {rest}"
    if head == "after":
        return f"{rest} afterwards"
    return _PHRASES.get(key, key)


_CASE_LABELS = {"same": "shapes unchanged", "down": "shapes change", "A": "option A", "B": "option B",
                "stride1": "stride 1", "stride2": "stride 2", "rand": "a small net with random weights",
                "ref": "the reference resnet20 weights on the digits test split"}


def grade(check: Check, outputs, inputs: Arrays) -> Result:
    """Score the student's ``outputs`` against the reference on the same inputs: all points or none."""
    with _isolated():
        expected = check.reference(inputs)
    try:
        validate(outputs, expected)
    except CheckFailed as err:
        return Result(check.name, 0.0, float(check.points), False, f"{check.description}: {err}")
    errors = {key: rel_error(outputs[key], want) for key, want in expected.items()}
    bad = [key for key, err in errors.items() if not err <= check.rtol]
    if not bad:
        return Result(check.name, float(check.points), float(check.points), True, f"{check.description}: passed")
    first = bad[0]
    message = (f"{check.description}: {_phrase(first)}: relative error {errors[first]:.1e} against the reference "
               f"implementation (tolerance {check.rtol:.0e})")
    if len(bad) > 1:
        message += f"; {len(bad) - 1} more quantit{'y is' if len(bad) == 2 else 'ies are'} off too"
    if all(key.endswith("dx") or "grad." in key for key in bad):
        message += (". The forward pass is right but the gradients are not: look for .detach(), .data, "
                    "numpy round trips or in-place operations")
    return Result(check.name, 0.0, float(check.points), False, message)


# --- running the student's side ----------------------------------------------------------------------------

_LIBRARY_DIRS = tuple(str(Path(p).resolve()) for p in (
    Path(__file__).parent, Path(torch.__file__).parent, Path(np.__file__).parent, sysconfig.get_paths()["stdlib"]))


def _student_line(tb) -> str:
    """`` (line N: source)`` of the innermost frame in the student's own code, if there is one."""
    for frame in reversed(traceback.extract_tb(tb)):
        if not str(Path(frame.filename).resolve()).startswith(_LIBRARY_DIRS) and "site-packages" not in frame.filename:
            return f" (your code, line {frame.lineno}{': ' + frame.line.strip() if frame.line else ''})"
    return ""


@contextlib.contextmanager
def _isolated():
    """Autograd on, a fixed seed and no warnings inside; the kernel's RNG state, autograd mode and warning
    filters as they were afterwards (a warning on stderr would zero a test cell in stock nbgrader)."""
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]), torch.enable_grad():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        yield


def _run_student(check: Check, namespace: dict, inputs: Arrays) -> Arrays:
    """``check.run_student``, isolated; any error becomes a CheckFailed with a short message that points at
    the student's line, never at ours."""
    try:
        with _isolated():
            return check.run_student(namespace, inputs)
    except CheckFailed as err:
        raise CheckFailed(f"{check.description}: {err}") from None
    except NotImplementedError:
        raise CheckFailed(f"{check.description}: not implemented yet (a stub still raises "
                          "NotImplementedError)") from None
    except Exception as err:  # the student's code may raise anything
        text = " ".join(str(err).split())
        text = text if len(text) <= 300 else text[:297] + "..."
        where = _student_line(err.__traceback__)
        raise CheckFailed(f"{check.description}: {type(err).__name__}: {text}{where}") from None


def probe(assignment: str, name: str, namespace: dict, inputs_path, outputs_path) -> None:
    """Inside the sandboxed kernel: read the inputs (no pickle), run the student's side, write the outputs
    npz to ``outputs_path``, or ``outputs_path + ".error.json"`` with a short message if it fails."""
    check = get(assignment, name)
    with np.load(inputs_path, allow_pickle=False) as stored:
        inputs = {key: stored[key] for key in stored.files}
    try:
        outputs = _run_student(check, namespace, inputs)
    except CheckFailed as err:
        _atomic_write(str(outputs_path) + ".error.json", json.dumps({"error": str(err)}).encode())
        return
    buffer = io.BytesIO()
    np.savez(buffer, **outputs)
    _atomic_write(outputs_path, buffer.getvalue())


def _atomic_write(path, data: bytes) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def run_in_kernel(assignment: str, name: str, namespace: dict, seed: int) -> Result:
    """Visible checks and stock-nbgrader hidden tests: draw inputs from ``seed``, run and grade in this
    process; raise AssertionError (CheckFailed) with a friendly message unless every quantity matches."""
    check = get(assignment, name)
    with _isolated():
        inputs = check.make_inputs(np.random.default_rng(seed))
    result = grade(check, _run_student(check, namespace, inputs), inputs)
    if not result.passed:
        raise CheckFailed(result.message)
    print(f"{name}: passed ({result.score:g}/{result.max_score:g} points, seed {seed})")
    return result


# --- shared by every check: the student's side and the trusted side run the same code ------------------------

def _student(namespace: dict, name: str):
    """The student's definition of ``name``; the library's own version does not count."""
    obj = namespace.get(name)
    if obj is None:
        raise CheckFailed(f"`{name}` is not defined: run the cell with your implementation first")
    owners = obj.__mro__ if isinstance(obj, type) else (obj,)
    if any(str(getattr(o, "__module__", "")).startswith("reslab") for o in owners):
        raise CheckFailed(f"`{name}` comes from the reslab library: the exercise is to write your own")
    return obj


def _exact32(values: np.ndarray) -> np.ndarray:
    """Random values rounded to float32 precision, so float32 and float64 models hold the same weights."""
    return np.asarray(values, np.float32).astype(np.float64)


def _array(value, what: str) -> np.ndarray:
    """What the student returned as a plain array of ``dtype`` (tensor subclasses and all lose their magic)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().to(torch.float64).numpy()
    try:
        return np.array(value, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError):
        raise CheckFailed(f"{what} must be numbers, got {type(value).__name__}") from None


def _tensor_out(value, shape, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise CheckFailed(f"{what} returned {type(value).__name__}, expected a tensor")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise CheckFailed(f"{what} returned shape {tuple(value.shape)}, expected {tuple(shape)}")
    return value


def _call(name: str, args: dict) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


def _random_state(module: nn.Module, rng: np.random.Generator) -> Arrays:
    """Random values for every entry of ``module.state_dict()``: weights ~ N(0, 1/fan_in), BatchNorm scales
    near 1 with random shifts and running statistics, learnable scales in [0.3, 1]."""
    state = {}
    for key, tensor in module.state_dict().items():
        owner, leaf, shape = module.get_submodule(key.rpartition(".")[0]), key.rpartition(".")[2], tuple(tensor.shape)
        if leaf == "num_batches_tracked":
            state[key] = np.zeros(shape, np.int64)
            continue
        if isinstance(owner, nn.modules.batchnorm._BatchNorm) and leaf in ("weight", "running_var"):
            value = rng.uniform(0.5, 1.5, shape)
        elif isinstance(owner, Scale):
            value = rng.uniform(0.3, 1.0, shape)
        elif tensor.dim() > 1:
            value = rng.normal(0, 1 / math.sqrt(tensor[0].numel()), shape)
        else:
            value = rng.normal(0, 0.5, shape)
        state[key] = _exact32(value)
    return state


def _squeezed(shape) -> tuple:
    return tuple(n for n in shape if n != 1)


def _checked_state(module: nn.Module, weights: Arrays, what: str, keys: Callable[[str], str]) -> dict:
    """``module``'s state by name, after checking that every given entry exists in it with the same shape
    (up to dimensions of size 1) and every parameter is given (extra buffers, e.g. a constant, are fine)."""
    state = module.state_dict(keep_vars=True)
    given = {keys(k): k for k in weights}
    missing = sorted(k for k in given if k not in state)
    unexpected = sorted(k for k, _ in module.named_parameters() if k not in given)
    if missing or unexpected:
        raise CheckFailed(f"{what} does not have the prescribed parameters and buffers "
                          f"(missing: {missing or 'none'}; unexpected parameters: {unexpected or 'none'})")
    for key, source in given.items():
        if _squeezed(state[key].shape) != _squeezed(weights[source].shape):
            raise CheckFailed(f"{what}: {key} has shape {tuple(state[key].shape)}, expected {weights[source].shape}")
    return state


def _load(module: nn.Module, weights: Arrays, what: str, keys: Callable[[str], str] = str, fresh: tuple = ()) -> Arrays:
    """Copy ``weights`` into ``module`` by name, strictly (see _checked_state; ``keys`` maps a given name to
    the module's); returns the values the ``fresh`` entries had before, their initialisation."""
    state = _checked_state(module, weights, what, keys)
    initial = {f"fresh.{key}": _array(state[keys(key)], what).reshape(weights[key].shape) for key in fresh}
    with torch.no_grad():
        for key, value in weights.items():
            state[keys(key)].copy_(torch.from_numpy(value).reshape(state[keys(key)].shape))
    return initial


def _module_io(module, weights: Arrays, x: np.ndarray, dout: np.ndarray | None, what: str, train: bool = True,
               keys: Callable[[str], str] = str, fresh: tuple = ()) -> Arrays:
    """Load ``weights`` into ``module`` in float64 and run it on ``x`` in train or eval mode (see
    _forward_backward); the initial values of the ``fresh`` entries too."""
    module = _module(module, what).double()
    result = _load(module, weights, what, keys, fresh)
    module.train(train)
    result.update(_forward_backward(module, x, dout, what, {key: keys(key) for key in weights}))
    for key, value in weights.items():  # gradients in the prescribed shapes, whatever shape the module chose
        if f"grad.{key}" in result:
            result[f"grad.{key}"] = result[f"grad.{key}"].reshape(value.shape)
    return result


def _forward_backward(module: nn.Module, x: np.ndarray, dout: np.ndarray | None, what: str,
                      params: dict | None = None) -> Arrays:
    """The output on ``x`` and, if ``dout`` is given, the input gradient and the gradients of ``params``
    (given name -> module name) after backpropagating ``dout``."""
    inp = torch.tensor(x, requires_grad=dout is not None)
    out = _tensor_out(module(inp), None if dout is None else dout.shape, what)
    result = {"out": _array(out, what)}
    if dout is None:
        return result
    out.backward(torch.from_numpy(dout))
    result["dx"] = _array(_grad(inp), what)
    named = dict(module.named_parameters())
    for key, name in (params or {}).items():
        if name in named:
            result[f"grad.{key}"] = _array(_grad(named[name]), what)
    return result


def _grad(tensor: torch.Tensor) -> torch.Tensor:
    """The gradient of ``tensor``; zeros where it got none (an unused parameter)."""
    return torch.zeros_like(tensor, dtype=torch.float64) if tensor.grad is None else tensor.grad


def _prefixed(label: str, arrays: Arrays) -> Arrays:
    return {f"{label}.{key}": value for key, value in arrays.items()}


def _case_inputs(label: str, args: dict, weights: Arrays, x: np.ndarray, dout: np.ndarray | None = None,
                 y: np.ndarray | None = None) -> Arrays:
    """One case as flat arrays: constructor arguments, weights, input, upstream gradient or labels."""
    arrays = {f"{label}.arg.{k}": np.asarray(v) for k, v in args.items()}
    arrays.update({f"{label}.w.{k}": v for k, v in weights.items()})
    arrays[f"{label}.x"] = x
    arrays.update({f"{label}.{k}": v for k, v in (("dout", dout), ("y", y)) if v is not None})
    return arrays


def _cases(inputs: Arrays):
    """(label, args, weights, x, dout, y) for each case in ``inputs``, in the order they were drawn."""
    for label in dict.fromkeys(key.partition(".")[0] for key in inputs if key.endswith(".x")):
        args = {k[len(label) + 5:]: _value(v) for k, v in inputs.items() if k.startswith(f"{label}.arg.")}
        weights = {k[len(label) + 3:]: v for k, v in inputs.items() if k.startswith(f"{label}.w.")}
        yield label, args, weights, inputs[f"{label}.x"], inputs.get(f"{label}.dout"), inputs.get(f"{label}.y")


def _value(array: np.ndarray):
    return array.item() if array.ndim == 0 else tuple(array.tolist())


def _accuracy(logits: np.ndarray, y: np.ndarray) -> Arrays:
    return {"logits": logits, "accuracy": np.array(np.mean(logits.argmax(1) == y), np.float64)}


@dataclass(frozen=True)
class _Modules:
    """The student's ``cls(**args)`` against the library's ``reference(**args)``: for every case drawn by
    ``cases(rng) -> {label: (args, x_shape)}`` the same random weights, outputs and all gradients; for
    every case of ``fixed() -> Arrays`` (given weights and labelled data) logits and accuracy in eval mode."""

    cls: str
    reference: Callable[..., nn.Module]
    cases: Callable[[np.random.Generator], dict]
    rename: tuple = ()  # (library key, prescribed key) pairs; the prescribed entry is squeezed: (1, C, 1, 1) -> (C,)
    skip: tuple = ()  # library state the prescribed class does not have (constants)
    fresh: tuple = ()  # prescribed entries whose initial value is checked too
    fixed: Callable[[], Arrays] | None = None

    def make_inputs(self, rng: np.random.Generator) -> Arrays:
        names = dict(self.rename)
        arrays = {}
        for label, (args, x_shape) in self.cases(rng).items():
            module = self.reference(**args).double()
            weights = {names.get(k, k): v.reshape(_squeezed(v.shape)) if k in names else v
                       for k, v in _random_state(module, rng).items() if k not in self.skip}
            x = _exact32(rng.standard_normal(x_shape))
            with torch.no_grad():
                out_shape = module(torch.from_numpy(x)).shape
            arrays.update(_case_inputs(label, args, weights, x, _exact32(rng.standard_normal(out_shape))))
        return {**arrays, **(self.fixed() if self.fixed else {})}

    def run_student(self, namespace: dict, inputs: Arrays) -> Arrays:
        student = _student(namespace, self.cls)
        return self._outputs(inputs, student, lambda args: _call(self.cls, args), str)

    def expected(self, inputs: Arrays) -> Arrays:
        library = {prescribed: key for key, prescribed in self.rename}
        return self._outputs(inputs, self.reference, lambda args: "the reference", lambda k: library.get(k, k))

    def _outputs(self, inputs: Arrays, build, describe, keys) -> Arrays:
        outputs = {}
        for label, args, weights, x, dout, y in _cases(inputs):
            what = describe(args)
            if y is None:
                case = _module_io(build(**args), weights, x, dout, what, True, keys, self.fresh)
            else:
                case = _accuracy(_module_io(build(**args), weights, x, None, what, False, keys)["out"], y)
            outputs.update(_prefixed(label, case))
        return outputs


def _modules_check(assignment, name, points, description, modules: _Modules, rtol=1e-6) -> Check:
    return Check(assignment, name, points, modules.make_inputs, modules.run_student, modules.expected, rtol,
                 description)


def _batch(rng, size=(4, 7)) -> tuple[int, int, int]:
    """A batch size and a non-square spatial size (one side odd), so that mixed-up axes and strides show."""
    h = int(rng.integers(*size))
    return int(rng.integers(2, 4)), h, h + 1


def _channels_case(rng, **args) -> dict:
    """One shape-preserving block case: ``channels`` drawn, further constructor ``args`` as given."""
    c = int(rng.integers(2, 6))
    n, h, w = _batch(rng)
    return {"same": ({"channels": c, **args}, (n, c, h, w))}


def _net_inputs(rng, config: NetConfig, batch: int, dout: bool = False) -> Arrays:
    """A library net's config, random weights and a batch of digit-sized inputs with labels."""
    args = {"stages": config.stages, "widths": config.widths, "shortcut": config.shortcut,
            "residual": config.residual, "activation": config.activation}
    x = _exact32(rng.standard_normal((batch, 1, 8, 8)))
    grad = _exact32(rng.standard_normal((batch, config.num_classes))) if dout else None
    return _case_inputs("net", args, _random_state(Net(config), rng), x, grad, rng.integers(0, 10, batch))


def _net(inputs: Arrays, train: bool) -> Net:
    """The library net of ``_net_inputs``, in float64 with its random weights loaded."""
    (_, args, weights, *_), = (case for case in _cases(inputs) if case[0] == "net")
    net = Net(NetConfig(**args)).double()
    _load(net, weights, "the net")
    return net.train(train)


def _tensor(inputs: Arrays, key: str, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor(inputs[key], requires_grad=requires_grad)


def _number(value, what: str) -> float:
    array = _array(value, what)
    if array.shape != ():
        raise CheckFailed(f"{what} must return a single number, got an array of shape {array.shape}")
    return float(array)


def _module(value, what: str) -> nn.Module:
    if not isinstance(value, nn.Module):
        raise CheckFailed(f"{what} returned {type(value).__name__}, expected a torch.nn.Module")
    return value


# --- a01_cnn_basics: output sizes, a convolution by unfold, receptive fields -------------------------------

_CONV_SIZE_ARGS = ("size", "kernel", "stride", "padding", "dilation")
# fixed cases that every classic slip gets wrong, then random ones
_CONV_SIZE_CASES = [(32, 3, 1, 1, 1), (8, 3, 2, 0, 1), (10, 3, 1, 2, 2), (9, 5, 3, 1, 1)]


def _conv_size_inputs(rng) -> Arrays:
    cases = list(_CONV_SIZE_CASES)
    while len(cases) < 40:
        size, kernel, stride, padding, dilation = (int(rng.integers(lo, hi)) for lo, hi in
                                                   ((1, 33), (1, 8), (1, 5), (0, 4), (1, 4)))
        if dilation * (kernel - 1) + 1 <= size + 2 * padding:
            cases.append((size, kernel, stride, padding, dilation))
    return {"cases": np.array(cases, np.int64)}


def _conv_size_student(namespace, inputs) -> Arrays:
    fn = _student(namespace, "conv_output_size")
    return {"sizes": np.array([_number(fn(**dict(zip(_CONV_SIZE_ARGS, case))), "conv_output_size")
                               for case in inputs["cases"].tolist()])}


def _conv_size_reference(inputs) -> Arrays:
    """What torch's own convolution gives."""
    return {"sizes": np.array([F.conv1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s, padding=p,
                                        dilation=d).shape[-1] for n, k, s, p, d in inputs["cases"].tolist()],
                              np.float64)}


def _unfold_inputs(rng) -> Arrays:
    """Two convolutions, stride 1 and stride 2, with random sizes, weights, bias and upstream gradient."""
    arrays = {}
    n, h, w = _batch(rng, size=(5, 9))
    for stride in (1, 2):
        c, o, k = (int(rng.integers(lo, hi)) for lo, hi in ((2, 5), (2, 6), (2, 4)))
        padding = int(rng.integers(0, 3))
        case = {"x": _exact32(rng.standard_normal((n, c, h, w))),
                "weight": _exact32(rng.standard_normal((o, c, k, k))), "bias": _exact32(rng.standard_normal(o)),
                "stride": np.array(stride), "padding": np.array(padding)}
        out = F.conv2d(torch.from_numpy(case["x"]), torch.from_numpy(case["weight"]), stride=stride, padding=padding)
        case["dout"] = _exact32(rng.standard_normal(tuple(out.shape)))
        arrays.update(_prefixed(f"stride{stride}", case))
    return arrays


def _conv_io(conv, inputs: Arrays, what: str) -> Arrays:
    """For each case, ``conv(x, weight, bias, stride=, padding=)``: the output, the output without bias, and
    the gradients of x, weight and bias."""
    outputs = {}
    for label in ("stride1", "stride2"):
        x, weight, bias = (_tensor(inputs, f"{label}.{k}", requires_grad=True) for k in ("x", "weight", "bias"))
        kwargs = {"stride": int(inputs[f"{label}.stride"]), "padding": int(inputs[f"{label}.padding"])}
        shape = inputs[f"{label}.dout"].shape
        no_bias = _tensor_out(conv(x.detach(), weight.detach(), None, **kwargs), shape, f"{what} with bias=None")
        out = _tensor_out(conv(x, weight, bias, **kwargs), shape, what)
        out.backward(torch.from_numpy(inputs[f"{label}.dout"]))
        outputs.update(_prefixed(label, {
            "out": _array(out, what), "out_no_bias": _array(no_bias, what), "dx": _array(_grad(x), what),
            **{f"grad.{k}": _array(_grad(t), what) for k, t in (("weight", weight), ("bias", bias))}}))
    return outputs


@contextlib.contextmanager
def _forbidden(message: str, *places):
    """Make the (module, attribute) ``places`` raise CheckFailed(message) while the block runs."""
    saved = [(owner, name, getattr(owner, name)) for owner, name in places]

    def refuse(*args, **kwargs):
        raise CheckFailed(message)

    for owner, name, _ in saved:
        setattr(owner, name, refuse)
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def _unfold_student(namespace, inputs) -> Arrays:
    conv = _student(namespace, "conv2d_unfold")
    with _forbidden("conv2d_unfold must not call torch's convolution: build it from F.unfold and a matrix "
                    "product", (F, "conv2d"), (torch, "conv2d")):
        return _conv_io(conv, inputs, "conv2d_unfold")


# fixed stacks that every classic slip gets wrong (one with gaps: stride larger than kernel), then random ones
_FIELD_CASES = [([3, 3, 3], [2, 2, 2]), ([7, 3], [2, 1]), ([1, 3], [3, 1]), ([5], [1])]


def _field_inputs(rng) -> Arrays:
    cases, depth = 12, 6
    mask = np.arange(depth) < rng.integers(1, depth + 1, (cases, 1))
    kernels = np.where(mask, rng.integers(1, 6, (cases, depth)), 0)
    strides = np.where(mask, rng.integers(1, 4, (cases, depth)), 0)
    for i, (k, s) in enumerate(_FIELD_CASES):
        kernels[i], strides[i] = np.pad(k, (0, depth - len(k))), np.pad(s, (0, depth - len(s)))
    return {"kernels": kernels, "strides": strides}


def _stacks(inputs: Arrays):
    """(kernels, strides) lists of each stack of layers, first layer first."""
    for kernels, strides in zip(inputs["kernels"].tolist(), inputs["strides"].tolist()):
        n = kernels.index(0) if 0 in kernels else len(kernels)
        yield kernels[:n], strides[:n]


def _field_student(namespace, inputs) -> Arrays:
    fn = _student(namespace, "receptive_field")
    return {"fields": np.array([_number(fn(kernels=k, strides=s), "receptive_field") for k, s in _stacks(inputs)])}


def _measured_field(kernels: list, strides: list) -> int:
    """The extent of the input positions that reach the first output of a stack of 1-D convolutions, found
    by backprop (strides larger than kernels leave gaps inside it)."""
    x = torch.zeros(1, 1, sum(kernels) * math.prod(strides) + 1, dtype=torch.float64, requires_grad=True)
    h = x
    for k, s in zip(kernels, strides):
        h = F.conv1d(h, torch.ones(1, 1, k, dtype=torch.float64), stride=s)
    h[0, 0, 0].backward()
    reached = torch.nonzero(x.grad[0, 0]).flatten()
    return int(reached[-1] - reached[0] + 1)


def _field_reference(inputs) -> Arrays:
    return {"fields": np.array([_measured_field(k, s) for k, s in _stacks(inputs)], np.float64)}


# --- a02_gradients: a gradient-norm probe, Kaiming initialisation, an activation probe ----------------------

def _plain_net_inputs(rng) -> Arrays:
    config = NetConfig(stages=tuple(int(v) for v in rng.integers(1, 3, 2)), widths=(4, 8), residual=False,
                       activation=("relu", "tanh")[int(rng.integers(2))])
    return _net_inputs(rng, config, batch=8)


def _grad_norms_student(namespace, inputs) -> Arrays:
    fn = _student(namespace, "grad_norms")
    net, x, y = _net(inputs, train=True), _tensor(inputs, "net.x"), _tensor(inputs, "net.y")
    F.cross_entropy(net(x), y).backward()  # a net fresh from training still holds gradients
    return {"norms": _array(fn(net, x, y), "grad_norms")}


def _grad_norms_reference(inputs) -> Arrays:
    stats = probes.layer_stats(_net(inputs, train=True), _tensor(inputs, "net.x"), _tensor(inputs, "net.y"))
    return {"norms": np.array(stats.grad_norm)}


def _hooks(net: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in net.modules())


def _stds_student(namespace, inputs) -> Arrays:
    fn = _student(namespace, "activation_stds")
    net, x = _net(inputs, train=True), _tensor(inputs, "net.x")
    fn(net, x)  # called twice: hooks left behind by the first call would show in the second
    return {"stds": _array(fn(net, x), "activation_stds"), "hooks_left": np.array(float(_hooks(net)))}


def _stds_reference(inputs) -> Arrays:
    net = _net(inputs, train=True)
    stats = probes.layer_stats(net, _tensor(inputs, "net.x"), _tensor(inputs, "net.y"))
    return {"stds": np.array(stats.act_std), "hooks_left": np.array(float(_hooks(net)))}


def _kaiming_inputs(rng) -> Arrays:
    """Weight shapes with at least 65536 entries (tight statistics) and fan-in far from fan-out."""
    draw = rng.integers
    return {"conv_shapes": np.array([(draw(256, 321), draw(32, 49), 3, 3), (draw(64, 97), draw(128, 193), 3, 3),
                                     (draw(256, 321), draw(256, 321), 1, 1)]),
            "linear_shape": np.array((draw(128, 257), draw(512, 1025)))}


def _kaiming_shapes(inputs: Arrays) -> list[tuple]:
    return [tuple(s) for s in inputs["conv_shapes"].tolist()] + [tuple(inputs["linear_shape"].tolist())]


def _kaiming_student(namespace, inputs) -> Arrays:
    fn = _student(namespace, "kaiming_normal_")
    filled = []
    for shape in _kaiming_shapes(inputs):
        weight = nn.Parameter(torch.zeros(shape))
        fn(weight)  # fills in place, like torch.nn.init: what it returns does not count
        filled.append(weight.detach().double())
    m2 = torch.stack([w.square().mean() for w in filled])
    m4 = torch.stack([w.pow(4).mean() for w in filled])
    return {"rms": m2.sqrt().numpy(), "kurtosis": (m4 / m2.square().clamp_min(1e-300)).numpy()}


def _kaiming_reference(inputs) -> Arrays:
    """N(0, 2 / fan_in) exactly: the root mean square sqrt(2 / fan_in) and a normal's kurtosis of 3."""
    gain = nn.init.calculate_gain("relu")
    fans = [shape[1] * math.prod(shape[2:]) for shape in _kaiming_shapes(inputs)]
    return {"rms": np.array([gain / math.sqrt(f) for f in fans]), "kurtosis": np.full(len(fans), 3.0)}


# --- a03_nested: identity blocks, plain and residual; function-preserving deepening --------------------------

def _identity_inputs(rng, residual: bool) -> Arrays:
    """A 2-conv block with random weights (with BatchNorm if residual, with conv biases if plain) and
    positive inputs, on which the identity and a ReLU agree."""
    (args, shape), = _channels_case(rng).values()
    block = _identity_block(args["channels"], residual)
    x = _exact32(np.abs(rng.standard_normal(shape)) + 0.1)
    return _case_inputs("block", args, _random_state(block, rng), x, _exact32(rng.standard_normal(shape)))


def _identity_add(channels: int, scale: nn.Module | None = None) -> BasicBlock:
    """The library's identity-add block, its branch scaled by ``scale`` if given."""
    return BasicBlock(channels, channels, shortcut=nn.Identity(), scale=scale)


def _identity_block(channels: int, residual: bool) -> BasicBlock:
    """The residual block, or the plain one without BatchNorm (so its convolutions have biases)."""
    return _identity_add(channels) if residual else BasicBlock(channels, channels, norm=False)


def _identity_outputs(make_identity, inputs: Arrays, residual: bool, what: str) -> Arrays:
    """Let ``make_identity`` edit the block in place; then its output and input gradient (eval mode) and,
    for the residual block, its whole state afterwards."""
    (_, args, weights, x, dout, _), = _cases(inputs)
    block = _identity_block(args["channels"], residual).double()
    _load(block, weights, "the block")
    make_identity(block)
    block = block.double().eval()
    outputs = _forward_backward(block, x, dout, what)
    if residual:
        outputs.update({f"after.{k}": _array(v, what) for k, v in block.state_dict().items()})
    return outputs


def _dirac_(block: BasicBlock) -> None:
    for conv in (block.conv1, block.conv2):
        nn.init.dirac_(conv.weight)
        nn.init.zeros_(conv.bias)


def _zero_last_norm_(block: BasicBlock) -> None:
    nn.init.zeros_(block.last_norm().weight)
    nn.init.zeros_(block.last_norm().bias)


def _identity_check(name: str, points: float, residual: bool, library_fn, description: str) -> Check:
    """The check of the function ``name + "_"``, which edits a block in place."""
    return Check("a03_nested", name, points, lambda rng: _identity_inputs(rng, residual),
                 lambda ns, inputs: _identity_outputs(_student(ns, name + "_"), inputs, residual, name + "_"),
                 lambda inputs: _identity_outputs(library_fn, inputs, residual, name + "_"), 1e-6, description)


def _deepen_inputs(rng) -> Arrays:
    config = NetConfig(stages=tuple(int(v) for v in rng.integers(1, 3, 2)), widths=(4, 8))
    return {**_net_inputs(rng, config, batch=4, dout=True), "extra": rng.integers(1, 3, 2)}


def _deepen_outputs(deepen, inputs: Arrays) -> Arrays:
    """Deepen the shallow net with ``deepen``; the deep net's logits and input gradient (eval mode), the
    shallow net afterwards, and the state of the new blocks."""
    shallow = _net(inputs, train=False)
    stages, extra = shallow.config.stages, tuple(int(v) for v in inputs["extra"])
    deep = _module(deepen(shallow, extra), "deepen").double().eval()
    blocks = tuple(len(getattr(deep, f"layer{i + 1}")) for i in range(len(stages)))
    wanted = tuple(n + e for n, e in zip(stages, extra))
    if blocks != wanted:
        raise CheckFailed(f"deepen(net, {extra}) returned a net with {blocks} blocks per stage, expected {wanted}")
    new = [block for i, n in enumerate(stages) for block in list(getattr(deep, f"layer{i + 1}"))[n:]]
    outputs = _forward_backward(deep, inputs["net.x"], inputs["net.dout"], "the deepened net")
    with torch.no_grad():
        outputs.update({
            "shallow_logits": _array(shallow(_tensor(inputs, "net.x")), "the shallow net"),
            "shallow_blocks": np.array([len(layer) for layer in shallow.layers()], np.float64),
            "new_bn2": _array(torch.cat([torch.cat([b.bn2.weight, b.bn2.bias]) for b in new]), "the new blocks"),
            "new_convs_nonzero": np.array([float(conv.weight.any()) for b in new for conv in (b.conv1, b.conv2)]),
        })
    return outputs


def _deepen(net: Net, extra: tuple) -> Net:
    """The library way: the deeper config, the shallow weights by name, each new block the identity."""
    deep = build(net.config, stages=tuple(n + e for n, e in zip(net.config.stages, extra)))
    deep.load_state_dict(net.state_dict(), strict=False)
    for i, n in enumerate(net.config.stages):
        for block in list(deep.layers()[i])[n:]:
            _zero_last_norm_(block)
    return deep


# --- a04_identity_add: the plain block, the identity-add block, deleting blocks ------------------------------

def _lesion_inputs(rng) -> Arrays:
    return _net_inputs(rng, NetConfig(stages=(int(rng.integers(2, 4)), 2), widths=(4, 8)), batch=4)


def _lesion_outputs(remove_block, inputs: Arrays) -> Arrays:
    """The logits (eval mode) after removing each block that keeps shapes, one at a time, and those of the
    original net afterwards."""
    net, x = _net(inputs, train=False), _tensor(inputs, "net.x")
    names = [f"layer{i + 1}.{j}" for i, layer in enumerate(net.layers()) for j, block in enumerate(layer)
             if isinstance(block.shortcut, nn.Identity)]
    with torch.no_grad():
        logits = [_tensor_out(_module(remove_block(net, name), what := f"remove_block(net, {name!r})").eval()(x),
                              (len(x), net.config.num_classes), what) for name in names]
        return {"logits": _array(torch.stack(logits), "remove_block"), "original_logits": _array(net(x), "the net")}


def _remove_block(net: Net, name: str) -> Net:
    lesioned = copy.deepcopy(net)
    layer, index = name.split(".")
    getattr(lesioned, layer)[int(index)] = nn.Identity()
    return lesioned


# --- a05_projected_add: option A, option B, the block with either --------------------------------------------

def _zero_pad_cases(rng) -> dict:
    n, h, w = _batch(rng, size=(5, 8))
    c = int(rng.integers(2, 5))
    return {f"stride{s}": ({"stride": s, "extra_channels": int(rng.integers(1, 5))}, (n, c, h, w)) for s in (2, 1)}


def _projection_cases(rng) -> dict:
    n, h, w = _batch(rng, size=(5, 8))
    c = int(rng.integers(2, 5))
    return {"stride2": ({"in_ch": c, "out_ch": 2 * c, "stride": 2}, (n, c, h, w)),
            "stride1": ({"in_ch": c, "out_ch": c + int(rng.integers(1, 4)), "stride": 1}, (n, c, h, w))}


def _projected_block_cases(rng) -> dict:
    n, h, w = _batch(rng)
    c = int(rng.integers(2, 5))
    return {"A": ({"in_ch": c, "out_ch": 2 * c, "stride": 2, "option": "A"}, (n, c, h, w)),
            "B": ({"in_ch": c, "out_ch": 2 * c, "stride": 2, "option": "B"}, (n, c, h, w)),
            "same": ({"in_ch": c, "out_ch": c, "stride": 1, "option": "AB"[int(rng.integers(2))]}, (n, c, h, w))}


def _projected_block(in_ch, out_ch, stride, option) -> BasicBlock:
    return BasicBlock(in_ch, out_ch, stride, shortcut=make_shortcut(NetConfig(shortcut=option), in_ch, out_ch, stride))


# --- a07_resnet: bottleneck, pre-activation, a whole ResNet on the reference weights ------------------------

def _expanding_cases(rng, expansion: int) -> dict:
    n, h, w = _batch(rng)
    width = int(rng.integers(2, 4))
    return {"same": ({"in_ch": expansion * width, "width": width, "stride": 1}, (n, expansion * width, h, w)),
            "down": ({"in_ch": width, "width": 2 * width, "stride": 2}, (n, width, h, w))}


def _bottleneck(in_ch, width, stride) -> Bottleneck:
    return Bottleneck(in_ch, width, stride, shortcut=make_shortcut(NetConfig(), in_ch, 4 * width, stride))


def _preact(in_ch, width, stride) -> PreActBlock:
    return PreActBlock(in_ch, width, stride, shortcut=make_shortcut(NetConfig(), in_ch, width, stride))


def _resnet(stages, widths) -> Net:
    return Net(NetConfig(stages=stages, widths=widths, shortcut="B"))


def _small_resnet_case(rng) -> dict:
    w = int(rng.integers(2, 5))
    return {"rand": ({"stages": tuple(int(v) for v in rng.integers(1, 3, 3)), "widths": (w, 2 * w, 4 * w)},
                     (int(rng.integers(2, 5)), 1, 8, 8))}


REFERENCE_MODEL = "resnet20"


def _reference_case() -> Arrays:
    """The shipped resnet20 weights and the held-out digits test split."""
    model, _ = reference.load(REFERENCE_MODEL)
    weights = {k: v.numpy().astype(np.float64 if v.is_floating_point() else np.int64)
               for k, v in model.state_dict().items()}
    test = data.digits().test
    args = {"stages": model.config.stages, "widths": model.config.widths}
    return _case_inputs("ref", args, weights, test.x.numpy().astype(np.float64), y=test.y.numpy())


# --- the registry ------------------------------------------------------------------------------------------

_CHECKS = [
    Check("a01_cnn_basics", "conv_output_size", 2, _conv_size_inputs, _conv_size_student, _conv_size_reference, 0.0,
          "conv_output_size on 40 convolutions"),
    Check("a01_cnn_basics", "conv2d_unfold", 4, _unfold_inputs, _unfold_student,
          lambda inputs: _conv_io(F.conv2d, inputs, "F.conv2d"), 1e-7,
          "conv2d_unfold against F.conv2d (values and gradients)"),
    Check("a01_cnn_basics", "receptive_field", 2, _field_inputs, _field_student, _field_reference, 0.0,
          "receptive_field on 12 stacks of layers"),
    Check("a02_gradients", "grad_norms", 3, _plain_net_inputs, _grad_norms_student, _grad_norms_reference, 1e-6,
          "grad_norms on a small plain net"),
    Check("a02_gradients", "kaiming_normal", 3, _kaiming_inputs, _kaiming_student, _kaiming_reference, 0.03,
          "kaiming_normal_ on four weight shapes (statistics of at least 65536 samples each)"),
    Check("a02_gradients", "activation_stds", 2, _plain_net_inputs, _stds_student, _stds_reference, 1e-5,
          "activation_stds on a small plain net, called twice"),
    _identity_check("plain_identity", 2, False, _dirac_,
                    "plain_identity_ on a plain block with random weights, positive inputs"),
    _identity_check("residual_identity", 2, True, _zero_last_norm_,
                    "residual_identity_ on a residual block with random weights, positive inputs"),
    Check("a03_nested", "deepen", 3, _deepen_inputs, lambda ns, inputs: _deepen_outputs(_student(ns, "deepen"), inputs),
          lambda inputs: _deepen_outputs(_deepen, inputs), 1e-6, "deepen on a small residual net with random weights"),
    _modules_check("a04_identity_add", "plain_block", 2, "PlainBlock against the library's plain block",
                   _Modules("PlainBlock", lambda channels: BasicBlock(channels, channels), _channels_case)),
    _modules_check("a04_identity_add", "basic_block", 3, "BasicBlock against the library's identity-add block",
                   _Modules("BasicBlock", _identity_add, _channels_case)),
    Check("a04_identity_add", "remove_block", 2, _lesion_inputs,
          lambda ns, inputs: _lesion_outputs(_student(ns, "remove_block"), inputs),
          lambda inputs: _lesion_outputs(_remove_block, inputs), 1e-6, "remove_block on a small residual net"),
    _modules_check("a05_projected_add", "zero_pad_shortcut", 2, "ZeroPadShortcut (option A) against the library's",
                   _Modules("ZeroPadShortcut", ZeroPadShortcut, _zero_pad_cases)),
    _modules_check("a05_projected_add", "projection", 2, "projection (option B) against the library's",
                   _Modules("projection", lambda in_ch, out_ch, stride: make_shortcut(NetConfig(), in_ch, out_ch,
                                                                                     stride), _projection_cases)),
    _modules_check("a05_projected_add", "basic_block", 3, "BasicBlock with options A and B against the library's",
                   _Modules("BasicBlock", _projected_block, _projected_block_cases)),
    _modules_check("a06_scaling", "scaled_block", 2, "ScaledBlock against the library's block with a fixed scale",
                   _Modules("ScaledBlock", lambda channels, scale: _identity_add(channels, Scale(scale)),
                            lambda rng: _channels_case(rng, scale=int(rng.integers(1, 8)) / 16),
                            skip=("scale.weight",))),
    _modules_check("a06_scaling", "rezero_block", 3, "ReZeroBlock against the library's block with a learnable scalar",
                   _Modules("ReZeroBlock", lambda channels: _identity_add(channels, Scale(0.0, learnable=True)),
                            _channels_case, rename=(("scale.weight", "alpha"),), fresh=("alpha",))),
    _modules_check("a06_scaling", "layerscale_block", 3, "LayerScaleBlock against the library's per-channel scale",
                   _Modules("LayerScaleBlock",
                            lambda channels, init: _identity_add(channels, Scale(init, channels, learnable=True)),
                            lambda rng: _channels_case(rng, init=int(rng.integers(1, 32)) / 256),
                            rename=(("scale.weight", "gamma"),), fresh=("gamma",))),
    _modules_check("a07_resnet", "bottleneck", 3, "Bottleneck against the library's",
                   _Modules("Bottleneck", _bottleneck, lambda rng: _expanding_cases(rng, 4))),
    _modules_check("a07_resnet", "preact_block", 3, "PreActBlock against the library's",
                   _Modules("PreActBlock", _preact, lambda rng: _expanding_cases(rng, 1))),
    _modules_check("a07_resnet", "resnet", 4, "ResNet with random weights and with the reference resnet20 weights",
                   _Modules("ResNet", _resnet, _small_resnet_case, fixed=_reference_case)),
]
_REGISTRY = {(c.assignment, c.name): c for c in _CHECKS}


def checks_for(assignment: str) -> list[Check]:
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"unknown assignment {assignment!r}; known: {ASSIGNMENTS}")
    return [c for c in _CHECKS if c.assignment == assignment]


def get(assignment: str, name: str) -> Check:
    check = _REGISTRY.get((assignment, name))
    if check is None:
        raise ValueError(f"no check {name!r} in {assignment!r}; its checks: {[c.name for c in checks_for(assignment)]}")
    return check
