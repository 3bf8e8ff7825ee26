"""Assignment 6: a constant branch scale, ReZero, LayerScale."""

MISTAKES = {
    "scaled_block": {
        "scales the shortcut": [("return F.relu(x + self.scale * out)", "return F.relu(self.scale * x + out)")],
        "makes the constant learnable": [("self.scale = scale",
                                          "self.scale = nn.Parameter(torch.tensor(float(scale)))")],
        "scales before BatchNorm": [("out = self.bn2(self.conv2(out))\n        return F.relu(x + self.scale * out)",
                                     "out = self.bn2(self.scale * self.conv2(out))\n        return F.relu(x + out)")],
        "scales after the ReLU": [("return F.relu(x + self.scale * out)", "return self.scale * F.relu(x + out)")],
        "a hard-coded scale of 0.1": [("return F.relu(x + self.scale * out)", "return F.relu(x + 0.1 * out)")],
        "bn2 always uses batch statistics": [('out = self.bn2(self.conv2(out))', 'out = F.batch_norm(self.conv2(out), self.bn2.running_mean, self.bn2.running_var, self.bn2.weight, self.bn2.bias, training=True)')],
        "scales only in training, like dropout": [("return F.relu(x + self.scale * out)",
                                                   "return F.relu(x + (self.scale * out if self.training else out))")],
        "a frozen parameter": [("self.scale = scale",
                                "self.scale = nn.Parameter(torch.tensor(float(scale)), requires_grad=False)")],
        "scales the sum": [("return F.relu(x + self.scale * out)", "return F.relu(self.scale * (x + out))")],
        "the scale as a one-element tensor made in forward (CPU, default dtype)": [
            ("return F.relu(x + self.scale * out)", "scale = torch.tensor([self.scale])\n        return F.relu(x + scale * out)")],
    },
    "rezero_block": {
        "alpha starts at 1": [("torch.zeros(())", "torch.ones(())")],
        "alpha scales the shortcut": [("return F.relu(x + self.alpha * out)", "return F.relu(self.alpha * x + out)")],
        "alpha before BatchNorm": [("out = self.bn2(self.conv2(out))\n        return F.relu(x + self.alpha * out)",
                                    "out = self.bn2(self.alpha * self.conv2(out))\n        return F.relu(x + out)")],
        "alpha is not a parameter": [("nn.Parameter(torch.zeros(()))", "torch.zeros(())")],
        "alpha frozen (requires_grad=False)": [("nn.Parameter(torch.zeros(()))",
                                                "nn.Parameter(torch.zeros(()), requires_grad=False)")],
        "alpha starts small, not at 0": [("torch.zeros(())", "torch.full((), 1e-3)")],
        "alpha used as a Python number": [("self.alpha * out", "self.alpha.item() * out")],
        "bn2 always uses batch statistics": [('out = self.bn2(self.conv2(out))', 'out = F.batch_norm(self.conv2(out), self.bn2.running_mean, self.bn2.running_var, self.bn2.weight, self.bn2.bias, training=True)')],
        "alpha drawn at random": [("torch.zeros(())", "torch.randn(())")],
    },
    "layerscale_block": {
        "one scalar for all channels": [("torch.full((channels,), float(init))", "torch.tensor(float(init))"),
                                        ("self.gamma[:, None, None]", "self.gamma")],
        "scales the last axis instead of the channels": [("self.gamma[:, None, None]", "self.gamma")],
        "ignores init": [("float(init)", "1.0")],
        "scales the shortcut": [("return F.relu(x + self.gamma[:, None, None] * out)",
                                 "return F.relu(self.gamma[:, None, None] * x + out)")],
        "gamma broadcast over the batch axis": [("self.gamma[:, None, None]", "self.gamma[:, None, None, None]")],
        "gamma broadcast over the height axis": [("self.gamma[:, None, None]", "self.gamma[:, None]")],
        "a default init of 1e-6 (CaiT's) instead of 0.1": [("def __init__(self, channels, init=0.1):",
                                                             "def __init__(self, channels, init=1e-6):")],
        "one BatchNorm shared by both convolutions": [("        self.bn2 = nn.BatchNorm2d(channels)\n        self.gamma",
                                                       "        self.bn2 = self.bn1\n        self.gamma")],
        "gamma's data used, so it gets no gradient": [("self.gamma[:, None, None] * out", "self.gamma.data[:, None, None] * out")],
        "gamma reshaped through a view made on the CPU": [
            ("return F.relu(x + self.gamma[:, None, None] * out)",
             "shape = torch.ones(1, out.shape[1], 1, 1)\n        return F.relu(x + self.gamma.view_as(shape[0]) * shape * out)")],
    },
}

VALID = {
    "scaled_block": {
        "the constant as a buffer": [("self.scale = scale",
                                      'self.register_buffer("scale", torch.tensor(float(scale)))'),
                                     ("return F.relu(x + self.scale * out)",
                                      "return F.relu(out.mul(self.scale).add(x))")],
        "a float and torch.add's alpha": [("self.scale = scale", "self.scale = float(scale)"),
                                          ("return F.relu(x + self.scale * out)",
                                           "return torch.relu(torch.add(x, out, alpha=self.scale))")],
    },
    "rezero_block": {
        "alpha of shape (1,), addcmul": [("nn.Parameter(torch.zeros(()))", "nn.Parameter(torch.zeros(1))"),
                                         ("return F.relu(x + self.alpha * out)",
                                          "return F.relu(torch.addcmul(x, self.alpha, out))")],
        "torch.tensor(0.0), product the other way round": [("nn.Parameter(torch.zeros(()))", "nn.Parameter(torch.tensor(0.0))"),
                                                           ("x + self.alpha * out", "x + out * self.alpha")],
    },
    "layerscale_block": {
        "gamma shaped (1, C, 1, 1)": [("torch.full((channels,), float(init))", "torch.full((1, channels, 1, 1), init)"),
                                      ("self.gamma[:, None, None] * out", "out * self.gamma")],
        "init * ones, einsum over the channel axis": [("torch.full((channels,), float(init))", "init * torch.ones(channels)"),
                                                      ("self.gamma[:, None, None] * out",
                                                       'torch.einsum("nchw,c->nchw", out, self.gamma)')],
    },
}
