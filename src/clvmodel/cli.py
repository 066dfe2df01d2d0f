"""The ``clvmodel`` command: parse, call the library, print, set the exit code.

A user's mistake (:class:`~clvmodel.errors.ClvError`, a bad option) is one line on stderr and exit
code 2; ``--debug`` (anywhere on the line, or ``CLVMODEL_DEBUG=1``) shows the traceback instead.

Libraries' log lines below WARNING (MLflow's ``INFO mlflow.pyfunc: Validating input example ...``
on every ``train`` and ``budget``) are off; ``--verbose`` (anywhere on the line) brings them back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import click
import typer

from clvmodel import report as render
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


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="A YAML config, e.g. configs/cdnow.yaml.")],
    set_: _SET = None,
    no_tracking: Annotated[bool, typer.Option("--no-tracking", help="Do not log an MLflow run.")] = False,
) -> None:
    """Train the models a config describes, evaluate on the holdout, save and track them."""
    from clvmodel import pipelines
    from clvmodel.config import load_config

    cfg = load_config(config, set_ or [])
    pipeline = pipelines.for_config(cfg)
    print(pipeline.render(pipeline.train(cfg, track=False if no_tracking else None)))


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
        io.refuse_overwrite({"--output": output}, [(option, f) for f in io.resolve_files(data.source)])
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
    io.refuse_overwrite({"--output": output}, [("--input", input_)])
    trained = load(model)
    _check_options(horizon, time_unit=trained.time_unit)  # 100 years in the model's own unit
    if trained.subscription:
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
        print(render.render_score(*batch.output_summary(con, output), source, output))
    finally:
        con.close()


@app.command()
def acquisition(
    model: Annotated[str, typer.Option("--model", help="Model directory or models:/ / runs:/ URI.")],
    output: Annotated[Path, typer.Option("--output", help="CSV or Parquet file to write.")],
    input_: Annotated[Optional[Path], typer.Option("--input", help="Profiles (CSV/Parquet): channel and/or covariates "
                                                                    "per row; default every trained channel.")] = None,
    horizon: Annotated[Optional[int], typer.Option("--horizon", help="Periods of the model's time unit.")] = None,
    discount_rate: Annotated[Optional[float], typer.Option("--discount-rate", help="Per period.")] = None,
    margin: Annotated[Optional[float], typer.Option("--margin", help="Fraction of revenue, in (0, 1].")] = None,
    level: Annotated[Optional[float], typer.Option("--level", help="Interval level, e.g. 0.9.")] = None,
    draws: Annotated[Optional[int], typer.Option("--draws", help="Bootstrap draws (0: no intervals).")] = None,
) -> None:
    """The value of a new customer per acquisition channel (or per profile), first order included."""
    from clvmodel import acquisition as acq
    from clvmodel import io
    from clvmodel import load_model as load
    from clvmodel.checks import PARQUET

    if output.suffix.lower() not in {".csv", *PARQUET}:
        raise ClvError(f"--output {output}: unknown extension {output.suffix!r}; use .csv or .parquet")
    io.refuse_overwrite({"--output": output}, [("--input", input_), ("--model", model)])
    trained = load(model)
    horizon_, rate, margin_ = acq.settings(trained, horizon, discount_rate, margin)
    intervals = trained.config.get("intervals") or {}
    level_ = float(intervals.get("level", 0.9)) if level is None else level
    draws_ = int(intervals.get("draws", 1000)) if draws is None else draws
    profiles = io.read_table(input_, text_columns=acq.text_columns(trained)) if input_ is not None else None
    table = acq.acquisition_table(trained, profiles, horizon=horizon_, discount_rate=rate, margin=margin_, level=level_,
                                  draws=draws_, seed=int(intervals.get("seed", 0)), origin=str(input_ or model))
    io.write_table(table, output)
    print(render.render_acquisition(table, model=trained.name, time_unit=trained.time_unit, horizon=horizon_,
                                    discount_rate=rate, margin=margin_, level=level_, output=output,
                                    channel_column=trained.acquisition.channel if trained.acquisition else None))


@app.command()
def budget(
    scores: Annotated[Path, typer.Option("--scores", help="Scores file from clvmodel score.")],
    cac: Annotated[Path, typer.Option("--cac", help="CAC config (YAML), e.g. configs/cac_demo.yaml.")],
    output: Annotated[Path, typer.Option("--output", help="Per-channel table (CSV/Parquet); chart and segments beside it.")],
    customers: Annotated[Optional[Path], typer.Option("--customers", help="customer_id, channel file.")] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", help="Model trained with a channel: LTV:CAC on the acquisition value of a new customer. "
        "Any other model: per-period values of existing customers, for payback.")] = None,
    experiment: Annotated[Optional[str], typer.Option("--experiment", help="Log to this MLflow experiment.")] = None,
) -> None:
    """LTV:CAC by channel, payback, verdicts, retention shares and a budget allocation."""
    from clvmodel import budget as budget_mod

    done = budget_mod.budget_files(scores, cac, output, customers=customers, model=model, experiment=experiment)
    print(budget_mod.format_report(done.result))
    print(f"  written: {', '.join(map(str, done.written))}")
    if done.run_id:
        print(f"  run {done.run_id}")


_NUMBER = Optional[float]


@app.command()
def formula(
    order_value: Annotated[_NUMBER, typer.Option("--order-value", help="Average order value.")] = None,
    purchases_per_period: Annotated[_NUMBER, typer.Option("--purchases-per-period", help="Orders per period.")] = None,
    fee: Annotated[_NUMBER, typer.Option("--fee", help="A subscription's fee per period (instead of orders).")] = None,
    periods: Annotated[_NUMBER, typer.Option("--periods", help="Lifetime in periods, e.g. 12.")] = None,
    retention_rate: Annotated[
        _NUMBER, typer.Option("--retention-rate", help="Per period, in [0, 1): lifetime 1/(1-r); not with --periods.")
    ] = None,
    margin: Annotated[float, typer.Option("--margin", help="Share of the value kept, in (0, 1].")] = 1.0,
    discount_rate: Annotated[
        float, typer.Option("--discount-rate", help="Per period, in [0, 1); period k counts (1+d)^-k.")
    ] = 0.0,
    cac: Annotated[_NUMBER, typer.Option("--cac", help="Acquisition cost: LTV:CAC, verdict, max CAC.")] = None,
    target_ratio: Annotated[_NUMBER, typer.Option("--target-ratio", help="LTV:CAC to reach (with --cac); 3.")] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="One JSON object: ltv (+ ltv_cac, max_allowable_cac, verdict).")
    ] = False,
) -> None:
    """LTV from aggregate inputs (no data, no model): margin × value per period × lifetime; the 3:1 rule."""
    import json

    from clvmodel.formula import lifetime_value, render

    result = lifetime_value(order_value=order_value, purchases_per_period=purchases_per_period, fee=fee,
                            periods=periods, retention_rate=retention_rate, margin=margin,
                            discount_rate=discount_rate, cac=cac, target_ratio=target_ratio)
    print(json.dumps(result.as_dict()) if json_ else render(result))


@app.command()
def whatif(
    model: Annotated[str, typer.Option("--model", help="Model directory or models:/ / runs:/ URI.")],
    input_: Annotated[str, typer.Option("--input", help="The existing base: RFM or transactions file, as score takes "
                                        "(sBG: customer_id, renewals).")],
    output: Annotated[Path, typer.Option("--output", help="Table (CSV/Parquet); the tornado chart beside it (.png).")],
    retention: Annotated[Optional[str], typer.Option("--retention", help="One-year retention of a new customer: "
                                                     "+5pp (points) or +5% (percent).")] = None,
    order_value: Annotated[Optional[str], typer.Option("--order-value", help="Spend per order, e.g. +10%.")] = None,
    frequency: Annotated[Optional[str], typer.Option("--frequency", help="Purchase rate, e.g. +10%.")] = None,
    margin: Annotated[Optional[float], typer.Option("--margin", help="Fraction of revenue, in (0, 1].")] = None,
    horizon: Annotated[Optional[int], typer.Option("--horizon", help="Periods of the model's time unit.")] = None,
    discount_rate: Annotated[Optional[float], typer.Option("--discount-rate", help="Per period.")] = None,
    cac: Annotated[Optional[float], typer.Option("--cac", help="A new customer's acquisition cost: LTV:CAC.")] = None,
    target_ratio: Annotated[float, typer.Option("--target-ratio", help="LTV:CAC to reach; max allowable CAC.")] = 3.0,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="YYYY-MM-DD (transactions input).")] = None,
    experiment: Annotated[Optional[str], typer.Option("--experiment", help="Log to this MLflow experiment.")] = None,
) -> None:
    """Levers on a trained model: remaining CLV of the base and a new customer's value under each, and together."""
    from clvmodel.whatif import render as render_whatif
    from clvmodel.whatif import whatif_files

    done = whatif_files(model, input_, output, retention=retention, frequency=frequency, order_value=order_value,
                        horizon=horizon, discount_rate=discount_rate, margin=margin, cac=cac,
                        target_ratio=target_ratio, as_of=_parse_date(as_of, "--as-of"), experiment=experiment)
    print(render_whatif(done.result))
    print(f"  written: {', '.join(map(str, done.written))}")
    if done.run_id:
        print(f"  run {done.run_id}")


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


# typer >= 0.2x vendors its own click: catch its exceptions and the installed click's alike.
_EXIT = (click.exceptions.Exit, typer.Exit)
_ABORT = (click.exceptions.Abort, typer.Abort)
_USAGE = (click.ClickException, getattr(typer, "TyperException", click.ClickException))


@contextlib.contextmanager
def _library_logs(verbose: bool):  # noqa: ANN202 - a context manager
    """MLflow logs at WARNING and above, or (``verbose``) at INFO, its default; restored afterwards.

    MLflow sets its logger's level from ``MLFLOW_LOGGING_LEVEL`` when it is first imported (lazily,
    inside a command), so the variable is set for the call; an MLflow already imported gets the
    level directly.
    """
    level = "INFO" if verbose else "WARNING"
    saved_env = os.environ.get("MLFLOW_LOGGING_LEVEL")
    logger = logging.getLogger("mlflow")
    saved_level = logger.level
    os.environ["MLFLOW_LOGGING_LEVEL"] = level
    if "mlflow" in sys.modules:
        logger.setLevel(level)
    try:
        yield
    finally:
        if saved_env is None:
            os.environ.pop("MLFLOW_LOGGING_LEVEL", None)
        else:
            os.environ["MLFLOW_LOGGING_LEVEL"] = saved_env
        logger.setLevel(saved_level)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns (and exits with) the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("CLVMODEL_DEBUG") == "1"
    verbose = "--verbose" in args
    args = [a for a in args if a not in {"--debug", "--verbose"}]
    try:
        with _library_logs(verbose):
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
