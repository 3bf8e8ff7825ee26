"""Interactive widgets for the chapters: the gradient-flow explorer, training a few steps, deleting blocks.

Each widget is a thin ipywidgets view over plain functions (settings in, numbers out), so the logic is tested
headless and the views only wire controls to those functions. The parts:

- ``flow``: the explorer's settings and numbers, cached per setting and computed ahead (warm-up);
- ``figures``: matplotlib figures rendered to PNG in milliseconds (blitting over a cached background);
- ``controls``: the controls the explorer and the trainer share, and the panel with a static PNG fallback;
- ``explorer``, ``trainer``, ``deletion``: the three widgets;
- ``static``, ``anyflow``: the explorer's numbers over a grid for a static page, and ``flow_view.js``, its
  front end there and, as an anywidget (``flow_view()``), in JupyterLab;
- ``background``: the threads they run in, stopped before Python exits.
"""
from .anyflow import FlowView, flow_view
from .deletion import BlockDeletion, block_deletion, deletion_result, reference_deletions
from .explorer import GradientFlowExplorer, gradient_flow_explorer
from .figures import log_limits
from .flow import (MAX_DEPTH, MAX_SCALE, SCALE_STEP, FlowSettings, activation_growth, describe_ratio,
                   gradient_flow, gradient_ratio, likely_next, one_step)
from .trainer import TRAIN_START, TrainFewSteps, train_few_steps, train_steps

__all__ = ["FlowView", "flow_view", "BlockDeletion", "GradientFlowExplorer", "TrainFewSteps", "block_deletion", "deletion_result",
           "gradient_flow_explorer", "reference_deletions", "train_few_steps", "train_steps", "FlowSettings",
           "gradient_flow", "gradient_ratio", "activation_growth", "describe_ratio", "likely_next", "one_step",
           "log_limits", "MAX_DEPTH", "MAX_SCALE", "SCALE_STEP", "TRAIN_START"]
