"""The same RFM SQL and scoring on a Spark cluster: the engine for data beyond one machine.

Install with ``pip install 'clvmodel[spark]'`` (pyspark, which needs Java 17+). Results equal the
local DuckDB engine's (:mod:`clvmodel.io`, :mod:`clvmodel.rfm`, :mod:`clvmodel.predict`):

* :func:`transactions` reads CSV/Parquet with a :class:`~clvmodel.config.DataConfig` and applies
  the cleaning rules of :func:`clvmodel.io.load_transactions`: Spark SQL computes the counts of
  :data:`clvmodel.checks.ROW_STATS` (io's aggregate) and the shared checks of :mod:`clvmodel.checks` (``no_rows_message``,
  ``check_columns``, ``check_rows``, ``nothing_left_message``, ``not_utf8_message``) raise the
  messages, so both engines say the same thing from the same code;
* :func:`rfm` runs **the same SQL text**, :func:`clvmodel.rfm.rfm_sql`, on a temporary view;
* :func:`score` ships the model as its JSON document (no pickle of fitted objects) and calls
  :func:`clvmodel.predict.score` on each Arrow batch with ``mapInPandas``; the rank-based segments
  are then assigned once over all customers, see :func:`score`.

Floating sums are the one source of difference: DuckDB and Spark add a customer's amounts in
different orders, so ``monetary_value`` may differ in the last bits (the tests allow 1e-12
relative); counts, dates, ``frequency``, ``recency`` and ``T`` are exact.

Nothing here runs at import: pyspark is imported inside the functions, so ``import clvmodel.spark``
works without it and fails with a one-line :class:`~clvmodel.errors.ClvError` only when called.

Running on a cluster (``spark-submit``)
---------------------------------------
The executors need the driver's Python environment (clvmodel and its dependencies: lifetimes,
scipy, pandas, pyarrow). Pack a virtual environment once and ship it with the job::

    python -m venv clv-env && clv-env/bin/pip install 'clvmodel[spark]' venv-pack
    clv-env/bin/venv-pack -o clv-env.tar.gz

A driver script, ``score_customers.py``. The model is read on the driver only (a directory written
by ``clvmodel train``, or a ``models:/`` URI); the executors receive its JSON document::

    from clvmodel import artifact
    from clvmodel import spark as clv_spark

    spark = clv_spark.session(master=None)   # None: the master comes from spark-submit
    model = artifact.load("models/cdnow")
    tx, report = clv_spark.load_transactions(spark, "s3a://bucket/transactions/", model.config.get("data"))
    summary = clv_spark.rfm(spark, tx, time_unit=model.time_unit)          # as of the last day
    clv_spark.write(clv_spark.score(summary, model), "s3a://bucket/scores/2026-11-30.parquet")
    print(report.rows_read, "rows read;", report.customers, "customers")

Submit it in client mode, so that the driver runs here with the unpacked environment and the
model directory (YARN shown; Kubernetes and standalone masters take the same options)::

    PYSPARK_DRIVER_PYTHON=clv-env/bin/python \
    PYSPARK_PYTHON=./environment/bin/python \
    spark-submit --master yarn --deploy-mode client \
        --archives clv-env.tar.gz#environment \
        score_customers.py

:func:`session` sets ``PYSPARK_PYTHON`` to the running interpreter only for ``local`` masters
(whose workers are processes of this machine); on a cluster it keeps what the job was given. The
transactions are read with the model's training data config (columns, date format, delimiter,
negative-amount policy), so a new export is cleaned exactly as the training data was.

Scaling note: the rank-based segments need each customer's rank in one global order, a window
without partitions: one task sorts the scored rows (one per customer, not per transaction),
spilling to disk when they exceed its memory. Everything else is distributed.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import functools
import json
import os
import re
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from clvmodel.errors import ClvError

if TYPE_CHECKING:  # pragma: no cover - type hints only; pyspark is optional
    from pyspark.sql import Column, DataFrame, SparkSession

    from clvmodel.artifact import TrainedModel
    from clvmodel.config import DataConfig
    from clvmodel.io import LoadReport

__all__ = [
    "PYSPARK_MISSING",
    "JAVA_MISSING",
    "SCORE_SCHEMA",
    "session",
    "load_transactions",
    "transactions",
    "rfm",
    "rfm_counts",
    "rfm_to_pandas",
    "score",
    "score_transactions",
    "strftime_to_spark",
    "write",
]

PYSPARK_MISSING = "pyspark is not installed; pip install 'clvmodel[spark]'"
JAVA_MISSING = "Spark needs Java 17+ on PATH (JAVA_HOME)"

#: Spark schema of :func:`score`'s output: the columns of :data:`clvmodel.predict.OUTPUT_COLUMNS`.
SCORE_SCHEMA = (
    "customer_id string, frequency double, recency double, T double, monetary_value double, "
    "p_alive double, expected_purchases double, expected_order_value double, predicted_clv double, "
    "historical_clv double, segment string, status string"
)

_PARQUET = (".parquet", ".pq")
_TRANSACTION_COLUMNS = ("customer_id", "day", "amount")
# The RFM contract's Spark types; rfm() refuses a query that yields anything else (see _check_rfm_types).
_RFM_TYPES = {
    "customer_id": "string",
    "frequency": "bigint",
    "recency": "double",
    "T": "double",
    "monetary_value": "double",
    "frequency_holdout": "bigint",
    "monetary_value_holdout": "double",
    "duration_holdout": "double",
}
# pyspark >= 4 warns on every Arrow conversion that pandas 3 is "not yet fully supported". The
# conversions used here (strings, int64, float64, dates) are checked by tests/test_spark.py, so
# the warning is silenced around those calls only, never globally.
_PANDAS3_WARNING = "PySpark does not yet fully support pandas"


# --- session ----------------------------------------------------------------------------------


def _require_pyspark() -> None:
    """Import pyspark or raise the one-line install hint."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise ClvError(PYSPARK_MISSING) from None


def _is_local(master: str | None) -> bool:
    return master is not None and master.startswith("local")


def session(master: str | None = "local[2]", app_name: str = "clvmodel", config: Mapping[str, str] | None = None) -> "SparkSession":
    """Create (or get the running) Spark session configured for clvmodel.

    Parameters
    ----------
    master
        ``local[N]`` to run on this machine with N cores, a cluster URL, or ``None`` to take the
        master from ``spark-submit``/``spark-defaults.conf`` (a value given here would override it).
    app_name
        The application name shown by the cluster manager.
    config
        Extra Spark settings; they override clvmodel's defaults (UTC session time zone, Arrow
        conversions, no console progress bar, 4 shuffle partitions for local masters).

    Returns
    -------
    pyspark.sql.SparkSession
        The session. If one is already running it is returned as is (Spark's ``getOrCreate``);
        stop it with ``session.stop()`` when you created it.

    Raises
    ------
    ClvError
        pyspark is not installed, or the JVM could not start (Java missing or older than 17).
    """
    _require_pyspark()
    from pyspark.errors import PySparkRuntimeError
    from pyspark.sql import SparkSession

    if _is_local(master):
        # Local workers are child processes of this machine: they must run this interpreter (the
        # one with clvmodel installed), not whatever `python3` is first on PATH.
        os.environ["PYSPARK_PYTHON"] = sys.executable
    else:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings = {
        # Dates are calendar days; a timestamp column is cut to its UTC date, as DuckDB does.
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "false",  # progress bars would interleave with CLI output
    }
    if _is_local(master):
        settings["spark.sql.shuffle.partitions"] = "4"  # 200 tiny tasks per shuffle is slow on one machine
    settings.update({str(k): str(v) for k, v in (config or {}).items()})
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        with _quiet_pandas3():  # the context's start imports pyspark.testing, which checks pandas
            return builder.getOrCreate()
    except PySparkRuntimeError as err:
        if "JAVA_GATEWAY_EXITED" in str(err):
            raise ClvError(f"{JAVA_MISSING}: the Java gateway exited at start") from None
        raise


# --- transactions -------------------------------------------------------------------------------


def _quote(name: str) -> str:
    """A Spark SQL identifier (backticks), so column names with blanks or dots work."""
    return "`" + name.replace("`", "``") + "`"


def _sql_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# strftime directive -> Spark pattern (fixed width, variable width). Variable width accepts "1" and
# "01" like DuckDB's strptime; fixed width is needed when two numbers touch ("%Y%m%d").
_DIRECTIVES: dict[str, tuple[str, str]] = {
    "Y": ("yyyy", "yyyy"),
    "m": ("MM", "M"),
    "d": ("dd", "d"),
    "H": ("HH", "H"),
    "I": ("hh", "h"),
    "M": ("mm", "m"),
    "S": ("ss", "s"),
    "j": ("DDD", "D"),
    "b": ("MMM", "MMM"),
    "B": ("MMMM", "MMMM"),
    "p": ("a", "a"),
}
_NUMERIC = set("YmdHIMSj")
# Literal characters that mean nothing in a Spark pattern; any other (letters, [ ] # { }) is quoted.
_PLAIN = set(" -/:.,;_|+")


def strftime_to_spark(date_format: str) -> str:
    """Translate a strftime format (``data.date_format``) into a Spark datetime pattern.

    Parameters
    ----------
    date_format
        E.g. ``"%Y%m%d"`` or ``"%d/%m/%Y %H:%M"``.

    Returns
    -------
    str
        E.g. ``"yyyyMMdd"`` or ``"d/M/yyyy H:m"``; letters outside directives are quoted.

    Raises
    ------
    ClvError
        A directive Spark cannot read the way DuckDB does (``%y``: Spark puts two-digit years in
        2000-2099, DuckDB in 1969-2068; locale or time-zone directives).
    """
    tokens = re.findall(r"%.|[^%]", date_format)
    if any(t == "%" for t in tokens):
        raise ClvError(f"data.date_format {date_format!r} ends with a lone '%'; write '%%' for a percent sign")
    out: list[str] = []
    for i, token in enumerate(tokens):
        if not token.startswith("%"):
            out.append(token if token in _PLAIN else "''" if token == "'" else f"'{token}'")
            continue
        code = token[1]
        if code == "%":
            out.append("%")
        elif code == "y":
            raise ClvError(
                f"data.date_format {date_format!r}: %y (two-digit year) reads differently on Spark (2000-2099) "
                "and DuckDB (1969-2068); use a four-digit year (%Y)"
            )
        elif code not in _DIRECTIVES:
            raise ClvError(
                f"data.date_format {date_format!r}: %{code} is not supported by the Spark engine; "
                f"use {', '.join('%' + c for c in _DIRECTIVES)}"
            )
        else:
            touching = any(
                0 <= j < len(tokens) and tokens[j][:1] == "%" and tokens[j][1:] in _NUMERIC for j in (i - 1, i + 1)
            )
            fixed, variable = _DIRECTIVES[code]
            out.append(fixed if touching and code in _NUMERIC else variable)
    return "".join(out)


def _data_config(source: str | None, data_config: "DataConfig | Mapping[str, Any] | None") -> "DataConfig":
    """A DataConfig whose source is ``source`` (the file to read) and whose rest is ``data_config``."""
    from clvmodel.config import DataConfig

    if data_config is None:
        if source is None:
            raise ClvError("transactions: pass a source (a path, glob or URI) or a data config with data.source")
        return DataConfig(source=source)
    raw = data_config.model_dump() if isinstance(data_config, DataConfig) else dict(data_config)
    if source is not None:
        raw["source"] = source
    try:
        return DataConfig.model_validate(raw)
    except ValueError as err:  # pydantic's ValidationError is a ValueError
        first = str(err).strip().splitlines()
        raise ClvError(f"invalid data config: {' '.join(first[:3])}") from None


def _is_uri(source: str) -> bool:
    """``s3a://``, ``hdfs://``, ``abfss://`` ...: paths only the cluster can list."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", source) is not None


def _is_parquet(source: str, files: list[str]) -> bool:
    """io's rule: Parquet when every file has a Parquet suffix. A URI cannot be listed here, so its
    last component decides: a Parquet suffix, or none at all (a folder, as io reads folders)."""
    if _is_uri(source):
        last = source.rstrip("/").rsplit("/", 1)[-1]
        return last.lower().endswith(_PARQUET) or "." not in last
    return all(Path(f).suffix.lower() in _PARQUET for f in files)


def _read_on_driver(spark: "SparkSession", data: "DataConfig") -> tuple["DataFrame", str, list[str], str | None]:
    """Bundled and whitespace-delimited files, read exactly as :mod:`clvmodel.io` reads them.

    Those are small legacy text files (CDNOW's); io reads them with pandas on one machine, and so
    does this engine, through io's own reader, so the two engines see identical text.
    """
    from clvmodel import io

    con = io.connect()
    try:
        source, files, date_format = io._raw_relation(con, data)  # noqa: SLF001 - the one shared reader
        frame = con.execute("SELECT * FROM raw").df()
    finally:
        con.close()
    frame = frame.astype(object).where(frame.notna(), None)
    schema = ", ".join(f"{_quote(str(c))} string" for c in frame.columns)
    with _quiet_pandas3():
        return spark.createDataFrame(frame, schema=schema), source, files, date_format


def _null_markers(frame: "DataFrame") -> "DataFrame":
    """io's CSV null markers (``NA``, ``NaN``, ``NULL``, ...) as NULL in every column.

    Spark's CSV reader takes one null string; io gives DuckDB a list (its ``_NULLS``, reused here
    so the two engines read the same markers as missing).
    """
    from pyspark.sql import functions as F

    from clvmodel import io

    markers = ast.literal_eval(io._NULLS)  # noqa: SLF001 - io's list, written as a DuckDB literal
    return frame.select(
        *[F.when(F.col(_quote(c)).isin(markers), None).otherwise(F.col(_quote(c))).alias(c) for c in frame.columns]
    )


# data.encoding (DuckDB's names) -> the Java charset names Spark's CSV reader takes.
_JAVA_CHARSETS = {"utf-8": "UTF-8", "latin-1": "ISO-8859-1", "utf-16": "UTF-16"}


def _read_raw(spark: "SparkSession", data: "DataConfig") -> tuple["DataFrame", str, list[str], str | None]:
    """The source as a Spark DataFrame (all text for CSV), its name in messages, its files, the date format."""
    from clvmodel import io

    source = data.source
    if source.startswith("bundled:"):
        return _read_on_driver(spark, data)
    files = [source] if _is_uri(source) else io.resolve_files(source)
    parquet = _is_parquet(source, files)
    if data.delimiter == "whitespace" and not parquet:
        if _is_uri(source):
            raise ClvError(
                f"{source}: whitespace-delimited files are read on the driver; copy the file locally or convert "
                "it to CSV/Parquet for the cluster"
            )
        return _read_on_driver(spark, data)
    # Local files (found here, as io finds them) are named file://... for Spark: a bare path would
    # be resolved against the cluster's default file system (HDFS on YARN). On a cluster they must
    # then exist on every node (a shared mount); cluster storage is named by its URI instead.
    if not parquet and not _is_uri(source) and files and all(os.path.getsize(f) == 0 for f in files):
        # io._raw_relation's message (inline there); Spark would read such a file as no columns at all.
        raise ClvError(f"{source} is empty (0 bytes); point data.source at the full export")
    paths = files if _is_uri(source) else [f"file://{Path(f).resolve()}" for f in files]
    with _unreadable(source):
        if parquet:
            # mergeSchema: columns matched by name across files, as DuckDB's union_by_name.
            frame = spark.read.option("mergeSchema", "true").parquet(*paths)
        else:
            frame = spark.read.csv(
                paths,
                sep=data.delimiter,
                header=data.header,
                inferSchema=False,  # all text: ids keep leading zeros, the checks parse the rest
                encoding=_JAVA_CHARSETS.get(data.encoding, data.encoding),  # data.encoding, as io reads it
                # Spark splits lines before decoding; UTF-16's newline is two bytes, so read whole files.
                multiLine=data.encoding == "utf-16",
                escape='"',  # RFC 4180 doubled quotes, as DuckDB reads them (Spark's default is a backslash)
                enforceSchema=False,  # files whose headers differ fail loudly instead of shifting columns
                mode="PERMISSIVE",
            )
            if not data.header:  # DuckDB names header-less columns column0, column1, ...; Spark _c0, _c1, ...
                frame = frame.toDF(*[f"column{i}" for i in range(len(frame.columns))])
            frame = _null_markers(frame)
    return frame, source, files, data.date_format


@contextlib.contextmanager
def _unreadable(source: str) -> Iterator[None]:
    """Spark's read failures as io's one-line messages (a missing path; anything else unreadable)."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    try:
        yield
    except (PySparkException, Py4JJavaError) as err:
        # A JVM error pyspark did not convert (e.g. a Parquet footer read while planning) says
        # "An error occurred while calling o123.parquet"; its Java message is the useful line.
        text = err.java_exception.getMessage() if isinstance(err, Py4JJavaError) else str(err)
        text = (text or "").strip()
        first = text.splitlines()[0] if text else type(err).__name__
        if "PATH_NOT_FOUND" in first:
            raise ClvError(
                f"no file found at {source!r}; check data.source (a path, a glob or a folder of Parquet files)"
            ) from None
        raise ClvError(
            f"cannot read {source}: {first[:200]}; check that it is UTF-8 CSV (data.delimiter, data.header) or Parquet"
        ) from None


def _day_expression(column: str, spark_type: str, date_format: str | None) -> str:
    """SQL turning the date column into a DATE (NULL when it does not parse), as io does."""
    if spark_type == "date" or spark_type.startswith("timestamp"):
        return f"CAST({column} AS DATE)"
    text = f"TRIM(CAST({column} AS STRING))"
    if date_format:
        return f"CAST(TRY_TO_TIMESTAMP({text}, {_sql_str(strftime_to_spark(date_format))}) AS DATE)"
    # Spark's cast also reads '2020' or '2020-01' as a timestamp, DuckDB's does not: ask for a full
    # ISO date first so that both engines accept the same strings.
    return (
        f"CASE WHEN {text} RLIKE '^[0-9]{{4}}-[0-9]{{1,2}}-[0-9]{{1,2}}([ T]|$)' "
        f"THEN CAST(TRY_CAST({text} AS TIMESTAMP) AS DATE) END"
    )


def _parsed(raw: "DataFrame", data: "DataConfig", date_format: str | None) -> "DataFrame":
    """Columns customer_id, raw_date, day, to_utc, raw_amount, amount, as in io's ``parsed`` view,
    and not_utf8: a row holding U+FFFD, which Spark's reader puts where a byte was not UTF-8."""
    from clvmodel import io

    cid, cdate, camount = (_quote(getattr(data.columns, role)) for role in ("customer_id", "date", "amount"))
    date_type = dict(raw.dtypes)[data.columns.date]
    every = "concat_ws('', " + ", ".join(f"CAST({_quote(c)} AS STRING)" for c in raw.columns) + ")"
    text = f"TRIM(CAST({cdate} AS STRING))"
    to_utc = "FALSE"
    if date_type == "string" and not date_format:
        # Spark's cast reads a UTC offset and converts to UTC (session time zone UTC), as io's
        # TIMESTAMPTZ cast does; io counts those rows with a non-zero offset, so does this.
        to_utc = (
            f"(instr({text}, ':') > 0 AND {text} RLIKE {_sql_str(io._OFFSET)} "  # noqa: SLF001 - io's patterns
            f"AND NOT {text} RLIKE {_sql_str(io._ZERO_OFFSET)})"  # noqa: SLF001
        )
    return raw.selectExpr(
        f"NULLIF(TRIM(CAST({cid} AS STRING)), '') AS customer_id",
        f"NULLIF({text}, '') AS raw_date",
        f"{_day_expression(cdate, date_type, date_format)} AS day",
        f"coalesce({to_utc}, false) AS to_utc",
        f"NULLIF(TRIM(CAST({camount} AS STRING)), '') AS raw_amount",
        f"TRY_CAST(TRIM(CAST({camount} AS STRING)) AS DOUBLE) AS amount",
        f"instr({every}, {_sql_str(_REPLACEMENT)}) > 0 AS not_utf8",
    )


_BAD_AMOUNT = "raw_amount IS NOT NULL AND (amount IS NULL OR isnan(amount) OR abs(amount) = CAST('Infinity' AS DOUBLE))"
# A Latin-1 byte read as UTF-8: Spark's reader puts U+FFFD in its place where DuckDB refuses the file.
_REPLACEMENT = "\ufffd"


def _stats(parsed: "DataFrame", data: "DataConfig") -> dict[str, Any]:
    """One pass over the data: :data:`clvmodel.checks.ROW_STATS` (io's aggregate, in Spark SQL), the
    timestamps converted to UTC, and rows holding U+FFFD (a byte that was not UTF-8)."""
    from clvmodel import checks

    first, last = checks.FIRST_YEAR, checks.LAST_YEAR
    odd_year = f"(day < DATE '{first}-01-01' OR day > DATE '{last}-12-31')"
    huge = f"amount > CAST({float(data.max_amount)!r} AS DOUBLE)" if data.max_amount is not None else "FALSE"
    exprs = [
        "count(*)",
        "count_if(customer_id IS NULL)",
        "min('dated ' || coalesce(raw_date, '(none)') || ', amount ' || coalesce(raw_amount, '(none)')) "
        "FILTER (WHERE customer_id IS NULL)",
        "count_if(raw_date IS NULL)",
        "min(customer_id) FILTER (WHERE raw_date IS NULL)",
        "count_if(raw_date IS NOT NULL AND day IS NULL)",
        "min(raw_date) FILTER (WHERE day IS NOT NULL)",
        f"count_if({odd_year})",
        f"min(raw_date || ' (read as ' || CAST(day AS STRING) || ')') FILTER (WHERE {odd_year})",
        "count_if(raw_amount IS NULL)",
        "min(customer_id || ' on ' || coalesce(raw_date, '?')) FILTER (WHERE raw_amount IS NULL)",
        f"count_if({_BAD_AMOUNT})",
        f"min(raw_amount) FILTER (WHERE {_BAD_AMOUNT})",
        f"count_if({huge})",
        f"min(customer_id || ' on ' || raw_date || ': ' || raw_amount) FILTER (WHERE {huge})",
        "count_if(amount < 0)",
        "min(customer_id || ' on ' || raw_date || ': ' || raw_amount) FILTER (WHERE amount < 0)",
        "count_if(to_utc AND amount >= 0)",
    ]
    exprs.append("count_if(not_utf8)")
    row = list(parsed.selectExpr(*exprs).first())
    *values, converted, replaced = row
    stats = dict(zip(checks.ROW_STATS, values))
    stats["converted"], stats["replaced"] = int(converted), int(replaced)
    return stats


def _not_utf8(source: str, files: list[str], data: "DataConfig") -> None:
    """io's not-UTF-8 message for a local file (the first byte that does not decode); for cluster
    files, which only the executors can read, the same advice without the byte."""
    from clvmodel import checks

    fix = "set data.encoding: latin-1 (or utf-16) to read it as it is, or re-save the file as UTF-8"
    if not _is_uri(source):
        for name in files:
            message = checks.not_utf8_message(name, fix)
            if message:
                raise ClvError(message)
        return  # a real U+FFFD in valid UTF-8 text
    raise ClvError(f"{source} is not UTF-8 text (some rows hold bytes that do not decode); {fix}")


def _extent(kept: "DataFrame") -> dict[str, Any]:
    """The kept rows' customers, first and last day and zero amounts, as io reads them off ``transactions``."""
    return kept.selectExpr(
        "count(DISTINCT customer_id) AS customers",
        "min(day) AS first",
        "max(day) AS last",
        "count_if(amount = 0) AS zero",
    ).first().asDict()


def _moved_days(parsed: "DataFrame") -> int:
    """Rows converted to UTC whose UTC day differs from the date as written (io's count)."""
    written = (
        "CAST(TRY_CAST(regexp_replace(raw_date, "
        + _sql_str(r"(\d:\d\d(:\d\d(\.\d+)?)?)\s*(Z|[+-]\d\d(:?\d\d)?)$")
        + ", '$1') AS TIMESTAMP) AS DATE)"
    )
    return int(parsed.where(f"to_utc AND amount >= 0 AND day <> {written}").count())


def load_transactions(
    spark: "SparkSession", source: str | None, data_config: "DataConfig | Mapping[str, Any] | None" = None
) -> tuple["DataFrame", "LoadReport"]:
    """Read and check a transaction log; the Spark counterpart of :func:`clvmodel.io.load_transactions`.

    Parameters
    ----------
    spark
        The session (:func:`session`).
    source
        A path, glob, folder of Parquet files, cluster URI (``s3a://...``) or ``bundled:NAME``;
        ``None`` takes ``data_config.source``. CSV is read as text (ids keep leading zeros).
    data_config
        A :class:`~clvmodel.config.DataConfig` or its mapping (e.g. a model's
        ``config["data"]``): columns, date format, delimiter, header, negative-amount policy.
        Its ``source`` is replaced by ``source`` when given.

    Returns
    -------
    (DataFrame, LoadReport)
        The lazy ``(customer_id STRING, day DATE, amount DOUBLE)`` frame and the row accounting
        (``fingerprint`` is empty: hashing cluster files would read them once more).

    Raises
    ------
    ClvError
        The messages of :func:`clvmodel.io.load_transactions`: a missing column, an empty file,
        missing ids, unparseable dates or amounts, refunds under ``negative_amounts: error``.
    """
    from clvmodel import checks, io

    _require_pyspark()
    data = _data_config(source, data_config)
    raw, label, files, date_format = _read_raw(spark, data)
    with _unreadable(label):  # Spark reads lazily: a corrupt file fails at the first action
        available = list(raw.columns)
        # Only Spark's CSV reader decodes leniently; io's own readers (bundled, whitespace) refuse.
        spark_text = not (data.source.startswith("bundled:") or data.delimiter == "whitespace" or _is_parquet(data.source, files))
        utf8_check = spark_text and data.encoding == "utf-8"
        if utf8_check and any(_REPLACEMENT in c for c in available):
            _not_utf8(label, files, data)
        if not available or raw.isEmpty():  # before the column check, as io: no rows, no use
            raise ClvError(checks.no_rows_message(label, available))
        checks.check_columns(label, available, data)
        parsed = _parsed(raw, data, date_format)
        stats = _stats(parsed, data)
        if utf8_check and stats["replaced"]:
            _not_utf8(label, files, data)

        def bad_dates() -> list[str]:
            rows = (
                parsed.where("day IS NULL AND raw_date IS NOT NULL").select("raw_date").distinct()
                .orderBy("raw_date").limit(200).collect()
            )
            return [r[0] for r in rows]

        excluded = checks.check_rows(stats, data, date_format, bad_dates)
        # Exact duplicates: whole raw rows seen before (every column equal), among the rows kept.
        kept_raw = raw.where(f"TRY_CAST(TRIM(CAST({_quote(data.columns.amount)} AS STRING)) AS DOUBLE) >= 0") if excluded else raw
        duplicates = int(
            kept_raw.groupBy(*[_quote(c) for c in available]).count().where("count > 1")
            .selectExpr("coalesce(sum(count - 1), 0)").first()[0]
        )
        if duplicates and data.duplicates == "drop":
            excluded["duplicate_row"] = duplicates
            duplicates = 0
            parsed = _parsed(raw.distinct(), data, date_format)
        kept = parsed.where("amount >= 0")
        extent = _extent(kept)
        if not extent["customers"]:
            raise ClvError(checks.nothing_left_message(label, int(stats["rows"]), excluded))
        moved = _moved_days(parsed) if stats["converted"] else 0
    report = io.LoadReport(
        source=data.source,
        files=files,
        rows_read=int(stats["rows"]),
        rows_excluded=excluded,
        zero_amount_rows=int(extent["zero"]),
        customers=int(extent["customers"]),
        first_date=str(extent["first"]),
        last_date=str(extent["last"]),
        duplicate_rows=duplicates,
        utc_converted_rows=stats["converted"],
        utc_day_changed_rows=moved,
    )
    return kept.select(*_TRANSACTION_COLUMNS), report


def transactions(
    spark: "SparkSession", source: str | None, data_config: "DataConfig | Mapping[str, Any] | None" = None
) -> "DataFrame":
    """The checked transactions ``(customer_id STRING, day DATE, amount DOUBLE)``; see :func:`load_transactions`."""
    return load_transactions(spark, source, data_config)[0]


# --- RFM ------------------------------------------------------------------------------------------


def _unit_days(time_unit: str) -> int:
    from clvmodel.rfm import UNIT_DAYS

    if time_unit not in UNIT_DAYS:
        raise ClvError(f"unknown time unit {time_unit!r}; use one of: {', '.join(UNIT_DAYS)}")
    return UNIT_DAYS[time_unit]


def _resolve_dates(
    transactions_df: "DataFrame", calibration_end: dt.date | None, observation_end: dt.date | None
) -> tuple[dt.date, dt.date]:
    """``(cut, observation_end)`` after :func:`clvmodel.rfm.check_dates`, the local engine's checks."""
    from clvmodel.rfm import check_dates

    first, last = transactions_df.selectExpr("min(day)", "max(day)").first()
    if first is None:
        raise ClvError("no transactions to summarise; check the data source")
    return check_dates(first, last, calibration_end, observation_end)


def _sql_on(spark: "SparkSession", frame: "DataFrame", make_sql: Callable[[str], str]) -> "DataFrame":
    """``spark.sql(make_sql(view))`` with ``frame`` registered as a uniquely named temporary view.

    ``spark.sql`` analyses its query at once, binding the view's plan into the result, so the view
    is dropped straight away: nothing is left in the session's catalog, and concurrent calls on
    one session never see each other's data.
    """
    view = f"clvmodel_{uuid.uuid4().hex}"
    frame.createOrReplaceTempView(view)
    try:
        return spark.sql(make_sql(view))
    finally:
        spark.catalog.dropTempView(view)


def _accounting_sql(table: str, cut: dt.date, observation_end: dt.date) -> str:
    """The two counts :func:`clvmodel.rfm.summarise` reports (its query, mirrored: it is inline there)."""
    return f"""SELECT
          (SELECT count(*) FROM (SELECT customer_id FROM {table} WHERE day <= DATE '{observation_end}'
                                 GROUP BY customer_id HAVING min(day) > DATE '{cut}')) AS after_cal,
          (SELECT count(*) FROM {table} WHERE day > DATE '{observation_end}') AS after_obs"""


def _check_rfm_types(frame: "DataFrame") -> None:
    """The RFM contract's types. Spark reads a literal such as ``7.0`` as DECIMAL and rounds
    DECIMAL division to 6 places, which would silently differ from DuckDB's DOUBLE results; a
    query that yields anything but the contract's types is a clvmodel bug, so it stops here."""
    wrong = {name: kind for name, kind in frame.dtypes if _RFM_TYPES.get(name, kind) != kind}
    if wrong:
        found = ", ".join(f"{name} {kind}" for name, kind in wrong.items())
        raise RuntimeError(
            f"clvmodel bug: rfm_sql gives Spark column types {found}, the contract needs "
            f"{', '.join(f'{n} {_RFM_TYPES[n]}' for n in wrong)} (write numeric literals as CAST(7 AS DOUBLE))"
        )


def rfm(
    spark: "SparkSession",
    transactions_df: "DataFrame",
    *,
    time_unit: str,
    calibration_end: dt.date | None = None,
    observation_end: dt.date | None = None,
) -> "DataFrame":
    """The RFM summary on Spark: :func:`clvmodel.rfm.rfm_sql`, the same SQL text as DuckDB runs.

    Parameters
    ----------
    spark
        The session.
    transactions_df
        ``customer_id, day (DATE), amount`` as :func:`transactions` returns.
    time_unit
        ``day`` or ``week`` (days / 7, fractional).
    calibration_end, observation_end
        As in :func:`clvmodel.rfm.summarise`: with a calibration end the holdout columns are added;
        the observation end defaults to the last transaction day.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer_id, frequency, recency, T, monetary_value`` (+ ``frequency_holdout,
        monetary_value_holdout, duration_holdout``), one row per customer, ordered by
        ``customer_id``. Lazy, except for one pass that finds the data's first and last day.

    Raises
    ------
    ClvError
        An unknown time unit, or dates outside the data (the messages of ``summarise``).
    """
    from clvmodel.rfm import rfm_sql

    unit_days = _unit_days(time_unit)
    cut, obs = _resolve_dates(transactions_df, calibration_end, observation_end)
    query = functools.partial(
        rfm_sql, cut=cut, observation_end=obs, unit_days=unit_days, holdout=calibration_end is not None
    )
    frame = _sql_on(spark, transactions_df.select(*_TRANSACTION_COLUMNS), query)
    _check_rfm_types(frame)
    return frame


def rfm_counts(
    spark: "SparkSession",
    transactions_df: "DataFrame",
    *,
    calibration_end: dt.date | None = None,
    observation_end: dt.date | None = None,
) -> dict[str, int]:
    """What :func:`rfm` leaves out, counted (never dropped silently), as :class:`~clvmodel.rfm.RfmResult` reports.

    Returns
    -------
    dict
        ``customers_after_calibration``: customers whose first purchase (up to the observation
        end) comes after the cut; ``transactions_after_observation_end``: rows after it.
    """
    cut, obs = _resolve_dates(transactions_df, calibration_end, observation_end)
    query = functools.partial(_accounting_sql, cut=cut, observation_end=obs)
    after_cal, after_obs = _sql_on(spark, transactions_df.select(*_TRANSACTION_COLUMNS), query).first()
    return {"customers_after_calibration": int(after_cal), "transactions_after_observation_end": int(after_obs)}


@contextlib.contextmanager
def _quiet_pandas3() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PANDAS3_WARNING, category=FutureWarning)
        yield


def rfm_to_pandas(rfm_df: "DataFrame") -> pd.DataFrame:
    """Collect an RFM (or score) frame to pandas with the local engine's dtypes.

    ``customer_id`` is ``object`` holding ``str`` (as :func:`clvmodel.rfm.summarise` returns),
    counts ``int64``, the rest ``float64``; the row order is the frame's (customer id for
    :func:`rfm`). Use it for results that fit in the driver's memory.
    """
    with _quiet_pandas3():
        frame = rfm_df.toPandas()
    for column, kind in rfm_df.dtypes:
        if kind == "string":
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


# --- scoring ----------------------------------------------------------------------------------------


def _rfm_checks(numeric: list[str], time_unit: str | None) -> list[str]:
    """The SQL condition of each row check of :func:`clvmodel.predict.validate_rfm` after the id
    checks, in its order: a missing or non-numeric value per column, then the value rules.

    Only the conditions are mirrored (validate_rfm's masks are inline); the messages come from
    validate_rfm itself, see :func:`_rfm_error`.
    """
    num = {c: f"TRY_CAST({_quote(c)} AS DOUBLE)" for c in numeric}
    checks = [f"({v} IS NULL OR isnan({v}) OR abs({v}) = CAST('Infinity' AS DOUBLE))" for v in num.values()]
    f, r, t = num["frequency"], num["recency"], num["T"]
    checks += [f"{f} < 0", f"{f} % 1 <> 0", f"{r} < 0", f"{t} < 0", f"{r} > {t} + CAST(1e-9 AS DOUBLE)"]
    if time_unit is not None:
        checks.append(f"{f} > {r} * CAST({_unit_days(time_unit)} AS DOUBLE) + CAST(1e-6 AS DOUBLE)")
    if "monetary_value" in num:
        checks.append(f"{num['monetary_value']} < 0")
    return checks


def _rfm_error(
    probe: pd.DataFrame, origin: str, time_unit: str | None, replace: Mapping[str, str] = {}  # noqa: B006 - read only
) -> ClvError:
    """validate_rfm's own message for a few rows reproducing the failed check (the first offending
    row in input order), with the probe's counts replaced by the whole frame's (``replace``).

    The probe fails the same check as the frame: every earlier check passed on all rows. Should
    validate_rfm ever word its counts differently, the message keeps its text and gains the
    frame's counts at the end instead of showing the probe's alone.
    """
    from clvmodel.predict import validate_rfm

    try:
        validate_rfm(probe, origin=origin, time_unit=time_unit)
    except ClvError as err:
        message = str(err)
    else:  # a condition here drifted from validate_rfm's: name the failed rows without its text
        return ClvError(f"{origin}: {'; '.join(replace.values()) or 'invalid rows'}; fix the RFM table")
    missed = []
    for old, new in replace.items():
        if old in message:
            message = message.replace(old, new, 1)
        else:
            missed.append(new)
    return ClvError(message + (f" ({'; '.join(missed)} in all)" if missed else ""))


def _validate_rfm(rfm_df: "DataFrame", origin: str, time_unit: str | None = None) -> int:
    """:func:`clvmodel.predict.validate_rfm` over the whole frame; returns the row count.

    It runs on the driver over all rows (one pass, plus one more to find an example on failure):
    per batch, a worker would miss duplicates across batches and fail with a Python traceback
    instead of one line. Spark computes each check's count and first offending row (input order,
    as ``monotonically_increasing_id`` numbers it); the message is validate_rfm's own, raised on
    that row (:func:`_rfm_error`), so the two engines' wording cannot drift apart.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from clvmodel.predict import RFM_COLUMNS, _rows  # noqa: PLC2701 - validate_rfm's count wording

    columns = list(rfm_df.columns)
    if any(c not in columns for c in RFM_COLUMNS):
        raise _rfm_error(pd.DataFrame(columns=columns), origin, time_unit)
    used = list(RFM_COLUMNS) + (["monetary_value"] if "monetary_value" in columns else [])
    pos = "_clvmodel_row"
    framed = rfm_df.select(*[F.col(_quote(c)) for c in used], F.monotonically_increasing_id().alias(pos))
    row = "struct(" + ", ".join(_quote(c) for c in used) + ")"
    ident = r"regexp_replace(CAST(customer_id AS STRING), '^\\s+|\\s+$', '')"  # str.strip()
    empty = f"(customer_id IS NULL OR {ident} = '')"
    checks = _rfm_checks(used[1:], time_unit)
    exprs = ["count(*) AS rows", f"count_if({empty}) AS empty", f"min({pos}) FILTER (WHERE {empty}) AS empty_at",
             f"count(DISTINCT {ident}) AS ids"]
    for i, condition in enumerate(checks):
        exprs += [f"count_if({condition}) AS n{i}", f"min_by({row}, {pos}) FILTER (WHERE {condition}) AS ex{i}"]
    stats = framed.selectExpr(*exprs).first().asDict()
    total = int(stats["rows"])
    if total == 0:
        raise _rfm_error(pd.DataFrame(columns=used), origin, time_unit)
    probe_row = {c: ("x" if c == "customer_id" else 0.0) for c in used}
    if stats["empty"]:
        number = framed.where(f"{pos} < {stats['empty_at']}").count() + 1
        probe = pd.DataFrame([{**probe_row, "customer_id": None}])
        raise _rfm_error(probe, origin, time_unit, {
            f"{origin}: {_rows(1, 1)} have": f"{origin}: {_rows(int(stats['empty']), total)} have",
            "(e.g. data row 1)": f"(e.g. data row {number})",
        })
    if stats["ids"] < total:
        repeat = Window.partitionBy("id").orderBy(pos)
        first = (
            framed.select(F.expr(ident).alias("id"), pos).withColumn("nth", F.row_number().over(repeat))
            .where("nth = 2").orderBy(pos).first()["id"]
        )
        probe = pd.DataFrame([{**probe_row, "customer_id": first}] * 2)
        raise _rfm_error(probe, origin, time_unit, {
            f"{origin}: 1 duplicated": f"{origin}: {total - int(stats['ids']):,} duplicated",
        })
    for i in range(len(checks)):
        if stats[f"n{i}"]:
            probe = pd.DataFrame([stats[f"ex{i}"].asDict()], columns=used)
            raise _rfm_error(probe, origin, time_unit, {
                f"{origin}: {_rows(1, 1)} have": f"{origin}: {_rows(int(stats[f'n{i}']), total)} have",
            })
    return total


def _batch_scorer(
    document: str, columns: list[str], horizon: int | None, discount_rate: float | None, margin: float | None
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The function ``mapInPandas`` runs on the workers.

    It closes over plain values only: the model's JSON text (a few kB, shipped with the task,
    which also works over Spark Connect where broadcast variables do not exist) and the options.
    Each partition rebuilds the model with :meth:`TrainedModel.from_document` (checksum verified),
    so no fitted object is ever pickled.
    """

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from clvmodel.artifact import TrainedModel
        from clvmodel.predict import OUTPUT_COLUMNS, score as score_frame

        model = TrainedModel.from_document(json.loads(document), origin="model (on a Spark worker)")
        keep = [c for c in OUTPUT_COLUMNS if c != "segment"]
        for batch in batches:
            if batch.empty:
                continue
            # interval_draws=0: the bootstrap intervals are optional columns this engine does not
            # return (yet), so their 1,000 draws per batch would be wasted work.
            scored = score_frame(
                model, batch[columns], horizon=horizon, discount_rate=discount_rate, margin=margin, interval_draws=0
            )
            # Segments are ranks across all customers: assigned after, over the whole frame.
            yield scored[keep]

    return run


def _segment_column(settings: Mapping[str, Any], customers: int) -> "Column":
    """:func:`clvmodel.predict.assign_segments` as one Spark expression over all scored rows.

    A customer's share is ``rank / n`` with the rank from one global order: predicted CLV
    descending (missing last, as numpy's argsort puts NaN), ties broken by ``customer_id``
    ascending. The local engine breaks ties by input order, which is the same order whenever its
    input is sorted by customer id (as :func:`clvmodel.rfm.summarise` returns it). ``n`` is
    known from the validation pass, so the window only keeps a running row number (it streams
    through its one sorted partition instead of buffering it).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    clv = F.col("predicted_clv")
    order = Window.orderBy((clv.isNull() | F.isnan(clv)).asc(), clv.desc(), F.col("customer_id").asc())
    rank = F.row_number().over(order)
    # double / double, as numpy's arange(1, n + 1) / n: the same IEEE quotient, the same comparisons.
    share = rank.cast("double") / F.lit(float(customers))
    p_alive = F.col("p_alive")
    return (
        F.when(p_alive < float(settings["lost_below"]), "lost")
        .when(p_alive < float(settings["at_risk_below"]), "at_risk")
        .when((rank == 1) | (share <= float(settings["vip_share"])), "VIP")
        .when(share <= float(settings["high_share"]), "high")
        .when(share <= float(settings["medium_share"]), "medium")
        .otherwise("low")
    )


def score(
    spark_df: "DataFrame",
    model: "TrainedModel",
    *,
    horizon: int | None = None,
    discount_rate: float | None = None,
    margin: float | None = None,
) -> "DataFrame":
    """Score every customer of an RFM frame; the Spark counterpart of :func:`clvmodel.predict.score`.

    Parameters
    ----------
    spark_df
        RFM rows in the model's time unit (``customer_id, frequency, recency, T[,
        monetary_value]``; other columns are ignored), e.g. from :func:`rfm`.
    model
        A trained model (:func:`clvmodel.artifact.load`).
    horizon, discount_rate, margin
        Override the model's CLV settings, as in :func:`clvmodel.predict.score`.

    Returns
    -------
    pyspark.sql.DataFrame
        :data:`SCORE_SCHEMA`: the columns of :data:`clvmodel.predict.OUTPUT_COLUMNS`, one row per
        customer, every value equal to the local engine's; row order is not defined (sort by
        ``customer_id`` when it matters). Segments are assigned across all customers with ties
        in predicted CLV broken by ``customer_id``, see :func:`_segment_column`. The local
        engine's optional columns (per-period values, bootstrap intervals, the scikit-learn
        challenger's forecasts) are not produced here.

    Raises
    ------
    ClvError
        The checks of :func:`clvmodel.predict.validate_rfm` (one pass over the frame, eager) and
        invalid horizon, discount rate or margin.
    """
    from clvmodel.predict import OUTPUT_COLUMNS, _check_options  # noqa: PLC2701 - same checks, same messages

    customers = _validate_rfm(spark_df, "input")
    _check_options(
        model.clv["horizon"] if horizon is None else horizon,
        float(model.clv["discount_rate"] if discount_rate is None else discount_rate),
        float(model.clv["margin"] if margin is None else margin),
    )
    columns = ["customer_id", "frequency", "recency", "T"] + (["monetary_value"] if "monetary_value" in spark_df.columns else [])
    document = json.dumps(model.to_document(), allow_nan=False)
    unsegmented = SCORE_SCHEMA.replace(" segment string,", "")
    with _quiet_pandas3():
        scored = spark_df.select(*columns).mapInPandas(
            _batch_scorer(document, columns, horizon, discount_rate, margin), schema=unsegmented
        )
    return scored.withColumn("segment", _segment_column(model.segments, customers)).select(*OUTPUT_COLUMNS)


def score_transactions(
    spark: "SparkSession",
    transactions_df: "DataFrame",
    model: "TrainedModel",
    *,
    as_of: dt.date | None = None,
    horizon: int | None = None,
    discount_rate: float | None = None,
    margin: float | None = None,
) -> "DataFrame":
    """Summarise transactions as of a date and score them, as ``clvmodel score`` does for a transaction file.

    Customers whose first purchase comes after ``as_of`` keep a row with status
    ``first_purchase_after_as_of`` and empty forecasts (never silently dropped), as in
    :func:`clvmodel.predict.read_input`; ``as_of`` defaults to the last transaction day (then
    there are none). ``horizon``, ``discount_rate`` and ``margin`` are :func:`score`'s.
    """
    from pyspark.sql import functions as F

    summary = rfm(spark, transactions_df, time_unit=model.time_unit, observation_end=as_of)
    scored = score(summary, model, horizon=horizon, discount_rate=discount_rate, margin=margin)
    if as_of is None:
        return scored
    late = (
        transactions_df.groupBy("customer_id")
        .agg(F.min("day").alias("first_day"))
        .where(F.col("first_day") > F.lit(as_of))
        .select("customer_id", F.lit("first_purchase_after_as_of").alias("status"))
    )
    return scored.unionByName(late, allowMissingColumns=True)


def write(frame: "DataFrame", path: str, *, overwrite: bool = False) -> str:
    """Write a frame as a Parquet folder, or a CSV folder with a header when ``path`` ends in ``.csv``.

    Spark writes one file per partition into a folder, committed when the job succeeds. An existing
    destination is an error unless ``overwrite`` (which replaces the whole folder).
    """
    from pyspark.errors import PySparkException

    writer = frame.write.mode("overwrite" if overwrite else "errorifexists")
    try:
        if path.lower().endswith(".csv"):
            writer.option("header", "true").csv(path)
        else:
            writer.parquet(path)
    except PySparkException as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "PATH_ALREADY_EXISTS" in first:
            raise ClvError(f"output {path} exists; remove it or choose another path") from None
        raise
    return path
