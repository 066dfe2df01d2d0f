"""MBG/NBD log-likelihood with its analytic gradient in numpy, and the fit built on it (issue 16).

The MBG/NBD of Batislam, Denizel & Filiztekin (2007) is the BG/NBD with one more chance to drop
out: right after the first purchase, so a customer with ``x = 0`` repeat purchases is not certainly
alive. Its likelihood (as lifetimes' ``ModifiedBetaGeoFitter._negative_log_likelihood``)::

    ln L(r, α, a, b | x, t_x, T) = A1 + A2 + A3 + ln(1 + exp(A4))
    A1 = lnΓ(r + x) − lnΓ(r) + r ln α
    A2 = lnΓ(a + b) + lnΓ(b + x + 1) − lnΓ(b) − lnΓ(a + b + x + 1)
    A3 = −(r + x) ln(α + T)
    A4 = ln a − ln(b + x) + (r + x) (ln(α + T) − ln(α + t_x))

the BG/NBD's equation (6) with ``x + 1`` dropout opportunities instead of ``x`` and the A4 term
for every customer (one-time buyers included). So it is :class:`.bgnbd_likelihood.BetaGeoLikelihood`
with one more dropout opportunity (its ``extra_opportunity`` 1), which changes two of its
per-distinct-``x`` terms: ``A2 = ln B(x + 1, a + b) − ln B(x + 1, b)``
(the large-argument series of :mod:`.gamma_gamma_likelihood`, no cancellation of four lnΓ when
``a + b`` is large) and ``ln a − ln(b + x)``. The x-only terms are evaluated once per distinct
``x``, as for BG/NBD, so a likelihood and gradient call costs a few passes over the rows.

The gradient (``s`` the share of the A4 term in the log-sum-exp)::

    ∂/∂a = ψ(a + b) − ψ(a + b + x + 1) + s/a
    ∂/∂b = ψ(a + b) + ψ(b + x + 1) − ψ(b) − ψ(a + b + x + 1) − s/(b + x)

and ``∂/∂r``, ``∂/∂α`` as for BG/NBD; the Hessian is written out too
(:meth:`ModifiedBetaGeoLikelihood.total_hessian`). lifetimes stays the oracle: the tests check the
value, the gradient and the Hessian (against autograd on lifetimes' function and against central
differences) and the fit (against ``ModifiedBetaGeoFitter.fit``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from clvmodel.models import mle
from clvmodel.models.bgnbd_likelihood import BetaGeoLikelihood, _dot, _softplus_share, starts, time_scale
from clvmodel.models.gamma_gamma_likelihood import _digamma_step

__all__ = ["PARAMS", "ModifiedBetaGeoLikelihood", "fit"]

Vector = NDArray[np.float64]

#: Parameter order, as lifetimes' ``ModifiedBetaGeoFitter.params_``.
PARAMS = ("r", "alpha", "a", "b")

MODEL = "mbgnbd"


class ModifiedBetaGeoLikelihood(BetaGeoLikelihood):
    """The mean negative MBG/NBD log-likelihood over weighted rows and its gradient.

    Called with ``θ = ln(r, α, a, b)`` it returns ``(−Σ w ln L / Σ w, ∂/∂θ of that)``, the same
    function as lifetimes' ``ModifiedBetaGeoFitter._negative_log_likelihood(θ, x, t_x, T, w, 0)``.

    The rows, pooled as :class:`.BetaGeoLikelihood` (per distinct ``x``, ``T`` and ``t_x``, rows in
    the order of ``x``), with :attr:`extra_opportunity` 1: ``A2 = ln B(x + 1, a + b) − ln B(x + 1, b)``,
    A4's constant ``ln a − ln(b + x)``, and the A4 term for every customer.

    Parameters
    ----------
    frequency, recency, T
        ``x, t_x, T`` per row (any time unit; ``alpha`` is in that unit).
    weights
        Customers per row (collapsed identical rows).
    """

    #: One more chance to drop out than BG/NBD: right after the first purchase.
    extra_opportunity = 1

    def total_hessian(self, log_params: Vector) -> Vector:
        """Hessian of the total negative log-likelihood ``−Σ w ln L`` in ``θ = ln(r, α, a, b)``, analytic.

        Costs about one gradient call, against eight for central differences of the gradient
        (issue 16). With ``d = A4 − A3`` and ``s`` its share, each row adds
        ``s (1 − s) ∇d ∇dᵀ + s ∇²d`` to the Hessian of ``A1 + A2 + A3``, where
        ``θ·∂d = (r ln((α+T)/(α+t_x)), (r+x) α [1/(α+T) − 1/(α+t_x)], 1, −b/(b+x))``. The trigamma
        differences of ``A1`` and ``A2`` are sums over the integer ``x``
        (``ψ'(z) − ψ'(z + n) = Σ_{j<n} 1/(z+j)²``), so nothing cancels when ``a + b`` is large.
        """
        r, alpha, a, b = np.exp(np.asarray(log_params, dtype=float))
        log_T, span, d = self._pooled(r, alpha, self._a4_constant(a, b))
        _, share = _softplus_share(d)
        xs, per_x, n, w = self.x_values, self.weight_per_x, self.total_weight, self.weights
        ws = share * w
        v = share * (1.0 - share)
        v *= w
        inv_T, inv_t = 1.0 / (alpha + self.T_values), 1.0 / (alpha + self.tx_values)
        gap = inv_T[self.T_index] - inv_t[self.tx_index]
        gap2 = (inv_T * inv_T)[self.T_index] - (inv_t * inv_t)[self.tx_index]
        k = self.x + r
        p = r * span  # θ_r ∂d
        q = k * alpha * gap  # θ_α ∂d
        hess = np.zeros((4, 4))
        # A1 + A3 (rate part); trigamma differences as sums: ψ'(r + x) − ψ'(r) = −Σ_{j<x} 1/(r + j)².
        top = int(xs.max()) + 1 if len(xs) else 1
        inverse_squares = np.concatenate([[0.0], np.cumsum(1.0 / (r + np.arange(top)) ** 2)])
        trigamma_r = -inverse_squares[xs.astype(np.intp)]
        d_r = _digamma_step(r, xs) if len(xs) else np.zeros(0)
        d_r = np.where(xs > 0, d_r, 0.0)
        hess[0, 0] = (_dot(per_x, r * (d_r + np.log(alpha)) + r * r * trigamma_r)
                      - r * _dot(self.weight_per_T, log_T))
        hess[0, 1] = n * r - r * alpha * _dot(self.weight_per_T, inv_T)
        hess[1, 1] = -alpha * _dot((r * self.weight_per_T + self.weighted_x_per_T) * self.T_values, inv_T * inv_T)
        # A2: ∂a = −[ψ(a+b+x+1) − ψ(a+b)], ∂b = ∂a + ψ(b+x+1) − ψ(b); second derivatives as sums over j ≤ x.
        total_steps = _digamma_step(a + b, xs + 1.0)
        top = top + 1
        t_ab = np.cumsum(1.0 / (a + b + np.arange(top)) ** 2)[xs.astype(np.intp)]  # ψ'(a+b) − ψ'(a+b+x+1)
        t_b = -np.cumsum(1.0 / (b + np.arange(top)) ** 2)[xs.astype(np.intp)]  # ψ'(b+x+1) − ψ'(b)
        g_a = -total_steps
        g_b = g_a + _digamma_step(b, xs + 1.0)
        hess[2, 2] = _dot(per_x, a * g_a + a * a * t_ab)
        hess[2, 3] = _dot(per_x, a * b * t_ab)
        hess[3, 3] = _dot(per_x, b * g_b + b * b * (t_ab + t_b))
        # ln(1 + e^d): Σ w [s(1 − s) ∇d ∇dᵀ + s ∇²d], the per-x parts summed over contiguous runs.
        runs = self.x_runs
        v_x, vp_x, vq_x = (np.add.reduceat(z, runs) for z in (v, v * p, v * q))
        ws_x = np.add.reduceat(ws, runs)
        c = -b / (b + xs)  # θ_b ∂d per x
        hess[0, 0] += _dot(v * p, p) + _dot(ws, p)
        hess[0, 1] += _dot(v * p, q) + r * alpha * _dot(ws, gap)
        hess[1, 1] += _dot(v * q, q) + alpha * _dot(ws * k, gap - alpha * gap2)
        hess[0, 2] += vp_x.sum()
        hess[1, 2] += vq_x.sum()
        hess[2, 2] += v_x.sum()
        hess[0, 3] += _dot(vp_x, c)
        hess[1, 3] += _dot(vq_x, c)
        hess[2, 3] += _dot(v_x, c)
        hess[3, 3] += _dot(v_x, c * c) + _dot(ws_x, -b * xs / (b + xs) ** 2)
        hess = np.triu(hess) + np.triu(hess, 1).T
        return -hess


def _check_rows(x: Vector, tx: Vector, T: Vector, weights: Vector) -> None:
    """lifetimes' ``_check_inputs`` for the purchase models, as one-line errors counting customers."""
    mle.refuse_rows(MODEL, mle.rfm_problems(x, tx, T), weights)


def fit(columns: dict[str, NDArray[Any]], weights: NDArray[Any], *, initial_params: Any = None,
        tol: float = mle.LIFETIMES_TOL, **options: Any) -> mle.FitResult:
    """Maximum likelihood MBG/NBD on weighted rows, equal to lifetimes' ``ModifiedBetaGeoFitter.fit``.

    As :func:`.bgnbd_likelihood.fit`: the mean objective over weighted rows in time rescaled so the
    longest age is 1 (:func:`.bgnbd_likelihood.time_scale`), BFGS from lifetimes' start (0.1 for
    each log-parameter); the two data-derived starts of :func:`.bgnbd_likelihood.starts` follow
    only when that start does not stop at a stationary point with every parameter identified
    (:func:`.mle.search_first`; issue 16: each start costs as much as the whole fit otherwise), the
    best stationary stop kept (:func:`.mle.best_stop`). The Hessian is analytic
    (:meth:`ModifiedBetaGeoLikelihood.total_hessian`; equal to autograd's on lifetimes' function).

    Parameters
    ----------
    columns
        ``frequency, recency, T`` per row.
    weights
        Customers per row.
    initial_params, tol, options
        The first starting log-parameters (rescaled time), BFGS ``gtol``, scipy ``minimize``
        options (``maxiter`` per start) and ``time_budget`` (:func:`.mle.search`).

    Returns
    -------
    mle.FitResult
        Estimates (``alpha`` in the rows' time unit), the total log-likelihood Σ w ln L in that
        unit, standard errors by the delta method.

    Raises
    ------
    ClvError
        Rows no transaction log can give (recency > T, ...).
    ConvergenceFailure
        No start ended at a stationary point (scipy's words for each), or the stop is not an
        optimum (:func:`.mle.fit_result`).
    """
    x, tx, T = (np.asarray(columns[c], dtype=float) for c in ("frequency", "recency", "T"))
    weights = np.asarray(weights, dtype=float)
    _check_rows(x, tx, T, weights)
    scale = time_scale(T)
    objective = ModifiedBetaGeoLikelihood(x, tx * scale, T * scale, weights)
    n = objective.total_weight
    planned = starts(objective.x, objective.T, objective.weights)
    if initial_params is not None:
        planned[0] = np.asarray(initial_params, dtype=float)
    hessians: dict[int, Vector] = {}

    def identified(stop: Any) -> bool:
        # The first start suffices where it stops at a stationary point with every parameter
        # identified (no stop out on a ridge): the other starts found no other optimum on CDNOW,
        # the apparel splits or a million simulated customers, and each costs as much (issue 16).
        if not mle.stationary(stop):
            return False
        with np.errstate(all="ignore"):
            hessians[id(stop)] = objective.total_hessian(stop.x)
        return bool(np.all(mle.log_standard_errors(hessians[id(stop)]) <= mle.MAX_LOG_SE))

    stops = mle.search_first(objective, planned, identified, tol=tol, **options)
    optimum = mle.best_stop(stops, n) or next((s for s in stops if s.success and np.isfinite(s.fun)), None)
    if optimum is None:
        raise mle.not_converged(MODEL, mle.failure_words(stops, of=len(planned)), starts=len(planned))
    hessian = hessians.get(id(optimum))
    if hessian is None:
        with np.errstate(all="ignore"):
            hessian = objective.total_hessian(optimum.x)
    log_params = optimum.x.copy()
    log_params[1] -= np.log(scale)  # α in rescaled time -> the rows' unit
    params = dict(zip(PARAMS, (float(v) for v in np.exp(log_params))))
    # Rescaling time by c multiplies each likelihood by c^(-x): Σ w ln L gains Σ w x ln c.
    log_likelihood = -optimum.fun * n + float(objective.weighted_x.sum()) * np.log(scale)
    return mle.fit_result(MODEL, params, log_likelihood, optimum.jac, hessian, n)

