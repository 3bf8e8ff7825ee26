"""Assignment 5: option A, option B, the block with either."""

MISTAKES = {
    "zero_pad_shortcut": {
        "zeros before the input channels": [("(0, 0, 0, 0, 0, self.extra_channels)",
                                             "(0, 0, 0, 0, self.extra_channels, 0)")],
        "average pooling instead of subsampling": [("x = x[:, :, ::self.stride, ::self.stride]",
                                                    "x = F.avg_pool2d(x, self.stride, ceil_mode=True)")],
        "starts at the second pixel": [("x[:, :, ::self.stride, ::self.stride]",
                                        "x[:, :, self.stride - 1::self.stride, self.stride - 1::self.stride]")],
        "pads the width instead of the channels": [("(0, 0, 0, 0, 0, self.extra_channels)",
                                                    "(0, self.extra_channels)")],
        "half the zeros on each side of the input channels": [
            ("(0, 0, 0, 0, 0, self.extra_channels)",
             "(0, 0, 0, 0, self.extra_channels // 2, self.extra_channels - self.extra_channels // 2)")],
        "zeros cut from zeros_like(x) (at most C extra channels)": [
            ("return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))",
             "return torch.cat([x, torch.zeros_like(x)[:, :self.extra_channels]], dim=1)")],
        "a float32 output buffer (the default dtype, not x's)": [
            ("return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))",
             "out = torch.zeros(x.shape[0], x.shape[1] + self.extra_channels, *x.shape[2:])\n"
             "        out[:, :x.shape[1]] = x\n        return out")],
        "zeros made on the CPU, then concatenated": [
            ("return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))",
             "zeros = torch.zeros(x.shape[0], self.extra_channels, *x.shape[2:], dtype=x.dtype)\n"
             "        return torch.cat([x, zeros], dim=1)")],
        "a hard-coded stride of 2": [("x[:, :, ::self.stride, ::self.stride]", "x[:, :, ::2, ::2]")],
        "subsamples the rows only": [("x[:, :, ::self.stride, ::self.stride]", "x[:, :, ::self.stride]")],
    },
    "projection": {
        "no BatchNorm": [(", nn.BatchNorm2d(out_ch))", ")")],
        "a 3x3 convolution": [("nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)",
                               "nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)")],
        "forgets the stride": [("nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)",
                                "nn.Conv2d(in_ch, out_ch, 1, bias=False)")],
        "a convolution with a bias": [("1, stride, bias=False)", "1, stride)")],
        "BatchNorm over the input channels": [("nn.BatchNorm2d(out_ch)", "nn.BatchNorm2d(in_ch)")],
        "a ReLU after the BatchNorm": [("nn.BatchNorm2d(out_ch))", "nn.BatchNorm2d(out_ch), nn.ReLU())")],
        "the identity when the channels agree, whatever the stride": [
            ("    return nn.Sequential(", "    if in_ch == out_ch:\n        return nn.Identity()\n    return nn.Sequential(")],
        "Keras' momentum convention (0.9)": [("nn.BatchNorm2d(out_ch))", "nn.BatchNorm2d(out_ch, momentum=0.9))")],
    },
    "basic_block": {
        "ReLU before the add": [("return F.relu(out + self.shortcut(x))", "return F.relu(out) + self.shortcut(x)")],
        "no BatchNorm on the projection": [(
            "nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))",
            "nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False))")],
        "the stride on conv2 instead of conv1": [("nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)",
                                                  "nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False)"),
                                                 ("nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)",
                                                  "nn.Conv2d(out_ch, out_ch, 3, stride, 1, bias=False)")],
        "option B projects even when the shape is kept": [
            ("if stride == 1 and in_ch == out_ch:", 'if stride == 1 and in_ch == out_ch and option == "A":')],
        "the identity whenever the channels agree (stride ignored)": [
            ("if stride == 1 and in_ch == out_ch:", "if in_ch == out_ch:")],
        "the identity whenever the stride is 1 (channels ignored)": [
            ("if stride == 1 and in_ch == out_ch:", "if stride == 1:")],
        "option A pads out_ch // 2 channels (assumes doubling)": [
            ("models.ZeroPadShortcut(stride, out_ch - in_ch)", "models.ZeroPadShortcut(stride, out_ch // 2)")],
        "option A as the classic CIFAR lambda: subsamples by 2 whatever the stride": [
            ("class BasicBlock(nn.Module):", "class HalveAndPad(nn.Module):\n    def __init__(self, extra):\n"
             "        super().__init__()\n        self.extra = extra\n\n    def forward(self, x):\n"
             "        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 0, self.extra))\n\n\nclass BasicBlock(nn.Module):"),
            ("models.ZeroPadShortcut(stride, out_ch - in_ch)", "HalveAndPad(out_ch - in_ch)")],
        "bn2 always uses batch statistics": [
            ("out = self.bn2(self.conv2(out))",
             "out = F.batch_norm(self.conv2(out), self.bn2.running_mean, self.bn2.running_var, self.bn2.weight, "
             "self.bn2.bias, training=True)")],
    },
}

VALID = {
    "zero_pad_shortcut": {
        "torch.cat with zeros": '''class ZeroPadShortcut(nn.Module):
    def __init__(self, stride, extra_channels):
        super().__init__()
        self.stride = stride
        self.extra = extra_channels

    def forward(self, x):
        kept = x[..., ::self.stride, ::self.stride]
        zeros = kept.new_zeros(kept.shape[0], self.extra, *kept.shape[2:])
        return torch.cat([kept, zeros], dim=1)''',
        "max pooling with a 1x1 window, new_zeros and a slice assignment": [
            ("x = x[:, :, ::self.stride, ::self.stride]", "x = F.max_pool2d(x, 1, self.stride)"),
            ("return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))",
             "out = x.new_zeros(x.shape[0], x.shape[1] + self.extra_channels, *x.shape[2:])\n"
             "        out[:, :x.shape[1]] = x\n        return out")],
    },
    "projection": {
        "keyword arguments, modules appended": '''def projection(in_ch, out_ch, stride):
    shortcut = nn.Sequential()
    shortcut.append(nn.Conv2d(in_ch, out_ch, kernel_size=(1, 1), stride=(stride, stride), padding=0, bias=False))
    shortcut.append(nn.BatchNorm2d(out_ch, eps=1e-5, momentum=0.1))
    return shortcut''',
        "an OrderedDict with keys '0' and '1'": [
            ("    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))",
             "    from collections import OrderedDict\n"
             "    return nn.Sequential(OrderedDict([(\"0\", nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)),\n"
             "                                      (\"1\", nn.BatchNorm2d(num_features=out_ch))]))")],
    },
    "basic_block": {
        "functional convolutions on the modules' weights": [
            ("out = F.relu(self.bn1(self.conv1(x)))",
             "out = F.relu(self.bn1(F.conv2d(x, self.conv1.weight, stride=self.conv1.stride, padding=1)))"),
            ("out = self.bn2(self.conv2(out))", "out = self.bn2(F.conv2d(out, self.conv2.weight, padding=1))"),
            ("return F.relu(out + self.shortcut(x))", "return torch.relu(self.shortcut(x) + out)")],
        "the shortcut computed first, an in-place ReLU": [
            ("        out = F.relu(self.bn1(self.conv1(x)))", "        identity = self.shortcut(x)\n        out = F.relu(self.bn1(self.conv1(x)), inplace=True)"),
            ("return F.relu(out + self.shortcut(x))", "return F.relu(out + identity)")],
    },
}
