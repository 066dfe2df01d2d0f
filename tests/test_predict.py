"""Scoring: one row per input customer, RFM and transaction inputs, bad input, atomic output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clvmodel.artifact import load
from clvmodel.cli import main
from clvmodel.errors import ClvError
from clvmodel.models.lifetimes_adapter import dataset_path
from clvmodel.predict import OUTPUT_COLUMNS, assign_segments, score, validate_rfm

SETTINGS = {"vip_share": 0.01, "high_share": 0.2, "medium_share": 0.5, "at_risk_below": 0.5, "lost_below": 0.1}


@pytest.fixture(scope="module")
def cdnow_files(tmp_path_factory, trained_cdnow):
    """The CDNOW sample as a transactions CSV (to 1997-09-30 and beyond) and as an RFM CSV."""
    folder = tmp_path_factory.mktemp("score_inputs")
    raw = pd.read_csv(dataset_path("CDNOW_sample"), sep=r"\s+", header=None, dtype=str,
                      names=["customer_id", "sample_id", "date", "cds", "amount"])
    transactions = folder / "transactions.csv"
    raw[["customer_id", "date", "amount"]].to_csv(transactions, index=False)
    rfm = folder / "rfm.csv"
    trained_cdnow.result.rfm.summary[["customer_id", "frequency", "recency", "T", "monetary_value"]].to_csv(rfm, index=False)
    return transactions, rfm


def _run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_transactions_and_rfm_inputs_give_the_same_scores(trained_cdnow, cdnow_files, tmp_path, capsys):
    transactions, rfm = cdnow_files
    model = str(trained_cdnow.model_dir)
    code, out, err = _run(["score", "--model", model, "--input", str(transactions), "--as-of", "1997-09-30",
                           "--output", str(tmp_path / "a.csv")], capsys)
    assert code == 0, err
    after = int((pd.read_csv(transactions, dtype=str)["date"] > "19970930").sum())  # rows, not purchase days
    assert f"input read as transactions summarised as of 1997-09-30 ({after:,} transactions after that date not used)" in out
    code, out, err = _run(["score", "--model", model, "--input", str(rfm), "--output", str(tmp_path / "b.parquet")], capsys)
    assert code == 0, err
    assert "input read as RFM table" in out and "customers scored 2,357; not scored 0" in out
    a = pd.read_csv(tmp_path / "a.csv", dtype={"customer_id": str})
    b = pd.read_parquet(tmp_path / "b.parquet")
    assert list(a.columns[: len(OUTPUT_COLUMNS)]) == OUTPUT_COLUMNS and len(a) == 2357 and a["customer_id"].is_unique
    # The challenger needs transactions: its columns come with transaction input only, and on the
    # training customers as of the calibration end they equal its holdout forecast from training.
    assert {"challenger_purchases", "challenger_spend"} <= set(a.columns)
    assert not {"challenger_purchases", "challenger_spend"} & set(b.columns)
    board = trained_cdnow.result.leaderboard.set_index(["model", "target"])
    assert a["challenger_purchases"].sum() == pytest.approx(board.loc[("challenger", "purchases"), "total_predicted"])
    assert a["customer_id"].str.len().eq(5).all()  # leading zeros kept: '00004'
    merged = a.merge(b, on="customer_id", suffixes=("_tx", "_rfm"))
    assert len(merged) == 2357
    for column in ("frequency", "recency", "T", "p_alive", "expected_purchases", "predicted_clv", "historical_clv"):
        np.testing.assert_allclose(merged[f"{column}_tx"], merged[f"{column}_rfm"], rtol=1e-12)
    assert (merged["segment_tx"] == merged["segment_rfm"]).all()


def test_customers_first_seen_after_as_of_keep_a_row(trained_cdnow, cdnow_files, tmp_path, capsys):
    transactions, _ = cdnow_files
    code, out, _ = _run(["score", "--model", str(trained_cdnow.model_dir), "--input", str(transactions),
                         "--as-of", "1997-02-01", "--output", str(tmp_path / "s.csv")], capsys)
    assert code == 0
    scores = pd.read_csv(tmp_path / "s.csv", dtype={"customer_id": str})
    assert len(scores) == 2357  # every customer of the file, scored or not
    late = scores[scores["status"] != "ok"]
    assert set(late["status"]) == {"first_purchase_after_as_of"}
    assert late["predicted_clv"].isna().all()
    raw = pd.read_csv(transactions, dtype=str)
    first = raw.groupby("customer_id")["date"].min()
    assert set(late["customer_id"]) == set(first[first > "19970201"].index)
    assert f"not scored {len(late):,} (first_purchase_after_as_of {len(late):,})" in out


def test_summary_lists_segments(trained_cdnow, cdnow_files, tmp_path, capsys):
    _, rfm = cdnow_files
    code, out, _ = _run(["score", "--model", str(trained_cdnow.model_dir), "--input", str(rfm), "--output",
                         str(tmp_path / "s.csv")], capsys)
    scores = pd.read_csv(tmp_path / "s.csv")
    assert f"predicted CLV total {scores['predicted_clv'].sum():,.2f}" in out
    for segment, count in scores["segment"].value_counts().items():
        assert f"{segment:<8} {count:>8,} customers" in out


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
    from clvmodel.predict import _top_count

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


def test_horizon_changes_only_forecasts(trained_cdnow):
    model = load(str(trained_cdnow.model_dir))
    rfm = trained_cdnow.result.rfm.summary[["customer_id", "frequency", "recency", "T", "monetary_value"]]
    short, long_ = score(model, rfm, horizon=13), score(model, rfm, horizon=52)
    assert (long_["expected_purchases"] >= short["expected_purchases"]).all()
    assert (long_["predicted_clv"] >= short["predicted_clv"]).all()
    discounted = score(model, rfm, horizon=52, discount_rate=0.01)
    assert (discounted["predicted_clv"] <= long_["predicted_clv"]).all()
    np.testing.assert_allclose(score(model, rfm, margin=0.3)["predicted_clv"], 0.3 * score(model, rfm)["predicted_clv"])


def test_rfm_without_monetary_value_uses_population_mean(trained_cdnow):
    model = load(str(trained_cdnow.model_dir))
    rows = pd.DataFrame({"customer_id": ["x"], "frequency": [3], "recency": [20.0], "T": [30.0]})
    out = score(model, rows)
    assert out.loc[0, "expected_order_value"] == pytest.approx(model.spend_model.population_mean)
    assert out.loc[0, "predicted_clv"] == pytest.approx(out.loc[0, "expected_purchases"] * model.spend_model.population_mean)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({"customer_id": ["a", "a"], "frequency": [1, 2], "recency": [1.0, 2.0], "T": [3.0, 3.0]},
         "1 duplicated customer_id\\(s\\) \\(e.g. 'a'\\)"),
        ({"customer_id": ["a", "b"], "frequency": [1, 0], "recency": [5.0, 0.0], "T": [3.0, 3.0]},
         "^input: 1 of 2 rows have recency > T \\(a last purchase after the end of observation\\), e\\.g\\. customer 'a' "
         "with recency 5, T 3; recompute the table with clvmodel rfm, or pass the transactions instead$"),
        ({"customer_id": ["a"], "frequency": [-1], "recency": [1.0], "T": [3.0]},
         "1 of 1 rows have a negative frequency, e.g. customer 'a' with frequency -1; frequency counts repeat purchases"),
        ({"customer_id": ["a"], "frequency": [np.nan], "recency": [1.0], "T": [3.0]},
         "1 of 1 rows have a missing or non-numeric frequency \\(e.g. customer 'a': empty\\); fill in a number"),
        ({"customer_id": ["a", "b"], "frequency": [1, "x"], "recency": [1.0, 1.0], "T": [3.0, 3.0]},
         "1 of 2 rows have a missing or non-numeric frequency \\(e.g. customer 'b': 'x'\\)"),
        ({"customer_id": ["a"], "frequency": [1], "recency": [1.0], "T": [3.0], "monetary_value": [-2.0]},
         "1 of 1 rows have a negative monetary_value, e.g. customer 'a' with monetary_value -2; spend per repeat"),
        ({"customer_id": ["a"], "frequency": [1.5], "recency": [1.0], "T": [3.0]}, "non-integer frequency"),
        ({"customer_id": ["a"], "recency": [1.0], "T": [3.0]}, "missing RFM column\\(s\\) frequency"),
        ({"customer_id": ["a", None], "frequency": [1, 1], "recency": [1.0, 1.0], "T": [3.0, 3.0]},
         "1 of 2 rows have an empty customer_id \\(e.g. data row 2\\); fill in the ids or remove those rows"),
        ({"customer_id": [], "frequency": [], "recency": [], "T": []}, "no customers to score \\(a header but no rows\\)"),
    ],
)
def test_bad_rfm_rows(rows, message):
    with pytest.raises(ClvError, match=message):
        validate_rfm(pd.DataFrame(rows))


@pytest.mark.parametrize("dtype", [object, "str", "string"])
def test_clean_and_untidy_ids_give_the_same_table(dtype):
    """Ids that are already clean skip the strip; untidy ones are stripped: both paths agree with the rule."""
    ids = ["b", "a", "c 1", "10", "zoë"]  # a non-ASCII last letter: checked by Arrow's trim, kept as it is
    rows = pd.DataFrame({"customer_id": pd.Series(ids, dtype=dtype), "frequency": [1, 0, 2, 3, 0],
                         "recency": [1.0, 0.0, 2.0, 3.0, 0.0], "T": [4.0, 4.0, 4.0, 4.0, 4.0]})
    untidy = rows.assign(customer_id=pd.Series([" b", "a\t", "c 1", "10\u3000", "zoë"], dtype=dtype))
    for frame in (rows, untidy):
        before = frame.copy()
        out = validate_rfm(frame)
        assert out["customer_id"].dtype == object and out["customer_id"].tolist() == ids
        assert all(type(i) is str for i in out["customer_id"])
        assert out[["frequency", "recency", "T"]].dtypes.eq(float).all()
        pd.testing.assert_frame_equal(frame, before)  # the caller's frame is left as it was
    numbers = rows.assign(customer_id=[7, 3, 10, 1, 0])
    assert validate_rfm(numbers)["customer_id"].tolist() == ["7", "3", "10", "1", "0"]
    with pytest.raises(ClvError, match="1 of 5 rows have an empty customer_id \\(e.g. data row 2\\)"):
        validate_rfm(rows.assign(customer_id=pd.Series(["b", " \u3000", "c", "d", "e"], dtype=dtype)))


@pytest.mark.parametrize("dtype", [object, "str"])
@pytest.mark.parametrize(
    ("ids", "count", "example"),
    [
        (["a", "b", "b", "c"], 1, "b"),  # sorted, with a repeat: not strictly increasing
        (["c", "a", "b", "a", "c"], 2, "a"),  # unsorted
        (["a", "b ", " b", "c"], 1, "b"),  # equal once stripped
    ],
)
def test_duplicated_ids_sorted_or_not(dtype, ids, count, example):
    rows = pd.DataFrame({"customer_id": pd.Series(ids, dtype=dtype), "frequency": 0, "recency": 0.0, "T": 1.0})
    with pytest.raises(ClvError, match=f"^input: {count} duplicated customer_id\\(s\\) \\(e.g. '{example}'\\)"):
        validate_rfm(rows)
    validate_rfm(rows.assign(customer_id=pd.Series([f"{i}{j}" for j, i in enumerate(ids)], dtype=dtype)))


def test_rfm_rows_no_transaction_log_can_give():
    rows = pd.DataFrame({"customer_id": ["a", "b"], "frequency": [3, 10], "recency": [3.0, 2.0], "T": [10.0, 10.0]})
    validate_rfm(rows)  # without the time unit the table is taken as it is
    assert validate_rfm(rows, time_unit="week")["frequency"].tolist() == [3.0, 10.0]  # 10 days in 2 weeks: possible
    with pytest.raises(
        ClvError,
        match=r"^input: 1 of 2 rows have more repeat purchase days than days from the first to the last purchase "
        r"\(frequency > recency x 1\), e\.g\. customer 'b' with frequency 10, recency 2; frequency counts repeat "
        r"purchase days, not transactions: summarise the transactions with clvmodel rfm$",
    ):
        validate_rfm(rows, time_unit="day")


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--horizon", "0", "horizon must be a whole number of periods > 0, got 0"),
    ("--horizon", "-3", "horizon must be a whole number of periods > 0, got -3"),
    ("--discount-rate", "-0.1", "discount rate must be >= 0 per period, got -0.1"),
    ("--margin", "1.5", "margin must be in \\(0, 1\\], got 1.5"),
])
def test_bad_options_exit_2_without_output(trained_cdnow, cdnow_files, tmp_path, capsys, option, value, message):
    _, rfm = cdnow_files
    out = tmp_path / "s.csv"
    code, _, err = _run(["score", "--model", str(trained_cdnow.model_dir), "--input", str(rfm), "--output", str(out),
                         option, value], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert pytest.importorskip("re").search(message, err)
    assert not out.exists()


def _score_error(model_dir, input_path, tmp_path, capsys) -> str:
    out = tmp_path / "s.csv"
    code, _, err = _run(["score", "--model", str(model_dir), "--input", str(input_path), "--output", str(out)], capsys)
    assert code == 2, err
    assert not out.exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    return lines[0]


def test_input_with_neither_kind_of_columns(trained_cdnow, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,value\n1,2\n")
    line = _score_error(trained_cdnow.model_dir, bad, tmp_path, capsys)
    assert "neither an RFM table (customer_id, frequency, recency, T) nor transactions" in line


def test_missing_model_dir(tmp_path, cdnow_files, capsys):
    line = _score_error(tmp_path / "nope", cdnow_files[1], tmp_path, capsys)
    assert line == f"clvmodel: error: model {tmp_path / 'nope'} not found; train one with `clvmodel train CONFIG` or pass a model directory"


def _copy_model(trained_cdnow, tmp_path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(trained_cdnow.model_dir, target)
    return target


def test_edited_model_json_is_refused(trained_cdnow, cdnow_files, tmp_path, capsys):
    model_dir = _copy_model(trained_cdnow, tmp_path)
    path = model_dir / "data" / "clvmodel.json"
    document = json.loads(path.read_text())
    document["models"]["bgnbd"]["params"]["r"] = 0.5
    path.write_text(json.dumps(document))
    line = _score_error(model_dir, cdnow_files[1], tmp_path, capsys)
    assert "checksum mismatch, the model JSON was edited or corrupted" in line


def test_model_from_a_future_format_is_refused(trained_cdnow, cdnow_files, tmp_path, capsys):
    model_dir = _copy_model(trained_cdnow, tmp_path)
    path = model_dir / "data" / "clvmodel.json"
    document = json.loads(path.read_text())
    document["format_version"] = 99
    path.write_text(json.dumps(document))
    line = _score_error(model_dir, cdnow_files[1], tmp_path, capsys)
    assert "in model format 99; this clvmodel 0.1.0 reads format 1 at most: upgrade clvmodel" in line


def test_corrupted_model_json_is_refused(trained_cdnow, cdnow_files, tmp_path, capsys):
    model_dir = _copy_model(trained_cdnow, tmp_path)
    (model_dir / "data" / "clvmodel.json").write_text('{"format": "clvmodel/trained-model", "models": ')
    line = _score_error(model_dir, cdnow_files[1], tmp_path, capsys)
    assert "not valid JSON (JSONDecodeError); the model is corrupted, retrain it" in line


def test_failed_write_leaves_no_file(trained_cdnow, cdnow_files, tmp_path, capsys, monkeypatch):
    """Atomic output: the final rename fails (a full disk, say); nothing appears, no temp file stays."""
    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("clvmodel.batch.os.replace", refuse)
    out = tmp_path / "out" / "s.csv"
    code, _, err = _run(["score", "--model", str(trained_cdnow.model_dir), "--input", str(cdnow_files[1]),
                         "--output", str(out)], capsys)
    assert code == 2
    assert err.strip() == (f"clvmodel: error: cannot write {out}: No space left on device; "
                           "check the folder's permissions and free space")
    assert list(out.parent.iterdir()) == []


def test_bad_row_in_a_later_chunk_leaves_no_file(trained_cdnow, cdnow_files, tmp_path, capsys):
    """Scoring streams in chunks; a bad row after several chunks were scored still writes nothing."""
    rfm = pd.read_csv(cdnow_files[1], dtype={"customer_id": str})
    rfm.loc[2000, "recency"] = rfm.loc[2000, "T"] + 5
    bad = tmp_path / "bad.csv"
    rfm.to_csv(bad, index=False)
    out = tmp_path / "out" / "s.parquet"
    code, _, err = _run(["score", "--model", str(trained_cdnow.model_dir), "--input", str(bad), "--output", str(out),
                         "--chunk-size", "300"], capsys)
    assert code == 2
    assert err.startswith("clvmodel: error: input rows 1,801-2,100: 1 of 300 rows have recency > T")
    assert f"customer '{rfm.loc[2000, 'customer_id']}'" in err
    assert list(out.parent.iterdir()) == []


def test_streamed_scores_equal_one_shot_scores(trained_cdnow, cdnow_files, tmp_path, capsys):
    """Chunked scoring (segments by one sort over the whole file) equals scoring all rows at once."""
    out = tmp_path / "s.parquet"
    code, _, _ = _run(["score", "--model", str(trained_cdnow.model_dir), "--input", str(cdnow_files[1]),
                       "--output", str(out), "--chunk-size", "700"], capsys)
    assert code == 0
    streamed = pd.read_parquet(out)
    rfm = pd.read_csv(cdnow_files[1], dtype={"customer_id": str})
    pd.testing.assert_frame_equal(streamed, score(load(str(trained_cdnow.model_dir)), rfm), check_dtype=False)


def test_score_is_vectorised_over_unique_rows(trained_cdnow):
    """200,000 customers score in one call (no Python loop); the result has one row each."""
    model = load(str(trained_cdnow.model_dir))
    rng = np.random.default_rng(0)
    n = 200_000
    T = rng.uniform(1, 60, n).round(1)
    recency = (T * rng.uniform(0, 1, n)).round(1)
    frequency = rng.poisson(2, n) * (recency > 0)
    rows = pd.DataFrame({"customer_id": np.arange(n).astype(str), "frequency": frequency, "recency": recency, "T": T,
                         "monetary_value": rng.gamma(5, 7, n) * (frequency > 0)})
    out = score(model, rows, horizon=52, interval_draws=0)
    assert len(out) == n and out["customer_id"].tolist() == rows["customer_id"].tolist()
    assert np.isfinite(out[["p_alive", "expected_purchases", "predicted_clv"]].to_numpy()).all()
    assert ((out["p_alive"] >= 0) & (out["p_alive"] <= 1)).all()
