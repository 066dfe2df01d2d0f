"""BG/NBD log-likelihood with its analytic gradient in numpy, and the fit built on it (issue 7).

The likelihood is equation (6) of Fader, Hardie & Lee (2005), "Counting your customers the easy
way: an alternative to the Pareto/NBD model", Marketing Science 24(2), written as in section 7 of
the paper (and lifetimes' ``BetaGeoFitter._negative_log_likelihood``)::

    ln L(r, α, a, b | x, t_x, T) = A1 + A2 + ln(exp(A3) + δ(x > 0) exp(A4))
    A1 = lnΓ(r + x) − lnΓ(r) + r ln α
    A2 = lnΓ(a + b) + lnΓ(b + x) − lnΓ(b) − lnΓ(a + b + x)
    A3 = −(r + x) ln(α + T)
    A4 = ln a − ln(b + x − 1) − (r + x) ln(α + t_x)

Why not lifetimes' own fit: at a million customers it spends 2.6 s in 19 autograd gradient calls
and then 2.4 s in an autograd Hessian. Here the terms that depend on ``x`` alone (lnΓ, ψ) are
evaluated once per distinct ``x``, those of ``T`` and ``t_x`` once per distinct value, and the
gradient is written out, so one call costs a small fraction of autograd's (issue 16: 23 ms CPU at
the 664,113 distinct rows of a million benchmark customers, 42 ms before the pooling by ``T`` and
``t_x``); the Hessian comes from central differences of this gradient (:func:`.mle.central_hessian`). lifetimes stays the reference: the tests check this likelihood and
gradient against lifetimes' function and autograd, and the fit against ``BetaGeoFitter.fit``.

``A2`` is evaluated as ``ln B(x, a + b) − ln B(x, b)`` (``lnΓ(b + x) − lnΓ(b) = lnΓ(x) − ln B(x, b)``
for ``x > 0``, and 0 for ``x = 0``) with the ψ differences of its gradient as steps, both from
:mod:`.gamma_gamma_likelihood`'s series where an argument is large: the four lnΓ of the paper's
form are each ~``(a + b) ln(a + b)`` and cancel, so at ``a + b = 1e6`` they leave ~1e-9 of noise
per distinct ``x`` (and at 1e12 ~1e-2), enough to fake a rise of the likelihood along the ridge
below.

The ridge (issue 13). When the data show no spread in customers' dropout probabilities the
likelihood has no finite maximum: it keeps rising as ``a, b → ∞`` with ``b/a`` fixed, the Beta
collapsing to the point ``p = a/(a + b)``. The apparel data's 40-week split (CLVTools) is such a
case. The supremum is the likelihood of the limit model, where every customer drops out after a
purchase with the same probability ``p`` (:class:`BetaGeoLimitLikelihood`, a three-parameter
problem with a finite maximum). :func:`fit` compares the two, as :func:`.gamma_gamma_likelihood.fit`
does, and reports status :data:`.mle.RIDGE` with the limit at ``a + b =`` :data:`RIDGE_SIZE`
when the finite optimum does not beat it by :data:`.mle.RIDGE_GAIN`.

Static covariates (issue 14): :class:`BetaGeoCovariateLikelihood` and :func:`fit_covariates`, the
model of Fader & Hardie (2007), "Incorporating time-invariant covariates into the Pareto/NBD and
BG/NBD models", in R CLVTools 0.12's parameterisation (``α_i = α e^(−γ_transᵀz)``,
``a_i = a e^(γ_lifeᵀz)``, ``b_i = b e^(γ_lifeᵀz)``): equation (6) at each customer's parameters, the
gradient by the chain rule, the x-only terms pooled per distinct ``(x, z)``. Its ridge is a
profile's ``a_i + b_i → ∞`` (the apparel data's 104-week split with Gender and Channel), reported
as the limit in the same way (:func:`fit_covariates`).
"""

from __future__ import annotations

import time
import warnings
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.special import digamma, expit, gammaln, log_expit

from clvmodel.errors import ClvError, ConvergenceFailure
from clvmodel.models import mle
from clvmodel.models.gamma_gamma_likelihood import _digamma_step, _log_beta

__all__ = [
    "PARAMS",
    "RIDGE_SIZE",
    "BetaGeoLikelihood",
    "BetaGeoCovariateLikelihood",
    "BetaGeoLimitLikelihood",
    "COVARIATE_MODEL",
    "LimitFit",
    "RIDGE_CONCENTRATION",
    "covariate_params",
    "fit",
    "fit_covariates",
    "limit_fit",
    "starts",
    "time_scale",
]

Vector = NDArray[np.float64]

#: Parameter order, as lifetimes' ``BetaGeoFitter.params_``.
PARAMS = ("r", "alpha", "a", "b")

#: ``a + b`` of the point reported on the ridge (``a = p · RIDGE_SIZE``). Far enough out that every
#: forecast equals the limit's (they differ by ~``x / (a + b)`` relative: 5e-11 for x = 50,
#: measured against the limit's closed form), within the range where the series of ``A2`` are
#: checked (1e12, tests of :mod:`.gamma_gamma_likelihood`), and fixed, so the saved model does not
#: depend on where an optimiser stopped (as :data:`.gamma_gamma_likelihood.RIDGE_Q`).
RIDGE_SIZE = 1e12


def _dot(u: Vector, v: Vector) -> float:
    """Σ u v over rows without BLAS: OpenBLAS's threaded ``ddot`` stalls for ~5 ms a call when the
    other core is busy (measured: 0.10 s against 0.03 s per likelihood call at 664k rows)."""
    return float(np.einsum("i,i->", u, v))


def time_scale(T: NDArray[Any]) -> float:
    """lifetimes' ``_scale_time``: the factor that makes the longest customer age 1.

    lifetimes fits in this rescaled time (only ``alpha`` depends on it); fitting in the same time
    reproduces its optimiser's path and hence its estimates to rounding.
    """
    return 1.0 / float(np.max(T))


def _softplus_share(d: Vector) -> tuple[Vector, Vector]:
    """``ln(1 + e^d)`` and ``e^d/(1 + e^d)`` per row from one ``exp(−|d|)`` (no overflow for any d).

    scipy's ``log_expit`` and ``expit`` cost 30 and 10 times numpy's ``exp`` per element (measured at
    664,000 rows). Here, with ``e = exp(−|d|)`` and ``q = 1/(1 + e)`` (in [1/2, 1]):
    ``ln(1 + e^d) = max(d, 0) − ln q`` (``ln`` of a number near 1: absolute error ~1e-16, and numpy's
    ``log`` is vectorised where ``log1p`` is not) and the share is ``q`` or ``e q``. ``d = −∞`` (a
    row without an A4 term) gives 0 and 0.
    """
    e = np.abs(d)
    np.negative(e, out=e)
    np.exp(e, out=e)
    q = e + 1.0
    np.reciprocal(q, out=q)
    softplus = np.log(q)
    np.subtract(np.maximum(d, 0.0), softplus, out=softplus)
    e *= q
    share = np.where(d >= 0.0, q, e)
    return softplus, share


class BetaGeoLikelihood:
    """The mean negative BG/NBD log-likelihood over weighted rows and its gradient.

    Calling it with log-parameters ``θ = ln(r, α, a, b)`` returns
    ``(−Σ w ln L / Σ w, ∂/∂θ of that)``, the same function as lifetimes'
    ``BetaGeoFitter._negative_log_likelihood(θ, x, t_x, T, w, 0)``.

    Pooled (issue 16, as first done for MBG/NBD): the terms of ``x`` alone (lnΓ, ψ, ``A2``,
    ``ln a − ln(b + x − 1)``) are evaluated once per distinct ``x``, ``ln(α + T)`` and ``1/(α + T)``
    once per distinct ``T``, ``ln(α + t_x)`` and ``1/(α + t_x)`` once per distinct ``t_x`` (178, 365
    and 730 of them for the 664,113 distinct rows of a million benchmark customers) and gathered by
    index; ``Σ w A3`` is summed per distinct ``T``. Each row then costs two gathers, one ``exp``
    (:func:`_softplus_share`) and one ``log`` for ``ln(1 + e^d)`` and the share of ``d = A4 − A3``.
    The rows are kept in the order of ``x``, so per-``x`` sums are sums over contiguous runs
    (``np.add.reduceat``, cheaper than ``bincount``).

    :class:`.mbgnbd_likelihood.ModifiedBetaGeoLikelihood` is the same function with one more
    dropout opportunity per customer (:attr:`extra_opportunity`); the ``a, b → ∞`` limit
    (:class:`BetaGeoLimitLikelihood`) shares the rate part (:meth:`_rows`).

    Parameters
    ----------
    frequency, recency, T
        ``x, t_x, T`` per row (any time unit; ``alpha`` is in that unit).
    weights
        Customers per row (collapsed identical rows).
    """

    #: Dropout opportunities besides one after each repeat purchase: 0 for BG/NBD (equation (6): a
    #: one-time buyer is alive, no A4 term), 1 for MBG/NBD (also right after the first purchase).
    extra_opportunity = 0

    def __init__(self, frequency: NDArray[Any], recency: NDArray[Any], T: NDArray[Any], weights: NDArray[Any]) -> None:
        columns = [np.asarray(v, dtype=float) for v in (frequency, recency, T, weights)]
        if np.any(np.diff(columns[0]) < 0):  # collapsed rows come sorted by x (models.base.collapse)
            order = np.argsort(columns[0], kind="stable")
            columns = [v[order] for v in columns]
        x, self.recency, self.T, self.weights = columns
        self.x = x
        self.total_weight = float(self.weights.sum())
        self.weighted_x = self.weights * x
        self.x_values, self.x_index = np.unique(x, return_inverse=True)
        self.weight_per_x = np.bincount(self.x_index, weights=self.weights, minlength=len(self.x_values))
        self.x_counts = np.bincount(self.x_index, minlength=len(self.x_values))
        self.x_runs = np.concatenate([[0], np.cumsum(self.x_counts)[:-1]]).astype(np.intp)
        #: Dropout opportunities per distinct x, and which x have an A4 term (BG/NBD: x > 0).
        self.opportunities = self.x_values + self.extra_opportunity
        self.repeat = self.opportunities > 0
        self.T_index, self.T_values = pd.factorize(self.T, sort=True)
        self.tx_index, self.tx_values = pd.factorize(self.recency, sort=True)
        self.T_values, self.tx_values = np.asarray(self.T_values, dtype=float), np.asarray(self.tx_values, dtype=float)
        self.weight_per_T = np.bincount(self.T_index, weights=self.weights, minlength=len(self.T_values))
        self.weighted_x_per_T = np.bincount(self.T_index, weights=self.weighted_x, minlength=len(self.T_values))

    def __call__(self, log_params: Vector) -> tuple[float, Vector]:
        """Mean negative log-likelihood and its gradient at ``θ = ln(r, α, a, b)``.

        ∂/∂r = ψ(r + x) − ψ(r) + ln α − ln(α + T) + s [ln(α + T) − ln(α + t_x)]
        ∂/∂α = r/α − (r + x)/(α + T) + s (r + x) [1/(α + T) − 1/(α + t_x)]
        ∂/∂a = ψ(a + b) − ψ(a + b + m) + s/a
        ∂/∂b = ψ(a + b) + ψ(b + m) − ψ(b) − ψ(a + b + m) − s/(b + m − 1)

        with ``s`` the share of the A4 term and ``m`` the dropout opportunities (``x`` for BG/NBD).
        """
        r, alpha, a, b = np.exp(np.asarray(log_params, dtype=float))
        value, ws_per_x, d_r, d_alpha = self._rows(r, alpha, self._a4_constant(a, b), self._a2(a, b))
        m, per_x = self.opportunities, self.weight_per_x
        # ψ(a + b + m) − ψ(a + b) and ψ(b + m) − ψ(b) as steps: no cancellation when a + b is large.
        total_step = _digamma_step(a + b, m)
        d_a = -_dot(per_x, total_step) + ws_per_x.sum() / a
        inv_b = np.where(self.repeat, 1.0 / np.where(self.repeat, b + m - 1, 1.0), 0.0)
        d_b = _dot(per_x, _digamma_step(b, m) - total_step) - _dot(ws_per_x, inv_b)
        gradient = np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
        return -value / self.total_weight, -gradient / self.total_weight

    def log_likelihood(self, log_params: Vector) -> float:
        """Total (weighted) log-likelihood Σ w ln L at ``θ``, in the rows' time unit."""
        r, alpha, a, b = np.exp(np.asarray(log_params, dtype=float))
        return self._rows(r, alpha, self._a4_constant(a, b), self._a2(a, b), gradient=False)[0]

    def _a4_constant(self, a: float, b: float) -> Vector:
        """ln a − ln(b + m − 1) per distinct x; −∞ where there is no A4 term (BG/NBD: x = 0)."""
        with np.errstate(divide="ignore"):
            inner = np.where(self.repeat, b + self.opportunities - 1, 1.0)
            return np.where(self.repeat, np.log(a) - np.log(inner), -np.inf)

    def _a2(self, a: float, b: float) -> Vector:
        """A2 per distinct x: ``ln B(m, a + b) − ln B(m, b)``, 0 where m = 0 (see the module docstring)."""
        out = np.zeros(len(self.x_values))
        m = self.opportunities[self.repeat]
        out[self.repeat] = _log_beta(m, a + b) - _log_beta(m, b)
        return out

    def _pooled(self, r: float, alpha: float, constant: Vector) -> tuple[Vector, Vector, Vector]:
        """``ln(α + T)`` per distinct T, ``ln((α + T)/(α + t_x))`` and ``d = A4 − A3`` per row.

        ``constant`` is A4's term of x alone per distinct x (−∞: no A4 term).
        """
        log_T = np.log(alpha + self.T_values)
        span = log_T[self.T_index]
        span -= np.log(alpha + self.tx_values)[self.tx_index]
        d = self.x + r
        d *= span
        d += np.repeat(constant, self.x_counts)
        return log_T, span, d

    def _rows(self, r: float, alpha: float, constant: Vector, a2: Vector, *, gradient: bool = True) -> tuple[Any, ...]:
        """Σ w ln L given A4's constant and ``a2`` per distinct x; with ``gradient``, also Σ w s per
        distinct x and ∂ Σ w ln L / ∂r, ∂/∂α (the rate part, the same for every model here).

        Σ w ln L = Σ_x W_x (A1 + A2) + Σ_T (−(r W_T + Σ w x) ln(α + T)) + Σ w ln(1 + e^d).
        """
        log_T, span, d = self._pooled(r, alpha, constant)
        xs, per_x, n = self.x_values, self.weight_per_x, self.total_weight
        a12 = gammaln(r + xs) - gammaln(r) + r * np.log(alpha) + a2
        a3 = -_dot(r * self.weight_per_T + self.weighted_x_per_T, log_T)
        softplus, ws = _softplus_share(d)  # ln(1 + e^d) and s, the share of the A4 term
        value = float(_dot(per_x, a12) + a3 + _dot(self.weights, softplus))
        if not gradient:
            return (value,)
        ws *= self.weights
        runs = self.x_runs
        ws_per_x = np.add.reduceat(ws, runs) if len(ws) else np.zeros(len(xs))
        inv_T = 1.0 / (alpha + self.T_values)
        # Σ w s (r + x) [1/(α + T) − 1/(α + t_x)]: gathered per row, summed per x (contiguous runs;
        # two gathers cost less than two bincounts).
        ws_gap = inv_T[self.T_index]
        ws_gap -= (1.0 / (alpha + self.tx_values))[self.tx_index]
        ws_gap *= ws
        gap = _dot(np.add.reduceat(ws_gap, runs), r + xs) if len(ws) else 0.0
        d_r = (_dot(per_x, digamma(r + xs) - digamma(r)) + n * np.log(alpha) - _dot(self.weight_per_T, log_T)
               + _dot(ws, span))
        d_alpha = n * r / alpha - _dot(r * self.weight_per_T + self.weighted_x_per_T, inv_T) + gap
        return value, ws_per_x, d_r, d_alpha


class BetaGeoLimitLikelihood(BetaGeoLikelihood):
    """The ``a, b → ∞`` limit of equation (6) with ``a/(a + b) → p``: one dropout probability for all.

    As the Beta(a, b) mixing distribution collapses to the point ``p``,
    ``B(a, b + x)/B(a, b) → (1 − p)^x`` and ``B(a + 1, b + x − 1)/B(a, b) → p (1 − p)^(x−1)``, so
    ``A2 → x ln(1 − p)`` and ``ln a − ln(b + x − 1) → ln p − ln(1 − p)`` in equation (6)::

        ln L∞(r, α, p) = A1 + x ln(1 − p) + A3 + ln(1 + δ(x > 0) exp(logit p + (r + x) ln((α + T)/(α + t_x))))

    Called with ``θ = (ln r, ln α, logit p)`` it returns ``(−Σ w ln L∞ / Σ w, ∂/∂θ of that)``; the
    derivatives in ``r`` and ``α`` are those of equation (6), and
    ``∂ ln L∞ / ∂ logit p = −x p + s`` with ``s`` the share of the A4 term.
    """

    def __call__(self, log_params: Vector) -> tuple[float, Vector]:
        """Mean negative limit log-likelihood and its gradient at ``θ = (ln r, ln α, logit p)``."""
        r, alpha, logit = self._limit_params(log_params)
        value, ws_per_x, d_r, d_alpha = self._rows(r, alpha, *self._limit_terms(logit))
        d_logit = -expit(logit) * float(self.weighted_x.sum()) + float(ws_per_x.sum())
        gradient = np.array([d_r * r, d_alpha * alpha, d_logit])
        return -value / self.total_weight, -gradient / self.total_weight

    def log_likelihood(self, log_params: Vector) -> float:
        """Total (weighted) limit log-likelihood Σ w ln L∞ at ``θ = (ln r, ln α, logit p)``."""
        r, alpha, logit = self._limit_params(log_params)
        return self._rows(r, alpha, *self._limit_terms(logit), gradient=False)[0]

    @staticmethod
    def _limit_params(log_params: Vector) -> tuple[float, float, float]:
        log_r, log_alpha, logit = (float(v) for v in log_params)
        return float(np.exp(log_r)), float(np.exp(log_alpha)), logit

    def _limit_terms(self, logit: float) -> tuple[Vector, Vector]:
        """A4's constant ``ln p − ln(1 − p)`` (−∞ where x = 0: no A4 term) and ``A2 = x ln(1 − p)`` per distinct x."""
        return np.where(self.repeat, logit, -np.inf), self.x_values * log_expit(-logit)


def _check_rows(x: Vector, tx: Vector, T: Vector, weights: Vector) -> None:
    """lifetimes' ``_check_inputs`` for the purchase models, as one-line errors counting customers."""
    mle.refuse_rows("bgnbd", mle.rfm_problems(x, tx, T), weights)


def _log_inverse_rate(frequency: NDArray[Any], T: NDArray[Any], weights: NDArray[Any]) -> float:
    """``ln(Σ w T / Σ w x)``: ln α of a purchase rate ``1/α`` equal to the observed repeat rate (0 if none)."""
    w = np.asarray(weights, dtype=float)
    rate = float(_dot(w, np.asarray(frequency, dtype=float)) / _dot(w, np.asarray(T, dtype=float)))
    return -np.log(rate) if np.isfinite(rate) and rate > 0 else 0.0


def starts(frequency: NDArray[Any], T: NDArray[Any], weights: NDArray[Any]) -> list[Vector]:
    """The fixed starting log-parameters ``ln(r, α, a, b)`` (α in the time of ``T``), in order.

    Shared by BG/NBD and MBG/NBD (:mod:`.lifetimes_adapter`), whose parameters mean the same.

    1. lifetimes' start, 0.1 for each log-parameter: first, so that where it converges the
       estimates are lifetimes' to rounding (CDNOW, a million customers).
    2. and 3. From the data: ``r = 1`` and ``α`` such that the mean purchase rate ``r/α`` is the
       observed repeat rate ``Σ w x / Σ w T``; dropout probabilities with mean 1/2 (``a = b = 1``)
       and 1/11 (``a = 1, b = 10``).
    """
    log_alpha = _log_inverse_rate(frequency, T, weights)
    return [
        np.full(4, mle.LIFETIMES_START),
        np.array([0.0, log_alpha, 0.0, 0.0]),
        np.array([0.0, log_alpha, 0.0, np.log(10.0)]),
    ]


class LimitFit(NamedTuple):
    """The maximum of the ``a, b → ∞`` limit (:class:`BetaGeoLimitLikelihood`), in the objective's time."""

    r: float
    alpha: float
    #: The common dropout probability ``a/(a + b)``.
    p: float
    #: Total log-likelihood Σ w ln L∞ (in the objective's time).
    log_likelihood: float
    #: Covariance of ``(ln r, ln α, logit p)``: inverse Hessian of the total negative log-likelihood.
    covariance: Vector


def limit_fit(objective: BetaGeoLikelihood, *, tol: float = 1e-10) -> LimitFit | None:
    """Maximum likelihood of the ridge's limit, where every customer has one dropout probability.

    BFGS on :class:`BetaGeoLimitLikelihood` from fixed starts (lifetimes' 0.1 for ``ln r, ln α``
    with ``p = 1/2``, then ``r = 1`` at the data's purchase rate as in :func:`starts` with
    ``logit p = −2``, ``p ≈ 0.12``), then Newton steps
    (:func:`.mle.refine`), so the limit is the same on every machine to ~1e-12.

    Returns
    -------
    LimitFit or None
        ``None`` when the limit has no optimum the data identify either (one customer: ``p → 0``;
        the standard error of a log-parameter or of logit p above :data:`.mle.MAX_LOG_SE`).
    """
    limit = BetaGeoLimitLikelihood(objective.x, objective.recency, objective.T, objective.weights)
    log_alpha = _log_inverse_rate(objective.x, objective.T, objective.weights)
    tried = [np.array([mle.LIFETIMES_START, mle.LIFETIMES_START, 0.0]), np.array([0.0, log_alpha, -2.0])]
    at = mle.limit_stop(limit, tried, tol=tol, weight=limit.total_weight)
    if at is None:
        return None
    with np.errstate(all="ignore"):
        hessian = mle.central_hessian(lambda theta: limit(theta)[1], at) * limit.total_weight
    if not np.all(mle.log_standard_errors(hessian) <= mle.MAX_LOG_SE):
        return None  # the limit runs off too (p -> 0 or r, α -> ∞): no finite supremum to report
    covariance = np.linalg.inv(hessian)
    return LimitFit(float(np.exp(at[0])), float(np.exp(at[1])), float(expit(at[2])),
                    limit.log_likelihood(at), covariance)


def fit(columns: dict[str, NDArray[Any]], weights: NDArray[Any], *, initial_params: Any = None,
        tol: float = mle.LIFETIMES_TOL, **options: Any) -> mle.FitResult:
    """Maximum likelihood BG/NBD on weighted rows, equal to lifetimes' ``BetaGeoFitter.fit``.

    Same objective (the mean over weighted rows), time rescaling (:func:`time_scale`), first start
    (0.1 for each log-parameter), method (BFGS) and tolerance as lifetimes, so where that start
    converges the estimates equal its estimates to rounding (CDNOW and 1M customers: ~1e-14
    relative). The two data-derived starts (:func:`starts`) follow only when that start does not
    stop at a stationary point with every parameter identified and ``a + b`` within
    :data:`RIDGE_CONCENTRATION` (:func:`.mle.search_first`; issue 16: each start costs as much as
    the whole fit otherwise, 22 of the 69 evaluations at a million customers); the best stationary
    stop is kept (:func:`.mle.best_stop`).

    When the kept stop is stationary but leaves ``a`` and ``b`` unidentified (standard errors of
    ``ln a`` or ``ln b`` above :data:`.mle.MAX_LOG_SE`: a stop out on a ridge), the likelihood is
    compared with its supremum along the ``a, b → ∞`` ridge (:func:`limit_fit`): if no stop beats
    it by :data:`.mle.RIDGE_GAIN`, the data have no finite MLE and the fit reports the limit
    (status :data:`.mle.RIDGE`, with a warning that says so).

    Parameters
    ----------
    columns
        ``frequency, recency, T`` per row.
    weights
        Customers per row.
    initial_params, tol, options
        As lifetimes' ``fit``: the first starting log-parameters (in rescaled time; the
        data-derived starts still follow), BFGS ``gtol``, scipy ``minimize`` options (``maxiter``
        per start, ...); and ``time_budget`` (seconds for all starts, :func:`.mle.search`).

    Returns
    -------
    mle.FitResult
        Estimates (``alpha`` in the rows' time unit), the total log-likelihood Σ w ln L in that
        unit, standard errors from a central-difference Hessian of the analytic gradient. On the
        ridge: ``r, α`` and the dropout probability ``p`` of the limit, ``a = p ·``
        :data:`RIDGE_SIZE`, ``b = (1 − p) ·`` :data:`RIDGE_SIZE`, ``limit`` holding ``r``,
        ``alpha`` and ``dropout_probability``, standard errors of ``a`` and ``b`` NaN (not
        identified) and the covariance of the limit with ``ln(a + b)`` held fixed.

    Raises
    ------
    ConvergenceFailure
        No start ended at a stationary point and the limit does not explain why (scipy's words for
        each start), or the stop is not an optimum (:func:`.mle.fit_result`).
    """
    x, tx, T = (np.asarray(columns[c], dtype=float) for c in ("frequency", "recency", "T"))
    _check_rows(x, tx, T, np.asarray(weights, dtype=float))
    scale = time_scale(T)
    objective = BetaGeoLikelihood(x, tx * scale, T * scale, weights)
    n = objective.total_weight
    planned = starts(objective.x, objective.T, objective.weights)
    if initial_params is not None:
        planned[0] = np.asarray(initial_params, dtype=float)
    hessians: dict[int, Vector] = {}

    def hessian_at(stop: Any) -> Vector:
        if id(stop) not in hessians:
            with np.errstate(all="ignore"):
                hessians[id(stop)] = mle.central_hessian(lambda theta: objective(theta)[1], stop.x) * n
        return hessians[id(stop)]

    limits: list[LimitFit | None] = []

    def ridge_limit() -> LimitFit | None:
        if not limits:
            limits.append(limit_fit(objective))
        return limits[0]

    def identified(stop: Any) -> bool:
        # The first start suffices where it stops at a stationary point away from the ridge
        # (a + b within RIDGE_CONCENTRATION) with every parameter identified, and the ridge's
        # limit does not beat it: then no start can do better by climbing towards the ridge, and
        # the other starts found no other optimum on CDNOW, the apparel splits or a million
        # benchmark customers, while each costs as much as the whole fit (issue 16). Otherwise
        # every start runs and the best stop is kept. (Without the limit check, 8 customers of a
        # reviewer's simulation kept a local optimum 0.10 below the ridge's supremum that the
        # all-starts fit reports: tests/models/test_bgnbd.py.)
        # The limit costs more than the fit it checks (57 of the 87 likelihood calls at the 1 M
        # benchmark file), but no cheaper exact test is known: the reviewer's stop has a + b =
        # 0.43, so no rule on the stop's a + b can replace it, and the one global bound at hand,
        # Jensen's inequality over the individual likelihood f_i(λ, p) (FHL 2005, eq. 3),
        # sup ln L∞ − ln L(θ*) ≤ n ln max_{λ,p} (1/n) Σ w_i f_i(λ, p) / L_i(θ*), exceeds 20,000 on
        # CDNOW, where the gap it must show is 21.2 (−9582.43 against the limit's −9603.61).
        if not mle.stationary(stop) or np.exp(stop.x[2]) + np.exp(stop.x[3]) > RIDGE_CONCENTRATION:
            return False
        if not bool(np.all(mle.log_standard_errors(hessian_at(stop)) <= mle.MAX_LOG_SE)):
            return False
        limit = ridge_limit()
        return limit is None or -stop.fun * n >= limit.log_likelihood + mle.RIDGE_GAIN

    stops = mle.search_first(objective, planned, identified, tol=tol, **options)
    optimum = mle.best_stop(stops, n) or next((s for s in stops if s.success and np.isfinite(s.fun)), None)
    hessian = None if optimum is None else hessian_at(optimum)
    if optimum is not None and mle.stationary(optimum) and not bool(
        np.all(mle.log_standard_errors(hessian)[2:] <= mle.MAX_LOG_SE)
    ):
        # A stationary stop that leaves a and b unidentified is somewhere out on the ridge. Only
        # stationary stops are evidence: one cut short (maxiter, a loose tol) says nothing about
        # whether a finite optimum beats the limit. Every start's highest point must stay below
        # it, so a start that climbed above the limit (towards a finite optimum) is not overruled.
        limit = ridge_limit()
        reached = max(-s.fun * n for s in stops if np.isfinite(s.fun))
        if limit is not None and reached < limit.log_likelihood + mle.RIDGE_GAIN:
            return _ridge_result(objective, limit, scale)
    if optimum is None:
        raise mle.not_converged("bgnbd", mle.failure_words(stops, of=len(planned)), starts=len(planned))
    log_params = optimum.x.copy()
    log_params[1] -= np.log(scale)  # α in rescaled time -> the rows' unit
    params = dict(zip(PARAMS, (float(v) for v in np.exp(log_params))))
    # ln L in the data's unit: rescaling time by s multiplies each customer's likelihood by s^(-x)
    # (x purchase-time densities), so Σ w ln L gains Σ w x ln s.
    log_likelihood = -optimum.fun * n + float(objective.weighted_x.sum()) * np.log(scale)
    return mle.fit_result("bgnbd", params, log_likelihood, optimum.jac, hessian, n)


def _ridge_result(objective: BetaGeoLikelihood, limit: LimitFit, scale: float) -> mle.FitResult:
    """The fit reported on the ridge: the limit's ``r, α, p`` at ``a + b =`` :data:`RIDGE_SIZE`.

    The log-likelihood is that of the reported point (the limit's supremum to ~n x / RIDGE_SIZE),
    so the document's parameters and likelihood agree. The covariance is the limit's, mapped to
    ``(ln r, ln α, ln a, ln b)`` with ``ln(a + b)`` fixed (``ln a = ln(a + b) + ln p``,
    ``ln b = ln(a + b) + ln(1 − p)``, so ``∂/∂ logit p`` is ``1 − p`` and ``−p``).
    """
    p = limit.p
    a, b = p * RIDGE_SIZE, (1.0 - p) * RIDGE_SIZE
    at = np.log([limit.r, limit.alpha, a, b])
    log_likelihood = objective.log_likelihood(at) + float(objective.weighted_x.sum()) * np.log(scale)
    params = {"r": limit.r, "alpha": limit.alpha / scale, "a": a, "b": b}
    jacobian = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0 - p], [0.0, 0.0, -p]])
    covariance = jacobian @ limit.covariance @ jacobian.T
    log_se = np.sqrt(np.abs(np.diag(limit.covariance)[:2]))
    standard_errors = {"r": limit.r * float(log_se[0]), "alpha": params["alpha"] * float(log_se[1]),
                       "a": float("nan"), "b": float("nan")}
    identified = {"r": limit.r, "alpha": params["alpha"], "dropout_probability": p}
    warnings.warn(
        f"bgnbd: these data have no finite maximum-likelihood estimate: the likelihood rises as a, b -> inf with "
        f"b/a = {b / a:.4g} fixed (no spread in dropout probabilities left to estimate); the fit is that limit, "
        f"every customer dropping out after a purchase with probability {p:.4g} (status 'ridge', a + b = {RIDGE_SIZE:g})",
        UserWarning,
        stacklevel=4,
    )
    return mle.FitResult(params, standard_errors, float(log_likelihood), int(objective.total_weight),
                         covariance.tolist(), mle.RIDGE, identified)


# --- static covariates (issue 14) ----------------------------------------------------------------


def _group_rows(matrix: NDArray[Any]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Dense codes of the distinct rows of ``matrix`` (n × k) in lexicographic order, and one row index per code.

    The column-by-column ``pd.factorize`` folding of :func:`.base.collapse` (np.unique(axis=0)
    sorts rows as byte strings: ~4 s at a million rows).
    """
    n, k = matrix.shape
    key = np.zeros(n, dtype=np.intp)
    for j in range(k):
        codes, uniques = pd.factorize(matrix[:, j], sort=True, use_na_sentinel=False)
        key = codes if j == 0 else pd.factorize(key * len(uniques) + codes, sort=True)[0]
    groups = int(key.max()) + 1 if n else 0
    representative = np.empty(groups, dtype=np.intp)
    representative[key] = np.arange(n)
    return np.asarray(key, dtype=np.intp), representative


class BetaGeoCovariateLikelihood:
    """The mean negative BG/NBD log-likelihood with static covariates, and its analytic gradient.

    Fader & Hardie (2007), "Incorporating time-invariant covariates into the Pareto/NBD and BG/NBD
    models", in the parameterisation of R CLVTools 0.12 (``src/bgnbd.cpp``): customer ``i`` with
    covariates ``z_i`` (the same design columns in both processes) has

        α_i = α · exp(−γ_transᵀ z_i),   a_i = a · exp(γ_lifeᵀ z_i),   b_i = b · exp(γ_lifeᵀ z_i)

    and ``ln L_i`` is equation (6) at ``(r, α_i, a_i, b_i)``. Calling it with
    ``θ = (ln r, ln α, ln a, ln b, γ_life (k), γ_trans (k))`` returns ``(−Σ w ln L / Σ w, ∂/∂θ of that)``.

    The gradient is the chain rule on the per-row scores of :class:`BetaGeoLikelihood` in the
    individual log-parameters (``g^α = ∂ ln L_i / ∂ ln α_i`` etc., at the row's own ``α_i, a_i, b_i``)::

        ∂/∂ ln α = Σ w g^α      ∂/∂γ_trans = −Σ w g^α z
        ∂/∂ ln a = Σ w g^a      ∂/∂ ln b = Σ w g^b      ∂/∂γ_life = Σ w (g^a + g^b) z

    Rows share ``α_i`` and ``a_i, b_i`` by *profile* (distinct ``z``): ``α_i`` is evaluated once per
    profile, the terms that depend on ``x`` and ``a_i, b_i`` only (``A2`` and ``ln a_i − ln(b_i + x − 1)``,
    their ψ steps) once per distinct ``(x, profile)``, and ``lnΓ(r + x)``, ``ψ(r + x)`` once per
    distinct ``x``; per-profile sums are mapped to ``γ`` by the (profiles × k) design. ``A2`` and its
    ψ differences use the large-argument series of :class:`BetaGeoLikelihood`, so the likelihood
    stays exact where a profile's ``a_i + b_i`` runs off (the ridge of :func:`fit_covariates`).

    Parameters
    ----------
    frequency, recency, T
        ``x, t_x, T`` per row (any time unit; ``alpha`` is in that unit).
    weights
        Customers per row.
    design
        ``z`` per row, shape (rows, k), k ≥ 1 (numeric as given, categorical as 0/1 dummies).
    """

    def __init__(self, frequency: NDArray[Any], recency: NDArray[Any], T: NDArray[Any], weights: NDArray[Any],
                 design: NDArray[Any]) -> None:
        x = np.asarray(frequency, dtype=float)
        self.x = x
        self.recency = np.asarray(recency, dtype=float)
        self.T = np.asarray(T, dtype=float)
        self.weights = np.asarray(weights, dtype=float)
        self.total_weight = float(self.weights.sum())
        self.weighted_x = self.weights * x
        design = np.asarray(design, dtype=float).reshape(len(x), -1)
        self.k = design.shape[1]
        # Profiles: the distinct rows of the design (a handful for categorical covariates).
        self.profile_index, representative = _group_rows(design)
        self.profiles = design[representative]
        n_profiles = len(self.profiles)
        self.weight_per_profile = np.bincount(self.profile_index, weights=self.weights, minlength=n_profiles)
        # Distinct x (lnΓ(r + x), ψ(r + x)) and distinct (x, profile) (A2, A4's constant).
        self.x_values, x_index = np.unique(x, return_inverse=True)
        x_index = x_index.ravel()
        self.weight_per_x = np.bincount(x_index, weights=self.weights, minlength=len(self.x_values))
        pair_key, self.pair_index = np.unique(x_index * n_profiles + self.profile_index, return_inverse=True)
        self.pair_index = self.pair_index.ravel()
        self.pair_x = self.x_values[pair_key // n_profiles]
        self.pair_profile = pair_key % n_profiles
        self.weight_per_pair = np.bincount(self.pair_index, weights=self.weights, minlength=len(pair_key))
        self.pair_repeat = self.pair_x > 0

    def _unpack(self, theta: Vector) -> tuple[float, Vector, Vector, Vector, Vector]:
        """``r`` and per profile ``ln α_p``, ``α_p``, ``a_p``, ``b_p``."""
        theta = np.asarray(theta, dtype=float)
        k = self.k
        r = float(np.exp(theta[0]))
        life = self.profiles @ theta[4:4 + k]
        log_alpha = theta[1] - self.profiles @ theta[4 + k:4 + 2 * k]
        return r, log_alpha, np.exp(log_alpha), np.exp(theta[2] + life), np.exp(theta[3] + life)

    def _pair_terms(self, a_p: Vector, b_p: Vector) -> tuple[Vector, Vector, Vector, Vector]:
        """Per distinct (x, profile): ``x``, ``a_i``, ``b_i`` and ``ln a_i − ln(b_i + x − 1)`` (−∞ for x = 0)."""
        xk, a, b = self.pair_x, a_p[self.pair_profile], b_p[self.pair_profile]
        with np.errstate(divide="ignore"):
            c4 = np.where(self.pair_repeat, np.log(a) - np.log(np.where(self.pair_repeat, b + xk - 1, 1.0)), -np.inf)
        return xk, a, b, c4

    def _a2(self, xk: Vector, a: Vector, b: Vector) -> Vector:
        """A2 per distinct (x, profile): ``ln B(x, a + b) − ln B(x, b)``, 0 where x = 0."""
        out = np.zeros(len(xk))
        rep = self.pair_repeat
        out[rep] = _log_beta(xk[rep], a[rep] + b[rep]) - _log_beta(xk[rep], b[rep])
        return out

    def _rows(self, theta: Vector) -> tuple:
        r, log_alpha_p, alpha_p, a_p, b_p = self._unpack(theta)
        xk, a, b, c4 = self._pair_terms(a_p, b_p)
        alpha = alpha_p[self.profile_index]
        log_total = np.log(alpha + self.T)
        log_last = np.log(alpha + self.recency)
        d = (r + self.x) * (log_total - log_last) + c4[self.pair_index]
        return r, log_alpha_p, alpha, xk, a, b, log_total, log_last, d

    def _value(self, r: float, log_alpha_p: Vector, xk: Vector, a: Vector, b: Vector, log_total: Vector,
               d: Vector) -> float:
        """Σ w ln L = Σ_x W_x (lnΓ(r+x) − lnΓ(r)) + r Σ_p W_p ln α_p + Σ_(x,p) W A2 + Σ w [A3 + ln(1 + e^d)]."""
        xs = self.x_values
        a1 = _dot(self.weight_per_x, gammaln(r + xs) - gammaln(r)) + r * _dot(self.weight_per_profile, log_alpha_p)
        a2 = _dot(self.weight_per_pair, self._a2(xk, a, b))
        a3 = -(r * _dot(self.weights, log_total) + _dot(self.weighted_x, log_total))
        return float(a1 + a2 + a3 + _dot(self.weights, np.logaddexp(0.0, d)))

    def log_likelihood(self, theta: Vector) -> float:
        """Total (weighted) log-likelihood Σ w ln L at ``θ``, in the rows' time unit."""
        r, log_alpha_p, _, xk, a, b, log_total, _, d = self._rows(theta)
        return self._value(r, log_alpha_p, xk, a, b, log_total, d)

    def __call__(self, theta: Vector) -> tuple[float, Vector]:
        """Mean negative log-likelihood and its gradient at ``θ``."""
        r, log_alpha_p, alpha, xk, a, b, log_total, log_last, d = self._rows(theta)
        value = self._value(r, log_alpha_p, xk, a, b, log_total, d)
        w, x, xs = self.weights, self.x, self.x_values
        ws = w * expit(d)  # w times the share of the A4 term, exp(A4) / (exp(A3) + exp(A4))
        # ln r: as BetaGeoLikelihood, with Σ w ln α_i pooled by profile.
        d_r = (_dot(self.weight_per_x, digamma(r + xs) - digamma(r)) + _dot(self.weight_per_profile, log_alpha_p)
               - _dot(w, log_total) + _dot(ws, log_total - log_last))
        # g^α = ∂ ln L_i / ∂ ln α_i = r − (r + x) α_i/(α_i + T) + s (r + x) α_i [1/(α_i + T) − 1/(α_i + t_x)].
        inv_total, inv_last = 1.0 / (alpha + self.T), 1.0 / (alpha + self.recency)
        rx_alpha = (r + x) * alpha
        g_alpha = r * w - w * rx_alpha * inv_total + ws * rx_alpha * (inv_total - inv_last)
        n_profiles = len(self.profiles)
        g_alpha_p = np.bincount(self.profile_index, weights=g_alpha, minlength=n_profiles)
        # g^a = a_i [ψ(a_i + b_i) − ψ(a_i + b_i + x)] + s;  g^b = b_i [ψ(b_i + x) − ψ(b_i) − (ψ(a_i + b_i + x)
        # − ψ(a_i + b_i))] − s b_i/(b_i + x − 1), summed per (x, profile) (ψ differences as steps).
        ws_pair = np.bincount(self.pair_index, weights=ws, minlength=len(xk))
        total_step = _digamma_step(a + b, xk)
        g_a = -self.weight_per_pair * a * total_step + ws_pair
        inv_b = np.where(self.pair_repeat, 1.0 / np.where(self.pair_repeat, b + xk - 1, 1.0), 0.0)
        g_b = self.weight_per_pair * b * (_digamma_step(b, xk) - total_step) - ws_pair * b * inv_b
        g_a_p = np.bincount(self.pair_profile, weights=g_a, minlength=n_profiles)
        g_b_p = np.bincount(self.pair_profile, weights=g_b, minlength=n_profiles)
        gradient = np.concatenate([
            [d_r * r, g_alpha_p.sum(), g_a_p.sum(), g_b_p.sum()],
            self.profiles.T @ (g_a_p + g_b_p),
            -(self.profiles.T @ g_alpha_p),
        ])
        return -value / self.total_weight, -gradient / self.total_weight

    def outer_product_of_scores(self, theta: Vector) -> Vector:
        """``Σ w g gᵀ`` over rows, ``g`` the row's score ``∂ ln L_i / ∂θ`` (BHHH's estimate of the information).

        One pass over the rows (about one likelihood call). :func:`fit_covariates` starts BFGS with
        its inverse as the inverse-Hessian estimate: on a million customers the two starts then
        take 9 and 17 evaluations instead of 69 and 73 (the identity's).
        """
        r, log_alpha_p, alpha, xk, a, b, log_total, log_last, d = self._rows(theta)
        share, x = expit(d), self.x
        x_index = np.searchsorted(self.x_values, x)
        score_r = r * ((digamma(r + self.x_values) - digamma(r))[x_index] + log_alpha_p[self.profile_index]
                       - log_total + share * (log_total - log_last))
        inv_total, inv_last = 1.0 / (alpha + self.T), 1.0 / (alpha + self.recency)
        rx_alpha = (r + x) * alpha
        score_alpha = r - rx_alpha * inv_total + share * rx_alpha * (inv_total - inv_last)
        total_step = _digamma_step(a + b, xk)
        inv_b = np.where(self.pair_repeat, 1.0 / np.where(self.pair_repeat, b + xk - 1, 1.0), 0.0)
        score_a = (-a * total_step)[self.pair_index] + share
        score_b = (b * (_digamma_step(b, xk) - total_step))[self.pair_index] - share * (b * inv_b)[self.pair_index]
        z = self.profiles[self.profile_index]
        scores = np.column_stack([score_r, score_alpha, score_a, score_b, (score_a + score_b)[:, None] * z,
                                  -score_alpha[:, None] * z])
        return (scores * self.weights[:, None]).T @ scores


#: Model name in the messages of :func:`fit_covariates` (its registry family, issue 14).
COVARIATE_MODEL = "bgnbd_cov"

#: A profile whose Beta concentration ``a_i + b_i`` exceeds this at the search's best stop is taken
#: as running off to a point mass (the Beta's standard deviation of the dropout probability is then
#: below ``0.5/√(1e4) = 0.005``). It only selects the candidates: the ridge is reported only when the
#: likelihood pushed further out along them (to :data:`RIDGE_SIZE`) is not beaten by any stop
#: (:func:`fit_covariates`). Stops on the apparel ridge sit at 1e8 .. 1e10; identified profiles at
#: 4 .. 20. :func:`fit` also runs its later starts whenever the first stop has ``a + b`` above
#: this, identified or not.
RIDGE_CONCENTRATION = 1e4


def covariate_params(design_columns: list[str]) -> tuple[str, ...]:
    """Parameter names of :func:`fit_covariates`: ``r, alpha, a, b``, ``life.<col>``..., ``trans.<col>``..."""
    return (*PARAMS, *(f"life.{c}" for c in design_columns), *(f"trans.{c}" for c in design_columns))


def fit_covariates(columns: dict[str, NDArray[Any]], weights: NDArray[Any], *, design_columns: list[str],
                   tol: float = mle.LIFETIMES_TOL, **options: Any) -> mle.FitResult:
    """Maximum likelihood BG/NBD with static covariates (:class:`BetaGeoCovariateLikelihood`), or its ridge.

    ``α_i = α·exp(−γ_transᵀz_i)``, ``a_i = a·exp(γ_lifeᵀz_i)``, ``b_i = b·exp(γ_lifeᵀz_i)`` (CLVTools
    0.12), the same design columns ``z`` in both processes. With ``design_columns=[]`` this is
    :func:`fit` itself (same code path, same result).

    BFGS in ``θ = (ln r, ln α, ln a, ln b, γ_life, γ_trans)`` (time rescaled as :func:`fit`) from two
    starts (:func:`.mle.search`, the better stationary stop kept by :func:`.mle.best_stop`):

    1. the no-covariate optimum (the best stationary stop of :func:`fit`'s own search on the same
       rows, without its Hessian and ridge check) with ``γ = 0``;
    2. CLVTools' start: ``r = 1, α = 3`` (in the rows' time unit), ``a = 1, b = 3``, every ``γ = 0.1``.

    The Hessian is taken by central differences of the analytic gradient; the covariance is over
    ``(ln r, ln α, ln a, ln b, γ_life, γ_trans)``; standard errors of ``r, α, a, b`` by the delta
    method (``θ · se(ln θ)``), of ``γ`` directly (as CLVTools' ``vcov``).

    **The ridge.** Life covariates scale ``a_i`` and ``b_i`` by the same factor, so every profile has
    the same mean dropout probability ``p = a/(a + b)``; ``γ_life`` only moves each profile's
    concentration ``a_i + b_i``. When the customers of some profiles show no spread in dropout
    probabilities, the likelihood rises without bound in their concentration: the MLE is at
    infinity (apparel, Gender and Channel: Channel-0 customers' Beta collapses to the point ``p``;
    CLVTools stops wherever its optimiser does, LL −5839.863, a 1223, b 9044). This is detected,
    not tuned away: when the best stop has profiles with ``a_i + b_i >`` :data:`RIDGE_CONCENTRATION`,
    the directions of ``(ln(a + b), γ_life)`` that move only those profiles (keeping the others'
    concentrations, ``p`` and the purchase process) are pushed until the least of them is at
    :data:`RIDGE_SIZE`, held there, and the other parameters are re-optimised (BFGS, then Newton
    steps, :func:`.mle.refine`). If no stop beats that point's likelihood by :data:`.mle.RIDGE_GAIN`,
    the fit reports it with status :data:`.mle.RIDGE`, a warning naming the profiles, and ``limit``
    = what the data still identify: every parameter the pushed directions do not move (always ``r``,
    ``alpha`` and every ``trans.<col>``; ``a``, ``b`` too when only ``γ_life`` moves, as when a
    non-baseline level runs off) and the common ``dropout_probability`` ``p``. Standard
    errors of the parameters those directions move are NaN; the covariance is the re-optimised
    problem's, with the pushed directions held fixed (zero there). So, as :func:`fit` on its ridge,
    the reported point, likelihood and forecasts (the limit's to ~``x/(a_i + b_i)``) do not depend
    on where an optimiser stopped, and nothing is made up: reporting the stop itself would be
    machine-dependent (apparel: a from 6e7 to 9e8 between the two starts), raising would throw
    away a fit whose purchase process and ``p`` are well identified. When the pushed point cannot
    be re-optimised to a stationary, identified point (several independent directions left
    flat, say), the fit fails with :func:`.mle.not_converged` and says so.

    Parameters
    ----------
    columns
        ``frequency, recency, T`` and every design column, per (collapsed) row.
    weights
        Customers per row.
    design_columns
        The encoded covariate columns, in order (``[]``: :func:`fit`).
    tol, options
        BFGS ``gtol`` and scipy/:func:`.mle.search` options (``maxiter`` per start; ``time_budget``:
        seconds for the no-covariate search and the two starts together).

    Returns
    -------
    mle.FitResult
        ``params`` in the order of :func:`covariate_params` (``alpha`` in the rows' time unit, at
        ``z = 0``), the total log-likelihood Σ w ln L in that unit.

    Raises
    ------
    ClvError
        Impossible RFM rows, or a missing or non-finite covariate value.
    ConvergenceFailure
        No start ended at a stationary point and no ridge explains why, or the ridge's point could
        not be re-optimised.
    """
    if not design_columns:
        return fit(columns, weights, tol=tol, **options)
    name = COVARIATE_MODEL
    w = np.asarray(weights, dtype=float)
    x, tx, T = (np.asarray(columns[c], dtype=float) for c in ("frequency", "recency", "T"))
    missing = [c for c in design_columns if c not in columns]
    if missing:
        raise ClvError(f"{name}: no covariate column {', '.join(map(repr, missing))} in the rows to fit")
    design = np.column_stack([np.asarray(columns[c], dtype=float) for c in design_columns])
    mle.refuse_rows(name, [*mle.rfm_problems(x, tx, T), (~np.all(np.isfinite(design), axis=1),
                                                         "a missing or infinite covariate value")], w)
    scale = time_scale(T)
    objective = BetaGeoCovariateLikelihood(x, tx * scale, T * scale, w, design)
    n = objective.total_weight
    k = len(design_columns)
    budget = options.pop("time_budget", None)
    deadline = None if budget is None else time.monotonic() + float(budget)
    planned = []
    plain = BetaGeoLikelihood(x, tx * scale, T * scale, w)
    plain_stops = mle.search(plain, starts(plain.x, plain.T, plain.weights), tol=tol, time_budget=budget, **options)
    plain_best = mle.best_stop(plain_stops, n)
    if plain_best is not None:
        planned.append(np.concatenate([plain_best.x, np.zeros(2 * k)]))
    planned.append(np.concatenate([[0.0, np.log(3.0 * scale), 0.0, np.log(3.0)], np.full(2 * k, 0.1)]))
    left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
    stops = _preconditioned_search(objective, planned, tol=tol, time_budget=left, **options)
    shift = float(objective.weighted_x.sum()) * np.log(scale)  # ln L in rescaled time -> rows' unit
    optimum = mle.best_stop(stops, n)
    finite = [s for s in stops if np.isfinite(s.fun)]
    highest = min(finite, key=lambda s: s.fun) if finite else None
    if highest is not None:
        ridge = _covariate_ridge(objective, highest.x, tol=tol)
        if ridge is not None:
            at, held, limit_value = ridge
            reached = max(-s.fun * n for s in finite)
            if reached < limit_value + mle.RIDGE_GAIN:
                return _covariate_ridge_result(objective, design_columns, at, held, scale, shift)
    if optimum is None:
        raise mle.not_converged(name, mle.failure_words(stops, of=len(planned)), starts=len(planned))
    with np.errstate(all="ignore"):
        hessian = mle.central_hessian(lambda theta: objective(theta)[1], optimum.x) * n
    largest = float(np.max(np.abs(optimum.jac)))
    params = _covariate_params_at(optimum.x, design_columns, scale)
    if not largest <= mle.GRADIENT_TOLERANCE:
        raise ConvergenceFailure(
            f"{name} fit stopped before the optimum (largest gradient {largest:.2g} per customer); "
            "try another time unit or more data"
        )
    try:
        covariance = np.linalg.inv(hessian)
        cov_list: list[list[float]] | None = covariance.tolist()
        diagonal = np.diag(covariance)
    except np.linalg.LinAlgError:
        diagonal, cov_list = np.full(len(params), np.nan), None
    errors = _standard_errors(params, diagonal)
    with np.errstate(invalid="ignore"):
        loose = [p for p, d in zip(params, diagonal) if not np.sqrt(d) <= mle.MAX_LOG_SE] if cov_list else list(params)
    if loose:
        warnings.warn(
            f"{name}: these data do not identify {', '.join(loose)} (standard error of the log-parameter or "
            f"coefficient above {mle.MAX_LOG_SE:g}, or none): the fit stopped on a ridge of the likelihood; its "
            "forecasts are not reliable",
            UserWarning,
            stacklevel=2,
        )
    return mle.FitResult(params, errors, float(-optimum.fun * n + shift), int(n), cov_list)


def _preconditioned_search(objective: BetaGeoCovariateLikelihood, planned: list[Vector], *, tol: float,
                           time_budget: float | None = None, **options: Any) -> list[Any]:
    """:func:`.mle.search` from each start in turn, BFGS's first inverse-Hessian estimate the inverse of
    :meth:`~BetaGeoCovariateLikelihood.outer_product_of_scores` at that start (per customer), or the
    identity where that is not positive definite (a design column constant over the rows, say). The
    stopping rule (``gtol`` on the gradient), the iteration and time budgets are :func:`.mle.search`'s.
    """
    deadline = None if time_budget is None else time.monotonic() + float(time_budget)
    stops: list[Any] = []
    for index, start in enumerate(planned):
        left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        if left is not None and stops and left <= 0:
            break
        guess = None
        with np.errstate(all="ignore"):
            try:
                information = objective.outer_product_of_scores(start) / objective.total_weight
                inverse = np.linalg.inv(information)
                inverse = (inverse + inverse.T) / 2
                if np.all(np.isfinite(inverse)) and np.all(np.linalg.eigvalsh(inverse) > 0):
                    guess = inverse
            except (ArithmeticError, ValueError, np.linalg.LinAlgError):
                guess = None
        extra = {} if guess is None else {"hess_inv0": guess}
        stop = mle.search(objective, [start], tol=tol, time_budget=left, **options, **extra)[0]
        stop.start_index = index
        stops.append(stop)
    return stops


def _covariate_params_at(theta: Vector, design_columns: list[str], scale: float) -> dict[str, float]:
    """Named parameters at ``θ`` (rescaled time), ``alpha`` in the rows' unit."""
    base = np.exp(theta[:4]) * np.array([1.0, 1.0 / scale, 1.0, 1.0])
    values = [*base, *theta[4:]]
    return {p: float(v) for p, v in zip(covariate_params(design_columns), values)}


def _standard_errors(params: dict[str, float], diagonal: Vector) -> dict[str, float]:
    """Delta method for ``r, α, a, b`` (``θ · se(ln θ)``), direct for ``γ``; NaN where the variance is not positive."""
    se = np.where(diagonal > 0, np.sqrt(np.abs(diagonal)), np.nan)
    values = np.array(list(params.values()))
    se[:4] = values[:4] * se[:4]
    return {p: float(e) for p, e in zip(params, se)}


def _covariate_ridge(objective: BetaGeoCovariateLikelihood, theta: Vector, *, tol: float
                     ) -> tuple[Vector, Vector, float] | None:
    """The ridge's point for a stop ``θ`` with profiles past :data:`RIDGE_CONCENTRATION`, or ``None``.

    In ``(ln(a + b), γ_life)`` a profile's log-concentration is ``[1, z_j] · (c, v)``. The directions
    that keep every other profile's concentration fixed are the null space of the rows ``[1, z_j]``
    of those profiles (embedded as ``ln a, ln b += c``, ``γ_life += v``: ``p`` fixed). One of them
    that raises every runaway profile (least squares to +1 each; each must rise) is followed until
    the least concentration among them is :data:`RIDGE_SIZE`; all of them are then held fixed and
    the rest of ``θ`` re-optimised. Returns ``(θ there, the held directions (d × m), total ln L in
    rescaled time)``; ``None`` when no profile is past the bound, no direction moves only the
    runaway profiles, or the re-optimised point is not stationary.
    """
    k = objective.k
    profiles = objective.profiles
    log_conc = np.logaddexp(theta[2], theta[3]) + profiles @ theta[4:4 + k]
    runaway = log_conc > np.log(RIDGE_CONCENTRATION)
    if not np.any(runaway):
        return None
    rows = np.column_stack([np.ones(len(profiles)), profiles])
    basis = mle.null_space(rows[~runaway], k + 1)  # (k + 1) × m
    if basis.shape[1] == 0:
        return None
    moves = rows[runaway] @ basis
    y = np.linalg.lstsq(moves, np.ones(int(runaway.sum())), rcond=None)[0]
    rise = moves @ y
    if not np.all(rise > 0.5):
        return None  # no direction raises every runaway profile while holding the others
    dim = len(theta)
    held = np.zeros((dim, basis.shape[1]))
    held[2] = held[3] = basis[0]
    held[4:4 + k] = basis[1:]
    push = held @ y
    # After a push t·push a runaway profile's log-concentration is log_conc + t·rise: the least reaches RIDGE_SIZE.
    t = float(np.max((np.log(RIDGE_SIZE) - log_conc[runaway]) / rise))
    far = theta + t * push
    at = mle.optimise_held(objective, far, held, tol=tol, total_weight=objective.total_weight)
    if at is None:
        return None
    return at, held, objective.log_likelihood(at)


def _covariate_ridge_result(objective: BetaGeoCovariateLikelihood, design_columns: list[str], at: Vector,
                            held: Vector, scale: float, shift: float) -> mle.FitResult:
    """The fit reported on the ridge (:func:`fit_covariates`): the re-optimised far point, its limit."""
    n = objective.total_weight
    dim = len(at)
    free = mle.null_space(held.T, dim)
    with np.errstate(all="ignore"):
        reduced_hessian = mle.central_hessian(lambda u: free.T @ objective(at + free @ u)[1], np.zeros(free.shape[1])) * n
    params = _covariate_params_at(at, design_columns, scale)
    names = list(params)
    moved = np.any(np.abs(held) > 1e-12, axis=1)
    try:
        covariance = free @ np.linalg.inv(reduced_hessian) @ free.T
    except np.linalg.LinAlgError:
        raise mle.not_converged(COVARIATE_MODEL, "the likelihood runs off along a ridge and the rest of the "
                                "parameters are not identified there either (singular Hessian)") from None
    diagonal = np.where(moved, np.nan, np.diag(covariance))
    if not np.all(np.sqrt(diagonal[~moved]) <= mle.MAX_LOG_SE):
        raise mle.not_converged(COVARIATE_MODEL, "the likelihood runs off along a ridge and more parameters than "
                                "its direction are not identified")
    errors = _standard_errors(params, diagonal)
    p = float(expit(at[2] - at[3]))
    identified = {nm: params[nm] for nm, m in zip(names, moved) if not m}
    identified["dropout_probability"] = p
    k = objective.k
    log_conc = np.logaddexp(at[2], at[3]) + objective.profiles @ at[4:4 + k]
    runaway = objective.profiles[log_conc > np.log(RIDGE_CONCENTRATION)]
    words = "; ".join(", ".join(f"{c} {v:g}" for c, v in zip(design_columns, z)) for z in runaway)
    warnings.warn(
        f"{COVARIATE_MODEL}: these data have no finite maximum-likelihood estimate: the likelihood rises as a_i + b_i "
        f"-> inf for the customers with {words} (no spread in their dropout probabilities left to estimate); the "
        f"fit is that limit, every such customer dropping out after a purchase with probability {p:.4g} "
        f"(status 'ridge', their least a_i + b_i near {RIDGE_SIZE:g}; not identified: "
        f"{', '.join(nm for nm, m in zip(names, moved) if m)})",
        UserWarning,
        stacklevel=3,
    )
    return mle.FitResult(params, errors, float(objective.log_likelihood(at) + shift), int(n),
                         covariance.tolist(), mle.RIDGE, identified)
