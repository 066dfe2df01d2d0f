"""The CLI's own behaviour: one-line errors, --debug, and the budget command end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from clvmodel.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_user_error_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert err == (f"clvmodel: error: config file {tmp_path / 'missing.yaml'} not found; pass the path to a YAML "
                   "config such as configs/cdnow.yaml\n")
    assert main(["--debug", "train", str(tmp_path / "missing.yaml")]) == 2
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_unknown_option_is_a_usage_error(capsys):
    assert main(["score", "--modle", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("clvmodel: error: No such option: --modle")


def test_console_script_exit_code(tmp_path):
    """The installed entry point exits 2 with one line on stderr (no traceback)."""
    done = subprocess.run([str(Path(sys.executable).parent / "clvmodel"), "score", "--model", str(tmp_path / "m"),
                           "--input", str(tmp_path / "i.csv"), "--output", str(tmp_path / "o.csv")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_library_info_lines_only_with_verbose(tmp_path):
    """A tracked train through the installed command: no MLflow INFO line on stderr unless --verbose."""
    def train(*flags: str) -> subprocess.CompletedProcess:
        folder = tmp_path / ("verbose" if flags else "quiet")
        folder.mkdir()
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"}
        env.pop("MLFLOW_LOGGING_LEVEL", None)
        return subprocess.run([str(Path(sys.executable).parent / "clvmodel"), "train", str(REPO / "configs" / "cdnow.yaml"),
                               *flags, "--set", f"output.model_dir={folder / 'model'}", "--set", "models=[bgnbd,gamma_gamma]",
                               "--set", "model=bgnbd"], capture_output=True, text=True, check=False, cwd=folder, env=env)

    quiet = train()
    assert quiet.returncode == 0, quiet.stderr
    assert "run       " in quiet.stdout and "not tracked" not in quiet.stdout  # it did log to the store
    assert " INFO " not in quiet.stderr and "mlflow" not in quiet.stderr, quiet.stderr
    loud = train("--verbose")
    assert loud.returncode == 0, loud.stderr
    assert "INFO mlflow.store.db.utils" in loud.stderr


def test_library_logs_are_restored_after_a_call(monkeypatch):
    """main() in a process (a notebook, the tests) leaves MLflow's logging as it found it."""
    import logging

    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "ERROR")
    logger = logging.getLogger("mlflow")
    before = logger.level
    assert main(["--verbose", "--help"]) == 0
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "ERROR" and logger.level == before


@pytest.fixture(scope="module")
def scored(trained_cdnow, tmp_path_factory):
    """Scores of the CDNOW training customers and their SYNTHETIC channels, as `make demo` writes them."""
    folder = tmp_path_factory.mktemp("budget")
    rfm = folder / "rfm.csv"
    trained_cdnow.result.rfm.summary.to_csv(rfm, index=False)
    scores = folder / "scores.csv"
    assert main(["score", "--model", str(trained_cdnow.model_dir), "--input", str(rfm), "--output", str(scores)]) == 0
    channels = folder / "channels.csv"
    done = subprocess.run([sys.executable, str(REPO / "experiments" / "synthetic_channels.py"), str(scores), str(channels)],
                          capture_output=True, text=True, check=True)
    assert "SYNTHETIC channels for 2,357 customers" in done.stdout
    return scores, channels


def test_budget_end_to_end(trained_cdnow, scored, tmp_path, monkeypatch, capsys):
    scores, channels = scored
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    output = tmp_path / "out" / "budget.csv"
    code = main(["budget", "--scores", str(scores), "--customers", str(channels), "--cac", str(REPO / "configs" / "cac_demo.yaml"),
                 "--model", str(trained_cdnow.model_dir), "--output", str(output)])
    assert code == 0
    out = capsys.readouterr().out
    table = pd.read_csv(output)
    required = {"channel", "customers", "mean_clv", "median_clv", "cac", "ltv_cac", "max_allowable_cac",
                "payback_periods", "verdict", "allocated_spend", "marginal_ltv_cac"}
    assert required <= set(table.columns)
    assert table["customers"].sum() == 2357  # every scored customer is in a channel
    margin, target = 0.3, 3.0  # configs/cac_demo.yaml
    pd.testing.assert_series_equal(table["ltv_cac"], margin * table["mean_clv"] / table["cac"], check_names=False)
    pd.testing.assert_series_equal(table["max_allowable_cac"], margin * table["mean_clv"] / target, check_names=False)
    assert table["allocated_spend"].sum() <= 60000 + 1e-6
    assert (output.with_suffix(".png")).stat().st_size > 0
    assert (output.parent / "budget.segments.csv").is_file()
    assert "LTV:CAC by channel (target 3:1, margin 30% applied)" in out
    run_id = out.rsplit("run ", 1)[1].split()[0]
    artifacts = {a.path for a in MlflowClient().list_artifacts(run_id)}
    assert {"budget.csv", "budget.png", "budget.segments.csv", "budget_report.txt"} <= artifacts


def test_budget_payback_uses_the_model_forecast(trained_cdnow, scored, tmp_path, capsys):
    """With --model, payback comes from each period's forecast, not an even spread of the CLV."""
    scores, channels = scored
    cac = REPO / "configs" / "cac_demo.yaml"
    with_model, spread = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["budget", "--scores", str(scores), "--customers", str(channels), "--cac", str(cac),
                 "--model", str(trained_cdnow.model_dir), "--output", str(with_model)]) == 0
    assert main(["budget", "--scores", str(scores), "--customers", str(channels), "--cac", str(cac),
                 "--output", str(spread)]) == 0
    a, b = pd.read_csv(with_model), pd.read_csv(spread)
    pd.testing.assert_series_equal(a["ltv_cac"], b["ltv_cac"])
    # BG/NBD purchases decline over the horizon (customers drop out), so value comes earlier than
    # an even spread assumes: payback is never later with the model's per-period forecast.
    both = a["payback_periods"].notna() & b["payback_periods"].notna()
    assert (a.loc[both, "payback_periods"] <= b.loc[both, "payback_periods"]).all()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("channels: {search: {cac: 0}}", "channels.search.cac"),
        ("channels: {search: {cac: 5, response: {beta: 1.5}}}", "beta"),
        ("channels: {search: {cac: 5, min_spend: 90000}}\nbudget: 1000", "infeasible"),
    ],
)
def test_budget_bad_cac_config(scored, tmp_path, capsys, edit, message):
    scores, _ = scored
    cac = tmp_path / "cac.yaml"
    # A key given twice is refused (YAML would keep the last silently): the edit's budget replaces the base's.
    base = "target_ratio: 3.0\nmargin: 0.3\n" + ("" if "budget:" in edit else "budget: 10000\n")
    cac.write_text(base + edit + "\n")
    output = tmp_path / "b.csv"
    assert main(["budget", "--scores", str(scores), "--cac", str(cac), "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err
    assert not output.exists()


def test_budget_channel_without_cac_entry(scored, tmp_path, capsys):
    scores, channels = scored
    cac = tmp_path / "cac.yaml"
    cac.write_text("budget: 1000\nchannels: {search: {cac: 5}}\n")
    output = tmp_path / "b.csv"
    assert main(["budget", "--scores", str(scores), "--customers", str(channels), "--cac", str(cac),
                 "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert "affiliate" in err and len(err.strip().splitlines()) == 1
    assert not output.exists()


def test_budget_scores_without_predicted_clv(tmp_path, capsys):
    scores = tmp_path / "s.csv"
    scores.write_text("customer_id,segment\na,low\n")
    cac = tmp_path / "cac.yaml"
    cac.write_text("budget: 1000\nchannels: {search: {cac: 5}}\n")
    assert main(["budget", "--scores", str(scores), "--cac", str(cac), "--output", str(tmp_path / "b.csv")]) == 2
    assert "predicted_clv" in capsys.readouterr().err


# --- issue 12: nothing written for bad numbers, no input overwritten, formula ids round-trip ------


def test_a_nan_discount_rate_writes_nothing(trained_cdnow, scored, tmp_path, capsys):
    rfm = scored[0].parent / "rfm.csv"
    output = tmp_path / "out" / "s.csv"
    code = main(["score", "--model", str(trained_cdnow.model_dir), "--input", str(rfm), "--output", str(output),
                 "--discount-rate", "nan"])
    assert code == 2
    assert capsys.readouterr().err == "clvmodel: error: discount rate must be a finite number, got nan; use e.g. 0.01 per period\n"
    assert not output.parent.exists()  # refused before the model was even read


@pytest.mark.parametrize("link", ["same", "hard", "symbolic", "relative"])
def test_score_and_budget_refuse_an_output_that_is_an_input(trained_cdnow, scored, tmp_path, monkeypatch, capsys, link):
    monkeypatch.chdir(tmp_path)
    scores, channels = scored
    source = tmp_path / "scores.csv"
    source.write_bytes(scores.read_bytes())
    kept = source.read_bytes()
    output = {"same": source, "hard": tmp_path / "hard.csv", "symbolic": tmp_path / "soft.csv",
              "relative": Path("sub/../scores.csv")}[link]
    if link == "hard":
        output.hardlink_to(source)
    elif link == "symbolic":
        output.symlink_to(source)
    elif link == "relative":
        (tmp_path / "sub").mkdir()
    cases = [
        ["score", "--model", str(trained_cdnow.model_dir), "--input", str(source), "--output", str(output)],
        ["budget", "--scores", str(source), "--cac", str(REPO / "configs" / "cac_demo.yaml"), "--output", str(output),
         "--customers", str(channels)],
    ]
    for args in cases:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "is the same file as" in err and "writing it would overwrite the input" in err and err.count("\n") == 1
        assert source.read_bytes() == kept


def test_formula_ids_are_neutralised_in_csv_and_match_again_in_budget(trained_cdnow, tmp_path, capsys):
    from clvmodel import io

    ids = ["=1+1", "+7", "-3", "@SUM(A1)", "'quoted", "007"]
    rfm = tmp_path / "rfm.csv"
    pd.DataFrame({"customer_id": ids, "frequency": [2, 0, 5, 1, 3, 1], "recency": [30.4, 0, 35, 10, 20, 12],
                  "T": [38.9] * 6, "monetary_value": [22.4, 0, 40.5, 12, 30, 15]}).to_csv(rfm, index=False)
    scores = tmp_path / "scores.csv"
    assert main(["score", "--model", str(trained_cdnow.model_dir), "--input", str(rfm), "--output", str(scores)]) == 0
    written = pd.read_csv(scores, dtype={"customer_id": str})["customer_id"]
    assert list(written) == ["'=1+1", "'+7", "'-3", "'@SUM(A1)", "''quoted", "007"]  # no cell starts a formula
    assert list(io.read_table(scores)["customer_id"]) == ids  # clvmodel reads its own CSV back exactly
    # Scored again from its own output: the same ids, escaped once (not twice).
    again = tmp_path / "again.csv"
    assert main(["score", "--model", str(trained_cdnow.model_dir), "--input", str(scores), "--output", str(again)]) == 0
    assert list(pd.read_csv(again, dtype={"customer_id": str})["customer_id"]) == list(written)
    parquet = tmp_path / "scores.parquet"
    assert main(["score", "--model", str(trained_cdnow.model_dir), "--input", str(rfm), "--output", str(parquet)]) == 0
    assert list(pd.read_parquet(parquet)["customer_id"]) == ids  # Parquet keeps the raw ids
    channels = tmp_path / "channels.csv"
    io.write_table(pd.DataFrame({"customer_id": ids, "channel": ["search", "social"] * 3}), channels)
    output = tmp_path / "budget.csv"
    capsys.readouterr()
    assert main(["budget", "--scores", str(scores), "--customers", str(channels), "--cac",
                 str(REPO / "configs" / "cac_demo.yaml"), "--output", str(output)]) == 0
    table = pd.read_csv(output).set_index("channel")
    assert table.loc["search", "customers"] + table.loc["social", "customers"] == 6  # every id matched a channel
    assert "unknown" not in table.index


def test_main_in_a_callers_process_leaves_the_garbage_collector_alone():
    """Only the console script's exit freezes the GC (cli.main's end); main(argv) in a notebook or a test must not."""
    import gc

    before = gc.get_freeze_count()
    assert main(["--help"]) == 0
    assert gc.get_freeze_count() == before


@pytest.mark.parametrize("command", ["train", "rfm"])
def test_duckdb_out_of_memory_is_one_line_and_rfm_applies_the_memory_limit(command, tmp_path, capsys):
    # 1MB is below what DuckDB needs to read CDNOW: the limit must reach the connection (clvmodel rfm
    # ignored it before) and DuckDB's error must be one line, not a traceback.
    config = tmp_path / "small.yaml"
    config.write_text(
        "name: small\n"
        "data:\n"
        "  source: bundled:CDNOW_sample\n"
        "  columns: {customer_id: customer_id, date: date, amount: amount}\n"
        "  date_format: '%Y%m%d'\n"
        "  memory_limit: 1MB\n"
        f"  temp_directory: {tmp_path / 'spill'}\n"
        "time_unit: week\n"
        "models: [bgnbd, gamma_gamma]\n"
        f"output: {{model_dir: {tmp_path / 'model'}}}\n"
    )
    output = tmp_path / "summary.csv"
    args = ["train", str(config), "--no-tracking"] if command == "train" else [
        "rfm", "--config", str(config), "--output", str(output)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("clvmodel: error: DuckDB ran out of memory (") and "data.memory_limit" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not output.exists() and not (tmp_path / "model").exists()


def test_train_applies_the_temp_directory(tmp_path, capsys):
    # The out-of-memory test above cannot tell: a 1MB limit fails whatever the spill folder.
    taken = tmp_path / "spill"
    taken.write_text("a file\n")
    config = tmp_path / "c.yaml"
    config.write_text(
        "name: c\ndata:\n  source: bundled:CDNOW_sample\n  date_format: '%Y%m%d'\n"
        f"  temp_directory: {taken}\nmodels: [bgnbd]\noutput: {{model_dir: {tmp_path / 'model'}}}\n"
    )
    assert main(["train", str(config), "--no-tracking"]) == 2
    assert "data.temp_directory" in capsys.readouterr().err and not (tmp_path / "model").exists()


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), RuntimeError("Query interrupted")],
                         ids=["in Python", "in a DuckDB query"])
def test_ctrl_c_is_aborted_with_130_not_success(interrupt, tmp_path, monkeypatch, capsys):
    # A Ctrl-C during the summary: Python raises KeyboardInterrupt, DuckDB (mid-query) a plain
    # RuntimeError('Query interrupted'). Typer returned the first as code 130, which main read as
    # success (exit 0, no word); the second was a traceback.
    from clvmodel import rfm

    def stopped(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - the replaced function's signature
        raise interrupt

    monkeypatch.setattr(rfm, "summarise", stopped)
    model = tmp_path / "model"
    assert main(["train", str(REPO / "configs" / "cdnow.yaml"), "--no-tracking", "--set", "models=[bgnbd]",
                 "--set", f"output.model_dir={model}"]) == 130
    assert capsys.readouterr().err == "clvmodel: aborted\n"
    assert not model.exists()


def test_a_runtime_error_that_is_not_an_interrupt_is_still_raised(tmp_path, monkeypatch):
    from clvmodel import rfm

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("a bug")

    monkeypatch.setattr(rfm, "summarise", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["train", str(REPO / "configs" / "cdnow.yaml"), "--no-tracking", "--set", "models=[bgnbd]",
              "--set", f"output.model_dir={tmp_path / 'model'}"])
