"""The challenger's reads of the log on Spark: the same feature and target SQL, per-customer rows out.

:class:`SparkReader` has the three methods of :class:`clvmodel.models.challenger.DuckDBReader`,
so :meth:`~clvmodel.models.challenger.Challenger.fit` and ``predict`` take it as
``data.transactions`` and never see a transaction: Spark runs
:func:`~clvmodel.models.challenger.features_sql` (the DuckDB text; with its ``targets_end`` for the
training rows) and the driver receives one row per customer (13 features, and the 2 targets for
training), and the first purchase days as counts per day.

As locally, the training reads go through a frame cut at the calibration end before any query
is built on it: no training query can see a holdout row. The day totals are DOUBLE sums (the
challenger's SQL, unlike the RFM summary's exact decimals), so a day of several purchases may
differ in its last bit between engines; the trees' bins absorb that (tests/spark/ compares the
forecasts to a tolerance).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from clvmodel.models import challenger as ch
from clvmodel.spark.summary import _sql_on, rfm_to_pandas
from clvmodel.sqltext import date_literal

if TYPE_CHECKING:  # pragma: no cover - type hints only; pyspark is optional
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SparkReader"]


class SparkReader:
    """The challenger's log on Spark (``customer_id, day, amount`` as :func:`clvmodel.spark.transactions` returns)."""

    def __init__(self, spark: "SparkSession", transactions_df: "DataFrame") -> None:
        self.spark, self.transactions = spark, transactions_df

    def first_days(self, calibration_end: dt.date) -> list[dt.date]:
        """Each customer's first purchase day up to ``calibration_end``, ascending (counted per day on Spark)."""
        end = date_literal(calibration_end)
        counts = _sql_on(self.spark, self.transactions, lambda view: (
            f"SELECT first, count(*) AS n FROM (SELECT min(day) AS first FROM {view} WHERE day <= {end} "
            "GROUP BY customer_id) GROUP BY first ORDER BY first")).collect()
        return [day for day, n in counts for _ in range(int(n))]

    def training_frame(self, *, inner_cut: dt.date, calibration_end: dt.date, time_unit: str) -> pd.DataFrame:
        """Features at ``inner_cut`` joined with targets in ``(inner_cut, calibration_end]``, on a
        frame that holds no row after ``calibration_end``."""
        calibration = self.transactions.where(f"day <= {date_literal(calibration_end)}")
        unit_days = ch._unit_days(time_unit)  # noqa: SLF001 - the challenger's own unit check
        # One query, as locally: features at the inner cut and the targets after it in one pass.
        out = self._frame(calibration, functools.partial(ch.features_sql, cut=inner_cut, unit_days=unit_days,
                                                         targets_end=calibration_end))
        return out[["customer_id", *ch.FEATURES, *ch.TARGETS]]

    def features(self, *, cut: dt.date, time_unit: str) -> pd.DataFrame:
        """:func:`clvmodel.models.challenger.features` as of ``cut``, computed on Spark."""
        return self._features(self.transactions, cut=cut, time_unit=time_unit)

    def _features(self, frame: "DataFrame", *, cut: dt.date, time_unit: str) -> pd.DataFrame:
        unit_days = ch._unit_days(time_unit)  # noqa: SLF001 - the challenger's own unit check
        out = self._frame(frame, functools.partial(ch.features_sql, cut=cut, unit_days=unit_days))
        return out[["customer_id", *ch.FEATURES]]

    def _frame(self, frame: "DataFrame", query: functools.partial) -> pd.DataFrame:
        """``query`` run on ``frame``, to pandas with the local engine's types (floats as float64)."""
        out = rfm_to_pandas(_sql_on(self.spark, frame.select("customer_id", "day", "amount"), query))
        for column in out.columns[1:]:
            if out[column].dtype == object:  # a column of NULLs only (no gap at all) arrives as objects
                out[column] = out[column].astype(np.float64)
        return out
