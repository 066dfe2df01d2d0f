"""Scoring with ``mapInPandas`` (the model shipped as JSON); segments against the model's fixed
boundaries in the same pass, or, for a model saved before them, ranked by one global window."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from clvmodel.spark.runtime import _quiet_pandas3
from clvmodel.spark.summary import rfm
from clvmodel.spark.validate import _validate_rfm

if TYPE_CHECKING:  # pragma: no cover - type hints only; pyspark is optional
    from pyspark.sql import Column, DataFrame, SparkSession

    from clvmodel.artifact import TrainedModel

#: Spark schema of :func:`score`'s output: the columns of :data:`clvmodel.predict.OUTPUT_COLUMNS`.
SCORE_SCHEMA = (
    "customer_id string, frequency double, recency double, T double, monetary_value double, "
    "p_alive double, expected_purchases double, expected_order_value double, predicted_clv double, "
    "historical_clv double, segment string, status string"
)


def _batch_scorer(
    document: str, columns: list[str], horizon: int | None, discount_rate: float | None, margin: float | None
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The function ``mapInPandas`` runs on the workers.

    It closes over plain values only: the model's JSON text (a few kB, shipped with the task,
    which also works over Spark Connect where broadcast variables do not exist) and the options.
    Each partition rebuilds the model with :meth:`TrainedModel.from_document` (checksum verified),
    so no fitted object is ever pickled.
    """

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from clvmodel.artifact import TrainedModel
        from clvmodel.predict import OUTPUT_COLUMNS, score as score_frame

        model = TrainedModel.from_document(json.loads(document), origin="model (on a Spark worker)")
        # Fixed boundaries: each batch labelled as predict.score labels it. Else ranks across all
        # customers, assigned after, over the whole frame.
        fixed = model.segment_boundaries is not None
        keep = [c for c in OUTPUT_COLUMNS if fixed or c != "segment"]
        for batch in batches:
            if batch.empty:
                continue
            # interval_draws=0: the bootstrap intervals are optional columns this engine does not
            # return (yet), so their 1,000 draws per batch would be wasted work.
            scored = score_frame(
                model, batch[columns], horizon=horizon, discount_rate=discount_rate, margin=margin, interval_draws=0
            )
            yield scored[keep]

    return run


def _segment_column(settings: Mapping[str, Any], customers: int) -> "Column":
    """:func:`clvmodel.segments.assign_segments` as one Spark expression over all scored rows (a model without boundaries).

    A customer's share is ``rank / n`` with the rank from one global order: predicted CLV
    descending (missing last, as numpy's argsort puts NaN), ties broken by ``customer_id``
    ascending. The local engine breaks ties by input order, which is the same order whenever its
    input is sorted by customer id (as :func:`clvmodel.rfm.summarise` returns it). ``n`` is
    known from the validation pass, so the window only keeps a running row number (it streams
    through its one sorted partition instead of buffering it).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    clv = F.col("predicted_clv")
    order = Window.orderBy((clv.isNull() | F.isnan(clv)).asc(), clv.desc(), F.col("customer_id").asc())
    rank = F.row_number().over(order)
    # double / double, as numpy's arange(1, n + 1) / n: the same IEEE quotient, the same comparisons.
    share = rank.cast("double") / F.lit(float(customers))
    p_alive = F.col("p_alive")
    return (
        F.when(p_alive < float(settings["lost_below"]), "lost")
        .when(p_alive < float(settings["at_risk_below"]), "at_risk")
        .when((rank == 1) | (share <= float(settings["vip_share"])), "VIP")
        .when(share <= float(settings["high_share"]), "high")
        .when(share <= float(settings["medium_share"]), "medium")
        .otherwise("low")
    )


def score(
    spark_df: "DataFrame",
    model: "TrainedModel",
    *,
    horizon: int | None = None,
    discount_rate: float | None = None,
    margin: float | None = None,
) -> "DataFrame":
    """Score every customer of an RFM frame; the Spark counterpart of :func:`clvmodel.predict.score`.

    Parameters
    ----------
    spark_df
        RFM rows in the model's time unit (``customer_id, frequency, recency, T[,
        monetary_value]``; other columns are ignored), e.g. from :func:`rfm`.
    model
        A trained model (:func:`clvmodel.artifact.load`).
    horizon, discount_rate, margin
        Override the model's CLV settings, as in :func:`clvmodel.predict.score`.

    Returns
    -------
    pyspark.sql.DataFrame
        :data:`SCORE_SCHEMA`: the columns of :data:`clvmodel.predict.OUTPUT_COLUMNS`, one row per
        customer, every value equal to the local engine's; row order is not defined (sort by
        ``customer_id`` when it matters). Segments are those of :func:`clvmodel.predict.score`:
        against the boundaries the model fixed at training, in each batch; for a model saved
        before them, ranked across all customers with ties in predicted CLV broken by
        ``customer_id`` (:func:`_segment_column`). The local
        engine's optional columns (per-period values, bootstrap intervals, the scikit-learn
        challenger's forecasts) are not produced here.

    Raises
    ------
    ClvError
        The checks of :func:`clvmodel.customers.validate_rfm` (one pass over the frame, eager) and
        invalid horizon, discount rate or margin.
    """
    from clvmodel.predict import OUTPUT_COLUMNS, _check_options  # noqa: PLC2701 - same checks, same messages

    customers = _validate_rfm(spark_df, "input")
    _check_options(
        model.clv["horizon"] if horizon is None else horizon,
        float(model.clv["discount_rate"] if discount_rate is None else discount_rate),
        float(model.clv["margin"] if margin is None else margin),
    )
    columns = ["customer_id", "frequency", "recency", "T"] + (["monetary_value"] if "monetary_value" in spark_df.columns else [])
    document = json.dumps(model.to_document(), allow_nan=False)
    fixed = model.segment_boundaries is not None
    schema = SCORE_SCHEMA if fixed else SCORE_SCHEMA.replace(" segment string,", "")
    with _quiet_pandas3():
        scored = spark_df.select(*columns).mapInPandas(
            _batch_scorer(document, columns, horizon, discount_rate, margin), schema=schema
        )
    if fixed:  # labelled in the batches against the boundaries fixed at training: no global sort
        return scored.select(*OUTPUT_COLUMNS)
    return scored.withColumn("segment", _segment_column(model.segments, customers)).select(*OUTPUT_COLUMNS)


def score_transactions(
    spark: "SparkSession",
    transactions_df: "DataFrame",
    model: "TrainedModel",
    *,
    as_of: dt.date | None = None,
    horizon: int | None = None,
    discount_rate: float | None = None,
    margin: float | None = None,
) -> "DataFrame":
    """Summarise transactions as of a date and score them, as ``clvmodel score`` does for a transaction file.

    Customers whose first purchase comes after ``as_of`` keep a row with status
    ``first_purchase_after_as_of`` and empty forecasts (never silently dropped), as in
    :func:`clvmodel.predict.read_input`; ``as_of`` defaults to the last transaction day (then
    there are none). ``horizon``, ``discount_rate`` and ``margin`` are :func:`score`'s.
    """
    from pyspark.sql import functions as F

    summary = rfm(spark, transactions_df, time_unit=model.time_unit, observation_end=as_of)
    scored = score(summary, model, horizon=horizon, discount_rate=discount_rate, margin=margin)
    if as_of is None:
        return scored
    late = (
        transactions_df.groupBy("customer_id")
        .agg(F.min("day").alias("first_day"))
        .where(F.col("first_day") > F.lit(as_of))
        .select("customer_id", F.lit("first_purchase_after_as_of").alias("status"))
    )
    return scored.unionByName(late, allowMissingColumns=True)
