"""Writing result frames as Parquet or CSV folders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clvmodel.checks import FORMULA_START
from clvmodel.sqltext import spark_identifier
from clvmodel.errors import ClvError

if TYPE_CHECKING:  # pragma: no cover - type hints only; pyspark is optional
    from pyspark.sql import DataFrame


def write(frame: "DataFrame", path: str, *, overwrite: bool = False) -> str:
    """Write a frame as a Parquet folder, or a CSV folder with a header when ``path`` ends in ``.csv``.

    Spark writes one file per partition into a folder, committed when the job succeeds. An existing
    destination is an error unless ``overwrite`` (which replaces the whole folder). In CSV, a text
    value starting with a formula character gets a ``'`` in front, as the local engine writes it
    (:data:`clvmodel.checks.FORMULA_START`; :func:`clvmodel.io.read_table` removes it again).
    """
    from pyspark.errors import PySparkException

    csv = path.lower().endswith(".csv")
    writer = (csv_safe(frame) if csv else frame).write.mode("overwrite" if overwrite else "errorifexists")
    try:
        if csv:
            writer.option("header", "true").csv(path)
        else:
            writer.parquet(path)
    except PySparkException as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "PATH_ALREADY_EXISTS" in first:
            raise ClvError(f"output {path} exists; remove it or choose another path") from None
        raise
    return path


def csv_safe(frame: "DataFrame") -> "DataFrame":
    """``frame`` with every text value that starts with a formula character behind a ``'``."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    first = list(FORMULA_START)
    columns = []
    for field in frame.schema.fields:
        column = F.col(spark_identifier(field.name))
        if isinstance(field.dataType, StringType):
            column = F.when(F.substring(column, 1, 1).isin(first), F.concat(F.lit("'"), column)).otherwise(column)
        columns.append(column.alias(field.name))
    return frame.select(*columns)
