"""``prune_stream``: also delete the coupled stream channels of the paper's ResNet and DenseNet.

The paper's ResNet and DenseNet prune only what each BN reads (a channel selection before the BN);
the channels of the residual stream (ResNet) and of the concatenated feature map (DenseNet) stay,
written by every conv that writes them. A stream channel whose ξ is 0 in *every* BN reading it, and
that nothing reads outside a BN, influences the output only through those BNs' constant outputs
ReLU(β), which the slim network folds anyway: it can be deleted from every conv writing it, exactly.

Which streams can lose channels:

* ResNet (pre-activation bottleneck): a stage's stream is written by the stage's downsample conv and
  every block's conv3, and read through bn1 by the stage's later blocks, then by the next stage's
  first block — whose downsample 1×1 conv also reads it *raw* (no BN), and so needs every channel.
  Only the last stage's stream (``layer3.stream``, read by its blocks' bn1 and the final BN) can be
  pruned. The stem's and the first two stages' streams never lose a channel: no exact extension
  short of changing the architecture (a BN or ξ on the shortcut) frees them.
* DenseNet: each dense block's concatenated map (``block1.stream``, ...; the stem's or the previous
  transition's output, then each dense layer's growth channels) is read only through the selections
  of the later dense layers' bn1 and of the transition or final BN. Every block can be pruned.

Counting (:class:`~proxns_core.slim.PrunePlan`): an extended plan has one ``stream`` mask for every
stream of the network, pruned or not, so its ``channels_total`` is the BN channels plus all stream
channels and ``channels_pruned`` adds the deleted stream channels; :meth:`~PrunePlan.layers` lists
them as layers ``<stage>.stream``. The BN masks are unchanged, so the extended plan prunes strictly
more channels exactly when a stream channel is deleted (its pruned *fraction* is over the larger
total).
"""

from __future__ import annotations

import torch
from torch import nn

from .slim import PrunePlan


def extend_plan(model: nn.Module, plan: PrunePlan, multiple: int = 1) -> PrunePlan:
    """``plan`` plus the stream channels of ``model`` that it lets the slim network delete.

    ``plan`` is a per-BN plan of ``model`` (from :func:`~proxns_core.slim.plan_from_zero_mask` and
    :func:`~proxns_core.slim.round_plan`; round first: rounding re-keeps channels and drops streams).
    A stream channel is deleted when every BN reading it prunes it and no raw reader reads it. Each
    conv writing a stream keeps at least one of its output channels (a DenseNet layer whose growth
    channels no BN keeps still outputs one). With ``multiple`` > 1 each conv's kept outputs round up
    to a multiple of it (or all), re-keeping deletable channels in index order, as
    :func:`~proxns_core.slim.round_plan` does for the BNs. Networks without streams (VGG) get ``plan``
    back.
    """
    if not hasattr(model, "stream_units"):
        return plan
    stream: dict[str, torch.Tensor] = {}
    for unit in model.stream_units():
        deletable = torch.ones(unit["width"], dtype=torch.bool)
        if unit["raw_readers"]:
            deletable[:] = False
        for name, selection, _prefix in unit["readers"]:
            kept = plan.masks[name].to("cpu", torch.bool)
            deletable[selection.indices.cpu()[kept]] = False
        for _conv, first, stop in unit["producers"]:
            span = deletable[first:stop]  # a view: changes reach ``deletable``
            kept = int((~span).sum())
            target = min(span.numel(), max(1, -(-kept // max(multiple, 1)) * max(multiple, 1)))
            if target > kept:
                span[span.nonzero().flatten()[: target - kept]] = False
        stream[unit["name"]] = ~deletable
    return PrunePlan(dict(plan.masks), list(plan.kept_forced), stream)


def stream_pruned(plan: PrunePlan) -> int:
    """Stream channels ``plan`` deletes (0 for a plan without ``prune_stream``)."""
    return sum(int((~m).sum()) for m in plan.stream.values())
