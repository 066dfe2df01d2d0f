"""Published RFM summaries (``data.format: rfm``): read, map, check.

Many data sets are published as a customer-level summary rather than a transaction log (the
donations data of Fader, Hardie & Shang 2010, lifetimes' CDNOW summary). :func:`read_summary`
reads one (CSV or Parquet, or ``bundled:<name>`` from lifetimes' data folder), renames the
configured columns to ``customer_id, frequency, recency, T[, monetary_value][, weights]``, and
checks it with the rules every RFM table passes (:func:`clvmodel.customers.validate_rfm`). What
it changes is reported, never silent: a summary without an id column gets its rows numbered
``1..n``; ``weights`` (customers per row) must be positive numbers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clvmodel.bundled import dataset_path
from clvmodel.checks import MISSING_IDS
from clvmodel.config import SummaryDataConfig, cut, excerpt
from clvmodel.customers import validate_rfm
from clvmodel.errors import ClvError

__all__ = ["SummaryReport", "read_summary", "HOLDOUT_COLUMNS", "BUNDLED_SUMMARIES"]

#: Holdout columns a summary may carry (lifetimes' ``calibration_and_holdout_data`` names).
HOLDOUT_COLUMNS = ("frequency_holdout", "monetary_value_holdout", "duration_holdout")
#: Summaries bundled with lifetimes, reachable as ``bundled:<name>``.
BUNDLED_SUMMARIES = ("donations", "cdnow_customers_summary")
_PARQUET = (".parquet", ".pq")


@dataclass
class SummaryReport:
    """What was read: the file, its rows and customers, and what was done to it."""

    source: str
    files: list[str]
    rows_read: int
    customers: int
    fingerprint: str = ""
    numbered_ids: bool = False
    weighted: bool = False
    rows_excluded: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the run's report."""
        parts = [f"{self.source}: {self.rows_read:,} summary rows, {self.customers:,} customers"]
        if self.weighted:
            parts.append("rows weighted by their customer counts")
        if self.numbered_ids:
            parts.append("no id column: rows numbered 1..n")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "rows_read": self.rows_read, "customers": self.customers,
                "fingerprint": self.fingerprint, "numbered_ids": self.numbered_ids}


def _path(source: str) -> Path:
    if source.startswith("bundled:"):
        name = source.removeprefix("bundled:")
        if name not in BUNDLED_SUMMARIES:
            raise ClvError(f"unknown bundled summary {excerpt(name)}; choose one of: {', '.join(BUNDLED_SUMMARIES)}")
        return dataset_path(name)
    path = Path(source)
    if not path.is_file():
        raise ClvError(f"data.source {excerpt(source)} not found; point it at a CSV or Parquet RFM summary")
    return path


def read_summary(data: SummaryDataConfig) -> tuple[pd.DataFrame, SummaryReport]:
    """Read and check the summary ``data`` describes.

    Returns
    -------
    summary, report
        ``customer_id`` (text), ``frequency``, ``recency``, ``T`` (float) and, when in the file,
        ``monetary_value``, ``weights`` and the :data:`HOLDOUT_COLUMNS`.

    Raises
    ------
    ClvError
        One line: a missing file or column, an unreadable file, or a row that breaks the RFM
        rules (negative, non-integer frequency, recency > T, ...), non-positive weights.
    """
    path = _path(data.source)
    names = data.columns
    origin = data.source
    try:
        if path.suffix.lower() in _PARQUET:
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(
                path, sep=r"\s+" if data.delimiter == "whitespace" else data.delimiter, encoding=data.encoding,
                dtype={names.customer_id: str}, keep_default_na=False,
                na_values={names.customer_id: list(MISSING_IDS)},
            )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError, UnicodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ClvError(f"cannot read {origin}: {first[:200]}; expected a CSV or Parquet RFM summary") from None
    required = {"frequency": names.frequency, "recency": names.recency, "T": names.T}
    missing = [f"{column} (data.columns.{key})" for key, column in required.items() if column not in frame.columns]
    if missing:
        raise ClvError(
            f"{origin}: missing summary column(s) {', '.join(missing)}; columns: "
            f"{cut(', '.join(map(str, frame.columns)))}; map them in data.columns"
        )
    optional = {"monetary_value": names.monetary_value, "weights": names.weights}
    renamed = {column: key for key, column in {**required, **optional}.items() if column in frame.columns}
    summary = frame.rename(columns=renamed)
    keep = [*required, *(k for k in optional if k in summary.columns), *(c for c in HOLDOUT_COLUMNS if c in summary.columns)]
    numbered = names.customer_id not in frame.columns
    ids = (pd.Series(np.arange(1, len(frame) + 1).astype(str), dtype=object) if numbered
           else frame[names.customer_id].astype("string").astype(object))
    summary = pd.concat([ids.rename("customer_id").reset_index(drop=True), summary[keep].reset_index(drop=True)], axis=1)
    summary = validate_rfm(summary, origin=origin)
    weighted = "weights" in summary.columns
    if weighted:
        weights = pd.to_numeric(summary["weights"], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(weights) | (weights <= 0)
        if bad.any():
            example = summary.loc[bad, "weights"].iloc[0]
            raise ClvError(
                f"{origin}: {int(bad.sum()):,} of {len(summary):,} rows have weights that are not positive numbers "
                f"(e.g. {excerpt(example)}); weights count the customers a row stands for"
            )
        summary["weights"] = weights
    for column in HOLDOUT_COLUMNS:
        if column in summary.columns:
            values = pd.to_numeric(summary[column], errors="coerce").to_numpy(dtype=float)
            if not np.isfinite(values).all() or (values < 0).any():
                raise ClvError(f"{origin}: {column} must hold non-negative numbers in every row")
            summary[column] = values
    customers = int(round(summary["weights"].sum())) if weighted else len(summary)
    report = SummaryReport(
        source=origin, files=[str(path)], rows_read=len(frame), customers=customers,
        fingerprint=hashlib.sha256(path.read_bytes()).hexdigest(), numbered_ids=numbered, weighted=weighted,
    )
    return summary, report
