"""A scikit-learn challenger to the BTYD models: gradient-boosted trees on calibration features.

BG/NBD and Gamma-Gamma derive a customer's future from a story (buy while alive, drop out,
spend around a personal mean). The challenger learns it from data instead: two
:class:`~sklearn.ensemble.HistGradientBoostingRegressor` (Poisson loss: counts and non-negative
spend) map features of a customer's history up to a cut date to her repeat purchase days and
spend in the window after it. It competes on the same holdout leaderboard
(:func:`clvmodel.evaluate.leaderboard`).

Features (:func:`features`, SQL on DuckDB, same contract as :mod:`clvmodel.rfm`: transactions
on the same day are one purchase, times in the time unit, ``week`` = days / 7), for each
customer whose first purchase is on or before the cut:

* ``frequency``, ``recency``, ``T``, ``monetary_value``: the RFM summary, exactly as
  :func:`clvmodel.rfm.summarise` computes it;
* ``total_spend``, ``mean_order_value`` (= total / purchase days), ``max_order_value``,
  ``purchase_days`` (= frequency + 1), all over purchase days (same-day totals);
* ``mean_gap``, ``std_gap``: mean and *population* standard deviation of the gaps between
  consecutive purchase days (NaN for a one-time buyer, who has no gap; the trees route missing
  values natively, which is more honest than inventing a gap; ``std_gap`` is 0 with one gap);
* ``time_since_last`` = ``T − recency``;
* ``recent_purchases``: repeat purchase days strictly inside the last quarter of the customer's
  own observed window, i.e. with ``day − first_day > 0.75 × (cut − first_day)`` (the first
  purchase never counts; a day exactly on the boundary does not either);
* ``repeat_rate`` = ``frequency / max(T, 1)``: trees split on one feature at a time and cannot
  form the ratio themselves (the floor at one period as in :mod:`clvmodel.models.historical`).

Targets (:func:`targets`): purchase days and spend in ``(start, end]`` for each customer whose
first purchase is on or before ``start`` (zero when she did not buy); with ``start`` = calibration
end and ``end`` = observation end they are the RFM ``frequency_holdout`` and holdout spend.

Training without leakage (:meth:`Challenger.fit`). The targets the regressors learn must come
from the past, never from the holdout that scores them. Given the calibration end ``C`` and the
holdout length ``D``, the model is trained on an *inner* split of the calibration period:
features as of ``inner_cut`` (default ``C − D``), targets in ``(inner_cut, C]``. Structurally,
:meth:`~Challenger.fit` first creates a temporary view of the transactions with ``day <= C`` and
the training code receives only that view's name: no query it runs can see a later row. The real
holdout forecast then uses features as of ``C`` (:meth:`Challenger.predict`).

Training size. The fit's cost grows with the cohort (each of the ``max_iter`` trees builds its
histograms from every row). ``max_train_customers`` (off by default) fits on a seeded random
sample of the cohort instead (:func:`training_sample`); every customer is still scored. It stays
off by default because a sample's total moves with its seed far more than the whole cohort's
fit does (experiments/challenger_timing.py ``--caps``). On the 10 M-row benchmark log (cohort
1,250,997; holdout 26 weeks) the whole cohort fitted with seeds 0 and 1 (early stopping is off,
so the seed only draws the 200,000 rows the bin edges come from) gave a holdout purchases %
error of −0.089 and −0.065 and spend 4.517 and 4.608; a cap of 500,000 gave −0.534 and +0.133,
and 4.654 and 5.407 (spreads of 0.667 and 0.753 points against 0.024 and 0.091: 28× and 8×), a
cap of 250,000 −1.02 and +0.06, one of 100,000 −0.03 and +1.48; the spend RMSE was worse for every capped fit (83.4–87.3 against 82.1–82.3).
The 500,000 cap saved 40 of the fit's ~69 CPU seconds; the predictions for every customer
(~35 CPU seconds) do not shrink.

Horizon. A regressor learns the target over its training window of ``W = (C − inner_cut)``
periods (``W = D`` by default). :meth:`~Challenger.predict` for another horizon ``H`` scales both
predictions by ``H / W``. This is an **approximation**: it assumes a constant purchase rate, while
customers drop out over time (BG/NBD's ``E[Y(t)]`` is concave in ``t``), so scaling up tends to
over-forecast and scaling down to under-forecast. With ``horizon_scaling=False`` any horizon other
than ``W`` is refused.

Known limits: trees do not extrapolate. Features at ``C`` (e.g. ``T``) can exceed the range seen
at the inner cut; such customers are treated like the oldest ones seen in training.

Persistence without pickle (:meth:`Challenger.save`, :meth:`Challenger.load`): the two
regressors go into one skops file (``challenger.skops``), loaded with an explicit list of trusted
types (:data:`TRUSTED_TYPES`) checked with :func:`skops.io.get_untrusted_types` first; anything
else is refused. A JSON document (``challenger.json``) holds the feature names, time unit,
horizon, hyper-parameters, package versions, the SHA-256 of the skops file (verified before the
file is parsed) and a checksum of its own content.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import numbers
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

from clvmodel.errors import ClvError
from clvmodel.files import write_atomically
from clvmodel.integrity import DocumentKind, check_document, document_checksum, package_versions
from clvmodel.models.base import ModelData
from clvmodel.rfm import UNIT_DAYS
from clvmodel.sqltext import date_literal, number

__all__ = [
    "FEATURES",
    "TARGETS",
    "TRUSTED_TYPES",
    "FORMAT",
    "FORMAT_VERSION",
    "SKOPS_NAME",
    "JSON_NAME",
    "Challenger",
    "features",
    "targets",
    "features_sql",
    "targets_sql",
    "derive_inner_cut",
    "inner_cut_from_firsts",
    "join_training",
    "DuckDBReader",
    "INNER_CUT_SHARE",
    "training_sample",
]

#: Model inputs, in the column order the regressors were fitted on.
FEATURES: tuple[str, ...] = (
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "total_spend",
    "mean_order_value",
    "max_order_value",
    "purchase_days",
    "mean_gap",
    "std_gap",
    "time_since_last",
    "recent_purchases",
    "repeat_rate",
)
#: What the two regressors predict, per customer, over the window after the cut.
TARGETS: tuple[str, ...] = ("purchases", "spend")

#: Types outside skops' defaults that a saved challenger may contain, and nothing else. A fitted
#: HistGradientBoostingRegressor holds its trees as ``TreePredictor`` objects (plain arrays
#: inside); everything else in it (the estimator, its binner, loss, numpy arrays, dicts) is
#: trusted by skops by default.
TRUSTED_TYPES: tuple[str, ...] = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)

FORMAT = "clvmodel/challenger"
#: Bump when the saved form changes incompatibly; a reader refuses versions above its own.
FORMAT_VERSION = 1
SKOPS_NAME = "challenger.skops"
JSON_NAME = "challenger.json"
_PACKAGES = ("numpy", "pandas", "scikit-learn", "skops", "duckdb")


# --- SQL -------------------------------------------------------------------------------------




def _days_sql(table: str, last: dt.date) -> str:
    """One row per customer and purchase day up to ``last`` (inclusive), the day's amounts summed.

    What the features and the targets both start from: same-day transactions are one purchase, as
    in the RFM summary.
    """
    return f"""
        SELECT customer_id, day, SUM(amount) AS amount
        FROM {table}
        WHERE day <= {date_literal(last)}
        GROUP BY customer_id, day
    """


def features_sql(table: str, cut: dt.date, unit_days: int, targets_end: dt.date | None = None) -> str:
    """The feature query (DuckDB), written in :func:`clvmodel.rfm.rfm_sql`'s portable style.

    Date differences are ``CAST(a - b AS INT)`` and only functions Spark SQL also has are used
    (``MIN_BY``, ``LAG``, ``STDDEV_POP``, ``GREATEST``): :mod:`clvmodel.spark.challenger` runs it
    on Spark for ``clvmodel train --engine spark``.

    With ``targets_end`` it is the *training* query: the features as of ``cut`` and, in the same
    pass, the targets of :func:`targets_sql` in ``(cut, targets_end]`` (columns ``purchases``,
    ``spend``), for the customers whose first purchase is on or before ``cut``. The log is grouped
    by (customer, day) and ordered once, up to ``targets_end``, instead of once for the features
    and once again for the targets. The features stay those of the log cut at ``cut``: each
    feature aggregate reads only the days ``<= cut``; a customer's first day (and its amount) and
    the gap before each of her days (``LAG``) do not depend on later rows, so reading them from
    the longer log changes nothing.

    Parameters
    ----------
    table
        A table or view with columns ``customer_id, day (DATE), amount``.
    cut
        Last day seen by the features (inclusive); later rows are filtered out first (without
        ``targets_end``).
    unit_days
        1 for days, 7 for weeks.
    targets_end
        Last day of the target window (inclusive), after ``cut``; ``None``: features only.
    """
    cut_sql = date_literal(cut)
    # DOUBLE on both engines, as in rfm_sql: Spark reads 7.0 as DECIMAL and rounds its division.
    unit = f"CAST({number(float(unit_days))} AS DOUBLE)"
    if targets_end is None:
        last, seen, end_seen, target_sums, target_columns, cohort = cut, "", "", "", "", ""
    else:
        # Feature aggregates see only the days up to the cut (NULL after it: skipped by aggregates).
        last, seen, end_seen = targets_end, f"CASE WHEN day <= {cut_sql} THEN ", " END"
        target_sums = (f""",
               COUNT(CASE WHEN day > {cut_sql} THEN 1 END) AS purchases,
               SUM(CASE WHEN day > {cut_sql} THEN amount ELSE 0.0 END) AS spend""")
        target_columns = """,
           CAST(purchases AS BIGINT) AS purchases,
           CAST(spend AS DOUBLE) AS spend"""
        cohort = f"HAVING MIN(first_day) <= {cut_sql}"
    return f"""
    WITH days AS ({_days_sql(table, last)}),
    ordered AS (
        SELECT customer_id, day, amount,
               MIN(day) OVER (PARTITION BY customer_id) AS first_day,
               CAST(day - LAG(day) OVER (PARTITION BY customer_id ORDER BY day) AS INT) AS gap_days
        FROM days
    ),
    per_customer AS (
        SELECT customer_id,
               MIN(first_day) AS first_day,
               MAX({seen}day{end_seen}) AS last_day,
               MIN_BY(amount, day) AS first_amount,
               COUNT({seen}1{end_seen}) AS purchase_days,
               SUM({seen}amount{end_seen}) AS total_spend,
               MAX({seen}amount{end_seen}) AS max_order_value,
               AVG({seen}gap_days{end_seen}) AS mean_gap_days,
               STDDEV_POP({seen}gap_days{end_seen}) AS std_gap_days,
               -- integer arithmetic: day - first > 3/4 (cut - first), no rounding at the boundary
               COUNT({seen}CASE WHEN 4 * CAST(day - first_day AS INT) > 3 * CAST({cut_sql} - first_day AS INT)
                          THEN 1 END{end_seen}) AS recent_purchases{target_sums}
        FROM ordered
        GROUP BY customer_id
        {cohort}
    )
    SELECT customer_id,
           CAST(purchase_days - 1 AS BIGINT) AS frequency,
           CAST(last_day - first_day AS INT) / {unit} AS recency,
           CAST({cut_sql} - first_day AS INT) / {unit} AS T,
           CASE WHEN purchase_days > 1 THEN (total_spend - first_amount) / (purchase_days - 1) ELSE 0.0 END
               AS monetary_value,
           CAST(total_spend AS DOUBLE) AS total_spend,
           total_spend / purchase_days AS mean_order_value,
           CAST(max_order_value AS DOUBLE) AS max_order_value,
           CAST(purchase_days AS BIGINT) AS purchase_days,
           mean_gap_days / {unit} AS mean_gap,
           std_gap_days / {unit} AS std_gap,
           CAST({cut_sql} - last_day AS INT) / {unit} AS time_since_last,
           CAST(recent_purchases AS BIGINT) AS recent_purchases,
           (purchase_days - 1) / GREATEST(CAST({cut_sql} - first_day AS INT) / {unit}, 1.0) AS repeat_rate{target_columns}
    FROM per_customer
    ORDER BY customer_id
    """


def targets_sql(table: str, start: dt.date, end: dt.date) -> str:
    """The target query: purchase days and spend in ``(start, end]`` per customer acquired by ``start``."""
    start_sql = date_literal(start)
    return f"""
    WITH days AS ({_days_sql(table, end)})
    SELECT customer_id,
           CAST(COUNT(CASE WHEN day > {start_sql} THEN 1 END) AS BIGINT) AS purchases,
           CAST(SUM(CASE WHEN day > {start_sql} THEN amount ELSE 0.0 END) AS DOUBLE) AS spend
    FROM days
    GROUP BY customer_id
    HAVING MIN(day) <= {start_sql}
    ORDER BY customer_id
    """


def _as_date(value: dt.date, name: str) -> dt.date:
    """A plain ``date``: a datetime (or pandas Timestamp) would print a time into the SQL literal."""
    if isinstance(value, dt.datetime):
        return value.date()
    if not isinstance(value, dt.date):
        raise ClvError(f"{name} must be a date, got {value!r}; pass e.g. datetime.date(1997, 9, 30)")
    return value


def _positive(value: object) -> bool:
    """A finite positive real number (numpy scalars included; ``True`` is not a length)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _unit_days(time_unit: str) -> int:
    if time_unit not in UNIT_DAYS:
        raise ClvError(f"unknown time unit {time_unit!r}; use one of: {', '.join(UNIT_DAYS)}")
    return UNIT_DAYS[time_unit]


def _string_ids(frame: pd.DataFrame) -> pd.DataFrame:
    # Same representation as rfm.summarise: ids are Python strings (leading zeros kept).
    frame["customer_id"] = frame["customer_id"].astype(object)
    return frame


def features(
    con: duckdb.DuckDBPyConnection, *, cut: dt.date, time_unit: str, table: str = "transactions"
) -> pd.DataFrame:
    """Calibration features as of ``cut``: one row per customer whose first purchase is on or before it.

    Parameters
    ----------
    con
        A DuckDB connection holding ``table``.
    cut
        Last day seen, inclusive; transactions after it are ignored.
    time_unit
        ``day`` or ``week`` (days / 7).
    table
        A table or view with columns ``customer_id, day, amount``.

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` (str) and :data:`FEATURES`, sorted by ``customer_id``; see the module
        docstring for each definition.
    """
    unit_days = _unit_days(time_unit)
    frame = con.execute(features_sql(table, _as_date(cut, "cut"), unit_days)).df()
    return _string_ids(frame)[["customer_id", *FEATURES]]


def targets(
    con: duckdb.DuckDBPyConnection, *, start: dt.date, end: dt.date, table: str = "transactions"
) -> pd.DataFrame:
    """Purchase days and spend in ``(start, end]`` per customer whose first purchase is on or before ``start``.

    Returns
    -------
    pandas.DataFrame
        ``customer_id, purchases, spend`` sorted by ``customer_id``; zeros for a customer who did
        not buy in the window. Every purchase day in the window is a repeat purchase.
    """
    start, end = _as_date(start, "start"), _as_date(end, "end")
    if end <= start:
        raise ClvError(f"target window end {end} must be after its start {start}")
    return _string_ids(con.execute(targets_sql(table, start, end)).df())


# --- training --------------------------------------------------------------------------------


def _calibration_view(con: duckdb.DuckDBPyConnection, table: str, calibration_end: dt.date) -> str:
    """A temporary view of ``table`` cut at ``calibration_end``: all training reads go through it.

    A unique name, so fits on one connection do not collide; the caller drops it.
    """
    name = f"clv_challenger_calibration_{uuid.uuid4().hex}"
    con.execute(
        f"CREATE TEMP VIEW {name} AS SELECT customer_id, day, amount FROM {table} "
        f"WHERE day <= {date_literal(calibration_end)}"
    )
    return name


def _training_frame(
    con: duckdb.DuckDBPyConnection, view: str, *, inner_cut: dt.date, calibration_end: dt.date, time_unit: str
) -> pd.DataFrame:
    """Features as of ``inner_cut`` with the targets in ``(inner_cut, calibration_end]``: one query
    (:func:`features_sql` with ``targets_end``), the frame ``join_training(features(...),
    targets(...))`` gives, for one grouping of the log instead of two.

    Receives only the calibration view, never the full table: this is where leakage would happen.
    """
    unit_days = _unit_days(time_unit)
    query = features_sql(view, _as_date(inner_cut, "inner_cut"), unit_days,
                         targets_end=_as_date(calibration_end, "calibration_end"))
    return _string_ids(con.execute(query).df())[["customer_id", *FEATURES, *TARGETS]]


def join_training(x: pd.DataFrame, y: pd.DataFrame) -> pd.DataFrame:
    """Features ``x`` joined with targets ``y`` by customer: the frame the regressors learn from
    (what :func:`features_sql` with ``targets_end`` computes in one query)."""
    # Same cohort by construction (first purchase <= inner_cut); validate rather than trust it.
    return x.merge(y, on="customer_id", how="inner", validate="one_to_one")


class DuckDBReader:
    """The challenger's reads of a transaction log held in DuckDB (the local engine).

    :meth:`Challenger.fit` and :meth:`Challenger.predict` read the log only through these three
    methods; :class:`clvmodel.spark.challenger.SparkReader` has the same three on Spark (the same
    SQL text), so ``data.transactions`` may be either.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, table: str = "transactions") -> None:
        self.con, self.table = con, table

    def first_days(self, calibration_end: dt.date) -> list[dt.date]:
        """Each customer's first purchase day up to ``calibration_end``, in ascending order."""
        end = date_literal(calibration_end)
        return [row[0] for row in self.con.execute(
            f"SELECT min(day) AS first FROM {self.table} WHERE day <= {end} GROUP BY customer_id ORDER BY first"
        ).fetchall()]

    def training_frame(self, *, inner_cut: dt.date, calibration_end: dt.date, time_unit: str) -> pd.DataFrame:
        """Features at ``inner_cut`` joined with targets in ``(inner_cut, calibration_end]``, read
        through a view that holds no row after ``calibration_end`` (:func:`_calibration_view`)."""
        view = _calibration_view(self.con, self.table, calibration_end)
        try:
            return _training_frame(self.con, view, inner_cut=inner_cut, calibration_end=calibration_end,
                                   time_unit=time_unit)
        finally:
            self.con.execute(f"DROP VIEW IF EXISTS {view}")

    def features(self, *, cut: dt.date, time_unit: str) -> pd.DataFrame:
        """:func:`features` as of ``cut``."""
        return features(self.con, cut=cut, time_unit=time_unit, table=self.table)


def _reader(source: Any, table: str) -> Any:
    """A reader of the log: ``source`` itself when it is one (Spark's), else DuckDB's on it."""
    return source if hasattr(source, "training_frame") else DuckDBReader(source, table)


#: Share of the calibration period's customers that must have bought by a derived inner cut.
INNER_CUT_SHARE = 0.5


def derive_inner_cut(
    con: duckdb.DuckDBPyConnection, table: str, *, calibration_end: dt.date, holdout_days: int, min_customers: int,
    time_unit: str = "day",
) -> tuple[dt.date, str]:
    """The default inner cut, and the rule that gave it (one sentence, printed in the run).

    The cohort the regressors learn from is the customers whose first purchase is on or before
    the inner cut; the targets are their purchases after it, up to the calibration end ``C``.
    With ``n`` customers by ``C``, a cut needs ``k = max(min_customers, ⌈INNER_CUT_SHARE · n⌉)``
    of them (half, by default) to have bought by it, so that the cohort looks like the customers
    scored at ``C``:

    * ``C − D`` (``D`` the holdout length) when ``k`` customers had bought by then: the training
      window has the holdout's length, and no scaling is needed (the latest cut whose window fits
      before ``C``);
    * otherwise (a long holdout, or customers who all arrive late: CDNOW's arrive in its first 12
      weeks, so ``C − 39`` weeks is before any of them) the day the ``k``-th customer first
      bought: the latest cut with enough customers is never later than needed, and the training
      window, shorter than ``D``, is as long as it can be; predictions for ``D`` are scaled by
      ``D / W`` (see the module docstring).

    Raises
    ------
    ClvError
        Fewer than ``min_customers`` customers by ``C``, or the ``k``-th first purchase on ``C``
        itself (no window left to learn from).
    """
    firsts = DuckDBReader(con, table).first_days(calibration_end)
    return inner_cut_from_firsts(firsts, calibration_end=calibration_end, holdout_days=holdout_days,
                                 min_customers=min_customers, time_unit=time_unit)


def inner_cut_from_firsts(
    firsts: list[dt.date], *, calibration_end: dt.date, holdout_days: int, min_customers: int, time_unit: str = "day",
) -> tuple[dt.date, str]:
    """:func:`derive_inner_cut`'s rule on the customers' first purchase days by ``calibration_end``
    (ascending), however they were read."""
    n = len(firsts)
    if n < min_customers:
        raise ClvError(
            f"challenger: only {n} customers had bought by the calibration end {calibration_end} (min_customers is "
            f"{min_customers}); the challenger needs more customers, or leave it out of models"
        )
    needed = max(min_customers, math.ceil(INNER_CUT_SHARE * n))
    ready = firsts[needed - 1]
    default = calibration_end - dt.timedelta(days=holdout_days)
    by_default = sum(1 for day in firsts if day <= default)
    unit_days = UNIT_DAYS.get(time_unit, 1)
    if by_default >= needed:
        return default, (
            f"inner cut {default} = calibration end − holdout ({holdout_days / unit_days:g} {time_unit}s): "
            f"{by_default:,} of {n:,} customers had bought by then (at least {needed:,} needed)"
        )
    if ready >= calibration_end:
        raise ClvError(
            f"challenger: {needed:,} of the {n:,} customers had bought only by the calibration end {calibration_end}, "
            "which leaves no window to learn from; set challenger.inner_cut, or leave the challenger out"
        )
    window = (calibration_end - ready).days / unit_days
    return ready, (
        f"inner cut {ready}: by calibration end − holdout ({default}) only {by_default:,} of {n:,} customers had "
        f"bought, fewer than {needed:,} ({INNER_CUT_SHARE:.0%}, at least min_customers); {ready} is the day by which "
        f"{needed:,} had, a {window:.3g}-{time_unit} training window (predictions scaled to the holdout's "
        f"{holdout_days / unit_days:g} {time_unit}s)"
    )


def training_sample(train: pd.DataFrame, max_customers: int | None, seed: int) -> pd.DataFrame:
    """The rows the regressors learn from: all of ``train``, or a seeded random sample of
    ``max_customers`` of them (without replacement, in ``train``'s order) when it holds more.

    A cap bounds the fit's cost (linear in the rows: each of the ``max_iter`` trees builds its
    histograms from every row) on a large log; the predictions are still made for every customer.
    The same ``seed`` on the same frame draws the same sample.
    """
    if max_customers is None or len(train) <= max_customers:
        return train
    rows = np.sort(np.random.default_rng(seed).choice(len(train), size=max_customers, replace=False))
    return train.iloc[rows].reset_index(drop=True)


def _matrix(frame: pd.DataFrame) -> np.ndarray:
    return frame[list(FEATURES)].to_numpy(dtype=np.float64)


def _empty_target(train: pd.DataFrame) -> str | None:
    """The first target without a positive total in ``train``, or ``None``: Poisson deviance
    needs a positive total, and an all-zero target has nothing to learn."""
    return next((target for target in TARGETS if not train[target].sum() > 0), None)


class Challenger:
    """Two gradient-boosted regressors (purchases, spend) trained on an inner temporal split.

    Hyper-parameters are stored as given (scikit-learn's convention); fitted state ends in ``_``
    and holds no customer data.

    Parameters
    ----------
    learning_rate, max_iter, max_leaf_nodes, min_samples_leaf, l2_regularization
        Passed to both :class:`~sklearn.ensemble.HistGradientBoostingRegressor`. Early stopping
        is off so that the number of trees does not depend on the data size.
    random_state
        Seed of the regressors (bin subsampling on large data). With early stopping off, two fits
        on the same data give bit-identical trees (checked on CDNOW with 1 and 2 OpenMP threads).
    min_customers
        Fewest customers in the training cohort (first purchase on or before the inner cut);
        fewer is refused rather than fitted on noise.
    horizon_scaling
        Scale predictions for a horizon other than the training window proportionally (an
        approximation, see the module docstring); ``False`` refuses such horizons.
    inner_cut
        Feature date of the training rows (the config's ``challenger.inner_cut``); ``None``
        derives it from the data (:func:`derive_inner_cut`): ``C − D`` when at least half the
        customers of the calibration period (and ``min_customers``) had bought by then, else the
        day by which they had (a shorter training window; predictions for ``D`` are scaled, see
        the module docstring). The rule applied is in ``inner_cut_rule_``, which the run prints.
    max_train_customers
        Most customers the regressors learn from: a larger training cohort is replaced by a random
        sample of this many (:func:`training_sample`, seeded by ``random_state``); ``None``: the
        whole cohort. Predictions are made for every customer either way. The cohort's size is in
        ``n_train_``, the number learnt from in ``n_fit_``; the run prints both when they differ
        (in ``inner_cut_rule_``).
    """

    #: The registry name (:mod:`clvmodel.models.registry`).
    name = "challenger"

    def __init__(
        self,
        *,
        learning_rate: float = 0.05,
        max_iter: int = 200,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 20,
        l2_regularization: float = 1.0,
        random_state: int = 0,
        min_customers: int = 50,
        horizon_scaling: bool = True,
        inner_cut: dt.date | None = None,
        max_train_customers: int | None = None,
    ) -> None:
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.random_state = random_state
        self.min_customers = min_customers
        self.horizon_scaling = horizon_scaling
        self.inner_cut = inner_cut
        self.max_train_customers = max_train_customers
        self.regressors_: dict[str, HistGradientBoostingRegressor] | None = None
        self.time_unit_: str | None = None
        self.calibration_end_: dt.date | None = None
        self.inner_cut_: dt.date | None = None
        self.holdout_periods_: float | None = None
        self.window_periods_: float | None = None
        self.n_train_: int | None = None
        self.n_fit_: int | None = None
        self.inner_cut_rule_: str | None = None

    # -- hyper-parameters ----------------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """The constructor's arguments saved with the model (``inner_cut`` is saved as ``inner_cut_``).

        ``max_train_customers`` only when set: a document without it is read by the clvmodel
        versions before it (which pass every saved parameter to the constructor) as before.
        """
        cap = {} if self.max_train_customers is None else {"max_train_customers": self.max_train_customers}
        return {
            "learning_rate": self.learning_rate,
            "max_iter": self.max_iter,
            "max_leaf_nodes": self.max_leaf_nodes,
            "min_samples_leaf": self.min_samples_leaf,
            "l2_regularization": self.l2_regularization,
            "random_state": self.random_state,
            "min_customers": self.min_customers,
            "horizon_scaling": self.horizon_scaling,
            **cap,
        }

    def _regressor(self) -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(
            loss="poisson",
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            random_state=self.random_state,
        )

    def _check_fitted(self) -> None:
        if self.regressors_ is None:
            raise ClvError("Challenger is not fitted; call fit(...) or Challenger.load(directory) first")

    # -- fit / predict -------------------------------------------------------------------------

    def fit(self, data: ModelData, *, table: str = "transactions") -> "Challenger":
        """Fit on the inner split ``(inner_cut, calibration_end]``; nothing after ``calibration_end`` is read.

        Parameters
        ----------
        data
            ``data.transactions``: a DuckDB connection holding ``table`` (it may hold holdout
            rows: they are cut off by a temporary view before any training query runs), or a
            reader with :class:`DuckDBReader`'s methods (Spark's,
            :class:`clvmodel.spark.challenger.SparkReader`, which cuts them off alike);
            ``data.calibration_end`` ``C``, the last day of the calibration period (inclusive);
            ``data.holdout_periods`` ``D``, the holdout length in ``data.time_unit`` (``day`` or
            ``week``), the default training window.
        table
            Table or view with ``customer_id, day, amount``.

        Returns
        -------
        Challenger
            ``self``, fitted.

        Raises
        ------
        ClvError
            No transaction log or split, an unknown time unit, a non-positive holdout, an inner
            cut not before ``C``, fewer than ``min_customers`` customers by the inner cut, or no
            purchase/spend to learn.
        """
        if data.transactions is None or data.calibration_end is None:
            raise ClvError("the challenger learns from a transaction log split at calibration_end; this data has none")
        con, calibration_end = data.transactions, data.calibration_end
        holdout_periods, time_unit, inner_cut = data.holdout_periods, data.time_unit, self.inner_cut
        unit_days = _unit_days(time_unit)
        calibration_end = _as_date(calibration_end, "calibration_end")
        if not _positive(holdout_periods):
            raise ClvError(f"holdout_periods must be a positive number of {time_unit}s, got {holdout_periods!r}")
        self.inner_cut_rule_ = f"inner cut {inner_cut} (set in the config)" if inner_cut is not None else None
        reader = _reader(con, table)
        if inner_cut is None:
            inner_cut, self.inner_cut_rule_ = inner_cut_from_firsts(
                reader.first_days(calibration_end), calibration_end=calibration_end,
                holdout_days=round(holdout_periods * unit_days), min_customers=self.min_customers, time_unit=time_unit,
            )
        inner_cut = _as_date(inner_cut, "inner_cut")
        if inner_cut >= calibration_end:
            raise ClvError(
                f"inner_cut {inner_cut} must be before calibration_end {calibration_end}; "
                "the training targets are the purchases between them"
            )
        self._check_cap()
        cohort = reader.training_frame(inner_cut=inner_cut, calibration_end=calibration_end, time_unit=time_unit)
        self._check_training_frame(cohort, inner_cut, calibration_end)
        train = training_sample(cohort, self.max_train_customers, self.random_state)
        if len(train) < len(cohort):
            target = _empty_target(train)  # a sample could miss every buyer the whole cohort has
            if target is not None:
                raise ClvError(
                    f"challenger: the random sample of {len(train):,} of the {len(cohort):,} customers in the "
                    f"training cohort (max_train_customers) has no {target} in the training window "
                    f"({inner_cut}, {calibration_end}]; raise max_train_customers or set it to null"
                )
            sampled = (f"trained on a random sample of {len(train):,} of the {len(cohort):,} customers in the "
                       f"training cohort (max_train_customers, seed {self.random_state})")
            self.inner_cut_rule_ = f"{self.inner_cut_rule_}; {sampled}" if self.inner_cut_rule_ else sampled
        x = _matrix(train)
        y = {target: train[target].to_numpy(dtype=np.float64, copy=True) for target in TARGETS}
        n_train, n_fit = len(cohort), len(train)
        # The frames are not needed once x and y are built (copies: no view keeps a frame's block
        # alive); dropped before the trees are grown, they do not add to the fit's peak memory
        # (ids as Python strings and 16 columns: ~200 bytes per customer).
        del cohort, train
        self.regressors_ = {target: self._regressor().fit(x, y[target]) for target in TARGETS}
        self.time_unit_ = time_unit
        self.calibration_end_ = calibration_end
        self.inner_cut_ = inner_cut
        self.holdout_periods_ = float(holdout_periods)
        self.window_periods_ = (calibration_end - inner_cut).days / unit_days
        self.n_train_ = int(n_train)
        self.n_fit_ = int(n_fit)
        return self

    def _check_cap(self) -> None:
        cap = self.max_train_customers
        if cap is not None and not (isinstance(cap, numbers.Integral) and not isinstance(cap, bool)
                                    and cap >= self.min_customers):
            raise ClvError(
                f"challenger: max_train_customers must be a whole number of at least min_customers "
                f"({self.min_customers}), or null for the whole training cohort; got {cap!r}"
            )

    def _check_training_frame(self, train: pd.DataFrame, inner_cut: dt.date, calibration_end: dt.date) -> None:
        if len(train) < self.min_customers:
            raise ClvError(
                f"challenger: only {len(train)} customers had bought by the inner cut {inner_cut} "
                f"(min_customers is {self.min_customers}); pass a later inner_cut (before {calibration_end})"
            )
        target = _empty_target(train)
        if target is not None:
            raise ClvError(
                f"challenger: no {target} in the training window ({inner_cut}, {calibration_end}]; "
                "pass an earlier inner_cut"
            )

    def horizon_factor(self, horizon_periods: float) -> float:
        """The factor applied to the window-``W`` predictions for a horizon of ``horizon_periods``.

        1 for the training window itself, else ``horizon_periods / W`` (proportional scaling, an
        approximation; see the module docstring).

        Raises
        ------
        ClvError
            A non-positive horizon, or another horizon than ``W`` with ``horizon_scaling=False``.
        """
        self._check_fitted()
        window = float(self.window_periods_)  # type: ignore[arg-type]
        if not _positive(horizon_periods):
            raise ClvError(f"horizon_periods must be a positive number of {self.time_unit_}s, got {horizon_periods!r}")
        if math.isclose(horizon_periods, window, rel_tol=1e-9, abs_tol=1e-12):
            return 1.0
        if not self.horizon_scaling:
            raise ClvError(
                f"challenger was trained on a {window:g}-{self.time_unit_} window and horizon_scaling is off; "
                f"predict with horizon_periods={window:g} or refit with a matching inner_cut"
            )
        return float(horizon_periods) / window

    def predict(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        cut: dt.date,
        horizon_periods: float,
        table: str = "transactions",
    ) -> pd.DataFrame:
        """Expected repeat purchase days and spend in the ``horizon_periods`` after ``cut``.

        Features are computed as of ``cut`` (later rows are ignored), in the fitted time unit.

        Returns
        -------
        pandas.DataFrame
            ``customer_id, purchases, spend``, one row per customer whose first purchase is on or
            before ``cut``, sorted by ``customer_id`` (the order of :func:`clvmodel.rfm.summarise`).

        Raises
        ------
        ClvError
            Not fitted, a bad horizon (see :meth:`horizon_factor`), or no customer by ``cut``.
        """
        factor = self.horizon_factor(horizon_periods)
        frame = _reader(con, table).features(cut=cut, time_unit=self.time_unit_)  # type: ignore[arg-type]
        if frame.empty:
            raise ClvError(f"challenger: no customer had bought by {cut}; choose a cut inside the data")
        x = _matrix(frame)
        out = pd.DataFrame({"customer_id": frame["customer_id"].to_numpy(dtype=object)})
        for target, regressor in self.regressors_.items():  # type: ignore[union-attr]
            out[target] = regressor.predict(x) * factor
        return out

    # -- persistence ---------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write ``challenger.skops`` and ``challenger.json`` into ``directory`` (created if needed).

        Each file is written to a temporary name and renamed, so a failure never leaves half a file.
        """
        import skops.io as sio

        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        blob = sio.dumps(dict(self.regressors_))  # type: ignore[arg-type]
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "features": list(FEATURES),
            "targets": list(TARGETS),
            "time_unit": self.time_unit_,
            "calibration_end": self.calibration_end_.isoformat(),  # type: ignore[union-attr]
            "inner_cut": self.inner_cut_.isoformat(),  # type: ignore[union-attr]
            "holdout_periods": self.holdout_periods_,
            "window_periods": self.window_periods_,
            "n_train": self.n_train_,
            "n_fit": self.n_fit_,
            "params": self.get_params(),
            "trusted_types": list(TRUSTED_TYPES),
            "skops_file": SKOPS_NAME,
            "skops_sha256": hashlib.sha256(blob).hexdigest(),
            "versions": package_versions(_PACKAGES),
        }
        document["checksum"] = document_checksum(document)
        text = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
        write_atomically(directory / SKOPS_NAME, lambda tmp: tmp.write_bytes(blob))
        write_atomically(directory / JSON_NAME, lambda tmp: tmp.write_bytes(text))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "Challenger":
        """Read a saved challenger, verifying the document, the file's SHA-256 and its types.

        Order matters: the JSON and the checksum are verified before the skops file is parsed at
        all, and its types are checked against :data:`TRUSTED_TYPES` before any object is built.

        Raises
        ------
        ClvError
            A missing or malformed file, a checksum mismatch (tampered or corrupted), another
            format version, feature set or scikit-learn version, or a type outside the list.
        """
        directory = Path(directory)
        document = _read_document(directory)
        blob = _read_verified_blob(directory, document)
        regressors = _load_regressors(blob, directory)
        try:
            model = cls(**document["params"])
            model.regressors_ = regressors
            model.time_unit_ = document["time_unit"]
            # Dates reach the feature SQL (through sqltext.date_literal): real dates only.
            model.calibration_end_ = dt.date.fromisoformat(document["calibration_end"])
            model.inner_cut_ = dt.date.fromisoformat(document["inner_cut"])
            model.holdout_periods_ = float(document["holdout_periods"])
            model.window_periods_ = float(document["window_periods"])
            model.n_train_ = int(document["n_train"])
            # Saved before max_train_customers existed: every cohort customer was learnt from.
            model.n_fit_ = int(document.get("n_fit", model.n_train_))
        except (KeyError, TypeError, ValueError) as err:
            raise ClvError(
                f"{directory / JSON_NAME}: malformed challenger document ({type(err).__name__}); save the challenger again"
            ) from None
        if not (_positive(model.holdout_periods_) and _positive(model.window_periods_)):
            raise ClvError(f"{directory / JSON_NAME}: holdout and window periods must be positive; save the challenger again")
        return model

    def __repr__(self) -> str:
        if self.regressors_ is None:
            return "Challenger()"
        return (
            f"Challenger(time_unit={self.time_unit_!r}, inner_cut={self.inner_cut_}, "
            f"calibration_end={self.calibration_end_}, window_periods={self.window_periods_:g}, n_train={self.n_train_})"
        )


# --- persistence helpers ---------------------------------------------------------------------


#: How a challenger's document is recognised, and refused (:func:`clvmodel.integrity.check_document`).
_KIND = DocumentKind(
    format=FORMAT,
    version=FORMAT_VERSION,
    fix="save the challenger again",
    not_ours="{origin} is not a clvmodel challenger (no '{format}' document)",
    too_new="{origin} has format version {version!r}; this clvmodel reads up to {max_version}, upgrade it",
    mismatch="{origin}: checksum mismatch (edited or corrupted); save the challenger again",
)


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _read_document(directory: Path) -> dict[str, Any]:
    path = directory / JSON_NAME
    if not path.is_file():
        raise ClvError(f"{directory} holds no {JSON_NAME}; save a fitted Challenger there first")
    from clvmodel.document import read_json

    # Bounded like the model's own document (size, depth, no NaN): a challenger folder is as
    # hostile as the rest of a model directory.
    document = check_document(read_json(path, "save the challenger again"), _KIND, str(path))
    if document.get("features") != list(FEATURES) or document.get("targets") != list(TARGETS):
        raise ClvError(f"{path} was saved with other features or targets than this clvmodel computes; retrain it")
    if document.get("time_unit") not in UNIT_DAYS:
        raise ClvError(f"{path}: unknown time unit {document.get('time_unit')!r}")
    saved = (document.get("versions") or {}).get("scikit-learn", "?")
    installed = metadata.version("scikit-learn")
    # The trees' internals (and skops' reconstruction of them) may change between minor releases.
    if _minor(saved) != _minor(installed):
        raise ClvError(
            f"{path} was saved with scikit-learn {saved}, this environment has {installed}; "
            "retrain the challenger or install the same minor version"
        )
    return document


def _read_verified_blob(directory: Path, document: dict[str, Any]) -> bytes:
    path = directory / SKOPS_NAME
    if not path.is_file():
        raise ClvError(f"{directory} holds no {SKOPS_NAME}; save the challenger again")
    blob = path.read_bytes()
    actual = hashlib.sha256(blob).hexdigest()
    if actual != document.get("skops_sha256"):
        raise ClvError(
            f"{path}: SHA-256 {actual[:12]}… does not match {str(document.get('skops_sha256'))[:12]}… recorded "
            f"in {JSON_NAME} (tampered or corrupted); refusing to load it"
        )
    return blob


def _load_regressors(blob: bytes, directory: Path) -> dict[str, HistGradientBoostingRegressor]:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(data=blob)
    except Exception as err:  # skops raises several types for a malformed archive
        raise ClvError(f"{directory / SKOPS_NAME} is not a readable skops file ({type(err).__name__}); save it again") from None
    unexpected = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unexpected:
        raise ClvError(
            f"{directory / SKOPS_NAME} contains untrusted types ({', '.join(unexpected)}); refusing to load it"
        )
    # Trust exactly the listed types the file uses, never the file's own list.
    regressors = sio.loads(blob, trusted=[t for t in TRUSTED_TYPES if t in untrusted])
    valid = (
        isinstance(regressors, dict)
        and set(regressors) == set(TARGETS)
        and all(
            type(r) is HistGradientBoostingRegressor and getattr(r, "n_features_in_", None) == len(FEATURES)
            for r in regressors.values()
        )
    )
    if not valid:
        raise ClvError(f"{directory / SKOPS_NAME} does not hold the two fitted regressors of a challenger; retrain it")
    return {target: regressors[target] for target in TARGETS}
