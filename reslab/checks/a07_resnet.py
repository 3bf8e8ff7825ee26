"""Assignment 7: the bottleneck, the pre-activation block, a whole ResNet on the reference weights."""
from .core import Part
from .harness import Modules

A = "a07_resnet"
BLOCK_CASES = {"same": "stride 1, shapes unchanged", "down": "stride 2, more channels",
               "widen": "stride 1, more channels", "one": "stride 2, a batch of one",
               "keep": "stride 2, the same channels"}
LIBRARY = ("Bottleneck", "PreActBlock", "BasicBlock", "make_shortcut", "Net", "build", "preset", "cifar_config")

PARTS = [
    Part(A, "bottleneck", 3, "Bottleneck against the library's", Modules("Bottleneck").run_student, 1e-6, BLOCK_CASES,
         LIBRARY),
    Part(A, "preact_block", 3, "PreActBlock against the library's", Modules("PreActBlock").run_student, 1e-6,
         BLOCK_CASES, LIBRARY),
    Part(A, "resnet", 4, "ResNet with random weights and with the reference resnet20 weights",
         Modules("ResNet").run_student, 1e-6,
         {"rand": "a small net with random weights", "deep": "four stages",
          "other": "three input channels, 7 classes, equal widths, a batch of one", "ref": "the reference resnet20 weights "
                                                                                   "on the digits test split"}, LIBRARY),
]
