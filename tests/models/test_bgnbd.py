"""Tests for the BG/NBD purchase model (clvmodel.models.bgnbd) on CDNOW and by formula.

Sources (values also listed in /work/shared/REFERENCE.md):
[FHL05] Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to the
        Pareto/NBD model", Marketing Science 24(2): the CDNOW estimates r, alpha, a, b; equations
        (6) likelihood, (9) E[X(t)], (10) E[Y(t) | x, t_x, T].
[BTYD]  The R BTYD package walkthrough (full-precision estimates, LL, the x = 26 customer, E[X(52)]).
[HSS]   Hardie's BG/NBD spreadsheet (E[X(t)] for a new customer; E[Y(39)] for x=2, t_x=30.43, T=38.86).
[LT]    lifetimes documentation, quickstart (standard errors of the CDNOW fit).
[N027]  Hardie, note 027 / pymc-marketing tests (log-likelihood at a=0.8, b=2.5, r=0.25, alpha=4, T=40).
[LTF]   lifetimes 0.11.3 itself: ``BetaGeoFitter._negative_log_likelihood`` (its autograd gradient)
        and ``BetaGeoFitter.fit``, the oracle of clvmodel's numpy likelihood and fit (issue 7).
[CLV]   R CLVTools 0.12.1 on its apparel data (tests/data/apparel), weeks, estimation split 104:
        r 0.6073, alpha 20.96, a 1.276, b 8.861, LL -5857.020 (REFERENCE.md).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln, gammaln, hyp2f1

from clvmodel.errors import ClvError, ConvergenceFailure
from clvmodel.models import bgnbd_forecast, bgnbd_likelihood, mle
from clvmodel.models.base import collapse
from clvmodel.models.bgnbd import BetaGeoModel
from clvmodel.models.bgnbd_simulate import simulate_summary

PARAMS = ("r", "alpha", "a", "b")
# [FHL05], section 5 (CDNOW, 39 calibration weeks).
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
# [BTYD] walkthrough, bgnbd.EstimateParameters on the same summary.
FULL = {"r": 0.2425982, "alpha": 4.4136842, "a": 0.7929899, "b": 2.4261667}
# [LT] quickstart, BetaGeoFitter on cdnow_customers_summary.
STANDARD_ERRORS = {"r": 0.012557, "alpha": 0.378221, "a": 0.185719, "b": 0.705345}


def _published_model() -> BetaGeoModel:
    return BetaGeoModel.from_dict({"params": FULL})


def _rfm(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))  # type: ignore[return-value]


def bgnbd_log_likelihood(r, alpha, a, b, x, tx, T) -> np.ndarray:
    """Per-customer ln L, equation (6) of [FHL05], written here independently of lifetimes."""
    x, tx, T = (np.asarray(v, dtype=float) for v in (x, tx, T))
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    first = betaln(a, b + x) - betaln(a, b) + common - (r + x) * np.log(alpha + T)
    second = np.where(
        x > 0,
        betaln(a + 1, b + np.maximum(x, 1) - 1) - betaln(a, b) + common - (r + x) * np.log(alpha + tx),
        -np.inf,
    )
    return np.logaddexp(first, second)


def expected_new(r, alpha, a, b, t) -> np.ndarray:
    """E[X(t)], equation (9) of [FHL05], with scipy's Gauss hypergeometric function."""
    t = np.asarray(t, dtype=float)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def test_reference_likelihood_formula_matches_note_027() -> None:
    # [N027]: BG/NBD at a=0.8, b=2.5, r=0.25, alpha=4, T=40: (0, 0) -> -0.59947382, (200, 38) -> 100.7957.
    got = bgnbd_log_likelihood(0.25, 4.0, 0.8, 2.5, [0, 200], [0, 38], [40, 40])
    assert got[0] == pytest.approx(-0.59947382, abs=1e-8)
    assert got[1] == pytest.approx(100.7957, abs=1e-4)


# --- the CDNOW fit ----------------------------------------------------------------------------


def test_cdnow_published_estimates(cdnow_bgnbd: BetaGeoModel) -> None:
    # [FHL05]: r 0.243, alpha 4.414, a 0.793, b 2.426 (three decimals).
    for name in PARAMS:
        assert cdnow_bgnbd.params_[name] == pytest.approx(PUBLISHED[name], abs=5e-4), name
    assert list(cdnow_bgnbd.params_) == list(PARAMS)


def test_cdnow_full_precision_estimates_and_log_likelihood(cdnow_bgnbd: BetaGeoModel) -> None:
    # [BTYD]: 0.2425982, 4.4136842, 0.7929899, 2.4261667; LL -9582.429.
    for name in PARAMS:
        assert cdnow_bgnbd.params_[name] == pytest.approx(FULL[name], rel=1e-3), name
    assert cdnow_bgnbd.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)
    assert cdnow_bgnbd.log_likelihood_ == pytest.approx(-9582.429, abs=0.01)
    assert cdnow_bgnbd.n_ == 2357


def test_cdnow_log_likelihood_is_the_sum_of_equation_6(cdnow_bgnbd: BetaGeoModel, cdnow_summary: pd.DataFrame) -> None:
    p = cdnow_bgnbd.params_
    total = bgnbd_log_likelihood(p["r"], p["alpha"], p["a"], p["b"], *_rfm(cdnow_summary)).sum()
    assert cdnow_bgnbd.log_likelihood_ == pytest.approx(total, rel=1e-10)


def test_cdnow_is_a_maximum(cdnow_bgnbd: BetaGeoModel, cdnow_summary: pd.DataFrame) -> None:
    p = np.array([cdnow_bgnbd.params_[k] for k in PARAMS])
    best = bgnbd_log_likelihood(*p, *_rfm(cdnow_summary)).sum()
    for i in range(4):
        for step in (0.99, 1.01):
            moved = p.copy()
            moved[i] *= step
            assert bgnbd_log_likelihood(*moved, *_rfm(cdnow_summary)).sum() < best


def test_cdnow_standard_errors(cdnow_bgnbd: BetaGeoModel) -> None:
    # [LT] quickstart: r 0.012557, alpha 0.378221, a 0.185719, b 0.705345.
    for name in PARAMS:
        assert cdnow_bgnbd.standard_errors_[name] == pytest.approx(STANDARD_ERRORS[name], rel=1e-3), name


def _lifetimes_fit(summary: pd.DataFrame):
    import lifetimes  # the reference implementation only; clvmodel reaches it through its adapter

    with warnings.catch_warnings():  # lifetimes' fit resets the warning filters
        return lifetimes.BetaGeoFitter().fit(*_rfm(summary))


def test_weighted_fit_equals_lifetimes_on_all_rows(cdnow_bgnbd: BetaGeoModel, cdnow_summary: pd.DataFrame) -> None:
    # [LTF]: the same start, optimiser, tolerance and time scale give lifetimes' estimates to rounding
    # (measured 1e-13), and the central-difference Hessian its autograd standard errors (measured 2e-9).
    reference = _lifetimes_fit(cdnow_summary)
    for name in PARAMS:
        assert cdnow_bgnbd.params_[name] == pytest.approx(float(reference.params_[name]), rel=1e-8), name
        assert cdnow_bgnbd.standard_errors_[name] == pytest.approx(float(reference.standard_errors_[name]), rel=1e-6)


def test_fit_ignores_row_order_and_extra_columns(cdnow_bgnbd: BetaGeoModel, cdnow_summary: pd.DataFrame) -> None:
    shuffled = cdnow_summary.sample(frac=1.0, random_state=3)[["T", "recency", "frequency"]].reset_index(drop=True)
    refit = BetaGeoModel().fit(shuffled)
    for name in PARAMS:
        assert refit.params_[name] == pytest.approx(cdnow_bgnbd.params_[name], rel=1e-9)


# --- the numpy likelihood and its gradient against lifetimes [LTF] ------------------------------


def _lifetimes_value_and_gradient(log_params: np.ndarray, x, tx, T, w) -> tuple[float, np.ndarray]:
    import lifetimes
    from autograd import value_and_grad

    with warnings.catch_warnings():  # lifetimes' likelihood resets the warning filters
        value, gradient = value_and_grad(lifetimes.BetaGeoFitter._negative_log_likelihood)(
            np.asarray(log_params, dtype=float), np.asarray(x).astype(int), tx, T, w, 0.0
        )
    return float(value), np.asarray(gradient, dtype=float)


def _collapsed_cdnow(summary: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """CDNOW's distinct (x, t_x, T) rows in lifetimes' rescaled time, and their weights."""
    unique, weights, _ = collapse(summary, ["frequency", "recency", "T"])
    x, tx, T = (unique[c].to_numpy() for c in ("frequency", "recency", "T"))
    scale = bgnbd_likelihood.time_scale(T)
    return x, tx * scale, T * scale, weights


_POINTS = np.vstack([
    np.log([0.2425982, 4.4136842 / 38.86, 0.7929899, 2.4261667]),  # near the CDNOW optimum (rescaled alpha)
    np.random.default_rng(11).normal(0.0, 1.5, size=(6, 4)),  # anywhere an optimiser may probe
])


@pytest.mark.parametrize("rows", ["all", "one-time buyers", "repeat buyers"])
@pytest.mark.parametrize("point", range(len(_POINTS)))
def test_numpy_likelihood_and_gradient_equal_lifetimes(cdnow_summary: pd.DataFrame, rows: str, point: int) -> None:
    x, tx, T, w = _collapsed_cdnow(cdnow_summary)
    keep = {"all": x >= 0, "one-time buyers": x == 0, "repeat buyers": x > 0}[rows]
    x, tx, T, w = x[keep], tx[keep], T[keep], w[keep]
    value, gradient = bgnbd_likelihood.BetaGeoLikelihood(x, tx, T, w)(_POINTS[point])
    expected_value, expected_gradient = _lifetimes_value_and_gradient(_POINTS[point], x, tx, T, w)
    assert value == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-8, atol=1e-12)


@pytest.fixture(scope="module")
def tied_rows() -> tuple[np.ndarray, ...]:
    """3,000 simulated customers with ages of 20, 30 or 39 weeks and purchase times to the whole week:
    many rows share T, t_x or both (and x), unsorted, weights 1 to 4 (issue 16's pooling by T and t_x)."""
    rng = np.random.default_rng(16)
    summary = simulate_summary(rng, {"r": 0.6, "alpha": 5.0, "a": 0.8, "b": 2.5}, rng.choice([20.0, 30.0, 39.0], 3000))
    x, tx, T = _rfm(summary)
    tx = np.floor(tx)
    assert len(np.unique(T)) == 3 and len(np.unique(tx)) < 40 and np.any(np.diff(x) < 0)
    return x, tx / 39.0, T / 39.0, rng.integers(1, 5, len(x)).astype(float)


@pytest.mark.parametrize("theta", [(0.6, 0.13, 0.8, 2.5), (0.1, 0.01, 3.0, 0.2), (2.0, 1.0, 0.05, 30.0),
                                   (0.7, 0.2, 200.0, 500.0)])
def test_pooled_likelihood_and_gradient_equal_lifetimes_on_tied_rows(tied_rows, theta) -> None:
    # [LTF] value and autograd gradient, and the row-by-row equation (6) of [FHL05] (this file's own,
    # as the likelihood was computed before issue 16's pooling), to 1e-10 relative.
    x, tx, T, w = tied_rows
    log_theta = np.log(theta)
    objective = bgnbd_likelihood.BetaGeoLikelihood(x, tx, T, w)
    value, gradient = objective(log_theta)
    expected_value, expected_gradient = _lifetimes_value_and_gradient(log_theta, x, tx, T, w)
    assert value == pytest.approx(expected_value, rel=1e-10)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-10, atol=1e-13)
    rows = float(np.sum(w * bgnbd_log_likelihood(*theta, x, tx, T)))
    assert objective.log_likelihood(log_theta) == pytest.approx(rows, rel=1e-10)
    assert value == pytest.approx(-rows / w.sum(), rel=1e-10)


def test_numpy_likelihood_is_equation_6(cdnow_summary: pd.DataFrame) -> None:
    x, tx, T = _rfm(cdnow_summary)
    likelihood = bgnbd_likelihood.BetaGeoLikelihood(x, tx, T, np.ones(len(x)))
    total = likelihood.log_likelihood(np.log(list(FULL.values())))
    assert total == pytest.approx(bgnbd_log_likelihood(*FULL.values(), x, tx, T).sum(), rel=1e-12)
    assert total == pytest.approx(-9582.429, abs=0.01)  # [BTYD]


def test_central_difference_hessian_equals_autograd(cdnow_summary: pd.DataFrame) -> None:
    import lifetimes
    from autograd import hessian

    from clvmodel.models import mle

    x, tx, T, w = _collapsed_cdnow(cdnow_summary)
    likelihood = bgnbd_likelihood.BetaGeoLikelihood(x, tx, T, w)
    at = _POINTS[0]
    with warnings.catch_warnings():
        exact = hessian(lifetimes.BetaGeoFitter._negative_log_likelihood)(at, x.astype(int), tx, T, w, 0.0)
    np.testing.assert_allclose(mle.central_hessian(lambda theta: likelihood(theta)[1], at), exact, rtol=1e-6, atol=1e-9)


# --- the fit against lifetimes' fit on synthetic data [LTF] ------------------------------------


def test_synthetic_fit_equals_lifetimes_fit() -> None:
    rng = np.random.default_rng(5)
    ages = rng.uniform(30.0, 365.0, 4000)  # days since the first purchase
    # The model's own story (clvmodel.models.bgnbd_simulate), to 0.1 day so that rows collapse.
    summary = simulate_summary(rng, {"r": 0.8, "alpha": 40.0, "a": 0.9, "b": 3.0}, ages).round({"recency": 1, "T": 1})
    assert (summary["frequency"] > 0).mean() > 0.4 and (summary["frequency"] == 0).any()
    model = BetaGeoModel().fit(summary)
    reference = _lifetimes_fit(summary)
    for name in PARAMS:
        assert model.params_[name] == pytest.approx(float(reference.params_[name]), rel=1e-8), name
        assert model.standard_errors_[name] == pytest.approx(float(reference.standard_errors_[name]), rel=1e-6), name
    total = bgnbd_log_likelihood(*(model.params_[k] for k in PARAMS), *_rfm(summary)).sum()
    assert model.log_likelihood_ == pytest.approx(total, rel=1e-10)
    assert model.params_["alpha"] == pytest.approx(40.0, rel=0.3)  # the story's alpha, in days


def test_collapsed_fit_equals_the_fit_on_all_rows(cdnow_summary: pd.DataFrame) -> None:
    x, tx, T = _rfm(cdnow_summary)
    collapsed = BetaGeoModel().fit(cdnow_summary)
    rows = bgnbd_likelihood.fit({"frequency": x, "recency": tx, "T": T}, np.ones(len(x)))
    for name in PARAMS:
        assert rows.params[name] == pytest.approx(collapsed.params_[name], rel=1e-8)
    assert rows.log_likelihood == pytest.approx(collapsed.log_likelihood_, rel=1e-12)


def test_failed_optimiser_is_one_line_convergence_failure(cdnow_summary: pd.DataFrame, capsys) -> None:
    x, tx, T = _rfm(cdnow_summary)
    with pytest.raises(
        ConvergenceFailure,
        match=r"^bgnbd fit did not converge from any of 3 starts \(message: Maximum number of iterations has "
        r"been exceeded\.\); check",
    ) as err:
        bgnbd_likelihood.fit({"frequency": x, "recency": tx, "T": T}, np.ones(len(x)), maxiter=1)
    assert "\n" not in str(err.value) and isinstance(err.value, ClvError)
    assert capsys.readouterr().out == ""


def test_a_gradient_that_does_not_vanish_is_reported(cdnow_summary: pd.DataFrame) -> None:
    # A loose tolerance lets BFGS declare success early; the gradient check at the optimum catches it.
    x, tx, T = _rfm(cdnow_summary)
    stopped = r"^bgnbd fit stopped before the optimum \(largest gradient 0\.\d+ per"
    with pytest.raises(ConvergenceFailure, match=stopped):
        bgnbd_likelihood.fit({"frequency": x, "recency": tx, "T": T}, np.ones(len(x)), tol=0.1)


def test_fit_rejects_recency_after_T() -> None:
    summary = pd.DataFrame({"frequency": [1, 2, 2, 0], "recency": [5.0, 12.0, 12.0, 0.0], "T": [10.0, 11.0, 11.0, 9.0]})
    with pytest.raises(ClvError, match=r"^bgnbd: 2 of 4 customers have recency > T; check the RFM summary$"):
        BetaGeoModel().fit(summary)


# --- forecasts at the published parameters ----------------------------------------------------


def test_expected_purchases_new_customer_hardie_spreadsheet() -> None:
    model = _published_model()
    t = np.array([0.1429, 1, 3, 31.8571, 32, 78])
    got = model.expected_purchases_new(t)
    # [HSS]: 0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576. The spreadsheet sums the 2F1 series to
    # ~150 terms; at t = 78 (z = 0.95) that truncation shows in the 4th decimal: the converged value of
    # equation (9) is 1.857942 (and 1.85762 with 151 terms), so the last point is checked to 5e-4.
    published = np.array([0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576])
    assert (np.abs(got - published) <= [5e-5] * 5 + [5e-4]).all(), got
    np.testing.assert_allclose(got, expected_new(*FULL.values(), t), rtol=1e-9)


def test_expected_purchases_new_customer_52_weeks() -> None:
    # [BTYD] walkthrough: bgnbd.Expectation(params, t = 52) = 1.444004.
    assert _published_model().expected_purchases_new(52.0).item() == pytest.approx(1.444004, abs=1e-6)


def test_customer_26_purchases() -> None:
    # [BTYD] walkthrough, customer 1516: x = 26, t_x = 30.85714, T = 31.
    model = _published_model()
    assert model.expected_purchases(26, 30.85714, 31, t=52).item() == pytest.approx(25.75659, abs=1e-4)
    assert model.p_alive(26, 30.85714, 31).item() == pytest.approx(0.9688523, abs=1e-6)


def test_customer_x2_expected_holdout_purchases() -> None:
    # [HSS]: E[Y(39) | x = 2, t_x = 30.43, T = 38.86] = 1.226.
    assert _published_model().expected_purchases(2, 30.43, 38.86, t=39).item() == pytest.approx(1.226, abs=5e-4)


def test_fitted_model_gives_close_forecasts(cdnow_bgnbd: BetaGeoModel) -> None:
    published = _published_model()
    t = np.array([1.0, 39.0, 52.0, 78.0])
    np.testing.assert_allclose(cdnow_bgnbd.expected_purchases_new(t), published.expected_purchases_new(t), rtol=1e-3)
    for x, tx, T in [(26, 30.85714, 31), (2, 30.43, 38.86), (0, 0, 38.86)]:
        np.testing.assert_allclose(
            cdnow_bgnbd.expected_purchases(x, tx, T, t=52), published.expected_purchases(x, tx, T, t=52), rtol=1e-3
        )
        np.testing.assert_allclose(cdnow_bgnbd.p_alive(x, tx, T), published.p_alive(x, tx, T), rtol=1e-3)


def test_cdnow_holdout_forecast_total(cdnow_bgnbd: BetaGeoModel, cdnow_summary: pd.DataFrame) -> None:
    # [BTYD] walkthrough tables: sum of E[Y(39)] over the 2,357 customers ~ 1,653 (actual: 1,882).
    total = cdnow_bgnbd.expected_purchases(*_rfm(cdnow_summary), t=39).sum()
    assert total == pytest.approx(1653, abs=1.0)
    assert cdnow_summary["frequency_holdout"].sum() == 1882


# --- invariants -------------------------------------------------------------------------------


def test_forecast_invariants(cdnow_bgnbd: BetaGeoModel, cdnow_summary: pd.DataFrame) -> None:
    x, tx, T = _rfm(cdnow_summary)
    alive = cdnow_bgnbd.p_alive(x, tx, T)
    assert alive.shape == (len(cdnow_summary),)
    assert ((alive > 0) & (alive <= 1)).all()
    assert (alive[x == 0] == 1.0).all()  # BG/NBD: no repeat purchase, no chance to drop out
    # Broadcasting: (H, 1) horizons x (n,) customers -> (H, n), non-decreasing in t, 0 at t = 0.
    t = np.arange(0, 40, dtype=float)[:, None]
    paths = cdnow_bgnbd.expected_purchases(x, tx, T, t=t)
    assert paths.shape == (40, len(cdnow_summary))
    np.testing.assert_allclose(paths[0], 0.0, atol=1e-12)
    assert (np.diff(paths, axis=0) >= -1e-12).all()
    np.testing.assert_allclose(paths[39], cdnow_bgnbd.expected_purchases(x, tx, T, t=39), rtol=1e-12)


def test_later_last_purchase_means_more_alive() -> None:
    model = _published_model()
    tx = np.array([5.0, 15.0, 25.0, 35.0])
    alive = model.p_alive(np.full(4, 3.0), tx, np.full(4, 39.0))
    assert (np.diff(alive) > 0).all()


# --- state, errors ----------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip_predicts_identically(cdnow_bgnbd: BetaGeoModel, cdnow_summary: pd.DataFrame) -> None:
    state = json.loads(json.dumps(cdnow_bgnbd.to_dict()))
    assert state["type"] == "bgnbd"
    assert state["params"] == cdnow_bgnbd.params_
    assert state["log_likelihood"] == cdnow_bgnbd.log_likelihood_
    assert state["n"] == 2357
    rebuilt = BetaGeoModel.from_dict(state)
    x, tx, T = _rfm(cdnow_summary)
    assert (rebuilt.expected_purchases(x, tx, T, t=39) == cdnow_bgnbd.expected_purchases(x, tx, T, t=39)).all()
    assert (rebuilt.p_alive(x, tx, T) == cdnow_bgnbd.p_alive(x, tx, T)).all()
    assert (rebuilt.expected_purchases_new(np.arange(1.0, 10)) == cdnow_bgnbd.expected_purchases_new(np.arange(1.0, 10))).all()
    assert rebuilt.standard_errors_ == cdnow_bgnbd.standard_errors_
    assert rebuilt.to_dict() == state


def test_fitted_model_keeps_no_data(cdnow_bgnbd: BetaGeoModel) -> None:
    frames = [v for v in vars(cdnow_bgnbd).values() if isinstance(v, (pd.DataFrame, pd.Series, np.ndarray))]
    assert frames == []
    assert repr(cdnow_bgnbd).startswith("BetaGeoModel(r=0.2426, alpha=4.414, a=0.7929, b=2.426")


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.expected_purchases(1, 1.0, 2.0, t=1.0),
        lambda m: m.p_alive(1, 1.0, 2.0),
        lambda m: m.expected_purchases_new(1.0),
        lambda m: m.to_dict(),
    ],
    ids=["expected_purchases", "p_alive", "expected_purchases_new", "to_dict"],
)
def test_unfitted_model(call) -> None:
    with pytest.raises(ClvError, match=r"^BetaGeoModel is not fitted; call fit\(\.\.\.\) or load a trained model first$"):
        call(BetaGeoModel())


def test_fit_on_no_customers() -> None:
    empty = pd.DataFrame({"frequency": [], "recency": [], "T": []})
    with pytest.raises(ClvError, match=r"^bgnbd: no customers to fit; check the calibration period$"):
        BetaGeoModel().fit(empty)


def test_fit_without_any_repeat_purchase() -> None:
    one_timers = pd.DataFrame({"frequency": [0, 0, 0], "recency": [0.0, 0.0, 0.0], "T": [10.0, 20.0, 30.0]})
    with pytest.raises(ClvError, match=r"^bgnbd: none of the 3 customers made a repeat purchase, so purchase rates"):
        BetaGeoModel().fit(one_timers)


# --- the apparel data (CLVTools), issue 13 -----------------------------------------------------------


@pytest.fixture(scope="module")
def apparel_40(apparel) -> pd.DataFrame:
    """Calibration to 2005-10-09: 40 weeks after every customer's first purchase on 2005-01-02."""
    return apparel(dt.date(2005, 10, 9))


def test_apparel_104_weeks_equals_clvtools(apparel) -> None:
    model = BetaGeoModel().fit(apparel(dt.date(2006, 12, 31)))
    assert model.status_ == "converged" and model.n_ == 600
    published = {"r": 0.6073, "alpha": 20.96, "a": 1.276, "b": 8.861}  # [CLV], to the digits printed
    for name, value in published.items():
        assert model.params_[name] == pytest.approx(value, abs=0.6 * 10 ** (math.floor(math.log10(value)) - 3)), name
    assert model.log_likelihood_ == pytest.approx(-5857.020, abs=6e-4)  # [CLV]


def test_apparel_40_weeks_has_no_finite_optimum_and_reports_the_limit(apparel_40: pd.DataFrame) -> None:
    # Issue 13: on this split BFGS ran out along a, b -> inf (b/a fixed) and stopped wherever the
    # machine's last bits put it (a from 1e5 to 3e6 under perturbations; "did not converge" on
    # another machine). The likelihood's supremum is the limit where every customer drops out
    # with one probability p: the fit reports that limit, warns, and says so in its status.
    with pytest.warns(UserWarning, match=r"^bgnbd: these data have no finite maximum-likelihood estimate: the "
                                         r"likelihood rises as a, b -> inf with b/a = 6\.2\d* fixed"):
        model = BetaGeoModel().fit(apparel_40)
    assert model.status_ == mle.RIDGE
    p = model.limit_["dropout_probability"]
    assert model.params_["a"] + model.params_["b"] == pytest.approx(bgnbd_likelihood.RIDGE_SIZE, rel=1e-15)
    assert model.params_["a"] / (model.params_["a"] + model.params_["b"]) == pytest.approx(p, rel=1e-12)
    assert (model.limit_["r"], model.limit_["alpha"]) == (model.params_["r"], model.params_["alpha"])
    assert np.isnan(model.standard_errors_["a"]) and np.isnan(model.standard_errors_["b"])
    assert all(np.isfinite(model.standard_errors_[k]) and model.standard_errors_[k] > 0 for k in ("r", "alpha"))
    assert np.isfinite(model.log_likelihood_)
    # The limit is a maximum: its own gradient vanishes (the convergence criterion of every fit) ...
    x, tx, T = _rfm(apparel_40)
    scale = bgnbd_likelihood.time_scale(T)
    limit = bgnbd_likelihood.BetaGeoLimitLikelihood(x, tx * scale, T * scale, np.ones(len(x)))
    at = np.array([np.log(model.limit_["r"]), np.log(model.limit_["alpha"] * scale), np.log(p / (1 - p))])
    assert np.max(np.abs(limit(at)[1])) <= mle.GRADIENT_TOLERANCE * 1e-3
    # ... higher than any finite point the optimiser reaches from lifetimes' start, and equal to
    # the likelihood of the reported point (to ~n x / RIDGE_SIZE).
    finite = bgnbd_likelihood.BetaGeoLikelihood(x, tx * scale, T * scale, np.ones(len(x)))
    stop = mle.search(finite, [np.full(4, 0.1)])[0]
    shift = x.sum() * np.log(scale)
    assert -stop.fun * len(x) + shift < model.log_likelihood_ + mle.RIDGE_GAIN
    assert limit.log_likelihood(at) + shift == pytest.approx(model.log_likelihood_, abs=1e-8)
    # The finite model's likelihood rises towards it along the ridge (profile in a with b/a fixed).
    profile = []
    for log_a in (2.0, 6.0, 12.0):
        ridge = lambda z, la=log_a: finite(np.array([z[0], z[1], la, la + z[2]]))  # noqa: E731
        best = mle.search(lambda z, f=ridge: (f(z)[0], f(z)[1][[0, 1, 3]]), [np.array([0.0, 0.0, 1.8])], tol=1e-10)[0]
        profile.append(-best.fun * len(x) + shift)
    assert profile[0] < profile[1] < profile[2] < model.log_likelihood_ + 1e-6, profile


def test_apparel_40_weeks_ridge_is_the_same_under_last_bit_perturbations(apparel_40: pd.DataFrame) -> None:
    # "Another machine": data perturbed in the last bits and lifetimes' start by up to ~1e-3. The
    # finite optimiser stops anywhere along the ridge; the reported limit does not move.
    x, tx, T = _rfm(apparel_40)
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reference = bgnbd_likelihood.fit({"frequency": x, "recency": tx, "T": T}, np.ones(len(x)))
        for _ in range(8):
            nudged = tx * (1 + rng.integers(-4, 5, len(tx)) * np.finfo(float).eps)
            start = 0.1 + rng.normal(0.0, 1e-3, 4)
            got = bgnbd_likelihood.fit({"frequency": x, "recency": np.minimum(nudged, T), "T": T}, np.ones(len(x)),
                                       initial_params=start)
            assert got.status == mle.RIDGE
            for name in ("r", "alpha", "dropout_probability"):
                assert got.limit[name] == pytest.approx(reference.limit[name], rel=1e-10), name  # measured: 2e-12
            assert got.log_likelihood == pytest.approx(reference.log_likelihood, abs=1e-8)


def test_ridge_point_forecasts_are_the_limits() -> None:
    # Every customer drops out after a purchase with probability p: alive at T, purchases in the
    # next t come at rate λ until the geometric dropout, E[Y(t) | alive, λ] = (1 - e^(-λ p t)) / p,
    # and over the posterior λ ~ Gamma(r + x, α + T): (1 - ((α+T)/(α+T+p t))^(r+x)) / p.
    r, alpha, p = 0.73, 26.35, 0.1385
    params = {"r": r, "alpha": alpha, "a": p * bgnbd_likelihood.RIDGE_SIZE, "b": (1 - p) * bgnbd_likelihood.RIDGE_SIZE}
    x, T, t = np.array([0.0, 1, 3, 10, 50]), np.full(5, 40.0), 39.0
    limit = (1 - ((alpha + T) / (alpha + T + p * t)) ** (r + x)) / p
    np.testing.assert_allclose(bgnbd_forecast.expected_purchases_if_alive(params, x, T, t), limit, rtol=1e-9)
    new = (1 - (alpha / (alpha + p * t)) ** r) / p
    assert bgnbd_forecast.expected_purchases_new(params, t).item() == pytest.approx(new, rel=1e-9)


def test_limit_likelihood_is_the_finite_one_far_out_on_the_ridge(apparel_40: pd.DataFrame) -> None:
    x, tx, T = _rfm(apparel_40)
    finite = bgnbd_likelihood.BetaGeoLikelihood(x, tx / 40, T / 40, np.ones(len(x)))
    limit = bgnbd_likelihood.BetaGeoLimitLikelihood(x, tx / 40, T / 40, np.ones(len(x)))
    r, alpha, p = 0.7, 0.6, 0.14
    logit = np.log(p / (1 - p))
    for size, close in ((1e6, 1e-4), (1e9, 1e-7), (1e12, 1e-10)):
        value = finite.log_likelihood(np.log([r, alpha, p * size, (1 - p) * size]))
        assert value == pytest.approx(limit.log_likelihood(np.array([np.log(r), np.log(alpha), logit])), abs=close)
    # The limit's analytic gradient against central differences of its values.
    at = np.array([np.log(r), np.log(alpha), logit])
    value, gradient = limit(at)
    numeric = [(limit(at + h)[0] - limit(at - h)[0]) / 2e-6 for h in np.eye(3) * 1e-6]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("size", [1e3, 1e6, 1e9, 1e12])
def test_dropout_term_is_exact_where_a_and_b_are_large(size: float) -> None:
    # A2 = lnΓ(a+b) + lnΓ(b+x) − lnΓ(b) − lnΓ(a+b+x) = Σ_{j<x} ln((b+j)/(a+b+j)) for integer x,
    # summed exactly here. The four lnΓ of the paper's form are each ~(a+b) ln(a+b) and cancel:
    # at a + b = 1e9 they leave ~1e-6 of noise per customer, enough to fake a rise along the ridge.
    a, b = 0.14 * size, 0.86 * size
    xs = np.array([0.0, 1.0, 2.0, 7.0, 60.0, 400.0])
    objective = bgnbd_likelihood.BetaGeoLikelihood(xs, np.zeros(6), np.ones(6), np.ones(6))
    exact = [math.fsum(math.log((b + j) / (a + b + j)) for j in range(int(x))) for x in xs]
    np.testing.assert_allclose(objective._a2(a, b), exact, rtol=1e-13, atol=1e-15)


def test_a_first_stop_below_the_ridge_limit_runs_every_start() -> None:
    """A reviewer's 8 customers (review of issue 16): the first start stops at a stationary,
    identified point (a 0.11, b 0.32, LL −72.7954) that the ridge's limit beats (−72.6941). The
    one-start shortcut must not keep it: the fit is the all-starts fit, which reports the ridge."""
    x = np.array([11.0, 4, 1, 2, 6, 0, 0, 1])
    tx = np.array([191, 55, 17, 90, 289, 0, 0, 73]) / 7
    T = np.array([41.0, 8, 44, 22, 44, 24, 2, 26])
    columns, weights = {"frequency": x, "recency": tx, "T": T}, np.ones(len(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = bgnbd_likelihood.fit(columns, weights)
    assert fitted.status == mle.RIDGE
    assert fitted.log_likelihood == pytest.approx(-72.6941, abs=1e-3)
