"""Parsing and checking transactions: the Spark counterpart of :func:`clvmodel.io.load_transactions`.

Spark SQL computes the counts of :data:`clvmodel.checks.ROW_STATS`; the shared checks of
:mod:`clvmodel.checks` raise the messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from clvmodel.errors import ClvError
from clvmodel.spark.read import _data_config, _is_parquet, _is_uri, _read_raw, _unreadable
from clvmodel.spark.runtime import _require_pyspark
from clvmodel.spark.sqltext import _quote, _sql_str, strftime_to_spark
from clvmodel.sqltext import number

if TYPE_CHECKING:  # pragma: no cover - type hints only; pyspark is optional
    from pyspark.sql import DataFrame, SparkSession

    from clvmodel.config import DataConfig
    from clvmodel.io import LoadReport

_TRANSACTION_COLUMNS = ("customer_id", "day", "amount")


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
    huge = f"amount > CAST({number(checks.amount_limit(data))} AS DOUBLE)"
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


def refuse_duckdb_settings(data: DataConfig) -> None:
    """Refuse, in one line, a config's settings of DuckDB, which Spark would silently ignore.

    Called by the commands that read the user's config on Spark (``clvmodel rfm --config``,
    ``clvmodel train``), before the session starts; not by :func:`load_transactions`, which also
    reads a trained model's data section (``clvmodel score --engine spark``), where the settings
    record how the training machine ran DuckDB and the user cannot remove them.

    Raises
    ------
    ClvError
        ``data.memory_limit`` or ``data.temp_directory`` is set, with Spark's own setting to use.
    """
    if data.memory_limit is not None:
        raise ClvError(
            f"data.memory_limit {data.memory_limit} is DuckDB's memory cap; on Spark remove it and give "
            "--spark-conf spark.driver.memory=... (and spark.executor.memory) instead"
        )
    if data.temp_directory is not None:
        raise ClvError(
            f"data.temp_directory {data.temp_directory!r} is where DuckDB spills; on Spark remove it and give "
            "--spark-conf spark.local.dir=... instead"
        )


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
    if not isinstance(data.amount_format, str):  # not yet written in Spark SQL: refused, not ignored
        raise ClvError(
            "data.amount_format (a decimal mark, thousands separator, currency symbols) is read by the local engine "
            "only; run with --engine local, or write the amounts as plain numbers for Spark"
        )
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
        # A Parquet DOUBLE id reads as '7.0': refused as io refuses it (after the missing ids, which say more).
        id_type = raw.schema[data.columns.customer_id].dataType.simpleString()
        checks.check_id_type(label, data.columns.customer_id, id_type)
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
        # as io's report: an integer id column cannot have kept leading zeros, which the user should know
        integer_ids=_SPARK_INTEGER.get(id_type),
    )
    return kept.select(*_TRANSACTION_COLUMNS), report


#: Spark's integer types by ``simpleString``, named as DuckDB names them in io's report.
_SPARK_INTEGER = {"tinyint": "TINYINT", "smallint": "SMALLINT", "int": "INTEGER", "bigint": "BIGINT"}


def transactions(
    spark: "SparkSession", source: str | None, data_config: "DataConfig | Mapping[str, Any] | None" = None
) -> "DataFrame":
    """The checked transactions ``(customer_id STRING, day DATE, amount DOUBLE)``; see :func:`load_transactions`."""
    return load_transactions(spark, source, data_config)[0]
