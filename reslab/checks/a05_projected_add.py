"""Assignment 5: option A (zero-padding), option B (projection), the block with either."""
from .core import Part
from .harness import Modules

A = "a05_projected_add"
SHORTCUTS = ("ZeroPadShortcut", "make_shortcut", "Net", "build")
BLOCKS = ("BasicBlock", "make_shortcut", "Net", "build")

PARTS = [
    Part(A, "zero_pad_shortcut", 2, "ZeroPadShortcut (option A) against the library's",
         Modules("ZeroPadShortcut").run_student, 1e-6,
         {"stride2": "stride 2", "stride1": "stride 1", "wide": "more extra channels than input channels",
          "one": "stride 2, a batch of one"}, SHORTCUTS),
    Part(A, "projection", 2, "projection (option B) against the library's", Modules("projection").run_student, 1e-6,
         {"stride2": "stride 2, more channels", "stride1": "stride 1, more channels",
          "keep": "stride 2, the same channels"}, SHORTCUTS),
    Part(A, "basic_block", 3, "BasicBlock with options A and B against the library's", Modules("BasicBlock").run_student,
         1e-6, {"A": "option A, shapes change", "B": "option B, shapes change", "sameA": "option A, shapes unchanged",
                "sameB": "option B, shapes unchanged", "B1": "option B, stride 1 with more channels",
                "A1": "option A, stride 1 with more channels",
                "keepA": "option A, stride 2 with the same channels", "keepB": "option B, stride 2 with the same channels"}, BLOCKS),
]
