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
    },
    "kaiming_normal": {
        "fan_out instead of fan_in": [("fan_in = weight[0].numel()",
                                       "fan_in = weight.shape[0] * weight[0, 0].numel()")],
        "forgets the factor 2 of ReLU": [("2.0 / fan_in", "1.0 / fan_in")],
        "returns a new tensor instead of filling in place": [(
            "        return weight.normal_(0.0, math.sqrt(2.0 / fan_in))",
            "        return torch.randn_like(weight) * math.sqrt(2.0 / fan_in)")],
        "uses the variance as standard deviation": [("math.sqrt(2.0 / fan_in)", "2.0 / fan_in")],
    },
    "activation_stds": {
        "never removes its hooks": [("        for hook in hooks:\n            hook.remove()", "        pass")],
        "records the layer's input": [("stds.append(out.std().item())", "stds.append(inputs[0].std().item())")],
        "hooks every module": [("for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]",
                                "for m in model.modules()]")],
    },
}

VALID = {
    "grad_norms": {
        "zero_grad and backward": '''def grad_norms(model, x, y):
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return torch.stack([m.weight.grad.norm() for m in layers])''',
    },
    "kaiming_normal": {
        "copy_ of scaled randn": '''def kaiming_normal_(weight):
    std = (2 / (weight.shape[1] * math.prod(weight.shape[2:]))) ** 0.5
    with torch.no_grad():
        weight.copy_(torch.randn(weight.shape) * std)
    return weight''',
    },
    "activation_stds": {
        "outputs first, statistics after": '''def activation_stds(model, x):
    outputs = []
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    hooks = [m.register_forward_hook(lambda module, inputs, out: outputs.append(out.detach())) for m in layers]
    model(x)
    for hook in hooks:
        hook.remove()
    return [torch.std(out).item() for out in outputs]''',
    },
}
