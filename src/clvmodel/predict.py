"""Score customers with a trained model: one forecast row per input customer.

Input is either an RFM table (``customer_id, frequency, recency, T[, monetary_value]`` in the
model's time unit) or a transaction log (read with the model's column mapping and summarised as of
a date). Output, one row per input customer, in this order::

    customer_id, frequency, recency, T, monetary_value, p_alive, expected_purchases,
    expected_order_value, predicted_clv, historical_clv, segment, status

* ``predicted_clv``: discounted CLV over the horizon from BG/NBD (+ Gamma-Gamma), see
  :mod:`clvmodel.clv`; the historical formula's value when the model has no BG/NBD.
* ``historical_clv``: the historical formula, see :mod:`clvmodel.models.historical`.
* ``segment``: ``lost`` when P(alive) < ``segments.lost_below``, else ``at_risk`` when below
  ``segments.at_risk_below`` (risk first: a valuable customer slipping away needs action more
  than a tier label); the others are tiered by predicted CLV (at the model's own ``clv``
  settings) against the boundaries the model fixed at training, the lowest CLV of its training
  customers' top ``vip_share`` (``VIP``, 1 %), ``high_share`` (``high``, 20 %) and
  ``medium_share`` (``medium``, 50 %), else ``low``; each customer on its own, so the label does
  not depend on the batch (:mod:`clvmodel.segments`; a model saved before the boundaries ranks
  within the batch).
* ``status``: ``ok``, or why a customer could not be scored (``first_purchase_after_as_of``);
  such a customer keeps its row with empty forecasts — never silently dropped.

Optional columns follow: ``expected_purchases_lower/upper`` and ``predicted_clv_lower/upper``
(parametric-bootstrap intervals, :mod:`clvmodel.uncertainty`); ``challenger_purchases`` and
``challenger_spend`` when the model has a scikit-learn challenger and the input is a transaction
log (it needs the transactions, not just RFM), scaled from its training window to the horizon.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clvmodel import clv
from clvmodel.artifact import TrainedModel
from clvmodel.customers import RFM_COLUMNS, validate_rfm  # noqa: F401 - re-exported (public names)
from clvmodel.errors import ClvError
from clvmodel.segments import SEGMENTS, assign_segments  # noqa: F401 - re-exported (public names)
from clvmodel.segments import _segment_codes, fit_boundaries, fixed_codes  # noqa: PLC2701 - score assigns the segments

# Defined here before customers.py and segments.py were split off, so still importable from here:
# RFM_COLUMNS, validate_rfm, assign_segments and SEGMENTS.

__all__ = ["OUTPUT_COLUMNS", "RFM_COLUMNS", "ScoreInput", "score", "fix_segment_boundaries", "assign_segments", "validate_rfm", "read_input"]

OUTPUT_COLUMNS = [
    "customer_id",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "p_alive",
    "expected_purchases",
    "expected_order_value",
    "predicted_clv",
    "historical_clv",
    "segment",
    "status",
]


@dataclass
class ScoreInput:
    """Customers to score, as RFM rows, with where they came from."""

    rfm: pd.DataFrame
    kind: str  # "rfm" or "transactions"
    as_of: dt.date | None = None
    unscorable: dict[str, str] | None = None  # customer_id -> status
    ignored_transactions: int = 0  # transactions after as_of, not used
    #: The challenger's purchases and spend over its training window, per customer (transactions only).
    challenger: pd.DataFrame | None = None



def _number(value: Any, name: str, example: str) -> float:
    """``value`` as a finite float, or a one-line :class:`ClvError` naming the option."""
    from clvmodel.config import excerpt

    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = None
    if isinstance(value, bool) or number is None or not math.isfinite(number):
        raise ClvError(f"{name} must be a finite number, got {excerpt(value)}; use e.g. {example}")
    return number


def _check_options(
    horizon: Any = None, discount_rate: Any = None, margin: Any = None, *, time_unit: str | None = None
) -> None:
    """Refuse a CLV option that is not a finite number in range, whoever passes it.

    The one place the options of every path meet: the CLI (before anything is read or written),
    the Python API and the REST server (through :func:`score`). NaN compares false with every
    bound, so finiteness is checked first: a NaN discount rate scored every customer NaN, labelled
    VIP. The horizon is at most 100 years (:data:`clvmodel.config.MAX_HORIZON`, in ``time_unit``
    when known, else the bound in days): its cost grows with it (10^9 periods was a MemoryError).
    ``None`` means "not given" and is not checked.

    Raises
    ------
    ClvError
        One line naming the option, the value given and a valid example.
    """
    from clvmodel.config import MAX_HORIZON, horizon_message

    if horizon is not None:
        number = _number(horizon, "horizon", "39 (periods of the model's time unit)")
        if not number.is_integer() or number <= 0:
            raise ClvError(
                f"horizon must be a whole number of periods > 0, got {horizon}; use e.g. 39 (periods of the model's "
                "time unit)"
            )
        if number > MAX_HORIZON.get(time_unit or "day", MAX_HORIZON["day"]):
            raise ClvError(horizon_message(horizon, time_unit))
    if discount_rate is not None and _number(discount_rate, "discount rate", "0.01 per period") < 0:
        raise ClvError(
            f"discount rate must be >= 0 per period, got {discount_rate}; use 0 for none, e.g. 0.01 per period"
        )
    if margin is not None and not 0 < _number(margin, "margin", "0.3") <= 1:
        raise ClvError(
            f"margin must be in (0, 1], got {margin}; use the share of revenue kept, e.g. 0.3 (1 when the amounts "
            "are already margin)"
        )


def score(
    model: TrainedModel,
    customers: pd.DataFrame | ScoreInput,
    *,
    horizon: int | None = None,
    discount_rate: float | None = None,
    margin: float | None = None,
    per_period: bool = False,
    interval_level: float | None = None,
    interval_draws: int | None = None,
) -> pd.DataFrame:
    """Forecast every customer; see the module docstring for the columns.

    Parameters
    ----------
    model
        A trained model (:func:`clvmodel.load_model`).
    customers
        RFM rows in the model's time unit, or a :class:`ScoreInput` from :func:`read_input`.
    horizon, discount_rate, margin
        Override the model's CLV settings (horizon in whole periods of the model's time unit).
    per_period
        Add ``period_1..period_H``: each period's discounted expected value (BG/NBD models).
    interval_level, interval_draws
        Parametric-bootstrap intervals (:mod:`clvmodel.uncertainty`) as ``expected_purchases_lower``
        / ``_upper`` and ``predicted_clv_lower`` / ``_upper``; defaults from the model's
        ``intervals`` config (90 %, 1,000 draws, seeded); 0 draws adds no interval columns.

    Returns
    -------
    pandas.DataFrame
        Exactly one row per input customer, in input order.
    """
    source = customers if isinstance(customers, ScoreInput) else ScoreInput(validate_rfm(customers), "rfm")
    horizon = model.clv["horizon"] if horizon is None else horizon
    discount_rate = model.clv["discount_rate"] if discount_rate is None else discount_rate
    margin = model.clv["margin"] if margin is None else margin
    # Before any float(): the model's own values are checked too (a document saying null).
    _check_options(horizon, discount_rate, margin, time_unit=getattr(model, "time_unit", None))
    discount_rate, margin = float(discount_rate), float(margin)
    horizon = int(horizon)
    rfm = source.rfm.reset_index(drop=True)
    has_spend = "monetary_value" in rfm.columns
    if not has_spend:
        rfm = rfm.assign(monetary_value=np.nan)
    # The output is assembled once, at the end, from these columns: no frame is copied or
    # widened column by column on the way.
    columns: dict[str, Any] = {c: rfm[c] for c in ("customer_id", "frequency", "recency", "T", "monetary_value")}
    monetary = rfm["monetary_value"].fillna(0.0)
    filled = clv.frame_of({**columns, "monetary_value": monetary}, rfm.index)

    values, forecast = _values(model, rfm, filled, has_spend, horizon, discount_rate, margin, per_period=per_period)
    columns.update(values)
    extra: list[pd.DataFrame] = []
    if forecast is not None:
        settings = model.config.get("intervals") or {}
        draws = int(settings.get("draws", 1000) if interval_draws is None else interval_draws)
        level = float(settings.get("level", 0.9) if interval_level is None else interval_level)
        if not 0 < level < 1 or draws < 0:
            raise ClvError(f"interval level must be in (0, 1) and draws >= 0, got {level} and {draws}")
        if draws:
            from clvmodel.uncertainty import interval_columns

            extra.append(interval_columns(
                model, filled, forecast, horizon=horizon, margin=margin, level=level, draws=draws,
                seed=int(settings.get("seed", 0)),
            ))
        if per_period:
            extra.append(forecast.filter(like="period_"))
        if not has_spend and model.spend_model is None:  # no amounts: no value, nor bounds on it
            for frame in extra:
                for column in [c for c in frame.columns if c.startswith(("predicted_clv_", "period_"))]:
                    frame[column] = np.nan
    p_alive = np.asarray(columns["p_alive"], dtype=float)
    boundaries = getattr(model, "segment_boundaries", None)
    if boundaries is not None:
        # Against the boundaries fixed at training, at the model's own horizon, discount rate and
        # margin (those the boundaries were computed at), whatever the value columns were asked at.
        basis = values
        if (horizon, discount_rate, margin) != _model_settings(model):
            basis, _ = _values(model, rfm, filled, has_spend, *_model_settings(model), per_period=False)
        codes = fixed_codes(basis["predicted_clv"], basis["expected_purchases"], p_alive, model.segments, boundaries)
    else:
        # A model saved before the boundaries were fixed: ranked within the batch, as it was trained
        # to (on CLV; where a customer has no value, on expected purchases), the rule of the
        # streamed scorer's SQL (:func:`clvmodel.batch.segment_sql`) and Spark's window.
        clv_values = np.asarray(columns["predicted_clv"], dtype=float)
        rank_on = np.where(np.isnan(clv_values), np.asarray(columns["expected_purchases"], dtype=float), clv_values)
        codes = _segment_codes(rank_on, p_alive, model.segments, rfm["customer_id"].to_numpy())
    columns["segment"] = _text_column(SEGMENTS, codes)
    columns["status"] = _text_column(("ok",), np.zeros(len(rfm), dtype=np.int8))
    if source.challenger is not None and model.challenger is not None:
        factor = model.challenger.horizon_factor(horizon)
        aligned = rfm[["customer_id"]].merge(source.challenger, on="customer_id", how="left", validate="1:1")
        extra.append(pd.DataFrame({"challenger_purchases": aligned["purchases"].to_numpy() * factor,
                                   "challenger_spend": aligned["spend"].to_numpy() * factor}, index=rfm.index))
    out = clv.frame_of({c: columns[c] for c in OUTPUT_COLUMNS}, rfm.index)
    if extra:
        out = pd.concat([out, *extra], axis=1)
    if source.unscorable:
        refused = pd.DataFrame({"customer_id": list(source.unscorable), "status": list(source.unscorable.values())})
        out = pd.concat([out, refused.reindex(columns=out.columns)], ignore_index=True)
    return out


def fix_segment_boundaries(
    model: TrainedModel,
    customers: pd.DataFrame,
    *,
    weights: np.ndarray | None = None,
    scores: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Fix ``model.segment_boundaries`` on its training customers; return their scores, labelled by them.

    The boundaries (:func:`clvmodel.segments.fit_boundaries`) are the training customers' predicted
    CLV (and expected purchases) at the model's own ``clv`` settings at the tier shares of
    ``model.segments``; :func:`clvmodel.train.train` calls this, and so can a model built by hand.

    Parameters
    ----------
    customers
        The training customers' RFM rows (as :func:`score` takes them).
    weights
        Customers each row stands for (a published summary's ``weights``); default one each.
    scores
        ``score(model, customers)`` at the model's settings, when already computed (training has it).
    """
    if scores is None:
        model.segment_boundaries = None  # the rows' own values, not labels from boundaries set before
        scores = score(model, customers, interval_draws=0)
    ok = (scores["status"] == "ok").to_numpy()
    clv_values = scores["predicted_clv"].to_numpy(dtype=float)
    purchases = scores["expected_purchases"].to_numpy(dtype=float)
    model.segment_boundaries = fit_boundaries(
        clv_values[ok], purchases[ok], model.segments, None if weights is None else np.asarray(weights, dtype=float)[ok]
    )
    codes = fixed_codes(clv_values[ok], purchases[ok], scores["p_alive"].to_numpy(dtype=float)[ok], model.segments,
                        model.segment_boundaries)
    labelled = scores.copy()
    labelled.loc[ok, "segment"] = np.array(SEGMENTS, dtype=object)[codes]
    return labelled


def _model_settings(model: TrainedModel) -> tuple[int, float, float]:
    """The model's own horizon, discount rate and margin: those its segment boundaries are at."""
    return int(model.clv["horizon"]), float(model.clv["discount_rate"]), float(model.clv["margin"])


def _values(
    model: TrainedModel,
    rfm: pd.DataFrame,
    filled: pd.DataFrame,
    has_spend: bool,
    horizon: int,
    discount_rate: float,
    margin: float,
    *,
    per_period: bool,
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """``historical_clv, p_alive, expected_purchases, expected_order_value, predicted_clv`` at these
    settings, and the purchase model's forecast frame (``None`` without a purchase model)."""
    monetary = filled["monetary_value"]
    columns: dict[str, Any] = {}
    historical = model.historical_model
    if historical is not None:
        columns["historical_clv"] = historical.clv(
            rfm["frequency"], rfm["T"], monetary, horizon=horizon, discount_rate=discount_rate, margin=margin
        )
    else:
        columns["historical_clv"] = np.full(len(rfm), np.nan)
    if model.purchase_model is None:
        columns["p_alive"] = np.full(len(rfm), np.nan)
        columns["expected_purchases"] = historical.expected_purchases(rfm["frequency"], rfm["recency"], rfm["T"], t=horizon)
        columns["expected_order_value"] = historical.order_value(rfm["frequency"], monetary)
        columns["predicted_clv"] = columns["historical_clv"]
        return columns, None
    forecast = clv.forecast(
        model.purchase_model,
        model.spend_model,
        filled,
        horizon=horizon,
        discount_rate=discount_rate,
        margin=margin,
        per_period=per_period,
    )
    if not has_spend and model.spend_model is not None:
        # No spend history given: the population mean order value for everyone, eq. (5) at x = 0.
        population = model.spend_model.population_mean
        ratio = population / forecast["expected_order_value"].replace(0, np.nan)
        forecast["predicted_clv"] = forecast["predicted_clv"] * ratio.fillna(0)
        forecast["expected_order_value"] = population
    for column in ("p_alive", "expected_purchases", "expected_order_value", "predicted_clv"):
        columns[column] = forecast[column].to_numpy()
    if not has_spend and model.spend_model is None:
        # No amounts anywhere (a summary of counts, such as the donations data): the value of a
        # purchase is unknown, not 0. Segments then go by expected purchases.
        columns["expected_order_value"] = np.full(len(rfm), np.nan)
        columns["predicted_clv"] = np.full(len(rfm), np.nan)
    return columns, forecast


def _text_column(labels: tuple[str, ...], codes: np.ndarray) -> Any:
    """``labels[codes]`` stored as pandas stores a column of Python strings, without making them.

    That is the ``str`` dtype (Arrow) from pandas 3 on, built here by one Arrow ``take``
    (converting a million Python strings costs ~80 ms), and ``object`` before.
    """
    dtype = pd.Series(np.array(labels[:1], dtype=object)).dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        import pyarrow as pa

        return pd.array(pa.array(labels).take(pa.array(codes)), dtype=dtype)
    return np.array(labels, dtype=object)[codes]


def read_input(
    model: TrainedModel, path: str | Path, *, as_of: dt.date | None = None, reading: dict | None = None
) -> ScoreInput:
    """Read a customer file into memory: an RFM table, or a transaction log summarised as of ``as_of``.

    The kind is told from the columns by :func:`clvmodel.inputs.plan_input` (the streaming scorer
    uses the same plan); customers whose first purchase comes after ``as_of`` are kept with a
    status. ``path`` may be ``bundled:NAME``; ``reading`` overrides the model's reading rules
    (:func:`clvmodel.inputs.reading_rules`: ``columns``, ``delimiter``, ``date_format``).
    """
    from clvmodel import io
    from clvmodel.inputs import plan_input

    con = io.connect()
    try:
        plan = plan_input(model, path, con, as_of=as_of, reading=reading)
        rows = con.sql(plan.query).df()
        late = con.sql(f"{plan.late_query} ORDER BY 1").fetchall() if plan.late_query else []
    finally:
        con.close()
    rows["customer_id"] = rows["customer_id"].astype(object)
    if plan.kind == "rfm":
        rows = validate_rfm(rows, origin=str(path))
    return ScoreInput(
        rows,
        plan.kind,
        plan.as_of,
        {row[0]: "first_purchase_after_as_of" for row in late},
        plan.ignored_transactions,
        plan.challenger,
    )
