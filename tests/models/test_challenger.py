"""Tests for the scikit-learn challenger (clvmodel.models.challenger), on real DuckDB, no mocks.

Sources of the reference values:
* the tiny log's features and targets are computed by hand below, from the rows of ``TINY``;
* CDNOW: ``bundled:CDNOW_sample`` (2,357 customers), weeks, calibration to 1997-09-30, holdout
  of 39 weeks to 1998-06-30; 1,882 holdout repeat purchases (counted from the file,
  /work/shared/REFERENCE.md). Only honest bounds are asserted on the challenger's metrics,
  never values read off its own output.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import math
import re
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from clvmodel import evaluate
from clvmodel import io as clv_io
from clvmodel.config import DataConfig
from clvmodel.integrity import document_checksum
from clvmodel.errors import ClvError
from clvmodel.models.base import ModelData
from clvmodel.models.challenger import (
    derive_inner_cut,
    FEATURES,
    JSON_NAME,
    SKOPS_NAME,
    Challenger,
    DuckDBReader,
    features,
    join_training,
    targets,
    training_sample,
)

C = dt.date(1997, 9, 30)  # CDNOW calibration end
OBSERVATION_END = dt.date(1998, 6, 30)
HOLDOUT_WEEKS = 39
# Chosen before looking at the holdout: only 18 customers had bought by C − 39 weeks, so train on
# the last 13 weeks of calibration (1997-07-01..09-30), after all Q1-1997 first purchases.
INNER_CUT = dt.date(1997, 6, 30)
CDNOW_HOLDOUT_PURCHASES = 1882  # REFERENCE.md


def exactly(message: str) -> str:
    """A ``pytest.raises(match=...)`` pattern matching the whole message and nothing else."""
    return f"^{re.escape(message)}$"


# --- a tiny log, computed by hand -------------------------------------------------------------

D = dt.date
#: customer, day, amount. Cut 2024-01-29 for the feature tests.
TINY = [
    ("007", D(2024, 1, 1), 10.0),  # same day as the next row: one purchase of 15
    ("007", D(2024, 1, 1), 5.0),
    ("007", D(2024, 1, 8), 20.0),
    ("007", D(2024, 1, 24), 30.0),  # 23 days after the first: inside the last quarter (> 21)
    ("007", D(2024, 2, 5), 100.0),  # after the cut
    ("1", D(2024, 1, 15), 40.0),  # one-time buyer
    ("2", D(2024, 1, 29), 0.0),  # first purchase on the cut day; a zero amount is kept
    ("2", D(2024, 1, 29), 12.0),
    ("3", D(2024, 2, 1), 50.0),  # first purchase after the cut: not in the cohort
    ("4", D(2024, 1, 2), 8.0),
    ("4", D(2024, 1, 29), 16.0),  # repeat on the cut day (inclusive)
    ("5", D(2024, 1, 1), 10.0),
    ("5", D(2024, 1, 22), 6.0),  # exactly 3/4 of the 28-day window: not "recent" (strict)
]
CUT = D(2024, 1, 29)


def _connection(rows: list[tuple[str, dt.date, float]]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    frame = pd.DataFrame(rows, columns=["customer_id", "day", "amount"])
    con.register("long_log", frame)
    con.execute("CREATE TABLE transactions AS SELECT customer_id, CAST(day AS DATE) AS day, amount FROM long_log")
    return con


@pytest.fixture()
def tiny() -> duckdb.DuckDBPyConnection:
    con = _connection(TINY)
    yield con
    con.close()


def _expected_features(unit: float) -> pd.DataFrame:
    """Hand-computed features at ``CUT``; times in days divided by ``unit`` (1 or 7)."""
    nan = math.nan
    rows = [
        # id, freq, recency, T, monetary, total, mean_ov, max_ov, days, mean_gap, std_gap, since_last, recent
        ("007", 2, 23 / unit, 28 / unit, (65 - 15) / 2, 65.0, 65 / 3, 30.0, 3, 11.5 / unit, 4.5 / unit, 5 / unit, 1),
        ("1", 0, 0.0, 14 / unit, 0.0, 40.0, 40.0, 40.0, 1, nan, nan, 14 / unit, 0),
        ("2", 0, 0.0, 0.0, 0.0, 12.0, 12.0, 12.0, 1, nan, nan, 0.0, 0),
        ("4", 1, 27 / unit, 27 / unit, 16.0, 24.0, 12.0, 16.0, 2, 27 / unit, 0.0, 0.0, 1),
        ("5", 1, 21 / unit, 28 / unit, 6.0, 16.0, 8.0, 10.0, 2, 21 / unit, 0.0, 7 / unit, 0),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", *FEATURES[:-1]])
    # repeat_rate = frequency / max(T, 1), T in the unit
    frame["repeat_rate"] = frame["frequency"] / np.maximum(frame["T"], 1.0)
    frame["customer_id"] = frame["customer_id"].astype(object)
    return frame


@pytest.mark.parametrize(("time_unit", "unit"), [("day", 1.0), ("week", 7.0)])
def test_features_match_hand_computation(tiny: duckdb.DuckDBPyConnection, time_unit: str, unit: float) -> None:
    got = features(tiny, cut=CUT, time_unit=time_unit)
    pd.testing.assert_frame_equal(got, _expected_features(unit), check_exact=False, rtol=1e-12)


def test_week_repeat_rate_by_hand(tiny: duckdb.DuckDBPyConnection) -> None:
    # The same numbers written out: 2/4 weeks, 0, 0 (T floored at 1), 1/(27/7), 1/4.
    got = features(tiny, cut=CUT, time_unit="week")["repeat_rate"].to_numpy()
    np.testing.assert_allclose(got, [0.5, 0.0, 0.0, 7 / 27, 0.25], rtol=1e-12)


def test_targets_match_hand_computation(tiny: duckdb.DuckDBPyConnection) -> None:
    got = targets(tiny, start=CUT, end=D(2024, 2, 5))
    expected = pd.DataFrame(
        {
            "customer_id": pd.Series(["007", "1", "2", "4", "5"], dtype=object),
            "purchases": [1, 0, 0, 0, 0],
            "spend": [100.0, 0.0, 0.0, 0.0, 0.0],
        }
    )
    pd.testing.assert_frame_equal(got, expected)


def test_targets_window_is_start_exclusive_end_inclusive(tiny: duckdb.DuckDBPyConnection) -> None:
    # Cohort = first purchase by 01-08: 007, 4, 5. 007's 01-08 purchase is on the start: not counted.
    got = targets(tiny, start=D(2024, 1, 8), end=CUT)
    assert got["customer_id"].tolist() == ["007", "4", "5"]
    assert got["purchases"].tolist() == [1, 1, 1]
    assert got["spend"].tolist() == [30.0, 16.0, 6.0]


def test_input_errors(tiny: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ClvError, match=exactly("unknown time unit 'fortnight'; use one of: day, week, month, year")):
        features(tiny, cut=CUT, time_unit="fortnight")
    with pytest.raises(ClvError, match=exactly("cut must be a date, got '2024-01-29'; pass e.g. datetime.date(1997, 9, 30)")):
        features(tiny, cut="2024-01-29", time_unit="day")  # type: ignore[arg-type]
    with pytest.raises(ClvError, match=exactly("target window end 2024-01-29 must be after its start 2024-01-29")):
        targets(tiny, start=CUT, end=CUT)


def test_fit_errors(tiny: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ClvError, match=exactly("holdout_periods must be a positive number of days, got 0")):
        Challenger().fit(ModelData(transactions=tiny, calibration_end=CUT, holdout_periods=0, time_unit="day"))
    with pytest.raises(
        ClvError,
        match=exactly(
            "inner_cut 2024-01-29 must be before calibration_end 2024-01-29; "
            "the training targets are the purchases between them"
        ),
    ):
        Challenger(inner_cut=CUT).fit(ModelData(transactions=tiny, calibration_end=CUT, holdout_periods=7, time_unit="day"))
    with pytest.raises(
        ClvError,
        match=exactly(
            "challenger: only 3 customers had bought by the inner cut 2024-01-08 (min_customers is 50); "
            "pass a later inner_cut (before 2024-01-29)"
        ),
    ):
        Challenger(inner_cut=D(2024, 1, 8)).fit(
            ModelData(transactions=tiny, calibration_end=CUT, holdout_periods=21, time_unit="day"))
    with pytest.raises(
        ClvError,
        match=exactly(
            "challenger: only 5 customers had bought by the calibration end 2024-01-29 (min_customers is 50); "
            "the challenger needs more customers, or leave it out of models"
        ),
    ):
        Challenger().fit(ModelData(transactions=tiny, calibration_end=CUT, holdout_periods=21, time_unit="day"))
    with pytest.raises(
        ClvError,
        match=exactly(
            "challenger: no purchases in the training window (2024-01-29, 2024-01-30]; pass an earlier inner_cut"
        ),
    ):
        Challenger(min_customers=1).fit(
            ModelData(transactions=tiny, calibration_end=D(2024, 1, 30), holdout_periods=1, time_unit="day")
        )


def test_unfitted_model_is_refused(tiny: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    message = exactly("Challenger is not fitted; call fit(...) or Challenger.load(directory) first")
    with pytest.raises(ClvError, match=message):
        Challenger().predict(tiny, cut=CUT, horizon_periods=7)
    with pytest.raises(ClvError, match=message):
        Challenger().save(tmp_path)


# --- CDNOW ------------------------------------------------------------------------------------


def _cdnow_connection() -> duckdb.DuckDBPyConnection:
    con = clv_io.connect()
    clv_io.load_transactions(con, DataConfig(source="bundled:CDNOW_sample"))
    return con


@pytest.fixture(scope="module")
def cdnow() -> duckdb.DuckDBPyConnection:
    """CDNOW sample in table ``transactions`` (read-only: tests that add rows use their own)."""
    con = _cdnow_connection()
    yield con
    con.close()


def _fit(con: duckdb.DuckDBPyConnection) -> Challenger:
    return Challenger(inner_cut=INNER_CUT).fit(
        ModelData(transactions=con, calibration_end=C, holdout_periods=HOLDOUT_WEEKS, time_unit="week")
    )


@pytest.fixture(scope="module")
def fitted(cdnow: duckdb.DuckDBPyConnection) -> Challenger:
    return _fit(cdnow)


def _holdout(model: Challenger, con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return model.predict(con, cut=C, horizon_periods=HOLDOUT_WEEKS)


def _fitted_bytes(model: Challenger) -> list[bytes]:
    """Every number that determines the regressors' predictions, as raw bytes."""
    out: list[bytes] = []
    for regressor in model.regressors_.values():  # type: ignore[union-attr]
        out.append(np.asarray(regressor._baseline_prediction).tobytes())
        out.extend(np.asarray(t).tobytes() for t in regressor._bin_mapper.bin_thresholds_)
        out.extend(p.nodes.tobytes() for trees in regressor._predictors for p in trees)
    return out


def _assert_identical(left: pd.DataFrame, right: pd.DataFrame) -> None:
    assert left["customer_id"].tolist() == right["customer_id"].tolist()
    for target in ("purchases", "spend"):
        assert left[target].to_numpy().tobytes() == right[target].to_numpy().tobytes()


def test_rfm_columns_equal_rfm_summarise(cdnow: duckdb.DuckDBPyConnection, cdnow_summary: pd.DataFrame) -> None:
    got = features(cdnow, cut=C, time_unit="week")
    assert got["customer_id"].tolist() == cdnow_summary["customer_id"].tolist()
    for column in ("frequency", "recency", "T", "monetary_value"):
        np.testing.assert_allclose(got[column], cdnow_summary[column], rtol=1e-12, err_msg=column)


def test_targets_equal_rfm_holdout(cdnow: duckdb.DuckDBPyConnection, cdnow_summary: pd.DataFrame) -> None:
    got = targets(cdnow, start=C, end=OBSERVATION_END)
    assert got["customer_id"].tolist() == cdnow_summary["customer_id"].tolist()
    assert got["purchases"].tolist() == cdnow_summary["frequency_holdout"].tolist()
    assert int(got["purchases"].sum()) == CDNOW_HOLDOUT_PURCHASES
    holdout_spend = cdnow_summary["frequency_holdout"] * cdnow_summary["monetary_value_holdout"]
    np.testing.assert_allclose(got["spend"], holdout_spend, rtol=1e-9, atol=1e-9)


def _old_training_frame(con: duckdb.DuckDBPyConnection, inner_cut: dt.date, end: dt.date, unit: str) -> pd.DataFrame:
    """The oracle: the training frame as two queries built it before they were folded into one."""
    return join_training(features(con, cut=inner_cut, time_unit=unit), targets(con, start=inner_cut, end=end))


def _messy_log(seed: int) -> duckdb.DuckDBPyConnection:
    """A synthetic log for the one-query training frame: 400 customers over 2023-2024, many rows on
    the same day (several amounts summed), tied amounts (whole units), one-purchase customers,
    customers who arrive after the inner cut or after the calibration end."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(400):
        first = dt.date(2023, 1, 1) + dt.timedelta(days=int(rng.integers(0, 700)))
        n = 1 if i % 5 == 0 else int(rng.integers(2, 25))  # every fifth buys once
        offsets = np.sort(rng.integers(0, 120, size=n) * rng.integers(0, 4, size=n))  # zeros: same-day rows
        rows += [(f"c{i:04d}", first + dt.timedelta(days=int(k)), float(rng.integers(1, 6)) * 2.5) for k in offsets]
    return _connection(rows)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("time_unit", ["day", "week"])
def test_one_query_training_frame_equals_features_joined_with_targets(seed: int, time_unit: str) -> None:
    con = _messy_log(seed)
    try:
        for inner_cut, end in [(D(2023, 9, 30), D(2024, 3, 31)), (D(2024, 6, 1), D(2024, 6, 2)),
                               (D(2023, 1, 1), D(2025, 12, 31))]:
            got = DuckDBReader(con).training_frame(inner_cut=inner_cut, calibration_end=end, time_unit=time_unit)
            expected = _old_training_frame(con, inner_cut, end, time_unit)
            # Sums of the same days in another order: equal to the last bits, not beyond.
            pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)
            assert got["mean_gap"].isna().any() and (got["purchases"] > 0).any()  # both kinds are in it
    finally:
        con.close()


@pytest.mark.parametrize("inner_cut", [INNER_CUT, dt.date(1997, 2, 28)])
def test_one_query_training_frame_on_cdnow(cdnow: duckdb.DuckDBPyConnection, inner_cut: dt.date) -> None:
    got = DuckDBReader(cdnow).training_frame(inner_cut=inner_cut, calibration_end=C, time_unit="week")
    pd.testing.assert_frame_equal(got, _old_training_frame(cdnow, inner_cut, C, "week"), check_exact=False, rtol=1e-12)


def test_one_query_training_frame_on_the_tiny_log(tiny: duckdb.DuckDBPyConnection) -> None:
    # By hand: features at CUT (_expected_features) and the targets in (CUT, 2024-02-05]: 007's 100.
    got = DuckDBReader(tiny).training_frame(inner_cut=CUT, calibration_end=D(2024, 2, 5), time_unit="day")
    expected = _expected_features(1.0)
    expected["purchases"], expected["spend"] = [1, 0, 0, 0, 0], [100.0, 0.0, 0.0, 0.0, 0.0]
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)


def test_default_inner_cut_derived_when_nobody_had_bought_a_holdout_earlier(cdnow: duckdb.DuckDBPyConnection) -> None:
    # C − 39 weeks is 1996-12-31, before CDNOW's first purchase: the cut moves to the day by which
    # half of the 2,357 customers had bought (their first purchases, counted here with pandas).
    firsts = cdnow.execute("SELECT customer_id, min(day) AS first FROM transactions WHERE day <= ? GROUP BY 1",
                           [C]).df()["first"].sort_values().dt.date.tolist()
    half = firsts[math.ceil(len(firsts) / 2) - 1]
    assert sum(day <= half for day in firsts) >= len(firsts) / 2 > sum(day < half for day in firsts)
    fitted = Challenger().fit(ModelData(transactions=cdnow, calibration_end=C, holdout_periods=HOLDOUT_WEEKS,
                                        time_unit="week"))
    assert fitted.inner_cut_ == half
    assert fitted.window_periods_ == (C - half).days / 7 and fitted.n_train_ >= len(firsts) / 2
    assert fitted.inner_cut_rule_.startswith(
        f"inner cut {half}: by calibration end − holdout (1996-12-31) only 0 of 2,357 customers had bought, fewer "
        "than 1,179 (50%, at least min_customers)")


def _long_holdout_log() -> duckdb.DuckDBPyConnection:
    """200 customers arriving over 2000's first 100 days, buying every 20 days until 2003: a holdout
    (2001-01-01 to 2002-12-31) longer than the calibration period."""
    con = duckdb.connect()
    rows = []
    for i in range(200):
        first = dt.date(2000, 1, 1) + dt.timedelta(days=i // 2)
        rows += [(f"{i:03d}", first + dt.timedelta(days=k * (20 + i % 7)), 10.0 + i % 13) for k in range(60)
                 if first + dt.timedelta(days=k * (20 + i % 7)) < dt.date(2003, 1, 1)]
    frame = pd.DataFrame(rows, columns=["customer_id", "day", "amount"])
    con.register("long_log", frame)
    con.execute("CREATE TABLE transactions AS SELECT customer_id, CAST(day AS DATE) AS day, amount FROM long_log")
    return con


def test_inner_cut_derived_for_a_long_holdout() -> None:
    con = _long_holdout_log()
    calibration_end, holdout = dt.date(2000, 12, 31), (dt.date(2002, 12, 31) - dt.date(2000, 12, 31)).days
    # Two customers arrive each day: the 100th customer (half of 200) first bought on day 49.
    cut, rule = derive_inner_cut(con, "transactions", calibration_end=calibration_end, holdout_days=holdout,
                                 min_customers=50)
    assert cut == dt.date(2000, 2, 19)
    assert rule == (
        "inner cut 2000-02-19: by calibration end − holdout (1999-01-01) only 0 of 200 customers had bought, fewer "
        "than 100 (50%, at least min_customers); 2000-02-19 is the day by which 100 had, a 316-day training window "
        "(predictions scaled to the holdout's 730 days)")
    fitted = Challenger().fit(ModelData(transactions=con, calibration_end=calibration_end, holdout_periods=holdout,
                                        time_unit="day"))
    assert (fitted.inner_cut_, fitted.window_periods_, fitted.n_train_) == (cut, 316, 100)
    assert fitted.horizon_factor(holdout) == pytest.approx(730 / 316)
    # A short holdout keeps C − D, the window of the holdout's own length.
    cut, rule = derive_inner_cut(con, "transactions", calibration_end=calibration_end, holdout_days=91,
                                 min_customers=50)
    assert cut == dt.date(2000, 10, 1) and rule.startswith(
        "inner cut 2000-10-01 = calibration end − holdout (91 days): 200 of 200 customers had bought by then")
    # Fewer than half by C − D, but half later: the later day, even with min_customers reached earlier.
    cut, _ = derive_inner_cut(con, "transactions", calibration_end=dt.date(2000, 3, 1), holdout_days=40,
                              min_customers=10)
    assert cut == dt.date(2000, 1, 31)  # 42 of 122 by 2000-01-21; the 61st first bought on 2000-01-31
    con.close()


def test_holdout_rows_never_reach_training(fitted: Challenger) -> None:
    """Absurd rows after C (existing and new customers, next day to far future) change nothing."""
    con = _cdnow_connection()
    try:
        absurd = [
            ("00004", C + dt.timedelta(days=1), 1e9),
            ("00018", C + dt.timedelta(days=2), 5e8),
            ("00018", OBSERVATION_END, 7e8),
            ("99999", C + dt.timedelta(days=1), 1e9),  # a customer who appears only after C
            ("00021", dt.date(2030, 1, 1), 1e12),
        ]
        absurd += [("00050", C + dt.timedelta(days=d), 1e6) for d in range(1, 200)]
        con.executemany("INSERT INTO transactions VALUES (?, ?, ?)", absurd)
        contaminated = _fit(con)
        assert _fitted_bytes(contaminated) == _fitted_bytes(fitted)
        _assert_identical(_holdout(contaminated, con), _holdout(fitted, con))
    finally:
        con.close()


def test_training_reads_only_the_calibration_period(fitted: Challenger) -> None:
    # Control for the test above: rows *before* C do change the model, so the comparison can fail.
    con = _cdnow_connection()
    try:
        con.executemany(
            "INSERT INTO transactions VALUES (?, ?, ?)",
            [("00050", C - dt.timedelta(days=d), 1e6) for d in range(1, 60)],
        )
        assert _fitted_bytes(_fit(con)) != _fitted_bytes(fitted)
    finally:
        con.close()


def test_two_fits_are_identical(cdnow: duckdb.DuckDBPyConnection, fitted: Challenger) -> None:
    again = _fit(cdnow)
    assert _fitted_bytes(again) == _fitted_bytes(fitted)
    _assert_identical(_holdout(again, cdnow), _holdout(fitted, cdnow))


def test_fitted_state(fitted: Challenger) -> None:
    assert fitted.time_unit_ == "week"
    assert fitted.inner_cut_ == INNER_CUT
    assert fitted.window_periods_ == 92 / 7  # 1997-07-01..09-30
    assert fitted.holdout_periods_ == 39.0
    assert fitted.n_train_ == 2357  # every CDNOW customer's first purchase is in Q1 1997
    assert repr(fitted).startswith("Challenger(time_unit='week', inner_cut=1997-06-30")


def test_horizon_scaling_is_proportional(cdnow: duckdb.DuckDBPyConnection, fitted: Challenger) -> None:
    window = fitted.predict(cdnow, cut=C, horizon_periods=92 / 7)
    assert fitted.horizon_factor(92 / 7) == 1.0
    np.testing.assert_allclose(_holdout(fitted, cdnow)["purchases"], window["purchases"] * 39 / (92 / 7), rtol=1e-12)


def test_horizon_errors(cdnow: duckdb.DuckDBPyConnection, fitted: Challenger) -> None:
    with pytest.raises(ClvError, match=exactly("horizon_periods must be a positive number of weeks, got -1")):
        fitted.predict(cdnow, cut=C, horizon_periods=-1)
    strict = copy.deepcopy(fitted)
    strict.horizon_scaling = False  # a hyper-parameter, read at predict time
    with pytest.raises(
        ClvError,
        match=exactly(
            "challenger was trained on a 13.1429-week window and horizon_scaling is off; "
            "predict with horizon_periods=13.1429 or refit with a matching inner_cut"
        ),
    ):
        strict.predict(cdnow, cut=C, horizon_periods=HOLDOUT_WEEKS)
    with pytest.raises(ClvError, match=exactly("challenger: no customer had bought by 1990-01-01; choose a cut inside the data")):
        fitted.predict(cdnow, cut=dt.date(1990, 1, 1), horizon_periods=HOLDOUT_WEEKS)


def test_cdnow_holdout_metrics_are_sane(
    cdnow: duckdb.DuckDBPyConnection, fitted: Challenger, cdnow_summary: pd.DataFrame
) -> None:
    predicted = _holdout(fitted, cdnow)
    assert predicted["customer_id"].tolist() == cdnow_summary["customer_id"].tolist()
    for target in ("purchases", "spend"):
        values = predicted[target].to_numpy()
        assert np.isfinite(values).all() and (values >= 0).all(), target
    actual = cdnow_summary["frequency_holdout"].to_numpy(dtype=float)
    m = evaluate.metrics(actual, predicted["purchases"].to_numpy())
    assert m["total_actual"] == CDNOW_HOLDOUT_PURCHASES
    assert 0.5 * CDNOW_HOLDOUT_PURCHASES <= m["total_predicted"] <= 1.5 * CDNOW_HOLDOUT_PURCHASES
    # Better than the best constant forecast (whose RMSE is the holdout's standard deviation),
    # and it ranks customers better than chance.
    assert m["rmse"] < actual.std()
    assert m["spearman"] > 0.2
    board = evaluate.leaderboard(cdnow_summary, {"challenger": predicted})
    assert board[["model", "target"]].values.tolist() == [["challenger", "purchases"], ["challenger", "spend"]]
    assert np.isfinite(board[list(evaluate.METRICS)].to_numpy(dtype=float)).all()


# --- training-size cap (max_train_customers) ---------------------------------------------------


def _fit_capped(con: duckdb.DuckDBPyConnection, cap: int | None, seed: int = 0) -> Challenger:
    return Challenger(inner_cut=INNER_CUT, max_train_customers=cap, random_state=seed).fit(
        ModelData(transactions=con, calibration_end=C, holdout_periods=HOLDOUT_WEEKS, time_unit="week"))


def test_a_cap_above_the_cohort_changes_nothing(cdnow: duckdb.DuckDBPyConnection, fitted: Challenger) -> None:
    """CDNOW's 2,357 customers under a cap of 2,357 or more: the very model of today, bit for bit."""
    for cap in (2357, 250_000):
        capped = _fit_capped(cdnow, cap)
        assert _fitted_bytes(capped) == _fitted_bytes(fitted)
        _assert_identical(_holdout(capped, cdnow), _holdout(fitted, cdnow))
        assert (capped.n_train_, capped.n_fit_, capped.inner_cut_rule_) == (2357, 2357, fitted.inner_cut_rule_)


def test_a_cap_below_the_cohort_fits_a_seeded_sample(cdnow: duckdb.DuckDBPyConnection, fitted: Challenger,
                                                    cdnow_summary: pd.DataFrame) -> None:
    capped = _fit_capped(cdnow, 1000)
    assert (capped.n_train_, capped.n_fit_) == (2357, 1000)
    assert capped.inner_cut_rule_ == (
        f"inner cut {INNER_CUT} (set in the config); trained on a random sample of 1,000 of the 2,357 customers "
        "in the training cohort (max_train_customers, seed 0)")
    assert _fitted_bytes(capped) != _fitted_bytes(fitted)
    assert _fitted_bytes(_fit_capped(cdnow, 1000)) == _fitted_bytes(capped)  # the same seed, the same sample
    assert _fitted_bytes(_fit_capped(cdnow, 1000, seed=1)) != _fitted_bytes(capped)
    # Every customer is still scored.
    assert _holdout(capped, cdnow)["customer_id"].tolist() == cdnow_summary["customer_id"].tolist()


def test_training_sample_draws_without_replacement_in_order() -> None:
    frame = pd.DataFrame({"customer_id": [f"{i:03d}" for i in range(100)], "purchases": range(100)})
    assert training_sample(frame, None, 0) is frame and training_sample(frame, 100, 0) is frame
    sample = training_sample(frame, 30, 7)
    ids = sample["customer_id"].tolist()
    assert len(ids) == len(set(ids)) == 30 and ids == sorted(ids) and set(ids) <= set(frame["customer_id"])
    assert list(sample.index) == list(range(30))
    assert sample.equals(training_sample(frame, 30, 7)) and not sample.equals(training_sample(frame, 30, 8))


@pytest.mark.parametrize("cap", [49, 0, 2.5, True, "1000"])
def test_a_bad_cap_is_refused(cdnow: duckdb.DuckDBPyConnection, cap: object) -> None:
    message = (f"challenger: max_train_customers must be a whole number of at least min_customers (50), or null "
               f"for the whole training cohort; got {cap!r}")
    with pytest.raises(ClvError, match=exactly(message)):
        _fit_capped(cdnow, cap)  # type: ignore[arg-type]


def test_a_capped_challenger_round_trips(cdnow: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    capped = _fit_capped(cdnow, 1000)
    loaded = Challenger.load(capped.save(tmp_path / "capped"))
    assert loaded.get_params()["max_train_customers"] == 1000 and (loaded.n_train_, loaded.n_fit_) == (2357, 1000)
    _assert_identical(_holdout(loaded, cdnow), _holdout(capped, cdnow))


# --- save / load --------------------------------------------------------------------------------


@pytest.fixture()
def saved(fitted: Challenger, tmp_path: Path) -> Path:
    return fitted.save(tmp_path / "challenger")


def _rewrite_document(directory: Path, **changes: object) -> None:
    """Change the JSON as a careful attacker would: with a recomputed, valid checksum."""
    path = directory / JSON_NAME
    document = json.loads(path.read_text())
    document.update(changes)
    document["checksum"] = document_checksum(document)
    path.write_text(json.dumps(document))


def test_round_trip_gives_identical_predictions(
    cdnow: duckdb.DuckDBPyConnection, fitted: Challenger, saved: Path
) -> None:
    assert sorted(p.name for p in saved.iterdir()) == [JSON_NAME, SKOPS_NAME]
    loaded = Challenger.load(saved)
    _assert_identical(_holdout(loaded, cdnow), _holdout(fitted, cdnow))
    assert loaded.get_params() == fitted.get_params()
    assert "max_train_customers" not in loaded.get_params() and loaded.n_fit_ == loaded.n_train_ == 2357
    assert (loaded.time_unit_, loaded.inner_cut_, loaded.window_periods_) == ("week", INNER_CUT, 92 / 7)
    document = json.loads((saved / JSON_NAME).read_text())
    assert document["features"] == list(FEATURES)
    assert {"scikit-learn", "skops", "numpy"} <= set(document["versions"])


def test_tampered_skops_file_is_refused(saved: Path) -> None:
    path = saved / SKOPS_NAME
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(ClvError, match=r"challenger\.skops: SHA-256 .* \(tampered or corrupted\); refusing to load it$"):
        Challenger.load(saved)


def test_edited_document_is_refused(saved: Path) -> None:
    path = saved / JSON_NAME
    path.write_text(path.read_text().replace('"time_unit": "week"', '"time_unit": "day"'))
    with pytest.raises(ClvError, match=r"challenger\.json: checksum mismatch \(edited or corrupted\); save the challenger again$"):
        Challenger.load(saved)


class Payload:
    """A type no one listed as trusted (skops would rebuild it from its ``__dict__``)."""

    def __init__(self) -> None:
        self.note = "anything could be rebuilt here"


def test_untrusted_types_are_refused_even_with_matching_checksums(saved: Path) -> None:
    blob = sio.dumps({"purchases": Payload(), "spend": Payload()})
    (saved / SKOPS_NAME).write_bytes(blob)
    _rewrite_document(saved, skops_sha256=hashlib.sha256(blob).hexdigest())
    with pytest.raises(ClvError, match=r"contains untrusted types \(.*test_challenger\.Payload\); refusing to load it$"):
        Challenger.load(saved)


def test_other_scikit_learn_version_is_refused(saved: Path) -> None:
    document = json.loads((saved / JSON_NAME).read_text())
    _rewrite_document(saved, versions={**document["versions"], "scikit-learn": "0.24.2"})
    with pytest.raises(ClvError, match=r"was saved with scikit-learn 0\.24\.2, this environment has .*; retrain the challenger"):
        Challenger.load(saved)


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ClvError, match=exactly(f"{tmp_path} holds no {JSON_NAME}; save a fitted Challenger there first")):
        Challenger.load(tmp_path)


def test_a_sample_that_misses_every_buyer_names_the_cap() -> None:
    """One buyer in the training window among 2,000 customers: uncapped the fit runs; a sample of
    100 that misses that buyer is refused in one line that points at the cap, not the inner cut
    (review of issue 16)."""
    rows = [(f"c{i:04d}", dt.date(2024, 1, 1) + dt.timedelta(days=i % 50), 10.0 + i % 7) for i in range(2000)]
    rows += [(f"c{i:04d}", dt.date(2024, 2, 15) + dt.timedelta(days=i % 13), 5.0) for i in range(0, 2000, 3)]
    rows += [("c0007", dt.date(2024, 5, 1), 10.0), ("c0007", dt.date(2024, 6, 1), 10.0)]
    frame = pd.DataFrame(rows, columns=["customer_id", "day", "amount"])
    con = duckdb.connect()
    try:
        con.register("frame", frame)
        con.execute("CREATE TABLE transactions AS SELECT customer_id, CAST(day AS DATE) AS day, amount FROM frame")
        data = ModelData(transactions=con, calibration_end=dt.date(2024, 6, 30), holdout_periods=4, time_unit="week")
        Challenger(inner_cut=dt.date(2024, 3, 1)).fit(data)
        sample = training_sample(pd.DataFrame({"customer_id": sorted({r[0] for r in rows})}), 100, 0)
        assert "c0007" not in set(sample["customer_id"])  # the premise: seed 0's sample misses the buyer
        with pytest.raises(ClvError, match=r"^challenger: the random sample of 100 of the 2,000 customers .*"
                                           r"has no purchases .*raise max_train_customers or set it to null$"):
            Challenger(inner_cut=dt.date(2024, 3, 1), max_train_customers=100).fit(data)
    finally:
        con.close()
