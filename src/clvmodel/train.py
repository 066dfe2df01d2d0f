"""The pipeline a config describes: read -> RFM -> fit -> CLV -> holdout metrics -> artifact + run.

:func:`train` returns a :class:`TrainResult`; printing is the CLI's job. Everything the run
computes is logged to one MLflow run (when ``tracking.enabled``) and the model is written to
``output.model_dir`` (default ``models/<name>``).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from clvmodel import acquired, attributes, cohorts, evaluate, html_report, io, rfm
from clvmodel.artifact import TrainedModel
from clvmodel.config import SELECTION_METRICS, Config, cut, flatten
from clvmodel.errors import ClvError, ConvergenceFailure
from clvmodel.models import FittedModel, ModelData, PurchaseModel, registry
from clvmodel.models.base import NOT_CONVERGED, NOT_FITTED
from clvmodel.modeldir import check_replaceable
from clvmodel.prepared import Prepared as _Prepared
from clvmodel.predict import fix_segment_boundaries, score


#: The one-page HTML report in the model directory and at the top of the run's artifacts.
REPORT_NAME = "report.html"

__all__ = ["TrainResult", "train", "fit_models", "holdout_predictions", "align_to_summary"]


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
    #: Models that could not be fitted, with the reason (also on the leaderboard) ...
    failed: dict[str, str] = field(default_factory=dict)
    #: ... and their status (:data:`NOT_CONVERGED` or :data:`NOT_FITTED`).
    failed_status: dict[str, str] = field(default_factory=dict)
    #: Tables logged beside the leaderboard: with a customer table, ``acquisition.csv``,
    #: ``cohort_curves.csv`` and ``holdout_by_channel.csv`` (:func:`clvmodel.acquired.channel_tables`).
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: How the customer table met the log (:class:`clvmodel.attributes.CustomerReport`), if any.
    customer_report: Any = None


def _fit_one(name: str, config: Config, data: ModelData) -> Any:
    """Fit family ``name`` on ``data``; a failure becomes the model's status, not the run's end.

    A model that cannot be fitted on these data — no optimum (:class:`ConvergenceFailure`: status
    :data:`NOT_CONVERGED`), data it cannot use (another :class:`ClvError`: status ``not fitted``)
    or a numerical breakdown — comes back unfitted with the status and the reason in ``reason_``:
    it is on the leaderboard, and the run goes on with the others. Anything else is a bug in
    clvmodel and keeps its traceback.
    """
    model = registry.family_class(name)(**config.settings_of(name))
    status = NOT_CONVERGED
    try:
        return model.fit(data)
    except ConvergenceFailure as err:
        reason = str(err)
    except ClvError as err:
        reason, status = str(err), NOT_FITTED
    except (ArithmeticError, ValueError, np.linalg.LinAlgError) as err:  # numbers, not code, broke down
        reason = f"{type(err).__name__}: {err}"
    failed = registry.family_class(name)(**config.settings_of(name))
    # Messages name their model already ("bgnbd: ..."); the report puts the name in front once.
    failed.status_, failed.reason_ = status, cut(reason.removeprefix(f"{name}: "), 300)
    return failed


def fit_models(config: Config, data: ModelData | pd.DataFrame) -> dict[str, FittedModel]:
    """Fit every summary-fitted family the config lists; returned in the order given.

    A family whose fit fails is returned unfitted, with its status and the reason
    (:func:`_fit_one`). When every family listed declares ``parallel_safe`` (numpy alone, whose
    array operations release the GIL, and no process-wide state: BG/NBD, Gamma-Gamma, the
    historical formula; the families fitted through lifetimes change the warning filters), the
    first purchase model is fitted in a second thread while the others fit in this one (BG/NBD
    beside Gamma-Gamma: 1.5 s instead of 2 s at a million customers on two cores). Each fit is
    independent: the results equal those of one after the other.
    """
    if isinstance(data, pd.DataFrame):
        data = ModelData(summary=data, time_unit=config.time_unit)
    names = [name for name in config.models if registry.family(name).role not in ("challenger", "retention")]
    classes = {name: registry.family_class(name) for name in names}
    # A second thread only when no other fit touches the process-wide warning filters (lifetimes'
    # likelihoods do on every call): a filter switched off in one thread silences the other's
    # warnings, and a ridge warning must not depend on thread timing.
    safe = len(names) > 1 and all(getattr(classes[n], "parallel_safe", False) for n in names)
    # The purchase model beside: it is the costly fit.
    beside = next((n for n in names if registry.family(n).role == "purchase"), names[0]) if safe else None
    done: dict[str, FittedModel] = {}
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(_fit_one, beside, config, data) if beside else None
        for name in names:
            if name != beside:
                done[name] = _fit_one(name, config, data)
        if running is not None:
            done[beside] = running.result()  # type: ignore[index]
    return {name: done[name] for name in names}


def fit_challenger(con: Any, config: Config, duration: float) -> tuple[Any, pd.DataFrame | None]:
    """Fit the configured challenger family on the calibration period only; predict the holdout.

    The challenger reads the transactions itself (gaps, spend statistics); it never sees a row
    after the calibration end (:mod:`clvmodel.models.challenger`). A failed fit comes back with
    its status (:func:`_fit_one`) and no holdout forecast.
    """
    name = next(n for n in config.models if registry.family(n).role == "challenger")
    data = ModelData(transactions=con, calibration_end=config.calibration_end, holdout_periods=duration,
                     time_unit=config.time_unit)
    challenger = _fit_one(name, config, data)
    if getattr(challenger, "status_", None) in (NOT_CONVERGED, NOT_FITTED):
        return challenger, None
    return challenger, challenger.predict(con, cut=config.calibration_end, horizon_periods=duration)


class _ReadAhead:
    """The challenger's reads of a DuckDB log, all made before its regressors learn.

    :meth:`clvmodel.models.challenger.Challenger.fit` reads the first days and the training
    frame, then fits two gradient-boosted regressors; :meth:`~clvmodel.models.challenger.Challenger.predict`
    then reads the features at the calibration end. Here the prediction features are read
    right after the training frame (the same query on the same connection: the same frame), and
    ``release`` is called: it closes the connection, so DuckDB's tables and allocator hand their
    memory back before the fit instead of after it (issue 16: 430 MB at 10 M rows, the run's peak).
    Reads of :class:`clvmodel.models.challenger.DuckDBReader` otherwise.
    """

    def __init__(self, reader: Any, *, cut: Any, time_unit: str, release: Callable[[], None]) -> None:
        self._reader, self._key, self._release = reader, (cut, time_unit), release
        self._features: pd.DataFrame | None = None

    def first_days(self, calibration_end: Any) -> list[Any]:
        return self._reader.first_days(calibration_end)  # type: ignore[no-any-return]

    def training_frame(self, **kwargs: Any) -> pd.DataFrame:
        frame = self._reader.training_frame(**kwargs)
        cut, time_unit = self._key
        self._features = self._reader.features(cut=cut, time_unit=time_unit)
        self._release()
        return frame  # type: ignore[no-any-return]

    def features(self, *, cut: Any, time_unit: str) -> pd.DataFrame:
        if self._features is not None and (cut, time_unit) == self._key:
            # Handed over, not kept: the forecast's frame is freed with the challenger's.
            frame, self._features = self._features, None
            return frame
        return self._reader.features(cut=cut, time_unit=time_unit)  # type: ignore[no-any-return]


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
    for name, hist in model.of_role("baseline").items():
        purchases = hist.expected_purchases(x, tx, T, t=duration)
        out[name] = pd.DataFrame({"purchases": purchases, "spend": purchases * hist.order_value(x, m)})
    value = model.spend_model.expected_order_value(x, m) if model.spend_model is not None else m
    for name, purchase_model in model.purchase_models.items():
        if registry.family(name).covariates:  # each customer at its own covariates' parameters
            z = summary[purchase_model.design_.columns].to_numpy(dtype=float)
            purchases = purchase_model.expected_purchases(x, tx, T, t=duration, covariates=z)
        else:
            purchases = purchase_model.expected_purchases(x, tx, T, t=duration)
        out[name] = pd.DataFrame({"purchases": purchases, "spend": purchases * value})
    return out


def align_to_summary(summary: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s ``purchases`` and ``spend`` in the rows of ``summary``, matched by ``customer_id``.

    As a left one-to-one merge on ``customer_id`` (a customer ``frame`` lacks gets NaN; a customer
    twice on either side is an error), but when ``frame`` lists the same customers in the same
    order, each once (strictly increasing ids) — the challenger's forecast and the RFM summary
    are both sorted by ``customer_id`` — its rows are taken as they are: comparing the ids costs
    a twentieth of the merge's hashing at a million customers.
    """
    ids, theirs = summary["customer_id"].to_numpy(), frame["customer_id"].to_numpy()
    if len(ids) == len(theirs) and np.array_equal(ids, theirs) and bool(np.all(ids[1:] > ids[:-1])):
        return frame[["purchases", "spend"]].reset_index(drop=True)
    aligned = summary[["customer_id"]].merge(frame, on="customer_id", how="left", validate="1:1")
    return aligned[["purchases", "spend"]]


def choose_primary(config: Config, fitted: dict[str, FittedModel], board: pd.DataFrame | None) -> dict[str, Any]:
    """The purchase model behind ``predicted_clv``: as configured, or ``auto`` (see evaluate.select_model)."""
    # A covariate model needs each scored customer's covariates: it values new customers, it does not score.
    candidates = [m for m in config.models if m in fitted and registry.family(m).role == "purchase"
                  and not registry.family(m).covariates]
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


def _figures(result: TrainResult, repeat_series: pd.Series | None) -> dict[str, Any]:
    from clvmodel import plots  # matplotlib: imported when figures are drawn

    model, summary, config = result.model, result.rfm.summary, result.config
    figures: dict[str, Any] = {}
    if model.purchase_model is not None and repeat_series is not None:
        predicted = _cumulative_forecast(model.purchase_model, summary, len(repeat_series))
        figures["cumulative_repeat_transactions.png"] = plots.cumulative_transactions(
            repeat_series,
            predicted,
            calibration_period=float(summary["T"].max()) if result.rfm.split else None,
            unit=config.time_unit,
            model=model.primary or "",
        )
    if model.purchase_model is not None:
        figures["p_alive.png"] = plots.p_alive_histogram(result.scores["p_alive"].to_numpy())
    if result.calibration_table is not None:
        figures["holdout_by_frequency.png"] = plots.holdout_by_frequency(result.calibration_table)
        board = result.leaderboard
        figures["leaderboard.png"] = plots.leaderboard_chart(board[board["target"] != ""], model.selection)
    curves = result.tables.get("cohort_curves.csv")
    if curves is not None:
        observed = curves[["channel", "period", "cumulative_value"]]
        expected = curves[["channel", "period", "cumulative_value_model"]].rename(
            columns={"cumulative_value_model": "cumulative_value"})
        figures["cohort_curves.png"] = plots.cohort_curves(
            observed, expected.dropna(), unit=config.time_unit, model=result.model.acquisition.purchase_model)
    figures["clv_distribution.png"] = plots.clv_histogram(
        result.scores["predicted_clv"].to_numpy(), horizon=config.clv_used()["horizon"], unit=config.time_unit
    )
    return figures


def _metrics(result: TrainResult) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name, fitted in result.model.models.items():
        linear = set(fitted.linear_params()) if hasattr(fitted, "linear_params") else set()
        for key, value in (fitted.params_ or {}).items():
            metrics[f"{name}.{key}"] = value
        for key, value in (fitted.standard_errors_ or {}).items():
            metrics[f"{name}.{key}.se"] = value
            theta = (fitted.params_ or {})[key]
            if key in linear and value is not None and np.isfinite(value):  # a covariate's γ: its own scale
                metrics[f"{name}.{key}.ci95_lower"] = theta - 1.959964 * value
                metrics[f"{name}.{key}.ci95_upper"] = theta + 1.959964 * value
                continue
            # 95 % interval on the log scale the model is fitted on (always positive):
            # exp(log θ ± 1.96 se / θ), the delta-method se of log θ being se / θ.
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
            if not row.target:  # a model that did not converge: no forecast to score
                continue
            for metric in evaluate.METRICS:
                metrics[f"holdout.{row.model}.{row.target}_{metric}"] = getattr(row, metric)
    for basis, tiers in (result.model.segment_boundaries or {}).items():
        for tier, value in (tiers or {}).items():
            metrics[f"segments.{basis}.{tier}"] = value
    acquisition = result.tables.get("acquisition.csv")
    rows = list(acquisition.itertuples(index=False)) if acquisition is not None else []
    # "a b" and "a_b" would share a name: the later one gets a suffix (the HTML report uses the same labels).
    for label, row in zip(html_report.channel_metric_labels([row.channel for row in rows]), rows):
        for column in ("acquisition_value", "acquisition_value_lower", "acquisition_value_upper",
                       "remaining_clv_mean", "expected_repeat_purchases", "first_order_value"):
            metrics[f"channel.{label}.{column}"] = float(getattr(row, column))
    scores = result.scores
    # A published summary's row may stand for many customers (its weights): count customers.
    summary = result.rfm.summary
    per_row = summary["weights"].to_numpy(dtype=float) if "weights" in summary.columns else np.ones(len(scores))
    ok = (scores["status"] == "ok").to_numpy()
    customers = float(per_row[ok].sum())
    total = float(np.nansum(scores["predicted_clv"].to_numpy(dtype=float)[ok] * per_row[ok]))
    metrics.update(
        {
            "customers_scored": customers,
            "predicted_clv.total": total,
            "predicted_clv.mean": total / customers if customers else float("nan"),
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
    from clvmodel.integrations import mlflow_tracking as tracking  # mlflow is slow to import; only a tracked run pays for it

    config = result.config
    with tracking.run(config.tracking.experiment, run_name=config.name, tags={"clvmodel.config": config.name}) as run_id:
        metrics = _metrics(result)  # once: the run logs all, each model's nested run its own
        tracking.log_data({**flatten(config.model_dump(mode="json")), **_fingerprint(result)}, metrics)
        tracking.log_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), "config.yaml")
        if result.calibration_table is not None:
            tracking.log_table(result.calibration_table, "calibration_table.csv")
        if result.leaderboard is not None:
            tracking.log_table(result.leaderboard, "leaderboard.csv")
        for name, table in result.tables.items():
            tracking.log_table(table, f"channels/{name}")
        for name, figure in result.figures.items():
            tracking.log_figure(figure, f"plots/{name}")
        tracking.log_text(json.dumps(result.model.selection, indent=2, default=str), "selection.json")
        tracking.log_model(result.model_dir)
        tracking.log_artifact(Path(result.model_dir) / REPORT_NAME)  # also at the run's top: report.html
        # One nested run per model, so runs of the same model compare side by side in the UI.
        names = list(result.model.models) + ([result.model.challenger.name] if result.model.challenger is not None else [])
        for name in names:
            with tracking.run(config.tracking.experiment, run_name=f"{config.name}/{name}", nested=True,
                              tags={"clvmodel.model": name}):
                tracking.log_data({"model": name, "primary": str(name == result.model.primary)},
                                  {k: v for k, v in metrics.items() if k.startswith((f"{name}.", f"holdout.{name}."))})
    return run_id


def _from_transactions(config: Config, seconds: dict[str, float]) -> _Prepared:
    """Transactions: read the log, build the RFM summary (split when configured), fit the challenger."""
    clock = time.perf_counter()
    # The customer table first: a bad one is refused before the log is read.
    table = attributes.read_customers(config.customers) if config.customers is not None else None
    con = io.connect_for(config.data)
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
        repeat_series = rfm.repeat_transactions_by_period(
            con, start=rfm.plot_start(rfm_result), end=rfm_result.observation_end,
            unit_days=rfm.UNIT_DAYS[config.time_unit], days="days", first_days=rfm_result.first_days,
        )
        customers = first_orders = observed = None
        if table is not None:
            customers = attributes.attach_customers(summary["customer_id"], table, config.customers)  # type: ignore[arg-type]
            first_orders = acquired.first_orders_series(con.execute(acquired.first_orders_sql("days")).df())
            observed = observed_curves(cohorts.duckdb_runner(con, "days"), table, config, rfm_result)
        challenger = challenger_holdout = None
        if any(registry.family(m).role == "challenger" for m in config.models):
            # Every read of the per-day table is above (the challenger reads `transactions`):
            # dropped, its memory serves the challenger's queries instead of growing DuckDB's.
            con.execute("DROP TABLE days")
            from clvmodel.models.challenger import DuckDBReader  # scikit-learn: only a run with the challenger

            # The connection is closed once the challenger has read the log, before its fit:
            # nothing below reads it (io.check_unchanged compares the files' states).
            reader = _ReadAhead(DuckDBReader(con), cut=config.calibration_end, time_unit=config.time_unit,
                                release=con.close)
            challenger, challenger_holdout = fit_challenger(reader, config, float(summary["duration_holdout"].iloc[0]))
        if load.rereads_source:  # the challenger read a Parquet source again: still the file loaded?
            io.check_unchanged(load)
    finally:
        con.close()
    seconds["read_and_rfm"] = time.perf_counter() - clock
    return _Prepared(load, rfm_result, repeat_series, challenger, challenger_holdout, [], customers, first_orders,
                     observed)


def observed_curves(run: cohorts.CohortRunner, table: pd.DataFrame, config: Config,
                    rfm_result: rfm.RfmResult) -> pd.DataFrame:
    """Each channel's observed cumulative value per acquired customer (:func:`cohorts.observed_cohort_curves`),
    every period from the first acquisition to the observation end.

    Parameters
    ----------
    run
        How the engine runs :func:`cohorts.observed_cohort_sql` on its per-customer-day table
        (:data:`cohorts.CohortRunner`; DuckDB's in :func:`_from_transactions`, Spark's in
        :class:`clvmodel.spark.training.SparkSummaries`): one text, so one table on both.
    table
        The customer table (:func:`attributes.read_customers`); without a channel column every
        customer is in channel ``all``.
    config, rfm_result
        The run's config (time unit, margin) and summary (first purchase days, observation end).

    Returns
    -------
    pandas.DataFrame
        :data:`cohorts.CURVE_COLUMNS`, as :func:`cohorts.observed_cohort_curves` returns them.
    """
    unit_days = rfm.UNIT_DAYS[config.time_unit]
    first = rfm_result.first_days.index.min() if rfm_result.first_days is not None and len(rfm_result.first_days) else None
    end = rfm_result.observation_end
    span = (pd.Timestamp(end) - pd.Timestamp(first)).days if first is not None else 0
    periods = max(1, int(np.ceil(span / unit_days)))
    channels = table[["customer_id", "channel"]] if "channel" in table.columns else table[["customer_id"]].assign(channel="all")
    return cohorts.observed_cohort_curves_with(run, channels, unit_days=unit_days, end=end, periods=periods,
                                               margin=config.clv.margin)


def _from_summary(config: Config, seconds: dict[str, float]) -> _Prepared:
    """A published RFM summary: read and check it; a holdout when it carries the holdout columns."""
    from clvmodel import summaries

    clock = time.perf_counter()
    summary, report = summaries.read_summary(config.data)  # type: ignore[arg-type]
    notes = []
    if "weights" in summary.columns and "frequency_holdout" in summary.columns:
        summary = summary.drop(columns=list(summaries.HOLDOUT_COLUMNS), errors="ignore")
        notes.append("the summary's holdout columns were not used: the leaderboard does not weigh rows yet")
    holdout = all(c in summary.columns for c in summaries.HOLDOUT_COLUMNS)
    if holdout and "monetary_value" not in summary.columns:
        raise ClvError(
            f"{config.data.source}: the summary has holdout columns but no monetary_value, and the holdout "  # type: ignore[union-attr]
            "compares spend as well as purchases; add the calibration period's monetary_value (or map it in "
            "data.columns), or drop the holdout columns"
        )
    result = rfm.RfmResult(summary, config.time_unit, calibration_end=None, observation_end=None, holdout=holdout)
    seconds["read_and_rfm"] = time.perf_counter() - clock
    return _Prepared(report, result, notes=notes)


#: How each kind of data becomes a summary (the subscription pipeline is :mod:`clvmodel.subscription`).
_PREPARE = {"transactions": _from_transactions, "rfm": _from_summary}


def train(config: Config, *, track: bool | None = None, source: Callable[[Config, dict[str, float]], _Prepared] | None = None) -> TrainResult:
    """Run the pipeline of ``config``; see the module docstring.

    Parameters
    ----------
    config
        A validated config (:func:`clvmodel.config.load_config`) of a transaction log or an RFM
        summary.
    track
        Log to MLflow; defaults to ``config.tracking.enabled``.
    source
        Where the summary, the split and the extras come from (:mod:`clvmodel.prepared`):
        ``None`` reads the config's data on this machine (DuckDB, or a published summary);
        :class:`clvmodel.spark.training.SparkSummaries` computes them on a Spark cluster. The
        fits, leaderboard, scores and tracking after it are the same for every source.

    Raises
    ------
    ClvError
        Bad data, or no purchase model converged (each one's reason in the message). A single
        model's failure is not an error: it is on the leaderboard with its reason.
    """
    # Before any work: a folder that is not a clvmodel model is refused, not replaced (issue 12).
    check_replaceable(config.model_dir)
    seconds: dict[str, float] = {}
    tracked = config.tracking.enabled if track is None else track
    prepared = (source or _PREPARE[config.kind])(config, seconds)
    rfm_result, summary = prepared.rfm, prepared.rfm.summary
    design = prepared.customers.design if prepared.customers is not None else None
    if design is not None:  # the covariate models read z from the summary's encoded columns
        z = design.encode(prepared.customers.frame, f"customers.source {config.customers.source}")  # type: ignore[union-attr]
        summary = summary.assign(**{column: z[:, j] for j, column in enumerate(design.columns)})

    clock = time.perf_counter()
    caught: list[str] = list(prepared.notes)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always", UserWarning)
        attempted = fit_models(config, ModelData(summary=summary, time_unit=config.time_unit, design=design))
    caught.extend(str(r.message) for r in records if issubclass(r.category, UserWarning))
    seconds["fit"] = time.perf_counter() - clock
    failed = {name: m.reason_ for name, m in attempted.items() if m.status_ in (NOT_CONVERGED, NOT_FITTED)}
    challenger = prepared.challenger
    if challenger is not None and getattr(challenger, "status_", None) in (NOT_CONVERGED, NOT_FITTED):
        failed[challenger.name] = challenger.reason_
        challenger = None
    fitted = {name: m for name, m in attempted.items() if name not in failed}
    tried_models = {**attempted, **({prepared.challenger.name: prepared.challenger} if prepared.challenger is not None else {})}
    purchase = [m for m in config.models if registry.family(m).role == "purchase"]
    if purchase and not any(m in fitted for m in purchase):
        raise ClvError(
            "no purchase model could be fitted: " + "; ".join(f"{m}: {failed[m]}" for m in purchase)
        )
    if not fitted:
        raise ClvError("no model could be fitted: " + "; ".join(f"{m}: {r}" for m, r in failed.items()))
    if config.model in failed:
        raise ClvError(f"model {config.model} (model: {config.model} in the config) could not be fitted: {failed[config.model]}")

    dumped = config.model_dump(mode="json")
    model = TrainedModel(
        name=config.name,
        time_unit=config.time_unit,
        models=fitted,
        clv=config.clv_used(),
        segments=dumped["segments"],
        columns=dumped["data"]["columns"] if config.kind == "transactions" else {"customer_id": "customer_id", "date": "date", "amount": "amount"},
        config=dumped,
        calibration_end=dumped["calibration_end"],
        observation_end=str(rfm_result.observation_end) if rfm_result.observation_end else None,
        challenger=challenger,
    )
    leaderboard = table = None
    if rfm_result.split:
        holdout = holdout_predictions(model, summary)
        if prepared.challenger_holdout is not None and challenger is not None:
            holdout[challenger.name] = align_to_summary(summary, prepared.challenger_holdout)
        leaderboard = evaluate.leaderboard(summary, holdout)
        table = evaluate.calibration_table(summary, holdout)
        # Two columns per model per customer (140 MB at 1.25 M customers and 7 models), no longer
        # needed: not kept alive through scoring, the figures and the save. (The source's own
        # frames, e.g. the challenger's holdout forecast, stay: they are the caller's.)
        del holdout
    model.selection = choose_primary(config, fitted, leaderboard)
    model.primary = model.selection["chosen"]
    if failed:
        model.selection["not_converged"] = dict(failed)
        leaderboard = _with_status(leaderboard, tried_models, failed)
    if prepared.customers is not None and model.primary is not None:
        newcomer = acquired.new_customer_model(fitted, model.primary)
        model.acquisition, notes = acquired.acquisition_state(
            summary, prepared.customers.frame, prepared.first_orders, fitted,
            channel=config.customers.channel, covariates=list(config.customers.covariates),  # type: ignore[union-attr]
            design=design, purchase_model=newcomer or model.primary, time_unit=config.time_unit,
        )
        caught.extend(notes)

    clock = time.perf_counter()
    # Point forecasts only: intervals cost a forecast per parameter draw, and the run logs
    # distributions, not per-customer bounds (`clvmodel score` adds them).
    columns = [c for c in ("customer_id", "frequency", "recency", "T", "monetary_value") if c in summary.columns]
    scores = score(model, summary[columns], interval_draws=0)
    # The segment boundaries, fixed here on the training customers and stored in the model: every
    # scored batch is labelled against them (the training scores too).
    scores = fix_segment_boundaries(
        model, summary[columns], scores=scores,
        weights=summary["weights"].to_numpy(dtype=float) if "weights" in summary.columns else None,
    )
    seconds["score"] = time.perf_counter() - clock

    result = TrainResult(
        config=config,
        load=prepared.load,
        rfm=rfm_result,
        model=model,
        scores=scores,
        leaderboard=leaderboard,
        calibration_table=table,
        model_dir=config.model_dir,
        warnings=caught,
        seconds=seconds,
        failed=failed,
        failed_status={m: getattr(tried_models.get(m), "status_", NOT_FITTED) for m in failed},
    )
    if prepared.customers is not None:
        result.customer_report = prepared.customers.report
    if model.acquisition is not None:
        result.tables = acquired.channel_tables(
            model, summary, prepared.customers.frame, scores, prepared.observed_curves,
            level=config.intervals.level, draws=config.intervals.draws, seed=config.intervals.seed,
        )
    result.figures = _figures(result, prepared.repeat_series)

    clock = time.perf_counter()
    from clvmodel.integrations import mlflow_tracking as tracking

    # The one-page report goes into the model directory (listed in its manifest, swapped in with it).
    page = html_report.render_train(result).encode("utf-8")
    tracking.save_model_dir(model, result.model_dir, extra_files={REPORT_NAME: page})
    if tracked:
        result.run_id = _track(result)
    seconds["save_and_track"] = time.perf_counter() - clock
    return result


def _with_status(board: pd.DataFrame | None, attempted: dict[str, Any], failed: dict[str, str]) -> pd.DataFrame:
    """The leaderboard with a ``status`` column and one row per model that did not converge."""
    rows = [] if board is None else [board.assign(status=board["model"].map(lambda m: getattr(attempted.get(m), "status_", "converged")))]
    # A fitted challenger has no status_ of its own: it is on the board because it was fitted.
    rows.append(pd.DataFrame({"model": list(failed), "target": "",
                              "status": [f"{attempted[m].status_ if m in attempted else NOT_FITTED}: {r}"
                                         for m, r in failed.items()]}))
    return pd.concat(rows, ignore_index=True)
