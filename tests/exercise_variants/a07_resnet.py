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
        "the stride on the last 1x1 convolution": [("nn.Conv2d(width, out_ch, 1, bias=False)",
                                                    "nn.Conv2d(width, out_ch, 1, stride, bias=False)"),
                                                   ("nn.Conv2d(width, width, 3, stride, 1, bias=False)",
                                                    "nn.Conv2d(width, width, 3, 1, 1, bias=False)")],
        "the identity whenever the stride is 1 (channels ignored)": [("if stride == 1 and in_ch == out_ch:", "if stride == 1:")],
        "an expansion of 2": [("out_ch = 4 * width", "out_ch = 2 * width")],
        "no ReLU after bn2": [("out = F.relu(self.bn2(self.conv2(out)))", "out = self.bn2(self.conv2(out))")],
        "no BatchNorm on the projection": [("nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))",
                                            "nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False))")],
        "the projection without the stride": [("nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)",
                                               "nn.Conv2d(in_ch, out_ch, 1, bias=False)")],
        "bn3 always uses batch statistics": [("out = self.bn3(self.conv3(out))",
                                              "out = F.batch_norm(self.conv3(out), self.bn3.running_mean, self.bn3.running_var, "
                                              "self.bn3.weight, self.bn3.bias, training=True)")],
    },
    "preact_block": {
        "a ReLU after the add": [("return out + self.shortcut(x)", "return F.relu(out + self.shortcut(x))")],
        "the shortcut takes the pre-activated input": [
            ("out = self.conv1(F.relu(self.bn1(x)))", "pre = F.relu(self.bn1(x))\n        out = self.conv1(pre)"),
            ("return out + self.shortcut(x)", "return out + self.shortcut(pre)")],
        "post-activation order inside the branch": [("out = self.conv1(F.relu(self.bn1(x)))",
                                                     "out = F.relu(self.bn1(self.conv1(x)))")],
        "bn1 over the output channels": [("self.bn1 = nn.BatchNorm2d(in_ch)", "self.bn1 = nn.BatchNorm2d(width)")],
        "the stride on conv2 instead of conv1": [("nn.Conv2d(in_ch, width, 3, stride, 1, bias=False)",
                                                  "nn.Conv2d(in_ch, width, 3, 1, 1, bias=False)"),
                                                 ("nn.Conv2d(width, width, 3, 1, 1, bias=False)",
                                                  "nn.Conv2d(width, width, 3, stride, 1, bias=False)")],
        "the identity whenever the channels agree (stride ignored)": [("if stride == 1 and in_ch == width:", "if in_ch == width:")],
        "no ReLU before conv2": [("out = self.conv2(F.relu(self.bn2(out)))", "out = self.conv2(self.bn2(out))")],
        "the projection without the stride": [("nn.Conv2d(in_ch, width, 1, stride, bias=False)",
                                               "nn.Conv2d(in_ch, width, 1, bias=False)")],
        "bn1 always uses batch statistics": [("out = self.conv1(F.relu(self.bn1(x)))",
                                              "out = self.conv1(F.relu(F.batch_norm(x, self.bn1.running_mean, self.bn1.running_var, "
                                              "self.bn1.weight, self.bn1.bias, training=True)))")],
    },
    "resnet": {
        "stride 1 in every block": [("2 if i > 0 and j == 0 else 1", "1")],
        "max pooling instead of average pooling": [("F.adaptive_avg_pool2d", "F.adaptive_max_pool2d")],
        "no ReLU after the stem": [("x = F.relu(self.bn1(self.conv1(x)))", "x = self.bn1(self.conv1(x))")],
        "ReLU before the add in the blocks": [("return F.relu(out + self.shortcut(x))",
                                               "return F.relu(out) + self.shortcut(x)")],
        "a hard-coded 10 classes": [("nn.Linear(in_ch, num_classes)", "nn.Linear(in_ch, 10)")],
        "a hard-coded single input channel": [("nn.Conv2d(in_channels, widths[0]", "nn.Conv2d(1, widths[0]")],
        "a hard-coded three stages": [("self.num_stages = len(stages)", "self.num_stages = 3")],
        "pooling sized for 8x8 inputs": [("F.adaptive_avg_pool2d(x, 1).flatten(1)", "F.avg_pool2d(x, 2).flatten(1)")],
        "squeeze() drops the batch axis of a batch of 1": [("F.adaptive_avg_pool2d(x, 1).flatten(1)",
                                                            "F.adaptive_avg_pool2d(x, 1).squeeze()")],
        "one block object repeated in a stage": [
            ("            blocks = []\n            for j in range(count):\n"
             "                blocks.append(BasicBlock(in_ch, width, 2 if i > 0 and j == 0 else 1))\n"
             "                in_ch = width\n",
             "            blocks = [BasicBlock(in_ch, width, 2 if i > 0 else 1)]\n"
             "            blocks += [BasicBlock(width, width)] * (count - 1)\n"
             "            in_ch = width\n")],
        "every stage gets stages[0] blocks": [("for j in range(count):", "for j in range(stages[0]):")],
        "strides every block of the later stages": [("2 if i > 0 and j == 0 else 1", "2 if i > 0 else 1")],
        "flattens with a view on a fixed batch size": [("F.adaptive_avg_pool2d(x, 1).flatten(1)",
                                                        "F.adaptive_avg_pool2d(x, 1).view(2, -1)")],
        "the blocks' identity whenever the channels agree": [("if stride == 1 and in_ch == out_ch:", "if in_ch == out_ch:")],
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
        "the identity first, replaced where the shape changes": [
            ("        if stride == 1 and in_ch == out_ch:\n            self.shortcut = nn.Identity()\n        else:\n"
             "            self.shortcut = nn.Sequential(",
             "        self.shortcut = nn.Identity()\n        if stride != 1 or in_ch != out_ch:\n"
             "            self.shortcut = nn.Sequential(")],
    },
    "preact_block": {
        "shortcut first, ReLU modules": [
            ("        out = self.conv1(F.relu(self.bn1(x)))",
             "        identity = self.shortcut(x)\n        out = self.conv1(nn.ReLU()(self.bn1(x)))"),
            ("return out + self.shortcut(x)", "return identity + out")],
        "keyword arguments, torch.add": [("self.bn1 = nn.BatchNorm2d(in_ch)", "self.bn1 = nn.BatchNorm2d(num_features=in_ch)"),
                                         ("nn.Conv2d(in_ch, width, 3, stride, 1, bias=False)",
                                          "nn.Conv2d(in_ch, width, kernel_size=3, stride=stride, padding=1, bias=False)"),
                                         ("return out + self.shortcut(x)", "return torch.add(out, self.shortcut(x))")],
    },
    "resnet": {
        "mean over the spatial axes, stage names kept in a list": [
            ("        self.num_stages = len(stages)",
             '        self.stage_names = [f"layer{i + 1}" for i in range(len(stages))]'),
            ("        for i in range(self.num_stages):\n            x = getattr(self, f\"layer{i + 1}\")(x)",
             "        for name in self.stage_names:\n            x = getattr(self, name)(x)"),
            ("return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))", "return self.fc(x.mean(dim=(2, 3)))")],
        "average pooling over the whole map, torch.flatten": [
            ("return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))",
             "return self.fc(torch.flatten(F.avg_pool2d(x, x.shape[-2:]), 1))")],
    },
}
