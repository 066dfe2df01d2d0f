"""The pipeline a config describes: read -> RFM -> fit -> CLV -> holdout metrics -> artifact + run.

:func:`train` returns a :class:`TrainResult`; printing is the CLI's job. Everything the run
computes is logged to one MLflow run (when ``tracking.enabled``) and the model is written to
``output.model_dir`` (default ``models/<name>``).
"""

from __future__ import annotations

import json
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from clvmodel import evaluate, io, rfm
from clvmodel.artifact import TrainedModel
from clvmodel.config import PURCHASE_MODEL_NAMES, SELECTION_METRICS, Config, flatten
from clvmodel.models import MODEL_CLASSES, FittedModel, HistoricalModel, PurchaseModel
from clvmodel.modeldir import check_replaceable
from clvmodel.predict import score

__all__ = ["TrainResult", "train", "fit_models", "holdout_predictions"]


@dataclass
class TrainResult:
    """Everything a training run produced."""

    config: Config
    load: io.LoadReport
    rfm: rfm.RfmResult
    model: TrainedModel
    scores: pd.DataFrame
    leaderboard: pd.DataFrame | None
    calibration_table: pd.DataFrame | None
    model_dir: Path
    run_id: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)


def fit_models(config: Config, summary: pd.DataFrame) -> dict[str, FittedModel]:
    """Fit every model the config lists; returned in the order given.

    BG/NBD is fitted in a second thread while the other models fit in this one (with Gamma-Gamma
    beside it: 1.5 s instead of 2 s at a million customers on two cores). It can: its fit is numpy
    alone (:mod:`.bgnbd_likelihood`), whose array operations release the GIL, and touches no
    process-wide state (the models fitted through lifetimes change the warning filters, so they
    stay on this thread). Each fit is independent: the results equal those of one after the other.
    """
    def build(name: str) -> Any:
        return HistoricalModel(config.historical.retention_periods) if name == "historical" else MODEL_CLASSES[name]()

    names = [name for name in config.models if name != "challenger"]  # the challenger learns from transactions
    beside = "bgnbd" if "bgnbd" in names and len(names) > 1 else None
    done: dict[str, FittedModel] = {}
    failed: dict[str, Exception] = {}
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        running = pool.submit(build(beside).fit, summary) if beside else None
        for name in names:
            if name != beside:
                try:
                    done[name] = build(name).fit(summary)
                except Exception as err:  # noqa: BLE001  (re-raised below, in config order)
                    failed[name] = err
                    break
        if running is not None:
            try:
                done[beside] = running.result()  # type: ignore[index]
            except Exception as err:  # noqa: BLE001
                failed[beside] = err  # type: ignore[index]
    finally:
        pool.shutdown(wait=True)
    if failed:  # the first failure in the config's order, as if fitted one after the other
        raise failed[min(failed, key=names.index)]
    return {name: done[name] for name in names}


def fit_challenger(con: Any, config: Config, duration: float) -> tuple[Any, pd.DataFrame]:
    """Fit the scikit-learn challenger on the calibration period only; predict the holdout.

    The challenger reads the transactions itself (gaps, spend statistics); it never sees a row
    after the calibration end (:mod:`clvmodel.models.challenger`).
    """
    from clvmodel.models.challenger import Challenger

    challenger = Challenger().fit(
        con,
        calibration_end=config.calibration_end,
        holdout_periods=duration,
        time_unit=config.time_unit,
        inner_cut=config.challenger.inner_cut,
    )
    return challenger, challenger.predict(con, cut=config.calibration_end, horizon_periods=duration)


def holdout_predictions(model: TrainedModel, summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each model's forecast of holdout purchases and spend (undiscounted, revenue).

    The holdout lasts ``duration_holdout`` periods (fractional allowed): each purchase model
    forecasts ``E[Y(duration)]`` purchases at the Gamma-Gamma order value (at the observed mean
    spend without a spend model); the historical formula its rate times ``min(L, duration)`` at
    its order value.
    """
    duration = float(summary["duration_holdout"].iloc[0])
    x, tx, T, m = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", "monetary_value"))
    out: dict[str, pd.DataFrame] = {}
    if model.historical_model is not None:
        hist = model.historical_model
        purchases = hist.expected_purchases(x, T, t=duration)
        out["historical"] = pd.DataFrame({"purchases": purchases, "spend": purchases * hist.order_value(x, m)})
    value = model.spend_model.expected_order_value(x, m) if model.spend_model is not None else m
    for name, purchase_model in model.purchase_models.items():
        purchases = purchase_model.expected_purchases(x, tx, T, t=duration)
        out[name] = pd.DataFrame({"purchases": purchases, "spend": purchases * value})
    return out


def choose_primary(config: Config, fitted: dict[str, FittedModel], board: pd.DataFrame | None) -> dict[str, Any]:
    """The purchase model behind ``predicted_clv``: as configured, or ``auto`` (see evaluate.select_model)."""
    candidates = [m for m in config.models if m in PURCHASE_MODEL_NAMES]
    if not candidates:
        return {"chosen": None, "rule": "none", "reason": "no purchase model: predicted_clv is the historical formula"}
    if config.model != "auto":
        return {"chosen": config.model, "rule": "configured", "reason": f"{config.model} as configured (model: {config.model})"}
    bic = {m: _criteria(fitted[m])["bic"] for m in candidates}
    metric = config.selection.metric
    return evaluate.select_model(
        candidates, board=board, metric=metric, lower_is_better=SELECTION_METRICS[metric], bic=bic
    )


def _criteria(model: FittedModel) -> dict[str, float]:
    return evaluate.information_criteria(model.log_likelihood_, len(model.params_ or {}), int(model.n_ or 0))


def _cumulative_forecast(purchases: PurchaseModel, summary: pd.DataFrame, periods: int) -> np.ndarray:
    """Σ over the cohort of E[X(k − s_i)] at each period end k = 1..periods (paper's figure 2).

    ``s_i`` is customer i's first purchase in periods after the cohort's earliest one (which is
    ``max T`` before the cut), and E[X(t)] the unconditional expectation, equation (9).
    """
    first = (summary["T"].max() - summary["T"]).to_numpy()
    offsets, counts = np.unique(first, return_counts=True)
    ages = np.clip(np.arange(1, periods + 1, dtype=float)[:, None] - offsets[None, :], 0.0, None)
    expected = purchases.expected_purchases_new(ages.ravel()).reshape(ages.shape)
    return (expected * counts[None, :]).sum(axis=1)


def _figures(result: TrainResult, repeat_series: pd.Series) -> dict[str, Any]:
    from clvmodel import plots  # matplotlib: imported when figures are drawn

    model, summary, config = result.model, result.rfm.summary, result.config
    figures: dict[str, Any] = {}
    if model.purchase_model is not None:
        predicted = _cumulative_forecast(model.purchase_model, summary, len(repeat_series))
        figures["cumulative_repeat_transactions.png"] = plots.cumulative_transactions(
            repeat_series,
            predicted,
            calibration_period=float(summary["T"].max()) if result.rfm.split else None,
            unit=config.time_unit,
            model=model.primary or "",
        )
        figures["p_alive.png"] = plots.p_alive_histogram(result.scores["p_alive"].to_numpy())
    if result.calibration_table is not None:
        figures["holdout_by_frequency.png"] = plots.holdout_by_frequency(result.calibration_table)
        figures["leaderboard.png"] = plots.leaderboard_chart(result.leaderboard)
    figures["clv_distribution.png"] = plots.clv_histogram(
        result.scores["predicted_clv"].to_numpy(), horizon=config.clv.horizon, unit=config.time_unit
    )
    return figures


def _metrics(result: TrainResult) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name, fitted in result.model.models.items():
        for key, value in (fitted.params_ or {}).items():
            metrics[f"{name}.{key}"] = value
        for key, value in (fitted.standard_errors_ or {}).items():
            metrics[f"{name}.{key}.se"] = value
            # 95 % interval on the log scale the model is fitted on (always positive):
            # exp(log θ ± 1.96 se / θ), the delta-method se of log θ being se / θ.
            theta = (fitted.params_ or {})[key]
            if value is not None and np.isfinite(value) and theta > 0:
                spread = 1.959964 * value / theta
                metrics[f"{name}.{key}.ci95_lower"] = theta * np.exp(-spread)
                metrics[f"{name}.{key}.ci95_upper"] = theta * np.exp(spread)
        if fitted.log_likelihood_ is not None:
            metrics[f"{name}.log_likelihood"] = fitted.log_likelihood_
            metrics.update({f"{name}.{k}": v for k, v in _criteria(fitted).items()})
    spend = result.model.spend_model
    if spend is not None:
        metrics["gamma_gamma.correlation"] = spend.correlation_
        metrics["gamma_gamma.excluded_customers"] = spend.excluded_
    if result.leaderboard is not None:
        for row in result.leaderboard.itertuples(index=False):
            for metric in evaluate.METRICS:
                metrics[f"holdout.{row.model}.{row.target}_{metric}"] = getattr(row, metric)
    scores = result.scores
    metrics.update(
        {
            "customers_scored": float((scores["status"] == "ok").sum()),
            "predicted_clv.total": float(scores["predicted_clv"].sum()),
            "predicted_clv.mean": float(scores["predicted_clv"].mean()),
        }
    )
    return metrics


def _fingerprint(result: TrainResult) -> dict[str, Any]:
    """The data a run saw: the load's row accounting and file hash, and what the split left out."""
    return {
        **{f"fingerprint.{'sha256' if k == 'fingerprint' else k}": v
           for k, v in result.load.as_dict().items() if k != "source"},
        "fingerprint.customers_after_calibration": result.rfm.customers_after_calibration,
        "fingerprint.transactions_after_observation_end": result.rfm.transactions_after_observation_end,
    }


def _track(result: TrainResult) -> str:
    from clvmodel.integrations import mlflow_runs as tracking  # mlflow is slow to import; only a tracked run pays for it

    config = result.config
    with tracking.run(config.tracking.experiment, run_name=config.name, tags={"clvmodel.config": config.name}) as run_id:
        tracking.log_params({**flatten(config.model_dump(mode="json")), **_fingerprint(result)})
        tracking.log_metrics(_metrics(result))
        tracking.log_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), "config.yaml")
        if result.calibration_table is not None:
            tracking.log_table(result.calibration_table, "calibration_table.csv")
        if result.leaderboard is not None:
            tracking.log_table(result.leaderboard, "leaderboard.csv")
        for name, figure in result.figures.items():
            tracking.log_figure(figure, f"plots/{name}")
        tracking.log_text(json.dumps(result.model.selection, indent=2, default=str), "selection.json")
        tracking.log_model(result.model_dir)
        # One nested run per model, so runs of the same model compare side by side in the UI.
        per_model = _metrics(result)
        names = list(result.model.models) + (["challenger"] if result.model.challenger is not None else [])
        for name in names:
            with tracking.run(config.tracking.experiment, run_name=f"{config.name}/{name}", nested=True,
                              tags={"clvmodel.model": name}):
                tracking.log_params({"model": name, "primary": str(name == result.model.primary)})
                tracking.log_metrics({k: v for k, v in per_model.items()
                                      if k.startswith((f"{name}.", f"holdout.{name}."))})
    return run_id


def train(config: Config, *, track: bool | None = None) -> TrainResult:
    """Run the pipeline of ``config``; see the module docstring.

    Parameters
    ----------
    config
        A validated config (:func:`clvmodel.config.load_config`).
    track
        Log to MLflow; defaults to ``config.tracking.enabled``.
    """
    # Before any work: a folder that is not a clvmodel model is refused, not replaced (issue 12).
    check_replaceable(config.model_dir)
    seconds: dict[str, float] = {}
    tracked = config.tracking.enabled if track is None else track
    clock = time.perf_counter()
    con = io.connect(memory_limit=config.data.memory_limit)
    try:
        load = io.load_transactions(con, config.data, observation_end=config.observation_end)
        rfm_result = rfm.summarise(
            con,
            time_unit=config.time_unit,
            calibration_end=config.calibration_end,
            observation_end=config.observation_end,
            days="days",
        )
        rfm_result.account(load.customers)  # nothing lost: summarised + left out = read
        summary = rfm_result.summary
        unit_days = rfm.UNIT_DAYS[config.time_unit]
        cut = rfm_result.calibration_end or rfm_result.observation_end
        start = pd.Timestamp(cut) - pd.Timedelta(days=float(summary["T"].max() * unit_days))
        repeat_series = rfm.repeat_transactions_by_period(
            con, start=start.date(), end=rfm_result.observation_end, unit_days=unit_days, days="days",
            first_days=rfm_result.first_days,
        )
        challenger = challenger_holdout = None
        if "challenger" in config.models:
            challenger, challenger_holdout = fit_challenger(con, config, float(summary["duration_holdout"].iloc[0]))
        if load.rereads_source:  # the challenger read a Parquet source again: still the file loaded?
            io.check_unchanged(load)
    finally:
        con.close()
    seconds["read_and_rfm"] = time.perf_counter() - clock

    clock = time.perf_counter()
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always", UserWarning)
        fitted = fit_models(config, summary)
    caught.extend(str(r.message) for r in records if issubclass(r.category, UserWarning))
    seconds["fit"] = time.perf_counter() - clock

    dumped = config.model_dump(mode="json")
    model = TrainedModel(
        name=config.name,
        time_unit=config.time_unit,
        models=fitted,
        clv=dumped["clv"],
        segments=dumped["segments"],
        columns=dumped["data"]["columns"],
        config=dumped,
        calibration_end=dumped["calibration_end"],
        observation_end=str(rfm_result.observation_end),
        challenger=challenger,
    )
    leaderboard = table = None
    if rfm_result.split:
        holdout = holdout_predictions(model, summary)
        if challenger_holdout is not None:
            aligned = summary[["customer_id"]].merge(challenger_holdout, on="customer_id", how="left", validate="1:1")
            holdout["challenger"] = aligned[["purchases", "spend"]]
        leaderboard = evaluate.leaderboard(summary, holdout)
        table = evaluate.calibration_table(summary, holdout)
    model.selection = choose_primary(config, fitted, leaderboard)
    model.primary = model.selection["chosen"]

    clock = time.perf_counter()
    # Point forecasts only: intervals cost a forecast per parameter draw, and the run logs
    # distributions, not per-customer bounds (`clvmodel score` adds them).
    scores = score(model, summary[["customer_id", "frequency", "recency", "T", "monetary_value"]], interval_draws=0)
    seconds["score"] = time.perf_counter() - clock

    result = TrainResult(
        config=config,
        load=load,
        rfm=rfm_result,
        model=model,
        scores=scores,
        leaderboard=leaderboard,
        calibration_table=table,
        model_dir=config.model_dir,
        warnings=caught,
        seconds=seconds,
    )
    result.figures = _figures(result, repeat_series)

    clock = time.perf_counter()
    from clvmodel.integrations import mlflow_model as tracking

    tracking.save_model_dir(model, result.model_dir)
    if tracked:
        result.run_id = _track(result)
    seconds["save_and_track"] = time.perf_counter() - clock
    return result
