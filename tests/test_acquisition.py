"""The value of a new customer (:mod:`clvmodel.acquisition`): published E[X(t)], a hand computation,
intervals, tenure, covariate profiles, and every path (Python, CLI, REST) with its bad inputs.

References (REFERENCE.md):

[FHL]   Fader, Hardie & Lee (2005), "Counting your customers the easy way", equation (9): E[X(t)]
        of a customer acquired at t = 0.
[BTYD]  R BTYD walkthrough: full-precision CDNOW estimates r 0.2425982, alpha 4.4136842,
        a 0.7929899, b 2.4261667 and E[X(52)] = 1.444004 for a new customer.
[HSS]   Hardie's BG/NBD spreadsheet: E[X(t)] at t = 0.1429, 1, 3, 31.8571, 32, 78.
[GG]    Fader & Hardie (2013), "The Gamma-Gamma model of monetary value": CDNOW p 6.25, q 3.74,
        γ 15.44 and E[M] = p γ / (q − 1).
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

import clvmodel
from clvmodel import acquisition, cli
from clvmodel.artifact import TrainedModel
from clvmodel.clv import forecast
from clvmodel.config import load_config
from clvmodel.errors import ClvError
from clvmodel.models import BetaGeoModel, GammaGammaModel
from clvmodel.models.bgnbd import BetaGeoCovariateModel
from clvmodel.models.pareto_nbd import ParetoNBDCovariateModel
from clvmodel.models.bgnbd_simulate import simulate_summary
from clvmodel.models.channels import AcquisitionState, ChannelState
from clvmodel.models.covariates import Design

CDNOW = {"r": 0.2425982, "alpha": 4.4136842, "a": 0.7929899, "b": 2.4261667}  # [BTYD]
POOLED = {"p": 6.25, "q": 3.74, "v": 15.44}  # [GG]
WEB = {"p": 5.0, "q": 4.0, "v": 20.0}
SEGMENTS = {"vip_share": 0.01, "high_share": 0.2, "medium_share": 0.5, "at_risk_below": 0.5, "lost_below": 0.1}
COLUMNS = {"customer_id": "customer_id", "date": "date", "amount": "amount"}
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cdnow.yaml"
SRC = Path(__file__).resolve().parents[1] / "src"
CLVMODEL = Path(sys.executable).with_name("clvmodel")


def expected_new(r: float, alpha: float, a: float, b: float, t: np.ndarray) -> np.ndarray:
    """[FHL] equation (9), written out here independently of clvmodel."""
    t = np.asarray(t, dtype=float)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def _with_cov(cls, params: dict, scale: float):
    return cls.from_dict({"params": params, "n": 1000,
                          "covariance_log_params": {"params": list(params), "matrix": (np.eye(len(params)) * scale).tolist()}})


def _trained(*, acquisition_state: AcquisitionState | None, spend: bool = True, scale: float = 0.01,
             purchase: object = None) -> TrainedModel:
    models = {"bgnbd": purchase if purchase is not None else _with_cov(BetaGeoModel, CDNOW, scale)}
    if spend:
        models["gamma_gamma"] = _with_cov(GammaGammaModel, POOLED, scale / 10)
    config = load_config(CONFIG, ["tracking.enabled=false", "intervals.draws=300"]).model_dump(mode="json")
    return TrainedModel(name="acq", time_unit="week", models=models, primary="bgnbd",
                        clv={"horizon": 52, "discount_rate": 0.01, "margin": 0.3}, segments=SEGMENTS,
                        columns=COLUMNS, config=config, acquisition=acquisition_state)


def _two_channels(scale: float = 0.01) -> AcquisitionState:
    """store: pooled spend, first order 30; web: its own Gamma-Gamma, first order 25."""
    return AcquisitionState(channel="channel", covariates=[], purchase_model="bgnbd", channels={
        "store": ChannelState(customers=100, repeat_customers=40, first_order_value=30.0, spend=None, profiles=[({}, 1.0)]),
        "web": ChannelState(customers=200, repeat_customers=80, first_order_value=25.0,
                            spend=_with_cov(GammaGammaModel, WEB, scale / 10), profiles=[({}, 1.0)]),
    })


# --- published values ---------------------------------------------------------------------------


def test_new_customer_purchases_equal_the_published_cdnow_values() -> None:
    trained = _trained(acquisition_state=None)
    # [BTYD] walkthrough: bgnbd.Expectation(params, t = 52) = 1.444004.
    assert acquisition.new_customer_purchases(trained, None, np.array([52.0]))[0] == pytest.approx(1.444004, abs=1e-6)
    table = acquisition.acquisition_table(trained, horizon=52, discount_rate=0.0, margin=1.0, draws=0)
    assert table["expected_repeat_purchases"].iloc[0] == pytest.approx(1.444004, abs=1e-6)
    # [HSS]: 0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576 (the spreadsheet's truncated 2F1 series
    # shows in the 4th decimal at t = 78; see tests/models/test_bgnbd.py).
    t = np.array([0.1429, 1, 3, 31.8571, 32, 78])
    got = acquisition.new_customer_purchases(trained, None, t)
    published = np.array([0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576])
    assert (np.abs(got - published) <= [5e-5] * 5 + [5e-4]).all(), got


# --- the value, by hand -------------------------------------------------------------------------


def test_acquisition_value_equals_a_hand_computation_with_own_and_pooled_spend() -> None:
    trained = _trained(acquisition_state=_two_channels())
    horizon, rate, margin = 52, 0.01, 0.3
    table = acquisition.acquisition_table(trained, horizon=horizon, discount_rate=rate, margin=margin, draws=0)
    k = np.arange(0, horizon + 1, dtype=float)
    steps = np.diff(expected_new(*CDNOW.values(), k))  # E[X(k)] - E[X(k-1)], k = 1..H
    discounted = float(np.sum(steps / (1 + rate) ** k[1:]))
    mean_pooled = POOLED["p"] * POOLED["v"] / (POOLED["q"] - 1)  # [GG]: 35.219
    mean_web = WEB["p"] * WEB["v"] / (WEB["q"] - 1)
    expected = {"store": margin * (30.0 + discounted * mean_pooled), "web": margin * (25.0 + discounted * mean_web)}
    rows = table.set_index("channel")
    assert list(rows.index) == ["store", "web"]
    for channel, value in expected.items():
        assert rows.at[channel, "acquisition_value"] == pytest.approx(value, rel=1e-12)
        assert rows.at[channel, "expected_repeat_purchases"] == pytest.approx(float(steps.sum()), rel=1e-12)
        assert rows.at[channel, "first_order_basis"] == "observed"
    assert rows.at["store", "expected_order_value"] == pytest.approx(mean_pooled, rel=1e-15)
    assert (rows.at["store", "spend_basis"], rows.at["web", "spend_basis"]) == ("pooled", "channel")
    # Payback: the first order at period 0, undiscounted; the periods add up to the value.
    periods = acquisition.period_values(trained, "web", horizon, rate, margin)
    assert periods.shape == (horizon + 1,) and periods[0] == margin * 25.0
    assert periods[1] == pytest.approx(margin * steps[0] * mean_web / (1 + rate), rel=1e-12)
    assert periods.sum() == pytest.approx(expected["web"], rel=1e-12)
    pooled = margin * ((100 * 30.0 + 200 * 25.0) / 300 + discounted * mean_pooled)  # every channel's customers
    assert acquisition.period_values(trained, None, horizon, rate, margin).sum() == pytest.approx(pooled, rel=1e-12)
    with pytest.raises(ClvError, match="^unknown channel 'tv'; the model's channels are store, web$"):
        acquisition.period_values(trained, "tv")
    # The model's own settings are the defaults (52 weeks, 1 %, margin 0.3).
    assert acquisition.acquisition_table(trained, draws=0)["acquisition_value"].tolist() == table["acquisition_value"].tolist()


def test_a_profile_table_values_each_row_and_a_row_without_channel_is_pooled() -> None:
    trained = _trained(acquisition_state=_two_channels())
    channels = acquisition.acquisition_table(trained, draws=50).set_index("channel")
    rows = acquisition.acquisition_table(trained, pd.DataFrame({"customer_id": ["n1", "n2", "n3"],
                                                                "channel": ["web", None, "store"]}), draws=50)
    assert rows["customer_id"].tolist() == ["n1", "n2", "n3"] and rows["channel"].tolist() == ["web", "all", "store"]
    for i, channel in ((0, "web"), (2, "store")):  # the same draws whichever rows are valued
        for column in ("acquisition_value", "acquisition_value_lower", "acquisition_value_upper"):
            assert rows.at[i, column] == channels.at[channel, column]
    pooled = rows.iloc[1]
    assert pooled["first_order_value"] == pytest.approx((100 * 30.0 + 200 * 25.0) / 300, rel=1e-15)
    assert pooled["spend_basis"] == "pooled" and pooled["customers"] == 300


# --- intervals ----------------------------------------------------------------------------------


def test_intervals_contain_the_point_and_shrink_with_the_covariance() -> None:
    widths = []
    for scale in (0.01, 0.0001):
        trained = _trained(acquisition_state=_two_channels(scale), scale=scale)
        table = acquisition.acquisition_table(trained, level=0.9, draws=2000, seed=3)
        for name in ("acquisition_value", "expected_repeat_purchases"):
            assert (table[f"{name}_lower"] < table[name]).all() and (table[name] < table[f"{name}_upper"]).all(), table
        widths.append((table["acquisition_value_upper"] - table["acquisition_value_lower"]).to_numpy())
    # Standard deviations 10x smaller: intervals about 10x narrower (the map is smooth at this scale).
    np.testing.assert_allclose(widths[1] / widths[0], 0.1, rtol=0.15)
    # The spend models' uncertainty counts too: purchases all but known, spend not.
    state = _two_channels(scale=0.01)
    trained = _trained(acquisition_state=state, scale=1e-10)
    trained.models["gamma_gamma"] = _with_cov(GammaGammaModel, POOLED, 0.001)
    table = acquisition.acquisition_table(trained, draws=1000).set_index("channel")
    width = (table["acquisition_value_upper"] - table["acquisition_value_lower"]) / table["acquisition_value"]
    assert (width > 0.01).all() and (table["expected_repeat_purchases_upper"]
                                     - table["expected_repeat_purchases_lower"] < 1e-4).all(), table
    again = acquisition.acquisition_table(_trained(acquisition_state=_two_channels()), level=0.9, draws=300, seed=3)
    assert again.equals(acquisition.acquisition_table(_trained(acquisition_state=_two_channels()), level=0.9, draws=300,
                                                      seed=3))


# --- tenure -------------------------------------------------------------------------------------


def test_tenure_does_not_leak_into_channel_value() -> None:
    """Two channels of identical customers, one acquired 150 weeks ago and one 5 weeks ago.

    The old rule (mean remaining CLV of the channel's existing customers) rates them far apart;
    the acquisition value, which starts every customer at t = 0, rates them the same. (The
    channel states are built by hand here: identical profiles, first orders and pooled spend.)
    """
    rng = np.random.default_rng(5)
    old = simulate_summary(rng, CDNOW, np.full(2000, 150.0)).assign(monetary_value=0.0)
    new = simulate_summary(rng, CDNOW, np.full(2000, 5.0)).assign(monetary_value=0.0)
    model = BetaGeoModel.from_dict({"params": CDNOW})
    spend = GammaGammaModel.from_dict({"params": POOLED})
    remaining = [forecast(model, spend, cohort, horizon=52)["predicted_clv"].mean() for cohort in (old, new)]
    assert remaining[1] > 1.5 * remaining[0]  # the old rule: tenure, not channel quality
    state = AcquisitionState(channel="channel", covariates=[], purchase_model="bgnbd", channels={
        "old": ChannelState(customers=len(old), repeat_customers=int((old["frequency"] > 0).sum()),
                            first_order_value=30.0, spend=None, profiles=[({}, 1.0)]),
        "recent": ChannelState(customers=len(new), repeat_customers=int((new["frequency"] > 0).sum()),
                               first_order_value=30.0, spend=None, profiles=[({}, 1.0)]),
    })
    table = acquisition.acquisition_table(_trained(acquisition_state=state), draws=100)
    assert table["acquisition_value"].iloc[0] == table["acquisition_value"].iloc[1]
    assert table["acquisition_value_lower"].iloc[0] == table["acquisition_value_lower"].iloc[1]


# --- without amounts, without a customer table --------------------------------------------------


def test_without_amounts_the_value_is_unknown_and_the_purchases_are_given() -> None:
    state = AcquisitionState(channel="channel", covariates=[], purchase_model="bgnbd", channels={
        "web": ChannelState(customers=10, repeat_customers=4, first_order_value=None, spend=None, profiles=[({}, 1.0)])})
    table = acquisition.acquisition_table(_trained(acquisition_state=state, spend=False), draws=50)
    row = table.iloc[0]
    assert math.isnan(row["acquisition_value"]) and math.isnan(row["acquisition_value_lower"])
    assert math.isnan(row["first_order_value"]) and math.isnan(row["expected_order_value"])
    assert row["expected_repeat_purchases"] == pytest.approx(float(expected_new(*CDNOW.values(), 52.0)), rel=1e-12)
    assert row["expected_repeat_purchases_lower"] < row["expected_repeat_purchases"]
    assert (row["first_order_basis"], row["spend_basis"]) == ("unknown", "none")


def test_a_model_without_customer_table_values_one_pooled_customer_first_order_at_the_mean_spend() -> None:
    trained = _trained(acquisition_state=None)
    table = acquisition.acquisition_table(trained, draws=0)
    assert table["channel"].tolist() == ["all"]
    row = table.iloc[0]
    mean = POOLED["p"] * POOLED["v"] / (POOLED["q"] - 1)
    assert row["first_order_value"] == row["expected_order_value"] == pytest.approx(mean, rel=1e-15)
    assert row["first_order_basis"] == "mean_spend"
    assert acquisition.period_values(trained).sum() == pytest.approx(row["acquisition_value"], rel=1e-12)


# --- covariate profiles -------------------------------------------------------------------------


GAMMAS = {"life.Gender_M": -0.4, "life.Channel_web": 0.3, "trans.Gender_M": 0.2, "trans.Channel_web": -0.5}


def _design() -> Design:
    design = Design.fit(pd.DataFrame({"Gender": ["F", "M", "F"], "Channel": ["store", "web", "web"]}),
                        ["Gender", "Channel"], "customers")
    assert design.columns == ["Gender_M", "Channel_web"]
    return design


def _at(z: list[float]) -> dict[str, float]:
    """BG/NBD parameters at profile z by the links of Fader & Hardie (2007) as CLVTools 0.12 writes
    them: α_i = α·exp(−γ_transᵀz), a_i = a·exp(γ_lifeᵀz), b_i = b·exp(γ_lifeᵀz)."""
    life = GAMMAS["life.Gender_M"] * z[0] + GAMMAS["life.Channel_web"] * z[1]
    trans = GAMMAS["trans.Gender_M"] * z[0] + GAMMAS["trans.Channel_web"] * z[1]
    return {"r": CDNOW["r"], "alpha": CDNOW["alpha"] * math.exp(-trans), "a": CDNOW["a"] * math.exp(life),
            "b": CDNOW["b"] * math.exp(life)}


def _covariate_model(scale: float = 0.01) -> TrainedModel:
    params = {**CDNOW, **GAMMAS}
    model = BetaGeoCovariateModel.from_dict(
        {"params": params, "covariance_log_params": {"params": list(params), "matrix": (np.eye(8) * scale).tolist()},
         "design": _design().to_dict()})
    state = AcquisitionState(channel="Channel", covariates=["Gender", "Channel"], purchase_model="bgnbd_cov", channels={
        "store": ChannelState(100, 40, 30.0, None, [({"Gender": "F", "Channel": "store"}, 0.75),
                                                     ({"Gender": "M", "Channel": "store"}, 0.25)]),
        "web": ChannelState(200, 80, 25.0, _with_cov(GammaGammaModel, WEB, 0.001),
                            [({"Gender": "M", "Channel": "web"}, 0.4), ({"Gender": "F", "Channel": "web"}, 0.6)]),
    })
    trained = _trained(acquisition_state=state)
    trained.models["bgnbd_cov"] = model
    return trained


def test_a_channel_is_valued_over_its_covariate_mix() -> None:
    trained = _covariate_model()
    horizon, rate, margin = 52, 0.01, 0.3
    table = acquisition.acquisition_table(trained, draws=0).set_index("channel")
    weights = (1 + rate) ** -np.arange(1, horizon + 1, dtype=float)

    def discounted(z: list[float]) -> float:
        return float(np.diff(expected_new(*_at(z).values(), np.arange(horizon + 1.0))) @ weights)

    mean_pooled = POOLED["p"] * POOLED["v"] / (POOLED["q"] - 1)
    mean_web = WEB["p"] * WEB["v"] / (WEB["q"] - 1)
    store = margin * (30.0 + mean_pooled * (0.75 * discounted([0, 0]) + 0.25 * discounted([1, 0])))
    web = margin * (25.0 + mean_web * (0.4 * discounted([1, 1]) + 0.6 * discounted([0, 1])))
    assert table.at["store", "acquisition_value"] == pytest.approx(store, rel=1e-12)
    assert table.at["web", "acquisition_value"] == pytest.approx(web, rel=1e-12)
    assert table.at["store", "acquisition_value"] != table.at["web", "acquisition_value"]
    # A covariate shown only where the channel's customers share it; empty: the observed mix.
    assert table.at["web", "Channel"] == "web" and table.at["web", "Gender"] is None
    assert acquisition.period_values(trained, "store").sum() == pytest.approx(store, rel=1e-12)
    # One profile: its own E[X(t)], the channel's spend; the channel covariate filled from the channel.
    one = acquisition.acquisition_table(trained, pd.DataFrame({"channel": ["web"], "Gender": ["M"]}), draws=0)
    assert one["acquisition_value"].iloc[0] == pytest.approx(margin * (25.0 + mean_web * discounted([1, 1])), rel=1e-12)
    got = acquisition.new_customer_purchases(trained, {"Gender": "M", "Channel": "web"}, np.array([52.0]))
    assert got[0] == pytest.approx(float(expected_new(*_at([1, 1]).values(), 52.0)), rel=1e-12)


def test_pareto_nbd_covariate_profile_equals_its_closed_form() -> None:
    """Pareto/NBD E[X(t)] = r β / (α (s − 1)) · [1 − (β / (β + t))^(s − 1)] (Fader, Hardie & Lee 2005,
    "A note on implementing the Pareto/NBD model in MATLAB") at α_i = α·exp(−γ_transᵀz),
    β_i = β·exp(−γ_lifeᵀz)."""
    base = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    params = {**base, **GAMMAS}
    model = ParetoNBDCovariateModel.from_dict({"params": params, "design": _design().to_dict()})
    trained = _covariate_model()
    trained.models["pareto_nbd_cov"] = model
    trained.acquisition.purchase_model = "pareto_nbd_cov"
    t = np.array([13.0, 52.0])
    alpha = base["alpha"] * math.exp(-(GAMMAS["trans.Gender_M"] + GAMMAS["trans.Channel_web"]))
    beta = base["beta"] * math.exp(-(GAMMAS["life.Gender_M"] + GAMMAS["life.Channel_web"]))
    r, s = base["r"], base["s"]
    expected = r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))
    got = acquisition.new_customer_purchases(trained, {"Gender": "M", "Channel": "web"}, t)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_covariate_draws_keep_the_sign_of_the_coefficients() -> None:
    """γ are drawn on their own scale (a negative one stays negative), base parameters on the log scale."""
    trained = _covariate_model(scale=1e-4)
    draws = acquisition._draws(trained.models["bgnbd_cov"], 500, 0)
    gammas = np.array([d["life.Gender_M"] for d in draws])
    assert np.all(gammas < 0) and abs(gammas.mean() + 0.4) < 0.002
    table = acquisition.acquisition_table(trained, draws=500)
    assert ((table["acquisition_value_lower"] < table["acquisition_value"])
            & (table["acquisition_value"] < table["acquisition_value_upper"])).all()


@pytest.mark.parametrize(("profiles", "message"), [
    (pd.DataFrame({"channel": ["web"], "Sex": ["M"]}), "profiles: no column 'Gender'; the model's covariates are Gender, Channel"),
    (pd.DataFrame({"channel": ["web"], "Gender": ["X"]}), "profiles: covariate 'Gender' has level 'X', not seen in training"),
    (pd.DataFrame({"channel": ["tv"], "Gender": ["F"]}), "profiles: unknown channel 'tv'; the model's channels are store, web"),
    (pd.DataFrame({"channel": ["web"], "Gender": [None]}), "profiles: covariate 'Gender' is missing for 1 of 1 rows"),
    (pd.DataFrame({"channel": [], "Gender": []}), "profiles: no profiles to value"),
    (pd.DataFrame({"channel": ["web", "web"], "Gender": ["F", "M"], "Channel": ["web", "store"]}),
     "profiles: row 2 has channel 'web' but Channel 'store'; give one channel per row"),
])
def test_bad_profiles_are_one_line(profiles: pd.DataFrame, message: str) -> None:
    with pytest.raises(ClvError) as caught:
        acquisition.acquisition_table(_covariate_model(), profiles, draws=0)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


@pytest.mark.parametrize(("options", "message"), [
    ({"horizon": 0}, "horizon must be a whole number of periods > 0"),
    ({"horizon": 1.5}, "horizon must be a whole number of periods > 0"),
    ({"horizon": 10**6}, "horizon 1000000 is more than 100 years"),
    ({"discount_rate": -0.1}, "discount rate must be >= 0"),
    ({"discount_rate": float("nan")}, "discount rate must be a finite number"),
    ({"margin": 1.5}, "margin must be in (0, 1]"),
    ({"level": 1.0}, "interval level must be in (0, 1)"),
    ({"draws": -1}, "draws must be a whole number"),
])
def test_bad_settings_are_one_line(options: dict, message: str) -> None:
    with pytest.raises(ClvError) as caught:
        acquisition.acquisition_table(_trained(acquisition_state=_two_channels()), **options)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


# --- the CLI and the REST server on a saved model ------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory (as clvmodel train writes one) holding the two-channel model."""
    from clvmodel.integrations.mlflow_tracking import save_model_dir

    return save_model_dir(_trained(acquisition_state=_two_channels()), tmp_path_factory.mktemp("acq") / "model")


def test_cli_writes_the_table_python_computes(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    trained = clvmodel.load_model(model_dir)
    expected = clvmodel.acquisition.acquisition_table(trained, horizon=26, draws=300)
    for name in ("out.csv", "out.parquet"):
        code = cli.main(["acquisition", "--model", str(model_dir), "--horizon", "26", "--output", str(tmp_path / name)])
        printed = capsys.readouterr().out
        assert code == 0
        got = (pd.read_csv if name.endswith(".csv") else pd.read_parquet)(tmp_path / name)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-15)
    assert "horizon 26 weeks" in printed and "web" in printed and f"{expected['acquisition_value'].iloc[1]:,.2f}" in printed
    profiles = tmp_path / "profiles.csv"
    pd.DataFrame({"channel": ["web", "store", ""]}).to_csv(profiles, index=False)
    assert cli.main(["acquisition", "--model", str(model_dir), "--input", str(profiles), "--output",
                     str(tmp_path / "p.csv")]) == 0
    assert pd.read_csv(tmp_path / "p.csv")["channel"].tolist() == ["web", "store", "all"]


@pytest.mark.parametrize(("arguments", "profiles", "message"), [
    (["--horizon", "0"], None, "--horizon must be > 0, got '0'"),
    (["--margin", "2"], None, "margin must be in (0, 1]"),
    (["--discount-rate", "-1"], None, "--discount-rate must be a number >= 0, got -1.0"),
    (["--level", "1.5"], None, "interval level must be in (0, 1)"),
    (["--draws", "-5"], None, "draws must be a whole number"),
    ([], "channel\ntv\n", "unknown channel 'tv'; the model's channels are store, web"),
    ([], "", "is empty (0 bytes)"),
    ([], "channel\n", "no profiles to value"),
    (["--input", "missing.csv"], None, "input file missing.csv not found"),
])
def test_cli_bad_inputs_are_one_line_exit_2_and_no_file(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                         monkeypatch: pytest.MonkeyPatch, arguments: list[str],
                                                         profiles: str | None, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    extra = list(arguments)
    if profiles is not None:
        (tmp_path / "profiles.csv").write_text(profiles)
        extra += ["--input", "profiles.csv"]
    out = tmp_path / "out.csv"
    code = cli.main(["acquisition", "--model", str(model_dir), *extra, "--output", str(out)])
    error = capsys.readouterr().err
    assert code == 2 and not out.exists(), error
    assert error.count("\n") == 1 and message in error, error
    assert not list(tmp_path.glob(".*out.csv*"))  # no staging left either


def test_cli_refuses_an_output_that_is_the_input_or_an_unknown_extension(model_dir: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    profiles = tmp_path / "profiles.csv"
    profiles.write_text("channel\nweb\n")
    assert cli.main(["acquisition", "--model", str(model_dir), "--input", str(profiles), "--output", str(profiles)]) == 2
    assert "is the same file as --input" in capsys.readouterr().err and profiles.read_text() == "channel\nweb\n"
    assert cli.main(["acquisition", "--model", str(model_dir), "--output", str(tmp_path / "out.txt")]) == 2
    assert "unknown extension '.txt'" in capsys.readouterr().err and not (tmp_path / "out.txt").exists()


def test_rest_values_rows_without_history(model_dir: Path, tmp_path: Path, started_processes: list) -> None:
    """A real ``clvmodel serve``: rows with only a channel are new customers; history rows still score."""
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("CLVMODEL_DEBUG", None)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen([str(CLVMODEL), "serve", "--model", str(model_dir), "--port", str(port)], stdout=log,
                               stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True,
                               stdin=subprocess.DEVNULL)
    started_processes.append(process)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2):
                break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "server.log").read_text()[-3000:]) from None
            time.sleep(0.3)

    def post(body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(f"{url}/invocations", data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    records = [{"customer_id": "n1", "channel": "web"}, {"customer_id": "n2"}]
    status, answer = post({"dataframe_records": records, "params": {"horizon": 26}})
    assert status == 200, answer
    got = pd.DataFrame(answer["predictions"])
    expected = acquisition.acquisition_table(clvmodel.load_model(model_dir), pd.DataFrame(records), horizon=26,
                                             draws=300)
    assert got["channel"].tolist() == ["web", "all"]
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-15)
    status, answer = post({"dataframe_records": [{"channel": "tv"}]})
    assert status == 400 and set(answer) == {"error_code", "message"} and "\n" not in answer["message"]
    assert answer["message"] == "new customers: unknown channel 'tv'; the model's channels are store, web"
    status, answer = post({"dataframe_split": {"columns": ["customer_id", "frequency", "recency", "T"],
                                               "data": [["c1", 2.0, 30.0, 38.0]]}})
    assert status == 200 and "predicted_clv" in answer["predictions"][0]


# --- through training ---------------------------------------------------------------------------


def _cohort_log(tmp_path: Path) -> tuple[Path, Path]:
    """Two channels of the very same 40 customers (same purchase gaps, same amounts), ``early``
    acquired from 2019-01-01 and ``late`` from 2021-03-01; calibration ends 2021-07-01."""
    rng = np.random.default_rng(14)
    rows, customers = [], []
    for i in range(40):
        gaps = rng.exponential(rng.uniform(20, 90), size=30).cumsum()
        life = rng.exponential(500)
        offsets = np.concatenate([[0.0], gaps[gaps < life]]).astype(int)
        amounts = np.round(rng.gamma(4.0, 10.0, size=len(offsets)), 2)
        for channel, start in (("early", "2019-01-01"), ("late", "2021-03-01")):
            first = np.datetime64(start) + np.timedelta64(i, "D")
            customers.append((f"{channel}{i:02d}", channel))
            rows += [(f"{channel}{i:02d}", str(first + np.timedelta64(int(d), "D")), a) for d, a in zip(offsets, amounts)]
    log, table = tmp_path / "tx.csv", tmp_path / "customers.csv"
    pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).to_csv(log, index=False)
    pd.DataFrame(customers, columns=["customer_id", "channel"]).to_csv(table, index=False)
    return log, table


def test_tenure_does_not_leak_through_training(tmp_path: Path) -> None:
    """Issue 14's test, end to end: trained from a log and a customer table, the two channels of
    identical customers get one acquisition value, while their mean remaining CLV (the old rule)
    differs by their tenure alone."""
    from clvmodel.train import train

    log, table = _cohort_log(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(f"""\
name: tenure
data: {{source: {log}, columns: {{customer_id: customer_id, date: date, amount: amount}}}}
time_unit: week
calibration_end: 2021-07-01
observation_end: 2022-07-01
models: [bgnbd, gamma_gamma]
customers: {{source: {table}, columns: {{customer_id: customer_id}}, channel: channel}}
clv: {{horizon: 52, discount_rate: 0.0, margin: 1.0}}
output: {{model_dir: {tmp_path / 'model'}}}
""")
    result = train(load_config(config, ["tracking.enabled=false"]), track=False)
    state = result.model.acquisition
    assert state is not None and set(state.channels) == {"early", "late"}
    assert state.channels["early"].first_order_value == state.channels["late"].first_order_value
    scores = result.scores.assign(channel=lambda f: f["customer_id"].str.rstrip("0123456789"))
    remaining = scores.groupby("channel")["predicted_clv"].mean()
    assert remaining["late"] > 2 * remaining["early"], remaining  # the old rule: tenure, not quality
    values = acquisition.acquisition_table(clvmodel.load_model(tmp_path / "model"), draws=200).set_index("channel")
    assert values.at["early", "acquisition_value"] == values.at["late", "acquisition_value"]
    assert values.at["early", "acquisition_value_upper"] == values.at["late", "acquisition_value_upper"]
    assert (values["spend_basis"] == "pooled").all()  # fewer repeat customers than a channel's own model needs


def test_simulated_channels_true_value_lies_in_the_fitted_interval() -> None:
    """Two channels simulated with known BG/NBD parameters (channel web: α·exp(0.5), a, b·exp(0.4)),
    fitted as bgnbd_cov: each channel's value from the true parameters lies in its interval."""
    from clvmodel.models.base import ModelData

    rng = np.random.default_rng(2026)
    true = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5, "life.channel_web": 0.4, "trans.channel_web": -0.5}
    web = {"r": 0.25, "alpha": 4.0 * math.exp(0.5), "a": 0.8 * math.exp(0.4), "b": 2.5 * math.exp(0.4)}
    store = {k: true[k] for k in ("r", "alpha", "a", "b")}
    parts = []
    for name, params in (("store", store), ("web", web)):
        summary = simulate_summary(rng, params, rng.uniform(20, 52, size=4000))
        parts.append(summary.assign(channel=name))
    customers = pd.concat(parts, ignore_index=True)
    design = Design.fit(customers, ["channel"], "customers")
    summary = customers.assign(channel_web=design.encode(customers, "customers")[:, 0], monetary_value=0.0)
    model = BetaGeoCovariateModel().fit(ModelData(summary=summary, design=design))
    state = AcquisitionState(channel="channel", covariates=["channel"], purchase_model="bgnbd_cov", channels={
        name: ChannelState(4000, 0, 30.0, None, [({"channel": name}, 1.0)]) for name in ("store", "web")})
    trained = _trained(acquisition_state=state, scale=0.0)
    trained.models["gamma_gamma"] = GammaGammaModel.from_dict({"params": POOLED})  # spend known exactly
    trained.models["bgnbd_cov"] = model
    table = acquisition.acquisition_table(trained, horizon=52, discount_rate=0.01, margin=0.3, level=0.95, draws=1000)
    weights = 1.01 ** -np.arange(1, 53, dtype=float)
    mean = POOLED["p"] * POOLED["v"] / (POOLED["q"] - 1)
    for row, params in zip(table.itertuples(), (store, web)):
        value = 0.3 * (30.0 + mean * float(np.diff(expected_new(*params.values(), np.arange(53.0))) @ weights))
        assert row.acquisition_value_lower < value < row.acquisition_value_upper, (row, value)
    assert table["acquisition_value"].iloc[1] < table["acquisition_value"].iloc[0]  # web's customers are worth less


def test_apparel_trained_and_valued_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """configs/apparel.yaml (CLVTools' apparel data, Gender and Channel covariates) trained and valued
    by the commands its header names: a channel's value is its customers' profile values averaged."""
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    model = tmp_path / "apparel"
    assert cli.main(["train", "configs/apparel.yaml", "--no-tracking", "--set", f"output.model_dir={model}"]) == 0
    capsys.readouterr()
    out = tmp_path / "acquisition.csv"
    assert cli.main(["acquisition", "--model", str(model), "--draws", "0", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    channels = pd.read_csv(out)
    trained = clvmodel.load_model(model)
    assert trained.acquisition.purchase_model == "pareto_nbd_cov"
    assert channels["channel"].tolist() == [0, 1] and "value of a new customer" in printed
    profiles = tmp_path / "profiles.csv"
    pd.DataFrame({"Gender": [0, 1, 0, 1], "Channel": [0, 0, 1, 1]}).to_csv(profiles, index=False)
    assert cli.main(["acquisition", "--model", str(model), "--input", str(profiles), "--draws", "0",
                     "--output", str(tmp_path / "profiles_out.csv")]) == 0
    rows = pd.read_csv(tmp_path / "profiles_out.csv")
    for channel in (0, 1):
        shares = {int(values["Gender"]): share for values, share in trained.acquisition.channels[str(channel)].profiles}
        mine = rows[rows["Channel"] == channel].set_index("Gender")["acquisition_value"]
        assert channels.set_index("channel").at[channel, "acquisition_value"] == pytest.approx(
            sum(shares[g] * mine[g] for g in (0, 1)), rel=1e-12)
    # Offline (Channel 1) customers buy more often in CLVTools' estimates (trans.Channel 0.62 > 0).
    assert channels.at[1, "expected_repeat_purchases"] > channels.at[0, "expected_repeat_purchases"]


def test_a_saved_covariate_model_values_rows_without_history_through_its_pipeline(tmp_path: Path) -> None:
    """The covariate model and its channels survive the model directory; the scoring pipeline (what
    the REST server and the pyfunc call) values rows of covariates alone as the table does."""
    from clvmodel import pipelines
    from clvmodel.integrations.mlflow_tracking import save_model_dir

    saved = clvmodel.load_model(save_model_dir(_covariate_model(), tmp_path / "model"))
    assert saved.acquisition.purchase_model == "bgnbd_cov" and saved.models["bgnbd_cov"].design_ is not None
    rows = pd.DataFrame({"customer_id": ["a", "b"], "Gender": ["M", "F"], "Channel": ["web", "store"]})
    got = pipelines.for_model(saved).score(saved, rows, {"horizon": 26})
    expected = acquisition.acquisition_table(_covariate_model(), rows, horizon=26, draws=300)
    pd.testing.assert_frame_equal(got, expected, rtol=1e-12)
    assert got["channel"].tolist() == ["web", "store"]


def test_models_that_cannot_value_a_new_customer_say_so_in_one_line() -> None:
    from clvmodel.models import HistoricalModel

    historical = _trained(acquisition_state=None)
    historical.models = {"historical": HistoricalModel.from_dict({"params": {
        "retention_periods": 54.6, "repeat_rate": 0.4, "mean_age": 32.7, "mean_order_value": 35.1}})}
    historical.primary = None
    with pytest.raises(ClvError, match=r"^model 'acq' has no purchase model \(historical only\)"):
        acquisition.acquisition_table(historical)


def _numeric_covariate_model() -> TrainedModel:
    design = Design.fit(pd.DataFrame({"Age": [20.0, 60.0]}), ["Age"], "customers")
    params = {**CDNOW, "life.Age": 0.01, "trans.Age": 0.02}
    model = BetaGeoCovariateModel.from_dict({"params": params, "design": design.to_dict()})
    state = AcquisitionState(channel=None, covariates=["Age"], purchase_model="bgnbd_cov", channels={
        "all": ChannelState(100, 40, 30.0, None, [({"Age": 20.0}, 0.5), ({"Age": 60.0}, 0.5)])})
    trained = _trained(acquisition_state=state)
    trained.models["bgnbd_cov"] = model
    return trained


def test_profiles_far_outside_training_or_too_many_are_one_line() -> None:
    trained = _numeric_covariate_model()
    ok = acquisition.acquisition_table(trained, pd.DataFrame({"Age": [30.0]}), draws=0)
    assert np.isfinite(ok["acquisition_value"].iloc[0])
    with pytest.raises(ClvError, match=r"profile Age=1e\+300 gives no finite model parameters"):
        acquisition.acquisition_table(trained, pd.DataFrame({"Age": [1e300]}), draws=0)
    many = pd.DataFrame({"Age": np.arange(acquisition.MAX_PROFILES + 1, dtype=float)})
    with pytest.raises(ClvError, match=f"{acquisition.MAX_PROFILES + 1:,} distinct covariate profiles"):
        acquisition.acquisition_table(trained, many, draws=0)
    assert len(acquisition.acquisition_table(trained, many.iloc[:-1], draws=0)) == acquisition.MAX_PROFILES
