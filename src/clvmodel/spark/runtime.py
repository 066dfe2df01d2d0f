"""pyspark's availability, the session, and the pandas 3 warning around Arrow conversions.

Nothing here imports pyspark at import time: :func:`_require_pyspark` raises the one-line install
hint when a function needs it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from clvmodel.errors import ClvError

if TYPE_CHECKING:  # pragma: no cover - type hints only; pyspark is optional
    from pyspark.sql import SparkSession

PYSPARK_MISSING = "pyspark is not installed; pip install 'clvmodel[spark]'"
JAVA_MISSING = "Spark needs Java 17+ on PATH (JAVA_HOME)"

# pyspark >= 4 warns on every Arrow conversion that pandas 3 is "not yet fully supported". The
# conversions used here (strings, int64, float64, dates) are checked by tests/test_spark.py, so
# the warning is silenced around those calls only, never globally.
_PANDAS3_WARNING = "PySpark does not yet fully support pandas"


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


@contextlib.contextmanager
def _quiet_pandas3() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PANDAS3_WARNING, category=FutureWarning)
        yield
