"""Pruning to a budget: the λ search behind ``search: {target, value, ...}`` and ``--target-pruned``.

Users think in budgets (80 % of the channels, a quarter of the FLOPs), not in λ. The share a run
prunes grows with λ, so the search looks for λ on a log scale. It brackets the target first, starting
from the config's λ (or the method's default) and moving by a factor of 4 (16 while the share is
still below 1 %, or above 99 %). It then bisects the bracket in log λ, at the regula-falsi point of
the share's logit against log λ, kept off the bracket's ends. It runs in rounds of ``parallel`` jobs
(inside a bracket, the round's jobs sit a tenth of the bracket apart around that point); each round
is decided from the finished jobs only, so the search is the same whether its jobs run one after
another (``proxns train --target-pruned``) or side by side (an experiment's workers).

It stops when a job meets the budget (|measured − value| ≤ tolerance), when ``max_jobs`` jobs exist,
when the budget is out of reach (the largest λ allowed still prunes too little, or the smallest too
much), or when the bracket has shrunk to nothing without meeting it: at this scale the pruned share
can jump across the target between two λ a hair apart (PAPER.md, "λ is a knife-edge"), and the search
says so rather than run on. It then reports the closest job and why it stopped.

Pure Python (the API and the worker run it without torch); :func:`decide` is a function of its inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Target = Literal["pruned_fraction", "flops_fraction"]
TARGETS: tuple[str, ...] = Target.__args__

#: The λ range the search may use: the config's own bounds (``TrainConfig.lam``: 0 ≤ λ ≤ 10).
LAM_MAX = 10.0
LAM_MIN = 1e-6
#: Factor by which the bracketing steps move λ.
STEP = 4.0
#: A bracket narrower than this ratio (hi / lo) is exhausted: λ cannot be told apart any further.
MIN_RATIO = 1.001
#: Inside a bracket, the interpolated λ stays this share (of the bracket, in log λ) off its ends.
GUARD = 0.15
#: A round's jobs inside a bracket sit this far apart (share of the bracket in log λ) around that λ.
SPREAD = 0.1


class SearchSpec(BaseModel):
    """An experiment's (or ``proxns train``'s) budget: the share to remove and how hard to look for λ."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    target: Target = Field(
        description="pruned_fraction: the share of prunable channels removed; flops_fraction: the share "
        "of multiply-accumulates removed (1 − flops_slim / flops_full; a quarter of the FLOPs left is 0.75)."
    )
    value: float = Field(gt=0, lt=1, description="The share to reach, in (0, 1).")
    tolerance: float = Field(0.02, gt=0, le=0.5, description="How close counts as met: |measured − value|.")
    max_jobs: int = Field(8, ge=1, le=64, description="Most jobs the search creates.")
    parallel: int = Field(2, ge=1, le=16, description="Jobs per round (run side by side by the workers).")


def measured(target: str, result: dict) -> float:
    """The share a finished job removed, by ``target``, from its result (a ``Result`` as a dict)."""
    if target == "pruned_fraction":
        return float(result["pruned_fraction"])
    full, slim = float(result["flops_full"]), float(result["flops_slim"])
    return 1.0 - slim / full if full > 0 else 0.0


@dataclass
class Point:
    """One job of the search: its λ and, once finished, the share it removed (None: failed or running)."""

    lam: float
    value: float | None = None
    job_id: int | None = None
    finished: bool = True


@dataclass
class Decision:
    """What to do next: the λ of the next round's jobs, or the end of the search and its outcome."""

    lams: list[float] = field(default_factory=list)
    done: bool = False
    status: Literal["running", "met", "closest"] = "running"
    best: Point | None = None
    reason: str = ""


def _closest(points: list[Point], spec: SearchSpec) -> Point | None:
    done = [p for p in points if p.value is not None]
    return min(done, key=lambda p: (abs(p.value - spec.value), p.lam)) if done else None


def _logit(share: float) -> float:
    """The share on a logit scale, where a removed share against log λ is nearly straight."""
    p = min(max(share, 0.01), 0.99)  # a share of 0 or 1 says little about how far
    return math.log(p / (1 - p))


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _share(x: float) -> str:
    return f"{100 * x:.1f} %"


def first_round(default_lam: float, parallel: int) -> list[float]:
    """The first round: the default λ, or ``parallel`` λ spread by factors of 4 around it."""
    lam = min(max(default_lam, LAM_MIN), LAM_MAX)
    if parallel == 1:
        return [lam]
    spread = [lam * STEP ** (i - (parallel - 1) / 2) for i in range(parallel)]
    return sorted({_clip(x) for x in spread})


def _clip(lam: float) -> float:
    return float(f"{min(max(lam, LAM_MIN), LAM_MAX):.6g}")


def decide(spec: SearchSpec, points: list[Point], default_lam: float) -> Decision:
    """The next step of the search given every job so far (finished or not)."""
    if any(not p.finished for p in points):
        return Decision(reason="waiting for the round's jobs")
    best = _closest(points, spec)
    met = [p for p in points if p.value is not None and abs(p.value - spec.value) <= spec.tolerance]
    if met:
        best = min(met, key=lambda p: (abs(p.value - spec.value), p.lam))
        return Decision(
            done=True,
            status="met",
            best=best,
            reason=f"λ {_fmt(best.lam)} removes {_share(best.value)} (target {_share(spec.value)} ± "
            f"{_share(spec.tolerance)})",
        )
    room = spec.max_jobs - len(points)
    if room <= 0:
        return _stop(best, spec, f"max_jobs ({spec.max_jobs}) reached without meeting the target")
    if not points:
        return Decision(lams=first_round(default_lam, spec.parallel)[:room])

    done = sorted((p for p in points if p.value is not None), key=lambda p: p.lam)
    if not done:
        return _stop(None, spec, "every job of the search failed")
    tried = {p.lam for p in points}
    below = [p for p in done if p.value < spec.value]
    above = [p for p in done if p.value > spec.value]
    lo = max(below, key=lambda p: p.lam) if below else None
    hi = min(above, key=lambda p: p.lam) if above else None
    n = min(spec.parallel, room)
    if lo is not None and hi is not None and lo.lam >= hi.lam:
        return _stop(
            best,
            spec,
            f"the removed share is not monotone in λ here (λ {_fmt(hi.lam)} → {_share(hi.value)}, "
            f"λ {_fmt(lo.lam)} → {_share(lo.value)}): stopped at the closest job",
        )
    if hi is None:  # everything prunes too little: raise λ
        if lo.lam >= LAM_MAX:
            return _stop(
                best,
                spec,
                f"the target cannot be met: λ {_fmt(LAM_MAX)} (the largest allowed) removes only "
                f"{_share(lo.value)}",
            )
        step = STEP**2 if lo.value < 0.01 else STEP  # nothing pruned yet says little: stride faster
        lams = [_clip(lo.lam * step * STEP**j) for j in range(n)]
    elif lo is None:  # everything prunes too much: lower λ
        if hi.lam <= LAM_MIN:
            return _stop(
                best,
                spec,
                f"the target cannot be met: λ {_fmt(LAM_MIN)} (the smallest tried) already removes "
                f"{_share(hi.value)}",
            )
        step = STEP**2 if hi.value > 0.99 else STEP
        lams = [_clip(hi.lam / (step * STEP**j)) for j in range(n)]
    else:
        if hi.lam / lo.lam < MIN_RATIO:
            return _stop(
                best,
                spec,
                f"the removed share jumps from {_share(lo.value)} at λ {_fmt(lo.lam)} to {_share(hi.value)} "
                f"at λ {_fmt(hi.lam)}: no λ between them can be told apart, so none meets the target here",
            )
        a, b = math.log(lo.lam), math.log(hi.lam)
        # Regula falsi in log λ, kept off the ends (a plain bisection point when the share
        # barely moves across the bracket), plus evenly spread points for the other jobs.
        rise = _logit(hi.value) - _logit(lo.value)
        # both ends in the same clipped zone (< 1 % or > 99 %): no slope to follow, bisect
        t = (_logit(spec.value) - _logit(lo.value)) / rise if rise > 0 else 0.5
        t = min(max(t, GUARD), 1 - GUARD)
        spots = [min(max(t + (j - (n - 1) / 2) * SPREAD, GUARD / 2), 1 - GUARD / 2) for j in range(n)]
        lams = [_clip(math.exp(a + (b - a) * u)) for u in spots]
    # A λ tried before (its job failed: it gave no share) is not proposed again; when the whole
    # round was tried, it is stepped past: up or down by the bracketing factor, or halfway to the
    # bracket's far end.
    fresh = sorted({x for x in lams if x not in tried})
    x = lams[0]
    for _ in range(8 if not fresh else 0):
        if hi is None:
            x = _clip(x * STEP)
        elif lo is None:
            x = _clip(x / STEP)
        else:
            x = _clip(math.sqrt(x * hi.lam))
        if x not in tried:
            fresh = [x]
            break
    if not fresh:
        return _stop(best, spec, "λ cannot be refined further (every candidate was tried)")
    return Decision(lams=sorted(fresh))


def search_lam(
    spec: SearchSpec,
    default_lam: float,
    run: Callable[[float], dict | None],
) -> tuple[Decision, list[Point]]:
    """Run a whole search one job at a time: ``run(λ)`` trains at λ and returns its result as a dict
    (None when it failed). Returns the final decision and every point, in the order they ran."""
    points: list[Point] = []
    while True:
        decision = decide(spec, points, default_lam)
        if decision.done:
            return decision, points
        for lam in decision.lams:
            result = run(lam)
            points.append(Point(lam, None if result is None else measured(spec.target, result)))


def _stop(best: Point | None, spec: SearchSpec, why: str) -> Decision:
    if best is not None:
        why += f"; closest: λ {_fmt(best.lam)} removes {_share(best.value)} (target {_share(spec.value)})"
    return Decision(done=True, status="closest", best=best, reason=why)


__all__ = ["TARGETS", "SearchSpec", "Point", "Decision", "decide", "first_round", "measured", "search_lam"]
