"""Tests for BG/NBD with static covariates (clvmodel.models.bgnbd_likelihood, issue 14).

The plain BG/NBD likelihood and fit are tested in test_bgnbd.py; this file covers
:class:`BetaGeoCovariateLikelihood` and :func:`fit_covariates`.

Sources:
[FH07]  Fader & Hardie (2007), "Incorporating time-invariant covariates into the Pareto/NBD and
        BG/NBD models": each customer's likelihood is the BG/NBD's at their own parameters.
[CLV]   R CLVTools 0.12.1 (src/bgnbd.cpp): α_i = α exp(−γ_transᵀz), a_i = a exp(γ_lifeᵀz),
        b_i = b exp(γ_lifeᵀz); on its apparel data (tests/data/apparel; weeks, calibration end
        2006-12-31, Gender and Channel as raw 0/1) the BG/NBD without covariates has LL −5857.020 at
        r 0.6073, α 20.96, a 1.276, b 8.861, and with both covariates a and b run off along a ridge,
        CLVTools stopping at LL −5839.863 (REFERENCE.md: "not a reference").
[FHL05] Fader, Hardie & Lee (2005), equation (6), the BG/NBD likelihood.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln

from clvmodel.errors import ClvError
from clvmodel.models import bgnbd_likelihood as bl
from clvmodel.models import mle
from clvmodel.models.base import collapse
from clvmodel.models.bgnbd_simulate import simulate_summary

APPAREL_CUSTOMERS = Path(__file__).resolve().parents[1] / "data" / "apparel" / "customers.csv"
DESIGN = ["Gender", "Channel"]


def expanded_log_likelihood(theta: np.ndarray, x, tx, T, Z) -> np.ndarray:
    """ln L_i of [FHL05] equation (6), row by row with lnΓ as printed, at each row's [CLV] parameters."""
    k = Z.shape[1]
    r, alpha, a, b = np.exp(theta[:4])
    life, trans = theta[4:4 + k], theta[4 + k:]
    alpha_i = alpha * np.exp(-Z @ trans)
    a_i, b_i = a * np.exp(Z @ life), b * np.exp(Z @ life)
    out = []
    for xj, txj, Tj, al, aj, bj in zip(x, tx, T, alpha_i, a_i, b_i):
        head = (gammaln(r + xj) - gammaln(r) + r * np.log(al)
                + gammaln(aj + bj) + gammaln(bj + xj) - gammaln(bj) - gammaln(aj + bj + xj))
        stay = -(r + xj) * np.log(al + Tj)
        if xj > 0:
            stay = np.logaddexp(stay, np.log(aj) - np.log(bj + xj - 1) - (r + xj) * np.log(al + txj))
        out.append(head + stay)
    return np.array(out)


def simulated_groups(seed: int, per_group: int, base: dict[str, float], life: float, trans: float) -> pd.DataFrame:
    """Two groups of simulated BG/NBD customers (``group`` 0/1) with [CLV]'s links; T from 30 to 52."""
    rng = np.random.default_rng(seed)
    frames = []
    for z in (0, 1):
        params = {"r": base["r"], "alpha": base["alpha"] * np.exp(-trans * z),
                  "a": base["a"] * np.exp(life * z), "b": base["b"] * np.exp(life * z)}
        frame = simulate_summary(rng, params, rng.integers(30, 53, per_group).astype(float))
        frame["group"] = float(z)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def small() -> tuple[np.ndarray, ...]:
    """300 simulated rows with a 0/1 and a numeric covariate, and integer weights."""
    rng = np.random.default_rng(7)
    frame = simulate_summary(rng, {"r": 0.7, "alpha": 5.0, "a": 0.8, "b": 3.0}, rng.integers(20, 60, 300).astype(float))
    Z = np.column_stack([rng.integers(0, 2, 300), rng.normal(size=300).round(2)]).astype(float)
    w = rng.integers(1, 5, 300).astype(float)
    return frame["frequency"].to_numpy(), frame["recency"].to_numpy(), frame["T"].to_numpy(), w, Z


@pytest.fixture(scope="module")
def apparel_cov(apparel) -> pd.DataFrame:
    """[CLV]'s apparel set-up: 600 customers, weeks, calibration end 2006-12-31, Gender and Channel as 0/1."""
    summary = apparel(dt.date(2006, 12, 31))
    customers = pd.read_csv(APPAREL_CUSTOMERS, dtype={"Id": str}).rename(columns={"Id": "customer_id"})
    merged = summary.assign(customer_id=summary["customer_id"].astype(str)).merge(customers, on="customer_id", how="left")
    assert len(merged) == 600 and not merged[DESIGN].isna().any().any()
    return merged


def _columns(frame: pd.DataFrame, design: list[str]) -> dict[str, np.ndarray]:
    return {c: frame[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", *design)}


def _random_points(rng: np.random.Generator, k: int, count: int) -> list[np.ndarray]:
    return [np.concatenate([rng.normal([-0.5, 1.0, 0.0, 1.0], 0.7), rng.normal(0.0, 0.5, 2 * k)]) for _ in range(count)]


# --- the likelihood ----------------------------------------------------------------------------------


def test_log_likelihood_is_equation_6_at_each_rows_parameters(small) -> None:
    x, tx, T, w, Z = small
    objective = bl.BetaGeoCovariateLikelihood(x, tx, T, w, Z)
    for theta in _random_points(np.random.default_rng(1), 2, 4):
        expected = float(np.sum(w * expanded_log_likelihood(theta, x, tx, T, Z)))
        assert objective.log_likelihood(theta) == pytest.approx(expected, rel=1e-11)
        assert objective(theta)[0] == pytest.approx(-expected / w.sum(), rel=1e-11)


def test_gamma_zero_is_the_plain_likelihood_and_gradient(small) -> None:
    x, tx, T, w, Z = small
    objective = bl.BetaGeoCovariateLikelihood(x, tx, T, w, Z)
    plain = bl.BetaGeoLikelihood(x, tx, T, w)
    for theta in _random_points(np.random.default_rng(2), 2, 4):
        base = theta[:4]
        at = np.concatenate([base, np.zeros(4)])
        value, gradient = objective(at)
        plain_value, plain_gradient = plain(base)
        assert value == pytest.approx(plain_value, rel=1e-13)
        np.testing.assert_allclose(gradient[:4], plain_gradient, rtol=1e-11, atol=1e-14)
    # A covariate that is 0 for everyone leaves every row's likelihood as it is, whatever its γ.
    zero = bl.BetaGeoCovariateLikelihood(x, tx, T, w, np.zeros((len(x), 1)))
    theta = np.array([-0.3, 1.2, 0.1, 0.9])
    assert zero(np.concatenate([theta, [0.7, -0.4]]))[0] == pytest.approx(plain(theta)[0], rel=1e-13)


def _central_differences(objective, theta: np.ndarray, step: float = 1e-6) -> np.ndarray:
    return np.array([(objective(theta + h)[0] - objective(theta - h)[0]) / (2 * step)
                     for h in np.eye(len(theta)) * step])


def test_gradient_equals_central_differences_on_simulated_rows(small) -> None:
    x, tx, T, w, Z = small
    objective = bl.BetaGeoCovariateLikelihood(x, tx, T, w, Z)
    for theta in _random_points(np.random.default_rng(3), 2, 5):
        _, gradient = objective(theta)
        np.testing.assert_allclose(gradient, _central_differences(objective, theta), rtol=1e-5, atol=1e-8)


def test_gradient_equals_central_differences_on_apparel(apparel_cov: pd.DataFrame) -> None:
    cols = _columns(apparel_cov, DESIGN)
    Z = np.column_stack([cols[c] for c in DESIGN])
    objective = bl.BetaGeoCovariateLikelihood(cols["frequency"], cols["recency"], cols["T"], np.ones(600), Z)
    points = _random_points(np.random.default_rng(4), 2, 4)
    points.append(np.array([np.log(0.67), np.log(38.2), np.log(9e4), np.log(6.7e5), -1.39, -10.8, 0.46, 0.57]))  # on the ridge
    for theta in points:
        _, gradient = objective(theta)
        np.testing.assert_allclose(gradient, _central_differences(objective, theta), rtol=1e-5, atol=1e-8)


def test_collapsed_rows_with_weights_equal_all_rows(small) -> None:
    x, tx, T, w, Z = small
    counts = w.astype(int)
    expanded = [np.repeat(v, counts, axis=0) for v in (x, tx, T, Z)]
    order = np.random.default_rng(5).permutation(int(counts.sum()))
    every = bl.BetaGeoCovariateLikelihood(*(v[order] for v in expanded[:3]), np.ones(len(order)), expanded[3][order])
    weighted = bl.BetaGeoCovariateLikelihood(x, tx, T, w, Z)
    for theta in _random_points(np.random.default_rng(6), 2, 3):
        value, gradient = weighted(theta)
        assert every(theta)[0] == pytest.approx(value, rel=1e-12)
        np.testing.assert_allclose(every(theta)[1], gradient, rtol=1e-10, atol=1e-13)


def test_outer_product_of_scores_sums_each_rows_score(small) -> None:
    x, tx, T, w, Z = small
    rows = slice(0, 25)
    objective = bl.BetaGeoCovariateLikelihood(x[rows], tx[rows], T[rows], w[rows], Z[rows])
    theta = _random_points(np.random.default_rng(8), 2, 1)[0]
    scores = [-bl.BetaGeoCovariateLikelihood(x[i:i + 1], tx[i:i + 1], T[i:i + 1], np.ones(1), Z[i:i + 1])(theta)[1]
              for i in range(25)]
    expected = sum(wi * np.outer(g, g) for wi, g in zip(w[rows], scores))
    np.testing.assert_allclose(objective.outer_product_of_scores(theta), expected, rtol=1e-10, atol=1e-12)


# --- the fit -----------------------------------------------------------------------------------------


def test_no_design_columns_is_the_plain_fit(small) -> None:
    x, tx, T, w, _ = small
    columns = {"frequency": x, "recency": tx, "T": T}
    assert bl.fit_covariates(columns, w, design_columns=[]) == bl.fit(columns, w)


def test_apparel_without_covariates_at_clvtools_point(apparel_cov: pd.DataFrame) -> None:
    # [CLV]: LL -5857.020 at its rounded estimates; -5857.0198 in numpy (research memo §4).
    cols = _columns(apparel_cov, DESIGN)
    x, tx, T = cols["frequency"], cols["recency"], cols["T"]
    point = np.log([0.6073, 20.96, 1.276, 8.861])
    plain = bl.BetaGeoLikelihood(x, tx, T, np.ones(600))
    assert plain.log_likelihood(point) == pytest.approx(-5857.0198, abs=5e-4)
    Z = np.column_stack([cols[c] for c in DESIGN])
    covariate = bl.BetaGeoCovariateLikelihood(x, tx, T, np.ones(600), Z)
    assert covariate.log_likelihood(np.concatenate([point, np.zeros(4)])) == pytest.approx(-5857.0198, abs=5e-4)


def test_apparel_with_covariates_reports_the_ridge(apparel_cov: pd.DataFrame) -> None:
    # [CLV]: a and b run off; Channel-0 customers' Beta collapses to a point. The fit says so and
    # reports the limit; no parameter values are asserted (CLVTools' are where it stopped).
    cols = _columns(apparel_cov, DESIGN)
    with pytest.warns(UserWarning, match=r"^bgnbd_cov: these data have no finite maximum-likelihood estimate: .*"
                                         r"Gender 0, Channel 0; Gender 1, Channel 0 .*not identified: a, b, life\.Channel\)$"):
        got = bl.fit_covariates(cols, np.ones(600), design_columns=DESIGN)
    assert got.status == mle.RIDGE and got.n == 600
    assert list(got.params) == ["r", "alpha", "a", "b", "life.Gender", "life.Channel", "trans.Gender", "trans.Channel"]
    assert got.log_likelihood >= -5839.863 - 0.01  # [CLV]'s stop, or higher
    assert got.log_likelihood > -5857.0198 + 10  # covariates help (likelihood-ratio 34 on 4 parameters)
    assert set(got.limit) == {"r", "alpha", "dropout_probability", "life.Gender", "trans.Gender", "trans.Channel"}
    assert got.limit["dropout_probability"] == pytest.approx(got.params["a"] / (got.params["a"] + got.params["b"]), rel=1e-12)
    assert all(np.isnan(got.standard_errors[p]) for p in ("a", "b", "life.Channel"))
    assert all(np.isfinite(got.standard_errors[p]) and got.standard_errors[p] > 0 for p in got.limit if p != "dropout_probability")
    # The reported point is the likelihood's, and no finite point the search reaches beats it.
    Z = np.column_stack([cols[c] for c in DESIGN])
    objective = bl.BetaGeoCovariateLikelihood(cols["frequency"], cols["recency"], cols["T"], np.ones(600), Z)
    theta = np.concatenate([np.log([got.params[p] for p in ("r", "alpha", "a", "b")]), list(got.params.values())[4:]])
    assert objective.log_likelihood(theta) == pytest.approx(got.log_likelihood, abs=1e-6)
    start = np.array([0.0, np.log(3.0), 0.0, np.log(3.0), 0.1, 0.1, 0.1, 0.1])
    stop = mle.search(objective, [start])[0]
    assert -stop.fun * 600 < got.log_likelihood + mle.RIDGE_GAIN


def test_apparel_ridge_is_the_same_under_last_bit_perturbations(apparel_cov: pd.DataFrame) -> None:
    cols = _columns(apparel_cov, DESIGN)
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reference = bl.fit_covariates(cols, np.ones(600), design_columns=DESIGN)
        for _ in range(4):
            nudged = dict(cols, recency=np.minimum(cols["recency"] * (1 + rng.integers(-4, 5, 600) * np.finfo(float).eps),
                                                   cols["T"]))
            got = bl.fit_covariates(nudged, np.ones(600), design_columns=DESIGN)
            assert got.status == mle.RIDGE
            for name, value in reference.limit.items():
                assert got.limit[name] == pytest.approx(value, rel=1e-10), name  # measured: 1e-12 (not re-optimised: 1e-8)
            assert got.log_likelihood == pytest.approx(reference.log_likelihood, abs=1e-8)


def test_simulated_two_groups_recover_the_coefficients() -> None:
    base, life, trans = {"r": 0.8, "alpha": 6.0, "a": 0.7, "b": 2.5}, 1.0, 0.5
    frame = simulated_groups(0, 10_000, base, life, trans)
    rows, weights, _ = collapse(frame, ["frequency", "recency", "T", "group"])
    got = bl.fit_covariates(_columns(rows, ["group"]), weights, design_columns=["group"])
    assert got.status == mle.CONVERGED and got.limit is None and got.n == 20_000
    truth = {**base, "life.group": life, "trans.group": trans}
    for name, value in truth.items():
        se = got.standard_errors[name]
        assert 0 < se < 0.2 * max(abs(value), 1.0), name
        assert abs(got.params[name] - value) < 3 * se, (name, got.params[name], se)
    # Covariance over (ln r, ln α, ln a, ln b, γ_life, γ_trans): delta method for the base, direct for γ.
    variance = np.diag(np.array(got.covariance))
    assert got.standard_errors["a"] == pytest.approx(got.params["a"] * np.sqrt(variance[2]), rel=1e-12)
    assert got.standard_errors["trans.group"] == pytest.approx(np.sqrt(variance[5]), rel=1e-12)
    # The fit is the same from the collapsed rows as from every customer, and ignores row order.
    shuffled = frame.sample(frac=1.0, random_state=1)
    every = bl.fit_covariates(_columns(shuffled, ["group"]), np.ones(len(frame)), design_columns=["group"])
    for name, value in got.params.items():
        assert every.params[name] == pytest.approx(value, rel=1e-6, abs=1e-8), name
    assert every.log_likelihood == pytest.approx(got.log_likelihood, abs=1e-6)


def test_a_group_without_spread_in_dropout_is_a_ridge_that_keeps_a_and_b() -> None:
    # Group 0: dropout p ~ Beta(0.7, 2.5); group 1: every customer p = 0.7/3.2 (a Beta of
    # concentration 3.2e8, the same mean as CLVTools' links require). Only life.group runs off
    # (to +inf); a and b stay those of group 0 and are reported with the limit. With this seed the
    # limit beats every finite point (with seeds 0 and 2 a finite optimum with life.group 4 and 6
    # does, measured: sampling noise decides, not the optimiser).
    rng = np.random.default_rng(1)
    frames = []
    for z, (a, b) in enumerate([(0.7, 2.5), (0.7e8, 2.5e8)]):
        params = {"r": 0.8, "alpha": 6.0 * np.exp(-0.5 * z), "a": a, "b": b}
        frame = simulate_summary(rng, params, rng.integers(30, 53, 10_000).astype(float))
        frame["group"] = float(z)
        frames.append(frame)
    rows, weights, _ = collapse(pd.concat(frames, ignore_index=True), ["frequency", "recency", "T", "group"])
    with pytest.warns(UserWarning, match=r"for the customers with group 1 .*not identified: life\.group\)$"):
        got = bl.fit_covariates(_columns(rows, ["group"]), weights, design_columns=["group"])
    assert got.status == mle.RIDGE
    assert set(got.limit) == {"r", "alpha", "a", "b", "trans.group", "dropout_probability"}
    assert np.isnan(got.standard_errors["life.group"]) and got.params["life.group"] > 15
    truth = {"r": 0.8, "alpha": 6.0, "a": 0.7, "b": 2.5, "trans.group": 0.5}
    for name, value in truth.items():
        assert abs(got.limit[name] - value) < 3 * got.standard_errors[name], name
    assert got.limit["dropout_probability"] == pytest.approx(0.7 / 3.2, abs=0.01)


def test_bad_covariates_are_refused_in_one_line(small) -> None:
    x, tx, T, w, Z = small
    columns = {"frequency": x, "recency": tx, "T": T, "g": Z[:, 0].copy()}
    with pytest.raises(ClvError, match=r"^bgnbd_cov: no covariate column 'h' in the rows to fit$"):
        bl.fit_covariates(columns, w, design_columns=["g", "h"])
    columns["g"][3] = np.nan
    with pytest.raises(ClvError, match=r"^bgnbd_cov: \d of [\d,]+ customers have a missing or infinite covariate value; "):
        bl.fit_covariates(columns, w, design_columns=["g"])
