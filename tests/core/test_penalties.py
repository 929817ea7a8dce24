"""proxns_core.penalties against independent references of PAPER.md's definitions.

The 1-D reference minimises step·p(x) + ½(x − v)² by brute force (NumPy float64): a fine grid over
[−|v|−1, |v|+1] and over v·[−½, 3/2], the points 0 and v, and every grid local minimum refined by
golden section. The ℓ1−ℓ2 reference enumerates every support and sign pattern of a small vector and
the stationary points of the objective on that face (plus x = 0). Neither uses the closed forms.
Objective values are compared (minimisers may tie); minimisers where they are unique; and exact
zeros where the reference minimiser is 0 and unique.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest
import torch

from proxns_core import penalties as P

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
DTYPES = [torch.float32, torch.float64]

# step = 1/(α+β), α = 1/lr: the paper's settings, plus larger steps that reach the other regimes
STEPS = [1.0 / (1.0 / lr + beta) for lr in (0.1, 0.01) for beta in (0.25, 100.0)] + [0.5, 2.0, 5.0]
LAMS = [0.0045, 5.0]
A_VALUES = {"tl1": [None, 0.2, 10.0], "mcp": [None, 0.05, 1.0], "scad": [None, 2.5]}

# tolerances per dtype: objective excess and tie gap relative to v², minimiser distance and the
# separation of two distinct minimisers (½sep² ≫ gap: one flat minimum is not a tie) relative to |v|
TOL = {
    torch.float64: {"obj": 1e-12, "gap": 1e-9, "x": 1e-6, "sep": 1e-4},
    torch.float32: {"obj": 1e-6, "gap": 1e-5, "x": 1e-5, "sep": 1e-2},
}


# ------------------------------------------------------------------------------------- the definitions


def p_np(pen: str, x: np.ndarray, lam: float, a: float | None) -> np.ndarray:
    """PAPER.md's table, per entry, NumPy float64."""
    ax = np.abs(x)
    if pen == "l1":
        return lam * ax
    if pen == "l0":
        return lam * (x != 0)
    if pen == "l1/2":
        return lam * np.sqrt(ax)
    if pen == "tl1":
        return lam * (a + 1) * ax / (a + ax)
    if pen == "mcp":
        return np.where(ax <= a * lam, lam * ax - ax**2 / (2 * a), a * lam**2 / 2)
    if pen == "scad":
        mid = (2 * a * lam * ax - ax**2 - lam**2) / (2 * (a - 1))
        return np.where(ax <= lam, lam * ax, np.where(ax <= a * lam, mid, (a + 1) * lam**2 / 2))
    raise AssertionError(pen)


def obj_np(pen, x, v, s, lam, a):
    return s * p_np(pen, x, lam, a) + 0.5 * (x - v) ** 2


def ref_prox_1d(pen, v, s, lam, a, tol):
    """Brute force: (x_best, f_best, unique) per entry of float64 ``v``; unique: no point farther than
    tol["sep"]·|v| from x_best is within tol["gap"]·v² of its objective."""
    v = np.asarray(v, dtype=np.float64)
    n = v.size
    R = np.abs(v) + 1.0
    grid = np.concatenate(
        [
            np.linspace(-1.0, 1.0, 2001)[None] * R[:, None],
            np.linspace(-0.5, 1.5, 1001)[None] * v[:, None],
            np.zeros((n, 1)),
            v[:, None],
        ],
        axis=1,
    )
    X = np.sort(grid, axis=1)
    F = obj_np(pen, X, v[:, None], s, lam, a)
    inf = np.full((n, 1), np.inf)
    locmin = (F <= np.concatenate([inf, F[:, :-1]], 1)) & (F <= np.concatenate([F[:, 1:], inf], 1))
    order = np.argsort(np.where(locmin, F, np.inf), axis=1)[:, :4]
    rows = np.arange(n)[:, None]
    lo = X[rows, np.maximum(order - 1, 0)]
    hi = X[rows, np.minimum(order + 1, X.shape[1] - 1)]
    g = (math.sqrt(5) - 1) / 2
    vv = v[:, None]
    for _ in range(90):  # golden section on every bracket of a grid local minimum
        c = hi - g * (hi - lo)
        d = lo + g * (hi - lo)
        left = obj_np(pen, c, vv, s, lam, a) <= obj_np(pen, d, vv, s, lam, a)
        hi = np.where(left, d, hi)
        lo = np.where(left, lo, c)
    C = np.concatenate([(lo + hi) / 2, X[rows, order], np.zeros((n, 1)), vv], axis=1)
    FC = obj_np(pen, C, vv, s, lam, a)
    best = np.argmin(FC, axis=1)
    xb, fb = C[np.arange(n), best], FC[np.arange(n), best]
    far = np.abs(C - xb[:, None]) > (tol["sep"] * np.abs(v))[:, None]
    rival = far & (FC <= (fb + tol["gap"] * v**2)[:, None])
    return xb, fb, ~rival.any(axis=1)


@functools.cache
def thresholds(pen, s, lam, a):
    """Where the minimiser changes regime: only to place test values at and around them."""
    t = s * lam
    if pen == "l1":
        return [t]
    if pen == "l0":
        return [math.sqrt(2 * t)]
    if pen == "l1/2":
        return [1.5 * t ** (2 / 3)]
    if pen == "tl1":
        return [t * (a + 1) / a, math.sqrt(2 * t * (a + 1)) - a / 2]
    if pen == "mcp":
        return [t, a * lam, lam * math.sqrt(a * s)]
    if a <= 1 + s:  # concave middle piece: where the brute-force minimiser jumps past it, by bisection
        lo, hi = 0.0, 2 * a * lam + 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            xb = ref_prox_1d("scad", np.array([mid]), s, lam, a, TOL[torch.float64])[0][0]
            lo, hi = (lo, mid) if xb > (1 + a) * lam / 2 else (mid, hi)
        return [t, (1 + s) * lam, a * lam, hi]
    return [t, (1 + s) * lam, a * lam]


def sample_values(pen, s, lam, a, seed):
    rng = np.random.default_rng(seed)
    thr = [x for x in thresholds(pen, s, lam, a) if x > 0]
    top = 3 * max(thr)
    edge = [x + d for x in thr for d in (0.0, 1e-6, -1e-6) if x + d > 0]
    edge = edge + [-x for x in edge]
    return np.concatenate([rng.uniform(-top, top, 40), rng.normal(0, 0.5, 10), edge, [0.0]])


def cases(pen):
    for s in STEPS:
        for lam in LAMS:
            for a in A_VALUES.get(pen, [None]):
                yield s, lam, a


# ------------------------------------------------------------------------------------------ 1-D prox


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pen", ["l1", "l0", "l1/2", "tl1", "mcp", "scad"])
def test_prox_matches_brute_force(pen, dtype, device):
    tol = TOL[dtype]
    for k, (s, lam, a) in enumerate(cases(pen)):
        aa = P.DEFAULT_A.get(pen) if a is None else a
        v = torch.tensor(sample_values(pen, s, lam, aa, k), dtype=dtype, device=device)
        x = P.prox(pen, v, s, lam, a)
        assert x.dtype == dtype and x.device == v.device and x.shape == v.shape
        v64 = v.double().cpu().numpy()  # the reference solves the problem of the tensor's own values
        x64 = x.double().cpu().numpy()
        xb, fb, unique = ref_prox_1d(pen, v64, s, lam, aa, tol)
        f = obj_np(pen, x64, v64, s, lam, aa)
        where = f"{pen} step={s:.4g} lam={lam} a={a} {dtype}"
        bad = f > fb + tol["obj"] * v64**2
        assert not bad.any(), f"{where}: objective above brute force at v={v64[bad]}: {f[bad] - fb[bad]}"
        off = unique & (np.abs(x64 - xb) > tol["x"] * np.abs(v64))
        assert not off.any(), f"{where}: minimiser differs at v={v64[off]}: {x64[off]} vs {xb[off]}"
        zero = unique & (xb == 0)
        assert (x64[zero] == 0).all(), f"{where}: not exactly 0 at v={v64[zero & (x64 != 0)]}"
        assert np.isfinite(x64).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_at_jump_thresholds_give_zero(dtype):
    """A value exactly at a jump threshold (two minimisers) maps to 0, the smaller |x|; just above, kept."""
    for pen, s, lam, a, thr in [
        ("l0", 0.5, 1.0, None, 1.0),  # √(2sλ) = 1
        ("l1/2", 1.0, 1.0, None, 1.5),  # (3/2)(sλ)^{2/3} = 1.5
        ("tl1", 4.0, 1.0, 1.0, 3.5),  # sλ > a²/(2(a+1)): √(2sλ(a+1)) − a/2 = 3.5
        ("mcp", 4.0, 1.0, 1.0, 2.0),  # a ≤ s: λ√(as) = 2
    ]:
        v = torch.tensor([thr, -thr], dtype=dtype)
        assert P.prox(pen, v, s, lam, a).tolist() == [0.0, 0.0], pen
        up = torch.nextafter(v, 2 * v)
        assert (P.prox(pen, up, s, lam, a) != 0).all(), pen


def test_prox_regimes_are_exercised():
    """The cases above reach MCP with a ≤ step, SCAD with a ≤ 1 + step and both TL1 regimes."""
    assert any(a is not None and a <= s for s, _, a in cases("mcp"))
    assert any(P.DEFAULT_A["scad"] <= 1 + s for s in STEPS) and any(2.5 <= 1 + s for s in STEPS)
    t_big = [(s * lam, a or 1.0) for s, lam, a in cases("tl1")]
    assert any(t > a * a / (2 * (a + 1)) for t, a in t_big) and any(
        t <= a * a / (2 * (a + 1)) for t, a in t_big
    )


# --------------------------------------------------------------------------------------------- l1-l2


def obj_l1l2(x, v, t):
    return t * (np.abs(x).sum() - np.linalg.norm(x)) + 0.5 * ((x - v) ** 2).sum()


def ref_l1l2(v, t):
    """Every stationary point of t(‖x‖₁ − ‖x‖₂) + ½‖x − v‖² on every (support, sign) face, and x = 0:
    (the best x, its value, the candidates and their values)."""
    n = v.size
    cands = [np.zeros(n)]
    for k in range(1, n + 1):
        for S in itertools.combinations(range(n), k):
            S = list(S)
            for sig in itertools.product((-1.0, 1.0), repeat=k):
                sig = np.array(sig)
                if k == 1:  # on a 1-sparse face the penalty is 0: y = |v_i| on its side
                    y = np.array([sig[0] * v[S[0]]])
                    if y[0] <= 0:
                        continue
                else:
                    # y > 0 stationary: t(1 − y/‖y‖) + y − σv = 0, i.e. y(1 − t/r) = w, r = ‖y‖
                    w = sig * v[S] - t
                    nw = np.linalg.norm(w)
                    if (w > 0).all():
                        r = t + nw
                    elif (w < 0).all() and nw < t:
                        r = t - nw
                    else:
                        continue
                    y = w * r / (r - t)
                x = np.zeros(n)
                x[S] = sig * y
                cands.append(x)
    C = np.array(cands)
    FC = np.array([obj_l1l2(c, v, t) for c in C])
    i = int(np.argmin(FC))
    return C[i], FC[i], C, FC


def l1l2_layers(t, rng):
    """Layers of 1..5 entries around t: both Lou–Yan cases, ‖v‖∞ at and ±1e-6 around t, ties, 0."""
    layers = [rng.uniform(-2 * t, 2 * t, k) for k in (1, 2, 3, 4, 5)]
    layers += [rng.uniform(-t, t, 3), rng.uniform(-3 * t, 3 * t, 4), rng.normal(0, 0.5, 5)]
    for d in (0.0, 1e-6, -1e-6):
        layers.append(np.array([0.3 * t, -(t + d), 0.5 * t]))
    layers += [np.array([0.5 * t, -0.5 * t, 0.1 * t]), np.array([0.0, 0.0]), np.array([2 * t, 0.0, -t])]
    return layers


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_prox_l1l2_matches_enumeration(dtype, device):
    tol = TOL[dtype]
    rng = np.random.default_rng(7)
    counts = {"unique": 0, "tie": 0, "zeros": 0}
    for s in STEPS[:4] + [0.5]:
        for lam in (0.0045, 5.0):
            t = s * lam
            layers = l1l2_layers(t, rng)
            v = torch.tensor(np.concatenate(layers), dtype=dtype, device=device)
            sizes = [len(layer) for layer in layers]
            x = P.prox("l1-l2", v, s, lam, sizes=sizes)
            assert x.dtype == dtype and x.device == v.device
            parts = zip(v.double().cpu().split(sizes), x.double().cpu().split(sizes))
            for j, (vl, xl) in enumerate(parts):
                vl, xl = vl.numpy(), xl.numpy()
                xb, fb, C, FC = ref_l1l2(vl, t)
                scale, xtol, sep = (vl**2).sum(), tol["x"] * np.abs(vl).max(), tol["sep"] * np.abs(vl).max()
                where = f"l1-l2 step={s:.4g} lam={lam} {dtype} layer {j} v={vl}"
                f = obj_l1l2(xl, vl, t)
                assert f <= fb + tol["obj"] * scale, f"{where}: {f} > {fb}"
                rivals = (np.abs(C - xb).max(axis=1) > sep) & (FC <= fb + tol["gap"] * scale)
                if not rivals.any():  # a unique minimiser: the same x, with its zeros exact
                    assert np.abs(xl - xb).max() <= xtol, f"{where}: {xl} vs {xb}"
                    assert (xl[xb == 0] == 0).all(), f"{where}: {xl} not exactly 0 where {xb} is"
                    counts["unique"] += 1
                    counts["zeros"] += int((xb == 0).sum())
                else:
                    counts["tie"] += 1
    # the references decided most layers, and their zeros
    assert counts["unique"] > 3 * counts["tie"] and counts["zeros"] > 50, counts


def test_l1l2_cases():
    """Lou & Yan's cases: dense shrinkage above t, 1-sparse at the first max |v| up to t, 0 for 0."""
    t = 0.5
    v = torch.tensor([1.0, -0.75, 0.25, 0.3, -0.4, 0.4, 0.0, 0.0], dtype=torch.float64)
    x = P.prox("l1-l2", v, 1.0, t, sizes=[3, 3, 2])
    z = torch.tensor([0.5, -0.25, 0.0], dtype=torch.float64)
    assert torch.allclose(x[:3], z * (z.norm() + t) / z.norm())
    assert x[2] == 0
    assert x[3:6].tolist() == [0.0, -0.4, 0.0]  # ‖v‖∞ ≤ t, tie between −0.4 and 0.4: the first
    assert x[6:].tolist() == [0.0, 0.0]
    assert torch.equal(P.prox("l1-l2", v, 1.0, t), P.prox("l1-l2", v, 1.0, t, sizes=[8]))
    with pytest.raises(ValueError, match="sum"):
        P.prox("l1-l2", v, 1.0, t, sizes=[3, 3])


# ------------------------------------------------------------------------------ value and subgradient


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pen", P.PENALTIES)
def test_value_matches_numpy(pen, dtype):
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, 30)
    x[::4] = 0.0
    sizes = [5, 10, 15]
    for a in A_VALUES.get(pen, [None]):
        aa = P.DEFAULT_A.get(pen) if a is None else a
        for lam in (0.0045, 0.8):
            xt = torch.tensor(x, dtype=dtype)
            got = P.value(pen, xt, lam, a, sizes=sizes)
            assert got.dim() == 0 and got.dtype == dtype
            xn = xt.double().numpy()
            if pen == "l1-l2":
                want = sum(lam * (np.abs(c).sum() - np.linalg.norm(c)) for c in np.split(xn, [5, 15]))
            else:
                want = p_np(pen, xn, lam, aa).sum()
            rtol = 1e-12 if dtype == torch.float64 else 1e-5
            assert abs(float(got) - want) <= rtol * (1 + abs(want)), (pen, a, lam, float(got), want)


@pytest.mark.parametrize("pen", ["l1", "l1/2", "tl1", "mcp", "scad"])
def test_subgradient_is_the_derivative_away_from_kinks(pen):
    rng = np.random.default_rng(5)
    for a in A_VALUES.get(pen, [None]):
        aa = P.DEFAULT_A.get(pen) if a is None else a
        lam = 0.7
        x = rng.uniform(-3, 3, 200)
        kinks = [0.0, lam, aa * lam if aa else 0.0]
        x = x[np.min(np.abs(np.abs(x)[:, None] - np.array(kinks)[None]), axis=1) > 1e-3]
        g = P.subgradient(pen, torch.tensor(x), lam, a).numpy()
        h = 1e-6
        fd = (p_np(pen, x + h, lam, aa) - p_np(pen, x - h, lam, aa)) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6, err_msg=f"{pen} a={a}")
        zero = P.subgradient(pen, torch.zeros(3, dtype=torch.float64), lam, a)
        assert (zero == 0).all()


def test_subgradient_l1l2_and_l0():
    rng = np.random.default_rng(6)
    x = rng.normal(0, 1, 9)
    sizes, lam, h = [4, 5], 0.3, 1e-6
    g = P.subgradient("l1-l2", torch.tensor(x), lam, sizes=sizes).numpy()

    def val(y):
        return sum(lam * (np.abs(c).sum() - np.linalg.norm(c)) for c in np.split(y, [4]))

    fd = np.array([(val(x + h * e) - val(x - h * e)) / (2 * h) for e in np.eye(9)])
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6)
    zero = torch.tensor([0.0, 0.0, 1.0, -2.0], dtype=torch.float64)
    gz = P.subgradient("l1-l2", zero, lam, sizes=[2, 2])
    assert gz[:2].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="no useful subgradient"):
        P.subgradient("l0", torch.ones(3), lam)
    assert "l0" not in P.NS_PENALTIES


# ---------------------------------------------------------------------------------------- validation


def test_rules_and_defaults():
    assert P.PENALTIES == ("l1", "l0", "l1/2", "tl1", "l1-l2", "mcp", "scad")
    assert P.DEFAULT_A == {"tl1": 1.0, "mcp": 3.0, "scad": 3.7}
    assert [p for p in P.PENALTIES if P.takes_a(p)] == ["tl1", "mcp", "scad"]
    v = torch.ones(3)
    with pytest.raises(ValueError, match="a > 2"):
        P.prox("scad", v, 0.1, 1.0, a=2.0)
    with pytest.raises(ValueError, match="a > 0"):
        P.prox("mcp", v, 0.1, 1.0, a=0.0)
    with pytest.raises(ValueError, match="a > 0"):
        P.value("tl1", v, 1.0, a=-1.0)
    with pytest.raises(ValueError, match="unknown penalty"):
        P.prox("l2", v, 0.1, 1.0)
    with pytest.raises(ValueError, match="no shape parameter"):
        P.prox("l1", v, 0.1, 1.0, a=1.0)
    with pytest.raises(ValueError, match="step"):
        P.prox("l1", v, 0.0, 1.0)
    with pytest.raises(ValueError, match="lam"):
        P.prox("l1", v, 0.1, -1.0)
    P.check("mcp", 0.01, 1.0, 1.0)  # a ≤ step is solved exactly, not refused


@pytest.mark.parametrize("pen", P.PENALTIES)
def test_l1_is_the_papers_soft_threshold_and_halves_keep_dtype(pen):
    from proxns_core.sparsity import soft_threshold

    v = torch.randn(50, generator=torch.Generator().manual_seed(1))
    if pen == "l1":
        assert torch.equal(P.prox("l1", v, 0.1, 0.3), soft_threshold(v, 0.1 * 0.3))
    xh = P.prox(pen, v.half(), 0.1, 0.3)
    assert xh.dtype == torch.float16 and torch.isfinite(xh).all()
    assert torch.equal(P.prox(pen, v, 0.1, 0.0), v)  # λ = 0: the identity


# ------------------------------------------------------------------------------------------- CUDA


@pytest.mark.cuda
def test_prox_captures_in_a_cuda_graph_without_syncs():
    """No host synchronisation (sync debug mode errors on one) and the same result replayed in a graph,
    the ℓ1−ℓ2 layout built for the first time inside the capture."""
    dev = torch.device("cuda")
    sizes = [16, 32, 64, 7]
    v = torch.randn(sum(sizes), device=dev)
    kw = {"tl1": {"a": 0.5}, "mcp": {"a": 0.05}, "scad": {"a": 2.5}}
    P._LAYOUTS.clear()
    static_v = v.clone()
    outs = {}
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=side):
        for pen in P.PENALTIES:
            outs[pen] = P.prox(pen, static_v, 2.0, 0.3, sizes=sizes, **kw.get(pen, {}))
    assert not P._LAYOUTS  # nothing cached from inside a capture
    new_v = torch.randn(sum(sizes), device=dev)
    static_v.copy_(new_v)
    graph.replay()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        eager = {pen: P.prox(pen, new_v, 2.0, 0.3, sizes=sizes, **kw.get(pen, {})) for pen in P.PENALTIES}
        eager_again = {
            pen: P.prox(pen, new_v, 2.0, 0.3, sizes=sizes, **kw.get(pen, {})) for pen in P.PENALTIES
        }
    finally:
        torch.cuda.set_sync_debug_mode("default")
    for pen in P.PENALTIES:
        assert torch.equal(outs[pen], eager[pen]), pen
        assert torch.equal(eager_again[pen], eager[pen]), pen
