"""Assignment 3: identity blocks, plain and residual; function-preserving deepening."""

MISTAKES = {
    "plain_identity": {
        "a kernel of ones": [("conv.weight[c, c, centre, centre] = 1.0", "conv.weight[c, c] = 1.0")],
        "the 1 in the corner": [("centre = conv.kernel_size[0] // 2", "centre = 0")],
        "keeps the biases": [("\n            conv.bias.zero_()", "")],
        "edits parameters outside torch.no_grad()": [("with torch.no_grad():", "if True:")],
    },
    "residual_identity": {
        "zeroes the scale only": [("\n        block.bn2.bias.zero_()", "")],
        "zeroes conv2 instead": [("block.bn2.weight.zero_()", "block.conv2.weight.zero_()"),
                                 ("\n        block.bn2.bias.zero_()", "")],
        "zeroes the whole branch": [("        block.bn2.bias.zero_()", "        block.bn2.bias.zero_()\n"
                                     "        for p in (block.conv1.weight, block.conv2.weight, block.bn1.weight):\n"
                                     "            p.zero_()")],
        "edits parameters outside torch.no_grad()": [("with torch.no_grad():", "if True:")],
    },
    "deepen": {
        "leaves the new blocks random": [("                block.bn2.weight.zero_()\n"
                                          "                block.bn2.bias.zero_()", "                pass")],
        "copies parameters but not the running statistics": [("net.state_dict()", "dict(net.named_parameters())")],
        "zeroes the new blocks' convolutions too": [("                block.bn2.bias.zero_()",
                                                     "                block.bn2.bias.zero_()\n"
                                                     "                block.conv1.weight.zero_()\n"
                                                     "                block.conv2.weight.zero_()")],
    },
}

VALID = {
    "plain_identity": {
        "nn.init.dirac_": '''def plain_identity_(block):
    for conv in (block.conv1, block.conv2):
        nn.init.dirac_(conv.weight)
        nn.init.zeros_(conv.bias)''',
    },
    "residual_identity": {
        "nn.init.zeros_": '''def residual_identity_(block):
    nn.init.zeros_(block.bn2.weight)
    nn.init.zeros_(block.bn2.bias)''',
    },
    "deepen": {
        "zero_init_residual, then the old weights": '''def deepen(net, extra):
    stages = [n + e for n, e in zip(net.config.stages, extra)]
    deep = build(net.config, stages=stages, zero_init_residual=True)
    deep.load_state_dict(net.state_dict(), strict=False)
    return deep''',
    },
}
