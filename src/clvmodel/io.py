"""Every file clvmodel reads or writes: transaction logs in, tables out.

Transactions are loaded into a DuckDB connection as ``transactions(customer_id VARCHAR, day DATE,
amount DOUBLE)``, checked and cleaned there, so a file larger than memory never passes through
pandas; with them the table ``days`` of per-customer-day totals (:func:`clvmodel.rfm.create_days`).
Typed Parquet (DATE/TIMESTAMP dates, numeric amounts) is checked without text round trips and
``transactions`` is a view over the file; text sources are parsed once into a table. The rules,
applied in this order and reported by :class:`LoadReport`:

* a file that is empty, has a header but no rows, is not in ``data.encoding`` (UTF-8 unless
  set; ``latin-1`` and ``utf-16`` are the others DuckDB reads), or was split with the wrong
  ``data.delimiter`` (one column whose name holds ``;``, a tab, ``|`` or ``,``) is an **error**
  saying which, and what to set;
* a row whose customer id is missing (empty, ``NA``, ``NaN``, ``NULL``), whose date is missing or
  does not parse, or whose amount is missing or not a number is an **error** (one line naming the
  count, an example and the fix): dropping it would silently lose a customer's purchase. A
  column mixing date formats (``1997-01-01`` and ``01/02/1997``) is named as such: one
  ``data.date_format`` cannot read both, and guessing day-first or month-first row by row would
  be a silent bias. A date before 1900 or after 2199 is an error too (a two-digit year read
  with ``%Y``);
* an amount written as text the way exports write it (``$1,554.58``, ``1.554,58 €``, ``(12.50)``)
  is read by ``data.amount_format`` (:mod:`clvmodel.amounts`): ``auto`` takes plain numbers as
  they are at no extra cost and, only when some amounts are not plain, detects the decimal mark
  and thousands separator from their shapes (an ambiguous column, ``1,554`` alone, is an error
  asking for the format); every cleaned row is counted by kind (:attr:`LoadReport.amounts_cleaned`);
* timestamps carrying a UTC offset (``1997-03-01 02:00:00+05:00``, ``...Z``) are **converted to
  UTC** before the day is taken, so one instant is one day whichever zone wrote it (DST exports
  mix ``+01:00`` and ``+02:00``); rows with a non-zero offset are counted in
  :attr:`LoadReport.utc_converted_rows`, those whose UTC day differs from the written date in
  :attr:`LoadReport.utc_day_changed_rows`. Timestamps without an offset are taken as written;
* an amount above ``data.max_amount`` (default 10^9, a sanity limit: larger amounts are almost
  always an id or a card number in the amount column) is an error; raise the limit, or set it
  to null, where such amounts are real; above :data:`~clvmodel.checks.AMOUNT_CEILING` (10^15) it
  is an error whatever the limit;
* a column name given twice in a file's header is an error (readers would rename the second and
  silently use the first), and so are ids stored as fractional numbers (Parquet DOUBLE: ``7.0``);
  integer ids are noted in :meth:`LoadReport.describe` (no leading zeros can have survived);
* unless the caller sets an end of observation, rows dated after tomorrow (UTC) or more than
  :data:`~clvmodel.checks.LATE_YEARS` years after the bulk of the log are an error, counted (they
  would become the as-of date of every customer);
* a negative amount (a refund) is an error unless ``data.negative_amounts: exclude``, which drops
  those rows and counts them (``rows_excluded["negative_amount"]``);
* an **exact duplicate** row (every column equal to an earlier row's) is **kept** by default and
  counted in :attr:`LoadReport.duplicate_rows`: with dates only, two identical purchases on one
  day are real (CDNOW's sample holds 21 such rows, its master file 255), and the same-day rule
  makes them one purchase with the summed amount. ``data.duplicates: drop`` removes them as
  export duplicates (``rows_excluded["duplicate_row"]``);
* a zero amount is **kept**: the customer did transact (CDNOW holds 80 such rows in the master
  file, 8 in the sample; promotional or free items), so it counts as a purchase for the
  frequency models and as zero spend for the spend model;
* customer ids are strings exactly as read (leading zeros kept, surrounding blanks trimmed).

CSV written by :func:`write_table` neutralises text starting with a formula character
(:data:`FORMULA_START`), reversibly; :func:`read_table` undoes it for ``customer_id``.

Bundled data sets (``bundled:CDNOW_sample``, ``bundled:CDNOW_master``) are the files shipped with
lifetimes, read with fixed column names: ``customer_id`` (CDNOW's master id, e.g. ``00004``),
``sample_id`` (sample file only: 1..2357, the ids of the paper's summary file), ``date``
(``yyyymmdd``), ``cds`` and ``amount`` (dollars).
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from pandas._libs.parsers import STR_NA_VALUES  # pandas' default NA strings

from clvmodel import amounts, rfm
from clvmodel.checks import (
    amount_limit,
    FORMULA_START,
    AMOUNT_CEILING,
    FIRST_YEAR,
    LATE_YEARS,
    MISSING_IDS,
    LAST_YEAR,
    PARQUET,
    ROW_STATS,
    WITHOUT_OFFSET,
    check_columns,
    check_id_type,
    check_rows,
    duplicate_header_message,
    header_names,
    late_dates_message,
    no_rows_message,
    nothing_left_message,
    not_utf8_message,
    read_error,
)
from clvmodel.config import DataConfig
from clvmodel.errors import ClvError
from clvmodel.sqltext import date_literal, identifier, literal, number

__all__ = [
    "LoadReport",
    "connect",
    "load_transactions",
    "check_unchanged",
    "read_table",
    "write_table",
    "write_figure",
    "resolve_files",
    "FORMULA_START",
    "csv_safe",
    "csv_unescape",
    "csv_safe_sql",
    "csv_unescape_sql",
    "refuse_overwrite",
]


_BUNDLED: dict[str, dict[str, Any]] = {
    "CDNOW_sample": {"names": ["customer_id", "sample_id", "date", "cds", "amount"], "header": False},
    "CDNOW_master": {"names": ["customer_id", "date", "cds", "amount"], "header": True},
}
_BUNDLED_DATE_FORMAT = "%Y%m%d"
# Markers read as missing in CSV, as pandas does for the whitespace files: an id "NaN" is a gap in
# the export, not a customer called NaN.
_NULLS = "[" + ", ".join(literal(v) for v in MISSING_IDS) + "]"
# A timestamp ending in a UTC offset (after a time of day): Z, +05, +0530, -08:00.
_OFFSET = r"\d:\d\d(:\d\d(\.\d+)?)?\s*(Z|[+-]\d\d(:?\d\d)?)$"
_ZERO_OFFSET = r"(Z|[+-]00(:?00)?)$"


@dataclass
class LoadReport:
    """Row accounting for one load: what was read, what was cleaned and why.

    ``rows_excluded`` holds the dropped rows by reason (``negative_amount``, ``duplicate_row``);
    the other counts are rows kept but worth knowing about: zero amounts, exact duplicates (kept
    as same-day purchases unless ``data.duplicates: drop``), timestamps converted to UTC.
    :meth:`describe` renders all of it on one line.
    """

    source: str
    files: list[str]
    rows_read: int
    rows_excluded: dict[str, int] = field(default_factory=dict)
    zero_amount_rows: int = 0
    customers: int = 0
    first_date: str | None = None
    last_date: str | None = None
    fingerprint: str = ""
    #: Exact duplicates of an earlier row that were kept (0 when ``data.duplicates: drop``).
    duplicate_rows: int = 0
    #: Timestamps with a non-zero UTC offset, converted to UTC before taking the day.
    utc_converted_rows: int = 0
    #: Of those, rows whose UTC day differs from the date as written.
    utc_day_changed_rows: int = 0
    #: Each file's (size, modification time in ns) when the load began, for :func:`check_unchanged`.
    file_states: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)
    #: ``transactions`` is a view over the files (typed Parquet): whoever reads it after the load
    #: reads the files again and should call :func:`check_unchanged` afterwards.
    rereads_source: bool = False
    #: The id column's type when it is an integer one (Parquet BIGINT, ...), else ``None``: such ids
    #: cannot have kept leading zeros, which :meth:`describe` says.
    integer_ids: str | None = None
    #: Rows whose amount text was cleaned (``data.amount_format``, :mod:`clvmodel.amounts`) ...
    amount_cleaned_rows: int = 0
    #: ... by kind (:data:`clvmodel.amounts.KINDS`; a row may count under several) ...
    amounts_cleaned: dict[str, int] = field(default_factory=dict)
    #: ... and the format they were read with (detected or configured).
    amount_format: str | None = None

    @property
    def rows_kept(self) -> int:
        return self.rows_read - sum(self.rows_excluded.values())

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items()
               if k not in {"rows_excluded", "files", "file_states", "rereads_source", "integer_ids", "amounts_cleaned",
                            "amount_format"}}
        out["rows_kept"] = self.rows_kept
        out.update({f"rows_excluded.{k}": v for k, v in self.rows_excluded.items()})
        out.update({f"amounts_cleaned.{k}": v for k, v in self.amounts_cleaned.items()})
        return out

    def describe(self) -> str:
        """The accounting on one line, e.g. for ``clvmodel train``'s ``data`` line.

        ``"<source>: 6,919 rows read, excluded: none, 8 zero-amount rows kept, 21 exact duplicate
        rows kept (same-day purchases); 2,357 customers, 1997-01-01 to 1998-06-30"``; the
        duplicate and UTC parts appear only when they are not zero.
        """
        excluded = ", ".join(f"{k} {v:,}" for k, v in self.rows_excluded.items()) or "none"
        notes = [f"{self.rows_read:,} rows read", f"excluded: {excluded}", f"{self.zero_amount_rows:,} zero-amount rows kept"]
        if self.amount_cleaned_rows:
            kinds = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in self.amounts_cleaned.items() if v)
            notes.append(f"{self.amount_cleaned_rows:,} amounts cleaned ({self.amount_format}: {kinds})")
        if self.duplicate_rows:
            notes.append(f"{self.duplicate_rows:,} exact duplicate rows kept (same-day purchases)")
        if self.utc_converted_rows:
            notes.append(
                f"{self.utc_converted_rows:,} timestamps converted to UTC ({self.utc_day_changed_rows:,} moved to another day)"
            )
        if self.integer_ids:
            notes.append(
                f"{self.customers:,} customer ids read from an integer column ({self.integer_ids}): leading zeros cannot "
                "have been kept (write ids as text if they have any)"
            )
        return (
            f"{self.source}: {', '.join(notes)}; {self.customers:,} customers, {self.first_date} to {self.last_date}"
        )


def connect(
    memory_limit: str | None = None, threads: int | None = None, temp_directory: str | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection (spills to ``temp_directory`` beyond ``memory_limit``).

    The session time zone is UTC, so a zoned timestamp gives the same day on every machine.
    ``temp_directory`` ``None`` keeps DuckDB's own (``.tmp`` in the working directory).

    Raises
    ------
    ClvError
        ``temp_directory`` names something that is not a directory.
    """
    if temp_directory is not None:
        # DuckDB would fail only at its first spill, deep in a long run, and the load would report
        # that IO error as an unreadable data file. DuckDB creates the last level only (no parents)
        # and expands a leading ``~``.
        folder = Path(temp_directory).expanduser()
        if folder.exists() and not folder.is_dir():
            raise ClvError(f"data.temp_directory {temp_directory!r} is not a directory; give a directory for DuckDB's "
                           "spill files (it is created if missing)")
        if not folder.exists() and not folder.parent.is_dir():
            raise ClvError(f"data.temp_directory {temp_directory!r}: its parent folder {str(folder.parent)!r} does not "
                           "exist; create it, or give a folder whose parent exists (DuckDB creates the last level)")
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    # DuckDB draws its progress bar on stdout: welcome on a terminal during a long load, noise in
    # a log or a pipe (and between the lines clvmodel prints).
    con.execute(f"SET enable_progress_bar = {'true' if sys.stdout.isatty() else 'false'}")
    if memory_limit:
        con.execute("SET memory_limit = ?", [memory_limit])  # a config value: a parameter, not SQL text
    if threads:
        con.execute(f"SET threads = {number(int(threads))}")
    if temp_directory is not None:
        con.execute("SET temp_directory = ?", [temp_directory])  # a config value: a parameter, not SQL text
    return con


def connect_for(data: DataConfig) -> duckdb.DuckDBPyConnection:
    """:func:`connect` with a data section's DuckDB settings (``memory_limit``, ``temp_directory``).

    Every command that reads a config's log (``clvmodel train``, ``clvmodel rfm``) connects
    through here, so none of them can leave a setting out.
    """
    return connect(memory_limit=data.memory_limit, temp_directory=data.temp_directory)


def resolve_files(source: str) -> list[str]:
    """Files behind a path, a glob or a folder of Parquet files; an error when there are none."""
    if any(ch in source for ch in "*?["):
        files = sorted(glob.glob(source, recursive=True))
    elif Path(source).is_dir():
        files = sorted(str(p) for p in Path(source).rglob("*") if p.suffix in PARQUET)
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


def _file_states(files: list[str]) -> dict[str, tuple[int, int]]:
    states = {}
    for name in files:
        try:
            info = os.stat(name)
        except OSError:
            raise ClvError(f"{name} disappeared while clvmodel was reading it; re-run once the file is in place") from None
        states[name] = (info.st_size, info.st_mtime_ns)
    return states


def check_unchanged(report: LoadReport) -> None:
    """Raise if a file of the load was rewritten or removed since the load began.

    The load scans a file several times (the checks' counts, ``days``, the duplicate search) and
    ends with this check, so its tables all come from one version of the file. A typed Parquet
    source also stays a view (``transactions``, :attr:`LoadReport.rereads_source`) that later
    stages read again (the challenger's features); they call this again after their read. A file
    written to during the run would make the parts disagree, so the run stops instead of mixing
    them. Size and modification time are compared, as ``make`` and rsync do: no second read of
    the data.

    Raises
    ------
    ClvError
        Naming the first file that changed.
    """
    now = _file_states(list(report.file_states))
    for name, state in report.file_states.items():
        if now[name] != state:
            raise ClvError(
                f"{name} changed while clvmodel was reading it (size or modification time differ from the start "
                "of the run); re-run once nothing writes to it, or point data.source at a copy"
            )


def _raw_relation(con: duckdb.DuckDBPyConnection, data: DataConfig) -> tuple[str, list[str], str | None]:
    """Register the source as view ``raw`` (all text for CSV); return its files and date format."""
    source = data.source
    date_format = data.date_format
    if source.startswith("bundled:"):
        from clvmodel.bundled import dataset_path

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
    file_list = "[" + ", ".join(literal(f) for f in files) + "]"
    suffixes = {Path(f).suffix.lower() for f in files}
    parquet = suffixes <= set(PARQUET)
    if not parquet and all(os.path.getsize(f) == 0 for f in files):
        raise ClvError(f"{source} is empty (0 bytes); point data.source at the full export")
    for name in files:  # before DuckDB renames a repeated column (amount, amount_1) and reads the first
        repeated = duplicate_header_message(name, header_names(name, data))
        if repeated:
            raise ClvError(repeated)
    try:
        if parquet:
            con.execute(f"CREATE OR REPLACE VIEW raw AS SELECT * FROM read_parquet({file_list}, union_by_name=true)")
        elif data.delimiter == "whitespace":
            # DuckDB has no multi-blank delimiter; such files are legacy and small (CDNOW's).
            frames = [
                pd.read_csv(f, sep=r"\s+", header=0 if data.header else None, dtype=str, encoding=data.encoding)
                for f in files
                if os.path.getsize(f) > 0
            ]
            frame = pd.concat(frames)
            if not data.header:
                frame.columns = [f"column{i}" for i in range(frame.shape[1])]
            con.register("raw_frame", frame)
            con.execute("CREATE OR REPLACE VIEW raw AS SELECT * FROM raw_frame")
        else:
            con.execute(
                f"CREATE OR REPLACE VIEW raw AS SELECT * FROM read_csv({file_list}, delim={literal(data.delimiter)}, "
                f"header={'true' if data.header else 'false'}, all_varchar=true, union_by_name=true, nullstr={_NULLS}, "
                # skip=0: DuckDB's sniffer would otherwise skip leading lines it finds odd, rows included
                f"encoding={literal(data.encoding)}, skip=0)"
            )
        con.execute("SELECT * FROM raw LIMIT 1").fetchall()
    except (duckdb.Error, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError) as err:
        raise read_error(source, files, data, err) from None
    return source, files, date_format


def load_transactions(
    con: duckdb.DuckDBPyConnection, data: DataConfig, *, observation_end: Any = None
) -> LoadReport:
    """Read, check and clean the transactions into tables ``transactions`` and ``days``.

    ``transactions(customer_id, day, amount)`` holds the kept rows; ``days(customer_id, day,
    amount DECIMAL(38, 9), n)`` their per-customer-day totals (the same-day rule of
    :mod:`clvmodel.rfm`), built once and shared by the RFM summary and the tracking plots.

    Passes over the source: one computes every check's *count* (the examples a message needs
    are looked up only when a count is not zero); one builds the table. A Parquet file with
    typed columns (DATE or TIMESTAMP dates, numeric amounts) skips the text round trips CSV
    needs. Exact duplicates are looked for only among rows that share a customer and a day
    (``days.n > 1``), where every duplicate must be.

    ``observation_end`` is the date the caller will summarise to, when the user set one (a
    config's ``observation_end``, ``--as-of``): rows after it are then left out by that stage, and
    the late-date rule below does not apply. Without it, the last date of the log becomes the
    end of observation, so rows dated after tomorrow, or more than :data:`LATE_YEARS` years after
    the bulk of the log, are refused: one such row (2150 in a log of 1997) made every customer
    look long gone, silently.

    Raises
    ------
    ClvError
        An empty, header-only, non-UTF-8 or wrongly delimited file, a missing column, missing
        ids, missing or unparseable dates, missing, non-numeric or too large amounts, or refunds
        under ``negative_amounts: error``; one line naming count, example and fix.
    """
    source, files, date_format = _raw_relation(con, data)
    # After the sniff above (schema and first row), before the scans: see check_unchanged.
    states = _file_states(files)
    # The file's hash runs beside the queries (hashlib releases the GIL): a second read of the
    # file, but not a second wait.
    with ThreadPoolExecutor(max_workers=1) as pool:
        fingerprint = pool.submit(_fingerprint, files)
        try:
            report = _load(con, data, source, files, date_format, observation_end)
        except (duckdb.InvalidInputException, duckdb.IOException) as err:  # CSV lines DuckDB meets after its sample
            raise read_error(source, files, data, err) from None
        report.fingerprint = fingerprint.result()
    report.file_states = states
    check_unchanged(report)
    return report


# DuckDB column types read without text parsing.
_INTEGER = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
_NUMERIC = (*_INTEGER, "FLOAT", "DOUBLE", "DECIMAL")  # a prefix: DECIMAL(18,2)
_PLAIN_DATES = {"DATE", "TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"}  # no zone: the day as written


def _parsed_columns(
    data: DataConfig, types: dict[str, str], date_format: str | None, amount_format: amounts.Format | None = None
) -> dict[str, str]:
    """SQL for each column of the ``parsed`` view, by the source's column types.

    ``customer_id``, ``day``, ``amount`` are the values kept; ``has_date`` and ``has_amount`` say
    a value was given (parsed or not); ``to_utc`` marks a time written with a non-zero UTC
    offset; ``raw_date`` and ``raw_amount`` are the values as text, for messages only (DuckDB
    evaluates a view's column only where a query uses it, so typed data never pays for them).
    """
    cid, cdate, camount = (identifier(getattr(data.columns, r)) for r in ("customer_id", "date", "amount"))
    id_type, date_type, amount_type = _kinds(data, types).values()
    text = f"TRIM(CAST({cdate} AS VARCHAR))"
    offset = f"(contains({text}, ':') AND regexp_matches({text}, {literal(_OFFSET)}))"  # a time first: cheap
    non_zero_offset = f"{offset} AND NOT regexp_matches({text}, {literal(_ZERO_OFFSET)})"
    columns = {
        "customer_id": (
            f"CAST({cid} AS VARCHAR)" if id_type in _INTEGER else f"NULLIF(TRIM(CAST({cid} AS VARCHAR)), '')"
        ),
        "raw_date": f"NULLIF({text}, '')",
        "has_date": f"NULLIF({text}, '') IS NOT NULL",
        "to_utc": "FALSE",
        "raw_amount": f"NULLIF(TRIM(CAST({camount} AS VARCHAR)), '')",
    }
    if date_type.startswith("TIMESTAMP WITH TIME ZONE"):
        columns["day"] = f"CAST(timezone('UTC', {cdate}) AS DATE)"
        columns["has_date"] = f"{cdate} IS NOT NULL"
    elif date_type in _PLAIN_DATES:
        columns["day"] = f"CAST({cdate} AS DATE)"
        columns["has_date"] = f"{cdate} IS NOT NULL"
    elif date_format:
        parsed = f"TRY_STRPTIME({text}, {literal(date_format)})"
        columns["day"] = f"CAST(timezone('UTC', {parsed}) AS DATE)" if "%z" in date_format else f"CAST({parsed} AS DATE)"
        if "%z" in date_format:
            columns["to_utc"] = f"coalesce({non_zero_offset}, false)"
    else:
        columns["day"] = (
            f"CASE WHEN {offset} THEN CAST(timezone('UTC', TRY_CAST({text} AS TIMESTAMPTZ)) AS DATE) "
            f"ELSE TRY_CAST(TRY_CAST({text} AS TIMESTAMP) AS DATE) END"
        )
        columns["to_utc"] = f"coalesce({non_zero_offset}, false)"
    if amount_type.startswith(_NUMERIC):
        columns["amount"] = f"CAST({camount} AS DOUBLE)"
        columns["has_amount"] = f"{camount} IS NOT NULL"
    else:
        trimmed = f"TRIM(CAST({camount} AS VARCHAR))"
        if amount_format is None:
            columns["amount"] = f"TRY_CAST({trimmed} AS DOUBLE)"
        else:  # text to clean (data.amount_format): only such columns pay for the regular expressions
            parts = identifier(amounts.PARTS)  # a column of the table _load builds (amounts.parts_sql)
            columns["amount"] = amounts.value_sql(trimmed, parts, amount_format)
            for kind, flag in amounts.kinds_sql(parts, amount_format).items():
                columns[f"cleaned_{kind}"] = flag
        columns["has_amount"] = f"{columns['raw_amount']} IS NOT NULL"
    return columns


def _all_parquet(files: list[str]) -> bool:
    return all(Path(f).suffix.lower() in PARQUET for f in files)


def _kinds(data: DataConfig, types: dict[str, str]) -> dict[str, str]:
    """The source's column type of each role (``customer_id``, ``date``, ``amount``)."""
    return {role: types[getattr(data.columns, role)] for role in ("customer_id", "date", "amount")}


def _typed(kinds: dict[str, str]) -> bool:
    """Dates and amounts that need no text parsing (typed Parquet, most often)."""
    return (kinds["date"] in _PLAIN_DATES or kinds["date"].startswith("TIMESTAMP WITH TIME ZONE")) and kinds[
        "amount"
    ].startswith(_NUMERIC)


def _load(
    con: duckdb.DuckDBPyConnection, data: DataConfig, source: str, files: list[str], date_format: str | None,
    observation_end: Any = None,
) -> LoadReport:
    """The checks and the ``transactions`` and ``days`` tables of :func:`load_transactions`, on view ``raw``."""
    described = con.execute("SELECT column_name, column_type FROM (DESCRIBE raw)").fetchall()
    available = [row[0] for row in described]
    if not con.execute("SELECT 1 FROM raw LIMIT 1").fetchall():  # before the column check: no rows, no use
        raise ClvError(no_rows_message(source, available))
    check_columns(source, available, data)
    id_kind = dict(described)[data.columns.customer_id]
    setting = amounts.resolve(data.amount_format)
    text_amount = not _kinds(data, dict(described))["amount"].startswith(_NUMERIC)
    amount_format = setting if isinstance(setting, amounts.Format) and text_amount else None
    columns = _parsed_columns(data, dict(described), date_format, amount_format)

    def parsed_sql(relation: str) -> str:
        return "SELECT " + ", ".join(f"{sql} AS {name}" for name, sql in columns.items()) + f" FROM {relation}"

    bad_amount = "has_amount AND (amount IS NULL OR isnan(amount) OR isinf(amount))"
    odd_year = f"day < DATE '{FIRST_YEAR}-01-01' OR day > DATE '{LAST_YEAR}-12-31'"
    huge = f"amount > {number(amount_limit(data))}"

    base = "raw"  # raw_amounts when amounts are cleaned: raw with each amount's parts, computed once

    def count_rows() -> dict[str, int]:
        con.execute(f"CREATE OR REPLACE TEMP VIEW parsed AS {parsed_sql(base)}")
        kinds = [k for k in amounts.KINDS if f"cleaned_{k}" in columns]
        cleaned = "".join(f", count(*) FILTER (WHERE cleaned_{k})" for k in kinds)
        if kinds:
            cleaned += ", count(*) FILTER (WHERE " + " OR ".join(f"cleaned_{k}" for k in kinds) + ")"
        row = con.execute(
            f"""
            SELECT count(*),
                   count(*) FILTER (WHERE customer_id IS NULL),
                   count(*) FILTER (WHERE NOT has_date),
                   count(*) FILTER (WHERE has_date AND day IS NULL),
                   count(*) FILTER (WHERE {odd_year}),
                   count(*) FILTER (WHERE NOT has_amount),
                   count(*) FILTER (WHERE {bad_amount}),
                   count(*) FILTER (WHERE {huge}),
                   count(*) FILTER (WHERE amount < 0),
                   count(*) FILTER (WHERE to_utc AND amount >= 0),
                   count(*) FILTER (WHERE amount = 0){cleaned}
            FROM parsed
            """
        ).fetchall()[0]
        out = dict(zip(_COUNTS, row))
        out.update({f"cleaned_{k}": int(v) for k, v in zip(kinds, row[len(_COUNTS):])})
        out["cleaned"] = int(row[-1]) if kinds else 0
        return out

    # Counts first; the examples (a string built per row) only when some count is not zero.
    if amount_format is not None:  # configured: every row read with it
        base = _amount_parts(con, data, amount_format)
        counted = count_rows()
    else:
        counted = _clean_by_metadata(con, data, dict(described), files) or count_rows()
    if setting == "auto" and text_amount and counted["bad_amount"]:
        # Some amounts are not plain numbers: read their format from their shapes (only such
        # columns pay for this: the parts of the amounts that are not plain numbers, once).
        base = _amount_parts(con, data, None)
        amount_format = _detect_amount_format(con, data, int(counted["rows"]), base)
        if amount_format is not None:
            if not amount_format.plain_first:  # a decimal comma: plain-looking 1.554 is cleaned too
                base = _amount_parts(con, data, amount_format)
            columns = _parsed_columns(data, dict(described), date_format, amount_format)
            counted = count_rows()
        else:
            base = "raw"
    stats: dict[str, Any] = {key: counted.get(key, None) for key in ROW_STATS}
    if any(counted[key] for key in ROW_STATS if key in counted and key != "rows"):
        stats = _row_examples(con, odd_year, bad_amount, huge)

    def bad_dates() -> list[str]:
        return [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT raw_date FROM parsed WHERE day IS NULL AND raw_date IS NOT NULL ORDER BY 1 LIMIT 200"
            ).fetchall()
        ]

    excluded = check_rows(stats, data, date_format, bad_dates)
    check_id_type(source, data.columns.customer_id, id_kind)  # after the missing ids, which say more
    relation = base
    if data.duplicates == "drop":
        # Every column compared, so a whole-file aggregate; only when asked for.
        keep_raw = f"{columns['amount']} >= 0" if excluded else "TRUE"
        every_column = ", ".join(identifier(c) for c in available)
        dropped = con.execute(
            f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {base} WHERE {keep_raw} "
            f"GROUP BY {every_column} HAVING count(*) > 1)"
        ).fetchall()[0][0]
        if dropped:
            excluded["duplicate_row"] = int(dropped)
            relation = f"(SELECT DISTINCT * FROM {base})"
    # A typed Parquet source is cheap to scan again, so ``transactions`` stays a view over it (no
    # copy of every row in memory); text is parsed once, into a table.
    kind = "VIEW" if relation == "raw" and _typed(_kinds(data, dict(described))) and _all_parquet(files) else "TABLE"
    for (existing,) in con.execute(
        "SELECT 'VIEW' FROM duckdb_views() WHERE view_name = 'transactions' AND NOT internal "
        "UNION ALL SELECT 'TABLE' FROM duckdb_tables() WHERE table_name = 'transactions'"
    ).fetchall():
        con.execute(f"DROP {existing} transactions")
    con.execute(
        f"CREATE {kind} transactions AS SELECT customer_id, day, amount FROM ({parsed_sql(relation)}) "
        f"WHERE amount >= 0"
    )
    customers = None
    raw_id = None  # the id as stored, where days could be grouped by it (see _days_by_stored_id)
    if kind == "VIEW" and id_kind == "VARCHAR":
        raw_id = identifier(data.columns.customer_id)
        customers = _days_by_stored_id(con, raw_id, columns)
        if customers is None:
            raw_id = None
    else:
        rfm.create_days(con, "transactions", "days")
    if observation_end is None:
        _refuse_late_dates(con, int(stats["rows"]))
    duplicates = 0 if "duplicate_row" in excluded else _kept_duplicates(
        con, columns, available, bool(excluded), base, customer=raw_id)
    moved = 0
    if counted["converted"]:
        written_day = f"TRY_CAST(TRY_CAST({WITHOUT_OFFSET.format(v='raw_date')} AS TIMESTAMP) AS DATE)"
        moved = con.execute(
            f"SELECT count(*) FROM parsed WHERE to_utc AND amount >= 0 AND day <> {written_day}"
        ).fetchall()[0][0]
    if customers is None:
        customers, first, last = con.execute(
            "SELECT count(DISTINCT customer_id), min(day), max(day) FROM days"
        ).fetchall()[0]
    else:
        first, last = con.execute("SELECT min(day), max(day) FROM days").fetchall()[0]
    if customers == 0:
        raise ClvError(nothing_left_message(source, int(stats["rows"]), excluded))
    zero = counted["zero"]
    if "duplicate_row" in excluded:  # dropped copies of zero-amount rows are not kept rows
        zero = con.execute("SELECT count(*) FROM transactions WHERE amount = 0").fetchall()[0][0]
    return LoadReport(
        source=data.source,
        files=files,
        rows_read=int(stats["rows"]),
        rows_excluded=excluded,
        zero_amount_rows=int(zero),
        customers=int(customers),
        first_date=str(first),
        last_date=str(last),
        duplicate_rows=int(duplicates),
        utc_converted_rows=int(counted["converted"]),
        utc_day_changed_rows=int(moved),
        rereads_source=kind == "VIEW",
        integer_ids=id_kind if id_kind in _INTEGER else None,
        amount_cleaned_rows=int(counted.get("cleaned", 0)),
        amounts_cleaned={k: int(counted.get(f"cleaned_{k}", 0)) for k in amounts.KINDS if counted.get(f"cleaned_{k}")},
        amount_format=(("detected " if setting == "auto" else "") + amount_format.describe()
                       if amount_format is not None and counted.get("cleaned") else None),
    )


def _days_by_stored_id(con: duckdb.DuckDBPyConnection, stored: str, columns: dict[str, str]) -> int | None:
    """Table ``days`` of a typed Parquet view, grouped by the id as stored; its customers, or ``None``.

    Trimming every row's id (``NULLIF(TRIM(id), '')``) costs about a quarter of the (customer,
    day) aggregation at 10 M rows (~1 CPU-s), yet stored ids almost never carry blanks. So
    ``days`` is grouped by the stored text and the distinct ids (a million, not ten) are checked
    instead: when trimming changes none, the table is the one trimmed ids give, and their count
    is the report's customers. When it changes some (`` 13 ``), the days are grouped again by
    the trimmed id (sums of exact decimals and of counts: the same table) and ``None`` says
    the ids are not the stored ones.
    """
    rfm.create_days(con, f"(SELECT {stored} AS customer_id, {columns['day']} AS day, {columns['amount']} AS amount "
                         f"FROM raw WHERE {columns['amount']} >= 0)", "days")
    trimmed = "NULLIF(TRIM(customer_id), '')"
    changed, customers = con.execute(
        f"SELECT count(*) FILTER (WHERE customer_id IS DISTINCT FROM {trimmed}), count(customer_id) "
        "FROM (SELECT DISTINCT customer_id FROM days)"
    ).fetchone()
    if not changed:
        return int(customers)
    con.execute(
        f"CREATE OR REPLACE TABLE days AS SELECT {trimmed} AS customer_id, day, SUM(amount) AS amount, "
        "CAST(SUM(n) AS BIGINT) AS n FROM days GROUP BY ALL"
    )
    return None


def _refuse_late_dates(con: duckdb.DuckDBPyConnection, rows: int) -> None:
    """:func:`refuse_late_dates` on DuckDB's table ``days``."""
    refuse_late_dates(lambda make_sql: con.execute(make_sql("days")).fetchone(), rows)


def refuse_late_dates(first_row: Callable[[Callable[[str], str]], Any], rows: int) -> None:
    """Refuse rows dated after tomorrow (UTC) or far after the bulk of the log (see :func:`load_transactions`).

    "The bulk" ends at the purchase day ranked ``k + 1`` from the latest, with ``k`` the larger
    of 10 and 0.1 % of the customer-days: up to ``k`` rows may run late (a log's last days are
    thin), not more than :data:`LATE_YEARS` years. Counted over the same-day totals, with an
    example. ``first_row(make_sql)`` runs ``make_sql(table)`` on the engine holding those totals
    (``customer_id, day, n``) and returns its first row: the SQL is DuckDB's and Spark's alike, so
    ``clvmodel train --engine spark`` refuses exactly what the local engine does.
    """
    tomorrow = dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1)
    total, last = first_row(lambda days: f"SELECT count(*), max(day) FROM {days}")
    limit, why = tomorrow, "tomorrow: dates in the future"
    k = max(10, -(-int(total) // 1000))
    if total > k:
        (bulk,) = first_row(lambda days: f"SELECT day FROM {days} ORDER BY day DESC LIMIT 1 OFFSET {number(k)}")
        far = bulk + dt.timedelta(days=round(365.25 * LATE_YEARS))
        if far < limit:
            limit, why = far, f"more than {LATE_YEARS} years after the bulk of the log"
    if last is None or last <= limit:
        return
    (rest,) = first_row(lambda days: f"SELECT max(day) FROM {days} WHERE day <= {date_literal(limit)}")
    why += f", whose other rows end by {rest}" if rest is not None else ""
    count, example = first_row(
        lambda days: f"SELECT coalesce(sum(n), 0), min(concat(customer_id, ' on ', CAST(day AS STRING))) "
                     f"FROM {days} WHERE day > {date_literal(limit)}"
    )
    raise ClvError(late_dates_message(
        int(count), rows, limit, why, example,
        "set the end of observation to leave them out (observation_end in the config, --observation-end for "
        "clvmodel rfm, --as-of for clvmodel score)",
    ))


_COUNTS = ("rows", "no_id", "no_date", "bad_date", "odd_year", "no_amount", "bad_amount", "huge", "negative",
           "converted", "zero")


def _clean_by_metadata(
    con: duckdb.DuckDBPyConnection, data: DataConfig, types: dict[str, str], files: list[str]
) -> dict[str, int] | None:
    """The check counts of a typed Parquet source from its row-group statistics, when they prove it clean.

    Parquet keeps, per row group and column, the null count and the minimum and maximum. When
    they show no missing value, no id starting with a blank (so no blank id), dates inside
    1900-2199 and amounts from 0 to ``data.max_amount``, every count of :func:`_load` is 0
    except two the statistics cannot give, NaN amounts and zero amounts: one scan of the amount
    column counts those. ``None`` (count by scanning every row) when any statistic is missing,
    a file lacks a column, a type is not plainly typed, or anything is out of bounds.
    """
    if not _all_parquet(files):
        return None
    names = {role: getattr(data.columns, role) for role in ("customer_id", "date", "amount")}
    kinds = _kinds(data, types)
    # Zoned timestamps are excluded too: their statistics are instants, the days are UTC days.
    if not (kinds["customer_id"] in ("VARCHAR", *_INTEGER) and kinds["date"] in _PLAIN_DATES and _typed(kinds)):
        return None
    file_list = "[" + ", ".join(literal(f) for f in files) + "]"
    rows, groups = con.execute(
        f"SELECT sum(num_rows), sum(num_row_groups) FROM parquet_file_metadata({file_list})"
    ).fetchone()
    per_column = con.execute(
        f"""
        SELECT path_in_schema, count(*), count(stats_null_count), sum(stats_null_count),
               count(stats_min_value), count(stats_max_value),
               min(stats_min_value), min(TRY_CAST(stats_min_value AS DOUBLE)), max(TRY_CAST(stats_max_value AS DOUBLE)),
               min(TRY_CAST(stats_min_value AS TIMESTAMP)), max(TRY_CAST(stats_max_value AS TIMESTAMP))
        FROM parquet_metadata({file_list})
        WHERE path_in_schema IN ({", ".join(literal(n) for n in names.values())})
        GROUP BY path_in_schema
        """
    ).fetchall()
    found = {row[0]: row[1:] for row in per_column}
    if not rows or len(found) != 3:
        return None
    for role, name in names.items():
        chunks, with_nulls, nulls, with_min, with_max, min_text, min_number, max_number, min_time, max_time = found[name]
        # Every row group of every file has the column with complete statistics, and no nulls.
        if not chunks == with_nulls == with_min == with_max == groups or nulls:
            return None
        if role == "customer_id" and kinds[role] == "VARCHAR" and not (min_text and min_text[0] > " "):
            return None
        if role == "date" and not (
            min_time is not None and max_time is not None
            and min_time.year >= FIRST_YEAR and max_time.year <= LAST_YEAR
        ):
            return None
        if role == "amount" and not (
            min_number is not None and max_number is not None and min_number >= 0
            and max_number <= amount_limit(data)
            and not (min_number != min_number or max_number != max_number or max_number == float("inf"))
        ):
            return None
    amount = identifier(names["amount"])
    nan, zero = con.execute(
        f"SELECT count(*) FILTER (WHERE isnan(CAST({amount} AS DOUBLE))), "
        f"count(*) FILTER (WHERE CAST({amount} AS DOUBLE) = 0) FROM read_parquet({file_list}, union_by_name=true)"
    ).fetchone()
    if nan:
        return None
    return {**dict.fromkeys(_COUNTS, 0), "rows": int(rows), "zero": int(zero)}


def _amount_parts(con: duckdb.DuckDBPyConnection, data: DataConfig, amount_format: amounts.Format | None) -> str:
    """Table ``raw_amounts``: ``raw`` with each amount's parts (:func:`clvmodel.amounts.parts_sql`), computed once.

    The regular expression is the costly part of cleaning amounts (several scans follow: the
    counts, the table, the duplicates); a plain number's parts are NULL and cost a cast.
    """
    text = f"TRIM(CAST({identifier(data.columns.amount)} AS VARCHAR))"
    con.execute(f"CREATE OR REPLACE TEMP TABLE raw_amounts AS SELECT *, {amounts.parts_sql(text, amount_format)} "
                f"AS {identifier(amounts.PARTS)} FROM raw")
    return "raw_amounts"


def _detect_amount_format(
    con: duckdb.DuckDBPyConnection, data: DataConfig, rows: int, base: str
) -> amounts.Format | None:
    """The format of a text amount column some of whose values are not plain numbers (:func:`clvmodel.amounts.detect`).

    Grouped by shape (digits as ``d``): the values that are not plain numbers, and the plain ones
    holding a ``.``, a blank or a ``'`` (``12.50`` says decimal point); a column has few shapes.
    """
    text = f"TRIM(CAST({identifier(data.columns.amount)} AS VARCHAR))"
    parts = identifier(amounts.PARTS)
    found = con.execute(
        f"""
        SELECT {amounts.shape_sql('t', 'p')} AS shape, count(*), min(t), p IS NULL AS plain
        FROM (SELECT {text} AS t, {parts} AS p FROM {base})
        WHERE t <> '' AND (p IS NOT NULL OR regexp_matches(t, '[.'' ]'))
        GROUP BY shape, plain ORDER BY count(*) DESC LIMIT 10000
        """
    ).fetchall()
    return amounts.detect([(shape, int(n), example, bool(plain)) for shape, n, example, plain in found],
                          data.columns.amount, rows)


def _row_examples(con: duckdb.DuckDBPyConnection, odd_year: str, bad_amount: str, huge: str) -> dict[str, Any]:
    """Every :data:`ROW_STATS` count with its example (the smallest offending value), over ``parsed``."""
    row = con.execute(
        f"""
        SELECT count(*),
               count(*) FILTER (WHERE customer_id IS NULL),
               min('dated ' || coalesce(raw_date, '(none)') || ', amount ' || coalesce(raw_amount, '(none)'))
                   FILTER (WHERE customer_id IS NULL),
               count(*) FILTER (WHERE NOT has_date),
               min(customer_id) FILTER (WHERE NOT has_date),
               count(*) FILTER (WHERE has_date AND day IS NULL),
               min(raw_date) FILTER (WHERE day IS NOT NULL),
               count(*) FILTER (WHERE {odd_year}),
               min(raw_date || ' (read as ' || CAST(day AS VARCHAR) || ')') FILTER (WHERE {odd_year}),
               count(*) FILTER (WHERE NOT has_amount),
               min(customer_id || ' on ' || coalesce(raw_date, '?')) FILTER (WHERE NOT has_amount),
               count(*) FILTER (WHERE {bad_amount}),
               min(raw_amount) FILTER (WHERE {bad_amount}),
               count(*) FILTER (WHERE {huge}),
               min(customer_id || ' on ' || raw_date || ': ' || raw_amount) FILTER (WHERE {huge}),
               count(*) FILTER (WHERE amount < 0),
               min(customer_id || ' on ' || raw_date || ': ' || raw_amount) FILTER (WHERE amount < 0)
        FROM parsed
        """
    ).fetchall()[0]
    return dict(zip(ROW_STATS, row))


def _kept_duplicates(
    con: duckdb.DuckDBPyConnection, columns: dict[str, str], available: list[str], negatives_excluded: bool,
    base: str = "raw",
    customer: str | None = None,
) -> int:
    """Kept rows that repeat an earlier row in every column.

    Two such rows share a customer and a day, so only the days holding more than one row
    (``days.n > 1``) are searched: on 10 M synthetic rows that is 5 % of the file, not all of it.
    ``customer`` is the stored id column when ``days`` is keyed by it (:func:`_days_by_stored_id`):
    matched as stored, no id is trimmed.
    """
    if not con.execute("SELECT 1 FROM days WHERE n > 1 LIMIT 1").fetchall():
        return 0
    keep = f"{columns['amount']} >= 0" if negatives_excluded else "TRUE"
    customer = customer or columns["customer_id"]  # the stored id where days were grouped by it
    every_column = ", ".join(f"r.{identifier(c)}" for c in available)
    return int(
        con.execute(
            f"""
            SELECT coalesce(sum(k - 1), 0) FROM (
                SELECT count(*) AS k
                FROM (SELECT *, {customer} AS _customer, {columns['day']} AS _day FROM {base} WHERE {keep}) r
                SEMI JOIN (SELECT customer_id, day FROM days WHERE n > 1) d
                    ON r._customer = d.customer_id AND r._day = d.day
                GROUP BY {every_column} HAVING count(*) > 1)
            """
        ).fetchall()[0][0]
    )


def csv_safe(values: pd.Series) -> pd.Series:
    """Text values with a ``'`` in front of those starting with :data:`FORMULA_START` (see there)."""
    text = values.astype("string")
    risky = text.str[:1].isin(FORMULA_START).fillna(False).to_numpy(dtype=bool)
    if not risky.any():
        return values
    out = values.astype(object).copy()
    out[risky] = ("'" + text[risky]).astype(object)
    return out


def csv_unescape(values: pd.Series) -> pd.Series:
    """Undo :func:`csv_safe`: drop a ``'`` followed by a :data:`FORMULA_START` character."""
    text = values.astype("string")
    escaped = (text.str[:1].eq("'") & text.str[1:2].isin(FORMULA_START)).fillna(False).to_numpy(dtype=bool)
    if not escaped.any():
        return values
    out = values.astype(object).copy()
    out[escaped] = text[escaped].str[1:].astype(object)
    return out


def _first_chars_sql() -> str:
    return ", ".join(literal(c) for c in FORMULA_START)


def csv_safe_sql(column: str) -> str:
    """SQL for :func:`csv_safe` of the text expression ``column`` (an identifier, already quoted)."""
    return f"CASE WHEN left({column}, 1) IN ({_first_chars_sql()}) THEN '''' || {column} ELSE {column} END"


def csv_unescape_sql(column: str) -> str:
    """SQL for :func:`csv_unescape` of the text expression ``column`` (an identifier, already quoted)."""
    return (f"CASE WHEN left({column}, 1) = '''' AND substr({column}, 2, 1) IN ({_first_chars_sql()}) "
            f"THEN substr({column}, 2) ELSE {column} END")


def read_table(
    path: str | Path, *, id_column: str = "customer_id", delimiter: str = ",", encoding: str = "utf-8",
    text_columns: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Read a CSV or Parquet table; ``customer_id`` is kept as text (leading zeros).

    A repeated column name is refused (pandas would read the second as ``T.1`` and use the
    first), and so are fractional ids (``7.0``); a CSV's ids lose the ``'`` :func:`write_table`
    put before a formula character (:func:`csv_unescape`). ``id_column`` names the id column of a
    table whose id is not ``customer_id`` (a customer table); ``delimiter`` (``whitespace`` for
    runs of blanks) and ``encoding`` apply to a CSV. ``text_columns`` are read as text as the id is
    (a code ``01`` stays ``01``; the ``'`` :func:`write_table` put before a formula character is
    removed), e.g. a channel or a categorical covariate.
    """
    path = Path(path)
    if not path.is_file():
        raise ClvError(f"input file {path} not found")
    if path.suffix.lower() not in PARQUET and path.stat().st_size == 0:
        raise ClvError(f"{path} is empty (0 bytes); expected a CSV with a header line, or a Parquet file")
    names = header_names(path, SimpleNamespace(header=True, encoding=encoding, delimiter=delimiter))  # type: ignore[arg-type]
    repeated = duplicate_header_message(path, names)
    if repeated:
        raise ClvError(repeated)
    try:
        if path.suffix.lower() in PARQUET:
            frame = pd.read_parquet(path)
        else:
            # One rule for missing ids (checks.MISSING_IDS), as in transaction logs and batch
            # scoring: pandas' wider default list would make ids like "n/a" or "#N/A" missing
            # here only. Other columns keep pandas' defaults.
            missing = {c: list(MISSING_IDS) if c == id_column else list(STR_NA_VALUES) for c in names or []}
            separator = {"sep": r"\s+"} if delimiter == "whitespace" else {"sep": delimiter}
            frame = pd.read_csv(path, dtype={id_column: str, **{c: str for c in text_columns}}, keep_default_na=False,
                                na_values=missing,
                                encoding=encoding, **separator)
    except UnicodeDecodeError:
        raise ClvError(
            not_utf8_message(path, "re-save it as UTF-8 (or write Parquet)") or f"{path} is not UTF-8 text; re-save it as UTF-8"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ClvError(f"cannot read {path}: {first[:200]}; expected a UTF-8 CSV or a Parquet file") from None
    if id_column in frame.columns:
        if isinstance(frame[id_column].dtype, np.dtype) and frame[id_column].dtype.kind == "f":
            check_id_type(str(path), id_column, "DOUBLE")
        frame[id_column] = frame[id_column].astype("string").astype(object)
        if path.suffix.lower() not in PARQUET:
            frame[id_column] = csv_unescape(frame[id_column])
    for column in text_columns:
        if column in frame.columns and column != id_column:
            text = frame[column].astype("string").astype(object)
            frame[column] = csv_unescape(text) if path.suffix.lower() not in PARQUET else text
    return frame


def _atomic(path: Path, write: Any) -> Path:
    """:func:`clvmodel.files.write_atomically`, its failure said as a user's problem (one line)."""
    from clvmodel.files import write_atomically

    try:
        return write_atomically(path, lambda tmp: write(str(tmp)))
    except OSError as err:
        raise ClvError(f"cannot write {path}: {err.strerror or err}; check the folder's permissions and free space") from None


def write_figure(figure: Any, path: str | Path) -> Path:
    """Save a matplotlib figure as PNG, atomically."""
    return _atomic(Path(path), lambda tmp: figure.savefig(tmp, format="png", dpi=110))


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write CSV or Parquet (by extension) atomically: a temporary file, then a rename.

    A failure part-way leaves the destination as it was, never half written. In CSV, text
    values starting with a formula character get a ``'`` in front (:data:`FORMULA_START`); the
    caller's frame is not changed, and Parquet keeps the values as they are.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".csv", *PARQUET}:
        raise ClvError(f"output {path}: unknown extension {suffix!r}; use .csv or .parquet")
    if suffix == ".csv":
        safe = frame.copy(deep=False)
        for number, dtype in enumerate(frame.dtypes):
            if dtype == object or isinstance(dtype, pd.StringDtype):
                safe.isetitem(number, csv_safe(frame.iloc[:, number]))
        return _atomic(path, lambda tmp: safe.to_csv(tmp, index=False))
    return _atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def refuse_overwrite(outputs: dict[str, Path], inputs: list[tuple[str, str | Path | None]]) -> None:
    """Refuse an output that is one of the inputs, before anything is read or written.

    Compared as files, not as names: a relative and an absolute path, a symbolic link or a hard
    link to the input are the same file (:func:`os.path.samefile`: device and inode), and an
    output not yet written is compared by its resolved path. Writing the output would otherwise
    replace the input (or the link to it) with the results, losing it.

    Raises
    ------
    ClvError
        Naming both options.
    """
    for out_option, output in outputs.items():
        for in_option, given in inputs:
            if given is None:
                continue
            source = Path(given)
            try:
                same = os.path.samefile(output, source) if output.exists() and source.exists() else (
                    output.resolve() == source.resolve())
            except OSError:
                same = False
            if same:
                raise ClvError(
                    f"{out_option} {output} is the same file as {in_option} {source}: writing it would overwrite the "
                    f"input; choose another {out_option} path"
                )
