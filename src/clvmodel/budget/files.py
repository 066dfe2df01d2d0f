"""``clvmodel budget`` as one library call: read the files, run the stage, write, log.

:func:`budget_files` is what the CLI calls: it refuses an output that is an input before
anything is read, leaves out the customers the scores file could not score (said in the
report), takes each customer's per-period value from the model when one is given (for payback),
runs :func:`~clvmodel.budget.run.run_budget`, writes the channel table, the segment table and
the chart beside each other, and logs them to MLflow when an experiment (or
``MLFLOW_TRACKING_URI``) is set. The CLI only renders the result.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from clvmodel import io
from clvmodel.budget.cac_config import load_cac_config
from clvmodel.budget.report import format_report, ltv_cac_chart
from clvmodel.budget.run import BudgetResult, run_budget

__all__ = ["BudgetFiles", "budget_files", "period_values"]


@dataclass
class BudgetFiles:
    """What :func:`budget_files` did: the stage's result, the files written, the MLflow run."""

    result: BudgetResult
    written: list[Path] = field(default_factory=list)
    run_id: str | None = None


def period_values(model_ref: str, scores: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Each customer's expected revenue per period (discounted as the model says), for payback.

    Returns
    -------
    values, horizon
        Customers (index: ``customer_id``) × periods ``1..H``; ``H`` the model's horizon.
    """
    from clvmodel import load_model
    from clvmodel.predict import score

    trained = load_model(model_ref)
    columns = [c for c in scores.columns if c in ("customer_id", "frequency", "recency", "T", "monetary_value")]
    forecast = score(trained, scores[columns], margin=1.0, per_period=True)
    periods = forecast.filter(like="period_")
    periods.columns = [int(c.removeprefix("period_")) for c in periods.columns]
    periods.index = forecast["customer_id"].to_numpy()
    return periods, int(trained.clv["horizon"])


def budget_files(
    scores: Path,
    cac: Path,
    output: Path,
    *,
    customers: Path | None = None,
    model: str | None = None,
    experiment: str | None = None,
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
        A ``customer_id, channel`` file.
    model
        A model directory or URI, for per-period values (payback).
    experiment
        The MLflow experiment to log to (default ``budget`` when only ``MLFLOW_TRACKING_URI`` is set).

    Raises
    ------
    ClvError
        An output that is an input, unreadable files, a bad CAC config: one line.
    """
    segments_path = output.with_name(f"{output.stem}.segments{output.suffix}")
    chart_path = output.with_suffix(".png")
    io.refuse_overwrite({"--output": output, "the segments table": segments_path, "the chart": chart_path},
                        [("--scores", scores), ("--customers", customers), ("--cac", cac)])
    config = load_cac_config(cac)
    table = io.read_table(scores)
    skipped = 0
    if "status" in table.columns:
        ok = table["status"].astype(str).eq("ok")
        skipped = int((~ok).sum())
        table = table[ok].reset_index(drop=True)
    channels = io.read_table(customers) if customers is not None else None
    values, horizon = (None, config.horizon) if model is None else period_values(model, table)
    result = run_budget(table, config, customers=channels, period_values=values, horizon=horizon)
    if skipped:
        result.warnings.append(f"{skipped:,} customers of the scores file were not scored (status != ok) and are left out")
    io.write_table(result.channels, output)
    io.write_table(result.segments, segments_path)
    io.write_figure(ltv_cac_chart(result), chart_path)
    done = BudgetFiles(result, [output, segments_path, chart_path])
    if experiment or os.environ.get("MLFLOW_TRACKING_URI"):
        from clvmodel.integrations import mlflow_tracking as tracking

        with tracking.run(experiment or "budget", run_name=f"budget/{cac.stem}") as run_id:
            tracking.log_params({"scores": str(scores), "cac": str(cac), "target_ratio": config.target_ratio,
                                 "margin": config.margin, "budget": config.budget})
            for path in done.written:
                tracking.log_artifact(path)
            tracking.log_text(format_report(result), "budget_report.txt")
        done.run_id = run_id
    return done
