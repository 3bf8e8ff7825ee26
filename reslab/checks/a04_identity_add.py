"""Assignment 4: the plain block, the identity-add block, deleting blocks."""
import torch

from .core import Arrays, Part
from .harness import Modules, array, module, net, step, tensor_out, using

A = "a04_identity_add"
BLOCK_CASES = {"same": "a batch of several", "one": "a batch of one", "wide": "many channels, a larger input"}
NETS = {"res": "a residual net", "plain": "a plain net", "long": "a residual net with four blocks in a stage"}


def lesion_outputs(remove_block, inputs: Arrays) -> Arrays:
    """For each net: the logits (eval mode) after removing each named block, one at a time, and those of the
    original net afterwards (it must stay unchanged)."""
    outputs = {}
    for label in NETS:
        original, x = net(inputs, label, train=False), torch.tensor(inputs[f"{label}.x"])
        logits = []
        for name in inputs[f"{label}.names"].tolist():
            what = f"remove_block(net, {name!r})"
            with step(what):
                lesioned = remove_block(original, name)
            with torch.no_grad(), step(f"the net returned by {what}"):
                logits.append(tensor_out(module(lesioned, what).eval()(x), (len(x), original.config.num_classes), what))
        with torch.no_grad():
            outputs.update({f"{label}.logits": array(torch.stack(logits), "remove_block"),
                            f"{label}.original_logits": array(original(x), "the net")})
    return outputs


PARTS = [
    Part(A, "plain_block", 2, "PlainBlock against the library's plain block", Modules("PlainBlock").run_student, 1e-6,
         BLOCK_CASES, ("BasicBlock", "Net", "build")),
    Part(A, "basic_block", 3, "BasicBlock against the library's identity-add block", Modules("BasicBlock").run_student,
         1e-6, BLOCK_CASES, ("BasicBlock", "Net", "build")),
    Part(A, "remove_block", 2, "remove_block on small nets, residual and plain", using("remove_block", lesion_outputs),
         1e-6, NETS, ("delete_block",)),
]
