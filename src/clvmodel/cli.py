"""The ``clvmodel`` command: parse, call the library, print, set the exit code.

A user's mistake (:class:`~clvmodel.errors.ClvError`, a bad option) is one line on stderr and exit
code 2; ``--debug`` (anywhere on the line, or ``CLVMODEL_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import click
import pandas as pd
import typer

from clvmodel.errors import ClvError

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Predictive customer lifetime value: train, summarise and score.",
    pretty_exceptions_enable=False,
)

_ENGINE = Annotated[str, typer.Option("--engine", help="local (DuckDB) or spark.")]
_MASTER = Annotated[Optional[str], typer.Option("--spark-master", help="Spark master, e.g. local[*] or yarn.")]
_CONF = Annotated[Optional[list[str]], typer.Option("--spark-conf", help="Spark setting key=value (repeatable).")]


def _spark_session(engine: str, master: str | None, conf: list[str] | None):  # noqa: ANN202 - SparkSession
    """A Spark session for ``--engine spark`` (None for the local engine)."""
    if engine not in {"local", "spark"}:
        raise ClvError(f"--engine {engine!r}: use local or spark")
    if engine == "local":
        return None
    pairs = [c.split("=", 1) for c in conf or []]
    if any(len(p) != 2 for p in pairs):
        raise ClvError("--spark-conf takes key=value, e.g. --spark-conf spark.driver.memory=8g")
    from clvmodel import spark as clv_spark

    return clv_spark.session(master or "local[*]", config=dict(pairs))


_SET = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a config key, e.g. --set clv.horizon=52 (repeatable)."),
]


def _parse_date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ClvError(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None


def _refuse_overwrite(outputs: dict[str, Path], inputs: list[tuple[str, str | Path | None]]) -> None:
    """Refuse an output that is one of the inputs, before anything is read or written.

    Compared as files, not as names: a relative and an absolute path, a symbolic link or a hard
    link to the input are the same file (:func:`os.path.samefile`: device and inode), and an
    output not yet written is compared by its resolved path. Writing the output would otherwise
    replace the input (or the link to it) with the results, losing it.

    Raises
    ------
    ClvError
        Naming both options.
    """
    for out_option, output in outputs.items():
        for in_option, given in inputs:
            if given is None:
                continue
            source = Path(given)
            try:
                same = os.path.samefile(output, source) if output.exists() and source.exists() else (
                    output.resolve() == source.resolve())
            except OSError:
                same = False
            if same:
                raise ClvError(
                    f"{out_option} {output} is the same file as {in_option} {source}: writing it would overwrite the "
                    f"input; choose another {out_option} path"
                )


def _fmt(value: float, digits: int = 4) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:,.{digits}f}"


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="A YAML config, e.g. configs/cdnow.yaml.")],
    set_: _SET = None,
    no_tracking: Annotated[bool, typer.Option("--no-tracking", help="Do not log an MLflow run.")] = False,
) -> None:
    """Train the models a config describes, evaluate on the holdout, save and track them."""
    from clvmodel.config import load_config
    from clvmodel.train import train as run_training

    cfg = load_config(config, set_ or [])
    if cfg.subscriptions is not None:
        from clvmodel import subscription

        print(render_subscription(subscription.train(cfg, track=False if no_tracking else None)))
        return
    result = run_training(cfg, track=False if no_tracking else None)
    print(render_train(result))


def render_subscription(result) -> str:  # noqa: ANN001 - SubscriptionResult, imported lazily
    """The summary ``clvmodel train`` prints for an sBG config."""
    model = result.model.models["sbg"]
    settings, m = result.config.subscriptions, result.metrics
    lines = [
        f"clvmodel train: {result.config.name} (shifted-beta-geometric, {result.customers:,} customers, {settings.period}s)",
        f"  sbg          alpha {model.params_['alpha']:.4f} (se {model.standard_errors_['alpha']:.4f}), "
        f"beta {model.params_['beta']:.4f} (se {model.standard_errors_['beta']:.4f}); "
        f"log-likelihood {model.log_likelihood_:,.2f}",
        f"  value        DERL {m['sbg.derl']:.4f} {settings.period}s at discount {result.config.clv.discount_rate}; "
        f"a new customer is worth {m['sbg.clv_new_customer']:,.2f} (fee {settings.fee:g}, margin {result.config.clv.margin:g})",
    ]
    if result.projection is not None:
        lines.append(f"  projection (fitted on {settings.period}s 0-{settings.fitted_periods}; later rows are the holdout)")
        table = result.projection.assign(error=lambda f: (100 * f["error"]).round(2))
        lines.append(table.to_string(index=False, float_format=lambda v: f"{v:.1f}").replace("\n", "\n    ").join(["    ", ""]))
    lines.append(f"  model        {result.model_dir}")
    lines.append(f"  run          {result.run_id or 'not tracked'}")
    return "\n".join(lines)


def render_train(result) -> str:  # noqa: ANN001 - TrainResult, imported lazily
    """The readable summary ``clvmodel train`` prints."""
    lines: list[str] = []
    load, summary = result.load, result.rfm.summary
    lines.append(f"clvmodel train: {result.config.name}")
    lines.append(f"  data      {load.describe()}")
    cut = result.rfm.calibration_end or result.rfm.observation_end
    lines.append(
        f"  rfm       {len(summary):,} customers as of {cut} ({result.config.time_unit}s); "
        f"{int(summary['frequency'].sum()):,} repeat purchases"
        + (
            f"; holdout to {result.rfm.observation_end}: {int(summary['frequency_holdout'].sum()):,} repeat purchases"
            if result.rfm.split
            else ""
        )
    )
    if result.rfm.transactions_after_observation_end:
        lines.append(
            f"            {result.rfm.transactions_after_observation_end:,} transactions after the observation end "
            f"{result.rfm.observation_end} not used"
        )
    if result.rfm.customers_after_calibration or result.rfm.customers_after_observation_end:
        lines.append(
            f"            customers: {len(summary):,} summarised + {result.rfm.customers_after_calibration:,} first "
            f"bought after the calibration end + {result.rfm.customers_after_observation_end:,} only after the "
            f"observation end = {result.load.customers:,} read"
        )
    lines.append("  parameters")
    for name, model in result.model.models.items():
        params = ", ".join(
            f"{k} {_fmt(v)}" + (f" (se {_fmt(model.standard_errors_.get(k))})" if model.standard_errors_ else "")
            for k, v in (model.params_ or {}).items()
        )
        ll = f"; log-likelihood {_fmt(model.log_likelihood_, 1)}" if model.log_likelihood_ is not None else ""

        lines.append(f"    {name:<12} {params}{ll}")
    spend = result.model.spend_model
    if spend is not None:
        lines.append(
            f"    {'':<12} corr(frequency, spend) among repeat customers {spend.correlation_:.4f}"
            + (f"; {spend.excluded_} zero-spend repeat customers not in the fit" if spend.excluded_ else "")
        )
    lines.append(f"  predicted_clv from {result.model.selection['reason']}")
    if result.leaderboard is not None:
        lines.append("  holdout")
        board = result.leaderboard.copy()
        lines.append(
            board.to_string(
                index=False,
                float_format=lambda v: f"{v:,.3f}",
                columns=["model", "target", "total_actual", "total_predicted", "pct_error", "rmse", "mae", "spearman", "top20_share"],
            ).replace("\n", "\n    ").join(["    ", ""])
        )
        lines.append("  holdout purchases by calibration frequency (mean per customer)")
        lines.append(
            result.calibration_table.to_string(index=False, float_format=lambda v: f"{v:.3f}")
            .replace("\n", "\n    ")
            .join(["    ", ""])
        )
    scores = result.scores
    lines.append(
        f"  clv       {int((scores['status'] == 'ok').sum()):,} customers, horizon {result.config.clv.horizon} "
        f"{result.config.time_unit}s: total {scores['predicted_clv'].sum():,.2f}, mean {scores['predicted_clv'].mean():,.2f}"
    )
    for message in result.warnings:
        lines.append(f"  warning   {message}")
    lines.append(f"  model     {result.model_dir}")
    lines.append(f"  run       {result.run_id or 'not tracked'}")
    return "\n".join(lines)


@app.command()
def rfm(
    output: Annotated[Path, typer.Option("--output", help="CSV or Parquet file to write.")],
    config: Annotated[Optional[Path], typer.Option("--config", help="Read data and dates from a config.")] = None,
    input_: Annotated[Optional[str], typer.Option("--input", help="A transactions file, glob or folder.")] = None,
    customer_id: Annotated[str, typer.Option(help="Customer id column (with --input).")] = "customer_id",
    date: Annotated[str, typer.Option(help="Date column (with --input).")] = "date",
    amount: Annotated[str, typer.Option(help="Amount column (with --input).")] = "amount",
    date_format: Annotated[Optional[str], typer.Option(help="strftime format, e.g. %Y%m%d.")] = None,
    delimiter: Annotated[str, typer.Option(help="CSV delimiter, or 'whitespace'.")] = ",",
    time_unit: Annotated[str, typer.Option(help="day or week.")] = "week",
    calibration_end: Annotated[Optional[str], typer.Option(help="YYYY-MM-DD; adds holdout columns.")] = None,
    observation_end: Annotated[Optional[str], typer.Option(help="YYYY-MM-DD; default the last date.")] = None,
    set_: _SET = None,
    engine: _ENGINE = "local",
    spark_master: _MASTER = None,
    spark_conf: _CONF = None,
) -> None:
    """Write the RFM summary (with holdout columns when split) of a transaction log."""
    from clvmodel import io
    from clvmodel import rfm as rfm_mod
    from clvmodel.config import Columns, DataConfig, load_config

    if (config is None) == (input_ is None):
        raise ClvError("rfm: pass exactly one of --config CONFIG or --input FILE")
    if config is not None:
        cfg = load_config(config, set_ or [])
        data, unit, cal, obs = cfg.data, cfg.time_unit, cfg.calibration_end, cfg.observation_end
        if data is None:
            raise ClvError(f"{config} is a subscription config (no data section); clvmodel rfm summarises transactions")
    else:
        data = DataConfig(
            source=input_,
            columns=Columns(customer_id=customer_id, date=date, amount=amount),
            date_format=date_format,
            delimiter=delimiter,
        )
        unit = time_unit
        cal = _parse_date(calibration_end, "--calibration-end")
        obs = _parse_date(observation_end, "--observation-end")
    if unit not in {"day", "week"}:
        raise ClvError(f"--time-unit {unit!r}: use day or week")
    if not data.source.startswith("bundled:"):  # every file behind a glob or a folder too
        option = "--input" if input_ else "data.source"
        _refuse_overwrite({"--output": output}, [(option, f) for f in io.resolve_files(data.source)])
    session = _spark_session(engine, spark_master, spark_conf)
    if session is not None:
        from clvmodel import spark as clv_spark

        tx, report = clv_spark.load_transactions(session, None, data)
        summary = clv_spark.rfm(session, tx, time_unit=unit, calibration_end=cal, observation_end=obs)
        counts = clv_spark.rfm_counts(session, tx, calibration_end=cal, observation_end=obs)
        clv_spark.write(summary, str(output))
        print(
            f"rfm: {report.rows_read:,} rows read, {report.rows_kept:,} kept; {summary.count():,} customers ({unit}s) "
            f"written by Spark to the folder {output}"
            + (f"; {counts['customers_after_calibration']:,} customers first bought after the calibration end"
               if counts["customers_after_calibration"] else "")
        )
        return
    con = io.connect()
    try:
        report = io.load_transactions(con, data, observation_end=obs)
        result = rfm_mod.summarise(con, time_unit=unit, calibration_end=cal, observation_end=obs, days="days")
    finally:
        con.close()
    io.write_table(result.summary, output)
    print(f"rfm: {report.describe()}")
    print(
        f"rfm: {len(result.summary):,} customers ({unit}s) written to {output}"
        + (
            f"; {result.customers_after_calibration:,} customers first bought after the calibration end"
            if result.customers_after_calibration
            else ""
        )
    )


@app.command()
def score(
    model: Annotated[str, typer.Option("--model", help="Model directory or models:/ / runs:/ URI.")],
    input_: Annotated[str, typer.Option("--input", help="Transactions or RFM file (CSV/Parquet); a URI with Spark.")],
    output: Annotated[Path, typer.Option("--output", help="CSV or Parquet file to write.")],
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="YYYY-MM-DD (transactions input).")] = None,
    horizon: Annotated[Optional[int], typer.Option("--horizon", help="Periods of the model's time unit.")] = None,
    discount_rate: Annotated[Optional[float], typer.Option("--discount-rate", help="Per period.")] = None,
    margin: Annotated[Optional[float], typer.Option("--margin", help="Fraction of revenue, in (0, 1].")] = None,
    chunk_size: Annotated[int, typer.Option("--chunk-size", min=1, help="Customers scored at a time (memory bound).")] = 250_000,
    engine: _ENGINE = "local",
    spark_master: _MASTER = None,
    spark_conf: _CONF = None,
) -> None:
    """Score a customer file into one CLV forecast row per customer (streamed in chunks)."""
    from clvmodel import batch, io
    from clvmodel import load_model as load
    from clvmodel.inputs import plan_input
    from clvmodel.predict import _check_options

    # Before the model is loaded or anything written: a NaN discount rate wrote the output, then
    # failed summarising it (every CLV NaN).
    _check_options(horizon, discount_rate, margin)
    _refuse_overwrite({"--output": output}, [("--input", input_)])
    trained = load(model)
    _check_options(horizon, time_unit=trained.time_unit)  # 100 years in the model's own unit
    if trained.primary == "sbg":
        from clvmodel.subscription import score_subscribers

        if as_of is not None or horizon is not None:
            raise ClvError("--as-of and --horizon do not apply to a subscription (sbg) model; pass renewals per customer")
        scores = score_subscribers(trained, io.read_table(Path(input_)), discount_rate=discount_rate, margin=margin)
        io.write_table(scores, output)
        print(f"score: {len(scores):,} subscribers valued; total predicted CLV {scores['predicted_clv'].sum():,.2f}; "
              f"written to {output}")
        return
    session = _spark_session(engine, spark_master, spark_conf)
    if session is not None:
        from clvmodel import spark as clv_spark

        tx = clv_spark.transactions(session, input_, trained.config.get("data"))
        scores = clv_spark.score_transactions(session, tx, trained, as_of=_parse_date(as_of, "--as-of"),
                                              horizon=horizon, discount_rate=discount_rate, margin=margin)
        clv_spark.write(scores, str(output))
        print(f"score: {scores.count():,} customers scored by Spark, written to the folder {output}")
        return
    con = io.connect()
    try:
        source = plan_input(trained, input_, con, as_of=_parse_date(as_of, "--as-of"))
        batch.score_relation(trained, con, source, output, chunk_size=chunk_size, horizon=horizon,
                             discount_rate=discount_rate, margin=margin)
        print(render_score(*batch.output_summary(con, output), source, output))
    finally:
        con.close()


def render_score(status: pd.DataFrame, by: pd.DataFrame, source, output: Path) -> str:  # noqa: ANN001
    """The summary ``clvmodel score`` prints, from counts read back from the written file."""
    counts = dict(zip(status["status"], status["n"]))
    ok = int(counts.pop("ok", 0))
    kind = "RFM table" if source.kind == "rfm" else f"transactions summarised as of {source.as_of}"
    if source.ignored_transactions:
        kind += f" ({source.ignored_transactions:,} transactions after that date not used)"
    refused = sum(counts.values())
    total = float(by["sum"].sum()) if len(by) else 0.0
    lines = [
        f"score: input read as {kind}",
        f"  customers scored {ok:,}; not scored {refused:,}"
        + (f" ({', '.join(f'{k} {int(v):,}' for k, v in counts.items())})" if refused else ""),
        f"  predicted CLV total {total:,.2f}, mean {total / ok if ok else float('nan'):,.2f}",
        "  by segment:",
    ]
    for segment in [s for s in ("VIP", "high", "medium", "low", "at_risk", "lost") if s in by.index]:
        row = by.loc[segment]
        lines.append(f"    {segment:<8} {int(row['size']):>8,} customers  total {row['sum']:>14,.2f}  mean {row['mean']:>10,.2f}")
    lines.append(f"  written to {output}")
    return "\n".join(lines)


@app.command()
def budget(
    scores: Annotated[Path, typer.Option("--scores", help="Scores file from clvmodel score.")],
    cac: Annotated[Path, typer.Option("--cac", help="CAC config (YAML), e.g. configs/cac_demo.yaml.")],
    output: Annotated[Path, typer.Option("--output", help="Per-channel table (CSV/Parquet); chart and segments beside it.")],
    customers: Annotated[Optional[Path], typer.Option("--customers", help="customer_id, channel file.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Model for per-period values (payback).")] = None,
    experiment: Annotated[Optional[str], typer.Option("--experiment", help="Log to this MLflow experiment.")] = None,
) -> None:
    """LTV:CAC by channel, payback, verdicts, retention shares and a budget allocation."""
    from clvmodel import budget as budget_mod
    from clvmodel import io

    segments_path = output.with_name(f"{output.stem}.segments{output.suffix}")
    chart_path = output.with_suffix(".png")
    _refuse_overwrite({"--output": output, "the segments table": segments_path, "the chart": chart_path},
                      [("--scores", scores), ("--customers", customers), ("--cac", cac)])
    config = budget_mod.load_cac_config(cac)
    table = io.read_table(scores)
    skipped = 0
    if "status" in table.columns:
        ok = table["status"].astype(str).eq("ok")
        skipped = int((~ok).sum())
        table = table[ok].reset_index(drop=True)
    channels = io.read_table(customers) if customers is not None else None
    period_values, horizon = None, config.horizon
    if model is not None:
        period_values, horizon = _period_values(model, table)
    result = budget_mod.run_budget(table, config, customers=channels, period_values=period_values, horizon=horizon)
    if skipped:
        result.warnings.append(f"{skipped:,} customers of the scores file were not scored (status != ok) and are left out")
    io.write_table(result.channels, output)
    io.write_table(result.segments, segments_path)
    io.write_figure(budget_mod.ltv_cac_chart(result), chart_path)
    print(budget_mod.format_report(result))
    print(f"  written: {output}, {segments_path}, {chart_path}")
    if experiment or os.environ.get("MLFLOW_TRACKING_URI"):
        from clvmodel.integrations import mlflow_runs

        with mlflow_runs.run(experiment or "budget", run_name=f"budget/{cac.stem}") as run_id:
            mlflow_runs.log_params({"scores": str(scores), "cac": str(cac), "target_ratio": config.target_ratio,
                                    "margin": config.margin, "budget": config.budget})
            for path in (output, segments_path, chart_path):
                mlflow_runs.log_artifact(path)
            mlflow_runs.log_text(budget_mod.format_report(result), "budget_report.txt")
        print(f"  run {run_id}")


@app.command()
def serve(
    model: Annotated[Path, typer.Option("--model", help="A model directory written by clvmodel train.")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 5000,
    max_rows: Annotated[int, typer.Option("--max-rows", min=1, help="Rows per request, at most.")] = 100_000,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to score one request, at most.")] = 30.0,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Requests scored at the same time.")] = 2,
) -> None:
    """Verify a model directory whole (no code from it is run), then serve it over REST (MLflow's protocol)."""
    from clvmodel.serve import Limits
    from clvmodel.serve import serve as run_server

    run_server(model, host=host, port=port, limits=Limits(max_rows=max_rows, timeout=timeout, threads=threads))


def _period_values(model_ref: str, scores: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Each customer's expected revenue per period (discounted as the model says), for payback."""
    from clvmodel import load_model as load
    from clvmodel.predict import score as score_customers

    trained = load(model_ref)
    forecast = score_customers(trained, scores[[c for c in scores.columns if c in
                                                 ("customer_id", "frequency", "recency", "T", "monetary_value")]],
                               margin=1.0, per_period=True)
    periods = forecast.filter(like="period_")
    periods.columns = [int(c.removeprefix("period_")) for c in periods.columns]
    periods.index = forecast["customer_id"].to_numpy()
    return periods, int(trained.clv["horizon"])


# typer >= 0.2x vendors its own click: catch its exceptions and the installed click's alike.
_EXIT = (click.exceptions.Exit, typer.Exit)
_ABORT = (click.exceptions.Abort, typer.Abort)
_USAGE = (click.ClickException, getattr(typer, "TyperException", click.ClickException))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns (and exits with) the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("CLVMODEL_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    try:
        app(args=args, prog_name="clvmodel", standalone_mode=False)
        code = 0
    except ClvError as err:
        if debug:
            traceback.print_exc()
        print(f"clvmodel: error: {err}", file=sys.stderr)
        code = 2
    except _EXIT as err:
        code = err.exit_code
    except _USAGE as err:
        if debug:
            traceback.print_exc()
        print(f"clvmodel: error: {err.format_message()}", file=sys.stderr)  # type: ignore[attr-defined]
        code = 2
    except _ABORT:
        print("clvmodel: aborted", file=sys.stderr)
        code = 130
    if argv is None:
        sys.exit(code)
    return code
