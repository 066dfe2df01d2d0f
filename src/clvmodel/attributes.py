"""The customer table (``customers:``): each customer's acquisition channel and covariates.

One row per customer, read from CSV or Parquet, its id matched as text to the log's ids. Nothing
is dropped or changed silently; every mismatch is counted in :class:`CustomerReport` and shown in
the run's report:

* a customer of the log without a row is in channel ``unknown`` (with covariates configured it
  has none to give, so the run stops in one line instead);
* a row whose id never bought in the calibration period is counted and not used;
* a duplicated id, a missing channel or covariate value, or a covariate constant over all
  customers is one clear error (:class:`clvmodel.models.covariates.Design` for the covariates).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from clvmodel.config import CustomersConfig, excerpt
from clvmodel.errors import ClvError
from clvmodel.io import read_table
from clvmodel.models.channels import UNKNOWN_CHANNEL
from clvmodel.models.covariates import Design

__all__ = ["CustomerReport", "Customers", "read_customers", "attach_customers"]


@dataclass
class CustomerReport:
    """How the customer table met the log."""

    rows: int
    #: Customers of the log (calibration) without a row: channel ``unknown``.
    without_row: int
    #: Rows whose id is not a customer of the calibration period (not used).
    never_bought: int

    def lines(self) -> list[str]:
        out = [f"customer table: {self.rows:,} rows"]
        if self.without_row:
            out.append(f"{self.without_row:,} customers of the log have no row in the customer table: channel {UNKNOWN_CHANNEL!r}")
        if self.never_bought:
            out.append(f"{self.never_bought:,} rows of the customer table are not customers of the calibration period (not used)")
        return out


@dataclass
class Customers:
    """The customer table aligned to the summary's rows.

    Attributes
    ----------
    frame
        One row per summary row, same order: ``customer_id``, ``channel`` (text; ``unknown``
        without a row or without a channel column: then every customer is ``all``) and the raw
        covariate columns.
    design
        The covariates' encoding, or ``None`` without covariates.
    report
        The counts of :class:`CustomerReport`.
    """

    frame: pd.DataFrame
    design: Design | None
    report: CustomerReport


def read_customers(config: CustomersConfig) -> pd.DataFrame:
    """The customer table with ``customer_id`` (text), ``channel`` (text, if configured) and the covariates.

    Raises
    ------
    ClvError
        The file unreadable, a configured column absent, an id empty or duplicated, a channel missing.
    """
    origin = f"customers.source {config.source}"
    id_column = config.columns.customer_id
    frame = read_table(Path(config.source), id_column=id_column, delimiter=config.delimiter, encoding=config.encoding,
                       text_columns=tuple(dict.fromkeys([*([config.channel] if config.channel else []), *config.covariates])))
    wanted = [id_column] + ([config.channel] if config.channel else []) + list(config.covariates)
    missing = [c for c in dict.fromkeys(wanted) if c not in frame.columns]
    if missing:
        raise ClvError(
            f"{origin}: no column {excerpt(missing[0])} (columns: {', '.join(map(str, frame.columns))[:200]}); "
            "fix customers.columns, customers.channel or customers.covariates"
        )
    ids = frame[id_column].astype(object)
    empty = ids.isna() | (ids.astype(str).str.strip() == "")
    if empty.any():
        raise ClvError(f"{origin}: {int(empty.sum()):,} rows have no customer id (e.g. row {int(empty.idxmax()) + 2}); fill or remove them")
    ids = ids.astype(str).str.strip()
    twice = ids[ids.duplicated(keep=False)]
    if len(twice):
        raise ClvError(
            f"{origin}: {twice.nunique():,} customer ids appear more than once (e.g. {excerpt(twice.iloc[0])}); "
            "keep one row per customer"
        )
    out = pd.DataFrame({"customer_id": ids.to_numpy()})
    if config.channel:
        channel = frame[config.channel].astype(object)
        blank = channel.isna() | (channel.astype(str).str.strip() == "")
        if blank.any():
            raise ClvError(
                f"{origin}: channel {excerpt(config.channel)} is empty for {int(blank.sum()):,} customers "
                f"(e.g. {excerpt(ids[blank].iloc[0])}); fill it in (e.g. 'unknown')"
            )
        out["channel"] = _labels(channel)
    for name in config.covariates:
        out[name] = _covariate(frame[name])
    return out


#: A number as a covariate: optional sign, digits with an optional fraction, an optional exponent;
#: no leading zero before another digit (``01``, ``007`` are codes, i.e. categories).
_NUMBER = r"^[+-]?(?:0|[1-9]\d*)(?:\.\d*)?(?:[eE][+-]?\d+)?$|^[+-]?\.\d+(?:[eE][+-]?\d+)?$"


def _covariate(values: pd.Series) -> pd.Series:
    """A covariate read as text: numeric when every value is a plain number (``0``, ``1.5``), else
    categorical text (``web``, ``01``). Missing values stay missing for the design to refuse."""
    text = values.astype("string").str.strip()
    present = text.notna() & (text != "")
    if present.any() and bool(text[present].str.match(_NUMBER).all()):
        return pd.to_numeric(text.where(present), errors="coerce").astype(float)
    return values


def _labels(values: pd.Series) -> pd.Series:
    """Channel labels as text, as written (read as text: ``01`` stays ``01``)."""
    return values.astype(str).str.strip().to_numpy()


def attach_customers(summary_ids: pd.Series, table: pd.DataFrame, config: CustomersConfig) -> Customers:
    """The table's channel and covariates for each summary row (a left join on the id as text).

    Raises
    ------
    ClvError
        With covariates: a customer of the log without a row (its covariates are unknown), or
        what :meth:`Design.fit` refuses.
    """
    origin = f"customers.source {config.source}"
    ids = pd.Series(summary_ids.astype(str).to_numpy(), name="customer_id")
    lookup = table.set_index("customer_id")
    found = ids.isin(lookup.index)
    without = int((~found).sum())
    report = CustomerReport(rows=len(table), without_row=without, never_bought=int((~table["customer_id"].isin(ids)).sum()))
    if config.covariates and without:
        raise ClvError(
            f"{origin}: {without:,} of the log's {len(ids):,} customers have no row (e.g. {excerpt(ids[~found].iloc[0])}), "
            "so their covariates are unknown; add their rows or train without customers.covariates"
        )
    if found.sum() == 0:
        raise ClvError(
            f"{origin}: none of the log's {len(ids):,} customer ids is in the table (e.g. log {excerpt(ids.iloc[0])} vs "
            f"table {excerpt(table['customer_id'].iloc[0]) if len(table) else 'none'}); use the same ids"
        )
    frame = pd.DataFrame({"customer_id": ids})
    aligned = lookup.reindex(ids.to_numpy())
    if config.channel:
        frame["channel"] = aligned["channel"].fillna(UNKNOWN_CHANNEL).to_numpy()
    else:
        frame["channel"] = "all"
    for name in config.covariates:
        frame[name] = aligned[name].to_numpy()
    design = Design.fit(frame, list(config.covariates), origin) if config.covariates else None
    return Customers(frame, design, report)
