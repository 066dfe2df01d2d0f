"""The ``clvmodel`` command: parse, call the library, print, set the exit code.

A user's mistake (:class:`~clvmodel.errors.ClvError`, a bad option) is one line on stderr and exit
code 2; ``--debug`` (anywhere on the line, or ``CLVMODEL_DEBUG=1``) shows the traceback instead.

Libraries' log lines below WARNING (MLflow's ``INFO mlflow.store.db.utils: ...`` when a tracked
``train`` or ``budget`` opens its store) are off; ``--verbose`` (anywhere on the line) brings them back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import os
import re
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
        if master is not None or conf:  # a setting for a session that will not start: not ignored
            raise ClvError("--spark-master and --spark-conf are for --engine spark; add it, or leave them out")
        return None
    pairs = [c.split("=", 1) for c in conf or []]
    if any(len(p) != 2 for p in pairs):
        raise ClvError("--spark-conf takes key=value, e.g. --spark-conf spark.driver.memory=8g")
    from clvmodel import spark as clv_spark

    return clv_spark.session(master or "local[*]", config=dict(pairs))


_HORIZON = Annotated[Optional[str], typer.Option(
    "--horizon", help="Horizon: \"3 years\", 3y, 36m, 156w, 1095d, or whole periods of the model's time unit "
    "(rounded down to whole periods; the output says what was used).")]
_RATE = Annotated[Optional[float], typer.Option("--discount-rate", help="Per period of the model's time unit.")]
_ANNUAL = Annotated[Optional[float], typer.Option(
    "--annual-discount-rate", help="Per year, e.g. 0.10; converted to (1 + r)^(days per period / 365.25) - 1.")]


def _settings(trained, horizon: str | None, rate: float | None, annual: float | None):  # noqa: ANN001, ANN202
    """The horizon and per-period rate a command uses on ``trained`` (:func:`clvmodel.units.resolve`):
    what was given, else the model's; any warning goes to stderr here."""
    from clvmodel import units

    used = units.resolve(trained.time_unit, horizon, rate, annual, defaults=units.defaults_of(trained))
    for line in used.warnings():
        print(f"clvmodel: warning: {line}", file=sys.stderr)
    return used


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
    engine: _ENGINE = "local",
    spark_master: _MASTER = None,
    spark_conf: _CONF = None,
) -> None:
    """Train the models a config describes, evaluate on the holdout, save and track them.

    With --engine spark the summary and the calibration/holdout split are computed on Spark;
    the fits, evaluation and tracking run here, as with the local engine.
    """
    from clvmodel import pipelines
    from clvmodel.config import load_config

    cfg = load_config(config, set_ or [])
    pipeline = pipelines.for_config(cfg)
    source = None
    if engine == "spark":  # what Spark cannot do yet is refused before a session starts
        from clvmodel.spark.training import SparkSummaries, refuse_unsupported

        refuse_unsupported(cfg)
        source = SparkSummaries(_spark_session(engine, spark_master, spark_conf))
    else:
        _spark_session(engine, spark_master, spark_conf)  # an unknown --engine is refused
    print(pipeline.render(pipeline.train(cfg, track=False if no_tracking else None, source=source)))


#: Config keys of a data section and the ``clvmodel rfm`` options that set them with ``--input``.
_INPUT_FLAGS = {
    "data.source": "--input",
    "data.columns.customer_id": "--customer-id",
    "data.columns.date": "--date",
    "data.columns.amount": "--amount",
    "data.date_format": "--date-format",
    "data.delimiter": "--delimiter",
    "data.encoding": "--encoding",
}


def _as_flags(message: str) -> str:
    """A data error worded for ``clvmodel rfm --input``: options where the message names config keys.

    The readers word their fixes for a config (``set data.delimiter: ";"``); a user of
    ``--input`` has no config, so each key becomes its option (``pass --delimiter ";"``), and a
    key without one becomes ``--set data.key=value`` (which ``--input`` takes too).
    """
    message = re.sub(r"\{decimal_mark: '(.)'\}", r"--decimal-mark '\1'", message)
    message = message.replace("set data.amount_format: --decimal-mark", "pass --decimal-mark")
    message = message.replace("set data.amount_format if", "pass --decimal-mark (and --thousands-separator) if")
    message = message.replace("set data.amount_format to the one meant", "pass --decimal-mark for the one meant")
    message = message.replace("remove data.date_format", "drop --date-format")

    def setting(match: re.Match[str]) -> str:
        key, value = match.group(1), match.group(2)
        flag = _INPUT_FLAGS.get(key)
        return f"pass {flag} {value}" if flag else f"pass --set {key}={value.strip(chr(39) + chr(34))}"

    value = r"(\"[^\"]*\"|'[^']*'|[^\s;,)]+)"
    message = re.sub(rf"set (data\.[a-z_.]*[a-z_]): {value}", setting, message)
    message = re.sub(rf"e\.g\. (data\.[a-z_.]*[a-z_]): {value}", lambda m: "e.g. " + setting(m).removeprefix("pass "),
                     message)
    return re.sub(r"(?<!--set )\bdata\.[a-z_.]*[a-z_]", lambda m: _INPUT_FLAGS.get(m.group(0), f"--set {m.group(0)}"), message)


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
    encoding: Annotated[str, typer.Option(help="utf-8, latin-1 or utf-16 (with --input).")] = "utf-8",
    decimal_mark: Annotated[Optional[str], typer.Option(
        help="Amounts' decimal mark, . or , (with --input; default: detected where unambiguous).")] = None,
    thousands_separator: Annotated[Optional[str], typer.Option(
        help="Amounts' thousands separator: , . ' or a blank (with --input; default: the other mark).")] = None,
    time_unit: Annotated[str, typer.Option(help="day, week, month (365.25/12 days) or year (365.25 days).")] = "week",
    calibration_end: Annotated[Optional[str], typer.Option(help="YYYY-MM-DD; adds holdout columns.")] = None,
    observation_end: Annotated[Optional[str], typer.Option(help="YYYY-MM-DD; default the last date.")] = None,
    set_: _SET = None,
    engine: _ENGINE = "local",
    spark_master: _MASTER = None,
    spark_conf: _CONF = None,
) -> None:
    """Write the RFM summary (with holdout columns when split) of a transaction log.

    With ``--input``, the options set the data section a config would (``--set data.KEY=VALUE``
    for the rest, e.g. ``data.negative_amounts=exclude``), and errors name the options.
    """
    if (config is None) == (input_ is None):
        raise ClvError("rfm: pass exactly one of --config CONFIG or --input FILE")
    try:
        _rfm(output, config, input_, customer_id, date, amount, date_format, delimiter, encoding, decimal_mark,
             thousands_separator, time_unit, calibration_end, observation_end, set_, engine, spark_master, spark_conf)
    except ClvError as err:
        if input_ is None:
            raise
        raise ClvError(_as_flags(str(err))) from None


def _rfm(output: Path, config: Path | None, input_: str | None, customer_id: str, date: str, amount: str,
         date_format: str | None, delimiter: str, encoding: str, decimal_mark: str | None,
         thousands_separator: str | None, time_unit: str, calibration_end: str | None, observation_end: str | None,
         set_: list[str] | None, engine: str, spark_master: str | None, spark_conf: list[str] | None) -> None:
    from clvmodel import io
    from clvmodel import rfm as rfm_mod
    from clvmodel.config import apply_overrides, load_config, parse_config

    if config is not None:
        cfg = load_config(config, set_ or [])
        data, unit, cal, obs = cfg.data, cfg.time_unit, cfg.calibration_end, cfg.observation_end
        if data is None:
            raise ClvError(f"{config} is a subscription config (no data section); clvmodel rfm summarises transactions")
    else:
        raw: dict = {"source": input_, "columns": {"customer_id": customer_id, "date": date, "amount": amount},
                     "date_format": date_format, "delimiter": delimiter, "encoding": encoding}
        if decimal_mark is not None or thousands_separator is not None:
            raw["amount_format"] = {"decimal_mark": decimal_mark or ".", "thousands_separator": thousands_separator}
        overrides = [item for item in set_ or [] if item.startswith("data.")]
        if len(overrides) != len(set_ or []):
            raise ClvError("rfm --input takes --set data.KEY=VALUE only (the other settings are options)")
        data = parse_config(apply_overrides({"name": "rfm", "data": raw}, overrides), origin="rfm").data
        unit = time_unit
        cal = _parse_date(calibration_end, "--calibration-end")
        obs = _parse_date(observation_end, "--observation-end")
    if unit not in {"day", "week", "month", "year"}:
        raise ClvError(f"--time-unit {unit!r}: use day, week, month or year")
    if not data.source.startswith("bundled:"):  # every file behind a glob or a folder too
        option = "--input" if input_ else "data.source"
        io.refuse_overwrite({"--output": output}, [(option, f) for f in io.resolve_files(data.source)])
    if engine == "spark":  # before a session starts: Spark would ignore DuckDB's settings
        from clvmodel.spark.load import refuse_duckdb_settings

        refuse_duckdb_settings(data)
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
    con = io.connect_for(data)  # data.memory_limit applies here too (it was ignored before)
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


_ROLES = ("customer_id", "date", "amount")


def _reading_overrides(columns: str | None, delimiter: str | None, date_format: str | None) -> dict:
    """``--columns customer_id=Id,date=Date,amount=Price``, ``--delimiter``, ``--date-format`` as reading overrides."""
    from clvmodel.config import Columns, DataConfig

    out: dict = {}
    if columns is not None:
        names: dict[str, str] = {}
        for item in columns.split(","):
            role, sep, name = item.partition("=")
            role, name = role.strip(), name.strip()
            if not sep or role not in _ROLES or not name:
                raise ClvError(f"--columns {columns!r}: expected role=name pairs separated by commas, roles "
                               f"{', '.join(_ROLES)}, e.g. --columns customer_id=Id,date=Date,amount=Price")
            if role in names:
                raise ClvError(f"--columns {columns!r}: {role} is given twice")
            names[role] = name
        out["columns"] = Columns(**names).model_dump(exclude_unset=True)
    if delimiter is not None:
        try:
            DataConfig(source="x", delimiter=delimiter)
        except ValueError:
            raise ClvError(f"--delimiter {delimiter!r}: use one character (not a quote, line break, letter or digit) "
                           "or 'whitespace'") from None
        out["delimiter"] = delimiter
    if date_format is not None:
        out["date_format"] = date_format
    return out


@app.command()
def score(
    model: Annotated[str, typer.Option("--model", help="Model directory or models:/ / runs:/ URI.")],
    input_: Annotated[str, typer.Option("--input", help="Transactions or RFM file (CSV/Parquet); a URI with Spark.")],
    output: Annotated[Path, typer.Option("--output", help="CSV or Parquet file to write.")],
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="YYYY-MM-DD (transactions input).")] = None,
    horizon: _HORIZON = None,
    discount_rate: _RATE = None,
    annual_discount_rate: _ANNUAL = None,
    margin: Annotated[Optional[float], typer.Option("--margin", help="Fraction of revenue, in (0, 1].")] = None,
    chunk_size: Annotated[int, typer.Option("--chunk-size", min=1, help="Customers scored at a time (memory bound).")] = 250_000,
    columns: Annotated[Optional[str], typer.Option(
        "--columns", help="A transaction log's column names when they differ from training's, e.g. "
        "customer_id=Id,date=Date,amount=Price.")] = None,
    delimiter: Annotated[Optional[str], typer.Option(
        "--delimiter", help="A transaction log's delimiter when it differs from training's (or 'whitespace').")] = None,
    date_format: Annotated[Optional[str], typer.Option(
        "--date-format", help="A transaction log's date format when it differs from training's.")] = None,
    engine: _ENGINE = "local",
    spark_master: _MASTER = None,
    spark_conf: _CONF = None,
) -> None:
    """Score a customer file into one CLV forecast row per customer (streamed in chunks).

    ``--input`` is an RFM table, a transaction log (read with the model's own data config:
    column names, delimiter, date format; ``--columns``, ``--delimiter``, ``--date-format``
    override them) or ``bundled:NAME`` as in training.
    """
    from clvmodel import batch, io
    from clvmodel import load_model as load
    from clvmodel.inputs import plan_input
    from clvmodel.predict import _check_options

    # Before the model is loaded or anything written: a NaN discount rate wrote the output, then
    # failed summarising it (every CLV NaN).
    from clvmodel.units import parse_horizon, resolve

    if horizon is not None:
        parse_horizon(horizon, None, name="--horizon")  # the text, before the model gives its unit
    _check_options(None, discount_rate, margin)
    resolve("day", 1, discount_rate, annual_discount_rate)  # the annual rate (and not both), before the model is read
    reading = _reading_overrides(columns, delimiter, date_format)
    io.refuse_overwrite({"--output": output}, [("--input", None if input_.startswith("bundled:") else input_)])
    trained = load(model)
    if trained.subscription:
        from clvmodel.subscription import score_subscribers

        if as_of is not None or horizon is not None:
            raise ClvError("--as-of and --horizon do not apply to a subscription (sbg) model; pass renewals per customer")
        used = _settings(trained, None, discount_rate, annual_discount_rate)
        scores = score_subscribers(trained, io.read_table(Path(input_)), discount_rate=used.discount_rate, margin=margin)
        io.write_table(scores, output)
        print(f"score: {len(scores):,} subscribers valued; total predicted CLV {scores['predicted_clv'].sum():,.2f}; "
              f"discount {used.discount_rate:.8g} per {used.unit}; written to {output}")
        return
    used = _settings(trained, horizon, discount_rate, annual_discount_rate)
    horizon_, discount_rate = used.periods, used.discount_rate
    _check_options(horizon_, discount_rate, time_unit=trained.time_unit)
    session = _spark_session(engine, spark_master, spark_conf)
    if session is not None:
        from clvmodel import spark as clv_spark

        from clvmodel.inputs import reading_rules

        tx = clv_spark.transactions(session, input_, reading_rules(trained, reading))
        scores = clv_spark.score_transactions(session, tx, trained, as_of=_parse_date(as_of, "--as-of"),
                                              horizon=horizon_, discount_rate=discount_rate, margin=margin)
        clv_spark.write(scores, str(output))
        print(f"score: {scores.count():,} customers scored by Spark, written to the folder {output}")
        print(f"score: {used.describe()}")
        return
    con = io.connect()
    try:
        source = plan_input(trained, input_, con, as_of=_parse_date(as_of, "--as-of"), reading=reading)
        batch.score_relation(trained, con, source, output, chunk_size=chunk_size, horizon=horizon_,
                             discount_rate=discount_rate, margin=margin)
        print(render.render_score(*batch.output_summary(con, output), source, output,
                                  ranked=trained.segment_boundaries is None))
        print(f"score: {used.describe()}")
    finally:
        con.close()


@app.command()
def acquisition(
    model: Annotated[str, typer.Option("--model", help="Model directory or models:/ / runs:/ URI.")],
    output: Annotated[Path, typer.Option("--output", help="CSV or Parquet file to write.")],
    input_: Annotated[Optional[Path], typer.Option("--input", help="Profiles (CSV/Parquet): channel and/or covariates "
                                                                    "per row; default every trained channel.")] = None,
    horizon: _HORIZON = None,
    discount_rate: _RATE = None,
    annual_discount_rate: _ANNUAL = None,
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
    used = _settings(trained, horizon, discount_rate, annual_discount_rate)
    horizon_, rate, margin_ = acq.settings(trained, used.periods, used.discount_rate, margin)
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
    print(f"acquisition: {used.describe()}")


@app.command()
def budget(
    scores: Annotated[Path, typer.Option("--scores", help="Scores file from clvmodel score.")],
    cac: Annotated[Path, typer.Option("--cac", help="CAC config (YAML), e.g. configs/cac_demo.yaml.")],
    output: Annotated[Path, typer.Option("--output", help="Per-channel table (CSV/Parquet); chart and segments beside it.")],
    customers: Annotated[Optional[Path], typer.Option(
        "--customers", help="Customer table with an id and a channel column (see --customer-id-column, --channel-column).")] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", help="Model trained with a channel: LTV:CAC on the acquisition value of a new customer. "
        "Any other model: per-period values of existing customers, for payback.")] = None,
    experiment: Annotated[Optional[str], typer.Option("--experiment", help="Log to this MLflow experiment.")] = None,
    customer_id_column: Annotated[str, typer.Option(
        "--customer-id-column", help="The id column of --customers.")] = "customer_id",
    channel_column: Annotated[str, typer.Option("--channel-column", help="The channel column of --customers.")] = "channel",
    horizon: _HORIZON = None,
    discount_rate: _RATE = None,
    annual_discount_rate: _ANNUAL = None,
) -> None:
    """LTV:CAC by channel, payback, verdicts, retention shares and a budget allocation."""
    from clvmodel import budget as budget_mod

    done = budget_mod.budget_files(scores, cac, output, customers=customers, model=model, experiment=experiment,
                                   customer_id_column=customer_id_column, channel_column=channel_column,
                                   horizon=horizon, discount_rate=discount_rate,
                                   annual_discount_rate=annual_discount_rate)
    for line in done.rate_warnings:
        print(f"clvmodel: warning: {line}", file=sys.stderr)
    print(budget_mod.format_report(done.result))
    if done.valuation:
        print(f"  valued over {done.valuation}")
    print(f"  written: {', '.join(map(str, done.written))}")
    if done.run_id:
        print(f"  run {done.run_id}")


_NUMBER = Optional[float]


def _formula_number(value: str | float) -> float | str:
    """``--periods`` as a number when it reads as one (the formula's own messages refuse the rest)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


@app.command()
def formula(
    order_value: Annotated[_NUMBER, typer.Option("--order-value", help="Average order value.")] = None,
    purchases_per_period: Annotated[_NUMBER, typer.Option("--purchases-per-period", help="Orders per period.")] = None,
    fee: Annotated[_NUMBER, typer.Option("--fee", help="A subscription's fee per period (instead of orders).")] = None,
    periods: Annotated[Optional[str], typer.Option(
        "--periods", help="Lifetime in periods, e.g. 12; with --period also \"3 years\", 36m, 156w (exact, "
        "a fractional last period pro rata).")] = None,
    period: Annotated[Optional[str], typer.Option(
        "--period", help="What a period is: day, week, month (365.25/12 days) or year; lets --periods and "
        "the rates carry units.")] = None,
    retention_rate: Annotated[
        _NUMBER, typer.Option("--retention-rate", help="Per period, in [0, 1): lifetime 1/(1-r); not with --periods.")
    ] = None,
    margin: Annotated[float, typer.Option("--margin", help="Share of the value kept, in (0, 1].")] = 1.0,
    discount_rate: Annotated[
        _NUMBER, typer.Option("--discount-rate", help="Per period, in [0, 1); period k counts (1+d)^-k; default 0.")
    ] = None,
    annual_discount_rate: Annotated[
        _NUMBER, typer.Option("--annual-discount-rate", help="Per year, e.g. 0.10 (with --period): converted to "
                              "(1 + r)^(days per period / 365.25) - 1.")
    ] = None,
    cac: Annotated[_NUMBER, typer.Option("--cac", help="Acquisition cost: LTV:CAC, verdict, max CAC.")] = None,
    target_ratio: Annotated[_NUMBER, typer.Option("--target-ratio", help="LTV:CAC to reach (with --cac); 3.")] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="One JSON object: ltv (+ ltv_cac, max_allowable_cac, verdict).")
    ] = False,
) -> None:
    """LTV from aggregate inputs (no data, no model): margin × value per period × lifetime; the 3:1 rule."""
    import json

    from clvmodel import units
    from clvmodel.formula import lifetime_value, render

    lifetime, used = periods, None
    if period is not None:
        if period not in units.DAYS:
            raise ClvError(f"formula: --period {period!r}: use day, week, month or year")
        if discount_rate is not None and annual_discount_rate is not None:
            raise ClvError("formula: give --discount-rate (per period) or --annual-discount-rate (per year), not both")
        if periods is not None:
            exact = units.length(periods, period)
            lifetime = float(exact)
        if annual_discount_rate is not None:
            discount_rate = units.per_period_rate(units.check_rate(annual_discount_rate, "--annual-discount-rate"), period)
        used = [f"a period is a {period}"]
        if units.has_unit(periods):
            used.append(f"--periods {periods} = {float(exact):,.6g} {period}s")
        rate = 0.0 if discount_rate is None else discount_rate
        used.append(f"discount {rate:.8g} per {period}"
                    + (f" ({annual_discount_rate * 100:g} % a year)" if annual_discount_rate is not None else ""))
        bound = units.ANNUAL_LOOKING.get(period)
        if annual_discount_rate is None and bound is not None and rate >= bound:
            print(f"clvmodel: warning: --discount-rate {rate:g} is per {period}; for {rate * 100:g} % a year pass "
                  f"--annual-discount-rate {rate:g}", file=sys.stderr)
    elif annual_discount_rate is not None:
        raise ClvError("formula: --annual-discount-rate needs --period (day, week, month or year) to convert it")
    elif units.has_unit(periods):
        raise ClvError(f"formula: --periods {periods!r} has a unit; say what a period is with --period, e.g. "
                       "--period month")
    result = lifetime_value(order_value=order_value, purchases_per_period=purchases_per_period, fee=fee,
                            periods=lifetime if lifetime is None else _formula_number(lifetime), retention_rate=retention_rate,
                            margin=margin, discount_rate=0.0 if discount_rate is None else discount_rate, cac=cac,
                            target_ratio=target_ratio)
    if json_:
        print(json.dumps(result.as_dict()))
        return
    print(render(result))
    if used:
        print(f"units: {'; '.join(used)}")


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
    horizon: _HORIZON = None,
    discount_rate: _RATE = None,
    annual_discount_rate: _ANNUAL = None,
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
                        target_ratio=target_ratio, as_of=_parse_date(as_of, "--as-of"), experiment=experiment,
                        annual_discount_rate=annual_discount_rate)
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


def _interrupted(err: BaseException) -> bool:
    """A Ctrl-C that DuckDB met inside a query: it stops the query and raises a plain
    ``RuntimeError('Query interrupted')`` (no class of its own), where Python would raise
    KeyboardInterrupt."""
    return "duckdb" in sys.modules and type(err) is RuntimeError and str(err) == "Query interrupted"


def _out_of_memory(err: BaseException) -> str | None:
    """The one line for DuckDB running out of memory (a too small ``data.memory_limit``, a full
    spill disk), ``None`` for any other error.

    DuckDB is imported only by the commands that use it (not by the CLI's start): an error
    raised while it is not imported cannot be its own.
    """
    duckdb = sys.modules.get("duckdb")
    if duckdb is None or not isinstance(err, duckdb.OutOfMemoryException):
        return None
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return (f"DuckDB ran out of memory ({first}); for train and rfm raise data.memory_limit or leave it out "
            "(DuckDB then takes 80 % of RAM) and give data.temp_directory a disk with room to spill to; for score "
            "lower --chunk-size; or free memory")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns (and exits with) the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("CLVMODEL_DEBUG") == "1"
    verbose = "--verbose" in args
    args = [a for a in args if a not in {"--debug", "--verbose"}]
    try:
        with _library_logs(verbose):
            returned = app(args=args, prog_name="clvmodel", standalone_mode=False)
        # Not standalone, typer returns an Exit's code instead of raising it, and turns a Ctrl-C
        # (KeyboardInterrupt) into Exit(130): returned here, it was read as success (exit 0, no
        # word). The commands themselves return None.
        code = returned if isinstance(returned, int) else 0
        if code == 130:
            print("clvmodel: aborted", file=sys.stderr)
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
    except Exception as err:  # only DuckDB's memory and Ctrl-C errors become a line; anything else is a bug: raised
        if _interrupted(err):
            print("clvmodel: aborted", file=sys.stderr)
            code = 130
        else:
            message = _out_of_memory(err)
            if message is None:
                raise
            if debug:
                traceback.print_exc()
            print(f"clvmodel: error: {message}", file=sys.stderr)
            code = 2
    if argv is None:
        # The console script's process ends here: leave what it built to the OS. Without this,
        # the interpreter's last cyclic collection walks every object left (pandas, matplotlib,
        # the models: 0.3 s of CPU after a 1 M-row train). Only the cyclic collector is skipped;
        # everything was written and closed above, and atexit handlers and the flush of
        # stdout/stderr still run. Not done for main(argv) in a caller's process (tests,
        # notebooks), whose garbage must stay collectable.
        gc.freeze()
        sys.exit(code)
    return code


if __name__ == "__main__":  # ``python -m clvmodel.cli``, as the console script
    main()
