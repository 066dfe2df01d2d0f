"""Transactions -> one RFM row per customer, with an optional calibration/holdout split.

The summary follows the contract of Fader, Hardie & Lee (2005) and of the CDNOW summary file:

* transactions on the same day are **one purchase** (their amounts are summed);
* ``frequency`` = number of distinct purchase days in the calibration period − 1 (repeat purchases);
* ``recency`` = time from the first to the last purchase day, in the time unit;
* ``T`` = time from the first purchase day to the calibration end (or observation end);
* ``monetary_value`` = mean total of the *repeat* purchase days (0 when ``frequency`` is 0), the
  input of the Gamma-Gamma model (Fader & Hardie 2013); amounts are summed as exact decimals
  (9 places), so the result does not depend on row order or thread count;
* with a split: ``frequency_holdout`` = purchase days in (calibration end, observation end],
  ``monetary_value_holdout`` = their mean total (0 when none), ``duration_holdout`` = the length of
  the holdout period;
* time units: ``day``; ``week`` = days / 7 (fractional, as in the paper's summary file);
  ``month`` = days / 30.4375 (a month is exactly 365.25 / 12 days, a twelfth of the mean Julian
  year) and ``year`` = days / 365.25 (:data:`clvmodel.units.DAYS`): fixed lengths, never
  calendar months and never a hidden "30 days".

Customers whose first purchase falls after the calibration end are not in the calibration cohort;
they are counted in :attr:`RfmResult.customers_after_calibration`, never dropped silently.
Transactions after the observation end are ignored and counted.

The SQL is written for both DuckDB and Spark SQL (date differences as
``CAST(a - b AS INT)``; ``min_by``; ``CASE`` instead of ``FILTER``), see :func:`rfm_sql`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from clvmodel.errors import ClvError
from clvmodel.sqltext import date_literal, number
from clvmodel.units import UNIT_DAYS as _UNIT_DAYS

__all__ = ["UNIT_DAYS", "RfmResult", "rfm_sql", "days_sql", "create_days", "summarise", "check_dates",
           "repeat_transactions_by_period", "period_totals_sql", "repeats_from_totals", "plot_start"]

#: Days per time unit: a month is exactly 365.25 / 12 = 30.4375 days and a year 365.25 days
#: (:data:`clvmodel.units.DAYS`); calendar months differ in length and a hidden "30 days" is a bias.
#: Day and week stay integers, so their SQL text (and every CDNOW number) is what it always was.
UNIT_DAYS: dict[str, float] = {"day": 1, "week": 7, "month": _UNIT_DAYS["month"], "year": _UNIT_DAYS["year"]}

SUMMARY_COLUMNS = ["customer_id", "frequency", "recency", "T", "monetary_value"]
HOLDOUT_COLUMNS = ["frequency_holdout", "monetary_value_holdout", "duration_holdout"]


@dataclass
class RfmResult:
    """The summary and its accounting."""

    summary: pd.DataFrame
    time_unit: str
    calibration_end: dt.date | None
    #: ``None`` for a published summary (``data.format: rfm``), which carries no dates.
    observation_end: dt.date | None
    customers_after_calibration: int = 0
    transactions_after_observation_end: int = 0
    #: Customers whose every transaction comes after the observation end.
    customers_after_observation_end: int = 0
    #: Customers by first purchase day (up to the observation end), for the tracking plot.
    first_days: pd.Series | None = None
    #: A published summary's holdout columns (``None``: a holdout exactly when split by date).
    holdout: bool | None = None

    def account(self, customers: int) -> None:
        """Check that every customer of the data is summarised or counted as left out.

        Raises
        ------
        RuntimeError
            When they do not add up: a bug, never a user's mistake.
        """
        counted = len(self.summary) + self.customers_after_calibration + self.customers_after_observation_end
        if counted != customers:
            raise RuntimeError(
                f"clvmodel bug: {customers:,} customers read but {len(self.summary):,} summarised + "
                f"{self.customers_after_calibration:,} after the calibration end + "
                f"{self.customers_after_observation_end:,} after the observation end"
            )

    @property
    def split(self) -> bool:
        """Whether the summary has a holdout (``frequency_holdout``, ... columns)."""
        return self.calibration_end is not None if self.holdout is None else self.holdout


def rfm_sql(
    table: str,
    cut: dt.date,
    observation_end: dt.date,
    unit_days: float,
    holdout: bool,
    *,
    per_day: bool = False,
    first_day: bool = False,
) -> str:
    """The RFM query (DuckDB and Spark SQL alike).

    Parameters
    ----------
    table
        A table or view with columns ``customer_id, day (DATE), amount``: transactions, or with
        ``per_day`` their per-customer-day totals (one row per customer and day, exact decimal
        amounts, as :func:`clvmodel.io.load_transactions` builds in table ``days``).
    cut
        Calibration end (or the observation end when there is no split); inclusive.
    observation_end
        Last day counted; inclusive.
    unit_days
        Days per unit (:data:`UNIT_DAYS`): 1, 7, 30.4375 (month) or 365.25 (year).
    holdout
        Add the holdout columns.
    per_day
        ``table`` already holds one row per customer and day.
    first_day
        Keep every customer seen up to the observation end, with a ``first_day`` column: rows
        whose first day is after ``cut`` are not in the cohort (their other columns are
        meaningless) and are for the caller to count and drop. Saves a second pass over the days
        to count them.
    """
    cal = date_literal(cut)
    obs = date_literal(observation_end)
    unit = f"CAST({number(unit_days)} AS DOUBLE)"  # DOUBLE on both engines: Spark reads 7.0 as DECIMAL
    holdout_agg = (
        f""",
               COUNT(CASE WHEN day > {cal} THEN 1 END) AS frequency_holdout,
               SUM(CASE WHEN day > {cal} THEN amount ELSE 0 END) AS spend_holdout"""
        if holdout
        else ""
    )
    holdout_cols = (
        f""",
           CAST(frequency_holdout AS BIGINT) AS frequency_holdout,
           CASE WHEN frequency_holdout > 0 THEN CAST(spend_holdout AS DOUBLE) / frequency_holdout ELSE 0.0 END
               AS monetary_value_holdout,
           CAST({obs} - {cal} AS INT) / {unit} AS duration_holdout"""
        if holdout
        else ""
    )
    days = (
        f"SELECT customer_id, day, amount FROM {table} WHERE day <= {obs}"
        if per_day
        # Exact decimal sums: a DOUBLE sum's last bit depends on the engine's (parallel) summing
        # order, and the spend model's fit must not change from one run to the next.
        else f"SELECT customer_id, day, SUM(CAST(amount AS DECIMAL(38, 9))) AS amount FROM {table} "
        f"WHERE day <= {obs} GROUP BY customer_id, day"
    )
    cohort = "" if first_day else f"HAVING MIN(day) <= {cal}"
    # Calibration columns. When the cut is the observation end (no split: the RFM summary,
    # scoring as of a day), every day kept by ``days`` is on or before it, so the conditions
    # would hold on every row: plain aggregates give the same values and types (BIGINT, DATE,
    # exact decimal) without evaluating three CASEs per customer-day (~0.3 CPU-s at 10 M rows).
    if cut == observation_end:
        calibration = "COUNT(*) AS purchase_days, MAX(day) AS last_day, SUM(amount) AS spend"
    else:
        calibration = (
            f"COUNT(CASE WHEN day <= {cal} THEN 1 END) AS purchase_days,\n"
            f"               MAX(CASE WHEN day <= {cal} THEN day END) AS last_day,\n"
            f"               SUM(CASE WHEN day <= {cal} THEN amount ELSE 0 END) AS spend"
        )
    return f"""
    WITH days AS ({days}),
    per_customer AS (
        SELECT customer_id,
               MIN(day) AS first_day,
               MIN_BY(amount, day) AS first_amount,
               {calibration}{holdout_agg}
        FROM days
        GROUP BY customer_id
        {cohort}
    )
    SELECT customer_id,{" first_day," if first_day else ""}
           CAST(purchase_days - 1 AS BIGINT) AS frequency,
           CAST(last_day - first_day AS INT) / {unit} AS recency,
           CAST({cal} - first_day AS INT) / {unit} AS T,
           CASE WHEN purchase_days > 1 THEN CAST(spend - first_amount AS DOUBLE) / (purchase_days - 1) ELSE 0.0 END
               AS monetary_value{holdout_cols}
    FROM per_customer
    ORDER BY customer_id
    """


def check_dates(
    first: dt.date, last: dt.date, calibration_end: dt.date | None, observation_end: dt.date | None
) -> tuple[dt.date, dt.date]:
    """``(cut, observation_end)`` for data from ``first`` to ``last``; one message for every engine.

    Raises
    ------
    ClvError
        An observation end before the data, or a calibration end outside it or not before the
        observation end.
    """
    obs = observation_end or last
    if obs < first:
        raise ClvError(f"observation_end {obs} is before the first transaction {first}; choose a date inside the data")
    if calibration_end is not None:
        if calibration_end < first or calibration_end >= last:
            raise ClvError(
                f"calibration_end {calibration_end} is outside the data ({first} to {last}); "
                "choose a date after the first and before the last transaction"
            )
        if calibration_end >= obs:
            raise ClvError(f"calibration_end {calibration_end} must be before observation_end {obs}")
    return calibration_end or obs, obs


def create_days(con: duckdb.DuckDBPyConnection, table: str = "transactions", name: str = "days") -> None:
    """Table ``name(customer_id, day, amount, n)``: each customer's purchases per day.

    The same-day rule of the module contract, applied once: ``amount`` is the day's total as an
    exact decimal (9 places), ``n`` the rows it sums. The summary, the split's counts and the
    tracking plot all read it instead of the transactions (:func:`summarise`'s ``days``).
    """
    con.execute(f"CREATE OR REPLACE TABLE {name} AS {days_sql(table)}")


def days_sql(table: str) -> str:
    """The query of :func:`create_days` (DuckDB and Spark SQL alike): per customer and day, the
    exact decimal total ``amount`` and the rows ``n`` it sums."""
    return (
        f"SELECT customer_id, day, SUM(CAST(amount AS DECIMAL(38, 9))) AS amount, "
        f"count(*) AS n FROM {table} GROUP BY customer_id, day"
    )


def summarise(
    con: duckdb.DuckDBPyConnection,
    *,
    time_unit: str,
    calibration_end: dt.date | None = None,
    observation_end: dt.date | None = None,
    table: str = "transactions",
    days: str | None = None,
) -> RfmResult:
    """Summarise ``table`` (``customer_id, day, amount``) into RFM rows; see the module contract.

    ``days`` names a per-day table of :func:`create_days` (as
    :func:`clvmodel.io.load_transactions` leaves behind); read instead of ``table``, it saves
    the (customer, day) aggregation, the costly half of the summary at scale.

    Raises
    ------
    ClvError
        When the calibration or observation end lies outside the data.
    """
    if time_unit not in UNIT_DAYS:
        raise ClvError(f"unknown time unit {time_unit!r}; use one of: {', '.join(UNIT_DAYS)}")
    source = days or table
    first, last = con.execute(f"SELECT min(day), max(day) FROM {source}").fetchall()[0]
    cut, obs = check_dates(first, last, calibration_end, observation_end)
    # Every customer seen by the observation end, with the first day: the cohort is the rows
    # whose first day is on or before the cut; the others are counted, not summarised.
    # fetchnumpy: ids arrive as Python strings (object), the package's id type, with no
    # intermediate Arrow string column to convert (0.1-0.2 s at a million customers).
    columns = con.execute(
        rfm_sql(source, cut, obs, UNIT_DAYS[time_unit], calibration_end is not None, per_day=days is not None,
                first_day=True)
    ).fetchnumpy()
    first_days = pd.Series(columns.pop("first_day")).astype("datetime64[us]")
    frame = pd.DataFrame(
        {name: pd.Series(np.asarray(values), dtype=object if values.dtype == object else None, copy=False)
         for name, values in columns.items()}
    )
    cohort = (first_days <= pd.Timestamp(cut)).to_numpy()
    summary = frame if cohort.all() else frame[cohort].reset_index(drop=True)
    rows = "sum(n)" if days else "count(*)"
    after_obs = con.execute(f"SELECT coalesce({rows}, 0) FROM {source} WHERE day > ?", [obs]).fetchall()[0][0]
    late_customers = 0
    if after_obs:
        late_customers = con.execute(
            f"SELECT count(*) FROM (SELECT customer_id FROM {source} GROUP BY customer_id "
            "HAVING min(day) > ?)", [obs]
        ).fetchall()[0][0]
    return RfmResult(
        summary=summary,
        time_unit=time_unit,
        calibration_end=calibration_end,
        observation_end=obs,
        customers_after_calibration=int((~cohort).sum()),
        transactions_after_observation_end=int(after_obs),
        customers_after_observation_end=int(late_customers),
        first_days=first_days.value_counts().sort_index(),
    )


def repeat_transactions_by_period(
    con: duckdb.DuckDBPyConnection,
    *,
    start: dt.date,
    end: dt.date,
    unit_days: float,
    table: str = "transactions",
    days: str | None = None,
    first_days: pd.Series | None = None,
) -> pd.Series:
    """Repeat purchase days per period since ``start`` (index 1, 2, ...), for tracking plots.

    With ``days`` (:func:`create_days`) and ``first_days`` (customers by first purchase day,
    :attr:`RfmResult.first_days`), the count is purchase days less first purchase days per
    period: every customer has one first day, so no per-customer join is needed.
    """
    period = _period_sql(start, unit_days)
    periods = int(((end - start).days) // unit_days) + 1
    index = range(1, periods + 1)
    if days is not None and first_days is not None:
        totals = con.execute(period_totals_sql(days, start=start, end=end, unit_days=unit_days)).df()
        return repeats_from_totals(totals, first_days, start=start, end=end, unit_days=unit_days)
    frame = con.execute(
        f"""
        WITH days AS (SELECT customer_id, day FROM {table} WHERE day <= {date_literal(end)} GROUP BY customer_id, day),
        firsts AS (SELECT customer_id, min(day) AS first_day FROM days GROUP BY customer_id)
        SELECT {period} AS period,
               count(*) AS repeat_transactions
        FROM days JOIN firsts USING (customer_id)
        WHERE day > first_day AND day >= {date_literal(start)}
        GROUP BY period ORDER BY period
        """
    ).df()
    series = frame.set_index("period")["repeat_transactions"].reindex(index, fill_value=0)
    return series.astype(int)


def _period_sql(start: dt.date, unit_days: float) -> str:
    """The period (1, 2, ...) of ``day`` since ``start``, in SQL."""
    return f"CAST(floor(CAST(day - {date_literal(start)} AS INT) / {number(float(unit_days))}) AS BIGINT) + 1"


def period_totals_sql(days: str, *, start: dt.date, end: dt.date, unit_days: float) -> str:
    """Purchase days per period in ``[start, end]`` of a :func:`create_days` table (DuckDB and Spark SQL alike)."""
    return (
        f"SELECT {_period_sql(start, unit_days)} AS period, count(*) AS n FROM {days} "
        f"WHERE day >= {date_literal(start)} AND day <= {date_literal(end)} GROUP BY period"
    )


def repeats_from_totals(
    totals: pd.DataFrame, first_days: pd.Series, *, start: dt.date, end: dt.date, unit_days: float
) -> pd.Series:
    """Repeat purchase days per period: ``totals`` (:func:`period_totals_sql`) less the first
    purchase days falling in each period (every customer has one, so no per-customer join)."""
    index = range(1, int(((end - start).days) // unit_days) + 2)
    purchase_days = totals.set_index("period")["n"].reindex(index, fill_value=0)
    offsets = (first_days.index - pd.Timestamp(start)).days.to_numpy()
    inside = (offsets >= 0) & (first_days.index <= pd.Timestamp(end))
    firsts = pd.Series(first_days.to_numpy()[inside], index=(offsets[inside] // unit_days).astype(np.int64) + 1)
    first_counts = firsts.groupby(level=0).sum().reindex(index, fill_value=0)
    series = (purchase_days - first_counts.to_numpy()).rename("repeat_transactions")
    series.index.name = "period"
    return series.astype(int)


def plot_start(result: RfmResult) -> dt.date:
    """The first day of the tracking plot's periods: ``max T`` before the cut, the cohort's earliest
    first purchase (:func:`repeat_transactions_by_period`'s ``start`` in training)."""
    cut_day = result.calibration_end or result.observation_end
    days = float(result.summary["T"].max() * UNIT_DAYS[result.time_unit])
    return (pd.Timestamp(cut_day) - pd.Timedelta(days=days)).date()
