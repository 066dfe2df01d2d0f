"""A customer file to score: told apart (RFM table or transaction log) and described as queries.

Below both scorers: :func:`clvmodel.predict.read_input` (in memory) and
:func:`clvmodel.batch.score_relation` (streamed) read a file through the same :func:`plan_input`,
so the two agree on what a file is and how it is read. Nothing here scores.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from clvmodel.artifact import TrainedModel
from clvmodel.errors import ClvError
from clvmodel.sqltext import date_literal, identifier, literal

__all__ = ["BatchInput", "plan_input", "columns_of", "reading_rules"]


@dataclass
class BatchInput:
    """Where the RFM rows come from, as DuckDB queries on one connection."""

    query: str  # customer_id, frequency, recency, T[, monetary_value]
    kind: str  # "rfm" or "transactions"
    as_of: Any = None
    late_query: str | None = None  # customer_id of customers first seen after as_of
    ignored_transactions: int = 0
    challenger: pd.DataFrame | None = None  # its predictions over its training window


def reading_rules(model: TrainedModel, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model's data section (how its training log was read), with ``overrides`` applied.

    ``overrides`` may set ``columns`` (a mapping of roles to names, merged into the model's),
    ``delimiter``, ``date_format`` and ``encoding``: a log exported with other names or another
    delimiter than the training one (``clvmodel score --columns ... --delimiter ...``).
    """
    data = dict(model.config.get("data") or {})
    data["columns"] = {**dict(model.columns), **dict(data.get("columns") or {})}
    for key, value in (overrides or {}).items():
        if key == "columns":
            data["columns"] = {**data["columns"], **value}
        else:
            data[key] = value
    return data


def plan_input(
    model: TrainedModel, path: str | Path, con: duckdb.DuckDBPyConnection, *, as_of: Any = None,
    reading: dict[str, Any] | None = None,
) -> BatchInput:
    """Tell an RFM table from a transaction log and describe it as queries, without reading it.

    The one place the kind of a customer file is decided: ``frequency, recency, T`` make it RFM;
    the model's transaction columns make it a transaction log, read exactly as in training (same
    date format, delimiter, column names and cleaning rules: :func:`reading_rules`, with the
    caller's ``reading`` overrides) and summarised as of ``as_of`` (default: its last day). A
    ``bundled:NAME`` source is read as training reads it (its own column names and date format).
    :func:`clvmodel.predict.read_input` materialises the same plan in memory, and the streaming
    scorer (:func:`clvmodel.batch.score_relation`) pulls it chunk by chunk.
    """
    from clvmodel import checks, io

    data_cfg = reading_rules(model, reading)
    if str(path).startswith("bundled:"):
        # Read as training reads it: the bundled set's own column names and date format.
        data_cfg.update(source=str(path), columns={}, date_format=None, delimiter=",", header=True)
        return _transactions(model, con, data_cfg, as_of, str(path))
    path = Path(path)
    if not path.is_file():
        raise ClvError(f"input file {path} not found")
    header = columns_of(path, model, data_cfg)
    repeated = checks.duplicate_header_message(path, checks.header_names(path, _reading_of(data_cfg)))
    if repeated:
        raise ClvError(repeated)
    # The path goes into a query string that several callers wrap and run (read_input, the
    # streaming scorer), so it is quoted here rather than passed as a parameter.
    source_sql = literal(path.as_posix())
    if {"frequency", "recency", "T"} <= set(header):
        if as_of is not None:
            raise ClvError(f"--as-of applies to transaction input, and {path} is an RFM table (already summarised); drop --as-of")
        columns = ["customer_id", "frequency", "recency", "T"] + (["monetary_value"] if "monetary_value" in header else [])
        if "customer_id" not in header:
            raise ClvError(f"{path}: missing RFM column(s) customer_id (columns: {', '.join(header)})")
        reader = (f"read_parquet({source_sql})" if path.suffix.lower() in {".parquet", ".pq"}
                  else f"read_csv({source_sql}, header=true, all_varchar=true)")
        if path.suffix.lower() in {".parquet", ".pq"}:  # 7.0 would become the id '7.0'
            checks.check_id_type(str(path), "customer_id", con.execute(
                f"SELECT column_type FROM (DESCRIBE SELECT customer_id FROM {reader})").fetchone()[0])
        # Text in, numbers checked per chunk by customers.validate_rfm (one-line errors, not casts).
        cid = f"CAST({identifier('customer_id')} AS VARCHAR)"
        if path.suffix.lower() not in {".parquet", ".pq"}:  # a CSV clvmodel wrote: drop the quote of io.csv_safe
            cid = io.csv_unescape_sql(cid)
        select = ", ".join(f"{cid} AS {identifier(c)}" if c == "customer_id" else identifier(c) for c in columns)
        return BatchInput(f"SELECT {select} FROM {reader}", "rfm")
    data_cfg["source"] = str(path)
    names = data_cfg["columns"]
    if not all(names.get(r, r) in header for r in ("customer_id", "date", "amount")):
        hint = ""
        if len(header) == 1 and any(d in header[0] for d in (";", "\t", "|", ",")):
            hint = " (one column: is the file delimited by something other than the model's delimiter? --delimiter)"
        raise ClvError(
            f"{path}: neither an RFM table (customer_id, frequency, recency, T) nor transactions with the model's "
            f"columns ({', '.join(names.get(r, r) for r in ('customer_id', 'date', 'amount'))}); found: {', '.join(header)}"
            f"{hint}; rename the columns, pass --columns customer_id=...,date=...,amount=..., or summarise the "
            "transactions with clvmodel rfm"
        )
    return _transactions(model, con, data_cfg, as_of, str(path))


def _reading_of(data_cfg: dict[str, Any]) -> Any:
    """The header-reading settings of a data section (delimiter, encoding) for :func:`clvmodel.checks.header_names`."""
    from types import SimpleNamespace

    return SimpleNamespace(header=True, encoding=data_cfg.get("encoding") or "utf-8",
                           delimiter=data_cfg.get("delimiter") or ",")


def _transactions(model: TrainedModel, con: duckdb.DuckDBPyConnection, data_cfg: dict[str, Any], as_of: Any,
                  path: str) -> BatchInput:
    """A transaction log read with ``data_cfg`` and summarised as of ``as_of`` (see :func:`plan_input`)."""
    from clvmodel import io, rfm
    from clvmodel.config import DataConfig

    if data_cfg.get("format") == "rfm" or model.time_unit not in rfm.UNIT_DAYS:
        # Trained on a published summary: there are no reading rules for a log to apply.
        raise ClvError(
            f"{path}: this model was trained on an RFM summary (in {model.time_unit}s), so it has no rules for "
            "reading a transaction log; pass an RFM table (customer_id, frequency, recency, T) in "
            f"{model.time_unit}s, e.g. from clvmodel rfm"
        )
    if isinstance(as_of, dt.datetime):  # a timestamp from the Python API: its day, as DuckDB's max(day) gives
        as_of = as_of.date()
    report = io.load_transactions(con, DataConfig.model_validate(data_cfg), observation_end=as_of)
    # `days` (built by the load) rather than `transactions`: a typed Parquet source is a view,
    # and these counts then need no second read of the file.
    first, last = con.execute("SELECT min(day), max(day) FROM days").fetchall()[0]
    as_of = as_of or last
    if as_of < first:
        raise ClvError(f"--as-of {as_of} is before the first transaction {first}; choose a date inside the data")
    ignored = con.execute("SELECT coalesce(sum(n), 0) FROM days WHERE day > ?", [as_of]).fetchall()[0][0]
    query = rfm.rfm_sql("days", as_of, as_of, rfm.UNIT_DAYS[model.time_unit], False, per_day=True)
    late = f"SELECT customer_id FROM days GROUP BY customer_id HAVING min(day) > {date_literal(as_of)}"
    challenger = None
    if model.challenger is not None:
        challenger = model.challenger.predict(con, cut=as_of, horizon_periods=model.challenger.window_periods_)
        if report.rereads_source:  # the challenger read a Parquet source again: still the file loaded?
            io.check_unchanged(report)
    return BatchInput(query, "transactions", as_of, late, int(ignored), challenger)


def columns_of(path: Path, model: TrainedModel, data_cfg: dict[str, Any] | None = None) -> list[str]:
    """Column names of a CSV/Parquet file without reading it whole, read as ``model``'s data config
    (or ``data_cfg``, :func:`reading_rules`) says."""
    from clvmodel.io import not_utf8_message

    data_cfg = data_cfg if data_cfg is not None else (model.config.get("data") or {})
    encoding = data_cfg.get("encoding") or "utf-8"
    parquet = path.suffix.lower() in {".parquet", ".pq"}
    if not parquet and path.stat().st_size == 0:
        raise ClvError(f"{path} is empty (0 bytes); pass an RFM table or a transaction log with a header line")
    # The path, the delimiter and the encoding are prepared parameters, never SQL text: the
    # file name is the user's and the two settings come from the model document.
    con = duckdb.connect(":memory:")
    try:
        if parquet:
            rel = con.sql("SELECT * FROM read_parquet(?) LIMIT 0", params=[path.as_posix()])
        elif data_cfg.get("delimiter") == "whitespace":
            return list(pd.read_csv(path, sep=r"\s+", nrows=0, encoding=encoding).columns)
        else:
            rel = con.sql(
                "SELECT * FROM read_csv(?, delim=?, header=true, all_varchar=true, encoding=?, skip=0) LIMIT 0",
                params=[path.as_posix(), data_cfg.get("delimiter", ","), encoding],
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
    finally:
        con.close()
