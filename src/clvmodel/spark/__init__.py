"""The same RFM SQL and scoring on a Spark cluster: the engine for data beyond one machine.

Install with ``pip install 'clvmodel[spark]'`` (pyspark, which needs Java 17+). Results equal the
local DuckDB engine's (:mod:`clvmodel.io`, :mod:`clvmodel.rfm`, :mod:`clvmodel.predict`):

* :func:`transactions` reads CSV/Parquet with a :class:`~clvmodel.config.DataConfig` and applies
  the cleaning rules of :func:`clvmodel.io.load_transactions`: Spark SQL computes the counts of
  :data:`clvmodel.checks.ROW_STATS` (io's aggregate) and the shared checks of :mod:`clvmodel.checks` (``no_rows_message``,
  ``check_columns``, ``check_rows``, ``nothing_left_message``, ``not_utf8_message``) raise the
  messages, so both engines say the same thing from the same code;
* :func:`rfm` runs **the same SQL text**, :func:`clvmodel.rfm.rfm_sql`, on a temporary view;
* :class:`clvmodel.spark.training.SparkSummaries` is training's source of summaries for
  ``clvmodel train --engine spark``: the summary and the split on Spark, the fits on the driver
  (README, "Training and scoring on a Spark cluster", has the ``spark-submit`` recipe for both);
* :func:`score` ships the model as its JSON document (no pickle of fitted objects) and calls
  :func:`clvmodel.predict.score` on each Arrow batch with ``mapInPandas``, segments included
  (against the boundaries the model fixed at training); a model saved before those ranks its
  customers once over all of them, see :func:`score`.

The results are identical (``tests/test_spark.py`` compares every value exactly): both engines
sum each customer's days as exact DECIMAL(38, 9) in the same SQL, so no value depends on the order
in which a cluster adds the amounts, and scoring is the same numpy code per customer. Two
conversions can still differ, neither tested: an amount with more than 9 decimals rounds
differently into DECIMAL(38, 9) (``1.0000000015`` is 1.000000001 in DuckDB, 1.000000002 in Spark),
and a spend beyond about 9 million (2^53 billionths) may convert back to DOUBLE differently in the
last bit.

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

Scaling note: scoring is distributed throughout. Only a model saved before segment boundaries
were fixed at training needs each customer's rank in one global order, a window without
partitions: one task sorts the scored rows (one per customer, not per transaction), spilling to
disk when they exceed its memory; retrain it to drop that step.
"""

from __future__ import annotations

from clvmodel.spark.load import load_transactions, transactions
from clvmodel.spark.output import write
from clvmodel.spark.runtime import JAVA_MISSING, PYSPARK_MISSING, session
from clvmodel.spark.scoring import SCORE_SCHEMA, score, score_transactions
from clvmodel.spark.sqltext import strftime_to_spark
from clvmodel.spark.summary import rfm, rfm_counts, rfm_to_pandas

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
