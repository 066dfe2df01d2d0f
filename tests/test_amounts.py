"""Amounts as exports write them (data.amount_format, clvmodel.amounts): read, counted, or refused in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from clvmodel import amounts, io
from clvmodel.cli import main
from clvmodel.config import DataConfig
from clvmodel.errors import ClvError

US = [
    ("1", "1997-01-01", "$1,554.58"),  # currency, thousands
    ("1", "1997-02-01", "12.50"),  # plain
    ("2", "1997-01-03", "(12.50)"),  # parentheses: a refund
    ("2", "1997-01-05", "USD 2,000"),  # a code, thousands
    ("3", "1997-01-04", "5"),  # plain
    ("3", "1997-03-04", "$7.00"),  # currency
    ("4", "1997-01-04", "1,234,567.5"),  # two thousands separators
    ("4", "1997-03-01", "8.25-"),  # a trailing minus (SAP): a refund
]
EU = [
    ("1", "1997-01-01", "1.554,58 €"),  # thousands, decimal comma, currency
    ("1", "1997-02-01", "-€3,00"),  # sign before the currency, decimal comma: a refund
    ("2", "1997-01-03", "12,50"),  # decimal comma
    ("2", "1997-01-05", "7"),  # plain
    ("3", "1997-01-04", "1.554"),  # plain text, but a thousands separator here: 1554
    ("3", "1997-02-04", "€ 0,99"),  # currency, decimal comma
]


@pytest.fixture
def write_csv(tmp_path):
    """Rows as a CSV file as an export writes it: values holding the delimiter are quoted."""
    import csv

    def write(rows, sep: str = ",", name: str = "tx.csv") -> Path:
        path = tmp_path / name
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter=sep, lineterminator="\n")
            writer.writerow(["customer_id", "date", "amount"])
            writer.writerows(rows)
        return path

    return write


def _load(con, path: Path, **data: object) -> io.LoadReport:
    return io.load_transactions(con, DataConfig(source=str(path), **data))


def _amounts(con) -> list[tuple[str, str, float]]:
    return [(c, str(d), a) for c, d, a in
            con.execute("SELECT customer_id, day, amount FROM transactions ORDER BY ALL").fetchall()]


def test_us_amounts_detected_and_counted(duck, write_csv) -> None:
    report = _load(duck, write_csv(US), negative_amounts="exclude")
    assert _amounts(duck) == [
        ("1", "1997-01-01", 1554.58), ("1", "1997-02-01", 12.5), ("2", "1997-01-05", 2000.0),
        ("3", "1997-01-04", 5.0), ("3", "1997-03-04", 7.0), ("4", "1997-01-04", 1234567.5),
    ]
    assert report.rows_excluded == {"negative_amount": 2}
    assert report.amount_cleaned_rows == 6
    assert report.amounts_cleaned == {"currency_symbol": 3, "thousands_separator": 3, "parentheses": 1,
                                      "trailing_minus": 1}
    assert report.amount_format == "detected decimal mark '.', thousands separator ','"
    assert ("6 amounts cleaned (detected decimal mark '.', thousands separator ',': currency symbol 3, "
            "thousands separator 3, parentheses 1, trailing minus 1)") in report.describe()


def test_european_amounts_detected_and_counted(duck, write_csv) -> None:
    report = _load(duck, write_csv(EU, sep=";"), delimiter=";", negative_amounts="exclude")
    assert _amounts(duck) == [
        ("1", "1997-01-01", 1554.58), ("2", "1997-01-03", 12.5), ("2", "1997-01-05", 7.0),
        ("3", "1997-01-04", 1554.0), ("3", "1997-02-04", 0.99),
    ]
    assert report.rows_excluded == {"negative_amount": 1}
    assert report.amount_cleaned_rows == 5  # all but the plain 7
    assert report.amounts_cleaned == {"currency_symbol": 3, "thousands_separator": 2, "decimal_comma": 4}
    assert report.amount_format == "detected decimal mark ',', thousands separator '.'"


def test_parentheses_and_signs_meet_the_negative_amounts_rule(duck, write_csv) -> None:
    path = write_csv([("1", "1997-01-01", "(12.50)"), ("1", "1997-01-02", "$3.00"), ("2", "1997-01-02", "4")])
    with pytest.raises(ClvError, match=r"^1 of 3 rows have a negative amount \(refunds\? e\.g\. customer 1 on "
                                       r"1997-01-01: \(12\.50\)\); set data\.negative_amounts: exclude"):
        _load(duck, path)


def test_plain_numbers_are_not_counted_as_cleaned(duck, write_csv) -> None:
    report = _load(duck, write_csv([("1", "1997-01-01", "12.50"), ("2", "1997-01-02", " 7 ")]))
    assert (report.amount_cleaned_rows, report.amounts_cleaned, report.amount_format) == (0, {}, None)
    assert "cleaned" not in report.describe()


def test_ambiguous_thousands_or_decimal_comma_asks_for_the_format(duck, write_csv) -> None:
    path = write_csv([("1", "1997-01-01", "1,554"), ("1", "1997-02-01", "7"), ("2", "1997-02-01", "2,500")])
    message = ("amounts in column 'amount' are ambiguous: 2 of 3 rows look like '1,554', a thousands separator or a "
               "decimal comma; set data.amount_format: {decimal_mark: '.'} (1,554 is 1554) or {decimal_mark: ','} "
               "(1,554 is 1.554)")
    with pytest.raises(ClvError) as caught:
        _load(duck, path)
    assert str(caught.value) == message
    _load(duck, path, amount_format={"decimal_mark": "."})
    assert [a for _, _, a in _amounts(duck)] == [1554.0, 7.0, 2500.0]
    report = _load(duck, path, amount_format={"decimal_mark": ","})
    assert [a for _, _, a in _amounts(duck)] == [1.554, 7.0, 2.5]
    assert report.amounts_cleaned == {"decimal_comma": 2} and report.amount_format.startswith("decimal mark ','")


def test_another_value_settles_the_ambiguity(duck, write_csv) -> None:
    path = write_csv([("1", "1997-01-01", "1,554"), ("1", "1997-02-01", "7.25")])  # 7.25: a decimal point
    report = _load(duck, path)
    assert [a for _, _, a in _amounts(duck)] == [1554.0, 7.25]
    assert report.amounts_cleaned == {"thousands_separator": 1}


def test_mixed_formats_refused(duck, write_csv) -> None:
    path = write_csv([("1", "1997-01-01", "1,554.58"), ("1", "1997-02-01", "1.554,58")])
    with pytest.raises(ClvError, match=r"^column 'amount' mixes amount formats: '1,554\.58' and '1\.554,58' cannot be "
                                       r"read with one decimal mark and thousands separator"):
        _load(duck, path)


def test_configured_format_reads_every_row(duck, write_csv) -> None:
    rows = [("1", "1997-01-01", "R$ 1.554,58"), ("1", "1997-02-01", "12,50"), ("2", "1997-02-01", "3")]
    report = _load(duck, write_csv(rows), amount_format={"decimal_mark": ",", "currency_symbols": ["R$"]})
    assert [a for _, _, a in _amounts(duck)] == [1554.58, 12.5, 3.0]
    assert report.amounts_cleaned == {"currency_symbol": 1, "thousands_separator": 1, "decimal_comma": 2}
    assert report.amount_format == "decimal mark ',', thousands separator '.'"
    # A value the configured format does not read stays "not a number": 12.50 under a decimal comma.
    with pytest.raises(ClvError, match=r"^1 of 2 rows have an amount that is not a number .*'12\.50'"):
        _load(duck, write_csv([("1", "1997-01-01", "12.50"), ("1", "1997-02-01", "3,5")]),
              amount_format={"decimal_mark": ","})


def test_swiss_and_french_thousands(duck, write_csv) -> None:
    _load(duck, write_csv([("1", "1997-01-01", "CHF 1'554.50"), ("1", "1997-02-01", "2")]))
    assert [a for _, _, a in _amounts(duck)] == [1554.5, 2.0]
    _load(duck, write_csv([("1", "1997-01-01", "1 554,50 €"), ("1", "1997-02-01", "2")]))
    assert [a for _, _, a in _amounts(duck)] == [1554.5, 2.0]


def test_plain_setting_and_parentheses_off(duck, write_csv) -> None:
    path = write_csv([("1", "1997-01-01", "$5"), ("1", "1997-02-01", "2")])
    with pytest.raises(ClvError, match=r"^1 of 2 rows have an amount that is not a number .*'\$5'"):
        _load(duck, path, amount_format="plain")
    path = write_csv([("1", "1997-01-01", "(5.00)"), ("1", "1997-02-01", "2")])
    with pytest.raises(ClvError, match=r"^1 of 2 rows have an amount that is not a number .*'\(5\.00\)'"):
        _load(duck, path, amount_format={"parentheses_negative": False})


def test_typed_amounts_never_cleaned(duck, tmp_path) -> None:
    path = tmp_path / "tx.parquet"
    pd.DataFrame({"customer_id": ["1", "2"], "date": pd.to_datetime(["1997-01-01", "1997-01-02"]),
                  "amount": [1.5, 2.0]}).to_parquet(path)
    report = _load(duck, path, amount_format={"decimal_mark": ","})
    assert [a for _, _, a in _amounts(duck)] == [1.5, 2.0] and report.amount_cleaned_rows == 0


def test_format_values_reach_sql_quoted(duck, write_csv) -> None:
    symbol = "x'y"
    with pytest.raises(Exception, match="currency symbol"):
        DataConfig(source="x.csv", amount_format={"currency_symbols": [symbol]})
    sql = amounts.parts_sql("t", amounts.Format(",", ".", ("kr",))) + amounts.value_sql("t", "p", amounts.Format(",", "."))
    assert "'kr'" not in sql and "kr" in sql  # inside the quoted pattern only


def test_ambiguous_amounts_on_the_command_line(tmp_path, capsys) -> None:
    source = tmp_path / "tx.csv"
    source.write_text('customer_id,date,amount\n1,1997-01-01,"1,554"\n1,1997-02-01,7\n', encoding="utf-8")
    output = tmp_path / "rfm.csv"
    assert main(["rfm", "--input", str(source), "--output", str(output)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("clvmodel: error: amounts in column 'amount' are ambiguous")
    assert not output.exists()
    assert main(["rfm", "--input", str(source), "--output", str(output), "--decimal-mark", ".",
                 "--time-unit", "day"]) == 0
    assert re.search(r"1 amounts cleaned \(decimal mark '\.', thousands separator ',': thousands separator 1\)",
                     capsys.readouterr().out)
    assert pd.read_csv(output)["monetary_value"].tolist() == [7.0]
