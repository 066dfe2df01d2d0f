"""One pipeline per kind of data, chosen once: from the config to train, from the model to score.

The kinds are the registry's (:data:`clvmodel.models.registry.DATA_KINDS`): a transaction log and
a published RFM summary share :func:`clvmodel.train.train` (which reads each its own way and then
fits, evaluates, saves and tracks alike) and score RFM rows with :func:`clvmodel.predict.score`;
subscriptions have :func:`clvmodel.subscription.train` and score renewals with
:func:`clvmodel.subscription.score_subscribers`. :func:`for_config` and :func:`for_model` are the
only places that choose: the CLI, the REST server and the MLflow pyfunc ask them and call what they
get, with no test of a model name or a config section of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from clvmodel import report
from clvmodel.artifact import TrainedModel
from clvmodel.config import Config
from clvmodel.errors import ClvError

__all__ = ["Pipeline", "PIPELINES", "for_config", "for_model"]


def _train_summary(config: Config, *, track: bool | None = None, source: Any = None) -> Any:
    from clvmodel.train import train

    return train(config, track=track, source=source)


def _train_subscriptions(config: Config, *, track: bool | None = None, source: Any = None) -> Any:
    from clvmodel.subscription import train

    if source is not None:  # a Spark source summarises transactions; renewals are read here
        raise ClvError("a subscriptions config trains on this machine only; run it without --engine spark")
    return train(config, track=track)


_NAMES = ("params.horizon", "params.discount_rate", "params.annual_discount_rate")


def valuation(model: TrainedModel, params: dict[str, Any]) -> Any:
    """The horizon and per-period rate a request's ``params`` ask for on ``model``, with the model's
    own for what they leave out (:func:`clvmodel.units.resolve`; ``horizon`` may carry a unit,
    ``"3 years"``, and ``annual_discount_rate`` stands for a per-period ``discount_rate``)."""
    from clvmodel.units import defaults_of, resolve

    horizon = None if model.subscription else params.get("horizon")
    return resolve(model.time_unit, horizon, params.get("discount_rate"), params.get("annual_discount_rate"),
                   defaults=defaults_of(model), names=_NAMES)


def settled(model: TrainedModel, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the horizon in whole periods and the discount rate per period (none given: as is)."""
    if all(params.get(k) is None for k in ("horizon", "discount_rate", "annual_discount_rate")):
        return params
    used = valuation(model, params)
    out = {k: v for k, v in params.items() if k != "annual_discount_rate"}
    out["discount_rate"] = used.discount_rate
    if not model.subscription:
        out["horizon"] = used.periods
    return out


#: The history columns of an RFM row; a request with none of them asks for new customers.
_HISTORY = ("frequency", "recency", "T")


def _new_customer_columns(model: TrainedModel) -> set[str]:
    """The columns a new customer's row may have: its id, a channel and the model's covariates."""
    state = model.acquisition
    named = {"customer_id", "channel"}
    if state is not None:
        named |= set(state.covariates) | ({state.channel} if state.channel else set())
    return named


def _score_summary(model: TrainedModel, rows: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """RFM rows -> :func:`clvmodel.predict.score`; rows with no history at all and nothing but an id,
    a channel and covariates -> :func:`_score_new_customers`. A row with any other column (a
    misspelt ``Frequency``, say) is an RFM row, and the scorer names what it misses."""
    columns = {str(c) for c in rows.columns}
    if not columns & set(_HISTORY) and columns <= _new_customer_columns(model):
        return _score_new_customers(model, rows, params)
    from clvmodel.predict import score

    params = settled(model, params)
    return score(model, rows, horizon=params.get("horizon"), discount_rate=params.get("discount_rate"),
                 margin=params.get("margin"))


def _score_new_customers(model: TrainedModel, rows: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Each row's acquisition value (:func:`clvmodel.acquisition.acquisition_table`): a customer not
    acquired yet, described by ``channel`` and/or the model's covariates (``customer_id`` is passed
    through); intervals as the model's ``intervals`` config sets them for scores."""
    from clvmodel.acquisition import acquisition_table

    intervals = model.config.get("intervals") or {}
    params = settled(model, params)
    return acquisition_table(model, rows, horizon=params.get("horizon"), discount_rate=params.get("discount_rate"),
                             margin=params.get("margin"), level=float(intervals.get("level", 0.9)),
                             draws=int(intervals.get("draws", 1000)), seed=int(intervals.get("seed", 0)),
                             origin="new customers")


def _score_subscriptions(model: TrainedModel, rows: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    from clvmodel.subscription import score_subscribers

    params = settled(model, params)
    return score_subscribers(model, rows, discount_rate=params.get("discount_rate"), margin=params.get("margin"))


@dataclass(frozen=True)
class Pipeline:
    """What one kind of data does at each stage.

    Attributes
    ----------
    kind
        ``transactions``, ``rfm`` or ``subscriptions``.
    train
        ``train(config, *, track=None, source=None) -> result``: fit, evaluate, save and
        (optionally) track; ``source`` is where the summary comes from (:mod:`clvmodel.prepared`;
        ``None``: this machine).
    render
        The text ``clvmodel train`` prints for that result.
    score
        ``score(model, rows, params) -> frame``: one row per input row; ``params`` are the
        request's overrides (``horizon``, ``discount_rate`` or ``annual_discount_rate``, ``margin``;
        ``None`` for the model's; see :func:`settled`).
        For transactions and RFM models, rows with none of ``frequency, recency, T`` are new
        customers and get their acquisition value (:mod:`clvmodel.acquisition`).
    inputs
        The columns a scoring request names (the model's signature), optional ones last.
    params
        The overrides a scoring request may give, with their types (``object``: a horizon, a
        number or text such as ``"3 years"``).
    """

    kind: str
    train: Callable[..., Any]
    render: Callable[[Any], str]
    score: Callable[[TrainedModel, pd.DataFrame, dict[str, Any]], pd.DataFrame]
    inputs: tuple[str, ...]
    params: dict[str, type]


_SUMMARY_INPUTS = ("customer_id", "frequency", "recency", "T", "monetary_value")
#: ``object``: a horizon, a whole number of periods or text with a unit (``"3 years"``).
_SUMMARY_PARAMS = {"horizon": object, "discount_rate": float, "annual_discount_rate": float, "margin": float}

PIPELINES: dict[str, Pipeline] = {
    "transactions": Pipeline("transactions", _train_summary, report.render_train, _score_summary, _SUMMARY_INPUTS, _SUMMARY_PARAMS),
    "rfm": Pipeline("rfm", _train_summary, report.render_train, _score_summary, _SUMMARY_INPUTS, _SUMMARY_PARAMS),
    "subscriptions": Pipeline("subscriptions", _train_subscriptions, report.render_subscription,
                              _score_subscriptions, ("customer_id", "renewals"),
                              {"discount_rate": float, "annual_discount_rate": float, "margin": float}),
}


def for_config(config: Config) -> Pipeline:
    """The pipeline of a validated config (its ``kind``: the data or subscriptions section it has)."""
    return PIPELINES[config.kind]


def for_model(model: TrainedModel) -> Pipeline:
    """The pipeline that scores a trained model: the subscriptions one for a retention model."""
    if model.subscription:
        return PIPELINES["subscriptions"]
    data = (model.config or {}).get("data") or {}
    return PIPELINES["rfm" if data.get("format") == "rfm" else "transactions"]
