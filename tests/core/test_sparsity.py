"""The sparsity methods against docs/method.md's closed-form updates, checked by an independent NumPy version."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from proxns_core.models import build_model
from proxns_core.slim import bn_layers
from proxns_core.sparsity import NetworkSlimming, ProximalNS, soft_threshold


def numpy_palm_step(gamma_tilde, xi, lr, lam, beta):
    """docs/method.md: γ = (αγ̃ + βξ)/(α+β); ξ = S_{λ/(α+β)}((αξ + βγ)/(α+β)), α = 1/lr."""
    alpha = 1.0 / lr
    gamma = (alpha * gamma_tilde + beta * xi) / (alpha + beta)
    v = (alpha * xi + beta * gamma) / (alpha + beta)
    tau = lam / (alpha + beta)
    return gamma, np.sign(v) * np.maximum(np.abs(v) - tau, 0.0)


def _tiny_vgg():
    torch.manual_seed(0)
    return build_model("vgg", 11, 10, width=0.125)


def _gammas(model):
    return torch.cat([bn.weight.detach().reshape(-1) for bn in bn_layers(model)]).double().numpy()


def test_soft_threshold_yields_exact_zeros_and_shrinks_the_rest():
    v = torch.tensor([-1.0, -0.3, -0.2, 0.0, 0.1, 0.2, 0.25, 2.0])
    out = soft_threshold(v, 0.25)
    assert out.tolist() == pytest.approx([-0.75, -0.05, 0.0, 0.0, 0.0, 0.0, 0.0, 1.75])
    assert int((out == 0).sum()) == 5  # exactly zero, not merely small


def test_proxns_update_matches_numpy_reference_over_steps_with_lr_decay():
    model = _tiny_vgg()
    lam, beta = 2.0, 100.0
    method = ProximalNS(lam=lam, beta=beta)
    method.attach(model, torch.Generator().manual_seed(1))
    assert method.xi.min() >= 0.47 and method.xi.max() <= 0.53  # docs/method.md's initialisation
    with torch.no_grad():  # half the channels start weak, so only they can reach ξ = 0
        method.xi[::2] = 0.01
        for bn in bn_layers(model):
            bn.weight[::2] = 0.01
    xi_ref = method.xi.double().numpy().copy()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[3, 5], gamma=0.1)
    x = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    y = torch.arange(16) % 10
    lrs, zeros_seen = [], 0
    for _ in range(8):
        lr = opt.param_groups[0]["lr"]
        lrs.append(lr)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        gamma_tilde = _gammas(model)
        method.after_step(lr)
        gamma_ref, xi_ref = numpy_palm_step(gamma_tilde, xi_ref, lr, lam, beta)
        np.testing.assert_allclose(_gammas(model), gamma_ref, rtol=0, atol=2e-6)
        np.testing.assert_allclose(method.xi.double().numpy(), xi_ref, rtol=0, atol=2e-6)
        # the zero pattern is identical: soft-thresholding gives exact zeros in both
        assert np.array_equal(method.xi.numpy() == 0, xi_ref == 0)
        zeros_seen = int((method.xi == 0).sum())
        sched.step()
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.001])
    assert 0 < zeros_seen < method.xi.numel(), "some, not all, ξ must be exactly 0 after 8 steps"


def test_proxns_state_round_trips_xi():
    model = _tiny_vgg()
    method = ProximalNS(lam=0.1, beta=10.0)
    method.attach(model, torch.Generator().manual_seed(0))
    saved = method.state_dict()
    other = ProximalNS(lam=0.1, beta=10.0)
    other.attach(model, torch.Generator().manual_seed(99))
    other.load_state_dict(saved)
    assert torch.equal(other.xi, method.xi)


def test_ns_adds_exactly_lambda_sign_gamma_to_bn_gradients():
    model = _tiny_vgg()
    with torch.no_grad():
        bn_layers(model)[0].weight[:2] = torch.tensor([-0.3, 0.0])
    lam = 0.37
    method = NetworkSlimming(lam=lam, prune_ratio=0.5)
    method.attach(model)
    x = torch.randn(8, 3, 32, 32)
    F.cross_entropy(model(x), torch.arange(8)).backward()
    before = [bn.weight.grad.clone() for bn in bn_layers(model)]
    conv_before = model.features[0].weight.grad.clone()
    method.after_backward()
    for bn, g0 in zip(bn_layers(model), before):
        assert torch.equal(bn.weight.grad - g0, lam * torch.sign(bn.weight.detach()))
    assert torch.equal(model.features[0].weight.grad, conv_before), "only BN γ gradients change"
    first = bn_layers(model)[0].weight.grad - before[0]
    assert first[0].item() == pytest.approx(-lam) and first[1].item() == 0.0


def test_ns_prunes_the_smallest_gamma_share_globally():
    model = _tiny_vgg()
    gammas = _gammas(model)
    rng = np.random.default_rng(0)
    values = rng.permutation(len(gammas)).astype(np.float32) / len(gammas) + 0.01
    with torch.no_grad():
        offset = 0
        for bn in bn_layers(model):
            n = bn.num_features
            bn.weight.copy_(torch.from_numpy(values[offset : offset + n]))
            offset += n
    method = NetworkSlimming(lam=1e-4, prune_ratio=0.3)
    method.attach(model)
    plan = method.prune_plan(model)
    assert plan.channels_pruned == int(0.3 * len(values))
    pruned = np.concatenate([(~m).numpy() for m in plan.masks.values()])
    assert values[pruned].max() < values[~pruned].min()
