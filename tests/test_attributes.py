"""The customer table (clvmodel.attributes) and the channel stage of training (clvmodel.acquired)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clvmodel.attributes import attach_customers, read_customers
from clvmodel.cli import main
from clvmodel.config import CustomersConfig, load_config
from clvmodel.errors import ClvError
from clvmodel.train import train

APPAREL = Path(__file__).resolve().parent / "data" / "apparel"
ROOT = Path(__file__).resolve().parents[1]


def _config(path: Path, **extra: object) -> CustomersConfig:
    return CustomersConfig(source=str(path), columns={"customer_id": "Id"}, **extra)


def _table(tmp_path: Path, text: str, name: str = "customers.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_ids_are_text_and_channels_are_labels(tmp_path: Path) -> None:
    path = _table(tmp_path, "Id;Channel;Age\n007;1;30\n8;2;41\n")
    table = read_customers(_config(path, channel="Channel", covariates=["Age"], delimiter=";"))
    assert table["customer_id"].tolist() == ["007", "8"]  # leading zeros kept
    assert table["channel"].tolist() == ["1", "2"]
    assert table["Age"].tolist() == [30, 41]


def test_every_customer_is_accounted_for(tmp_path: Path) -> None:
    path = _table(tmp_path, "Id,Channel\n1,web\n2,shop\n99,web\n")
    config = _config(path, channel="Channel")
    attached = attach_customers(pd.Series(["2", "1", "3"]), read_customers(config), config)
    assert attached.frame["channel"].tolist() == ["shop", "web", "unknown"]  # the summary's order
    assert (attached.report.rows, attached.report.without_row, attached.report.never_bought) == (3, 1, 1)
    assert attached.report.lines()[1:] == [
        "1 customers of the log have no row in the customer table: channel 'unknown'",
        "1 rows of the customer table are not customers of the calibration period (not used)",
    ]


@pytest.mark.parametrize(
    ("text", "extra", "message"),
    [
        ("Id,Channel\n1,web\n1,shop\n", {"channel": "Channel"}, "1 customer ids appear more than once (e.g. '1')"),
        ("Id,Channel\n1,web\n2,\n", {"channel": "Channel"}, "channel 'Channel' is empty for 1 customers"),
        ("Id,Chanel\n1,web\n", {"channel": "Channel"}, "no column 'Channel'"),
        ("Id,Channel\n,web\n2,shop\n", {"channel": "Channel"}, "1 rows have no customer id"),
        ("", {"channel": "Channel"}, "is empty (0 bytes)"),
    ],
)
def test_a_bad_customer_table_is_one_line(tmp_path: Path, text: str, extra: dict, message: str) -> None:
    with pytest.raises(ClvError) as err:
        read_customers(_config(_table(tmp_path, text), **extra))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_with_covariates_every_customer_needs_a_row(tmp_path: Path) -> None:
    path = _table(tmp_path, "Id,Gender\n1,0\n2,1\n")
    config = _config(path, covariates=["Gender"])
    with pytest.raises(ClvError, match="1 of the log's 3 customers have no row \\(e.g. '3'\\)"):
        attach_customers(pd.Series(["1", "2", "3"]), read_customers(config), config)
    with pytest.raises(ClvError, match="none of the log's 2 customer ids is in the table"):
        attach_customers(pd.Series(["5", "6"]), read_customers(_config(path, channel="Gender")), _config(path, channel="Gender"))


def _apparel_first_orders(calibration_end: dt.date) -> pd.DataFrame:
    """Each apparel customer's first purchase day's amount and channel, by hand from the CSVs."""
    log = pd.read_csv(APPAREL / "transactions.csv", dtype={"Id": str})
    days = log.groupby(["Id", "Date"], as_index=False)["Price"].sum()
    first = days.sort_values("Date").groupby("Id").head(1)
    first = first[pd.to_datetime(first["Date"]).dt.date <= calibration_end]
    customers = pd.read_csv(APPAREL / "customers.csv", dtype={"Id": str})
    return first.merge(customers, on="Id", validate="1:1")


def test_training_keeps_each_channels_customers_first_order_and_spend(tmp_path: Path) -> None:
    config = load_config(ROOT / "configs" / "apparel.yaml", [
        f"data.source={APPAREL / 'transactions.csv'}", f"customers.source={APPAREL / 'customers.csv'}",
        "customers.covariates=[]", f"output.model_dir={tmp_path / 'model'}",
    ])
    state = train(config, track=False).model.acquisition
    hand = _apparel_first_orders(dt.date(2006, 12, 31))
    assert state is not None and state.channel == "Channel" and state.purchase_model in ("bgnbd", "pareto_nbd")
    assert sorted(state.channels) == ["0", "1"]
    for label, rows in hand.groupby(hand["Channel"].astype(str)):
        channel = state.channels[label]
        assert channel.customers == len(rows)
        assert channel.first_order_value == pytest.approx(rows["Price"].mean(), rel=1e-12)
        assert channel.spend is not None and channel.repeat_customers >= state.min_repeat_customers
        assert channel.profiles == [({}, 1.0)]
    assert state.channels["0"].customers + state.channels["1"].customers == 600


def test_a_bad_customer_table_stops_training_before_anything_is_written(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = _table(tmp_path, "Id,Gender,Channel\n1,0,0\n1,1,1\n")
    code = main(["train", str(ROOT / "configs" / "apparel.yaml"), "--no-tracking",
                 "--set", f"data.source={APPAREL / 'transactions.csv'}", "--set", f"customers.source={bad}",
                 "--set", f"output.model_dir={tmp_path / 'model'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "customer ids appear more than once" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "model").exists()
    np.testing.assert_equal(bad.read_text(), "Id,Gender,Channel\n1,0,0\n1,1,1\n")  # the input untouched


def test_covariates_are_numbers_only_when_every_value_is_a_plain_number(tmp_path: Path) -> None:
    path = _table(tmp_path, "Id,Region,Score,Flag\n1,01,1.5,0\n2,02,-2e1,1\n3,x,.5,1\n")
    table = read_customers(_config(path, covariates=["Region", "Score", "Flag"]))
    assert table["Region"].tolist() == ["01", "02", "x"]  # codes stay categories, leading zeros kept
    assert table["Score"].tolist() == [1.5, -20.0, 0.5] and table["Flag"].tolist() == [0.0, 1.0, 1.0]
    codes = read_customers(_config(_table(tmp_path, "Id,Region\n1,01\n2,02\n", "codes.csv"), covariates=["Region"]))
    assert codes["Region"].tolist() == ["01", "02"]


def test_a_channels_unidentified_spend_model_gives_way_to_the_pooled_one(apparel) -> None:  # noqa: ANN001
    """Spend that barely varies within customers sends Gamma-Gamma's p to infinity (a warning that
    the data do not identify it): the channel's value then rests on the pooled model, said why."""
    from clvmodel.acquired import _channel_spend

    rng = np.random.default_rng(3)
    n = 80
    rows = pd.DataFrame({"customer_id": [str(i) for i in range(n)], "frequency": rng.integers(1, 6, n).astype(float),
                         "recency": 10.0, "T": 20.0, "monetary_value": 25.0 + rng.normal(0, 1e-6, n)})
    model, why = _channel_spend("gamma_gamma", rows, "week")
    assert model is None and "did not converge" in why
    # Mean spends with no more spread among frequent buyers than among one-purchase ones: the fit
    # stops on the ridge where p grows as v shrinks, and warns that p and v are not identified.
    rows["monetary_value"] = rng.gamma(3.0, 10.0, n)
    model, why = _channel_spend("gamma_gamma", rows, "week")
    assert model is None and "do not identify" in why
    model, why = _channel_spend("gamma_gamma", apparel(dt.date(2006, 12, 31)), "week")
    assert model is not None and model.status_ == "converged" and why == ""


def test_a_tracked_run_logs_the_channel_tables_figure_and_coefficients(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real MLflow sqlite store in a temp dir: the channel tables under channels/, the cohort
    figure, the covariate coefficients and each channel's acquisition value as metrics."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)  # the artifact store of a new sqlite experiment: ./mlruns
    config = load_config(ROOT / "configs" / "apparel.yaml", [
        f"data.source={APPAREL / 'transactions.csv'}", f"customers.source={APPAREL / 'customers.csv'}",
        "models=[pareto_nbd, gamma_gamma]", f"output.model_dir={tmp_path / 'model'}",
    ])
    result = train(config, track=True)
    client = mlflow.tracking.MlflowClient()
    logged = {a.path for a in client.list_artifacts(result.run_id, "channels")}
    assert logged == {"channels/acquisition.csv", "channels/cohort_curves.csv", "channels/holdout_by_channel.csv"}
    assert "plots/cohort_curves.png" in {a.path for a in client.list_artifacts(result.run_id, "plots")}
    metrics = client.get_run(result.run_id).data.metrics
    assert metrics["pareto_nbd_cov.life.Channel"] == pytest.approx(result.model.models["pareto_nbd_cov"].params_["life.Channel"])
    table = result.tables["acquisition.csv"].set_index("channel")
    assert metrics["channel.1.acquisition_value"] == pytest.approx(table.loc["1", "acquisition_value"])
