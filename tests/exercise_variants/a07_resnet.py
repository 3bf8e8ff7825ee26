"""Assignment 7: bottleneck, pre-activation, a whole ResNet on the reference weights."""

MISTAKES = {
    "bottleneck": {
        "the stride on the first 1x1 convolution": [("nn.Conv2d(in_ch, width, 1, bias=False)",
                                                     "nn.Conv2d(in_ch, width, 1, stride, bias=False)"),
                                                    ("nn.Conv2d(width, width, 3, stride, 1, bias=False)",
                                                     "nn.Conv2d(width, width, 3, 1, 1, bias=False)")],
        "ReLU before the add": [("return F.relu(out + self.shortcut(x))", "return F.relu(out) + self.shortcut(x)")],
        "skips bn3": [("out = self.bn3(self.conv3(out))", "out = self.conv3(out)")],
        "a ReLU after bn3": [("out = self.bn3(self.conv3(out))", "out = F.relu(self.bn3(self.conv3(out)))")],
    },
    "preact_block": {
        "a ReLU after the add": [("return out + self.shortcut(x)", "return F.relu(out + self.shortcut(x))")],
        "the shortcut takes the pre-activated input": [
            ("out = self.conv1(F.relu(self.bn1(x)))", "pre = F.relu(self.bn1(x))\n        out = self.conv1(pre)"),
            ("return out + self.shortcut(x)", "return out + self.shortcut(pre)")],
        "post-activation order inside the branch": [("out = self.conv1(F.relu(self.bn1(x)))",
                                                     "out = F.relu(self.bn1(self.conv1(x)))")],
        "bn1 over the output channels": [("self.bn1 = nn.BatchNorm2d(in_ch)", "self.bn1 = nn.BatchNorm2d(width)")],
    },
    "resnet": {
        "stride 1 in every block": [("2 if i > 0 and j == 0 else 1", "1")],
        "max pooling instead of average pooling": [("F.adaptive_avg_pool2d", "F.adaptive_max_pool2d")],
        "no ReLU after the stem": [("x = F.relu(self.bn1(self.conv1(x)))", "x = self.bn1(self.conv1(x))")],
        "ReLU before the add in the blocks": [("return F.relu(out + self.shortcut(x))",
                                               "return F.relu(out) + self.shortcut(x)")],
    },
}

VALID = {
    "bottleneck": {
        "ReLU module and in-place add": [
            ("        out_ch = 4 * width", "        out_ch = 4 * width\n        self.relu = nn.ReLU(inplace=True)"),
            ("        out = self.bn3(self.conv3(out))\n        return F.relu(out + self.shortcut(x))",
             "        out = self.bn3(self.conv3(out))\n"
             "        out += self.shortcut(x)\n"
             "        return self.relu(out)")],
    },
    "preact_block": {
        "shortcut first, ReLU modules": [
            ("        out = self.conv1(F.relu(self.bn1(x)))",
             "        identity = self.shortcut(x)\n        out = self.conv1(nn.ReLU()(self.bn1(x)))"),
            ("return out + self.shortcut(x)", "return identity + out")],
    },
    "resnet": {
        "mean over the spatial axes, stage names kept in a list": [
            ("        self.num_stages = len(stages)",
             '        self.stage_names = [f"layer{i + 1}" for i in range(len(stages))]'),
            ("        for i in range(self.num_stages):\n            x = getattr(self, f\"layer{i + 1}\")(x)",
             "        for name in self.stage_names:\n            x = getattr(self, name)(x)"),
            ("return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))", "return self.fc(x.mean(dim=(2, 3)))")],
    },
}
