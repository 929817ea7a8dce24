"""Sparsity methods: interchangeable objects with two hooks, after ``backward()`` and after the optimizer step.

- ``baseline``: plain SGD, nothing pruned.
- ``ns``: network slimming, the penalty's subgradient (λ·sign(γ) for ℓ1) added to every BN γ gradient;
  prune a global |γ| percentile.
- ``proxns``: proximal NS, the PALM updates of docs/method.md on (γ, ξ), the ξ step the exact prox of the
  penalty (soft thresholding for ℓ1); prune exactly the channels with ξ = 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from . import penalties
from .slim import PrunePlan, bn_layers, plan_by_threshold, plan_from_zero_mask
from .spec import XI_HIST_EDGES, LayerSparsity, TrainConfig

if TYPE_CHECKING:  # anynet imports Torch-Pruning: loaded only when a torchvision network is planned
    from .anynet import AnyPlan, CoupledGroup


def sparsity_bns(model: nn.Module) -> list[tuple[str, nn.BatchNorm2d]]:
    """The BN layers a sparsity method acts on, with names: the paper networks' prunable BNs
    (``prune_units``, as :func:`proxns_core.slim.bn_layers`), else every ``nn.BatchNorm2d`` of the
    network (a torchvision network) in module order, named as ``named_modules`` names them."""
    if hasattr(model, "prune_units"):
        return [(u["name"], bn) for u, bn in zip(model.prune_units(), bn_layers(model))]
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]


def soft_threshold(v: torch.Tensor, tau: float) -> torch.Tensor:
    """S_τ(v) = sign(v)·max(|v| − τ, 0), the proximal operator of τ‖·‖₁; yields exact zeros."""
    return torch.sign(v) * torch.clamp(v.abs() - tau, min=0)


class SparsityMethod:
    """No sparsity (the baseline); subclasses override the hooks they need."""

    name = "baseline"

    def __init__(self, lam: float = 0.0, penalty: str | None = None, penalty_a: float | None = None) -> None:
        self.lam = lam
        #: The penalty P (PAPER.md, "nonconvex penalties"); None: no penalty (the baseline).
        self.penalty_name = penalty
        self.penalty_a = penalties.resolve_a(penalty, penalty_a) if penalty is not None else None
        self.gammas: list[nn.Parameter] = []
        self._sizes: list[int] = []
        self._hist_index: tuple[torch.Tensor, torch.Tensor] | None = None

    def attach(self, model: nn.Module, generator: torch.Generator | None = None) -> None:
        """Bind to the BN scaling factors of ``model`` (already on its device): see :func:`sparsity_bns`."""
        bns = sparsity_bns(model)
        self.bn_names = [n for n, _ in bns]
        self.gammas = [bn.weight for _, bn in bns]
        self._sizes = [g.numel() for g in self.gammas]
        self._hist_index = None

    def after_backward(self) -> None:
        """Called after ``loss.backward()``, before the optimizer step."""

    def after_step(self, lr: float, skipped: torch.Tensor | None = None) -> None:
        """Called after every optimizer step with the learning rate that step used.

        ``skipped`` (fp16 only): a 0-dim device tensor, true where the grad scaler skipped the step
        (gradients overflowed); the method must then leave its state as it was, without reading it
        on the host.
        """

    @torch.no_grad()
    def sparse_vector(self) -> torch.Tensor:
        """The vector whose zeros mark pruned channels (γ here, ξ for proxns), flattened."""
        return torch.cat([g.detach().reshape(-1) for g in self.gammas])

    def penalty(self) -> float:
        """P(:meth:`sparse_vector`) (:func:`proxns_core.penalties.value`; ``l1-l2`` per BN layer); 0 without one."""
        if self.penalty_name is None or not self.gammas:
            return 0.0
        return float(
            penalties.value(self.penalty_name, self.sparse_vector(), self.lam, self.penalty_a, self._sizes)
        )

    @torch.no_grad()
    def layer_sparsity(self) -> list[LayerSparsity]:
        """Per BN layer: total, exact zeros and the |v| histogram over :data:`~proxns_core.spec.XI_HIST_EDGES`
        of :meth:`sparse_vector` (ξ for proxns, γ otherwise): bin 0 exact zeros, bin 1 (0, e₀), bin k + 1
        [e_{k-1}, e_k), the last [e_last, ∞) — len(XI_HIST_EDGES) + 2 bins. Counted on the device, one
        host transfer."""
        if not self.gammas:
            return []
        v = self.sparse_vector().detach().abs().double()  # float64: the edges as NumPy sees them
        nbins = len(XI_HIST_EDGES) + 2
        if self._hist_index is None or self._hist_index[0].device != v.device:
            edges = torch.tensor(XI_HIST_EDGES, dtype=torch.float64, device=v.device)
            sizes = torch.tensor(self._sizes, device=v.device)
            layer = torch.repeat_interleave(torch.arange(len(self._sizes), device=v.device), sizes)
            self._hist_index = (edges, layer)
        edges, layer = self._hist_index
        bucket = torch.where(v == 0, 0, torch.bucketize(v, edges, right=True) + 1)
        counts = torch.bincount(layer * nbins + bucket, minlength=len(self._sizes) * nbins)
        rows = counts.view(len(self._sizes), nbins).cpu().tolist()
        return [
            LayerSparsity(name=name, total=size, zeros=row[0], hist=row)
            for name, size, row in zip(self.bn_names, self._sizes, rows)
        ]

    def zero_fraction(self) -> float:
        """Share of :meth:`sparse_vector` that is exactly zero."""
        v = self.sparse_vector()
        return float((v == 0).sum()) / max(1, v.numel())

    def prune_plan(self, model: nn.Module) -> PrunePlan:
        """Which channels to delete: none for the baseline."""
        return plan_from_zero_mask(model, [torch.zeros(g.numel(), dtype=torch.bool) for g in self.gammas])

    def group_plan(self, model: nn.Module, groups: list[CoupledGroup]) -> AnyPlan:
        """The plan over a traced network's coupled channel groups (torchvision): nothing deleted."""
        from .anynet import plan_nothing

        return plan_nothing(model, groups)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class NetworkSlimming(SparsityMethod):
    """Liu et al. 2017: subgradient of P(γ) (λ‖γ‖₁ in the paper), then a global |γ| threshold at ``prune_ratio``."""

    name = "ns"

    def __init__(
        self, lam: float, prune_ratio: float, penalty: str = "l1", penalty_a: float | None = None
    ) -> None:
        if penalty == "l0":
            penalties.subgradient("l0", torch.zeros(1), lam)  # raises: NS cannot use ℓ0
        super().__init__(lam, penalty, penalty_a)
        self.prune_ratio = prune_ratio

    @torch.no_grad()
    def after_backward(self) -> None:
        grads = [g.grad for g in self.gammas if g.grad is not None]
        if len(grads) != len(self.gammas):
            return
        if self.penalty_name == "l1":  # λ·sign(γ), the paper's fast path
            torch._foreach_add_(grads, torch._foreach_sign(self.gammas), alpha=self.lam)
            return
        gamma = torch.cat([g.detach().reshape(-1) for g in self.gammas])
        sub = penalties.subgradient(self.penalty_name, gamma, self.lam, self.penalty_a, self._sizes)
        torch._foreach_add_(grads, [s.view_as(g) for s, g in zip(sub.split(self._sizes), grads)])

    def prune_plan(self, model: nn.Module) -> PrunePlan:
        return plan_by_threshold(model, self.prune_ratio)

    def group_plan(self, model: nn.Module, groups: list[CoupledGroup]) -> AnyPlan:
        """The ``prune_ratio`` share of coupled channels with the lowest mean |γ| over their group's BNs
        (:func:`proxns_core.anynet.plan_groups_by_threshold`)."""
        from .anynet import plan_groups_by_threshold

        return plan_groups_by_threshold(model, groups, self.prune_ratio)


class ProximalNS(SparsityMethod):
    """PALM on L(W, γ) + P(ξ) + (β/2)‖γ − ξ‖² (P = λ‖ξ‖₁ in the paper), with α = 1/lr, fused over all
    BN layers; the ξ step is the exact prox of P/(α+β) (:func:`proxns_core.penalties.prox`)."""

    name = "proxns"

    def __init__(self, lam: float, beta: float, penalty: str = "l1", penalty_a: float | None = None) -> None:
        super().__init__(lam, penalty, penalty_a)
        self.beta = beta
        self.xi: torch.Tensor | None = None

    def attach(self, model: nn.Module, generator: torch.Generator | None = None) -> None:
        super().attach(model)
        n = sum(g.numel() for g in self.gammas)
        device = self.gammas[0].device
        # ξ starts uniform in [0.47, 0.53] (docs/method.md), drawn on the CPU generator so runs are reproducible.
        xi = torch.rand(n, generator=generator) * 0.06 + 0.47
        self.xi = xi.to(device=device, dtype=self.gammas[0].dtype)

    @torch.no_grad()
    def after_step(self, lr: float, skipped: torch.Tensor | None = None) -> None:
        # γ and ξ are fp32 whatever the autocast precision: the master γ are the fp32 parameters.
        alpha, beta = 1.0 / lr, self.beta
        gamma_tilde = torch.cat([g.reshape(-1) for g in self.gammas])
        gamma = (alpha * gamma_tilde + beta * self.xi) / (alpha + beta)
        v = (alpha * self.xi + beta * gamma) / (alpha + beta)
        if self.penalty_name == "l1":  # the paper's soft threshold, as it always was (bit for bit)
            xi = soft_threshold(v, self.lam / (alpha + beta))
        else:  # Python numbers only (the lr changes where a CUDA graph is captured anew): graph safe
            xi = penalties.prox(
                self.penalty_name, v, 1.0 / (alpha + beta), self.lam, self.penalty_a, self._sizes
            )
        if skipped is not None:  # a skipped step moves neither γ nor ξ; decided on the device
            gamma = torch.where(skipped, gamma_tilde, gamma)
            xi = torch.where(skipped, self.xi, xi)
        self.xi.copy_(xi)  # in place: a captured CUDA graph keeps reading and writing the same ξ
        torch._foreach_copy_(self.gammas, list(gamma.split(self._sizes)))

    @torch.no_grad()
    def sparse_vector(self) -> torch.Tensor:
        return self.xi

    def prune_plan(self, model: nn.Module) -> PrunePlan:
        return plan_from_zero_mask(model, list((self.xi == 0).split(self._sizes)))

    def group_plan(self, model: nn.Module, groups: list[CoupledGroup]) -> AnyPlan:
        """A coupled channel is deleted exactly when ξ is 0 in every BN of its group (no threshold)."""
        from .anynet import plan_groups

        zero = dict(zip(self.bn_names, (self.xi == 0).cpu().split(self._sizes)))
        return plan_groups(model, groups, zero)

    def state_dict(self) -> dict:
        return {"xi": self.xi.detach().cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.xi = state["xi"].to(device=self.gammas[0].device, dtype=self.gammas[0].dtype)


def make_sparsity(config: TrainConfig) -> SparsityMethod:
    """The sparsity object of a resolved config's ``method``, with its λ, β and prune ratio."""
    if config.method == "ns":
        return NetworkSlimming(config.lam, config.prune_ratio, config.penalty or "l1", config.penalty_a)
    if config.method == "proxns":
        return ProximalNS(config.lam, config.beta, config.penalty or "l1", config.penalty_a)
    return SparsityMethod(0.0)
