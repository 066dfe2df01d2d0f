"""Tests for clvmodel.budget.run: run_budget end to end on small tables, its warnings and errors."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from clvmodel.budget import BudgetResult, CacConfig, format_report, run_budget
from clvmodel.errors import ClvError


def test_run_budget_end_to_end(
    small_config: Callable[..., CacConfig],
    full_scores: Callable[[], pd.DataFrame],
    full_customers: Callable[[], pd.DataFrame],
) -> None:
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


def test_run_budget_warns_plainly_when_no_channel_meets_target(
    small_config: Callable[..., CacConfig],
    full_scores: Callable[[], pd.DataFrame],
    full_customers: Callable[[], pd.DataFrame],
) -> None:
    config = small_config(budget=1000, horizon=6, target_ratio=4)
    result = run_budget(full_scores(), config, customers=full_customers())
    assert "no channel meets the target LTV:CAC of 4:1 (best: a at 3.00:1)" in result.warnings[0]
    assert "WARNING: no channel meets the target LTV:CAC of 4:1" in format_report(result)


def test_run_budget_errors_and_missing_segments(
    small_config: Callable[..., CacConfig],
    full_scores: Callable[[], pd.DataFrame],
    full_customers: Callable[[], pd.DataFrame],
) -> None:
    config = small_config(horizon=6)
    with pytest.raises(ClvError, match=r"scores has no column predicted_clv"):
        run_budget(full_scores().drop(columns="predicted_clv"), config, customers=full_customers())
    result = run_budget(full_scores().drop(columns=["segment"]), config, customers=full_customers())
    assert result.segments.empty
    assert any("no segment table" in w for w in result.warnings)
    assert "Segments" not in format_report(result)
