"""Assignment 3: identity blocks, plain and residual; function-preserving deepening."""
import torch
from torch import nn

from .core import Arrays, CheckFailed, Part
from .harness import array, cases, forward_backward, load, module, net, step, student, tensor_out

A = "a03_nested"


def identity_block(channels: int, residual: bool) -> nn.Module:
    """The block the task hands over: the library's residual block, or its plain twin without BatchNorm."""
    from ..models import BasicBlock
    return BasicBlock(channels, channels, shortcut=nn.Identity()) if residual else BasicBlock(channels, channels,
                                                                                               norm=False)


def identity_outputs(make_identity, inputs: Arrays, residual: bool, what: str) -> Arrays:
    """Let ``make_identity`` edit the block in place; then its output and input gradient (eval mode; for the
    residual block train mode too), whether its parameters are still the same objects and require
    gradients, whether it is still in train mode, and for the residual block its whole state afterwards."""
    (_, args, weights, x, dout, _), = cases(inputs)
    block = identity_block(args["channels"], residual).double()
    load(block, weights, "the block")
    before = [id(p) for p in block.parameters()]
    with step(f"{what}(block)"):
        make_identity(block)
    params = list(block.parameters())
    outputs = {"same_parameters": array(float([id(p) for p in params] == before), what),
               "mode_after": array(float(block.training), what),
               "requires_grad": array([float(p.requires_grad) for p in params], what)}
    for mode in ("eval", "train") if residual else ("eval",):
        block.train(mode == "train")
        outputs.update({f"{mode}.{k}": v for k, v in forward_backward(block, x, dout, what).items()})
    if residual:
        outputs.update({f"after.{k}": array(v, what) for k, v in block.state_dict().items()})
    return outputs


def identity_part(name: str, points: float, residual: bool, description: str) -> Part:
    return Part(A, name, points, description,
                lambda ns, inputs: identity_outputs(student(ns, name + "_"), inputs, residual, name + "_"), 1e-6,
                {"eval": "in eval mode", "train": "in train mode"})


def deepen_outputs(deepen, inputs: Arrays) -> Arrays:
    """Deepen the shallow net with ``deepen``; the deep net's logits and input gradient in eval mode, its
    logits in train mode, the shallow net afterwards, the state of the new blocks, and whether the deep net
    is new (shares no parameter with the shallow one), fully trainable and configured with its stages."""
    shallow = net(inputs, train=False)
    stages, extra = shallow.config.stages, tuple(int(v) for v in inputs["extra"])
    with step(f"deepen(net, {extra})"):
        deep = deepen(shallow, extra)
    deep = module(deep, "deepen").double().eval()
    blocks = tuple(len(getattr(deep, f"layer{i + 1}", ())) for i in range(len(stages)))
    wanted = tuple(n + e for n, e in zip(stages, extra))
    if blocks != wanted:
        raise CheckFailed(f"deepen(net, {extra}) returned a net with {blocks} blocks per stage, expected {wanted}")
    new = [block for i, n in enumerate(stages) for block in list(getattr(deep, f"layer{i + 1}"))[n:]]
    outputs = forward_backward(deep, inputs["net.x"], inputs["net.dout"], "the deepened net")
    x = torch.tensor(inputs["net.x"])
    with torch.no_grad():
        outputs.update({
            "train.logits": array(tensor_out(deep.train()(x), inputs["net.dout"].shape, "the deepened net"), "deepen"),
            "shallow_logits": array(shallow(x), "the shallow net"),
            "shallow_blocks": array([len(layer) for layer in shallow.layers()], "the shallow net"),
            "new_bn2": array(torch.cat([torch.cat([b.bn2.weight, b.bn2.bias]) for b in new]), "the new blocks"),
            "new_convs_nonzero": array([float(conv.weight.any()) for b in new for conv in (b.conv1, b.conv2)], "deepen"),
            "shared": array(float(len({id(p) for p in shallow.parameters()} & {id(p) for p in deep.parameters()})),
                            "deepen"),
            "requires_grad": array(float(all(p.requires_grad for p in deep.parameters())), "deepen"),
            "config_stages": array(getattr(getattr(deep, "config", None), "stages", ()), "deepen"),
        })
    return outputs


PARTS = [
    identity_part("plain_identity", 2, False, "plain_identity_ on a plain block with random weights, positive inputs"),
    identity_part("residual_identity", 2, True,
                  "residual_identity_ on a residual block with random weights, positive inputs"),
    Part(A, "deepen", 3, "deepen on a small residual net with random weights",
         lambda ns, inputs: deepen_outputs(student(ns, "deepen"), inputs), 1e-6),
]
