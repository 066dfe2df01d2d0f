"""Cohort curves per acquisition channel: what the log shows beside what the model expects.

Three tables, all pure functions of what they are given (no file, no run, no model class):

* :func:`observed_cohort_curves`: from the loaded log, per channel and per period ``k`` since each
  customer's acquisition, the mean cumulative margin value and the mean cumulative repeat
  purchases per **acquired** customer, counting only the customers observed for the whole of
  those ``k`` periods (right-censoring, see the function);
* :func:`expected_cohort_curves`: the model's curve for a new customer of each channel,
  ``margin × (first order value + E[X(k)] × E[M])``;
* :func:`holdout_by_channel`: per channel, actual vs predicted repeat purchases over the holdout
  and the % error, with an ``all`` row.

Periods are the model's time unit: ``k`` periods after acquisition is ``k × unit_days`` days after
the first purchase day. Period 0 is the first purchase day alone (its purchases merged by the
same-day rule of :mod:`clvmodel.rfm`: the first order), and the value at ``k`` counts every
purchase day up to ``k × unit_days`` days after it, inclusive, as ``E[X(k)]`` counts the repeat
purchases in ``(0, k]``: so the two curves measure the same thing at every ``k``.

Customers of the log without a row in ``channels`` are in channel :data:`UNKNOWN`; rows of
``channels`` whose customer never bought (up to the end) are not acquired customers and are left
out. Channel names are text (a numeric channel code ``0`` is the channel ``"0"``). Channels come
out in text order, :data:`UNKNOWN` last, then (holdout table) ``all``.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable, Iterable

import duckdb
import numpy as np
import pandas as pd

from clvmodel.errors import ClvError
from clvmodel.sqltext import date_literal, identifier, literal, number

__all__ = [
    "UNKNOWN",
    "ALL",
    "CURVE_COLUMNS",
    "HOLDOUT_COLUMNS",
    "observed_cohort_curves",
    "observed_cohort_curves_with",
    "observed_cohort_sql",
    "CohortRunner",
    "duckdb_runner",
    "expected_cohort_curves",
    "holdout_by_channel",
]

#: The channel of a customer of the log without a row in the customers table.
UNKNOWN = "unknown"
#: The holdout table's row over every channel.
ALL = "all"
#: The columns of both curve tables (the expected one has no ``customers_observed``).
CURVE_COLUMNS = ["channel", "period", "customers_observed", "cumulative_value", "cumulative_repeat_purchases"]
HOLDOUT_COLUMNS = ["channel", "customers", "actual_repeat_purchases", "predicted_repeat_purchases", "pct_error"]


#: ``run(mapping, make_sql) -> cells``: an engine's way to run :func:`observed_cohort_sql`. It
#: makes ``mapping`` (``customer_id, channel``, text) a relation, calls ``make_sql(days,
#: channels)`` with the names of its per-customer-day relation and of that one, written as the
#: engine reads them, runs the text and returns the rows as pandas (:func:`duckdb_runner`;
#: Spark's in :mod:`clvmodel.spark.training`).
CohortRunner = Callable[[pd.DataFrame, Callable[[str, str], str]], pd.DataFrame]


def _channel_map(channels: pd.DataFrame) -> pd.DataFrame:
    """``channels`` as ``customer_id, channel`` text (a missing channel is :data:`UNKNOWN`).

    Raises
    ------
    ClvError
        A missing column, or a customer id given twice (which channel would be a guess).
    """
    missing = [c for c in ("customer_id", "channel") if c not in channels.columns]
    if missing:
        raise ClvError(f"channels: missing column(s) {', '.join(missing)}; expected customer_id and channel")
    ids = channels["customer_id"].astype(str)
    repeated = ids[ids.duplicated()]
    if len(repeated):
        raise ClvError(
            f"channels: {repeated.nunique():,} customer id(s) given more than once (e.g. {repeated.iloc[0]!r}); "
            "one channel per customer"
        )
    channel = channels["channel"].where(channels["channel"].notna(), UNKNOWN).astype(str)
    return pd.DataFrame({"customer_id": ids.to_numpy(dtype=object), "channel": channel.to_numpy(dtype=object)})


def _order(names: Iterable[object]) -> list[str]:
    """Channel names in text order, :data:`UNKNOWN` last."""
    unique = sorted({str(n) for n in names})
    return [n for n in unique if n != UNKNOWN] + ([UNKNOWN] if UNKNOWN in unique else [])


def _check_number(value: float, what: str, *, positive: bool = False) -> float:
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0):
        raise ClvError(f"{what} must be a finite{' positive' if positive else ''} number, got {value!r}")
    return value


def _check_periods(periods: int) -> int:
    if isinstance(periods, bool) or int(periods) != periods or periods < 0:
        raise ClvError(f"periods must be a whole number 0 or more, got {periods!r}")
    return int(periods)


def observed_cohort_curves(
    con: duckdb.DuckDBPyConnection,
    channels: pd.DataFrame,
    *,
    unit_days: float,
    end: dt.date,
    periods: int,
    margin: float,
    days: str = "days",
) -> pd.DataFrame:
    """Mean cumulative value and repeat purchases per acquired customer, by periods since acquisition.

    Each customer is acquired on their first purchase day (up to ``end``); the purchase days up
    to ``end`` count. For channel ``c`` and period ``k = 0..periods``:

    * ``customers_observed``: the channel's customers acquired at least ``k`` periods before
      ``end`` (``first day + k × unit_days ≤ end``). **Right-censoring**: a customer acquired
      later has not had ``k`` periods yet, and counting them (with what they spent so far) would
      bend the curve down at long ages; so each point is the mean over the customers observed
      for all of its ``k`` periods, and the set shrinks as ``k`` grows (the customers behind
      two points differ);
    * ``cumulative_value``: ``margin ×`` the mean, over those customers, of their purchase days'
      amounts up to ``k × unit_days`` days after the first day (the first order included). The
      mean is per acquired customer: one who never came back counts with their first order;
    * ``cumulative_repeat_purchases``: the mean number of their purchase days after the first
      one, up to the same day (the observed counterpart of ``E[X(k)]``).

    A period that no customer of the channel has reached has ``customers_observed`` 0 and NaN
    values (never a 0 that would read as "no value").

    Parameters
    ----------
    con
        The connection holding the loaded log (:func:`clvmodel.io.load_transactions`).
    channels
        ``customer_id`` (matched as text) and ``channel``, one row per customer; see the module
        docstring for customers missing from it.
    unit_days
        Days per period (:data:`clvmodel.rfm.UNIT_DAYS`).
    end
        The last day observed (inclusive), usually the observation end.
    periods
        The last period ``k``.
    margin
        The value of a unit of amount (``clv.margin``).
    days
        The per-customer-day table (``customer_id, day, amount``, one row per customer and day:
        the same-day rule applied), as :func:`clvmodel.rfm.create_days` builds it in ``days``.

    Returns
    -------
    pandas.DataFrame
        :data:`CURVE_COLUMNS`, ``periods + 1`` rows per channel.

    Raises
    ------
    ClvError
        A bad ``channels`` frame (missing column, repeated id), ``periods`` below 0 or not whole,
        ``unit_days`` not positive, ``margin`` not finite.
    """
    return observed_cohort_curves_with(duckdb_runner(con, days), channels, unit_days=unit_days, end=end,
                                       periods=periods, margin=margin)


def duckdb_runner(con: duckdb.DuckDBPyConnection, days: str = "days") -> CohortRunner:
    """DuckDB's :data:`CohortRunner`: ``mapping`` registered as a uuid-named view for the query
    (unregistered after), ``days`` the connection's per-customer-day table.

    Parameters
    ----------
    con
        The connection holding ``days``.
    days
        The per-customer-day table's name (an internal name; identifier-quoted here).

    Returns
    -------
    CohortRunner
        ``run(mapping, make_sql) -> cells`` on ``con``.
    """
    def run(mapping: pd.DataFrame, make_sql: Callable[[str, str], str]) -> pd.DataFrame:
        view = f"cohort_channels_{uuid.uuid4().hex}"
        con.register(view, mapping)
        try:
            return con.execute(make_sql(identifier(days), identifier(view))).df()
        finally:
            con.unregister(view)

    return run


def observed_cohort_curves_with(
    run: CohortRunner,
    channels: pd.DataFrame,
    *,
    unit_days: float,
    end: dt.date,
    periods: int,
    margin: float,
) -> pd.DataFrame:
    """:func:`observed_cohort_curves` on any engine that runs :func:`observed_cohort_sql`.

    The checks, the query text and the table built from its rows are the same for every engine
    (DuckDB: :func:`observed_cohort_curves`; Spark: :class:`clvmodel.spark.training.SparkSummaries`),
    so the curves are too. ``run`` is a :data:`CohortRunner`; the other parameters and the result
    are :func:`observed_cohort_curves`' (its Raises too).
    """
    periods = _check_periods(periods)
    unit_days = _check_number(unit_days, "unit_days", positive=True)
    margin = _check_number(margin, "margin")
    mapping = _channel_map(channels)
    cells = run(mapping, lambda days, view: observed_cohort_sql(days, view, unit_days=unit_days, end=end,
                                                                 periods=periods))
    return _curves(cells, periods, margin)


def observed_cohort_sql(days: str, channels: str, *, unit_days: float, end: dt.date, periods: int) -> str:
    """The query behind the observed curves (DuckDB and Spark SQL alike): per channel, the
    customers by periods observed and their purchase days' sums by period since acquisition.

    Parameters
    ----------
    days
        The per-customer-day relation (``customer_id, day, amount``), as the engine names it (an
        internal table or view, never a user's text).
    channels
        The ``customer_id, channel`` relation (text columns), named likewise.
    unit_days, end, periods
        As in :func:`observed_cohort_curves` (checked there).

    Returns
    -------
    str
        Rows ``channel, observed, period, customers, amount, repeats``: with ``period`` NULL, the
        ``customers`` observed for ``observed`` periods (capped at ``periods``); else the summed
        ``amount`` (DOUBLE of the exact decimal sum) and ``repeats`` of their purchase days in
        ``period``, for :func:`_curves`. Day differences are ``CAST(day - day AS INT)``, the
        form :mod:`clvmodel.rfm` uses on both engines; the unit a DOUBLE (Spark reads ``7.0`` as
        DECIMAL).
    """
    last = date_literal(end)
    unit = f"CAST({number(float(unit_days))} AS DOUBLE)"
    top = number(int(periods))
    # customer: channel, first day and the periods observed before `end` (capped at `periods`:
    # a customer observed longer counts at every k alike). purchase: each purchase day's period,
    # the least k whose window (k × unit_days days after the first day) holds it. UNKNOWN holds
    # no quote or backslash, so DuckDB's literal is Spark's too.
    return f"""
        WITH d AS (SELECT customer_id, day, amount FROM {days} WHERE day <= {last}),
        firsts AS (SELECT customer_id, min(day) AS first_day FROM d GROUP BY customer_id),
        customers AS (
            SELECT f.customer_id, f.first_day, coalesce(c.channel, {literal(UNKNOWN)}) AS channel,
                   least(CAST(floor(CAST({last} - f.first_day AS INT) / {unit}) AS BIGINT), {top}) AS observed
            FROM firsts f LEFT JOIN {channels} c ON c.customer_id = f.customer_id
        ),
        purchases AS (
            SELECT c.channel, c.observed, c.first_day, d.day, d.amount,
                   CAST(ceil(CAST(d.day - c.first_day AS INT) / {unit}) AS BIGINT) AS period
            FROM d JOIN customers c ON c.customer_id = d.customer_id
        )
        SELECT channel, observed, NULL AS period, count(*) AS customers, NULL AS amount, NULL AS repeats
        FROM customers GROUP BY channel, observed
        UNION ALL
        SELECT channel, observed, period, NULL AS customers, CAST(sum(amount) AS DOUBLE) AS amount,
               count(CASE WHEN day > first_day THEN 1 END) AS repeats
        FROM purchases WHERE period <= {top} GROUP BY channel, observed, period
    """


def _curves(cells: pd.DataFrame, periods: int, margin: float) -> pd.DataFrame:
    """The curve table from the per (channel, periods observed, purchase period) sums of the query.

    With ``n[K]`` customers observed for ``K`` periods and ``S[K, q]`` the amounts of their
    purchase days in period ``q``: customers at ``k`` = Σ_{K≥k} n[K], total value at ``k`` =
    Σ_{K≥k} Σ_{q≤k} S[K, q]: a reversed cumulative sum over ``K`` of a cumulative sum over ``q``.
    """
    size = periods + 1
    frames = []
    counts = cells[cells["period"].isna()]
    sums = cells[cells["period"].notna()]
    for channel in _order(counts["channel"]):
        n = np.zeros(size)
        own = counts[counts["channel"] == channel]
        np.add.at(n, own["observed"].to_numpy(dtype=int), own["customers"].to_numpy(dtype=float))
        grids = {}
        own = sums[sums["channel"] == channel]
        rows, cols = own["observed"].to_numpy(dtype=int), own["period"].to_numpy(dtype=int)
        for name in ("amount", "repeats"):
            grid = np.zeros((size, size))
            np.add.at(grid, (rows, cols), own[name].to_numpy(dtype=float))
            # Σ_{K≥k} of the running sum over q, read at q = k.
            grids[name] = np.diagonal(np.cumsum(np.cumsum(grid, axis=1)[::-1], axis=0)[::-1]).copy()
        observed = np.cumsum(n[::-1])[::-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(observed > 0, margin * grids["amount"] / observed, np.nan)
            repeats = np.where(observed > 0, grids["repeats"] / observed, np.nan)
        frames.append(pd.DataFrame({
            "channel": channel,
            "period": np.arange(size),
            "customers_observed": observed.astype(np.int64),
            "cumulative_value": value,
            "cumulative_repeat_purchases": repeats,
        }))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(CURVE_COLUMNS, (object, np.int64, np.int64, float, float))})
    return pd.concat(frames, ignore_index=True)[CURVE_COLUMNS]


def expected_cohort_curves(
    new_customer_purchases: Callable[[str, np.ndarray], np.ndarray],
    channel_values: pd.DataFrame,
    periods: int,
    margin: float,
) -> pd.DataFrame:
    """The model's cumulative value of a new customer per channel, ``k = 0..periods``.

    ``cumulative_value = margin × (first_order_value + E[X(k)] × expected_order_value)`` and
    ``cumulative_repeat_purchases = E[X(k)]``, undiscounted (as the observed curve is), the
    first order counted at period 0.

    Parameters
    ----------
    new_customer_purchases
        ``(channel, k) -> E[X(k)]``: the expected repeat purchases in ``(0, k]`` of a customer of
        that channel just acquired, for an array of periods ``k`` (floats ``0.0, 1.0, ...``);
        :func:`clvmodel.acquisition.new_customer_purchases` for a trained model.
    channel_values
        ``channel``, ``first_order_value`` (mean amount of the first purchase day) and
        ``expected_order_value`` (E[M] of a repeat purchase), one row per channel; ``None`` or
        NaN (no amounts) gives a NaN value curve, the purchase curve stays.
    periods
        The last period ``k``.
    margin
        The value of a unit of amount.

    Returns
    -------
    pandas.DataFrame
        ``channel, period, cumulative_value, cumulative_repeat_purchases``, ``periods + 1`` rows
        per channel, channels in the order of :func:`observed_cohort_curves`.

    Raises
    ------
    ClvError
        A missing column, a channel given twice, bad ``periods`` or ``margin``, or a callable
        returning the wrong number of values.
    """
    periods = _check_periods(periods)
    margin = _check_number(margin, "margin")
    missing = [c for c in ("channel", "first_order_value", "expected_order_value") if c not in channel_values.columns]
    if missing:
        raise ClvError(f"channel_values: missing column(s) {', '.join(missing)}")
    names = channel_values["channel"].astype(str)
    if names.duplicated().any():
        raise ClvError(f"channel_values: channel {names[names.duplicated()].iloc[0]!r} given more than once")
    rows = {name: row for name, row in zip(names, channel_values.itertuples(index=False))}
    k = np.arange(periods + 1, dtype=float)
    frames = []
    for channel in _order(names):
        row = rows[channel]
        purchases = np.asarray(new_customer_purchases(channel, k.copy()), dtype=float)
        if purchases.shape != k.shape:
            raise ClvError(
                f"new_customer_purchases({channel!r}, ...) returned {purchases.shape} values for {len(k)} periods"
            )
        # None (a model trained without amounts) is an unknown value: NaN, never 0.
        first, order = (np.nan if v is None else float(v) for v in (row.first_order_value, row.expected_order_value))
        frames.append(pd.DataFrame({
            "channel": channel,
            "period": np.arange(periods + 1),
            "cumulative_value": margin * (first + purchases * order),
            "cumulative_repeat_purchases": purchases,
        }))
    columns = ["channel", "period", "cumulative_value", "cumulative_repeat_purchases"]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(columns, (object, np.int64, float, float))})
    return pd.concat(frames, ignore_index=True)[columns]


def holdout_by_channel(summary: pd.DataFrame, channels: pd.DataFrame, predicted: np.ndarray) -> pd.DataFrame:
    """Actual vs predicted repeat purchases over the holdout, per channel and over ``all``.

    ``actual_repeat_purchases`` sums ``frequency_holdout``, ``predicted_repeat_purchases`` sums
    ``predicted`` (each customer's forecast for the holdout, aligned with ``summary``'s rows),
    ``pct_error = 100 × (predicted − actual) / actual`` (NaN when actual is 0), as on the
    leaderboard (:func:`clvmodel.evaluate.metrics`). A summary row stands for one customer (a
    weighted published summary has no channels).

    Raises
    ------
    ClvError
        A summary without ``customer_id``/``frequency_holdout``, ``predicted`` of another length,
        or a bad ``channels`` frame.
    """
    missing = [c for c in ("customer_id", "frequency_holdout") if c not in summary.columns]
    if missing:
        raise ClvError(f"summary: missing column(s) {', '.join(missing)}; the holdout table needs a split summary")
    predicted = np.asarray(predicted, dtype=float)
    if predicted.shape != (len(summary),):
        raise ClvError(f"predicted has {predicted.shape} values for {len(summary):,} summary rows")
    mapping = _channel_map(channels).set_index("customer_id")["channel"]
    channel = summary["customer_id"].astype(str).map(mapping).fillna(UNKNOWN).to_numpy(dtype=object)
    frame = pd.DataFrame({
        "channel": channel,
        "actual": summary["frequency_holdout"].to_numpy(dtype=float),
        "predicted": predicted,
    })
    rows = []
    for name in [*_order(channel), ALL]:
        part = frame if name == ALL else frame[frame["channel"] == name]
        actual, forecast = float(part["actual"].sum()), float(part["predicted"].sum())
        rows.append({
            "channel": name,
            "customers": len(part),
            "actual_repeat_purchases": actual,
            "predicted_repeat_purchases": forecast,
            "pct_error": 100.0 * (forecast - actual) / actual if actual else np.nan,
        })
    return pd.DataFrame(rows, columns=HOLDOUT_COLUMNS)
