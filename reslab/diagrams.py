"""Diagrams drawn from the module itself, so a picture can never disagree with the code it shows.

``graph(module)`` traces the module with ``torch.fx`` and keeps what its forward pass really calls: every
leaf module (conv, BatchNorm, activation, zero-pad shortcut, scale, ...), the functions it applies (``F.relu``,
``torch.cat``, ...) and every add, with the tensor shapes a dummy input gives. ``nn.Identity`` calls become
plain edges (an identity shortcut is a line labelled "identity"). A whole net (a module with ``layer1`` ...)
is drawn as its stages: stem, one box per stage (how many blocks of which kind, output shape), head.
``draw`` renders the graph with Graphviz to a plain SVG string that notebooks show inline
(``Diagram._repr_svg_``) and a static site can serve as a file (``Diagram.save``).
"""
from __future__ import annotations

import contextlib
import io
import operator
from dataclasses import dataclass, field
from pathlib import Path

import graphviz
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from . import models

ADD = "add"
INPUT, OUTPUT = "input", "output"
# fill colours by kind, readable in print and for the common colour-vision deficiencies (Okabe-Ito, lightened)
COLOURS = {"conv": "#a6cee3", "norm": "#fdd49e", "activation": "#b2df8a", "shortcut": "#d9d9d9",
           "scale": "#cab2d6", "pool": "#ffffb3", "linear": "#fbb4ae", "stage": "#e5f5f9", "concat": "#ffffff",
           ADD: "#ffffff", INPUT: "#ffffff", OUTPUT: "#ffffff", "other": "#ffffff"}
ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU)
FUNCTIONS = {F.relu: ("ReLU", "activation"), torch.relu: ("ReLU", "activation"), torch.sigmoid: ("sigmoid", "activation"),
             torch.tanh: ("tanh", "activation"), torch.cat: ("concat", "concat"),
             F.avg_pool2d: ("avg-pool", "pool"), F.adaptive_avg_pool2d: ("global avg-pool", "pool"),
             torch.flatten: ("flatten", "other"), operator.mul: ("×", "scale"), operator.add: ("+", ADD),
             torch.add: ("+", ADD)}


@dataclass(frozen=True)
class Node:
    name: str  # unique within the graph (fx's node name)
    label: str  # what the picture says
    kind: str  # conv, norm, activation, shortcut, scale, pool, linear, stage, add, concat, input, output, other
    target: str = ""  # the module's qualified name, or the function's, or "" for input/output


@dataclass
class Graph:
    """The computation graph of one module: nodes in forward order and (source, destination, label) edges."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[tuple[str, str, str]] = field(default_factory=list)

    def labels(self) -> list[str]:
        return [n.label for n in self.nodes]

    def modules(self) -> set[str]:
        """Qualified names of the modules drawn (the traced leaves and, for a net, its stages)."""
        return {n.target for n in self.nodes if n.kind not in (ADD, INPUT, OUTPUT) and n.target
                and not n.target.startswith("fn:")}

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def path(self, *kinds_or_labels: str) -> bool:
        """True if some chain of edges visits nodes with these labels (or kinds) in this order, each next one
        directly after the previous: ``path("BN", "ReLU", "conv 3x3 ...")``."""
        following = {}
        for src, dst, _ in self.edges:
            following.setdefault(src, []).append(dst)

        def matches(name, want):
            n = self.node(name)
            return want in (n.label, n.kind) or n.label.startswith(want + " ")

        def walk(name, rest):
            return not rest or any(matches(d, rest[0]) and walk(d, rest[1:]) for d in following.get(name, []))

        return any(matches(n.name, kinds_or_labels[0]) and walk(n.name, kinds_or_labels[1:]) for n in self.nodes)


@dataclass
class Diagram:
    """A rendered graph: ``.svg`` is a standalone SVG document; notebooks show it inline."""

    graph: Graph
    svg: str

    def _repr_svg_(self):
        return self.svg

    def __repr__(self):  # a notebook stores it as the text/plain output beside the SVG: keep it short
        return f"Diagram({len(self.graph.nodes)} nodes, {len(self.graph.edges)} edges)"

    def save(self, path) -> Path:
        path = Path(path)
        path.write_text(self.svg, encoding="utf-8")
        return path


# --- describing what a node is ----------------------------------------------------------------------------

def _pair(v) -> str:
    v = v if isinstance(v, tuple) else (v, v)
    return f"{v[0]}x{v[1]}"


def _stride(v) -> int:
    return v[0] if isinstance(v, tuple) else v


def describe(module: nn.Module) -> tuple[str, str]:
    """(label, kind) of a leaf module as the picture shows it."""
    if isinstance(module, nn.Conv2d):
        label = f"conv {_pair(module.kernel_size)}, {module.in_channels}→{module.out_channels}"
        if _stride(module.stride) != 1:
            label += f", /{_stride(module.stride)}"
        if module.groups != 1:
            label += f", {module.groups} groups"
        return label, "conv"
    if isinstance(module, nn.BatchNorm2d):
        return "BN", "norm"
    if isinstance(module, ACTIVATIONS):
        return type(module).__name__, "activation"
    if isinstance(module, models.ZeroPadShortcut):
        return f"subsample /{module.stride}, zero-pad +{module.extra_channels} ch", "shortcut"
    if isinstance(module, models.Scale):
        w = module.weight
        learnable = isinstance(w, nn.Parameter)
        if w.dim() > 0:
            return f"× per-channel γ ({w.numel()}), init {w.flatten()[0].item():g}", "scale"
        return (f"× learnable α, init {w.item():g}" if learnable else f"× {w.item():g}"), "scale"
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        kind = "max" if isinstance(module, nn.MaxPool2d) else "avg"
        return f"{kind}-pool {_pair(module.kernel_size)}, /{_stride(module.stride)}", "pool"
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return "global avg-pool", "pool"
    if isinstance(module, nn.Linear):
        return f"fc {module.in_features}→{module.out_features}", "linear"
    return type(module).__name__, "other"


# --- tracing ----------------------------------------------------------------------------------------------

class _Tracer(fx.Tracer):
    """Leaves are modules without children, plus ``stage_blocks`` (a net's blocks, drawn as one stage)."""

    def __init__(self, stage_blocks=frozenset()):
        super().__init__()
        self.stage_blocks = stage_blocks

    def is_leaf_module(self, m, qualname):
        return m in self.stage_blocks or not any(True for _ in m.children())


def _is_net(module: nn.Module) -> bool:
    return isinstance(getattr(module, "layer1", None), nn.Sequential)


def _stages(module: nn.Module) -> dict[nn.Module, str]:
    """Every block of a net, mapped to its stage's name (``layer1`` ...)."""
    return {block: name for name, stage in module.named_children() if name.startswith("layer")
            for block in stage.children()}


def _block_name(block: nn.Module) -> str:
    """A stage member's name: its class, or for a Sequential (a dense block) what it holds."""
    if isinstance(block, nn.Sequential):
        return " → ".join(_runs([type(m).__name__ for m in block]))
    return type(block).__name__


def _runs(names: list[str]) -> list[str]:
    """["A", "A", "B"] -> ["2 × A", "B"]."""
    out: list[list] = []
    for name in names:
        if out and out[-1][1] == name:
            out[-1][0] += 1
        else:
            out.append([1, name])
    return [f"{n} × {name}" if n > 1 else name for n, name in out]


def _example_input(module: nn.Module, size: int) -> torch.Tensor | None:
    """A one-image batch the module accepts: channels from its first conv or BatchNorm."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            return torch.zeros(1, m.in_channels, size, size)
        if isinstance(m, nn.BatchNorm2d):
            return torch.zeros(1, m.num_features, size, size)
    return None


def _shape(node: fx.Node) -> str:
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        return ""
    return "×".join(str(s) for s in meta.shape[1:])


def graph(obj, size: int = 32) -> Graph:
    """The computation graph of a block, a net (drawn as stages), or a ``NetConfig`` (its net).

    ``size`` is the side of the dummy image whose shapes label the edges."""
    module = models.Net(obj) if isinstance(obj, models.NetConfig) else obj
    if not isinstance(module, nn.Module):
        raise TypeError(f"diagrams.graph needs an nn.Module or a NetConfig, got {type(obj).__name__}")
    stage_of = _stages(module) if _is_net(module) else {}
    was_training = module.training
    module.eval()  # a stochastic block is traced as it is evaluated: no random branch dropping
    try:
        try:
            traced = fx.GraphModule(module, _Tracer(frozenset(stage_of)).trace(module))
        except Exception as err:  # fx's messages point into its internals; say what failed and why
            raise ValueError(f"cannot trace {type(module).__name__} with torch.fx ({type(err).__name__}: "
                             f"{str(err).splitlines()[0]}); a diagram needs a forward pass without "
                             "data-dependent control flow") from None
        example = _example_input(module, size)
        if example is not None:
            try:
                with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):  # ShapeProp prints tracebacks
                    ShapeProp(traced).propagate(example)
            except Exception as err:
                raise ValueError(f"a {size}x{size} input with {example.shape[1]} channels does not run through "
                                 f"{type(module).__name__} ({str(err).splitlines()[0]}); pass another size=") from None
    finally:
        module.train(was_training)
    return _collapse(_from_fx(traced, module, stage_of))


def _from_fx(traced: fx.GraphModule, module: nn.Module, stage_of: dict) -> Graph:
    g = Graph()
    submodules = dict(module.named_modules())
    for n in traced.graph.nodes:
        if n.op == "placeholder":
            g.nodes.append(Node(n.name, INPUT, INPUT))
        elif n.op == "output":
            g.nodes.append(Node(n.name, OUTPUT, OUTPUT))
        elif n.op == "call_module":
            m = submodules[n.target]
            if m in stage_of:
                label, kind = _block_name(m), "stage"
            else:
                label, kind = describe(m)
            g.nodes.append(Node(n.name, label, kind, n.target))
        elif n.op == "call_function" or n.op == "call_method":
            fn = n.target
            label, kind = FUNCTIONS.get(fn, (getattr(fn, "__name__", str(fn)), "other"))
            if kind == "scale":  # x * constant: show the constant, as a Scale module is shown
                const = [a for a in n.args if not isinstance(a, fx.Node)]
                label = f"× {const[0]:g}" if const and isinstance(const[0], (int, float)) else label
            g.nodes.append(Node(n.name, label, kind, f"fn:{getattr(fn, '__name__', fn)}"))
        else:  # get_attr: a parameter or buffer used directly (e.g. a scale's weight); drawn as an input
            g.nodes.append(Node(n.name, n.target, "other", n.target))
        for arg in n.all_input_nodes:
            g.edges.append((arg.name, n.name, _shape(arg)))
    return g


def _collapse(g: Graph) -> Graph:
    """Drops ``nn.Identity`` calls (an edge around them, labelled "identity" where it is a shortcut), and
    merges a net's consecutive blocks of one stage into one stage box."""
    out = Graph(list(g.nodes), list(g.edges))
    for node in [n for n in g.nodes if n.label == "Identity"]:
        ins = [(s, lab) for s, d, lab in out.edges if d == node.name]
        outs = [(d, lab) for s, d, lab in out.edges if s == node.name]
        out.edges = [e for e in out.edges if node.name not in e[:2]]
        out.nodes.remove(node)
        identity = "identity" if "shortcut" in node.target else ""
        for src, _ in ins:
            for dst, shape in outs:
                out.edges.append((src, dst, ", ".join(t for t in (identity, shape) if t)))
    stages = [n for n in out.nodes if n.kind == "stage"]
    groups: dict[str, list[Node]] = {}
    for n in stages:
        groups.setdefault(n.target.split(".")[0], []).append(n)
    for stage, members in groups.items():
        first, last = members[0], members[-1]
        merged = Node(first.name, f"{stage}: {', '.join(_runs([m.label for m in members]))}", "stage", stage)
        out.nodes[out.nodes.index(first)] = merged
        names = {m.name for m in members[1:]}
        out.nodes = [n for n in out.nodes if n.name not in names]
        inside = {m.name for m in members}
        edges = []
        for s, d, lab in out.edges:
            if s in inside and d in inside:
                continue
            edges.append((first.name if s == last.name else s, d, lab))
        out.edges = edges
    return out


# --- rendering --------------------------------------------------------------------------------------------

def _dot(g: Graph, title: str) -> graphviz.Digraph:
    dot = graphviz.Digraph(graph_attr={"rankdir": "TB", "fontname": "Helvetica", "fontsize": "12",
                                       "label": title, "labelloc": "t", "nodesep": "0.35", "ranksep": "0.3"},
                           node_attr={"fontname": "Helvetica", "fontsize": "11", "shape": "box",
                                      "style": "rounded,filled", "height": "0.3"},
                           edge_attr={"fontname": "Helvetica", "fontsize": "9", "fontcolor": "#555555"})
    shortcut = [n for n in g.nodes if n.target.startswith("shortcut")]
    for n in g.nodes:
        attrs = {"fillcolor": COLOURS.get(n.kind, "#ffffff")}
        if n.kind == ADD:
            attrs.update(shape="circle", width="0.35", fixedsize="true", fontsize="16")
        elif n.kind in (INPUT, OUTPUT):
            attrs.update(shape="plaintext", style="")
        if not shortcut or n not in shortcut:
            dot.node(n.name, n.label, **attrs)
    if shortcut:
        with dot.subgraph(name="cluster_shortcut") as sub:
            sub.attr(label="shortcut", style="dashed", color="#888888", fontsize="10")
            for n in shortcut:
                sub.node(n.name, n.label, fillcolor=COLOURS.get(n.kind, "#ffffff"))
    on_shortcut = {n.name for n in shortcut}
    arriving = {}
    for src, dst, label in g.edges:
        arriving.setdefault(dst, set()).add(label.removeprefix("identity, "))
    for src, dst, label in g.edges:  # a shape is written where it is new: at the input and after a change
        shape = label.removeprefix("identity, ")
        if src in arriving and shape in arriving[src]:
            label = label.removesuffix(shape).removesuffix(", ")
        style = "dashed" if src in on_shortcut or dst in on_shortcut or label.startswith("identity") else "solid"
        dot.edge(src, dst, label=f" {label}" if label else "", style=style)
    return dot


def _render(obj, title: str | None, size: int, format: str) -> tuple[Graph, bytes]:
    g = graph(obj, size)
    if title is None:
        title = type(obj).__name__ if not isinstance(obj, models.NetConfig) else "Net"
    try:
        return g, _dot(g, title).pipe(format=format)
    except graphviz.ExecutableNotFound:
        raise RuntimeError("diagrams need Graphviz's 'dot' program: apt-get install graphviz "
                           "(scripts/setup.sh installs it)") from None


def draw(obj, title: str | None = None, size: int = 32, path=None) -> Diagram:
    """Trace ``obj`` (a block, a net or a ``NetConfig``) and render its graph as SVG; ``path`` also saves it."""
    g, svg = _render(obj, title, size, "svg")
    diagram = Diagram(g, svg.decode("utf-8"))
    if path is not None:
        diagram.save(path)
    return diagram


def png(obj, title: str | None = None, size: int = 32) -> bytes:
    """``draw``'s picture as PNG bytes, for where an SVG cannot go: JupyterLab shows a markdown cell's image
    attachment only when it is a raster image (the assignments' task text carries its block this way)."""
    return _render(obj, title, size, "png")[1]


@dataclass
class Row:
    """Diagrams side by side, for comparing two blocks at a glance; plain HTML around the standalone SVGs."""

    diagrams: tuple[Diagram, ...]

    def _repr_html_(self):
        cells = "".join(f'<div style="flex:0 1 auto">{_inline(d.svg)}</div>' for d in self.diagrams)
        return f'<div style="display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start">{cells}</div>'

    def __repr__(self):
        return f"Row({', '.join(map(repr, self.diagrams))})"


def _inline(svg: str) -> str:
    """The <svg> element alone: an XML declaration or DOCTYPE may not stand inside HTML."""
    return svg[svg.index("<svg"):]


def side_by_side(*diagrams: Diagram) -> Row:
    return Row(diagrams)
