"""The inference form of a network: BN folded into the convolutions that feed it, constants precomputed.

A slimmed network carries two run-time costs that FLOPs do not count: the BatchNorm after each
convolution, and the border-exact bias map of every :class:`ConstantFold` (deleted channels' constant
outputs). For deployment both fold away: ``BN(W*x + b + map)`` is ``(s·W)*x + s·(b − μ) + β + s·map``
with ``s = γ/√(var + ε)``, and the map depends only on the input size, so it becomes a buffer. What
is left per conv is one convolution with a bias, at most one add of a constant map, and the ReLU.
:func:`freeze_for_inference` then traces and freezes that graph so no Python runs per layer.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .models.layers import ConstantFold, FoldableConv2d
from .spec import INPUT_SIZE


class BiasMap(nn.Module):
    """A fixed per-position bias (a :class:`ConstantFold`'s map for one input size)."""

    def __init__(self, bias_map: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("bias_map", bias_map.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias_map


@torch.no_grad()
def fuse_for_inference(model: nn.Module, input_size: int = INPUT_SIZE) -> nn.Module:
    """An eval-only copy of ``model`` (VGG, ResNet or DenseNet, full or slim, or a torchvision network)
    with every conv→BN pair folded into the conv and every constant fold turned into a bias map for
    ``input_size`` inputs.

    The paper networks name their conv→BN pairs (``prune_units``); in any other network the pairs are
    found by tracing it with ``torch.fx``: a BN whose only input is a convolution's output that nothing
    else reads (if tracing fails, the BNs stay: TorchScript's freeze folds them anyway).
    Outputs equal ``model.eval()``'s up to float rounding; the copy can no longer be trained or slimmed.
    """
    fused = copy.deepcopy(model).eval()
    parents = {
        id(child): (parent, name) for parent in fused.modules() for name, child in parent.named_children()
    }
    if hasattr(fused, "prune_units"):
        pairs = [(u["producer"], u["bn"]) for u in fused.prune_units()]
    else:
        pairs = _traced_conv_bn_pairs(fused)
    for conv, bn in pairs:
        if conv is None:  # the BN reads a selection of a stream, not one conv's output
            continue
        _fold_bn_into_conv(conv, bn)
        parent, name = parents[id(bn)]
        setattr(parent, name, nn.Identity())
    _freeze_bias_maps(fused, input_size)
    return fused


class _LayerTracer(torch.fx.Tracer):
    """Traces down to convolutions (a FoldableConv2d with its fold stays one call), BNs and bias maps."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, (nn.Conv2d, nn.BatchNorm2d, ConstantFold, BiasMap)) or super().is_leaf_module(
            m, qualname
        )


def _traced_conv_bn_pairs(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """(conv, BN) pairs of ``model`` where the BN's input is the conv's output and nothing else reads
    it, each module called once; none when the network does not trace."""
    try:
        graph = _LayerTracer().trace(model)
    except Exception:  # noqa: BLE001 - an untraceable network keeps its BNs (correct, just slower)
        return []
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or type(modules.get(node.target)) is not nn.BatchNorm2d:
            continue
        src = node.args[0] if node.args else None
        if (
            isinstance(src, torch.fx.Node)
            and src.op == "call_module"
            and isinstance(modules.get(src.target), nn.Conv2d)
            and len(src.users) == 1
            and calls[src.target] == calls[node.target] == 1
            and modules[src.target].out_channels == modules[node.target].num_features
        ):
            pairs.append((modules[src.target], modules[node.target]))
    return pairs


def _fold_bn_into_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight = nn.Parameter(conv.weight * scale.reshape(-1, 1, 1, 1))
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
    if isinstance(conv, FoldableConv2d) and conv.fold is not None:
        conv.fold.kernel.mul_(scale.reshape(-1, 1, 1, 1))


def _freeze_bias_maps(model: nn.Module, input_size: int) -> None:
    """Replace each ConstantFold by the map it computes for this input size (found by one forward)."""
    folds = [m for m in model.modules() if isinstance(m, FoldableConv2d) and isinstance(m.fold, ConstantFold)]
    if not folds:
        return
    maps: dict[int, torch.Tensor] = {}
    hooks = [
        conv.fold.register_forward_hook(lambda m, _inp, out: maps.__setitem__(id(m), out.detach().clone()))
        for conv in folds
    ]
    device = next(model.parameters()).device
    try:
        model(torch.zeros(1, 3, input_size, input_size, device=device))
    finally:
        for h in hooks:
            h.remove()
    for conv in folds:
        conv.fold = BiasMap(maps[id(conv.fold)])


#: What PyTorch ≥ 2.10 says on each TorchScript call ("`torch.jit.trace` is deprecated. Please switch
#: to ..."); matched from the start of the message, so no other warning is hidden.
TORCHSCRIPT_DEPRECATION = r"`?torch\.jit\.\w+`? is deprecated"


@contextmanager
def quiet_torchscript_deprecation() -> Iterator[None]:
    """Silence exactly TorchScript's own deprecation notices (FutureWarning/DeprecationWarning), which
    users of the export cannot act on; every other warning still reaches them."""
    with warnings.catch_warnings():
        for category in (FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", message=TORCHSCRIPT_DEPRECATION, category=category)
        yield


@torch.no_grad()
def freeze_for_inference(
    model: nn.Module, input_size: int = INPUT_SIZE, batch_size: int = 1, channels_last: bool = False
) -> torch.jit.ScriptModule:
    """The fused network traced and frozen by TorchScript: weights become constants and no Python runs
    per layer. Loads with plain ``torch.jit.load`` once saved; inputs must be ``input_size`` square."""
    fused = fuse_for_inference(model, input_size)
    device = next(fused.parameters()).device
    x = torch.randn(batch_size, 3, input_size, input_size, device=device)
    if channels_last:
        fused = fused.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    with quiet_torchscript_deprecation(), warnings.catch_warnings():
        # The tracer flags ChannelSelection's test of its index count; that count is a constant of
        # the network, so the traced branch is the right one for every input.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # check_trace off: it traces twice more to compare; exports check the saved file's outputs anyway
        return torch.jit.freeze(torch.jit.trace(fused, x, check_trace=False))
