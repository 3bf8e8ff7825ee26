"""Assignment 6: a fixed branch scale, ReZero's learnable scalar, LayerScale's per-channel scale."""
from .core import Part
from .harness import Modules

A = "a06_scaling"
CASES = {"same": "a batch of several", "one": "a batch of one", "wide": "many channels"}
LAYERSCALE_CASES = {**CASES, "default": "the default init"}
LIBRARY = ("BasicBlock", "Scale", "Net", "build")

PARTS = [
    Part(A, "scaled_block", 2, "ScaledBlock against the library's block with a fixed scale",
         Modules("ScaledBlock").run_student, 1e-6, CASES, LIBRARY),
    Part(A, "rezero_block", 3, "ReZeroBlock against the library's block with a learnable scalar",
         Modules("ReZeroBlock", rename=(("scale.weight", "alpha"),), fresh=("alpha",)).run_student, 1e-6, CASES,
         LIBRARY),
    Part(A, "layerscale_block", 3, "LayerScaleBlock against the library's per-channel scale",
         Modules("LayerScaleBlock", rename=(("scale.weight", "gamma"),), fresh=("gamma",)).run_student, 1e-6,
         LAYERSCALE_CASES,
         LIBRARY),
]
