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
  for a zero-padded convolution, dense or grouped;
- otherwise (a non-square or dilated padded convolution, or an input that is not constant, e.g. a
  channel scaled by squeeze-excitation) the mean is folded and the consumer is reported as inexact.

Grouped (not depthwise) convolutions, as in RegNet: Torch-Pruning 1.6.1 deletes a grouped conv's
inputs at the same in-group positions of every conv group, and the conv needs as many outputs in each
conv group. Plans are narrowed to that (:func:`align_grouped`): an input position is deleted only where
its channels are deletable in every conv group, outputs in equal numbers per conv group (the weakest
by Σ|γ|). Narrowing only keeps channels, so "delete only where ξ is 0 in every BN" still holds.

Reload: :meth:`AnyPlan.pruned_roots` (stored in slim.json) and :func:`rebuild_slim` rebuild the slim
network's shapes from the full one by pruning the same root indices again, without unpickling anything.
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
from .spec import TORCHVISION_ARCHS

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
    #: grouped (not depthwise) convolutions whose *inputs* or *outputs* are this group's channels:
    #: ``(conv name, its channel index per coupled channel, channels per conv group)``. Torch-Pruning
    #: 1.6.1 slices a grouped conv's inputs at the same in-group positions of every conv group, and a
    #: grouped conv needs as many outputs in each conv group: plans are aligned to that (:func:`align_grouped`).
    grouped_in: list[tuple[str, list[int], int]] = field(default_factory=list)
    grouped_out: list[tuple[str, list[int], int]] = field(default_factory=list)

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
    #: every BN of the network (name → channels) in module order, for :meth:`layers`
    bn_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def channels_total(self) -> int:
        """Coupled channels: a channel shared by several BNs (a residual stream, a concatenation) counts once."""
        return sum(g.size for g in self.groups)

    @property
    def channels_pruned(self) -> int:
        """Deleted coupled channels (each counted once, however many BNs it spans)."""
        return sum(len(d) for d in self.delete)

    def deleted_per_bn(self) -> dict[str, set[int]]:
        """``{bn name: its deleted channel indices}`` (a BN reading a concatenation spans several groups)."""
        out: dict[str, set[int]] = {}
        for g, dele in zip(self.groups, self.delete):
            for name, idxs in g.bns:
                out.setdefault(name, set()).update(idxs[k] for k in dele)
        return out

    def layers(self) -> list[dict]:
        """Per BN layer (module order): name, channels, channels kept (as ``PrunePlan.layers``)."""
        deleted = self.deleted_per_bn()
        return [
            {"name": n, "total": total, "kept": total - len(deleted.get(n, ()))}
            for n, total in self.bn_sizes.items()
        ]

    def pruned_roots(self) -> list[list]:
        """``[[root module, [deleted root indices]], ...]`` for the groups that lose channels, in plan
        order: what :func:`rebuild_slim` needs to rebuild the slimmed network's shapes (slim.json)."""
        return [[g.root, [g.root_idxs[k] for k in dele]] for g, dele in zip(self.groups, self.delete) if dele]


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
        grouped_in: dict[str, tuple[list[int], int]] = {}
        grouped_out: dict[str, tuple[list[int], int]] = {}
        for item in group:
            module = item.dep.target.module
            idxs = [-1] * len(root_idxs)
            for i, r in zip(item.idxs, item.root_idxs):
                idxs[position[int(r)]] = int(i)
            if _grouped(module):
                fn = item.dep.handler
                if dg.is_in_channel_pruning_fn(fn):
                    grouped_in[names[module]] = (idxs, module.in_channels // module.groups)
                elif dg.is_out_channel_pruning_fn(fn):
                    grouped_out[names[module]] = (idxs, module.out_channels // module.groups)
            if not isinstance(module, nn.BatchNorm2d) or names[module] in bns:
                continue
            if -1 in idxs:  # a BN that reads only part of the group: not a coupling we handle
                raise ValueError(f"{names[module]} covers part of the group rooted at {names[root]}")
            bns[names[module]] = idxs
        if bns:
            groups.append(
                CoupledGroup(
                    names[root],
                    root_idxs,
                    sorted(bns.items()),
                    [(n, i, per) for n, (i, per) in sorted(grouped_in.items())],
                    [(n, i, per) for n, (i, per) in sorted(grouped_out.items())],
                )
            )
    model.train(was_training)
    return groups


def zero_masks_from_gamma(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{bn name: γ == 0}`` for every BN of ``model`` (for tests and the masked network)."""
    return {
        n: (m.weight.detach() == 0).cpu() for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)
    }


def bn_modules(model: nn.Module) -> list[tuple[str, nn.BatchNorm2d]]:
    """Every ``nn.BatchNorm2d`` of ``model`` with its name, in module order (what NS and proxns act on)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]


def _bn_sizes(model: nn.Module) -> dict[str, int]:
    return {n: m.num_features for n, m in bn_modules(model)}


def group_strength(model: nn.Module, g: CoupledGroup) -> torch.Tensor:
    """Σ|γ| over the group's BNs, per coupled channel."""
    bn = dict(model.named_modules())
    strength = torch.zeros(g.size)
    for name, idxs in g.bns:
        strength += bn[name].weight.detach().abs().float().cpu()[torch.tensor(idxs)]
    return strength


def _grouped(module: nn.Module) -> bool:
    """A grouped convolution that is not depthwise (depthwise ones Torch-Pruning couples in and out)."""
    return (
        isinstance(module, nn.Conv2d)
        and module.groups > 1
        and not (module.groups == module.in_channels == module.out_channels)
    )


def align_grouped(model: nn.Module, g: CoupledGroup, dead: torch.Tensor) -> torch.Tensor:
    """``dead`` (per coupled channel) narrowed to what a grouped convolution can lose exactly: as its
    inputs, an in-group position only when it is deletable in every conv group; as its outputs, the
    same number in every conv group (the strongest, by Σ|γ|, are kept). Only ever keeps more."""
    dead = dead.clone()
    if not (g.grouped_in or g.grouped_out) or not bool(dead.any()):
        return dead
    for _name, idxs, per in g.grouped_in:
        index = torch.tensor(idxs)
        position = index % per
        for p in position[dead].unique().tolist():
            at = position == p
            if not bool(dead[at].all()):
                dead[at] = False
    strength = None
    for _name, idxs, per in g.grouped_out:
        conv_group = torch.tensor(idxs) // per
        counts = [int(dead[conv_group == j].sum()) for j in range(int(conv_group.max()) + 1)]
        if len(set(counts)) > 1:
            strength = group_strength(model, g) if strength is None else strength
            n = min(counts)
            for j in range(len(counts)):
                members = torch.nonzero(dead & (conv_group == j)).flatten()
                weakest = members[torch.argsort(strength[members], stable=True)[:n]]
                dead[members] = False
                dead[weakest] = True
    if g.grouped_in and g.grouped_out and bool(dead.any()):
        return align_grouped(model, g, dead)  # the second rule may have broken the first: once more
    return dead


def _never_empty(model: nn.Module, groups: list[CoupledGroup], dead: list[torch.Tensor]) -> AnyPlan:
    delete, forced = [], []
    dead = [align_grouped(model, g, d) for g, d in zip(groups, dead)]
    for g, d in zip(groups, dead):
        if bool(d.all()):
            d = d.clone()
            d[int(group_strength(model, g).argmax())] = False
            d = align_grouped(model, g, d)
            forced.append(g.root)
        delete.append(torch.nonzero(d).flatten().tolist())
    return AnyPlan(groups, delete, forced, _bn_sizes(model))


def plan_groups(model: nn.Module, groups: list[CoupledGroup], zero_masks: dict[str, torch.Tensor]) -> AnyPlan:
    """proxns: delete a coupled channel exactly when ξ is 0 in every BN of its group.

    A group is never emptied: its strongest channel (largest Σ|γ| over the group's BNs) is kept and the
    group's root reported in ``kept_forced``.
    """
    dead = []
    for g in groups:
        d = torch.ones(g.size, dtype=torch.bool)
        for name, idxs in g.bns:
            d &= zero_masks[name].to("cpu", torch.bool)[torch.tensor(idxs)]
        dead.append(d)
    return _never_empty(model, groups, dead)


def plan_nothing(model: nn.Module, groups: list[CoupledGroup]) -> AnyPlan:
    """The baseline's plan: nothing deleted."""
    return AnyPlan(groups, [[] for _ in groups], [], _bn_sizes(model))


def plan_groups_by_threshold(model: nn.Module, groups: list[CoupledGroup], ratio: float) -> AnyPlan:
    """Classic NS on a traced network: a coupled channel's score is the *mean* |γ| over the BNs of its
    group (a stream channel read by many BNs is neither favoured nor penalised for their number); the
    ``ratio`` share of coupled channels with the lowest score is deleted, globally (ties: module order).
    A group is never emptied (its strongest channel kept, reported in ``kept_forced``)."""
    scores = [group_strength(model, g) / max(1, len(g.bns)) for g in groups]
    if not scores:
        return plan_nothing(model, groups)
    flat = torch.cat(scores)
    n_prune = int(ratio * flat.numel())
    pruned = torch.zeros(flat.numel(), dtype=torch.bool)
    pruned[torch.argsort(flat, stable=True)[:n_prune]] = True
    return _never_empty(model, groups, list(pruned.split([g.size for g in groups])))


def round_any_plan(model: nn.Module, plan: AnyPlan, multiple: int) -> AnyPlan:
    """Keep, in each coupled group, its strongest deleted channels (Σ|γ|) until the kept count is a
    multiple of ``multiple`` (or the whole group): the widths of the group's convolutions then are."""
    if multiple <= 1:
        return plan
    delete = []
    for g, dele in zip(plan.groups, plan.delete):
        kept = g.size - len(dele)
        missing = min(g.size, -(-kept // multiple) * multiple) - kept
        if missing > 0:
            strength = group_strength(model, g)
            order = sorted(dele, key=lambda k: (-float(strength[k]), k))
            rekept = set(order[:missing])
            dele = [k for k in dele if k not in rekept]
        if (g.grouped_in or g.grouped_out) and dele:
            # a grouped convolution's alignment comes first (it may leave a count off the multiple)
            dead = torch.zeros(g.size, dtype=torch.bool)
            dead[dele] = True
            dele = torch.nonzero(align_grouped(model, g, dead)).flatten().tolist()
        delete.append(list(dele))
    return AnyPlan(plan.groups, delete, list(plan.kept_forced), dict(plan.bn_sizes))


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
    was_training = model.training
    try:
        return _slim_any(model.eval(), plan, input_size, check_batch, fold)
    finally:
        model.train(was_training)  # the caller's network keeps its mode


def _slim_any(
    model: nn.Module, plan: AnyPlan, input_size: int, check_batch: int, fold: bool
) -> tuple[nn.Module, SlimReport]:
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
        elif _square(module):
            folds[n] = ("map", _fold_kernel(module, idxs, const)[keep_out])
            (exact.append(n) if is_const else inexact.__setitem__(n, _why(n, unproved)))
        else:
            x0 = torch.zeros(1, module.in_channels, *seen[n].shape[-2:])
            x0[0, idxs] = const[:, None, None]
            contribution = F.conv2d(
                x0, module.weight, None, module.stride, module.padding, module.dilation, module.groups
            )
            folds[n] = ("bias", contribution[0, keep_out].mean((1, 2)))
            inexact[n] = (
                "non-square or dilated zero-padded convolution: border-dependent constant folded as its mean"
            )

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
    if not fold:  # nothing was folded: every consumer of a deleted constant lost it
        inexact = {**dict.fromkeys(exact, "constant dropped (fold=False)"), **inexact}
        exact = []
    report = SlimReport(
        exact=sorted(exact),
        inexact=inexact,
        max_logit_gap=gap,
        params_full=sum(p.numel() for p in model.parameters()),
        params_slim=sum(p.numel() for p in slim.parameters()),
    )
    return slim, report


@torch.no_grad()
def prune_roots(model: nn.Module, pruned: list[list], input_size: int = 32) -> nn.Module:
    """Delete, in place and without folds, the channels ``[[root module, [root indices]], ...]``
    (:meth:`AnyPlan.pruned_roots`) with Torch-Pruning, in that order, as :func:`slim_any` does."""
    model.eval()
    dg = _dependency_graph(model, input_size)
    modules = dict(model.named_modules())
    for root, idxs in pruned:
        if idxs:
            r = modules[root]
            dg.get_pruning_group(r, dg.get_pruner_of_module(r).prune_out_channels, list(idxs)).prune(
                record_history=False
            )
    return model


def attach_folds_any(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Create the folds :func:`slim_any` made that a saved ``state`` names, so that it loads strictly:
    a ``<conv>.fold.kernel`` (the conv becomes a :class:`FoldableConv2d`) and a ``<conv or linear>.bias``
    the layer did not have."""
    modules = dict(model.named_modules())
    own = model.state_dict()
    for key, value in state.items():
        if key.endswith(".fold.kernel"):
            module = modules[key[: -len(".fold.kernel")]]
            if type(module) is nn.Conv2d:
                module.__class__ = FoldableConv2d
                module.fold = None
            module.add_fold()
        elif key.endswith(".bias") and key not in own:
            module = modules[key[: -len(".bias")]]
            module.bias = nn.Parameter(torch.zeros(_out_dim(module), dtype=value.dtype))


def rebuild_slim(
    arch: str, num_classes: int, pruned: list[list], input_size: int, state: dict | None = None
) -> nn.Module:
    """The slimmed torchvision network from its description (slim.json): the full network, re-traced at
    ``input_size`` and pruned at the same root indices, with the folds ``state`` names; ``state`` is
    then loaded strictly. No module is unpickled."""
    model = prune_roots(build_torchvision(arch, num_classes), pruned, input_size)
    if state is not None:
        attach_folds_any(model, state)
        model.load_state_dict(state)
    return model.eval()


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


def _fold_kernel(conv: nn.Conv2d, idxs: list[int], const: torch.Tensor) -> torch.Tensor:
    """The (out, 1, k, k) kernel that, convolved with a map of ones, gives constant inputs ``idxs``'
    contribution to every output of ``conv`` (grouped or not), borders included."""
    if conv.groups == 1:
        return torch.einsum("ocij,c->oij", conv.weight[:, idxs], const).unsqueeze(1)
    per_in, per_out = conv.in_channels // conv.groups, conv.out_channels // conv.groups
    kernel = torch.zeros(conv.out_channels, 1, *conv.weight.shape[-2:], dtype=conv.weight.dtype)
    for i, c in zip(idxs, const):
        outs = slice((i // per_in) * per_out, (i // per_in + 1) * per_out)
        kernel[outs, 0] += conv.weight[outs, i % per_in] * c
    return kernel


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
