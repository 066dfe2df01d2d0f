"""The covariate models' classes: fit on the summary and design, forecasts by profile, state, registry.

Sources (REFERENCE.md, /work/notes/issue14-research.md §2):
[CLV]  R CLVTools 0.12.1 on its apparel data, Pareto/NBD + Gender, Channel: r 1.838, alpha 92.91,
       s 0.5920, beta 49.62; life.Gender -0.6430, life.Channel 0.7907, trans.Gender 0.2859,
       trans.Channel 0.6241. Holdout repeat purchases predicted by CLVTools: 1,453.55.
[NEW]  New-customer E[X(t)] = r β_i / (α_i (s − 1)) (1 − (β_i/(β_i + t))^(s−1)) (CLVTools
       ``pnbd_staticcov_expectation``, src/pnbd.cpp:247-253) at CLVTools' point, per (Gender,
       Channel): (0,0) 0.81738, 1.40933; (1,0) 1.19436, 2.15631; (0,1) 1.28266, 2.08298;
       (1,1) 1.97605, 3.36911 for t = 52, 104 weeks (research memo §2, computed from the formula).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvmodel import uncertainty
from clvmodel.artifact import _finite
from clvmodel.document import FittedState
from clvmodel.errors import ClvError
from clvmodel.models import bgnbd, registry
from clvmodel.models.base import ModelData
from clvmodel.models.bgnbd import BetaGeoCovariateModel, BetaGeoModel
from clvmodel.models.covariates import Design
from clvmodel.models.pareto_nbd import ParetoNBDCovariateModel, ParetoNBDModel

COVARIATES = ["Gender", "Channel"]
CLVTOOLS = {"r": 1.838, "alpha": 92.91, "s": 0.5920, "beta": 49.62, "life.Gender": -0.6430, "life.Channel": 0.7907,
            "trans.Gender": 0.2859, "trans.Channel": 0.6241}


def _data(summary: pd.DataFrame) -> ModelData:
    return ModelData(summary=summary, design=Design.fit(summary, COVARIATES, "test"))


@pytest.fixture(scope="module")
def fitted(apparel_covariates: pd.DataFrame) -> ParetoNBDCovariateModel:
    return ParetoNBDCovariateModel().fit(_data(apparel_covariates))


@pytest.fixture()
def at_clvtools() -> ParetoNBDCovariateModel:
    state = {"type": "pareto_nbd_cov", "params": CLVTOOLS,
             "design": Design(COVARIATES, {c: "numeric" for c in COVARIATES}, {}, COVARIATES).to_dict()}
    return ParetoNBDCovariateModel.from_dict(state)


def test_fit_on_the_summary_and_its_design(fitted: ParetoNBDCovariateModel) -> None:
    assert fitted.n_ == 600 and fitted.design_.columns == COVARIATES
    for name, value in CLVTOOLS.items():
        assert fitted.params_[name] == pytest.approx(value, rel=3e-3), name  # [CLV]
    assert fitted.linear_params() == ("life.Gender", "life.Channel", "trans.Gender", "trans.Channel")
    assert np.asarray(fitted.covariance_).shape == (8, 8)


@pytest.mark.parametrize(("profile", "expected"), [((0, 0), (0.81738, 1.40933)), ((1, 0), (1.19436, 2.15631)),
                                                   ((0, 1), (1.28266, 2.08298)), ((1, 1), (1.97605, 3.36911))])
def test_new_customer_purchases_per_profile(at_clvtools: ParetoNBDCovariateModel, profile, expected) -> None:
    got = at_clvtools.expected_purchases_new(np.array([52.0, 104.0]), covariates=np.array(profile, dtype=float))
    np.testing.assert_allclose(got, expected, atol=6e-6)  # [NEW]
    # The plain model at the profile's parameters: α_i = α e^{−γ_trans z}, β_i = β e^{−γ_life z}.
    z = np.array(profile, dtype=float)
    plain = at_clvtools.at(z)
    assert isinstance(plain, ParetoNBDModel) and not isinstance(plain, ParetoNBDCovariateModel)
    assert plain.params_["alpha"] == pytest.approx(92.91 * np.exp(-(0.2859 * z[0] + 0.6241 * z[1])), rel=1e-14)
    assert plain.params_["beta"] == pytest.approx(49.62 * np.exp(-(-0.6430 * z[0] + 0.7907 * z[1])), rel=1e-14)


def test_new_customer_without_a_profile_is_the_baseline(at_clvtools: ParetoNBDCovariateModel) -> None:
    assert at_clvtools.expected_purchases_new(52.0) == pytest.approx(0.81738, abs=6e-6)  # [NEW] z = 0
    assert at_clvtools.expected_purchases_new(0.0) == 0.0


def test_forecasts_are_the_plain_forecasts_per_profile(fitted: ParetoNBDCovariateModel,
                                                       apparel_covariates: pd.DataFrame) -> None:
    s = apparel_covariates
    z = s[COVARIATES].to_numpy(dtype=float)
    x, tx, T = (s[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    horizons = np.array([[52.0], [1450 / 7]])
    grouped = fitted.expected_purchases(x, tx, T, t=horizons, covariates=z)
    alive = fitted.p_alive(x, tx, T, covariates=z)
    assert grouped.shape == (2, 600) and alive.shape == (600,)
    for i in (0, 17, 311, 599):  # customer by customer through at(z)
        plain = fitted.at(z[i])
        assert grouped[1, i] == pytest.approx(plain.expected_purchases(x[i:i + 1], tx[i:i + 1], T[i:i + 1], t=1450 / 7)[0],
                                              rel=1e-12)
        assert alive[i] == pytest.approx(plain.p_alive(x[i:i + 1], tx[i:i + 1], T[i:i + 1])[0], rel=1e-12)
    # The holdout (2007-01-01 to 2010-12-20, 1450 days): CLVTools predicts 1,453.55 at its point [CLV].
    assert grouped[1].sum() == pytest.approx(1453.55, abs=0.5)


def test_with_every_coefficient_zero_it_forecasts_as_the_plain_model(at_clvtools: ParetoNBDCovariateModel) -> None:
    zero = ParetoNBDCovariateModel.from_dict({"type": "pareto_nbd_cov",
                                              "params": {k: (0.0 if "." in k else v) for k, v in CLVTOOLS.items()}})
    plain = ParetoNBDModel.from_dict({"params": {k: CLVTOOLS[k] for k in ("r", "alpha", "s", "beta")}})
    x, tx, T = np.array([0.0, 3.0, 12.0]), np.array([0.0, 50.0, 103.0]), np.array([104.0, 104.0, 104.0])
    z = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(zero.expected_purchases(x, tx, T, t=52.0, covariates=z),
                               plain.expected_purchases(x, tx, T, t=52.0), rtol=1e-14)
    assert zero.expected_purchases_new(39.0, covariates=[1.0, 1.0]) == pytest.approx(plain.expected_purchases_new(39.0),
                                                                                     rel=1e-14)


def test_state_round_trip_and_the_document_schema(fitted: ParetoNBDCovariateModel) -> None:
    state = fitted.to_dict()
    assert state["type"] == "pareto_nbd_cov" and state["design"] == fitted.design_.to_dict()
    FittedState.model_validate(state)
    back = ParetoNBDCovariateModel.from_dict(state)
    assert back.params_ == fitted.params_ and back.design_ == fitted.design_
    np.testing.assert_allclose(back.covariance_, fitted.covariance_)
    # The schema: negative coefficients are fine, a negative base parameter or a missing
    # coefficient is not, nor is a design that does not name the coefficients' columns.
    assert state["params"]["life.Gender"] < 0
    with pytest.raises(ValueError, match="parameter beta must be > 0"):
        FittedState.model_validate({**state, "params": {**state["params"], "beta": -1.0}})
    with pytest.raises(ValueError, match="params must be exactly r, alpha, s, beta, life.Gender"):
        FittedState.model_validate({**state, "params": {k: v for k, v in state["params"].items() if k != "trans.Channel"}})
    with pytest.raises(ValueError, match="must hold its design"):
        FittedState.model_validate({k: v for k, v in state.items() if k != "design"})
    with pytest.raises(ValueError, match=r"design.columns must be 2 distinct encoded columns"):
        FittedState.model_validate({**state, "design": {**state["design"], "columns": ["Gender"]}})
    with pytest.raises(ValueError, match=r"unknown field 'design'"):
        FittedState.model_validate({"type": "pareto_nbd", "params": {"r": 1.0, "alpha": 1.0, "s": 1.0, "beta": 1.0},
                                    "design": state["design"]})


def test_parameter_draws_keep_coefficients_on_their_own_scale(fitted: ParetoNBDCovariateModel) -> None:
    draws = pd.DataFrame(uncertainty.parameter_draws(fitted, 4000, seed=3))
    assert (draws["life.Gender"] < 0).mean() > 0.95  # exp() would make every draw positive
    se = fitted.standard_errors_
    for name in fitted.linear_params():
        assert draws[name].mean() == pytest.approx(fitted.params_[name], abs=0.1 * se[name])
        assert draws[name].std() == pytest.approx(se[name], rel=0.05)
    assert np.log(draws["r"]).std() == pytest.approx(se["r"] / fitted.params_["r"], rel=0.05)  # log-normal base


def test_collapsed_fit_equals_the_fit_on_weighted_rows(apparel_covariates: pd.DataFrame,
                                                       fitted: ParetoNBDCovariateModel) -> None:
    """A summary whose identical rows are merged into a weights column fits the same."""
    columns = ["frequency", "recency", "T", *COVARIATES]
    weighted = apparel_covariates.groupby(columns, as_index=False).size().rename(columns={"size": "weights"})
    model = ParetoNBDCovariateModel().fit(_data(weighted))
    assert model.n_ == 600
    for name, value in fitted.params_.items():
        assert model.params_[name] == pytest.approx(value, rel=1e-6), name


def test_refusals_are_one_line(apparel_covariates: pd.DataFrame, fitted: ParetoNBDCovariateModel) -> None:
    with pytest.raises(ClvError, match=r"^pareto_nbd_cov needs customers.covariates"):
        ParetoNBDCovariateModel().fit(ModelData(summary=apparel_covariates))
    with pytest.raises(ClvError, match=r"^pareto_nbd_cov needs customers.covariates"):
        ParetoNBDCovariateModel().fit(apparel_covariates)
    data = _data(apparel_covariates)
    data.summary = apparel_covariates.drop(columns=["Channel"])
    with pytest.raises(ClvError, match=r"^pareto_nbd_cov: the summary has no encoded covariate column 'Channel'$"):
        ParetoNBDCovariateModel().fit(data)
    x = np.array([1.0])
    with pytest.raises(ClvError, match=r"forecasts need each customer's covariates"):
        fitted.expected_purchases(x, x, x, t=1.0)
    with pytest.raises(ClvError, match=r"covariates must be a n × 2 matrix"):
        fitted.p_alive(x, x, x, covariates=np.zeros((1, 3)))
    with pytest.raises(ClvError, match=r"covariates must be a 1 × 2 matrix"):
        fitted.expected_purchases_new(1.0, covariates=np.zeros((2, 2)))


def test_registry_lines_and_variants() -> None:
    assert registry.family_class("pareto_nbd_cov") is ParetoNBDCovariateModel
    assert registry.family_class("bgnbd_cov") is BetaGeoCovariateModel
    assert registry.family("pareto_nbd_cov").covariates and not registry.family("pareto_nbd").covariates
    assert registry.covariate_variant("pareto_nbd") == "pareto_nbd_cov"
    assert registry.covariate_variant("bgnbd") == "bgnbd_cov"
    assert registry.covariate_variant("ggomnbd") is None
    assert issubclass(ParetoNBDCovariateModel, ParetoNBDModel) and ParetoNBDCovariateModel.factorised is False


def test_bgnbd_class_fits_the_apparel_ridge_and_applies_clvtools_links(apparel_covariates: pd.DataFrame) -> None:
    """BetaGeoCovariateModel fits the collapsed rows with bgnbd_likelihood.fit_covariates (the real
    fit: on apparel the ridge CLVTools also runs into, LL −5839.86 ≥ CLVTools' −5839.863) and
    applies CLVTools' BG/NBD links: α_i = α e^{−γ_trans z}, a_i = a e^{γ_life z}, b_i = b e^{γ_life z}."""
    model = BetaGeoCovariateModel().fit(_data(apparel_covariates))
    assert model.status_ == "ridge" and model.log_likelihood_ >= -5839.873 and model.n_ == 600
    assert list(model.params_) == ["r", "alpha", "a", "b", *(f"life.{c}" for c in COVARIATES),
                                   *(f"trans.{c}" for c in COVARIATES)]
    p = model.params_
    plain = model.at([1.0, 1.0])
    assert isinstance(plain, BetaGeoModel) and not isinstance(plain, BetaGeoCovariateModel)
    life = p["life.Gender"] + p["life.Channel"]
    assert plain.params_ == pytest.approx({"r": p["r"], "alpha": p["alpha"] * np.exp(-(p["trans.Gender"] + p["trans.Channel"])),
                                           "a": p["a"] * np.exp(life), "b": p["b"] * np.exp(life)}, rel=1e-12)
    assert model.expected_purchases_new(52.0, covariates=[1.0, 1.0]) == pytest.approx(plain.expected_purchases_new(52.0), rel=1e-12)
    saved = _finite(model.to_dict())  # as the document stores it: a ridge's unidentified SEs as null
    FittedState.model_validate(saved)
    assert bgnbd.BetaGeoCovariateModel.from_dict(saved).params_ == model.params_
