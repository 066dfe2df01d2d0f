"""Scores in: column checks, clean channel labels, and :func:`attach_channels`.

The checks here are shared by the tables and the allocation, so that every stage words a missing
column or an unconfigured channel the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from clvmodel.budget.cac_config import UNKNOWN, CacConfig
from clvmodel.errors import ClvError


def _id_strings(ids: pd.Series) -> pd.Series:
    """Customer ids as text, so ``42`` (int) and ``"42"`` join; ``42.0`` (a float column that
    held NaN somewhere upstream) is read as ``"42"`` too."""
    if pd.api.types.is_float_dtype(ids) and ids.notna().all() and bool((ids % 1 == 0).all()):
        ids = ids.astype("int64")
    return ids.astype(object).map(str)


def _channel_names(values: pd.Series) -> pd.Series:
    """Clean channel labels; missing or blank become :data:`UNKNOWN`."""

    def clean(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            return UNKNOWN
        s = str(v).strip()
        return s if s else UNKNOWN

    return values.astype(object).map(clean)


def _require_columns(df: pd.DataFrame, columns: Iterable[str], what: str, fix: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns[:12]))
        raise ClvError(f"{what} has no column {', '.join(missing)} (columns: {have}); {fix}")


def attach_channels(
    scores: pd.DataFrame, customers: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Return a copy of ``scores`` with a clean ``channel`` column, one row per input row.

    The channel comes from ``customers`` (columns ``customer_id``, ``channel``; joined on
    ``customer_id`` compared as strings) when given, which then replaces any ``channel`` column
    of ``scores``; otherwise from the ``channel`` column of ``scores``. Customers with no channel
    become ``"unknown"``; no row is ever dropped or duplicated.

    Raises
    ------
    ClvError
        Missing ``customer_id``/``channel`` columns, duplicate ids in ``customers``, or a
        customers table that matches none of the scores' ids.
    """
    out = scores.copy()
    if customers is None:
        if "channel" in out.columns:
            out["channel"] = _channel_names(out["channel"]).to_numpy()
        else:
            out["channel"] = UNKNOWN
        return out
    _require_columns(out, ["customer_id"], "scores", "re-run clvmodel score")
    _require_columns(
        customers, ["customer_id", "channel"], "customers table",
        "give a table with columns customer_id, channel",
    )
    table_ids = _id_strings(customers["customer_id"])
    dup = table_ids[table_ids.duplicated(keep=False)]
    if len(dup):
        raise ClvError(
            f"customers table has {dup.nunique()} duplicate customer_id value(s) (e.g. "
            f"{dup.iloc[0]!r}); keep one channel per customer"
        )
    lookup = pd.Series(_channel_names(customers["channel"]).to_numpy(), index=table_ids.to_numpy())
    score_ids = _id_strings(out["customer_id"])
    # Series.map on a unique index is a left join that cannot add or drop rows.
    mapped = score_ids.map(lookup)
    if len(customers) and len(out) and mapped.isna().all():
        raise ClvError(
            f"none of the {len(out)} scores' customer ids appear in the customers table (e.g. "
            f"scores {score_ids.iloc[0]!r} vs table {table_ids.iloc[0]!r}); use the same ids"
        )
    out["channel"] = mapped.fillna(UNKNOWN).to_numpy()
    assert len(out) == len(scores), "attach_channels changed the row count"
    return out


def _check_scores(scores: pd.DataFrame) -> None:
    _require_columns(
        scores, ["predicted_clv"], "scores",
        "pass the output of clvmodel score (it has predicted_clv)",
    )
    clv = pd.to_numeric(scores["predicted_clv"], errors="coerce")
    bad = clv.isna() | ~np.isfinite(clv.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        raise ClvError(
            f"predicted_clv has {int(bad.sum())} missing or non-numeric value(s) (row "
            f"{int(np.flatnonzero(bad.to_numpy())[0])}); re-run clvmodel score or drop them"
        )


def _check_channels_configured(channels: Iterable[str], config: CacConfig, *, per_customer: bool = False) -> None:
    """Every channel but ``unknown`` has a CAC entry; ``per_customer``: ``channels`` has one value per
    customer, so the message can say how many customers each missing channel holds."""
    names = [str(c) for c in channels]
    missing = sorted({c for c in names if c != UNKNOWN and c not in config.channels})
    if missing:
        counts = {c: names.count(c) for c in missing}
        shown = [f"{c} ({counts[c]:,} customer{'s' if counts[c] != 1 else ''})" if per_customer else c for c in missing]
        configured = ", ".join(config.channels)
        raise ClvError(
            f"channel(s) in the scores without a CAC entry: {', '.join(shown)}; add them under "
            f"channels: in the CAC config, which has {configured} (customers with no channel are {UNKNOWN!r} and "
            "need none)"
        )
