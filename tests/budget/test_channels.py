"""Tests for clvmodel.budget.channels: attach_channels joins, cleans and never drops a row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvmodel.budget import UNKNOWN, attach_channels
from clvmodel.errors import ClvError


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
