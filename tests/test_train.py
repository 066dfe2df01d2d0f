"""End to end: `clvmodel train` on the bundled CDNOW sample, tracked in a temporary MLflow store."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from clvmodel.artifact import load
from clvmodel.cli import main
from clvmodel.config import load_config
from clvmodel.errors import ClvError
from clvmodel.predict import score
from clvmodel.train import align_to_summary, train

REPO = Path(__file__).resolve().parents[1]
CDNOW = REPO / "configs" / "cdnow.yaml"


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_source_rewritten_while_the_challenger_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cdnow_typed: pd.DataFrame, suffix: str
) -> None:
    """Typed Parquet stays a view the challenger reads again: a rewrite before that read stops the
    run with one line. CSV is parsed into a table at load, so the same rewrite changes nothing."""
    import clvmodel.train as train_module
    from clvmodel.io import read_table

    frame = cdnow_typed
    path = tmp_path / f"cdnow{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)  # DATE and DOUBLE columns: typed, so `transactions` is a view
    else:
        frame.to_csv(path, index=False)
    config = load_config(CDNOW, [f"data.source={path}", "data.date_format=null", f"output.model_dir={tmp_path / 'm'}",
                                 "tracking.enabled=false", "models=[bgnbd, gamma_gamma, challenger]", "model=bgnbd"])
    fit_challenger = train_module.fit_challenger

    def rewrite_then_fit(con, config, duration):  # noqa: ANN001, ANN202 - the wrapped function's signature
        frame.iloc[:-1].to_parquet(path) if suffix == ".parquet" else frame.iloc[:-1].to_csv(path, index=False)
        return fit_challenger(con, config, duration)

    monkeypatch.setattr(train_module, "fit_challenger", rewrite_then_fit)
    if suffix == ".parquet":
        with pytest.raises(ClvError, match=r"cdnow\.parquet changed while clvmodel was reading it"):
            train(config)
        assert not (tmp_path / "m").exists()  # no model from mixed data
    else:
        result = train(config)
        assert result.load.rows_read == 6919 and len(read_table(path)) == 6918  # trained on the file as loaded


def test_cli_train_logs_run_and_writes_model(trained_cdnow, capsys):
    """The run holds params, fitted values, holdout metrics, fingerprint, PNGs and the model."""
    client = MlflowClient(tracking_uri=trained_cdnow.tracking_uri)
    run = client.get_run(trained_cdnow.run_id)
    params, metrics = run.data.params, run.data.metrics
    assert params["clv.horizon"] == "39"
    assert params["time_unit"] == "week"
    assert params["fingerprint.rows_read"] == "6919"
    assert params["fingerprint.customers"] == "2357"
    # Fader, Hardie & Lee (2005): r 0.243, alpha 4.414, a 0.793, b 2.426, LL -9582.4.
    assert metrics["bgnbd.r"] == pytest.approx(0.243, abs=5e-4)
    assert metrics["bgnbd.alpha"] == pytest.approx(4.414, abs=5e-4)
    assert metrics["bgnbd.a"] == pytest.approx(0.793, abs=5e-4)
    assert metrics["bgnbd.b"] == pytest.approx(2.426, abs=5e-4)
    assert metrics["bgnbd.log_likelihood"] == pytest.approx(-9582.4, abs=0.05)
    # Fader & Hardie (2013): p 6.25, q 3.74, gamma 15.44.
    assert metrics["gamma_gamma.p"] == pytest.approx(6.25, abs=5e-3)
    assert metrics["gamma_gamma.q"] == pytest.approx(3.74, abs=5e-3)
    assert metrics["gamma_gamma.v"] == pytest.approx(15.44, abs=5e-3)
    assert metrics["bgnbd.r.se"] == pytest.approx(0.012557, rel=1e-3)  # lifetimes quickstart
    se_log = metrics["bgnbd.r.se"] / metrics["bgnbd.r"]
    assert metrics["bgnbd.r.ci95_lower"] == pytest.approx(metrics["bgnbd.r"] * np.exp(-1.959964 * se_log))
    assert metrics["bgnbd.r.ci95_lower"] < metrics["bgnbd.r"] < metrics["bgnbd.r.ci95_upper"]
    # Holdout actuals counted from CDNOW_sample.txt (REFERENCE.md): 1,882 repeat purchases.
    assert metrics["holdout.bgnbd.purchases_total_actual"] == 1882
    assert metrics["holdout.bgnbd.purchases_total_predicted"] == pytest.approx(1653, abs=1)  # R BTYD walkthrough
    for name in ("rmse", "mae", "spearman", "top20_share", "pct_error"):
        assert f"holdout.historical.spend_{name}" in metrics
    artifacts = {a.path for a in client.list_artifacts(trained_cdnow.run_id)}
    assert {"config.yaml", "calibration_table.csv", "leaderboard.csv", "plots", "model"} <= artifacts
    plots = {Path(a.path).name for a in client.list_artifacts(trained_cdnow.run_id, "plots")}
    assert plots == {
        "leaderboard.png",
        "cumulative_repeat_transactions.png",
        "holdout_by_frequency.png",
        "p_alive.png",
        "clv_distribution.png",
    }
    model_files = {Path(a.path).name for a in client.list_artifacts(trained_cdnow.run_id, "model")}
    assert "MLmodel" in model_files


def test_printed_summary(trained_cdnow):
    out = trained_cdnow.stdout
    assert "bgnbd        r 0.2426" in out
    assert "holdout purchases by calibration frequency" in out
    assert "2,457 repeat purchases" in out and "1,882 repeat purchases" in out
    assert f"run       {trained_cdnow.run_id}" in out


def test_model_dir_loads_with_mlflow_and_predicts(trained_cdnow):
    model = mlflow.pyfunc.load_model(str(trained_cdnow.model_dir))
    rows = pd.DataFrame(
        {"customer_id": ["a", "b"], "frequency": [2.0, 0.0], "recency": [30.43, 0.0], "T": [38.86, 38.86],
         "monetary_value": [22.35, 0.0]}
    )
    predicted = model.predict(rows)
    assert list(predicted["customer_id"]) == ["a", "b"]
    for column in ("p_alive", "expected_purchases", "expected_order_value", "predicted_clv", "historical_clv"):
        assert predicted[column].notna().all()
    pd.testing.assert_frame_equal(predicted, score(load(str(trained_cdnow.model_dir)), rows))
    longer = model.predict(rows, params={"horizon": 78})
    assert (longer["expected_purchases"] > predicted["expected_purchases"]).all()
    # With BG/NBD behind predicted_clv, Hardie's BG/NBD spreadsheet: E[Y(39) | x=2, t_x=30.43, T=38.86] = 1.226.
    bgnbd = dataclasses.replace(load(str(trained_cdnow.model_dir)), primary="bgnbd")
    assert score(bgnbd, rows).loc[0, "expected_purchases"] == pytest.approx(1.226, abs=2e-3)


def test_leaderboard_compares_every_model_and_auto_explains_its_choice(trained_cdnow):
    board = trained_cdnow.result.leaderboard.set_index(["model", "target"])
    assert set(board.index.get_level_values(0)) == {"historical", "bgnbd", "pareto_nbd", "mbgnbd", "challenger"}
    # The historical formula (everyone alive, past rate continues) overshoots the holdout by far more.
    assert board.loc[("historical", "purchases"), "pct_error"] > 3 * abs(board.loc[("bgnbd", "purchases"), "pct_error"])
    selection = trained_cdnow.result.model.selection
    spend_mae = {m: board.loc[(m, "spend"), "mae"] for m in ("bgnbd", "pareto_nbd", "mbgnbd")}
    assert selection["chosen"] == min(spend_mae, key=spend_mae.get)
    assert selection["reason"].startswith(f"{selection['chosen']} by holdout spend_mae (lower is better)")
    assert f"predicted_clv from {selection['reason']}" in trained_cdnow.stdout
    client = MlflowClient(tracking_uri=trained_cdnow.tracking_uri)
    children = client.search_runs(
        [client.get_run(trained_cdnow.run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{trained_cdnow.run_id}'",
    )
    assert {c.data.tags["clvmodel.model"] for c in children} == {
        "historical", "bgnbd", "pareto_nbd", "mbgnbd", "gamma_gamma", "challenger"}
    pareto = next(c for c in children if c.data.tags["clvmodel.model"] == "pareto_nbd")
    # Fader, Hardie & Lee (2005), "A note on implementing the Pareto/NBD model in MATLAB": LL -9595.0.
    assert pareto.data.metrics["pareto_nbd.log_likelihood"] == pytest.approx(-9595.0, abs=0.05)
    assert pareto.data.metrics["pareto_nbd.bic"] == pytest.approx(4 * np.log(2357) + 2 * 9594.976, abs=0.01)
    assert "holdout.pareto_nbd.spend_mae" in pareto.data.metrics


def test_no_pickle_in_model_dir(trained_cdnow):
    names = [p.name for p in trained_cdnow.model_dir.rglob("*")]
    assert "challenger.skops" in names  # skops' secure format, loaded against a list of trusted types
    assert not [n for n in names if n.endswith((".pkl", ".pickle", ".joblib", ".dill", ".cloudpickle"))]
    document = json.loads((trained_cdnow.model_dir / "data" / "clvmodel.json").read_text())
    assert set(document["models"]) == {"historical", "bgnbd", "pareto_nbd", "mbgnbd", "gamma_gamma"}
    assert document["checksum"].startswith("sha256:")


def test_scoring_training_customers_reproduces_training_predictions(trained_cdnow):
    """The saved JSON holds the parameters exactly (float repr round trip), so scores are equal."""
    result = trained_cdnow.result
    reloaded = load(str(result.model_dir))
    rfm = result.rfm.summary[["customer_id", "frequency", "recency", "T", "monetary_value"]]
    pd.testing.assert_frame_equal(score(reloaded, rfm, interval_draws=0), result.scores, check_exact=True)


def test_training_is_deterministic(tmp_path):
    config = load_config(CDNOW, [f"output.model_dir={tmp_path / 'm'}", "tracking.enabled=false"])
    first, second = train(config), train(config)
    for name in first.model.models:
        assert first.model.models[name].params_ == second.model.models[name].params_
    pd.testing.assert_frame_equal(first.scores, second.scores, check_exact=True)


def test_without_calibration_end_there_is_no_holdout(tmp_path):
    config = load_config(
        CDNOW,
        ["calibration_end=", "observation_end=1997-09-30", f"output.model_dir={tmp_path / 'm'}", "tracking.enabled=false",
         "models=[historical, bgnbd, pareto_nbd, mbgnbd, gamma_gamma]"],  # the challenger needs a holdout
    )
    result = train(config)
    assert result.leaderboard is None and result.calibration_table is None
    # Same cut as the split run, so the same customers and parameters as the paper's.
    assert result.model.models["bgnbd"].params_["r"] == pytest.approx(0.2426, abs=1e-4)
    # No holdout: auto falls back to the lowest BIC; all three have 4 parameters, so the best LL wins
    # (MBG/NBD -9582.1 < BG/NBD -9582.4 < Pareto/NBD -9595.0 in absolute value).
    assert result.model.selection["rule"] == "lowest BIC (no holdout)"
    assert result.model.primary == "mbgnbd"
    assert "frequency_holdout" not in result.rfm.summary


def test_cdnow_master_keeps_zero_value_rows(tmp_path):
    config = load_config(REPO / "configs" / "cdnow_full.yaml", [f"output.model_dir={tmp_path / 'm'}", "tracking.enabled=false"])
    result = train(config)
    assert result.load.rows_read == 69659
    assert result.load.zero_amount_rows == 80  # counted with awk on CDNOW_master.txt
    assert result.load.customers == 23570
    assert len(result.rfm.summary) == 23570
    assert result.scores["status"].eq("ok").all()
    assert np.isfinite(result.scores["predicted_clv"]).all()


def test_train_rejects_unknown_config_key(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(CDNOW.read_text().replace("time_unit: week", "time_unit: week\ntime_units: day"))
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"clvmodel: error: {config}: unknown config key 'time_units' (did you mean 'time_unit'?); remove it or fix its "
        "spelling; keys at the top level: name, data, subscriptions, customers, time_unit, calibration_end, observation_end, models, "
        "model, selection, clv, intervals, challenger, historical, segments, tracking, output"
    )


def test_gamma_gamma_needs_a_purchase_model(tmp_path, capsys):
    assert main(["train", str(CDNOW), "--set", "models=[historical, gamma_gamma]", "--no-tracking"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"clvmodel: error: {CDNOW}: gamma_gamma forecasts spend per purchase and needs a purchase model; add bgnbd"
    )


def test_no_repeat_customers_is_a_clear_error(tmp_path, capsys):
    data = tmp_path / "t.csv"
    data.write_text("customer_id,date,amount\na,2020-01-01,10\nb,2020-01-05,5\nc,2020-02-01,7\n")
    code = main(
        ["train", str(CDNOW), "--no-tracking", "--set", f"data.source={data}", "--set", "data.date_format=",
         "--set", "calibration_end=", "--set", "observation_end=", "--set", f"output.model_dir={tmp_path / 'm'}",
         "--set", "models=[historical, bgnbd, gamma_gamma]"]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "clvmodel: error: no purchase model could be fitted: bgnbd: none of the 3 customers made a repeat "
        "purchase, so purchase rates and dropout cannot be estimated; use a longer calibration period or more customers"
    ]
    assert not (tmp_path / "m").exists()


def test_fit_models_beside_each_other_equals_one_after_the_other(cdnow_summary: pd.DataFrame) -> None:
    """BG/NBD fits in a second thread; the results and their order are those of a sequential loop."""
    from clvmodel.models.registry import family_class
    from clvmodel.train import fit_models

    config = load_config(CDNOW).model_copy(update={"models": ["mbgnbd", "bgnbd", "gamma_gamma"]})
    fitted = fit_models(config, cdnow_summary)
    assert list(fitted) == ["mbgnbd", "bgnbd", "gamma_gamma"]
    for name, model in fitted.items():
        alone = family_class(name)().fit(cdnow_summary)
        assert model.params_ == alone.params_ and model.standard_errors_ == alone.standard_errors_


def test_the_apparel_40_week_split_trains_every_default_model(tmp_path) -> None:
    """Issue 13: CLVTools' apparel data (tests/data/apparel) with a 40-week calibration (to
    2005-10-09) stopped the run at BG/NBD ("did not converge") and then Pareto/NBD ("non-finite
    likelihood"). Each model now ends with a status: BG/NBD and Pareto/NBD have no finite MLE there
    (their likelihoods rise towards a single dropout probability / rate) and report that limit as
    ``ridge``; MBG/NBD and Gamma-Gamma converge; the run trains, compares and saves them all."""
    data = REPO / "tests" / "data" / "apparel" / "transactions.csv"
    config = load_config(CDNOW, [
        f"data.source={data}", "data.columns.customer_id=Id", "data.columns.date=Date", "data.columns.amount=Price",
        "data.date_format=%Y-%m-%d", "data.delimiter=,", "calibration_end=2005-10-09", "observation_end=2010-12-20",
        "models=[historical, bgnbd, pareto_nbd, mbgnbd, gamma_gamma]", f"output.model_dir={tmp_path / 'apparel'}",
    ])
    result = train(config, track=False)
    assert result.failed == {}
    status = {name: model.status_ for name, model in result.model.models.items()}
    assert status == {"historical": "converged", "bgnbd": "ridge", "pareto_nbd": "ridge", "mbgnbd": "converged",
                      "gamma_gamma": "converged"}
    assert len(result.scores) == 600 and np.isfinite(result.scores["predicted_clv"]).all()
    assert set(result.leaderboard["model"]) == {"historical", "bgnbd", "pareto_nbd", "mbgnbd"}
    assert load(tmp_path / "apparel").primary == result.model.primary


def test_align_to_summary_equals_the_one_to_one_left_merge() -> None:
    summary = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "frequency": [0, 1, 2, 3]})
    frame = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "purchases": [1.0, 2.0, 3.0, 4.0],
                          "spend": [10.0, 20.0, 30.0, 40.0]})

    def merged(other: pd.DataFrame) -> pd.DataFrame:
        return summary[["customer_id"]].merge(other, on="customer_id", how="left", validate="1:1")[["purchases", "spend"]]

    # Same customers, same order: taken by position (from a frame with another index, too).
    pd.testing.assert_frame_equal(align_to_summary(summary, frame.set_axis([7, 8, 9, 10])), merged(frame))
    # Another order, a customer missing, one more: matched by id, the missing one NaN.
    for other in (frame.iloc[[2, 0, 3, 1]], frame.iloc[[0, 1, 3]], pd.concat([frame, frame.iloc[[0]].assign(customer_id="e")])):
        pd.testing.assert_frame_equal(align_to_summary(summary, other), merged(other))
    assert align_to_summary(summary, frame.iloc[[0, 1, 3]])["purchases"].isna().tolist() == [False, False, True, False]
    # A customer twice, in order on both sides: an error, as the merge's 1:1 check, not a position match.
    twice = pd.DataFrame({"customer_id": ["a", "b", "b", "d"]})
    with pytest.raises(pd.errors.MergeError):
        align_to_summary(twice, frame.assign(customer_id=["a", "b", "b", "d"]))


def test_the_challenger_learns_after_the_log_is_closed(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16: DuckDB's tables are the run's peak while the challenger's regressors learn, so the
    connection is closed once the challenger has read the log: by the time its feature matrix is
    built (in the fit and in the holdout forecast), no query runs any more."""
    import duckdb

    import clvmodel.train as train_module
    from clvmodel.models import challenger as challenger_module

    opened: list[duckdb.DuckDBPyConnection] = []
    connect, matrix = train_module.io.connect, challenger_module._matrix

    def recording_connect(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - the wrapped function's signature
        opened.append(connect(*args, **kwargs))
        return opened[-1]

    closed: list[bool] = []

    def matrix_after_close(frame: pd.DataFrame) -> np.ndarray:
        try:
            opened[0].execute("SELECT 1")
        except duckdb.ConnectionException:  # "Connection already closed!"
            closed.append(True)
        else:
            closed.append(False)
        return matrix(frame)

    monkeypatch.setattr(train_module.io, "connect", recording_connect)
    monkeypatch.setattr(challenger_module, "_matrix", matrix_after_close)
    config = load_config(CDNOW, [f"output.model_dir={tmp_path / 'm'}", "tracking.enabled=false",
                                 "models=[bgnbd, gamma_gamma, challenger]", "model=bgnbd"])
    result = train(config)
    assert len(opened) == 1 and closed == [True, True]  # the fit's matrix, then the forecast's
    assert "challenger" in set(result.leaderboard["model"])


@pytest.mark.parametrize("inner_cut", ["1997-06-30", "null"])  # as configured; derived from the first days
def test_the_read_ahead_challenger_equals_the_one_on_the_open_connection(inner_cut: str) -> None:
    """The oracle: fit_challenger on the plain connection (every read when the challenger asks).
    Read ahead, the same queries run earlier on the same connection: the same fit and the same
    holdout forecast; the connection is released once, after the reads; the forecast's features
    are handed over, not kept."""
    from clvmodel import io, rfm
    from clvmodel.models.challenger import DuckDBReader
    from clvmodel.train import _ReadAhead, fit_challenger

    config = load_config(CDNOW, ["tracking.enabled=false", f"challenger.inner_cut={inner_cut}"])
    con = io.connect()
    try:
        io.load_transactions(con, config.data, observation_end=config.observation_end)
        summary = rfm.summarise(con, time_unit="week", calibration_end=config.calibration_end,
                                observation_end=config.observation_end, days="days").summary
        duration = float(summary["duration_holdout"].iloc[0])
        assert duration == 39.0  # 1997-09-30 to 1998-06-30: 273 days
        plain, plain_holdout = fit_challenger(con, config, duration)
        released: list[int] = []
        ahead = _ReadAhead(DuckDBReader(con), cut=config.calibration_end, time_unit="week",
                           release=lambda: released.append(1))
        early, early_holdout = fit_challenger(ahead, config, duration)
    finally:
        con.close()
    assert released == [1] and ahead._features is None  # noqa: SLF001 - the frame was handed over
    assert (early.inner_cut_, early.n_train_, early.inner_cut_rule_) == (plain.inner_cut_, plain.n_train_,
                                                                         plain.inner_cut_rule_)
    assert len(plain_holdout) == 2357
    pd.testing.assert_frame_equal(early_holdout, plain_holdout)


def test_the_temp_directory_is_not_saved_with_the_model(tmp_path):
    spill = tmp_path / "spill"
    config = load_config(CDNOW, [f"output.model_dir={tmp_path / 'm'}", "tracking.enabled=false", "models=[bgnbd]",
                                 "data.memory_limit=2GB", f"data.temp_directory={spill}"])
    assert config.data.temp_directory == str(spill)  # read, and used by the run (tests/test_cli.py)
    result = train(config)
    text = "".join(p.read_text(errors="replace") for p in Path(result.model_dir).rglob("*") if p.is_file())
    # (tmp_path holds this test's name: the key is looked for as JSON and YAML write it)
    assert '"temp_directory"' not in text and "temp_directory:" not in text  # a machine's setting, not the model's
    assert str(spill) not in text
    saved = load(result.model_dir).config["data"]
    assert saved["memory_limit"] == "2GB"  # what DuckDB was given stays on record
