"""Hostile submissions against the probe and the copying checks (issue 22, items 1 to 3), with the exact outcome
the trusted grader must give each (``adversarial.cases.Case``: ``passed`` parts get their points, every other
part scores 0 with ``messages[part]`` in its output).

a04: forging the probe from *one* solution cell (the forgery would act on every probe of the kernel, so every
part is flagged), and reaching the library's implementation by routes no name scan sees. a01: the convolution
reached below torch's function names (an OpOverload, a C entry point).
"""
from __future__ import annotations

from adversarial.cases import Case

A04, A01 = "a04_identity_add", "a01_cnn_basics"
A04_PARTS = ("plain_block", "basic_block", "remove_block")
FLAGGED = {part: "flagged for manual grading" for part in A04_PARTS}
STUB = "class {cls}(nn.Module):\n    def __init__(self, *args):\n        raise NotImplementedError\n"
STUBS = {"basic_block_solution": STUB.format(cls="BasicBlock"),
         "remove_block_solution": "def remove_block(net, name):\n    raise NotImplementedError\n"}

# What every forgery writes: the right outputs, computed with the library (public code) on the secret inputs.
FORGE = """\
import numpy as _np, reslab.checks.harness as _h, reslab.checks.a04_identity_add as _a4
from reslab import models as _m
from reslab.experiments import delete_block as _delete

def _forge(name, inputs_path, outputs_path):
    with _np.load(inputs_path) as stored:
        inputs = {k: stored[k] for k in stored.files}
    name = name or ("remove_block" if "res.names" in inputs else "basic_block")
    shortcut = nn.Identity() if name == "basic_block" else None
    if name == "remove_block":
        outputs = _a4.lesion_outputs(_delete, inputs)
    else:
        outputs = _h.Modules("X").outputs(inputs, lambda channels: _m.BasicBlock(channels, channels, shortcut=shortcut),
                                          str, str)
    _np.savez(outputs_path + ".tmp.npz", **outputs)
    import os
    os.replace(outputs_path + ".tmp.npz", outputs_path)
"""

FORGED_PROBE = FORGE + """
import reslab.checks as _rc

def _probe(assignment, name, namespace, inputs_path, outputs_path):
    _forge(name, str(inputs_path), str(outputs_path))

_rc.probe = _probe
"""

SHADOWED_IMPORT = FORGE + """
import types as _types
_real_import = __builtins__.__import__ if hasattr(__builtins__, "__import__") else __builtins__["__import__"]
_fake = _types.SimpleNamespace(probe=lambda assignment, name, ns, i, o: _forge(name, str(i), str(o)))

def __import__(name, *args, **kwargs):
    return _fake if name == "reslab.checks" else _real_import(name, *args, **kwargs)
"""

POST_EXECUTE = FORGE + """
import glob, os

def _rewrite(*args):
    for inputs in glob.glob("in-*.npz"):
        outputs = inputs.replace("in-", "out-")
        if os.path.exists(outputs + ".error.json"):
            os.remove(outputs + ".error.json")
            _forge(None, inputs, outputs)

get_ipython().events.register("post_execute", _rewrite)
"""

# The library's block reached through an object (a shipped net's first block), not by name.
LIBRARY_BLOCK = "_Library = type(load('resnet20')[0].layer1[0])\n"

BORROWED = """
class BasicBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        for name, child in _Library(channels, channels, shortcut=nn.Identity()).named_children():
            self.add_module(name, child)

    forward = _Library.forward
"""
BORROWED_FORWARD = LIBRARY_BLOCK + BORROWED

OBJECT_REFERENCE = LIBRARY_BLOCK + """
class BasicBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        block = _Library(channels, channels, shortcut=nn.Identity())
        object.__setattr__(self, "_block", block)
        for name, child in block.named_children():
            self.add_module(name, child)

    def forward(self, x):
        return self._block(x)
"""

FX_TRACED = LIBRARY_BLOCK + """
_tracing = getattr(torch, "f" + "x")
_traced = {c: _tracing.symbolic_trace(_Library(c, c, shortcut=nn.Identity())) for c in range(1, 17)}

def BasicBlock(channels):
    return _traced[channels]
"""

GUARD_OFF = LIBRARY_BLOCK + """
from reslab.checks import harness
harness.__dict__["_from_library"] = lambda obj: False

def BasicBlock(channels):
    return _Library(channels, channels, shortcut=nn.Identity())
"""

CELL_MAGIC = "%%capture\nfrom reslab.models import BasicBlock as _Library\n" + BORROWED

LIBRARY_FUNCTION = """\
from reslab.experiments import delete_block

def remove_block(net, name):
    return delete_block(net, name)
"""

A04_CASES = [
    Case("solved", passed=A04_PARTS),
    # item 1: forgery from one solution cell; the other parts are stubs the forgery would score
    Case("forged_probe_in_a_solution", passed=(), edit=STUBS,
         prepend={"plain_block_solution": FORGED_PROBE}, messages=FLAGGED),
    Case("shadowed_import_in_a_solution", passed=(), edit=STUBS,
         prepend={"plain_block_solution": SHADOWED_IMPORT}, messages=FLAGGED),
    Case("post_execute_in_a_solution", passed=(), edit=STUBS,
         prepend={"plain_block_solution": POST_EXECUTE}, messages=FLAGGED),
    # item 2: the library's implementation by routes no name scan sees
    Case("borrowed_forward", passed=("plain_block", "remove_block"), edit={"basic_block_solution": BORROWED_FORWARD},
         messages={"basic_block": "its check ran the library's reslab.models.BasicBlock."}),
    Case("object_reference", passed=("plain_block", "remove_block"), edit={"basic_block_solution": OBJECT_REFERENCE},
         messages={"basic_block": "its check ran the library's reslab.models.BasicBlock."}),
    Case("fx_traced", passed=("plain_block", "remove_block"), edit={"basic_block_solution": FX_TRACED},
         messages={"basic_block": "its check ran the library's a torch.fx graph traced from reslab.models.BasicBlock"}),
    Case("guard_off_through_dict", passed=(), edit={"basic_block_solution": GUARD_OFF},
         messages={"plain_block": "replaces reslab.checks.harness._from_library",
                   "basic_block": "its check ran the library's reslab.models.BasicBlock",
                   "remove_block": "replaces reslab.checks.harness._from_library"}),
    Case("cell_magic", passed=("plain_block", "remove_block"), edit={"basic_block_solution": CELL_MAGIC},
         messages={"basic_block": "flagged for manual grading"}),
    Case("library_function", passed=("plain_block", "basic_block"),
         edit={"remove_block_solution": LIBRARY_FUNCTION},
         messages={"remove_block": "its check ran the library's reslab.experiments.delete_block"}),
]

# item 3: the convolution below torch's function names
OP_OVERLOAD = """\
def conv2d_unfold(x, weight, bias=None, stride=1, padding=0):
    return torch.ops.aten.convolution.default(x, weight, bias, [stride] * 2, [padding] * 2, [1, 1], False, [0, 0], 1)
"""

C_ENTRY_POINT = """\
def conv2d_unfold(x, weight, bias=None, stride=1, padding=0):
    return torch._C._nn.thnn_conv2d(x, weight, weight.shape[-2:], bias, [stride] * 2, [padding] * 2)
"""

A01_CASES = [
    Case("solved", passed=("conv_output_size", "conv2d_unfold", "receptive_field")),
    Case("op_overload", passed=("conv_output_size", "receptive_field"), edit={"conv2d_unfold_solution": OP_OVERLOAD},
         messages={"conv2d_unfold": "must not call torch's convolution"}),
    Case("c_entry_point", passed=("conv_output_size", "receptive_field"), edit={"conv2d_unfold_solution": C_ENTRY_POINT},
         messages={"conv2d_unfold": "must not call torch's convolution"}),
]
