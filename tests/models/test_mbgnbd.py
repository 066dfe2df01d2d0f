"""MBG/NBD through the adapter on CDNOW.

Source: Batislam, Denizel & Filiztekin (2007); the values r 0.525, alpha 6.183, a 0.891, b 1.614
are those of BTYDplus and of lifetimes' own tests (REFERENCE.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from clvmodel.models.mbgnbd import ModifiedBetaGeoModel

PUBLISHED = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}


def test_cdnow_published_estimates(cdnow_summary):
    model = ModifiedBetaGeoModel().fit(cdnow_summary)
    for name, value in PUBLISHED.items():
        assert model.params_[name] == pytest.approx(value, abs=1e-3), name
    assert np.isfinite(model.log_likelihood_) and model.log_likelihood_ < 0


def test_one_time_buyers_are_not_certainly_alive(cdnow_summary, cdnow_bgnbd):
    """The one difference from BG/NBD: P(alive | x = 0) < 1 (a customer may leave after the first purchase)."""
    model = ModifiedBetaGeoModel().fit(cdnow_summary)
    x, tx, T = np.zeros(3), np.zeros(3), np.array([1.0, 20.0, 38.0])
    assert np.all(model.p_alive(x, tx, T) < 1)
    np.testing.assert_array_equal(cdnow_bgnbd.p_alive(x, tx, T), 1.0)
    assert np.all(np.diff(model.p_alive(x, tx, T)) < 0)  # the longer the silence, the likelier gone


def test_apparel_40_weeks_converges(apparel) -> None:
    # Issue 13: the CLVTools apparel data, calibration to 2005-10-09 (40 weeks). BG/NBD and
    # Pareto/NBD have no finite optimum there (a ridge, see their tests); MBG/NBD, whose one-time
    # buyers may also drop out, has one: a stationary point of lifetimes' likelihood.
    import datetime as dt
    from autograd import grad
    from lifetimes import ModifiedBetaGeoFitter

    from clvmodel.models import mle

    summary = apparel(dt.date(2005, 10, 9))
    model = ModifiedBetaGeoModel().fit(summary)
    assert model.status_ == "converged" and np.isfinite(model.log_likelihood_)
    x, tx, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    log_params = np.log([model.params_[k] for k in ("r", "alpha", "a", "b")])
    gradient = grad(ModifiedBetaGeoFitter._negative_log_likelihood)(log_params, x.astype(int), tx, T, np.ones(len(x)), 0.0)
    assert np.max(np.abs(gradient)) <= mle.GRADIENT_TOLERANCE  # the mean over customers, in data weeks
    assert all(np.isfinite(v) and v > 0 for v in model.standard_errors_.values())


# --- the numpy likelihood (issue 16): lifetimes is the oracle ----------------------------------------


def _rows(summary):
    from clvmodel.models.base import collapse

    unique, weights, _ = collapse(summary, ["frequency", "recency", "T"])
    return tuple(unique[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")), weights


@pytest.mark.parametrize("theta", [(0.5, 6.0, 0.9, 1.6), (0.1, 0.5, 3.0, 0.2), (2.0, 40.0, 0.05, 30.0),
                                   (0.7, 8.0, 2e3, 5e3)])
def test_likelihood_and_gradient_equal_lifetimes(cdnow_summary, theta) -> None:
    """Value equal to lifetimes' ``_negative_log_likelihood``, gradient to autograd's on it, at points
    around the optimum and far from it (a + b in the thousands)."""
    from autograd import value_and_grad
    from lifetimes import ModifiedBetaGeoFitter

    from clvmodel.models.mbgnbd_likelihood import ModifiedBetaGeoLikelihood

    (x, tx, T), weights = _rows(cdnow_summary)
    log_theta = np.log(theta)
    value, gradient = ModifiedBetaGeoLikelihood(x, tx, T, weights)(log_theta)
    their_value, their_gradient = value_and_grad(ModifiedBetaGeoFitter._negative_log_likelihood)(
        log_theta, x.astype(int), tx, T, weights, 0.0)
    # lifetimes' A2 subtracts four lnΓ of size ~(a + b) ln(a + b): ~1e-12 of noise at a + b = 7,000.
    assert value == pytest.approx(float(their_value), rel=1e-11)
    np.testing.assert_allclose(gradient, np.asarray(their_gradient), rtol=1e-9, atol=1e-13)


def test_gradient_equals_central_differences(cdnow_summary) -> None:
    from clvmodel.models.mbgnbd_likelihood import ModifiedBetaGeoLikelihood

    (x, tx, T), weights = _rows(cdnow_summary)
    objective = ModifiedBetaGeoLikelihood(x, tx, T, weights)
    rng = np.random.default_rng(3)
    for _ in range(3):
        theta = np.log([rng.uniform(0.2, 2), rng.uniform(2, 20), rng.uniform(0.3, 3), rng.uniform(0.5, 5)])
        step = 1e-6
        numeric = [(objective(theta + h)[0] - objective(theta - h)[0]) / (2 * step) for h in np.eye(4) * step]
        np.testing.assert_allclose(objective(theta)[1], numeric, rtol=1e-6, atol=1e-9)


def test_fit_equals_lifetimes_own_fit(cdnow_summary) -> None:
    """The model's fit (numpy likelihood) against ``ModifiedBetaGeoFitter.fit`` on every row: the
    same estimates to 1e-6 relative (measured ~1e-14), standard errors to its autograd Hessian's,
    the same log-likelihood (lifetimes' mean in its rescaled time, back in weeks)."""
    import warnings

    from lifetimes import ModifiedBetaGeoFitter

    model = ModifiedBetaGeoModel().fit(cdnow_summary)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = ModifiedBetaGeoFitter().fit(*(cdnow_summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")))
    for name in PUBLISHED:
        assert model.params_[name] == pytest.approx(float(reference.params_[name]), rel=1e-6), name
        assert model.standard_errors_[name] == pytest.approx(float(reference.standard_errors_[name]), rel=1e-6), name
    (x, tx, T), weights = _rows(cdnow_summary)
    log_theta = np.log([model.params_[k] for k in PUBLISHED])
    their_mean = ModifiedBetaGeoFitter._negative_log_likelihood(log_theta, x.astype(int), tx, T, weights, 0.0)
    assert model.log_likelihood_ == pytest.approx(-float(their_mean) * weights.sum(), abs=1e-8)
    # As before issue 16, when the model fitted through lifetimes' likelihood (the adapter's path).
    from clvmodel.models import lifetimes_adapter

    before = lifetimes_adapter.fit("mbgnbd", {"frequency": x, "recency": tx, "T": T}, weights)
    assert model.log_likelihood_ == pytest.approx(before.log_likelihood, abs=1e-8)
    assert model.log_likelihood_ == pytest.approx(-9582.1357, abs=1e-4)
    for name in PUBLISHED:
        assert model.params_[name] == pytest.approx(before.params[name], rel=1e-10), name
    assert model.status_ == "converged" and model.n_ == 2357


@pytest.mark.parametrize("theta", [(0.5, 6.0, 0.9, 1.6), (0.1, 0.5, 3.0, 0.2), (2.0, 40.0, 0.05, 30.0),
                                   (0.7, 8.0, 2e6, 5e6)])
def test_analytic_hessian_equals_autograd_on_lifetimes(cdnow_summary, theta) -> None:
    """Issue 16: the fit's Hessian (analytic, trigamma differences as sums) against autograd's exact
    Hessian of lifetimes' ``_negative_log_likelihood`` (its mean, times the customers), near the
    optimum, far from it, and with a + b in the millions (where lifetimes' four lnΓ cancel badly,
    so there against central differences of the gradient instead)."""
    from autograd import hessian
    from lifetimes import ModifiedBetaGeoFitter

    from clvmodel.models import mle
    from clvmodel.models.mbgnbd_likelihood import ModifiedBetaGeoLikelihood

    (x, tx, T), weights = _rows(cdnow_summary)
    log_theta = np.log(theta)
    objective = ModifiedBetaGeoLikelihood(x, tx, T, weights)
    got = objective.total_hessian(log_theta)
    if theta[2] < 1e4:
        expected = np.asarray(hessian(ModifiedBetaGeoFitter._negative_log_likelihood)(
            log_theta, x.astype(int), tx, T, weights, 0.0)) * weights.sum()
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-8 * np.abs(expected).max())
    else:
        expected = mle.central_hessian(lambda t: objective(t)[1], log_theta) * weights.sum()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


def test_rows_in_any_order_give_the_same_likelihood(cdnow_summary) -> None:
    """The objective sorts its rows by x (per-x sums over contiguous runs): any order, the same values."""
    from clvmodel.models.mbgnbd_likelihood import ModifiedBetaGeoLikelihood

    (x, tx, T), weights = _rows(cdnow_summary)
    order = np.random.default_rng(11).permutation(len(x))
    theta = np.log([0.5, 6.0, 0.9, 1.6])
    sorted_rows = ModifiedBetaGeoLikelihood(x, tx, T, weights)
    shuffled = ModifiedBetaGeoLikelihood(x[order], tx[order], T[order], weights[order])
    assert shuffled(theta)[0] == pytest.approx(sorted_rows(theta)[0], rel=1e-13)
    np.testing.assert_allclose(shuffled(theta)[1], sorted_rows(theta)[1], rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(shuffled.total_hessian(theta), sorted_rows.total_hessian(theta), rtol=1e-11)
