"""Assignment 6: a constant branch scale, ReZero, LayerScale."""

MISTAKES = {
    "scaled_block": {
        "scales the shortcut": [("return F.relu(x + self.scale * out)", "return F.relu(self.scale * x + out)")],
        "makes the constant learnable": [("self.scale = scale",
                                          "self.scale = nn.Parameter(torch.tensor(float(scale)))")],
        "scales before BatchNorm": [("out = self.bn2(self.conv2(out))\n        return F.relu(x + self.scale * out)",
                                     "out = self.bn2(self.scale * self.conv2(out))\n        return F.relu(x + out)")],
        "scales after the ReLU": [("return F.relu(x + self.scale * out)", "return self.scale * F.relu(x + out)")],
    },
    "rezero_block": {
        "alpha starts at 1": [("torch.zeros(())", "torch.ones(())")],
        "alpha scales the shortcut": [("return F.relu(x + self.alpha * out)", "return F.relu(self.alpha * x + out)")],
        "alpha before BatchNorm": [("out = self.bn2(self.conv2(out))\n        return F.relu(x + self.alpha * out)",
                                    "out = self.bn2(self.alpha * self.conv2(out))\n        return F.relu(x + out)")],
        "alpha is not a parameter": [("nn.Parameter(torch.zeros(()))", "torch.zeros(())")],
    },
    "layerscale_block": {
        "one scalar for all channels": [("torch.full((channels,), float(init))", "torch.tensor(float(init))"),
                                        ("self.gamma[:, None, None]", "self.gamma")],
        "scales the last axis instead of the channels": [("self.gamma[:, None, None]", "self.gamma")],
        "ignores init": [("float(init)", "1.0")],
        "scales the shortcut": [("return F.relu(x + self.gamma[:, None, None] * out)",
                                 "return F.relu(self.gamma[:, None, None] * x + out)")],
    },
}

VALID = {
    "scaled_block": {
        "the constant as a buffer": [("self.scale = scale",
                                      'self.register_buffer("scale", torch.tensor(float(scale)))'),
                                     ("return F.relu(x + self.scale * out)",
                                      "return F.relu(out.mul(self.scale).add(x))")],
    },
    "rezero_block": {
        "alpha of shape (1,), addcmul": [("nn.Parameter(torch.zeros(()))", "nn.Parameter(torch.zeros(1))"),
                                         ("return F.relu(x + self.alpha * out)",
                                          "return F.relu(torch.addcmul(x, self.alpha, out))")],
    },
    "layerscale_block": {
        "gamma shaped (1, C, 1, 1)": [("torch.full((channels,), float(init))", "torch.full((1, channels, 1, 1), init)"),
                                      ("self.gamma[:, None, None] * out", "out * self.gamma")],
    },
}
