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
    },
    "projection": {
        "no BatchNorm": [(", nn.BatchNorm2d(out_ch))", ")")],
        "a 3x3 convolution": [("nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)",
                               "nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)")],
        "forgets the stride": [("nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)",
                                "nn.Conv2d(in_ch, out_ch, 1, bias=False)")],
        "a convolution with a bias": [("1, stride, bias=False)", "1, stride)")],
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
    },
    "projection": {
        "keyword arguments, modules appended": '''def projection(in_ch, out_ch, stride):
    shortcut = nn.Sequential()
    shortcut.append(nn.Conv2d(in_ch, out_ch, kernel_size=(1, 1), stride=(stride, stride), padding=0, bias=False))
    shortcut.append(nn.BatchNorm2d(out_ch, eps=1e-5, momentum=0.1))
    return shortcut''',
    },
    "basic_block": {
        "functional convolutions on the modules' weights": [
            ("out = F.relu(self.bn1(self.conv1(x)))",
             "out = F.relu(self.bn1(F.conv2d(x, self.conv1.weight, stride=self.conv1.stride, padding=1)))"),
            ("out = self.bn2(self.conv2(out))", "out = self.bn2(F.conv2d(out, self.conv2.weight, padding=1))"),
            ("return F.relu(out + self.shortcut(x))", "return torch.relu(self.shortcut(x) + out)")],
    },
}
