"""Tests for clvmodel.budget.allocation: optimality of the allocation (corner solutions for linear
channels, equal marginals for concave ones, the KKT conditions on random problems) and its errors."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import OptimizeResult

from clvmodel.budget import UNKNOWN, CacConfig, allocate
from clvmodel.budget import allocation
from clvmodel.errors import ClvError


def stats(**mean_clv: float) -> pd.DataFrame:
    """A minimal channel_stats frame: channel and mean_clv."""
    return pd.DataFrame({"channel": list(mean_clv), "mean_clv": list(mean_clv.values())})


def greedy_linear(value_per_dollar: dict, lower: dict, upper: dict, budget_total: float) -> dict:
    """Analytic optimum for linear channels: pay every min_spend, then fill the channels in
    order of value per dollar (> 1 only) up to their max until the budget runs out."""
    spend = dict(lower)
    left = budget_total - sum(lower.values())
    for name in sorted(value_per_dollar, key=value_per_dollar.get, reverse=True):
        if value_per_dollar[name] <= 1 or left <= 0:
            break
        extra = min(upper[name] - spend[name], left)
        spend[name] += extra
        left -= extra
    return spend


def test_linear_allocation_is_the_corner_solution(cfg: Callable[..., CacConfig]) -> None:
    config = cfg(
        {"a": {"cac": 10, "max_spend": 40000}, "b": {"cac": 20, "max_spend": 30000},
         "c": {"cac": 5, "max_spend": 50000}, "d": {"cac": 100, "min_spend": 1000}},
        budget=100000,
    )
    out = allocate(stats(a=30.0, b=50.0, c=12.0, d=50.0), config)
    # Value per dollar: a 3.0, b 2.5, c 2.4, d 0.5. d's minimum first, then a and b to their
    # max, c takes the remaining 29,000.
    expected = pd.DataFrame({
        "channel": ["a", "b", "c", "d"],
        "allocated_spend": [40000.0, 30000.0, 29000.0, 1000.0],
        "expected_customers": [4000.0, 1500.0, 5800.0, 10.0],
        "expected_clv": [120000.0, 75000.0, 69600.0, 500.0],
        "marginal_ltv_cac": [3.0, 2.5, 2.4, 0.5],
        "bound": ["max", "max", "none", "min"],
    })
    pd.testing.assert_frame_equal(out[list(expected.columns)], expected, check_exact=False, rtol=1e-9)
    assert any("min_spend 1000 is spent although its marginal LTV:CAC is 0.50" in w
               for w in out.attrs["warnings"])


@pytest.mark.parametrize("seed", range(8))
def test_linear_allocation_matches_greedy(seed: int, cfg: Callable[..., CacConfig]) -> None:
    rng = np.random.default_rng(seed)
    names = [f"c{i}" for i in range(int(rng.integers(2, 6)))]
    cac = dict(zip(names, rng.uniform(5, 50, len(names))))
    mean = dict(zip(names, rng.uniform(5, 100, len(names))))
    total = float(rng.choice([1e3, 5e4, 1e6]))
    lower = dict(zip(names, np.where(rng.random(len(names)) < 0.4,
                                     rng.uniform(0, total / (2 * len(names)), len(names)), 0.0)))
    upper = {n: lower[n] + float(rng.uniform(0, total / 2)) for n in names}
    config = cfg(
        {n: {"cac": float(cac[n]), "min_spend": float(lower[n]), "max_spend": upper[n]}
         for n in names},
        budget=total,
    )
    out = allocate(stats(**mean), config).set_index("channel")
    expected = greedy_linear({n: mean[n] / cac[n] for n in names}, lower, upper, total)
    for n in names:
        assert out.loc[n, "allocated_spend"] == pytest.approx(expected[n], rel=1e-6, abs=1e-6 * total)


def test_linear_allocation_leaves_budget_when_nothing_pays(cfg: Callable[..., CacConfig]) -> None:
    config = cfg({"good": {"cac": 10, "max_spend": 5000}, "bad": {"cac": 50}}, budget=20000)
    out = allocate(stats(good=30.0, bad=40.0), config).set_index("channel")
    assert out.loc["good", "allocated_spend"] == 5000  # 3 per dollar, up to its cap
    assert out.loc["bad", "allocated_spend"] == 0  # 0.8 per dollar: every dollar loses money
    assert any(re.match(r"allocated 5,000 of the 20,000 budget", w) for w in out.attrs["warnings"])


@pytest.fixture
def concave_config(cfg: Callable[..., CacConfig]) -> Callable[..., CacConfig]:
    """``concave_config(total, **extra)``: three concave channels a, b, c (c calibrated), budget
    ``total``; ``extra`` adds keys to a channel."""

    def make(total: float, **extra: dict) -> CacConfig:
        channels = {
            "a": {"cac": 10, "response": {"k": 2.0, "beta": 0.5}},
            "b": {"cac": 10, "response": {"k": 1.0, "beta": 0.7}},
            "c": {"spend": 1000, "customers": 60, "response": {"beta": 0.8}},
        }
        for name, more in extra.items():
            channels[name] = {**channels[name], **more}
        return cfg(channels, budget=total)

    return make


CONCAVE_MEANS = {"a": 40.0, "b": 30.0, "c": 25.0}


def test_concave_allocation_budget_not_binding_marginals_equal_one(
    concave_config: Callable[..., CacConfig],
) -> None:
    config = concave_config(1e6)
    out = allocate(stats(**CONCAVE_MEANS), config).set_index("channel")
    assert out["allocated_spend"].sum() < 1e6
    assert (out["bound"] == "none").all()
    np.testing.assert_allclose(out["marginal_ltv_cac"], 1.0, rtol=1e-3)
    # Closed form: v * k * beta * s**(beta - 1) = 1  ->  s = (v * k * beta) ** (1 / (1 - beta)).
    for name, ch in config.channels.items():
        k, beta = ch.curve()
        s = (CONCAVE_MEANS[name] * k * beta) ** (1 / (1 - beta))
        assert out.loc[name, "allocated_spend"] == pytest.approx(s, rel=1e-4)
        assert out.loc[name, "expected_customers"] == pytest.approx(k * s**beta, rel=1e-4)
    assert any("of the 1,000,000 budget" in w for w in out.attrs["warnings"])


@pytest.mark.parametrize("total", [500.0, 3000.0, 20000.0])
def test_concave_allocation_budget_binding_common_lambda(
    total: float,
    concave_config: Callable[..., CacConfig],
) -> None:
    out = allocate(stats(**CONCAVE_MEANS), concave_config(total))
    assert out["allocated_spend"].sum() == pytest.approx(total, rel=1e-9)
    free = out[out["bound"] == "none"]["marginal_ltv_cac"]
    assert len(free) == 3
    lam = free.mean()
    assert lam > 1.0
    np.testing.assert_allclose(free, lam, rtol=1e-3)
    assert out.attrs["warnings"] == []


def test_concave_allocation_respects_bounds(concave_config: Callable[..., CacConfig]) -> None:
    # a capped below its optimum, c forced above it: the free channel b alone sets the price.
    config = concave_config(5000, a={"max_spend": 100}, c={"min_spend": 3000})
    out = allocate(stats(**CONCAVE_MEANS), config).set_index("channel")
    assert out.loc["a", "allocated_spend"] == pytest.approx(100) and out.loc["a", "bound"] == "max"
    assert out.loc["c", "allocated_spend"] == pytest.approx(3000) and out.loc["c", "bound"] == "min"
    assert out["allocated_spend"].sum() == pytest.approx(5000)
    mu = out.loc["b", "marginal_ltv_cac"]
    assert mu > 1
    assert out.loc["a", "marginal_ltv_cac"] >= mu  # capped: would take more at this price
    assert out.loc["c", "marginal_ltv_cac"] <= mu  # forced: would take less


def test_mixed_linear_and_concave(cfg: Callable[..., CacConfig]) -> None:
    # A linear channel worth 2 per dollar, unbounded: concave channels get spend until their
    # marginal falls to 2, the linear one absorbs the rest of the budget.
    config = cfg(
        {"lin": {"cac": 10}, "a": {"cac": 10, "response": {"k": 2.0, "beta": 0.5}},
         "b": {"cac": 10, "response": {"k": 1.0, "beta": 0.7}}},
        budget=50000,
    )
    means = {"lin": 20.0, "a": 40.0, "b": 30.0}
    out = allocate(stats(**means), config).set_index("channel")
    assert out["allocated_spend"].sum() == pytest.approx(50000)
    np.testing.assert_allclose(out["marginal_ltv_cac"], 2.0, rtol=1e-3)
    s_a = (40 * 2.0 * 0.5 / 2.0) ** (1 / 0.5)
    assert out.loc["a", "allocated_spend"] == pytest.approx(s_a, rel=1e-4)


@pytest.mark.parametrize("seed", range(10))
def test_random_concave_problems_satisfy_kkt(seed: int, cfg: Callable[..., CacConfig]) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(2, 6))
    names = [f"c{i}" for i in range(n)]
    beta = rng.choice([0.3, 0.5, 0.8, 0.95, 1.0], n)
    k = rng.uniform(0.2, 3, n) * np.where(beta >= 1, 0.05, 1)
    total = float(rng.choice([1e4, 1e5, 1e6]))
    channels = {
        name: {"cac": 10, "max_spend": (float(rng.uniform(0.05, 0.5) * total)
                                        if rng.random() < 0.3 else None),
               "response": {"k": float(k[i]), "beta": float(beta[i])}}
        for i, name in enumerate(names)
    }
    means = dict(zip(names, rng.uniform(5, 60, n)))
    out = allocate(stats(**means), cfg(channels, budget=total))
    spent = out["allocated_spend"].sum()
    assert spent <= total * (1 + 1e-9)
    m = out["marginal_ltv_cac"].to_numpy()
    free = (out["bound"] == "none").to_numpy()
    binding = spent >= total * (1 - 1e-6)
    mu = m[free].mean() if free.any() else (1.0 if not binding else m[out["bound"] == "min"].max())
    np.testing.assert_allclose(m[free], mu, rtol=1e-3)
    if not binding:
        assert mu == pytest.approx(1.0, rel=1e-3)
    assert mu >= 1 - 1e-3
    at_max = (out["bound"] == "max").to_numpy()
    assert (m[at_max] >= mu * (1 - 1e-3)).all()


def test_allocation_excludes_unknown_and_gives_no_data_channels_their_min(
    cfg: Callable[..., CacConfig],
) -> None:
    config = cfg({"a": {"cac": 10}, "ghost": {"cac": 1, "min_spend": 500}}, budget=10000)
    stats_frame = pd.DataFrame(
        {"channel": ["a", "ghost", UNKNOWN], "mean_clv": [30.0, np.nan, 100.0]}
    )
    out = allocate(stats_frame, config).set_index("channel")
    assert UNKNOWN not in out.index
    assert out.loc["ghost", "allocated_spend"] == 500  # no customers, no evidence of value
    assert out.loc["a", "allocated_spend"] == pytest.approx(9500)
    assert any("ghost: no customers in the scores" in w for w in out.attrs["warnings"])


def test_zero_budget_allocates_nothing(cfg: Callable[..., CacConfig]) -> None:
    out = allocate(stats(a=30.0), cfg({"a": {"cac": 10}}, budget=0))
    assert out["allocated_spend"].tolist() == [0.0]


def test_allocate_errors(monkeypatch: pytest.MonkeyPatch, cfg: Callable[..., CacConfig]) -> None:
    config = cfg({"a": {"cac": 10, "response": {"k": 2, "beta": 0.5}}, "b": {"cac": 5}},
                 budget=1000)
    with pytest.raises(ClvError, match=r"without a CAC entry: tv;"):
        allocate(stats(a=30.0, b=20.0, tv=5.0), config)
    # Minimums above the budget cannot be reached through a validated config, but channel
    # stats can meet a config built without validation.
    loose = CacConfig.model_construct(**{**dict(config), "budget": 10.0,
                                         "channels": {"a": config.channels["a"].model_copy(
                                             update={"min_spend": 50.0})}})
    with pytest.raises(ClvError, match=r"^infeasible: budget 10 is below the channels' minimum "
                                       r"spend 50; raise budget or lower min_spend$"):
        allocate(stats(a=30.0), loose)

    def stuck(fun, x0, **kwargs):  # an optimiser that gives up where it started
        return OptimizeResult(x=np.asarray(x0) * 0 + 1e-9, success=False, status=9,
                              message="Iteration limit reached")

    monkeypatch.setattr(allocation, "minimize", stuck)
    with pytest.raises(ClvError, match=r"budget allocation did not converge: Iteration limit "
                                       r"reached; check the channels' response curves"):
        allocate(stats(a=30.0, b=20.0), config)
