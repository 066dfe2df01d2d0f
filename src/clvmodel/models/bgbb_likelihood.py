"""BG/BB log-likelihood with its analytic gradient in numpy, and the fit built on it.

The model (Fader, Hardie & Shang 2010, "Customer-base analysis in a discrete-time noncontractual
setting", Marketing Science 29(6), FHS10): a customer has ``n`` transaction opportunities after
her first transaction; while alive she transacts at each with probability ``p ~ Beta(α, β)``,
and at the start of each opportunity she dies with probability ``θ ~ Beta(γ, δ)``. Her history
is ``(x, t_x, n)``: ``x`` transactions, the last at opportunity ``t_x``.

The likelihood is equation (5) of FHS10 (with ``B`` the Beta function)::

    L(α, β, γ, δ | x, t_x, n) = B(α+x, β+n−x)/B(α,β) · B(γ, δ+n)/B(γ,δ)
        + Σ_{i=0}^{n−t_x−1} B(α+x, β+t_x−x+i)/B(α,β) · B(γ+1, δ+t_x+i)/B(γ,δ)

Read it as a sum over the last opportunity ``m`` at which she was alive: ``m = n`` (alive
throughout; the first term) or ``m = t_x + i < n`` (alive at ``m``, dead at ``m + 1``). Each term
is ``E[p^x (1−p)^(m−x)] · P(alive exactly to m)``, so

    ln term(x, m) = lnΓ(α+x) + lnΓ(β+m−x) − lnΓ(α+β+m) − lnB(α, β)
                    + lnΓ(δ+m) − lnΓ(γ+δ+m+d) + d ln γ − lnΓ(δ) + lnΓ(γ+δ)

with ``d = 0`` for ``m = n`` and ``d = 1`` for ``m < n``. Every argument is a parameter plus an
integer no larger than ``max n + 1``, so one call evaluates lnΓ and ψ on five short tables (one per
parameter combination) and the rest is indexing. ``ln L`` is the log-sum-exp of a customer's
``n − t_x + 1`` terms (no underflow for long histories), and the gradient is the terms' softmax
weights times their closed-form derivatives; the Hessian comes from central differences of this
gradient (:func:`.mle.central_hessian`), as for BG/NBD. The same terms give P(alive at n): the
softmax weight of the ``m = n`` term (:meth:`BetaGeoBetaBinomLikelihood.alive_now`).

lifetimes' ``BetaGeoBetaBinomFitter._loglikelihood`` is the oracle the tests check this against;
it adds ``1e-15`` to the second part of equation (5) (to keep its logarithm finite when
``t_x = n``), which biases every ``ln L`` slightly (1e-13 on the donations data, more where ``L``
is small); here a customer with ``t_x = n`` simply has no such terms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import digamma, gammaln

from clvmodel.errors import ClvError, ConvergenceFailure
from clvmodel.models import mle

__all__ = ["PARAMS", "MAX_TERMS", "BetaGeoBetaBinomLikelihood", "check_rows", "starting_points", "fit"]

Vector = NDArray[np.float64]

#: Parameter order, as lifetimes' ``BetaGeoBetaBinomFitter.params_`` and R BTYD's ``params``.
PARAMS = ("alpha", "beta", "gamma", "delta")

#: Most terms of equation (5) over the distinct rows, Σ (n − t_x + 1), that one evaluation may hold
#: (about 100 bytes each, so ~2 GB): BG/BB counts opportunities such as years, quarters or weeks
#: (FHS10: 6 annual ones); hundreds of distinct ``n`` with thousands of opportunities each is a
#: daily purchase model, which the continuous-time models serve better.
MAX_TERMS = 20_000_000


def _dot(u: Vector, v: Vector) -> float:
    """Σ u v without BLAS (see :func:`.bgnbd_likelihood._dot`: threaded ``ddot`` stalls)."""
    return float(np.einsum("i,i->", u, v))


def check_rows(x: Vector, tx: Vector, n: Vector, weights: Vector, model: str = "bgbb") -> None:
    """Refuse histories BG/BB cannot have, as one-line errors that count the customers.

    A history is whole opportunities ``0 ≤ x ≤ t_x ≤ n`` (each transaction takes one of the
    opportunities ``1 … t_x``), with ``t_x = 0`` exactly when ``x = 0``.
    """
    weights = np.broadcast_to(np.asarray(weights, dtype=float), np.shape(x))
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(x) & np.isfinite(tx) & np.isfinite(n)
        whole = (x == np.round(x)) & (tx == np.round(tx)) & (n == np.round(n))
        problems = [
            (~np.isfinite(weights) | (weights < 0), "a missing, infinite or negative weight"),
            (~finite, "a missing or infinite frequency, recency or T"),
            ((x < 0) | (tx < 0) | (n < 0), "a negative frequency, recency or T"),
            (~whole, "a non-integer frequency, recency or T (BG/BB counts whole transaction opportunities)"),
            (tx > n, "recency > T (a last transaction after the last opportunity)"),
            (x > tx, "frequency > recency (more transactions than opportunities up to the last one)"),
            ((x == 0) & (tx != 0), "a non-zero recency with frequency 0"),
        ]
    total = np.where(np.isfinite(weights), weights, 0.0).sum()
    for bad, what in problems:
        if np.any(bad):
            count = np.where(np.isfinite(weights), weights, 1.0)[bad].sum()
            raise ClvError(f"{model}: {count:,.0f} of {total:,.0f} customers have {what}; check the RFM summary")


class BetaGeoBetaBinomLikelihood:
    """The mean negative BG/BB log-likelihood over weighted rows, equation (5) of FHS10, and its gradient.

    Calling it with log-parameters ``θ = ln(α, β, γ, δ)`` returns ``(−Σ w ln L / Σ w, ∂/∂θ of
    that)``: lifetimes' ``BetaGeoBetaBinomFitter._negative_log_likelihood`` without its ``1e-15``.

    Parameters
    ----------
    frequency, recency, n
        ``x, t_x, n`` per row: whole numbers with ``x ≤ t_x ≤ n`` (checked by :func:`check_rows`
        in :func:`fit`; not here).
    weights
        Customers per row (collapsed identical rows).
    """

    def __init__(self, frequency: NDArray[Any], recency: NDArray[Any], n: NDArray[Any], weights: NDArray[Any]) -> None:
        x = np.asarray(frequency, dtype=float).astype(np.int64)
        tx = np.asarray(recency, dtype=float).astype(np.int64)
        n_ = np.asarray(n, dtype=float).astype(np.int64)
        self.weights = np.asarray(weights, dtype=float)
        self.total_weight = float(self.weights.sum())
        counts = n_ - tx + 1  # the terms m = t_x, ..., n of each row
        if int(counts.sum()) > MAX_TERMS:
            raise ClvError(
                f"bgbb: these {len(counts):,} distinct histories need {int(counts.sum()):,} terms of the likelihood "
                f"(more than {MAX_TERMS:,}); use a coarser transaction opportunity (weeks or months, not days)"
            )
        # Rows' terms are contiguous: row r owns [starts[r], starts[r] + counts[r]).
        self.starts = np.cumsum(counts) - counts
        self.row = np.repeat(np.arange(len(counts)), counts)
        m = tx[self.row] + (np.arange(len(self.row)) - self.starts[self.row])
        died = m < n_[self.row]
        self.x = x[self.row]  # table indices: α + x, β + m − x, α + β + m, δ + m, γ + δ + m + d
        self.m = m
        self.m_minus_x = m - self.x
        self.m_plus_d = m + died
        self.died = died.astype(float)
        self.alive_term = self.starts + counts - 1  # the m = n term is each row's last
        self.size = int(n_.max(initial=0)) + 1  # table indices run to max n (m + d ≤ n)

    def __call__(self, log_params: Vector) -> tuple[float, Vector]:
        """Mean negative log-likelihood and its gradient at ``θ = ln(α, β, γ, δ)``."""
        params = np.exp(np.asarray(log_params, dtype=float))
        log_terms, log_l = self._terms(params)
        value = _dot(self.weights, log_l)
        gradient = self._gradient(params, log_terms, log_l)
        return -value / self.total_weight, -gradient / self.total_weight

    def log_likelihood(self, log_params: Vector) -> float:
        """Total (weighted) log-likelihood Σ w ln L at ``θ``."""
        _, log_l = self._terms(np.exp(np.asarray(log_params, dtype=float)))
        return _dot(self.weights, log_l)

    def rows(self, params: Vector) -> Vector:
        """ln L per row at the parameters ``(α, β, γ, δ)`` (not their logarithms)."""
        return self._terms(np.asarray(params, dtype=float))[1]

    def alive_now(self, params: Vector) -> Vector:
        """P(alive at n | x, t_x, n) per row: the share of the ``m = n`` term in L.

        Equation (5)'s first term over L (Bayes: that term is the probability of the history
        *and* of being alive at ``n``); FHS10's equation (11) moves it one opportunity ahead.
        """
        log_terms, log_l = self._terms(np.asarray(params, dtype=float))
        return np.exp(log_terms[self.alive_term] - log_l)

    def _tables(self, params: Vector, f: Any) -> tuple[Vector, ...]:
        alpha, beta, gamma, delta = params
        k = np.arange(self.size, dtype=float)
        return f(alpha + k), f(beta + k), f(alpha + beta + k), f(delta + k), f(gamma + delta + k)

    def _terms(self, params: Vector) -> tuple[Vector, Vector]:
        """ln of every term of equation (5) and ln L per row (the log-sum-exp over its terms)."""
        a, b, ab, d, gd = self._tables(params, gammaln)
        # −ln B(α, β) − ln B(γ, δ) without lnΓ(γ), which cancels against that of B(γ, δ+m) or B(γ+1, δ+m)
        constant = -a[0] - b[0] + ab[0] - d[0] + gd[0]
        log_terms = (a[self.x] + b[self.m_minus_x] - ab[self.m] + d[self.m] - gd[self.m_plus_d]
                     + self.died * np.log(params[2]) + constant)
        top = np.maximum.reduceat(log_terms, self.starts)
        log_l = top + np.log(np.add.reduceat(np.exp(log_terms - top[self.row]), self.starts))
        return log_terms, log_l

    def _gradient(self, params: Vector, log_terms: Vector, log_l: Vector) -> Vector:
        """∂ Σ w ln L / ∂ ln(α, β, γ, δ): Σ over terms of (w × softmax weight) × ∂ ln term.

        ∂/∂α = ψ(α+x) − ψ(α+β+m) − ψ(α) + ψ(α+β)
        ∂/∂β = ψ(β+m−x) − ψ(α+β+m) − ψ(β) + ψ(α+β)
        ∂/∂γ = d/γ − ψ(γ+δ+m+d) + ψ(γ+δ)
        ∂/∂δ = ψ(δ+m) − ψ(γ+δ+m+d) − ψ(δ) + ψ(γ+δ)
        """
        a, b, ab, d, gd = self._tables(params, digamma)
        share = self.weights[self.row] * np.exp(log_terms - log_l[self.row])  # Σ per row = the row's weight
        total = self.total_weight
        ab_m, gd_md = ab[self.m], gd[self.m_plus_d]
        d_alpha = _dot(share, a[self.x] - ab_m) + total * (ab[0] - a[0])
        d_beta = _dot(share, b[self.m_minus_x] - ab_m) + total * (ab[0] - b[0])
        d_gamma = _dot(share, self.died) / params[2] - _dot(share, gd_md) + total * gd[0]
        d_delta = _dot(share, d[self.m] - gd_md) + total * (gd[0] - d[0])
        return np.array([d_alpha, d_beta, d_gamma, d_delta]) * params


def starting_points(x: Vector, tx: Vector, n: Vector, weights: Vector) -> list[Vector]:
    """The log-parameters :func:`fit` starts from, in order; it keeps the best optimum.

    1. ``α = β = γ = δ = 1`` (both mixing distributions uniform): R BTYD's
       ``bgbb.EstimateParameters`` default.
    2. ``e^0.1`` for each: lifetimes' start (:data:`.mle.LIFETIMES_START`), so that a likelihood
       with one optimum is reached along lifetimes' own path.
    3. From the data, in another region: mean purchase probability ``α/(α+β)`` = the share of
       opportunities ``1 … t_x`` with a transaction among repeat customers (they were surely
       alive then), mean dropout ``γ/(γ+δ) = 1/(1 + mean n)`` (a customer expected to outlive the
       observation window), each Beta with weight ``α+β = γ+δ = 2``.

    All deterministic: the same data give the same fit.
    """
    start = [np.zeros(4), np.full(4, mle.LIFETIMES_START)]
    repeat = tx > 0
    opportunities = _dot(weights[repeat], tx[repeat])
    p = _dot(weights[repeat], x[repeat]) / opportunities if opportunities > 0 else 0.5
    p = min(max(p, 0.05), 0.95)
    theta = 1.0 / (1.0 + _dot(weights, n) / max(float(weights.sum()), 1e-300))
    start.append(np.log([2 * p, 2 * (1 - p), 2 * theta, 2 * (1 - theta)]))
    return start


def fit(columns: dict[str, NDArray[Any]], weights: NDArray[Any], *, initial_params: Any = None,
        tol: float = mle.LIFETIMES_TOL, **options: Any) -> mle.FitResult:
    """Maximum likelihood BG/BB on weighted rows (equation (5) of FHS10).

    BFGS from each of :func:`starting_points` (or only from ``initial_params``); the stationary
    point with the highest likelihood is kept (the first on a tie). Donations (11,104 donors,
    22 distinct rows): α 1.204, β 0.750, γ 0.657, δ 2.783, LL −33,225.58, as published.

    Parameters
    ----------
    columns
        ``frequency, recency, T`` per row: ``x, t_x`` and ``n`` (the model's ``T`` is the number of
        transaction opportunities; its time unit is one opportunity).
    weights
        Customers per row.
    initial_params, tol, options
        Starting log-parameters ``ln(α, β, γ, δ)``, BFGS ``gtol`` on the mean log-likelihood,
        scipy ``minimize`` options (``maxiter``, ...).

    Returns
    -------
    mle.FitResult
        Estimates, the total log-likelihood Σ w ln L, standard errors from a central-difference
        Hessian of the analytic gradient.

    Raises
    ------
    ClvError
        Histories BG/BB cannot have (:func:`check_rows`).
    ConvergenceFailure
        No start reached a stationary point (the first start's failure is raised).
    """
    x, tx, n = (np.asarray(columns[c], dtype=float) for c in ("frequency", "recency", "T"))
    w = np.asarray(weights, dtype=float)
    check_rows(x, tx, n, w)
    objective = BetaGeoBetaBinomLikelihood(x, tx, n, w)
    starts = starting_points(x, tx, n, w) if initial_params is None else [np.asarray(initial_params, dtype=float)]
    best, failure = None, None
    for start in starts:
        try:
            result = mle.minimise(objective, start, model="bgbb", tol=tol, **options)
        except ConvergenceFailure as err:
            failure = failure or err
            continue
        if best is None or result.fun < best.fun:
            best = result
    if best is None:
        assert failure is not None
        raise failure
    with np.errstate(all="ignore"):
        hessian = mle.central_hessian(lambda theta: objective(theta)[1], best.x) * objective.total_weight
    params = dict(zip(PARAMS, (float(v) for v in np.exp(best.x))))
    log_likelihood = -best.fun * objective.total_weight
    return mle.fit_result("bgbb", params, log_likelihood, best.jac, hessian, objective.total_weight)
