"""Scoring: one row per input customer, RFM and transaction inputs, bad input, atomic output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clvmodel.artifact import load
from clvmodel.cli import main
from clvmodel.errors import ClvError
from clvmodel.models.lifetimes_adapter import dataset_path
from clvmodel.predict import OUTPUT_COLUMNS, score


@pytest.fixture(scope="module")
def cdnow_files(tmp_path_factory, trained_cdnow):
    """The CDNOW sample as a transactions CSV (to 1997-09-30 and beyond) and as an RFM CSV."""
    folder = tmp_path_factory.mktemp("score_inputs")
    raw = pd.read_csv(dataset_path("CDNOW_sample"), sep=r"\s+", header=None, dtype=str,
                      names=["customer_id", "sample_id", "date", "cds", "amount"])
    transactions = folder / "transactions.csv"
    raw[["customer_id", "date", "amount"]].to_csv(transactions, index=False)
    rfm = folder / "rfm.csv"
    trained_cdnow.result.rfm.summary[["customer_id", "frequency", "recency", "T", "monetary_value"]].to_csv(rfm, index=False)
    return transactions, rfm


def _run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_transactions_and_rfm_inputs_give_the_same_scores(trained_cdnow, cdnow_files, tmp_path, capsys):
    transactions, rfm = cdnow_files
    model = str(trained_cdnow.model_dir)
    code, out, err = _run(["score", "--model", model, "--input", str(transactions), "--as-of", "1997-09-30",
                           "--output", str(tmp_path / "a.csv")], capsys)
    assert code == 0, err
    after = int((pd.read_csv(transactions, dtype=str)["date"] > "19970930").sum())  # rows, not purchase days
    assert f"input read as transactions summarised as of 1997-09-30 ({after:,} transactions after that date not used)" in out
    code, out, err = _run(["score", "--model", model, "--input", str(rfm), "--output", str(tmp_path / "b.parquet")], capsys)
    assert code == 0, err
    assert "input read as RFM table" in out and "customers scored 2,357; not scored 0" in out
    a = pd.read_csv(tmp_path / "a.csv", dtype={"customer_id": str})
    b = pd.read_parquet(tmp_path / "b.parquet")
    assert list(a.columns[: len(OUTPUT_COLUMNS)]) == OUTPUT_COLUMNS and len(a) == 2357 and a["customer_id"].is_unique
    # The challenger needs transactions: its columns come with transaction input only, and on the
    # training customers as of the calibration end they equal its holdout forecast from training.
    assert {"challenger_purchases", "challenger_spend"} <= set(a.columns)
    assert not {"challenger_purchases", "challenger_spend"} & set(b.columns)
    board = trained_cdnow.result.leaderboard.set_index(["model", "target"])
    assert a["challenger_purchases"].sum() == pytest.approx(board.loc[("challenger", "purchases"), "total_predicted"])
    assert a["customer_id"].str.len().eq(5).all()  # leading zeros kept: '00004'
    merged = a.merge(b, on="customer_id", suffixes=("_tx", "_rfm"))
    assert len(merged) == 2357
    for column in ("frequency", "recency", "T", "p_alive", "expected_purchases", "predicted_clv", "historical_clv"):
        np.testing.assert_allclose(merged[f"{column}_tx"], merged[f"{column}_rfm"], rtol=1e-12)
    assert (merged["segment_tx"] == merged["segment_rfm"]).all()


def test_customers_first_seen_after_as_of_keep_a_row(trained_cdnow, cdnow_files, tmp_path, capsys):
    transactions, _ = cdnow_files
    code, out, _ = _run(["score", "--model", str(trained_cdnow.model_dir), "--input", str(transactions),
                         "--as-of", "1997-02-01", "--output", str(tmp_path / "s.csv")], capsys)
    assert code == 0
    scores = pd.read_csv(tmp_path / "s.csv", dtype={"customer_id": str})
    assert len(scores) == 2357  # every customer of the file, scored or not
    late = scores[scores["status"] != "ok"]
    assert set(late["status"]) == {"first_purchase_after_as_of"}
    assert late["predicted_clv"].isna().all()
    raw = pd.read_csv(transactions, dtype=str)
    first = raw.groupby("customer_id")["date"].min()
    assert set(late["customer_id"]) == set(first[first > "19970201"].index)
    assert f"not scored {len(late):,} (first_purchase_after_as_of {len(late):,})" in out


def test_summary_lists_segments(trained_cdnow, cdnow_files, tmp_path, capsys):
    _, rfm = cdnow_files
    code, out, _ = _run(["score", "--model", str(trained_cdnow.model_dir), "--input", str(rfm), "--output",
                         str(tmp_path / "s.csv")], capsys)
    scores = pd.read_csv(tmp_path / "s.csv")
    assert f"predicted CLV total {scores['predicted_clv'].sum():,.2f}" in out
    for segment, count in scores["segment"].value_counts().items():
        assert f"{segment:<8} {count:>8,} customers" in out


def test_horizon_changes_only_forecasts(trained_cdnow):
    model = load(str(trained_cdnow.model_dir))
    rfm = trained_cdnow.result.rfm.summary[["customer_id", "frequency", "recency", "T", "monetary_value"]]
    short, long_ = score(model, rfm, horizon=13), score(model, rfm, horizon=52)
    assert (long_["expected_purchases"] >= short["expected_purchases"]).all()
    assert (long_["predicted_clv"] >= short["predicted_clv"]).all()
    discounted = score(model, rfm, horizon=52, discount_rate=0.01)
    assert (discounted["predicted_clv"] <= long_["predicted_clv"]).all()
    np.testing.assert_allclose(score(model, rfm, margin=0.3)["predicted_clv"], 0.3 * score(model, rfm)["predicted_clv"])


def test_rfm_without_monetary_value_uses_population_mean(trained_cdnow):
    model = load(str(trained_cdnow.model_dir))
    rows = pd.DataFrame({"customer_id": ["x"], "frequency": [3], "recency": [20.0], "T": [30.0]})
    out = score(model, rows)
    assert out.loc[0, "expected_order_value"] == pytest.approx(model.spend_model.population_mean)
    assert out.loc[0, "predicted_clv"] == pytest.approx(out.loc[0, "expected_purchases"] * model.spend_model.population_mean)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--horizon", "0", "--horizon must be > 0, got '0'"),
    ("--horizon", "-3", "--horizon '-3' is not a horizon"),
    ("--discount-rate", "-0.1", "discount rate must be >= 0 per period, got -0.1"),
    ("--margin", "1.5", "margin must be in \\(0, 1\\], got 1.5"),
])
def test_bad_options_exit_2_without_output(trained_cdnow, cdnow_files, tmp_path, capsys, option, value, message):
    _, rfm = cdnow_files
    out = tmp_path / "s.csv"
    code, _, err = _run(["score", "--model", str(trained_cdnow.model_dir), "--input", str(rfm), "--output", str(out),
                         option, value], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert pytest.importorskip("re").search(message, err)
    assert not out.exists()


def _score_error(model_dir, input_path, tmp_path, capsys) -> str:
    out = tmp_path / "s.csv"
    code, _, err = _run(["score", "--model", str(model_dir), "--input", str(input_path), "--output", str(out)], capsys)
    assert code == 2, err
    assert not out.exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    return lines[0]


def test_input_with_neither_kind_of_columns(trained_cdnow, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,value\n1,2\n")
    line = _score_error(trained_cdnow.model_dir, bad, tmp_path, capsys)
    assert "neither an RFM table (customer_id, frequency, recency, T) nor transactions" in line


def test_missing_model_dir(tmp_path, cdnow_files, capsys):
    line = _score_error(tmp_path / "nope", cdnow_files[1], tmp_path, capsys)
    assert line == f"clvmodel: error: model {tmp_path / 'nope'} not found; train one with `clvmodel train CONFIG` or pass a model directory"


def _copy_model(trained_cdnow, tmp_path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(trained_cdnow.model_dir, target)
    return target


def test_edited_model_json_is_refused(trained_cdnow, cdnow_files, tmp_path, capsys):
    model_dir = _copy_model(trained_cdnow, tmp_path)
    path = model_dir / "data" / "clvmodel.json"
    document = json.loads(path.read_text())
    document["models"]["bgnbd"]["params"]["r"] = 0.5
    path.write_text(json.dumps(document))
    line = _score_error(model_dir, cdnow_files[1], tmp_path, capsys)
    assert "checksum mismatch, the model JSON was edited or corrupted" in line


def test_model_from_a_future_format_is_refused(trained_cdnow, cdnow_files, tmp_path, capsys):
    model_dir = _copy_model(trained_cdnow, tmp_path)
    path = model_dir / "data" / "clvmodel.json"
    document = json.loads(path.read_text())
    document["format_version"] = 99
    path.write_text(json.dumps(document))
    line = _score_error(model_dir, cdnow_files[1], tmp_path, capsys)
    from clvmodel.artifact import FORMAT_VERSION

    assert f"in model format 99; this clvmodel 0.1.0 reads format {FORMAT_VERSION} at most: upgrade clvmodel" in line


def test_corrupted_model_json_is_refused(trained_cdnow, cdnow_files, tmp_path, capsys):
    model_dir = _copy_model(trained_cdnow, tmp_path)
    (model_dir / "data" / "clvmodel.json").write_text('{"format": "clvmodel/trained-model", "models": ')
    line = _score_error(model_dir, cdnow_files[1], tmp_path, capsys)
    assert "not valid JSON (JSONDecodeError); the model is corrupted, retrain it" in line


def test_failed_write_leaves_no_file(trained_cdnow, cdnow_files, tmp_path, capsys, monkeypatch):
    """Atomic output: the final rename fails (a full disk, say); nothing appears, no temp file stays."""
    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("clvmodel.files.os.replace", refuse)  # the one atomic write renames there
    out = tmp_path / "out" / "s.csv"
    code, _, err = _run(["score", "--model", str(trained_cdnow.model_dir), "--input", str(cdnow_files[1]),
                         "--output", str(out)], capsys)
    assert code == 2
    assert err.strip() == (f"clvmodel: error: cannot write {out}: No space left on device; "
                           "check the folder's permissions and free space")
    assert list(out.parent.iterdir()) == []


def test_bad_row_in_a_later_chunk_leaves_no_file(trained_cdnow, cdnow_files, tmp_path, capsys):
    """Scoring streams in chunks; a bad row after several chunks were scored still writes nothing."""
    rfm = pd.read_csv(cdnow_files[1], dtype={"customer_id": str})
    rfm.loc[2000, "recency"] = rfm.loc[2000, "T"] + 5
    bad = tmp_path / "bad.csv"
    rfm.to_csv(bad, index=False)
    out = tmp_path / "out" / "s.parquet"
    code, _, err = _run(["score", "--model", str(trained_cdnow.model_dir), "--input", str(bad), "--output", str(out),
                         "--chunk-size", "300"], capsys)
    assert code == 2
    assert err.startswith("clvmodel: error: input rows 1,801-2,100: 1 of 300 rows have recency > T")
    assert f"customer '{rfm.loc[2000, 'customer_id']}'" in err
    assert list(out.parent.iterdir()) == []


def test_streamed_scores_equal_one_shot_scores(trained_cdnow, cdnow_files, tmp_path, capsys):
    """Chunked scoring (segments by one sort over the whole file) equals scoring all rows at once."""
    out = tmp_path / "s.parquet"
    code, _, _ = _run(["score", "--model", str(trained_cdnow.model_dir), "--input", str(cdnow_files[1]),
                       "--output", str(out), "--chunk-size", "700"], capsys)
    assert code == 0
    streamed = pd.read_parquet(out)
    rfm = pd.read_csv(cdnow_files[1], dtype={"customer_id": str})
    pd.testing.assert_frame_equal(streamed, score(load(str(trained_cdnow.model_dir)), rfm), check_dtype=False)


def test_score_is_vectorised_over_unique_rows(trained_cdnow):
    """200,000 customers score in one call (no Python loop); the result has one row each."""
    model = load(str(trained_cdnow.model_dir))
    rng = np.random.default_rng(0)
    n = 200_000
    T = rng.uniform(1, 60, n).round(1)
    recency = (T * rng.uniform(0, 1, n)).round(1)
    frequency = rng.poisson(2, n) * (recency > 0)
    rows = pd.DataFrame({"customer_id": np.arange(n).astype(str), "frequency": frequency, "recency": recency, "T": T,
                         "monetary_value": rng.gamma(5, 7, n) * (frequency > 0)})
    out = score(model, rows, horizon=52, interval_draws=0)
    assert len(out) == n and out["customer_id"].tolist() == rows["customer_id"].tolist()
    assert np.isfinite(out[["p_alive", "expected_purchases", "predicted_clv"]].to_numpy()).all()
    assert ((out["p_alive"] >= 0) & (out["p_alive"] <= 1)).all()


def test_score_input_rewritten_while_the_challenger_reads_it(
    trained_cdnow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cdnow_typed: pd.DataFrame
) -> None:
    # A typed Parquet input stays a view; the model's challenger reads it again after the load.
    from clvmodel.errors import ClvError
    from clvmodel.predict import read_input

    model = load(trained_cdnow.model_dir)
    path = tmp_path / "tx.parquet"
    cdnow_typed.to_parquet(path)
    assert len(read_input(model, path).rfm) == 2357  # unchanged file: read as usual
    challenger_predict = type(model.challenger).predict

    def rewrite_then_predict(self, con, **options):  # noqa: ANN001, ANN003, ANN202 - wraps the method
        cdnow_typed.iloc[:-1].to_parquet(path)
        return challenger_predict(self, con, **options)

    monkeypatch.setattr(type(model.challenger), "predict", rewrite_then_predict)
    with pytest.raises(ClvError, match=r"tx\.parquet changed while clvmodel was reading it"):
        read_input(model, path)


def test_names_moved_out_of_predict_are_still_importable_from_it() -> None:
    # customers.py and segments.py were split off predict.py; `from clvmodel.predict import ...`
    # in users' code must keep working, with the same objects.
    from clvmodel import customers, predict, segments

    assert predict.validate_rfm is customers.validate_rfm and predict.RFM_COLUMNS is customers.RFM_COLUMNS
    assert predict.assign_segments is segments.assign_segments and predict.SEGMENTS is segments.SEGMENTS
    assert {"validate_rfm", "assign_segments", "RFM_COLUMNS"} <= set(predict.__all__)


# --- issue 12: options checked where every path meets (CLI, API, REST) ----------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"discount_rate": float("nan")}, r"^discount rate must be a finite number, got nan"),
        ({"discount_rate": float("inf")}, r"^discount rate must be a finite number, got inf"),
        ({"discount_rate": "NaN"}, r"^discount rate must be a finite number, got 'NaN'"),  # JSON-ish text over REST
        ({"margin": float("nan")}, r"^margin must be a finite number, got nan"),
        ({"margin": -float("inf")}, r"^margin must be a finite number"),
        ({"horizon": float("nan")}, r"^horizon must be a finite number"),
        ({"horizon": float("inf")}, r"^horizon must be a finite number"),
        ({"horizon": 10**9}, r"^horizon 1000000000 is more than 100 years; use at most 5,217 weeks"),
        ({"horizon": 5218}, r"^horizon 5218 is more than 100 years"),
        ({"horizon": "abc"}, r"^horizon must be a finite number, got 'abc'"),
    ],
)
def test_score_refuses_options_that_are_not_finite_or_too_long(trained_cdnow, options, message):
    model = load(trained_cdnow.model_dir)
    customers = pd.DataFrame({"customer_id": ["a"], "frequency": [1], "recency": [2.0], "T": [5.0]})
    with pytest.raises(ClvError, match=message):
        score(model, customers, **options)
    assert len(score(model, customers, horizon=5217)) == 1  # the bound itself is fine


def test_check_options_skips_what_is_not_given():
    from clvmodel.predict import _check_options

    _check_options()
    _check_options(39, 0.0, 1.0, time_unit="day")
    with pytest.raises(ClvError, match="at most 36,525 days or 5,217 weeks"):
        _check_options(horizon=40_000)
