"""The one place clvmodel touches :mod:`lifetimes`.

lifetimes (0.11.3, unmaintained since 2020) supplies the BTYD fitters. This adapter keeps its
quirks out of the rest of the package:

* ``import lifetimes`` and every fit change the global warning filters
  (``warnings.simplefilter("ignore", FutureWarning)``); both are wrapped in
  :func:`warnings.catch_warnings` so the caller's filters are restored.
* ``lifetimes.datasets`` cannot be imported (it needs ``pkg_resources``); the bundled files are
  located with :mod:`importlib.resources` instead.
* A failed fit ``print``s the optimiser's result and raises a bare ``ConvergenceError``; we
  capture both and raise :class:`~clvmodel.errors.ConvergenceFailure` with the optimiser's words.
* Its fitted ``_negative_log_likelihood_`` is the *mean* over weighted rows and, for the purchase
  models, in internally rescaled time. The log-likelihood we report is recomputed in the data's own
  time unit, ``-nll(params) * sum(weights)``, which is what the papers publish (BG/NBD on CDNOW:
  −9582.4 in weeks).
* Rebuilding a fitter from saved parameters: set ``params_`` and call the named methods (its
  ``predict`` alias exists only after ``fit``).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import hyp2f1

from clvmodel.errors import ClvError, ConvergenceFailure

__all__ = [
    "FitResult",
    "fit",
    "fitter_from_params",
    "conditional_expected_purchases",
    "probability_alive",
    "dataset_path",
    "DATASETS",
    "LIFETIMES_CLASSES",
]

#: clvmodel model name -> lifetimes class name.
LIFETIMES_CLASSES = {
    "bgnbd": "BetaGeoFitter",
    "mbgnbd": "ModifiedBetaGeoFitter",
    "pareto_nbd": "ParetoNBDFitter",
    "gamma_gamma": "GammaGammaFitter",
}

#: Models whose static ``_negative_log_likelihood`` takes log-parameters (Pareto/NBD takes them plain).
_LOG_PARAMETRISED = {"bgnbd": True, "mbgnbd": True, "gamma_gamma": True, "pareto_nbd": False}

# Pareto/NBD: lifetimes draws its start at random (results differ run to run) and minimises with
# Nelder-Mead at tol 1e-4; a fixed start and a tight tolerance make the fit reproducible and
# accurate to the published digits (CDNOW: r 0.553, alpha 10.578, s 0.606, beta 11.669).
_FIT_OPTIONS: dict[str, dict[str, Any]] = {
    "pareto_nbd": {"initial_params": np.ones(4), "tol": 1e-8, "maxiter": 20000},
}

#: Largest |gradient| of the mean log-likelihood (per customer, log-parameters) accepted as converged.
_GRADIENT_TOLERANCE = 1e-3

#: Files shipped inside the lifetimes wheel that configs may name as ``bundled:<stem>``.
DATASETS = ("CDNOW_sample", "CDNOW_master", "cdnow_customers_summary")


def _lifetimes() -> Any:
    with warnings.catch_warnings():
        import lifetimes  # noqa: PLC0415  (kept local: import-time side effects, slow import)
    return lifetimes


def dataset_path(name: str) -> Path:
    """Path of a data file bundled with lifetimes (``CDNOW_sample`` -> ``.../CDNOW_sample.txt``)."""
    if name not in DATASETS:
        raise ClvError(f"unknown bundled data set {name!r}; choose one of: {', '.join(DATASETS)}")
    with warnings.catch_warnings():  # files() imports lifetimes, whose import changes the filters
        folder = importlib.resources.files("lifetimes") / "datasets"
    for suffix in (".txt", ".csv"):
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return Path(str(candidate))
    raise ClvError(f"bundled data set {name!r} is missing from the installed lifetimes; reinstall lifetimes==0.11.3")


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


def fitter_from_params(model: str, params: dict[str, float]) -> Any:
    """A lifetimes fitter carrying ``params`` (no data), ready for its prediction methods."""
    cls = getattr(_lifetimes(), LIFETIMES_CLASSES[model])
    fitter = cls()
    fitter.params_ = pd.Series(params, dtype=float)
    return fitter


def _total_nll(model: str, columns: dict[str, np.ndarray], weights: np.ndarray) -> Any:
    """θ (log-parameters) -> total negative log-likelihood in the data's own time unit.

    lifetimes normalises its objective (by ``sum(weights)``, or by ``mean(weights)`` for
    Pareto/NBD) and fits in rescaled time; the papers publish the plain sum in the data's unit.
    """
    cls = getattr(_lifetimes(), LIFETIMES_CLASSES[model])
    weights = np.asarray(weights, dtype=float)
    scale = weights.mean() if model == "pareto_nbd" else weights.sum()
    args = (*columns.values(), weights, 0.0)

    def total(log_theta: np.ndarray) -> float:
        theta = log_theta if _LOG_PARAMETRISED[model] else np.exp(log_theta)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return float(cls._negative_log_likelihood(theta, *args)) * scale

    return total


def _numerical_gradient_hessian(f: Any, x: np.ndarray, step: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Central differences: gradient and Hessian of ``f`` at ``x`` (for the 3-4 parameters here)."""
    k = len(x)
    eye = np.eye(k) * step
    f0 = f(x)
    grad = np.array([(f(x + eye[i]) - f(x - eye[i])) / (2 * step) for i in range(k)])
    hess = np.empty((k, k))
    for i in range(k):
        hess[i, i] = (f(x + eye[i]) - 2 * f0 + f(x - eye[i])) / step**2
        for j in range(i + 1, k):
            hess[i, j] = hess[j, i] = (
                f(x + eye[i] + eye[j]) - f(x + eye[i] - eye[j]) - f(x - eye[i] + eye[j]) + f(x - eye[i] - eye[j])
            ) / (4 * step**2)
    return grad, hess


def fit(model: str, columns: dict[str, np.ndarray], weights: np.ndarray, **options: Any) -> FitResult:
    """Fit a lifetimes model on (collapsed) rows.

    Parameters
    ----------
    model
        ``"bgnbd"``, ``"mbgnbd"``, ``"pareto_nbd"`` or ``"gamma_gamma"``.
    columns
        The fitter's positional inputs by name: ``frequency, recency, T`` for the purchase
        models, ``frequency, monetary_value`` for Gamma-Gamma.
    weights
        How many customers each row stands for; the likelihood is the weighted sum, so a fit on
        collapsed identical rows equals the fit on all rows.
    options
        Passed to the fitter's ``fit`` (``tol``, ``initial_params``, ...).

    Returns
    -------
    FitResult
        Standard errors by the delta method from the covariance of the log-parameters, which is
        the inverse Hessian of the total negative log-likelihood: lifetimes' exact (autograd)
        Hessian where it computes one, a central-difference Hessian for Pareto/NBD.

    Raises
    ------
    ConvergenceFailure
        The optimiser failed, the likelihood is not finite, or (checked here for every model,
        since lifetimes' Pareto/NBD never looks) the gradient at the optimum does not vanish.
    """
    cls = getattr(_lifetimes(), LIFETIMES_CLASSES[model])
    fitter = cls()
    printed = io.StringIO()
    options = {**_FIT_OPTIONS.get(model, {}), **options}
    with warnings.catch_warnings(), contextlib.redirect_stdout(printed), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # log(0) probes of the optimiser
        try:
            fitter.fit(*columns.values(), weights=weights, **options)
        except Exception as err:  # lifetimes raises its own ConvergenceError (and LinAlgError)
            said = " ".join(line.strip() for line in printed.getvalue().splitlines() if "message" in line)
            raise ConvergenceFailure(
                f"{model} fit did not converge ({said or type(err).__name__ + ': ' + str(err).strip()}); "
                "check the data (enough repeat customers, sensible time unit) or try another time unit"
            ) from None
    params = {k: float(v) for k, v in fitter.params_.items()}
    theta = np.array(list(params.values()))
    if not np.all(np.isfinite(theta)) or np.any(theta <= 0):
        raise ConvergenceFailure(f"{model} fit returned invalid parameters {params}; check the data for extreme values")
    total = _total_nll(model, columns, weights)
    log_theta = np.log(theta)
    nll = total(log_theta)
    if not np.isfinite(nll):
        raise ConvergenceFailure(f"{model} fit ended at a non-finite likelihood; check the data for extreme values")
    n = float(np.sum(weights))
    lifetimes_hessian = getattr(fitter, "_hessian_", None)
    if lifetimes_hessian is not None:
        # lifetimes' Hessian is of the mean objective in log-parameters (invariant to its time
        # rescaling, which only shifts log alpha); the gradient is checked numerically.
        hessian = np.asarray(lifetimes_hessian, dtype=float) * n
        gradient = _numerical_gradient_hessian(total, log_theta)[0] if model == "pareto_nbd" else np.zeros(len(theta))
    else:
        gradient, hessian = _numerical_gradient_hessian(total, log_theta)
    if np.max(np.abs(gradient)) / n > _GRADIENT_TOLERANCE:
        raise ConvergenceFailure(
            f"{model} fit stopped before the optimum (largest gradient {np.max(np.abs(gradient)) / n:.2g} per "
            f"customer at {params}); try another time unit or more data"
        )
    try:
        covariance = np.linalg.inv(hessian)
        diagonal = np.diag(covariance)
        errors = dict(zip(params, np.where(diagonal > 0, theta * np.sqrt(np.abs(diagonal)), np.nan)))
        cov_list: list[list[float]] | None = covariance.tolist()
    except np.linalg.LinAlgError:
        errors, cov_list = dict.fromkeys(params, float("nan")), None
    return FitResult(params, {k: float(v) for k, v in errors.items()}, -nll, int(n), cov_list)


def conditional_expected_purchases(
    model: str, params: dict[str, float], t: Any, frequency: Any, recency: Any, T: Any
) -> np.ndarray:
    """E[Y(t) | x, t_x, T] from lifetimes, with Pareto/NBD's NaN cases filled exactly.

    lifetimes' Pareto/NBD returns NaN when ``t_x = T`` and ``x`` is large (its log A_0 subtracts
    two equal infinities). There ``P(alive) = 1`` exactly (a purchase at T proves the customer
    alive) and E[Y(t)] = P(alive) (r + x)(β + T) / ((α + T)(s − 1)) [1 − ((β + T)/(β + T + t))^(s−1)]
    (Fader, Hardie & Lee 2005, "A note on implementing the Pareto/NBD model", eq. 4 with P(alive)).
    """
    fitter = fitter_from_params(model, params)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = np.asarray(fitter.conditional_expected_number_of_purchases_up_to_time(t, frequency, recency, T), dtype=float)
        if model == "mbgnbd" and not np.all(np.isfinite(out)):
            # lifetimes multiplies 2F1(r+x, b+x+1; a+b+x; z), which overflows for frequent buyers
            # over long horizons, by (1-z)^(r+x), which underflows. Euler's transformation folds the
            # two into (1-z)^(a-1) 2F1(a+b-r, a-1; a+b+x; z), bounded for 0 <= z < 1 (Wagner &
            # Hoppe 2008's expectation, same value).
            r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
            x, tx_, T_ = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
            z = t / (alpha + T_ + t)
            tail = (1 - z) ** (a - 1) * hyp2f1(a + b - r, a - 1, a + b + x, z)
            stable = (a + b + x) / (a - 1) * (1 - tail) / (1 + (a / (b + x)) * ((alpha + T_) / (alpha + tx_)) ** (r + x))
            out = np.where(np.isfinite(out), out, np.broadcast_to(stable, out.shape))
        if model == "pareto_nbd" and not np.all(np.isfinite(out)):
            r, alpha, s, beta = (params[k] for k in ("r", "alpha", "s", "beta"))
            x, T_ = np.asarray(frequency, dtype=float), np.asarray(T, dtype=float)
            alive = probability_alive(model, params, frequency, recency, T)
            exact = alive * (r + x) * (beta + T_) / ((alpha + T_) * (s - 1)) * (1 - ((beta + T_) / (beta + T_ + t)) ** (s - 1))
            out = np.where(np.isfinite(out), out, np.broadcast_to(exact, out.shape))
    return out


def probability_alive(model: str, params: dict[str, float], frequency: Any, recency: Any, T: Any) -> np.ndarray:
    """P(alive | x, t_x, T) from lifetimes; for Pareto/NBD, 1 where ``t_x = T`` (see above)."""
    fitter = fitter_from_params(model, params)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = np.asarray(fitter.conditional_probability_alive(frequency, recency, T), dtype=float)
    if model == "pareto_nbd":
        out = np.where(np.isnan(out) & (np.asarray(recency) >= np.asarray(T)), 1.0, out)
    return out
