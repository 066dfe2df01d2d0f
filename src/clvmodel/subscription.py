"""Subscription (contractual) CLV: the sBG pipeline a ``models: [sbg]`` config describes.

Fit the shifted-beta-geometric model (Fader & Hardie 2007) on cohort survivor counts or on a
subscriptions file, project survival against any held-out periods, value subscribers with the
discounted expected residual lifetime (Fader & Hardie 2010), and save and track the model like
every other config. Subscription CLV = fee × margin × DERL; the value of a customer about to be
acquired counts the first payment too: fee × margin × (1 + DERL(0) / (1 + d)).

Scoring (``clvmodel score`` on an sBG model) takes ``customer_id, renewals`` (renewals made by an
active subscriber) and returns ``customer_id, renewals, retention_rate`` (probability of the next
renewal), ``expected_residual_lifetime`` (DERL), ``predicted_clv``, ``status``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure

from clvmodel import evaluate, plots
from clvmodel.artifact import TrainedModel
from clvmodel.config import Config, flatten
from clvmodel.errors import ClvError
from clvmodel.models import ModelData, registry
from clvmodel.models.sbg import ShiftedBetaGeometric, durations_from_subscriptions, projection_table

__all__ = ["SubscriptionResult", "train", "score_subscribers", "SCORE_COLUMNS"]

SCORE_COLUMNS = ["customer_id", "renewals", "retention_rate", "expected_residual_lifetime", "predicted_clv", "status"]


@dataclass
class SubscriptionResult:
    """What an sBG training run produced."""

    config: Config
    model: TrainedModel
    projection: pd.DataFrame | None
    customers: int
    model_dir: Path
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)


def _fit(config: Config) -> tuple[ShiftedBetaGeometric, pd.DataFrame | None, int]:
    settings = config.subscriptions
    assert settings is not None  # guaranteed by the config's validation
    family = registry.family_class(config.models[0])  # the config's one retention family
    if settings.survivors is not None:
        counts = settings.survivors
        fitted = settings.fitted_periods if settings.fitted_periods is not None else len(counts) - 1
        model = family().fit(ModelData(survivors=list(counts[: fitted + 1])))
        projection = projection_table(counts, fitted) if fitted < len(counts) - 1 else None
        return model, projection, int(counts[0])
    from clvmodel import io

    table = io.read_table(settings.source)
    names = settings.columns
    missing = [c for c in (names.customer_id, names.start, names.end) if c not in table.columns]
    if missing:
        raise ClvError(
            f"{settings.source}: column(s) {', '.join(missing)} not found (columns: {', '.join(map(str, table.columns))}); "
            "set subscriptions.columns"
        )
    frame = table.rename(columns={names.customer_id: "customer_id", names.start: "start", names.end: "end"})
    durations = durations_from_subscriptions(frame[["customer_id", "start", "end"]], period=settings.period,
                                             as_of=settings.as_of)
    model = family().fit(ModelData(durations=(durations["periods_survived"], durations["churned"])))
    return model, None, len(durations)


def train(config: Config, *, track: bool | None = None) -> SubscriptionResult:
    """Fit, project, value, save and (optionally) track an sBG config."""
    settings = config.subscriptions
    assert settings is not None
    model, projection, customers = _fit(config)
    name = model.name
    clv = config.clv_settings()
    dumped = config.model_dump(mode="json")
    trained = TrainedModel(
        name=config.name,
        time_unit=settings.period,
        models={name: model},
        clv={**config.clv_used(), "fee": settings.fee},
        segments=dumped["segments"],
        columns={},
        config=dumped,
        primary=name,
        selection={"chosen": name, "rule": "only", "reason": f"{name} is the subscription model"},
    )
    derl = float(model.discounted_expected_residual_lifetime(clv.discount_rate, 0))
    metrics: dict[str, float] = {
        f"{name}.alpha": model.params_["alpha"],
        f"{name}.beta": model.params_["beta"],
        f"{name}.alpha.se": model.standard_errors_["alpha"],
        f"{name}.beta.se": model.standard_errors_["beta"],
        f"{name}.log_likelihood": model.log_likelihood_,
        **{f"{name}.{k}": v for k, v in evaluate.information_criteria(model.log_likelihood_, 2, customers).items()},
        f"{name}.derl": derl,
        f"{name}.clv_new_customer": settings.fee * config.clv.margin * (1 + derl / (1 + clv.discount_rate)),
    }
    figures: dict[str, Figure] = {}
    if projection is not None:
        fitted = int(settings.fitted_periods)  # type: ignore[arg-type]
        held = projection[projection["period"] > fitted]
        metrics[f"holdout.{name}.mean_abs_pct_error"] = float(100 * held["error"].abs().mean())
        metrics[f"holdout.{name}.max_abs_pct_error"] = float(100 * held["error"].abs().max())
        figures["survival_projection.png"] = plots.survival_projection(projection, fitted, settings.period)
    result = SubscriptionResult(config, trained, projection, customers, config.model_dir, metrics=metrics, figures=figures)

    from clvmodel.integrations import mlflow_tracking

    mlflow_tracking.save_model_dir(trained, result.model_dir)
    if config.tracking.enabled if track is None else track:
        with mlflow_tracking.run(config.tracking.experiment, run_name=config.name, tags={"clvmodel.config": config.name}) as run_id:
            mlflow_tracking.log_params(flatten(dumped))
            mlflow_tracking.log_metrics(metrics)
            mlflow_tracking.log_text(yaml.safe_dump(dumped, sort_keys=False), "config.yaml")
            mlflow_tracking.log_text(json.dumps(trained.selection), "selection.json")
            if projection is not None:
                mlflow_tracking.log_table(projection, "projection.csv")
            for file_name, figure in figures.items():
                mlflow_tracking.log_figure(figure, f"plots/{file_name}")
            mlflow_tracking.log_model(result.model_dir)
        result.run_id = run_id
    return result


def score_subscribers(
    model: TrainedModel, customers: pd.DataFrame, *, discount_rate: float | None = None, margin: float | None = None
) -> pd.DataFrame:
    """Value active subscribers: one row per input row, see the module docstring.

    Raises
    ------
    ClvError
        Missing ``customer_id``/``renewals``, duplicated ids, or renewals that are not whole
        numbers >= 0.
    """
    missing = [c for c in ("customer_id", "renewals") if c not in customers.columns]
    if missing:
        raise ClvError(f"subscription scoring needs columns customer_id, renewals; missing: {', '.join(missing)}")
    frame = customers[["customer_id", "renewals"]].copy()
    frame["customer_id"] = frame["customer_id"].astype(str)
    if frame["customer_id"].duplicated().any():
        raise ClvError(f"duplicated customer_id, e.g. {frame['customer_id'][frame['customer_id'].duplicated()].iloc[0]!r}")
    renewals = pd.to_numeric(frame["renewals"], errors="coerce")
    bad = renewals.isna() | (renewals < 0) | (renewals != np.floor(renewals))
    if bad.any():
        raise ClvError(
            f"{int(bad.sum())} rows have renewals that are not whole numbers >= 0 (e.g. customer "
            f"{frame.loc[bad, 'customer_id'].iloc[0]}); fix the input"
        )
    sbg: ShiftedBetaGeometric = model.retention_model
    rate = float(model.clv["discount_rate"] if discount_rate is None else discount_rate)
    share = float(model.clv["margin"] if margin is None else margin)
    derl = np.asarray(sbg.discounted_expected_residual_lifetime(rate, renewals.to_numpy()), dtype=float)
    return pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy(),
            "renewals": renewals.to_numpy(),
            "retention_rate": np.asarray(sbg.retention_rate(renewals.to_numpy() + 1), dtype=float),
            "expected_residual_lifetime": derl,
            "predicted_clv": float(model.clv.get("fee", 1.0)) * share * derl,
            "status": "ok",
        },
        columns=SCORE_COLUMNS,
    )
