"""Reading the source as a Spark DataFrame, as :mod:`clvmodel.io` reads it (files, formats, encodings, null markers)."""

from __future__ import annotations

import ast
import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clvmodel.errors import ClvError
from clvmodel.spark.runtime import _quiet_pandas3
from clvmodel.spark.sqltext import _quote

if TYPE_CHECKING:  # pragma: no cover - type hints only; pyspark is optional
    from pyspark.sql import DataFrame, SparkSession

    from clvmodel.config import DataConfig

_PARQUET = (".parquet", ".pq")


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
    from clvmodel import checks, io

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
    for name in [] if _is_uri(source) else files:  # as io: Spark too would read a repeated column's first
        repeated = checks.duplicate_header_message(name, checks.header_names(name, data))
        if repeated:
            raise ClvError(repeated)
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
