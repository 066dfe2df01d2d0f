"""Inputs as they come from real exports, on the command line (issue 15): rfm --input, score, budget."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from clvmodel.cli import _as_flags, main


def _error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0].removeprefix("clvmodel: error: ")


# --- rfm --input: errors name the options, not config keys ------------------------------------------

@pytest.mark.parametrize(
    ("text", "extra", "message"),
    [
        (None, [], "no file found at '{path}'; check --input (a path, a glob or a folder of Parquet files)"),
        ("", [], "{path} is empty (0 bytes); point --input at the full export"),
        ("customer_id,date,Amount\n1,1997-01-01,5\n", [],
         "column 'amount' not found in {path} (columns: customer_id, date, Amount); set --amount to the column holding "
         "the amount (did you mean 'Amount'?)"),
        ("customer_id;date;amount\n1;1997-01-01;5\n", [],
         "{path} was read as one column 'customer_id;date;amount': its delimiter looks like \";\", not \",\"; "
         "pass --delimiter \";\""),
        ("customer_id,date,amount\n1,01/02/1997,5\n2,01/03/1997,5\n", [],
         "none of the 2 dates in column 'date' parse as ISO dates (e.g. '01/02/1997'); pass --date-format '%m/%d/%Y' "
         "(they also fit '%d/%m/%Y': check which is meant)"),
        ("customer_id,date,amount\n1,1997-01-02,5\n2,1997-01-03,-5\n", [],
         "1 of 2 rows have a negative amount (refunds? e.g. customer 2 on 1997-01-03: -5); pass --set "
         "data.negative_amounts=exclude to drop refund rows (they are counted)"),
        ('customer_id,date,amount\n1,1997-01-02,"1,554"\n', [],
         "amounts in column 'amount' are ambiguous: 1 of 1 rows look like '1,554', a thousands separator or a decimal "
         "comma; pass --decimal-mark '.' (1,554 is 1554) or --decimal-mark ',' (1,554 is 1.554)"),
        ("customer_id,date,amount\n1,1997-01-02,five\n", [],
         "1 of 1 rows have an amount that is not a number in column 'amount' (e.g. 'five'); fix those rows in the "
         "export, or pass --decimal-mark (and --thousands-separator) if they are amounts written another way "
         "(decimal_mark, thousands_separator, currency_symbols)"),
        ("customer_id,date,amount\n1,1997-01-02,5\n", ["--set", "data.amount_format=bogus"],
         "rfm: --set data.amount_format: Input should be 'auto' or 'plain' (got 'bogus'); choose one of those, e.g. "
         "--set data.amount_format=auto"),
    ],
    ids=["missing", "empty", "column", "delimiter", "date_format", "refunds", "ambiguous", "not_a_number", "set"],
)
def test_rfm_input_errors_name_the_options(tmp_path, capsys, text, extra, message) -> None:
    path = tmp_path / "tx.csv"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    output = tmp_path / "rfm.csv"
    assert main(["rfm", "--input", str(path), "--output", str(output), *extra]) == 2
    error = _error(capsys)
    assert error == message.format(path=path)
    assert "data.source" not in error and not output.exists()


def test_rfm_input_takes_the_settings_its_errors_name(tmp_path, capsys) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,date,amount\n1,1997-01-02,5\n1,1997-01-09,7\n2,1997-01-03,-5\n", encoding="utf-8")
    output = tmp_path / "rfm.csv"
    assert main(["rfm", "--input", str(path), "--output", str(output), "--set", "data.negative_amounts=exclude"]) == 0
    assert "excluded: negative_amount 1" in capsys.readouterr().out
    assert main(["rfm", "--input", str(path), "--output", str(output), "--set", "clv.horizon=3"]) == 2
    assert _error(capsys) == "rfm --input takes --set data.KEY=VALUE only (the other settings are options)"


def test_rfm_config_errors_keep_the_config_keys(tmp_path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"name: x\ndata: {{source: {tmp_path / 'none.csv'}}}\n", encoding="utf-8")
    assert main(["rfm", "--config", str(config), "--output", str(tmp_path / "o.csv")]) == 2
    assert _error(capsys).endswith("check data.source (a path, a glob or a folder of Parquet files)")


def test_as_flags_leaves_other_text_alone() -> None:
    assert _as_flags("set the end of observation (observation_end in the config)") == (
        "set the end of observation (observation_end in the config)")
    assert _as_flags("set data.encoding: latin-1 (or utf-16)") == "pass --encoding latin-1 (or utf-16)"
    assert _as_flags("raise data.max_amount (null: no limit)") == "raise --set data.max_amount (null: no limit)"
