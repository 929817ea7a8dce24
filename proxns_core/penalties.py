"""Penalties on ξ beyond the paper's ℓ1 (docs: PAPER.md, "Beyond the paper: nonconvex penalties on ξ").

P(x) = Σᵢ p(xᵢ), except ``l1-l2``, which is a sum over the BN layers' vectors. λ ≥ 0 is the config's
``lam``, ``a`` the shape parameter ``penalty_a``, s > 0 the prox step (1/(α+β) in proximal NS):

=========  ====================================================  =========================================
name       p(x) per entry                                         prox of s·P (the exact minimiser)
=========  ====================================================  =========================================
``l1``     λ|x|                                                   soft threshold at sλ
``l0``     λ·[x ≠ 0]                                              hard threshold: v where |v| > √(2sλ)
``l1/2``   λ|x|^½                                                 half threshold (Xu et al. 2012), below
``tl1``    λ(a+1)|x|/(a+|x|), a > 0 (default 1)                   Zhang & Xin 2018 closed form, below
``mcp``    λ|x| − x²/(2a) for |x| ≤ aλ, aλ²/2 beyond; a > 0 (3)   firm threshold (a > s) / hard (a ≤ s)
``scad``   λ|x| (|x| ≤ λ); (2aλ|x| − x² − λ²)/(2(a−1)) (≤ aλ);    3-piece closed form (a > 1+s) / the
           (a+1)λ²/2 beyond; a > 2 (default 3.7)                  better of two candidates (a ≤ 1+s)
``l1-l2``  λ(‖ξ_ℓ‖₁ − ‖ξ_ℓ‖₂) for each BN layer ℓ                Lou & Yan 2018, per layer, below
=========  ====================================================  =========================================

Every (a, s) allowed by :data:`A_RULES` is **solved exactly**; nothing is refused for being "not
proximal-friendly". :func:`check` only rejects an unknown penalty, a shape parameter outside its rule,
a step s ≤ 0 or λ < 0. At a tie between two minimisers the one with the smaller |x| is returned
(so a value exactly at a hard threshold maps to 0). With t = sλ:

- ``l1``: x = sign(v)·max(|v| − t, 0).
- ``l0``: x = v if |v| > √(2t), else 0 (½v² vs t).
- ``l1/2``: x = 0 if |v| ≤ (3/2)·t^{2/3} (= (54^{1/3}/4)(2t)^{2/3}, Xu et al.'s threshold with their
  λμ = 2t, since their data term has no ½), else x = (2/3)v(1 + cos(2π/3 − (2/3)φ)),
  φ = arccos((t/4)(|v|/3)^{−3/2}).
- ``tl1``: x = 0 if |v| ≤ t*, else x = sign(v)[(2/3)(a+|v|)cos(φ/3) − 2a/3 + |v|/3],
  φ = arccos(1 − 27ta(a+1)/(2(a+|v|)³)); t* = t(a+1)/a when t ≤ a²/(2(a+1)) (continuous),
  t* = √(2t(a+1)) − a/2 otherwise (a jump); then one Newton step on the stationarity condition
  (the cosine form cancels when a ≫ |v|).
- ``mcp``, a > s (the 1-D objective is convex): firm threshold, 0 for |v| ≤ t,
  sign(v)(|v| − t)/(1 − s/a) for t < |v| ≤ aλ, v beyond. a ≤ s: on |x| ≤ aλ the objective is concave,
  so its minimum there is at 0 or ±aλ, and beyond aλ it is at v; comparing, x = v if |v| > λ√(as),
  else 0 (a hard threshold; at a = s both forms agree).
- ``scad``, a > 1 + s (convex objective): sign(v)max(|v| − t, 0) for |v| ≤ (1+s)λ;
  ((a−1)v − sign(v)saλ)/(a−1−s) for (1+s)λ < |v| ≤ aλ; v beyond. a ≤ 1 + s: the middle piece is
  concave, so the minimiser is the better (smaller objective; the first at a tie) of
  x₁ = sign(v)·min(max(|v| − t, 0), λ) (the first piece's) and x₃ = sign(v)·max(|v|, aλ) (the last's).
- ``l1-l2``, per layer vector v_ℓ: if ‖v_ℓ‖∞ > t, x = z + t·z/‖z‖₂ with z = S_t(v_ℓ) (soft threshold);
  else x is 1-sparse: v at the first index of max |v_ℓ| and 0 elsewhere (the penalty of a 1-sparse
  vector is 0, so its best value is ½‖v‖² − ½‖v‖∞², below that of 0 unless v_ℓ = 0). So no layer
  ever becomes all zero under ``l1-l2`` unless its v is 0. At ties in max |v_ℓ| the minimiser is not
  unique; the first index is taken.

Subgradients (for network slimming, added to ∂L/∂γ; they never give exact zeros): an element of the
(Clarke, or for ``l1/2`` the limiting) subdifferential, 0 at x = 0 (0 belongs to it there):
``l1`` λ·sign(x); ``l1/2`` λ·sign(x)/(2√|x|) (unbounded as x → 0: NS with ``l1/2`` pushes hard on small
γ); ``tl1`` λa(a+1)sign(x)/(a+|x|)²; ``mcp`` sign(x)·max(λ − |x|/a, 0); ``scad`` λ·sign(x) on |x| ≤ λ,
sign(x)(aλ − |x|)/(a−1) up to aλ, 0 beyond; ``l1-l2`` λ(sign(x) − x_ℓ/‖x_ℓ‖₂) (the second term 0 for
an all-zero layer). ``l0`` is refused (ValueError): its derivative is 0 wherever it exists, so
"NS with ℓ0" would be plain training; use proximal NS for ℓ0.

All operators are vectorised torch on ``v``'s device and dtype (float16/bfloat16 computed in float32),
with no host synchronisation and no branching on tensor values, so they may sit inside a captured CUDA
graph. ``step``, ``lam`` and ``a`` are Python numbers. ``l1-l2`` gathers each layer into a zero-padded
(layers × max size) matrix (deterministic row reductions); the index tensors are built from the Python
``sizes`` with device kernels only and cached per (sizes, device) outside a stream capture.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

#: The penalties, ``l1`` (the paper) first.
PENALTIES = ("l1", "l0", "l1/2", "tl1", "l1-l2", "mcp", "scad")

#: Default shape parameter ``penalty_a`` of the penalties that take one.
DEFAULT_A = {"tl1": 1.0, "mcp": 3.0, "scad": 3.7}

#: The rule each shape parameter must satisfy, as text (the spec copies these).
A_RULES = {"tl1": "a > 0", "mcp": "a > 0", "scad": "a > 2"}

#: The same rules as plain-Python lower bounds: a must be strictly greater than this.
A_LOWER = {"tl1": 0.0, "mcp": 0.0, "scad": 2.0}

#: How each prox is solved, per (a, step) regime: all exactly, none refused (plain text for the docs).
PROX_REGIMES = {
    "l1": "soft threshold at step*lam",
    "l0": "hard threshold: keep v where |v| > sqrt(2*step*lam)",
    "l1/2": "half threshold (Xu et al. 2012) at 1.5*(step*lam)**(2/3)",
    "tl1": "Zhang & Xin 2018 closed form; threshold step*lam*(a+1)/a if step*lam <= a^2/(2(a+1)), "
    "else sqrt(2*step*lam*(a+1)) - a/2",
    "l1-l2": "Lou & Yan 2018 per BN layer; 1-sparse (v at the first max |v|) when max |v| <= step*lam",
    "mcp": "a > step: firm threshold; a <= step: hard threshold at lam*sqrt(a*step) (exact)",
    "scad": "a > 1 + step: 3-piece closed form; a <= 1 + step: the better of two candidates (exact)",
}

#: Penalties usable by network slimming as a subgradient (``l0`` has none worth the name).
NS_PENALTIES = tuple(p for p in PENALTIES if p != "l0")


def takes_a(penalty: str) -> bool:
    """Whether ``penalty`` has a shape parameter ``a``."""
    return penalty in DEFAULT_A


def resolve_a(penalty: str, a: float | None) -> float | None:
    """``a`` or the penalty's default (None for a penalty without one); ValueError on a rule broken."""
    _check_name(penalty)
    if not takes_a(penalty):
        if a is not None:
            raise ValueError(f"penalty {penalty!r} takes no shape parameter a (got a = {a!r})")
        return None
    a = DEFAULT_A[penalty] if a is None else float(a)
    if not (math.isfinite(a) and a > A_LOWER[penalty]):
        raise ValueError(f"penalty {penalty!r} needs {A_RULES[penalty]} (got a = {a!r})")
    return a


def check(penalty: str, a: float | None = None, step: float | None = None, lam: float | None = None) -> None:
    """Reject what the operators cannot take, naming the rule: an unknown penalty, ``a`` outside
    :data:`A_RULES`, step ≤ 0, λ < 0. Every other (a, step) is solved exactly (module docstring)."""
    resolve_a(penalty, a)
    if step is not None and not (math.isfinite(float(step)) and float(step) > 0):
        raise ValueError(f"the prox step must be > 0 (got {step!r})")
    if lam is not None and not (math.isfinite(float(lam)) and float(lam) >= 0):
        raise ValueError(f"lam must be >= 0 (got {lam!r})")


def _check_name(penalty: str) -> None:
    if penalty not in PENALTIES:
        raise ValueError(f"unknown penalty {penalty!r}; expected one of {', '.join(PENALTIES)}")


def _work(v: torch.Tensor) -> torch.Tensor:
    if not v.is_floating_point():
        raise TypeError(f"expected a floating-point tensor, got {v.dtype}")
    return v.float() if v.dtype in (torch.float16, torch.bfloat16) else v


# ---------------------------------------------------------------------------------------------- layers

_LAYOUTS: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _capturing(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_current_stream_capturing()


def _layout(
    sizes: Sequence[int] | None, n: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(gather, back, m): ``cat([v, 0])[gather]`` is the (layers × m) zero-padded matrix of the layers,
    ``padded.reshape(-1)[back]`` the flat vector again. Built from Python ints by device kernels only."""
    sizes = (n,) if sizes is None else tuple(int(k) for k in sizes)
    if any(k <= 0 for k in sizes) or sum(sizes) != n:
        raise ValueError(f"sizes {list(sizes)} must be positive and sum to v.numel() = {n}")
    key = (sizes, device)
    hit = _LAYOUTS.get(key)
    if hit is not None:
        return hit[0], hit[1], max(sizes)
    m = max(sizes)
    ar = torch.arange(n, device=device)
    seg = torch.zeros(n, dtype=torch.long, device=device)
    start = torch.zeros(n, dtype=torch.long, device=device)
    offset = 0
    for k in sizes[:-1]:
        offset += k
        ge = (ar >= offset).long()
        seg += ge
        start += ge * k
    back = seg * m + (ar - start)
    gather = torch.full((len(sizes) * m,), n, dtype=torch.long, device=device)
    gather.scatter_(0, back, ar)
    gather = gather.view(len(sizes), m)
    if not _capturing(device):  # tensors made while capturing hold nothing until the graph replays
        _LAYOUTS[key] = (gather, back)
    return gather, back, m


def _padded(v: torch.Tensor, sizes: Sequence[int] | None) -> tuple[torch.Tensor, torch.Tensor]:
    if v.dim() != 1:
        raise ValueError(f"l1-l2 acts on a flat vector; got shape {tuple(v.shape)}")
    gather, back, _ = _layout(sizes, v.numel(), v.device)
    return torch.cat([v, v.new_zeros(1)])[gather], back


# ------------------------------------------------------------------------------------------------- prox


def prox(
    penalty: str,
    v: torch.Tensor,
    step: float,
    lam: float,
    a: float | None = None,
    sizes: Sequence[int] | None = None,
) -> torch.Tensor:
    """argmin_x step·P(x) + ½‖x − v‖² (same dtype and device as ``v``), exact; see the module docstring.

    ``v``: any shape for the entrywise penalties, a flat vector for ``l1-l2``. ``sizes`` (``l1-l2``
    only, ignored by the others): the BN layers' lengths, summing to ``v.numel()``; None is one layer.
    ``a``: None for the penalty's default (:data:`DEFAULT_A`); must be None for a penalty without one.
    """
    a = resolve_a(penalty, a)
    check(penalty, a, step, lam)
    s, lam = float(step), float(lam)
    w = _work(v)
    t = s * lam
    if t == 0:  # P = 0: the identity (exactly, which the closed forms are only to rounding)
        return v.clone()
    if penalty == "l1-l2":
        out = _prox_l1l2(w, t, sizes)
    elif penalty == "l1":
        out = _soft(w, t)
    elif penalty == "l0":
        out = torch.where(w.abs() > math.sqrt(2.0 * t), w, 0.0)
    elif penalty == "l1/2":
        out = _prox_half(w, t)
    elif penalty == "tl1":
        out = _prox_tl1(w, t, a)
    elif penalty == "mcp":
        out = _prox_mcp(w, s, lam, a)
    else:
        out = _prox_scad(w, s, lam, a)
    return out.to(v.dtype)


def _soft(w: torch.Tensor, t: float) -> torch.Tensor:
    return torch.sign(w) * torch.clamp(w.abs() - t, min=0)


def _prox_half(w: torch.Tensor, t: float) -> torch.Tensor:
    aw = w.abs()
    thr = 1.5 * t ** (2.0 / 3.0)
    keep = aw > thr
    safe = torch.where(keep, aw, 1.0)  # keeps the unused branch finite
    phi = torch.arccos(torch.clamp((t / 4.0) * (safe / 3.0) ** -1.5, -1.0, 1.0))
    x = (2.0 / 3.0) * safe * (1.0 + torch.cos(2.0 * math.pi / 3.0 - (2.0 / 3.0) * phi))
    return torch.where(keep, torch.sign(w) * x, 0.0)


def _prox_tl1(w: torch.Tensor, t: float, a: float) -> torch.Tensor:
    aw = w.abs()
    if t <= a * a / (2.0 * (a + 1.0)):
        thr = t * (a + 1.0) / a
    else:
        thr = math.sqrt(2.0 * t * (a + 1.0)) - a / 2.0
    keep = aw > thr
    u = a + aw
    phi = torch.arccos(torch.clamp(1.0 - (27.0 * t * a * (a + 1.0) / 2.0) / u**3, -1.0, 1.0))
    x = torch.clamp((2.0 / 3.0) * u * torch.cos(phi / 3.0) - 2.0 * a / 3.0 + aw / 3.0, min=0)
    # the cosine form loses ~eps·a to cancellation (bad when a ≫ |v|); one Newton step on the
    # stationarity condition h(x) = x − |v| + c/(a+x)², c = ta(a+1) (h' = 1 − 2c/(a+x)³ > 0 at the
    # minimiser) brings the error down to ~eps·|v|
    c = t * a * (a + 1.0)
    ax = a + x
    h = x - aw + c / ax**2
    dh = 1.0 - 2.0 * c / ax**3
    x = torch.clamp(x - h / torch.where(dh > 0, dh, 1.0), min=0)
    return torch.where(keep, torch.sign(w) * x, 0.0)


def _prox_mcp(w: torch.Tensor, s: float, lam: float, a: float) -> torch.Tensor:
    aw = w.abs()
    if a > s:  # firm thresholding
        mid = torch.sign(w) * torch.clamp(aw - s * lam, min=0) / (1.0 - s / a)
        return torch.where(aw > a * lam, w, mid)
    return torch.where(aw > lam * math.sqrt(a * s), w, 0.0)  # hard thresholding (module docstring)


def _prox_scad(w: torch.Tensor, s: float, lam: float, a: float) -> torch.Tensor:
    aw, sg = w.abs(), torch.sign(w)
    if a > 1.0 + s:
        inner = torch.clamp(aw - s * lam, min=0)
        mid = ((a - 1.0) * aw - s * a * lam) / (a - 1.0 - s)
        x = torch.where(aw <= (1.0 + s) * lam, inner, torch.where(aw <= a * lam, mid, aw))
        return sg * x
    # the middle piece is concave: the better of the first piece's and the last piece's minimisers
    x1 = torch.clamp(aw - s * lam, min=0, max=lam)
    x3 = torch.clamp(aw, min=a * lam)
    f1 = s * lam * x1 + 0.5 * (aw - x1) ** 2
    f3 = (s * (a + 1.0) * lam * lam / 2.0) + 0.5 * (x3 - aw) ** 2
    return sg * torch.where(f3 < f1, x3, x1)


def _prox_l1l2(w: torch.Tensor, t: float, sizes: Sequence[int] | None) -> torch.Tensor:
    p, back = _padded(w, sizes)  # (layers, m), zero padded
    ap = p.abs()
    z = torch.sign(p) * torch.clamp(ap - t, min=0)
    zmax = z.abs().amax(1, keepdim=True)
    dense_rows = zmax > 0  # ‖v_ℓ‖∞ > t
    zs = z / torch.where(dense_rows, zmax, 1.0)  # scaled so that its norm (≥ 1) cannot underflow
    nrm = torch.linalg.vector_norm(zs, dim=1, keepdim=True)
    dense = z + t * zs / torch.where(dense_rows, nrm, 1.0)
    first = ap.argmax(1, keepdim=True)  # the first index of max |v_ℓ|
    onehot = torch.arange(p.shape[1], device=p.device) == first
    sparse = torch.where(onehot, p, 0.0)
    return torch.where(dense_rows, dense, sparse).reshape(-1)[back]


# ------------------------------------------------------------------------------------------------ value


def value(
    penalty: str, x: torch.Tensor, lam: float, a: float | None = None, sizes: Sequence[int] | None = None
) -> torch.Tensor:
    """P(x), a 0-dim tensor on ``x``'s device (the penalty term of the objective loss + P(ξ))."""
    a = resolve_a(penalty, a)
    check(penalty, a, None, lam)
    lam = float(lam)
    w = _work(x)
    ax = w.abs()
    if penalty == "l1":
        return lam * ax.sum()
    if penalty == "l0":
        return lam * (w != 0).sum().to(w.dtype)
    if penalty == "l1/2":
        return lam * ax.sqrt().sum()
    if penalty == "tl1":
        return lam * (a + 1.0) * (ax / (a + ax)).sum()
    if penalty == "mcp":
        return torch.where(ax <= a * lam, lam * ax - ax * ax / (2.0 * a), a * lam * lam / 2.0).sum()
    if penalty == "scad":
        mid = (2.0 * a * lam * ax - ax * ax - lam * lam) / (2.0 * (a - 1.0))
        far = (a + 1.0) * lam * lam / 2.0
        return torch.where(ax <= lam, lam * ax, torch.where(ax <= a * lam, mid, far)).sum()
    p, _ = _padded(w, sizes)
    return lam * (ax.sum() - torch.linalg.vector_norm(p, dim=1).sum())


# ------------------------------------------------------------------------------------------ subgradient


def subgradient(
    penalty: str, x: torch.Tensor, lam: float, a: float | None = None, sizes: Sequence[int] | None = None
) -> torch.Tensor:
    """An element of ∂P(x), 0 at x = 0, for network slimming (added to ∂L/∂γ); ``l0`` is refused."""
    if penalty == "l0":
        raise ValueError(
            "penalty 'l0' has no useful subgradient (its derivative is 0 wherever it exists), so network "
            "slimming cannot use it; use proximal NS (method 'proxns') for l0"
        )
    a = resolve_a(penalty, a)
    check(penalty, a, None, lam)
    lam = float(lam)
    w = _work(x)
    ax, sg = w.abs(), torch.sign(w)
    if penalty == "l1":
        g = lam * sg
    elif penalty == "l1/2":
        g = torch.where(ax > 0, lam * sg / (2.0 * torch.where(ax > 0, ax, 1.0).sqrt()), 0.0)
    elif penalty == "tl1":
        g = lam * a * (a + 1.0) * sg / (a + ax) ** 2
    elif penalty == "mcp":
        g = sg * torch.clamp(lam - ax / a, min=0)
    elif penalty == "scad":
        g = sg * torch.where(ax <= lam, lam, torch.clamp(a * lam - ax, min=0) / (a - 1.0))
    else:
        p, back = _padded(w, sizes)
        nrm = torch.linalg.vector_norm(p, dim=1, keepdim=True)
        g = (lam * (torch.sign(p) - p / torch.where(nrm > 0, nrm, 1.0))).reshape(-1)[back]
    return g.to(x.dtype)
