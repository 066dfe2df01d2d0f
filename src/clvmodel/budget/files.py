"""``clvmodel budget`` as one library call: read the files, run the stage, write, log.

:func:`budget_files` is what the CLI calls: it refuses an output that is an input before
anything is read, leaves out the customers the scores file could not score (said in the
report), reads the model when one is given, runs :func:`~clvmodel.budget.run.run_budget`, writes
the channel table, the segment table and the chart beside each other, and logs them to MLflow
when an experiment (or ``MLFLOW_TRACKING_URI``) is set. The CLI only renders the result.

A model trained with a channel (:func:`~clvmodel.budget.new_customers.channel_aware`) values a
new customer of each channel (:func:`~clvmodel.budget.new_customers.new_customer_values`): the
channel table and the allocation rest on that acquisition value. Any other model gives each
existing customer's per-period value (:func:`period_values`), for payback only: the table then
rests on the remaining CLV of existing customers, and a warning says the model could not do
better and why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from clvmodel import io
from clvmodel.errors import ClvError
from clvmodel.budget.cac_config import load_cac_config
from clvmodel.budget.new_customers import NewCustomerValues, channel_aware, new_customer_values
from clvmodel.budget.report import format_report, ltv_cac_chart, render_html
from clvmodel.files import write_atomically
from clvmodel.budget.run import BudgetResult, run_budget

__all__ = ["BudgetFiles", "budget_files", "period_values", "read_channels"]


@dataclass
class BudgetFiles:
    """What :func:`budget_files` did: the stage's result, the files written, the MLflow run."""

    result: BudgetResult
    written: list[Path] = field(default_factory=list)
    run_id: str | None = None
    #: The model's horizon and per-period rate the values used (:meth:`clvmodel.units.Settings.describe`);
    #: ``None`` without ``--model``.
    valuation: str | None = None
    #: A per-period rate that looks annual (:meth:`clvmodel.units.Settings.warnings`), for stderr.
    rate_warnings: list[str] = field(default_factory=list)


def period_values(model_ref: Any, scores: pd.DataFrame, *, horizon: int | None = None,
                  discount_rate: float | None = None) -> tuple[pd.DataFrame, int]:
    """Each existing customer's expected revenue per period (discounted as the model says), for payback.

    ``model_ref``: a model directory or URI, or a loaded :class:`~clvmodel.artifact.TrainedModel`;
    ``horizon`` (whole periods) and ``discount_rate`` (per period): the model's when ``None``.

    Returns
    -------
    values, horizon
        Customers (index: ``customer_id``) × periods ``1..H``; ``H`` the model's horizon.
    """
    from clvmodel import load_model
    from clvmodel.predict import score

    trained = load_model(model_ref) if isinstance(model_ref, (str, Path)) else model_ref
    columns = [c for c in scores.columns if c in ("customer_id", "frequency", "recency", "T", "monetary_value")]
    forecast = score(trained, scores[columns], margin=1.0, per_period=True, horizon=horizon,
                     discount_rate=discount_rate)
    periods = forecast.filter(like="period_")
    periods.columns = [int(c.removeprefix("period_")) for c in periods.columns]
    periods.index = forecast["customer_id"].to_numpy()
    return periods, int(trained.clv["horizon"] if horizon is None else horizon)


def read_channels(path: Path, customer_id_column: str = "customer_id", channel_column: str = "channel") -> pd.DataFrame:
    """A customer table's id and channel columns, as ``customer_id, channel`` (ids as text).

    Raises
    ------
    ClvError
        A column not in the file, naming the option that sets it and the file's columns.
    """
    from clvmodel.errors import ClvError

    table = io.read_table(path, id_column=customer_id_column)
    for name, option in ((customer_id_column, "--customer-id-column"), (channel_column, "--channel-column")):
        if name not in table.columns:
            raise ClvError(
                f"--customers {path} has no column {name!r} (columns: {', '.join(map(str, table.columns[:12]))}); "
                f"pass {option} with the name of the column holding the {option[2:].removesuffix('-column').replace('-', ' ')}"
            )
    if customer_id_column == channel_column:
        raise ClvError(f"--customer-id-column and --channel-column are both {channel_column!r}; name two columns")
    return pd.DataFrame({"customer_id": table[customer_id_column].to_numpy(), "channel": table[channel_column].to_numpy()})


def _model_values(
    model: str | None, scores: pd.DataFrame, config: Any, valuation: dict[str, Any] | None = None
) -> tuple[pd.DataFrame | None, int | None, NewCustomerValues | None, list[str], Any]:
    """``(period_values, horizon, new_values, notes, valuation)`` for :func:`run_budget` from ``--model``;
    ``valuation``: ``horizon``, ``discount_rate``, ``annual_discount_rate`` given (:mod:`clvmodel.units`)."""
    given = {k: v for k, v in (valuation or {}).items() if v is not None}
    if model is None:
        if given:
            raise ClvError(f"--{next(iter(given)).replace('_', '-')} needs --model (the model's time unit and "
                           "forecast); without a model set horizon in the CAC config, in the periods of predicted_clv")
        return None, config.horizon, None, [], None
    from clvmodel import load_model
    from clvmodel.units import defaults_of, resolve

    trained = load_model(model)
    used = resolve(trained.time_unit, given.get("horizon"), given.get("discount_rate"),
                   given.get("annual_discount_rate"), defaults=defaults_of(trained))
    if channel_aware(trained):
        values = new_customer_values(trained, config.margin, horizon=used.periods, discount_rate=used.discount_rate)
        notes = list(values.notes)
        if config.horizon is not None and int(config.horizon) != values.horizon:
            notes.append(
                f"horizon {config.horizon} of the CAC config is not used: the acquisition value covers the model's "
                f"{values.horizon} {values.time_unit}s (clv.horizon)"
            )
        return None, None, values, notes, used
    values, horizon = period_values(trained, scores, horizon=used.periods, discount_rate=used.discount_rate)
    why = ("was trained without a customer table" if getattr(trained, "acquisition", None) is None
           else "has no acquisition channel")
    notes = [
        f"the model {why}, so it cannot value a new customer: LTV:CAC rests on the remaining CLV of existing "
        "customers; train with customers: {channel: ...} to value new customers per channel",
    ]
    return values, horizon, None, notes, used


def budget_files(
    scores: Path,
    cac: Path,
    output: Path,
    *,
    customers: Path | None = None,
    model: str | None = None,
    experiment: str | None = None,
    customer_id_column: str = "customer_id",
    channel_column: str = "channel",
    horizon: Any = None,
    discount_rate: float | None = None,
    annual_discount_rate: float | None = None,
) -> BudgetFiles:
    """Run ``clvmodel budget`` on files; see the module docstring.

    Parameters
    ----------
    scores
        The scores file of ``clvmodel score``.
    cac
        The CAC config (YAML).
    output
        The per-channel table (CSV or Parquet); ``<stem>.segments<suffix>`` and ``<stem>.png``
        are written beside it.
    customers
        A customer table: one row per customer, with its id and acquisition channel.
    customer_id_column, channel_column
        The names of those two columns in ``customers`` (``--customer-id-column``,
        ``--channel-column``); other columns are ignored.
    model
        A model directory or URI: trained with a channel, it values a new customer per channel
        (the table rests on that); otherwise it gives per-period values for payback.
    experiment
        The MLflow experiment to log to (default ``budget`` when only ``MLFLOW_TRACKING_URI`` is set).
    horizon, discount_rate, annual_discount_rate
        With ``model``: the horizon (``"3 years"``, or whole periods of the model's unit) and the
        rate (per period, or per year) of the values; the model's own when ``None``
        (:func:`clvmodel.units.resolve`). The report says which were used.

    Raises
    ------
    ClvError
        An output that is an input, unreadable files, a bad CAC config: one line.
    """
    segments_path = output.with_name(f"{output.stem}.segments{output.suffix}")
    chart_path = output.with_suffix(".png")
    page_path = output.with_suffix(".html")
    io.refuse_overwrite({"--output": output, "the segments table": segments_path, "the chart": chart_path,
                         "the HTML report": page_path},
                        [("--scores", scores), ("--customers", customers), ("--cac", cac),
                         ("--model", None if model is None or model.startswith(("models:/", "runs:/")) else model)])
    config = load_cac_config(cac)
    table = io.read_table(scores)
    skipped = 0
    if "status" in table.columns:
        ok = table["status"].astype(str).eq("ok")
        skipped = int((~ok).sum())
        table = table[ok].reset_index(drop=True)
    channels = (read_channels(customers, customer_id_column, channel_column) if customers is not None else None)
    values, horizon, new_values, notes, valuation = _model_values(
        model, table, config,
        {"horizon": horizon, "discount_rate": discount_rate, "annual_discount_rate": annual_discount_rate})
    result = run_budget(table, config, customers=channels, period_values=values, horizon=horizon,
                        new_values=new_values)
    result.warnings.extend(notes)
    if skipped:
        result.warnings.append(f"{skipped:,} customers of the scores file were not scored (status != ok) and are left out")
    io.write_table(result.channels, output)
    io.write_table(result.segments, segments_path)
    io.write_figure(ltv_cac_chart(result), chart_path)
    page = render_html(result, f"clvmodel budget report: {cac.stem}").encode("utf-8")
    write_atomically(page_path, lambda tmp: tmp.write_bytes(page))
    done = BudgetFiles(result, [output, segments_path, chart_path, page_path],
                       valuation=valuation.describe() if valuation is not None else None,
                       rate_warnings=valuation.warnings() if valuation is not None else [])
    if experiment or os.environ.get("MLFLOW_TRACKING_URI"):
        from clvmodel.integrations import mlflow_tracking as tracking

        with tracking.run(experiment or "budget", run_name=f"budget/{cac.stem}") as run_id:
            tracking.log_params({"scores": str(scores), "cac": str(cac), "target_ratio": config.target_ratio,
                                 "margin": config.margin, "budget": config.budget,
                                 "value_basis": result.value_basis[:250]})
            for path in done.written:
                tracking.log_artifact(path)
            tracking.log_text(format_report(result), "budget_report.txt")
            tracking.log_metrics({f"budget.{k}": v for k, v in result.summary().items()})
        done.run_id = run_id
    return done
