"""Assignment 2: a gradient-norm probe, Kaiming initialisation, an activation probe."""

MISTAKES = {
    "grad_norms": {
        "sums the loss instead of averaging": [("F.cross_entropy(model(x), y)",
                                                'F.cross_entropy(model(x), y, reduction="sum")')],
        "reads .grad without clearing it first": '''def grad_norms(model, x, y):
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]''',
        "norms of the weights, not of the gradients": [("[g.norm().item() for g in torch.autograd.grad(loss, weights)]",
                                                        "[w.norm().item() for w in weights]")],
        "every parameter, BatchNorm included": [(
            "weights = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]",
            "weights = list(model.parameters())")],
        "switches the model to train mode": [("    loss = F.cross_entropy(model(x), y)",
                                              "    model.train()\n    loss = F.cross_entropy(model(x), y)")],
        "switches the model to eval mode": [("    loss = F.cross_entropy(model(x), y)",
                                             "    model.eval()\n    loss = F.cross_entropy(model(x), y)")],
        "output side first": [("[g.norm().item() for g in torch.autograd.grad(loss, weights)]",
                               "[g.norm().item() for g in torch.autograd.grad(loss, weights)][::-1]")],
        "squared norms": [("g.norm().item()", "g.pow(2).sum().item()")],
        "a softmax before the cross-entropy": [("F.cross_entropy(model(x), y)", "F.cross_entropy(model(x).softmax(1), y)")],
        "convolutions only, forgets the Linear layer": [("isinstance(m, (nn.Conv2d, nn.Linear))", "isinstance(m, nn.Conv2d)")],
    },
    "kaiming_normal": {
        "fan_out instead of fan_in": [("fan_in = weight[0].numel()",
                                       "fan_in = weight.shape[0] * weight[0, 0].numel()")],
        "forgets the factor 2 of ReLU": [("2.0 / fan_in", "1.0 / fan_in")],
        "returns a new tensor instead of filling in place": [(
            "        return weight.normal_(0.0, math.sqrt(2.0 / fan_in))",
            "        return torch.randn_like(weight) * math.sqrt(2.0 / fan_in)")],
        "uses the variance as standard deviation": [("math.sqrt(2.0 / fan_in)", "2.0 / fan_in")],
        "uniform samples of the right variance": [("weight.normal_(0.0, math.sqrt(2.0 / fan_in))",
                                                   "weight.uniform_(-math.sqrt(6.0 / fan_in), math.sqrt(6.0 / fan_in))")],
        "fan_in without the kernel size": [("fan_in = weight[0].numel()", "fan_in = weight.shape[1]")],
        "calls torch.nn.init through an alias": '''from torch.nn import init as initialise


def kaiming_normal_(weight):
    return initialise.kaiming_normal_(weight, nonlinearity="relu")''',
        "samples with torch.nn.init.normal_": [("        return weight.normal_(0.0, math.sqrt(2.0 / fan_in))",
                                                "        return nn.init.normal_(weight, 0.0, math.sqrt(2.0 / fan_in))")],
        "Glorot's fan average": [("math.sqrt(2.0 / fan_in)",
                                  "math.sqrt(2.0 / (fan_in + weight.shape[0] * weight[0, 0].numel()))")],
        "forgets to return the weight": [("        return weight.normal_(", "        weight.normal_(")],
        "switches requires_grad off to fill it": [(
            "    with torch.no_grad():\n        return weight.normal_(0.0, math.sqrt(2.0 / fan_in))",
            "    weight.requires_grad_(False)\n    return weight.normal_(0.0, math.sqrt(2.0 / fan_in))")],
        "reseeds torch's generator on every call": [("    with torch.no_grad():", "    torch.manual_seed(0)\n"
                                                     "    with torch.no_grad():")],
        "passes the standard deviation as the mean": [("weight.normal_(0.0, math.sqrt(2.0 / fan_in))",
                                                       "weight.normal_(math.sqrt(2.0 / fan_in))")],
    },
    "activation_stds": {
        "never removes its hooks": [("        for hook in hooks:\n            hook.remove()", "        pass")],
        "records the layer's input": [("stds.append(out.std().item())", "stds.append(inputs[0].std().item())")],
        "hooks every module": [("for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]",
                                "for m in model.modules()]")],
        "leaves its hooks when the forward pass fails": '''def activation_stds(model, x):
    stds = []
    hooks = [m.register_forward_hook(lambda module, inputs, out: stds.append(out.std().item()))
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return stds''',
        "switches the model to eval mode": [("            model(x)", "            model.eval()\n            model(x)")],
        "switches the model to train mode": [("            model(x)", "            model.train()\n            model(x)")],
        "the population standard deviation": [("out.std().item()", "out.std(unbiased=False).item()")],
        "clears every forward hook, not only its own": [("        for hook in hooks:\n            hook.remove()",
                                                         "        for m in model.modules():\n"
                                                         "            m._forward_hooks.clear()")],
        "per-feature standard deviation over the batch, averaged": [("out.std().item()", "out.std(0).mean().item()")],
        "convolutions only, forgets the Linear layer": [("isinstance(m, (nn.Conv2d, nn.Linear))", "isinstance(m, nn.Conv2d)")],
        "a mutable default list keeps the last call's values": [("def activation_stds(model, x):",
                                                                  "def activation_stds(model, x, stds=[]):"),
                                                                 ("    stds = []\n", "")],
    },
}

VALID = {
    "grad_norms": {
        "zero_grad and backward": '''def grad_norms(model, x, y):
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return torch.stack([m.weight.grad.norm() for m in layers])''',
        "set_to_none, backward, vector_norm": '''def grad_norms(model, x, y):
    model.zero_grad(set_to_none=True)
    loss = F.nll_loss(F.log_softmax(model(x), dim=1), y)
    loss.backward()
    return [float(torch.linalg.vector_norm(m.weight.grad)) for m in model.modules()
            if type(m) in (nn.Conv2d, nn.Linear)]''',
        "every parameter of more than one dimension": [(
            "weights = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]",
            "weights = [p for p in model.parameters() if p.dim() > 1]")],
    },
    "kaiming_normal": {
        "copy_ of scaled randn": '''def kaiming_normal_(weight):
    std = (2 / (weight.shape[1] * math.prod(weight.shape[2:]))) ** 0.5
    with torch.no_grad():
        weight.copy_(torch.randn(weight.shape) * std)
    return weight''',
        "normal_ on .data with the fan from the shape": '''def kaiming_normal_(weight):
    fan_in = math.prod(weight.shape[1:])
    weight.data.normal_(std=(2.0 / fan_in) ** 0.5)
    return weight''',
        "standard samples scaled in place": [("        return weight.normal_(0.0, math.sqrt(2.0 / fan_in))",
                                              "        weight.normal_().mul_(math.sqrt(2.0 / fan_in))\n"
                                              "    return weight")],
        "numpy samples copied in": '''import numpy as np


def kaiming_normal_(weight):
    fan_in = int(np.prod(weight.shape[1:]))
    samples = np.random.default_rng().normal(0.0, np.sqrt(2.0 / fan_in), tuple(weight.shape))
    with torch.no_grad():
        weight.copy_(torch.from_numpy(samples))
    return weight''',
    },
    "activation_stds": {
        "outputs first, statistics after": '''def activation_stds(model, x):
    outputs = []
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    hooks = [m.register_forward_hook(lambda module, inputs, out: outputs.append(out.detach())) for m in layers]
    try:
        model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return [torch.std(out).item() for out in outputs]''',
        "a hook function per layer, handles in a list, no no_grad": '''def activation_stds(model, x):
    stds, handles = [], []

    def record(module, inputs, output):
        stds.append(float(output.detach().std()))

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            handles.append(m.register_forward_hook(record))
    try:
        model(x)
    finally:
        while handles:
            handles.pop().remove()
    return stds''',
    },
}
