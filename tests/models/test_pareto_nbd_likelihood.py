"""Pareto/NBD with static covariates: the likelihood, its gradient and the fit.

Sources (REFERENCE.md):
[CLV]  R CLVTools 0.12.1 on its apparel data (tests/data/apparel), weeks, estimation split 104,
       same-day purchases merged, raw 0/1 Gender and Channel in both processes:
       r 1.838, alpha 92.91, s 0.5920, beta 49.62; life.Gender -0.6430, life.Channel 0.7907,
       trans.Gender 0.2859, trans.Channel 0.6241; LL -5821.063. Without covariates:
       r 1.449, alpha 48.64, s 0.5613, beta 46.88; LL -5848.098.
[FHL05n] Fader, Hardie & Lee (2005), "A note on implementing the Pareto/NBD model in MATLAB":
       CDNOW r 0.553, alpha 10.578, s 0.606, beta 11.669; LL -9595.0.
[N009] Fader & Hardie (2005), note 009, equation (18): the likelihood (integral form).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad

from clvmodel.errors import ClvError
from clvmodel.models import lifetimes_adapter
from clvmodel.models import pareto_nbd_likelihood as pnl
from clvmodel.models.base import collapse
from clvmodel.models.pareto_nbd import ParetoNBDModel

COVARIATES = ["Gender", "Channel"]
#: CLVTools 0.12.1's printed estimates [CLV].
CLVTOOLS = {"r": 1.838, "alpha": 92.91, "s": 0.5920, "beta": 49.62, "life.Gender": -0.6430, "life.Channel": 0.7907,
            "trans.Gender": 0.2859, "trans.Channel": 0.6241}
CLVTOOLS_PLAIN = {"r": 1.449, "alpha": 48.64, "s": 0.5613, "beta": 46.88}


def _columns(summary: pd.DataFrame, design: list[str] = COVARIATES) -> tuple[dict[str, np.ndarray], np.ndarray]:
    unique, weights, _ = collapse(summary, ["frequency", "recency", "T", *design])
    return {c: unique[c].to_numpy(dtype=float) for c in unique.columns}, weights


@pytest.fixture(scope="module")
def apparel_fit(apparel_covariates: pd.DataFrame):
    return pnl.fit_covariates(*_columns(apparel_covariates), design_columns=COVARIATES)


def test_likelihood_at_clvtools_point_is_clvtools(apparel_covariates: pd.DataFrame) -> None:
    """The data preparation and the likelihood reproduce CLVTools' LL, independently of any optimiser."""
    columns, weights = _columns(apparel_covariates)
    assert len(weights) == 383 and weights.sum() == 600  # 600 customers, 383 distinct (x, t_x, T, z)
    assert pnl.log_likelihood(CLVTOOLS, columns, weights, design_columns=COVARIATES) == pytest.approx(-5821.0627, abs=1e-3)
    plain, plain_weights = _columns(apparel_covariates, [])
    assert pnl.log_likelihood(CLVTOOLS_PLAIN, plain, plain_weights) == pytest.approx(-5848.0978, abs=1e-3)


def test_sign_convention_is_clvtools(apparel_covariates: pd.DataFrame) -> None:
    """α_i = α e^{−γ_trans z}, β_i = β e^{−γ_life z}: the other sign is far worse at CLVTools' point."""
    columns, weights = _columns(apparel_covariates)
    flipped = {k: -v if "." in k else v for k, v in CLVTOOLS.items()}
    assert pnl.log_likelihood(flipped, columns, weights, design_columns=COVARIATES) == pytest.approx(-6105.80, abs=0.01)


def test_apparel_fit_matches_clvtools(apparel_fit) -> None:
    """Every estimate within 0.3 % of CLVTools' (its optimiser stops ~0.2 % away along the weakly
    identified s, β: the gradient at its printed point is ~0.02-0.05), and the likelihood no lower."""
    assert apparel_fit.n == 600 and apparel_fit.status == "converged"
    assert list(apparel_fit.params) == ["r", "alpha", "s", "beta", "life.Gender", "life.Channel", "trans.Gender",
                                        "trans.Channel"]
    for name, value in CLVTOOLS.items():
        assert apparel_fit.params[name] == pytest.approx(value, rel=3e-3), name  # [CLV]
    assert apparel_fit.log_likelihood >= -5821.073  # [CLV] -5821.063, to 0.01
    assert apparel_fit.log_likelihood == pytest.approx(-5821.06269, abs=1e-4)


def test_apparel_fit_is_a_better_optimum_than_clvtools_point(apparel_covariates: pd.DataFrame, apparel_fit) -> None:
    columns, weights = _columns(apparel_covariates)
    at_clvtools = pnl.log_likelihood(CLVTOOLS, columns, weights, design_columns=COVARIATES)
    assert apparel_fit.log_likelihood > at_clvtools  # -5821.062686 > -5821.062711
    # ... and a stationary point: the analytic gradient per customer vanishes there.
    objective = pnl.ParetoNBDCovariateLikelihood(columns["frequency"], columns["recency"], columns["T"], weights,
                                                 np.column_stack([columns[c] for c in COVARIATES]))
    _, gradient = objective(pnl._theta(apparel_fit.params, COVARIATES))
    assert np.max(np.abs(gradient)) < 1e-5


def test_standard_errors_as_clvtools_reports_them(apparel_fit) -> None:
    """Base parameters by the delta method (θ se(ln θ)), coefficients directly; covariance over
    (ln r, ln α, ln s, ln β, γ) in params order."""
    cov = np.asarray(apparel_fit.covariance)
    assert cov.shape == (8, 8) and np.allclose(cov, cov.T)
    se = apparel_fit.standard_errors
    values = list(apparel_fit.params.values())
    for i, name in enumerate(apparel_fit.params):
        expected = np.sqrt(cov[i, i]) * (values[i] if i < 4 else 1.0)
        assert se[name] == pytest.approx(expected, rel=1e-12), name
    # Sizes as a numerical Hessian gives them (research memo: r 0.346, trans.Gender 0.104, ...).
    assert se["r"] == pytest.approx(0.346, rel=0.02) and se["trans.Gender"] == pytest.approx(0.104, rel=0.02)


@pytest.mark.parametrize("seed", [0, 1])
def test_analytic_gradient_equals_central_differences(apparel_covariates: pd.DataFrame, seed: int) -> None:
    columns, weights = _columns(apparel_covariates)
    rng = np.random.default_rng(seed)
    design = np.column_stack([columns["Gender"], rng.normal(size=len(weights))])  # a numeric column too
    tx = columns["recency"].copy()
    objective = pnl.ParetoNBDCovariateLikelihood(columns["frequency"], tx, columns["T"], weights, design)
    theta = np.concatenate([np.log([rng.uniform(0.3, 3), rng.uniform(20, 120), rng.uniform(0.3, 2), rng.uniform(10, 100)]),
                            rng.uniform(-0.8, 0.8, 4)])
    _, gradient = objective(theta)
    step = 1e-6
    numeric = np.array([(objective(theta + h)[0] - objective(theta - h)[0]) / (2 * step) for h in np.eye(8) * step])
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-8)


def test_death_integral_equals_adaptive_quadrature() -> None:
    """ln ∫_{t_x}^T (α+τ)^{−k} (β+τ)^{−m} dτ against scipy's quad, frequent buyers and β ≪ α included."""
    cases = [  # k, m, alpha, beta, t_x, T
        (1.5, 1.6, 50.0, 45.0, 0.0, 104.0), (0.3, 1.05, 0.5, 300.0, 2.0, 60.0), (800.0, 1.6, 70.0, 0.01, 30.0, 700.0),
        (2000.0, 51.0, 0.1, 500.0, 1.3, 12.5), (5.0, 6.0, 1e3, 1e-2, 90.0, 100.0), (0.05, 1.05, 1e-2, 1e3, 0.0, 1e3),
    ]
    for k, m, alpha, beta, tx, T in cases:
        got, _ = pnl.death_integral(*(np.array([v]) for v in (k, m, alpha, beta, tx, T)))
        scale = k * np.log(alpha + tx) + m * np.log(beta + tx)
        points = [p for p in ((alpha + tx) * np.exp(j / k) - alpha for j in (1, 5, 20)) if tx < p < T]
        value, _ = quad(lambda t: np.exp(scale - k * np.log(alpha + t) - m * np.log(beta + t)), tx, T,
                        epsabs=0, epsrel=1e-13, limit=500, points=points or None)
        assert got[0] == pytest.approx(np.log(value) - scale, abs=1e-8), (k, m, alpha, beta, tx, T)
    empty, _ = pnl.death_integral(*(np.array([v]) for v in (2.0, 1.5, 10.0, 10.0, 52.0, 52.0)))
    assert empty[0] == -np.inf


def test_one_panel_rows_equal_the_composite_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows deemed mild (one panel of 16 nodes) integrate as the composite rule does, over random
    rows far wider than any data set (k 0.03-300, s + 1 up to 30, α, β 0.01-1000, T 0.1-1000)."""
    rng = np.random.default_rng(5)
    n = 50_000
    k, m = 10 ** rng.uniform(-1.5, 2.5, n), 1 + 10 ** rng.uniform(-2, 1.5, n)
    alpha, beta, T = 10 ** rng.uniform(-2, 3, n), 10 ** rng.uniform(-2, 3, n), 10 ** rng.uniform(-1, 3, n)
    tx = T * rng.uniform(0, 1, n)
    tiered, tiered_moments = pnl.death_integral(k, m, alpha, beta, tx, T, gradient=True)
    monkeypatch.setattr(pnl, "_mild", lambda *args: np.zeros(len(args[0]), dtype=bool))
    composite, composite_moments = pnl.death_integral(k, m, alpha, beta, tx, T, gradient=True)
    finite = np.isfinite(composite)
    assert np.array_equal(finite, np.isfinite(tiered)) and finite.mean() > 0.9
    np.testing.assert_allclose(tiered[finite], composite[finite], rtol=0, atol=1e-10)
    np.testing.assert_allclose(tiered_moments[finite], composite_moments[finite], rtol=1e-9, atol=1e-300)


def test_finite_where_lifetimes_hypergeometric_form_is_not() -> None:
    """s and β in the hundreds and thousands (far out on the ridge of issue 13), frequent buyers:
    lifetimes' ₂F₁ form gives NaN, the integral form the value of eq. (18) [N009] by adaptive quadrature."""
    from scipy.special import gammaln

    x, tx, T = np.array([400.0, 2000.0]), np.array([60.0, 300.0]), np.array([104.0, 700.0])
    r, alpha, s, beta = 1.0, 70.0, 400.0, 40000.0
    theta = np.log([r, alpha, s, beta])
    got = pnl.ParetoNBDCovariateLikelihood(x, tx, T, np.ones(2)).rows(theta)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lifetimes = lifetimes_adapter.ParetoNBDObjective(x, tx, T, np.ones(2)).rows(theta)
    assert np.all(np.isnan(lifetimes)) and np.all(np.isfinite(got))
    for i in range(2):
        k = r + x[i]
        scale = k * np.log(alpha + tx[i]) + (s + 1) * np.log(beta + tx[i])
        integral, _ = quad(lambda t: np.exp(scale - k * np.log(alpha + t) - (s + 1) * np.log(beta + t)), tx[i], T[i],
                           epsabs=0, epsrel=1e-13, limit=500)
        alive = -k * np.log(alpha + T[i]) - s * np.log(beta + T[i])
        dead = np.log(s) + np.log(integral) - scale
        expected = gammaln(k) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + np.logaddexp(alive, dead)
        assert got[i] == pytest.approx(expected, abs=1e-9)


def test_without_covariates_it_is_the_plain_likelihood(apparel_covariates: pd.DataFrame) -> None:
    """γ = 0 with any z, and z empty, give the plain Pareto/NBD likelihood (lifetimes' eq. (18),
    the adapter's objective) and the same gradient in the base parameters."""
    columns, weights = _columns(apparel_covariates)
    x, tx, T = columns["frequency"], columns["recency"], columns["T"]
    design = np.column_stack([columns[c] for c in COVARIATES])
    base = np.log([1.2, 60.0, 0.7, 40.0])
    with_z = pnl.ParetoNBDCovariateLikelihood(x, tx, T, weights, design)
    without = pnl.ParetoNBDCovariateLikelihood(x, tx, T, weights)
    value_z, gradient_z = with_z(np.concatenate([base, np.zeros(4)]))
    value, gradient = without(base)
    assert value_z == pytest.approx(value, rel=1e-14) and np.allclose(gradient_z[:4], gradient, rtol=1e-12)
    lifetimes = lifetimes_adapter.ParetoNBDObjective(x, tx, T, weights)
    assert without.log_likelihood(base) == pytest.approx(lifetimes.log_likelihood(base), abs=1e-7)
    # A column of zeros changes nothing whatever its coefficients.
    zeros = pnl.ParetoNBDCovariateLikelihood(x, tx, T, weights, np.zeros((len(x), 1)))
    assert zeros.log_likelihood(np.concatenate([base, [0.7, -1.3]])) == pytest.approx(without.log_likelihood(base), rel=1e-14)


def test_collapsed_rows_with_weights_equal_the_expanded_rows(apparel_covariates: pd.DataFrame) -> None:
    columns, weights = _columns(apparel_covariates)
    expanded = apparel_covariates
    theta = np.concatenate([np.log([1.8, 90.0, 0.6, 50.0]), [-0.6, 0.8, 0.3, 0.6]])
    collapsed = pnl.ParetoNBDCovariateLikelihood(columns["frequency"], columns["recency"], columns["T"], weights,
                                                 np.column_stack([columns[c] for c in COVARIATES]))
    full = pnl.ParetoNBDCovariateLikelihood(*(expanded[c].to_numpy(float) for c in ("frequency", "recency", "T")),
                                            np.ones(len(expanded)), expanded[COVARIATES].to_numpy(float))
    assert collapsed.log_likelihood(theta) == pytest.approx(full.log_likelihood(theta), rel=1e-12)
    np.testing.assert_allclose(collapsed(theta)[1], full(theta)[1], rtol=1e-10, atol=1e-13)


def test_without_design_columns_the_fit_is_the_plain_fit(cdnow_summary: pd.DataFrame) -> None:
    columns, weights = _columns(cdnow_summary, [])
    fitted = pnl.fit_covariates(columns, weights, design_columns=[])
    plain = ParetoNBDModel().fit(cdnow_summary)
    assert list(fitted.params) == ["r", "alpha", "s", "beta"]
    for name, value in plain.params_.items():
        assert fitted.params[name] == pytest.approx(value, rel=1e-5), name
        assert fitted.standard_errors[name] == pytest.approx(plain.standard_errors_[name], rel=1e-3), name
    assert fitted.log_likelihood == pytest.approx(-9595.0, abs=0.05)  # [FHL05n]
    assert fitted.log_likelihood == pytest.approx(plain.log_likelihood_, abs=1e-6)


def _simulate(n: int, seed: int, truth: dict[str, float], T: float) -> pd.DataFrame:
    """Pareto/NBD customers (first purchase at 0, observed for T) with one 0/1 covariate z:
    λ ~ Gamma(r, rate α e^{−γ_trans z}), μ ~ Gamma(s, rate β e^{−γ_life z}), lifetime ~ Exp(μ),
    repeat purchases Poisson(λ) until min(lifetime, T); t_x the last one (0 if none)."""
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, n).astype(float)
    alpha = truth["alpha"] * np.exp(-truth["trans.z"] * z)
    beta = truth["beta"] * np.exp(-truth["life.z"] * z)
    rate = rng.gamma(truth["r"], 1.0 / alpha)
    mu = rng.gamma(truth["s"], 1.0 / beta)
    alive_for = np.minimum(rng.exponential(1.0 / mu), T)
    x = rng.poisson(rate * alive_for).astype(float)
    # The last of x uniform purchase times on [0, alive_for]: alive_for · U^(1/x).
    with np.errstate(divide="ignore"):
        tx = np.where(x > 0, alive_for * rng.uniform(size=n) ** (1.0 / np.maximum(x, 1.0)), 0.0)
    return pd.DataFrame({"frequency": x, "recency": np.round(tx, 4), "T": T, "z": z})


def test_simulated_coefficients_are_recovered_within_their_standard_errors() -> None:
    """Two groups with known, different purchase and dropout rates: each estimate within 3 of its
    standard errors of the truth (fixed seed; the errors are ~0.06 for γ, so 3 SE is a tight test)."""
    truth = {"r": 0.8, "alpha": 10.0, "s": 0.9, "beta": 15.0, "life.z": -0.5, "trans.z": 0.7}
    data = _simulate(8000, seed=14, truth=truth, T=52.0)
    columns, weights = _columns(data, ["z"])
    fitted = pnl.fit_covariates(columns, weights, design_columns=["z"])
    for name, value in truth.items():
        error = fitted.standard_errors[name]
        assert 0 < error < (0.15 if "." in name else 0.5 * value), name
        assert abs(fitted.params[name] - value) < 3 * error, (name, fitted.params[name], error)
    # The sign is the convention's: group 1 buys more (trans > 0) and drops out later (life < 0).
    assert fitted.params["trans.z"] > 0.3 and fitted.params["life.z"] < -0.1


def test_bad_rows_are_one_line_errors(apparel_covariates: pd.DataFrame) -> None:
    columns, weights = _columns(apparel_covariates)
    bad = dict(columns, recency=columns["T"] + 1.0)
    with pytest.raises(ClvError, match=r"^pareto_nbd_cov: 600 of 600 customers have recency > T; check the RFM summary$"):
        pnl.fit_covariates(bad, weights, design_columns=COVARIATES)
    missing = dict(columns, Gender=np.where(columns["Gender"] > 0, np.nan, 0.0))
    with pytest.raises(ClvError, match=r"^pareto_nbd_cov: a covariate value is missing"):
        pnl.fit_covariates(missing, weights, design_columns=COVARIATES)
    with pytest.raises(ClvError, match=r"^pareto_nbd_cov: no design column 'Age'"):
        pnl.fit_covariates(columns, weights, design_columns=["Age"])


@pytest.mark.parametrize("theta", [(0.55, 10.6, 0.61, 11.7), (2.0, 3.0, 5.0, 0.5), (0.8, 40.0, 300.0, 1e4)])
def test_plain_gradient_equals_central_differences(cdnow_summary: pd.DataFrame, theta) -> None:
    """The plain fit's objective (issue 16): analytic gradient against central differences of its
    values, near the CDNOW optimum, with β ≪ α, and far out towards the s, β → ∞ ridge."""
    columns, weights = _columns(cdnow_summary, [])
    scale = 1.0 / columns["T"].max()
    objective = pnl.ParetoNBDCovariateLikelihood(columns["frequency"], columns["recency"] * scale,
                                                 columns["T"] * scale, weights)
    at = np.log(theta) + np.log([1.0, scale, 1.0, scale])
    _, gradient = objective(at)
    step = 1e-6
    numeric = np.array([(objective(at + h)[0] - objective(at - h)[0]) / (2 * step) for h in np.eye(4) * step])
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-8)


def test_far_out_on_the_ridge_the_likelihood_is_the_limits(cdnow_summary: pd.DataFrame) -> None:
    """As s, β → ∞ with s/β = μ the likelihood tends to the one-rate limit's (lifetimes_adapter.ParetoNBDLimit,
    its own quadrature), by ~1/s; with every s ln β term cancelled analytically it keeps its digits
    out to s = 1e30 (formed as s ln β − s ln(β + T) it read ln L = 0 there: a 'likelihood' of 1)."""
    columns, weights = _columns(cdnow_summary, [])
    x, tx, T = columns["frequency"], columns["recency"], columns["T"]
    r, alpha, mu = 0.6, 12.0, 0.02
    limit = lifetimes_adapter.ParetoNBDLimit(x, tx, T, weights).log_likelihood(np.log([r, alpha, mu]))
    objective = pnl.ParetoNBDCovariateLikelihood(x, tx, T, weights)
    gaps = []
    for s in (1e4, 1e6, 1e8, 1e30):
        value = objective.log_likelihood(np.log([r, alpha, s, s / mu]))
        gaps.append(abs(value - limit))
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-3, gaps
    assert gaps[3] < 1e-8, gaps


def test_apparel_40_weeks_with_covariates_reports_the_ridge(apparel) -> None:
    """Issue 16: on the 40-week split no Channel-0 customer is seen to drop out; the likelihood rises
    as β → ∞ with β·e^(−life.Channel) fixed (Channel-0 customers' dropout rates → 0, Channel 1's kept).
    Before, the fit stopped wherever BFGS did (β ~ 1e9 weeks) and said "converged" with warnings;
    now it reports that ridge (status ridge), held far out, with what the data identify."""
    import datetime as dt
    from pathlib import Path

    from clvmodel.models import mle

    customers = pd.read_csv(Path(__file__).resolve().parents[1] / "data" / "apparel" / "customers.csv",
                            dtype={"Id": str}).rename(columns={"Id": "customer_id"})
    data = apparel(dt.date(2005, 10, 9)).merge(customers, on="customer_id", how="left", validate="one_to_one")
    columns, weights = _columns(data)
    with pytest.warns(UserWarning, match=r"^pareto_nbd_cov: these data have no finite maximum-likelihood estimate: the "
                                         r"likelihood rises as beta_i -> inf for the customers with Gender 0, Channel 0; "
                                         r"Gender 1, Channel 0 .*not identified: beta, life.Channel\)$"):
        fitted = pnl.fit_covariates(columns, weights, design_columns=COVARIATES)
    assert fitted.status == mle.RIDGE and fitted.n == 600
    assert set(fitted.limit) == {"r", "alpha", "s", "life.Gender", "trans.Gender", "trans.Channel"}
    assert np.isnan(fitted.standard_errors["beta"]) and np.isnan(fitted.standard_errors["life.Channel"])
    assert all(np.isfinite(fitted.standard_errors[k]) and fitted.standard_errors[k] > 0 for k in fitted.limit)
    # Channel 1's baseline β·e^(−life.Channel) is finite (weeks), Channel 0's β beyond 1e12 customer ages.
    channel_1 = fitted.params["beta"] * np.exp(-fitted.params["life.Channel"])
    assert 10.0 < channel_1 < 1000.0
    assert fitted.params["beta"] / fitted.params["s"] >= 0.99 * pnl.COVARIATE_RIDGE_LIFETIME * 40.0
    # The held point is a maximum of the rest, and no finite point the search found is higher.
    objective = pnl.ParetoNBDCovariateLikelihood(columns["frequency"], columns["recency"], columns["T"], weights,
                                                 np.column_stack([columns[c] for c in COVARIATES]))
    theta = pnl._theta(fitted.params, COVARIATES)
    assert objective.log_likelihood(theta) == pytest.approx(fitted.log_likelihood, abs=1e-6)
    _, gradient = objective(theta)
    assert abs(gradient[0]) < 1e-6 and abs(gradient[1]) < 1e-6 and np.max(np.abs(gradient[6:])) < 1e-6
    # Further out along the ridge the likelihood is the same to ~1e-9: the limit is reached.
    further = theta.copy()
    further[3] += 5.0
    further[5] += 5.0  # life.Channel: Channel 1's β_i unchanged
    assert objective.log_likelihood(further) == pytest.approx(fitted.log_likelihood, abs=1e-6)


@pytest.mark.parametrize("theta", [(0.55, 10.6, 0.61, 11.7), (2.0, 3.0, 5.0, 0.5), (0.8, 40.0, 300.0, 1e4),
                                   (0.05, 0.3, 0.02, 900.0)])
def test_pooled_plain_likelihood_equals_the_row_by_row_one(cdnow_summary: pd.DataFrame, theta) -> None:
    """Issue 16: the plain fit's pooled objective (integrals once per distinct (x, u) pair, each
    row's as K(x, t_x) − K(x, T)) equals the row-by-row one (each row's integral over [t_x, T]):
    value and gradient, in rescaled time as the fit calls it; with rows where t_x = T (the exact
    branch), one-time buyers, a longest age not exactly 1, near the optimum, with β ≪ α, far towards
    the s, β → ∞ ridge and with r, s small (heavy tails: the subtraction's worst case)."""
    columns, weights = _columns(cdnow_summary, [])
    x, tx, T = columns["frequency"], columns["recency"], columns["T"]
    assert np.any((tx == T) & (x > 0)) and np.any(x == 0)
    scale = 1.0 / (3.0 * T.max())
    at = np.log(theta) + np.log([1.0, scale, 1.0, scale])
    pooled = pnl.ParetoNBDLikelihood(x, tx * scale, T * scale, weights)
    rows = pnl.ParetoNBDCovariateLikelihood(x, tx * scale, T * scale, weights)
    value, gradient = pooled(at)
    expected_value, expected_gradient = rows(at)
    assert value == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-9, atol=1e-12)
    assert pooled.log_likelihood(at) == pytest.approx(rows.log_likelihood(at), rel=1e-12)
    # Rows in any order: the same function.
    order = np.random.default_rng(7).permutation(len(x))
    shuffled = pnl.ParetoNBDLikelihood(x[order], tx[order] * scale, T[order] * scale, weights[order])
    assert shuffled(at)[0] == pytest.approx(value, rel=1e-13)
    np.testing.assert_allclose(shuffled(at)[1], gradient, rtol=1e-11, atol=1e-14)


def test_pooled_plain_likelihood_keeps_the_ridge_limit(cdnow_summary: pd.DataFrame) -> None:
    """Out on the s, β → ∞ ridge the pooled objective tends to the one-rate limit as the row-by-row
    one does (test_far_out_on_the_ridge_the_likelihood_is_the_limits): the subtraction
    K(x, t_x) − K(x, T) stays within rounding of the likelihood there too."""
    columns, weights = _columns(cdnow_summary, [])
    x, tx, T = columns["frequency"], columns["recency"], columns["T"]
    r, alpha, mu = 0.6, 12.0, 0.02
    limit = lifetimes_adapter.ParetoNBDLimit(x, tx, T, weights).log_likelihood(np.log([r, alpha, mu]))
    pooled = pnl.ParetoNBDLikelihood(x, tx, T, weights)
    rows = pnl.ParetoNBDCovariateLikelihood(x, tx, T, weights)
    for s in (1e4, 1e8, 1e30):
        theta = np.log([r, alpha, s, s / mu])
        assert pooled.log_likelihood(theta) == pytest.approx(rows.log_likelihood(theta), rel=1e-12), s
    assert abs(pooled.log_likelihood(np.log([r, alpha, 1e30, 1e30 / mu])) - limit) < 1e-8
