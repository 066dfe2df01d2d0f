"""Writing result frames as Parquet or CSV folders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clvmodel.errors import ClvError

if TYPE_CHECKING:  # pragma: no cover - type hints only; pyspark is optional
    from pyspark.sql import DataFrame


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
