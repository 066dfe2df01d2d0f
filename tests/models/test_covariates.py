"""The covariate design (clvmodel.models.covariates): CLVTools' model.matrix rules, exact frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvmodel.errors import ClvError
from clvmodel.models.covariates import Design

FRAME = pd.DataFrame({"age": [31.5, 40.0, 22.0, 31.5], "channel": ["web", "shop", "tv", "web"]})


def test_numeric_as_given_categorical_as_indicators_with_the_first_sorted_level_as_baseline() -> None:
    design = Design.fit(FRAME, ["age", "channel"], "t")
    assert design.columns == ["age", "channel_tv", "channel_web"]  # "shop" sorts first: the baseline
    assert design.levels == {"channel": ["shop", "tv", "web"]}
    expected = np.array([[31.5, 0, 1], [40.0, 0, 0], [22.0, 1, 0], [31.5, 0, 1]], dtype=float)
    np.testing.assert_array_equal(design.encode(FRAME, "t"), expected)  # not centred, not scaled


def test_the_design_round_trips_and_encodes_a_profile_alone() -> None:
    design = Design.from_dict(Design.fit(FRAME, ["channel", "age"], "t").to_dict())
    one = pd.DataFrame({"channel": ["tv"], "age": [50]})
    np.testing.assert_array_equal(design.encode(one, "p"), [[1.0, 0.0, 50.0]])


def test_profiles_are_the_distinct_rows_with_their_shares() -> None:
    design = Design.fit(FRAME, ["age", "channel"], "t")
    assert design.profiles(FRAME) == [
        ({"age": 31.5, "channel": "web"}, 0.5),
        ({"age": 40.0, "channel": "shop"}, 0.25),
        ({"age": 22.0, "channel": "tv"}, 0.25),
    ]
    assert Design().profiles(FRAME) == [({}, 1.0)]


@pytest.mark.parametrize(
    ("frame", "covariates", "message"),
    [
        (FRAME.assign(age=[1.0, np.nan, 2.0, 3.0]), ["age"], "covariate 'age' is missing for 1 of 4 customers"),
        (FRAME.assign(channel=["web", " ", "tv", "web"]), ["channel"], "covariate 'channel' is missing for 1 of 4"),
        (FRAME.assign(age=7.0), ["age"], "has the same value (7.0) for every customer"),
        (FRAME.assign(channel="web"), ["channel"], "has the same value (web) for every customer"),
        (FRAME, ["gender"], "no column 'gender' for customers.covariates"),
        (pd.DataFrame({"c": ["a b", "a/b", "zz", "a_b"]}), ["c"], "two columns named 'c_a_b'"),
        (pd.DataFrame({"c": [str(i) for i in range(60)]}), ["c"], "60 distinct values"),
    ],
)
def test_a_design_that_cannot_be_estimated_is_one_line(frame: pd.DataFrame, covariates: list[str], message: str) -> None:
    with pytest.raises(ClvError) as err:
        Design.fit(frame, covariates, "customers.csv")
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        (pd.DataFrame({"age": [30], "channel": ["radio"]}), "level 'radio', not seen in training"),
        (pd.DataFrame({"age": ["old"], "channel": ["tv"]}), "covariate 'age' must be a number, got 'old'"),
        (pd.DataFrame({"channel": ["tv"]}), "no column 'age'"),
        (pd.DataFrame({"age": [None], "channel": ["tv"]}), "covariate 'age' is missing"),
    ],
)
def test_a_profile_the_design_cannot_encode_is_one_line(profile: pd.DataFrame, message: str) -> None:
    design = Design.fit(FRAME, ["age", "channel"], "t")
    with pytest.raises(ClvError) as err:
        design.encode(profile, "profiles.csv")
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("frame", "covariates"),
    [
        (pd.DataFrame({"monetary_value": [5.0, 10.0]}), ["monetary_value"]),  # would overwrite the spend
        (pd.DataFrame({"T": [1.0, 2.0]}), ["T"]),
        (pd.DataFrame({"duration": ["a", "holdout"]}), ["duration"]),  # -> duration_holdout
    ],
)
def test_a_covariate_never_overwrites_a_summary_column(frame: pd.DataFrame, covariates: list[str]) -> None:
    with pytest.raises(ClvError, match="a column of the customers' own history"):
        Design.fit(frame, covariates, "customers.csv")


def test_names_become_safe_metric_names() -> None:
    frame = pd.DataFrame({"Gender (m=0)": [0.0, 1.0], "Region": ["north/east", "south"]})
    design = Design.fit(frame, ["Gender (m=0)", "Region"], "t")
    assert design.columns == ["Gender__m_0_", "Region_south"]
    np.testing.assert_array_equal(design.encode(frame, "t"), [[0.0, 0.0], [1.0, 1.0]])
