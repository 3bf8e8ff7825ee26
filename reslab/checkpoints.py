"""Checkpoints that say what they are: config, seed, torch version, device, wall time and metrics travel
with the weights.

Two formats, one job each: a *training* checkpoint (``torch.save`` of plain tensors and dicts, loaded with
``weights_only=True``) carries optimizer and RNG state so a run can resume; a *reference* checkpoint
(safetensors, no pickle at all) carries only weights plus JSON metadata, so it is safe to ship and load.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from .models import Net, NetConfig


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or does not fit the model it is loaded into."""


def _metadata(model: nn.Module, train_config=None, history=(), seconds: float = 0.0) -> dict:
    history = [asdict(m) for m in history]
    return {
        "config": model.config.to_dict() if isinstance(model, Net) else None,
        "train_config": asdict(train_config) if train_config is not None else None,
        "seed": getattr(train_config, "seed", None),
        "torch": str(torch.__version__),
        "device": history[-1]["device"] if history else None,
        "seconds": seconds,
        "epochs": len(history),
        "final": history[-1] if history else None,
        "history": history,
        "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.chmod(tmp, 0o644)  # some writers create 0600 files; checkpoints are meant to be shared
    os.replace(tmp, path)


def save(path, model: nn.Module, *, optimizer=None, scheduler=None, generator=None, train_config=None,
         history=(), seconds=0.0) -> None:
    """Write a resumable training checkpoint (atomically: a crash never leaves half a file)."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": {"torch": torch.get_rng_state(),
                "generator": generator.get_state() if generator is not None else None},
        "metadata": _metadata(model, train_config, history, seconds),
    }
    _atomic_write(Path(path), lambda tmp: torch.save(state, tmp))


def _read(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch reports truncation and foreign pickles in many ways
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(err).__name__}: {err}); "
                              "it may be truncated or not a reslab checkpoint: retrain or copy it again") from err


def load(path, model: nn.Module | None = None, *, optimizer=None, scheduler=None) -> dict:
    """Read a training checkpoint; load it into ``model``, ``optimizer`` and ``scheduler`` where given."""
    state = _read(path)
    if not isinstance(state, dict) or "model" not in state or "metadata" not in state:
        raise CheckpointError(f"{path} is a torch file but not a reslab training checkpoint")
    if model is not None:
        load_weights(model, state["model"], source=str(path))
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    return state


def load_weights(model: nn.Module, weights: dict, source: str = "checkpoint") -> None:
    """``load_state_dict(strict=True)`` with a message that names what is missing, extra or misshapen."""
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    misshapen = sorted(k for k in set(own) & set(weights) if own[k].shape != weights[k].shape)
    if missing or unexpected or misshapen:
        details = [f"{label}: {names[:8]}{' …' if len(names) > 8 else ''}"
                   for label, names in (("missing", missing), ("unexpected", unexpected),
                                        ("wrong shape", misshapen)) if names]
        raise CheckpointError(f"{source} does not fit this model ({'; '.join(details)}); check the parameter "
                              "names and the config the checkpoint was trained with")
    model.load_state_dict(weights, strict=True)


def from_checkpoint(path) -> tuple[Net, dict]:
    """Rebuild the model a training checkpoint was made from; returns (model, metadata)."""
    state = _read(path)
    config = state.get("metadata", {}).get("config") if isinstance(state, dict) else None
    if config is None:
        raise CheckpointError(f"{path} carries no model config: it was not written by reslab for a Net")
    model = Net(NetConfig.from_dict(config))
    load_weights(model, state["model"], source=str(path))
    return model, state["metadata"]


def export_reference(path, model: Net, metadata: dict) -> None:
    """Weights as safetensors with the metadata as one JSON string (safetensors metadata is str -> str)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata={"reslab": json.dumps(metadata)}))


def load_reference(path) -> tuple[Net, dict]:
    """Rebuild a reference model from its safetensors file; returns (model in eval mode, metadata)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"reference checkpoint {path} does not exist; `python -m reslab.reference "
                              "train` rebuilds the suite")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = json.loads(f.metadata()["reslab"])
            weights = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:
        raise CheckpointError(f"reference checkpoint {path} cannot be read ({type(err).__name__}: {err})") from err
    model = Net(NetConfig.from_dict(metadata["config"]))
    load_weights(model, weights, source=str(path))
    return model.eval(), metadata
