"""The one place clvmodel touches :mod:`lifetimes`.

lifetimes (0.11.3, unmaintained since 2020) supplies the BTYD likelihoods and forecasts and is the
reference every fit is checked against. This adapter keeps its quirks out of the rest of the
package:

* ``import lifetimes`` and every call of its likelihoods change the global warning filters
  (``warnings.simplefilter("ignore", FutureWarning)``); both are wrapped in
  :func:`warnings.catch_warnings` so the caller's filters are restored.
* ``lifetimes.datasets`` cannot be imported (it needs ``pkg_resources``); the bundled files are
  located with :mod:`importlib.resources` instead.
* Its ``fit`` always ends with an exact autograd Hessian, which at a million customers costs as
  much as the minimisation itself (issue 7). :func:`fit` therefore replays lifetimes'
  minimisation on lifetimes' own likelihood and gradient (same start, BFGS, tolerance, time
  rescaling: the same estimates to rounding) and takes the Hessian by central differences of that
  gradient (:mod:`.mle`). Only Pareto/NBD, which has no gradient and no Hessian in lifetimes, still
  calls lifetimes' ``fit``.
* BG/NBD and Gamma-Gamma do not fit here at all: :class:`~clvmodel.models.bgnbd.BetaGeoModel` and
  :class:`~clvmodel.models.gamma_gamma.GammaGammaModel` use the numpy likelihoods and analytic
  gradients of :mod:`.bgnbd_likelihood` and :mod:`.gamma_gamma_likelihood`, several times faster
  than autograd on lifetimes' functions. lifetimes' ``_negative_log_likelihood`` stays the oracle:
  the tests check the numpy likelihoods, their gradients and the fits against it (and
  ``fit("bgnbd")``, ``fit("gamma_gamma")`` here are those reference paths). BG/NBD does not
  forecast here either (:mod:`.bgnbd_forecast`); :func:`fitter_from_params` ``("bgnbd", …)`` is
  its test oracle.
* A failed fit raises :class:`~clvmodel.errors.ConvergenceFailure` with the optimiser's words
  (lifetimes' own ``fit`` prints its result and raises a bare ``ConvergenceError``; we capture
  both).
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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import hyp2f1

from clvmodel.errors import ClvError, ConvergenceFailure
from clvmodel.models import mle
from clvmodel.models.mle import FitResult

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

#: Parameter names in lifetimes' order.
_PARAMS = {
    "bgnbd": ("r", "alpha", "a", "b"),
    "mbgnbd": ("r", "alpha", "a", "b"),
    "pareto_nbd": ("r", "alpha", "s", "beta"),
    "gamma_gamma": ("p", "q", "v"),
}

#: Files shipped inside the lifetimes wheel that configs may name as ``bundled:<stem>``.
DATASETS = ("CDNOW_sample", "CDNOW_master", "cdnow_customers_summary")


def _lifetimes() -> Any:
    with warnings.catch_warnings():
        import lifetimes  # noqa: PLC0415  (kept local: import-time side effects, slow import)
    return lifetimes


def dataset_folder() -> Path:
    """The folder of the data files bundled with lifetimes (read as files: ``import
    lifetimes.datasets`` fails without ``pkg_resources``)."""
    with warnings.catch_warnings():  # files() imports lifetimes, whose import changes the filters
        return Path(str(importlib.resources.files("lifetimes") / "datasets"))


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


def _check_inputs(model: str, columns: dict[str, np.ndarray]) -> None:
    """lifetimes' own input checks (recency <= T, integer frequency, positive spend, ...)."""
    utils = _lifetimes().utils
    try:
        if model == "gamma_gamma":
            utils._check_inputs(np.asarray(columns["frequency"]), monetary_value=np.asarray(columns["monetary_value"]))
        else:
            utils._check_inputs(*(np.asarray(columns[c]) for c in ("frequency", "recency", "T")))
    except ValueError as err:
        raise mle.not_converged(model, f"ValueError: {str(err).strip()}") from None


def _lifetimes_arguments(
    model: str, columns: dict[str, np.ndarray], weights: np.ndarray
) -> tuple[tuple[Any, ...], float]:
    """The arguments lifetimes' ``fit`` hands its ``_negative_log_likelihood``, and its time scale.

    The purchase models cast frequency to int and fit in time rescaled so the longest age is 1
    (``lifetimes.utils._scale_time``); Gamma-Gamma casts both columns to float and is not rescaled.
    """
    weights = np.asarray(weights)
    if model == "gamma_gamma":
        frequency, spend = (np.asarray(columns[c]).astype(float) for c in ("frequency", "monetary_value"))
        return (frequency, spend, weights, 0.0), 1.0
    T = np.asarray(columns["T"])
    scale = 1.0 / T.max()
    frequency = np.asarray(columns["frequency"]).astype(int)
    return (frequency, np.asarray(columns["recency"]) * scale, T * scale, weights, 0.0), scale


def _fit_by_gradient(
    model: str, columns: dict[str, np.ndarray], weights: np.ndarray, **options: Any
) -> mle.FitResult:
    """lifetimes' ``fit`` without its autograd Hessian.

    Replays ``BaseFitter._fit`` (BFGS on lifetimes' static ``_negative_log_likelihood`` with
    autograd's ``value_and_grad``, start 0.1, ``tol=1e-7``, lifetimes' time rescaling), so the
    estimates equal lifetimes' to rounding, then takes the Hessian by central differences of the
    same autograd gradient (:func:`.mle.central_hessian`) instead of autograd's ``hessian``, which
    costs as much as the whole minimisation at scale (MBG/NBD, 664k rows: 1.8 s; Gamma-Gamma,
    485k rows: ~0.8 s against ~0.08 s per gradient).
    """
    from autograd import value_and_grad  # noqa: PLC0415  (a lifetimes dependency; kept with lifetimes)

    cls = getattr(_lifetimes(), LIFETIMES_CLASSES[model])
    _check_inputs(model, columns)
    args, scale = _lifetimes_arguments(model, columns, weights)
    tol = options.pop("tol", mle.LIFETIMES_TOL)
    options.pop("verbose", None)
    start = options.pop("initial_params", None)
    start = np.full(len(_PARAMS[model]), mle.LIFETIMES_START) if start is None else np.asarray(start, dtype=float)
    value_and_gradient = value_and_grad(cls._negative_log_likelihood)

    def objective(log_theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = value_and_gradient(log_theta, *args)
        return float(value), np.asarray(gradient, dtype=float)

    with warnings.catch_warnings():  # lifetimes' likelihood calls warnings.simplefilter on every call
        warnings.simplefilter("ignore", RuntimeWarning)
        optimum = mle.minimise(objective, start, model=model, tol=tol, **options)
        with np.errstate(all="ignore"):
            hessian = mle.central_hessian(lambda theta: objective(theta)[1], optimum.x)
    log_theta = optimum.x.copy()
    if model != "gamma_gamma":
        log_theta[1] -= np.log(scale)  # alpha in rescaled time -> the data's unit
    params = {name: float(v) for name, v in zip(_PARAMS[model], np.exp(log_theta))}
    n = float(np.sum(weights))
    log_likelihood = -_total_nll(model, columns, weights)(log_theta)
    return mle.fit_result(model, params, log_likelihood, optimum.jac, hessian * n, n)


def _fit_with_lifetimes(
    model: str, columns: dict[str, np.ndarray], weights: np.ndarray, **options: Any
) -> mle.FitResult:
    """Pareto/NBD: lifetimes' own ``fit`` (Nelder-Mead, no Hessian), checked and given standard
    errors here from central differences of its likelihood values."""
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
            raise mle.not_converged(model, said or type(err).__name__ + ": " + str(err).strip()) from None
    params = {k: float(v) for k, v in fitter.params_.items()}
    theta = np.array(list(params.values()))
    if not np.all(np.isfinite(theta)) or np.any(theta <= 0):
        raise ConvergenceFailure(f"{model} fit returned invalid parameters {params}; check the data for extreme values")
    total = _total_nll(model, columns, weights)
    log_theta = np.log(theta)
    n = float(np.sum(weights))
    gradient, hessian = mle.gradient_hessian_from_values(total, log_theta)
    return mle.fit_result(model, params, -total(log_theta), gradient / n, hessian, n)


def fit(model: str, columns: dict[str, np.ndarray], weights: np.ndarray, **options: Any) -> mle.FitResult:
    """Fit a model on (collapsed) rows with lifetimes' likelihood.

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
        As lifetimes' ``fit``: ``tol``, ``initial_params``, scipy ``minimize`` options (``maxiter``).

    Returns
    -------
    FitResult
        The estimates of lifetimes' ``fit`` (BG/NBD, MBG/NBD, Gamma-Gamma: its minimisation replayed
        by :func:`_fit_by_gradient`; Pareto/NBD: its own ``fit``). Standard errors by the delta
        method from the covariance of the log-parameters, the inverse Hessian of the total negative
        log-likelihood by central differences (of autograd's gradient; of values for Pareto/NBD).
        ``BetaGeoModel`` fits with :mod:`.bgnbd_likelihood` instead; this BG/NBD path is its reference.

    Raises
    ------
    ConvergenceFailure
        The optimiser failed, lifetimes rejected the inputs, the likelihood is not finite, or the
        gradient at the optimum does not vanish (checked for every model, since lifetimes'
        Pareto/NBD never looks).
    """
    if model == "pareto_nbd":
        return _fit_with_lifetimes(model, columns, weights, **options)
    return _fit_by_gradient(model, columns, weights, **options)


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
