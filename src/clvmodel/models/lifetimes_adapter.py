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

from clvmodel.errors import ClvError, ConvergenceFailure

__all__ = ["FitResult", "fit", "fitter_from_params", "dataset_path", "DATASETS", "LIFETIMES_CLASSES"]

#: clvmodel model name -> lifetimes class name.
LIFETIMES_CLASSES = {
    "bgnbd": "BetaGeoFitter",
    "gamma_gamma": "GammaGammaFitter",
}

#: Models whose static ``_negative_log_likelihood`` takes log-parameters (Pareto/NBD takes them plain).
_LOG_PARAMETRISED = {"bgnbd": True, "gamma_gamma": True}

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
    folder = importlib.resources.files("lifetimes") / "datasets"
    for suffix in (".txt", ".csv"):
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return Path(str(candidate))
    raise ClvError(f"bundled data set {name!r} is missing from the installed lifetimes; reinstall lifetimes==0.11.3")


@dataclass(frozen=True)
class FitResult:
    """What a fit leaves behind: parameters, their standard errors, the log-likelihood."""

    params: dict[str, float]
    standard_errors: dict[str, float]
    log_likelihood: float
    n: int


def fitter_from_params(model: str, params: dict[str, float]) -> Any:
    """A lifetimes fitter carrying ``params`` (no data), ready for its prediction methods."""
    cls = getattr(_lifetimes(), LIFETIMES_CLASSES[model])
    fitter = cls()
    fitter.params_ = pd.Series(params, dtype=float)
    return fitter


def fit(model: str, columns: dict[str, np.ndarray], weights: np.ndarray, **options: Any) -> FitResult:
    """Fit a lifetimes model on (collapsed) rows.

    Parameters
    ----------
    model
        ``"bgnbd"`` or ``"gamma_gamma"``.
    columns
        The fitter's positional inputs by name: ``frequency, recency, T`` for BG/NBD,
        ``frequency, monetary_value`` for Gamma-Gamma.
    weights
        How many customers each row stands for; the likelihood is the weighted sum, so a fit on
        collapsed identical rows equals the fit on all rows.
    options
        Passed to the fitter's ``fit`` (``tol``, ``initial_params``, ...).
    """
    cls = getattr(_lifetimes(), LIFETIMES_CLASSES[model])
    fitter = cls()
    printed = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(printed):
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        errors = {k: float(v) for k, v in fitter.standard_errors_.items()}
    theta = np.array(list(params.values()))
    theta = np.log(theta) if _LOG_PARAMETRISED[model] else theta
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nll = cls._negative_log_likelihood(theta, *columns.values(), np.asarray(weights, dtype=float), 0.0)
    log_likelihood = -float(nll) * float(np.sum(weights))
    if not all(np.isfinite(list(params.values()))) or not np.isfinite(log_likelihood):
        raise ConvergenceFailure(f"{model} fit returned non-finite values {params}; check the data for extreme values")
    return FitResult(params, errors, log_likelihood, int(np.sum(weights)))
