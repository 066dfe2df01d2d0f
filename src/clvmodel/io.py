"""Every file clvmodel reads or writes: transaction logs in, tables out.

Transactions are loaded into a DuckDB connection as the table ``transactions(customer_id
VARCHAR, day DATE, amount DOUBLE)``, checked and cleaned there, so a file larger than memory never
passes through pandas. The rules, applied in this order and reported by :class:`LoadReport`:

* a row whose customer id is empty or missing, whose date does not parse, or whose amount is not a
  number is an **error** (one line naming the count, an example and the fix): dropping it would
  silently lose a customer's purchase;
* a negative amount (a refund) is an error unless ``data.negative_amounts: exclude``, which drops
  those rows and counts them;
* a zero amount is **kept**: the customer did transact (CDNOW holds 80 such rows in the master
  file, 8 in the sample; promotional or free items), so it counts as a purchase for the
  frequency models and as zero spend for the spend model;
* customer ids are strings exactly as read (leading zeros kept, surrounding blanks trimmed).

Bundled data sets (``bundled:CDNOW_sample``, ``bundled:CDNOW_master``) are the files shipped with
lifetimes, read with fixed column names: ``customer_id`` (CDNOW's master id, e.g. ``00004``),
``sample_id`` (sample file only: 1..2357, the ids of the paper's summary file), ``date``
(``yyyymmdd``), ``cds`` and ``amount`` (dollars).
"""

from __future__ import annotations

import glob
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from clvmodel.config import DataConfig
from clvmodel.errors import ClvError

__all__ = ["LoadReport", "connect", "load_transactions", "read_table", "write_table", "write_figure", "resolve_files"]

_BUNDLED: dict[str, dict[str, Any]] = {
    "CDNOW_sample": {"names": ["customer_id", "sample_id", "date", "cds", "amount"], "header": False},
    "CDNOW_master": {"names": ["customer_id", "date", "cds", "amount"], "header": True},
}
_BUNDLED_DATE_FORMAT = "%Y%m%d"
_PARQUET = (".parquet", ".pq")
# Markers read as missing in CSV, as pandas does for the whitespace files: an id "NaN" is a gap in
# the export, not a customer called NaN.
_NULLS = "['', 'NA', 'N/A', 'NaN', 'nan', 'NULL', 'null', 'None']"


@dataclass
class LoadReport:
    """Row accounting for one load: what was read, what was cleaned and why."""

    source: str
    files: list[str]
    rows_read: int
    rows_excluded: dict[str, int] = field(default_factory=dict)
    zero_amount_rows: int = 0
    customers: int = 0
    first_date: str | None = None
    last_date: str | None = None
    fingerprint: str = ""

    @property
    def rows_kept(self) -> int:
        return self.rows_read - sum(self.rows_excluded.values())

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in {"rows_excluded", "files"}}
        out["rows_kept"] = self.rows_kept
        out.update({f"rows_excluded.{k}": v for k, v in self.rows_excluded.items()})
        return out


def connect(memory_limit: str | None = None, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection (spills to a temp directory beyond ``memory_limit``)."""
    con = duckdb.connect(":memory:")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def resolve_files(source: str) -> list[str]:
    """Files behind a path, a glob or a folder of Parquet files; an error when there are none."""
    if any(ch in source for ch in "*?["):
        files = sorted(glob.glob(source, recursive=True))
    elif Path(source).is_dir():
        files = sorted(str(p) for p in Path(source).rglob("*") if p.suffix in _PARQUET)
    else:
        files = [source] if Path(source).is_file() else []
    if not files:
        raise ClvError(f"no file found at {source!r}; check data.source (a path, a glob or a folder of Parquet files)")
    return files


def _fingerprint(files: list[str]) -> str:
    digest = hashlib.sha256()
    for name in files:
        with open(name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _shown(value: Any) -> str:
    """An offending value for a message; a missing one (empty, NA, NaN, null) is named as such."""
    return "an empty value" if value is None else repr(value)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _raw_relation(con: duckdb.DuckDBPyConnection, data: DataConfig) -> tuple[str, list[str], str | None]:
    """Register the source as view ``raw`` (all text for CSV); return its files and date format."""
    source = data.source
    date_format = data.date_format
    if source.startswith("bundled:"):
        from clvmodel.models.lifetimes_adapter import dataset_path

        name = source.removeprefix("bundled:")
        preset = _BUNDLED.get(name)
        if preset is None:
            raise ClvError(f"unknown bundled data set {name!r}; choose one of: {', '.join(_BUNDLED)}")
        path = str(dataset_path(name))
        frame = pd.read_csv(
            path, sep=r"\s+", header=0 if preset["header"] else None, names=preset["names"], dtype=str
        )
        con.register("raw_frame", frame)
        con.execute("CREATE OR REPLACE VIEW raw AS SELECT * FROM raw_frame")
        return path, [path], date_format or _BUNDLED_DATE_FORMAT

    files = resolve_files(source)
    file_list = "[" + ", ".join(_sql_str(f) for f in files) + "]"
    suffixes = {Path(f).suffix.lower() for f in files}
    try:
        if suffixes <= set(_PARQUET):
            con.execute(f"CREATE OR REPLACE VIEW raw AS SELECT * FROM read_parquet({file_list}, union_by_name=true)")
        elif data.delimiter == "whitespace":
            # DuckDB has no multi-blank delimiter; such files are legacy and small (CDNOW's).
            frame = pd.concat(
                [pd.read_csv(f, sep=r"\s+", header=0 if data.header else None, dtype=str) for f in files]
            )
            if not data.header:
                frame.columns = [f"column{i}" for i in range(frame.shape[1])]
            con.register("raw_frame", frame)
            con.execute("CREATE OR REPLACE VIEW raw AS SELECT * FROM raw_frame")
        else:
            con.execute(
                f"CREATE OR REPLACE VIEW raw AS SELECT * FROM read_csv({file_list}, delim={_sql_str(data.delimiter)}, "
                f"header={str(data.header).lower()}, all_varchar=true, union_by_name=true, nullstr={_NULLS})"
            )
        con.execute("SELECT * FROM raw LIMIT 1").fetchall()
    except (duckdb.Error, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ClvError(
            f"cannot read {source}: {first[:200]}; check that it is UTF-8 CSV (data.delimiter, data.header) or Parquet"
        ) from None
    return source, files, date_format


def load_transactions(con: duckdb.DuckDBPyConnection, data: DataConfig) -> LoadReport:
    """Read, check and clean the transactions into table ``transactions``; see the module rules.

    Raises
    ------
    ClvError
        A missing column, an empty file, missing ids, unparseable dates or amounts, or refunds
        under ``negative_amounts: error``; one line naming count, example and fix.
    """
    source, files, date_format = _raw_relation(con, data)
    if not con.execute("SELECT 1 FROM raw LIMIT 1").fetchall():  # before the column check: a 0-byte file has none
        raise ClvError(f"{source} holds no transactions (empty or header only); point data.source at the full export")
    available = [row[0] for row in con.execute("DESCRIBE raw").fetchall()]
    for role in ("customer_id", "date", "amount"):
        column = getattr(data.columns, role)
        if column not in available:
            raise ClvError(
                f"column {column!r} not found in {source} (columns: {', '.join(available)}); "
                f"set data.columns.{role} to the column holding the {role.replace('_', ' ')}"
            )
    cid, cdate, camount = (_ident(getattr(data.columns, r)) for r in ("customer_id", "date", "amount"))
    date_type = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE raw)").fetchall())[
        getattr(data.columns, "date")
    ]
    if date_type in {"DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS"}:
        day_expr = f"CAST({cdate} AS DATE)"
    elif date_format:
        day_expr = f"CAST(TRY_STRPTIME(TRIM(CAST({cdate} AS VARCHAR)), {_sql_str(date_format)}) AS DATE)"
    else:
        day_expr = f"TRY_CAST(TRY_CAST(TRIM(CAST({cdate} AS VARCHAR)) AS TIMESTAMP) AS DATE)"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW parsed AS
        SELECT NULLIF(TRIM(CAST({cid} AS VARCHAR)), '') AS customer_id,
               CAST({cdate} AS VARCHAR) AS raw_date,
               {day_expr} AS day,
               CAST({camount} AS VARCHAR) AS raw_amount,
               TRY_CAST(TRIM(CAST({camount} AS VARCHAR)) AS DOUBLE) AS amount
        FROM raw
        """
    )
    stats = con.execute(
        """
        SELECT count(*),
               count(*) FILTER (WHERE customer_id IS NULL),
               count(*) FILTER (WHERE day IS NULL), any_value(raw_date) FILTER (WHERE day IS NULL),
               count(*) FILTER (WHERE amount IS NULL OR isnan(amount) OR isinf(amount)),
               any_value(raw_amount) FILTER (WHERE amount IS NULL OR isnan(amount) OR isinf(amount)),
               count(*) FILTER (WHERE amount < 0),
               any_value(customer_id || ' on ' || raw_date || ': ' || raw_amount) FILTER (WHERE amount < 0),
               count(*) FILTER (WHERE amount = 0)
        FROM parsed
        """
    ).fetchall()[0]
    rows, no_id, bad_date, bad_date_ex, bad_amount, bad_amount_ex, negative, negative_ex, zero = stats
    if rows == 0:
        raise ClvError(f"{source} holds no transactions (empty or header only); point data.source at the full export")
    if no_id:
        raise ClvError(
            f"{no_id} of {rows} rows have no customer id in column {data.columns.customer_id!r}; "
            "fix the export or remove those rows"
        )
    if bad_date:
        hint = f"data.date_format is {date_format!r}" if date_format else "set data.date_format, e.g. '%Y%m%d'"
        raise ClvError(
            f"{bad_date} of {rows} rows have a date that does not parse in column {data.columns.date!r} "
            f"(e.g. {_shown(bad_date_ex)}); {hint}"
        )
    if bad_amount:
        raise ClvError(
            f"{bad_amount} of {rows} rows have an amount that is not a number in column {data.columns.amount!r} "
            f"(e.g. {_shown(bad_amount_ex)}); fix the export (no currency symbols or thousands separators)"
        )
    excluded: dict[str, int] = {}
    keep = "TRUE"
    if negative:
        if data.negative_amounts == "error":
            raise ClvError(
                f"{negative} of {rows} rows have a negative amount (refunds? e.g. customer {negative_ex}); "
                "set data.negative_amounts: exclude to drop refund rows (they are counted)"
            )
        excluded["negative_amount"] = int(negative)
        keep = "amount >= 0"
    con.execute(
        f"CREATE OR REPLACE TABLE transactions AS SELECT customer_id, day, amount FROM parsed WHERE {keep}"
    )
    customers, first, last = con.execute(
        "SELECT count(DISTINCT customer_id), min(day), max(day) FROM transactions"
    ).fetchall()[0]
    if customers == 0:
        raise ClvError(f"{source}: every row was excluded ({excluded}); nothing is left to model")
    return LoadReport(
        source=data.source,
        files=files,
        rows_read=int(rows),
        rows_excluded=excluded,
        zero_amount_rows=int(zero),
        customers=int(customers),
        first_date=str(first),
        last_date=str(last),
        fingerprint=_fingerprint(files),
    )


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet table; ``customer_id`` is kept as text (leading zeros)."""
    path = Path(path)
    if not path.is_file():
        raise ClvError(f"input file {path} not found")
    try:
        if path.suffix.lower() in _PARQUET:
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype={"customer_id": str}, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ClvError(f"cannot read {path}: {first[:200]}; expected a UTF-8 CSV or a Parquet file") from None
    if "customer_id" in frame.columns:
        frame["customer_id"] = frame["customer_id"].astype("string").astype(object)
    return frame


def _atomic(path: Path, write: Any) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise ClvError(f"cannot write {path}: {err.strerror or err}; check the folder's permissions and free space") from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_figure(figure: Any, path: str | Path) -> Path:
    """Save a matplotlib figure as PNG, atomically."""
    return _atomic(Path(path), lambda tmp: figure.savefig(tmp, format="png", dpi=110))


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write CSV or Parquet (by extension) atomically: a temporary file, then a rename.

    A failure part-way leaves the destination as it was, never half written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".csv", *_PARQUET}:
        raise ClvError(f"output {path}: unknown extension {suffix!r}; use .csv or .parquet")
    if suffix == ".csv":
        return _atomic(path, lambda tmp: frame.to_csv(tmp, index=False))
    return _atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))
