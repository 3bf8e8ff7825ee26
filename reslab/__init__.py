"""reslab: the library behind the residual-connections course (data, models, training, probes, widgets)."""
import importlib

__all__ = ["Net", "NetConfig", "build", "count_parameters", "preset"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """``reslab.Net`` and the other models names import torch on first use, so that ``reslab-train --help``
    and every command's argument parsing answer at once."""
    if name in __all__:
        return getattr(importlib.import_module(".models", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
