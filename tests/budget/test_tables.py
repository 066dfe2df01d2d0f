"""Tests for clvmodel.budget.tables: ratios and payback per channel, and the segment table,
computed by hand."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from clvmodel.budget import CacConfig, attach_channels, channel_table, segment_table
from clvmodel.errors import ClvError


def test_channel_table_by_hand(
    small_scores: Callable[[], pd.DataFrame],
    small_config: Callable[..., CacConfig],
) -> None:
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
        # Without a channel-aware model the table says plainly what it rests on.
        "value_basis": ["remaining CLV of existing customers, not the value of a new customer"] * 5,
    })
    pd.testing.assert_frame_equal(table, expected, check_dtype=False, check_exact=False)
    assert table["customers"].dtype == np.int64


def test_channel_table_uses_config_horizon(
    small_scores: Callable[[], pd.DataFrame],
    small_config: Callable[..., CacConfig],
) -> None:
    table = channel_table(attach_channels(small_scores()), small_config(horizon=6))
    assert table["payback_periods"].tolist()[:2] == [2.0, 4.0]
    # An explicit horizon wins over the config's: 0.5*60/12 = 2.5 a period covers 10 in period 4.
    table = channel_table(attach_channels(small_scores()), small_config(horizon=6), horizon=12)
    assert table["payback_periods"].iloc[0] == 4.0


@pytest.mark.parametrize("ratio_target", [(1.0, 39), (1.3, 39), (2.0, 39), (4.54, 39), (3.0, 10)])
def test_even_spread_payback_is_ceil_horizon_over_ratio(
    ratio_target: tuple[float, int],
    cfg: Callable[..., CacConfig],
) -> None:
    ratio, h = ratio_target
    scores = pd.DataFrame({"customer_id": ["x"], "predicted_clv": [100.0], "channel": ["s"]})
    table = channel_table(scores, cfg({"s": {"cac": 100.0 / ratio}}), horizon=h)
    assert table["payback_periods"].iloc[0] == math.ceil(h / ratio - 1e-9)


def test_channel_table_with_period_values(
    small_scores: Callable[[], pd.DataFrame],
    small_config: Callable[..., CacConfig],
) -> None:
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


def test_channel_table_period_values_exact_cover(cfg: Callable[..., CacConfig]) -> None:
    scores = pd.DataFrame({"customer_id": [1, 2], "predicted_clv": [9.0, 9.0], "channel": ["s", "s"]})
    pv = pd.DataFrame({3: [3.0, 3.0], 1: [3.0, 3.0], 2: [3.0, 3.0]}, index=["1", "2"])
    table = channel_table(scores, cfg({"s": {"cac": 6.0}}), period_values=pv)
    assert table.loc[0, "payback_periods"] == 2.0  # 3 + 3 covers 6 exactly


def test_channel_table_errors(
    small_scores: Callable[[], pd.DataFrame],
    small_config: Callable[..., CacConfig],
) -> None:
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
# segment_table
# --------------------------------------------------------------------------------------------


def test_segment_table_by_hand(cfg: Callable[..., CacConfig]) -> None:
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


def test_segment_table_errors(cfg: Callable[..., CacConfig]) -> None:
    scores = pd.DataFrame({"customer_id": ["a"], "predicted_clv": [1.0], "segment": ["VIP"]})
    config = cfg({"s": {"cac": 1}})
    with pytest.raises(ClvError, match=r"scores has no column p_alive"):
        segment_table(scores, config)
    with pytest.raises(ClvError, match=r"p_alive has values outside \[0, 1\]"):
        segment_table(scores.assign(p_alive=[1.5]), config)
