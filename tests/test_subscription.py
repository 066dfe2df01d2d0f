"""The sBG configs train like any other: published values, tracking, artifact, scoring."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from clvmodel.artifact import load
from clvmodel.cli import main
from clvmodel.subscription import SCORE_COLUMNS, score_subscribers

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

# Fader & Hardie (2007), "How to project customer retention", fitted on years 0-7 (REFERENCE.md).
PUBLISHED = {
    "subscription_regular": (0.704, 1.182, -1680.27),
    "subscription_high_end": (0.668, 3.806, -1611.16),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_train_reproduces_the_paper_and_tracks_the_run(name, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    model_dir = tmp_path / "model"
    assert main(["train", str(CONFIGS / f"{name}.yaml"), "--set", f"output.model_dir={model_dir}"]) == 0
    out = capsys.readouterr().out
    run_id = out.rsplit("run          ", 1)[1].split()[0]
    metrics = MlflowClient().get_run(run_id).data.metrics
    alpha, beta, ll = PUBLISHED[name]
    assert metrics["sbg.alpha"] == pytest.approx(alpha, abs=5e-4)
    assert metrics["sbg.beta"] == pytest.approx(beta, abs=5e-4)
    assert metrics["sbg.log_likelihood"] == pytest.approx(ll, abs=0.01)
    # Years 8-12 are projected, not fitted: the paper's figure shows the projection tracking the
    # actual counts; our fit is within 2 % (regular) and 4.1 % (high end) of every one of them.
    assert metrics["holdout.sbg.max_abs_pct_error"] < (2.0 if name.endswith("regular") else 4.1)
    artifacts = {a.path for a in MlflowClient().list_artifacts(run_id)}
    assert {"projection.csv", "config.yaml", "plots", "model"} <= artifacts
    assert "years 0-7; later rows are the holdout" in out

    rows = pd.DataFrame({"customer_id": ["a", "b"], "renewals": [0.0, 5.0]})
    served = mlflow.pyfunc.load_model(str(model_dir)).predict(rows)
    pd.testing.assert_frame_equal(served, score_subscribers(load(str(model_dir)), rows))
    assert list(served.columns) == SCORE_COLUMNS
    # A subscriber who has renewed 5 times is more likely to renew again (heterogeneity sorts
    # the cohort), so she is worth more than a new one.
    assert served.loc[1, "retention_rate"] > served.loc[0, "retention_rate"]
    assert served.loc[1, "predicted_clv"] > served.loc[0, "predicted_clv"]


def test_subscriptions_file(tmp_path, capsys):
    """400 subscribers from 2015 simulated with churn probability ~ Beta(1, 3), observed in mid-2025."""
    rng = np.random.default_rng(5)
    theta = rng.beta(1.0, 3.0, 400)
    renewals = rng.geometric(theta) - 1  # renewals before the lapse
    lines = ["customer_id,start,end"]
    for i, k in enumerate(renewals):
        end = f"{2015 + k + 1}-01-01" if 2015 + k + 1 <= 2025 else ""
        lines.append(f"c{i},2015-01-01,{end}")
    data = tmp_path / "subs.csv"
    data.write_text("\n".join(lines) + "\n")
    config = tmp_path / "c.yaml"
    config.write_text(
        "name: subs\nmodels: [sbg]\nsubscriptions: {source: %s, period: year, as_of: 2025-06-30, fee: 10}\n"
        "clv: {discount_rate: 0.1}\ntracking: {enabled: false}\noutput: {model_dir: %s}\n" % (data, tmp_path / "m")
    )
    assert main(["train", str(config)]) == 0
    out = capsys.readouterr().out
    assert "400 customers, years" in out
    alpha = float(out.split("alpha ")[1].split()[0])
    beta = float(out.split("beta ")[1].split()[0])
    assert alpha / (alpha + beta) == pytest.approx(0.25, abs=0.05)  # mean churn probability of Beta(1, 3)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("subscriptions.survivors=[1000, 631, 700, 382, 326, 289, 262, 241, 223]", "survivor counts must not increase"),
        ("models=[sbg, bgnbd]", "sbg is the subscription model: list it alone"),
        ("subscriptions.fitted_periods=13", "fitted_periods 13 must be at most the last period given \\(12\\)"),
        ("subscriptions.source=x.csv", "give exactly one of survivors \\(cohort counts\\) or source"),
    ],
)
def test_bad_subscription_configs(override, message, tmp_path, capsys):
    code = main(["train", str(CONFIGS / "subscription_regular.yaml"), "--no-tracking", "--set", override,
                 "--set", f"output.model_dir={tmp_path / 'm'}"])
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert pytest.importorskip("re").search(message, err), err


def test_end_before_start_is_refused(tmp_path, capsys):
    data = tmp_path / "subs.csv"
    data.write_text("customer_id,start,end\na,2020-01-01,2019-01-01\nb,2020-01-01,\n")
    config = tmp_path / "c.yaml"
    config.write_text(f"name: s\nmodels: [sbg]\nsubscriptions: {{source: {data}}}\ntracking: {{enabled: false}}\n")
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert "end" in err and "start" in err and len(err.strip().splitlines()) == 1
