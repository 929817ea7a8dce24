"""Masking and true slimming: build the physically smaller network from the kept channels.

A deleted channel (γ = 0) still outputs the constant ReLU(b) in eval mode. Before deleting it we fold
that constant into its consumer: a linear layer's bias, or a convolution's :class:`ConstantFold`,
which is exact at the zero-padded borders too (docs/method.md, "What a slimmed channel leaves behind").
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from .models.layers import FoldableConv2d


@dataclass
class PrunePlan:
    """Per-BN keep masks, plus the layers where one channel was kept to avoid deleting them all.

    ``stream`` (empty unless :func:`proxns_core.stream.extend_plan` made the plan) holds keep masks of
    the coupled stream channels of a ResNet or DenseNet (``layer3.stream``, ``block1.stream``, ...):
    channels no BN reads that the slim network deletes from every conv writing them. They count as
    channels of their own, beside the BN channels, in the totals and in :meth:`layers`.
    """

    masks: dict[str, torch.Tensor]
    kept_forced: list[str] = field(default_factory=list)
    stream: dict[str, torch.Tensor] = field(default_factory=dict)

    def _all_masks(self) -> list[torch.Tensor]:
        return [*self.masks.values(), *self.stream.values()]

    @property
    def channels_total(self) -> int:
        return sum(m.numel() for m in self._all_masks())

    @property
    def channels_pruned(self) -> int:
        return sum(int((~m).sum()) for m in self._all_masks())

    def layers(self) -> list[dict]:
        return [
            {"name": n, "total": m.numel(), "kept": int(m.sum())}
            for n, m in [*self.masks.items(), *self.stream.items()]
        ]


def bn_layers(model: nn.Module) -> list[nn.BatchNorm2d]:
    """The prunable BN layers of ``model`` in network order."""
    return [u["bn"] for u in model.prune_units()]


def plan_from_zero_mask(model: nn.Module, zero: list[torch.Tensor]) -> PrunePlan:
    """Prune the channels flagged in ``zero`` (one bool tensor per BN); keep the strongest if all are."""
    masks, forced = {}, []
    for unit, z in zip(model.prune_units(), zero):
        keep = ~z.detach().to("cpu", torch.bool)
        if not keep.any():
            keep[int(unit["bn"].weight.detach().abs().argmax())] = True
            forced.append(unit["name"])
        masks[unit["name"]] = keep
    return PrunePlan(masks, forced)


def plan_by_threshold(model: nn.Module, ratio: float) -> PrunePlan:
    """Classic NS: prune the ``ratio`` share of channels with the smallest |γ|, globally."""
    gammas = [u["bn"].weight.detach().abs().cpu() for u in model.prune_units()]
    flat = torch.cat(gammas)
    n_prune = int(ratio * flat.numel())
    if n_prune == 0:
        return plan_from_zero_mask(model, [torch.zeros_like(g, dtype=torch.bool) for g in gammas])
    order = torch.argsort(flat, stable=True)
    pruned = torch.zeros(flat.numel(), dtype=torch.bool)
    pruned[order[:n_prune]] = True
    return plan_from_zero_mask(model, list(pruned.split([g.numel() for g in gammas])))


def round_plan(model: nn.Module, plan: PrunePlan, multiple: int) -> PrunePlan:
    """Keep, in each layer, the strongest pruned channels (by |γ|) until its kept count is a multiple
    of ``multiple`` (or all): convolution kernels run far faster on such widths."""
    if multiple <= 1:
        return plan
    masks = {}
    for unit in model.prune_units():
        keep = plan.masks[unit["name"]].clone()
        target = min(keep.numel(), -(-int(keep.sum()) // multiple) * multiple)
        missing = target - int(keep.sum())
        if missing > 0:
            strength = unit["bn"].weight.detach().abs().cpu().clone()
            strength[keep] = -1.0
            keep[torch.argsort(strength, descending=True, stable=True)[:missing]] = True
        masks[unit["name"]] = keep
    return PrunePlan(masks, list(plan.kept_forced))


@torch.no_grad()
def apply_mask(model: nn.Module, plan: PrunePlan) -> nn.Module:
    """The masked network: a copy with γ = 0 on pruned channels, nothing deleted."""
    masked = copy.deepcopy(model)
    for unit in masked.prune_units():
        keep = plan.masks[unit["name"]].to(unit["bn"].weight.device)
        unit["bn"].weight[~keep] = 0
    return masked


@torch.no_grad()
def slim_model(model: nn.Module, plan: PrunePlan) -> nn.Module:
    """The slimmed network: same class, smaller cfg, equal in eval mode to ``apply_mask(model, plan)``."""
    slim = copy.deepcopy(model).eval()
    streams = _stream_deletions(slim, plan)  # read before the selections change
    for unit in slim.prune_units():
        _slim_unit(unit, plan.masks[unit["name"]].to(unit["bn"].weight.device))
    for stream, keep in streams:
        _slim_stream(stream, keep)
    slim.cfg = slim.current_cfg()
    return slim


def _stream_deletions(model: nn.Module, plan: PrunePlan) -> list[tuple[dict, torch.Tensor]]:
    """The streams of ``model`` that ``plan`` deletes channels from, checked: a deleted channel must be
    pruned in every BN that reads it and read by nothing else (else the slim net would differ)."""
    if not plan.stream or all(bool(m.all()) for m in plan.stream.values()):
        return []
    if not hasattr(model, "stream_units"):
        raise ValueError(f"{type(model).__name__} has no streams to delete channels from")
    found = []
    for stream in model.stream_units():
        keep = plan.stream.get(stream["name"])
        if keep is None or bool(keep.all()):
            continue
        keep = keep.detach().to("cpu", torch.bool)
        if keep.numel() != stream["width"]:
            raise ValueError(
                f"{stream['name']}: mask of {keep.numel()} channels, stream has {stream['width']}"
            )
        if stream["raw_readers"]:
            raise ValueError(f"{stream['name']} is read outside a BN: none of its channels can be deleted")
        for name, selection, _prefix in stream["readers"]:
            read = selection.indices.cpu()[plan.masks[name].to("cpu", torch.bool)]
            if not bool(keep[read].all()):
                raise ValueError(f"{stream['name']}: a deleted channel is kept by {name}")
        found.append((stream, keep))
    unknown = set(plan.stream) - {s["name"] for s in model.stream_units()}
    if unknown:
        raise ValueError(f"no such streams: {sorted(unknown)}")
    return found


def _slim_stream(stream: dict, keep: torch.Tensor) -> None:
    """Delete the stream channels ``keep`` drops: their rows in every conv writing them (with fold rows
    and folded biases); each reader's selection (which no longer selects them) is re-indexed."""
    for conv, first, stop in stream["producers"]:
        _slice_outputs(conv, keep[first:stop].to(conv.weight.device))
    for _name, selection, prefix in stream["readers"]:
        position = torch.cumsum(keep[:prefix].long(), 0) - 1  # new index of each kept channel
        selection.indices = position.to(selection.indices.device)[selection.indices].clone()
        selection.num_channels = int(keep[:prefix].sum())


def _slim_unit(unit: dict, keep: torch.Tensor) -> None:
    bn: nn.BatchNorm2d = unit["bn"]
    const = torch.relu(bn.bias[~keep])
    if unit["selection"] is not None:
        # the BN normalises the selected channels: keep a subset of the selection
        unit["selection"].indices = unit["selection"].indices[keep].clone()
    else:
        _slice_outputs(unit["producer"], keep)
    _slice_bn(bn, keep)
    _fold_and_slice_inputs(unit["consumer"], keep, const, unit.get("consumer_bn"))


def _slice_outputs(conv: nn.Conv2d, keep: torch.Tensor) -> None:
    conv.weight = nn.Parameter(conv.weight[keep].clone())
    if conv.bias is not None:
        conv.bias = nn.Parameter(conv.bias[keep].clone())
    if isinstance(conv, FoldableConv2d) and conv.fold is not None:
        conv.fold.kernel = conv.fold.kernel[keep].clone()
    conv.out_channels = int(keep.sum())


def _slice_bn(bn: nn.BatchNorm2d, keep: torch.Tensor) -> None:
    bn.weight = nn.Parameter(bn.weight[keep].clone())
    bn.bias = nn.Parameter(bn.bias[keep].clone())
    bn.running_mean = bn.running_mean[keep].clone()
    bn.running_var = bn.running_var[keep].clone()
    bn.num_features = int(keep.sum())


def _conv_bias(conv: nn.Conv2d) -> torch.Tensor:
    """The convolution's bias, created (zero) if it had none."""
    if conv.bias is None:
        conv.bias = nn.Parameter(
            torch.zeros(conv.out_channels, device=conv.weight.device, dtype=conv.weight.dtype)
        )
    return conv.bias.data


def _fold_and_slice_inputs(
    consumer: nn.Module, keep: torch.Tensor, const: torch.Tensor, consumer_bn: nn.BatchNorm2d | None = None
) -> None:
    w = consumer.weight
    if isinstance(consumer, nn.Linear):
        if const.numel():
            consumer.bias.add_(w[:, ~keep] @ const)
        consumer.weight = nn.Parameter(w[:, keep].clone())
        consumer.in_features = int(keep.sum())
        return
    if not isinstance(consumer, FoldableConv2d):
        raise TypeError(f"cannot fold into {type(consumer).__name__}")
    if const.numel() and bool((const != 0).any()):
        contribution = torch.einsum("ocij,c->oij", w[:, ~keep], const).unsqueeze(1)
        if consumer.kernel_size == (1, 1) and consumer.padding == (0, 0):
            # A 1×1 convolution without padding sees the constant everywhere: a per-channel shift,
            # absorbed at no run-time cost by the next BN's running mean, or else by a conv bias.
            shift = contribution.reshape(-1)
            if consumer_bn is not None:
                consumer_bn.running_mean.sub_(shift)
            else:
                _conv_bias(consumer).add_(shift)
        else:
            consumer.add_fold().kernel.add_(contribution)
    consumer.weight = nn.Parameter(w[:, keep].clone())
    consumer.in_channels = int(keep.sum())


def attach_folds(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Create the fold modules and folded conv biases named in a saved ``state`` so that it loads strictly."""
    modules = dict(model.named_modules())
    for key in state:
        if key.endswith(".fold.kernel"):
            modules[key[: -len(".fold.kernel")]].add_fold()
        elif key.endswith(".bias") and key not in model.state_dict():
            _conv_bias(modules[key[: -len(".bias")]])
