"""Tests for the BG/BB purchase model (clvmodel.models.bgbb) on the donations data and by formula.

Sources:
[FHS10] Fader, Hardie & Shang (2010), "Customer-base analysis in a discrete-time noncontractual
        setting", Marketing Science 29(6): the donations estimates α 1.204, β 0.750, γ 0.657,
        δ 2.783; equations (5) likelihood, (7) E[X(n)], (8) P(X(n) = x), (11) P(alive at n+1),
        (13) E[X(n, n+n*) | x, t_x, n], (14) DERT.
[BTYD]  R BTYD: LL −33,225.58 on the donations summary (/work/shared/REFERENCE.md); its
        walkthrough's customers A (x=0, t_x=0) and B (x=4, t_x=5), n=6, n*=10:
        bgbb.ConditionalExpectedTransactions 0.1302169 and 3.627858 (at BTYD's own estimates);
        bgbb.PAlive is "P(alive at n+1 | ...)" (its documentation).
[LTF]   lifetimes 0.11.3 ``BetaGeoBetaBinomFitter``: the oracle for the likelihood, fit and
        forecasts, up to the 1e-15 it adds inside its likelihood (shown below, with where it
        matters); its ``expected_number_of_transactions_in_first_n_periods`` is P(X(n) = x) ×
        customers (equation (8)), not E[X(n)]; at γ = 1 its equation (13) is not finite.

The donations summary is the file bundled with lifetimes (columns frequency, recency, periods,
weights: 11,104 donors in 22 distinct rows, n = 6 annual opportunities).
"""

from __future__ import annotations

import importlib.resources
import json
import math
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln, digamma, gammaln, hyp2f1, roots_jacobi

from clvmodel.errors import ClvError, ConvergenceFailure
from clvmodel.models import bgbb, bgbb_likelihood, mle
from clvmodel.models.bgbb import BetaGeoBetaBinomModel

PARAMS = ("alpha", "beta", "gamma", "delta")
# [FHS10], the donations data (three decimals).
PUBLISHED = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
# [BTYD], bgbb.rf.matrix.LL at its estimates.
PUBLISHED_LL = -33225.58


def _donations() -> pd.DataFrame:
    with warnings.catch_warnings():  # importing lifetimes (to locate its files) changes the filters
        path = importlib.resources.files("lifetimes") / "datasets" / "donations.csv"
        return pd.read_csv(str(path))


@pytest.fixture(scope="module")
def donations() -> pd.DataFrame:
    frame = _donations()
    assert len(frame) == 22 and frame["weights"].sum() == 11104 and (frame["periods"] == 6).all()
    return frame


@pytest.fixture(scope="module")
def summary(donations: pd.DataFrame) -> pd.DataFrame:
    """One row per donor, as a summary reaches :meth:`PurchaseModel.fit` (``T`` = n = 6)."""
    repeat = donations["weights"].to_numpy()
    return pd.DataFrame({
        "frequency": np.repeat(donations["frequency"].to_numpy(float), repeat),
        "recency": np.repeat(donations["recency"].to_numpy(float), repeat),
        "T": np.repeat(donations["periods"].to_numpy(float), repeat),
    })


@pytest.fixture(scope="module")
def fitted(summary: pd.DataFrame) -> BetaGeoBetaBinomModel:
    return BetaGeoBetaBinomModel().fit(summary)


def _rows(donations: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    columns = ("frequency", "recency", "periods", "weights")
    return tuple(donations[c].to_numpy(dtype=float) for c in columns)  # type: ignore[return-value]


def _lifetimes(params: dict[str, float]):
    import lifetimes  # the reference implementation only

    with warnings.catch_warnings():
        fitter = lifetimes.BetaGeoBetaBinomFitter()
    fitter.params_ = pd.Series([params[k] for k in PARAMS], index=list(PARAMS))
    return fitter


# --- reference formulas, written here from [FHS10] independently of the package --------------


def log_likelihood_eq5(alpha, beta, gamma, delta, x, tx, n) -> np.ndarray:
    """Per-customer ln L, equation (5) of [FHS10], term by term."""
    out = []
    for xi, ti, ni in zip(np.atleast_1d(x), np.atleast_1d(tx), np.atleast_1d(n)):
        xi, ti, ni = int(xi), int(ti), int(ni)
        terms = [betaln(alpha + xi, beta + ni - xi) - betaln(alpha, beta)
                 + betaln(gamma, delta + ni) - betaln(gamma, delta)]
        for i in range(ni - ti):
            terms.append(betaln(alpha + xi, beta + ti - xi + i) - betaln(alpha, beta)
                         + betaln(gamma + 1, delta + ti + i) - betaln(gamma, delta))
        out.append(np.logaddexp.reduce(terms))
    return np.array(out)


def p_alive_eq11(alpha, beta, gamma, delta, x, tx, n) -> np.ndarray:
    """Equation (11): B(α+x, β+n−x)/B(α,β) · B(γ, δ+n+1)/B(γ,δ) / L."""
    x, n = np.asarray(x, float), np.asarray(n, float)
    return np.exp(betaln(alpha + x, beta + n - x) - betaln(alpha, beta) + betaln(gamma, delta + n + 1)
                  - betaln(gamma, delta) - log_likelihood_eq5(alpha, beta, gamma, delta, x, tx, n))


def conditional_expectation_eq13(alpha, beta, gamma, delta, x, tx, n, t) -> np.ndarray:
    """Equation (13): 1/L · B(α+x+1, β+n−x)/B(α,β) · δ/(γ−1) · Γ(γ+δ)/Γ(1+δ)
    · [Γ(1+δ+n)/Γ(γ+δ+n) − Γ(1+δ+n+t)/Γ(γ+δ+n+t)]."""
    x, n = np.asarray(x, float), np.asarray(n, float)
    lead = np.exp(betaln(alpha + x + 1, beta + n - x) - betaln(alpha, beta)
                  - log_likelihood_eq5(alpha, beta, gamma, delta, x, tx, n)
                  + gammaln(gamma + delta) - gammaln(1 + delta))
    bracket = (np.exp(gammaln(1 + delta + n) - gammaln(gamma + delta + n))
               - np.exp(gammaln(1 + delta + n + t) - gammaln(gamma + delta + n + t)))
    return lead * delta / (gamma - 1) * bracket


def expected_new_eq7(alpha, beta, gamma, delta, n) -> np.ndarray:
    """Equation (7): α/(α+β) · δ/(γ−1) · [1 − Γ(γ+δ)Γ(1+δ+n) / (Γ(γ+δ+n)Γ(1+δ))]."""
    n = np.asarray(n, float)
    return alpha / (alpha + beta) * delta / (gamma - 1) * (
        1 - np.exp(gammaln(gamma + delta) + gammaln(1 + delta + n) - gammaln(gamma + delta + n) - gammaln(1 + delta)))


def pmf_eq8(alpha, beta, gamma, delta, n: int, x: int) -> float:
    """Equation (8): P(X(n) = x) = C(n,x) B(α+x, β+n−x)/B(α,β) · B(γ, δ+n)/B(γ,δ)
    + Σ_{i=x}^{n−1} C(i,x) B(α+x, β+i−x)/B(α,β) · B(γ+1, δ+i)/B(γ,δ)."""
    value = math.comb(n, x) * math.exp(betaln(alpha + x, beta + n - x) - betaln(alpha, beta)
                                       + betaln(gamma, delta + n) - betaln(gamma, delta))
    for i in range(x, n):
        value += math.comb(i, x) * math.exp(betaln(alpha + x, beta + i - x) - betaln(alpha, beta)
                                            + betaln(gamma + 1, delta + i) - betaln(gamma, delta))
    return value


def beta_nodes(a: float, b: float, k: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Jacobi nodes and weights for Beta(a, b): Σ w f(node) = E[f] exactly for polynomials of degree < 2k."""
    roots, weights = roots_jacobi(k, b - 1.0, a - 1.0)  # weight (1−r)^(b−1) (1+r)^(a−1) on [−1, 1]
    return (1.0 + roots) / 2.0, weights / weights.sum()


def bayes(params: dict[str, float], x: int, tx: int, n: int, f) -> float:
    """E[f(p, θ) × 1{alive at n} | x, t_x, n] by Bayes over the (p, θ) nodes, latent death time summed out.

    Every quantity here is a polynomial in p and θ (degree ≤ 2n + 40), so the node sums are the
    integrals to rounding: no simulation and no grid error.
    """
    p, wp = beta_nodes(params["alpha"], params["beta"])
    theta, wt = beta_nodes(params["gamma"], params["delta"])
    p, theta = p[:, None], theta[None, :]
    weight = wp[:, None] * wt[None, :]
    alive = p**x * (1 - p) ** (n - x) * (1 - theta) ** n  # the history, and alive at n
    died = sum(p**x * (1 - p) ** (tx - x + i) * theta * (1 - theta) ** (tx + i) for i in range(n - tx))
    return float((weight * alive * f(p, theta)).sum() / (weight * (alive + died)).sum())


# --- the donations fit -------------------------------------------------------------------------


def test_donations_published_estimates_and_log_likelihood(fitted: BetaGeoBetaBinomModel) -> None:
    # [FHS10]: 1.204, 0.750, 0.657, 2.783; [BTYD]: LL -33,225.58. Asserted to the published decimals.
    assert list(fitted.params_) == list(PARAMS)
    assert {k: round(v, 3) for k, v in fitted.params_.items()} == PUBLISHED
    assert round(fitted.log_likelihood_, 2) == PUBLISHED_LL
    assert fitted.n_ == 11104 and fitted.status_ == mle.CONVERGED


def test_fit_equals_lifetimes(fitted: BetaGeoBetaBinomModel, donations: pd.DataFrame) -> None:
    # [LTF] on the weighted rows: same optimum (its 1e-15 floor moves it by ~1e-9), and its autograd
    # standard errors from our central-difference Hessian.
    import lifetimes

    x, tx, n, w = _rows(donations)
    with warnings.catch_warnings():
        reference = lifetimes.BetaGeoBetaBinomFitter().fit(x, tx, n, weights=w)
    for name in PARAMS:
        assert fitted.params_[name] == pytest.approx(float(reference.params_[name]), rel=1e-6), name
        assert fitted.standard_errors_[name] == pytest.approx(float(reference.standard_errors_[name]), rel=1e-4), name
    assert fitted.log_likelihood_ == pytest.approx(-reference._negative_log_likelihood_ * w.sum(), abs=1e-6)


def test_log_likelihood_is_the_sum_of_equation_5(fitted: BetaGeoBetaBinomModel, donations: pd.DataFrame) -> None:
    x, tx, n, w = _rows(donations)
    total = (w * log_likelihood_eq5(*fitted.params_.values(), x, tx, n)).sum()
    assert fitted.log_likelihood_ == pytest.approx(total, rel=1e-12)


def test_donations_is_a_maximum(fitted: BetaGeoBetaBinomModel, donations: pd.DataFrame) -> None:
    x, tx, n, w = _rows(donations)
    p = np.array(list(fitted.params_.values()))
    best = (w * log_likelihood_eq5(*p, x, tx, n)).sum()
    for i in range(4):
        for step in (0.99, 1.01):
            moved = p.copy()
            moved[i] *= step
            assert (w * log_likelihood_eq5(*moved, x, tx, n)).sum() < best


def test_weighted_rows_equal_the_fit_on_all_donors(fitted: BetaGeoBetaBinomModel, donations: pd.DataFrame) -> None:
    x, tx, n, w = _rows(donations)
    rows = bgbb_likelihood.fit({"frequency": x, "recency": tx, "T": n}, w)
    for name in PARAMS:
        assert rows.params[name] == pytest.approx(fitted.params_[name], rel=1e-12)
    assert rows.log_likelihood == pytest.approx(fitted.log_likelihood_, rel=1e-14)


def test_every_start_reaches_the_donations_optimum(fitted: BetaGeoBetaBinomModel, donations: pd.DataFrame) -> None:
    x, tx, n, w = _rows(donations)
    starts = bgbb_likelihood.starting_points(x, tx, n, w)
    assert len(starts) == 3
    np.testing.assert_array_equal(starts[0], np.zeros(4))  # BTYD's (1, 1, 1, 1)
    np.testing.assert_array_equal(starts[1], np.full(4, 0.1))  # lifetimes'
    for start in starts:
        alone = bgbb_likelihood.fit({"frequency": x, "recency": tx, "T": n}, w, initial_params=start)
        for name in PARAMS:
            assert alone.params[name] == pytest.approx(fitted.params_[name], rel=1e-5), name


def test_the_best_start_is_kept_and_a_failed_start_is_skipped(donations: pd.DataFrame, monkeypatch) -> None:
    x, tx, n, w = _rows(donations)
    columns = {"frequency": x, "recency": tx, "T": n}
    real = mle.minimise
    seen: list[np.ndarray] = []

    def flaky(objective, start, **kwargs):
        seen.append(np.asarray(start))
        if len(seen) == 1:
            raise mle.not_converged("bgbb", "message: made up")
        result = real(objective, start, **kwargs)
        if len(seen) == 2:  # a worse stationary point (shifted): the third start must win
            result.fun += 1.0
            result.x = result.x + 1.0
        return result

    monkeypatch.setattr(mle, "minimise", flaky)
    got = bgbb_likelihood.fit(columns, w)
    assert len(seen) == 3
    assert {k: round(v, 3) for k, v in got.params.items()} == PUBLISHED


def test_no_start_converging_is_one_line_convergence_failure(donations: pd.DataFrame) -> None:
    x, tx, n, w = _rows(donations)
    stopped = r"^bgbb fit did not converge \(message: Maximum number of iterations"
    with pytest.raises(ConvergenceFailure, match=stopped) as err:
        bgbb_likelihood.fit({"frequency": x, "recency": tx, "T": n}, w, maxiter=1)
    assert "\n" not in str(err.value)


def test_fit_is_deterministic_and_ignores_row_order(fitted: BetaGeoBetaBinomModel, summary: pd.DataFrame) -> None:
    shuffled = summary.sample(frac=1.0, random_state=7)[["T", "recency", "frequency"]].reset_index(drop=True)
    again = BetaGeoBetaBinomModel().fit(shuffled)
    assert again.params_ == fitted.params_
    assert again.standard_errors_ == fitted.standard_errors_


# --- the likelihood and its gradient ------------------------------------------------------------

_POINTS = np.vstack([
    np.log(list(PUBLISHED.values())),
    np.random.default_rng(3).normal(0.0, 1.5, size=(6, 4)),
])


def _autograd_reference(log_params, x, tx, n, w):
    """Mean negative ln L of equation (5) and its exact gradient, by autograd (no 1e-15 floor)."""
    import autograd.numpy as anp
    from autograd import value_and_grad
    from autograd.scipy.special import betaln as abetaln

    def objective(theta):
        a, b, g, d = anp.exp(theta)
        total = 0.0
        for xi, ti, ni, wi in zip(x.astype(int), tx.astype(int), n.astype(int), w):
            terms = [abetaln(a + xi, b + ni - xi) - abetaln(a, b) + abetaln(g, d + ni) - abetaln(g, d)]
            terms += [abetaln(a + xi, b + ti - xi + i) - abetaln(a, b) + abetaln(g + 1, d + ti + i) - abetaln(g, d)
                      for i in range(ni - ti)]
            stacked = anp.stack(terms)
            top = anp.max(stacked)
            total = total + wi * (top + anp.log(anp.sum(anp.exp(stacked - top))))
        return -total / w.sum()

    return value_and_grad(objective)(np.asarray(log_params, dtype=float))


@pytest.mark.parametrize("point", range(len(_POINTS)))
def test_likelihood_and_gradient_equal_equation_5_by_autograd(donations: pd.DataFrame, point: int) -> None:
    x, tx, n, w = _rows(donations)
    value, gradient = bgbb_likelihood.BetaGeoBetaBinomLikelihood(x, tx, n, w)(_POINTS[point])
    expected_value, expected_gradient = _autograd_reference(_POINTS[point], x, tx, n, w)
    assert value == pytest.approx(float(expected_value), rel=1e-12)
    np.testing.assert_allclose(gradient, np.asarray(expected_gradient), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("point", range(len(_POINTS)))
def test_likelihood_equals_lifetimes_with_its_floor(donations: pd.DataFrame, point: int) -> None:
    # [LTF] computes L + 1e-15 / (B(α,β) B(γ,δ)) (the 1e-15 it adds inside its log): with that floor
    # added, the same function to rounding. The floor is not negligible where L is small: at
    # point 3, 3e-5 of the mean log-likelihood.
    import lifetimes

    x, tx, n, w = _rows(donations)
    params = np.exp(_POINTS[point])
    rows = bgbb_likelihood.BetaGeoBetaBinomLikelihood(x, tx, n, w).rows(params)
    floor = 1e-15 / np.exp(betaln(*params[:2]) + betaln(*params[2:]))
    with warnings.catch_warnings():
        reference = lifetimes.BetaGeoBetaBinomFitter._negative_log_likelihood(
            _POINTS[point], x.astype(int), tx.astype(int), n.astype(int), w)
    assert -(w * np.log(np.exp(rows) + floor)).sum() / w.sum() == pytest.approx(float(reference), rel=1e-12)
    if point == 3:
        assert -(w * rows).sum() / w.sum() == pytest.approx(float(reference), rel=1e-4)
        assert -(w * rows).sum() / w.sum() != pytest.approx(float(reference), rel=1e-5)


def test_likelihood_over_mixed_histories_equals_equation_5() -> None:
    # Several n at once, t_x = n (no second part), x = 0, a long history (n = 400: L ~ e^-150).
    x = np.array([0, 0, 3, 3, 7, 1, 0, 250, 250])
    tx = np.array([0, 0, 3, 9, 7, 1, 0, 390, 400])
    n = np.array([0, 5, 3, 12, 30, 1, 1, 400, 400])
    w = np.array([2.0, 1.0, 3.0, 1.0, 1.0, 4.0, 1.0, 1.0, 1.0])
    params = np.array([0.7, 2.5, 1.7, 3.1])
    rows = bgbb_likelihood.BetaGeoBetaBinomLikelihood(x, tx, n, w).rows(params)
    np.testing.assert_allclose(rows, log_likelihood_eq5(*params, x, tx, n), rtol=1e-12)
    assert rows[0] == 0.0  # n = 0: nothing could happen


def test_central_difference_hessian_equals_autograd(donations: pd.DataFrame) -> None:
    from autograd import hessian

    import lifetimes

    x, tx, n, w = _rows(donations)
    likelihood = bgbb_likelihood.BetaGeoBetaBinomLikelihood(x, tx, n, w)
    at = _POINTS[0]
    with warnings.catch_warnings():
        exact = hessian(lifetimes.BetaGeoBetaBinomFitter._negative_log_likelihood)(
            at, x.astype(int), tx.astype(int), n.astype(int), w)
    np.testing.assert_allclose(mle.central_hessian(lambda th: likelihood(th)[1], at), exact, rtol=1e-6, atol=1e-9)


# --- input checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "what"),
    [
        ((3, 2, 6), r"frequency > recency \(more transactions than opportunities up to the last one\)"),
        ((2, 7, 6), r"recency > T \(a last transaction after the last opportunity\)"),
        ((0, 3, 6), r"a non-zero recency with frequency 0"),
        ((1, 1.5, 6), r"a non-integer frequency, recency or T \(BG/BB counts whole transaction opportunities\)"),
        ((1, 1, 6.5), r"a non-integer frequency, recency or T \(BG/BB counts whole transaction opportunities\)"),
        ((-2, 1, 6), r"a negative frequency, recency or T"),
        ((np.nan, 1, 6), r"a missing or infinite frequency, recency or T"),
        ((1, 1, np.inf), r"a missing or infinite frequency, recency or T"),
    ],
)
def test_impossible_histories_are_refused_with_counts(bad: tuple, what: str) -> None:
    good = pd.DataFrame({"frequency": [1, 2, 0, 3, 0, 6], "recency": [1, 4, 0, 6, 0, 6], "T": [6, 6, 6, 6, 6, 6]})
    twice = pd.DataFrame([bad, bad], columns=["frequency", "recency", "T"])
    frame = pd.concat([good.iloc[:3], twice, good.iloc[3:]], ignore_index=True)
    with pytest.raises(ClvError, match=rf"^bgbb: 2 of 8 customers have {what}; check the RFM summary$") as err:
        BetaGeoBetaBinomModel().fit(frame)
    assert "\n" not in str(err.value)
    model = BetaGeoBetaBinomModel.from_dict({"params": PUBLISHED})
    once = pd.concat([good, twice.iloc[:1]], ignore_index=True)
    with pytest.raises(ClvError, match=rf"^bgbb: 1 of 7 customers have {what}"):
        model.p_alive(once["frequency"], once["recency"], once["T"])


def test_bad_horizons_and_discount_rates_are_refused() -> None:
    model = BetaGeoBetaBinomModel.from_dict({"params": PUBLISHED})
    with pytest.raises(ClvError, match=r"^bgbb: 1 horizon\(s\) are negative, missing or infinite"):
        model.expected_purchases(1, 1, 6, t=-1)
    with pytest.raises(ClvError, match=r"^bgbb: 1 horizon\(s\)"):
        model.expected_purchases_new(np.array([1.0, np.inf]))
    pairs = r"^bgbb: 1 of 2 \(frequency, T\) pairs are not whole numbers 0 ≤ frequency ≤ T; check the RFM summary$"
    with pytest.raises(ClvError, match=pairs):
        model.expected_purchases_if_alive(np.array([2, 7]), np.array([6, 6]), t=3)
    for rate in (0.0, -0.1, np.nan, np.inf):
        with pytest.raises(ClvError, match=r"^bgbb: the discount rate per opportunity must be finite and > 0"):
            model.discounted_expected_residual_transactions(1, 1, 6, discount_rate=rate)


def test_unfitted_model_refuses_to_forecast() -> None:
    with pytest.raises(ClvError, match="BetaGeoBetaBinomModel is not fitted"):
        BetaGeoBetaBinomModel().p_alive(1, 1, 6)


# --- P(alive), equation (11) -------------------------------------------------------------------


def test_p_alive_is_equation_11_and_lifetimes_one_opportunity_ahead(fitted: BetaGeoBetaBinomModel, donations) -> None:
    x, tx, n, _ = _rows(donations)
    got = fitted.p_alive(x, tx, n)
    np.testing.assert_allclose(got, p_alive_eq11(*fitted.params_.values(), x, tx, n), rtol=1e-12)
    # [LTF] conditional_probability_alive(m, ...) is P(alive at n+m): m = 1 is equation (11), m = 0 "now".
    reference = _lifetimes(fitted.params_)
    np.testing.assert_allclose(got, reference.conditional_probability_alive(1, x, tx, n), rtol=1e-10)
    now = bgbb.p_alive(fitted.params_, x, tx, n, ahead=0)
    np.testing.assert_allclose(now, reference.conditional_probability_alive(0, x, tx, n), rtol=1e-10)
    later = bgbb.p_alive(fitted.params_, x, tx, n, ahead=4)
    np.testing.assert_allclose(later, reference.conditional_probability_alive(4, x, tx, n), rtol=1e-10)


@pytest.mark.parametrize(("x", "tx", "n"), [(0, 0, 6), (1, 1, 6), (3, 4, 6), (4, 6, 6), (2, 3, 9), (0, 0, 0)])
def test_p_alive_by_bayes_over_p_and_theta(x: int, tx: int, n: int) -> None:
    # P(alive at n+1 | x, t_x, n) = E[(1−θ) 1{alive at n} | x, t_x, n], integrated exactly.
    got = bgbb.p_alive(PUBLISHED, x, tx, n).item()
    assert got == pytest.approx(bayes(PUBLISHED, x, tx, n, lambda p, th: 1 - th), rel=1e-12)
    assert bgbb.p_alive(PUBLISHED, x, tx, n, ahead=0).item() == pytest.approx(
        bayes(PUBLISHED, x, tx, n, lambda p, th: np.ones_like(p * th)), rel=1e-12)


def test_p_alive_invariants(fitted: BetaGeoBetaBinomModel) -> None:
    p = fitted.params_
    alive = fitted.p_alive(np.array([3] * 4), np.array([3, 4, 5, 6]), np.array([6] * 4))
    assert np.all(np.diff(alive) > 0) and np.all((alive > 0) & (alive < 1))  # a later last gift: more alive
    # t_x = n: surely alive at n, so P(alive at n+1) = E[1−θ | survived n] = (δ+n)/(γ+δ+n), whatever x.
    edge = fitted.p_alive(np.arange(1, 7), np.full(6, 6), np.full(6, 6))
    np.testing.assert_allclose(edge, (p["delta"] + 6) / (p["gamma"] + p["delta"] + 6), rtol=1e-14)
    assert fitted.p_alive(0, 0, 0).item() == pytest.approx(p["delta"] / (p["gamma"] + p["delta"]), rel=1e-14)
    assert fitted.p_alive(np.array([[1, 2]]), 2, np.array([[6], [9]])).shape == (2, 2)


# --- E[X(n, n+t) | x, t_x, n], equation (13) ---------------------------------------------------


@pytest.mark.parametrize("t", [1, 4, 10, 25])
def test_expected_purchases_equal_lifetimes_and_equation_13(fitted: BetaGeoBetaBinomModel, donations, t: int) -> None:
    x, tx, n, _ = _rows(donations)
    got = fitted.expected_purchases(x, tx, n, t=t)
    np.testing.assert_allclose(got, conditional_expectation_eq13(*fitted.params_.values(), x, tx, n, t), rtol=1e-12)
    reference = _lifetimes(fitted.params_).conditional_expected_number_of_purchases_up_to_time(t, x, tx, n)
    np.testing.assert_allclose(got, reference, rtol=1e-10)


def test_p_alive_times_expected_if_alive_is_equation_13(fitted: BetaGeoBetaBinomModel, donations) -> None:
    # The factorisation the contract relies on: equation (11) × E[X(n, n+t) | alive at n+1, x, n].
    x, tx, n, _ = _rows(donations)
    t = np.array([[1], [2], [6], [50]])
    product = fitted.p_alive(x, tx, n) * fitted.expected_purchases_if_alive(x, n, t=t)
    np.testing.assert_allclose(product, conditional_expectation_eq13(*fitted.params_.values(), x, tx, n, t), rtol=1e-12)


@pytest.mark.parametrize(("x", "tx", "n", "t"), [(0, 0, 6, 10), (4, 5, 6, 10), (2, 2, 6, 3), (5, 7, 11, 30)])
def test_expected_purchases_by_bayes_over_p_and_theta(x: int, tx: int, n: int, t: int) -> None:
    # E[X(n, n+t)] = E[p Σ_{s=1..t} (1−θ)^s 1{alive at n} | x, t_x, n], integrated exactly.
    def future(p, th):
        return p * sum((1 - th) ** s for s in range(1, t + 1))

    got = BetaGeoBetaBinomModel.from_dict({"params": PUBLISHED}).expected_purchases(x, tx, n, t=t).item()
    assert got == pytest.approx(bayes(PUBLISHED, x, tx, n, future), rel=1e-12)


def test_btyd_walkthrough_customers_a_and_b(fitted: BetaGeoBetaBinomModel) -> None:
    # [BTYD] walkthrough, n = 6, n* = 10: A (x = 0) 0.1302169, B (x = 4, t_x = 5) 3.627858, at BTYD's
    # L-BFGS-B estimates, which stop a little short of the optimum (here 0.1302181 and 3.627968).
    assert fitted.expected_purchases(0, 0, 6, t=10).item() == pytest.approx(0.1302169, rel=1e-4)
    assert fitted.expected_purchases(4, 5, 6, t=10).item() == pytest.approx(3.627858, rel=1e-4)


def test_expected_purchases_invariants_and_shapes(fitted: BetaGeoBetaBinomModel, donations) -> None:
    x, tx, n, _ = _rows(donations)
    t = np.arange(0, 40)[:, None]
    paths = fitted.expected_purchases(x, tx, n, t=t)
    assert paths.shape == (40, 22)
    assert np.all(paths[0] == 0.0) and np.all(np.diff(paths, axis=0) > 0)
    assert np.all(np.diff(paths, axis=0) <= 1.0)  # at most one transaction per opportunity
    some = [0, 1, 7, 39]
    loop = np.array([[fitted.expected_purchases(xi, ti, ni, t=h).item() for xi, ti, ni in zip(x, tx, n)] for h in some])
    np.testing.assert_allclose(paths[some], loop, rtol=1e-15)
    assert fitted.expected_purchases_if_alive(np.array([1.0, 2.0]), np.array([6.0, 6.0]), t=3).shape == (2,)
    assert fitted.expected_purchases_if_alive(1.0, 6.0, t=3).shape == ()


def test_fractional_horizons_count_whole_opportunities(fitted: BetaGeoBetaBinomModel) -> None:
    # X(n, n+t) counts opportunities n+1 … n+⌊t⌋; a horizon a rounding error short of 7 is 7.
    horizons = np.array([[2.0], [2.5], [2.999]])
    at = fitted.expected_purchases(np.array([2, 4]), np.array([3, 6]), np.array([6, 6]), t=horizons)
    np.testing.assert_array_equal(at[1], at[0])
    np.testing.assert_array_equal(at[2], at[0])
    assert 0.29 * 100 < 29
    assert fitted.expected_purchases_new(0.29 * 100) == fitted.expected_purchases_new(29)
    assert fitted.expected_purchases_new(7.5) == fitted.expected_purchases_new(7)


# --- E[X(n)] for a new customer, equations (7) and (8) ----------------------------------------


def test_expected_purchases_new_is_equation_7_and_the_mean_of_equation_8(fitted: BetaGeoBetaBinomModel) -> None:
    p = fitted.params_
    horizons = np.array([0, 1, 2, 6, 11, 50])
    got = fitted.expected_purchases_new(horizons)
    assert got.shape == (6,) and got[0] == 0.0
    np.testing.assert_allclose(got, expected_new_eq7(*p.values(), horizons), rtol=1e-12, atol=1e-14)
    for n in horizons:
        pmf = [pmf_eq8(*p.values(), int(n), x) for x in range(int(n) + 1)]
        assert sum(pmf) == pytest.approx(1.0, rel=1e-12)
        mean = sum(x * q for x, q in enumerate(pmf))
        assert got[list(horizons).index(n)] == pytest.approx(mean, rel=1e-12, abs=1e-15)
    # by Bayes with no history: E[p Σ_{s=1..6} (1−θ)^s]
    prior = bayes(p, 0, 0, 0, lambda q, th: q * sum((1 - th) ** s for s in range(1, 7)))
    assert got[3] == pytest.approx(prior, rel=1e-12)


def test_lifetimes_first_n_periods_is_the_distribution_of_equation_8(fitted: BetaGeoBetaBinomModel, donations) -> None:
    # [LTF]'s expected_number_of_transactions_in_first_n_periods(n) is P(X(n) = x) × customers for
    # the x in its data (all of 0…6 here), so its mean is E[X(n)] only at n = 6.
    x, tx, n, w = _rows(donations)
    reference = _lifetimes(fitted.params_)
    reference.data = pd.DataFrame({"frequency": x.astype(int), "recency": tx.astype(int), "n_periods": n.astype(int),
                                   "weights": w})
    table = reference.expected_number_of_transactions_in_first_n_periods(6)["model"] / w.sum()
    pmf = [pmf_eq8(*fitted.params_.values(), 6, k) for k in range(7)]
    np.testing.assert_allclose(table.to_numpy(), pmf, rtol=1e-12)
    mean = float((table.index.to_numpy() * table.to_numpy()).sum())
    assert fitted.expected_purchases_new(6) == pytest.approx(mean, rel=1e-12)


# --- γ = 1: a removable singularity of equations (7) and (13) ----------------------------------


def _alive_sum(gamma: float, delta: float, n: int, t: int) -> float:
    """Σ_{s=0}^{t−1} E[(1−θ)^s], θ ~ Beta(γ, δ+n+1): the finite sum the closed form adds up."""
    b = delta + n + 1
    k = np.arange(t - 1, dtype=float)
    return float(np.concatenate([[1.0], np.cumprod((b + k) / (b + gamma + k))]).sum())


@pytest.mark.parametrize("gamma", [0.3, 1 - 1e-9, 1.0, 1 + 1e-12, 1 + 1e-6, 1.0004, 1.3, 40.0])
@pytest.mark.parametrize(("x", "n", "t"), [(0, 0, 1), (3, 6, 10), (1, 6, 500), (40, 300, 1000)])
def test_expected_if_alive_is_finite_and_exact_through_gamma_1(gamma: float, x: int, n: int, t: int) -> None:
    params = {"alpha": 1.2, "beta": 0.75, "gamma": gamma, "delta": 2.8}
    got = bgbb.expected_purchases_if_alive(params, x, n, t).item()
    rate = (1.2 + x) / (1.95 + n)
    assert got == pytest.approx(rate * _alive_sum(gamma, 2.8, n, t), rel=1e-12)


def test_lifetimes_fails_at_gamma_1_where_the_limit_is_finite() -> None:
    params = {"alpha": 1.2, "beta": 0.75, "gamma": 1.0, "delta": 2.8}
    with np.errstate(all="ignore"):
        reference = _lifetimes(params).conditional_expected_number_of_purchases_up_to_time(
            5, np.array([2]), np.array([3]), np.array([6]))  # [LTF] takes no scalars
    assert not np.isfinite(reference).any()
    b = 2.8 + 7
    limit = (1.2 + 2) / (1.95 + 6) * b * (digamma(b + 5) - digamma(b))  # b [ψ(b+t) − ψ(b)]
    assert bgbb.expected_purchases_if_alive(params, 2, 6, 5).item() == pytest.approx(limit, rel=1e-13)
    assert np.isfinite(bgbb.expected_purchases_new(params, np.array([1, 10, 1000]))).all()


# --- DERT, equation (14) ------------------------------------------------------------------------


def _dert_by_sum(params: dict[str, float], x, tx, n, d: float) -> np.ndarray:
    """Σ_{s=1}^{S} (E[X(n, n+s)] − E[X(n, n+s−1)]) / (1+d)^s from equation (13), S with a tail < 1e-13.

    The s-th increment is at most P(alive at n+1)·E[p] and the tail beyond S at most that times
    (1+d)^(−S)/d.
    """
    S = int(math.ceil(math.log(1e13 / d) / math.log1p(d)))
    s = np.arange(0, S + 1)[:, None]
    cumulative = conditional_expectation_eq13(*params.values(), x, tx, n, s)
    return (np.diff(cumulative, axis=0) / (1 + d) ** s[1:]).sum(axis=0)


@pytest.mark.parametrize("d", [0.1, 0.03, 0.5, 5.0])
def test_dert_equals_the_truncated_sum_of_discounted_expectations(fitted: BetaGeoBetaBinomModel, donations, d) -> None:
    x, tx, n, _ = _rows(donations)
    got = fitted.discounted_expected_residual_transactions(x, tx, n, discount_rate=d)
    np.testing.assert_allclose(got, _dert_by_sum(fitted.params_, x, tx, n, d), rtol=1e-8)


def test_dert_equals_equation_14_with_scipy_hyp2f1_on_donations(fitted: BetaGeoBetaBinomModel, donations) -> None:
    # Where scipy's 2F1 is accurate (b = δ+7 ≈ 9.8, γ = 0.66, z = 1/1.1) it is equation (14) as printed.
    a, b, g, dl = fitted.params_.values()
    x, tx, n, _ = _rows(donations)
    d = 0.1
    lead = np.exp(betaln(a + x + 1, b + n - x) - betaln(a, b) + betaln(g, dl + n + 1) - betaln(g, dl)
                  - log_likelihood_eq5(a, b, g, dl, x, tx, n))
    eq14 = lead / (1 + d) * hyp2f1(1, dl + n + 1, g + dl + n + 1, 1 / (1 + d))
    got = fitted.discounted_expected_residual_transactions(x, tx, n, discount_rate=d)
    np.testing.assert_allclose(got, eq14, rtol=1e-12)
    assert got.max() < (a + 6) / (a + b + 6) / d  # ≤ E[p] / d


def _mean_inverse_by_series(gamma: float, b: float, d: float) -> float:
    """Σ_{s≥0} E[(1−θ)^s]/(1+d)^(s+1) = E[1/(θ+d)], θ ~ Beta(γ, b), summed in long double."""
    z = np.longdouble(1) / (1 + np.longdouble(d))
    k = np.arange(int(45 / math.log1p(d)) + 50, dtype=np.longdouble)
    terms = np.concatenate([[np.longdouble(1)], np.cumprod((b + k) / (b + gamma + k) * z)])
    return float(z * terms[::-1].sum())


@pytest.mark.parametrize("gamma", [0.02, 0.657, 1.0, 1 + 1e-7, 3.5, 300.0])
@pytest.mark.parametrize("b", [1.0 + 1e-6, 3.78, 101.0, 2000.0, 1e5])
@pytest.mark.parametrize("d", [1e-3, 0.1, 10.0])
def test_dert_integral_equals_the_series_where_scipy_hyp2f1_fails(gamma: float, b: float, d: float) -> None:
    got = bgbb._mean_inverse(gamma, b, d)
    assert got == pytest.approx(_mean_inverse_by_series(gamma, b, d), rel=1e-11)
    assert 1 / (1 + d) <= got <= 1 / d


def test_scipy_hyp2f1_is_wrong_at_these_arguments() -> None:
    # Why equation (14)'s 2F1 is integrated rather than taken from scipy (measured with scipy 1.17):
    # NaN for a long history (b ≈ 1000), 37 % off at γ = 1, 3e-7 off at b = 100, γ = 10.
    wrong = 0
    for gamma, b, d in [(1.0, 1000.0, 0.1), (1.0, 3.78, 1e-3), (10.0, 101.0, 0.1)]:
        right = _mean_inverse_by_series(gamma, b, d)
        assert bgbb._mean_inverse(gamma, b, d) == pytest.approx(right, rel=1e-11)
        scipy_value = hyp2f1(1, b, b + gamma, 1 / (1 + d)) / (1 + d)
        wrong += not abs(scipy_value / right - 1) < 1e-8
    if not wrong:
        pytest.skip("this scipy's hyp2f1 is right at these arguments: bgbb's docstring measurement is dated")


def test_dert_of_a_long_history_is_finite_and_equals_the_sum() -> None:
    params = {"alpha": 1.2, "beta": 0.75, "gamma": 0.657, "delta": 2.8}
    x, tx, n = np.array([0, 300, 900, 1500]), np.array([0, 1200, 1400, 1500]), np.array([1500] * 4)
    got = bgbb.discounted_expected_residual_transactions(params, x, tx, n, 0.05)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, _dert_by_sum(params, x, tx, n, 0.05), rtol=1e-8)


# --- saving, loading, and lifetimes staying out ------------------------------------------------


def test_to_dict_from_dict_round_trip(fitted: BetaGeoBetaBinomModel, donations) -> None:
    state = json.loads(json.dumps(fitted.to_dict()))
    assert state["type"] == "bgbb" and list(state["params"]) == list(PARAMS)
    again = BetaGeoBetaBinomModel.from_dict(state)
    assert again.params_ == fitted.params_ and again.standard_errors_ == fitted.standard_errors_
    assert again.log_likelihood_ == fitted.log_likelihood_ and again.n_ == 11104
    np.testing.assert_allclose(np.array(again.covariance_), np.array(fitted.covariance_), rtol=0, atol=0)
    x, tx, n, _ = _rows(donations)
    np.testing.assert_array_equal(again.expected_purchases(x, tx, n, t=5), fitted.expected_purchases(x, tx, n, t=5))
    np.testing.assert_array_equal(again.discounted_expected_residual_transactions(x, tx, n, discount_rate=0.1),
                                  fitted.discounted_expected_residual_transactions(x, tx, n, discount_rate=0.1))


def test_class_declares_its_contract() -> None:
    assert BetaGeoBetaBinomModel.name == "bgbb" and BetaGeoBetaBinomModel.role == "purchase"
    assert BetaGeoBetaBinomModel.param_names == PARAMS
    assert BetaGeoBetaBinomModel.columns == ("frequency", "recency", "T")
    assert BetaGeoBetaBinomModel.discrete is True


def test_fitting_and_forecasting_bgbb_never_imports_lifetimes(tmp_path, donations) -> None:
    path = tmp_path / "donations.csv"
    donations.to_csv(path, index=False)
    script = textwrap.dedent(
        """
        import json, sys

        import numpy as np
        import pandas as pd

        from clvmodel.models.bgbb import BetaGeoBetaBinomModel

        rows = pd.read_csv(sys.argv[1])
        w = rows["weights"].to_numpy()
        summary = pd.DataFrame({"frequency": np.repeat(rows["frequency"], w), "recency": np.repeat(rows["recency"], w),
                                "T": np.repeat(rows["periods"], w)})
        model = BetaGeoBetaBinomModel().fit(summary)
        total = float(model.expected_purchases(summary["frequency"], summary["recency"], summary["T"], t=5).sum())
        dert = float(model.discounted_expected_residual_transactions(6, 6, 6, discount_rate=0.1).item())
        print(json.dumps({"loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("lifetimes", "autograd")),
                          "params": model.params_, "total": total, "dert": dert}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert {k: round(v, 3) for k, v in report["params"].items()} == PUBLISHED


# --- the pipeline: configs/donations.yaml, saved and scored like every family ------------------


def test_donations_config_trains_saves_and_scores_the_same_three_ways(tmp_path, score_three_ways) -> None:
    """``data.format: rfm`` on ``bundled:donations`` reproduces [FHS10]/[BTYD] through the
    pipeline, and the saved model scores the same rows equally from Python, the CLI and REST."""
    from pathlib import Path

    from clvmodel.config import load_config
    from clvmodel.train import train

    config_path = Path(__file__).resolve().parents[2] / "configs" / "donations.yaml"
    model_dir = tmp_path / "donations"
    result = train(load_config(config_path, [f"output.model_dir={model_dir}"]), track=False)
    fitted = result.model.models["bgbb"]
    assert {k: round(v, 3) for k, v in fitted.params_.items()} == PUBLISHED
    assert round(fitted.log_likelihood_, 2) == PUBLISHED_LL and fitted.n_ == 11104
    assert result.model.primary == "bgbb" and result.load.customers == 11104
    rows = pd.DataFrame({"customer_id": ["A", "B", "C"], "frequency": [0.0, 4.0, 6.0], "recency": [0.0, 5.0, 6.0],
                         "T": [6.0, 6.0, 6.0]})
    scored = score_three_ways(model_dir, rows, horizon=10)
    expected = BetaGeoBetaBinomModel.from_dict(fitted.to_dict())
    x, tx, n = (rows[c].to_numpy() for c in ("frequency", "recency", "T"))
    for how, frame in scored.items():
        np.testing.assert_allclose(frame["p_alive"], expected.p_alive(x, tx, n), rtol=1e-12, err_msg=how)
        np.testing.assert_allclose(frame["expected_purchases"], expected.expected_purchases(x, tx, n, t=10),
                                   rtol=1e-12, err_msg=how)
        assert frame["customer_id"].tolist() == ["A", "B", "C"], how
        # No amounts in the data: no value (not 0), and segments ranked on expected donations.
        assert frame["predicted_clv"].isna().all(), how
        assert frame["segment"].tolist() == scored["python"]["segment"].tolist(), how
    assert scored["python"]["segment"].tolist()[2] == "VIP"  # C, the most expected donations
    assert scored["python"]["predicted_clv_upper"].isna().all()  # no bounds on a value there is not
    assert scored["python"]["expected_purchases_upper"].notna().all()
    # [BTYD] walkthrough customers A and B, 10 more opportunities (at its estimates: 3e-5 apart).
    assert scored["rest"]["expected_purchases"].tolist()[:2] == pytest.approx([0.1302169, 3.627858], rel=1e-4)
