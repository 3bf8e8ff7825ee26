"""reslab: the library behind the residual-connections course (data, models, training, probes, widgets)."""
from .models import Net, NetConfig, build, count_parameters, preset

__all__ = ["Net", "NetConfig", "build", "count_parameters", "preset"]
__version__ = "0.1.0"
