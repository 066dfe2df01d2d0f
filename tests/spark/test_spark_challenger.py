"""The challenger's reads on Spark (:class:`clvmodel.spark.challenger.SparkReader`) equal DuckDB's
(:class:`clvmodel.models.challenger.DuckDBReader`, the oracle) on a small hand-made log, and the
training frame never sees a row after the calibration end. The shared ``local[2]`` session."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from clvmodel.models.challenger import DuckDBReader, features, join_training, targets  # noqa: E402 - after the skip
from clvmodel.spark.challenger import SparkReader  # noqa: E402

D = dt.date
CUT, END = D(2024, 3, 31), D(2024, 6, 30)
#: Repeat buyers, a one-time buyer (no gap: NaN features), two rows on one day, one after the cut.
LOG = [("a", D(2024, 1, 2), 10.0), ("a", D(2024, 1, 20), 5.5), ("a", D(2024, 1, 20), 4.5), ("a", D(2024, 3, 30), 7.0),
       ("a", D(2024, 5, 1), 9.0), ("b", D(2024, 2, 1), 20.0), ("c", D(2024, 1, 5), 1.0), ("c", D(2024, 2, 5), 2.0),
       ("c", D(2024, 3, 1), 3.5), ("c", D(2024, 6, 1), 4.0), ("d", D(2024, 4, 10), 8.0)]


def _readers(spark: Any, rows: list[tuple]) -> tuple[DuckDBReader, SparkReader]:
    frame = pd.DataFrame(rows, columns=["customer_id", "day", "amount"])
    con = duckdb.connect()
    con.execute("CREATE TABLE transactions AS SELECT customer_id, CAST(day AS DATE) AS day, amount FROM frame")
    tx = spark.createDataFrame(frame).selectExpr("customer_id", "CAST(day AS DATE) AS day", "CAST(amount AS DOUBLE) AS amount")
    return DuckDBReader(con), SparkReader(spark, tx)


def test_features_targets_and_first_days_equal_duckdb(spark: Any) -> None:
    local, theirs = _readers(spark, LOG)
    assert theirs.first_days(CUT) == local.first_days(CUT) == [D(2024, 1, 2), D(2024, 1, 5), D(2024, 2, 1)]
    for unit in ("day", "week"):
        expected = local.features(cut=CUT, time_unit=unit)
        pd.testing.assert_frame_equal(theirs.features(cut=CUT, time_unit=unit), expected, rtol=1e-12)
        assert expected["mean_gap"].isna().sum() == 1  # b bought once: no gap
    inner = D(2024, 1, 31)
    pd.testing.assert_frame_equal(theirs.training_frame(inner_cut=inner, calibration_end=CUT, time_unit="week"),
                                  local.training_frame(inner_cut=inner, calibration_end=CUT, time_unit="week"),
                                  rtol=1e-12)


def test_the_training_frame_sees_no_row_after_the_calibration_end(spark: Any) -> None:
    """Rows after the cut change nothing. Two layers hold it (the frame cut before any query, and
    the target SQL's own ``day <= end``): removing one alone keeps this test green."""
    inner = D(2024, 1, 31)
    _, before = _readers(spark, LOG)
    _, after = _readers(spark, LOG + [("a", D(2024, 4, 1), 1000.0), ("b", D(2024, 4, 2), 1000.0)])
    frame = after.training_frame(inner_cut=inner, calibration_end=CUT, time_unit="day")
    pd.testing.assert_frame_equal(frame, before.training_frame(inner_cut=inner, calibration_end=CUT, time_unit="day"))
    # a's purchase days in (2024-01-31, 2024-03-31]: 2024-03-30 alone, 7.0 (2024-05-01 is after the cut)
    assert frame.set_index("customer_id").loc["a", ["purchases", "spend"]].tolist() == [1, 7.0]


def test_the_one_query_training_frame_equals_the_two_query_one(spark: Any) -> None:
    """Spark's one training query (features_sql with targets_end) against the oracle of before: the
    features at the inner cut joined with the targets, two DuckDB queries."""
    local, theirs = _readers(spark, LOG)
    for inner in (D(2024, 1, 31), D(2024, 3, 1)):
        old = join_training(features(local.con, cut=inner, time_unit="week"), targets(local.con, start=inner, end=CUT))
        got = theirs.training_frame(inner_cut=inner, calibration_end=CUT, time_unit="week")
        pd.testing.assert_frame_equal(got, old, rtol=1e-12)
