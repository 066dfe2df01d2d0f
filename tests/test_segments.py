"""Segments: P(alive) thresholds first, then tiers by CLV rank, ties by customer id, as one sort would."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvmodel.artifact import load
from clvmodel.predict import score
from clvmodel.segments import assign_segments

SETTINGS = {"vip_share": 0.01, "high_share": 0.2, "medium_share": 0.5, "at_risk_below": 0.5, "lost_below": 0.1}


def test_segments_by_hand():
    clv = np.array([10.0, 50.0, 30.0, 5.0, 40.0, 20.0, 1.0, 2.0, 3.0, 4.0])
    p_alive = np.array([0.9, 0.9, 0.05, 0.9, 0.3, 0.9, 0.9, 0.9, 0.9, 0.9])
    # Ranks by CLV: 50 (1st, VIP: top 1% rounds to nobody, the best customer is VIP anyway), 40 (2nd, high:
    # share 0.2), 30 (3rd), 20 (4th), 10 (5th: share 0.5, medium) and the rest low; then P(alive) overrides.
    expected = ["medium", "VIP", "lost", "low", "at_risk", "medium", "low", "low", "low", "low"]
    assert list(assign_segments(clv, p_alive, SETTINGS)) == expected


def _segments_by_sort(clv, p_alive, settings, customer_id=None):
    """The rule as one sort of every customer (assign_segments before it avoided the sort): the reference."""
    n = len(clv)
    segment = np.full(n, "low", dtype=object)
    if n == 0:
        return segment
    keys = [-np.asarray(clv, dtype=float)]
    if customer_id is not None:
        keys.insert(0, np.asarray(customer_id, dtype=str))
    order = np.lexsort(keys)  # last key first: CLV descending, then customer id, then position
    share = np.empty(n)
    share[order] = np.arange(1, n + 1) / n
    segment[share <= settings["medium_share"]] = "medium"
    segment[share <= settings["high_share"]] = "high"
    segment[share <= settings["vip_share"]] = "VIP"
    segment[order[0]] = "VIP"
    p_alive = np.asarray(p_alive, dtype=float)
    segment[p_alive < settings["at_risk_below"]] = "at_risk"
    segment[p_alive < settings["lost_below"]] = "lost"
    return segment


def test_ties_at_a_tier_boundary_go_by_customer_id():
    # Ten customers, ids in reverse order; five tie at CLV 7 across the 20 % (high) and 50 % (medium) boundaries.
    ids = np.array([f"c{i}" for i in range(9, -1, -1)], dtype=object)  # c9 .. c0
    clv = np.array([7.0, 1.0, 7.0, 9.0, 7.0, 0.5, 7.0, 7.0, 0.0, -0.0])
    p_alive = np.full(10, 0.9)
    # Rank 1: c6 (CLV 9, VIP). Ties at 7 by id: c2 (2nd, share 0.2: high), c3, c5, c7, c9 (3rd-5th medium, 6th low).
    expected = ["low", "low", "medium", "VIP", "medium", "low", "medium", "high", "low", "low"]
    assert list(assign_segments(clv, p_alive, SETTINGS, ids)) == expected
    assert list(_segments_by_sort(clv, p_alive, SETTINGS, ids)) == expected
    # Without ids, ties go by position: the first two 7s (c9, c7) are 2nd and 3rd.
    assert list(assign_segments(clv, p_alive, SETTINGS)) == list(_segments_by_sort(clv, p_alive, SETTINGS))
    assert assign_segments(clv, p_alive, SETTINGS)[0] == "high"


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 99, 100, 101, 1_000, 4_999])
def test_segments_equal_the_sort_based_rule(n):
    """Many ties (few distinct CLVs), missing CLVs, -0.0 and 0.0, repeated ids, odd shares: same labels as one sort."""
    rng = np.random.default_rng(n)
    for trial in range(6):
        clv = rng.choice(np.array([np.nan, -0.0, 0.0, 0.5, 1.0, 1.0 + 1e-15, 2.0, 40.0]), n)
        if trial % 3 == 0:
            clv = rng.gamma(1.0, 10.0, n).round(1)  # ties at boundaries by chance
        p_alive = rng.uniform(0, 1, n)
        ids = rng.permutation(np.array([f"{i:05d}" for i in range(n)], dtype=object))
        if trial % 2:
            ids = ids[rng.integers(0, max(n // 3, 1), n)]  # repeated ids: then input order
        settings = SETTINGS if trial < 3 else {**SETTINGS, "vip_share": 1 / 3, "high_share": 0.3, "medium_share": 1.0}
        for customer_id in (ids, ids.astype(np.int64) if trial % 2 else ids.tolist(), None):
            expected = _segments_by_sort(clv, p_alive, settings, customer_id)
            np.testing.assert_array_equal(assign_segments(clv, p_alive, settings, customer_id), expected)


def test_tier_sizes_use_the_quotient_the_sort_rule_compares():
    from clvmodel.segments import _top_count

    for n in [*range(1, 400), 999_983, 1_000_000]:
        shares = np.arange(1, n + 1) / n
        for share in (0.01, 0.2, 0.5, 1 / 3, 0.3, 0.7, 1.0, 1e-9, 0.0, 2.0, float("nan"), shares[(n - 1) // 3]):
            assert _top_count(share, n) == int(np.count_nonzero(shares <= share)), (n, share)


def test_scored_ties_are_labelled_by_customer_id(trained_cdnow):
    """Identical RFM rows tie in CLV; their tiers follow the ids (here given in reverse order), as a sort would."""
    model = load(str(trained_cdnow.model_dir))
    rng = np.random.default_rng(3)
    n = 2_000
    kinds = pd.DataFrame({"frequency": [0.0, 2.0, 5.0, 9.0], "recency": [0.0, 20.0, 30.0, 38.0], "T": [40.0] * 4,
                          "monetary_value": [0.0, 25.0, 40.0, 60.0]})
    rows = kinds.iloc[rng.integers(0, 4, n)].reset_index(drop=True)
    rows.insert(0, "customer_id", [f"id{i:06d}" for i in range(n, 0, -1)])
    out = score(model, rows, interval_draws=0)
    expected = _segments_by_sort(out["predicted_clv"].to_numpy(), out["p_alive"].to_numpy(), model.segments,
                                 out["customer_id"].to_numpy())
    np.testing.assert_array_equal(out["segment"].to_numpy(dtype=object), expected)
    assert out["customer_id"].dtype == object and out["customer_id"].tolist() == rows["customer_id"].tolist()
