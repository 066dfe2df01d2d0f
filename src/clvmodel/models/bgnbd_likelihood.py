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
evaluated once per distinct ``x`` and the gradient is written out, so one call costs a small
fraction of autograd's; the Hessian comes from central differences of this gradient
(:func:`.mle.central_hessian`). lifetimes stays the reference: the tests check this likelihood and
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
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy.special import digamma, expit, gammaln, log_expit

from clvmodel.errors import ClvError
from clvmodel.models import mle
from clvmodel.models.gamma_gamma_likelihood import _digamma_step, _log_beta

__all__ = [
    "PARAMS",
    "RIDGE_SIZE",
    "BetaGeoLikelihood",
    "BetaGeoLimitLikelihood",
    "LimitFit",
    "fit",
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


class BetaGeoLikelihood:
    """The mean negative BG/NBD log-likelihood over weighted rows and its gradient.

    Calling it with log-parameters ``θ = ln(r, α, a, b)`` returns
    ``(−Σ w ln L / Σ w, ∂/∂θ of that)``, the same function as lifetimes'
    ``BetaGeoFitter._negative_log_likelihood(θ, x, t_x, T, w, 0)``.

    Parameters
    ----------
    frequency, recency, T
        ``x, t_x, T`` per row (any time unit; ``alpha`` is in that unit).
    weights
        Customers per row (collapsed identical rows).
    """

    def __init__(self, frequency: NDArray[Any], recency: NDArray[Any], T: NDArray[Any], weights: NDArray[Any]) -> None:
        x = np.asarray(frequency, dtype=float)
        self.recency = np.asarray(recency, dtype=float)
        self.T = np.asarray(T, dtype=float)
        self.weights = np.asarray(weights, dtype=float)
        self.total_weight = float(self.weights.sum())
        # x-only terms (lnΓ, ψ, ln(b + x − 1)) are evaluated on the distinct x: a few hundred at
        # a million customers. Their weighted sums need only the weight per distinct x.
        self.x_values, self.x_index = np.unique(x, return_inverse=True)
        self.weight_per_x = np.bincount(self.x_index, weights=self.weights, minlength=len(self.x_values))
        self.repeat = self.x_values > 0  # δ(x > 0): one-time buyers have no A4 term
        self.repeat_x = self.x_values[self.repeat]
        self.x = x
        self.weighted_x = self.weights * x

    def __call__(self, log_params: Vector) -> tuple[float, Vector]:
        """Mean negative log-likelihood and its gradient at ``θ = ln(r, α, a, b)``."""
        r, alpha, a, b = np.exp(np.asarray(log_params, dtype=float))
        log_total, log_last, d = self._per_row(r, alpha, a, b)
        share = expit(d)  # weight of the A4 term in the log-sum-exp: exp(A4) / (exp(A3) + exp(A4))
        value = self._log_likelihood(r, alpha, a, b, log_total, d)
        gradient = self._gradient(r, alpha, a, b, log_total, log_last, share)
        return -value / self.total_weight, -gradient / self.total_weight

    def log_likelihood(self, log_params: Vector) -> float:
        """Total (weighted) log-likelihood Σ w ln L at ``θ``, in the rows' time unit."""
        r, alpha, a, b = np.exp(np.asarray(log_params, dtype=float))
        log_total, _, d = self._per_row(r, alpha, a, b)
        return self._log_likelihood(r, alpha, a, b, log_total, d)

    def _a4_constant(self, a: float, b: float) -> Vector:
        """ln a − ln(b + x − 1) per distinct x; −∞ where x = 0 (no A4 term)."""
        with np.errstate(divide="ignore"):
            return np.where(self.repeat, np.log(a) - np.log(np.where(self.repeat, b + self.x_values - 1, 1.0)), -np.inf)

    def _per_row(self, r: float, alpha: float, a: float, b: float) -> tuple[Vector, Vector, Vector]:
        """``ln(α + T)``, ``ln(α + t_x)`` and ``d = A4 − A3`` per row (−∞ for x = 0)."""
        log_total = np.log(alpha + self.T)
        log_last = np.log(alpha + self.recency)
        d = (r + self.x) * (log_total - log_last)
        d += self._a4_constant(a, b)[self.x_index]
        return log_total, log_last, d

    def _a2(self, a: float, b: float) -> Vector:
        """A2 per distinct x: ``ln B(x, a + b) − ln B(x, b)``, 0 where x = 0 (see the module docstring)."""
        out = np.zeros(len(self.x_values))
        out[self.repeat] = _log_beta(self.repeat_x, a + b) - _log_beta(self.repeat_x, b)
        return out

    def _log_likelihood(self, r: float, alpha: float, a: float, b: float, log_total: Vector, d: Vector) -> float:
        """Σ w ln L = Σ_x W_x (A1 + A2) + Σ w [A3 + ln(1 + e^d)], the log-sum-exp of equation (6)."""
        return self._rate_terms(r, alpha, self._a2(a, b), log_total, d)

    def _rate_terms(self, r: float, alpha: float, a2: Vector, log_total: Vector, d: Vector) -> float:
        """Σ_x W_x (A1 + a2) + Σ w [A3 + ln(1 + e^d)], given the dropout terms ``a2`` per distinct x."""
        xs = self.x_values
        a12 = gammaln(r + xs) - gammaln(r) + r * np.log(alpha) + a2
        a3 = -(r * _dot(self.weights, log_total) + _dot(self.weighted_x, log_total))
        return float(_dot(self.weight_per_x, a12) + a3 + _dot(self.weights, np.logaddexp(0.0, d)))

    def _gradient(
        self, r: float, alpha: float, a: float, b: float, log_total: Vector, log_last: Vector, share: Vector
    ) -> Vector:
        """∂ Σ w ln L / ∂ ln(r, α, a, b): θ · ∂/∂θ of equation (6), with s = share of the A4 term.

        ∂/∂r = ψ(r + x) − ψ(r) + ln α − ln(α + T) + s [ln(α + T) − ln(α + t_x)]
        ∂/∂α = r/α − (r + x)/(α + T) + s (r + x) [1/(α + T) − 1/(α + t_x)]
        ∂/∂a = ψ(a + b) − ψ(a + b + x) + s/a
        ∂/∂b = ψ(a + b) + ψ(b + x) − ψ(b) − ψ(a + b + x) − s/(b + x − 1)
        """
        xs, per_x = self.x_values, self.weight_per_x
        ws, d_r, d_alpha = self._rate_gradient(r, alpha, log_total, log_last, share)
        ws_per_x = np.bincount(self.x_index, weights=ws, minlength=len(xs))  # Σ w s by distinct x
        # ψ(a + b) − ψ(a + b + x) and ψ(b + x) − ψ(b) as steps: no cancellation when a + b is large.
        total_step = _digamma_step(a + b, xs)
        d_a = -_dot(per_x, total_step) + ws_per_x.sum() / a
        inv_b = np.where(self.repeat, 1.0 / np.where(self.repeat, b + xs - 1, 1.0), 0.0)
        d_b = _dot(per_x, _digamma_step(b, xs) - total_step) - _dot(ws_per_x, inv_b)
        return np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])

    def _rate_gradient(
        self, r: float, alpha: float, log_total: Vector, log_last: Vector, share: Vector
    ) -> tuple[Vector, float, float]:
        """``w s`` per row and ∂ Σ w ln L / ∂r, ∂/∂α (the same for BG/NBD and its ridge limit)."""
        xs, per_x, w = self.x_values, self.weight_per_x, self.weights
        ws = w * share
        inv_total, inv_last = 1.0 / (alpha + self.T), 1.0 / (alpha + self.recency)
        gap = inv_total - inv_last
        d_r = (_dot(per_x, digamma(r + xs) - digamma(r)) + self.total_weight * np.log(alpha)
               - _dot(w, log_total) + _dot(ws, log_total - log_last))
        d_alpha = (self.total_weight * r / alpha - r * _dot(w, inv_total) - _dot(self.weighted_x, inv_total)
                   + r * _dot(ws, gap) + _dot(ws * self.x, gap))
        return ws, d_r, d_alpha


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
        r, alpha, logit, log_total, log_last, d = self._limit_rows(log_params)
        value = self._rate_terms(r, alpha, self.x_values * log_expit(-logit), log_total, d)
        share = expit(d)
        ws, d_r, d_alpha = self._rate_gradient(r, alpha, log_total, log_last, share)
        d_logit = -expit(logit) * float(self.weighted_x.sum()) + float(ws.sum())
        gradient = np.array([d_r * r, d_alpha * alpha, d_logit])
        return -value / self.total_weight, -gradient / self.total_weight

    def log_likelihood(self, log_params: Vector) -> float:
        """Total (weighted) limit log-likelihood Σ w ln L∞ at ``θ = (ln r, ln α, logit p)``."""
        r, alpha, logit, log_total, _, d = self._limit_rows(log_params)
        return self._rate_terms(r, alpha, self.x_values * log_expit(-logit), log_total, d)

    def _limit_rows(self, log_params: Vector) -> tuple[float, float, float, Vector, Vector, Vector]:
        log_r, log_alpha, logit = (float(v) for v in log_params)
        r, alpha = np.exp(log_r), np.exp(log_alpha)
        log_total = np.log(alpha + self.T)
        log_last = np.log(alpha + self.recency)
        constant = np.where(self.repeat, logit, -np.inf)  # ln p − ln(1 − p); no A4 term where x = 0
        d = (r + self.x) * (log_total - log_last) + constant[self.x_index]
        return r, alpha, logit, log_total, log_last, d


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
    relative). Two data-derived starts follow (:func:`starts`); the best stationary stop is kept
    (:func:`.mle.best_stop`).

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
    stops = mle.search(objective, planned, tol=tol, **options)
    optimum = mle.best_stop(stops, n) or next((s for s in stops if s.success and np.isfinite(s.fun)), None)
    hessian = None
    if optimum is not None:
        with np.errstate(all="ignore"):
            hessian = mle.central_hessian(lambda theta: objective(theta)[1], optimum.x) * n
    if optimum is not None and mle.stationary(optimum) and not bool(
        np.all(mle.log_standard_errors(hessian)[2:] <= mle.MAX_LOG_SE)
    ):
        # A stationary stop that leaves a and b unidentified is somewhere out on the ridge. Only
        # stationary stops are evidence: one cut short (maxiter, a loose tol) says nothing about
        # whether a finite optimum beats the limit. Every start's highest point must stay below
        # it, so a start that climbed above the limit (towards a finite optimum) is not overruled.
        limit = limit_fit(objective)
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
