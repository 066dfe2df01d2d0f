"""The RFM summary on Spark: the shared SQL text of :func:`clvmodel.rfm.rfm_sql`, its accounting, and collection to pandas."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd

from clvmodel.errors import ClvError
from clvmodel.spark.load import _TRANSACTION_COLUMNS
from clvmodel.spark.runtime import _quiet_pandas3
from clvmodel.sqltext import date_literal

if TYPE_CHECKING:  # pragma: no cover - type hints only; pyspark is optional
    from pyspark.sql import DataFrame, SparkSession

# The RFM contract's Spark types; rfm() refuses a query that yields anything else (see _check_rfm_types).
_RFM_TYPES = {
    "customer_id": "string",
    "frequency": "bigint",
    "recency": "double",
    "T": "double",
    "monetary_value": "double",
    "frequency_holdout": "bigint",
    "monetary_value_holdout": "double",
    "duration_holdout": "double",
}


def _unit_days(time_unit: str) -> int:
    from clvmodel.rfm import UNIT_DAYS

    if time_unit not in UNIT_DAYS:
        raise ClvError(f"unknown time unit {time_unit!r}; use one of: {', '.join(UNIT_DAYS)}")
    return UNIT_DAYS[time_unit]


def _resolve_dates(
    transactions_df: "DataFrame", calibration_end: dt.date | None, observation_end: dt.date | None
) -> tuple[dt.date, dt.date]:
    """``(cut, observation_end)`` after :func:`clvmodel.rfm.check_dates`, the local engine's checks."""
    from clvmodel.rfm import check_dates

    first, last = transactions_df.selectExpr("min(day)", "max(day)").first()
    if first is None:
        raise ClvError("no transactions to summarise; check the data source")
    return check_dates(first, last, calibration_end, observation_end)


def _sql_on(spark: "SparkSession", frame: "DataFrame", make_sql: Callable[[str], str]) -> "DataFrame":
    """``spark.sql(make_sql(view))`` with ``frame`` registered as a uniquely named temporary view.

    ``spark.sql`` analyses its query at once, binding the view's plan into the result, so the view
    is dropped straight away: nothing is left in the session's catalog, and concurrent calls on
    one session never see each other's data.
    """
    view = f"clvmodel_{uuid.uuid4().hex}"
    frame.createOrReplaceTempView(view)
    try:
        return spark.sql(make_sql(view))
    finally:
        spark.catalog.dropTempView(view)


def _accounting_sql(table: str, cut: dt.date, observation_end: dt.date) -> str:
    """The two counts :func:`clvmodel.rfm.summarise` reports (its query, mirrored: it is inline there)."""
    return f"""SELECT
          (SELECT count(*) FROM (SELECT customer_id FROM {table} WHERE day <= {date_literal(observation_end)}
                                 GROUP BY customer_id HAVING min(day) > {date_literal(cut)})) AS after_cal,
          (SELECT count(*) FROM {table} WHERE day > {date_literal(observation_end)}) AS after_obs"""


def _check_rfm_types(frame: "DataFrame") -> None:
    """The RFM contract's types. Spark reads a literal such as ``7.0`` as DECIMAL and rounds
    DECIMAL division to 6 places, which would silently differ from DuckDB's DOUBLE results; a
    query that yields anything but the contract's types is a clvmodel bug, so it stops here."""
    wrong = {name: kind for name, kind in frame.dtypes if _RFM_TYPES.get(name, kind) != kind}
    if wrong:
        found = ", ".join(f"{name} {kind}" for name, kind in wrong.items())
        raise RuntimeError(
            f"clvmodel bug: rfm_sql gives Spark column types {found}, the contract needs "
            f"{', '.join(f'{n} {_RFM_TYPES[n]}' for n in wrong)} (write numeric literals as CAST(7 AS DOUBLE))"
        )


def rfm(
    spark: "SparkSession",
    transactions_df: "DataFrame",
    *,
    time_unit: str,
    calibration_end: dt.date | None = None,
    observation_end: dt.date | None = None,
) -> "DataFrame":
    """The RFM summary on Spark: :func:`clvmodel.rfm.rfm_sql`, the same SQL text as DuckDB runs.

    Parameters
    ----------
    spark
        The session.
    transactions_df
        ``customer_id, day (DATE), amount`` as :func:`transactions` returns.
    time_unit
        ``day`` or ``week`` (days / 7, fractional).
    calibration_end, observation_end
        As in :func:`clvmodel.rfm.summarise`: with a calibration end the holdout columns are added;
        the observation end defaults to the last transaction day.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer_id, frequency, recency, T, monetary_value`` (+ ``frequency_holdout,
        monetary_value_holdout, duration_holdout``), one row per customer, ordered by
        ``customer_id``. Lazy, except for one pass that finds the data's first and last day.

    Raises
    ------
    ClvError
        An unknown time unit, or dates outside the data (the messages of ``summarise``).
    """
    from clvmodel.rfm import rfm_sql

    unit_days = _unit_days(time_unit)
    cut, obs = _resolve_dates(transactions_df, calibration_end, observation_end)
    query = functools.partial(
        rfm_sql, cut=cut, observation_end=obs, unit_days=unit_days, holdout=calibration_end is not None
    )
    frame = _sql_on(spark, transactions_df.select(*_TRANSACTION_COLUMNS), query)
    _check_rfm_types(frame)
    return frame


def rfm_counts(
    spark: "SparkSession",
    transactions_df: "DataFrame",
    *,
    calibration_end: dt.date | None = None,
    observation_end: dt.date | None = None,
) -> dict[str, int]:
    """What :func:`rfm` leaves out, counted (never dropped silently), as :class:`~clvmodel.rfm.RfmResult` reports.

    Returns
    -------
    dict
        ``customers_after_calibration``: customers whose first purchase (up to the observation
        end) comes after the cut; ``transactions_after_observation_end``: rows after it.
    """
    cut, obs = _resolve_dates(transactions_df, calibration_end, observation_end)
    query = functools.partial(_accounting_sql, cut=cut, observation_end=obs)
    after_cal, after_obs = _sql_on(spark, transactions_df.select(*_TRANSACTION_COLUMNS), query).first()
    return {"customers_after_calibration": int(after_cal), "transactions_after_observation_end": int(after_obs)}


def rfm_to_pandas(rfm_df: "DataFrame") -> pd.DataFrame:
    """Collect an RFM (or score) frame to pandas with the local engine's dtypes.

    ``customer_id`` is ``object`` holding ``str`` (as :func:`clvmodel.rfm.summarise` returns),
    counts ``int64``, the rest ``float64``; the row order is the frame's (customer id for
    :func:`rfm`). Use it for results that fit in the driver's memory.
    """
    with _quiet_pandas3():
        frame = rfm_df.toPandas()
    for column, kind in rfm_df.dtypes:
        if kind == "string":
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame
