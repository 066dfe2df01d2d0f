"""Maximum likelihood as lifetimes does it, without lifetimes' autograd Hessian (issue 7).

lifetimes' ``BaseFitter._fit`` minimises the *mean* negative log-likelihood over weighted rows in
log-parameters with BFGS (scipy's choice for ``method=None`` without bounds) from ``0.1`` for
every log-parameter at ``tol=1e-7``, then always evaluates the exact Hessian with autograd. At a
million customers that Hessian costs about as much as the whole minimisation (BG/NBD: 2.4 s against
2.6 s for 19 gradient calls). Here the same minimisation is driven by any ``θ -> (value, gradient)``
function, and the Hessian is taken by central differences of the gradient (``2k`` gradient calls
for ``k`` parameters), which equals the exact one to about 1e-8 relative.

Used by :mod:`.bgnbd_likelihood` (numpy likelihood and gradient) and by
:mod:`.lifetimes_adapter` (lifetimes' own likelihood with autograd's gradient).
"""

from __future__ import annotations

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
]

Vector = NDArray[np.float64]
#: θ -> (mean negative log-likelihood, its gradient), θ the log-parameters.
Objective = Callable[[Vector], tuple[float, Vector]]

#: lifetimes' ``_fit``: every log-parameter starts at 0.1 ...
LIFETIMES_START = 0.1
#: ... and BFGS stops when the largest |gradient| of the mean objective is below this (``gtol``).
LIFETIMES_TOL = 1e-7

#: Largest |gradient| of the mean log-likelihood (per customer, log-parameters) accepted as converged.
GRADIENT_TOLERANCE = 1e-3

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


def not_converged(model: str, said: str) -> ConvergenceFailure:
    """The one-line failure the CLI prints; ``said`` is the optimiser's own words."""
    return ConvergenceFailure(
        f"{model} fit did not converge ({said}); "
        "check the data (enough repeat customers, sensible time unit) or try another time unit"
    )


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

    Raises
    ------
    ConvergenceFailure
        BFGS reports failure (lifetimes raises its ``ConvergenceError`` in the same cases), or the
        likelihood cannot be evaluated.
    """
    with np.errstate(all="ignore"):  # line searches probe far out (log 0, overflow); BFGS copes
        try:
            result = minimize(objective, np.asarray(start, dtype=float), jac=True, method="BFGS", tol=tol,
                              options={"disp": False, **options})
        except (ArithmeticError, ValueError, np.linalg.LinAlgError) as err:
            raise not_converged(model, f"{type(err).__name__}: {str(err).strip()}") from None
    if not result.success:
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
    return FitResult(dict(params), standard_errors, float(log_likelihood), int(n), cov_list)
