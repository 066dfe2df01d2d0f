"""Tests for clvmodel.models.base.collapse: distinct rows, weights and the map back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvmodel.models.base import collapse


def _groupby_reference(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The earlier implementation: a sorted pandas group-by (NaN kept, sorted last)."""
    grouped = frame[columns].astype(float).reset_index(drop=True).groupby(columns, sort=True, dropna=False)
    sizes = grouped.size()
    return sizes.index.to_frame(index=False), sizes.to_numpy(dtype=float), grouped.ngroup().to_numpy()


@pytest.mark.parametrize("columns", [["frequency"], ["frequency", "monetary_value"], ["frequency", "recency", "T"]])
def test_collapse_equals_a_sorted_group_by(columns: list[str]) -> None:
    rng = np.random.default_rng(3)
    n = 5000
    frame = pd.DataFrame({
        "frequency": rng.integers(0, 6, n),
        "recency": rng.integers(0, 20, n) / 7,
        "T": rng.integers(15, 25, n) / 7,
        "monetary_value": np.round(rng.gamma(2.0, 10.0, n), 0),
    })
    frame.loc[rng.choice(n, 50), "monetary_value"] = np.nan
    unique, weights, inverse = collapse(frame, columns)
    expected_unique, expected_weights, expected_inverse = _groupby_reference(frame, columns)
    pd.testing.assert_frame_equal(unique, expected_unique)
    np.testing.assert_array_equal(weights, expected_weights)
    np.testing.assert_array_equal(inverse, expected_inverse)
    rebuilt = unique.iloc[inverse].reset_index(drop=True)
    pd.testing.assert_frame_equal(rebuilt, frame[columns].astype(float).reset_index(drop=True))


def test_collapse_is_sorted_and_ignores_row_order() -> None:
    frame = pd.DataFrame({"x": [2, 1, 2, 0, 1], "y": [1.5, 3.0, 1.5, 9.0, 2.0]}, index=[10, 11, 12, 13, 14])
    unique, weights, inverse = collapse(frame, ["x", "y"])
    assert unique.to_dict("list") == {"x": [0.0, 1.0, 1.0, 2.0], "y": [9.0, 2.0, 3.0, 1.5]}
    assert weights.tolist() == [1.0, 1.0, 1.0, 2.0]
    assert inverse.tolist() == [3, 2, 3, 0, 1]
    shuffled = collapse(frame.iloc[::-1], ["x", "y"])
    pd.testing.assert_frame_equal(shuffled[0], unique)
    np.testing.assert_array_equal(shuffled[1], weights)


def test_collapse_of_no_rows() -> None:
    unique, weights, inverse = collapse(pd.DataFrame({"x": [], "y": []}), ["x", "y"])
    assert len(unique) == 0 and list(unique.columns) == ["x", "y"]
    assert len(weights) == 0 and len(inverse) == 0
