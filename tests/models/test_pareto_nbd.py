"""Pareto/NBD through the adapter: published CDNOW values, reproducibility, convergence checks.

Sources (REFERENCE.md):
[FHL05n] Fader, Hardie & Lee (2005), "A note on implementing the Pareto/NBD model in MATLAB":
         CDNOW r 0.553, alpha 10.578, s 0.606, beta 11.669; log-likelihood -9595.0.
[BTYD]   R BTYD walkthrough: customer x=26, t_x=30.85714, T=31: E[Y(52)] 25.45647, P(alive) 0.997874.
[CLV]    R CLVTools 0.12.1 on its apparel data (tests/data/apparel), weeks, estimation split 104:
         r 1.449, alpha 48.64, s 0.5613, beta 46.88, LL -5848.098 (REFERENCE.md).
[N009]   Fader & Hardie (2005), "A note on deriving the Pareto/NBD model and related expressions",
         equation (18): the likelihood whose s, beta -> infinity limit is checked here.
"""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad

from clvmodel.errors import ConvergenceFailure
from clvmodel.models import lifetimes_adapter, mle, pareto_nbd_likelihood
from clvmodel.models.base import collapse
from clvmodel.models.pareto_nbd import ParetoNBDModel

PUBLISHED = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


@pytest.fixture(scope="module")
def fitted(cdnow_summary):
    return ParetoNBDModel().fit(cdnow_summary)


def test_cdnow_published_estimates(fitted):
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, abs=1e-3), name  # [FHL05n]
    assert fitted.log_likelihood_ == pytest.approx(-9595.0, abs=0.05)  # [FHL05n]
    assert fitted.n_ == 2357
    assert all(np.isfinite(v) and v > 0 for v in fitted.standard_errors_.values())


def test_fit_equals_the_lifetimes_likelihood_path(cdnow_summary, fitted):
    """Issue 16: the numpy likelihood's fit against the fit of lifetimes' own likelihood (BFGS with a
    central-difference gradient, the model's path before): the same optimum (measured ~4e-9
    relative; that path's gradient carries ~1e-8 of differencing error), the same likelihood."""
    columns, weights = _rows(cdnow_summary)
    reference = lifetimes_adapter.fit("pareto_nbd", columns, weights)
    for name, value in reference.params.items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-6), name
        assert fitted.standard_errors_[name] == pytest.approx(reference.standard_errors[name], rel=1e-4), name
    assert fitted.log_likelihood_ == pytest.approx(reference.log_likelihood, abs=1e-6)
    assert fitted.status_ == "converged"


def test_fit_equals_lifetimes_own_fit(cdnow_summary, fitted):
    """lifetimes' ``ParetoNBDFitter.fit`` (Nelder-Mead from a random start, here seeded, to its
    default ``tol``) ends at the same optimum; its likelihood there equals ours."""
    from lifetimes import ParetoNBDFitter

    np.random.seed(16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = ParetoNBDFitter().fit(*(cdnow_summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")),
                                          tol=1e-12, maxiter=20_000)
    for name in PUBLISHED:
        assert fitted.params_[name] == pytest.approx(float(reference.params_[name]), rel=1e-6), name
    columns, weights = _rows(cdnow_summary)
    theirs = lifetimes_adapter.ParetoNBDObjective(*columns.values(), weights)
    at_theirs = theirs.log_likelihood(np.log([float(reference.params_[k]) for k in PUBLISHED]))
    assert fitted.log_likelihood_ == pytest.approx(at_theirs, abs=1e-6)


def test_fit_is_reproducible(cdnow_summary, fitted):
    """lifetimes starts Pareto/NBD at random values; the adapter's fixed start makes refits identical."""
    assert ParetoNBDModel().fit(cdnow_summary).params_ == fitted.params_


def test_btyd_customer_forecasts():
    model = ParetoNBDModel.from_dict({"params": {"r": 0.5533, "alpha": 10.5776, "s": 0.6061, "beta": 11.6690}})
    x, tx, T = np.array([26.0]), np.array([30.85714]), np.array([31.0])
    assert model.expected_purchases(x, tx, T, t=52.0)[0] == pytest.approx(25.45647, rel=1e-3)  # [BTYD]
    assert model.p_alive(x, tx, T)[0] == pytest.approx(0.997874, abs=1e-4)  # [BTYD]


def test_last_purchase_on_the_last_day_gives_finite_forecasts():
    """lifetimes returns NaN for t_x = T with large x; P(alive) is exactly 1 there (a purchase at T)."""
    model = ParetoNBDModel.from_dict({"params": {"r": 0.553, "alpha": 74.0, "s": 0.606, "beta": 81.7}})
    x = np.array([150.0, 1000.0, 10000.0])
    T = np.array([700.0, 7300.0, 7300.0])
    alive = model.p_alive(x, T, T)
    expected = model.expected_purchases(x, T, T, t=365.0)
    np.testing.assert_array_equal(alive, [1.0, 1.0, 1.0])
    assert np.all(np.isfinite(expected)) and np.all(expected > 0)
    # Continuity: one day earlier lifetimes' own formula applies, and the values nearly agree.
    earlier = model.expected_purchases(x, T - 1e-6, T, t=365.0)
    np.testing.assert_allclose(earlier, expected, rtol=1e-4)


@pytest.mark.parametrize("path", ["numpy", "lifetimes"])
def test_stopping_early_is_reported_not_returned(cdnow_summary, path):
    # After 20 iterations one start's gradient is already below the tolerance (6e-4 per customer,
    # along the flat s, beta direction) 3.7 log-likelihood units below the optimum: a stop cut
    # short by the iteration budget is not an optimum, whatever its gradient.
    unique, weights, _ = collapse(cdnow_summary, ["frequency", "recency", "T"])
    columns = {c: unique[c].to_numpy() for c in ("frequency", "recency", "T")}
    with pytest.raises(ConvergenceFailure, match=r"^pareto_nbd fit did not converge from any of 3 starts \(message: "
                                                 r"Maximum number of iterations has been exceeded\.\)"):
        if path == "numpy":
            pareto_nbd_likelihood.fit(columns, weights, maxiter=20)
        else:
            lifetimes_adapter.fit("pareto_nbd", columns, weights, maxiter=20)


# --- the apparel data (CLVTools), issue 13 -----------------------------------------------------------


def _rows(summary: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray]:
    unique, weights, _ = collapse(summary, ["frequency", "recency", "T"])
    return {c: unique[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")}, weights


@pytest.fixture(scope="module")
def apparel_40(apparel) -> pd.DataFrame:
    """Calibration to 2005-10-09: 40 weeks after every customer's first purchase on 2005-01-02."""
    return apparel(dt.date(2005, 10, 9))


def test_apparel_104_weeks_equals_clvtools(apparel) -> None:
    summary = apparel(dt.date(2006, 12, 31))
    model = ParetoNBDModel().fit(summary)
    assert model.status_ == "converged" and model.n_ == 600
    # CLVTools' optimiser stops ~1e-4 (relative) away along the flattest direction of alpha and
    # beta: its printed alpha 48.64 is 48.6349 here. The likelihood agrees to its printed digits,
    # and this fit's is no lower than at CLVTools' printed point.
    published = {"r": 1.449, "alpha": 48.64, "s": 0.5613, "beta": 46.88}  # [CLV]
    for name, value in published.items():
        assert model.params_[name] == pytest.approx(value, rel=2e-4), name
    assert model.log_likelihood_ == pytest.approx(-5848.098, abs=6e-4)  # [CLV]
    columns, weights = _rows(summary)
    objective = lifetimes_adapter.ParetoNBDObjective(*columns.values(), weights)
    assert model.log_likelihood_ >= objective.log_likelihood(np.log(list(published.values())))


def test_apparel_40_weeks_has_no_finite_optimum_and_reports_the_limit(apparel_40: pd.DataFrame) -> None:
    # Issue 13: lifetimes' fit ended here "at a non-finite likelihood": the likelihood rises as
    # s, beta -> inf with beta/s fixed (one dropout rate for everyone), lifetimes' 2F1 overflows on
    # the way (s ~ 150), and its t_x = T rows turn NaN. The fit now reports the limit.
    with pytest.warns(UserWarning, match=r"^pareto_nbd: these data have no finite maximum-likelihood estimate: the "
                                         r"likelihood rises as s, beta -> inf with beta/s = 12\d fixed"):
        model = ParetoNBDModel().fit(apparel_40)
    assert model.status_ == mle.RIDGE
    mu = model.limit_["dropout_rate"]
    assert model.params_["s"] == lifetimes_adapter.PARETO_RIDGE_S
    assert model.params_["s"] / model.params_["beta"] == pytest.approx(mu, rel=1e-12)
    assert np.isnan(model.standard_errors_["s"]) and np.isnan(model.standard_errors_["beta"])
    assert all(np.isfinite(model.standard_errors_[k]) and model.standard_errors_[k] > 0 for k in ("r", "alpha"))
    assert np.isfinite(model.log_likelihood_)
    # The limit is a maximum (the gradient criterion of every fit), in the data's weeks ...
    columns, weights = _rows(apparel_40)
    limit = lifetimes_adapter.ParetoNBDLimit(*columns.values(), weights)
    at = np.log([model.limit_["r"], model.limit_["alpha"], mu])
    value, gradient = limit(at)
    assert np.max(np.abs(gradient)) <= mle.GRADIENT_TOLERANCE * 1e-3
    assert limit.log_likelihood(at) == pytest.approx(model.log_likelihood_, abs=1e-8)  # (the fit works in T / 40)
    # ... above every finite point: the Pareto/NBD likelihood rises towards it as s grows (the
    # profile over r, alpha and beta/s at fixed s, from the limit's point).
    finite = lifetimes_adapter.ParetoNBDObjective(*columns.values(), weights)
    profile = []
    for s in (1.0, 5.0, 25.0):
        def at_s(z, log_s=np.log(s)):
            value, gradient = finite(np.array([z[0], z[1], log_s, log_s + z[2]]))
            return value, gradient[[0, 1, 3]]
        stop = mle.search(at_s, [np.array([at[0], at[1], -at[2]])], tol=1e-9)[0]
        profile.append(-stop.fun * finite.total_weight)
    assert profile[0] < profile[1] < profile[2] < model.log_likelihood_, profile


def test_apparel_40_weeks_ridge_forecasts_are_the_limits(apparel_40: pd.DataFrame) -> None:
    # Continuity: lifetimes' forecasts at finite s approach the limit's closed forms as ~1/s.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = ParetoNBDModel().fit(apparel_40)
    x = np.array([0.0, 1.0, 3.0, 10.0, 3.0])
    tx = np.array([0.0, 5.0, 30.0, 39.0, 40.0])
    T = np.full(5, 40.0)
    alive, expected = model.p_alive(x, tx, T), model.expected_purchases(x, tx, T, t=39.0)
    assert np.all((alive > 0) & (alive <= 1)) and np.all(np.isfinite(expected) & (expected > 0))
    mu = model.limit_["dropout_rate"]
    for s in (10.0, 100.0):
        finite = {**model.params_, "s": s, "beta": s / mu}
        close = lifetimes_adapter.probability_alive("pareto_nbd", finite, x, tx, T)
        np.testing.assert_allclose(close, alive, rtol=0.1 / s)
        close = lifetimes_adapter.conditional_expected_purchases("pareto_nbd", finite, 39.0, x, tx, T)
        np.testing.assert_allclose(close, expected, rtol=0.2 / s)
    # A new customer: lifetimes' closed form at s = 1e8 is the limit's r (1 - e^(-mu t)) / (alpha mu).
    t = np.array([39.0, 100.0])
    limit = model.params_["r"] / (model.params_["alpha"] * mu) * -np.expm1(-mu * t)
    np.testing.assert_allclose(model.expected_purchases_new(t), limit, rtol=1e-7)


@pytest.mark.parametrize(
    ("r", "alpha", "mu", "x", "tx", "T"),
    [(1.3, 47.2, 0.0083, 0, 0.0, 40.0), (1.3, 47.2, 0.0083, 3, 12.5, 40.0), (0.2, 0.05, 0.5, 40, 1.0, 100.0),
     (3.0, 2.0, 2.0, 14, 9.4, 14.0), (0.4, 50.0, 0.5, 20, 3.4, 40.3), (0.5, 4.0, 1e-5, 900, 80.0, 104.0)],
)
def test_limit_likelihood_is_equation_18_as_s_and_beta_grow(r, alpha, mu, x, tx, T) -> None:
    # [N009] with the dropout rate fixed at mu: L = Γ(r+x)/Γ(r) α^r [e^(-μT)(α+T)^(-r-x)
    # + μ ∫_{t_x}^{T} e^(-μτ)(α+τ)^(-r-x) dτ], integrated here by adaptive quadrature (in log
    # space: the integrand spans hundreds of orders of magnitude for frequent buyers).
    k = r + x
    top = mu * (T - tx) + k * np.log((alpha + T) / (alpha + tx))  # largest exponent, at τ = t_x

    def scaled(w: float) -> float:  # e^(μ(T-τ)) ((α+T)/(α+τ))^k / e^top, with w = T - τ
        return np.exp(mu * w + k * np.log((alpha + T) / (alpha + T - w)) - top)

    integral = quad(scaled, 0.0, T - tx, epsabs=0.0, epsrel=1e-13, limit=500)[0]
    log_r = np.log(mu) + top + np.log(integral)
    got = lifetimes_adapter.pareto_limit_log_r(mu, alpha, k, tx, T)
    assert np.logaddexp(0.0, got) == pytest.approx(np.logaddexp(0.0, log_r), abs=1e-10)


def test_last_purchase_at_the_end_is_exact_where_lifetimes_gives_nan() -> None:
    # t_x = T: no dropout time between them, ln L is the closed first term of [N009] (18), which
    # lifetimes computes as the log of a difference of two equal numbers: NaN once they overflow.
    x, tx, T = np.array([3.0, 4.0, 2.0]), np.array([40.0, 40.0, 17.0]), np.array([40.0, 40.0, 40.0])
    objective = lifetimes_adapter.ParetoNBDObjective(x, tx, T, np.ones(3))
    from lifetimes import ParetoNBDFitter
    from scipy.special import gammaln

    for r, alpha, s, beta in ((1.3, 47.2, 0.6, 46.9), (1.3, 47.2, 400.0, 48000.0)):
        rows = objective.rows(np.log([r, alpha, s, beta]))
        first = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) - (r + x) * np.log(alpha + T) \
            - s * np.log(beta + T)
        np.testing.assert_allclose(rows[:2], first[:2], rtol=1e-14)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = ParetoNBDFitter._conditional_log_likelihood((r, alpha, s, beta), x, tx, T)
        if s < 1:  # where lifetimes' function is finite, it is this one
            np.testing.assert_allclose(rows, theirs, rtol=1e-12)
        else:
            assert np.isnan(theirs[:2]).all() and np.isfinite(rows[:2]).all()


def test_apparel_40_weeks_ridge_is_the_same_under_last_bit_perturbations(apparel_40: pd.DataFrame) -> None:
    # "Another machine": data perturbed in the last bits, the start by ~1e-3. The finite search stops
    # wherever BFGS runs out along s (lifetimes' 2F1 gave out first, before issue 16); the reported
    # limit moves by ~1e-9 (measured), far below any printed digit.
    columns, weights = _rows(apparel_40)
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reference = pareto_nbd_likelihood.fit(columns, weights)
        for _ in range(2):
            tx = np.minimum(columns["recency"] * (1 + rng.integers(-4, 5, len(weights)) * np.finfo(float).eps),
                            columns["T"])
            got = pareto_nbd_likelihood.fit({**columns, "recency": tx}, weights,
                                            initial_params=np.exp(rng.normal(0.0, 1e-3, 4)))
            assert got.status == mle.RIDGE
            for name in ("r", "alpha", "dropout_rate"):
                assert got.limit[name] == pytest.approx(reference.limit[name], rel=1e-7), name
            assert got.log_likelihood == pytest.approx(reference.log_likelihood, abs=1e-6)


# --- forecasts in numpy (issue 16) -------------------------------------------------------------------


def _lifetimes_forecasts(params, x, tx, T, t):
    from lifetimes import ParetoNBDFitter

    fitter = ParetoNBDFitter()
    fitter.params_ = pd.Series(params, dtype=float)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (np.asarray(fitter.conditional_probability_alive(x, tx, T), dtype=float),
                np.asarray(fitter.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T), dtype=float),
                float(fitter.expected_number_of_purchases_up_to_time(t)))


def test_forecasts_equal_lifetimes_where_its_are_finite(cdnow_summary) -> None:
    params = dict(zip(PUBLISHED, (0.5533, 10.5776, 0.6061, 11.6690)))
    model = ParetoNBDModel.from_dict({"params": params})
    x, tx, T = (cdnow_summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    alive, expected, new = _lifetimes_forecasts(params, x, tx, T, 39.0)
    finite = np.isfinite(alive) & np.isfinite(expected)
    assert finite.mean() > 0.99
    np.testing.assert_allclose(model.p_alive(x, tx, T)[finite], alive[finite], rtol=1e-10)
    np.testing.assert_allclose(model.expected_purchases(x, tx, T, t=39.0)[finite], expected[finite], rtol=1e-9)
    assert model.expected_purchases_new(39.0) == pytest.approx(new, rel=1e-12)


@pytest.mark.parametrize("s", [1e3, 3e3, 5e4, 9e5])
def test_forecasts_are_finite_where_lifetimes_gives_nan_and_equal_quadrature(s) -> None:
    """s from ~1e3 to 1e6 (where the ridge's limit forms do not yet apply): lifetimes' ₂F₁ is NaN
    (measured: finite at s = 300, NaN for x ≤ 2 at 1e3, for all four rows from 1e4); ours equal adaptive quadrature of equation (18)'s two terms [N009] and of
    E[λ (1 − e^(−μt))/μ] over the Gamma posteriors."""
    from scipy.stats import gamma

    mu = 0.02
    params = {"r": 1.3, "alpha": 47.0, "s": s, "beta": s / mu}
    model = ParetoNBDModel.from_dict({"params": params})
    x, tx, T, t = np.array([0.0, 2.0, 12.0, 40.0]), np.array([0.0, 10.0, 33.0, 25.5]), np.array([40.0, 40.0, 40.0, 40.0]), 52.0
    alive_theirs, expected_theirs, _ = _lifetimes_forecasts(params, x, tx, T, t)
    assert np.isnan(alive_theirs[:2]).all() and np.isnan(expected_theirs[:2]).all()
    alive, expected = model.p_alive(x, tx, T), model.expected_purchases(x, tx, T, t=t)
    r, alpha, beta = params["r"], params["alpha"], params["beta"]
    for i in range(len(x)):
        k = r + x[i]
        # alive: (α+T)^-k (1+T/β)^-s; dead: s/β ∫ (α+τ)^-k (1+τ/β)^-(s+1) dτ, both scaled by (α+t_x)^k.
        log_alive = -k * np.log((alpha + T[i]) / (alpha + tx[i])) - s * np.log1p(T[i] / beta)
        integrand = lambda tau: np.exp(-k * np.log((alpha + tau) / (alpha + tx[i])) - (s + 1) * np.log1p(tau / beta))
        dead = s / beta * quad(integrand, tx[i], T[i], epsabs=0.0, epsrel=1e-13, limit=500)[0]
        expected_alive = 1.0 / (1.0 + dead * np.exp(-log_alive))
        assert alive[i] == pytest.approx(expected_alive, rel=1e-10), i
        posterior = gamma(s, scale=1.0 / (beta + T[i]))
        lo, hi = posterior.ppf(1e-15), posterior.ppf(1 - 1e-15)
        life = quad(lambda m: -np.expm1(-m * t) / m * posterior.pdf(m), lo, hi, epsabs=0.0, epsrel=1e-11, limit=500)[0]
        assert expected[i] == pytest.approx(expected_alive * k / (alpha + T[i]) * life, rel=1e-8), i
    assert np.all(np.isfinite(model.expected_purchases_new(np.array([1.0, 52.0, 520.0]))))
    prior = gamma(s, scale=1.0 / beta)
    lo, hi = prior.ppf(1e-15), prior.ppf(1 - 1e-15)
    life = quad(lambda m: -np.expm1(-m * t) / m * prior.pdf(m), lo, hi, epsabs=0.0, epsrel=1e-11, limit=500)[0]
    assert model.expected_purchases_new(t) == pytest.approx(r / alpha * life, rel=1e-8)
