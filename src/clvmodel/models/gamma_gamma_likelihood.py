"""Gamma-Gamma log-likelihood with its analytic gradient in numpy, and the fit built on it (issue 7).

The likelihood is equation (1a) of Fader & Hardie (2013), "The Gamma-Gamma model of monetary
value" (http://www.brucehardie.com/notes/025/): the marginal density of a customer's mean spend
``z̄ = m`` over ``x`` repeat transactions, written as lifetimes'
``GammaGammaFitter._negative_log_likelihood`` writes it (lifetimes' ``v`` is the paper's γ)::

    ln L(p, q, v | x, m) = lnΓ(px + q) − lnΓ(px) − lnΓ(q) + q ln v
                           + (px − 1) ln m + px ln x − (px + q) ln(x m + v)

Why not lifetimes' own fit: at a million customers (485k distinct ``(x, m)`` of 908k repeat
buyers) one autograd ``value_and_grad`` call costs ~40 ms, and the fit (BFGS, then a Hessian)
~1.3 s even with the Hessian by central differences; a call here costs ~3 ms. With ``s = x m``
(the customer's total spend), ``ln(s + v) = ln v + ln(1 + s/v) = ln s + ln(1 + v/s)`` turns
equation (1a) into::

    ln L = −B(px, q) − ln m − q ln(1 + s/v) − px ln(1 + v/s)
    B(a, b) = ln Beta(a, b) = lnΓ(a) + lnΓ(b) − lnΓ(a + b)

(the ``q ln v`` and ``px ln x + px ln m`` terms cancel against ``ln(s + v)`` exactly). ``B`` depends
on ``x`` alone and is evaluated once per distinct ``x`` (a few hundred at a million customers),
``Σ w ln m`` once; per row only the two ``log1p`` terms remain, and the gradient is written out.

The form is also free of cancellation, which BFGS needs: lifetimes' terms (``q ln v``,
``lnΓ(px + q) − lnΓ(q)``, ``(px + q) ln(x m + v)``) are large and cancel to a few units per
customer, by ~8 digits when ``q`` and ``v`` grow large together (strongly correlated spend and
frequency: ``q ≈ 1e7``), while the last line searches compare values ~1e-14 apart. Here every
per-row term is non-negative, and ``B`` and the ψ differences of the gradient come from
asymptotic series where an argument is large (:func:`_log_beta`, :func:`_digamma_step`), so the
objective agrees with a 50-digit evaluation to ~1e-15 relative where lifetimes' is off by ~1e-9
at ``q ≈ 3e7`` (and BFGS on it stops wherever its noisy gradient dips below ``tol``). Where
lifetimes' function is accurate (CDNOW, a million customers), both give the same optimiser path.
The Hessian comes from central differences of this gradient (:func:`.mle.central_hessian`).
lifetimes stays the reference: the tests check this likelihood and gradient against lifetimes'
function and autograd, and the fit against ``GammaGammaFitter.fit``.

The ridge. When frequency and spend are strongly related (or spend rates do not vary between
customers) the likelihood has no finite maximum: it keeps rising as ``q, v → ∞`` with ``v/q``
fixed, the spend rate ν ~ Gamma(q, rate v) collapsing to the point ``ν = q/v``. The supremum is
the likelihood of that limit model (every customer's transactions Gamma(p, rate ν) with one ν),
a two-parameter problem with a finite, unique maximum (:func:`limit_fit`). Where BFGS stops along
the ridge (q from 1e8 to 1e12 on one data set under last-bit perturbations, sometimes with a
"precision loss" message) depends on the machine; the comparison of the two likelihoods does not.
So :func:`fit` reports status :data:`.mle.RIDGE` when the finite optimum does not beat the limit
by :data:`.mle.RIDGE_GAIN`, with ``p`` and ``v/q`` of the limit at ``q =`` :data:`RIDGE_Q`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq
from scipy.special import betaln, digamma, gammaln, polygamma

from clvmodel.errors import ClvError
from clvmodel.models import mle

__all__ = ["PARAMS", "RIDGE_Q", "GammaGammaLikelihood", "LimitFit", "limit_fit", "fit", "starts"]

Vector = NDArray[np.float64]

#: Parameter order, as lifetimes' ``GammaGammaFitter.params_``.
PARAMS = ("p", "q", "v")

#: ``q`` of the point reported on the ridge (``v = q · (v/q)`` of the limit). Large enough that
#: every prediction equals the limit's (the weight ``p x / (p x + q − 1)`` on a customer's own mean
#: is below 1e-7 for ``p x`` up to 1e5, ``p v / (q − 1)`` is the limit's mean to 1e-12), small
#: enough for :func:`_log_beta`'s range checked in the tests (1e12), and fixed, so the saved model
#: does not depend on where an optimiser stopped.
RIDGE_Q = 1e12


def _dot(u: Vector, v: Vector, scratch: Vector | None = None) -> float:
    """Σ u v: the products (into ``scratch`` if given), then numpy's pairwise sum.

    Not ``u @ v`` (OpenBLAS's threaded ``ddot`` stalls when the other core is busy, see
    :func:`.bgnbd_likelihood._dot`) and not ``einsum``, whose running sum has about twice the
    rounding noise at 485k rows. A preallocated ``scratch`` row saves the page faults of a fresh
    4 MB temporary on every call.
    """
    return float(np.multiply(u, v, out=scratch).sum())


#: From this argument on, lnΓ and ψ differences are taken from their asymptotic series (truncation
#: below 1e-18 absolute) instead of as differences of scipy's values.
_ASYMPTOTIC_FROM = 50.0


def _log_beta(a: Vector | float, b: Vector | float) -> Vector:
    """ln B(a, b) = lnΓ(a) + lnΓ(b) − lnΓ(a + b), accurate when one argument is large.

    scipy's ``betaln`` subtracts the large ``lnΓ(a + b)`` and ``lnΓ(b)`` for ``b`` up to ~1e6 and
    loses ~``eps lnΓ(b)``: 3e-10 at ``b = 1.6e5``, noise a line search sees where ``q`` runs off to
    large values (the ridge of strongly correlated data). For ``max(a, b) = z ≥``
    :data:`_ASYMPTOTIC_FROM`, with ``s = min(a, b)``, ``u = 1/z``, ``t = 1/(z + s)`` and Stirling's
    series ``lnΓ(z) ~ (z − ½) ln z − z + ½ ln 2π + 1/(12z) − 1/(360z³) + 1/(1260z⁵) − 1/(1680z⁷)``::

        lnΓ(z + s) − lnΓ(z) = (z − ½) ln(1 + s/z) + s [ln(z + s) − 1]
                              − s u t [1/12 − S₃/360 + S₅/1260 − S₇/1680]

    where ``Sₙ = (uⁿ − tⁿ) / (u − t) = Σ_j u^(n−1−j) t^j`` and ``u − t = s u t``: no difference of
    large numbers is left.
    """
    a, b = (np.array(v, dtype=float, ndmin=1) for v in np.broadcast_arrays(a, b))
    out = betaln(a, b)
    small, large = np.minimum(a, b), np.maximum(a, b)
    use = large >= _ASYMPTOTIC_FROM
    if np.any(use):
        s, z = small[use], large[use]
        u, t = 1.0 / z, 1.0 / (z + s)
        s3 = u * u + u * t + t * t
        s5 = u**4 + u**3 * t + u * u * t * t + u * t**3 + t**4
        s7 = u**6 + u**5 * t + u**4 * t * t + u**3 * t**3 + u * u * t**4 + u * t**5 + t**6
        series = s * u * t * (1 / 12 - s3 / 360 + s5 / 1260 - s7 / 1680)
        out[use] = gammaln(s) - ((z - 0.5) * np.log1p(s * u) + s * (np.log(z + s) - 1.0) - series)
    return out


def _digamma_step(z: Vector | float, h: Vector | float) -> Vector:
    """ψ(z + h) − ψ(z) for ``z, h > 0``, accurate when ``z`` is large.

    ``digamma(z + h) − digamma(z)`` loses ~``log10(z ln z / h)`` digits: at ``q ≈ 2e7`` ∂/∂ln q
    would be wrong by ~1%. For ``z ≥`` :data:`_ASYMPTOTIC_FROM` the series
    ``ψ(z) ~ ln z − 1/(2z) − 1/(12z²) + 1/(120z⁴) − 1/(252z⁶) + 1/(240z⁸)`` is differenced term by
    term as in :func:`_log_beta`: ``ln(1 + h/z) + h u t [1/2 + S₂/12 − S₄/120 + S₆/252 − S₈/240]``.
    """
    z, h = (np.array(v, dtype=float, ndmin=1) for v in np.broadcast_arrays(z, h))
    out = digamma(z + h) - digamma(z)
    use = z >= _ASYMPTOTIC_FROM
    if np.any(use):
        zl, hl = z[use], h[use]
        u, t = 1.0 / zl, 1.0 / (zl + hl)
        u2, t2 = u * u, t * t
        s2 = u + t
        s4 = s2 * (u2 + t2)
        s6 = s2 * (u2 * u2 + u2 * t2 + t2 * t2)
        s8 = s4 * (u2 * u2 + t2 * t2)
        out[use] = np.log1p(hl * u) + hl * u * t * (0.5 + s2 / 12 - s4 / 120 + s6 / 252 - s8 / 240)
    return out


class GammaGammaLikelihood:
    """The mean negative Gamma-Gamma log-likelihood over weighted rows and its gradient.

    Calling it with log-parameters ``θ = ln(p, q, v)`` returns ``(−Σ w ln L / Σ w, ∂/∂θ of that)``,
    the same function as lifetimes' ``GammaGammaFitter._negative_log_likelihood(θ, x, m, w, 0)``.
    Calls share scratch rows: one object serves one thread.

    Parameters
    ----------
    frequency, monetary_value
        ``x`` (repeat transactions, > 0) and ``m`` (their mean value, > 0) per row.
    weights
        Customers per row (collapsed identical rows).
    """

    def __init__(self, frequency: NDArray[Any], monetary_value: NDArray[Any], weights: NDArray[Any]) -> None:
        x = np.asarray(frequency, dtype=float)
        m = np.asarray(monetary_value, dtype=float)
        self.weights = np.asarray(weights, dtype=float)
        self.total_weight = float(self.weights.sum())
        # x-only terms (ln Beta, ψ) are evaluated on the distinct x. Their weighted sums need only
        # the weight per distinct x.
        self.x_values, x_index = np.unique(x, return_inverse=True)
        self.weight_per_x = np.bincount(x_index, weights=self.weights, minlength=len(self.x_values))
        self.weighted_x = self.weights * x
        self.spend = x * m  # s
        self.inverse_spend = 1.0 / self.spend
        self._rows = np.empty((5, len(x)))  # scratch: v/s, s/v, the two log1p, products
        self.sum_log_m = _dot(self.weights, np.log(m), self._rows[4])

    def __call__(self, log_params: Vector) -> tuple[float, Vector]:
        """Mean negative log-likelihood and its gradient at ``θ = ln(p, q, v)``.

        With ``a = ln(1 + s/v)`` and ``b = ln(1 + v/s)``, so ``∂a/∂ln v = −s/(s + v)`` and
        ``∂b/∂ln v = v/(s + v)`` (computed as ``1/(1 + v/s)`` and ``(v/s) · s/(s + v)``, exact to
        rounding even where one of them is tiny)::

            ∂ ln L / ∂ ln p = p x [ψ(px + q) − ψ(px) − b]
            ∂ ln L / ∂ ln q = q [ψ(px + q) − ψ(q) − a]
            ∂ ln L / ∂ ln v = q s/(s + v) − px v/(s + v)
        """
        p, q, v = np.exp(np.asarray(log_params, dtype=float))
        v_over_s, s_over_v, log_a, log_b, product = self._rows
        sums = self._sums(v, v_over_s, s_over_v, log_a, log_b, product)
        value = self._log_likelihood(p, q, *sums)
        spend_share = np.divide(1.0, np.add(v_over_s, 1.0, out=log_a), out=log_a)  # s/(s + v)
        d_v = q * _dot(self.weights, spend_share, product) - p * _dot(
            self.weighted_x, np.multiply(v_over_s, spend_share, out=log_b), product  # v/(s + v)
        )
        xs, per_x = self.x_values, self.weight_per_x
        px = p * xs
        d_p = p * (_dot(per_x, xs * _digamma_step(px, q)) - sums[1])
        d_q = q * (_dot(per_x, _digamma_step(q, px)) - sums[0])
        return -value / self.total_weight, -np.array([d_p, d_q, d_v]) / self.total_weight

    def log_likelihood(self, log_params: Vector) -> float:
        """Total (weighted) log-likelihood Σ w ln L at ``θ``."""
        p, q, v = np.exp(np.asarray(log_params, dtype=float))
        return self._log_likelihood(p, q, *self._sums(v, *self._rows))

    def _sums(
        self, v: float, v_over_s: Vector, s_over_v: Vector, log_a: Vector, log_b: Vector, product: Vector
    ) -> tuple[float, float]:
        """``Σ w ln(1 + s/v)`` and ``Σ w x ln(1 + v/s)``; leaves ``v/s`` in ``v_over_s``."""
        np.multiply(self.inverse_spend, v, out=v_over_s)
        np.multiply(self.spend, 1.0 / v, out=s_over_v)
        np.log1p(s_over_v, out=log_a)
        np.log1p(v_over_s, out=log_b)
        return _dot(self.weights, log_a, product), _dot(self.weighted_x, log_b, product)

    def _log_likelihood(self, p: float, q: float, sum_a: float, sum_x_b: float) -> float:
        """Σ w ln L = −Σ_x W_x B(px, q) − Σ w ln m − q Σ w ln(1 + s/v) − p Σ w x ln(1 + v/s)."""
        log_beta = _log_beta(p * self.x_values, q)
        return -_dot(self.weight_per_x, log_beta) - self.sum_log_m - q * sum_a - p * sum_x_b


class LimitFit(NamedTuple):
    """The maximum of the ``q, v → ∞`` limit: shape ``p``, the common spend rate ``nu`` (= q/v)."""

    p: float
    nu: float
    log_likelihood: float
    #: Covariance of ``(ln p, ln nu)`` (inverse observed information of the total likelihood).
    covariance: Vector


def limit_fit(frequency: NDArray[Any], monetary_value: NDArray[Any], weights: NDArray[Any]) -> LimitFit | None:
    """Maximum likelihood of the ridge's limit, where every customer shares one spend rate ν.

    With ``ν`` common, a customer's mean spend ``m`` over ``x`` transactions is Gamma(px, rate xν),
    equation (1a) as ``q, v → ∞`` with ``q/v = ν`` (the ``lnΓ`` and ``ln q`` terms of ``−B(px, q)``
    and ``−px ln(1 + v/s)`` cancel, ``q ln(1 + s/v) → sν``)::

        ln L∞(p, ν) = px ln(ν s) − ln m − ν s − lnΓ(px),      s = x m

    For fixed ``p`` the maximum is at ``ν̂(p) = p Σwx / Σws``; the profile score
    ``Σ w x [ln p + ln(x m Σwx/Σws) − ψ(px)]`` falls strictly in ``p`` (``x ψ'(px) > 1/p``), from
    +∞ to ``Σ w x ln(m Σwx/Σws) < 0`` (Jensen, unless every ``m`` is equal), so it has one root,
    found by bracketing (:func:`scipy.optimize.brentq`) to rounding.

    Returns
    -------
    LimitFit or None
        ``None`` when every customer has the same mean spend (the limit has no finite ``p`` either).
    """
    x, m, w = (np.asarray(a, dtype=float) for a in (frequency, monetary_value, weights))
    s = x * m
    rate_per_p = float((w * x).sum() / (w * s).sum())  # ν̂(p) / p
    wx, offset = w * x, np.log(x * m * rate_per_p)
    if not float((wx * np.log(m * rate_per_p)).sum()) < 0:  # the score's limit as p -> ∞ (ψ(px) ~ ln px)
        return None

    def score(log_p: float) -> float:
        p = np.exp(log_p)
        return float((wx * (log_p + offset - digamma(p * x))).sum())

    low, high = -1.0, 1.0
    while score(low) <= 0:
        low -= 4.0
    while score(high) >= 0:
        high += 4.0
        if high > 60:  # p beyond e^60: no spread left to measure
            return None
    log_p = brentq(score, low, high, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=500)
    p = float(np.exp(log_p))
    nu = p * rate_per_p
    log_likelihood = float((w * (p * x * np.log(nu * s) - np.log(m) - nu * s - gammaln(p * x))).sum())
    # Observed information in (ln p, ln ν) at the maximum (the score vanishes, so the log scale only
    # rescales): −∂²/∂p² = Σ w x² ψ'(px), −∂²/∂p∂ν = −Σ w x / ν, −∂²/∂ν² = Σ w p x / ν².
    information = np.array([
        [p * p * float((w * x * x * polygamma(1, p * x)).sum()), -p * float(wx.sum())],
        [-p * float(wx.sum()), p * float(wx.sum())],
    ])
    return LimitFit(p, float(nu), log_likelihood, np.linalg.inv(information))


def _check_rows(x: Vector, m: Vector, weights: Vector) -> None:
    """lifetimes' ``_check_inputs`` for Gamma-Gamma, as one-line errors counting customers."""
    mle.refuse_rows("gamma_gamma", [
        (~np.isfinite(x) | ~np.isfinite(m), "a missing or infinite value"),
        ((x <= 0) | (x != np.round(x)), "a non-positive or non-integer frequency"),
        (m <= 0, "a non-positive monetary value"),
    ], weights)


def starts(frequency: NDArray[Any], monetary_value: NDArray[Any], weights: NDArray[Any]) -> list[Vector]:
    """The fixed starting log-parameters ``ln(p, q, v)``, in the order tried.

    1. lifetimes' start, 0.1 for each log-parameter: first, so that where it converges the
       estimates are lifetimes' to rounding.
    2. and 3. From the data: the population mean spend per transaction ``p v / (q − 1)`` equal to
       the customers' mean ``m̄``, with little (``p = 1, q = 2``) and much (``p = 5, q = 5``)
       spread left to the individual customer.
    """
    w = np.asarray(weights, dtype=float)
    mean_spend = float((w * np.asarray(monetary_value, dtype=float)).sum() / w.sum())
    log_m = np.log(mean_spend) if np.isfinite(mean_spend) and mean_spend > 0 else 0.0
    return [
        np.full(3, mle.LIFETIMES_START),
        np.array([0.0, np.log(2.0), log_m]),  # p v / (q − 1) = v = m̄
        np.array([np.log(5.0), np.log(5.0), log_m + np.log(0.8)]),  # 5 v / 4 = m̄
    ]


def fit(columns: dict[str, NDArray[Any]], weights: NDArray[Any], *, initial_params: Any = None,
        tol: float = mle.LIFETIMES_TOL, **options: Any) -> mle.FitResult:
    """Maximum likelihood Gamma-Gamma on weighted rows, equal to lifetimes' ``GammaGammaFitter.fit``.

    Same objective (the mean over weighted rows, penalizer 0), first start (0.1 for each
    log-parameter), method (BFGS: scipy's choice for ``method=None`` without bounds), tolerance
    and no rescaling, as lifetimes, so where that start converges the estimates equal its
    estimates to rounding. Two data-derived starts follow (:func:`starts`); the best stationary
    stop is kept (:func:`.mle.best_stop`).

    Parameters
    ----------
    columns
        ``frequency, monetary_value`` per row (repeat customers with positive spend).
    weights
        Customers per row.
    initial_params, tol, options
        As lifetimes' ``fit``: the first starting log-parameters (the data-derived starts still
        follow), BFGS ``gtol``, scipy ``minimize`` options (``maxiter`` per start, ...); and
        ``time_budget`` (seconds for all starts, :func:`.mle.search`).

    Returns
    -------
    mle.FitResult
        Estimates, the total log-likelihood Σ w ln L, standard errors from a central-difference
        Hessian of the analytic gradient; status :data:`.mle.CONVERGED`. When the finite optimum
        does not beat the ``q, v → ∞`` limit (:func:`limit_fit`) by :data:`.mle.RIDGE_GAIN`:
        status :data:`.mle.RIDGE`, the limit's ``p`` and ``v/q`` at ``q =`` :data:`RIDGE_Q`, its
        identified quantities in ``limit`` (``p``, ``v_over_q``, ``mean_spend`` = p v/q), standard
        errors of ``q`` and ``v`` NaN (not identified), and the covariance of the limit with
        ``ln q`` held fixed.

    Raises
    ------
    ConvergenceFailure
        No start ended at a stationary point (scipy's words for each start), or the stop is not an
        optimum (:func:`.mle.fit_result`).
    """
    x, m = (np.asarray(columns[c], dtype=float) for c in ("frequency", "monetary_value"))
    _check_rows(x, m, np.asarray(weights, dtype=float))
    objective = GammaGammaLikelihood(x, m, weights)
    n = objective.total_weight
    planned = starts(x, m, weights)
    if initial_params is not None:
        planned[0] = np.asarray(initial_params, dtype=float)
    stops = mle.search(objective, planned, tol=tol, **options)
    optimum = mle.best_stop(stops, n) or next((s for s in stops if s.success and np.isfinite(s.fun)), None)
    limit = limit_fit(x, m, weights)
    # Only a stationary stop is compared with the limit: a stop short of the optimum (a loose tol)
    # says nothing about whether a finite optimum beats it, and fit_result reports it as such. No
    # start's highest point may beat the limit either (one climbing towards a finite optimum).
    if limit is not None and optimum is not None and mle.stationary(optimum):
        reached = max(-s.fun * n for s in stops if np.isfinite(s.fun))
        if reached < limit.log_likelihood + mle.RIDGE_GAIN:
            return _ridge_result(objective, limit)
    if optimum is None:
        raise mle.not_converged("gamma_gamma", mle.failure_words(stops, of=len(planned)), starts=len(planned))
    with np.errstate(all="ignore"):
        hessian = mle.central_hessian(lambda theta: objective(theta)[1], optimum.x) * n
    params = dict(zip(PARAMS, (float(v) for v in np.exp(optimum.x))))
    return mle.fit_result("gamma_gamma", params, -optimum.fun * n, optimum.jac, hessian, n)


def _ridge_result(objective: GammaGammaLikelihood, limit: LimitFit) -> mle.FitResult:
    """The fit reported on the ridge: the limit's ``p`` and ``v/q`` at ``q =`` :data:`RIDGE_Q`.

    The log-likelihood is that of the reported point (equal to the limit's supremum to ~n/RIDGE_Q),
    so the document's parameters and likelihood agree. The covariance is the limit's, mapped to
    ``(ln p, ln q, ln v)`` with ``ln q`` fixed (``ln v = ln q − ln ν``): intervals then show what the
    data say about ``p`` and the mean spend, not a spread of ``q`` the data cannot bound.
    """
    v_over_q = 1.0 / limit.nu
    params = {"p": limit.p, "q": RIDGE_Q, "v": RIDGE_Q * v_over_q}
    log_likelihood = objective.log_likelihood(np.log(list(params.values())))
    jacobian = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, -1.0]])  # (ln p, ln ν) -> (ln p, ln q, ln v)
    covariance = jacobian @ limit.covariance @ jacobian.T
    standard_errors = {"p": limit.p * float(np.sqrt(limit.covariance[0, 0])), "q": float("nan"), "v": float("nan")}
    identified = {"p": limit.p, "v_over_q": v_over_q, "mean_spend": limit.p * v_over_q}
    return mle.FitResult(params, standard_errors, float(log_likelihood), int(objective.total_weight),
                         covariance.tolist(), mle.RIDGE, identified)
