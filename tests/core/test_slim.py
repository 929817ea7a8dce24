"""True slimming equals the masked network (γ zeroed, nothing deleted), and really is smaller."""

import pytest
import torch
from torch import nn

from proxns_core.measure import count_flops, count_params
from proxns_core.models import build_model
from proxns_core.slim import apply_mask, attach_folds, plan_from_zero_mask, round_plan, slim_model

CASES = [("vgg", 11, 0.5), ("vgg", 19, 0.25), ("resnet", 20, 0.5), ("densenet", 13, 0.5)]


def randomise_bn(model: nn.Module) -> nn.Module:
    """Random BN γ, biases and running statistics, as after training (biases fold into consumers);
    returns ``model`` in eval mode."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.2, 1.0)
                m.bias.normal_(0.0, 0.5)
                m.running_mean.normal_(0.0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _randomised(arch, depth, width, seed=0):
    """A network with random BN biases and statistics, as after training (biases fold into consumers)."""
    torch.manual_seed(seed)
    return randomise_bn(build_model(arch, depth, 10, width=width))


def _random_plan(model, share=0.5, seed=1):
    g = torch.Generator().manual_seed(seed)
    zero = [torch.rand(u["bn"].num_features, generator=g) < share for u in model.prune_units()]
    return plan_from_zero_mask(model, zero)


@pytest.mark.parametrize("arch,depth,width", CASES)
def test_slimmed_network_matches_masked_network_outputs(arch, depth, width):
    model = _randomised(arch, depth, width)
    plan = _random_plan(model)
    masked, slim = apply_mask(model, plan).eval(), slim_model(model, plan).eval()
    x = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out_masked, out_slim = masked(x), slim(x)
    assert plan.channels_pruned > 0.3 * plan.channels_total
    # Exact folding, borders included: logits agree everywhere, not only through 1×1 consumers.
    assert (out_masked - out_slim).abs().max().item() < 1e-4
    assert torch.equal(out_masked.argmax(1), out_slim.argmax(1))
    assert type(slim) is type(model) and slim.cfg != model.cfg
    assert count_params(slim) < count_params(model) and count_flops(slim) < count_flops(model)


def test_dropping_deleted_channels_biases_would_change_outputs():
    """The fold matters: deleting channels without their constant output breaks the equality."""
    model = _randomised("vgg", 11, 0.5)
    plan = _random_plan(model)
    slim = slim_model(model, plan)
    with torch.no_grad():
        for m in slim.modules():
            if getattr(m, "fold", None) is not None:
                m.fold.kernel.zero_()
    x = torch.randn(16, 3, 32, 32)
    with torch.no_grad():
        assert (apply_mask(model, plan).eval()(x) - slim.eval()(x)).abs().max().item() > 1e-2


@pytest.mark.parametrize("arch,depth,width", CASES)
def test_slimmed_network_is_rebuilt_from_its_cfg(arch, depth, width):
    model = _randomised(arch, depth, width)
    slim = slim_model(model, _random_plan(model))
    rebuilt = build_model(arch, depth, 10, cfg=slim.cfg, width=width)
    state = slim.state_dict()
    folded = {k for k in state if k.endswith("fold.kernel")} | (set(state) - set(rebuilt.state_dict()))
    # the cfg fixes every shape; only folded constants (fold kernels, 1×1 conv biases) are added on load
    assert {k: v.shape for k, v in state.items() if k not in folded} == {
        k: v.shape for k, v in rebuilt.state_dict().items()
    }
    attach_folds(rebuilt, state)
    rebuilt.load_state_dict(state)  # strict
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), slim.eval()(x))


def test_slim_vgg_parameter_count_equals_its_tensor_sizes():
    model = _randomised("vgg", 11, 0.5)
    plan = _random_plan(model)
    slim = slim_model(model, plan)
    kept = [m.sum().item() for m in plan.masks.values()]
    expected, c_in = 0, 3
    for c in kept:  # 3×3 conv without bias + BN γ and β
        expected += 9 * c_in * c + 2 * c
        c_in = c
    expected += c_in * 10 + 10  # the linear classifier
    assert count_params(slim) == expected == sum(t.numel() for t in slim.parameters())
    assert [c for c in slim.cfg if c != "M"] == kept


def test_flops_of_vgg_are_the_conv_and_linear_multiply_adds():
    model = build_model("vgg", 11, 10, cfg=[4, "M", 8, "M", 8, "M", 8, "M", 8], width=1.0)
    expected = (
        32 * 32 * 4 * 3 * 9
        + 16 * 16 * 8 * 4 * 9
        + 8 * 8 * 8 * 8 * 9
        + 4 * 4 * 8 * 8 * 9
        + 2 * 2 * 8 * 8 * 9
        + 8 * 10
    )  # conv maps shrink 32→16→8→4→2; then the 8→10 linear
    assert count_flops(model) == expected


def test_a_fully_pruned_layer_keeps_its_strongest_channel_and_reports_it():
    model = _randomised("vgg", 11, 0.5)
    units = model.prune_units()
    with torch.no_grad():
        units[2]["bn"].weight[5] = 3.0
    zero = [torch.zeros(u["bn"].num_features, dtype=torch.bool) for u in units]
    zero[2][:] = True
    plan = plan_from_zero_mask(model, zero)
    assert plan.kept_forced == [units[2]["name"]]
    assert plan.masks[units[2]["name"]].nonzero().flatten().tolist() == [5]
    slim = slim_model(model, plan)
    assert slim.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_rounded_plan_keeps_multiples_of_eight_by_re_keeping_the_strongest_channels():
    model = _randomised("vgg", 11, 0.5)
    plan = _random_plan(model)
    rounded = round_plan(model, plan, 8)
    for unit in model.prune_units():
        before, after = plan.masks[unit["name"]], rounded.masks[unit["name"]]
        total, kept = after.numel(), int(after.sum())
        assert kept % 8 == 0 or kept == total
        assert kept - int(before.sum()) < 8 and bool(
            (after | ~before).all()
        )  # a superset, fewer than 8 added
        gamma = unit["bn"].weight.detach().abs()
        added, still_pruned = after & ~before, ~after
        if added.any() and still_pruned.any():
            assert gamma[added].min() >= gamma[still_pruned].max()
    slim = slim_model(model, rounded)
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        assert (slim.eval()(x) - apply_mask(model, rounded).eval()(x)).abs().max().item() < 1e-4
