"""Training on Spark: the source of summaries behind ``clvmodel train --engine spark``.

:class:`SparkSummaries` is the Spark counterpart of :func:`clvmodel.train._from_transactions`
(the DuckDB source): it reads and checks the log (:func:`clvmodel.spark.load_transactions`),
builds the same-day totals with :func:`clvmodel.rfm.days_sql` and runs **the same SQL text** as
the local engine on them -- :func:`clvmodel.rfm.rfm_sql` (``per_day``, ``first_day``) for the
summary and the calibration/holdout split, :func:`clvmodel.rfm.period_totals_sql` for the
tracking plot's counts -- and hands :func:`clvmodel.train.train` a
:class:`~clvmodel.prepared.Prepared`. The fits, leaderboard, scores, model directory and MLflow
run that follow are the local engine's own code, so the model equals the DuckDB-trained one.

What reaches the driver (nothing per transaction):

* the RFM summary with its holdout columns, **one row per customer** of the calibration cohort
  (``customer_id`` and 7 numbers; 2,357 rows on CDNOW). The fits collapse it by ``(x, t_x, T)``
  themselves (:func:`clvmodel.models.base.collapse`), but the leaderboard (per-customer
  errors, rank correlation, top-20 % share with ties broken by customer order), the calibration
  table, the training scores and the segment boundaries are per customer, so the rows come one
  per customer;
* customers by first purchase day (one row per distinct day) and purchase days per period (one
  row per period) for the tracking plot, and a handful of counts;
* with the challenger in ``models``, its per-customer features (13 numbers a customer, at the
  inner cut and at the calibration end) and training targets (:mod:`clvmodel.spark.challenger`),
  fitted on the driver by the local engine's :func:`clvmodel.train.fit_challenger`;
* with a ``customers:`` table, each customer's first order (one number a customer seen, by
  :func:`clvmodel.acquired.first_orders_sql`) and the observed cohort curves' cells (one row per
  channel, periods observed and purchase period, by :func:`clvmodel.cohorts.observed_cohort_sql`
  with the channels sent to Spark as a temporary view), both the local engine's SQL text on the
  same-day totals. The table itself is read on the driver before the log, as locally
  (:func:`clvmodel.attributes.read_customers`), and attached to the summary there
  (:func:`clvmodel.attributes.attach_customers`); the covariate models then fit on the driver,
  collapsing the summary's rows by ``(x, t_x, T, z)`` themselves
  (:mod:`clvmodel.models.covariate_model`), as locally.

Not yet on Spark, each refused in one line by :func:`refuse_unsupported` before Spark starts:
``data.memory_limit`` and ``data.temp_directory`` (DuckDB's memory cap and spill folder: give
Spark's ``spark.driver.memory``/``spark.executor.memory`` and ``spark.local.dir`` instead), ``data.amount_format``
other than ``auto``/``plain`` (refused by :func:`clvmodel.spark.load_transactions`) and a
published summary or subscriptions config (nothing to summarise).

Without an ``observation_end``, rows dated after tomorrow or years after the bulk of the log are
refused as by the local reader (:func:`clvmodel.io.refuse_late_dates`, the same SQL on the cached
same-day totals).
"""

from __future__ import annotations

import datetime as dt
import functools
import time
import uuid
from typing import TYPE_CHECKING

import pandas as pd

from clvmodel import acquired, attributes, cohorts, rfm
from clvmodel.errors import ClvError
from clvmodel.io import refuse_late_dates
from clvmodel.models import registry
from clvmodel.prepared import Prepared
from clvmodel.spark.load import load_transactions, refuse_duckdb_settings
from clvmodel.spark.summary import _check_rfm_types, _sql_on, _unit_days, rfm_to_pandas
from clvmodel.sqltext import date_literal

if TYPE_CHECKING:  # pragma: no cover - type hints only; pyspark is optional
    from collections.abc import Callable

    from pyspark.sql import DataFrame, SparkSession

    from clvmodel.config import Config

__all__ = ["SparkSummaries", "cohort_runner", "first_orders", "refuse_unsupported", "summarise"]

_LOCAL = "run with --engine local"


def refuse_unsupported(config: "Config") -> None:
    """Refuse, in one line, what training on Spark cannot do yet (see the module docstring).

    Raises
    ------
    ClvError
        The first unsupported setting of ``config``, and what to do instead.
    """
    if config.kind != "transactions" or config.data is None:
        raise ClvError(f"--engine spark trains on a transaction log; this config has {config.kind} data: {_LOCAL}")
    refuse_duckdb_settings(config.data)


def summarise(
    spark: "SparkSession",
    days_df: "DataFrame",
    *,
    time_unit: str,
    calibration_end: dt.date | None = None,
    observation_end: dt.date | None = None,
) -> rfm.RfmResult:
    """:func:`clvmodel.rfm.summarise` on Spark: the same query on the same-day totals, the same accounting.

    Parameters
    ----------
    spark
        The session.
    days_df
        Per customer and day totals, the rows of :func:`clvmodel.rfm.days_sql` (``customer_id,
        day, amount DECIMAL(38, 9), n``).
    time_unit, calibration_end, observation_end
        As in :func:`clvmodel.rfm.summarise`.

    Returns
    -------
    RfmResult
        Equal to the local engine's on the same log: the cohort's rows (ordered by
        ``customer_id``), the customers and rows left out, customers by first purchase day.

    Raises
    ------
    ClvError
        An unknown time unit, or dates outside the data (the local engine's messages).
    """
    unit_days = _unit_days(time_unit)
    first, last = days_df.selectExpr("min(day)", "max(day)").first()
    if first is None:
        raise ClvError("no transactions to summarise; check the data source")
    cut, obs = rfm.check_dates(first, last, calibration_end, observation_end)
    query = functools.partial(rfm.rfm_sql, cut=cut, observation_end=obs, unit_days=unit_days,
                              holdout=calibration_end is not None, per_day=True, first_day=True)
    frame = _sql_on(spark, days_df, query)
    _check_rfm_types(frame)
    columns = rfm_to_pandas(frame)
    first_days = pd.Series(pd.to_datetime(columns.pop("first_day")).to_numpy()).astype("datetime64[us]")
    # Every customer seen by the observation end came: the cohort is those who first bought by the
    # cut; the others are counted, not summarised (as rfm.summarise does).
    cohort = (first_days <= pd.Timestamp(cut)).to_numpy()
    summary = columns if cohort.all() else columns[cohort].reset_index(drop=True)
    obs_sql = date_literal(obs)
    after_obs, late = days_df.selectExpr(
        f"coalesce(sum(CASE WHEN day > {obs_sql} THEN n END), 0)",
        f"count(DISTINCT CASE WHEN day > {obs_sql} THEN customer_id END)",
    ).first()
    late_customers = 0
    if late:  # customers whose every day is after the observation end
        late_customers = days_df.groupBy("customer_id").agg({"day": "min"}).where(
            f"`min(day)` > {obs_sql}").count()
    return rfm.RfmResult(
        summary=summary,
        time_unit=time_unit,
        calibration_end=calibration_end,
        observation_end=obs,
        customers_after_calibration=int((~cohort).sum()),
        transactions_after_observation_end=int(after_obs),
        customers_after_observation_end=int(late_customers),
        first_days=first_days.value_counts().sort_index(),
    )


def repeat_series(spark: "SparkSession", days_df: "DataFrame", result: rfm.RfmResult) -> pd.Series:
    """Repeat purchase days per period for the tracking plot, as training computes them locally
    (:func:`clvmodel.rfm.repeat_transactions_by_period` on the same-day totals)."""
    unit_days = rfm.UNIT_DAYS[result.time_unit]
    start, end = rfm.plot_start(result), result.observation_end
    query = functools.partial(rfm.period_totals_sql, start=start, end=end, unit_days=unit_days)
    totals = rfm_to_pandas(_sql_on(spark, days_df, query))
    return rfm.repeats_from_totals(totals, result.first_days, start=start, end=end, unit_days=unit_days)  # type: ignore[arg-type]


def cohort_runner(spark: "SparkSession", days_df: "DataFrame") -> cohorts.CohortRunner:
    """Spark's :data:`clvmodel.cohorts.CohortRunner`: the channels (``customer_id, channel``, text)
    become a temporary view beside the same-day totals' for the query, both dropped once
    ``spark.sql`` has analysed it (as :func:`clvmodel.spark.summary._sql_on`), and the cells come to
    the driver (a row per channel, periods observed and purchase period).

    Parameters
    ----------
    spark
        The session.
    days_df
        The same-day totals (:func:`clvmodel.rfm.days_sql` on the loaded log).

    Returns
    -------
    clvmodel.cohorts.CohortRunner
        ``run(mapping, make_sql) -> cells`` on Spark.
    """
    def run(mapping: pd.DataFrame, make_sql: "Callable[[str, str], str]") -> pd.DataFrame:
        view = f"clvmodel_{uuid.uuid4().hex}"
        # An explicit schema: ids stay text (as the log's) and an empty table still has its columns.
        spark.createDataFrame(mapping, schema="customer_id string, channel string").createOrReplaceTempView(view)
        try:
            frame = _sql_on(spark, days_df, lambda days: make_sql(days, view))
        finally:
            spark.catalog.dropTempView(view)
        return rfm_to_pandas(frame)

    return run


def first_orders(spark: "SparkSession", days_df: "DataFrame") -> pd.Series:
    """Each customer's first purchase day's amount by ``customer_id`` (text), as training reads it
    locally (:func:`clvmodel.acquired.first_orders_sql`, the same text, on the same-day totals).

    Parameters
    ----------
    spark
        The session.
    days_df
        The same-day totals (:func:`clvmodel.rfm.days_sql` on the loaded log).

    Returns
    -------
    pandas.Series
        DOUBLE first-day amounts indexed by the text ``customer_id``, one per customer of the log.
    """
    return acquired.first_orders_series(rfm_to_pandas(_sql_on(spark, days_df, acquired.first_orders_sql)))


class SparkSummaries:
    """The source of summaries on Spark: ``SparkSummaries(spark)(config, seconds) -> Prepared``.

    Pass it as :func:`clvmodel.train.train`'s ``source`` (``clvmodel train --engine spark`` does).
    The same-day totals are cached on the cluster for the run's three queries and released after.
    """

    def __init__(self, spark: "SparkSession") -> None:
        self.spark = spark

    def __call__(self, config: "Config", seconds: dict[str, float]) -> Prepared:
        """Read the log on Spark, summarise and split it; see the module docstring.

        Raises
        ------
        ClvError
            An unsupported setting (:func:`refuse_unsupported`), bad data or dates (the local
            engine's messages).
        """
        refuse_unsupported(config)
        clock = time.perf_counter()
        # The customer table first: a bad one is refused before the log is read (as locally).
        table = attributes.read_customers(config.customers) if config.customers is not None else None
        tx, load = load_transactions(self.spark, None, config.data)
        days_df = _sql_on(self.spark, tx, rfm.days_sql).persist()
        try:
            if config.observation_end is None:  # as the local reader: a far-future typo would end the log
                refuse_late_dates(lambda make_sql: tuple(_sql_on(self.spark, days_df, make_sql).collect()[0]),
                                  load.rows_read)
            result = summarise(self.spark, days_df, time_unit=config.time_unit,
                               calibration_end=config.calibration_end, observation_end=config.observation_end)
            result.account(load.customers)  # nothing lost: summarised + left out = read
            series = repeat_series(self.spark, days_df, result)
            customers = firsts = observed = None
            if table is not None:
                from clvmodel.train import observed_curves  # the local engine's periods and table, given Spark's cells

                customers = attributes.attach_customers(result.summary["customer_id"], table, config.customers)  # type: ignore[arg-type]
                firsts = first_orders(self.spark, days_df)
                observed = observed_curves(cohort_runner(self.spark, days_df), table, config, result)
        finally:
            days_df.unpersist()
        prepared = Prepared(load, result, series, customers=customers, first_orders=firsts, observed_curves=observed)
        if any(registry.family(m).role == "challenger" for m in config.models):
            from clvmodel.spark.challenger import SparkReader
            from clvmodel.train import fit_challenger  # the local engine's fit, given Spark's reads

            tx = tx.persist()  # its four queries read the log: parsed once
            try:
                prepared.challenger, prepared.challenger_holdout = fit_challenger(
                    SparkReader(self.spark, tx), config, float(result.summary["duration_holdout"].iloc[0]))
            finally:
                tx.unpersist()
        seconds["read_and_rfm"] = time.perf_counter() - clock
        return prepared
