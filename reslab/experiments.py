"""The experiments behind the course's claims, one short function each.

The chapters call these to make their figures and ``tests/test_course.py`` calls the very same functions to
assert the orderings the chapters state, so a claim and its check cannot drift apart. Results are plain
numbers (lists, dicts, small dataclasses) that a plot or an assert can use directly.
"""
from __future__ import annotations

import contextlib
import copy
import itertools
import math
import time
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from . import data as datasets
from . import probes
from .models import Net, NetConfig, Scale, build, cifar_config, count_parameters
from .train import TrainConfig, evaluate, fit, seed_everything

# Live experiments in the chapters must fit in seconds on a laptop CPU: narrow nets, a few epochs.
NARROW = (8, 16, 32)
QUICK = TrainConfig(epochs=5, batch_size=64, lr=2e-3, schedule="cosine")
CONTINUE = TrainConfig(epochs=3, batch_size=64, lr=5e-4, schedule="cosine")  # gentle: the nets are trained


@contextlib.contextmanager
def threads_for(images: torch.Tensor):
    """One torch thread while working on tiny images such as the 8x8 digits: extra threads only add overhead
    there, and on a busy 2-core machine two threads made training 5-20x slower than one. Larger images
    (Fashion-MNIST, CIFAR-10) keep every thread."""
    saved = torch.get_num_threads()
    if images.shape[-1] * images.shape[-2] <= 16 * 16:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


# --- measuring a net ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Profile:
    """What flows through a net on one batch, input side first."""

    weight_grad: list[float]  # ||dL/dW|| of every conv and linear layer
    stream_grad: list[float]  # ||dL/dh|| at the input image and at the output of every block
    block_std: list[float]  # standard deviation of every block's output

    @staticmethod
    def ratio(values: list[float]) -> float:
        """First over last: 1e-3 means the signal shrank a thousandfold on its way to the input."""
        return values[0] / max(values[-1], 1e-30)


def stream_gradients(model: Net, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """||dL/dh|| at the input and after each block: backprop's product of Jacobians, one factor at a time."""
    outputs: list[torch.Tensor] = []

    def record(module, inputs, output):
        outputs.append(output)

    hooks = [b.register_forward_hook(record) for b in model.blocks()]
    x = x.detach().clone().requires_grad_(True)
    try:
        loss = F.cross_entropy(model(x), y)
    finally:
        for h in hooks:
            h.remove()
    return [g.norm().item() for g in torch.autograd.grad(loss, [x, *outputs])]


def profile(model: Net, x: torch.Tensor, y: torch.Tensor) -> Profile:
    """Gradients and activations as training sees them (train mode), measured on a copy: BatchNorm's
    running statistics and the ``.grad`` fields of ``model`` stay untouched."""
    probe = copy.deepcopy(model).train()
    device = next(model.parameters()).device
    x, y = x.to(device), y.to(device)
    return Profile(weight_grad=probes.layer_stats(probe, x, y).grad_norm,
                   stream_grad=stream_gradients(probe, x, y),
                   block_std=probes.block_output_std(probe, x))


def profiles(configs: dict[str, NetConfig], x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> dict[str, Profile]:
    """The profile of each config at initialisation (the same seed for every one of them)."""
    result = {}
    with threads_for(x):
        for name, config in configs.items():
            seed_everything(seed)
            result[name] = profile(build(config), x, y)
    return result


# --- training ----------------------------------------------------------------------------------------------

@dataclass
class Run:
    """A trained model, its per-epoch metrics (dicts, as in the reference manifest) and, when asked for,
    its profile and its eval-mode training loss before training and after every epoch."""

    model: nn.Module
    history: list[dict]
    device: str
    seconds: float
    profiles: list[Profile] = field(default_factory=list)
    eval_train_loss: list[float] = field(default_factory=list)

    @property
    def final(self) -> dict:
        return self.history[-1]


def train_runs(models: dict[str, nn.Module | NetConfig], training: TrainConfig = QUICK,
               data: datasets.Data | None = None,
               probe_batch: tuple[torch.Tensor, torch.Tensor] | None = None,
               eval_train: bool = False, progress: bool | None = False) -> dict[str, Run]:
    """Train each model (a config is built first, seeded by ``training.seed``) and return its Run.

    ``probe_batch=(x, y)`` also records a Profile before training and after every epoch. ``eval_train=True``
    records the eval-mode loss on the whole training split at the same points: unlike the history's
    ``train_loss`` (a train-mode mean over an epoch's batches, the net changing as it goes) it is measured
    the same way before training as after, so a curve that starts before training can be drawn with it.
    ``progress`` is off: a chapter's live runs take seconds, and a bar stored in an executed notebook shows
    frozen at 0; ``None`` shows it in terminals and notebooks (the minutes-long retraining of references).
    """
    data = data or datasets.digits()
    runs = {}
    with threads_for(data.train.x):
        for name, model in models.items():
            if isinstance(model, NetConfig):
                seed_everything(training.seed)
                model = build(model)
            elif not isinstance(model, nn.Module):
                raise TypeError(f"{name}: expected a NetConfig or a model, got {type(model).__name__}")
            recorded = [] if probe_batch is None else [profile(model, *probe_batch)]
            losses = [evaluate(model, data.train, amp=training.amp)[0]] if eval_train else []

            def on_epoch(metrics, model=model, recorded=recorded, losses=losses):
                if probe_batch is not None:
                    recorded.append(profile(model, *probe_batch))
                if eval_train:
                    losses.append(metrics.train_eval_loss)  # fit measured it: eval mode, whole training set

            history = fit(model, data, training, on_epoch=on_epoch, progress=progress)
            runs[name] = Run(model.eval(), [asdict(m) for m in history], history[-1].device,
                             sum(m.seconds for m in history), recorded, losses)
    return runs


def reference_runs(names: list[str], recompute: bool = False, folder=None) -> dict[str, Run]:
    """Seed 0 of shipped reference runs (instant), or with ``recompute=True`` the same configs retrained here
    with the training settings recorded in the manifest (minutes on a CPU, seconds on a GPU). ``folder`` picks
    the suite (default: the 10-epoch digits suite; ``reference.DIGITS_CONVERGED.folder`` for the converged one)."""
    from . import reference

    folder = folder or reference.FOLDER
    if not recompute:
        runs = {}
        for name in names:
            model, entry = reference.load(name, folder)
            runs[name] = Run(model, entry["history"], entry["device"], entry["seconds"])
        return runs
    entries = reference.manifest(folder)["models"]
    unknown = [n for n in names if n not in entries]
    if unknown:
        raise ValueError(f"no reference model(s) {unknown}; the suite has: {sorted(entries)}")
    runs = {}
    for name in names:
        training = TrainConfig(**{**entries[name]["train_config"], "device": None})
        runs.update(train_runs({name: NetConfig.from_dict(entries[name]["config"])}, training, progress=None))
    return runs


def seed_runs(names: list[str], folder=None, recomputed: dict[str, Run] | None = None) -> dict[str, list[Run]]:
    """The shipped seeds of each reference model, seed order: what a spread over seeds is made of. Only the
    seeds that every named model has, so that comparisons pair seed with seed while a suite is still being
    trained. ``recomputed`` (from ``reference_runs(..., recompute=True)``) replaces seed 0 of its models."""
    from . import reference

    folder = folder or reference.FOLDER
    entries = {name: reference.seeds(name, folder) for name in names}
    shared = set.intersection(*({e["seed"] for e in found} for found in entries.values())) if names else set()
    runs = {}
    for name in names:
        runs[name] = []
        for entry in (e for e in entries[name] if e["seed"] in shared):
            if recomputed and name in recomputed and entry["seed"] == 0:
                runs[name].append(recomputed[name])
                continue
            model, _ = reference.load(name, folder, seed=entry["seed"])
            runs[name].append(Run(model, entry["history"], entry["device"], entry["seconds"]))
    return runs


def finals(runs: dict[str, list[Run]], metric: str = "train_loss") -> dict[str, list[float]]:
    """The final ``metric`` of every seed of every model."""
    return {name: [run.final[metric] for run in seeds] for name, seeds in runs.items()}


def variants(base: NetConfig, **choices) -> dict[str, NetConfig]:
    """Every combination of the given field values, named by them: ``variants(base, activation=("sigmoid",
    "relu"), init=("naive", "kaiming"))`` gives "sigmoid/naive", "sigmoid/kaiming", "relu/naive", …"""
    fields_, values = zip(*choices.items())
    return {"/".join(map(str, combo)): replace(base, **dict(zip(fields_, combo)))
            for combo in itertools.product(*values)}


def depth_configs(depths, base: NetConfig | None = None) -> dict[str, NetConfig]:
    """``plain<d>`` and ``resnet<d>`` twins (He et al.'s 6n+2 layers) for the degradation experiment."""
    values = (base or NetConfig()).to_dict()
    for key in ("stages", "block", "residual"):
        values.pop(key)
    return {f"{kind}{d}": cifar_config(d, residual=kind == "resnet", **values)
            for kind in ("plain", "resnet") for d in depths}


SCALINGS = {  # chapter 6: one way to scale the shortcut, four ways to scale the branch
    "identity": {},
    "shortcut x0.5": dict(shortcut_scale=0.5),
    "branch x0.2": dict(branch_scale="fixed", branch_scale_init=0.2),
    "ReZero (a=0)": dict(branch_scale="scalar", branch_scale_init=0.0),
    "LayerScale (1e-2)": dict(branch_scale="channel", branch_scale_init=1e-2),
    "zero-init gamma": dict(zero_init_residual=True),
}


def scale_configs(base: NetConfig | None = None) -> dict[str, NetConfig]:
    """``base`` (a residual net) with each of the scalings in SCALINGS."""
    base = base or NetConfig()
    return {name: replace(base, **change) for name, change in SCALINGS.items()}


# --- surgery on trained nets -------------------------------------------------------------------------------

def block_names(model: Net) -> list[str]:
    """"layer1.0", "layer1.1", … for every block, input side first."""
    return [f"layer{i + 1}.{j}" for i, layer in enumerate(model.layers()) for j in range(len(layer))]


def deletable_blocks(model: Net) -> list[str]:
    """Every block of a residual net (its shortcut stays); in a plain net only the blocks whose output has
    the shape of their input, since removing the others leaves nothing that fits."""
    keeps_shape = {}
    names = dict(zip(model.blocks(), block_names(model)))

    def record(module, inputs, output):
        keeps_shape[names[module]] = inputs[0].shape == output.shape

    hooks = [b.register_forward_hook(record) for b in model.blocks()]
    was_training = model.training
    try:  # shapes are structural: any small image tells
        with torch.no_grad():
            model.eval()(torch.zeros(1, model.config.in_channels, 8, 8))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return [name for name, block in zip(block_names(model), model.blocks())
            if getattr(block, "shortcut", None) is not None or keeps_shape.get(name, True)]


def delete_block(model: Net, name: str) -> Net:
    """A copy of ``model`` without block ``name`` (e.g. "layer2.1").

    A residual block loses its branch (scaled by 0) and keeps its shortcut, as in Veit et al. 2016; a plain
    block is replaced by the identity, which removes a link of the only path there is.
    """
    if name not in deletable_blocks(model):
        raise ValueError(f"block {name!r} cannot be deleted; deletable: {deletable_blocks(model)}")
    stage, index = name.split(".")
    pruned = copy.deepcopy(model)
    layer = getattr(pruned, stage)
    if getattr(layer[int(index)], "shortcut", None) is not None:
        layer[int(index)].scale = Scale(0.0)
    else:
        layer[int(index)] = nn.Identity()
    return pruned


def block_deletion(model: Net, split: datasets.Split) -> dict[str, float]:
    """Accuracy on ``split`` after deleting each deletable block alone; key "none" is the intact net."""
    with threads_for(split.x):
        result = {"none": evaluate(model, split)[1]}
        for name in deletable_blocks(model):
            result[name] = evaluate(delete_block(model, name), split)[1]
    return result


def deletion_summary(result: dict[str, float], cheap: float = 0.1) -> dict[str, float]:
    """From ``block_deletion``: the intact accuracy, the mean over single deletions, how many deletions cost
    less than ``cheap`` (a fraction: 0.1 is ten points) and how many there were."""
    drops = [result["none"] - acc for block, acc in result.items() if block != "none"]
    return {"intact": result["none"], "mean": sum(result["none"] - d for d in drops) / len(drops),
            "cheap": sum(d < cheap for d in drops), "deletions": len(drops)}


# --- what flows through a trained net ----------------------------------------------------------------------

NOTHING_AFTER_THE_ADD = ("preact", "relu-before-add", "relu-preact")


@torch.no_grad()
def identity_open_fraction(model: Net, x: torch.Tensor) -> list[float]:
    """Per block, the fraction of output units through which the shortcut passes the gradient unchanged.

    Where a ReLU follows the add (the original block, BN after the add) a unit is open when that ReLU is
    active; blocks with nothing after the add (He et al. 2016's pre-activation family) are open everywhere.
    """
    if model.config.block in NOTHING_AFTER_THE_ADD:
        return [1.0] * len(model.blocks())
    return _measure_outputs(model, model.blocks(), x, lambda _, out: (out > 0).float().mean().item())


@torch.no_grad()
def layer_responses(model: Net, x: torch.Tensor) -> list[float]:
    """He et al. 2015, Fig. 7: the standard deviation of every 3x3 conv layer's response inside the blocks,
    after its BatchNorm and before the add or the ReLU, on ``x`` in eval mode."""
    norms = [m for b in model.blocks() for m in (b.bn1, b.bn2) if isinstance(m, nn.BatchNorm2d)]
    return _measure_outputs(model, norms, x, lambda _, out: out.std().item())


def _measure_outputs(model: nn.Module, modules, x: torch.Tensor, measure) -> list:
    """``measure(module, output)`` of each of ``modules``, in forward order, on one eval-mode pass of ``x``;
    the model's training mode is restored afterwards."""
    values = []
    hooks = [m.register_forward_hook(lambda m, i, o: values.append(measure(m, o))) for m in modules]
    was_training = model.training
    try:
        with threads_for(x):
            model.eval()(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return values


@dataclass(frozen=True)
class PathGradients:
    """Veit et al. 2016, Fig. 6: a residual net of n blocks unrolls into 2^n paths, C(n, k) of them through
    exactly k branches. ``per_path[k]`` is the mean gradient norm at the input through one path of length k."""

    per_path: list[float]

    @property
    def blocks(self) -> int:
        return len(self.per_path) - 1

    @property
    def paths(self) -> list[int]:
        """How many paths have each length: the binomial coefficients C(n, k)."""
        return [math.comb(self.blocks, k) for k in range(self.blocks + 1)]

    @property
    def mean_length(self) -> float:
        """The mean length of a path, n/2: what a net whose paths all mattered equally would use."""
        return self.blocks / 2

    @property
    def total(self) -> list[float]:
        """Gradient per length, summed over all paths of that length: C(n, k) times ``per_path[k]``."""
        return [n * g for n, g in zip(self.paths, self.per_path)]

    @property
    def share(self) -> list[float]:
        """Each length's fraction of the gradient of all paths together."""
        whole = sum(self.total)
        return [t / whole for t in self.total]

    @property
    def gradient_mean_length(self) -> float:
        """The mean path length weighted by the gradient that the paths of each length carry."""
        return sum(k * s for k, s in enumerate(self.share))

    def share_up_to(self, length: int) -> float:
        """Fraction of the gradient carried by paths through at most ``length`` branches."""
        return sum(self.share[:length + 1])


def path_gradients(model: Net, x: torch.Tensor, y: torch.Tensor, per_length: int = 64,
                   seed: int = 0) -> PathGradients:
    """Veit et al.'s experiment on a trained residual net (eval mode): for every length k, ``per_length``
    rows of the batch each get a random set of k blocks whose gradient runs through the branch only, and the
    other blocks' through the shortcut only; the forward pass is the intact net's.

    One backward pass does it all: per row, a block's shortcut or branch output is detached (same value, no
    gradient), so row r's input gradient is the one of its own path set. Rows are images of ``x`` drawn at
    random; the gradient is that of each row's own cross-entropy.
    """
    blocks = model.blocks()
    if not blocks or any(getattr(b, "shortcut", None) is None for b in blocks):
        raise ValueError("path_gradients needs a residual net: every block must have a shortcut")
    if per_length < 1:
        raise ValueError(f"per_length must be at least 1, got {per_length}")
    n = len(blocks)
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.arange(n + 1).repeat_interleave(per_length)
    rows = torch.randint(len(x), (len(lengths),), generator=generator)
    branch = torch.zeros(len(lengths), n, dtype=torch.bool)  # row r takes the branch of these blocks
    for r, k in enumerate(lengths.tolist()):
        branch[r, torch.randperm(n, generator=generator)[:k]] = True

    def only(rows_open):
        keep = rows_open.float().view(-1, 1, 1, 1)
        return lambda module, inputs, output: keep * output + (1 - keep) * output.detach()

    # every block kind ends its branch with ``scale`` and adds ``shortcut(x)``: gate those two outputs
    hooks = [h for j, b in enumerate(blocks) for h in (b.scale.register_forward_hook(only(branch[:, j])),
                                                       b.shortcut.register_forward_hook(only(~branch[:, j])))]
    was_training = model.training
    inputs = x[rows].clone().requires_grad_(True)
    try:
        with threads_for(x):
            loss = F.cross_entropy(model.eval()(inputs), y[rows], reduction="sum")  # row r: its own loss
            (grad,) = torch.autograd.grad(loss, inputs)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return PathGradients(grad.flatten(1).norm(dim=1).view(n + 1, per_length).mean(1).tolist())


def with_batch_statistics(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """A copy in eval mode whose BatchNorm layers normalise with the statistics of the batch ``x``: a fresh
    net behaves as in training, yet each image's output (and gradient) depends on that image alone."""
    probe = copy.deepcopy(model)
    for m in probe.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: after one batch, exactly that batch's statistics
    with torch.no_grad(), threads_for(x):
        probe.train()(x)
    return probe.eval()


def gradient_correlation(model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: float = 0.01,
                         seed: int = 0) -> float:
    """Balduzzi et al. 2017's shattering, on images: the mean cosine similarity between the gradient of the
    loss with respect to each input image and the one at a nearby image, moved by ``step`` times its own norm
    in a random direction. Near 1: the gradient is smooth in the input; near 0: "shattered", white noise.
    BatchNorm uses the statistics of ``x`` (``with_batch_statistics``), so fresh nets can be measured."""
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    net = with_batch_statistics(model, x)
    direction = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    size = x.flatten(1).norm(dim=1) / direction.flatten(1).norm(dim=1)
    nearby = x + step * size.view(-1, *[1] * (x.dim() - 1)) * direction

    def input_gradients(images):
        images = images.clone().requires_grad_(True)
        loss = F.cross_entropy(net(images), y, reduction="sum")  # image i: the gradient of its own loss
        return torch.autograd.grad(loss, images)[0].flatten(1)

    with threads_for(x):
        return F.cosine_similarity(input_gradients(x), input_gradients(nearby), dim=1).mean().item()


def shattering(depths, x: torch.Tensor, y: torch.Tensor, step: float = 0.01, seeds=(0, 1, 2),
               base: NetConfig | None = None) -> dict[str, list[float]]:
    """``gradient_correlation`` of fresh plain and residual twins (``depth_configs``) for every init seed."""
    result = {}
    for name, config in depth_configs(depths, base).items():
        result[name] = []
        for seed in seeds:
            seed_everything(seed)
            result[name].append(gradient_correlation(build(config), x, y, step, seed))
    return result


def deepen(model: Net, extra: int = 1, plain_identity: bool = False) -> Net:
    """A deeper net with ``extra`` new blocks at the end of every stage and the old weights everywhere else.

    In a residual net the new blocks start with their last BatchNorm scale at zero, so their branch outputs
    zero and the deeper net computes exactly the function of the shallow one (function-preserving
    deepening). A plain net's new blocks sit on the only path: with random weights they change the output;
    with ``plain_identity=True`` they start as the identity instead (``identity_plain_``), the fair baseline.
    """
    config = model.config
    if config.residual and not config.norm:
        raise ValueError("deepen zeroes the last BatchNorm of each new block: it needs a net with norm=True")
    if not isinstance(extra, int) or extra < 1:
        raise ValueError(f"extra must be a positive number of blocks per stage, got {extra!r}")
    deeper = build(config, stages=tuple(n + extra for n in config.stages))
    _, unexpected = deeper.load_state_dict(model.state_dict(), strict=False)  # missing: the new blocks
    if unexpected:
        raise ValueError(f"the deeper net lacks weights of the shallow one: {unexpected[:5]}")
    if plain_identity and (config.residual or config.block != "basic" or not config.norm):
        raise ValueError("plain_identity starts new plain basic blocks with BatchNorm as the identity; "
                         f"this net is {'residual' if config.residual else config.block}")
    for layer, n in zip(deeper.layers(), config.stages):
        for block in layer[n:]:
            if config.residual:
                nn.init.zeros_(block.last_norm().weight)
            elif plain_identity:
                identity_plain_(block)
    return deeper.train(model.training)


@torch.no_grad()
def identity_plain_(block: nn.Module) -> None:
    """Make a plain basic block (conv-BN-ReLU-conv-BN-ReLU, as many channels out as in, stride 1) the identity
    on inputs >= 0 in eval mode: Dirac kernels pass every channel through, and each BatchNorm's running
    variance is set to 1 - eps so that it divides by exactly 1. In training mode BatchNorm uses the batch's
    statistics instead, and the block is the identity no longer: the point exists, training does not keep it."""
    for conv, norm in ((block.conv1, block.bn1), (block.conv2, block.bn2)):
        nn.init.dirac_(conv.weight)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)
        nn.init.ones_(norm.weight), nn.init.zeros_(norm.bias), norm.running_mean.zero_()
        norm.running_var.fill_(1 - norm.eps)


@torch.no_grad()
def max_output_change(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    """Largest absolute difference between two models' outputs on ``x``, both in eval mode."""
    modes = a.training, b.training
    a.eval(), b.eval()
    change = (a(x) - b(x)).abs().max().item()
    a.train(modes[0]), b.train(modes[1])
    return change


@dataclass
class Deepening:
    """Chapter 3's experiment: each shallow net next to its deepened copy, then both trained further."""

    output_change: dict[str, float]  # largest |change| of an output score caused by deepening
    accuracy_before: dict[str, float]  # test accuracy of the shallow net
    accuracy_after: dict[str, float]  # test accuracy right after deepening, before any training
    runs: dict[str, Run]  # "<name> continued" (the shallow net) and "<name> deepened", trained further
    start_loss: dict[str, float]  # training loss of each of those nets before it was trained further (eval mode)


def deepening(shallow: dict[str, Net], training: TrainConfig = CONTINUE, data: datasets.Data | None = None,
              extra: int = 1, plain_identity: bool = False) -> Deepening:
    """Deepen each trained net (``deepen``), measure what changed, then train shallow and deep copies on.

    The new blocks' random weights follow ``training.seed``. Every run records its eval-mode training loss
    before and after each epoch (``Run.eval_train_loss``); ``start_loss`` is its first value. With
    ``plain_identity=True`` each plain net is also deepened with identity blocks, as "<name> identity"."""
    data = data or datasets.digits()
    seed_everything(training.seed)
    deeper = {name: deepen(model, extra) for name, model in shallow.items()}
    if plain_identity:
        deeper.update({f"{name} identity": deepen(model, extra, plain_identity=True)
                       for name, model in shallow.items() if not model.config.residual})
    origin = {name: shallow[name.removesuffix(" identity")] for name in deeper}  # the net each one deepens
    models = {}
    for name, model in deeper.items():
        if name in shallow:
            models[f"{name} continued"] = copy.deepcopy(shallow[name])
        models[f"{name} deepened"] = copy.deepcopy(model)
    with threads_for(data.train.x):
        measured = dict(
            output_change={n: max_output_change(origin[n], m, data.test.x) for n, m in deeper.items()},
            accuracy_before={n: evaluate(m, data.test)[1] for n, m in shallow.items()},
            accuracy_after={n: evaluate(m, data.test)[1] for n, m in deeper.items()},
        )
    runs = train_runs(models, training, data, eval_train=True)
    return Deepening(runs=runs, start_loss={n: run.eval_train_loss[0] for n, run in runs.items()}, **measured)


def training_step_seconds(models: dict[str, nn.Module], x: torch.Tensor, y: torch.Tensor,
                          repeats: int = 6) -> dict[str, float]:
    """Per model, the fastest of ``repeats`` forward and backward passes on ``(x, y)``, in seconds: the cost of
    a training step measured here and now. The models take turns, step by step, so that a change in the
    machine's load hits all of them alike (the seconds in a manifest come from runs under whatever load there
    was); one thread, because on a shared CPU two threads contend and the time says more about the load."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    probes = {name: copy.deepcopy(model).train() for name, model in models.items()}
    best, saved = dict.fromkeys(probes, math.inf), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(repeats):
            for name, probe in probes.items():
                start = time.perf_counter()
                F.cross_entropy(probe(x), y).backward()
                best[name] = min(best[name], time.perf_counter() - start)
    finally:
        torch.set_num_threads(saved)
    return best


@torch.no_grad()
def convolution_work(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(number of convolutions run, multiply-adds they do per image) on one image shaped like ``x``'s: how
    much work a net does and in how many sequential pieces, whatever machine it runs on."""
    convolutions = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    work = _measure_outputs(model, convolutions, x[:1], lambda conv, out: out[0].numel() * conv.in_channels
                            // conv.groups * math.prod(conv.kernel_size))
    return len(work), sum(work)


def padding_share(size: int, kernel: int = 3) -> float:
    """The fraction of a ``kernel`` x ``kernel`` convolution's inputs that is zero padding ("same" padding,
    stride 1), averaged over a ``size`` x ``size`` map: what a small last stage of a net really sees."""
    if size < 1 or kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"need a positive size and an odd kernel, got size={size}, kernel={kernel}")
    real = F.conv2d(torch.ones(1, 1, size, size), torch.ones(1, 1, kernel, kernel), padding=kernel // 2)
    return 1 - real.mean().item() / kernel ** 2


# --- shortcut options --------------------------------------------------------------------------------------

def shortcut_parameters(depth: int = 20, **overrides) -> dict[str, int]:
    """Parameter count of the same CIFAR-style ResNet with shortcut option A, B and C."""
    return {option: count_parameters(build(cifar_config(depth, shortcut=option, **overrides)))
            for option in ("A", "B", "C")}
