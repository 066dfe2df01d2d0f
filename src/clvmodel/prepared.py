"""What a source of summaries hands training: the summary, its accounting and the extras.

:func:`clvmodel.train.train` asks a *source* -- a callable ``source(config, seconds) ->
Prepared`` -- for everything it reads from the data: the local engine's sources are
:func:`clvmodel.train._from_transactions` (DuckDB) and ``_from_summary`` (a published summary),
the Spark engine's is :class:`clvmodel.spark.training.SparkSummaries`. Whatever the source, the
fits, the leaderboard, the scores and the tracking that follow are the same code. This module
holds only the type both sides share, so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from clvmodel import rfm

__all__ = ["Prepared"]


@dataclass
class Prepared:
    """What a kind of data gives the common stages: the summary, its accounting and extras."""

    load: Any  # io.LoadReport, or summaries.SummaryReport for a published summary
    rfm: rfm.RfmResult
    repeat_series: pd.Series | None = None
    challenger: Any = None
    challenger_holdout: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    #: The customer table aligned to the summary (``customers:``), and first orders by id.
    customers: Any = None
    first_orders: pd.Series | None = None
    #: Each channel's observed cohort curve (:mod:`clvmodel.cohorts`), with a customer table.
    observed_curves: pd.DataFrame | None = None
