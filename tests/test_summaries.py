"""Published RFM summaries (``data.format: rfm``): read, mapped, checked, trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clvmodel.config import parse_config
from clvmodel.errors import ClvError
from clvmodel.summaries import read_summary
from clvmodel.train import train


def _config(tmp_path: Path, data: dict, **extra) -> object:
    return parse_config({
        "name": "summary", "data": {"format": "rfm", **data}, "models": ["historical", "bgnbd"],
        "tracking": {"enabled": False}, "output": {"model_dir": str(tmp_path / "model")}, **extra,
    })


def test_the_donations_summary_is_read_weighted_with_numbered_rows(tmp_path: Path) -> None:
    """lifetimes' donations.csv: 22 rows standing for 11,104 donors (Fader, Hardie & Shang 2010)."""
    config = _config(tmp_path, {"source": "bundled:donations", "columns": {"T": "periods"}}, time_unit="year")
    summary, report = read_summary(config.data)
    assert (report.rows_read, report.customers, report.numbered_ids, report.weighted) == (22, 11_104, True, True)
    assert summary["customer_id"].tolist() == [str(i) for i in range(1, 23)]
    assert summary["weights"].sum() == 11_104
    assert summary.loc[0, ["frequency", "recency", "T", "weights"]].tolist() == [0.0, 0.0, 6.0, 3464.0]
    assert "rows numbered 1..n" in report.describe()


def test_columns_are_mapped_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    pd.DataFrame({"Id": ["007", "8"], "x": [1, 0], "tx": [3.0, 0.0], "age": [5.0, 4.0]}).to_csv(path, index=False)
    mapped = {"customer_id": "Id", "frequency": "x", "recency": "tx", "T": "age"}
    summary, report = read_summary(_config(tmp_path, {"source": str(path), "columns": mapped}).data)
    expected = pd.DataFrame({"customer_id": ["007", "8"], "frequency": [1.0, 0.0], "recency": [3.0, 0.0], "T": [5.0, 4.0]})
    pd.testing.assert_frame_equal(summary.reset_index(drop=True), expected, check_dtype=False)
    assert not report.numbered_ids and report.customers == 2
    with pytest.raises(ClvError, match=r"s\.csv: missing summary column\(s\) Age \(data\.columns\.T\); columns: Id, x, tx, age; map them in data\.columns$"):
        read_summary(_config(tmp_path, {"source": str(path), "columns": {**mapped, "T": "Age"}}).data)
    pd.DataFrame({"customer_id": ["1"], "frequency": [1], "recency": [6.0], "T": [5.0]}).to_csv(path, index=False)
    with pytest.raises(ClvError, match="recency"):  # recency > T: validate_rfm's rule
        read_summary(_config(tmp_path, {"source": str(path)}).data)
    pd.DataFrame({"frequency": [1], "recency": [1.0], "T": [5.0], "weights": [0]}).to_csv(path, index=False)
    with pytest.raises(ClvError, match=r"1 of 1 rows have weights that are not positive numbers"):
        read_summary(_config(tmp_path, {"source": str(path)}).data)


def test_weights_count_as_customers_in_the_fit(tmp_path: Path) -> None:
    """A weighted summary fits exactly as the same customers written out one per row (lifetimes'
    CDNOW summary, 2,357 customers in 1,411 distinct rows)."""
    config = _config(tmp_path, {"source": "bundled:cdnow_customers_summary", "columns": {"customer_id": "ID"}})
    rows, _ = read_summary(config.data)
    rows = rows.drop(columns="customer_id").assign(monetary_value=lambda f: 10.0 * (f["frequency"] > 0))
    grouped = rows.value_counts().rename("weights").reset_index()
    assert len(grouped) < len(rows)
    plain, weighted = tmp_path / "plain.csv", tmp_path / "weighted.csv"
    rows.to_csv(plain, index=False)
    grouped.to_csv(weighted, index=False)
    one = train(_config(tmp_path / "a", {"source": str(plain)}))
    other = train(_config(tmp_path / "b", {"source": str(weighted)}))
    for name in ("bgnbd", "historical"):
        a, b = one.model.models[name], other.model.models[name]
        assert a.n_ == b.n_ == 2_357
        for key, value in a.params_.items():
            assert b.params_[key] == pytest.approx(value, rel=1e-9), (name, key)


def test_bgnbd_trains_on_lifetimes_cdnow_summary(tmp_path: Path) -> None:
    """lifetimes' CDNOW summary (2,357 customers, weeks to 2 decimals) gives the published BG/NBD
    estimates, r 0.243, α 4.414, a 0.793, b 2.426 (Fader, Hardie & Lee 2005; REFERENCE.md)."""
    config = _config(tmp_path, {"source": "bundled:cdnow_customers_summary", "columns": {"customer_id": "ID"}},
                     models=["bgnbd"])
    result = train(config)
    params = result.model.models["bgnbd"].params_
    assert [round(params[k], 3) for k in ("r", "alpha", "a", "b")] == [0.243, 4.414, 0.793, 2.426]
    assert result.leaderboard is None and len(result.scores) == 2_357
    assert result.scores["customer_id"].iloc[0] == "1"


def test_a_model_that_fails_is_reported_and_the_run_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One failing model never costs the run: it is on the leaderboard, in the report and in the
    selection with its reason; the others are fitted, saved and scored."""
    from clvmodel.report import render_train
    from clvmodel.errors import ConvergenceFailure
    from clvmodel.models.pareto_nbd import ParetoNBDModel

    def fail(self, columns, weights, **options):
        raise ConvergenceFailure("pareto_nbd: the likelihood is flat here (a test)")

    monkeypatch.setattr(ParetoNBDModel, "_fit_rows", fail)
    config = _config(tmp_path, {"source": "bundled:cdnow_customers_summary", "columns": {"customer_id": "ID"}},
                     models=["bgnbd", "pareto_nbd"])
    result = train(config)
    assert result.failed == {"pareto_nbd": "the likelihood is flat here (a test)"}
    assert result.failed_status == {"pareto_nbd": "not converged"}
    assert list(result.model.models) == ["bgnbd"] and result.model.primary == "bgnbd"
    assert result.model.selection["not_converged"] == result.failed
    board = result.leaderboard
    assert board[["model", "target", "status"]].values.tolist() == [
        ["pareto_nbd", "", "not converged: the likelihood is flat here (a test)"]
    ]
    assert "  not converged  pareto_nbd: the likelihood is flat here (a test)" in render_train(result).splitlines()
    assert (tmp_path / "model" / "model" / "clvmodel.json").is_file() or (tmp_path / "model").is_dir()


def test_the_run_fails_only_when_no_purchase_model_was_fitted(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    pd.DataFrame({"frequency": [0, 0, 0], "recency": [0.0, 0.0, 0.0], "T": [5.0, 6.0, 7.0]}).to_csv(path, index=False)
    config = _config(tmp_path, {"source": str(path)}, models=["historical", "bgnbd", "pareto_nbd"])
    with pytest.raises(ClvError, match=r"^no purchase model could be fitted: bgnbd: none of the 3 customers made a "
                                       r"repeat purchase.*; pareto_nbd: none of the 3"):
        train(config)
    assert not (tmp_path / "model").exists()
