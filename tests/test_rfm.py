"""Tests for clvmodel.rfm: the RFM summary, the calibration/holdout split and their accounting.

Sources: Fader, Hardie & Lee (2005), "Counting your customers the easy way" (the CDNOW summary
contract), lifetimes' bundled ``cdnow_customers_summary.csv`` (the paper's summary file, weeks to
two decimals) and /work/shared/REFERENCE.md (repeat purchase counts).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from clvmodel import io, rfm
from clvmodel.config import Columns, DataConfig
from clvmodel.errors import ClvError
from clvmodel.models.lifetimes_adapter import dataset_path

D = dt.date

# A tiny log, by hand. Calibration ends 2020-01-31, observation ends 2020-03-31 (2020 is a leap year).
#   A    : Jan 1 ($10 + $5 same day = one $15 purchase), Jan 15 $20, Jan 29 $30 | holdout Feb 10 ($40 + $2), Mar 1 $8
#   007  : Jan 10 $12 only (one-time buyer; the id keeps its zeros)
#   B    : Jan 20 $0 (free item: still a purchase), Jan 25 $9 | holdout Mar 31 $7 (on observation end),
#          Apr 2 $100 (after observation end: ignored, counted)
#   C    : first purchase Feb 5 $6, Feb 6 $11: after the calibration end (not in the cohort, counted)
#   D    : Jan 31 $3 (first purchase on the calibration end itself) | holdout Feb 1 $4
TINY = [
    ("A", D(2020, 1, 1), 10.0),
    ("A", D(2020, 1, 1), 5.0),
    ("A", D(2020, 1, 15), 20.0),
    ("A", D(2020, 1, 29), 30.0),
    ("A", D(2020, 2, 10), 40.0),
    ("A", D(2020, 2, 10), 2.0),
    ("A", D(2020, 3, 1), 8.0),
    ("007", D(2020, 1, 10), 12.0),
    ("B", D(2020, 1, 20), 0.0),
    ("B", D(2020, 1, 25), 9.0),
    ("B", D(2020, 3, 31), 7.0),
    ("B", D(2020, 4, 2), 100.0),
    ("C", D(2020, 2, 5), 6.0),
    ("C", D(2020, 2, 6), 11.0),
    ("D", D(2020, 1, 31), 3.0),
    ("D", D(2020, 2, 1), 4.0),
]
CAL, OBS = D(2020, 1, 31), D(2020, 3, 31)


def _table(con, rows, name: str = "transactions") -> None:
    """Create ``name(customer_id VARCHAR, day DATE, amount DOUBLE)`` from (id, date, amount) rows."""
    frame = pd.DataFrame(rows, columns=["customer_id", "day", "amount"])
    frame["customer_id"] = frame["customer_id"].astype(object)
    frame["day"] = pd.to_datetime(frame["day"])
    con.execute(  # DuckDB reads the local pandas frame `frame` by name (a replacement scan)
        f"CREATE OR REPLACE TABLE {name} AS "
        "SELECT CAST(customer_id AS VARCHAR) AS customer_id, CAST(day AS DATE) AS day, CAST(amount AS DOUBLE) AS amount "
        "FROM frame"
    )


def _frame(columns: dict, scale: float = 1.0) -> pd.DataFrame:
    """An expected summary; recency, T and duration_holdout are divided by ``scale`` (7 for weeks)."""
    out = pd.DataFrame(columns)
    out["customer_id"] = out["customer_id"].astype(object)
    for c in ("frequency", "frequency_holdout"):
        if c in out:
            out[c] = out[c].astype("int64")
    for c in ("recency", "T", "duration_holdout"):
        if c in out:
            out[c] = out[c].astype(float) / scale
    for c in ("monetary_value", "monetary_value_holdout"):
        if c in out:
            out[c] = out[c].astype(float)
    return out


# Expected summaries, in days (divide by 7 for weeks).
SPLIT = {
    "customer_id": ["007", "A", "B", "D"],
    "frequency": [0, 2, 1, 0],
    "recency": [0, 28, 5, 0],  # A: Jan 29 - Jan 1; B: Jan 25 - Jan 20
    "T": [21, 30, 11, 0],  # Jan 31 - first purchase
    "monetary_value": [0, 25, 9, 0],  # A: (20 + 30) / 2; B: the $0 first purchase is not a repeat
    "frequency_holdout": [0, 2, 1, 1],  # A: Feb 10, Mar 1; B: Mar 31 (inclusive); D: Feb 1
    "monetary_value_holdout": [0, 25, 7, 4],  # A: (42 + 8) / 2
    "duration_holdout": [60, 60, 60, 60],  # Jan 31 -> Mar 31 in a leap year
}
NO_SPLIT = {
    "customer_id": ["007", "A", "B", "C", "D"],
    "frequency": [0, 4, 2, 1, 1],
    "recency": [0, 60, 71, 1, 1],  # A: Mar 1 - Jan 1; B: Mar 31 - Jan 20
    "T": [81, 90, 71, 55, 60],  # Mar 31 - first purchase
    "monetary_value": [0, 25, 8, 11, 4],  # A: (20 + 30 + 42 + 8) / 4; B: (9 + 7) / 2
}


@pytest.mark.parametrize(("unit", "scale"), [("day", 1.0), ("week", 7.0)])
def test_tiny_log_with_split(duck, unit: str, scale: float) -> None:
    _table(duck, TINY)
    result = rfm.summarise(duck, time_unit=unit, calibration_end=CAL, observation_end=OBS)
    pd.testing.assert_frame_equal(result.summary, _frame(SPLIT, scale), check_exact=False, rtol=1e-12)
    assert list(result.summary.columns) == rfm.SUMMARY_COLUMNS + rfm.HOLDOUT_COLUMNS
    assert result.customers_after_calibration == 1  # C
    assert result.transactions_after_observation_end == 1  # B on Apr 2
    assert (result.time_unit, result.calibration_end, result.observation_end, result.split) == (unit, CAL, OBS, True)


@pytest.mark.parametrize(("unit", "scale"), [("day", 1.0), ("week", 7.0)])
def test_tiny_log_without_split(duck, unit: str, scale: float) -> None:
    _table(duck, TINY)
    result = rfm.summarise(duck, time_unit=unit, observation_end=OBS)
    pd.testing.assert_frame_equal(result.summary, _frame(NO_SPLIT, scale), check_exact=False, rtol=1e-12)
    assert list(result.summary.columns) == rfm.SUMMARY_COLUMNS
    assert result.customers_after_calibration == 0
    assert result.transactions_after_observation_end == 1
    assert (result.calibration_end, result.split) == (None, False)


def test_observation_end_defaults_to_the_last_transaction(duck) -> None:
    _table(duck, TINY)
    result = rfm.summarise(duck, time_unit="day")
    assert result.observation_end == D(2020, 4, 2)
    assert result.transactions_after_observation_end == 0
    b = result.summary.set_index("customer_id").loc["B"]
    # B: Jan 20, Jan 25, Mar 31, Apr 2 ($0, $9, $7, $100)
    assert (b["frequency"], b["recency"], b["T"], b["monetary_value"]) == (3, 73.0, 73.0, (9 + 7 + 100) / 3)


def test_observation_end_after_the_data_extends_T(duck) -> None:
    _table(duck, TINY)
    result = rfm.summarise(duck, time_unit="day", calibration_end=CAL, observation_end=D(2020, 12, 31))
    summary = result.summary.set_index("customer_id")
    assert summary.loc["B", "frequency_holdout"] == 2  # Mar 31 and Apr 2 are inside the longer holdout
    assert summary.loc["B", "monetary_value_holdout"] == (7 + 100) / 2
    assert summary["duration_holdout"].tolist() == [335.0] * 4  # Jan 31 -> Dec 31, 2020
    assert result.transactions_after_observation_end == 0


def test_summary_is_invariant_to_row_order(duck) -> None:
    _table(duck, TINY)
    expected = rfm.summarise(duck, time_unit="week", calibration_end=CAL, observation_end=OBS).summary
    for seed in range(3):
        shuffled = [TINY[i] for i in np.random.default_rng(seed).permutation(len(TINY))]
        _table(duck, shuffled)
        got = rfm.summarise(duck, time_unit="week", calibration_end=CAL, observation_end=OBS).summary
        pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_other_table_name(duck) -> None:
    _table(duck, TINY, name="sales")
    result = rfm.summarise(duck, time_unit="day", calibration_end=CAL, observation_end=OBS, table="sales")
    pd.testing.assert_frame_equal(result.summary, _frame(SPLIT), check_exact=False, rtol=1e-12)


def test_repeat_transactions_by_period(duck) -> None:
    _table(duck, TINY)
    got = rfm.repeat_transactions_by_period(duck, start=D(2020, 1, 1), end=OBS, unit_days=7)
    # Repeat purchase days (not first purchases), week k = days since Jan 1 // 7 + 1:
    # A Jan 15 (14 -> 3), Jan 29 (28 -> 5), Feb 10 (40 -> 6), Mar 1 (60 -> 9); B Jan 25 (24 -> 4),
    # Mar 31 (90 -> 13); C Feb 6 (36 -> 6); D Feb 1 (31 -> 5). Apr 2 is after `end`. 90 // 7 + 1 = 13 weeks.
    expected = pd.Series(
        [0, 0, 1, 1, 2, 2, 0, 0, 1, 0, 0, 0, 1],
        index=pd.Index(range(1, 14), name="period"),
        name="repeat_transactions",
    )
    pd.testing.assert_series_equal(got, expected)


def test_repeat_transactions_by_day(duck) -> None:
    _table(duck, TINY)
    got = rfm.repeat_transactions_by_period(duck, start=D(2020, 1, 25), end=D(2020, 2, 10), unit_days=1)
    assert len(got) == 17  # Jan 25 .. Feb 10
    assert got.sum() == 5  # B Jan 25, A Jan 29, D Feb 1, C Feb 6, A Feb 10
    assert got[got > 0].to_dict() == {1: 1, 5: 1, 8: 1, 13: 1, 17: 1}


def test_connection_stays_usable_after_summarise(duck) -> None:
    _table(duck, TINY)
    rfm.summarise(duck, time_unit="day")
    report = io.load_transactions(duck, DataConfig(source="bundled:CDNOW_sample"))
    assert report.customers == 2357


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("calibration_end", [D(2019, 12, 31), D(2020, 4, 2), D(2020, 5, 1)])
def test_calibration_end_outside_the_data(duck, calibration_end: dt.date) -> None:
    _table(duck, TINY)
    with pytest.raises(
        ClvError,
        match=rf"^calibration_end {calibration_end} is outside the data \(2020-01-01 to 2020-04-02\); "
        "choose a date after the first and before the last transaction$",
    ):
        rfm.summarise(duck, time_unit="week", calibration_end=calibration_end)


def test_calibration_end_after_observation_end(duck) -> None:
    _table(duck, TINY)
    with pytest.raises(ClvError, match=r"^calibration_end 2020-03-01 must be before observation_end 2020-02-01$"):
        rfm.summarise(duck, time_unit="week", calibration_end=D(2020, 3, 1), observation_end=D(2020, 2, 1))


def test_observation_end_before_the_data(duck) -> None:
    _table(duck, TINY)
    with pytest.raises(ClvError, match=r"^observation_end 2019-06-30 is before the first transaction 2020-01-01"):
        rfm.summarise(duck, time_unit="day", observation_end=D(2019, 6, 30))


def test_unknown_time_unit(duck) -> None:
    _table(duck, TINY)
    with pytest.raises(ClvError, match=r"^unknown time unit 'decade'; use one of: day, week, month, year$"):
        rfm.summarise(duck, time_unit="decade")


# --- a pandas reference on a random log -------------------------------------------------------


def _reference_summary(tx: pd.DataFrame, cut: dt.date, obs: dt.date, unit_days: int) -> pd.DataFrame:
    """The summary contract written plainly with pandas, one customer at a time."""
    tx = tx[tx["day"] <= obs]
    days = tx.groupby(["customer_id", "day"], as_index=False)["amount"].sum().sort_values(["customer_id", "day"])
    rows = []
    for cid, g in days.groupby("customer_id", sort=True):
        first = g["day"].iloc[0]
        if first > cut:
            continue
        cal, hold = g[g["day"] <= cut], g[g["day"] > cut]
        x = len(cal) - 1
        rows.append(
            {
                "customer_id": cid,
                "frequency": x,
                "recency": (cal["day"].iloc[-1] - first).days / unit_days,
                "T": (cut - first).days / unit_days,
                "monetary_value": cal["amount"].iloc[1:].mean() if x > 0 else 0.0,
                "frequency_holdout": len(hold),
                "monetary_value_holdout": hold["amount"].mean() if len(hold) else 0.0,
                "duration_holdout": (obs - cut).days / unit_days,
            }
        )
    out = pd.DataFrame(rows)
    out["customer_id"] = out["customer_id"].astype(object)
    return out


@pytest.fixture(scope="module")
def random_log() -> pd.DataFrame:
    """~2,000 seeded transactions of 300 customers over 2020, with same-day repeats and zero amounts."""
    rng = np.random.default_rng(20240607)
    n = 2000
    customers = np.array([f"{i:05d}" for i in rng.integers(0, 300, n)], dtype=object)
    first_day = D(2020, 1, 1)
    days = [first_day + dt.timedelta(days=int(d)) for d in rng.integers(0, 366, n)]
    amounts = np.round(rng.gamma(2.0, 20.0, n), 2)
    amounts[rng.random(n) < 0.03] = 0.0
    frame = pd.DataFrame({"customer_id": customers, "day": days, "amount": amounts})
    dup = frame.sample(200, random_state=1).assign(amount=lambda f: np.round(f["amount"] / 3, 2))
    return pd.concat([frame, dup], ignore_index=True)


@pytest.mark.parametrize(("unit", "unit_days"), [("day", 1), ("week", 7)])
def test_duckdb_equals_pandas_reference(duck, random_log: pd.DataFrame, unit: str, unit_days: int) -> None:
    cut, obs = D(2020, 9, 30), D(2020, 12, 15)
    _table(duck, random_log.itertuples(index=False, name=None))
    result = rfm.summarise(duck, time_unit=unit, calibration_end=cut, observation_end=obs)
    expected = _reference_summary(random_log, cut, obs, unit_days)
    assert len(expected) > 250 and expected["frequency"].max() > 5  # the log is not degenerate
    pd.testing.assert_frame_equal(result.summary, expected, check_exact=False, rtol=1e-9)
    firsts = random_log.groupby("customer_id")["day"].min()
    assert result.customers_after_calibration == int((firsts > cut).sum())
    assert result.transactions_after_observation_end == int((random_log["day"] > obs).sum())


@pytest.mark.parametrize("per_day", [False, True])
def test_summary_without_split_equals_the_conditional_aggregates(duck, random_log: pd.DataFrame, per_day: bool) -> None:
    """With the cut on the observation end, rfm_sql aggregates every kept day plainly (no CASE).

    Oracles: the conditional form of the same query (the cut on the last day of the log, the
    observation end a day later: no row lies after the cut, yet the CASEs are evaluated) and the
    pandas reference; equal exactly, types included, as ``summarise`` returns them.
    """
    _table(duck, random_log.itertuples(index=False, name=None))
    rfm.create_days(duck)
    table = "days" if per_day else "transactions"
    last = duck.execute("SELECT max(day) FROM transactions").fetchone()[0]
    plain_sql = rfm.rfm_sql(table, last, last, 7, False, per_day=per_day, first_day=True)
    conditional_sql = rfm.rfm_sql(table, last, last + dt.timedelta(days=1), 7, False, per_day=per_day, first_day=True)
    assert "CASE WHEN day <=" not in plain_sql and "CASE WHEN day <=" in conditional_sql
    plain, conditional = duck.execute(plain_sql).df(), duck.execute(conditional_sql).df()
    pd.testing.assert_frame_equal(plain, conditional, check_exact=True)
    summary = rfm.summarise(duck, time_unit="week", days="days" if per_day else None).summary
    expected = _reference_summary(random_log, last, last, 7)[rfm.SUMMARY_COLUMNS]
    assert (summary["frequency"] > 0).sum() > 200  # repeat buyers to check monetary_value on
    pd.testing.assert_frame_equal(summary, expected, check_exact=False, rtol=1e-9)


def test_recency_between_zero_and_T(duck, random_log: pd.DataFrame, cdnow_summary: pd.DataFrame) -> None:
    _table(duck, random_log.itertuples(index=False, name=None))
    for summary in (rfm.summarise(duck, time_unit="week", calibration_end=D(2020, 6, 30)).summary, cdnow_summary):
        assert (summary["recency"] >= 0).all()
        assert (summary["recency"] <= summary["T"]).all()
        assert (summary.loc[summary["frequency"] == 0, "recency"] == 0).all()
        assert (summary.loc[summary["frequency"] == 0, "monetary_value"] == 0).all()
        assert summary["customer_id"].is_unique


# --- CDNOW ------------------------------------------------------------------------------------


def test_cdnow_repeat_purchases(cdnow_rfm: rfm.RfmResult) -> None:
    summary = cdnow_rfm.summary
    assert len(summary) == 2357  # the CDNOW sample cohort, all first purchases in Q1 1997
    assert summary["frequency"].sum() == 2457  # calibration repeat purchases; REFERENCE.md
    assert summary["frequency_holdout"].sum() == 1882  # holdout weeks 40-78; REFERENCE.md, BTYD walkthrough
    assert (summary["duration_holdout"] == 39.0).all()  # 1997-09-30 -> 1998-06-30 is 273 days = 39 weeks
    assert cdnow_rfm.customers_after_calibration == 0
    assert cdnow_rfm.transactions_after_observation_end == 0
    assert (summary["frequency"] > 0).sum() == 946  # the Gamma-Gamma sample of Fader & Hardie (2013)


def test_cdnow_reproduces_lifetimes_summary_file() -> None:
    """lifetimes' cdnow_customers_summary.csv is the paper's summary file (weeks, two decimals)."""
    con = io.connect()
    io.load_transactions(con, DataConfig(source="bundled:CDNOW_sample", columns=Columns(customer_id="sample_id")))
    ours = rfm.summarise(con, time_unit="week", calibration_end=D(1997, 9, 30), observation_end=D(1998, 6, 30)).summary
    published = pd.read_csv(dataset_path("cdnow_customers_summary"))
    assert len(ours) == len(published) == 2357
    assert ours["customer_id"].iloc[0] == "0001"  # ids as read, zeros kept
    np.testing.assert_array_equal(ours["customer_id"].astype(int).to_numpy(), published["ID"].to_numpy())
    np.testing.assert_array_equal(ours["frequency"].to_numpy(), published["frequency"].to_numpy())
    for column in ("recency", "T"):
        np.testing.assert_allclose(ours[column].to_numpy(), published[column].to_numpy(), rtol=0, atol=0.005 + 1e-9)
        np.testing.assert_array_equal(ours[column].round(2).to_numpy(), published[column].to_numpy())


def test_every_customer_is_summarised_or_counted(duck) -> None:
    """Nothing lost: summarised + first seen after the cut + only after the observation end = read."""
    _table(duck, TINY)
    duck.execute("INSERT INTO transactions VALUES ('LATE', DATE '2024-04-05', 3.0)")  # only after OBS
    customers = duck.execute("SELECT count(DISTINCT customer_id) FROM transactions").fetchall()[0][0]
    result = rfm.summarise(duck, time_unit="day", calibration_end=CAL, observation_end=OBS)
    assert (len(result.summary), result.customers_after_calibration, result.customers_after_observation_end) == (4, 1, 1)
    result.account(customers)
    with pytest.raises(RuntimeError, match="clvmodel bug: 7 customers read but 4 summarised"):
        result.account(customers + 1)


# --- the per-day table: the same summary, accounting and plot series as from the transactions ---


@pytest.mark.parametrize("unit", ["day", "week"])
@pytest.mark.parametrize(("cal", "obs"), [(CAL, OBS), (None, OBS), (None, None), (CAL, D(2020, 2, 15))])
def test_summary_from_the_days_table_equals_the_one_from_transactions(duck, unit, cal, obs) -> None:
    _table(duck, TINY)
    rfm.create_days(duck)
    plain = rfm.summarise(duck, time_unit=unit, calibration_end=cal, observation_end=obs)
    fast = rfm.summarise(duck, time_unit=unit, calibration_end=cal, observation_end=obs, days="days")
    pd.testing.assert_frame_equal(fast.summary, plain.summary, check_exact=True)
    accounting = ("customers_after_calibration", "transactions_after_observation_end", "customers_after_observation_end")
    assert [getattr(fast, k) for k in accounting] == [getattr(plain, k) for k in accounting]
    fast.account(5)  # A, 007, B, C, D


def test_days_table_sums_same_day_rows() -> None:
    import duckdb

    con = duckdb.connect()
    _table(con, TINY)
    rfm.create_days(con)
    got = con.execute("SELECT day, CAST(amount AS DOUBLE), n FROM days WHERE customer_id = 'A' ORDER BY day").fetchall()
    assert got == [(D(2020, 1, 1), 15.0, 2), (D(2020, 1, 15), 20.0, 1), (D(2020, 1, 29), 30.0, 1),
                   (D(2020, 2, 10), 42.0, 2), (D(2020, 3, 1), 8.0, 1)]


@pytest.mark.parametrize(("start", "end", "unit_days"), [(D(2020, 1, 1), OBS, 7), (D(2020, 1, 25), D(2020, 2, 10), 1),
                                                          (D(2020, 1, 10), D(2020, 3, 31), 7)])
def test_repeat_series_from_days_equals_the_join(duck, start, end, unit_days) -> None:
    _table(duck, TINY)
    rfm.create_days(duck)
    result = rfm.summarise(duck, time_unit="day", observation_end=end, days="days")
    plain = rfm.repeat_transactions_by_period(duck, start=start, end=end, unit_days=unit_days)
    fast = rfm.repeat_transactions_by_period(
        duck, start=start, end=end, unit_days=unit_days, days="days", first_days=result.first_days
    )
    pd.testing.assert_series_equal(fast, plain, check_dtype=False)
