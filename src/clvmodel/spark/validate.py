""":func:`clvmodel.customers.validate_rfm` over a whole Spark frame, with its own messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

from clvmodel.checks import MISSING_IDS, sql_literal
from clvmodel.errors import ClvError
from clvmodel.spark.sqltext import _quote
from clvmodel.sqltext import number
from clvmodel.spark.summary import _unit_days

if TYPE_CHECKING:  # pragma: no cover - type hints only; pyspark is optional
    from pyspark.sql import DataFrame


def _rfm_checks(numeric: list[str], time_unit: str | None) -> list[str]:
    """The SQL condition of each row check of :func:`clvmodel.customers.validate_rfm` after the id
    checks, in its order: a missing or non-numeric value per column, then the value rules.

    Only the conditions are mirrored (validate_rfm's masks are inline); the messages come from
    validate_rfm itself, see :func:`_rfm_error`.
    """
    num = {c: f"TRY_CAST({_quote(c)} AS DOUBLE)" for c in numeric}
    checks = [f"({v} IS NULL OR isnan({v}) OR abs({v}) = CAST('Infinity' AS DOUBLE))" for v in num.values()]
    f, r, t = num["frequency"], num["recency"], num["T"]
    checks += [f"{f} < 0", f"{f} % 1 <> 0", f"{r} < 0", f"{t} < 0", f"{r} > {t} + CAST(1e-9 AS DOUBLE)"]
    if time_unit is not None:
        checks.append(f"{f} > {r} * CAST({number(_unit_days(time_unit))} AS DOUBLE) + CAST(1e-6 AS DOUBLE)")
    if "monetary_value" in num:
        checks.append(f"{num['monetary_value']} < 0")
    return checks


def _rfm_error(
    probe: pd.DataFrame, origin: str, time_unit: str | None, replace: Mapping[str, str] = {}  # noqa: B006 - read only
) -> ClvError:
    """validate_rfm's own message for a few rows reproducing the failed check (the first offending
    row in input order), with the probe's counts replaced by the whole frame's (``replace``).

    The probe fails the same check as the frame: every earlier check passed on all rows. Should
    validate_rfm ever word its counts differently, the message keeps its text and gains the
    frame's counts at the end instead of showing the probe's alone.
    """
    from clvmodel.customers import validate_rfm

    try:
        validate_rfm(probe, origin=origin, time_unit=time_unit)
    except ClvError as err:
        message = str(err)
    else:  # a condition here drifted from validate_rfm's: name the failed rows without its text
        return ClvError(f"{origin}: {'; '.join(replace.values()) or 'invalid rows'}; fix the RFM table")
    missed = []
    for old, new in replace.items():
        if old in message:
            message = message.replace(old, new, 1)
        else:
            missed.append(new)
    return ClvError(message + (f" ({'; '.join(missed)} in all)" if missed else ""))


def _validate_rfm(rfm_df: "DataFrame", origin: str, time_unit: str | None = None) -> int:
    """:func:`clvmodel.customers.validate_rfm` over the whole frame; returns the row count.

    It runs on the driver over all rows (one pass, plus one more to find an example on failure):
    per batch, a worker would miss duplicates across batches and fail with a Python traceback
    instead of one line. Spark computes each check's count and first offending row (input order,
    as ``monotonically_increasing_id`` numbers it); the message is validate_rfm's own, raised on
    that row (:func:`_rfm_error`), so the two engines' wording cannot drift apart.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from clvmodel.customers import RFM_COLUMNS, _rows  # noqa: PLC2701 - validate_rfm's count wording

    columns = list(rfm_df.columns)
    if any(c not in columns for c in RFM_COLUMNS):
        raise _rfm_error(pd.DataFrame(columns=columns), origin, time_unit)
    used = list(RFM_COLUMNS) + (["monetary_value"] if "monetary_value" in columns else [])
    pos = "_clvmodel_row"
    framed = rfm_df.select(*[F.col(_quote(c)) for c in used], F.monotonically_increasing_id().alias(pos))
    row = "struct(" + ", ".join(_quote(c) for c in used) + ")"
    ident = r"regexp_replace(CAST(customer_id AS STRING), '^\\s+|\\s+$', '')"  # str.strip()
    # The local rule (checks.MISSING_IDS): NA, NaN, NULL... are missing ids, as in transaction logs.
    markers = ", ".join(sql_literal(v) for v in MISSING_IDS)
    empty = f"(customer_id IS NULL OR {ident} IN ({markers}))"
    checks = _rfm_checks(used[1:], time_unit)
    exprs = ["count(*) AS rows", f"count_if({empty}) AS empty", f"min({pos}) FILTER (WHERE {empty}) AS empty_at",
             f"count(DISTINCT {ident}) AS ids"]
    for i, condition in enumerate(checks):
        exprs += [f"count_if({condition}) AS n{i}", f"min_by({row}, {pos}) FILTER (WHERE {condition}) AS ex{i}"]
    stats = framed.selectExpr(*exprs).first().asDict()
    total = int(stats["rows"])
    if total == 0:
        raise _rfm_error(pd.DataFrame(columns=used), origin, time_unit)
    probe_row = {c: ("x" if c == "customer_id" else 0.0) for c in used}
    if stats["empty"]:
        number = framed.where(f"{pos} < {stats['empty_at']}").count() + 1
        probe = pd.DataFrame([{**probe_row, "customer_id": None}])
        raise _rfm_error(probe, origin, time_unit, {
            f"{origin}: {_rows(1, 1)} have": f"{origin}: {_rows(int(stats['empty']), total)} have",
            "e.g. data row 1)": f"e.g. data row {number})",
        })
    if stats["ids"] < total:
        repeat = Window.partitionBy("id").orderBy(pos)
        first = (
            framed.select(F.expr(ident).alias("id"), pos).withColumn("nth", F.row_number().over(repeat))
            .where("nth = 2").orderBy(pos).first()["id"]
        )
        probe = pd.DataFrame([{**probe_row, "customer_id": first}] * 2)
        raise _rfm_error(probe, origin, time_unit, {
            f"{origin}: 1 duplicated": f"{origin}: {total - int(stats['ids']):,} duplicated",
        })
    for i in range(len(checks)):
        if stats[f"n{i}"]:
            probe = pd.DataFrame([stats[f"ex{i}"].asDict()], columns=used)
            raise _rfm_error(probe, origin, time_unit, {
                f"{origin}: {_rows(1, 1)} have": f"{origin}: {_rows(int(stats[f'n{i}']), total)} have",
            })
    return total
