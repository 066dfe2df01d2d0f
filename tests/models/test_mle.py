"""Tests for the shared maximum-likelihood machinery (clvmodel.models.mle): how convergence is decided.

scipy's BFGS verdict ("precision loss") depends on the last bits of a machine's arithmetic; the
decision here is the gradient at the stop (issue 12).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import OptimizeResult

from clvmodel.errors import ConvergenceFailure
from clvmodel.models import mle

PRECISION_LOSS = "Desired error not necessarily achieved due to precision loss."


def _stop(monkeypatch: pytest.MonkeyPatch, gradient: float, success: bool, message: str) -> None:
    """Make scipy's minimize stop at x = 0 with the given largest |gradient| and verdict."""
    result = OptimizeResult(x=np.zeros(2), fun=1.0, jac=np.array([gradient, 0.0]), success=success, message=message)
    monkeypatch.setattr(mle, "minimize", lambda *args, **kwargs: result)


@pytest.mark.parametrize("gradient", [0.0, 3e-6, mle.GRADIENT_TOLERANCE])
def test_a_precision_loss_stop_at_a_vanishing_gradient_is_an_optimum(monkeypatch, gradient: float) -> None:
    _stop(monkeypatch, gradient, success=False, message=PRECISION_LOSS)
    result = mle.minimise(lambda theta: (1.0, np.zeros(2)), np.zeros(2), model="m")
    assert mle.stationary(result) and result.x.tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("gradient", "message"),
    [(2 * mle.GRADIENT_TOLERANCE, PRECISION_LOSS), (np.nan, PRECISION_LOSS), (0.5, "Maximum number of iterations has been exceeded.")],
)
def test_a_stop_away_from_a_stationary_point_is_a_failure_in_scipys_words(monkeypatch, gradient: float, message: str) -> None:
    _stop(monkeypatch, gradient, success=False, message=message)
    with pytest.raises(ConvergenceFailure, match=rf"^m fit did not converge \(message: {message}\); check the data"):
        mle.minimise(lambda theta: (1.0, np.zeros(2)), np.zeros(2), model="m")


def test_a_reported_success_far_from_stationary_is_left_to_fit_result(monkeypatch) -> None:
    # A loose tol: scipy says success; fit_result then says how far from the optimum it stopped.
    _stop(monkeypatch, 0.5, success=True, message="Optimization terminated successfully.")
    result = mle.minimise(lambda theta: (1.0, np.zeros(2)), np.zeros(2), model="m")
    assert not mle.stationary(result)
    with pytest.raises(ConvergenceFailure, match=r"^m fit stopped before the optimum \(largest gradient 0\.5 per customer"):
        mle.fit_result("m", {"a": 1.0, "b": 1.0}, -1.0, result.jac, np.eye(2), 10)


def test_a_fit_the_data_do_not_identify_is_flagged(recwarn: pytest.WarningsRecorder) -> None:
    # One customer: BG/NBD's likelihood rises towards infinity in its parameters; BFGS stops where
    # the gradient vanishes (a different place on each machine), with standard errors of the log in
    # the hundreds. The summary must say so rather than print those numbers as a fit.
    import pandas as pd

    from clvmodel.models.registry import family_class

    one = pd.DataFrame({"customer_id": ["007"], "frequency": [2.0], "recency": [21.3], "T": [30.0],
                        "monetary_value": [10.0]})
    family_class("bgnbd")().fit(one)
    messages = [str(w.message) for w in recwarn.list if issubclass(w.category, UserWarning)]
    assert any(m.startswith("bgnbd: these data do not identify") for m in messages), messages


def test_a_fit_the_data_identify_is_not_flagged(cdnow_summary, recwarn: pytest.WarningsRecorder) -> None:
    from clvmodel.models.registry import family_class

    family_class("bgnbd")().fit(cdnow_summary)
    assert not [w for w in recwarn.list if "do not identify" in str(w.message)]


# --- several starts, non-finite trial points, budgets (issue 13) --------------------------------


def _bowl_with_a_wall(wall: float = 1.3, bad: float = np.nan):
    """A smooth convex objective with its minimum at (1, 1), not finite where x0 > ``wall``.

    Like a likelihood whose special functions overflow far from the optimum: BFGS's first steps
    from far away land beyond the wall.
    """

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        if theta[0] > wall:
            return bad, np.full(2, bad)
        value = np.exp(2 * (theta[0] - 1)) - 2 * (theta[0] - 1) + 3 * (theta[1] - 1) ** 2
        return value, np.array([2 * np.exp(2 * (theta[0] - 1)) - 2, 6 * (theta[1] - 1)])

    return objective


@pytest.mark.parametrize("start", [(-3.0, 5.0), (-8.0, 1.0), (-20.0, -20.0), (0.5, 30.0)])
def test_a_non_finite_trial_point_makes_the_line_search_back_off(start) -> None:
    # Measured with scipy 1.17: a NaN value beyond the wall ends plain BFGS at the first step that
    # crosses it ("precision loss" thousands of units from the optimum); read as +inf it is a step
    # too far, and BFGS reaches (1, 1).
    result = mle.minimise(_bowl_with_a_wall(), np.array(start), model="m", tol=1e-9)
    np.testing.assert_allclose(result.x, [1.0, 1.0], atol=1e-6)
    assert result.nonfinite > 0  # the wall was hit, and survived


def test_guarded_reads_every_non_finite_answer_as_plus_infinity() -> None:
    def objective(theta):
        if theta[0] == 0:
            raise FloatingPointError("overflow in hyp2f1")
        return (np.nan, np.zeros(1)) if theta[0] == 1 else (-np.inf, np.zeros(1)) if theta[0] == 2 else (3.0, np.ones(1))

    guarded = mle.Guarded(objective)
    for point in (0.0, 1.0, 2.0):
        value, gradient = guarded(np.array([point]))
        assert value == np.inf and np.isnan(gradient).all()
    assert guarded(np.array([5.0])) == (3.0, pytest.approx(np.ones(1)))
    assert (guarded.calls, guarded.nonfinite, guarded.error) == (4, 3, "FloatingPointError: overflow in hyp2f1")


def test_a_start_where_the_likelihood_is_not_finite_is_followed_by_the_next() -> None:
    result = mle.minimise(_bowl_with_a_wall(), np.array([2.0, 0.0]), model="m", starts=[np.array([0.0, 0.0])])
    assert result.start_index == 1 and mle.stationary(result)
    assert [s.start_index for s in result.stops] == [0, 1]


def test_no_start_converging_is_one_line_naming_each_reason() -> None:
    with pytest.raises(ConvergenceFailure) as err:
        mle.minimise(_bowl_with_a_wall(), np.array([2.0, 0.0]), model="m", starts=[np.array([-30.0, 9.0])], maxiter=2)
    message = str(err.value)
    assert message.startswith(
        "m fit did not converge from any of 2 starts (start 1: the likelihood is not finite at the start; "
        "start 2: Maximum number of iterations has been exceeded.; the likelihood was not finite at "
    ), message
    assert "\n" not in message


def _two_minima(depth: float):
    """Minima at θ = -1 (value 0) and θ = +1 (value -depth): f = (θ² - 1)² - depth (θ + 1) / 2 ... smoothed."""

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        t = float(theta[0])
        value = (t * t - 1) ** 2 - depth * (np.tanh(4 * t) + 1) / 2
        gradient = 4 * t * (t * t - 1) - depth * 2 * (1 - np.tanh(4 * t) ** 2)
        return value, np.array([gradient])

    return objective


@pytest.mark.parametrize(("depth", "kept"), [(0.0, 0), (1e-9, 0), (0.05, 1)])
def test_a_later_start_is_kept_only_if_clearly_better(depth: float, kept: int) -> None:
    # Two stationary stops: the later one replaces the first only if its total log-likelihood is
    # higher by more than BETTER_START_GAIN (here 100 customers): ties in the last bits keep the
    # first start, so its digits (lifetimes' on CDNOW) do not depend on the machine.
    result = mle.minimise(_two_minima(depth), np.array([-1.2]), model="m", starts=[np.array([1.2])], weight=100.0)
    assert result.start_index == kept
    assert all(mle.stationary(s) for s in result.stops)


def test_the_iteration_budget_is_per_start(monkeypatch) -> None:
    seen = []
    real = mle.minimize

    def spy(*args, **kwargs):
        seen.append(kwargs["options"]["maxiter"])
        return real(*args, **kwargs)

    monkeypatch.setattr(mle, "minimize", spy)
    mle.minimise(_bowl_with_a_wall(), np.zeros(2), model="m", starts=[np.ones(2)])
    with pytest.raises(ConvergenceFailure, match=r"\(message: Maximum number of iterations has been exceeded\.\)"):
        mle.minimise(_bowl_with_a_wall(), np.array([-20.0, 9.0]), model="m", maxiter=3)
    assert seen == [mle.MAX_ITERATIONS_PER_START, mle.MAX_ITERATIONS_PER_START, 3]


def test_a_stop_cut_short_by_the_budget_is_not_an_optimum_whatever_its_gradient(monkeypatch) -> None:
    # BFGS was still moving: along a flat direction a gradient under the tolerance can sit units of
    # log-likelihood below the optimum (Pareto/NBD on CDNOW after 20 iterations, test_pareto_nbd).
    result = OptimizeResult(x=np.zeros(2), fun=1.0, jac=np.array([1e-6, 0.0]), success=False, status=1,
                            message="Maximum number of iterations has been exceeded.")
    monkeypatch.setattr(mle, "minimize", lambda *args, **kwargs: result)
    with pytest.raises(ConvergenceFailure, match=r"^m fit did not converge \(message: Maximum number of iterations"):
        mle.minimise(lambda theta: (1.0, np.zeros(2)), np.zeros(2), model="m")
    assert result.cut_short and not mle.stationary(result)


def test_a_time_budget_stops_the_search_and_says_so() -> None:
    import time

    def slow(theta: np.ndarray) -> tuple[float, np.ndarray]:
        time.sleep(0.02)
        return float(theta @ theta) + 1e-3 * float(np.sum(np.cos(50 * theta))), 2 * theta - 0.05 * np.sin(50 * theta)

    with pytest.raises(ConvergenceFailure, match=r"time budget of 0\.05 s used up.*; 1 of 2 starts not tried in the time budget\)"):
        mle.minimise(slow, np.full(2, 5.0), model="m", tol=1e-14, starts=[np.ones(2)], time_budget=0.05)


def test_an_unidentified_stop_names_the_ridge_it_is_on(recwarn: pytest.WarningsRecorder) -> None:
    # The flattest direction of the Hessian in log-parameters: a and b moving together, the ratio
    # kept (a Beta distribution collapsing to a point), r held.
    params = {"r": 0.7, "a": 2.0e5, "b": 1.2e6}
    flat = np.array([0.0, 1.0, 1.0]) / np.sqrt(2)
    hessian = 50.0 * np.eye(3) - (50.0 - 1e-9) * np.outer(flat, flat)
    mle.fit_result("m", params, -10.0, np.zeros(3), hessian, 100)
    messages = [str(w.message) for w in recwarn.list if issubclass(w.category, UserWarning)]
    assert messages == [
        "m: these data do not identify a, b (standard error of the log above 10, or none): the fit stopped on a "
        "ridge of the likelihood where a and b grow together (b/a = 6 at the stop); where on it depends on the "
        "machine, and its forecasts are not reliable; fit on more customers or a longer calibration period"
    ]
    opposite = np.array([1.0, -1.0, 0.0]) / np.sqrt(2)
    assert mle.ridge_words(params, 50.0 * np.eye(3) - 49.0 * np.outer(opposite, opposite)) == (
        " where r grows as a shrinks (r·a = 1.4e+05 at the stop)"
    )


def test_search_first_runs_the_other_starts_only_when_the_first_is_not_enough() -> None:
    """Issue 16: ``search_first`` stops after the first start when the caller's check accepts its
    stop, and otherwise runs every start as ``search`` does (same stops, start indices in order)."""
    from clvmodel.models import mle as m

    def bowl(theta):
        theta = np.asarray(theta, dtype=float)
        return float(np.sum((theta - 1.0) ** 2)), 2.0 * (theta - 1.0)

    starts = [np.zeros(2), np.full(2, 3.0), np.array([-2.0, 5.0])]
    seen = []
    accepted = m.search_first(bowl, starts, lambda stop: seen.append(stop) or True)
    assert len(accepted) == 1 and len(seen) == 1 and accepted[0].start_index == 0
    np.testing.assert_allclose(accepted[0].x, [1.0, 1.0], atol=1e-6)
    refused = m.search_first(bowl, starts, lambda stop: False)
    every = m.search(bowl, starts)
    assert [s.start_index for s in refused] == [0, 1, 2]
    for a, b in zip(refused, every):
        np.testing.assert_array_equal(a.x, b.x)


@pytest.mark.parametrize("family", ["pareto_nbd", "mbgnbd", "bgnbd"])
@pytest.mark.parametrize("end", [None, "2005-06-30", "2005-10-08", "2006-03-31", "2006-12-31"])
def test_one_start_fits_equal_all_starts_fits(cdnow_summary, apparel, family: str, end: str | None) -> None:
    """Issue 16: Pareto/NBD, MBG/NBD and BG/NBD run their later starts only when the first stop is not
    an identified optimum (``search_first``). On CDNOW and four apparel calibration ends (finite optima,
    Pareto/NBD's ridge at 40 and 65 weeks, MBG/NBD far out at 65 weeks, BG/NBD's ridge at 40 weeks)
    the fit equals the fit from every start: the same status, log-likelihood and estimates (the
    global optimum is not lost)."""
    import datetime as dt
    import warnings

    from clvmodel.models import bgnbd_likelihood, mbgnbd_likelihood, pareto_nbd_likelihood
    from clvmodel.models.base import collapse

    module = {"pareto_nbd": pareto_nbd_likelihood, "mbgnbd": mbgnbd_likelihood, "bgnbd": bgnbd_likelihood}[family]
    summary = cdnow_summary if end is None else apparel(dt.date.fromisoformat(end))
    unique, weights, _ = collapse(summary, ["frequency", "recency", "T"])
    columns = {c: unique[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = module.fit(columns, weights)
        original = mle.search_first
        try:
            mle.search_first = lambda objective, starts, enough, **options: mle.search(objective, starts, **options)
            every = module.fit(columns, weights)
        finally:
            mle.search_first = original
    assert first.status == every.status
    assert first.log_likelihood == pytest.approx(every.log_likelihood, abs=1e-6)
    for name, value in every.params.items():
        assert first.params[name] == pytest.approx(value, rel=1e-6), name
