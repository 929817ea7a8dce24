"""The inference form: BN folded into convs, fold maps precomputed, frozen TorchScript — same outputs."""

import io

import pytest
import torch
from torch import nn

from proxns_core.inference import BiasMap, freeze_for_inference, fuse_for_inference
from proxns_core.models.layers import ConstantFold
from proxns_core.slim import slim_model

from .test_slim import CASES, _random_plan, _randomised


def _graph_ops(script: torch.jit.ScriptModule, kind: str) -> int:
    return sum(1 for n in script.graph.nodes() if n.kind() == kind)


@pytest.fixture(scope="module", params=CASES, ids=[f"{a}-{d}" for a, d, _ in CASES])
def networks(request):
    arch, depth, width = request.param
    model = _randomised(arch, depth, width)
    return model, slim_model(model, _random_plan(model))


def test_fused_network_equals_the_eval_network(networks):
    x = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    for net in networks:
        fused = fuse_for_inference(net)
        with torch.no_grad():
            expected, got = net(x), fused(x)
        assert (got - expected).abs().max().item() < 1e-5 * max(1.0, expected.abs().max().item())
        # every BN fed by one conv is gone; only BNs reading a selection of a stream (ResNet, DenseNet) stay
        producers = sum(1 for u in net.prune_units() if u["producer"] is not None)
        bns = lambda m: sum(isinstance(b, nn.BatchNorm2d) for b in m.modules())  # noqa: E731
        assert bns(fused) == bns(net) - producers
        assert not any(isinstance(m, ConstantFold) for m in fused.modules())


def test_fused_conv_is_the_closed_form_bn_fold():
    """W' = W·s, b' = (b − μ)·s + β, fold kernel K' = K·s with s = γ/√(var + ε)."""
    model = _randomised("vgg", 11, 0.5)
    slim = slim_model(model, _random_plan(model))
    conv, bn = slim.features[4], slim.features[5]
    assert conv.fold is not None
    fused = fuse_for_inference(slim)
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    torch.testing.assert_close(fused.features[4].weight, conv.weight * s[:, None, None, None])
    torch.testing.assert_close(fused.features[4].bias, bn.bias - bn.running_mean * s)
    assert isinstance(fused.features[5], nn.Identity)
    # the precomputed map is the scaled fold evaluated on this layer's 16×16 input
    expected_map = conv.fold(torch.zeros(1, conv.in_channels, 16, 16)) * s[None, :, None, None]
    assert isinstance(fused.features[4].fold, BiasMap)
    torch.testing.assert_close(fused.features[4].fold.bias_map, expected_map)


@pytest.mark.parametrize("channels_last", [False, True])
def test_frozen_network_reproduces_outputs_and_runs_one_conv_per_layer(networks, channels_last):
    x = torch.randn(9, 3, 32, 32, generator=torch.Generator().manual_seed(6))  # not the traced batch
    for net in networks:
        frozen = freeze_for_inference(net, batch_size=2, channels_last=channels_last)
        buffer = io.BytesIO()
        torch.jit.save(frozen, buffer)
        buffer.seek(0)
        reloaded = torch.jit.load(buffer)
        with torch.no_grad():
            expected = net(x)
            got = reloaded(x.to(memory_format=torch.channels_last) if channels_last else x)
        assert (got - expected).abs().max().item() < 1e-5 * max(1.0, expected.abs().max().item())
        # the fold maps are constants: no extra convolution of a map of ones at run time
        convs = sum(isinstance(m, nn.Conv2d) for m in net.modules())
        assert _graph_ops(reloaded, "aten::_convolution") + _graph_ops(reloaded, "aten::conv2d") == convs


def test_frozen_vgg_keeps_no_batch_norm():
    model = _randomised("vgg", 19, 0.25)
    frozen = freeze_for_inference(slim_model(model, _random_plan(model)))
    assert _graph_ops(frozen, "aten::batch_norm") == 0
    assert _graph_ops(frozen, "aten::_convolution") == 16


def test_slim_network_compiles_once_and_matches_eager():
    """torch.compile traces a slim network's constant folds into one graph: no recompile per call."""
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    model = _randomised("vgg", 11, 0.5)
    slim = slim_model(model, _random_plan(model))
    assert any(getattr(m, "fold", None) is not None for m in slim.modules())
    counter = CompileCounter()
    compiled = torch.compile(slim, backend=counter)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        expected = slim(x)
        outs = [compiled(x) for _ in range(5)]
    assert counter.frame_count == 1
    for out in outs:
        assert (out - expected).abs().max().item() < 1e-5


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_torchvision_networks_fuse_by_their_traced_conv_bn_pairs(name):
    """No ``prune_units`` there: the conv→BN pairs come from an fx trace; the slim network's border-exact
    folds become bias maps; outputs equal the eval network's (full and slim)."""
    from proxns_core.anynet import coupled_groups, plan_groups, slim_any

    from .test_anynet import _randomised as randomised_torchvision
    from .test_anynet import _zero_masks

    model = randomised_torchvision(name).eval()
    groups = coupled_groups(model, 32)
    slim, _ = slim_any(model, plan_groups(model, groups, _zero_masks(model, groups)), 32)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    for net in (model, slim):
        fused = fuse_for_inference(net, 32)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
        assert not any(isinstance(m, ConstantFold) for m in fused.modules())
        frozen = freeze_for_inference(net, 32)
        with torch.no_grad():
            assert (fused(x) - net(x)).abs().max() < 1e-4
            assert (frozen(x) - net(x)).abs().max() < 1e-4
