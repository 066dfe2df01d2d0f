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
with two of its per-distinct-``x`` terms changed: ``A2 = ln B(x + 1, a + b) − ln B(x + 1, b)``
(the large-argument series of :mod:`.gamma_gamma_likelihood`, no cancellation of four lnΓ when
``a + b`` is large) and ``ln a − ln(b + x)``. The x-only terms are evaluated once per distinct
``x``, as for BG/NBD, so a likelihood and gradient call costs a few passes over the rows.

The gradient (``s`` the share of the A4 term in the log-sum-exp)::

    ∂/∂a = ψ(a + b) − ψ(a + b + x + 1) + s/a
    ∂/∂b = ψ(a + b) + ψ(b + x + 1) − ψ(b) − ψ(a + b + x + 1) − s/(b + x)

and ``∂/∂r``, ``∂/∂α`` as for BG/NBD. lifetimes stays the oracle: the tests check the value,
the gradient (against autograd on lifetimes' function and against central differences) and the
fit (against ``ModifiedBetaGeoFitter.fit``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from clvmodel.models import mle
from clvmodel.models.bgnbd_likelihood import BetaGeoLikelihood, _dot, starts, time_scale
from clvmodel.models.gamma_gamma_likelihood import _digamma_step, _log_beta

__all__ = ["PARAMS", "ModifiedBetaGeoLikelihood", "fit"]

Vector = NDArray[np.float64]

#: Parameter order, as lifetimes' ``ModifiedBetaGeoFitter.params_``.
PARAMS = ("r", "alpha", "a", "b")

MODEL = "mbgnbd"


class ModifiedBetaGeoLikelihood(BetaGeoLikelihood):
    """The mean negative MBG/NBD log-likelihood over weighted rows and its gradient.

    Called with ``θ = ln(r, α, a, b)`` it returns ``(−Σ w ln L / Σ w, ∂/∂θ of that)``, the same
    function as lifetimes' ``ModifiedBetaGeoFitter._negative_log_likelihood(θ, x, t_x, T, w, 0)``.

    Parameters
    ----------
    frequency, recency, T
        ``x, t_x, T`` per row (any time unit; ``alpha`` is in that unit).
    weights
        Customers per row (collapsed identical rows).
    """

    def __init__(self, frequency: NDArray[Any], recency: NDArray[Any], T: NDArray[Any], weights: NDArray[Any]) -> None:
        super().__init__(frequency, recency, T, weights)
        # Every customer has the A4 term (a one-time buyer may have dropped out after the first purchase).
        self.repeat = np.ones(len(self.x_values), dtype=bool)
        self.repeat_x = self.x_values

    def _a4_constant(self, a: float, b: float) -> Vector:
        """ln a − ln(b + x) per distinct x."""
        return np.log(a) - np.log(b + self.x_values)

    def _a2(self, a: float, b: float) -> Vector:
        """A2 per distinct x: ``ln B(x + 1, a + b) − ln B(x + 1, b)``."""
        opportunities = self.x_values + 1.0
        return _log_beta(opportunities, a + b) - _log_beta(opportunities, b)

    def _gradient(
        self, r: float, alpha: float, a: float, b: float, log_total: Vector, log_last: Vector, share: Vector
    ) -> Vector:
        """∂ Σ w ln L / ∂ ln(r, α, a, b) (see the module docstring)."""
        xs, per_x = self.x_values, self.weight_per_x
        ws, d_r, d_alpha = self._rate_gradient(r, alpha, log_total, log_last, share)
        ws_per_x = np.bincount(self.x_index, weights=ws, minlength=len(xs))  # Σ w s by distinct x
        opportunities = xs + 1.0
        total_step = _digamma_step(a + b, opportunities)  # ψ(a + b + x + 1) − ψ(a + b)
        d_a = -_dot(per_x, total_step) + ws_per_x.sum() / a
        d_b = _dot(per_x, _digamma_step(b, opportunities) - total_step) - _dot(ws_per_x, 1.0 / (b + xs))
        return np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])


def _check_rows(x: Vector, tx: Vector, T: Vector, weights: Vector) -> None:
    """lifetimes' ``_check_inputs`` for the purchase models, as one-line errors counting customers."""
    mle.refuse_rows(MODEL, mle.rfm_problems(x, tx, T), weights)


def fit(columns: dict[str, NDArray[Any]], weights: NDArray[Any], *, initial_params: Any = None,
        tol: float = mle.LIFETIMES_TOL, **options: Any) -> mle.FitResult:
    """Maximum likelihood MBG/NBD on weighted rows, equal to lifetimes' ``ModifiedBetaGeoFitter.fit``.

    As :func:`.bgnbd_likelihood.fit`: the mean objective over weighted rows in time rescaled so the
    longest age is 1 (:func:`.bgnbd_likelihood.time_scale`), BFGS from lifetimes' start (0.1 for
    each log-parameter) and then the two data-derived starts of :func:`.bgnbd_likelihood.starts`
    (:func:`.mle.search`), the best stationary stop kept (:func:`.mle.best_stop`), the Hessian by
    central differences of the analytic gradient (:func:`.mle.central_hessian`).

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
    stops = mle.search(objective, planned, tol=tol, **options)
    optimum = mle.best_stop(stops, n) or next((s for s in stops if s.success and np.isfinite(s.fun)), None)
    if optimum is None:
        raise mle.not_converged(MODEL, mle.failure_words(stops, of=len(planned)), starts=len(planned))
    with np.errstate(all="ignore"):
        hessian = mle.central_hessian(lambda theta: objective(theta)[1], optimum.x) * n
    log_params = optimum.x.copy()
    log_params[1] -= np.log(scale)  # α in rescaled time -> the rows' unit
    params = dict(zip(PARAMS, (float(v) for v in np.exp(log_params))))
    # Rescaling time by c multiplies each likelihood by c^(-x): Σ w ln L gains Σ w x ln c.
    log_likelihood = -optimum.fun * n + float(objective.weighted_x.sum()) * np.log(scale)
    return mle.fit_result(MODEL, params, log_likelihood, optimum.jac, hessian, n)

