"""Training's channel stage: what the model keeps to value a new customer of each channel.

From the calibration summary, the customer table (:mod:`clvmodel.attributes`) and each customer's
first purchase day, :func:`acquisition_state` builds the :class:`~clvmodel.models.channels.AcquisitionState`
saved in the model: per channel the customers acquired, their mean first order, a spend model of
their own when they have at least :data:`~clvmodel.models.channels.MIN_REPEAT_CUSTOMERS` repeat
customers (the pooled Gamma-Gamma otherwise, said in the run's notes) and their covariate mix; and
which purchase model forecasts a new customer's purchases (:func:`new_customer_model`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from clvmodel.errors import ClvError, ConvergenceFailure
from clvmodel.models import FittedModel, ModelData, registry
from clvmodel.models.channels import MIN_REPEAT_CUSTOMERS, AcquisitionState, ChannelState

__all__ = ["acquisition_state", "new_customer_model", "first_orders_sql", "first_orders_series"]


def first_orders_sql(days: str = "days") -> str:
    """Each customer's first purchase day's amount (same-day rows summed), from the customer-day table.

    DuckDB and Spark SQL alike: ``min_by`` is DuckDB's ``arg_min`` under the name both engines
    know, and a customer has one row per day, so the first day's amount is never a tie. The two
    differ on a NULL amount (DuckDB skips to the next day's, Spark returns NULL); none reaches
    here, as both loads refuse or count missing amounts and keep only ``amount >= 0``.

    Parameters
    ----------
    days
        The per-customer-day relation (``customer_id, day, amount``) as the engine names it: an
        internal table (DuckDB's ``days``) or view (Spark's uuid temporary view), never a user's
        text, so it is not quoted (DuckDB's quotes would be a string on Spark).

    Returns
    -------
    str
        A query of rows ``customer_id, first_order`` (DOUBLE of the exact decimal day total), one
        per customer of ``days``.
    """
    return f"SELECT customer_id, CAST(min_by(amount, day) AS DOUBLE) AS first_order FROM {days} GROUP BY customer_id"


def first_orders_series(rows: pd.DataFrame) -> pd.Series:
    """The rows of :func:`first_orders_sql` as every engine hands them on: DOUBLE first-day amounts
    indexed by the text ``customer_id``.

    Parameters
    ----------
    rows
        ``customer_id, first_order``, one row per customer, as fetched to pandas.

    Returns
    -------
    pandas.Series
        ``first_order`` by ``customer_id`` (text, as the summary's ids).
    """
    return pd.Series(rows["first_order"].to_numpy(dtype=float), index=rows["customer_id"].astype(str))


def new_customer_model(fitted: dict[str, FittedModel], primary: str | None) -> str | None:
    """The purchase model that forecasts a new customer: the primary's covariate variant when it
    was fitted (and converged), else the first converged covariate model, else the primary.

    A covariate model is preferred because only it tells channels (or other profiles) apart; the
    primary's own variant keeps the forecast the same kind of model as the remaining CLV's.
    """
    def converged(name: str) -> bool:
        return name in fitted and getattr(fitted[name], "status_", "converged") == "converged"

    variant = registry.covariate_variant(primary) if primary else None
    if variant and converged(variant):
        return variant
    covariate = [n for n in fitted if registry.family(n).covariates and converged(n)]
    return covariate[0] if covariate else primary


def acquisition_state(
    summary: pd.DataFrame,
    frame: pd.DataFrame,
    first_orders: pd.Series | None,
    fitted: dict[str, FittedModel],
    *,
    channel: str | None,
    covariates: list[str],
    design: Any,
    purchase_model: str,
    time_unit: str,
) -> tuple[AcquisitionState, list[str]]:
    """The per-channel state and the notes for the run's report.

    Parameters
    ----------
    summary
        The calibration summary (``customer_id, frequency, monetary_value``, ...).
    frame
        :attr:`clvmodel.attributes.Customers.frame`, aligned with ``summary``'s rows.
    first_orders
        First purchase day's amount by ``customer_id`` (text), or ``None`` without amounts.
    fitted
        The run's fitted models (the pooled spend model among them, if any).
    """
    notes: list[str] = []
    spend_names = [n for n in fitted if registry.family(n).role == "spend"]
    spend_name = spend_names[0] if spend_names else None
    channels: dict[str, ChannelState] = {}
    labels = frame["channel"].astype(str).to_numpy()
    ids = summary["customer_id"].astype(str)
    first = ids.map(first_orders).to_numpy(dtype=float) if first_orders is not None else None
    own: list[str] = []
    for label in sorted(set(labels)):
        mask = labels == label
        rows = summary.loc[mask]
        repeat = int((rows["frequency"] > 0).sum())
        first_value = float(np.mean(first[mask])) if first is not None and np.isfinite(first[mask]).all() else None
        spend = None
        if spend_name is not None and repeat >= MIN_REPEAT_CUSTOMERS:
            spend, why = _channel_spend(spend_name, rows, time_unit)
            if spend is None:
                notes.append(f"channel {label}: its own spend model is not used ({why}); its spend is the pooled model's")
            else:
                own.append(label)
        profiles = design.profiles(frame.loc[mask]) if design is not None else [({}, 1.0)]
        channels[label] = ChannelState(int(mask.sum()), repeat, first_value, spend, profiles)
    if spend_name is not None:
        pooled = [c for c in channels if c not in own]
        if pooled:
            notes.append(
                f"spend per channel: {', '.join(own) or 'no channel'} with its own Gamma-Gamma; "
                f"{', '.join(pooled)} pooled (fewer than {MIN_REPEAT_CUSTOMERS} repeat customers)"
            )
    state = AcquisitionState(channel=channel, covariates=list(covariates), purchase_model=purchase_model,
                             min_repeat_customers=MIN_REPEAT_CUSTOMERS, channels=channels)
    return state, notes


def _channel_spend(name: str, rows: pd.DataFrame, time_unit: str) -> tuple[Any, str]:
    """The channel's own spend model, or ``(None, why)`` when its fit fails, is not a converged
    optimum, or warns that the data do not identify it: the pooled model is the better estimate
    of the channel's mean spend then (and its bootstrap would overflow on the unidentified one)."""
    model = registry.family_class(name)()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(ModelData(summary=rows.reset_index(drop=True), time_unit=time_unit))
        except (ClvError, ConvergenceFailure, ArithmeticError, ValueError, np.linalg.LinAlgError) as err:
            return None, str(err).split(";")[0][:160]
    if model.status_ != "converged":
        return None, f"its fit is a {model.status_}"
    # The correlation warning concerns the pooled model's assumption as much as the channel's: kept.
    said = [str(w.message) for w in caught if issubclass(w.category, UserWarning) and "do not identify" in str(w.message)]
    if said:
        return None, said[0].split(";")[0][:160]
    return model, ""


def channel_tables(
    trained: Any,
    summary: pd.DataFrame,
    frame: pd.DataFrame,
    scores: pd.DataFrame,
    observed: pd.DataFrame | None,
    *,
    level: float,
    draws: int,
    seed: int,
) -> dict[str, pd.DataFrame]:
    """The run's channel tables: the acquisition value beside the remaining CLV, the cohort curves
    (observed and the model's) and, with a holdout, predicted vs actual repeat purchases by channel.

    ``acquisition.csv`` puts a new customer's value (first order included, from ``t = 0``) next to
    ``remaining_clv_mean``, the mean remaining CLV of the channel's customers already in the base
    (their next ``H`` periods, after their history): two different numbers, and only the first is
    what a CAC buys.
    """
    from clvmodel import acquisition, cohorts

    state = trained.acquisition
    table = acquisition.acquisition_table(trained, level=level, draws=draws, seed=seed)
    remaining = pd.Series(scores["predicted_clv"].to_numpy(dtype=float)).groupby(frame["channel"].to_numpy()).mean()
    table.insert(table.columns.get_loc("acquisition_value") + 1, "remaining_clv_mean",
                 table["channel"].map(remaining).to_numpy(dtype=float))
    out = {"acquisition.csv": table}
    if observed is not None:
        periods = int(observed["period"].max())

        def purchases(channel: str, k: np.ndarray) -> np.ndarray:
            mix = state.channels[channel].profiles or [({}, 1.0)]
            return sum(share * acquisition.new_customer_purchases(trained, values or None, k) for values, share in mix)

        values = table[["channel", "first_order_value", "expected_order_value"]]
        values = values[values["channel"].isin(list(state.channels))]
        expected = cohorts.expected_cohort_curves(purchases, values, periods, float(trained.clv["margin"]))
        out["cohort_curves.csv"] = observed.merge(
            expected, on=["channel", "period"], how="left", suffixes=("", "_model"), validate="1:1"
        )
    if "frequency_holdout" in summary.columns:
        # The new-customer model's forecast: a covariate model at each customer's own covariates.
        model = trained.models[state.purchase_model]
        duration = float(summary["duration_holdout"].iloc[0])
        x, tx, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
        design = getattr(model, "design_", None)
        extra = {"covariates": summary[design.columns].to_numpy(dtype=float)} if design is not None else {}
        out["holdout_by_channel.csv"] = cohorts.holdout_by_channel(
            summary, frame[["customer_id", "channel"]], model.expected_purchases(x, tx, T, t=duration, **extra)
        ).assign(model=state.purchase_model)
    return out
