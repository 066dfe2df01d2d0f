"""clvmodel whatif: each lever on hand-made models against values computed from the scaled parameters.

The models here have fixed parameters (no fit), so every expected number is computed from the
parameters by hand: one-year survival from its closed form (₂F₁ for BG/NBD and MBG/NBD, which
the module evaluates by quadrature instead), values from each family's ``expected_purchases_new``
at the scaled parameters.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from clvmodel import cli
from clvmodel.artifact import TrainedModel
from clvmodel.config import SegmentConfig, load_config
from clvmodel.errors import ClvError
from clvmodel.models.bgnbd import BetaGeoModel
from clvmodel.models.channels import AcquisitionState, ChannelState
from clvmodel.models.gamma_gamma import GammaGammaModel
from clvmodel.models.ggomnbd import GompertzNBDModel
from clvmodel.models.mbgnbd import ModifiedBetaGeoModel
from clvmodel.models.pareto_nbd import ParetoNBDModel
from clvmodel.models.sbg import ShiftedBetaGeometric
from clvmodel.predict import score
from clvmodel import whatif as wi

PARETO = {"r": 0.55, "alpha": 10.6, "s": 0.61, "beta": 11.7}
BGNBD = {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43}
MBGNBD = {"r": 0.52, "alpha": 6.18, "a": 0.89, "b": 1.61}
GGOM = {"r": 0.55, "alpha": 10.6, "b": 0.02, "s": 0.6, "beta": 0.3}
SPEND = {"p": 6.25, "q": 3.74, "v": 15.4}
SBG = {"alpha": 0.668, "beta": 3.806}


def _model(cls: type, params: dict[str, float]):
    model = cls()
    model.params_ = dict(params)
    model.n_ = 1000
    return model


CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cdnow.yaml"


def _trained(name: str, cls: type, params: dict[str, float], *,
             acquisition: AcquisitionState | None = None) -> TrainedModel:
    """A model with fixed parameters, savable (the columns and config of the CDNOW demo)."""
    return TrainedModel(
        name="hand", time_unit="week",
        models={name: _model(cls, params), "gamma_gamma": _model(GammaGammaModel, SPEND)},
        clv={"horizon": 52, "discount_rate": 0.01, "margin": 0.3},
        segments=SegmentConfig().model_dump(),
        columns={"customer_id": "customer_id", "date": "date", "amount": "amount"},
        config=load_config(CONFIG, ["tracking.enabled=false"]).model_dump(mode="json"), primary=name,
        acquisition=acquisition,
    )


def _sbg(fee: float = 20.0) -> TrainedModel:
    model = ShiftedBetaGeometric.from_dict({"model": "sbg", "params": SBG, "standard_errors": {},
                                            "log_likelihood": -1.0, "n": 1000})
    return TrainedModel(name="subs", time_unit="year", models={"sbg": model},
                        clv={"horizon": 1, "discount_rate": 0.1, "margin": 0.5, "fee": fee},
                        segments=SegmentConfig().model_dump(), columns={}, primary="sbg")


BASE = pd.DataFrame({
    "customer_id": ["a", "b", "c", "d", "e", "f"],
    "frequency": [0.0, 1.0, 2.0, 5.0, 12.0, 3.0],
    "recency": [0.0, 10.0, 20.0, 30.0, 38.0, 5.0],
    "T": [39.0, 30.0, 38.0, 39.0, 39.0, 36.0],
    "monetary_value": [0.0, 20.0, 35.0, 41.0, 60.0, 25.0],
})


def _bg_survival(p: dict[str, float], t: float, first: bool = False) -> float:
    """One-year survival of a new BG/NBD (MBG/NBD) customer by Euler's integral, DLMF 15.6.1."""
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    if first:
        return b / (a + b) * hyp2f1(r, a, a + b + 1, -t / alpha)
    return hyp2f1(r, a, a + b, -t / alpha)


def _new_value(model, spend: dict[str, float], horizon: int, rate: float, margin: float) -> float:
    """margin × (E[M] + Σ_k ΔE[X(k)] E[M] / (1 + d)^k): a model without channels takes E[M] for the first order."""
    mean = spend["p"] * spend["v"] / (spend["q"] - 1)
    cumulative = np.asarray(model.expected_purchases_new(np.arange(1, horizon + 1, dtype=float)), dtype=float)
    steps = np.diff(cumulative, prepend=0.0)
    return margin * (mean + mean * float(np.sum(steps / (1 + rate) ** np.arange(1, horizon + 1))))


# --- levers as written ------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "name", "amount", "unit"), [
    ("+5pp", "retention", 5.0, "pp"), ("5%", "retention", 5.0, "%"), ("-2.5pp", "retention", -2.5, "pp"),
    ("+10%", "frequency", 10.0, "%"), (" +0% ", "order_value", 0.0, "%"), ("-50%", "order_value", -50.0, "%"),
])
def test_levers_are_read(text: str, name: str, amount: float, unit: str) -> None:
    lever = wi.parse_lever(text, name)
    assert (lever.amount, lever.unit) == (amount, unit)


@pytest.mark.parametrize(("text", "name", "says"), [
    ("lots", "frequency", "is not a change"), ("+5", "retention", "is not a change"),
    ("5pp%", "retention", "not a change"),
    ("+5pp", "frequency", "points (pp) apply to retention"), ("-100%", "order_value", "a factor <= 0"),
    ("nan%", "frequency", "is not a change"),
])
def test_unreadable_levers_are_one_line(text: str, name: str, says: str) -> None:
    with pytest.raises(ClvError, match=re.escape(says)) as err:
        wi.parse_lever(text, name)
    assert "\n" not in str(err.value)



# --- one-year retention: the survival of a new customer and the solved scale ------------------


def test_new_customer_survival_matches_the_closed_forms() -> None:
    year = 52.0
    assert wi.survival_new(_model(BetaGeoModel, BGNBD), year) == pytest.approx(_bg_survival(BGNBD, year), rel=1e-10)
    assert wi.survival_new(_model(ModifiedBetaGeoModel, MBGNBD), year) == pytest.approx(
        _bg_survival(MBGNBD, year, first=True), rel=1e-10)
    p = PARETO
    assert wi.survival_new(_model(ParetoNBDModel, p), year) == pytest.approx((p["beta"] / (p["beta"] + year)) ** p["s"],
                                                                             rel=1e-14)
    g = GGOM
    assert wi.survival_new(_model(GompertzNBDModel, g), year) == pytest.approx(
        (g["beta"] / (g["beta"] + math.exp(g["b"] * year) - 1)) ** g["s"], rel=1e-14)
    sbg = _sbg().retention_model
    assert wi.survival_new(sbg, 3) == pytest.approx(sbg.survival(3), rel=1e-14)


def test_bgnbd_survival_is_the_dropout_of_the_story() -> None:
    """Simulated: λ ~ Gamma(r, α), p ~ Beta(a, b), alive at t with probability exp(−λ p t)."""
    rng = np.random.default_rng(7)
    n = 400_000
    lam = rng.gamma(BGNBD["r"], 1 / BGNBD["alpha"], n)
    p = rng.beta(BGNBD["a"], BGNBD["b"], n)
    alive = rng.exponential(1 / np.maximum(lam * p, 1e-300)) > 52
    assert wi.survival_new(_model(BetaGeoModel, BGNBD), 52) == pytest.approx(alive.mean(), abs=4e-3)


@pytest.mark.parametrize("text", ["+5pp", "+5%", "-3pp", "+12pp"])
def test_solved_scale_gives_the_requested_retention(text: str) -> None:
    lever = wi.parse_lever(text, "retention")
    # BG/NBD: a -> m a, b -> a + b - m a, checked with the 2F1 form.
    model = _model(BetaGeoModel, BGNBD)
    solved = wi.solve_retention(model, "week", lever)
    a, b = BGNBD["a"], BGNBD["b"]
    by_hand = {**BGNBD, "a": solved.scale * a, "b": a + b - solved.scale * a}
    assert _bg_survival(by_hand, 52) == pytest.approx(lever.target(_bg_survival(BGNBD, 52)), abs=1e-6)
    assert solved.after == pytest.approx(solved.target, abs=1e-9)
    # Pareto/NBD: beta -> beta / m.
    solved = wi.solve_retention(_model(ParetoNBDModel, PARETO), "week", lever)
    beta, s = PARETO["beta"] / solved.scale, PARETO["s"]
    before = (PARETO["beta"] / (PARETO["beta"] + 52)) ** s
    assert (beta / (beta + 52)) ** s == pytest.approx(lever.target(before), abs=1e-6)
    # sBG (yearly periods): alpha -> m alpha, beta -> alpha + beta - m alpha; S(1) = beta / (alpha + beta).
    solved = wi.solve_retention(_sbg().retention_model, "year", lever)
    al, be = SBG["alpha"] * solved.scale, SBG["alpha"] + SBG["beta"] - SBG["alpha"] * solved.scale
    assert be / (al + be) == pytest.approx(lever.target(SBG["beta"] / (SBG["alpha"] + SBG["beta"])), abs=1e-6)


def test_mbgnbd_and_ggomnbd_reach_their_targets_too() -> None:
    lever = wi.parse_lever("+5pp", "retention")
    for model in (_model(ModifiedBetaGeoModel, MBGNBD), _model(GompertzNBDModel, GGOM)):
        solved = wi.solve_retention(model, "week", lever)
        assert solved.scale < 1
        after = wi.survival_new(wi.scale_dropout(model, solved.scale), 52)
        assert after == pytest.approx(solved.before + 0.05, abs=1e-6)


@pytest.mark.parametrize("text", ["+70pp", "+200%", "-40pp"])
def test_an_unreachable_retention_is_one_line(text: str) -> None:
    with pytest.raises(ClvError) as err:
        wi.solve_retention(_model(ParetoNBDModel, PARETO), "week", wi.parse_lever(text, "retention"))
    assert "\n" not in str(err.value) and "--retention" in str(err.value)


# --- each lever against the value from the scaled parameters ----------------------------------


def _total(result: wi.WhatIfResult, scenario: str, scope: str = wi.BASE, group: str = "total") -> float:
    return float(result.rows(scope, group).loc[scenario, "profit"])


def test_a_zero_lever_changes_nothing_exactly() -> None:
    # a = 0.1, b = 0.3: (a + b) − a is not b in floating point, so a scale of 1 leaves the model as it is.
    assert (0.1 + 0.3) - 0.1 != 0.3
    odd = _model(BetaGeoModel, {**BGNBD, "a": 0.1, "b": 0.3})
    assert wi.scale_dropout(odd, 1.0) is odd and wi.scale_frequency(odd, 1.0) is odd
    for name, cls, params in (("pareto_nbd", ParetoNBDModel, PARETO), ("bgnbd", BetaGeoModel, BGNBD)):
        result = wi.whatif(_trained(name, cls, params), BASE, retention="+0pp", frequency="+0%", order_value="+0%")
        assert result.retention is not None and result.retention.scale == 1.0
        changed = result.table[result.table["scenario"] != "claim"]
        assert (changed["profit"] == changed["baseline_profit"]).all()
        assert (changed["profit_change"] == 0).all() and (changed["pct_change"] == 0).all()


def test_frequency_scales_alpha_for_a_new_customer_and_each_customers_rate() -> None:
    trained = _trained("pareto_nbd", ParetoNBDModel, PARETO)
    result = wi.whatif(trained, BASE, frequency="+10%")
    by_hand = _model(ParetoNBDModel, {**PARETO, "alpha": PARETO["alpha"] / 1.1})
    assert _total(result, "frequency", wi.ACQUISITION, "all") == pytest.approx(
        _new_value(by_hand, SPEND, 52, 0.01, 0.3), rel=1e-12)
    # Pareto/NBD: the lifetime does not depend on purchases, so each customer's future purchases x 1.1.
    baseline = score(trained, BASE, margin=0.3, interval_draws=0)["predicted_clv"].sum()
    assert _total(result, "frequency") == pytest.approx(1.1 * baseline, rel=1e-12)
    assert _total(result, "baseline") == pytest.approx(baseline, rel=1e-12)


def test_frequency_on_bgnbd_is_alpha_plus_T_over_c_for_each_customer() -> None:
    """For BG/NBD, rates c·λ from T on equal equation (10) with α + T replaced by (α + T)/c."""
    trained = _trained("bgnbd", BetaGeoModel, BGNBD)
    fitted = trained.models["bgnbd"]
    c = 1.25
    result = wi.whatif(trained, BASE, frequency="+25%")
    expected = 0.0
    t = np.arange(1, 53, dtype=float)
    for row in BASE.itertuples():
        own = _model(BetaGeoModel, {**BGNBD, "alpha": (BGNBD["alpha"] + row.T) / c - row.T})
        given = own.expected_purchases_if_alive(np.array([row.frequency]), np.array([row.T]), t=t[:, None])[:, 0]
        alive = fitted.p_alive(np.array([row.frequency]), np.array([row.recency]), np.array([row.T]))[0]
        order = trained.spend_model.expected_order_value(np.array([row.frequency]), np.array([row.monetary_value]))[0]
        expected += 0.3 * order * alive * float(np.sum(np.diff(given, prepend=0.0) / 1.01 ** t))
    assert _total(result, "frequency") == pytest.approx(expected, rel=1e-9)
    by_hand = _model(BetaGeoModel, {**BGNBD, "alpha": BGNBD["alpha"] / c})
    assert _total(result, "frequency", wi.ACQUISITION, "all") == pytest.approx(
        _new_value(by_hand, SPEND, 52, 0.01, 0.3), rel=1e-12)
    # Buying more often, a BG/NBD customer has more chances to drop out: one-year retention falls.
    retained = result.rows(wi.BASE, "total")["one_year_retention"]
    assert retained["frequency"] == pytest.approx(_bg_survival(by_hand.params_, 52), rel=1e-10)
    assert retained["frequency"] < retained["baseline"] == pytest.approx(_bg_survival(BGNBD, 52), rel=1e-10)


def test_order_value_scales_v() -> None:
    trained = _trained("pareto_nbd", ParetoNBDModel, PARETO)
    result = wi.whatif(trained, BASE, order_value="+10%")
    spend = {**SPEND, "v": SPEND["v"] * 1.1}
    assert _total(result, "order_value", wi.ACQUISITION, "all") == pytest.approx(
        _new_value(_model(ParetoNBDModel, PARETO), spend, 52, 0.01, 0.3), rel=1e-12)
    scores = score(trained, BASE, margin=0.3, interval_draws=0)
    assert _total(result, "order_value") == pytest.approx(1.1 * scores["predicted_clv"].sum(), rel=1e-12)
    for segment, own in scores.groupby("segment"):
        assert _total(result, "order_value", wi.SEGMENT, segment) == pytest.approx(1.1 * own["predicted_clv"].sum(),
                                                                                   rel=1e-12)


def test_order_value_scales_each_channels_spend_and_first_order() -> None:
    web = {"p": 5.0, "q": 3.0, "v": 12.0}
    state = AcquisitionState(channel="channel", covariates=[], purchase_model="pareto_nbd", channels={
        "store": ChannelState(customers=100, repeat_customers=40, first_order_value=30.0, spend=None,
                              profiles=[({}, 1.0)]),
        "web": ChannelState(customers=300, repeat_customers=80, first_order_value=25.0,
                            spend=_model(GammaGammaModel, web), profiles=[({}, 1.0)]),
    })
    trained = _trained("pareto_nbd", ParetoNBDModel, PARETO, acquisition=state)
    result = wi.whatif(trained, BASE, order_value="+10%", frequency="+10%", cac=20.0, target_ratio=4)
    model = _model(ParetoNBDModel, {**PARETO, "alpha": PARETO["alpha"] / 1.1})
    for channel, first, spend in (("store", 30.0, SPEND), ("web", 25.0, web)):
        mean = 1.1 * spend["p"] * spend["v"] / (spend["q"] - 1)
        steps = np.diff(model.expected_purchases_new(np.arange(1, 53, dtype=float)), prepend=0.0)
        value = 0.3 * (1.1 * first + mean * float(np.sum(steps / 1.01 ** np.arange(1, 53))))
        row = result.rows(wi.ACQUISITION, channel).loc["all"]
        assert row["profit"] == pytest.approx(value, rel=1e-12)
        assert row["ltv_cac"] == pytest.approx(value / 20.0, rel=1e-12)
        assert row["max_allowable_cac"] == pytest.approx(value / 4, rel=1e-12)
    assert "LTV:CAC" in wi.render(result)


def test_a_covariate_acquisition_model_scales_every_profile() -> None:
    """Pareto/NBD with a channel covariate values new customers: α_i = α·e^{−γ_trans z}/c and
    β_i = β·e^{−γ_life z}/m for each channel, the plain formula at those parameters."""
    from clvmodel.models.covariates import Design
    from clvmodel.models.pareto_nbd import ParetoNBDCovariateModel

    design = Design.fit(pd.DataFrame({"channel": ["store", "web", "web"]}), ["channel"], "test")
    gammas = {"life.channel_web": 0.4, "trans.channel_web": -0.3}
    cov = _model(ParetoNBDCovariateModel, {**PARETO, **gammas})
    cov.design_ = design
    state = AcquisitionState(channel="channel", covariates=["channel"], purchase_model="pareto_nbd_cov", channels={
        name: ChannelState(customers=100, repeat_customers=40, first_order_value=30.0, spend=None,
                           profiles=[({"channel": name}, 1.0)]) for name in ("store", "web")})
    trained = _trained("pareto_nbd", ParetoNBDModel, PARETO, acquisition=state)
    trained.models["pareto_nbd_cov"] = cov
    result = wi.whatif(trained, BASE, retention="+5pp", frequency="+10%")
    m = result.retention.scale
    for channel, z in (("store", 0.0), ("web", 1.0)):
        at = {**PARETO, "alpha": PARETO["alpha"] * math.exp(0.3 * z) / 1.1,
              "beta": PARETO["beta"] * math.exp(-0.4 * z) / m}
        mean = SPEND["p"] * SPEND["v"] / (SPEND["q"] - 1)
        steps = np.diff(_model(ParetoNBDModel, at).expected_purchases_new(np.arange(1, 53, dtype=float)), prepend=0.0)
        value = 0.3 * (30.0 + mean * float(np.sum(steps / 1.01 ** np.arange(1, 53))))
        assert result.rows(wi.ACQUISITION, channel).loc["all", "profit"] == pytest.approx(value, rel=1e-10)


@pytest.mark.parametrize(("name", "cls", "params"), [("pareto_nbd", ParetoNBDModel, PARETO),
                                                     ("bgnbd", BetaGeoModel, BGNBD)])
def test_retention_is_the_model_with_the_scaled_dropout(name: str, cls: type, params: dict[str, float]) -> None:
    trained = _trained(name, cls, params)
    result = wi.whatif(trained, BASE, retention="+5pp")
    m = result.retention.scale
    scaled = ({**params, "beta": params["beta"] / m} if name == "pareto_nbd"
              else {**params, "a": m * params["a"], "b": params["a"] + params["b"] - m * params["a"]})
    by_hand = _trained(name, cls, scaled)
    assert _total(result, "retention") == pytest.approx(
        score(by_hand, BASE, margin=0.3, interval_draws=0)["predicted_clv"].sum(), rel=1e-12)
    assert _total(result, "retention", wi.ACQUISITION, "all") == pytest.approx(
        _new_value(by_hand.models[name], SPEND, 52, 0.01, 0.3), rel=1e-12)
    assert result.rows(wi.BASE, "total").loc["retention", "one_year_retention"] == pytest.approx(
        result.retention.before + 0.05, abs=1e-9)
    assert result.claim is result.retention  # +5pp is the seeds' figure: not computed twice


def test_levers_compose_as_documented() -> None:
    """All together: new customers at every scaled parameter; the base at the scaled dropout, then
    x c on each customer's purchases (Pareto/NBD) and on each order."""
    trained = _trained("pareto_nbd", ParetoNBDModel, PARETO)
    result = wi.whatif(trained, BASE, retention="+5pp", frequency="+10%", order_value="+20%")
    m = result.retention.scale
    scaled = {**PARETO, "beta": PARETO["beta"] / m, "alpha": PARETO["alpha"] / 1.1}
    spend = {**SPEND, "v": SPEND["v"] * 1.2}
    assert _total(result, "all", wi.ACQUISITION, "all") == pytest.approx(
        _new_value(_model(ParetoNBDModel, scaled), spend, 52, 0.01, 0.3), rel=1e-12)
    retained = _trained("pareto_nbd", ParetoNBDModel, {**PARETO, "beta": PARETO["beta"] / m})
    assert _total(result, "all") == pytest.approx(
        1.1 * 1.2 * score(retained, BASE, margin=0.3, interval_draws=0)["predicted_clv"].sum(), rel=1e-12)
    assert list(result.rows(wi.BASE, "total").index) == ["baseline", "retention", "frequency", "order_value", "all"]


def test_an_sbg_model_retention_is_the_closed_form() -> None:
    trained = _sbg()
    renewals = pd.DataFrame({"customer_id": ["x", "y", "z"], "renewals": [0, 2, 7]})
    result = wi.whatif(trained, renewals, retention="+5pp", order_value="+10%")
    m = result.retention.scale
    al, be = m * SBG["alpha"], SBG["alpha"] + SBG["beta"] - m * SBG["alpha"]
    assert be / (al + be) == pytest.approx(SBG["beta"] / (SBG["alpha"] + SBG["beta"]) + 0.05, abs=1e-6)
    scaled = ShiftedBetaGeometric.from_dict({"model": "sbg", "params": {"alpha": al, "beta": be}, "standard_errors": {},
                                             "log_likelihood": -1.0, "n": 1000})
    derl = scaled.discounted_expected_residual_lifetime(0.1, renewals["renewals"].to_numpy())
    assert _total(result, "retention") == pytest.approx(20 * 0.5 * float(np.sum(derl)), rel=1e-12)
    new = 20 * 0.5 * (1 + scaled.discounted_expected_residual_lifetime(0.1, 0) / 1.1)
    assert _total(result, "retention", wi.ACQUISITION, "all") == pytest.approx(new, rel=1e-12)
    assert _total(result, "order_value") == pytest.approx(1.1 * _total(result, "baseline"), rel=1e-12)
    with pytest.raises(ClvError, match="subscription"):
        wi.whatif(trained, renewals, frequency="+10%")
    with pytest.raises(ClvError, match="--horizon does not apply"):
        wi.whatif(trained, renewals, retention="+5pp", horizon=10)


# --- the command --------------------------------------------------------------------------------


def _run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["whatif", *args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture()
def hand_files(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "hand.json"
    _trained("pareto_nbd", ParetoNBDModel, PARETO).write_json(model)
    rows = tmp_path / "base.csv"
    BASE.to_csv(rows, index=False)
    return model, rows


def test_the_command_writes_the_table_and_the_chart(hand_files: tuple[Path, Path], tmp_path: Path) -> None:
    model, rows = hand_files
    output = tmp_path / "whatif.csv"
    code, out, err = _run("--model", str(model), "--input", str(rows), "--retention", "+5pp", "--frequency", "+10%",
                          "--order-value", "+10%", "--cac", "30", "--output", str(output))
    assert code == 0, err
    table = pd.read_csv(output)
    assert set(table["scenario"]) == {"baseline", "retention", "frequency", "order_value", "all"}
    assert output.with_suffix(".png").stat().st_size > 0
    assert "one-year retention of a new customer (52 weeks)" in out and "the seeds' claim" in out
    python = wi.whatif(_trained("pareto_nbd", ParetoNBDModel, PARETO), BASE, retention="+5pp", frequency="+10%",
                       order_value="+10%", cac=30)
    assert np.allclose(table["profit"].to_numpy(), python.table["profit"].to_numpy(), rtol=1e-12)
    acq = table[table["scope"] == "acquisition"]
    assert np.allclose(acq["ltv_cac"], acq["profit"] / 30) and np.allclose(acq["max_allowable_cac"], acq["profit"] / 3)


@pytest.mark.parametrize("args", [
    ["--frequency", "lots"], ["--retention", "+5"], ["--order-value", "+5pp"], ["--retention", "+80pp"],
    ["--frequency", "-100%"], ["--retention", "+5pp", "--margin", "1.5"],
])
def test_bad_input_is_one_line_exit_2_and_no_file(hand_files: tuple[Path, Path], tmp_path: Path,
                                                   args: list[str]) -> None:
    model, rows = hand_files
    output = tmp_path / "whatif.csv"
    code, out, err = _run("--model", str(model), "--input", str(rows), *args, "--output", str(output))
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("clvmodel: error: ")
    assert not output.exists() and not output.with_suffix(".png").exists()


def test_the_run_is_logged_with_experiment(hand_files: tuple[Path, Path], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    model, rows = hand_files
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    output = tmp_path / "whatif.csv"
    code, out, err = _run("--model", str(model), "--input", str(rows), "--retention", "+5%", "--order-value", "+10%",
                          "--experiment", "levers", "--output", str(output))
    assert code == 0, err
    run_id = out.rsplit("run ", 1)[1].split()[0]
    client = mlflow.MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.data.metrics["whatif.order_value.base_pct_change"] == pytest.approx(10.0, rel=1e-9)
    assert run.data.params["retention"] == "+5%"
    assert {a.path for a in client.list_artifacts(run_id)} == {"whatif.csv", "whatif.png", "whatif_report.txt"}


def test_the_demo_model_from_an_rfm_file_or_the_transactions(trained_cdnow, cdnow_summary: pd.DataFrame,
                                                              cdnow_typed: pd.DataFrame, tmp_path: Path) -> None:
    """The trained CDNOW demo: the base read as RFM rows or summarised from the log as of the
    calibration end gives the same numbers; +5 points of one-year retention on its Pareto/NBD."""
    rows = tmp_path / "rfm.csv"
    cdnow_summary[["customer_id", "frequency", "recency", "T", "monetary_value"]].to_csv(rows, index=False)
    log = tmp_path / "tx.csv"
    # As the model's data section reads them: dates as %Y%m%d text.
    cdnow_typed.assign(date=pd.to_datetime(cdnow_typed["date"]).dt.strftime("%Y%m%d")).to_csv(log, index=False)
    code, out, err = _run("--model", str(trained_cdnow.model_dir), "--input", str(rows), "--retention", "+5pp",
                          "--frequency", "+10%", "--output", str(tmp_path / "a.csv"))
    assert code == 0, err
    code, _, err = _run("--model", str(trained_cdnow.model_dir), "--input", str(log), "--as-of", "1997-09-30",
                        "--retention", "+5pp", "--frequency", "+10%", "--output", str(tmp_path / "b.csv"))
    assert code == 0, err
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    assert np.allclose(a["profit"], b["profit"], rtol=1e-9) and (a["customers"] == b["customers"]).all()
    base = a[a["scope"] == "base"].set_index("scenario")
    retained = base["one_year_retention"]
    assert retained["retention"] == pytest.approx(retained["baseline"] + 0.05, abs=1e-6)
    assert base.loc["frequency", "pct_change"] == pytest.approx(10.0, rel=1e-9)  # the demo scores with Pareto/NBD
    assert "on this model +5 points of one-year retention" in out


def test_without_amounts_the_report_says_there_are_no_values() -> None:
    trained = _trained("pareto_nbd", ParetoNBDModel, PARETO)
    del trained.models["gamma_gamma"]
    result = wi.whatif(trained, BASE.drop(columns="monetary_value"), retention="+5pp")
    text = wi.render(result)
    assert "no values: neither the input" in text and "25-95 % range" not in text
    assert result.rows(wi.BASE, "total")["one_year_retention"]["retention"] == pytest.approx(
        result.retention.before + 0.05, abs=1e-9)
