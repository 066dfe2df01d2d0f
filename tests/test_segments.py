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
    """A model without boundaries (saved before them) ranks within the batch: identical RFM rows tie
    in CLV and their tiers follow the ids (here given in reverse order), as a sort would."""
    model = load(str(trained_cdnow.model_dir))
    model.segment_boundaries = None
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


# --- boundaries fixed at training ---------------------------------------------------------------


def test_a_boundary_is_the_lowest_value_of_the_top_share():
    from clvmodel.segments import boundary, fit_boundaries

    clv = np.array([10.0, 50.0, 30.0, 5.0, 40.0, 20.0, 1.0, 2.0, 3.0, 4.0])
    # Ten customers: the top 1 % is nobody, so the best one (50); 20 % the 2nd best (40); 50 % the 5th (10).
    assert (boundary(clv, 0.01), boundary(clv, 0.2), boundary(clv, 0.5)) == (50.0, 40.0, 10.0)
    assert boundary(np.array([np.nan, 3.0, np.nan, 1.0]), 0.5) == 3.0  # missing values left out
    assert boundary(np.array([np.nan]), 0.5) is None
    # Weights count customers: 5 rows for 10 customers, the last row 6 of them.
    values, weights = np.array([5.0, 4.0, 3.0, 2.0, 1.0]), np.array([1.0, 1.0, 1.0, 1.0, 6.0])
    assert [boundary(values, share, weights) for share in (0.01, 0.2, 0.5)] == [5.0, 4.0, 2.0]
    fitted = fit_boundaries(np.full(10, np.nan), clv, SETTINGS)
    assert fitted == {"predicted_clv": None, "expected_purchases": {"vip": 50.0, "high": 40.0, "medium": 10.0}}


def test_fixed_segments_label_each_customer_alone():
    from clvmodel.segments import fixed_codes, SEGMENTS

    bounds = {"predicted_clv": {"vip": 100.0, "high": 20.0, "medium": 5.0},
              "expected_purchases": {"vip": 9.0, "high": 3.0, "medium": 1.0}}
    clv = np.array([100.0, 99.9, 20.0, 5.0, 4.9, 0.0, np.nan, np.nan, 500.0, 500.0])
    purchases = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, np.nan, 9.0, 9.0])
    p_alive = np.array([0.9] * 8 + [0.3, 0.05])
    expected = ["VIP", "high", "high", "medium", "low", "low", "high", "low", "at_risk", "lost"]
    codes = fixed_codes(clv, purchases, p_alive, SETTINGS, bounds)
    assert [SEGMENTS[c] for c in codes] == expected
    for i in range(len(clv)):  # alone, the same label
        assert SEGMENTS[fixed_codes(clv[i:i + 1], purchases[i:i + 1], p_alive[i:i + 1], SETTINGS, bounds)[0]] == expected[i]
    # Boundaries at 0 (most training customers worth nothing): a customer worth nothing is still low.
    zero = {"predicted_clv": {"vip": 7.0, "high": 0.0, "medium": 0.0}, "expected_purchases": None}
    assert [SEGMENTS[c] for c in fixed_codes(np.array([0.0, 1.0]), np.zeros(2), np.ones(2), SETTINGS, zero)] == ["low", "high"]


def test_training_stores_the_quantiles_of_its_customers(tmp_path):
    """A hand-made base of ten customers: the stored boundaries are its 1st, 2nd and 5th best scores."""
    import json

    from clvmodel.config import load_config
    from clvmodel.train import train

    base = pd.DataFrame({"customer_id": [f"c{i}" for i in range(10)],
                         "frequency": [0, 1, 2, 3, 4, 5, 6, 8, 10, 12],
                         "recency": [0, 5, 10, 12, 20, 22, 30, 31, 35, 38],
                         "T": [40, 39, 38, 37, 36, 35, 40, 39, 38, 40],
                         "monetary_value": [0, 30, 12, 45, 20, 80, 15, 60, 25, 40]})
    base.to_csv(tmp_path / "base.csv", index=False)
    (tmp_path / "c.yaml").write_text(
        f"name: hand\ndata: {{format: rfm, source: {tmp_path / 'base.csv'}}}\nmodels: [historical]\n"
        f"tracking: {{enabled: false}}\noutput: {{model_dir: {tmp_path / 'model'}}}\n")
    result = train(load_config(tmp_path / "c.yaml"), track=False)
    saved = json.loads((tmp_path / "model" / "data" / "clvmodel.json").read_text())["segment_boundaries"]
    for basis in ("predicted_clv", "expected_purchases"):
        ranked = sorted(result.scores[basis], reverse=True)
        assert saved[basis] == {"vip": ranked[0], "high": ranked[1], "medium": ranked[4]}, basis
    assert load(tmp_path / "model").segment_boundaries == saved
    # The training scores are labelled by them: 1 VIP, 1 high, 3 medium, 5 low (before the P(alive) rules: none here).
    assert result.scores["segment"].value_counts().to_dict() == {"low": 5, "medium": 3, "VIP": 1, "high": 1}


@pytest.fixture(scope="module")
def cdnow_base(trained_cdnow):
    """The trained CDNOW model, its full file of customers (and a brand-new one) scored at once."""
    model = load(str(trained_cdnow.model_dir))
    rfm = trained_cdnow.result.rfm.summary[["customer_id", "frequency", "recency", "T", "monetary_value"]]
    new = pd.DataFrame({"customer_id": ["new"], "frequency": [0.0], "recency": [0.0], "T": [0.0], "monetary_value": [0.0]})
    full = pd.concat([rfm, new], ignore_index=True)
    return model, full, score(model, full, interval_draws=0).set_index("customer_id")["segment"]


def test_a_customer_has_the_same_segment_alone_in_a_chunk_in_the_file_and_streamed(trained_cdnow, cdnow_base, tmp_path,
                                                                                   capsys):
    from clvmodel.cli import main

    model, full, in_file = cdnow_base
    assert model.segment_boundaries is not None
    assert {"VIP", "high", "medium", "at_risk", "lost"} <= set(in_file)  # (Pareto/NBD: the bottom half is at risk)
    # Alone: every customer of the file, one at a time (and the brand-new one: no longer VIP by rank).
    alone = pd.Series({row.customer_id: score(model, full.iloc[[i]], interval_draws=0)["segment"].iloc[0]
                       for i, row in enumerate(full.itertuples())})
    assert alone.index.tolist() == in_file.index.tolist() and alone.tolist() == in_file.tolist()
    assert alone["new"] != "VIP"
    # In chunks of 100 from a shuffled file, and at another horizon and margin (segments stay at the model's own).
    shuffled = full.sample(frac=1.0, random_state=7).reset_index(drop=True)
    for start in range(0, len(shuffled), 100):
        chunk = score(model, shuffled.iloc[start:start + 100], interval_draws=0, horizon=52, margin=0.3)
        assert (chunk["segment"].to_numpy() == in_file[chunk["customer_id"]].to_numpy()).all()
    # Streamed through DuckDB in chunks of 300 (`clvmodel score`), the shuffled file and one customer alone.
    shuffled.to_csv(tmp_path / "rfm.csv", index=False)
    full[full["customer_id"] == "00004"].to_csv(tmp_path / "one.csv", index=False)
    for name in ("rfm", "one"):
        assert main(["score", "--model", str(trained_cdnow.model_dir), "--input", str(tmp_path / f"{name}.csv"),
                     "--output", str(tmp_path / f"{name}.parquet"), "--chunk-size", "300"]) == 0
        streamed = pd.read_parquet(tmp_path / f"{name}.parquet")
        assert (streamed["segment"].to_numpy() == in_file[streamed["customer_id"]].to_numpy()).all()
    assert "ranked within this file" not in capsys.readouterr().out


def test_one_customer_through_rest_has_its_segment_in_the_file(trained_cdnow, cdnow_base, score_three_ways):
    """The README's one-customer REST call (horizon 52): the segment it has in the full file, through Python, CLI and REST."""
    _, full, in_file = cdnow_base
    one = full[full["customer_id"].isin(["00004"])].reset_index(drop=True)
    for way, frame in score_three_ways(trained_cdnow.model_dir, one, horizon=52).items():
        assert frame["segment"].tolist() == [in_file["00004"]], way


def test_a_document_from_before_the_boundaries_ranks_within_the_batch(trained_cdnow, cdnow_base, tmp_path, capsys):
    """A format-1 document (no segment_boundaries) still loads; its segments are ranks within the scored batch, as
    when it was trained, and `clvmodel score` says so."""
    import json
    import shutil

    from clvmodel.cli import main
    from clvmodel.integrity import document_checksum, write_manifest

    _, full, _ = cdnow_base
    old = tmp_path / "old"
    shutil.copytree(trained_cdnow.model_dir, old)
    path = old / "data" / "clvmodel.json"
    document = json.loads(path.read_text())
    del document["segment_boundaries"]
    document["format_version"] = 1
    del document["checksum"]
    document["checksum"] = document_checksum(document)
    path.write_text(json.dumps(document))
    write_manifest(old)
    model = load(str(old))
    assert model.segment_boundaries is None
    alone = score(model, full.iloc[[0]], interval_draws=0)  # alone, the best of its batch of one
    assert alone["segment"].iloc[0] in ("VIP", "at_risk", "lost")
    ranked = score(model, full, interval_draws=0)
    expected = assign_segments(ranked["predicted_clv"].to_numpy(), ranked["p_alive"].to_numpy(), model.segments,
                               ranked["customer_id"].to_numpy())
    np.testing.assert_array_equal(ranked["segment"].to_numpy(dtype=object), expected)
    full.to_csv(tmp_path / "rfm.csv", index=False)
    assert main(["score", "--model", str(old), "--input", str(tmp_path / "rfm.csv"), "--output", str(tmp_path / "s.csv")]) == 0
    assert "ranked within this file" in capsys.readouterr().out


def _boundary_by_sort(values, share, weights=None):
    """The definition: the stable sort of the known values, highest first, at the share's rank."""
    from clvmodel.segments import _top_count

    known = ~np.isnan(values)
    if not known.any():
        return None
    order = np.argsort(-values[known], kind="stable")
    ranked = values[known][order]
    if weights is None:
        count = _top_count(share, len(ranked))
    else:
        cumulative = np.cumsum(weights[known][order])
        count = int(np.count_nonzero(cumulative / cumulative[-1] <= share))
    return float(ranked[max(count, 1) - 1])


def test_boundaries_at_equal_the_sort_rule_with_ties_nan_and_signed_zeros():
    from clvmodel.segments import boundaries_at

    rng = np.random.default_rng(16)
    shares = [0.01, 0.2, 0.5, 1e-9, 1.0]
    for n in (1, 2, 3, 7, 99, 100, 101, 1000):
        for values in (rng.poisson(1.0, n).astype(float), rng.gamma(0.3, 5.0, n).round(1),
                       np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n)),
                       np.where(rng.random(n) < 0.5, -0.0, np.where(rng.random(n) < 0.5, 0.0, 1.0)),
                       np.full(n, np.nan)):
            for weights in (None, rng.integers(1, 5, n).astype(float)):
                got = boundaries_at(values, shares, weights)
                expected = [_boundary_by_sort(values, share, weights) for share in shares]
                # equal to the bit: the sign of a zero boundary too (it is written in the model document)
                assert [None if g is None else (g, np.signbit(g)) for g in got] == \
                       [None if e is None else (e, np.signbit(e)) for e in expected]
