"""Assignment 4: the plain block, the identity-add block, deleting blocks."""

NO_SUPER = [("        super().__init__()\n", "")]

MISTAKES = {
    "plain_block": {
        "convolutions with a bias": [("bias=False", "bias=True")],
        "no ReLU at the end": [("return F.relu(self.bn2(self.conv2(out)))", "return self.bn2(self.conv2(out))")],
        "ReLU before BatchNorm": [("out = F.relu(self.bn1(self.conv1(x)))", "out = self.bn1(F.relu(self.conv1(x)))")],
        "forgets super().__init__()": NO_SUPER,
    },
    "basic_block": {
        "ReLU before the add": [("return F.relu(out + x)", "return F.relu(out) + x")],
        "no ReLU after the add": [("return F.relu(out + x)", "return out + x")],
        "adds in place into the input": [("return F.relu(out + x)", "x += out\n        return F.relu(x)")],
        "forgets super().__init__()": NO_SUPER,
    },
    "remove_block": {
        "edits the original net": [("lesioned = copy.deepcopy(net)", "lesioned = net")],
        "counts blocks from 1": [("[int(index)]", "[int(index) - 1]")],
        "removes the shortcut instead of the block": [("getattr(lesioned, stage)[int(index)] = nn.Identity()",
                                                       "getattr(lesioned, stage)[int(index)].shortcut = None")],
    },
}

VALID = {
    "plain_block": {
        "ReLU modules": [("        self.bn2 = nn.BatchNorm2d(channels)",
                          "        self.bn2 = nn.BatchNorm2d(channels)\n        self.relu = nn.ReLU(inplace=True)"),
                         ("out = F.relu(self.bn1(self.conv1(x)))", "out = self.relu(self.bn1(self.conv1(x)))"),
                         ("return F.relu(self.bn2(self.conv2(out)))", "return self.relu(self.bn2(self.conv2(out)))")],
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
    },
    "remove_block": {
        "rebuilds the stage without the block": '''def remove_block(net, name):
    lesioned = copy.deepcopy(net)
    stage, index = name.split(".")
    blocks = [b for i, b in enumerate(getattr(lesioned, stage)) if i != int(index)]
    setattr(lesioned, stage, nn.Sequential(*blocks))
    return lesioned''',
    },
}
