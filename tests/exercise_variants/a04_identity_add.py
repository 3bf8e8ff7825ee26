"""Assignment 4: the plain block, the identity-add block, deleting blocks."""

NO_SUPER = [("        super().__init__()\n", "")]

MISTAKES = {
    "plain_block": {
        "convolutions with a bias": [("bias=False", "bias=True")],
        "no ReLU at the end": [("return F.relu(self.bn2(self.conv2(out)))", "return self.bn2(self.conv2(out))")],
        "ReLU before BatchNorm": [("out = F.relu(self.bn1(self.conv1(x)))", "out = self.bn1(F.relu(self.conv1(x)))")],
        "forgets super().__init__()": NO_SUPER,
        "one BatchNorm shared by both convolutions": [("        self.bn2 = nn.BatchNorm2d(channels)\n",
                                                       "        self.bn2 = self.bn1\n")],
        "BatchNorm on batch statistics in eval mode too": [
            ("return F.relu(self.bn2(self.conv2(out)))",
             "bn = self.bn2\n        return F.relu(F.batch_norm(self.conv2(out), bn.running_mean, bn.running_var, "
             "bn.weight, bn.bias, training=True))")],
        "convolutions without padding, then resized back": [
            ("out = F.relu(self.bn1(self.conv1(x)))",
             "out = F.relu(self.bn1(F.pad(F.conv2d(x, self.conv1.weight), (1, 1, 1, 1))))")],
    },
    "basic_block": {
        "ReLU before the add": [("return F.relu(out + x)", "return F.relu(out) + x")],
        "no ReLU after the add": [("return F.relu(out + x)", "return out + x")],
        "adds in place into the input": [("return F.relu(out + x)", "x += out\n        return F.relu(x)")],
        "forgets super().__init__()": NO_SUPER,
        "adds the input before the last BatchNorm": [("out = self.bn2(self.conv2(out))\n        return F.relu(out + x)",
                                                      "return F.relu(self.bn2(self.conv2(out) + x))")],
        "detaches the shortcut": [("return F.relu(out + x)", "return F.relu(out + x.detach())")],
        "uses batch statistics in eval mode": [
            ("out = self.bn2(self.conv2(out))",
             "out = F.batch_norm(self.conv2(out), None, None, self.bn2.weight, self.bn2.bias, training=True)")],
        "reuses conv1 as conv2": [("        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)\n",
                                   "        self.conv2 = self.conv1\n")],
    },
    "remove_block": {
        "edits the original net": [("lesioned = copy.deepcopy(net)", "lesioned = net")],
        "counts blocks from 1": [("[int(index)]", "[int(index) - 1]")],
        "removes the shortcut instead of the block": [("getattr(lesioned, stage)[int(index)] = nn.Identity()",
                                                       "getattr(lesioned, stage)[int(index)].shortcut = None")],
        "zeroes the block's convolutions instead of removing it": [
            ("getattr(lesioned, stage)[int(index)] = nn.Identity()",
             "for p in getattr(lesioned, stage)[int(index)].parameters():\n        nn.init.zeros_(p)")],
        "a shallow copy, so the original loses its block too": [("copy.deepcopy(net)", "copy.copy(net)")],
        "removes the block at that index in every stage": [
            ("getattr(lesioned, stage)[int(index)] = nn.Identity()",
             "for layer in lesioned.layers():\n        if int(index) < len(layer):\n"
             "            layer[int(index)] = nn.Identity()")],
    },
}

VALID = {
    "plain_block": {
        "ReLU modules": [("        self.bn2 = nn.BatchNorm2d(channels)",
                          "        self.bn2 = nn.BatchNorm2d(channels)\n        self.relu = nn.ReLU(inplace=True)"),
                         ("out = F.relu(self.bn1(self.conv1(x)))", "out = self.relu(self.bn1(self.conv1(x)))"),
                         ("return F.relu(self.bn2(self.conv2(out)))", "return self.relu(self.bn2(self.conv2(out)))")],
        "functional convolutions with the modules' weights": [
            ("out = F.relu(self.bn1(self.conv1(x)))", "out = F.relu(self.bn1(F.conv2d(x, self.conv1.weight, padding=1)))")],
    },
    "basic_block": {
        "torchvision's in-place add and in-place ReLU": '''class BasicBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)''',
        "clamp instead of ReLU, the shortcut kept aside": [("return F.relu(out + x)",
                                                           "identity = x.clone()\n        return torch.clamp(out + identity, min=0)")],
    },
    "remove_block": {
        "rebuilds the stage without the block": '''def remove_block(net, name):
    lesioned = copy.deepcopy(net)
    stage, index = name.split(".")
    blocks = [b for i, b in enumerate(getattr(lesioned, stage)) if i != int(index)]
    setattr(lesioned, stage, nn.Sequential(*blocks))
    return lesioned''',
        "get_submodule on a copy": '''def remove_block(net, name):
    lesioned = copy.deepcopy(net)
    stage, index = name.rsplit(".", 1)
    lesioned.get_submodule(stage)[int(index)] = torch.nn.Identity()
    return lesioned''',
    },
}
