"""Assignment 8: a dense layer and transition, a ResNeXt bottleneck, a block with stochastic depth."""

BRANCH = "self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))"
ONE_DRAW = ("            if torch.rand(()) >= self.survival:\n                return F.relu(identity)\n"
            f"            return F.relu({BRANCH} + identity)\n")
EVAL = f"        return F.relu(self.survival * {BRANCH} + identity)"
TRAINING = "        if self.training:\n"
# torchvision.ops.stochastic_depth (torchvision 0.16), copied: a student may bring it along
TORCHVISION = '''def stochastic_depth(input, p, mode, training=True):
    if not training or p == 0.0:
        return input
    survival_rate = 1.0 - p
    size = [input.shape[0]] + [1] * (input.ndim - 1) if mode == "row" else [1] * input.ndim
    noise = torch.empty(size, dtype=input.dtype, device=input.device).bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return input * noise


'''

MISTAKES = {
    "dense": {
        "adds instead of concatenating": [("return torch.cat([x, new], dim=1)", "return x + new")],
        "concatenates along the batch axis": [("return torch.cat([x, new], dim=1)", "return torch.cat([x, new], dim=0)")],
        "returns only the new channels": [("return torch.cat([x, new], dim=1)", "return new")],
        "post-activation order in the dense layer": [("new = self.conv1(F.relu(self.bn1(x)))",
                                                      "new = F.relu(self.conv1(self.bn1(x)))")],
        "max pooling in the transition": [("return F.avg_pool2d(", "return F.max_pool2d(")],
        "no ReLU in the transition": [("return F.avg_pool2d(self.conv1(F.relu(self.bn1(x))), 2)",
                                       "return F.avg_pool2d(self.conv1(self.bn1(x)), 2)")],
    },
    "resnext": {
        "no groups in the 3x3": [(", groups=cardinality, bias=False)", ", bias=False)")],
        "groups of group_width channels instead of cardinality groups": [
            (", groups=cardinality, bias=False)", ", groups=group_width, bias=False)")],
        "the stride on the first 1x1 convolution": [
            ("self.conv1 = nn.Conv2d(in_ch, inner, 1, bias=False)", "self.conv1 = nn.Conv2d(in_ch, inner, 1, stride, bias=False)"),
            ("nn.Conv2d(inner, inner, 3, stride, 1, groups", "nn.Conv2d(inner, inner, 3, 1, 1, groups")],
        "ReLU before the add": [("return F.relu(out + self.shortcut(x))", "return F.relu(out) + self.shortcut(x)")],
        "a ReLU after bn3": [("out = self.bn3(self.conv3(out))", "out = F.relu(self.bn3(self.conv3(out)))")],
        "identity shortcut at stride 2 when the channels match": [
            ("if stride == 1 and in_ch == out_ch:", "if in_ch == out_ch:")],
        "no BatchNorm on the projection": [
            ("self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))",
             "self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)")],
    },
    "stochastic_depth": {
        "drops the shortcut instead of the branch": [
            ("                return F.relu(identity)\n",
             "                return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))\n")],
        "no scaling by survival at evaluation": [
            ("return F.relu(self.survival * self.bn2(", "return F.relu(self.bn2(")],
        "scales the shortcut at evaluation": [
            ("return F.relu(self.survival * self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + identity)",
             "return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + self.survival * identity)")],
        "drops when the draw is below survival": [("if torch.rand(()) >= self.survival:", "if torch.rand(()) < self.survival:")],
        "drops in eval mode too": [("        if self.training:\n", "        if True:\n")],
        "divides by survival in training instead of scaling at evaluation": [
            ("            return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + identity)\n"
             "        return F.relu(self.survival * ",
             "            return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) / self.survival + identity)\n"
             "        return F.relu(")],
        "ReLU before the add": [("return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + identity)",
                                 "return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))) + identity")],
        "a Bernoulli mask per image (torchvision's row mode)": [
            (ONE_DRAW, f"            mask = torch.bernoulli(torch.full((x.shape[0], 1, 1, 1), self.survival, dtype=x.dtype))\n"
                       f"            return F.relu(mask * {BRANCH} + identity)\n")],
        "the decision drawn once in __init__": [
            ("        self.survival = survival\n",
             "        self.survival = survival\n        self.use_branch = torch.rand(1).item() < survival\n"),
            ("if torch.rand(()) >= self.survival:", "if not self.use_branch:")],
        "torchvision's stochastic_depth as it is (divides by survival in training, no scaling at evaluation)": [
            ("class StochasticDepthBlock", TORCHVISION + "class StochasticDepthBlock"),
            (TRAINING + ONE_DRAW + EVAL,
             f"        return F.relu(stochastic_depth({BRANCH}, 1 - self.survival, 'batch', self.training) + identity)")],
        "a whole-batch Bernoulli mask made on the CPU": [
            (ONE_DRAW, f"            mask = torch.bernoulli(torch.full((1, 1, 1, 1), self.survival, dtype=x.dtype))\n"
                       f"            return F.relu({BRANCH} * mask + identity)\n")],
        "a uniform draw made on the CPU, compared with survival, mask as a float": [
            (ONE_DRAW, "            alive = (torch.rand(1) < self.survival).float()\n"
                       f"            return F.relu(alive * {BRANCH} + identity)\n")],
        "a mask drawn with 1 - survival": [
            (ONE_DRAW, f"            mask = torch.bernoulli(torch.tensor(1 - self.survival, dtype=x.dtype))\n"
                       f"            return F.relu(mask * {BRANCH} + identity)\n")],
    },
}

VALID = {
    "dense": {
        "ReLU module, torch.concat": [
            ("        self.conv1 = nn.Conv2d(in_ch, growth, 3, 1, 1, bias=False)",
             "        self.conv1 = nn.Conv2d(in_ch, growth, 3, padding=1, bias=False)\n        self.relu = nn.ReLU()"),
            ("new = self.conv1(F.relu(self.bn1(x)))\n        return torch.cat([x, new], dim=1)",
             "new = self.conv1(self.relu(self.bn1(x)))\n        return torch.concat((x, new), 1)")],
        "AvgPool2d module in the transition": [
            ("        self.conv1 = nn.Conv2d(in_ch, out_ch, 1, bias=False)",
             "        self.conv1 = nn.Conv2d(in_ch, out_ch, 1, bias=False)\n        self.pool = nn.AvgPool2d(2)"),
            ("return F.avg_pool2d(self.conv1(F.relu(self.bn1(x))), 2)", "return self.pool(self.conv1(F.relu(self.bn1(x))))")],
        "pools before the 1x1 convolution (both linear without bias: they commute)": [
            ("return F.avg_pool2d(self.conv1(F.relu(self.bn1(x))), 2)",
             "return self.conv1(F.avg_pool2d(F.relu(self.bn1(x)), 2))")],
    },
    "resnext": {
        "shortcut first, in-place add": [
            ("        out = F.relu(self.bn1(self.conv1(x)))\n        out = F.relu(self.bn2",
             "        identity = self.shortcut(x)\n        out = F.relu(self.bn1(self.conv1(x)))\n        out = F.relu(self.bn2"),
            ("return F.relu(out + self.shortcut(x))", "out += identity\n        return F.relu(out)")],
        "keyword arguments for the grouped conv": [
            ("nn.Conv2d(inner, inner, 3, stride, 1, groups=cardinality, bias=False)",
             "nn.Conv2d(inner, inner, kernel_size=3, stride=stride, padding=1, groups=cardinality, bias=False)")],
    },
    "stochastic_depth": {
        "branch as a method": [
            ("        identity = self.shortcut(x)\n        if self.training:",
             "        identity = self.shortcut(x)\n"
             "        branch = lambda: self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))\n"
             "        if self.training:"),
            ("            return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + identity)\n"
             "        return F.relu(self.survival * self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + identity)",
             "            return F.relu(branch() + identity)\n"
             "        return F.relu(branch() * self.survival + identity)")],
        "eval branch first, early return": [
            ("        identity = self.shortcut(x)\n        if self.training:",
             "        identity = self.shortcut(x)\n"
             "        if not self.training:\n"
             "            return F.relu(self.survival * self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + identity)\n"
             "        if self.training:")],
        "the branch times a Bernoulli mask over the whole batch": [
            (ONE_DRAW, f"            mask = torch.bernoulli(torch.full((1, 1, 1, 1), self.survival, dtype=x.dtype, device=x.device))\n"
                       f"            return F.relu({BRANCH} * mask + identity)\n")],
        "torchvision's stochastic_depth in batch mode, times survival": [
            ("class StochasticDepthBlock", TORCHVISION + "class StochasticDepthBlock"),
            (TRAINING + ONE_DRAW + EVAL, f"        branch = stochastic_depth({BRANCH}, 1 - self.survival, 'batch', self.training)\n"
                              "        return F.relu(branch * self.survival + identity)")],
        "skips the branch with Python's random, keyword names": [
            ("    def forward(self, x):", "    def forward(self, x):\n        import random"),
            (ONE_DRAW, f"            if random.random() < self.survival:\n                return F.relu({BRANCH} + identity)\n"
                       "            return F.relu(identity)\n")],
        "a uniform tensor compared with survival, mask as a float": [
            (ONE_DRAW, "            alive = (torch.rand(1, device=x.device) < self.survival).to(x.dtype)\n"
                       f"            return F.relu(alive * {BRANCH} + identity)\n")],
    },
}
