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
"""

from __future__ import annotations

import warnings

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import OptimizeResult, minimize

from clvmodel.errors import ConvergenceFailure

__all__ = [
    "FitResult",
    "GRADIENT_TOLERANCE",
    "LIFETIMES_START",
    "LIFETIMES_TOL",
    "HESSIAN_STEP",
    "minimise",
    "central_hessian",
    "gradient_hessian_from_values",
    "fit_result",
    "not_converged",
    "CONVERGED",
    "RIDGE",
    "RIDGE_GAIN",
    "stationary",
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


def not_converged(model: str, said: str) -> ConvergenceFailure:
    """The one-line failure the CLI prints; ``said`` is the optimiser's own words."""
    return ConvergenceFailure(
        f"{model} fit did not converge ({said}); "
        "check the data (enough repeat customers, sensible time unit) or try another time unit"
    )


def stationary(result: OptimizeResult) -> bool:
    """Whether an optimiser's stop is a stationary point: finite, largest |∇| ≤ :data:`GRADIENT_TOLERANCE`.

    The machine-independent convergence criterion of every gradient fit here, whatever scipy's
    ``success`` and ``message`` say (see the module docstring).
    """
    jac = np.asarray(getattr(result, "jac", np.nan), dtype=float)
    finite = bool(np.isfinite(result.fun)) and bool(np.all(np.isfinite(result.x))) and bool(np.all(np.isfinite(jac)))
    return finite and float(np.max(np.abs(jac))) <= GRADIENT_TOLERANCE


def minimise(
    objective: Objective, start: Vector, *, model: str, tol: float = LIFETIMES_TOL, **options: Any
) -> OptimizeResult:
    """lifetimes' minimisation (``BaseFitter._fit``) of ``objective`` from ``start``.

    Parameters
    ----------
    objective
        θ -> (value, gradient) of the mean negative log-likelihood in log-parameters.
    start
        Starting log-parameters (lifetimes: :data:`LIFETIMES_START` for each).
    model
        Name for the error message.
    tol
        BFGS ``gtol`` (lifetimes' ``tol``).
    options
        scipy ``minimize`` options (``maxiter``, ...), as lifetimes' ``fit(**kwargs)`` passes them.

    Returns
    -------
    OptimizeResult
        scipy's result: a reported success, or any stop at a stationary point (:func:`stationary`)
        whatever its ``success`` says.

    Raises
    ------
    ConvergenceFailure
        The stop is not a stationary point (scipy's message says why it stopped: maximum number of
        iterations, NaN, ...), or the likelihood cannot be evaluated. Unlike lifetimes (which
        raises whenever scipy reports failure), a "precision loss" stop at a vanishing gradient is
        an optimum: that message depends on the machine's last bits, the gradient does not.
    """
    with np.errstate(all="ignore"):  # line searches probe far out (log 0, overflow); BFGS copes
        try:
            result = minimize(objective, np.asarray(start, dtype=float), jac=True, method="BFGS", tol=tol,
                              options={"disp": False, **options})
        except (ArithmeticError, ValueError, np.linalg.LinAlgError) as err:
            raise not_converged(model, f"{type(err).__name__}: {str(err).strip()}") from None
    # A reported success with a gradient that does not vanish (a loose ``tol``) is left to
    # :func:`fit_result`, which says how far from stationary the stop is.
    if not (result.success or stationary(result)):
        raise not_converged(model, f"message: {result.message}")
    return result


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
    _warn_unidentified(model, params, theta, errors)
    return FitResult(dict(params), standard_errors, float(log_likelihood), int(n), cov_list)


#: A standard error of log θ above this (a 95 % interval wider than a factor e^±20) means the data
#: do not identify θ: the optimiser stopped somewhere on a ridge running to infinity. Fits the data
#: identify sit orders of magnitude below (CDNOW's BG/NBD: 0.05-0.2), runaway ones far above
#: (one customer: ~100 or a singular Hessian), so the verdict does not hang on the last bits.
MAX_LOG_SE = 10.0


def _warn_unidentified(model: str, params: dict[str, float], theta: Vector, errors: Vector) -> None:
    """Warn (a line of the train summary) when a stationary point leaves a parameter unidentified."""
    log_se = errors / theta
    loose = [name for name, value in zip(params, log_se) if not value <= MAX_LOG_SE]
    if loose:
        warnings.warn(
            f"{model}: these data do not identify {', '.join(loose)} (standard error of the log above "
            f"{MAX_LOG_SE:g}, or none): the fit stopped on a ridge of the likelihood and its forecasts are not "
            "reliable; fit on more customers or a longer calibration period",
            UserWarning,
            stacklevel=3,
        )
