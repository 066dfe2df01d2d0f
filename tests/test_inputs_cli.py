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


# --- score reads what training reads: bundled sets, the model's data config, overrides --------------

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cdnow.yaml"


@pytest.fixture(scope="module")
def cdnow_model(tmp_path_factory) -> Path:
    """A light model on bundled:CDNOW_sample (its data config: date_format %Y%m%d, comma, default names)."""
    from clvmodel.config import load_config
    from clvmodel.train import train

    folder = tmp_path_factory.mktemp("cdnow_inputs")
    train(load_config(CONFIG, [f"output.model_dir={folder / 'model'}", "tracking.enabled=false",
                               "models=[historical, bgnbd, gamma_gamma]", "intervals.draws=0"]))
    return folder / "model"


def _sample_as_export(path: Path) -> Path:
    """The bundled CDNOW sample as an export with other names and a semicolon (same dates, yyyymmdd)."""
    from clvmodel.bundled import dataset_path

    frame = pd.read_csv(dataset_path("CDNOW_sample"), sep=r"\s+", header=None, dtype=str,
                        names=["customer_id", "sample_id", "date", "cds", "amount"])
    frame.rename(columns={"customer_id": "Id", "date": "Date", "amount": "Price"})[["Id", "Date", "Price"]].to_csv(
        path, sep=";", index=False)
    return path


def _scores(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"customer_id": str}).sort_values("customer_id").reset_index(drop=True)


def test_score_bundled_equals_score_of_the_same_file(cdnow_model, tmp_path, capsys) -> None:
    bundled, from_file = tmp_path / "bundled.csv", tmp_path / "file.csv"
    assert main(["score", "--model", str(cdnow_model), "--input", "bundled:CDNOW_sample", "--output", str(bundled),
                 "--as-of", "1998-06-30"]) == 0
    export = _sample_as_export(tmp_path / "export.csv")
    assert main(["score", "--model", str(cdnow_model), "--input", str(export), "--output", str(from_file),
                 "--as-of", "1998-06-30", "--columns", "customer_id=Id,date=Date,amount=Price",
                 "--delimiter", ";"]) == 0
    one, two = _scores(bundled), _scores(from_file)
    assert len(one) == 2357 and one["status"].eq("ok").all()
    pd.testing.assert_frame_equal(one, two)


def test_score_names_the_overrides_when_the_columns_differ(cdnow_model, tmp_path, capsys) -> None:
    export = _sample_as_export(tmp_path / "export.csv")
    capsys.readouterr()
    assert main(["score", "--model", str(cdnow_model), "--input", str(export), "--output", str(tmp_path / "o.csv"),
                 "--delimiter", ";"]) == 2
    assert _error(capsys) == (
        f"{export}: neither an RFM table (customer_id, frequency, recency, T) nor transactions with the model's "
        "columns (customer_id, date, amount); found: Id, Date, Price; rename the columns, pass --columns "
        "customer_id=...,date=...,amount=..., or summarise the transactions with clvmodel rfm")
    assert main(["score", "--model", str(cdnow_model), "--input", str(export), "--output", str(tmp_path / "o.csv"),
                 "--columns", "customer=Id"]) == 2
    assert _error(capsys).startswith("--columns 'customer=Id': expected role=name pairs")
    assert main(["score", "--model", str(cdnow_model), "--input", str(export), "--output", str(tmp_path / "o.csv"),
                 "--delimiter", "ab"]) == 2
    assert _error(capsys).startswith("--delimiter 'ab': use one character")
    assert not (tmp_path / "o.csv").exists()


def test_score_reads_a_log_with_the_models_own_data_config(tmp_path, capsys) -> None:
    """A model trained on a semicolon export with its own names and date format scores that export as it is."""
    from clvmodel.config import load_config
    from clvmodel.train import train

    export = tmp_path / "export.csv"
    frame = pd.read_csv(_sample_as_export(tmp_path / "x.csv"), sep=";", dtype=str)
    frame["Date"] = pd.to_datetime(frame["Date"], format="%Y%m%d").dt.strftime("%d.%m.%Y")
    frame.to_csv(export, sep=";", index=False)
    train(load_config(CONFIG, [f"output.model_dir={tmp_path / 'model'}", "tracking.enabled=false",
                               "models=[historical, bgnbd, gamma_gamma]", "intervals.draws=0",
                               f"data.source={export}", "data.delimiter=;", "data.date_format=%d.%m.%Y",
                               "data.columns.customer_id=Id", "data.columns.date=Date", "data.columns.amount=Price"]))
    out = tmp_path / "scores.csv"
    assert main(["score", "--model", str(tmp_path / "model"), "--input", str(export), "--output", str(out)]) == 0
    assert len(_scores(out)) == 2357


# --- budget --customers takes the table's own column names ---------------------------------------------

def test_budget_customers_with_other_column_names(cdnow_model, tmp_path, capsys) -> None:
    from clvmodel import budget

    scores = tmp_path / "scores.csv"
    assert main(["score", "--model", str(cdnow_model), "--input", "bundled:CDNOW_sample", "--output", str(scores)]) == 0
    ids = pd.read_csv(scores, dtype={"customer_id": str})["customer_id"]
    channels = budget.synthetic_channels(ids)
    plain, renamed = tmp_path / "channels.csv", tmp_path / "kunden.csv"
    channels.to_csv(plain, index=False)
    channels.rename(columns={"customer_id": "Kunde", "channel": "Kanal"}).assign(
        customer_id="not this one").to_csv(renamed, index=False)
    cac = tmp_path / "cac.yaml"
    cac.write_text((Path(__file__).resolve().parent / "data" / "bad" / "cac_valid.yaml").read_text(encoding="utf-8")
                   + "horizon: 39\n", encoding="utf-8")
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    assert main(["budget", "--scores", str(scores), "--cac", str(cac), "--output", str(one), "--customers", str(plain)]) == 0
    assert main(["budget", "--scores", str(scores), "--cac", str(cac), "--output", str(two), "--customers", str(renamed),
                 "--customer-id-column", "Kunde", "--channel-column", "Kanal"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(one), pd.read_csv(two))
    capsys.readouterr()
    assert main(["budget", "--scores", str(scores), "--cac", str(cac), "--output", str(tmp_path / "three.csv"),
                 "--customers", str(renamed), "--customer-id-column", "Kunde"]) == 2
    assert _error(capsys) == (
        f"--customers {renamed} has no column 'channel' (columns: Kunde, Kanal, customer_id); pass --channel-column "
        "with the name of the column holding the channel")


# --- the challenger's derived inner cut, printed in the run ---------------------------------------------

def test_train_prints_the_derived_inner_cut(tmp_path, capsys) -> None:
    import datetime as dt

    rows = []
    for i in range(200):  # two customers arrive a day over 2000's first 100 days; a 2-year holdout
        first = dt.date(2000, 1, 1) + dt.timedelta(days=i // 2)
        rows += [(f"{i:03d}", (first + dt.timedelta(days=k * (20 + i % 7))).isoformat(), 10.0 + i % 13)
                 for k in range(60) if first + dt.timedelta(days=k * (20 + i % 7)) < dt.date(2003, 1, 1)]
    log = tmp_path / "log.csv"
    pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).to_csv(log, index=False)
    config = tmp_path / "long.yaml"
    config.write_text(
        f"name: long\ndata: {{source: {log}}}\ntime_unit: day\ncalibration_end: 2000-12-31\nobservation_end: 2002-12-31\n"
        f"models: [historical, bgnbd, gamma_gamma, challenger]\nintervals: {{draws: 0}}\ntracking: {{enabled: false}}\n"
        f"output: {{model_dir: {tmp_path / 'model'}}}\n", encoding="utf-8")
    assert main(["train", str(config)]) == 0
    out = capsys.readouterr().out
    assert ("    challenger   inner cut 2000-02-19: by calibration end − holdout (1999-01-01) only 0 of 200 customers "
            "had bought, fewer than 100 (50%, at least min_customers); 2000-02-19 is the day by which 100 had, a "
            "316-day training window (predictions scaled to the holdout's 730 days)") in out
    assert "not fitted  challenger" not in out
