"""Customer (RFM) tables: the checks a table of customers passes before it is scored.

An RFM table has one row per customer, ``customer_id, frequency, recency, T[, monetary_value]`` in
the model's time unit, as ``clvmodel rfm`` writes it (one of the two inputs of
:mod:`clvmodel.predict`, with the transaction log). :func:`validate_rfm` returns it with
``customer_id`` as text and the numeric columns as float, or refuses it in one line naming the
count, an example and the fix; the streamed scorer (:mod:`clvmodel.batch`, per chunk) and the
Spark engine (:mod:`clvmodel.spark`, for its messages) use the same function.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvmodel.errors import ClvError

__all__ = ["RFM_COLUMNS", "validate_rfm"]

RFM_COLUMNS = ["customer_id", "frequency", "recency", "T"]


def _rows(n: int, total: int) -> str:
    return f"{n:,} of {total:,} rows"


def validate_rfm(frame: pd.DataFrame, origin: str = "input", *, time_unit: str | None = None) -> pd.DataFrame:
    """Check an RFM table; return it with ``customer_id`` as text and numeric columns as float.

    With ``time_unit`` (``day`` or ``week``), also refuse more repeat purchase days than days
    between the first and last purchase (``frequency > recency`` in days): no transaction log
    gives that (same-day purchases are one), and Pareto/NBD returns NaN for such rows.

    Raises
    ------
    ClvError
        Missing columns, empty or duplicated ids, NaN values, negative or non-integer frequency,
        negative recency or T, recency > T; one line naming the count, an example and the fix.
    """
    missing = [c for c in RFM_COLUMNS if c not in frame.columns]
    if missing:
        columns = [str(c) for c in frame.columns]
        hint = ""
        if len(columns) == 1 and any(d in columns[0] for d in (";", "\t", "|")):
            hint = " (the file looks delimited by something other than commas: save it as comma-separated CSV)"
        raise ClvError(
            f"{origin}: missing RFM column(s) {', '.join(missing)} (columns: {', '.join(columns)}){hint}; "
            "expected customer_id, frequency, recency, T[, monetary_value] in the model's time unit, as "
            "clvmodel rfm writes them"
        )
    total = len(frame)
    if total == 0:
        raise ClvError(f"{origin}: no customers to score (a header but no rows); pass a file with one row per customer")
    # Columns are replaced, never written into: with copy-on-write (pandas >= 3, or enabled) the
    # caller's frame stays as it was, without copying a million ids first.
    out = frame.copy(deep=not _copy_on_write())
    ids, text = _clean_ids(out["customer_id"], origin, total)
    out["customer_id"] = ids
    duplicated = _duplicated_ids(ids, text)
    if len(duplicated):
        raise ClvError(
            f"{origin}: {len(duplicated):,} duplicated customer_id(s) (e.g. {duplicated.iloc[0]!r}); an RFM table has "
            "one row per customer: remove the repeats, or summarise the transactions again with clvmodel rfm"
        )
    numeric = ["frequency", "recency", "T"] + (["monetary_value"] if "monetary_value" in out.columns else [])
    for column in numeric:
        out[column] = _as_float(out, column, origin, total)

    def shown(mask: np.ndarray, *columns: str) -> str:
        first = out.loc[mask].iloc[0]
        values = ", ".join(f"{c} {first[c]:g}" for c in columns)
        return f"customer {first['customer_id']!r} with {values}"

    f, r, T = (out[c].to_numpy() for c in ("frequency", "recency", "T"))
    checks = [
        (f < 0, "a negative frequency", ("frequency",), "frequency counts repeat purchases (0 or more)"),
        (
            f != np.floor(f),
            "a non-integer frequency",
            ("frequency",),
            "frequency is a count of repeat purchase days: use whole numbers",
        ),
        (r < 0, "a negative recency", ("recency",), "recency is the time from first to last purchase (>= 0)"),
        (T < 0, "a negative T", ("T",), "T is the time from the first purchase to the end of observation (>= 0)"),
        (
            r > T + 1e-9,
            "recency > T (a last purchase after the end of observation)",
            ("recency", "T"),
            "recompute the table with clvmodel rfm, or pass the transactions instead",
        ),
    ]
    from clvmodel.rfm import UNIT_DAYS

    # Months and years of a published summary may have been counted otherwise (calendar months):
    # the day-count check holds for days and weeks only.
    if time_unit in ("day", "week"):
        days = UNIT_DAYS[time_unit]
        checks.append(
            (
                f > r * days + 1e-6,
                f"more repeat purchase days than days from the first to the last purchase (frequency > recency x {days})",
                ("frequency", "recency"),
                "frequency counts repeat purchase days, not transactions: summarise the transactions with clvmodel rfm",
            )
        )
    if "monetary_value" in out.columns:
        from clvmodel.checks import AMOUNT_CEILING

        checks.append(
            (out["monetary_value"].to_numpy() < 0, "a negative monetary_value", ("monetary_value",),
             "spend per repeat purchase must be >= 0 (drop refunds before summarising)")
        )
        # The transaction log's ceiling (checks.AMOUNT_CEILING): 1e300 scored a CLV of 1e300.
        checks.append(
            (out["monetary_value"].to_numpy() > AMOUNT_CEILING, f"a monetary_value above {AMOUNT_CEILING:,.0f}",
             ("monetary_value",), "fix the table (an id or a card number in the column?)")
        )
    for mask, what, columns, fix in checks:
        if mask.any():
            raise ClvError(f"{origin}: {_rows(int(mask.sum()), total)} have {what}, e.g. {shown(mask, *columns)}; {fix}")
    return out


def _as_float(frame: pd.DataFrame, column: str, origin: str, total: int) -> pd.Series:
    """``frame[column]`` as float, refusing missing or non-numeric values (one line, with an example).

    Float and integer columns, the usual case, are neither parsed nor copied more than needed.
    """
    given = frame[column]
    if given.dtype == np.float64:
        values, numbers = given, given.to_numpy()
    elif isinstance(given.dtype, np.dtype) and given.dtype.kind in "iu":  # whole numbers: all finite
        return given.astype(float)
    else:
        values = pd.to_numeric(given, errors="coerce")
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(numbers)  # NaN (missing, not a number) too
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        example, value = frame["customer_id"].iloc[first], given.iloc[first]
        shown = "empty" if pd.isna(value) else repr(value) if isinstance(value, str) else value
        raise ClvError(
            f"{origin}: {_rows(int(bad.sum()), total)} have a missing or non-numeric {column} (e.g. customer "
            f"{example!r}: {shown}); fill in a number or remove those rows"
        )
    return values if values.dtype == np.float64 else values.astype(float)


def _copy_on_write() -> bool:
    """Whether pandas copies on write (always from pandas 3; an option in pandas 2)."""
    if int(pd.__version__.split(".")[0]) >= 3:
        return True
    return pd.get_option("mode.copy_on_write") is True


def _arrow_text(ids: pd.Series) -> Any:
    """The ids as a ``pyarrow`` string array when every one is a string, else ``None``.

    Arrow's kernels then check a million ids in milliseconds; ids of any other type (numbers,
    mixed, missing) take the general path, which turns them into text first.
    """
    import pyarrow as pa

    dtype = ids.dtype
    try:
        if isinstance(dtype, pd.StringDtype) and dtype.storage in ("pyarrow", "pyarrow_numpy"):
            return pa.array(ids.array)  # the stored Arrow data
        if dtype == object and pd.api.types.infer_dtype(ids, skipna=False) == "string":
            return pa.array(ids.to_numpy(), type=pa.large_string())
    except (pa.ArrowException, UnicodeError):  # e.g. a lone surrogate: the general path explains
        pass
    return None


def _clean_ids(ids: pd.Series, origin: str, total: int) -> tuple[pd.Series, Any]:
    """``customer_id`` as text without surrounding whitespace (object dtype), and as Arrow text.

    Ids that are already clean strings, the usual case, are kept as they are, with no trimmed
    copy made: clean when Arrow's trim shortens none and leaves none empty. The general path is
    the original rule (``str``, then pandas' ``strip``, which is Arrow's ``utf8_trim_whitespace``),
    so both paths accept and produce the same ids.

    Raises
    ------
    ClvError
        Missing or blank ids.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from clvmodel.checks import MISSING_IDS

    text = _arrow_text(ids)
    if text is not None and text.null_count == 0:
        # Arrow trims a million ids in ~15 ms; only ids that change take pandas' slow path below.
        length = pc.binary_length(text)
        trimmed = pc.binary_length(pc.utf8_trim_whitespace(text))
        markers = pc.any(pc.is_in(text, value_set=pa.array(MISSING_IDS, type=text.type))).as_py()
        if not markers and pc.min(trimmed).as_py() > 0 and pc.all(pc.equal(length, trimmed)).as_py():
            return (ids if ids.dtype == object else ids.astype(object)), text
    stripped = ids.astype(str).str.strip()
    # The transaction log's rule (checks.MISSING_IDS): NA, NaN, NULL are gaps, not customers.
    empty = ids.isna() | stripped.isin(MISSING_IDS)
    if empty.any():
        row = int(np.flatnonzero(empty.to_numpy())[0]) + 1
        raise ClvError(
            f"{origin}: {_rows(int(empty.sum()), total)} have no customer_id (empty, NA, NaN or NULL; e.g. data row "
            f"{row}); fill in the ids or remove those rows"
        )
    return stripped.astype(object), _arrow_text(stripped)


def _duplicated_ids(ids: pd.Series, text: Any) -> pd.Series:
    """The repeats of ids seen before (empty when every id is unique).

    Ids in strictly increasing order are unique, and that takes one comparison of neighbours:
    RFM tables from ``clvmodel rfm`` come sorted by id. Otherwise pandas' hash table finds them.
    """
    if text is not None and len(text) > 1:
        import pyarrow.compute as pc

        if pc.all(pc.greater(text[1:], text[:-1])).as_py():
            return ids.iloc[:0]
    return ids[ids.duplicated()]
