"""Proximal NS for torchvision networks: coupled channel groups from Torch-Pruning, exact slimming.

The paper's three networks (``models/``, ``slim.py``) know their own structure. A torchvision network
does not: its channels are coupled by residual additions, concatenations, depthwise convolutions and
squeeze-excitation. Torch-Pruning's :class:`DependencyGraph` (pinned in pyproject.toml) traces one
forward pass and returns the *groups* of coupled channels; a coupled channel can be deleted only as a
whole, from every layer of its group.

proxns deletes a coupled channel exactly when ξ is 0 in *every* BN of its group. In the masked network
(γ = 0 on those channels) such a channel then carries a constant wherever it is read (act(β), sums of
them along a residual stream, their average pool ...). Before deleting it, :func:`slim_any` measures
that constant at each consumer's input (a forward pass of the masked network) and folds it:

- into the consumer's bias when its contribution is the same at every output position (linear layers,
  1×1 or unpadded convolutions, any convolution on a 1×1 map);
- into a :class:`~proxns_core.models.layers.ConstantFold` (exact border-dependent map, any input size)
  for a zero-padded dense convolution;
- otherwise (a grouped padded convolution, or an input that is not constant, e.g. a channel scaled by
  squeeze-excitation) the mean is folded and the consumer is reported as inexact.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
import torch_pruning as tp
import torchvision
from torch import nn

from .models.layers import FoldableConv2d

TORCHVISION_ARCHS: tuple[str, ...] = (
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "vgg11_bn",
    "vgg16_bn",
    "densenet121",
    "efficientnet_b0",
    "regnet_x_400mf",
)

_CONST_RTOL = 1e-6  # a consumer input counts as constant when it varies less than this (relative)


def build_torchvision(name: str, num_classes: int) -> nn.Module:
    """``torchvision.models.<name>(weights=None, num_classes=num_classes)`` for a listed network."""
    if name not in TORCHVISION_ARCHS:
        raise ValueError(f"unknown torchvision arch {name!r}: allowed {', '.join(TORCHVISION_ARCHS)}")
    return getattr(torchvision.models, name)(weights=None, num_classes=num_classes)


@dataclass
class CoupledGroup:
    """Channels coupled across BN layers: position k of every ``bns`` entry is the same coupled channel.

    ``root`` is the module whose output channels Torch-Pruning rooted the group at; ``root_idxs[k]`` is
    coupled channel k's index there (used to re-derive the pruning group on a copy).
    """

    root: str
    root_idxs: list[int]
    bns: list[tuple[str, list[int]]]

    @property
    def size(self) -> int:
        return len(self.root_idxs)

    @property
    def bn_names(self) -> list[str]:
        return [n for n, _ in self.bns]


@dataclass
class AnyPlan:
    """Per group, the coupled channels (positions 0..size-1) to delete; groups kept from emptying."""

    groups: list[CoupledGroup]
    delete: list[list[int]]
    kept_forced: list[str] = field(default_factory=list)

    @property
    def channels_total(self) -> int:
        return sum(g.size for g in self.groups)

    @property
    def channels_pruned(self) -> int:
        return sum(len(d) for d in self.delete)


@dataclass
class SlimReport:
    """What :func:`slim_any` did: exact and inexact consumers, and the masked-vs-slim logit gap."""

    exact: list[str]
    inexact: dict[str, str]
    max_logit_gap: float
    params_full: int
    params_slim: int

    @property
    def all_exact(self) -> bool:
        return not self.inexact


def _dependency_graph(model: nn.Module, input_size: int) -> tp.DependencyGraph:
    example = torch.randn(1, 3, input_size, input_size)
    with torch.enable_grad():
        return tp.DependencyGraph().build_dependency(model, example_inputs=example, verbose=False)


def coupled_groups(model: nn.Module, input_size: int = 32) -> list[CoupledGroup]:
    """The groups of BN channels coupled in ``model``, from Torch-Pruning's traced dependency graph.

    Groups without a BatchNorm layer (the classifier's outputs, squeeze-excitation bottlenecks) have
    no ξ and are not returned.
    """
    names = {m: n for n, m in model.named_modules()}
    was_training = model.training
    model.eval()
    dg = _dependency_graph(model, input_size)
    groups = []
    for group in dg.get_all_groups(root_module_types=(nn.Conv2d, nn.Linear)):
        root = group[0].dep.target.module
        root_idxs = [int(i) for i in group[0].root_idxs]
        position = {r: k for k, r in enumerate(root_idxs)}
        bns: dict[str, list[int]] = {}
        for item in group:
            module = item.dep.target.module
            if not isinstance(module, nn.BatchNorm2d) or names[module] in bns:
                continue
            idxs = [-1] * len(root_idxs)
            for i, r in zip(item.idxs, item.root_idxs):
                idxs[position[int(r)]] = int(i)
            if -1 in idxs:  # a BN that reads only part of the group: not a coupling we handle
                raise ValueError(f"{names[module]} covers part of the group rooted at {names[root]}")
            bns[names[module]] = idxs
        if bns:
            groups.append(CoupledGroup(names[root], root_idxs, sorted(bns.items())))
    model.train(was_training)
    return groups


def zero_masks_from_gamma(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{bn name: γ == 0}`` for every BN of ``model`` (for tests and the masked network)."""
    return {
        n: (m.weight.detach() == 0).cpu() for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)
    }


def plan_groups(model: nn.Module, groups: list[CoupledGroup], zero_masks: dict[str, torch.Tensor]) -> AnyPlan:
    """proxns: delete a coupled channel exactly when ξ is 0 in every BN of its group.

    A group is never emptied: its strongest channel (largest Σ|γ| over the group's BNs) is kept and the
    group's root reported in ``kept_forced``.
    """
    bn = dict(model.named_modules())
    delete, forced = [], []
    for g in groups:
        dead = torch.ones(g.size, dtype=torch.bool)
        strength = torch.zeros(g.size)
        for name, idxs in g.bns:
            index = torch.tensor(idxs)
            dead &= zero_masks[name].to("cpu", torch.bool)[index]
            strength += bn[name].weight.detach().abs().cpu()[index]
        if bool(dead.all()):
            dead[int(strength.argmax())] = False
            forced.append(g.root)
        delete.append(torch.nonzero(dead).flatten().tolist())
    return AnyPlan(groups, delete, forced)


@torch.no_grad()
def apply_mask_any(model: nn.Module, plan: AnyPlan) -> nn.Module:
    """The masked network: a copy with γ = 0 on every BN channel of the deleted coupled channels."""
    masked = copy.deepcopy(model)
    modules = dict(masked.named_modules())
    for g, dele in zip(plan.groups, plan.delete):
        for name, idxs in g.bns:
            modules[name].weight[[idxs[k] for k in dele]] = 0
    return masked


def _pruning_group(dg: tp.DependencyGraph, modules: dict, g: CoupledGroup, dele: list[int]):
    root = modules[g.root]
    return dg.get_pruning_group(
        root, dg.get_pruner_of_module(root).prune_out_channels, [g.root_idxs[k] for k in dele]
    )


@torch.no_grad()
def slim_any(
    model: nn.Module, plan: AnyPlan, input_size: int = 32, check_batch: int = 4, fold: bool = True
) -> tuple[nn.Module, SlimReport]:
    """The physically slimmed copy of ``model`` (eval mode) and the report of its folds.

    ``fold=False`` deletes the channels with their constants, as Torch-Pruning alone does (for
    comparison only: the logits then differ from the masked network's).

    Folds are computed from the masked network on random inputs of ``input_size``; the logit gap in
    the report is measured on another batch of the same size.
    """
    model = model.eval()
    masked = apply_mask_any(model, plan).eval()
    slim = copy.deepcopy(model).eval()
    names = {m: n for n, m in slim.named_modules()}
    modules = dict(slim.named_modules())
    dg = _dependency_graph(slim, input_size)

    # 1. Which input channels each consumer loses, and which output channels each layer loses.
    lost_in: dict[str, set[int]] = {}
    lost_out: dict[str, set[int]] = {}
    unproved: dict[str, set[str]] = {}
    for g, dele in zip(plan.groups, plan.delete):
        if not dele:
            continue
        consumers, scaled = [], {}
        for item in _pruning_group(dg, modules, g, dele):
            module, fn = item.dep.target.module, item.dep.handler
            if not isinstance(module, (nn.Conv2d, nn.Linear)):
                continue
            depthwise = isinstance(module, nn.Conv2d) and module.groups == module.in_channels > 1
            if dg.is_in_channel_pruning_fn(fn) and not depthwise:
                lost_in.setdefault(names[module], set()).update(int(i) for i in item.idxs)
                consumers.append(names[module])
            if dg.is_out_channel_pruning_fn(fn) or depthwise:
                lost_out.setdefault(names[module], set()).update(int(i) for i in item.idxs)
                # A layer whose deleted outputs reach a conv/linear through no BN (squeeze-excitation's
                # fc2 scales the channel) makes the channel input-dependent: not provably constant.
                for reached in _layers_reached_unnormalised(dg.module2node[module]):
                    scaled.setdefault(reached, set()).add(names[module])
        for n in consumers:
            if modules[n] in scaled:
                unproved.setdefault(n, set()).update(scaled[modules[n]])

    # 2. The constants those consumers read, measured in the masked network.
    masked_modules = dict(masked.named_modules())
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        masked_modules[n].register_forward_pre_hook(lambda _m, inp, n=n: seen.__setitem__(n, inp[0].detach()))
        for n in lost_in
    ]
    gen = torch.Generator().manual_seed(0)
    masked(torch.randn(check_batch, 3, input_size, input_size, generator=gen))
    for h in hooks:
        h.remove()

    exact, inexact = [], {}
    folds: dict[str, tuple[str, torch.Tensor]] = {}
    for n, idx_set in lost_in.items():
        module, idxs = modules[n], sorted(idx_set)
        x = seen[n][:, idxs]
        flat = x.transpose(0, 1).reshape(len(idxs), -1)
        const = flat.mean(1)
        spread = (flat.amax(1) - flat.amin(1)).max().item() if flat.numel() else 0.0
        is_const = spread <= _CONST_RTOL * (1.0 + const.abs().max().item())
        if is_const and n in unproved and bool((const != 0).any()):
            is_const = False  # measured constant here, but scaled by an input-dependent factor in general
        keep_out = [o for o in range(_out_dim(module)) if o not in lost_out.get(n, set())]
        if isinstance(module, nn.Linear):
            folds[n] = ("bias", module.weight[:, idxs] @ const)
            (exact.append(n) if is_const else inexact.__setitem__(n, _why(n, unproved)))
            continue
        padded = any(int(q) > 0 for q in module.padding) and module.kernel_size != (1, 1)
        if not padded:
            # every output position sees the whole kernel: a per-channel shift, for any input size
            if module.groups == 1:
                contribution = torch.einsum("ocij,c->o", module.weight[:, idxs], const)
            else:
                contribution = _grouped_shift(module, idxs, const)
            folds[n] = ("bias", contribution[keep_out])
            (exact.append(n) if is_const else inexact.__setitem__(n, _why(n, unproved)))
        elif module.groups == 1 and _square(module):
            kernel = torch.einsum("ocij,c->oij", module.weight[:, idxs], const).unsqueeze(1)[keep_out]
            folds[n] = ("map", kernel)
            (exact.append(n) if is_const else inexact.__setitem__(n, _why(n, unproved)))
        else:
            x0 = torch.zeros(1, module.in_channels, *seen[n].shape[-2:])
            x0[0, idxs] = const[:, None, None]
            contribution = F.conv2d(
                x0, module.weight, None, module.stride, module.padding, module.dilation, module.groups
            )
            folds[n] = ("bias", contribution[0, keep_out].mean((1, 2)))
            inexact[n] = "grouped zero-padded convolution: border-dependent constant folded as its mean"

    # 3. Prune with Torch-Pruning, one group at a time (indices of later groups stay valid: they are
    # root indices, and Torch-Pruning re-maps concatenation offsets on each call).
    for g, dele in zip(plan.groups, plan.delete):
        if dele:
            _pruning_group(dg, modules, g, dele).prune(record_history=False)

    # 4. Apply the folds on the pruned consumers.
    for n, (kind, value) in folds.items() if fold else ():
        module = modules[n]
        if kind == "bias":
            if module.bias is None:
                module.bias = nn.Parameter(torch.zeros(_out_dim(module), dtype=module.weight.dtype))
            module.bias.data.add_(value)
        else:
            if type(module) is nn.Conv2d:
                module.__class__ = FoldableConv2d
                module.fold = None
            module.add_fold().kernel.add_(value)

    x = torch.randn(check_batch, 3, input_size, input_size, generator=gen)
    gap = (masked(x) - slim(x)).abs().max().item()
    report = SlimReport(
        exact=sorted(exact),
        inexact=inexact,
        max_logit_gap=gap,
        params_full=sum(p.numel() for p in model.parameters()),
        params_slim=sum(p.numel() for p in slim.parameters()),
    )
    return slim, report


def _layers_reached_unnormalised(node) -> set[nn.Module]:
    """The conv and linear layers that ``node``'s output reaches through no BatchNorm (e.g. an SE scale)."""
    stack, seen, reached = list(node.outputs), set(), set()
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n.module, nn.BatchNorm2d):
            continue
        if isinstance(n.module, (nn.Conv2d, nn.Linear)):
            reached.add(n.module)
            continue
        stack.extend(n.outputs)
    return reached


def _why(name: str, unproved: dict[str, set[str]]) -> str:
    if name in unproved:
        return (
            "input scaled by " + ", ".join(sorted(unproved[name])) + " (not constant in general): mean folded"
        )
    return "input not constant: mean folded"


def _grouped_shift(conv: nn.Conv2d, idxs: list[int], const: torch.Tensor) -> torch.Tensor:
    """Per output channel shift of constant inputs ``idxs`` through a grouped unpadded convolution."""
    per_in, per_out = conv.in_channels // conv.groups, conv.out_channels // conv.groups
    shift = torch.zeros(conv.out_channels, dtype=conv.weight.dtype)
    for i, c in zip(idxs, const):
        outs = slice((i // per_in) * per_out, (i // per_in + 1) * per_out)
        shift[outs] += conv.weight[outs, i % per_in].sum((1, 2)) * c
    return shift


def _out_dim(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def _square(conv: nn.Conv2d) -> bool:
    k, s, p, d = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    return (
        isinstance(p, tuple)
        and k[0] == k[1]
        and s[0] == s[1]
        and p[0] == p[1]
        and d == (1, 1)
        and conv.padding_mode == "zeros"
    )
