"""Assignment 8: a dense layer and transition, a ResNeXt bottleneck, a block with stochastic depth."""

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
    },
}
