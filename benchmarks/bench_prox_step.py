"""Cost of proximal NS per training step: proxns step vs baseline step, fused ξ update vs a per-layer loop.

VGG-19 on a CIFAR-shaped batch of 64 (CPU unless --device says otherwise). Prints ratios against the
baseline measured in the same process; target: proxns step ≤ 1.03 × baseline step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from proxns_core.models import build_model
from proxns_core.slim import bn_layers
from proxns_core.sparsity import ProximalNS, SparsityMethod


def naive_update(model, xis, lr, lam, beta):
    """The per-layer loop the fused update replaces: one host round trip per BN layer."""
    alpha = 1.0 / lr
    for bn, xi in zip(bn_layers(model), xis):
        g = bn.weight.detach().cpu().numpy()
        gamma = (alpha * g + beta * xi) / (alpha + beta)
        v = (alpha * xi + beta * gamma) / (alpha + beta)
        xi[:] = np.sign(v) * np.maximum(np.abs(v) - lam / (alpha + beta), 0)
        with torch.no_grad():
            bn.weight.copy_(torch.from_numpy(gamma).to(bn.weight.device))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_it(fn, device, repeats):
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)

    def make(method: SparsityMethod):
        model = build_model("vgg", 19, 10).to(device)
        method.attach(model, torch.Generator().manual_seed(0))
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            method.after_backward()
            opt.step()
            method.after_step(0.1)

        return model, method, step

    _, _, base_step = make(SparsityMethod())
    prox_model, prox, prox_step = make(ProximalNS(lam=0.0045, beta=100.0))
    for _ in range(2):  # warm-up
        base_step()
        prox_step()
    base_times, prox_times = [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
        base_times.append(time_it(base_step, device, 1))
        prox_times.append(time_it(prox_step, device, 1))
    t_base, t_prox = statistics.median(base_times), statistics.median(prox_times)

    xis = [np.full(bn.num_features, 0.5, dtype=np.float32) for bn in bn_layers(prox_model)]
    t_fused = time_it(lambda: prox.after_step(0.1), device, 200)
    t_naive = time_it(lambda: naive_update(prox_model, xis, 0.1, 0.0045, 100.0), device, 200)

    channels = sum(bn.num_features for bn in bn_layers(prox_model))
    print(f"device {device}, VGG-19, batch {args.batch}, {len(xis)} BN layers, {channels} channels")
    print(f"baseline step          {1000 * t_base:9.2f} ms (median of {args.repeats})")
    print(f"proxns step            {1000 * t_prox:9.2f} ms")
    print(f"proxns / baseline      {t_prox / t_base:9.3f}   (target <= 1.03)")
    print(f"fused xi update        {1e6 * t_fused:9.1f} us")
    print(f"per-layer loop update  {1e6 * t_naive:9.1f} us")
    print(f"loop / fused           {t_naive / t_fused:9.2f}x")


if __name__ == "__main__":
    main()
