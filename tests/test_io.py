"""Tests for clvmodel.io: reading transaction logs into DuckDB, the cleaning rules, table writes.

Everything runs on a real in-memory DuckDB (the ``duck`` fixture) and real files in ``tmp_path``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clvmodel import io
from clvmodel.config import Columns, DataConfig
from clvmodel.errors import ClvError

D = dt.date
COLS = Columns(customer_id="id", date="day", amount="value")
HEADER = ("id", "day", "value")


def _rows(con) -> list[tuple]:
    """The cleaned ``transactions`` table as sorted tuples."""
    return con.execute("SELECT customer_id, day, amount FROM transactions ORDER BY customer_id, day, amount").fetchall()


def _load(con, source: Path | str, **data: object) -> io.LoadReport:
    data.setdefault("columns", COLS)
    return io.load_transactions(con, DataConfig(source=str(source), **data))


# --- formats ----------------------------------------------------------------------------------


def test_csv_with_custom_columns_and_date_format(duck, write_csv) -> None:
    path = write_csv(
        [("007", "01/02/1997", "5.50"), ("007", "01/02/1997", "1"), ("12", "12/31/1997", "0.25")],
        header=HEADER,
    )
    report = _load(duck, path, date_format="%m/%d/%Y")
    assert _rows(duck) == [("007", D(1997, 1, 2), 1.0), ("007", D(1997, 1, 2), 5.5), ("12", D(1997, 12, 31), 0.25)]
    types = dict(duck.execute("SELECT column_name, column_type FROM (DESCRIBE transactions)").fetchall())
    assert types == {"customer_id": "VARCHAR", "day": "DATE", "amount": "DOUBLE"}
    assert (report.rows_read, report.rows_kept, report.customers) == (3, 3, 2)


def test_iso_dates_and_timestamps_parse_without_format(duck, write_csv) -> None:
    path = write_csv(
        [("1", "1997-01-02", "5"), ("2", "1997-01-03 13:45:00", "1"), ("3", "1997-01-04T08:00:00", "2")]
    )
    _load(duck, path, columns=Columns())
    assert _rows(duck) == [("1", D(1997, 1, 2), 5.0), ("2", D(1997, 1, 3), 1.0), ("3", D(1997, 1, 4), 2.0)]


def test_extra_columns_and_column_order_do_not_matter(duck, write_csv) -> None:
    path = write_csv([("x", "3", "1997-01-02", "9.5", "007")], header=("note", "qty", "day", "value", "id"))
    _load(duck, path)
    assert _rows(duck) == [("007", D(1997, 1, 2), 9.5)]


def test_ids_keep_leading_zeros_and_are_trimmed(duck, write_csv) -> None:
    path = write_csv([("007", "1997-01-01", "1"), (" 007 ", "1997-01-02", "2"), ("7", "1997-01-03", "3")], header=HEADER)
    report = _load(duck, path)
    assert _rows(duck) == [("007", D(1997, 1, 1), 1.0), ("007", D(1997, 1, 2), 2.0), ("7", D(1997, 1, 3), 3.0)]
    assert report.customers == 2  # "007" and "7" are different customers


def test_other_delimiter(duck, write_csv) -> None:
    path = write_csv([("007", "1997-01-01", "1.5")], header=HEADER, sep=";")
    _load(duck, path, delimiter=";")
    assert _rows(duck) == [("007", D(1997, 1, 1), 1.5)]


def test_csv_without_header_uses_duckdb_column_names(duck, write_csv) -> None:
    path = write_csv([("007", "19970101", "1.5"), ("008", "19970102", "2")], header=None)
    _load(duck, path, header=False, date_format="%Y%m%d", columns=Columns(customer_id="column0", date="column1", amount="column2"))
    assert _rows(duck) == [("007", D(1997, 1, 1), 1.5), ("008", D(1997, 1, 2), 2.0)]


def test_whitespace_delimiter_with_header(duck, tmp_path: Path) -> None:
    path = tmp_path / "cdnow_like.txt"
    path.write_text("id   day  value\n 007 19970101   29.33\n  0042   19970118 2\n", encoding="utf-8")
    report = _load(duck, path, delimiter="whitespace", date_format="%Y%m%d")
    assert _rows(duck) == [("0042", D(1997, 1, 18), 2.0), ("007", D(1997, 1, 1), 29.33)]
    assert report.rows_read == 2


def test_whitespace_delimiter_without_header(duck, tmp_path: Path) -> None:
    # The layout of CDNOW_sample.txt: master id, sample id, yyyymmdd, CDs, dollars.
    path = tmp_path / "sample.txt"
    path.write_text(" 00004 0001 19970101  2   29.33\n 00004 0001 19970118  2   29.73\n", encoding="utf-8")
    _load(
        duck,
        path,
        delimiter="whitespace",
        header=False,
        date_format="%Y%m%d",
        columns=Columns(customer_id="column1", date="column2", amount="column4"),
    )
    assert _rows(duck) == [("0001", D(1997, 1, 1), 29.33), ("0001", D(1997, 1, 18), 29.73)]


def test_parquet_with_typed_dates_and_timestamps(duck, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["007", "007", "010"],
            "date": [D(1997, 1, 1), D(1997, 2, 1), D(1997, 3, 1)],
            "amount": [1.0, 2.5, 0.0],
        }
    )
    frame.to_parquet(tmp_path / "dates.parquet")
    _load(duck, tmp_path / "dates.parquet", columns=Columns())
    expected = [("007", D(1997, 1, 1), 1.0), ("007", D(1997, 2, 1), 2.5), ("010", D(1997, 3, 1), 0.0)]
    assert _rows(duck) == expected

    frame["date"] = pd.to_datetime(["1997-01-01 10:00", "1997-02-01 23:59", "1997-03-01 00:00"])
    frame.to_parquet(tmp_path / "stamps.parquet")
    con = io.connect()
    _load(con, tmp_path / "stamps.parquet", columns=Columns())
    assert _rows(con) == expected


def test_parquet_with_text_dates_and_integer_amounts(duck, tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": ["1", "2"], "day": ["19970105", "19970106"], "value": np.array([3, 4], dtype="int64")})
    frame.to_parquet(tmp_path / "t.parquet")
    _load(duck, tmp_path / "t.parquet", date_format="%Y%m%d")
    assert _rows(duck) == [("1", D(1997, 1, 5), 3.0), ("2", D(1997, 1, 6), 4.0)]


def test_glob_of_csv_files(duck, write_csv, tmp_path: Path) -> None:
    write_csv([("1", "1997-01-01", "1")], header=HEADER, name="parts/tx_2.csv")
    write_csv([("2", "1997-01-02", "2"), ("3", "1997-01-03", "3")], header=HEADER, name="parts/tx_1.csv")
    write_csv([("9", "1997-01-09", "9")], header=HEADER, name="parts/other.csv")
    report = _load(duck, tmp_path / "parts" / "tx_*.csv")
    assert report.files == [str(tmp_path / "parts" / "tx_1.csv"), str(tmp_path / "parts" / "tx_2.csv")]
    assert report.rows_read == 3
    assert [r[0] for r in _rows(duck)] == ["1", "2", "3"]


def test_folder_of_parquet_files_recursively(duck, tmp_path: Path) -> None:
    folder = tmp_path / "lake"
    (folder / "year=1997").mkdir(parents=True)
    pd.DataFrame({"id": ["1"], "day": [D(1997, 1, 1)], "value": [1.0]}).to_parquet(folder / "a.parquet")
    pd.DataFrame({"id": ["2", "3"], "day": [D(1997, 1, 2)] * 2, "value": [2.0, 3.0]}).to_parquet(
        folder / "year=1997" / "b.parquet"
    )
    (folder / "notes.csv").write_text("id,day,value\n9,1997-01-09,9\n", encoding="utf-8")  # not Parquet: ignored
    report = _load(duck, folder)
    assert report.files == [str(folder / "a.parquet"), str(folder / "year=1997" / "b.parquet")]
    assert [r[0] for r in _rows(duck)] == ["1", "2", "3"]


def test_a_file_rewritten_after_the_load_stops_the_run(duck, tmp_path: Path) -> None:
    # Typed Parquet stays a view that later stages read again; a rewrite in between is refused.
    path = tmp_path / "t.parquet"
    pd.DataFrame({"id": ["1", "2"], "day": [D(1997, 1, 1)] * 2, "value": [1.0, 2.0]}).to_parquet(path)
    report = _load(duck, path)
    assert duck.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 'transactions'").fetchall() == [("VIEW",)]
    assert report.rereads_source
    io.check_unchanged(report)  # nothing changed: no error
    pd.DataFrame({"id": ["1", "2", "3"], "day": [D(1997, 1, 1)] * 3, "value": [1.0, 2.0, 3.0]}).to_parquet(path)
    assert duck.execute("SELECT count(*) FROM transactions").fetchall() == [(3,)]  # what a later reader would see
    with pytest.raises(ClvError, match=r"t\.parquet changed while clvmodel was reading it"):
        io.check_unchanged(report)


def test_a_file_rewritten_during_the_load_stops_the_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another writer replaces the file between the load's scans (here: right after `days` is
    # built, before the duplicate search); the tables would mix two versions, so the load refuses.
    from clvmodel import rfm

    path = tmp_path / "t.parquet"
    pd.DataFrame({"id": ["1", "2"], "day": [D(1997, 1, 1)] * 2, "value": [1.0, 2.0]}).to_parquet(path)
    build_days = rfm.create_days

    def build_then_rewrite(*args: object, **kwargs: object) -> None:
        build_days(*args, **kwargs)
        pd.DataFrame({"id": ["9"], "day": [D(1998, 1, 1)], "value": [5.0]}).to_parquet(path)

    monkeypatch.setattr(rfm, "create_days", build_then_rewrite)
    with pytest.raises(ClvError, match=r"t\.parquet changed while clvmodel was reading it"):
        _load(io.connect(), path)


def test_a_text_source_is_not_read_again_after_the_load(duck, write_csv) -> None:
    report = _load(duck, write_csv([("1", "1997-01-01", "1")], header=HEADER))
    assert not report.rereads_source  # parsed into a table: later stages never read the file


def test_a_file_removed_after_the_load_stops_the_run(duck, tmp_path: Path) -> None:
    folder = tmp_path / "lake"
    folder.mkdir()
    for name in ("a", "b"):
        pd.DataFrame({"id": [name], "day": [D(1997, 1, 1)], "value": [1.0]}).to_parquet(folder / f"{name}.parquet")
    report = _load(duck, folder)
    assert set(report.file_states) == {str(folder / "a.parquet"), str(folder / "b.parquet")}
    assert "file_states" not in report.as_dict()  # not a logged fingerprint field
    (folder / "b.parquet").unlink()
    with pytest.raises(ClvError, match=r"b\.parquet disappeared while clvmodel was reading it"):
        io.check_unchanged(report)


def test_bundled_cdnow_sample() -> None:
    con = io.connect()
    report = io.load_transactions(con, DataConfig(source="bundled:CDNOW_sample"))
    # CDNOW_sample.txt: 6,919 rows, 2,357 customers, 1997-01-01 .. 1998-06-30; 8 zero-dollar rows (io docstring).
    assert (report.rows_read, report.customers, report.zero_amount_rows) == (6919, 2357, 8)
    assert (report.first_date, report.last_date) == ("1997-01-01", "1998-06-30")
    first = con.execute("SELECT * FROM transactions WHERE customer_id = '00004' ORDER BY day").fetchall()
    # The first lines of CDNOW_sample.txt: " 00004 0001 19970101  2   29.33" ...
    assert first[:2] == [("00004", D(1997, 1, 1), 29.33), ("00004", D(1997, 1, 18), 29.73)]


def test_bundled_cdnow_master() -> None:
    con = io.connect()
    report = io.load_transactions(con, DataConfig(source="bundled:CDNOW_master"))
    # CDNOW_master.txt: 69,659 rows (header line excluded), 23,570 customers, 80 zero-dollar rows.
    assert (report.rows_read, report.customers, report.zero_amount_rows) == (69659, 23570, 80)


def test_loading_twice_on_one_connection(duck, tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("id day value\n1 19970101 5\n", encoding="utf-8")
    _load(duck, path, delimiter="whitespace", date_format="%Y%m%d")
    path.write_text("id day value\n1 19970101 5\n2 19970102 6\n", encoding="utf-8")
    assert _load(duck, path, delimiter="whitespace", date_format="%Y%m%d").rows_read == 2


def test_loading_a_csv_twice_on_one_connection_replaces_the_table(duck, write_csv) -> None:
    _load(duck, write_csv([("1", "1997-01-01", "5")], header=HEADER, name="a.csv"))
    _load(duck, write_csv([("2", "1997-01-02", "6")], header=HEADER, name="b.csv"))
    assert _rows(duck) == [("2", D(1997, 1, 2), 6.0)]


def test_unknown_bundled_data_set(duck) -> None:
    with pytest.raises(ClvError, match=r"unknown bundled data set 'CDNOW'; choose one of: CDNOW_sample, CDNOW_master"):
        io.load_transactions(duck, DataConfig(source="bundled:CDNOW"))


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("columns", "role", "name"),
    [
        (Columns(customer_id="customer", date="day", amount="value"), "customer_id", "customer"),
        (Columns(customer_id="id", date="date", amount="value"), "date", "date"),
        (Columns(customer_id="id", date="day", amount="amount"), "amount", "amount"),
    ],
)
def test_missing_column_names_column_available_columns_and_key(duck, write_csv, columns, role, name) -> None:
    path = write_csv([("1", "1997-01-01", "5")], header=HEADER)
    with pytest.raises(
        ClvError,
        match=rf"^column '{name}' not found in {path} \(columns: id, day, value\); set data\.columns\.{role} to the column",
    ):
        _load(duck, path, columns=columns)


def test_header_only_file(duck, write_csv) -> None:
    path = write_csv([], header=HEADER)
    with pytest.raises(ClvError, match=rf"^{path} has a header \(id, day, value\) but no rows; point data\.source at the full export$"):
        _load(duck, path)


@pytest.mark.parametrize("delimiter", [",", "whitespace"])
def test_empty_file(duck, tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(ClvError, match=rf"^{path} is empty \(0 bytes\); point data\.source at the full export$"):
        _load(duck, path, delimiter=delimiter)


@pytest.mark.parametrize("missing", ["", "   "])
def test_missing_customer_id(duck, write_csv, missing: str) -> None:
    path = write_csv([(missing, "1997-01-01", "5"), ("1", "1997-01-02", "5"), ("2", "1997-01-03", "5")], header=HEADER)
    with pytest.raises(
        ClvError,
        match=r"^1 of 3 rows have no customer id \(empty, NA, NaN or NULL\) in column 'id' \(e\.g\. the row dated "
        r"1997-01-01, amount 5\); fill in the ids or remove those rows from the export$",
    ):
        _load(duck, path)


def test_null_customer_id_in_parquet(duck, tmp_path: Path) -> None:
    # pandas writes a missing float id (NaN) and None as Parquet nulls
    pd.DataFrame({"id": [1.0, np.nan, None], "day": [D(1997, 1, 1)] * 3, "value": [1.0] * 3}).to_parquet(
        tmp_path / "t.parquet"
    )
    with pytest.raises(ClvError, match=r"^2 of 3 rows have no customer id \(empty, NA, NaN or NULL\) in column 'id'"):
        _load(duck, tmp_path / "t.parquet")


def test_nan_customer_id_in_whitespace_file(duck, tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("id day value\nNaN 19970101 5\n1 19970102 5\n", encoding="utf-8")
    with pytest.raises(ClvError, match=r"^1 of 2 rows have no customer id \(empty, NA, NaN or NULL\) in column 'id'"):
        _load(duck, path, delimiter="whitespace", date_format="%Y%m%d")


def test_nan_customer_id_in_csv(duck, write_csv) -> None:
    path = write_csv([("NaN", "1997-01-01", "5"), ("1", "1997-01-02", "5")], header=HEADER)
    with pytest.raises(ClvError, match=r"1 of 2 rows have no customer id"):
        _load(duck, path)


def test_unparseable_dates_count_and_example(duck, write_csv) -> None:
    path = write_csv(
        [("1", "1997-01-01", "5"), ("2", "1997-13-45", "5"), ("3", "1997-13-45", "5"), ("4", "1997-01-04", "1")],
        header=HEADER,
    )
    with pytest.raises(
        ClvError,
        match=r"^2 of 4 rows have a date that does not parse as ISO dates in column 'day' \(e\.g\. '1997-13-45', "
        r"while '1997-01-01' does\); fix or remove those rows in the export$",
    ):
        _load(duck, path)


def test_dates_not_matching_the_format(duck, write_csv) -> None:
    path = write_csv([("1", "1997-01-01", "5"), ("2", "19970102", "5")], header=HEADER)
    with pytest.raises(
        ClvError,
        match=r"^column 'day' mixes date formats: 1 of 2 rows look like ISO dates \(e\.g\. '1997-01-01'\) while the "
        r"others parse with data\.date_format '%Y%m%d' \(e\.g\. '19970102'\); re-export the column in one format",
    ):
        _load(duck, path, date_format="%Y%m%d")


@pytest.mark.parametrize(
    ("dates", "date_format", "fix"),
    [
        (["01/02/1997", "12/31/1997"], None, r"set data\.date_format: '%m/%d/%Y'$"),
        (["01/02/1997", "11/03/1997"], None, r"set data\.date_format: '%m/%d/%Y' \(they also fit '%d/%m/%Y': check which is meant\)$"),
        (["1997-01-02", "1997-01-03 10:00:00"], "%Y%m%d", r"remove data\.date_format: these are ISO dates, which parse without it$"),
        (["soon", "later"], None, r"set data\.date_format to their strftime format, e\.g\. '%d/%m/%Y' for 31/01/1997$"),
    ],
)
def test_no_date_parses_names_the_format_they_fit(duck, write_csv, dates, date_format, fix) -> None:
    path = write_csv([(str(i), d, "5") for i, d in enumerate(dates)], header=HEADER)
    reading = "as ISO dates" if date_format is None else rf"with data\.date_format '{date_format}'"
    with pytest.raises(ClvError, match=rf"^none of the 2 dates in column 'day' parse {reading} \(e\.g\. '.+'\); {fix}"):
        _load(duck, path, date_format=date_format)


def test_two_digit_years_read_with_capital_y(duck, write_csv) -> None:
    path = write_csv([("1", "01/02/97", "5"), ("2", "01/03/97", "5")], header=HEADER)
    with pytest.raises(
        ClvError,
        match=r"^2 of 2 rows have a date outside 1900-2199 in column 'day' \(e\.g\. 01/02/97 \(read as 0097-01-02\)\); "
        r"a two-digit year needs %y in data\.date_format, not %Y$",
    ):
        _load(duck, path, date_format="%m/%d/%Y")
    _load(io.connect(), path, date_format="%m/%d/%y")


def test_missing_date(duck, write_csv) -> None:
    path = write_csv([("1", "", "5"), ("2", "1997-01-02", "5")], header=HEADER)
    with pytest.raises(
        ClvError,
        match=r"^1 of 2 rows have no date in column 'day' \(e\.g\. customer 1\); fill in the dates or remove those rows",
    ):
        _load(duck, path)


def test_timestamps_with_offsets_are_converted_to_utc_days_and_counted(duck, write_csv) -> None:
    path = write_csv(
        [
            ("1", "1997-03-01 10:00:00+00:00", "1"),  # UTC already: not counted
            ("2", "1997-03-01 23:00:00+05:00", "2"),  # 18:00 UTC, same day
            ("3", "1997-03-01 02:00:00+05:00", "3"),  # 21:00 UTC the day before
            ("4", "1997-03-01T20:00:00-0800", "4"),  # 04:00 UTC the day after
            ("5", "1997-03-01 02:00:00Z", "5"),
            ("6", "1997-03-01 02:00:00", "6"),  # no offset: as written
        ],
        header=HEADER,
    )
    report = _load(duck, path)
    days = dict((r[0], r[1]) for r in _rows(duck))
    assert days == {"1": D(1997, 3, 1), "2": D(1997, 3, 1), "3": D(1997, 2, 28), "4": D(1997, 3, 2), "5": D(1997, 3, 1), "6": D(1997, 3, 1)}
    assert (report.utc_converted_rows, report.utc_day_changed_rows) == (3, 2)
    assert "3 timestamps converted to UTC (2 moved to another day)" in report.describe()


def test_utc_days_do_not_depend_on_the_session_time_zone(write_csv) -> None:
    path = write_csv([("1", "1997-03-01 02:00:00+05:00", "1")], header=HEADER)
    con = io.connect()
    con.execute("SET TimeZone = 'America/Los_Angeles'")
    _load(con, path)
    assert _rows(con) == [("1", D(1997, 2, 28), 1.0)]


@pytest.mark.parametrize(("written", "example"), [("five", "'five'"), ("inf", "'inf'"), ("5 apples", "'5 apples'")])
def test_non_numeric_amount(duck, write_csv, written: str, example: str) -> None:
    path = write_csv([("1", "1997-01-01", written), ("2", "1997-01-02", "5")], header=HEADER)
    with pytest.raises(
        ClvError,
        match=rf"^1 of 2 rows have an amount that is not a number in column 'value' \(e\.g\. {example}\); "
        r"fix those rows in the export, or set data\.amount_format if they are amounts written another way "
        r"\(decimal_mark, thousands_separator, currency_symbols\)$",
    ):
        _load(duck, path)


@pytest.mark.parametrize("written", ["", "nan", "NULL"])
def test_missing_amount(duck, write_csv, written: str) -> None:
    path = write_csv([("1", "1997-01-01", written), ("2", "1997-01-02", "5")], header=HEADER)
    with pytest.raises(
        ClvError,
        match=r"^1 of 2 rows have no amount in column 'value' \(e\.g\. customer 1 on 1997-01-01\); fill in the amounts "
        r"\(0 for a free item\) or remove those rows from the export$",
    ):
        _load(duck, path)


def test_amount_above_the_sanity_limit(duck, write_csv) -> None:
    path = write_csv([("1", "1997-01-01", "1e12"), ("2", "1997-01-02", "5")], header=HEADER)
    with pytest.raises(
        ClvError,
        match=r"^1 of 2 rows have an amount above data\.max_amount 1,000,000,000 \(e\.g\. customer 1 on 1997-01-01: "
        r"1e12\); fix the export \(an id or a card number in the amount column\?\), or raise data\.max_amount",
    ):
        _load(duck, path)
    assert _load(io.connect(), path, max_amount=None).rows_kept == 2
    assert _load(io.connect(), path, max_amount=1e13).rows_kept == 2


def test_negative_amounts_are_an_error_by_default(duck, write_csv) -> None:
    path = write_csv([("1", "1997-01-01", "-5"), ("2", "1997-01-02", "5")], header=HEADER)
    with pytest.raises(
        ClvError,
        match=r"^1 of 2 rows have a negative amount \(refunds\? e\.g\. customer 1 on 1997-01-01: -5\); "
        r"set data\.negative_amounts: exclude to drop refund rows",
    ):
        _load(duck, path)


def test_negative_amounts_excluded_and_counted(duck, write_csv) -> None:
    path = write_csv(
        [("1", "1997-01-01", "-5"), ("2", "1997-01-02", "5"), ("2", "1997-01-03", "-1.5"), ("3", "1997-01-04", "0")],
        header=HEADER,
    )
    report = _load(duck, path, negative_amounts="exclude")
    assert _rows(duck) == [("2", D(1997, 1, 2), 5.0), ("3", D(1997, 1, 4), 0.0)]
    assert report.rows_read == 4
    assert report.rows_excluded == {"negative_amount": 2}
    assert report.rows_kept == 2
    assert report.customers == 2  # customer 1 had only a refund
    assert report.zero_amount_rows == 1
    assert report.as_dict()["rows_excluded.negative_amount"] == 2


def test_only_refunds_left_nothing(duck, write_csv) -> None:
    path = write_csv([("1", "1997-01-01", "-5")], header=HEADER)
    with pytest.raises(ClvError, match=r"tx\.csv: all 1 rows were excluded \(negative_amount 1\); nothing is left to model"):
        _load(duck, path, negative_amounts="exclude")


def test_exact_duplicates_are_kept_and_counted_by_default(duck, write_csv) -> None:
    rows = [("1", "1997-01-01", "5"), ("1", "1997-01-01", "5"), ("1", "1997-01-01", "5"), ("2", "1997-01-02", "5")]
    path = write_csv(rows + [("1", "1997-01-01", "6")], header=HEADER)  # same day, other amount: no duplicate
    report = _load(duck, path)
    assert (report.rows_read, report.rows_kept, report.duplicate_rows, report.rows_excluded) == (5, 5, 2, {})
    assert "2 exact duplicate rows kept (same-day purchases)" in report.describe()
    con = io.connect()
    dropped = _load(con, path, duplicates="drop")
    assert (dropped.rows_kept, dropped.duplicate_rows, dropped.rows_excluded) == (3, 0, {"duplicate_row": 2})
    assert _rows(con) == [("1", D(1997, 1, 1), 5.0), ("1", D(1997, 1, 1), 6.0), ("2", D(1997, 1, 2), 5.0)]


def test_duplicates_are_exact_over_every_column(duck, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("order,id,day,value\nA,1,1997-01-01,5\nB,1,1997-01-01,5\nB,1,1997-01-01,5\n", encoding="utf-8")
    assert _load(duck, path).duplicate_rows == 1  # orders A and B are two purchases; B twice is one duplicate


def test_refunds_and_duplicates_are_counted_once(duck, write_csv) -> None:
    path = write_csv([("1", "1997-01-01", "-5"), ("1", "1997-01-01", "-5"), ("1", "1997-01-02", "0"), ("1", "1997-01-02", "0")], header=HEADER)
    report = _load(duck, path, negative_amounts="exclude", duplicates="drop")
    assert report.rows_excluded == {"negative_amount": 2, "duplicate_row": 1}
    assert (report.rows_kept, report.zero_amount_rows) == (1, 1)


def test_zero_amounts_are_kept_and_counted(duck, write_csv) -> None:
    path = write_csv([("1", "1997-01-01", "0"), ("1", "1997-01-02", "0.00"), ("2", "1997-01-03", "5")], header=HEADER)
    report = _load(duck, path)
    assert _rows(duck) == [("1", D(1997, 1, 1), 0.0), ("1", D(1997, 1, 2), 0.0), ("2", D(1997, 1, 3), 5.0)]
    assert (report.zero_amount_rows, report.rows_kept, report.rows_excluded) == (2, 3, {})


@pytest.mark.parametrize("source", ["nothing_*.csv", "missing.csv", "empty_folder"])
def test_no_file_found(duck, tmp_path: Path, source: str) -> None:
    (tmp_path / "empty_folder").mkdir()
    (tmp_path / "empty_folder" / "a.csv").write_text("id,day,value\n", encoding="utf-8")  # a folder needs Parquet
    target = str(tmp_path / source)
    with pytest.raises(ClvError, match=r"^no file found at '.+'; check data\.source \(a path, a glob or a folder"):
        _load(duck, target)


def test_unreadable_parquet(duck, tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"nope")
    with pytest.raises(ClvError, match=rf"^cannot read {path}: .+; check that it is a complete Parquet file \(export it again\)$"):
        _load(duck, path)


@pytest.mark.parametrize("delimiter", [",", "whitespace"])
def test_latin1_file_names_the_line_and_the_encoding_option(duck, tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "latin1.csv"
    sep = "," if delimiter == "," else " "
    path.write_bytes(sep.join(["id", "day", "value"]).encode() + b"\n" + sep.join(["caf\xe9", "1997-01-01", "5"]).encode("latin-1") + b"\n")
    with pytest.raises(
        ClvError,
        match=rf"^{path} is not UTF-8 text \(line 2 has byte 0xe9, 'é' in Latin-1\); set data\.encoding: latin-1 "
        r"\(or utf-16\) to read it as it is, or re-save the file as UTF-8$",
    ):
        _load(duck, path, delimiter=delimiter)
    _load(io.connect(), path, delimiter=delimiter, encoding="latin-1")


@pytest.mark.parametrize(
    ("last_line", "message"),
    [
        (
            "caf\xe9,1997-01-01,5\n".encode("latin-1"),
            r" is not UTF-8 text \(line 30002 has byte 0xe9, 'é' in Latin-1\); set data\.encoding: latin-1",
        ),
        (
            b"1,1997-01-01,5,6\n",
            r": line 30002 has more values than the header's 3 columns \('1,1997-01-01,5,6'\); fix that line in the export",
        ),
    ],
)
def test_a_bad_line_after_duckdbs_sample_is_one_line(duck, tmp_path: Path, last_line: bytes, message: str) -> None:
    """DuckDB sniffs the first rows only; a bad line further down fails later, and still reads as one line."""
    path = tmp_path / "long.csv"
    body = "".join(f"{i},1997-01-{i % 28 + 1:02d},5\n" for i in range(30000))
    path.write_bytes(f"id,day,value\n{body}".encode() + last_line)
    with pytest.raises(ClvError, match=rf"^{path}{message}"):
        _load(duck, path)


def test_a_line_with_an_unquoted_delimiter_is_named(duck, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,day,value\n1,1997-01-01,5\n2,1997-01-02,1,234.50\n", encoding="utf-8")
    with pytest.raises(
        ClvError,
        match=rf"^{path}: line 3 has more values than the header's 3 columns \('2,1997-01-02,1,234\.50'\); fix that line "
        r"in the export \(a value holding the delimiter needs quotes\)$",
    ):
        _load(duck, path)


def test_lines_above_the_header_are_not_skipped_silently(duck, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("Sales export 2024\nid,day,value\n1,1997-01-01,5\n2,1997-01-02,7\n", encoding="utf-8")
    with pytest.raises(
        ClvError,
        match=rf"^{path}: the first line 'Sales export 2024' is not a header of the data \(line 2 has 3 values\); "
        r"remove the lines above the header$",
    ):
        _load(duck, path)


def test_latin1_file_read_with_data_encoding(duck, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,day,value\ncafé,1997-01-01,5\n0042,1997-01-02,1\n".encode("latin-1"))
    _load(duck, path, encoding="latin-1")
    assert _rows(duck) == [("0042", D(1997, 1, 2), 1.0), ("café", D(1997, 1, 1), 5.0)]


@pytest.mark.parametrize(("sep", "shown"), [(";", '";"'), ("\t", r'"\\t"'), ("|", r'"\|"')])
def test_wrong_delimiter_is_named(duck, write_csv, sep: str, shown: str) -> None:
    path = write_csv([("1", "1997-01-01", "5")], header=HEADER, sep=sep)
    with pytest.raises(
        ClvError,
        match=rf"^{path} was read as one column 'id.{{1,2}}day.{{1,2}}value': its delimiter looks like {shown}, not \",\"; "
        rf"set data\.delimiter: {shown}$",
    ):
        _load(duck, path)


def test_misnamed_column_suggests_the_closest(duck, write_csv) -> None:
    path = write_csv([("1", "1997-01-01", "5")], header=("Customer_ID", "date", "amount"))
    with pytest.raises(
        ClvError,
        match=r"column 'customer_id' not found in .* \(columns: Customer_ID, date, amount\); set data\.columns\.customer_id "
        r"to the column holding the customer id \(did you mean 'Customer_ID'\?\)$",
    ):
        _load(duck, path, columns=Columns())


# --- the load report --------------------------------------------------------------------------


def test_load_report(duck, write_csv, tmp_path: Path) -> None:
    rows = [("b", "1997-03-01", "1"), ("a", "1997-01-05", "2"), ("a", "1997-01-05", "3"), ("c", "1998-06-30", "0")]
    path = write_csv(rows, header=HEADER)
    report = _load(duck, path)
    assert report.source == str(path)
    assert report.files == [str(path)]
    assert (report.rows_read, report.rows_kept, report.customers, report.zero_amount_rows) == (4, 4, 3, 1)
    assert (report.first_date, report.last_date) == ("1997-01-05", "1998-06-30")
    assert len(report.fingerprint) == 64
    assert report.as_dict() == {
        "source": str(path),
        "rows_read": 4,
        "zero_amount_rows": 1,
        "customers": 3,
        "first_date": "1997-01-05",
        "last_date": "1998-06-30",
        "fingerprint": report.fingerprint,
        "duplicate_rows": 0,
        "utc_converted_rows": 0,
        "utc_day_changed_rows": 0,
        "amount_cleaned_rows": 0,
        "rows_kept": 4,
    }
    assert report.describe() == (
        f"{path}: 4 rows read, excluded: none, 1 zero-amount rows kept; 3 customers, 1997-01-05 to 1998-06-30"
    )

    same = write_csv(rows, header=HEADER, name="copy.csv")
    assert _load(io.connect(), same).fingerprint == report.fingerprint  # content, not the name

    changed = write_csv(rows[:-1] + [("c", "1998-06-30", "0.01")], header=HEADER)
    again = _load(io.connect(), changed)
    assert again.fingerprint != report.fingerprint
    assert again.zero_amount_rows == 0


def test_connect_settings() -> None:
    con = io.connect(memory_limit="512MB", threads=2)
    threads, limit = con.execute("SELECT current_setting('threads'), current_setting('memory_limit')").fetchone()
    assert threads == 2
    assert limit.endswith("MiB") and 480 <= float(limit.split()[0]) <= 512


# --- tables out and in ------------------------------------------------------------------------


def _scores() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series(["007", "010", "3"], dtype=object),
            "frequency": np.array([2, 0, 5], dtype="int64"),
            "predicted_clv": [12.5, 0.0, 101.25],
        }
    )


@pytest.mark.parametrize("name", ["out.csv", "out.parquet", "nested/dir/out.pq"])
def test_write_and_read_table_round_trip(tmp_path: Path, name: str) -> None:
    path = io.write_table(_scores(), tmp_path / name)
    assert path == tmp_path / name and path.is_file()
    back = io.read_table(path)
    pd.testing.assert_frame_equal(back, _scores())
    assert back["customer_id"].tolist() == ["007", "010", "3"]
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left


def test_write_table_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("old\n", encoding="utf-8")
    io.write_table(_scores(), path)
    pd.testing.assert_frame_equal(io.read_table(path), _scores())


def test_write_table_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(ClvError, match=r"out\.xlsx: unknown extension '\.xlsx'; use \.csv or \.parquet"):
        io.write_table(_scores(), tmp_path / "out.xlsx")
    assert list(tmp_path.iterdir()) == []


def test_failed_parquet_write_leaves_nothing(tmp_path: Path) -> None:
    frame = _scores().assign(blob=[object(), object(), object()])  # Arrow cannot store arbitrary objects
    with pytest.raises(Exception, match="blob"):
        io.write_table(frame, tmp_path / "out.parquet")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.csv"
    path.write_text("previous\n", encoding="utf-8")

    def half_written(self, target, *args, **kwargs):  # writes part of the file, then fails
        Path(target).write_text("customer_id,freq", encoding="utf-8")
        raise RuntimeError("interrupted mid-way")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_written)
    with pytest.raises(RuntimeError, match="interrupted mid-way"):
        io.write_table(_scores(), path)
    assert path.read_text(encoding="utf-8") == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_os_error_while_writing_is_a_clv_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(self, target, *args, **kwargs):
        Path(target).write_text("customer_id", encoding="utf-8")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    with pytest.raises(ClvError, match=r"^cannot write .*out\.csv: No space left on device; check the folder's permissions"):
        io.write_table(_scores(), tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


def test_writing_onto_a_directory_is_a_clv_error(tmp_path: Path) -> None:
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(ClvError, match=r"^cannot write .*out\.csv: "):
        io.write_table(_scores(), tmp_path / "out.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_unwritable_folder_is_a_clv_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(ClvError, match=r"cannot write"):
        io.write_table(_scores(), tmp_path / "file" / "out.csv")


def test_read_table_keeps_customer_id_as_text(tmp_path: Path) -> None:
    path = tmp_path / "scores.csv"
    path.write_text("customer_id,value\n007,1.5\n0010,2\n42,3\n", encoding="utf-8")
    frame = io.read_table(path)
    expected = pd.DataFrame({"customer_id": pd.Series(["007", "0010", "42"], dtype=object), "value": [1.5, 2.0, 3.0]})
    pd.testing.assert_frame_equal(frame, expected)


def test_read_table_turns_integer_parquet_ids_into_text(tmp_path: Path) -> None:
    pd.DataFrame({"customer_id": [7, 42]}).to_parquet(tmp_path / "ids.parquet")
    assert io.read_table(tmp_path / "ids.parquet")["customer_id"].tolist() == ["7", "42"]


def test_read_table_errors(tmp_path: Path) -> None:
    with pytest.raises(ClvError, match=r"^input file .*nope\.csv not found$"):
        io.read_table(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(ClvError, match=r"^.*empty\.csv is empty \(0 bytes\); expected a CSV with a header line, or a Parquet file$"):
        io.read_table(tmp_path / "empty.csv")
    (tmp_path / "latin.csv").write_bytes("customer_id,x\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(ClvError, match=r"^.*latin\.csv is not UTF-8 text \(line 2 has byte 0xe9, 'é' in Latin-1\); re-save it as UTF-8"):
        io.read_table(tmp_path / "latin.csv")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(ClvError, match=r"^cannot read .*bad\.parquet: "):
        io.read_table(tmp_path / "bad.parquet")


def test_connect_applies_the_memory_limit() -> None:
    """data.memory_limit reaches DuckDB, which spills to disk beyond it (out-of-core summaries)."""
    con = io.connect(memory_limit="256MB")
    limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert limit.replace(" ", "") in {"256.0MB", "244.1MiB", "256MB"}, limit


# --- typed Parquet: the fast path gives the CSV path's rows, counts and messages ---------------

# Each case: rows as (id, date, amount) with typed values; the same rows are written as text to
# a CSV, and both loads must end alike: the same error line, or the same table and report.
_TYPED_CASES = {
    "clean, with a same-day pair and an exact duplicate": [
        ("007", D(1997, 1, 1), 5.5), ("007", D(1997, 1, 1), 5.5), ("007", D(1997, 1, 1), 2.0),
        ("12", D(1997, 2, 1), 0.0), (" 13 ", D(1997, 3, 1), 1.25),
    ],
    "missing id": [("1", D(1997, 1, 1), 1.0), (None, D(1997, 1, 2), 2.0)],
    "blank id": [("1", D(1997, 1, 1), 1.0), ("   ", D(1997, 1, 2), 2.0)],
    "missing date": [("1", D(1997, 1, 1), 1.0), ("2", None, 2.0)],
    "missing amount": [("1", D(1997, 1, 1), 1.0), ("2", D(1997, 1, 2), None)],
    "huge amount": [("1", D(1997, 1, 1), 1.0), ("2", D(1997, 1, 2), 5e9)],
    "refund": [("1", D(1997, 1, 1), 1.0), ("2", D(1997, 1, 2), -3.0)],
    "year 1850": [("1", D(1997, 1, 1), 1.0), ("2", D(1850, 1, 2), 3.0)],
}


def _typed_and_text(tmp_path: Path, rows: list[tuple]) -> tuple[Path, Path]:
    frame = pd.DataFrame(rows, columns=list(HEADER))
    typed = tmp_path / "typed.parquet"
    frame.assign(day=pd.to_datetime(frame["day"]).dt.date).to_parquet(typed)  # DATE and DOUBLE columns
    text = tmp_path / "text.csv"
    frame.to_csv(text, index=False)
    return typed, text


def _outcome(path: Path, **data: object) -> tuple:
    con = io.connect()
    try:
        report = _load(con, path, **data)
        days = con.execute("SELECT customer_id, day, CAST(amount AS DOUBLE), n FROM days ORDER BY ALL").fetchall()
        return ("ok", _rows(con), days, {k: v for k, v in report.as_dict().items() if k not in {"source", "fingerprint"}})
    except ClvError as err:
        return ("error", str(err).replace(str(path), "<source>"))
    finally:
        con.close()


@pytest.mark.parametrize("case", list(_TYPED_CASES))
@pytest.mark.parametrize("negative_amounts", ["error", "exclude"])
def test_typed_parquet_ends_like_the_same_rows_as_text(tmp_path: Path, case: str, negative_amounts: str) -> None:
    typed, text = _typed_and_text(tmp_path, _TYPED_CASES[case])
    got, expected = _outcome(typed, negative_amounts=negative_amounts), _outcome(text, negative_amounts=negative_amounts)
    assert got == expected
    if case.startswith("clean"):
        assert got[3]["duplicate_rows"] == 1 and got[3]["zero_amount_rows"] == 1
        assert got[2][0] == ("007", D(1997, 1, 1), 13.0, 3)  # 5.5 + 5.5 + 2: one purchase of three rows


def test_typed_parquet_transactions_are_a_view_over_the_file(duck, tmp_path: Path) -> None:
    typed, text = _typed_and_text(tmp_path, _TYPED_CASES["clean, with a same-day pair and an exact duplicate"])
    _load(duck, typed)
    assert duck.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'transactions'").fetchone()[0] == 1
    _load(duck, text)  # text is parsed once, into a table (replacing the view)
    assert duck.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'transactions'").fetchone()[0] == 1


def test_typed_parquet_nan_and_infinite_amounts(duck, tmp_path: Path) -> None:
    for value, shown in ((np.nan, "'nan'"), (np.inf, "'inf'")):
        path = tmp_path / "t.parquet"
        # pyarrow keeps a NaN a NaN (pandas would write it as a null: a missing amount)
        pq.write_table(pa.table({"id": ["1", "2"], "day": [D(1997, 1, 1)] * 2, "value": pa.array([1.0, value])}), path)
        with pytest.raises(ClvError) as err:
            _load(duck, path)
        assert str(err.value).startswith("1 of 2 rows have an amount that is not a number in column 'value'")
        assert shown in str(err.value)


def test_typed_parquet_integer_ids_are_text(duck, tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pd.DataFrame({"id": [7, 7, 12], "day": [D(1997, 1, 1), D(1997, 1, 3), D(1997, 1, 2)], "value": [1, 2, 3]}).to_parquet(path)
    report = _load(duck, path)
    assert _rows(duck) == [("12", D(1997, 1, 2), 3.0), ("7", D(1997, 1, 1), 1.0), ("7", D(1997, 1, 3), 2.0)]
    assert report.customers == 2


def test_duplicates_need_every_column_even_on_the_same_day(duck, tmp_path: Path) -> None:
    """Candidates share a customer and a day; a duplicate must also match the time and the rest."""
    path = tmp_path / "t.parquet"
    pd.DataFrame(
        {
            "id": ["1", "1", "1", "1", "2"],
            "day": pd.to_datetime(["1997-01-01 10:00", "1997-01-01 10:00", "1997-01-01 11:00", "1997-01-01 10:00",
                                   "1997-01-02 09:00"]),
            "value": [5.0, 5.0, 5.0, 5.0, 5.0],
            "till": ["a", "a", "a", "b", "a"],
        }
    ).to_parquet(path)
    report = _load(duck, path)
    assert report.duplicate_rows == 1  # only the second 10:00 row at till a
    assert duck.execute("SELECT n, CAST(amount AS DOUBLE) FROM days WHERE customer_id = '1'").fetchall() == [(4, 20.0)]


# --- typed Parquet proven clean by its row-group statistics ---------------------------------------


def test_clean_typed_parquet_counts_come_from_statistics_and_equal_the_scan(tmp_path: Path) -> None:
    rows = [("007", D(1997, 1, 1), 5.5), ("007", D(1997, 1, 1), 5.5), ("12", D(1997, 2, 1), 0.0),
            ("13", D(1997, 3, 1), 1.25), ("14", D(1997, 3, 2), 0.0)]
    typed, text = _typed_and_text(tmp_path, rows)
    pq.write_table(pq.read_table(typed), typed, row_group_size=2)  # several row groups
    con = io.connect()
    con.execute(f"CREATE VIEW raw AS SELECT * FROM read_parquet('{typed}')")
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE raw)").fetchall())
    counted = io._clean_by_metadata(con, DataConfig(source=str(typed), columns=COLS), types, [str(typed)])
    assert counted == {**dict.fromkeys(io._COUNTS, 0), "rows": 5, "zero": 2}
    con.close()
    assert _outcome(typed) == _outcome(text)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("1", D(1997, 1, 1), 1.0), (None, D(1997, 1, 2), 2.0)], "1 of 2 rows have no customer id"),
        ([("1", D(1997, 1, 1), 1.0), ("", D(1997, 1, 2), 2.0)], "1 of 2 rows have no customer id"),
        ([("1", D(1997, 1, 1), 1.0), ("2", D(1997, 1, 2), -2.0)], "1 of 2 rows have a negative amount"),
        ([("1", D(1997, 1, 1), 1.0), ("2", D(1997, 1, 2), 2e9)], "1 of 2 rows have an amount above data.max_amount"),
        ([("1", D(1997, 1, 1), 1.0), ("2", D(1850, 1, 2), 2.0)], "1 of 2 rows have a date outside 1900-2199"),
    ],
)
@pytest.mark.parametrize("statistics", [True, False])
def test_typed_parquet_problems_are_found_with_or_without_statistics(
    duck, tmp_path: Path, rows: list[tuple], message: str, statistics: bool
) -> None:
    path = tmp_path / "t.parquet"
    frame = pd.DataFrame(rows, columns=list(HEADER))
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, write_statistics=statistics)
    with pytest.raises(ClvError, match=message.replace("(", r"\(")):
        _load(duck, path)


def test_a_file_of_a_glob_without_the_amount_column_is_not_proven_clean(duck, tmp_path: Path) -> None:
    pd.DataFrame({"id": ["1"], "day": [D(1997, 1, 1)], "value": [1.0]}).to_parquet(tmp_path / "a.parquet")
    pd.DataFrame({"id": ["2"], "day": [D(1997, 1, 2)]}).to_parquet(tmp_path / "b.parquet")  # union_by_name: null amounts
    with pytest.raises(ClvError, match="1 of 2 rows have no amount"):
        _load(duck, tmp_path / "*.parquet")


def test_nan_amounts_are_found_although_statistics_skip_them(duck, tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": ["1", "2"], "day": [D(1997, 1, 1)] * 2, "value": pa.array([1.0, float("nan")])}), path)
    with pytest.raises(ClvError, match="1 of 2 rows have an amount that is not a number"):
        _load(duck, path)


# --- issue 12: repeated headers, fractional ids, late dates, huge amounts, formula ids ----------


def test_a_repeated_column_is_refused_in_csv_and_parquet(duck, write_csv, tmp_path: Path) -> None:
    path = write_csv([("1", "1997-01-01", "5", "500")], header=("id", "day", "value", "value"))
    with pytest.raises(ClvError, match=r"column 'value' appears twice in the header \(columns 3 and 4\)"):
        _load(duck, path)
    table = pa.table([pa.array(["1"]), pa.array([D(1997, 1, 1)]), pa.array([5.0]), pa.array([500.0])],
                     names=["id", "day", "value", "VALUE"])  # DuckDB does not tell case apart either
    pq.write_table(table, tmp_path / "t.parquet")
    with pytest.raises(ClvError, match=r"column 'VALUE' appears twice in the header \(columns 3 and 4\)"):
        _load(duck, tmp_path / "t.parquet")
    rfm = tmp_path / "rfm.csv"
    rfm.write_text("customer_id,frequency,recency,T,T\n1,0,0,5,6\n", encoding="utf-8")
    with pytest.raises(ClvError, match=r"column 'T' appears twice"):
        io.read_table(rfm)


def test_fractional_ids_are_refused_and_integer_ids_noted(duck, tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": [7, 8, 8], "day": [D(1997, 1, 1), D(1997, 1, 2), D(1997, 2, 1)], "value": [1.0, 2, 3]})
    frame.to_parquet(tmp_path / "int.parquet")
    report = _load(duck, tmp_path / "int.parquet")
    assert report.integer_ids == "BIGINT"
    assert "2 customer ids read from an integer column (BIGINT): leading zeros cannot have been kept" in report.describe()
    frame.assign(id=frame["id"].astype(float)).to_parquet(tmp_path / "float.parquet")
    with pytest.raises(ClvError, match=r"stored as fractional numbers \(DOUBLE\), so 7 would read as '7\.0'"):
        _load(duck, tmp_path / "float.parquet")
    pd.DataFrame({"customer_id": [7.0], "frequency": [0], "recency": [0], "T": [5]}).to_parquet(tmp_path / "r.parquet")
    with pytest.raises(ClvError, match=r"fractional numbers"):
        io.read_table(tmp_path / "r.parquet")


def _log(write_csv, late: str, rows: int = 20):
    return write_csv([(str(i), f"1997-01-{i + 1:02d}", "5") for i in range(rows)] + [("99", late, "5")], header=HEADER)


def test_a_date_far_after_the_rest_is_refused(duck, write_csv) -> None:
    with pytest.raises(ClvError, match=r"^1 of 21 rows are dated after 1999-01-11 \(more than 2 years after the bulk of "
                                       r"the log, whose other rows end by 1997-01-20; e.g. customer 99 on 2150-01-01\)"):
        _load(duck, _log(write_csv, "2150-01-01"))
    assert _load(duck, _log(write_csv, "1998-12-31")).last_date == "1998-12-31"  # within 2 years: a real late buyer


def test_a_future_date_is_refused(duck, write_csv) -> None:
    future = (dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=3)).isoformat()
    recent = [(str(i), (dt.date.today() - dt.timedelta(days=i)).isoformat(), "5") for i in range(20)]
    path = write_csv(recent + [("99", future, "5")], header=HEADER)
    with pytest.raises(ClvError, match=r"^1 of 21 rows are dated after .* \(tomorrow: dates in the future"):
        _load(duck, path)


def test_an_observation_end_lifts_the_late_date_rule(duck, write_csv) -> None:
    path = _log(write_csv, "2150-01-01")
    config = DataConfig(source=str(path), columns=COLS)
    assert io.load_transactions(duck, config, observation_end=D(1997, 12, 31)).last_date == "2150-01-01"


def test_amounts_are_capped_even_without_max_amount(duck, write_csv) -> None:
    path = write_csv([("1", "1997-01-01", "5"), ("1", "1997-02-01", "1e300")], header=HEADER)
    with pytest.raises(ClvError, match=r"^1 of 2 rows have an amount above 1,000,000,000,000,000, the largest clvmodel"):
        _load(duck, path, max_amount=None)
    assert _load(duck, write_csv([("1", "1997-01-01", "1e14")], header=HEADER), max_amount=None).rows_kept == 1


def test_missing_id_markers_are_one_list(duck, write_csv) -> None:
    from clvmodel.checks import MISSING_IDS

    for marker in MISSING_IDS:
        path = write_csv([(marker, "1997-01-01", "5"), ("1", "1997-01-02", "5")], header=HEADER)
        with pytest.raises(ClvError, match=r"have no customer id \(empty, NA, NaN or NULL\)"):
            _load(duck, path)


FORMULA_IDS = ["=1+1", "+7", "-3", "@SUM(A1)", "\tx", "'quoted", "'=x", "007", "plain", "a=b"]


def test_csv_safe_is_reversible_and_only_touches_formula_starts() -> None:
    ids = pd.Series(FORMULA_IDS, dtype=object)
    safe = io.csv_safe(ids)
    assert list(safe) == ["'=1+1", "'+7", "'-3", "'@SUM(A1)", "'\tx", "''quoted", "''=x", "007", "plain", "a=b"]
    assert list(io.csv_unescape(safe)) == FORMULA_IDS
    con = io.connect()
    con.execute("CREATE TABLE t AS SELECT unnest(?::VARCHAR[]) AS c", [FORMULA_IDS])
    assert [r[0] for r in con.execute(f"SELECT {io.csv_safe_sql('c')} FROM t").fetchall()] == list(safe)
    back = con.execute(f"SELECT {io.csv_unescape_sql('s')} FROM (SELECT {io.csv_safe_sql('c')} AS s FROM t)").fetchall()
    assert [r[0] for r in back] == FORMULA_IDS
    con.close()


def test_write_table_neutralises_csv_only(tmp_path: Path) -> None:
    frame = pd.DataFrame({"customer_id": FORMULA_IDS, "channel": ["=HYPERLINK(x)"] * len(FORMULA_IDS),
                          "value": range(len(FORMULA_IDS))})
    io.write_table(frame, tmp_path / "t.csv")
    written = pd.read_csv(tmp_path / "t.csv", dtype=str, keep_default_na=False)
    assert not written["customer_id"].str[:1].isin(["=", "+", "-", "@", "\t"]).any()
    assert set(written["channel"]) == {"'=HYPERLINK(x)"}
    assert list(frame["customer_id"]) == FORMULA_IDS  # the caller's frame is untouched
    assert list(io.read_table(tmp_path / "t.csv")["customer_id"]) == FORMULA_IDS
    io.write_table(frame, tmp_path / "t.parquet")
    assert list(pd.read_parquet(tmp_path / "t.parquet")["customer_id"]) == FORMULA_IDS


def test_read_table_misses_the_ids_transaction_logs_miss_and_no_others(tmp_path: Path) -> None:
    # checks.MISSING_IDS is the one list: "n/a" and "#N/A" are ids in a log, so here too; "NA" is missing in both.
    path = tmp_path / "scores.csv"
    path.write_text("customer_id,predicted_clv\nn/a,1.5\n#N/A,\nNA,2\n007,3\n", encoding="utf-8")
    frame = io.read_table(path)
    assert frame["customer_id"].tolist()[:2] == ["n/a", "#N/A"]
    assert pd.isna(frame["customer_id"].iloc[2]) and frame["customer_id"].iloc[3] == "007"
    assert pd.isna(frame["predicted_clv"].iloc[1]) and frame["predicted_clv"].dtype == float  # pandas' rules elsewhere


# --- typed Parquet: days grouped by the stored id (io._days_by_stored_id) --------------------------


def _days(con) -> list[tuple]:
    return con.execute("SELECT customer_id, day, CAST(amount AS DOUBLE), n, typeof(amount), typeof(n) FROM days "
                       "ORDER BY ALL").fetchall()


def test_typed_parquet_days_by_stored_id_equal_hand_computed(duck, tmp_path: Path) -> None:
    """Stored ids needing no trim: days as computed by hand, customers and duplicates counted."""
    path = tmp_path / "t.parquet"
    pd.DataFrame({
        "id": ["007", "007", "007", "12", "12", "007"],
        "day": [D(1997, 1, 1), D(1997, 1, 1), D(1997, 1, 1), D(1997, 1, 2), D(1997, 1, 2), D(1997, 1, 5)],
        "value": [5.5, 5.5, 0.1, 0.2, 0.7, 3.0],
    }).to_parquet(path)
    report = _load(duck, path)
    dec = "DECIMAL(38,9)"
    assert _days(duck) == [("007", D(1997, 1, 1), 11.1, 3, dec, "BIGINT"), ("007", D(1997, 1, 5), 3.0, 1, dec, "BIGINT"),
                           ("12", D(1997, 1, 2), 0.9, 2, dec, "BIGINT")]  # 0.2 + 0.7 summed as exact decimals
    assert (report.customers, report.duplicate_rows, report.first_date, report.last_date) == (2, 1, "1997-01-01", "1997-01-05")


def test_typed_parquet_stored_ids_that_trim_alike_are_one_customer(duck, tmp_path: Path) -> None:
    """' 7' and '7' on one day: one customer, one purchase of two rows (not a duplicate: the stored ids differ)."""
    path = tmp_path / "t.parquet"
    pd.DataFrame({"id": [" 7", "7", "7 ", "8"], "day": [D(1997, 1, 1)] * 3 + [D(1997, 1, 3)],
                  "value": [2.0, 2.0, 1.0, 4.0]}).to_parquet(path)
    report = _load(duck, path)
    dec = "DECIMAL(38,9)"
    assert _days(duck) == [("7", D(1997, 1, 1), 5.0, 3, dec, "BIGINT"), ("8", D(1997, 1, 3), 4.0, 1, dec, "BIGINT")]
    assert (report.customers, report.duplicate_rows) == (2, 0)
    assert _rows(duck) == [("7", D(1997, 1, 1), 1.0), ("7", D(1997, 1, 1), 2.0), ("7", D(1997, 1, 1), 2.0),
                           ("8", D(1997, 1, 3), 4.0)]


def test_connect_for_applies_the_data_sections_duckdb_settings(tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    data = DataConfig(source="x.csv", memory_limit="512MB", temp_directory=str(spill))
    con = io.connect_for(data)
    try:
        limit, directory = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
    finally:
        con.close()
    assert directory == str(spill)
    assert limit in {"512.0 MB", "488.2 MiB"}  # DuckDB prints the limit in its own unit
    default = io.connect_for(DataConfig(source="x.csv"))
    try:  # unset: DuckDB's own (.tmp in the working directory), not ours
        assert default.execute("SELECT current_setting('temp_directory')").fetchone()[0] == ".tmp"
    finally:
        default.close()


def test_a_temp_directory_that_is_a_file_is_refused_before_the_run(tmp_path: Path) -> None:
    taken = tmp_path / "spill"
    taken.write_text("not a directory\n")
    with pytest.raises(ClvError, match="data.temp_directory .* is not a directory"):
        io.connect_for(DataConfig(source="x.csv", temp_directory=str(taken)))


def test_a_temp_directory_without_its_parent_is_refused_before_the_run(tmp_path: Path) -> None:
    # DuckDB creates only the last level: at its first spill the load said "cannot read <the log>".
    with pytest.raises(ClvError, match="its parent folder .* does not exist"):
        io.connect_for(DataConfig(source="x.csv", temp_directory=str(tmp_path / "no" / "such" / "dir")))
    io.connect_for(DataConfig(source="x.csv", temp_directory=str(tmp_path / "spill"))).close()  # one level: DuckDB's
