"""What counts as a bad transaction log, and how clvmodel says so: engine-free checks and messages.

:func:`clvmodel.io.load_transactions` (DuckDB) and :mod:`clvmodel.spark` compute the same counts
(:data:`ROW_STATS`) each in its own engine and pass them to :func:`check_rows`, so a user's mistake
reads the same on a laptop and on a cluster: one line naming the count, an example and the fix.
The rules themselves are listed in :mod:`clvmodel.io`'s docstring.
"""

from __future__ import annotations

import codecs
import difflib
import json
import re
from pathlib import Path
from typing import Any

import duckdb

from clvmodel.config import DataConfig
from clvmodel.errors import ClvError
from clvmodel.sqltext import literal

__all__ = [
    "amount_limit",
    "FORMULA_START",
    "ROW_STATS",
    "FIRST_YEAR",
    "LAST_YEAR",
    "PARQUET",
    "WITHOUT_OFFSET",
    "sql_literal",
    "not_utf8_message",
    "read_error",
    "no_rows_message",
    "check_columns",
    "check_rows",
    "matching_date_formats",
    "nothing_left_message",
    "MISSING_IDS",
    "AMOUNT_CEILING",
    "LATE_YEARS",
    "duplicate_header_message",
    "header_names",
    "check_id_type",
    "late_dates_message",
]

#: Id values that mean "no id": the export's gap markers, not customers. One list for transaction
#: logs (read as SQL NULL) and RFM tables (:func:`clvmodel.customers.validate_rfm`), so ``NA`` is
#: a missing id in both, never a customer called NA in one of them.
MISSING_IDS = ("", "NA", "N/A", "NaN", "nan", "NULL", "null", "None")
#: The largest amount (and RFM monetary_value) clvmodel accepts even with ``data.max_amount: null``:
#: per-customer sums are exact DECIMAL(38, 9) (29 integer digits), and a double above 10^15 no
#: longer holds cents. 1e300 overflowed the sum with a DuckDB traceback.
AMOUNT_CEILING = 1e15


def amount_limit(data: DataConfig) -> float:
    """The largest amount accepted: ``data.max_amount``, and never above :data:`AMOUNT_CEILING` (both engines)."""
    return min(float(data.max_amount), AMOUNT_CEILING) if data.max_amount is not None else AMOUNT_CEILING
#: A row dated more than this many years after 99.9 % of the rows is refused as a date error
#: (with the rows after tomorrow): it would become the as-of date of every customer.
LATE_YEARS = 2

#: Dates outside these years are an error (a two-digit year read with %Y lands in year 97).
FIRST_YEAR, LAST_YEAR = 1900, 2199
#: File suffixes read as Parquet.
PARQUET = (".parquet", ".pq")
# SQL for a timestamp's text without its offset (the time as written), e.g. for counting moved days.
WITHOUT_OFFSET = r"regexp_replace({v}, '(\d:\d\d(:\d\d(\.\d+)?)?)\s*(Z|[+-]\d\d(:?\d\d)?)$', '\1')"


#: ``value`` as a DuckDB string literal: the one quoting function, :func:`clvmodel.sqltext.literal`.
sql_literal = literal

#: First characters that make a spreadsheet read a cell as a formula (OWASP's list for CSV
#: injection: ``=``, ``+``, ``-``, ``@``, tab, carriage return), and the single quote itself, which
#: makes the escape reversible. In the CSV files clvmodel writes, a text value starting with one
#: of them gets a ``'`` in front (a spreadsheet shows the value as text, without the quote);
#: :func:`clvmodel.io.csv_unescape` removes exactly that quote when clvmodel reads its CSV back (scores, RFM
#: tables), so every id round-trips. Parquet keeps the values as they are.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


# Date formats tried when dates do not parse, to name the one the file seems to use.
_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%m/%d/%Y", "%d/%m/%Y", "%Y/%m/%d", "%d.%m.%Y", "%d-%m-%Y", "%m-%d-%Y",
                 "%d %b %Y", "%b %d %Y", "%m/%d/%y", "%d/%m/%y")
_DELIMITERS = (";", "\t", "|", ",")


def _shown(value: Any) -> str:
    """An offending value for a message; a missing one (empty, NA, NaN, null) is named as such."""
    return "an empty value" if value is None else repr(value)


def _count(n: int, rows: int) -> str:
    return f"{n:,} of {rows:,} rows"


def _first_invalid_utf8(path: str | Path, encoding: str = "utf-8") -> tuple[int, int] | None:
    """Line number (1-based) and byte value of the first byte that does not decode, or ``None``."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as err:
                return line + block[: err.start].count(b"\n"), block[err.start]
            line += text.count("\n")
    return None


def not_utf8_message(path: str | Path, fix: str) -> str | None:
    """``"<path> is not UTF-8 text (line 3 has byte 0xe9, ...); <fix>"``, or ``None`` if it decodes."""
    try:
        bad = _first_invalid_utf8(path)
    except OSError:
        return None
    if bad is None:
        return None
    line, byte = bad
    latin = bytes([byte]).decode("latin-1")
    shown = f", {latin!r} in Latin-1" if latin.isprintable() else ""
    return f"{path} is not UTF-8 text (line {line} has byte 0x{byte:02x}{shown}); {fix}"


def _ragged_line(path: str, data: DataConfig) -> tuple[int, int, int, str, str] | None:
    """The first line whose value count differs from the first line's: (number, values, header's
    columns, its text, the first line's text)."""
    import csv

    try:
        with open(path, encoding=data.encoding, newline="") as handle:
            reader = csv.reader(handle, delimiter=data.delimiter)
            first: list[str] | None = None
            for row in reader:
                if first is None:
                    first = row
                elif row and len(row) != len(first):
                    return reader.line_num, len(row), len(first), data.delimiter.join(row), data.delimiter.join(first)
    except (OSError, UnicodeError, csv.Error):
        return None
    return None


def read_error(source: str, files: list[str], data: DataConfig, err: BaseException) -> ClvError:
    """The one-line error for a CSV or Parquet file DuckDB or pandas could not read: a byte that is
    not UTF-8, a line with more or fewer values than the header, lines above the header, or
    DuckDB's own first line; each with what to set or fix."""
    text = str(err).strip()
    if data.encoding == "utf-8" and (isinstance(err, UnicodeDecodeError) or "utf-8" in text.lower() or "unicode" in text.lower()):
        for name in files:
            message = not_utf8_message(
                name, "set data.encoding: latin-1 (or utf-16) to read it as it is, or re-save the file as UTF-8"
            )
            if message:
                return ClvError(message)
    line = re.search(r"CSV Error on Line: (\d+)", text)
    columns = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    original = re.search(r"Original Line: (.*)", text)
    ragged = None
    if line and columns:
        ragged = (int(line.group(1)), int(columns.group(2)), int(columns.group(1)), original.group(1) if original else None, "")
    elif data.delimiter != "whitespace" and "sniffing" in text:
        ragged = next(filter(None, (_ragged_line(f, data) for f in files)), None)
    if ragged:
        number, found, expected, shown, head = ragged
        if number == 2 and expected == 1 and found > 1:  # a title or note above the header
            return ClvError(
                f"{source}: the first line {head[:80]!r} is not a header of the data (line 2 has {found} values); "
                "remove the lines above the header"
            )
        return ClvError(
            f"{source}: line {number} has {'more' if found > expected else 'fewer'} values than the header's "
            f"{expected} columns{f' ({shown[:80]!r})' if shown else ''}; fix that line in the export (a value holding "
            "the delimiter needs quotes)"
        )
    first = text.splitlines()[0] if text else type(err).__name__
    if all(Path(f).suffix.lower() in PARQUET for f in files):
        return ClvError(f"cannot read {source}: {first[:200]}; check that it is a complete Parquet file (export it again)")
    delimiter = "whitespace" if data.delimiter == "whitespace" else json.dumps(data.delimiter)
    return ClvError(
        f"cannot read {source}: {first[:200]}; check that it is CSV as configured (data.delimiter {delimiter}, "
        f"data.header {str(data.header).lower()}, data.encoding {data.encoding}) or Parquet"
    )


def no_rows_message(source: str, columns: list[str]) -> str:
    """The message for a file with a header but no rows (or no columns at all)."""
    if not columns:
        return f"{source} holds no rows and no header; point data.source at the full export"
    return f"{source} has a header ({', '.join(columns)[:200]}) but no rows; point data.source at the full export"


def check_columns(source: str, available: list[str], data: DataConfig) -> None:
    """Every configured column is present; else name the closest one, or the delimiter that split it.

    Engine-free: :mod:`clvmodel.spark` can raise the same messages with its frame's columns.
    """
    for role in ("customer_id", "date", "amount"):
        column = getattr(data.columns, role)
        if column in available:
            continue
        if len(available) == 1:
            counts = {d: available[0].count(d) for d in _DELIMITERS if d != data.delimiter}
            guess = max(counts, key=lambda d: counts[d])
            if counts[guess]:
                shown = "whitespace" if data.delimiter == "whitespace" else json.dumps(data.delimiter)
                raise ClvError(
                    f"{source} was read as one column {available[0][:80]!r}: its delimiter looks like "
                    f"{json.dumps(guess)}, not {shown}; set data.delimiter: {json.dumps(guess)}"
                )
        lower = {a.lower().strip(): a for a in available}
        close = lower.get(column.lower().strip()) or next(
            iter(lower[m] for m in difflib.get_close_matches(column.lower(), list(lower), n=1, cutoff=0.6)), None
        )
        hint = f" (did you mean {close!r}?)" if close else ""
        raise ClvError(
            f"column {column!r} not found in {source} (columns: {', '.join(available)}); "
            f"set data.columns.{role} to the column holding the {role.replace('_', ' ')}{hint}"
        )


def matching_date_formats(values: list[str], current: str | None = None) -> list[str | None]:
    """Date formats that read every one of ``values`` as a date in 1900-2199, most common first.

    ``None`` in the result stands for ISO dates and timestamps (no ``data.date_format`` needed);
    it is offered only when ``current`` is a format (otherwise ISO was already tried). The
    probe runs on its own in-memory DuckDB, so any engine can call it with a sample of values.
    """
    values = [v.strip() for v in values if v is not None and v.strip()]
    if not values:
        return []
    found: list[str | None] = []
    bounds = f"BETWEEN DATE '{FIRST_YEAR}-01-01' AND DATE '{LAST_YEAR}-12-31'"
    with duckdb.connect(":memory:") as probe:
        probe.execute("CREATE TABLE v AS SELECT unnest(?::VARCHAR[]) AS v", [values])
        iso = probe.execute(
            f"SELECT bool_and(coalesce(TRY_CAST(TRY_CAST({WITHOUT_OFFSET.format(v='v')} AS TIMESTAMP) AS DATE) "
            f"{bounds}, false)) FROM v"
        ).fetchone()[0]
        if iso and current is not None:
            found.append(None)
        for fmt in _DATE_FORMATS:
            if fmt == current or (iso and fmt == "%Y-%m-%d"):  # ISO covers it
                continue
            if probe.execute(
                f"SELECT bool_and(coalesce(CAST(TRY_STRPTIME(v, {sql_literal(fmt)}) AS DATE) {bounds}, false)) FROM v"
            ).fetchone()[0]:
                found.append(fmt)
    return found


def _date_error(column: str, date_format: str | None, rows: int, bad: int, values: list[str], good: str | None) -> ClvError:
    """Why dates do not parse: another format for all rows, a column mixing formats, or bad values."""
    example = values[0] if values else None
    formats = matching_date_formats(values, date_format)
    reading = "as ISO dates" if date_format is None else f"with data.date_format {date_format!r}"

    def named(fmt: str | None) -> str:
        return "ISO dates" if fmt is None else repr(fmt)

    if bad == rows:
        if not formats:
            fix = (
                "set data.date_format to their strftime format, e.g. '%d/%m/%Y' for 31/01/1997"
                if date_format is None
                else "fix data.date_format (strftime codes, e.g. '%d/%m/%Y' for 31/01/1997)"
            )
        elif formats[0] is None:
            fix = "remove data.date_format: these are ISO dates, which parse without it"
        else:
            fix = f"set data.date_format: {formats[0]!r}"
            if len(formats) > 1:
                fix += f" (they also fit {' or '.join(named(f) for f in formats[1:3])}: check which is meant)"
        return ClvError(f"none of the {rows:,} dates in column {column!r} parse {reading} (e.g. {example!r}); {fix}")
    if formats:
        looks = " or ".join(named(f) for f in formats[:2])
        return ClvError(
            f"column {column!r} mixes date formats: {_count(bad, rows)} look like {looks} (e.g. {example!r}) while the "
            f"others parse {reading} (e.g. {good!r}); re-export the column in one format "
            "(data.date_format reads only one)"
        )
    return ClvError(
        f"{_count(bad, rows)} have a date that does not parse {reading} in column {column!r} (e.g. {example!r}, while "
        f"{good!r} does); fix or remove those rows in the export"
    )


#: The counts and examples :func:`check_rows` needs, as computed over the parsed rows (the
#: examples are the smallest offending value, so both engines name the same row):
ROW_STATS = (
    "rows",  # rows read
    "no_id", "no_id_ex",  # id missing; example 'dated <raw date>, amount <raw amount>'
    "no_date", "no_date_ex",  # date missing; example customer id
    "bad_date", "good_date_ex",  # date present but not parsed; a date that did parse
    "odd_year", "odd_year_ex",  # parsed outside 1900-2199; '<raw date> (read as <day>)'
    "no_amount", "no_amount_ex",  # amount missing; '<customer id> on <raw date>'
    "bad_amount", "bad_amount_ex",  # amount present but not a finite number; the raw amount
    "huge", "huge_ex",  # amount above data.max_amount; '<customer id> on <raw date>: <raw amount>'
    "negative", "negative_ex",  # amount below 0; '<customer id> on <raw date>: <raw amount>'
)


def check_rows(
    stats: dict[str, Any], data: DataConfig, date_format: str | None, bad_dates: Any = None
) -> dict[str, int]:
    """The row checks of the module rules, in order, from counts (:data:`ROW_STATS`).

    Raises the first problem as a one-line :class:`ClvError`; returns the rows excluded by
    reason (``negative_amount`` under ``data.negative_amounts: exclude``). ``bad_dates`` is
    called (no arguments) only when some date does not parse, for up to 200 distinct failing
    values in sorted order, to tell a wrong format from a column mixing formats. Engine-free:
    :mod:`clvmodel.spark` raises the same messages from its own counts.
    """
    rows, column = stats["rows"], data.columns
    if stats["no_id"]:
        raise ClvError(
            f"{_count(stats['no_id'], rows)} have no customer id (empty, NA, NaN or NULL) in column "
            f"{column.customer_id!r} (e.g. the row {stats['no_id_ex']}); fill in the ids or remove those rows from "
            "the export"
        )
    if stats["no_date"]:
        raise ClvError(
            f"{_count(stats['no_date'], rows)} have no date in column {column.date!r} (e.g. customer "
            f"{stats['no_date_ex']}); fill in the dates or remove those rows from the export"
        )
    if stats["bad_date"]:
        values = list(bad_dates()) if callable(bad_dates) else list(bad_dates or [])
        raise _date_error(column.date, date_format, rows, stats["bad_date"], values, stats["good_date_ex"])
    if stats["odd_year"]:
        raise ClvError(
            f"{_count(stats['odd_year'], rows)} have a date outside {FIRST_YEAR}-{LAST_YEAR} in column "
            f"{column.date!r} (e.g. {stats['odd_year_ex']}); a two-digit year needs %y in data.date_format, not %Y"
        )
    if stats["no_amount"]:
        raise ClvError(
            f"{_count(stats['no_amount'], rows)} have no amount in column {column.amount!r} (e.g. customer "
            f"{stats['no_amount_ex']}); fill in the amounts (0 for a free item) or remove those rows from the export"
        )
    if stats["bad_amount"]:
        raise ClvError(
            f"{_count(stats['bad_amount'], rows)} have an amount that is not a number in column {column.amount!r} "
            f"(e.g. {_shown(stats['bad_amount_ex'])}); fix those rows in the export, or set data.amount_format if they "
            "are amounts written another way (decimal_mark, thousands_separator, currency_symbols)"
        )
    if stats["huge"]:
        if data.max_amount is None or data.max_amount > AMOUNT_CEILING:
            raise ClvError(
                f"{_count(stats['huge'], rows)} have an amount above {AMOUNT_CEILING:,.0f}, the largest clvmodel sums "
                f"exactly (e.g. customer {stats['huge_ex']}); fix the export (an id or a card number in the amount column?)"
            )
        raise ClvError(
            f"{_count(stats['huge'], rows)} have an amount above data.max_amount {data.max_amount:,.0f} (e.g. "
            f"customer {stats['huge_ex']}); fix the export (an id or a card number in the amount column?), or raise "
            "data.max_amount (null: no limit) if such amounts are real"
        )
    excluded: dict[str, int] = {}
    if stats["negative"]:
        if data.negative_amounts == "error":
            raise ClvError(
                f"{_count(stats['negative'], rows)} have a negative amount (refunds? e.g. customer "
                f"{stats['negative_ex']}); set data.negative_amounts: exclude to drop refund rows (they are counted)"
            )
        excluded["negative_amount"] = int(stats["negative"])
    return excluded


def nothing_left_message(source: str, rows: int, excluded: dict[str, int]) -> str:
    """The message when every row was excluded."""
    reasons = ", ".join(f"{k} {v:,}" for k, v in excluded.items())
    return (
        f"{source}: all {rows:,} rows were excluded ({reasons}); nothing is left to model: check the export, "
        "data.negative_amounts and data.duplicates"
    )




def header_names(path: str | Path, data: DataConfig | None = None) -> list[str] | None:
    """The column names as the file writes them, before any reader renames a repeat.

    DuckDB reads a second ``T`` as ``T_1`` and pandas as ``T.1``, so a repeated column would be
    silently ignored; the names are read here from the Parquet schema or the CSV's first line.
    ``None`` when the file has no header (``data.header: false``) or cannot be read (the reader
    then says why).
    """
    import csv

    path = Path(path)
    try:
        if path.suffix.lower() in PARQUET:
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        if data is not None and not data.header:
            return None
        encoding = data.encoding if data is not None else "utf-8"
        delimiter = data.delimiter if data is not None else ","
        with open(path, encoding=encoding, newline="") as handle:
            first = handle.readline(1 << 20)
        if delimiter == "whitespace":
            return first.split()
        return next(csv.reader([first], delimiter=delimiter), [])
    except Exception:  # noqa: BLE001 - unreadable (not Parquet, not text): the reader then says why
        return None


def duplicate_header_message(path: str | Path, names: list[str] | None) -> str | None:
    """``"<path>: column 'T' appears twice in the header ..."``, or ``None`` when every name is unique.

    Names are compared without case and surrounding blanks: DuckDB, which reads the columns by
    name, does not tell ``T`` from ``t`` either.
    """
    if not names:
        return None
    seen: dict[str, int] = {}
    for number, name in enumerate(names, 1):
        key = str(name).strip().lower()
        if key in seen:
            return (
                f"{path}: column {str(name)[:80]!r} appears twice in the header (columns {seen[key]} and {number}); "
                "a reader would use one and ignore the other: rename or remove one of them in the export"
            )
        seen[key] = number
    return None


def check_id_type(source: str, column: str, kind: str) -> None:
    """Refuse customer ids stored as fractional numbers (a Parquet DOUBLE, FLOAT or DECIMAL column).

    Such ids read as text ``7.0`` (or lose digits beyond 2^53), so they would never match the same
    customer elsewhere. Integer ids are accepted (:class:`~clvmodel.io.LoadReport` says so: they
    cannot have kept leading zeros).
    """
    kind = kind.upper()
    if kind.startswith(("FLOAT", "DOUBLE", "DECIMAL", "REAL")):
        raise ClvError(
            f"{source}: customer ids in column {column!r} are stored as fractional numbers ({kind}), so 7 would read "
            "as '7.0' and large ids lose digits; write the ids as text (a string column) in the export"
        )


def late_dates_message(count: int, rows: int, limit: Any, why: str, example: str, fix: str) -> str:
    """The message for rows dated after ``limit`` (tomorrow, or far after the rest of the log)."""
    return (
        f"{_count(count, rows)} are dated after {limit} ({why}; e.g. customer {example}): they would become the "
        f"last date of the log, so every customer would look long gone; fix those dates in the export, or {fix}"
    )
