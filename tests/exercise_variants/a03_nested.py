"""Assignment 3: identity blocks, plain and residual; function-preserving deepening."""

MISTAKES = {
    "plain_identity": {
        "a kernel of ones": [("conv.weight[c, c, centre, centre] = 1.0", "conv.weight[c, c] = 1.0")],
        "the 1 in the corner": [("centre = conv.kernel_size[0] // 2", "centre = 0")],
        "keeps the biases": [("\n            conv.bias.zero_()", "")],
        "edits parameters outside torch.no_grad()": [("with torch.no_grad():", "if True:")],
        "replaces the convolutions with new ones": '''def plain_identity_(block):
    for name in ("conv1", "conv2"):
        old = getattr(block, name)
        conv = nn.Conv2d(old.in_channels, old.out_channels, old.kernel_size, padding=old.padding)
        nn.init.dirac_(conv.weight)
        nn.init.zeros_(conv.bias)
        setattr(block, name, conv)''',
        "assigns new Parameters instead of editing": '''def plain_identity_(block):
    for conv in (block.conv1, block.conv2):
        weight = torch.zeros_like(conv.weight)
        for c in range(conv.out_channels):
            weight[c, c, 1, 1] = 1.0
        conv.weight = nn.Parameter(weight)
        conv.bias = nn.Parameter(torch.zeros_like(conv.bias))''',
        "switches requires_grad off to edit the weights": [(
            "    with torch.no_grad():\n        for conv in (block.conv1, block.conv2):",
            "    for p in block.parameters():\n        p.requires_grad_(False)\n"
            "    if True:\n        for conv in (block.conv1, block.conv2):")],
        "connects every channel to every channel": [("conv.weight[c, c, centre, centre] = 1.0",
                                                     "conv.weight[:, c, centre, centre] = 1.0")],
        "sets the centre without clearing the rest": [("            conv.weight.zero_()\n", "")],
        "edits a copy of the block": '''import copy


def plain_identity_(block):
    block = copy.deepcopy(block)
    with torch.no_grad():
        for conv in (block.conv1, block.conv2):
            nn.init.dirac_(conv.weight)
            conv.bias.zero_()
    return block''',
    },
    "residual_identity": {
        "zeroes the scale only": [("\n        block.bn2.bias.zero_()", "")],
        "zeroes conv2 instead": [("block.bn2.weight.zero_()", "block.conv2.weight.zero_()"),
                                 ("\n        block.bn2.bias.zero_()", "")],
        "zeroes the whole branch": [("        block.bn2.bias.zero_()", "        block.bn2.bias.zero_()\n"
                                     "        for p in (block.conv1.weight, block.conv2.weight, block.bn1.weight):\n"
                                     "            p.zero_()")],
        "edits parameters outside torch.no_grad()": [("with torch.no_grad():", "if True:")],
        "zeroes the first BatchNorm instead": [("block.bn2.weight.zero_()", "block.bn1.weight.zero_()"),
                                              ("block.bn2.bias.zero_()", "block.bn1.bias.zero_()")],
        "assigns new Parameters instead of editing": '''def residual_identity_(block):
    block.bn2.weight = nn.Parameter(torch.zeros_like(block.bn2.weight))
    block.bn2.bias = nn.Parameter(torch.zeros_like(block.bn2.bias))''',
        "replaces the BatchNorm with a fresh one": '''def residual_identity_(block):
    block.bn2 = nn.BatchNorm2d(block.bn2.num_features)
    nn.init.zeros_(block.bn2.weight)
    nn.init.zeros_(block.bn2.bias)''',
        "switches requires_grad off": [("    with torch.no_grad():",
                                        "    block.bn2.requires_grad_(False)\n    if True:")],
        "leaves the block in eval mode": [("    with torch.no_grad():", "    block.eval()\n    with torch.no_grad():")],
    },
    "deepen": {
        "leaves the new blocks random": [("                block.bn2.weight.zero_()\n"
                                          "                block.bn2.bias.zero_()", "                pass")],
        "copies parameters but not the running statistics": [("net.state_dict()", "dict(net.named_parameters())")],
        "zeroes the new blocks' convolutions too": [("                block.bn2.bias.zero_()",
                                                     "                block.bn2.bias.zero_()\n"
                                                     "                block.conv1.weight.zero_()\n"
                                                     "                block.conv2.weight.zero_()")],
        "appends to the given net": '''def deepen(net, extra):
    longer = build(net.config, stages=tuple(n + e for n, e in zip(net.config.stages, extra)))
    with torch.no_grad():
        for layer, new_layer, n in zip(net.layers(), longer.layers(), net.config.stages):
            for block in list(new_layer)[n:]:
                block.bn2.weight.zero_()
                block.bn2.bias.zero_()
                layer.append(block)
    return net''',
        "puts the net's own blocks into the new one": '''def deepen(net, extra):
    deep = build(net.config, stages=tuple(n + e for n, e in zip(net.config.stages, extra)))
    deep.load_state_dict(net.state_dict(), strict=False)
    for old_layer, layer, n in zip(net.layers(), deep.layers(), net.config.stages):
        for i, block in enumerate(old_layer):
            layer[i] = block
        with torch.no_grad():
            for block in list(layer)[n:]:
                block.bn2.weight.zero_()
                block.bn2.bias.zero_()
    return deep''',
        "skips the first new block": [("list(layer)[n:]", "list(layer)[n + 1:]")],
        "reads the block index from the parameter name's one digit": '''def deepen(net, extra):
    deep = build(net.config, stages=tuple(n + e for n, e in zip(net.config.stages, extra)))
    deep.load_state_dict(net.state_dict(), strict=False)
    with torch.no_grad():
        for name, param in deep.named_parameters():  # e.g. layer2.3.bn2.weight
            stage, block = name.split(".")[:2]
            if ".bn2." in name and int(block[-1]) >= net.config.stages[int(stage[-1]) - 1]:
                param.zero_()
    return deep''',
        "zeroes the last BatchNorm of every block": [("list(layer)[n:]", "list(layer)")],
        "zeroes the first BatchNorm instead": [("block.bn2.weight.zero_()", "block.bn1.weight.zero_()"),
                                              ("block.bn2.bias.zero_()", "block.bn1.bias.zero_()")],
        "freezes the new blocks": [("                block.bn2.bias.zero_()",
                                    "                block.bn2.bias.zero_()\n"
                                    "                block.requires_grad_(False)")],
        "zeroes conv2 instead of the BatchNorm": [("                block.bn2.weight.zero_()\n"
                                                   "                block.bn2.bias.zero_()",
                                                   "                block.conv2.weight.zero_()")],
        "a deep copy grown by appending: its config lists the old stages": '''import copy


def deepen(net, extra):
    deep = copy.deepcopy(net)
    grown = build(net.config, stages=tuple(n + e for n, e in zip(net.config.stages, extra)))
    with torch.no_grad():
        for layer, new_layer, n in zip(deep.layers(), grown.layers(), net.config.stages):
            for block in list(new_layer)[n:]:
                block.bn2.weight.zero_()
                block.bn2.bias.zero_()
                layer.append(block)
    return deep''',
        "counts the new blocks from the end (all of a stage that gets none)": [
            ("for layer, n in zip(deep.layers(), net.config.stages)", "for layer, e in zip(deep.layers(), extra)"),
            ("list(layer)[n:]", "list(layer)[-e:]")],
    },
}

VALID = {
    "plain_identity": {
        "nn.init.dirac_": '''def plain_identity_(block):
    for conv in (block.conv1, block.conv2):
        nn.init.dirac_(conv.weight)
        nn.init.zeros_(conv.bias)''',
        "an identity matrix at the centre tap, through .data": '''def plain_identity_(block):
    for conv in (block.conv1, block.conv2):
        k = conv.kernel_size[0] // 2
        conv.weight.data.zero_()
        conv.weight.data[:, :, k, k] = torch.eye(conv.out_channels)
        conv.bias.data.fill_(0.0)''',
        "copy_ of a built kernel": '''def plain_identity_(block):
    for conv in (block.conv1, block.conv2):
        kernel = torch.zeros_like(conv.weight)
        for c in range(conv.out_channels):
            kernel[c, c, conv.kernel_size[0] // 2, conv.kernel_size[1] // 2] = 1
        with torch.no_grad():
            conv.weight.copy_(kernel)
            conv.bias.copy_(torch.zeros_like(conv.bias))''',
    },
    "residual_identity": {
        "nn.init.zeros_": '''def residual_identity_(block):
    nn.init.zeros_(block.bn2.weight)
    nn.init.zeros_(block.bn2.bias)''',
        "fill_ through .data": '''def residual_identity_(block):
    block.bn2.weight.data.fill_(0)
    block.bn2.bias.data.fill_(0)''',
        "multiplies by zero in a loop": [("        block.bn2.weight.zero_()\n        block.bn2.bias.zero_()",
                                          "        for p in block.bn2.parameters():\n            p.mul_(0)")],
    },
    "deepen": {
        "zero_init_residual, then the old weights": '''def deepen(net, extra):
    stages = [n + e for n, e in zip(net.config.stages, extra)]
    deep = build(net.config, stages=stages, zero_init_residual=True)
    deep.load_state_dict(net.state_dict(), strict=False)
    return deep''',
        "block by block, by name": '''def deepen(net, extra):
    deep = build(net.config, stages=[n + e for n, e in zip(net.config.stages, extra)])
    old = dict(net.named_modules())
    for name, module in deep.named_modules():
        if name in old and not list(module.children()):
            module.load_state_dict(old[name].state_dict())
    for i, n in enumerate(net.config.stages):
        for block in getattr(deep, f"layer{i + 1}")[n:]:
            nn.init.zeros_(block.bn2.weight)
            nn.init.zeros_(block.bn2.bias)
    return deep''',
    },
}
