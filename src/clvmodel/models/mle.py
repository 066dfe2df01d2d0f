"""Maximum likelihood as lifetimes does it, without lifetimes' autograd Hessian (issue 7).

lifetimes' ``BaseFitter._fit`` minimises the *mean* negative log-likelihood over weighted rows in
log-parameters with BFGS (scipy's choice for ``method=None`` without bounds) from ``0.1`` for
every log-parameter at ``tol=1e-7``, then always evaluates the exact Hessian with autograd. At a
million customers that Hessian costs about as much as the whole minimisation (BG/NBD: 2.4 s against
2.6 s for 19 gradient calls). Here the same minimisation is driven by any ``θ -> (value, gradient)``
function, and the Hessian is taken by central differences of the gradient (``2k`` gradient calls
for ``k`` parameters), which equals the exact one to about 1e-8 relative.

Used by :mod:`.bgnbd_likelihood` (numpy likelihood and gradient), :mod:`.gamma_gamma_likelihood`
and :mod:`.lifetimes_adapter` (lifetimes' own likelihood with autograd's gradient).

Convergence is decided here by one criterion that does not depend on the last bits of a machine's
arithmetic: the largest |gradient| of the mean negative log-likelihood, with a tolerance
(:data:`GRADIENT_TOLERANCE`) many orders of magnitude above rounding noise. scipy's own verdict is
not that criterion. Its BFGS reports ``success=False`` with "Desired error not necessarily achieved
due to precision loss" when a line search cannot find a decrease that rounding does not hide: a
statement about the last bits, which differ between machines (libm, SIMD paths, BLAS), not
evidence that the point is not an optimum. On a flat likelihood (a ridge, where an MLE sits at
infinity) the same data then stopped with "success" on one machine and with "precision loss" on
another (issue 12). scipy's words are kept only to explain a real failure.

Some likelihoods have no finite maximum: the supremum is a limit along a ridge (a mixing
distribution degenerating to a point mass: shape and rate to infinity together). Where BFGS stops
along such a ridge depends on the last bits, so a model that knows its limit compares the stop's
likelihood with the limit's supremum (:data:`RIDGE_GAIN`): Gamma-Gamma then reports the limit
(status :data:`RIDGE`, :func:`.gamma_gamma_likelihood.fit`), sBG refuses the data
(:meth:`.sbg.ShiftedBetaGeometric.fit_survivors`).

Several starts (issue 13). One start is one chance: from lifetimes' 0.1 start BFGS ran along the
BG/NBD ridge of the apparel data's 40-week split and, on some machines, stopped short of
stationarity ("did not converge"); from lifetimes' random start Pareto/NBD ended where lifetimes'
likelihood is not finite. :func:`search` therefore runs BFGS from a fixed, documented list of
starts (the model's own, lifetimes' first), each with an iteration budget
(:data:`MAX_ITERATIONS_PER_START`) and optionally within one wall-clock budget per fit, and
:func:`best_stop` keeps the best stationary stop: a later start replaces an earlier one only if
its total log-likelihood is higher by more than :data:`BETTER_START_GAIN`, so that stops equal up
to rounding keep the earlier start's digits (lifetimes' on CDNOW) and the choice does not depend on
the machine. Every objective is evaluated through :class:`Guarded`: a trial point where the
likelihood is not finite (an overflow, ``log 0``, NaN from a special function) counts as
``+inf``, which BFGS's line search treats as "too far" and backs off from, where a NaN would end
the search on the spot ("precision loss" at the first iteration).
"""

from __future__ import annotations

import time
import warnings

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import OptimizeResult, minimize

from clvmodel.errors import ClvError, ConvergenceFailure

__all__ = [
    "FitResult",
    "Guarded",
    "BETTER_START_GAIN",
    "GRADIENT_TOLERANCE",
    "MAX_ITERATIONS_PER_START",
    "LIFETIMES_START",
    "LIFETIMES_TOL",
    "HESSIAN_STEP",
    "minimise",
    "search",
    "search_first",
    "best_stop",
    "failure_words",
    "refine",
    "log_standard_errors",
    "MAX_LOG_SE",
    "central_hessian",
    "gradient_hessian_from_values",
    "fit_result",
    "not_converged",
    "CONVERGED",
    "RIDGE",
    "RIDGE_GAIN",
    "stationary",
    "ridge_words",
    "rfm_problems",
    "refuse_rows",
    "limit_stop",
]

Vector = NDArray[np.float64]
#: θ -> (mean negative log-likelihood, its gradient), θ the log-parameters.
Objective = Callable[[Vector], tuple[float, Vector]]

#: lifetimes' ``_fit``: every log-parameter starts at 0.1 ...
LIFETIMES_START = 0.1
#: ... and BFGS stops when the largest |gradient| of the mean objective is below this (``gtol``).
LIFETIMES_TOL = 1e-7

#: Largest |gradient| of the mean log-likelihood (per customer, log-parameters) accepted as converged.
#: Rounding noise of the analytic gradients is ~1e-13; BFGS's "precision loss" stops on the
#: Gamma-Gamma ridge were measured at 1e-7 .. 5e-6 under last-bit perturbations: far on both sides.
GRADIENT_TOLERANCE = 1e-3

#: Fit status: a stationary point of the likelihood (the MLE).
CONVERGED = "converged"
#: Fit status: no finite MLE; the likelihood rises towards a limit along a ridge, and the reported
#: parameters are a fixed point far out on it that carries the limit's identified quantities.
RIDGE = "ridge"
#: Total log-likelihood by which a finite optimum must beat a model's ridge limit to be reported
#: as the MLE. A likelihood-ratio statistic of 2e-3 is nothing any test could see, and it is ~1e9
#: times the rounding of a total log-likelihood of a few thousand: the decision between the two
#: does not depend on where BFGS stopped, nor on the machine.
RIDGE_GAIN = 1e-3

#: BFGS iterations allowed from one start unless the caller sets ``maxiter``. Fits that converge
#: take 20-110 (measured on CDNOW and the apparel splits: BG/NBD 27-47, MBG/NBD 23-41, Gamma-Gamma
#: 21-55 with its ridge data, Pareto/NBD 31-43, GGom/NBD 29-107); a start still moving after 200 is
#: running off along a ridge or into overflow. scipy's default (200 per parameter: 800 for BG/NBD,
#: ~25 s of gradient calls at a million customers) would spend all that before the next start had
#: a turn.
MAX_ITERATIONS_PER_START = 200

#: Total log-likelihood by which a later start's stationary stop must beat an earlier one to be
#: kept. Stops at one optimum differ by ~1e-9 (BFGS's tolerance, rounding); a different optimum
#: worth the name differs by far more. So the earlier start (lifetimes', first) wins every tie,
#: whatever the last bits of the machine, and a real improvement is never missed.
BETTER_START_GAIN = 1e-3

#: Step in the log-parameters for the central-difference Hessian. Truncation error ~ step² and
#: rounding error ~ 1e-16 / step balance near 1e-5: the Hessian then equals autograd's exact one to
#: ~1e-8 relative on CDNOW and at a million customers (tests/models/test_bgnbd.py).
HESSIAN_STEP = 1e-5


@dataclass(frozen=True)
class FitResult:
    """What a fit leaves behind: parameters, standard errors, covariance, the log-likelihood."""

    params: dict[str, float]
    standard_errors: dict[str, float]
    log_likelihood: float
    n: int
    #: Asymptotic covariance of the *log*-parameters (inverse Hessian of the total negative
    #: log-likelihood), rows in ``params`` order; ``None`` when the Hessian is singular.
    covariance: list[list[float]] | None = None
    #: :data:`CONVERGED`, or :data:`RIDGE` when the MLE is a limit at infinity.
    status: str = CONVERGED
    #: On a ridge: the quantities the data still identify in the limit (by name), else ``None``.
    limit: dict[str, float] | None = None


def not_converged(model: str, said: str, *, starts: int = 1) -> ConvergenceFailure:
    """The one-line failure the CLI prints; ``said`` is the optimiser's own words."""
    tried = f" from any of {starts} starts" if starts > 1 else ""
    return ConvergenceFailure(
        f"{model} fit did not converge{tried} ({said}); "
        "check the data (enough repeat customers, sensible time unit) or try another time unit"
    )


def stationary(result: OptimizeResult) -> bool:
    """Whether an optimiser's stop is a stationary point: finite, largest |∇| ≤ :data:`GRADIENT_TOLERANCE`.

    The machine-independent convergence criterion of every gradient fit here, whatever scipy's
    ``success`` and ``message`` say (see the module docstring), except that a stop cut short by the
    iteration or time budget (``cut_short``, set by :func:`search`) is not one: there BFGS was
    still moving, and along a flat direction a gradient under the tolerance can sit several units
    of log-likelihood below the optimum (Pareto/NBD on CDNOW after 20 iterations: |∇| 6e-4 per
    customer, 3.7 below).
    """
    if getattr(result, "cut_short", False):
        return False
    jac = np.asarray(getattr(result, "jac", np.nan), dtype=float)
    finite = bool(np.isfinite(result.fun)) and bool(np.all(np.isfinite(result.x))) and bool(np.all(np.isfinite(jac)))
    return finite and float(np.max(np.abs(jac))) <= GRADIENT_TOLERANCE


class Guarded:
    """An objective whose non-finite values read as ``+inf``: "too far" for a line search.

    BFGS's line search backs off from a trial point whose value is ``+inf``, but a NaN value (or a
    NaN in the gradient) ends the whole search there, reported as "precision loss". Likelihoods
    here become non-finite only at trial points far from any optimum (``exp`` of a large
    log-parameter, ``log 0``, a special function's overflow), so ``+inf`` is the honest answer:
    the likelihood there is no better than anywhere. An exception of the arithmetic kinds
    (``ArithmeticError``, ``ValueError``, ``LinAlgError``) at a trial point counts the same; the
    first one's words are kept for the failure message. ``-inf`` (an infinite *likelihood*) is a
    degenerate point, not an optimum, and also reads as ``+inf``.

    Parameters
    ----------
    objective
        θ -> (value, gradient).
    """

    def __init__(self, objective: Objective) -> None:
        self.objective = objective
        #: Trial points evaluated, and how many of them were not finite.
        self.calls = 0
        self.nonfinite = 0
        #: The first exception's words (type and message), if any.
        self.error: str | None = None

    def __call__(self, theta: Vector) -> tuple[float, Vector]:
        """The objective at ``theta``, or ``(inf, NaN gradient)`` where it is not finite."""
        self.calls += 1
        theta = np.asarray(theta, dtype=float)
        try:
            value, gradient = self.objective(theta)
            value, gradient = float(value), np.asarray(gradient, dtype=float)
        except (ArithmeticError, ValueError, np.linalg.LinAlgError) as err:
            self.error = self.error or f"{type(err).__name__}: {str(err).strip()}"
            value, gradient = np.inf, np.full(theta.shape, np.nan)
        if np.isfinite(value) and gradient.shape == theta.shape and np.all(np.isfinite(gradient)):
            return value, gradient
        self.nonfinite += 1
        return np.inf, np.full(theta.shape, np.nan)


def search(
    objective: Objective,
    starts: Sequence[Vector],
    *,
    tol: float = LIFETIMES_TOL,
    time_budget: float | None = None,
    **options: Any,
) -> list[OptimizeResult]:
    """BFGS from each start in turn, every trial point through :class:`Guarded`; never raises.

    Parameters
    ----------
    objective
        θ -> (value, gradient) of the mean negative log-likelihood in log-parameters.
    starts
        Starting log-parameters, in the order they are tried.
    tol
        BFGS ``gtol``.
    time_budget
        Seconds for all starts together, or ``None`` (no limit, the default). When it runs out
        the current start stops at its last iterate (message "time budget ... used up") and the
        remaining starts are skipped. Results then depend on the machine's speed, so a budget is
        an operator's choice, not a default.
    options
        scipy ``minimize`` options; ``maxiter`` is per start (default
        :data:`MAX_ITERATIONS_PER_START`).

    Returns
    -------
    list of OptimizeResult
        One per start tried, in order, each with ``start_index``, ``evaluations`` (trial points),
        ``nonfinite`` (of them not finite), ``error`` (the first exception's words or ``None``) and
        ``cut_short`` (the iteration or time budget ran out: not a stationary point, see
        :func:`stationary`).
    """
    options = {"disp": False, "maxiter": MAX_ITERATIONS_PER_START, **options}
    deadline = None if time_budget is None else time.monotonic() + float(time_budget)
    stops: list[OptimizeResult] = []

    def out_of_time(intermediate_result: OptimizeResult) -> None:  # scipy passes the iterate by this name
        if deadline is not None and time.monotonic() >= deadline:
            raise StopIteration  # scipy ends the minimisation and returns the last iterate

    for index, start in enumerate(starts):
        if deadline is not None and stops and time.monotonic() >= deadline:
            break
        guarded = Guarded(objective)
        start = np.asarray(start, dtype=float)
        with np.errstate(all="ignore"):  # line searches probe far out (log 0, overflow); the guard copes
            try:
                result = minimize(guarded, start, jac=True, method="BFGS", tol=tol, options=options,
                                  callback=out_of_time if deadline is not None else None)
            except (ArithmeticError, ValueError, np.linalg.LinAlgError) as err:  # inside scipy itself
                result = OptimizeResult(x=start, fun=np.inf, jac=np.full(start.shape, np.nan), success=False,
                                        message=f"{type(err).__name__}: {str(err).strip()}", nit=0)
        out_of_budget = deadline is not None and "StopIteration" in str(result.message)
        if out_of_budget:
            result.message = f"time budget of {time_budget:g} s used up"
        # BFGS's status 1: the iteration budget ran out.
        result.cut_short = out_of_budget or getattr(result, "status", None) == 1
        result.start_index = index
        result.evaluations = guarded.calls
        result.nonfinite = guarded.nonfinite
        result.error = guarded.error
        stops.append(result)
    return stops


def search_first(
    objective: Objective,
    starts: Sequence[Vector],
    enough: Callable[[OptimizeResult], bool],
    *,
    tol: float = LIFETIMES_TOL,
    time_budget: float | None = None,
    **options: Any,
) -> list[OptimizeResult]:
    """:func:`search` from the first start, and from the others only when ``enough(first stop)`` is false.

    For a model whose first start lands on the global optimum of any data with a finite one (the
    caller's ``enough`` says when it is sure: a stationary, identified stop away from the model's
    ridge), the later starts only cost time (issue 16: at a million customers each start is a
    second or more). Where ``enough`` is false, every start runs as in :func:`search` and the caller
    keeps the best (:func:`best_stop`), so the result is the same as with all starts. ``time_budget``
    is for all starts together.
    """
    deadline = None if time_budget is None else time.monotonic() + float(time_budget)
    stops = search(objective, list(starts)[:1], tol=tol, time_budget=time_budget, **options)
    if len(starts) < 2 or enough(stops[0]):
        return stops
    left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
    if left is not None and left <= 0.0:
        return stops
    later = search(objective, list(starts)[1:], tol=tol, time_budget=left, **options)
    for stop in later:
        stop.start_index += 1
    return stops + later


def best_stop(stops: Sequence[OptimizeResult], weight: float = 1.0) -> OptimizeResult | None:
    """The stop to keep: the first stationary one, replaced by a later one only if it is better.

    A later stationary stop replaces the kept one when its total log-likelihood (``weight`` times
    the mean objective) is higher by more than :data:`BETTER_START_GAIN`; ``None`` when no stop is
    stationary (:func:`stationary`).
    """
    best = None
    for stop in stops:
        if stationary(stop) and (best is None or (best.fun - stop.fun) * weight > BETTER_START_GAIN):
            best = stop
    return best


def failure_words(stops: Sequence[OptimizeResult], *, of: int | None = None) -> str:
    """Why no start ended at a stationary point, in one line: scipy's words, the likelihood's errors.

    ``of`` is the number of starts planned (more than tried when a time budget ran out).
    """
    messages = [
        str(s.message) if np.isfinite(s.fun) else (s.error or "the likelihood is not finite at the start")
        for s in stops
    ]
    if len(set(messages)) == 1:
        said = f"message: {messages[0]}"
    else:
        said = "; ".join(f"start {s.start_index + 1}: {m}" for s, m in zip(stops, messages))
    nonfinite = sum(int(getattr(s, "nonfinite", 0)) for s in stops)
    if nonfinite:
        evaluations = sum(int(getattr(s, "evaluations", 0)) for s in stops)
        said += f"; the likelihood was not finite at {nonfinite} of {evaluations} trial points"
    if of is not None and of > len(stops):
        said += f"; {of - len(stops)} of {of} starts not tried in the time budget"
    return said


def minimise(
    objective: Objective,
    start: Vector,
    *,
    model: str,
    tol: float = LIFETIMES_TOL,
    starts: Sequence[Vector] = (),
    weight: float = 1.0,
    time_budget: float | None = None,
    **options: Any,
) -> OptimizeResult:
    """lifetimes' minimisation (``BaseFitter._fit``) of ``objective`` from ``start``, then from ``starts``.

    Parameters
    ----------
    objective
        θ -> (value, gradient) of the mean negative log-likelihood in log-parameters.
    start
        The first starting point (lifetimes: :data:`LIFETIMES_START` for each log-parameter).
    model
        Name for the error message.
    tol
        BFGS ``gtol`` (lifetimes' ``tol``).
    starts
        Further starting points, tried in order after ``start`` (:func:`search`).
    weight
        Customers the mean objective averages over: stops are compared on the total
        log-likelihood (:func:`best_stop`).
    time_budget
        Seconds for all starts together (:func:`search`); ``None``: no limit.
    options
        scipy ``minimize`` options (``maxiter`` per start, ...), as lifetimes' ``fit(**kwargs)``
        passes them.

    Returns
    -------
    OptimizeResult
        The kept stationary stop (:func:`best_stop`), whatever scipy's ``success`` says; failing
        any, the first stop scipy reports as a success (a loose ``tol``: :func:`fit_result` then
        says how far from stationary it is). ``stops`` holds every start's result.

    Raises
    ------
    ConvergenceFailure
        No start ended at a stationary point or a reported success; the message gives scipy's
        words for each start (maximum number of iterations, precision loss away from a vanishing
        gradient, ...) and how often the likelihood was not finite. Unlike lifetimes (which raises
        whenever scipy reports failure), a "precision loss" stop at a vanishing gradient is an
        optimum: that message depends on the machine's last bits, the gradient does not.
    """
    planned = [start, *starts]
    stops = search(objective, planned, tol=tol, time_budget=time_budget, **options)
    best = best_stop(stops, weight)
    if best is None:
        best = next((s for s in stops if s.success and np.isfinite(s.fun)), None)
    if best is None:
        raise not_converged(model, failure_words(stops, of=len(planned)), starts=len(planned))
    best.stops = stops
    return best


def refine(objective: Objective, at: Vector, *, steps: int = 8) -> Vector:
    """Newton steps from a BFGS stop on a smooth, locally convex objective: the optimum to rounding.

    BFGS stops once its gradient is below ``tol``, so its last digits depend on the path (and
    hence on the machine). Newton steps with the central-difference Hessian
    (:func:`central_hessian`) converge quadratically from there; each is kept only if it lowers the
    objective or the largest |gradient| (near the optimum a step of 1e-8 changes the value by
    ~1e-16, below its rounding, while the gradient still falls tenfold), and they stop once the step
    is below ~1e-12 in every log-parameter. Used where a reported number must not depend on the
    machine (a ridge's limit, see :func:`.bgnbd_likelihood.limit_fit`).
    """
    x = np.asarray(at, dtype=float).copy()
    value, gradient = objective(x)
    for _ in range(steps):
        with np.errstate(all="ignore"):
            hessian = central_hessian(lambda theta: objective(theta)[1], x)
            try:
                step = np.linalg.solve(hessian, gradient)
            except np.linalg.LinAlgError:
                break
        if not np.all(np.isfinite(step)):
            break
        trial = x - step
        trial_value, trial_gradient = objective(trial)
        if not (trial_value < value or np.max(np.abs(trial_gradient)) < np.max(np.abs(gradient))):
            break  # rounding: the optimum is reached
        x, value, gradient = trial, trial_value, trial_gradient
        if float(np.max(np.abs(step))) < 1e-12:
            break
    return x


def log_standard_errors(total_hessian: Vector) -> Vector:
    """Standard errors of the log-parameters, ``sqrt(diag(H⁻¹))``; NaN where H is singular or not
    positive there (a direction the data do not bound)."""
    try:
        diagonal = np.diag(np.linalg.inv(total_hessian))
    except np.linalg.LinAlgError:
        return np.full(len(total_hessian), np.nan)
    return np.where(diagonal > 0, np.sqrt(np.abs(diagonal)), np.nan)


def central_hessian(gradient: Callable[[Vector], Vector], at: Vector, step: float = HESSIAN_STEP) -> Vector:
    """Hessian by central differences of an analytic gradient: ``2k`` gradient calls.

    Row ``i`` is ``(∇f(θ + h e_i) − ∇f(θ − h e_i)) / 2h``, error O(h²); the result is symmetrised.
    """
    at = np.asarray(at, dtype=float)
    rows = []
    for shift in np.eye(len(at)) * step:
        rows.append((np.asarray(gradient(at + shift)) - np.asarray(gradient(at - shift))) / (2 * step))
    hessian = np.array(rows)
    return (hessian + hessian.T) / 2


def gradient_hessian_from_values(f: Callable[[Vector], float], x: Vector, step: float = 1e-4) -> tuple[Vector, Vector]:
    """Central differences of function values: gradient and Hessian of ``f`` at ``x``.

    For likelihoods without a gradient (lifetimes' Pareto/NBD, minimised with Nelder-Mead):
    ``1 + 2k + 2k(k − 1)`` evaluations, 33 for Pareto/NBD's four parameters.
    """
    k = len(x)
    eye = np.eye(k) * step
    f0 = f(x)
    plus = np.array([f(x + eye[i]) for i in range(k)])  # each used by the gradient and the diagonal
    minus = np.array([f(x - eye[i]) for i in range(k)])
    grad = (plus - minus) / (2 * step)
    hess = np.diag((plus - 2 * f0 + minus) / step**2)
    for i in range(k):
        for j in range(i + 1, k):
            hess[i, j] = hess[j, i] = (
                f(x + eye[i] + eye[j]) - f(x + eye[i] - eye[j]) - f(x - eye[i] + eye[j]) + f(x - eye[i] - eye[j])
            ) / (4 * step**2)
    return grad, hess


def fit_result(
    model: str,
    params: dict[str, float],
    log_likelihood: float,
    mean_gradient: Vector,
    total_hessian: Vector,
    n: float,
) -> FitResult:
    """Check an optimum and derive the standard errors.

    Parameters
    ----------
    model
        Name for the error messages.
    params
        Estimates in the data's time unit.
    log_likelihood
        Total log-likelihood in the data's time unit (what the papers publish).
    mean_gradient
        Gradient of the *mean* negative log-likelihood in log-parameters at the optimum.
    total_hessian
        Hessian of the *total* negative log-likelihood in log-parameters (invariant to a
        rescaling of time, which only shifts log alpha).
    n
        Customers (sum of the weights).

    Returns
    -------
    FitResult
        Covariance of the log-parameters ``H⁻¹``; standard errors by the delta method,
        ``se(θ) = θ · se(log θ)``.

    Raises
    ------
    ConvergenceFailure
        Non-finite or non-positive parameters, a non-finite likelihood, or a gradient that does
        not vanish (|∇| per customer above :data:`GRADIENT_TOLERANCE`).
    """
    theta = np.array(list(params.values()), dtype=float)
    if not np.all(np.isfinite(theta)) or np.any(theta <= 0):
        raise ConvergenceFailure(f"{model} fit returned invalid parameters {params}; check the data for extreme values")
    if not np.isfinite(log_likelihood):
        raise ConvergenceFailure(f"{model} fit ended at a non-finite likelihood; check the data for extreme values")
    largest = float(np.max(np.abs(mean_gradient)))
    if not largest <= GRADIENT_TOLERANCE:
        raise ConvergenceFailure(
            f"{model} fit stopped before the optimum (largest gradient {largest:.2g} per customer at {params}); "
            "try another time unit or more data"
        )
    try:
        covariance = np.linalg.inv(total_hessian)
        diagonal = np.diag(covariance)
        errors = np.where(diagonal > 0, theta * np.sqrt(np.abs(diagonal)), np.nan)
        cov_list: list[list[float]] | None = covariance.tolist()
    except np.linalg.LinAlgError:
        errors, cov_list = np.full(len(theta), np.nan), None
    standard_errors = {name: float(e) for name, e in zip(params, errors)}
    _warn_unidentified(model, params, theta, errors, total_hessian)
    return FitResult(dict(params), standard_errors, float(log_likelihood), int(n), cov_list)


#: A standard error of log θ above this (a 95 % interval wider than a factor e^±20) means the data
#: do not identify θ: the optimiser stopped somewhere on a ridge running to infinity. Fits the data
#: identify sit orders of magnitude below (CDNOW's BG/NBD: 0.05-0.2), runaway ones far above
#: (one customer: ~100 or a singular Hessian), so the verdict does not hang on the last bits.
MAX_LOG_SE = 10.0


def _warn_unidentified(
    model: str, params: dict[str, float], theta: Vector, errors: Vector, total_hessian: Vector | None = None
) -> None:
    """Warn (a line of the train summary) when a stationary point leaves a parameter unidentified,
    naming the ridge the stop lies on (:func:`ridge_words`)."""
    log_se = errors / theta
    loose = [name for name, value in zip(params, log_se) if not value <= MAX_LOG_SE]
    if loose:
        along = ridge_words(params, total_hessian) if total_hessian is not None else ""
        warnings.warn(
            f"{model}: these data do not identify {', '.join(loose)} (standard error of the log above "
            f"{MAX_LOG_SE:g}, or none): the fit stopped on a ridge of the likelihood{along}; where on it depends "
            "on the machine, and its forecasts are not reliable; fit on more customers or a longer calibration period",
            UserWarning,
            stacklevel=3,
        )


def ridge_words(params: dict[str, float], total_hessian: Vector) -> str:
    """Which parameters move along the flattest direction of the likelihood, in words.

    The eigenvector of the smallest eigenvalue of the Hessian in log-parameters; parameters with a
    component of at least 0.3 in it are named. Two moving the same way keep their ratio (a Beta or
    Gamma mixing distribution collapsing to a point: ``"a and b grow together (b/a = 6.2 at the
    stop)"``), two moving oppositely their product. "" when the Hessian is not finite.
    """
    hessian = np.asarray(total_hessian, dtype=float)
    if hessian.shape != (len(params), len(params)) or not np.all(np.isfinite(hessian)):
        return ""
    _, vectors = np.linalg.eigh((hessian + hessian.T) / 2)
    direction = vectors[:, 0]
    names, values = list(params), list(params.values())
    moving = [i for i in range(len(names)) if abs(direction[i]) >= 0.3]
    if len(moving) == 2:
        i, j = moving
        if direction[i] * direction[j] > 0:
            return f" where {names[i]} and {names[j]} grow together ({names[j]}/{names[i]} = {values[j] / values[i]:.3g} at the stop)"
        return f" where {names[i]} grows as {names[j]} shrinks ({names[i]}·{names[j]} = {values[i] * values[j]:.3g} at the stop)"
    return f" along {', '.join(names[i] for i in moving)}" if moving else ""


def rfm_problems(x: Vector, tx: Vector, T: Vector) -> list[tuple[NDArray[np.bool_], str]]:
    """What no ``(x, t_x, T)`` row of a transaction log can be (lifetimes' ``_check_inputs``), for
    :func:`refuse_rows`: each a mask over the rows and the words for it."""
    return [
        (~np.isfinite(x) | ~np.isfinite(tx) | ~np.isfinite(T), "a missing or infinite value"),
        (tx > T, "recency > T"),
        ((x == 0) & (tx != 0), "a non-zero recency with frequency 0"),
        (tx < 0, "a negative recency"),
        ((x < 0) | (x != np.round(x)), "a negative or non-integer frequency"),
    ]


def refuse_rows(model: str, problems: list[tuple[NDArray[np.bool_], str]], weights: Vector) -> None:
    """Refuse the first of ``problems`` any row has, in one line counting the customers (weights).

    Raises
    ------
    ClvError
        ``"<model>: <k> of <n> customers have <what>; check the RFM summary"``.
    """
    for bad, what in problems:
        if np.any(bad):
            raise ClvError(
                f"{model}: {weights[bad].sum():,.0f} of {weights.sum():,.0f} customers have {what}; check the RFM summary"
            )


def limit_stop(limit: Objective, starts: Sequence[Vector], *, tol: float, weight: float) -> Vector | None:
    """Where a ridge's limit model (a likelihood with one parameter fewer) has its optimum, or ``None``.

    The limit is searched from ``starts`` (:func:`search`), the best stop kept (:func:`best_stop`)
    and polished by Newton steps (:func:`refine`), so the reported point does not depend on the
    machine; ``None`` when no start stops or the polished point is not stationary
    (:data:`GRADIENT_TOLERANCE`). Each family then takes the Hessian its likelihood allows.
    """
    best = best_stop(search(limit, list(starts), tol=tol), weight)
    if best is None:
        return None
    at = refine(limit, best.x)
    value, gradient = limit(at)
    if not (np.isfinite(value) and float(np.max(np.abs(gradient))) <= GRADIENT_TOLERANCE):
        return None
    return at


def null_space(matrix: np.ndarray, size: int) -> np.ndarray:
    """An orthonormal basis (columns) of the null space of ``matrix`` (rows × size); rows may be 0."""
    if matrix.shape[0] == 0:
        return np.eye(size)
    _, singular, vh = np.linalg.svd(matrix)
    rank = int(np.sum(singular > 1e-10 * max(1.0, float(singular[0]))))
    return vh[rank:].T


def optimise_held(objective: Any, far: np.ndarray, held: np.ndarray, *, tol: float, total_weight: float
                  ) -> np.ndarray | None:
    """Re-optimise ``objective`` over the directions orthogonal to ``held``'s columns, from ``far``.

    A covariate fit on a ridge holds the directions along which some profiles run off (pushed
    to a fixed far point) and maximises the likelihood over every other direction, so that the
    reported point does not depend on where an optimiser happened to stop. Returns the point, or
    ``None`` when the reduced problem has no stationary stop (:data:`GRADIENT_TOLERANCE`).
    """
    free = null_space(held.T, len(far))

    def reduced(u: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = objective(far + free @ u)
        return value, free.T @ gradient

    best = best_stop(search(reduced, [np.zeros(free.shape[1])], tol=tol), total_weight)
    if best is None:
        return None
    u = refine(reduced, best.x)
    value, gradient = reduced(u)
    if not (np.isfinite(value) and float(np.max(np.abs(gradient))) <= GRADIENT_TOLERANCE):
        return None
    return far + free @ u
