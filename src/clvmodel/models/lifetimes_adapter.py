"""The one place clvmodel touches :mod:`lifetimes`.

lifetimes (0.11.3, unmaintained since 2020) supplies the BTYD likelihoods and forecasts and is the
reference every fit is checked against. This adapter keeps its quirks out of the rest of the
package:

* ``import lifetimes`` and every call of its likelihoods change the global warning filters
  (``warnings.simplefilter("ignore", FutureWarning)``); both are wrapped in
  :func:`warnings.catch_warnings` so the caller's filters are restored.
* ``lifetimes.datasets`` cannot be imported (it needs ``pkg_resources``); the bundled files are
  located by :mod:`clvmodel.bundled` (re-exported here) instead.
* Its ``fit`` always ends with an exact autograd Hessian, which at a million customers costs as
  much as the minimisation itself (issue 7). :func:`fit` therefore replays lifetimes'
  minimisation on lifetimes' own likelihood and gradient (same first start, BFGS, tolerance, time
  rescaling: the same estimates to rounding where that start converges), tries the documented
  data-derived starts after it (:func:`.mle.search`, issue 13), and takes the Hessian by central
  differences of that gradient (:mod:`.mle`).
* Pareto/NBD has no gradient in lifetimes; its ``fit`` runs Nelder-Mead from a random start on
  plain parameters and returns wherever that ends, and its likelihood is NaN for customers whose
  last purchase is at the end of the period (``t_x = T``) once its ₂F₁ overflows (``s`` and ``β``
  large: the apparel data's 40-week split ended there, "non-finite likelihood"). :func:`fit`
  instead minimises lifetimes' per-customer likelihood with BFGS in log-parameters from fixed
  starts, with a central-difference gradient, the ``t_x = T`` rows in their exact closed form, and
  any other non-finite value read as ``+inf`` (:class:`.mle.Guarded`).
* The Pareto/NBD ridge (issue 13). When the data show no spread in customers' dropout rates the
  likelihood has no finite maximum: it keeps rising as ``s, β → ∞`` with ``β/s`` fixed, the
  Gamma(s, β) of dropout rates collapsing to one rate ``μ = s/β`` (the apparel data's 40-week
  split), and lifetimes' ₂F₁ overflows on the way (``s`` ≈ 150 there), so where its fit stops
  says nothing. :class:`ParetoNBDLimit` is the likelihood of that limit, evaluated by quadrature;
  when the fit runs out along ``s`` and no start beats the limit by :data:`.mle.RIDGE_GAIN`, the
  fit reports the limit (status :data:`.mle.RIDGE`, ``s =`` :data:`PARETO_RIDGE_S`), and the
  forecasts here use the limit's closed forms from ``s ≥`` :data:`PARETO_LIMIT_FORMS_FROM` on.
* Since issue 16 no family fits here: Pareto/NBD fits with :func:`.pareto_nbd_likelihood.fit`
  (the same integral-form likelihood as the covariate model, an analytic gradient, the same starts
  and ridge limit as :func:`_fit_pareto_nbd`) and forecasts with its bounded forms; MBG/NBD fits
  with :func:`.mbgnbd_likelihood.fit`. :func:`fit` here stays their reference path in the tests.
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

import warnings
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.special import expit, gammaln, hyp2f1, roots_legendre

from clvmodel.bundled import DATASETS, dataset_folder, dataset_path  # noqa: F401 - re-exported (tests, scripts)
from clvmodel.errors import ClvError
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

#: Step in the log-parameters of the central-difference gradient of lifetimes' Pareto/NBD
#: likelihood (which has none). Truncation error ~ step² · f''' ~ 1e-11 and rounding noise of the
#: mean likelihood (~1e-13, its ₂F₁ included) / step ~ 1e-8: both far below the gradient at which
#: BFGS stops (1e-7) and the convergence criterion (:data:`.mle.GRADIENT_TOLERANCE`).
PARETO_GRADIENT_STEP = 1e-5

#: ``s`` above which a Pareto/NBD stop is checked against the ``s, β → ∞`` limit (a Gamma(s, β)
#: of dropout rates varying by less than 1/√10 ≈ 32 % between customers). Published fits sit far
#: below (CDNOW 0.61, apparel 104 weeks 0.56), stops running out along the ridge far above
#: (~150 where lifetimes' ₂F₁ overflows), so the choice does not hang on the last bits.
PARETO_RIDGE_CHECK_S = 10.0
#: ``s`` of the point reported on the Pareto/NBD ridge (``β = s/μ``). lifetimes' E[X(t)] for a new
#: customer raises ``β/(β + t)`` to the power ``s − 1`` and so carries ~``s ε`` of rounding; 1e8
#: balances that against the distance to the limit (~1/s): both ~1e-8 relative.
PARETO_RIDGE_S = 1e8
#: From this ``s`` on, :func:`probability_alive` and :func:`conditional_expected_purchases` use the
#: limit's closed forms for Pareto/NBD (which differ from the exact ones by ~1/s), since lifetimes'
#: ₂F₁ overflows long before.
PARETO_LIMIT_FORMS_FROM = 1e6
#: Gauss-Legendre nodes for the limit's integral (:func:`pareto_limit_log_r`); the integrand is
#: cut where it has fallen by e^-40. Against adaptive quadrature on 1,000 random extreme cases
#: (x up to 1,000, μ(α + t_x) up to 200) ln L agreed to 1e-11 with 24 nodes already.
_LIMIT_NODES = 32
_LIMIT_EFOLDS = 40.0

#: Parameter names in lifetimes' order.
_PARAMS = {
    "bgnbd": ("r", "alpha", "a", "b"),
    "mbgnbd": ("r", "alpha", "a", "b"),
    "pareto_nbd": ("r", "alpha", "s", "beta"),
    "gamma_gamma": ("p", "q", "v"),
}



def _lifetimes() -> Any:
    with warnings.catch_warnings():
        import lifetimes  # noqa: PLC0415  (kept local: import-time side effects, slow import)
    return lifetimes


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
    first = options.pop("initial_params", None)
    planned = _starts(model, args)
    if first is not None:
        planned[0] = np.asarray(first, dtype=float)
    value_and_gradient = value_and_grad(cls._negative_log_likelihood)
    n = float(np.sum(weights))

    def objective(log_theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = value_and_gradient(log_theta, *args)
        return float(value), np.asarray(gradient, dtype=float)

    with warnings.catch_warnings():  # lifetimes' likelihood calls warnings.simplefilter on every call
        warnings.simplefilter("ignore", RuntimeWarning)
        optimum = mle.minimise(objective, planned[0], model=model, tol=tol, starts=planned[1:], weight=n, **options)
        with np.errstate(all="ignore"):
            hessian = mle.central_hessian(lambda theta: objective(theta)[1], optimum.x)
    log_theta = optimum.x.copy()
    if model != "gamma_gamma":
        log_theta[1] -= np.log(scale)  # alpha in rescaled time -> the data's unit
    params = {name: float(v) for name, v in zip(_PARAMS[model], np.exp(log_theta))}
    log_likelihood = -_total_nll(model, columns, weights)(log_theta)
    return mle.fit_result(model, params, log_likelihood, optimum.jac, hessian * n, n)


def _starts(model: str, args: tuple[Any, ...]) -> list[np.ndarray]:
    """The fixed starting log-parameters of ``model`` for lifetimes' arguments ``args`` (in its
    rescaled time), lifetimes' own start first: :func:`.bgnbd_likelihood.starts` for the BG/NBD
    family (MBG/NBD's parameters mean the same), :func:`.gamma_gamma_likelihood.starts`."""
    from clvmodel.models import bgnbd_likelihood, gamma_gamma_likelihood  # noqa: PLC0415  (they import mle only)

    if model == "gamma_gamma":
        frequency, spend, weights, _ = args
        return gamma_gamma_likelihood.starts(frequency, spend, weights)
    frequency, _, T, weights, _ = args
    return bgnbd_likelihood.starts(frequency, T, weights)


class _RowObjective:
    """Σ w ln L from a likelihood's per-row ``rows(θ)``, and the mean negative log-likelihood with
    its central-difference gradient (step :data:`PARETO_GRADIENT_STEP`) that :mod:`.mle` minimises."""

    weights: np.ndarray
    total_weight: float

    def rows(self, log_params: np.ndarray) -> np.ndarray:  # each likelihood defines it
        raise NotImplementedError

    def log_likelihood(self, log_params: np.ndarray) -> float:
        """Total (weighted) log-likelihood Σ w ln L at ``θ``."""
        return float(self.weights @ self.rows(log_params))

    def value(self, log_params: np.ndarray) -> float:
        """Mean negative log-likelihood at ``θ``."""
        return -self.log_likelihood(log_params) / self.total_weight

    def __call__(self, log_params: np.ndarray) -> tuple[float, np.ndarray]:
        """Mean negative log-likelihood and its central-difference gradient at ``θ``."""
        theta = np.asarray(log_params, dtype=float)
        steps = np.eye(len(theta)) * PARETO_GRADIENT_STEP
        gradient = np.array([(self.value(theta + h) - self.value(theta - h)) / (2 * PARETO_GRADIENT_STEP) for h in steps])
        return self.value(theta), gradient


class ParetoNBDObjective(_RowObjective):
    """lifetimes' Pareto/NBD likelihood as a mean over weighted rows in log-parameters, with a gradient.

    Per row, ``ParetoNBDFitter._conditional_log_likelihood`` (equation (18) of Fader & Hardie's
    note 009), except where ``t_x = T``: there the integral over dropout times between ``t_x`` and
    ``T`` is empty, and the likelihood is exactly its first term::

        ln L = lnΓ(r + x) − lnΓ(r) + r ln α + s ln β − (r + x) ln(α + T) − s ln(β + T)

    which lifetimes computes as ``ln(p₁ q₂^k − p₂ q₁^k)`` of two equal terms: ``log 0`` as long as
    its ₂F₁ ``p₁ = p₂`` is finite, NaN once it overflows (``s`` and ``β`` in the hundreds). The
    gradient is the central difference of the values (:data:`PARETO_GRADIENT_STEP`), 8 extra
    evaluations; non-finite values are left to :class:`.mle.Guarded`.

    Parameters
    ----------
    frequency, recency, T
        ``x, t_x, T`` per row, in the time the parameters are fitted in.
    weights
        Customers per row.
    """

    def __init__(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, weights: np.ndarray) -> None:
        self._cls = getattr(_lifetimes(), LIFETIMES_CLASSES["pareto_nbd"])
        self.x = np.asarray(frequency).astype(int)  # as lifetimes' fit casts it
        self.recency = np.asarray(recency, dtype=float)
        self.T = np.asarray(T, dtype=float)
        self.weights = np.asarray(weights, dtype=float)
        self.total_weight = float(self.weights.sum())
        self.at_end = self.recency >= self.T

    def rows(self, log_params: np.ndarray) -> np.ndarray:
        """ln L per row at ``θ = ln(r, α, s, β)``."""
        r, alpha, s, beta = (float(v) for v in np.exp(np.asarray(log_params, dtype=float)))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # lifetimes' likelihood changes the filters on every call
            out = np.asarray(self._cls._conditional_log_likelihood((r, alpha, s, beta), self.x, self.recency, self.T),
                             dtype=float)
            if np.any(self.at_end):
                x, T = self.x[self.at_end], self.T[self.at_end]
                out[self.at_end] = (gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
                                    - (r + x) * np.log(alpha + T) - s * np.log(beta + T))
        return out


def pareto_limit_log_r(mu: Any, alpha: Any, k: Any, recency: Any, T: Any) -> np.ndarray:
    """``ln R`` of the Pareto/NBD limit (one dropout rate ``μ``): how much likelier a customer's
    history is with a dropout between ``t_x`` and ``T`` than alive at ``T``.

    With ``λ ~ Gamma(r, α)`` and an exponential lifetime of rate ``μ``, a customer with ``x``
    repeat purchases (``k = r + x``) has::

        L∞ = Γ(r + x)/Γ(r) α^r [e^(−μT) (α + T)^(−k) + μ ∫_{t_x}^{T} e^(−μτ) (α + τ)^(−k) dτ]
           = Γ(r + x)/Γ(r) α^r e^(−μT) (α + T)^(−k) (1 + R)

    (the limit of equation (18) of note 009 as ``s, β → ∞``, ``s/β = μ``). With
    ``v = ln((α + T)/(α + τ))``, ``V = ln((α + T)/(α + t_x))``, ``m = μ (α + t_x)``,
    ``g = m + k − 1`` and ``u = V − v``::

        R = μ (α + T) e^(μ (T − t_x) + (k − 1) V) ∫_0^V exp(−g u − m (e^u − 1 − u)) du

    The integrand starts at 1 and is log-concave; it is integrated by Gauss-Legendre
    (:data:`_LIMIT_NODES`) up to where ``g u + m u²/2`` reaches :data:`_LIMIT_EFOLDS` (beyond, it is
    below e^-40 of its start). ``−inf`` where ``t_x = T``. Arguments broadcast.
    """
    mu, alpha, k, tx, T_ = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (mu, alpha, k, recency, T)))
    with np.errstate(all="ignore"):
        V = np.log1p((T_ - tx) / (alpha + tx))
        m = mu * (alpha + tx)
        g = m + k - 1.0
        cut = 2 * _LIMIT_EFOLDS / (g + np.sqrt(g * g + 2 * m * _LIMIT_EFOLDS))  # root of m u²/2 + g u = efolds
        width = np.minimum(V, np.where(np.isfinite(cut) & (cut > 0), cut, np.inf))
        nodes, node_weights = roots_legendre(_LIMIT_NODES)
        u = (nodes.reshape((-1,) + (1,) * V.ndim) + 1) / 2 * width
        integral = np.tensordot(node_weights, np.exp(-g * u - m * (np.expm1(u) - u)), axes=1) * width / 2
        return np.log(mu) + np.log(alpha + T_) + mu * (T_ - tx) + (k - 1) * V + np.log(integral)


class ParetoNBDLimit(_RowObjective):
    """The ``s, β → ∞`` limit of the Pareto/NBD likelihood (one dropout rate μ) over weighted rows.

    Called with ``θ = ln(r, α, μ)`` it returns the mean negative log-likelihood and its
    central-difference gradient (:data:`PARETO_GRADIENT_STEP`); ``ln L∞`` per row is
    ``lnΓ(r + x) − lnΓ(r) + r ln α − μT − (r + x) ln(α + T) + ln(1 + R)``
    (:func:`pareto_limit_log_r`).
    """

    def __init__(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, weights: np.ndarray) -> None:
        self.x = np.asarray(frequency, dtype=float)
        self.recency = np.asarray(recency, dtype=float)
        self.T = np.asarray(T, dtype=float)
        self.weights = np.asarray(weights, dtype=float)
        self.total_weight = float(self.weights.sum())

    def rows(self, log_params: np.ndarray) -> np.ndarray:
        """ln L∞ per row at ``θ = ln(r, α, μ)``."""
        r, alpha, mu = (float(v) for v in np.exp(np.asarray(log_params, dtype=float)))
        k = r + self.x
        log_r = pareto_limit_log_r(mu, alpha, k, self.recency, self.T)
        return (gammaln(k) - gammaln(r) + r * np.log(alpha) - mu * self.T - k * np.log(alpha + self.T)
                + np.logaddexp(0.0, log_r))


class ParetoLimitFit(NamedTuple):
    """The maximum of :class:`ParetoNBDLimit`, in the objective's time."""

    r: float
    alpha: float
    #: The common dropout rate μ (= s/β in the limit).
    mu: float
    #: Total log-likelihood Σ w ln L∞.
    log_likelihood: float
    #: Covariance of ``ln(r, α, μ)``: inverse Hessian of the total negative log-likelihood.
    covariance: np.ndarray


def pareto_limit_fit(limit: ParetoNBDLimit, log_alpha: float) -> ParetoLimitFit | None:
    """Maximum likelihood of the Pareto/NBD ridge's limit, the same on every machine.

    BFGS from fixed starts (``r = 1``, ``α`` at the data's purchase rate, ``μ`` with a mean
    lifetime of the whole period and of ten times it), then Newton steps (:func:`.mle.refine`).
    ``None`` when the limit has no optimum the data identify (a standard error of a log-parameter
    above :data:`.mle.MAX_LOG_SE`).
    """
    tried = [np.array([0.0, log_alpha, 0.0]), np.array([0.0, log_alpha, -np.log(10.0)])]
    at = mle.limit_stop(limit, tried, tol=1e-9, weight=limit.total_weight)
    if at is None:
        return None
    _, hessian = mle.gradient_hessian_from_values(lambda theta: -limit.log_likelihood(theta), at)
    if not np.all(mle.log_standard_errors(hessian) <= mle.MAX_LOG_SE):
        return None
    r, alpha, mu = (float(v) for v in np.exp(at))
    return ParetoLimitFit(r, alpha, mu, limit.log_likelihood(at), np.linalg.inv(hessian))


def _pareto_ridge_result(limit: ParetoLimitFit, scale: float, shift: float, n: float) -> mle.FitResult:
    """The Pareto/NBD fit reported on the ridge: the limit's ``r, α, μ`` at ``s =`` :data:`PARETO_RIDGE_S`.

    Rescaled time back to the data's: ``α / c`` and ``μ c`` (a rate), the log-likelihood plus
    ``shift`` (= Σ w x ln c). The log-likelihood is the limit's supremum, which the reported point
    approaches to ~n/s. The covariance is the limit's, mapped to ``ln(r, α, s, β)`` with ``ln s``
    fixed (``ln β = ln s − ln μ``).
    """
    mu = float(limit.mu * scale)
    params = {"r": limit.r, "alpha": float(limit.alpha / scale), "s": PARETO_RIDGE_S, "beta": PARETO_RIDGE_S / mu}
    jacobian = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    covariance = jacobian @ limit.covariance @ jacobian.T
    log_se = np.sqrt(np.abs(np.diag(limit.covariance)[:2]))
    standard_errors = {"r": limit.r * float(log_se[0]), "alpha": params["alpha"] * float(log_se[1]),
                       "s": float("nan"), "beta": float("nan")}
    warnings.warn(
        f"pareto_nbd: these data have no finite maximum-likelihood estimate: the likelihood rises as s, beta -> inf "
        f"with beta/s = {1 / mu:.4g} fixed (no spread in dropout rates left to estimate); the fit is that limit, "
        f"every customer's lifetime exponential with the same rate {mu:.4g} (status 'ridge', s = {PARETO_RIDGE_S:g})",
        UserWarning,
        stacklevel=5,
    )
    return mle.FitResult(params, standard_errors, float(limit.log_likelihood + shift), int(n), covariance.tolist(),
                         mle.RIDGE, {"r": limit.r, "alpha": params["alpha"], "dropout_rate": mu})


def _fit_pareto_nbd(columns: dict[str, np.ndarray], weights: np.ndarray, **options: Any) -> mle.FitResult:
    """Pareto/NBD: BFGS on :class:`ParetoNBDObjective` from fixed starts, in lifetimes' rescaled time.

    Starts (log-parameters, rescaled time): ``ln(1, 1, 1, 1)``, the fixed start of earlier
    versions (lifetimes draws one at random around it); then ``r = s = 1`` with the data's
    purchase rate for ``α`` (as :func:`.bgnbd_likelihood.starts`) and ``β = 1`` and ``10`` (mean
    lifetimes of about the calibration period and ten times it). Standard errors from central
    differences of the likelihood values (:func:`.mle.gradient_hessian_from_values`), which also
    give the gradient that :func:`.mle.fit_result` checks.

    The ridge: when the highest stop of any start has ``s`` above :data:`PARETO_RIDGE_CHECK_S`, or
    leaves a parameter unidentified, it is compared with the ``s, β → ∞`` limit
    (:func:`pareto_limit_fit`); if no stop beats the limit by :data:`.mle.RIDGE_GAIN`, the limit is
    the fit (:func:`_pareto_ridge_result`). Unlike BG/NBD's, the stop need not be stationary: on
    this ridge BFGS stops where lifetimes' ₂F₁ overflows, and whether the (numerical) gradient
    there is below the tolerance depends on the machine.
    """
    model = "pareto_nbd"
    _check_inputs(model, columns)
    x, tx, T = (np.asarray(columns[c], dtype=float) for c in ("frequency", "recency", "T"))
    scale = 1.0 / T.max()  # lifetimes' _scale_time
    objective = ParetoNBDObjective(x, tx * scale, T * scale, weights)
    n = objective.total_weight
    tol = options.pop("tol", mle.LIFETIMES_TOL)
    for unused in ("verbose", "iterative_fitting", "fit_method", "index"):
        options.pop(unused, None)
    first = options.pop("initial_params", None)  # lifetimes' plain parameters, rescaled time
    from clvmodel.models.bgnbd_likelihood import _log_inverse_rate  # noqa: PLC0415

    log_alpha = _log_inverse_rate(objective.x, objective.T, objective.weights)
    planned = [np.zeros(4), np.array([0.0, log_alpha, 0.0, 0.0]), np.array([0.0, log_alpha, 0.0, np.log(10.0)])]
    if first is not None:
        planned[0] = np.log(np.asarray(first, dtype=float))
    stops = mle.search(objective, planned, tol=tol, **options)
    optimum = mle.best_stop(stops, n) or next((s for s in stops if s.success and np.isfinite(s.fun)), None)
    # ln L in the data's unit: rescaling time by c multiplies each customer's likelihood by c^(-x)
    # (x purchase-time densities), so Σ w ln L gains Σ w x ln c.
    shift = float(objective.weights @ objective.x) * np.log(scale)
    hessian = gradient = None
    if optimum is not None:
        gradient, hessian = mle.gradient_hessian_from_values(lambda theta: -objective.log_likelihood(theta), optimum.x)
    finite = [s for s in stops if np.isfinite(s.fun)]
    highest = min(finite, key=lambda stop: stop.fun) if finite else None
    if highest is not None and (
        np.exp(highest.x[2]) > PARETO_RIDGE_CHECK_S
        or (optimum is not None and not np.all(mle.log_standard_errors(hessian) <= mle.MAX_LOG_SE))
    ):
        limit = pareto_limit_fit(ParetoNBDLimit(objective.x, objective.recency, objective.T, objective.weights),
                                 log_alpha)
        if limit is not None and -highest.fun * n < limit.log_likelihood + mle.RIDGE_GAIN:
            return _pareto_ridge_result(limit, scale, shift, n)
    if optimum is None:
        raise mle.not_converged(model, mle.failure_words(stops, of=len(planned)), starts=len(planned))
    log_theta = optimum.x.copy()
    log_theta[[1, 3]] -= np.log(scale)  # alpha and beta in rescaled time -> the data's unit
    params = {name: float(v) for name, v in zip(_PARAMS[model], np.exp(log_theta))}
    log_likelihood = objective.log_likelihood(optimum.x) + shift
    return mle.fit_result(model, params, log_likelihood, gradient / n, hessian, n)


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
        As lifetimes' ``fit``: ``tol``, ``initial_params`` (the first start; the documented starts
        follow), scipy ``minimize`` options (``maxiter`` per start); and ``time_budget`` (seconds
        for all starts, :func:`.mle.search`).

    Returns
    -------
    FitResult
        The best stationary stop from fixed starts (:func:`.mle.best_stop`): BG/NBD, MBG/NBD,
        Gamma-Gamma by lifetimes' minimisation replayed (:func:`_fit_by_gradient`: its estimates
        where its start converges), Pareto/NBD by BFGS on its likelihood
        (:func:`_fit_pareto_nbd`; status :data:`.mle.RIDGE` and the ``s, β → ∞`` limit when the
        data have no finite optimum). Standard errors by the delta method from the covariance of
        the log-parameters, the inverse Hessian of the total negative log-likelihood by central
        differences (of autograd's gradient; of values for Pareto/NBD). ``BetaGeoModel`` fits
        with :mod:`.bgnbd_likelihood` instead; this BG/NBD path is its reference.

    Raises
    ------
    ConvergenceFailure
        No start ended at a stationary point (scipy's words for each, and how often the likelihood
        was not finite), lifetimes rejected the inputs, or the gradient at the optimum does not
        vanish (checked for every model, since lifetimes' Pareto/NBD never looks).
    """
    if model == "pareto_nbd":
        return _fit_pareto_nbd(columns, weights, **options)
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
        if model == "pareto_nbd" and params["s"] >= PARETO_LIMIT_FORMS_FROM:
            # The limit (one dropout rate μ = s/β): alive at T, purchases at rate λ until an
            # exponential dropout, E[Y(t) | alive, λ] = λ (1 − e^(−μt))/μ, with λ ~ Gamma(r + x, α + T).
            r, alpha, mu = params["r"], params["alpha"], params["s"] / params["beta"]
            x, T_ = np.asarray(frequency, dtype=float), np.asarray(T, dtype=float)
            alive = probability_alive(model, params, frequency, recency, T)
            out = np.asarray(alive * (r + x) / (alpha + T_) * (-np.expm1(-mu * np.asarray(t, dtype=float)) / mu))
        elif model == "pareto_nbd" and not np.all(np.isfinite(out)):
            r, alpha, s, beta = (params[k] for k in ("r", "alpha", "s", "beta"))
            x, T_ = np.asarray(frequency, dtype=float), np.asarray(T, dtype=float)
            alive = probability_alive(model, params, frequency, recency, T)
            exact = alive * (r + x) * (beta + T_) / ((alpha + T_) * (s - 1)) * (1 - ((beta + T_) / (beta + T_ + t)) ** (s - 1))
            out = np.where(np.isfinite(out), out, np.broadcast_to(exact, out.shape))
    return out


def probability_alive(model: str, params: dict[str, float], frequency: Any, recency: Any, T: Any) -> np.ndarray:
    """P(alive | x, t_x, T) from lifetimes; for Pareto/NBD, 1 where ``t_x = T`` (see above), and
    ``1/(1 + R)`` of the limit (:func:`pareto_limit_log_r`) from ``s ≥``
    :data:`PARETO_LIMIT_FORMS_FROM` on."""
    if model == "pareto_nbd" and params["s"] >= PARETO_LIMIT_FORMS_FROM:
        k = params["r"] + np.asarray(frequency, dtype=float)
        mu = params["s"] / params["beta"]
        return np.atleast_1d(expit(-pareto_limit_log_r(mu, params["alpha"], k, recency, T)))
    fitter = fitter_from_params(model, params)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = np.asarray(fitter.conditional_probability_alive(frequency, recency, T), dtype=float)
    if model == "pareto_nbd":
        out = np.where(np.isnan(out) & (np.asarray(recency) >= np.asarray(T)), 1.0, out)
    return out
