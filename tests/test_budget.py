"""Tests for clvmodel.budget: config errors, channel attachment, ratios and payback computed by
hand, allocation optimality (corner solutions for linear channels, equal marginals for concave
ones), segments, the report and the synthetic demo."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy.optimize import OptimizeResult

import clvmodel.budget as budget
from clvmodel.budget import (
    UNKNOWN,
    BudgetResult,
    CacConfig,
    allocate,
    attach_channels,
    channel_table,
    format_report,
    load_cac_config,
    ltv_cac_chart,
    parse_cac_config,
    run_budget,
    segment_table,
    synthetic_channels,
)
from clvmodel.errors import ClvError

REPO = Path(__file__).resolve().parents[1]

BRIEF_YAML = """\
target_ratio: 3.0
margin: 1.0                 # applied to predicted_clv when the scores are revenue
budget: 100000              # total acquisition budget to allocate
channels:
  search: {cac: 40.0, min_spend: 0, max_spend: 60000, response: {k: 2.5, beta: 0.8}}
  social: {spend: 20000, customers: 800}          # CAC = spend / customers
"""


def cfg(channels: dict, **top: object) -> CacConfig:
    return parse_cac_config({"channels": channels, **top})


def stats(**mean_clv: float) -> pd.DataFrame:
    """A minimal channel_stats frame: channel and mean_clv."""
    return pd.DataFrame({"channel": list(mean_clv), "mean_clv": list(mean_clv.values())})


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


def test_load_brief_example(tmp_path: Path) -> None:
    path = tmp_path / "cac.yaml"
    path.write_text(BRIEF_YAML)
    config = load_cac_config(path)
    assert config.target_ratio == 3.0 and config.margin == 1.0 and config.budget == 100000
    search, social = config.channels["search"], config.channels["social"]
    assert search.observed_cac == 40.0 and search.max_spend == 60000
    assert search.curve() == (2.5, 0.8)
    assert social.observed_cac == 25.0  # 20000 / 800
    assert social.curve() == pytest.approx((1 / 25.0, 1.0))  # linear at its CAC
    assert config.retention_weights == budget.DEFAULT_RETENTION_WEIGHTS
    assert config.horizon is None and config.retention_budget == 0


def test_response_k_calibrated_through_observed_point() -> None:
    ch = cfg({"s": {"spend": 10000, "customers": 400, "response": {"beta": 0.5}}}).channels["s"]
    k, beta = ch.curve()
    assert beta == 0.5
    assert k * 10000**beta == pytest.approx(400)  # curve passes through (spend, customers)


def test_partial_retention_weights_keep_defaults() -> None:
    config = cfg({"s": {"cac": 1}}, retention_weights={"lost": 0.5, "winback": 2})
    assert config.retention_weights["lost"] == 0.5
    assert config.retention_weights["VIP"] == 1.0
    assert config.retention_weights["winback"] == 2


def test_demo_config_is_labelled_synthetic_and_loads() -> None:
    path = REPO / "configs" / "cac_demo.yaml"
    assert "SYNTHETIC" in path.read_text()
    config = load_cac_config(path)
    assert set(config.channels) == set(budget.SYNTHETIC_CHANNEL_SHARES)
    assert config.margin == 0.3 and config.horizon == 39


BAD_CONFIGS = [
    ({"channels": {"s": {"cac": 0}}}, r"channels\.s\.cac: must be > 0 \(got 0\); CAC is a cost"),
    ({"channels": {"s": {"cac": -5}}}, r"channels\.s\.cac: must be > 0 \(got -5\)"),
    ({"channels": {"s": {"spend": 0, "customers": 3}}}, r"channels\.s\.spend: must be > 0"),
    ({"channels": {"s": {"spend": 10, "customers": 0}}}, r"channels\.s\.customers: must be > 0"),
    (
        {"channels": {"s": {"cac": 5, "spend": 10, "customers": 2}}},
        r"channels\.s: give either cac or spend\+customers, not both; remove one",
    ),
    ({"channels": {"s": {"min_spend": 1}}}, r"channels\.s: no CAC; set cac, or spend and customers"),
    ({"channels": {"s": {"spend": 10}}}, r"channels\.s: spend and customers go together; add customers"),
    (
        {"channels": {"s": {"cac": 5, "response": {"k": 1, "beta": 0}}}},
        r"channels\.s\.response\.beta: must be in \(0, 1\] \(got 0\); use 1 for a linear channel",
    ),
    (
        {"channels": {"s": {"cac": 5, "response": {"k": 1, "beta": 1.2}}}},
        r"channels\.s\.response\.beta: must be in \(0, 1\] \(got 1\.2\)",
    ),
    (
        {"channels": {"s": {"cac": 5, "response": {"k": 1, "beta": -0.5}}}},
        r"channels\.s\.response\.beta: must be in \(0, 1\]",
    ),
    (
        {"channels": {"s": {"cac": 5, "response": {"beta": 0.5}}}},
        r"channels\.s: response\.k is required when the channel gives cac",
    ),
    (
        {"channels": {"s": {"cac": 5, "min_spend": 5000, "max_spend": 1000}}, "budget": 1e5},
        r"channels\.s: min_spend 5000 is above max_spend 1000; lower min_spend or raise max_spend",
    ),
    (
        {
            "budget": 1000,
            "channels": {"a": {"cac": 5, "min_spend": 3000}, "b": {"cac": 5, "min_spend": 2000}},
        },
        r"^CAC config: infeasible: budget 1000 is below the channels' minimum spend 5000; "
        r"raise budget or lower min_spend$",
    ),
    ({"channels": {"s": {"cca": 5}}}, r"channels\.s\.cca: unknown key; remove it \(allowed: cac, "),
    ({"budjet": 5, "channels": {"s": {"cac": 5}}}, r"budjet: unknown key; remove it \(allowed: target"),
    ({"budget": 5}, r"channels: required key is missing; add it, e\.g\. channels: \{search: \{cac: 40\}\} \(each acquisition channel"),
    ({"channels": {}}, r"channels: is empty; add at least one channel"),
    ({"channels": {"unknown": {"cac": 5}}}, r"channels: 'unknown' is reserved .*; rename"),
    ({"margin": 1.5, "channels": {"s": {"cac": 5}}}, r"margin: must be <= 1 \(got 1\.5\)"),
    ({"margin": 0, "channels": {"s": {"cac": 5}}}, r"margin: must be > 0"),
    ({"target_ratio": 0.5, "channels": {"s": {"cac": 5}}}, r"target_ratio: must be >= 1"),
    ({"budget": -1, "channels": {"s": {"cac": 5}}}, r"budget: must be >= 0 \(got -1\)"),
    ({"budget": "lots", "channels": {"s": {"cac": 5}}}, r"budget: expected a number \(got 'lots'\)"),
    ({"budget": float("nan"), "channels": {"s": {"cac": 5}}}, r"budget: must be a finite number"),
    ({"horizon": 2.5, "channels": {"s": {"cac": 5}}}, r"horizon: expected a whole number"),
    ({"channels": {"s": "cheap"}}, r"channels\.s: expected a mapping of keys"),
    ({"channels": {7: {"cac": 5}}}, r"channels\.7: names must be text \(got 7\); quote the name"),
    (
        {"retention_weights": {"VIP": -1}, "channels": {"s": {"cac": 5}}},
        r"retention_weights\.VIP: must be >= 0 \(got -1\)",
    ),
]


@pytest.mark.parametrize(("data", "match"), BAD_CONFIGS)
def test_config_errors_are_one_line(data: dict, match: str) -> None:
    with pytest.raises(ClvError, match=match) as info:
        parse_cac_config(data)
    assert "\n" not in str(info.value)


def test_several_problems_are_counted_on_one_line() -> None:
    with pytest.raises(ClvError, match=r"\(and 1 more problem\)$") as info:
        parse_cac_config({"margin": 2, "budget": -1, "channels": {"s": {"cac": 5}}})
    assert "\n" not in str(info.value)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ClvError, match=r"CAC config not found: .*nope\.yaml; check the path"):
        load_cac_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("channels:\n  search: {cac: 4\n")
    with pytest.raises(ClvError, match=r"bad\.yaml: YAML syntax error at line \d+ .*; fix the YAML"):
        load_cac_config(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    with pytest.raises(ClvError, match=r"empty\.yaml: is empty, expected a mapping"):
        load_cac_config(empty)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ClvError, match=r"list\.yaml: is a list, expected a mapping"):
        load_cac_config(listy)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("channels:\n  search: {cac: -1}\n")
    with pytest.raises(ClvError, match=r"^.*wrong\.yaml: channels\.search\.cac: must be > 0"):
        load_cac_config(wrong)


# --------------------------------------------------------------------------------------------
# attach_channels
# --------------------------------------------------------------------------------------------


def test_attach_from_scores_column_cleans_missing_to_unknown() -> None:
    scores = pd.DataFrame(
        {"customer_id": ["a", "b", "c", "d"], "predicted_clv": [1.0, 2, 3, 4],
         "channel": ["search", None, "  ", " email "]}
    )
    out = attach_channels(scores)
    assert out["channel"].tolist() == ["search", UNKNOWN, UNKNOWN, "email"]
    assert pd.isna(scores["channel"].iloc[1])  # the input is not modified


def test_attach_without_any_channel_is_all_unknown() -> None:
    scores = pd.DataFrame({"customer_id": ["a", "b"], "predicted_clv": [1.0, 2.0]})
    assert attach_channels(scores)["channel"].tolist() == [UNKNOWN, UNKNOWN]


def test_attach_joins_on_ids_as_strings_and_keeps_every_row() -> None:
    scores = pd.DataFrame(
        {"customer_id": [1, 2, 3, 2], "predicted_clv": [1.0, 2, 3, 4], "channel": ["x"] * 4}
    )
    customers = pd.DataFrame(
        {"customer_id": ["2", "1", "99"], "channel": ["social", "search", "email"]}
    )
    out = attach_channels(scores, customers)
    # The customers table replaces the scores' own column; id 3 has no row -> unknown; the
    # duplicated score row for id 2 stays duplicated; id 99 (not scored) adds nothing.
    assert out["channel"].tolist() == ["search", "social", UNKNOWN, "social"]
    assert out["customer_id"].tolist() == [1, 2, 3, 2]
    assert out["predicted_clv"].tolist() == [1.0, 2, 3, 4]


def test_attach_reads_integral_float_ids() -> None:
    scores = pd.DataFrame({"customer_id": ["7", "8"], "predicted_clv": [1.0, 2.0]})
    customers = pd.DataFrame({"customer_id": [7.0, 8.0], "channel": ["a", "b"]})
    assert attach_channels(scores, customers)["channel"].tolist() == ["a", "b"]


@pytest.mark.parametrize("seed", range(5))
def test_attach_never_drops_a_row(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 200))
    ids = rng.integers(0, 150, n)  # duplicates allowed in the scores
    scores = pd.DataFrame({"customer_id": ids, "predicted_clv": rng.random(n)})
    known = np.unique(rng.integers(0, 150, 100))
    known = np.append(known, ids[0])  # at least one match
    customers = pd.DataFrame(
        {"customer_id": np.unique(known).astype(str),
         "channel": rng.choice(["a", "b", None], len(np.unique(known)))}
    )
    out = attach_channels(scores, customers)
    assert len(out) == n
    assert out["customer_id"].tolist() == ids.tolist()
    expected = dict(zip(customers["customer_id"], customers["channel"]))
    for cid, ch in zip(ids, out["channel"]):
        want = expected.get(str(cid))
        assert ch == (UNKNOWN if want is None or pd.isna(want) else want)


def test_attach_errors() -> None:
    scores = pd.DataFrame({"customer_id": ["a", "b"], "predicted_clv": [1.0, 2.0]})
    dup = pd.DataFrame({"customer_id": ["a", "a", "b"], "channel": ["x", "y", "x"]})
    with pytest.raises(ClvError, match=r"1 duplicate customer_id value\(s\) \(e\.g\. 'a'\); keep one"):
        attach_channels(scores, dup)
    with pytest.raises(ClvError, match=r"customers table has no column channel"):
        attach_channels(scores, pd.DataFrame({"customer_id": ["a"], "source": ["x"]}))
    with pytest.raises(ClvError, match=r"none of the 2 scores' customer ids appear .*'a' vs table '00a'"):
        attach_channels(scores, pd.DataFrame({"customer_id": ["00a"], "channel": ["x"]}))


# --------------------------------------------------------------------------------------------
# channel_table: ratios and payback by hand
# --------------------------------------------------------------------------------------------


def small_scores() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["a1", "a2", "a3", "b1", "b2", "d1", "u1"],
        "predicted_clv": [30.0, 50.0, 100.0, 10.0, 20.0, 30.0, 40.0],
        "channel": ["a", "a", "a", "b", "b", "d", None],
    })


def small_config(**top: object) -> CacConfig:
    return cfg(
        {"a": {"cac": 10}, "b": {"cac": 5}, "c": {"spend": 300, "customers": 10},
         "d": {"cac": 20}},
        **{"margin": 0.5, "target_ratio": 3, **top},
    )


def test_channel_table_by_hand() -> None:
    table = channel_table(attach_channels(small_scores()), small_config(), horizon=6)
    # a: mean 60 -> ltv_cac 0.5*60/10 = 3.0 (exactly the target: grow); max CAC 0.5*60/3 = 10;
    #    5 of margin a period over 6 periods covers 10 in period 2.
    # b: mean 15 -> 0.5*15/5 = 1.5 (hold); max CAC 2.5; 1.25 a period covers 5 in period 4.
    # c: configured, nobody in the scores -> no data; CAC 300/10 = 30.
    # d: mean 30 -> 0.5*30/20 = 0.75 (cut); 15 of margin in 6 periods never covers 20 -> NaN.
    # unknown: reported only.
    nan = float("nan")
    expected = pd.DataFrame({
        "channel": ["a", "b", "c", "d", "unknown"],
        "customers": np.array([3, 2, 0, 1, 1], dtype="int64"),
        "mean_clv": [60.0, 15.0, nan, 30.0, 40.0],
        "median_clv": [50.0, 15.0, nan, 30.0, 40.0],
        "total_clv": [180.0, 30.0, 0.0, 30.0, 40.0],
        "cac": [10.0, 5.0, 30.0, 20.0, nan],
        "ltv_cac": [3.0, 1.5, nan, 0.75, nan],
        "max_allowable_cac": [10.0, 2.5, nan, 5.0, nan],
        "payback_periods": [2.0, 4.0, nan, nan, nan],
        "verdict": ["grow", "hold", "no data", "cut", "n/a"],
    })
    pd.testing.assert_frame_equal(table, expected, check_dtype=False, check_exact=False)
    assert table["customers"].dtype == np.int64


def test_channel_table_uses_config_horizon() -> None:
    table = channel_table(attach_channels(small_scores()), small_config(horizon=6))
    assert table["payback_periods"].tolist()[:2] == [2.0, 4.0]
    # An explicit horizon wins over the config's: 0.5*60/12 = 2.5 a period covers 10 in period 4.
    table = channel_table(attach_channels(small_scores()), small_config(horizon=6), horizon=12)
    assert table["payback_periods"].iloc[0] == 4.0


@pytest.mark.parametrize("ratio_target", [(1.0, 39), (1.3, 39), (2.0, 39), (4.54, 39), (3.0, 10)])
def test_even_spread_payback_is_ceil_horizon_over_ratio(ratio_target: tuple[float, int]) -> None:
    ratio, h = ratio_target
    scores = pd.DataFrame({"customer_id": ["x"], "predicted_clv": [100.0], "channel": ["s"]})
    table = channel_table(scores, cfg({"s": {"cac": 100.0 / ratio}}), horizon=h)
    assert table["payback_periods"].iloc[0] == math.ceil(h / ratio - 1e-9)


def test_channel_table_with_period_values() -> None:
    scores = small_scores()
    # Columns as text and ids as another dtype on purpose: both are coerced.
    period_values = pd.DataFrame(
        {"1": [10.0, 2, 0, 4, 4, 1, 9], "2": [6.0, 2, 4, 4, 4, 1, 9], "3": [2.0, 2, 2, 4, 4, 1, 9]},
        index=["a1", "a2", "a3", "b1", "b2", "d1", "u1"],
    )
    table = channel_table(attach_channels(scores), small_config(), period_values=period_values)
    # a: mean per period [4, 4, 2] -> margin 0.5: [2, 2, 1], cumulative [2, 4, 5] never reaches
    #    the CAC of 10 within 3 periods: payback NaN although ltv_cac = 3 -> hold, not grow.
    # b: [4, 4, 4] * 0.5 = [2, 2, 2], cumulative [2, 4, 6] covers 5 in period 3.
    assert np.isnan(table.loc[0, "payback_periods"]) and table.loc[0, "verdict"] == "hold"
    assert table.loc[1, "payback_periods"] == 3.0 and table.loc[1, "verdict"] == "hold"
    assert table.loc[0, "ltv_cac"] == pytest.approx(3.0)  # ratios still from predicted_clv


def test_channel_table_period_values_exact_cover() -> None:
    scores = pd.DataFrame({"customer_id": [1, 2], "predicted_clv": [9.0, 9.0], "channel": ["s", "s"]})
    pv = pd.DataFrame({3: [3.0, 3.0], 1: [3.0, 3.0], 2: [3.0, 3.0]}, index=["1", "2"])
    table = channel_table(scores, cfg({"s": {"cac": 6.0}}), period_values=pv)
    assert table.loc[0, "payback_periods"] == 2.0  # 3 + 3 covers 6 exactly


def test_channel_table_errors() -> None:
    config = small_config()
    with pytest.raises(ClvError, match=r"payback needs a horizon: pass horizon .* or period_values"):
        channel_table(attach_channels(small_scores()), config)
    extra = small_scores()
    extra.loc[len(extra)] = ["t1", 5.0, "tv"]
    extra.loc[len(extra)] = ["t2", 5.0, "display"]
    with pytest.raises(
        ClvError,
        match=r"^channel\(s\) in the scores without a CAC entry: display \(1 customer\), tv \(1 customer\); add "
        r"them under channels: in the CAC config, which has a, b, c, d \(customers with no channel are 'unknown' and need none\)$",
    ):
        channel_table(attach_channels(extra), config, horizon=6)
    with pytest.raises(ClvError, match=r"scores has no column predicted_clv"):
        channel_table(small_scores().drop(columns="predicted_clv"), config, horizon=6)
    with pytest.raises(ClvError, match=r"scores has no column channel .*call attach_channels"):
        channel_table(small_scores().drop(columns="channel"), config, horizon=6)
    broken = small_scores()
    broken.loc[2, "predicted_clv"] = np.nan
    with pytest.raises(ClvError, match=r"predicted_clv has 1 missing or non-numeric value\(s\) \(row 2\)"):
        channel_table(attach_channels(broken), config, horizon=6)
    pv = pd.DataFrame({1: [1.0]}, index=["a1"])
    with pytest.raises(ClvError, match=r"period_values is missing 6 customer\(s\) of the scores"):
        channel_table(attach_channels(small_scores()), config, period_values=pv)
    pv = pd.DataFrame({1: [1.0] * 7, 3: [1.0] * 7}, index=small_scores()["customer_id"])
    with pytest.raises(ClvError, match=r"period_values columns must be 1\.\.H without gaps"):
        channel_table(attach_channels(small_scores()), config, period_values=pv)


# --------------------------------------------------------------------------------------------
# allocate
# --------------------------------------------------------------------------------------------


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


def test_linear_allocation_is_the_corner_solution() -> None:
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
def test_linear_allocation_matches_greedy(seed: int) -> None:
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


def test_linear_allocation_leaves_budget_when_nothing_pays() -> None:
    config = cfg({"good": {"cac": 10, "max_spend": 5000}, "bad": {"cac": 50}}, budget=20000)
    out = allocate(stats(good=30.0, bad=40.0), config).set_index("channel")
    assert out.loc["good", "allocated_spend"] == 5000  # 3 per dollar, up to its cap
    assert out.loc["bad", "allocated_spend"] == 0  # 0.8 per dollar: every dollar loses money
    assert any(re.match(r"allocated 5,000 of the 20,000 budget", w) for w in out.attrs["warnings"])


def concave_config(total: float, **extra: dict) -> CacConfig:
    channels = {
        "a": {"cac": 10, "response": {"k": 2.0, "beta": 0.5}},
        "b": {"cac": 10, "response": {"k": 1.0, "beta": 0.7}},
        "c": {"spend": 1000, "customers": 60, "response": {"beta": 0.8}},
    }
    for name, more in extra.items():
        channels[name] = {**channels[name], **more}
    return cfg(channels, budget=total)


CONCAVE_MEANS = {"a": 40.0, "b": 30.0, "c": 25.0}


def test_concave_allocation_budget_not_binding_marginals_equal_one() -> None:
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
def test_concave_allocation_budget_binding_common_lambda(total: float) -> None:
    out = allocate(stats(**CONCAVE_MEANS), concave_config(total))
    assert out["allocated_spend"].sum() == pytest.approx(total, rel=1e-9)
    free = out[out["bound"] == "none"]["marginal_ltv_cac"]
    assert len(free) == 3
    lam = free.mean()
    assert lam > 1.0
    np.testing.assert_allclose(free, lam, rtol=1e-3)
    assert out.attrs["warnings"] == []


def test_concave_allocation_respects_bounds() -> None:
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


def test_mixed_linear_and_concave() -> None:
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
def test_random_concave_problems_satisfy_kkt(seed: int) -> None:
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


def test_allocation_excludes_unknown_and_gives_no_data_channels_their_min() -> None:
    config = cfg({"a": {"cac": 10}, "ghost": {"cac": 1, "min_spend": 500}}, budget=10000)
    stats_frame = pd.DataFrame(
        {"channel": ["a", "ghost", UNKNOWN], "mean_clv": [30.0, np.nan, 100.0]}
    )
    out = allocate(stats_frame, config).set_index("channel")
    assert UNKNOWN not in out.index
    assert out.loc["ghost", "allocated_spend"] == 500  # no customers, no evidence of value
    assert out.loc["a", "allocated_spend"] == pytest.approx(9500)
    assert any("ghost: no customers in the scores" in w for w in out.attrs["warnings"])


def test_zero_budget_allocates_nothing() -> None:
    out = allocate(stats(a=30.0), cfg({"a": {"cac": 10}}, budget=0))
    assert out["allocated_spend"].tolist() == [0.0]


def test_allocate_errors(monkeypatch: pytest.MonkeyPatch) -> None:
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

    monkeypatch.setattr(budget, "minimize", stuck)
    with pytest.raises(ClvError, match=r"budget allocation did not converge: Iteration limit "
                                       r"reached; check the channels' response curves"):
        allocate(stats(a=30.0, b=20.0), config)


# --------------------------------------------------------------------------------------------
# segments
# --------------------------------------------------------------------------------------------


def test_segment_table_by_hand() -> None:
    scores = pd.DataFrame({
        "customer_id": list("abcdef"),
        "predicted_clv": [100.0, 60.0, 20.0, 10.0, 40.0, 2.0],
        "p_alive": [0.9, 0.8, 0.9, 1.0, 0.25, 0.05],
        "segment": ["VIP", "VIP", "medium", "low", "at_risk", "lost"],
    })
    config = cfg({"s": {"cac": 1}}, retention_budget=1000)
    table = segment_table(scores, config)
    # CLV at risk: VIP 100*.1 + 60*.2 = 22, medium 2, low 0, at_risk 30, lost 1.9 (weight 0).
    # Weighted total 54 -> shares 22/54, 2/54, 0, 30/54, 0.
    expected = pd.DataFrame({
        "segment": ["VIP", "medium", "low", "at_risk", "lost"],
        "customers": np.array([2, 1, 1, 1, 1], dtype="int64"),
        "customer_share": [2 / 6, 1 / 6, 1 / 6, 1 / 6, 1 / 6],
        "total_clv": [160.0, 20.0, 10.0, 40.0, 2.0],
        "clv_share": [160 / 232, 20 / 232, 10 / 232, 40 / 232, 2 / 232],
        "mean_clv": [80.0, 20.0, 10.0, 40.0, 2.0],
        "mean_p_alive": [0.85, 0.9, 1.0, 0.25, 0.05],
        "clv_at_risk": [22.0, 2.0, 0.0, 30.0, 1.9],
        "weight": [1.0, 1.0, 1.0, 1.0, 0.0],
        "retention_share": [22 / 54, 2 / 54, 0.0, 30 / 54, 0.0],
        "retention_budget": [22000 / 54, 2000 / 54, 0.0, 30000 / 54, 0.0],
    })
    pd.testing.assert_frame_equal(table, expected, check_exact=False)


def test_segment_table_errors() -> None:
    scores = pd.DataFrame({"customer_id": ["a"], "predicted_clv": [1.0], "segment": ["VIP"]})
    config = cfg({"s": {"cac": 1}})
    with pytest.raises(ClvError, match=r"scores has no column p_alive"):
        segment_table(scores, config)
    with pytest.raises(ClvError, match=r"p_alive has values outside \[0, 1\]"):
        segment_table(scores.assign(p_alive=[1.5]), config)


# --------------------------------------------------------------------------------------------
# run_budget, report, chart
# --------------------------------------------------------------------------------------------


def full_scores() -> pd.DataFrame:
    scores = small_scores().drop(columns="channel")
    scores["p_alive"] = [0.9, 0.8, 0.7, 0.5, 0.3, 0.6, 0.9]
    scores["segment"] = ["VIP", "high", "VIP", "low", "at_risk", "medium", "low"]
    return scores


def full_customers() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ["a1", "a2", "a3", "b1", "b2", "d1"],
                         "channel": ["a", "a", "a", "b", "b", "d"]})


def test_run_budget_end_to_end() -> None:
    config = small_config(budget=1000, horizon=6)
    result = run_budget(full_scores(), config, customers=full_customers())
    assert isinstance(result, BudgetResult)
    ch = result.channels.set_index("channel")
    assert list(ch.index) == ["a", "b", "c", "d", "unknown"]
    assert ch.loc["unknown", "customers"] == 1 and np.isnan(ch.loc["unknown", "allocated_spend"])
    assert ch.loc["a", "verdict"] == "grow"
    # Linear channels: a (0.5 * 60 / 10 = 3 per dollar, unbounded) takes the whole budget.
    assert ch.loc["a", "allocated_spend"] == pytest.approx(1000)
    assert result.allocated == pytest.approx(1000)
    assert result.summary()["unallocated"] == 0.0
    assert any("1 customer(s) (14.3%) have no channel ('unknown'): reported, not allocated" in w
               for w in result.warnings)
    assert not any("no channel meets" in w for w in result.warnings)
    assert list(result.segments["segment"]) == ["VIP", "high", "medium", "low", "at_risk"]


def test_run_budget_warns_plainly_when_no_channel_meets_target() -> None:
    config = small_config(budget=1000, horizon=6, target_ratio=4)
    result = run_budget(full_scores(), config, customers=full_customers())
    assert "no channel meets the target LTV:CAC of 4:1 (best: a at 3.00:1)" in result.warnings[0]
    assert "WARNING: no channel meets the target LTV:CAC of 4:1" in format_report(result)


def test_run_budget_errors_and_missing_segments() -> None:
    config = small_config(horizon=6)
    with pytest.raises(ClvError, match=r"scores has no column predicted_clv"):
        run_budget(full_scores().drop(columns="predicted_clv"), config, customers=full_customers())
    result = run_budget(full_scores().drop(columns=["segment"]), config, customers=full_customers())
    assert result.segments.empty
    assert any("no segment table" in w for w in result.warnings)
    assert "Segments" not in format_report(result)


def test_format_report_and_chart() -> None:
    result = run_budget(full_scores(), small_config(budget=1000, horizon=6),
                        customers=full_customers())
    text = format_report(result)
    for piece in ["LTV:CAC by channel (target 3:1, margin 50% applied)", "3.00:1", "grow",
                  "hold", "cut", "n/a", "Budget allocation (budget 1,000; allocated 1,000; "
                  "unallocated 0)", "Segments", "WARNING: "]:
        assert piece in text, piece
    fig = ltv_cac_chart(result)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "d"]  # ratios only
    assert any(list(line.get_ydata()) == [3.0, 3.0] for line in ax.get_lines())  # target line
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------------------------
# Synthetic demo
# --------------------------------------------------------------------------------------------


def test_synthetic_channels_fixed_mix_and_seeded() -> None:
    ids = [f"{i:05d}" for i in range(1001)]
    out = synthetic_channels(ids, seed=7)
    assert out["customer_id"].tolist() == ids
    # 1001 * (.40, .25, .20, .15) = 400.4, 250.25, 200.2, 150.15: floors sum to 1000 and the
    # largest remainder (search, .4) gets the last customer.
    counts = out["channel"].value_counts().to_dict()
    assert counts == {"search": 401, "social": 250, "email": 200, "affiliate": 150}
    pd.testing.assert_frame_equal(out, synthetic_channels(ids, seed=7))
    assert not out["channel"].equals(synthetic_channels(ids, seed=8)["channel"])
    custom = synthetic_channels(pd.Series([1, 2, 3, 4]), shares={"x": 1, "y": 3})
    assert sorted(custom["channel"]) == ["x", "y", "y", "y"]


@pytest.mark.parametrize("mean_clv", [30.0, 45.0, 58.0])
def test_demo_config_shows_grow_hold_and_cut(mean_clv: float) -> None:
    # Heavy-tailed CLVs like CDNOW's, scaled to the mean under test.
    rng = np.random.default_rng(0)
    clv = rng.gamma(0.5, 1.0, 20000)
    scores = pd.DataFrame({
        "customer_id": [str(i) for i in range(20000)],
        "predicted_clv": clv * mean_clv / clv.mean(),
        "p_alive": rng.uniform(0, 1, 20000),
        "segment": rng.choice(list(budget.SEGMENTS), 20000),
    })
    config = load_cac_config(REPO / "configs" / "cac_demo.yaml")
    result = run_budget(scores, config, customers=synthetic_channels(scores["customer_id"]))
    verdicts = dict(zip(result.channels["channel"], result.channels["verdict"]))
    assert verdicts == {"email": "grow", "search": "hold", "social": "hold", "affiliate": "cut"}
    assert result.allocated == pytest.approx(config.budget)
