"""Tests for the Gamma-Gamma spend model (clvmodel.models.gamma_gamma).

Sources (also in /work/shared/REFERENCE.md):
[FH13] Fader & Hardie (2013), "The Gamma-Gamma model of monetary value": CDNOW's 946 repeat
       customers, p 6.25, q 3.74, gamma 15.44, LL -4055.92; equation (1a) likelihood, (5) E[M | x, m].
REFERENCE.md: frequency-spend correlation among repeat customers 0.1139 (computed from the summary).
[LTF]  lifetimes 0.11.3 itself: ``GammaGammaFitter._negative_log_likelihood`` (its autograd gradient)
       and ``GammaGammaFitter.fit``, the oracle of clvmodel's numpy likelihood and fit (issue 7).
[CLV]  R CLVTools 0.12.1 on its apparel data (tests/data/apparel), weeks, estimation split 104,
       repeat purchases only: p 3.099, q 5.654, gamma 56.50, LL -1670.663 (REFERENCE.md).
"""

from __future__ import annotations

import datetime as dt
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln

from clvmodel.errors import ClvError, ConvergenceFailure
from clvmodel.models import gamma_gamma_likelihood, mle
from clvmodel.models.base import collapse
from clvmodel.models.gamma_gamma import CORRELATION_WARNING, GammaGammaModel, SpendCorrelationWarning

PARAMS = ("p", "q", "v")
SPEND = ["frequency", "monetary_value"]


def gamma_gamma_log_likelihood(p, q, v, x, m) -> np.ndarray:
    """Per-customer ln L of the mean spend m over x transactions, equation (1a) of [FH13]."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    return (
        gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v)
        + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(v + m * x)
    )


def _synthetic(n: int = 400, seed: int = 7) -> pd.DataFrame:
    """Repeat customers drawn from the Gamma-Gamma story with p = 6, q = 4, gamma = 15."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 9, n)
    nu = rng.gamma(4.0, 1 / 15.0, n)  # nu ~ Gamma(q, rate gamma)
    m = np.array([rng.gamma(6.0, 1 / nu_i, k).mean() for nu_i, k in zip(nu, x)])  # z ~ Gamma(p, rate nu)
    return pd.DataFrame({"frequency": x, "recency": 1.0, "T": 10.0, "monetary_value": m})


# --- CDNOW ------------------------------------------------------------------------------------


def test_cdnow_published_estimates(cdnow_gamma_gamma: GammaGammaModel) -> None:
    # [FH13]: p 6.25, q 3.74, gamma 15.44 (lifetimes calls gamma v), LL -4055.92, 946 customers.
    params = cdnow_gamma_gamma.params_
    assert list(params) == ["p", "q", "v"]
    assert params["p"] == pytest.approx(6.25, abs=0.005)
    assert params["q"] == pytest.approx(3.74, abs=0.005)
    assert params["v"] == pytest.approx(15.44, abs=0.005)
    assert cdnow_gamma_gamma.log_likelihood_ == pytest.approx(-4055.92, abs=0.005)
    assert cdnow_gamma_gamma.n_ == 946
    assert cdnow_gamma_gamma.excluded_ == 0


def test_cdnow_log_likelihood_is_the_sum_of_equation_1a(
    cdnow_gamma_gamma: GammaGammaModel, cdnow_summary: pd.DataFrame
) -> None:
    repeat = cdnow_summary[cdnow_summary["frequency"] > 0]
    p, q, v = (cdnow_gamma_gamma.params_[k] for k in ("p", "q", "v"))
    total = gamma_gamma_log_likelihood(p, q, v, repeat["frequency"], repeat["monetary_value"]).sum()
    assert cdnow_gamma_gamma.log_likelihood_ == pytest.approx(total, rel=1e-10)


def test_cdnow_correlation(cdnow_gamma_gamma: GammaGammaModel, cdnow_summary: pd.DataFrame) -> None:
    # REFERENCE.md: 0.1139 among repeat customers; below the warning threshold.
    assert cdnow_gamma_gamma.correlation_ == pytest.approx(0.1139, abs=5e-5)
    repeat = cdnow_summary[cdnow_summary["frequency"] > 0]
    assert cdnow_gamma_gamma.correlation_ == pytest.approx(repeat["frequency"].corr(repeat["monetary_value"]), rel=1e-12)
    assert abs(cdnow_gamma_gamma.correlation_) < CORRELATION_WARNING


def test_one_time_buyer_gets_the_population_mean(cdnow_gamma_gamma: GammaGammaModel) -> None:
    p, q, v = (cdnow_gamma_gamma.params_[k] for k in ("p", "q", "v"))
    assert cdnow_gamma_gamma.population_mean == pytest.approx(p * v / (q - 1), rel=1e-15)
    assert cdnow_gamma_gamma.population_mean == pytest.approx(35.17, abs=0.005)  # REFERENCE.md
    got = cdnow_gamma_gamma.expected_order_value(np.array([0.0, 0.0]), np.array([0.0, 123.0]))
    np.testing.assert_allclose(got, cdnow_gamma_gamma.population_mean, rtol=1e-15)


def test_expected_order_value_equation_5_by_hand() -> None:
    # [FH13] equation (5) at the published p 6.25, q 3.74, gamma 15.44, for x = 2, m = 50:
    # weight on m = p x / (p x + q - 1) = 12.5 / 15.24; population mean = 6.25 * 15.44 / 2.74 = 96.5 / 2.74;
    # E[M] = (2.74 / 15.24) (96.5 / 2.74) + (12.5 / 15.24) 50 = (96.5 + 625) / 15.24 = 721.5 / 15.24 = 47.3425.
    model = GammaGammaModel.from_dict({"params": {"p": 6.25, "q": 3.74, "v": 15.44}})
    assert model.expected_order_value(2.0, 50.0).item() == pytest.approx(721.5 / 15.24, rel=1e-12)
    assert model.population_mean == pytest.approx(96.5 / 2.74, rel=1e-12)


def test_expected_order_value_shrinks_towards_the_mean(cdnow_gamma_gamma: GammaGammaModel) -> None:
    mean = cdnow_gamma_gamma.population_mean
    x = np.arange(1.0, 31.0)
    for m in (5.0, 200.0):
        got = cdnow_gamma_gamma.expected_order_value(x, np.full_like(x, m))
        low, high = sorted((m, mean))
        assert ((got > low) & (got < high)).all()
        assert (np.abs(np.diff(got - m)) > 0).all() and (np.abs(got - m)[1:] < np.abs(got - m)[:-1]).all()


# --- fitting rules ----------------------------------------------------------------------------


def test_synthetic_fit_recovers_roughly_and_is_not_correlated() -> None:
    data = _synthetic()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpendCorrelationWarning)
        model = GammaGammaModel().fit(data)
    assert model.n_ == 400
    # the population mean spend p gamma / (q - 1) = 6 * 15 / 3 = 30 is well identified
    assert model.population_mean == pytest.approx(30.0, rel=0.15)


def test_zero_spend_repeat_customers_are_excluded_and_counted() -> None:
    data = _synthetic()
    zero = pd.DataFrame({"frequency": [2, 3], "recency": 1.0, "T": 10.0, "monetary_value": [0.0, 0.0]})
    one_timers = pd.DataFrame({"frequency": [0, 0, 0], "recency": 0.0, "T": 10.0, "monetary_value": [0.0, 0.0, 0.0]})
    model = GammaGammaModel().fit(pd.concat([data, zero, one_timers], ignore_index=True))
    assert model.excluded_ == 2  # one-time buyers are not "excluded": they are never in the sample
    assert model.n_ == 400
    assert model.params_ == GammaGammaModel().fit(data).params_  # the same likelihood, the same optimum


def test_strong_correlation_warns() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(1, 15, 300).astype(float)
    data = pd.DataFrame({"frequency": x, "monetary_value": 5 * x + rng.gamma(5.0, 2.0, 300)})
    with pytest.warns(SpendCorrelationWarning, match=r"frequency and monetary value are correlated \(r = 0\.9\d\d\)"):
        model = GammaGammaModel().fit(data)
    assert model.correlation_ > CORRELATION_WARNING


@pytest.mark.parametrize(
    ("frequency", "monetary", "usable"),
    [([0, 0, 0], [0.0, 0.0, 0.0], 0), ([1, 2, 0], [10.0, 12.0, 0.0], 2), ([1, 2, 3], [10.0, 12.0, 0.0], 2)],
)
def test_too_few_repeat_customers(frequency, monetary, usable: int) -> None:
    data = pd.DataFrame({"frequency": frequency, "monetary_value": monetary})
    with pytest.raises(
        ClvError,
        match=rf"^gamma_gamma: {usable} repeat customers with positive spend; the spend model needs repeat buyers",
    ):
        GammaGammaModel().fit(data)


# --- the fit against lifetimes' fit [LTF] -----------------------------------------------------


def _repeat(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``x, m`` of the customers the fit uses: repeat buyers with positive spend."""
    usable = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    return usable["frequency"].to_numpy(dtype=float), usable["monetary_value"].to_numpy(dtype=float)


def _lifetimes_fit(summary: pd.DataFrame):
    import lifetimes  # the reference implementation only; clvmodel reaches it through its adapter

    with warnings.catch_warnings():  # lifetimes' fit resets the warning filters
        return lifetimes.GammaGammaFitter().fit(*_repeat(summary))


def _assert_equals_lifetimes_fit(model: GammaGammaModel, summary: pd.DataFrame) -> None:
    reference = _lifetimes_fit(summary)
    for name in PARAMS:
        assert model.params_[name] == pytest.approx(float(reference.params_[name]), rel=1e-8), name
        assert model.standard_errors_[name] == pytest.approx(float(reference.standard_errors_[name]), rel=1e-6), name


def test_weighted_fit_equals_lifetimes_on_all_rows(
    cdnow_gamma_gamma: GammaGammaModel, cdnow_summary: pd.DataFrame
) -> None:
    # [LTF]: the same start, optimiser and tolerance give lifetimes' estimates to rounding (measured
    # 2e-13), and the central-difference Hessian its autograd standard errors (measured 2e-9).
    _assert_equals_lifetimes_fit(cdnow_gamma_gamma, cdnow_summary)


def test_synthetic_fit_equals_lifetimes_fit() -> None:
    data = _synthetic(5000, seed=13)
    data["monetary_value"] = data["monetary_value"].round(0)  # whole currency units: rows repeat
    assert len(data[SPEND].drop_duplicates()) < 0.6 * len(data)
    model = GammaGammaModel().fit(data)
    _assert_equals_lifetimes_fit(model, data)
    total = gamma_gamma_log_likelihood(*(model.params_[k] for k in PARAMS), *_repeat(data)).sum()
    assert model.log_likelihood_ == pytest.approx(total, rel=1e-10)
    assert model.population_mean == pytest.approx(30.0, rel=0.1)  # the story's p gamma / (q - 1)


def test_collapsed_fit_equals_the_fit_on_all_rows() -> None:
    data = _synthetic(3000, seed=5)
    data["monetary_value"] = data["monetary_value"].round(0)
    x, m = _repeat(data)
    collapsed = GammaGammaModel().fit(data)
    rows = gamma_gamma_likelihood.fit({"frequency": x, "monetary_value": m}, np.ones(len(x)))
    for name in PARAMS:
        assert rows.params[name] == pytest.approx(collapsed.params_[name], rel=1e-8)
        assert rows.standard_errors[name] == pytest.approx(collapsed.standard_errors_[name], rel=1e-6)
    assert rows.log_likelihood == pytest.approx(collapsed.log_likelihood_, rel=1e-12)
    assert (rows.n, collapsed.n_) == (len(x), len(x))


def test_fit_ignores_row_order_and_extra_columns(
    cdnow_gamma_gamma: GammaGammaModel, cdnow_summary: pd.DataFrame
) -> None:
    shuffled = cdnow_summary.sample(frac=1.0, random_state=3)[["monetary_value", "frequency"]].reset_index(drop=True)
    refit = GammaGammaModel().fit(shuffled)
    assert refit.params_ == cdnow_gamma_gamma.params_  # collapsed rows are sorted: the same sums
    assert refit.correlation_ == pytest.approx(cdnow_gamma_gamma.correlation_, rel=1e-12)


# --- the numpy likelihood and its gradient against lifetimes [LTF] ------------------------------


def _lifetimes_value_and_gradient(log_params: np.ndarray, x, m, w) -> tuple[float, np.ndarray]:
    import lifetimes
    from autograd import value_and_grad

    with warnings.catch_warnings():  # lifetimes' likelihood resets the warning filters
        value, gradient = value_and_grad(lifetimes.GammaGammaFitter._negative_log_likelihood)(
            np.asarray(log_params, dtype=float), x, m, w, 0.0
        )
    return float(value), np.asarray(gradient, dtype=float)


def _spend_rows(summary: pd.DataFrame, rows: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CDNOW's repeat buyers: one row each, or their distinct (x, m) rows with weights."""
    if rows == "customers":
        x, m = _repeat(summary)
        return x, m, np.ones(len(x))
    unique, weights, _ = collapse(summary[summary["frequency"] > 0], SPEND)
    return unique["frequency"].to_numpy(), unique["monetary_value"].to_numpy(), weights


_POINTS = np.vstack([
    np.log([6.25, 3.74, 15.44]),  # near the CDNOW optimum
    np.full(3, 0.1),  # lifetimes' start
    np.random.default_rng(11).normal(0.0, 1.5, size=(6, 3)),  # anywhere an optimiser may probe
])


@pytest.mark.parametrize("rows", ["customers", "collapsed"])
@pytest.mark.parametrize("point", range(len(_POINTS)))
def test_numpy_likelihood_and_gradient_equal_lifetimes(cdnow_summary: pd.DataFrame, rows: str, point: int) -> None:
    x, m, w = _spend_rows(cdnow_summary, rows)
    value, gradient = gamma_gamma_likelihood.GammaGammaLikelihood(x, m, w)(_POINTS[point])
    expected_value, expected_gradient = _lifetimes_value_and_gradient(_POINTS[point], x, m, w)
    assert value == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-8, atol=1e-12)


def test_numpy_likelihood_is_equation_1a(cdnow_gamma_gamma: GammaGammaModel, cdnow_summary: pd.DataFrame) -> None:
    x, m = _repeat(cdnow_summary)
    likelihood = gamma_gamma_likelihood.GammaGammaLikelihood(x, m, np.ones(len(x)))
    params = [cdnow_gamma_gamma.params_[k] for k in PARAMS]
    total = likelihood.log_likelihood(np.log(params))
    assert total == pytest.approx(gamma_gamma_log_likelihood(*params, x, m).sum(), rel=1e-12)
    assert total == pytest.approx(-4055.92, abs=0.005)  # [FH13]
    assert likelihood(np.log(params))[0] == pytest.approx(-total / len(x), rel=1e-14)


def test_numpy_likelihood_large_frequencies_and_spends() -> None:
    # Rows far from CDNOW's (x up to 2,000, m from cents to a million): still lifetimes' function.
    x = np.array([1.0, 2.0, 40.0, 300.0, 2000.0, 7.0])
    m = np.array([0.01, 1e6, 35.0, 12.5, 3.0, 250.0])
    w = np.array([1.0, 3.0, 2.0, 1.0, 1.0, 5.0])
    likelihood = gamma_gamma_likelihood.GammaGammaLikelihood(x, m, w)
    for point in _POINTS:
        value, gradient = likelihood(point)
        expected_value, expected_gradient = _lifetimes_value_and_gradient(point, x, m, w)
        assert value == pytest.approx(expected_value, rel=1e-12)
        np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-8, atol=1e-12)


def test_central_difference_hessian_equals_autograd(cdnow_summary: pd.DataFrame) -> None:
    import lifetimes
    from autograd import hessian

    from clvmodel.models import mle

    x, m, w = _spend_rows(cdnow_summary, "collapsed")
    likelihood = gamma_gamma_likelihood.GammaGammaLikelihood(x, m, w)
    at = _POINTS[0]
    with warnings.catch_warnings():
        exact = hessian(lifetimes.GammaGammaFitter._negative_log_likelihood)(at, x, m, w, 0.0)
    np.testing.assert_allclose(mle.central_hessian(lambda theta: likelihood(theta)[1], at), exact, rtol=1e-6, atol=1e-9)


def test_failed_optimiser_is_one_line_convergence_failure(cdnow_summary: pd.DataFrame, capsys) -> None:
    x, m = _repeat(cdnow_summary)
    with pytest.raises(
        ConvergenceFailure,
        match=r"^gamma_gamma fit did not converge from any of 3 starts \(message: Maximum number of iterations "
        r"has been exceeded\.\); check",
    ) as err:
        gamma_gamma_likelihood.fit({"frequency": x, "monetary_value": m}, np.ones(len(x)), maxiter=1)
    assert "\n" not in str(err.value) and isinstance(err.value, ClvError)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("frequency", "monetary", "what"),
    [
        ([1.0, np.nan, 3.0], [10.0, 12.0, 8.0], "a missing or infinite value"),
        ([1.0, 2.0, 3.0], [10.0, np.inf, 8.0], "a missing or infinite value"),
        ([1.0, 2.5, 3.0], [10.0, 12.0, 8.0], "a non-positive or non-integer frequency"),
        ([1.0, 0.0, 3.0], [10.0, 12.0, 8.0], "a non-positive or non-integer frequency"),
        ([1.0, 2.0, 3.0], [10.0, 0.0, 8.0], "a non-positive monetary value"),
    ],
)
def test_bad_rows_are_one_line_errors(frequency, monetary, what: str) -> None:
    weights = np.array([1.0, 4.0, 2.0])
    with pytest.raises(ClvError, match=rf"^gamma_gamma: 4 of 7 customers have {what}; check the RFM summary$"):
        gamma_gamma_likelihood.fit({"frequency": np.array(frequency), "monetary_value": np.array(monetary)}, weights)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the correlation with an infinite spend
def test_infinite_spend_is_an_error_not_a_fit() -> None:
    data = _synthetic()
    data.loc[0, "monetary_value"] = np.inf
    with pytest.raises(ClvError, match=r"^gamma_gamma: 1 of 400 customers have a missing or infinite value"):
        GammaGammaModel().fit(data)


# --- numerics where lifetimes' function loses digits -------------------------------------------


@pytest.mark.parametrize("z", [0.3, 7.0, 49.9, 50.0, 1e3, 1.6e5, 2.4e7, 1e12])
@pytest.mark.parametrize("n", [1, 2, 7, 60])
def test_log_beta_and_digamma_step_at_integer_steps(z: float, n: int) -> None:
    # Exact identities without cancellation: B(n, z) = (n − 1)! / (z (z + 1) ... (z + n − 1)) and
    # ψ(z + n) − ψ(z) = Σ_k 1/(z + k). scipy's betaln and digamma differences lose up to 8 digits here.
    import math

    log_beta = math.lgamma(n) - math.fsum(math.log(z + k) for k in range(n))
    step = math.fsum(1.0 / (z + k) for k in range(n))
    assert gamma_gamma_likelihood._log_beta(float(n), z)[0] == pytest.approx(log_beta, rel=4e-15, abs=4e-15)
    assert gamma_gamma_likelihood._log_beta(z, float(n))[0] == pytest.approx(log_beta, rel=4e-15, abs=4e-15)
    assert gamma_gamma_likelihood._digamma_step(z, float(n))[0] == pytest.approx(step, rel=4e-15)


def _ridge_data() -> pd.DataFrame:
    """m = 5x + noise: no spread in the spend rate ν is left, so the likelihood has no finite maximum."""
    rng = np.random.default_rng(1)
    x = rng.integers(1, 15, 300).astype(float)
    return pd.DataFrame({"frequency": x, "monetary_value": 5 * x + rng.gamma(5.0, 2.0, 300)})


def _limit_log_likelihood(p: float, nu: float, x: np.ndarray, m: np.ndarray) -> float:
    """Σ ln L of the q, v -> ∞ limit written out: m̄ over x transactions is Gamma(px, rate xν)."""
    return float((p * x * np.log(x * nu) + (p * x - 1) * np.log(m) - x * nu * m - gammaln(p * x)).sum())


def test_strongly_correlated_fit_reports_the_ridge_limit() -> None:
    # q and v run off together along a ridge; where BFGS stops on it (q from 1e8 to 1e12, sometimes
    # with scipy's "precision loss") depends on the machine's last bits. The fit reports the limit
    # instead: status "ridge", the limit's p and v/q at the fixed q = RIDGE_Q, and the quantities the
    # data identify (p, v/q, the mean spend p v / q).
    data = _ridge_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpendCorrelationWarning)
        model = GammaGammaModel().fit(data)
    assert model.status_ == "ridge"
    assert model.params_["q"] == gamma_gamma_likelihood.RIDGE_Q
    p, v_over_q = model.limit_["p"], model.limit_["v_over_q"]
    assert (model.params_["p"], model.params_["v"] / model.params_["q"]) == pytest.approx((p, v_over_q), rel=1e-14)
    assert model.limit_["mean_spend"] == pytest.approx(p * v_over_q, rel=1e-14)
    assert model.population_mean == pytest.approx(model.limit_["mean_spend"], rel=1e-11)
    # The limit is a maximum of the limit likelihood written out independently (score ~0 in p and ν) ...
    x, m = _repeat(data)
    nu = 1 / v_over_q
    best = _limit_log_likelihood(p, nu, x, m)
    for dp, dnu in [(1e-4, 0), (-1e-4, 0), (0, 1e-4), (0, -1e-4)]:
        assert _limit_log_likelihood(p * (1 + dp), nu * (1 + dnu), x, m) < best
    # ... whose value the Gamma-Gamma likelihood approaches from below along the ridge, and reaches
    # at the reported point (the document's likelihood is that of its parameters).
    assert model.log_likelihood_ == pytest.approx(best, abs=1e-6)
    # (equation (1a) as written, lnΓ(px + q) − lnΓ(q) + q ln v − ..., cancels to noise at q = 1e12.)
    likelihood = gamma_gamma_likelihood.GammaGammaLikelihood(x, m, np.ones(len(x)))
    along = [likelihood.log_likelihood(np.log([p, q, q * v_over_q])) for q in (1e4, 1e6, 1e8)]
    assert along[0] < along[1] < along[2] < best
    # q and v are not identified (NaN standard errors); p is, and so are intervals of the mean spend.
    assert np.isnan(model.standard_errors_["q"]) and np.isnan(model.standard_errors_["v"])
    assert 0 < model.standard_errors_["p"] < p
    assert np.asarray(model.covariance_)[1].tolist() == [0.0, 0.0, 0.0]  # ln q held fixed
    # The model document has no NaN (artifact stores it as null, JSON without NaN): it loads back.
    state = model.to_dict()
    state["standard_errors"] = {k: None if np.isnan(v) else v for k, v in state["standard_errors"].items()}
    state = json.loads(json.dumps(state, allow_nan=False))
    assert (state["status"], state["limit"]) == ("ridge", model.limit_)
    rebuilt = GammaGammaModel.from_dict(state)
    assert (rebuilt.status_, rebuilt.limit_, rebuilt.params_) == ("ridge", model.limit_, model.params_)
    assert np.isnan(rebuilt.standard_errors_["q"]) and rebuilt.standard_errors_["p"] == model.standard_errors_["p"]


def test_ridge_decision_is_the_same_under_last_bit_perturbations() -> None:
    # "Another machine": data and start perturbed in the last bits, the start also by up to ~1e-3
    # (lifetimes' start is 0.1; a different libm or BLAS moves the BFGS path as much after a few
    # iterations). Measured before the fix: BFGS stops anywhere from q = 1.3e8 to 5e12, and one
    # stop in eight says "Desired error not necessarily achieved due to precision loss", which was
    # raised as a ConvergenceFailure. Now every run is the same decision with the same reported
    # numbers, to far below any printed digit.
    x, m = _repeat(_ridge_data())
    reference = gamma_gamma_likelihood.fit({"frequency": x, "monetary_value": m}, np.ones(len(x)))
    assert reference.status == "ridge"
    rng = np.random.default_rng(0)
    for _ in range(16):
        nudged = m * (1 + rng.integers(-4, 5, len(m)) * np.finfo(float).eps)
        start = 0.1 + rng.normal(0.0, 1e-3, 3)
        got = gamma_gamma_likelihood.fit({"frequency": x, "monetary_value": nudged}, np.ones(len(x)), initial_params=start)
        assert (got.status, got.params["q"]) == ("ridge", reference.params["q"])
        for name in ("p", "v_over_q", "mean_spend"):
            assert got.limit[name] == pytest.approx(reference.limit[name], rel=1e-9), name
        assert got.log_likelihood == pytest.approx(reference.log_likelihood, abs=1e-8)


def test_a_finite_optimum_is_not_a_ridge(cdnow_gamma_gamma: GammaGammaModel, cdnow_summary: pd.DataFrame) -> None:
    # CDNOW has a finite MLE (the published one) that beats the limit by far more than RIDGE_GAIN.
    from clvmodel.models import mle

    assert cdnow_gamma_gamma.status_ == "converged" and cdnow_gamma_gamma.limit_ is None
    x, m = _repeat(cdnow_summary)
    limit = gamma_gamma_likelihood.limit_fit(x, m, np.ones(len(x)))
    assert limit is not None
    assert limit.log_likelihood == pytest.approx(_limit_log_likelihood(limit.p, limit.nu, x, m), rel=1e-12)
    assert cdnow_gamma_gamma.log_likelihood_ - limit.log_likelihood > 1e4 * mle.RIDGE_GAIN
    assert "limit" not in cdnow_gamma_gamma.to_dict() and cdnow_gamma_gamma.to_dict()["status"] == "converged"


def test_equal_spends_have_no_limit_fit() -> None:
    # Every customer with the same mean spend: the limit has no finite p either (nothing to fit).
    x = np.array([1.0, 2.0, 3.0])
    assert gamma_gamma_likelihood.limit_fit(x, np.full(3, 10.0), np.ones(3)) is None


# --- state, errors ----------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip(cdnow_gamma_gamma: GammaGammaModel, cdnow_summary: pd.DataFrame) -> None:
    state = json.loads(json.dumps(cdnow_gamma_gamma.to_dict()))
    assert state["type"] == "gamma_gamma"
    assert state["correlation"] == cdnow_gamma_gamma.correlation_
    assert state["excluded"] == 0
    rebuilt = GammaGammaModel.from_dict(state)
    x, m = cdnow_summary["frequency"].to_numpy(float), cdnow_summary["monetary_value"].to_numpy(float)
    assert (rebuilt.expected_order_value(x, m) == cdnow_gamma_gamma.expected_order_value(x, m)).all()
    assert rebuilt.population_mean == cdnow_gamma_gamma.population_mean
    assert (rebuilt.correlation_, rebuilt.excluded_, rebuilt.n_) == (cdnow_gamma_gamma.correlation_, 0, 946)
    assert rebuilt.to_dict() == state


@pytest.mark.parametrize(
    "call",
    [lambda m: m.expected_order_value(1.0, 10.0), lambda m: m.population_mean, lambda m: m.to_dict()],
    ids=["expected_order_value", "population_mean", "to_dict"],
)
def test_unfitted_model(call) -> None:
    with pytest.raises(ClvError, match=r"^GammaGammaModel is not fitted; call fit\(\.\.\.\) or load a trained model"):
        call(GammaGammaModel())


# --- the apparel data (CLVTools) and several starts, issue 13 ---------------------------------------


def test_apparel_104_weeks_equals_clvtools(apparel) -> None:
    model = GammaGammaModel().fit(apparel(dt.date(2006, 12, 31)))
    assert model.status_ == "converged"
    for name, value, digits in (("p", 3.099, 3), ("q", 5.654, 3), ("v", 56.50, 2)):  # [CLV]; lifetimes' v is gamma
        assert model.params_[name] == pytest.approx(value, abs=0.6 * 10**-digits), name
    assert model.log_likelihood_ == pytest.approx(-1670.663, abs=6e-4)  # [CLV]


def test_apparel_40_weeks_converges(apparel) -> None:
    summary = apparel(dt.date(2005, 10, 9))
    model = GammaGammaModel().fit(summary)
    assert model.status_ == "converged" and np.isfinite(model.log_likelihood_)
    x, m = _repeat(summary[summary["monetary_value"] > 0])
    objective = gamma_gamma_likelihood.GammaGammaLikelihood(x, m, np.ones(len(x)))
    value, gradient = objective(np.log([model.params_[k] for k in PARAMS]))
    assert np.max(np.abs(gradient)) <= mle.GRADIENT_TOLERANCE
    assert -value * len(x) == pytest.approx(model.log_likelihood_, rel=1e-12)


def test_a_first_start_where_the_likelihood_overflows_is_followed_by_the_others(
    cdnow_gamma_gamma: GammaGammaModel, cdnow_summary: pd.DataFrame
) -> None:
    # exp(800) overflows: no likelihood at that start, so the data-derived starts carry the fit,
    # to the same optimum as lifetimes' start.
    x, m = _repeat(cdnow_summary)
    result = gamma_gamma_likelihood.fit({"frequency": x, "monetary_value": m}, np.ones(len(x)),
                                        initial_params=np.array([800.0, 0.1, 0.1]))
    for name in PARAMS:
        assert result.params[name] == pytest.approx(cdnow_gamma_gamma.params_[name], rel=1e-6), name
