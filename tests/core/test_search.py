"""The λ search of a budget (issue 12, item 3), on model curves of the pruned share against λ."""

import math

import pytest
from pydantic import ValidationError

from proxns_core.search import LAM_MAX, Point, SearchSpec, decide, first_round, measured, search_lam


def run(spec, curve, default_lam, fail=()):
    """Play the search to its end against ``curve(λ) -> share``; jobs at λ in ``fail`` fail."""
    points: list[Point] = []
    for _ in range(100):
        d = decide(spec, points, default_lam)
        if d.done:
            return d, points
        assert d.lams, d.reason
        assert len(d.lams) <= spec.parallel and len(points) + len(d.lams) <= spec.max_jobs
        points += [Point(lam, None if lam in fail else curve(lam)) for lam in d.lams]
    raise AssertionError("the search did not end")


def smooth(lam):  # a logistic curve in log λ: 50 % at λ = 0.3
    return 1 / (1 + math.exp(-3 * (math.log(lam) - math.log(0.3))))


@pytest.mark.parametrize("parallel,max_jobs", [(1, 8), (2, 8), (3, 12)])
@pytest.mark.parametrize("value", [0.2, 0.5, 0.7, 0.9])
def test_a_reachable_budget_is_met_within_tolerance_in_at_most_max_jobs(parallel, max_jobs, value):
    # from the paper's VGG default λ, two orders of magnitude below the curve's middle
    spec = SearchSpec(target="pruned_fraction", value=value, parallel=parallel, max_jobs=max_jobs)
    d, points = run(spec, smooth, default_lam=0.0045)
    assert d.status == "met" and abs(d.best.value - value) <= 0.02
    assert len(points) <= max_jobs
    # the reported job is the closest of those that met it
    assert d.best.value == min((p.value for p in points), key=lambda v: abs(v - value))


def test_the_first_round_spreads_by_factors_of_four_around_the_default():
    assert first_round(0.5, 1) == [0.5]
    assert first_round(0.5, 2) == [0.25, 1.0]
    assert first_round(0.5, 3) == [0.125, 0.5, 2.0]


def test_inside_the_tightest_bracket_lambda_is_interpolated_in_log_lambda_against_logit_share():
    spec = SearchSpec(target="pruned_fraction", value=0.5, parallel=1)
    # symmetric shares around the target: the middle of the bracket in log λ
    d = decide(spec, [Point(0.01, 0.1), Point(1.0, 0.9)], 0.01)
    assert d.lams == [pytest.approx(0.1, rel=1e-5)]
    # the tightest bracket is 0.08 .. 1.0; logit(0.3) = -0.847, logit(0.9) = 2.197: t = 0.278
    d1 = decide(spec, [Point(0.01, 0.1), Point(0.08, 0.3), Point(1.0, 0.9)], 0.01)
    t = 0.847298 / (0.847298 + 2.197225)
    assert d1.lams == [pytest.approx(0.08 * 12.5**t, rel=1e-4)]
    # two jobs a round: a tenth of the bracket either side of that point
    spec2 = SearchSpec(target="pruned_fraction", value=0.5, parallel=2)
    d2 = decide(spec2, [Point(0.01, 0.1), Point(0.08, 0.3), Point(1.0, 0.9)], 0.01)
    assert d2.lams == [
        pytest.approx(0.08 * 12.5 ** (t - 0.05), rel=1e-4),
        pytest.approx(0.08 * 12.5 ** (t + 0.05), rel=1e-4),
    ]
    # a share barely moving across the bracket: the point stays off the ends
    d3 = decide(spec, [Point(0.01, 0.45), Point(1.0, 0.9)], 0.01)
    assert d3.lams == [pytest.approx(0.01 * 100**0.15, rel=1e-4)]


def test_a_budget_beyond_the_largest_lambda_ends_with_the_closest_job_and_why():
    spec = SearchSpec(target="pruned_fraction", value=0.9, max_jobs=8)
    d, points = run(spec, lambda lam: min(0.35, smooth(lam)), default_lam=0.5)
    assert d.status == "closest" and "cannot be met" in d.reason and "35.0 %" in d.reason
    assert max(p.lam for p in points) == LAM_MAX and d.best.value == pytest.approx(0.35)


def test_a_knife_edge_ends_when_the_bracket_is_exhausted():
    # PAPER.md: the share jumps from 23 % to 80 % between two λ a hair apart
    spec = SearchSpec(target="pruned_fraction", value=0.5, max_jobs=64, parallel=2)
    d, points = run(spec, lambda lam: 0.23 if lam < 0.3137 else 0.80, default_lam=0.0045)
    assert d.status == "closest" and "jumps from 23.0 % " in d.reason
    assert len(points) < 64
    assert d.best.value in (0.23, 0.80)


def test_max_jobs_ends_the_search_with_the_closest():
    spec = SearchSpec(target="pruned_fraction", value=0.5, max_jobs=3, parallel=1, tolerance=0.001)
    d, points = run(spec, smooth, default_lam=0.0045)
    assert len(points) == 3 and d.status == "closest" and "max_jobs (3)" in d.reason
    assert d.best is min(points, key=lambda p: abs(p.value - 0.5))


def test_failed_jobs_count_but_do_not_bracket():
    spec = SearchSpec(target="pruned_fraction", value=0.5, parallel=2)
    d, points = run(spec, smooth, default_lam=0.3, fail={0.15})
    assert d.status == "met" and any(p.value is None for p in points)
    all_failed = decide(spec, [Point(0.1, None), Point(0.2, None)], 0.1)
    assert all_failed.done and all_failed.best is None and "failed" in all_failed.reason


def test_a_round_in_flight_is_waited_for():
    spec = SearchSpec(target="pruned_fraction", value=0.5)
    d = decide(spec, [Point(0.1, 0.2), Point(0.4, None, finished=False)], 0.1)
    assert not d.done and d.lams == []


def test_flops_target_reads_the_flops_removed():
    result = {"pruned_fraction": 0.8, "flops_full": 400, "flops_slim": 100}
    assert measured("flops_fraction", result) == 0.75 and measured("pruned_fraction", result) == 0.8


@pytest.mark.parametrize(
    "bad,field",
    [
        ({"target": "params"}, "target"),
        ({"value": 1.0}, "value"),
        ({"value": 0}, "value"),
        ({"tolerance": 0}, "tolerance"),
        ({"max_jobs": 0}, "max_jobs"),
        ({"parallel": 0}, "parallel"),
        ({"lam": 1}, "lam"),
    ],
)
def test_invalid_search_specs_name_the_field(bad, field):
    with pytest.raises(ValidationError) as err:
        SearchSpec.model_validate({"target": "pruned_fraction", "value": 0.5, **bad})
    assert err.value.errors()[0]["loc"][0] == field


def test_search_lam_runs_the_rounds_one_job_at_a_time():
    spec = SearchSpec(target="flops_fraction", value=0.6, parallel=2)
    ran = []

    def run(lam):
        ran.append(lam)
        return None if len(ran) == 1 else {"flops_full": 100.0, "flops_slim": 100.0 * (1 - smooth(lam))}

    d, points = search_lam(spec, 0.1, run)
    assert d.status == "met" and abs(d.best.value - 0.6) <= 0.02
    assert [p.lam for p in points] == ran and points[0].value is None and len(ran) <= 8


def test_a_failed_lambda_is_stepped_past_not_proposed_again():
    spec = SearchSpec(target="pruned_fraction", value=0.5, parallel=1)
    up = decide(spec, [Point(0.25, 0.0), Point(4.0, None)], 0.25)
    assert not up.done and up.lams == [10.0]  # 0.25 × 16 = 4 failed: one more step, capped at λ 10
    inside = decide(spec, [Point(0.01, 0.1), Point(1.0, 0.9), Point(0.1, None)], 0.01)
    assert not inside.done and inside.lams == [pytest.approx(math.sqrt(0.1), rel=1e-5)]


def test_shares_on_the_same_side_of_the_clip_bisect_instead_of_dividing_by_zero():
    spec = SearchSpec(target="pruned_fraction", value=0.995, tolerance=0.001)
    d = decide(spec, [Point(0.1, 0.991), Point(0.4, 0.999)], 0.1)
    lo_t, hi_t = 0.5 - 0.05, 0.5 + 0.05
    assert (
        not d.done
        and [pytest.approx(0.1 * 4**lo_t, rel=1e-4), pytest.approx(0.1 * 4**hi_t, rel=1e-4)] == d.lams
    )
