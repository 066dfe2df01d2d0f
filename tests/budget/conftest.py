"""Fixtures shared by the test modules of clvmodel.budget: a config shorthand and small tables.

Each fixture is a factory: call it for a fresh object, so that a test may change what it gets.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from clvmodel.budget import CacConfig, parse_cac_config


@pytest.fixture
def cfg() -> Callable[..., CacConfig]:
    """``cfg(channels, **top)``: the validated config of a channels block and top-level keys."""

    def make(channels: dict, **top: object) -> CacConfig:
        return parse_cac_config({"channels": channels, **top})

    return make


@pytest.fixture
def small_scores() -> Callable[[], pd.DataFrame]:
    """Seven scored customers: three of channel a, two of b, one of d, one without a channel."""

    def make() -> pd.DataFrame:
        return pd.DataFrame({
            "customer_id": ["a1", "a2", "a3", "b1", "b2", "d1", "u1"],
            "predicted_clv": [30.0, 50.0, 100.0, 10.0, 20.0, 30.0, 40.0],
            "channel": ["a", "a", "a", "b", "b", "d", None],
        })

    return make


@pytest.fixture
def small_config(cfg: Callable[..., CacConfig]) -> Callable[..., CacConfig]:
    """``small_config(**top)``: channels a, b, c (no customers) and d at margin 0.5, target 3:1."""

    def make(**top: object) -> CacConfig:
        return cfg(
            {"a": {"cac": 10}, "b": {"cac": 5}, "c": {"spend": 300, "customers": 10},
             "d": {"cac": 20}},
            **{"margin": 0.5, "target_ratio": 3, **top},
        )

    return make


@pytest.fixture
def full_scores(small_scores: Callable[[], pd.DataFrame]) -> Callable[[], pd.DataFrame]:
    """:func:`small_scores` without the channel column, with p_alive and segment."""

    def make() -> pd.DataFrame:
        scores = small_scores().drop(columns="channel")
        scores["p_alive"] = [0.9, 0.8, 0.7, 0.5, 0.3, 0.6, 0.9]
        scores["segment"] = ["VIP", "high", "VIP", "low", "at_risk", "medium", "low"]
        return scores

    return make


@pytest.fixture
def full_customers() -> Callable[[], pd.DataFrame]:
    """The customers table (customer_id, channel) of :func:`full_scores`; u1 has no row."""

    def make() -> pd.DataFrame:
        return pd.DataFrame({"customer_id": ["a1", "a2", "a3", "b1", "b2", "d1"],
                             "channel": ["a", "a", "a", "b", "b", "d"]})

    return make
