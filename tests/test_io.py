"""Tests for clvmodel.io: reading transaction logs into DuckDB, the cleaning rules, table writes.

Everything runs on a real in-memory DuckDB (the ``duck`` fixture) and real files in ``tmp_path``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
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
    with pytest.raises(ClvError, match=rf"^{path} holds no transactions \(empty or header only\); point data\.source"):
        _load(duck, path)


def test_empty_file(duck, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(ClvError, match=r"holds no transactions \(empty or header only\)"):
        _load(duck, path)


def test_empty_file_is_an_error_whatever_the_message(duck, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(ClvError, match=str(path)):
        _load(duck, path)
    with pytest.raises(ClvError, match=rf"cannot read {path}: .*; check that it is UTF-8 CSV"):
        _load(duck, path, delimiter="whitespace")


@pytest.mark.parametrize("missing", ["", "   "])
def test_missing_customer_id(duck, write_csv, missing: str) -> None:
    path = write_csv([(missing, "1997-01-01", "5"), ("1", "1997-01-02", "5"), ("2", "1997-01-03", "5")], header=HEADER)
    with pytest.raises(ClvError, match=r"^1 of 3 rows have no customer id in column 'id'; fix the export or remove"):
        _load(duck, path)


def test_null_customer_id_in_parquet(duck, tmp_path: Path) -> None:
    # pandas writes a missing float id (NaN) and None as Parquet nulls
    pd.DataFrame({"id": [1.0, np.nan, None], "day": [D(1997, 1, 1)] * 3, "value": [1.0] * 3}).to_parquet(
        tmp_path / "t.parquet"
    )
    with pytest.raises(ClvError, match=r"^2 of 3 rows have no customer id in column 'id'"):
        _load(duck, tmp_path / "t.parquet")


def test_nan_customer_id_in_whitespace_file(duck, tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("id day value\nNaN 19970101 5\n1 19970102 5\n", encoding="utf-8")
    with pytest.raises(ClvError, match=r"^1 of 2 rows have no customer id in column 'id'"):
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
        match=r"^2 of 4 rows have a date that does not parse in column 'day' \(e\.g\. '1997-13-45'\); "
        r"set data\.date_format, e\.g\. '%Y%m%d'$",
    ):
        _load(duck, path)


def test_dates_not_matching_the_format(duck, write_csv) -> None:
    path = write_csv([("1", "1997-01-01", "5"), ("2", "19970102", "5")], header=HEADER)
    with pytest.raises(ClvError, match=r"^1 of 2 rows .* \(e\.g\. '1997-01-01'\); data\.date_format is '%Y%m%d'$"):
        _load(duck, path, date_format="%Y%m%d")


def test_missing_date(duck, write_csv) -> None:
    path = write_csv([("1", "", "5"), ("2", "1997-01-02", "5")], header=HEADER)
    with pytest.raises(ClvError, match=r"^1 of 2 rows have a date that does not parse in column 'day' \(e\.g\. an empty value\)"):
        _load(duck, path)


@pytest.mark.parametrize(
    ("written", "example"),
    [("$5", "'[$]5'"), ('"1,234.50"', "'1,234.50'"), ("five", "'five'"), ("", "an empty value"), ("nan", "an empty value"), ("inf", "'inf'")],
)
def test_non_numeric_amount(duck, write_csv, written: str, example: str) -> None:
    path = write_csv([("1", "1997-01-01", written), ("2", "1997-01-02", "5")], header=HEADER)
    with pytest.raises(
        ClvError,
        match=rf"^1 of 2 rows have an amount that is not a number in column 'value' \(e\.g\. {example}\); "
        r"fix the export \(no currency symbols or thousands separators\)$",
    ):
        _load(duck, path)


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
    with pytest.raises(ClvError, match=r"every row was excluded \(\{'negative_amount': 1\}\); nothing is left"):
        _load(duck, path, negative_amounts="exclude")


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


@pytest.mark.parametrize(
    ("name", "content"), [("latin1.csv", "id,day,value\ncaf\xe9,1997-01-01,5\n".encode("latin-1")), ("bad.parquet", b"nope")]
)
def test_unreadable_file(duck, tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ClvError, match=rf"^cannot read {path}: .+; check that it is UTF-8 CSV .* or Parquet$"):
        _load(duck, path)


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
        "rows_kept": 4,
    }

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
    with pytest.raises(ClvError, match=r"^cannot read .*empty\.csv: .+; expected a UTF-8 CSV or a Parquet file$"):
        io.read_table(tmp_path / "empty.csv")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(ClvError, match=r"^cannot read .*bad\.parquet: "):
        io.read_table(tmp_path / "bad.parquet")
