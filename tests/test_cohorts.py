"""Cohort curves per channel (issue 14 part 4): exact frames on a log small enough to count by hand.

The log is loaded the way training loads it (:func:`clvmodel.io.load_transactions` into a real
DuckDB connection, then the ``days`` table); every expected number below is worked out in the
comments from the rows of :data:`ROWS`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from clvmodel import cohorts, plots
from clvmodel import io as clv_io
from clvmodel.config import DataConfig
from clvmodel.errors import ClvError
from clvmodel.models.bgnbd_forecast import expected_purchases_new

#: Weeks (unit 7 days) to END; 2024-01-01 is day 0.
END = dt.date(2024, 1, 29)
ROWS = [
    # a1, channel A, acquired day 0 (observed floor(28 / 7) = 4 weeks before END):
    ("a1", "2024-01-01", 10),   # }  one purchase day (same-day rule): the first order is 15
    ("a1", "2024-01-01", 5),    # }
    ("a1", "2024-01-08", 20),   # day 7: exactly one week after, so in week 1 (the window is inclusive)
    ("a1", "2024-01-09", 4),    # day 8: week 2
    ("a1", "2024-01-20", 4),    # }  day 19: week 3, one purchase day of 6 (same-day rule on a repeat day)
    ("a1", "2024-01-20", 2),    # }
    ("a1", "2024-02-10", 100),  # after END: never counted
    # a2, channel A, acquired day 14 (observed floor(14 / 7) = 2 weeks): censored from week 3 on
    ("a2", "2024-01-15", 30),
    ("a2", "2024-01-16", 2),    # one day after: week 1
    # b1, channel B, acquired day 2 (observed floor(26 / 7) = 3 weeks)
    ("b1", "2024-01-03", 8),    # }  an exact duplicate row: kept, merged into one day of 16
    ("b1", "2024-01-03", 8),    # }
    ("b1", "2024-01-24", 9),    # day 21 after acquisition: week 3
    # u1: no row in the channels table -> channel "unknown"; observed floor(27 / 7) = 3 weeks
    ("u1", "2024-01-02", 50),
    # c1, channel A, acquired after END: not an acquired customer yet
    ("c1", "2024-02-05", 70),
]
CHANNELS = pd.DataFrame({
    "customer_id": ["a1", "a2", "b1", "c1", "z9"],  # z9 never bought: not acquired, left out
    "channel": ["A", "A", "B", "A", "B"],
})
MARGIN = 0.5


@pytest.fixture
def loaded(tmp_path: Path, write_csv: Callable[..., Path]) -> duckdb.DuckDBPyConnection:
    """:data:`ROWS` loaded as training loads a log (``transactions`` and ``days``)."""
    path = write_csv(ROWS)
    con = clv_io.connect()
    clv_io.load_transactions(con, DataConfig(source=str(path)))
    yield con
    con.close()


def _frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=cohorts.CURVE_COLUMNS)
    return frame.astype({"period": np.int64, "customers_observed": np.int64, "cumulative_value": float,
                         "cumulative_repeat_purchases": float})


def test_observed_curves_by_hand(loaded: duckdb.DuckDBPyConnection) -> None:
    got = cohorts.observed_cohort_curves(loaded, CHANNELS, unit_days=7, end=END, periods=4, margin=MARGIN)
    expected = _frame([
        # A, week 0: a1 15, a2 30 -> 0.5 × 45 / 2; week 1: a1 35 (15 + 20, day 7 included), a2 32;
        # week 2: a1 39, a2 32; week 3: a2 has been observed for 2 weeks only, so a1 alone: 45;
        # week 4: a1 still 45 (its purchase after END does not count).
        ("A", 0, 2, 0.5 * 45 / 2, 0.0),
        ("A", 1, 2, 0.5 * 67 / 2, 2 / 2),
        ("A", 2, 2, 0.5 * 71 / 2, 3 / 2),
        ("A", 3, 1, 0.5 * 45, 3.0),
        ("A", 4, 1, 0.5 * 45, 3.0),
        # B: b1's first day is one purchase of 16 (two rows on one day), 9 more in week 3; nobody
        # has been observed for 4 weeks: no value rather than a 0.
        ("B", 0, 1, 8.0, 0.0),
        ("B", 1, 1, 8.0, 0.0),
        ("B", 2, 1, 8.0, 0.0),
        ("B", 3, 1, 12.5, 1.0),
        ("B", 4, 0, np.nan, np.nan),
        ("unknown", 0, 1, 25.0, 0.0),
        ("unknown", 1, 1, 25.0, 0.0),
        ("unknown", 2, 1, 25.0, 0.0),
        ("unknown", 3, 1, 25.0, 0.0),
        ("unknown", 4, 0, np.nan, np.nan),
    ])
    pd.testing.assert_frame_equal(got, expected)


def test_observed_curves_in_days_with_an_earlier_end(loaded: duckdb.DuckDBPyConnection) -> None:
    """Unit 1 day, END day 8: a2, b1's second day and everything later are after it."""
    got = cohorts.observed_cohort_curves(loaded, CHANNELS, unit_days=1, end=dt.date(2024, 1, 9), periods=8, margin=1.0)
    a = got[got["channel"] == "A"]
    # a1 alone (observed 8 days): 15 on day 0, 35 from day 7, 39 on day 8.
    assert a["customers_observed"].tolist() == [1] * 9
    assert a["cumulative_value"].tolist() == [15.0] * 7 + [35.0, 39.0]
    assert a["cumulative_repeat_purchases"].tolist() == [0.0] * 7 + [1.0, 2.0]
    b = got[got["channel"] == "B"]  # b1 acquired day 2: observed 6 days
    assert b["customers_observed"].tolist() == [1] * 7 + [0, 0]
    assert b["cumulative_value"].iloc[:7].tolist() == [16.0] * 7 and b["cumulative_value"].iloc[7:].isna().all()
    assert got["channel"].unique().tolist() == ["A", "B", "unknown"]


def test_channel_codes_and_ids_are_matched_as_text(tmp_path: Path, write_csv: Callable[..., Path]) -> None:
    """Numeric ids and channel codes (the apparel file's 0/1) match the log's ids as text: 1 is "1",
    and 3 is not "03" (leading zeros are part of an id)."""
    path = write_csv([("1", "2024-01-01", 10), ("2", "2024-01-01", 20), ("2", "2024-01-03", 4), ("03", "2024-01-01", 7)])
    con = clv_io.connect()
    try:
        clv_io.load_transactions(con, DataConfig(source=str(path)))
        got = cohorts.observed_cohort_curves(
            con, pd.DataFrame({"customer_id": [1, 2, 3], "channel": [0, 1, 1]}), unit_days=1, end=dt.date(2024, 1, 3),
            periods=2, margin=1.0,
        )
    finally:
        con.close()
    assert got["channel"].tolist() == ["0"] * 3 + ["1"] * 3 + ["unknown"] * 3
    assert got["cumulative_value"].tolist() == [10.0, 10.0, 10.0, 20.0, 20.0, 24.0, 7.0, 7.0, 7.0]
    summary = pd.DataFrame({"customer_id": ["1", "2", "03"], "frequency_holdout": [1, 2, 4]})
    table = cohorts.holdout_by_channel(summary, pd.DataFrame({"customer_id": [1, 2, 3], "channel": [0, 1, 1]}), np.zeros(3))
    assert table["channel"].tolist() == ["0", "1", "unknown", "all"]
    assert table["actual_repeat_purchases"].tolist() == [1.0, 2.0, 4.0, 7.0]


def test_hostile_channel_names_and_ids_are_values_not_sql(tmp_path: Path, write_csv: Callable[..., Path]) -> None:
    hostile = "x'); DROP TABLE days; --"
    path = write_csv([("o'brien", "2024-01-01", 10)])
    con = clv_io.connect()
    try:
        clv_io.load_transactions(con, DataConfig(source=str(path)))
        got = cohorts.observed_cohort_curves(
            con, pd.DataFrame({"customer_id": ["o'brien"], "channel": [hostile]}), unit_days=7,
            end=dt.date(2024, 1, 1), periods=0, margin=1.0,
        )
        assert con.execute("SELECT count(*) FROM days").fetchone() == (1,)
    finally:
        con.close()
    assert got["channel"].tolist() == [hostile] and got["cumulative_value"].tolist() == [10.0]


def test_the_channels_view_is_gone_afterwards(loaded: duckdb.DuckDBPyConnection) -> None:
    before = set(loaded.execute("SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views()").fetchall())
    cohorts.observed_cohort_curves(loaded, CHANNELS, unit_days=7, end=END, periods=1, margin=1.0)
    after = set(loaded.execute("SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views()").fetchall())
    assert after == before


@pytest.mark.parametrize(
    ("channels", "options", "message"),
    [
        (pd.DataFrame({"customer_id": ["a1", "a1"], "channel": ["A", "B"]}), {}, "more than once"),
        (pd.DataFrame({"id": ["a1"], "channel": ["A"]}), {}, "missing column"),
        (CHANNELS, {"periods": -1}, "periods"),
        (CHANNELS, {"periods": 2.5}, "periods"),
        (CHANNELS, {"unit_days": 0}, "unit_days"),
        (CHANNELS, {"margin": float("nan")}, "margin"),
    ],
)
def test_bad_arguments_are_one_clear_error(
    loaded: duckdb.DuckDBPyConnection, channels: pd.DataFrame, options: dict, message: str
) -> None:
    arguments = {"unit_days": 7, "end": END, "periods": 2, "margin": 1.0, **options}
    with pytest.raises(ClvError, match=message):
        cohorts.observed_cohort_curves(loaded, channels, **arguments)


APPAREL = Path(__file__).resolve().parent / "data" / "apparel"


def _brute_force(log: pd.DataFrame, channel: pd.Series, *, unit_days: float, end: dt.date, periods: int) -> pd.DataFrame:
    """The curve table one customer and one period at a time (an independent reading of the definition)."""
    days = log[log["day"] <= pd.Timestamp(end)].groupby(["customer_id", "day"], as_index=False)["amount"].sum()
    rows = []
    for name in sorted(channel.unique()):
        members = channel[channel == name].index
        own = days[days["customer_id"].isin(members)]
        first = own.groupby("customer_id")["day"].min()
        for k in range(periods + 1):
            seen = first[first + pd.Timedelta(days=k * unit_days) <= pd.Timestamp(end)]
            part = own[own["customer_id"].isin(seen.index)]
            offset = (part["day"] - part["customer_id"].map(first)).dt.days
            inside = part[offset <= k * unit_days]
            n = len(seen)
            rows.append((name, k, n, inside["amount"].sum() / n if n else np.nan,
                         (len(inside) - n) / n if n else np.nan))
    return _frame(rows)


def test_observed_curves_on_the_apparel_log_match_a_brute_force_count() -> None:
    """600 customers, two channels: the SQL and the definition read one customer at a time agree."""
    con = clv_io.connect()
    try:
        clv_io.load_transactions(
            con, DataConfig(source=str(APPAREL / "transactions.csv"),
                            columns={"customer_id": "Id", "date": "Date", "amount": "Price"})
        )
        customers = pd.read_csv(APPAREL / "customers.csv")
        channels = pd.DataFrame({"customer_id": customers["Id"], "channel": customers["Channel"]})
        end = dt.date(2006, 12, 31)
        got = cohorts.observed_cohort_curves(con, channels, unit_days=7, end=end, periods=110, margin=1.0)
    finally:
        con.close()
    log = pd.read_csv(APPAREL / "transactions.csv", parse_dates=["Date"])
    log = log.rename(columns={"Id": "customer_id", "Date": "day", "Price": "amount"})
    channel = customers.set_index("Id")["Channel"].astype(str)
    want = _brute_force(log, channel, unit_days=7, end=end, periods=110)
    pd.testing.assert_frame_equal(got, want, rtol=1e-12)
    # Everyone was acquired on 2005-01-02, exactly 104 weeks before the end: observed to week 104, not 105.
    assert got.loc[got["period"] == 104, "customers_observed"].sum() == 600
    assert got.loc[got["period"] == 105, "customers_observed"].eq(0).all()


# --- the model's curve -------------------------------------------------------------------------

#: BG/NBD on CDNOW (REFERENCE.md: full precision, R BTYD) for channel "web"; "store" with twice the α.
WEB = {"r": 0.2425982, "alpha": 4.4136842, "a": 0.7929899, "b": 2.4261667}
PARAMS = {"web": WEB, "store": {**WEB, "alpha": 2 * WEB["alpha"]}}


def _equation_9(p: dict[str, float], t: float) -> float:
    """E[X(t)] of FHL 2005 eq. (9), written out here."""
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def test_expected_curve_by_hand() -> None:
    calls: list[tuple[str, list[float]]] = []

    def purchases(channel: str, k: np.ndarray) -> np.ndarray:
        calls.append((channel, k.tolist()))
        return expected_purchases_new(PARAMS[channel], k)

    values = pd.DataFrame({"channel": ["web", "store"], "first_order_value": [40.0, 55.0],
                           "expected_order_value": [35.0, 30.0]})
    got = cohorts.expected_cohort_curves(purchases, values, periods=3, margin=0.3)
    assert calls == [("store", [0.0, 1.0, 2.0, 3.0]), ("web", [0.0, 1.0, 2.0, 3.0])]
    rows = []
    for channel, first, order in (("store", 55.0, 30.0), ("web", 40.0, 35.0)):
        for k in range(4):
            x = _equation_9(PARAMS[channel], k) if k else 0.0
            rows.append((channel, k, 0.3 * (first + x * order), x))
    want = pd.DataFrame(rows, columns=["channel", "period", "cumulative_value", "cumulative_repeat_purchases"])
    pd.testing.assert_frame_equal(got, want.astype({"period": np.int64}), rtol=1e-10)
    # The published anchors: a new web customer's E[X(1)] = 0.0532 (Hardie's BG/NBD spreadsheet) and
    # E[X(52)] = 1.444004 (R BTYD walkthrough).
    assert got.loc[(got["channel"] == "web") & (got["period"] == 1), "cumulative_repeat_purchases"].item() == pytest.approx(0.0532, abs=5e-5)
    long = cohorts.expected_cohort_curves(purchases, values, periods=52, margin=1.0)
    assert long["cumulative_repeat_purchases"].iloc[-1] == pytest.approx(1.444004, abs=1e-6)  # as in tests/models/test_bgnbd.py
    assert long["cumulative_value"].iloc[-1] == pytest.approx(40.0 + 1.444004 * 35.0, abs=1e-4)


def test_expected_curve_without_amounts_has_no_value_but_purchases() -> None:
    values = pd.DataFrame({"channel": ["web"], "first_order_value": [None], "expected_order_value": [None]}, dtype=object)
    got = cohorts.expected_cohort_curves(lambda channel, k: 0.1 * k, values, periods=2, margin=1.0)
    assert got["cumulative_value"].isna().all() and got["cumulative_repeat_purchases"].tolist() == [0.0, 0.1, 0.2]


def test_expected_curve_refuses_a_callable_of_the_wrong_length() -> None:
    values = pd.DataFrame({"channel": ["web"], "first_order_value": [1.0], "expected_order_value": [1.0]})
    with pytest.raises(ClvError, match="returned"):
        cohorts.expected_cohort_curves(lambda channel, k: np.zeros(2), values, periods=3, margin=1.0)


# --- the holdout table -------------------------------------------------------------------------


def test_holdout_by_channel_by_hand() -> None:
    summary = pd.DataFrame({"customer_id": ["a1", "a2", "b1", "u1"], "frequency_holdout": [2, 0, 3, 1]})
    predicted = np.array([1.5, 0.5, 3.3, 2.0])
    got = cohorts.holdout_by_channel(summary, CHANNELS, predicted)
    want = pd.DataFrame({
        "channel": ["A", "B", "unknown", "all"],
        "customers": [2, 1, 1, 4],
        "actual_repeat_purchases": [2.0, 3.0, 1.0, 6.0],
        "predicted_repeat_purchases": [2.0, 3.3, 2.0, 7.3],
        "pct_error": [0.0, 100 * 0.3 / 3, 100.0, 100 * 1.3 / 6],
    })
    pd.testing.assert_frame_equal(got, want, rtol=1e-12)


def test_holdout_pct_error_is_nan_without_actual_purchases() -> None:
    summary = pd.DataFrame({"customer_id": ["a1"], "frequency_holdout": [0]})
    got = cohorts.holdout_by_channel(summary, CHANNELS, np.array([0.4]))
    assert got["channel"].tolist() == ["A", "all"] and got["pct_error"].isna().all()
    with pytest.raises(ClvError, match="predicted"):
        cohorts.holdout_by_channel(summary, CHANNELS, np.array([0.4, 1.0]))


def test_holdout_by_channel_on_the_apparel_summary(apparel: Callable[[dt.date], pd.DataFrame]) -> None:
    summary = apparel(dt.date(2006, 12, 31))
    customers = pd.read_csv(APPAREL / "customers.csv")
    channels = pd.DataFrame({"customer_id": customers["Id"], "channel": customers["Channel"]})
    got = cohorts.holdout_by_channel(summary, channels, np.ones(len(summary))).set_index("channel")
    assert got.index.tolist() == ["0", "1", "all"]
    assert got.loc["all", "customers"] == 600 == got.loc["0", "customers"] + got.loc["1", "customers"]
    assert got.loc["all", "actual_repeat_purchases"] == summary["frequency_holdout"].sum()
    for name in ("0", "1"):
        ids = customers.loc[customers["Channel"].astype(str) == name, "Id"].astype(str)
        mine = summary[summary["customer_id"].isin(ids)]
        assert got.loc[name, "actual_repeat_purchases"] == mine["frequency_holdout"].sum()
        assert got.loc[name, "predicted_repeat_purchases"] == len(mine)


# --- the figure --------------------------------------------------------------------------------


def test_figure_draws_one_observed_and_one_model_line_per_channel(loaded: duckdb.DuckDBPyConnection) -> None:
    observed = cohorts.observed_cohort_curves(loaded, CHANNELS, unit_days=7, end=END, periods=4, margin=MARGIN)
    values = pd.DataFrame({"channel": ["A", "B", "unknown"], "first_order_value": [22.5, 16.0, 50.0],
                           "expected_order_value": [10.0, 9.0, 0.0]})
    expected = cohorts.expected_cohort_curves(lambda channel, k: 0.5 * k, values, periods=4, margin=MARGIN)
    figure = plots.cohort_curves(observed, expected, unit="week", currency="USD", model="bgnbd")
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert sorted(lines) == sorted(f"{c}: {kind}" for c in ("A", "B", "unknown") for kind in ("observed", "bgnbd"))
    np.testing.assert_array_equal(lines["A: observed"].get_ydata(), [11.25, 16.75, 17.75, 22.5, 22.5])
    np.testing.assert_allclose(lines["B: bgnbd"].get_ydata(), 0.5 * (16.0 + 0.5 * np.arange(5) * 9.0))
    assert lines["A: observed"].get_color() == lines["A: bgnbd"].get_color() != lines["B: bgnbd"].get_color()
    assert lines["A: bgnbd"].get_linestyle() == "--"
    ax = figure.axes[0]
    assert ax.get_ylabel() == "mean cumulative value per acquired customer (USD)"
    assert ax.get_xlabel() == "weeks since acquisition"
    assert ax.yaxis.get_major_formatter()(1250.0) == "1,250" and ax.yaxis.get_major_formatter()(12.5) == "12.50"
