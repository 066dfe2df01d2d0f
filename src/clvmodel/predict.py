"""Score customers with a trained model: one forecast row per input customer.

Input is either an RFM table (``customer_id, frequency, recency, T[, monetary_value]`` in the
model's time unit) or a transaction log (read with the model's column mapping and summarised as of
a date). Output, one row per input customer, in this order::

    customer_id, frequency, recency, T, monetary_value, p_alive, expected_purchases,
    expected_order_value, predicted_clv, historical_clv, segment, status

* ``predicted_clv``: discounted CLV over the horizon from BG/NBD (+ Gamma-Gamma), see
  :mod:`clvmodel.clv`; the historical formula's value when the model has no BG/NBD.
* ``historical_clv``: the historical formula, see :mod:`clvmodel.models.historical`.
* ``segment``: ``lost`` when P(alive) < ``segments.lost_below``, else ``at_risk`` when below
  ``segments.at_risk_below`` (risk first: a valuable customer slipping away needs action more
  than a tier label); the others are tiered by predicted CLV rank across the scored customers:
  ``VIP`` (top ``vip_share``, 1 %), ``high`` (to ``high_share``, 20 %), ``medium`` (to
  ``medium_share``, 50 %), ``low``.
* ``status``: ``ok``, or why a customer could not be scored (``first_purchase_after_as_of``);
  such a customer keeps its row with empty forecasts — never silently dropped.

Optional columns follow: ``expected_purchases_lower/upper`` and ``predicted_clv_lower/upper``
(parametric-bootstrap intervals, :mod:`clvmodel.uncertainty`); ``challenger_purchases`` and
``challenger_spend`` when the model has a scikit-learn challenger and the input is a transaction
log (it needs the transactions, not just RFM), scaled from its training window to the horizon.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clvmodel import clv
from clvmodel.artifact import TrainedModel
from clvmodel.errors import ClvError

__all__ = ["OUTPUT_COLUMNS", "RFM_COLUMNS", "ScoreInput", "score", "assign_segments", "validate_rfm", "read_input"]

RFM_COLUMNS = ["customer_id", "frequency", "recency", "T"]
OUTPUT_COLUMNS = [
    "customer_id",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "p_alive",
    "expected_purchases",
    "expected_order_value",
    "predicted_clv",
    "historical_clv",
    "segment",
    "status",
]
SEGMENTS = ("VIP", "high", "medium", "low", "at_risk", "lost")


@dataclass
class ScoreInput:
    """Customers to score, as RFM rows, with where they came from."""

    rfm: pd.DataFrame
    kind: str  # "rfm" or "transactions"
    as_of: dt.date | None = None
    unscorable: dict[str, str] | None = None  # customer_id -> status
    ignored_transactions: int = 0  # transactions after as_of, not used
    #: The challenger's purchases and spend over its training window, per customer (transactions only).
    challenger: pd.DataFrame | None = None


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
    if time_unit is not None:
        from clvmodel.rfm import UNIT_DAYS

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
        checks.append(
            (out["monetary_value"].to_numpy() < 0, "a negative monetary_value", ("monetary_value",),
             "spend per repeat purchase must be >= 0 (drop refunds before summarising)")
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
    import pyarrow.compute as pc

    text = _arrow_text(ids)
    if text is not None and text.null_count == 0:
        # Arrow trims a million ids in ~15 ms; only ids that change take pandas' slow path below.
        length = pc.binary_length(text)
        trimmed = pc.binary_length(pc.utf8_trim_whitespace(text))
        if pc.min(trimmed).as_py() > 0 and pc.all(pc.equal(length, trimmed)).as_py():
            return (ids if ids.dtype == object else ids.astype(object)), text
    stripped = ids.astype(str).str.strip()
    empty = ids.isna() | (stripped == "")
    if empty.any():
        row = int(np.flatnonzero(empty.to_numpy())[0]) + 1
        raise ClvError(
            f"{origin}: {_rows(int(empty.sum()), total)} have an empty customer_id (e.g. data row {row}); "
            "fill in the ids or remove those rows"
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


def _check_options(horizon: int, discount_rate: float, margin: float) -> None:
    if not float(horizon).is_integer() or horizon <= 0:
        raise ClvError(
            f"horizon must be a whole number of periods > 0, got {horizon}; use e.g. 39 (periods of the model's "
            "time unit)"
        )
    if discount_rate < 0:
        raise ClvError(
            f"discount rate must be >= 0 per period, got {discount_rate}; use 0 for none, e.g. 0.01 per period"
        )
    if not 0 < margin <= 1:
        raise ClvError(
            f"margin must be in (0, 1], got {margin}; use the share of revenue kept, e.g. 0.3 (1 when the amounts "
            "are already margin)"
        )


def assign_segments(
    predicted_clv: np.ndarray, p_alive: np.ndarray, settings: dict[str, Any], customer_id: np.ndarray | None = None
) -> np.ndarray:
    """Segments as described in the module docstring.

    Rank ties are broken by ``customer_id`` (then input order), the rule the streamed and Spark
    scorers use too, so every engine labels the same customers alike.

    The rule is that of one sort of every customer (CLV descending, missing last, then id as
    text, then input order; rank ``k`` has share ``k / n``), computed without it: each tier is
    the top ``K`` customers for a count ``K`` known from the share, so only its boundary CLV is
    needed (one partial sort for all tiers), and ids are compared only among the customers tied
    at a boundary.
    """
    return np.array(SEGMENTS, dtype=object)[_segment_codes(predicted_clv, p_alive, settings, customer_id)]


def _segment_codes(
    predicted_clv: np.ndarray, p_alive: np.ndarray, settings: dict[str, Any], customer_id: np.ndarray | None = None
) -> np.ndarray:
    """:func:`assign_segments` as positions in :data:`SEGMENTS` (``int8``), without a string per customer."""
    n = len(predicted_clv)
    codes = np.full(n, SEGMENTS.index("low"), dtype=np.int8)
    if n == 0:
        return codes
    # Ascending order of -CLV is descending CLV with NaN last, numpy's order for both sort and
    # partition (-0.0 and 0.0 tie, as in a sort).
    key = -np.asarray(predicted_clv, dtype=float)
    tiers = [(_top_count(float(settings[f"{name}_share"]), n), name) for name in ("medium", "high", "vip")]
    if tiers[-1][0] == 0:  # a small file still has a best customer (else it is in the VIP tier already)
        tiers.append((1, "vip"))
    counts = sorted({count for count, _ in tiers if count > 0})
    partitioned = np.partition(key, [count - 1 for count in counts])
    for count, name in tiers:  # wider tiers first: each narrower one relabels its part
        if count:
            top = _first_ranked(key, count, partitioned[count - 1], customer_id)
            np.putmask(codes, top, SEGMENTS.index("VIP" if name == "vip" else name))
    p_alive = np.asarray(p_alive, dtype=float)
    np.putmask(codes, p_alive < settings["at_risk_below"], SEGMENTS.index("at_risk"))
    np.putmask(codes, p_alive < settings["lost_below"], SEGMENTS.index("lost"))
    return codes


def _top_count(share: float, n: int) -> int:
    """How many ranks ``k = 1..n`` have ``k / n <= share``, with the quotient rounded as numpy does.

    Correctly rounded division is monotone in ``k``, so the ranks that qualify are ``1..K``; the
    estimate ``share × n`` is corrected by the exact comparison the sort-based rule makes.
    """
    if not share >= 1 / n:  # also NaN
        return 0
    count = n if share >= 1 else int(share * n)
    while count < n and (count + 1) / n <= share:
        count += 1
    while count > 0 and count / n > share:
        count -= 1
    return count


def _first_ranked(key: np.ndarray, count: int, boundary: float, customer_id: np.ndarray | None) -> np.ndarray:
    """Mask of the ``count`` customers first in order of ``key`` (ascending, NaN last), then id, then position.

    ``boundary`` is the ``count``-th smallest key. Everyone below it is in; of the customers
    equal to it, as many as are still missing, first by id as text (numpy's ``str`` conversion
    and comparison, as a sort of all ids would use), then by position.
    """
    if np.isnan(boundary):
        inside, tied = ~np.isnan(key), np.flatnonzero(np.isnan(key))
    else:
        inside, tied = key < boundary, np.flatnonzero(key == boundary)
    missing = count - int(np.count_nonzero(inside))
    if missing < len(tied) and customer_id is not None:
        # A stable sort of the tied ids keeps positions in order among equal ids.
        tied = tied[np.argsort(np.asarray(np.asarray(customer_id)[tied], dtype=str), kind="stable")]
    inside[tied[:missing]] = True
    return inside


def score(
    model: TrainedModel,
    customers: pd.DataFrame | ScoreInput,
    *,
    horizon: int | None = None,
    discount_rate: float | None = None,
    margin: float | None = None,
    per_period: bool = False,
    interval_level: float | None = None,
    interval_draws: int | None = None,
) -> pd.DataFrame:
    """Forecast every customer; see the module docstring for the columns.

    Parameters
    ----------
    model
        A trained model (:func:`clvmodel.load_model`).
    customers
        RFM rows in the model's time unit, or a :class:`ScoreInput` from :func:`read_input`.
    horizon, discount_rate, margin
        Override the model's CLV settings (horizon in whole periods of the model's time unit).
    per_period
        Add ``period_1..period_H``: each period's discounted expected value (BG/NBD models).
    interval_level, interval_draws
        Parametric-bootstrap intervals (:mod:`clvmodel.uncertainty`) as ``expected_purchases_lower``
        / ``_upper`` and ``predicted_clv_lower`` / ``_upper``; defaults from the model's
        ``intervals`` config (90 %, 1,000 draws, seeded); 0 draws adds no interval columns.

    Returns
    -------
    pandas.DataFrame
        Exactly one row per input customer, in input order.
    """
    source = customers if isinstance(customers, ScoreInput) else ScoreInput(validate_rfm(customers), "rfm")
    horizon = model.clv["horizon"] if horizon is None else horizon
    discount_rate = float(model.clv["discount_rate"] if discount_rate is None else discount_rate)
    margin = float(model.clv["margin"] if margin is None else margin)
    _check_options(horizon, discount_rate, margin)
    horizon = int(horizon)
    rfm = source.rfm.reset_index(drop=True)
    has_spend = "monetary_value" in rfm.columns
    if not has_spend:
        rfm = rfm.assign(monetary_value=np.nan)
    # The output is assembled once, at the end, from these columns: no frame is copied or
    # widened column by column on the way.
    columns: dict[str, Any] = {c: rfm[c] for c in ("customer_id", "frequency", "recency", "T", "monetary_value")}
    monetary = rfm["monetary_value"].fillna(0.0)
    filled = clv.frame_of({**columns, "monetary_value": monetary}, rfm.index)

    historical = model.historical_model
    if historical is not None:
        columns["historical_clv"] = historical.clv(
            rfm["frequency"], rfm["T"], monetary, horizon=horizon, discount_rate=discount_rate, margin=margin
        )
    else:
        columns["historical_clv"] = np.full(len(rfm), np.nan)

    extra: list[pd.DataFrame] = []
    if model.purchase_model is not None:
        forecast = clv.forecast(
            model.purchase_model,
            model.spend_model,
            filled,
            horizon=horizon,
            discount_rate=discount_rate,
            margin=margin,
            per_period=per_period,
        )
        if not has_spend and model.spend_model is not None:
            # No spend history given: the population mean order value for everyone, eq. (5) at x = 0.
            population = model.spend_model.population_mean
            ratio = population / forecast["expected_order_value"].replace(0, np.nan)
            forecast["predicted_clv"] = forecast["predicted_clv"] * ratio.fillna(0)
            forecast["expected_order_value"] = population
        for column in ("p_alive", "expected_purchases", "expected_order_value", "predicted_clv"):
            columns[column] = forecast[column].to_numpy()
        settings = model.config.get("intervals") or {}
        draws = int(settings.get("draws", 1000) if interval_draws is None else interval_draws)
        level = float(settings.get("level", 0.9) if interval_level is None else interval_level)
        if not 0 < level < 1 or draws < 0:
            raise ClvError(f"interval level must be in (0, 1) and draws >= 0, got {level} and {draws}")
        if draws:
            from clvmodel.uncertainty import interval_columns

            extra.append(interval_columns(
                model, filled, forecast, horizon=horizon, margin=margin, level=level, draws=draws,
                seed=int(settings.get("seed", 0)),
            ))
        if per_period:
            extra.append(forecast.filter(like="period_"))
    else:
        columns["p_alive"] = np.full(len(rfm), np.nan)
        columns["expected_purchases"] = historical.expected_purchases(rfm["frequency"], rfm["T"], t=horizon)
        columns["expected_order_value"] = historical.order_value(rfm["frequency"], monetary)
        columns["predicted_clv"] = columns["historical_clv"]
    codes = _segment_codes(
        np.asarray(columns["predicted_clv"], dtype=float), np.asarray(columns["p_alive"], dtype=float),
        model.segments, rfm["customer_id"].to_numpy(),
    )
    columns["segment"] = _text_column(SEGMENTS, codes)
    columns["status"] = _text_column(("ok",), np.zeros(len(rfm), dtype=np.int8))
    if source.challenger is not None and model.challenger is not None:
        factor = model.challenger.horizon_factor(horizon)
        aligned = rfm[["customer_id"]].merge(source.challenger, on="customer_id", how="left", validate="1:1")
        extra.append(pd.DataFrame({"challenger_purchases": aligned["purchases"].to_numpy() * factor,
                                   "challenger_spend": aligned["spend"].to_numpy() * factor}, index=rfm.index))
    out = clv.frame_of({c: columns[c] for c in OUTPUT_COLUMNS}, rfm.index)
    if extra:
        out = pd.concat([out, *extra], axis=1)
    if source.unscorable:
        refused = pd.DataFrame({"customer_id": list(source.unscorable), "status": list(source.unscorable.values())})
        out = pd.concat([out, refused.reindex(columns=out.columns)], ignore_index=True)
    return out


def _text_column(labels: tuple[str, ...], codes: np.ndarray) -> Any:
    """``labels[codes]`` stored as pandas stores a column of Python strings, without making them.

    That is the ``str`` dtype (Arrow) from pandas 3 on, built here by one Arrow ``take``
    (converting a million Python strings costs ~80 ms), and ``object`` before.
    """
    dtype = pd.Series(np.array(labels[:1], dtype=object)).dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        import pyarrow as pa

        return pd.array(pa.array(labels).take(pa.array(codes)), dtype=dtype)
    return np.array(labels, dtype=object)[codes]


def read_input(model: TrainedModel, path: str | Path, *, as_of: dt.date | None = None) -> ScoreInput:
    """Read a customer file into memory: an RFM table, or a transaction log summarised as of ``as_of``.

    The kind is told from the columns by :func:`clvmodel.batch.plan_input` (the streaming scorer
    uses the same plan); customers whose first purchase comes after ``as_of`` are kept with a
    status.
    """
    from clvmodel import batch, io

    con = io.connect()
    try:
        plan = batch.plan_input(model, path, con, as_of=as_of)
        rows = con.sql(plan.query).df()
        late = con.sql(f"{plan.late_query} ORDER BY 1").fetchall() if plan.late_query else []
    finally:
        con.close()
    rows["customer_id"] = rows["customer_id"].astype(object)
    if plan.kind == "rfm":
        rows = validate_rfm(rows, origin=str(path))
    return ScoreInput(
        rows,
        plan.kind,
        plan.as_of,
        {row[0]: "first_purchase_after_as_of" for row in late},
        plan.ignored_transactions,
        plan.challenger,
    )


def _columns_of(path: Path, model: TrainedModel) -> list[str]:
    """Column names of a CSV/Parquet file without reading it whole."""
    import duckdb

    from clvmodel.io import not_utf8_message

    data_cfg = model.config.get("data") or {}
    encoding = data_cfg.get("encoding") or "utf-8"
    parquet = path.suffix.lower() in {".parquet", ".pq"}
    if not parquet and path.stat().st_size == 0:
        raise ClvError(f"{path} is empty (0 bytes); pass an RFM table or a transaction log with a header line")
    try:
        if parquet:
            rel = duckdb.sql(f"SELECT * FROM read_parquet('{path.as_posix()}') LIMIT 0")
        elif data_cfg.get("delimiter") == "whitespace":
            return list(pd.read_csv(path, sep=r"\s+", nrows=0, encoding=encoding).columns)
        else:
            delim = data_cfg.get("delimiter", ",")
            rel = duckdb.sql(
                f"SELECT * FROM read_csv('{path.as_posix()}', delim='{delim}', header=true, all_varchar=true, "
                f"encoding='{encoding}', skip=0) LIMIT 0"
            )
        return list(rel.columns)
    except (duckdb.Error, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError) as err:
        text = str(err).strip()
        if encoding == "utf-8" and (isinstance(err, UnicodeError) or "unicode" in text.lower() or "utf-8" in text.lower()):
            message = not_utf8_message(path, "re-save it as UTF-8 (the model reads its data.encoding, utf-8)")
            if message:
                raise ClvError(message) from None
        from clvmodel.config import DataConfig
        from clvmodel.io import read_error

        raise read_error(str(path), [str(path)], DataConfig.model_validate({**data_cfg, "source": str(path)}), err) from None
