"""Pareto/NBD log-likelihood with static covariates, its analytic gradient in numpy, and the fit (issue 14).

The likelihood of a customer with ``x`` repeat purchases, the last at ``t_x``, observed for ``T``
is equation (18) of Fader & Hardie's note 009 ("A note on deriving the Pareto/NBD model and
related expressions", 2005), written in its integral form::

    L = Γ(r+x)/Γ(r) α^r β^s [ (α+T)^{−(r+x)} (β+T)^{−s} + s ∫_{t_x}^T (α+τ)^{−(r+x)} (β+τ)^{−(s+1)} dτ ]

(the first term: alive at T; the second: dropped out unseen at τ between the last purchase and T).
R CLVTools 0.12.1 (``src/pnbd.cpp:309-428``) evaluates the same expression with the integral in
Gauss-hypergeometric closed form; where ``t_x = T`` the integral is empty and both use the first
term alone (``pnbd.cpp:421-425``), exactly.

Static covariates (Fader & Hardie 2007, "Incorporating time-invariant covariates into the
Pareto/NBD and BG/NBD models"; CLVTools' parameterisation, ``pnbd.cpp:525-536``): customer i's
``α_i = α·exp(−γ_transᵀ z_i)`` and ``β_i = β·exp(−γ_lifeᵀ z_i)``, every formula the plain one at
``(α_i, β_i)``. A positive ``trans`` coefficient means a higher purchase rate, a positive ``life``
one a higher dropout rate. The optimiser's vector is CLVTools' ``θ = (ln r, ln α, ln s, ln β,
γ_life, γ_trans)``: base parameters in logs, coefficients raw.

The integral. It is evaluated by fixed Gauss-Legendre rules (as :mod:`.ggomnbd_likelihood`
does for GGom/NBD, whose b → 0 limit this model is) in ``u = ln((α+τ)/(α+t_x))``, where the
purchase factor is an exponential; the panels are the union of equal steps in ``u`` and in
``ln(β+τ)`` (where the dropout factor is), :data:`NODES` nodes each, and the range is cut where the
integrand has provably fallen e^:data:`DROP` below its start; rows whose integrand is mild (most:
a few e-folds over the range, :data:`MILD_EFOLDS`) get a single panel. Unlike lifetimes' ₂F₁ form it never
overflows (a frequent buyer with ``β < α`` made lifetimes' ₂F₁ infinite, :mod:`.lifetimes_adapter`),
and the derivatives with respect to ``r`` and ``s`` (which have no ₂F₁ closed form: ``∂/∂k`` of
``(α+τ)^{−k}``) are integrand-weighted means on the same nodes, so the gradient is analytic up to
the same quadrature error.

The gradient. With per-row scores ``g^α_i = ∂ℓ_i/∂ln α_i`` and ``g^β_i = ∂ℓ_i/∂ln β_i`` (the plain
model's, at the row's own parameters), the chain rule through the links gives::

    ∂ℓ/∂ln α = Σ w g^α       ∂ℓ/∂γ_trans = −Z_transᵀ (w ⊙ g^α)
    ∂ℓ/∂ln β = Σ w g^β       ∂ℓ/∂γ_life  = −Z_lifeᵀ  (w ⊙ g^β)

and ``∂ℓ/∂ln r``, ``∂ℓ/∂ln s`` are sums of per-row scores at ``(α_i, β_i)``. The same ``z``
columns enter both processes (as CLVTools with covariates in both).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.special import digamma, expit, gammaln, roots_legendre

from clvmodel.errors import ClvError, ConvergenceFailure
from clvmodel.models import mle
from clvmodel.models.base import collapse, distinct_pairs
from clvmodel.models.covariate_model import coefficient_names

__all__ = [
    "PARAMS",
    "NODES",
    "PANELS",
    "DROP",
    "CHUNK",
    "CLVTOOLS_START",
    "CLVTOOLS_GAMMA_START",
    "MILD_EFOLDS",
    "MILD_RANGE",
    "MILD_DISTANCE",
    "PARETO_RIDGE_CHECK_S",
    "death_integral",
    "relative_integral",
    "ParetoNBDCovariateLikelihood",
    "ParetoNBDLikelihood",
    "coefficient_names",
    "log_likelihood",
    "fit_covariates",
    "fit",
    "p_alive",
    "expected_purchases_if_alive",
    "expected_purchases_new",
]

Vector = NDArray[np.float64]

#: The base parameters, in the optimiser's order (CLVTools' ``r, alpha, s, beta``).
PARAMS = ("r", "alpha", "s", "beta")

#: Gauss-Legendre nodes per panel, and equal steps per variable (``u`` and ``ln(β+τ)``). A mild row
#: (:data:`MILD_EFOLDS`; typical rows are) gets one panel; any other row ``2·PANELS − 1`` panels,
#: each spanning at most DROP/PANELS = 15 e-folds of each factor (16 nodes integrate e^{−15x} on a
#: unit panel to ~1e-18 and e^{−30x} to ~2e-7 relative).
NODES = 16
PANELS = 3
#: e-folds below the integrand's starting value at which the range is cut: e^{−45} ≈ 3e-20.
DROP = 45.0
#: Rows per block: bounded temporaries (rows × 80 nodes) whatever the number of customers.
CHUNK = 20_000

#: ``s`` above which a stop of the plain fit (:func:`fit`) is compared with the ``s, β → ∞`` limit
#: (:data:`.lifetimes_adapter.PARETO_RIDGE_CHECK_S`, the same value, for the reference path).
PARETO_RIDGE_CHECK_S = 10.0

#: R CLVTools 0.12.1's start for Pareto/NBD (``R/class_clv_model_pnbd.R:58-60``), in the data's
#: time unit, and for every coefficient (``R/class_clv_model_pnbd_staticcov.R:26``).
CLVTOOLS_START = (0.5, 15.0, 0.5, 10.0)
CLVTOOLS_GAMMA_START = 0.1

_RULE = roots_legendre(NODES)


def _dot(u: Vector, v: Vector) -> float:
    """Σ u v without BLAS (see :func:`.bgnbd_likelihood._dot`)."""
    return float(np.einsum("i,i->", u, v))


def death_integral(k: Vector, m: Vector, alpha: Vector, beta: Vector, tx: Vector, T: Vector,
                   *, gradient: bool = False) -> tuple[Vector, Vector | None]:
    """``ln I`` with ``I = ∫_{t_x}^T (α+τ)^{−k} (β+τ)^{−m} dτ`` per row (−∞ where the range is empty).

    Every argument is a per-row array (``k = r + x``, ``m = s + 1``, ``α, β`` the row's own). With
    ``gradient=True`` also the integrand-weighted means of ``ln(α+τ)``, ``1/(α+τ)``, ``ln(β+τ)``,
    ``1/(β+τ)`` (rows × 4): ``∂ ln I/∂k = −E ln(α+τ)``, ``∂ ln I/∂α = −k E 1/(α+τ)``, and the same
    for ``m, β``. :func:`relative_integral` is the form the likelihood uses.
    """
    log_relative, moments = relative_integral(k, m, alpha, beta, tx, T, gradient=gradient)
    log_total = log_relative - m * np.log(beta)
    if moments is not None:
        moments = np.column_stack([moments[:, 0], moments[:, 1], np.log(beta) + moments[:, 2],
                                   (1.0 - moments[:, 3]) / beta])
    return log_total, moments


def relative_integral(k: Vector, m: Vector, alpha: Vector, beta: Vector, tx: Vector, T: Vector,
                      *, gradient: bool = False) -> tuple[Vector, Vector | None]:
    """``ln Ĩ`` with ``Ĩ = β^m I = ∫_{t_x}^T (α+τ)^{−k} (1+τ/β)^{−m} dτ`` per row (−∞ where the range is empty).

    The dropout factor relative to its value at τ = 0, so that nothing of size ``m ln β`` is
    formed and subtracted: far out along the ``s, β → ∞`` ridge (``m`` and ``β`` in the millions
    and beyond) ``(1+τ/β)^{−m} → e^{−μτ}`` keeps every digit, where ``m ln(β+τ)`` would carry
    ~``eps·m ln β`` of rounding. With ``gradient=True`` also the integrand-weighted means of
    ``ln(α+τ)``, ``1/(α+τ)``, ``ln(1+τ/β)`` and ``τ/(β+τ)`` (rows × 4).
    """
    n = len(k)
    log_total = np.full(n, -np.inf)
    moments = np.zeros((n, 4)) if gradient else None
    # The integrand is decreasing in τ and each factor alone bounds its fall: past
    # (α+t_x) e^{DROP/k} − α the purchase factor, past (β+t_x) e^{DROP/m} − β the dropout factor
    # has fallen by e^{DROP}. What is cut is below e^{−DROP} (T − t_x) times the integrand at t_x.
    with np.errstate(over="ignore"):
        hi = np.minimum(np.minimum(T, tx + (alpha + tx) * np.expm1(DROP / k)), tx + (beta + tx) * np.expm1(DROP / m))
    rows = np.flatnonzero(hi > tx)
    if len(rows) == 0:
        return log_total, moments
    k, m, a, b, lo, hi = k[rows], m[rows], alpha[rows], beta[rows], tx[rows], hi[rows]
    base = a + lo
    top = np.log1p((hi - lo) / base)  # u at the end of the range
    # Most rows are mild: one panel of NODES nodes is exact to rounding there (_mild), five
    # times cheaper than the composite rule the others get (1M simulated customers: 0.3 s
    # against 1.1 s per value and gradient).
    mild = _mild(k, m, a, b, lo, hi, top)
    for part, composite in ((np.flatnonzero(mild), False), (np.flatnonzero(~mild), True)):
        if len(part) == 0:
            continue
        if composite:
            edges = _composite_edges(b[part], lo[part], hi[part], base[part], top[part])
        else:
            edges = np.stack([np.zeros(len(part)), top[part]], axis=1)
        part_log, part_moments = _integrate(k[part], m[part], b[part], lo[part], base[part], edges, gradient)
        log_total[rows[part]] = part_log
        if gradient:
            moments[rows[part]] = part_moments
    return log_total, moments


#: A row is integrated on one panel when its integrand, in u, changes by at most this many e-folds
#: (purchase and dropout factors together), its u-range is at most :data:`MILD_RANGE` and the
#: dropout factor's singularity (at ``τ = −β``; in u at ``ln(1 − (β+t_x)/(α+t_x))`` when β < α) lies
#: at least :data:`MILD_DISTANCE` u-ranges before the start (when β ≥ α its singularities are π off
#: the real axis, which the range bounds). Measured on 200,000 random rows (k from 0.03 to 300,
#: s + 1 from 1 to 30, α, β from 0.01 to 1000, T from 0.1 to 1000), ln I on one panel and on the
#: composite rule differ by at most 1.5e-12, the gradient's moments by 9e-12 relative; with a
#: quarter range instead of one, by 2e-7 (a high-order pole close to the start: s large, β ≪ α),
#: and with a range of 6, by 1e-10. On simulated data of a million customers every row is mild.
MILD_EFOLDS = 16.0
MILD_RANGE = 4.0
MILD_DISTANCE = 1.0


def _mild(k: Vector, m: Vector, a: Vector, b: Vector, lo: Vector, hi: Vector, top: Vector) -> NDArray[np.bool_]:
    """Which rows one Gauss-Legendre panel in u integrates to rounding (see :data:`MILD_EFOLDS`)."""
    change = np.abs(1.0 - k) * top + m * np.log1p((hi - lo) / (b + lo))
    ratio = (b + lo) / (a + lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.where(ratio < 1.0, -np.log1p(-np.minimum(ratio, 1.0)), np.inf)
    return (change <= MILD_EFOLDS) & (top <= MILD_RANGE) & (gap >= MILD_DISTANCE * top)


def _composite_edges(b: Vector, lo: Vector, hi: Vector, base: Vector, top: Vector) -> Vector:
    """Panel edges in u (rows × panels+1): the union of :data:`PANELS` equal steps in u and in ln(β+τ)."""
    steps = np.arange(1, PANELS) / PANELS
    # Equal steps in ln(β+τ) mapped to u. τ = t_x + (α+t_x) expm1(u) keeps the digits of τ − t_x
    # when τ ≪ α.
    tau_v = lo[:, None] + (b + lo)[:, None] * np.expm1(np.log1p((hi - lo) / (b + lo))[:, None] * steps)
    inner = np.concatenate([top[:, None] * steps, np.log1p((tau_v - lo[:, None]) / base[:, None])], axis=1)
    return np.concatenate([np.zeros((len(lo), 1)), np.sort(np.clip(inner, 0.0, top[:, None]), axis=1), top[:, None]],
                          axis=1)


def _integrate(k: Vector, m: Vector, b: Vector, lo: Vector, base: Vector, edges: Vector,
               gradient: bool) -> tuple[Vector, Vector | None]:
    """Gauss-Legendre in u on the panels ``edges`` (rows × panels+1): ln Ĩ and the moments of :func:`relative_integral`."""
    rows = len(lo)
    half = (edges[:, 1:] - edges[:, :-1]) / 2  # rows × panels
    centre = (edges[:, 1:] + edges[:, :-1]) / 2
    xs, ws = _RULE
    u = (centre[:, :, None] + half[:, :, None] * xs).reshape(rows, -1)
    with np.errstate(divide="ignore"):
        log_w = (np.log(half)[:, :, None] + np.log(ws)).reshape(rows, -1)
    tau = lo[:, None] + base[:, None] * np.expm1(u)
    log_a = np.log(base)[:, None] + u  # ln(α+τ), exact in u
    log_b = np.log1p(tau / b[:, None])  # ln(1+τ/β)
    # dτ = (α+τ) du: the purchase factor becomes (α+τ)^{1−k}.
    terms = log_w + (1.0 - k[:, None]) * log_a - m[:, None] * log_b
    peak = np.max(terms, axis=1)
    mass = np.exp(terms - peak[:, None])
    total = mass.sum(axis=1)
    log_total = peak + np.log(total)
    if not gradient:
        return log_total, None
    share = mass / total[:, None]
    moments = np.stack([
        np.einsum("ij,ij->i", share, log_a),
        np.einsum("ij,ij->i", share, np.exp(-log_a)),
        np.einsum("ij,ij->i", share, log_b),
        np.einsum("ij,ij->i", share, -np.expm1(-log_b)),  # τ/(β+τ) = 1 − 1/(1+τ/β)
    ], axis=1)
    return log_total, moments


def _row_terms(r: float, s: float, alpha: Vector, beta: Vector, x: Vector, tx: Vector, T: Vector,
               *, gradient: bool) -> tuple[Vector, Vector | None]:
    """Per-row ``ℓ`` and, with ``gradient``, its derivatives with respect to ``ln r, ln α_i, ln s, ln β_i`` (rows × 4).

    ``ℓ = common + logaddexp(alive, dead)``, every term of size ``s ln β`` cancelled analytically
    (:func:`relative_integral`), so the likelihood keeps its digits as ``s, β → ∞``::

        common = lnΓ(r+x) − lnΓ(r) + r ln α
        alive  = −(r+x) ln(α+T) − s ln(1 + T/β)
        dead   = ln s − ln β + ln Ĩ(r+x, s+1)     (−∞ where t_x = T: CLVTools' exact branch)

    (the same as ``s ln β − s ln(β+T)`` and ``s ln β + ln s + ln I`` of equation (18)).
    """
    k = r + x
    log_i, moments = relative_integral(k, np.full_like(x, s + 1.0), alpha, beta, tx, T, gradient=gradient)
    common = gammaln(k) - gammaln(r) + r * np.log(alpha)
    log_aT = np.log(alpha + T)
    log_rel_T = np.log1p(T / beta)  # ln(1 + T/β)
    alive = -k * log_aT - s * log_rel_T
    dead = np.log(s) - np.log(beta) + log_i
    value = common + np.logaddexp(alive, dead)
    if not gradient:
        return value, None
    p = expit(dead - alive)  # share of the "dead" term (0 where it is empty)
    q = 1.0 - p
    d_r = digamma(k) - digamma(r) + np.log(alpha) - q * log_aT - p * moments[:, 0]
    d_alpha = r / alpha - q * k / (alpha + T) - p * k * moments[:, 1]
    # ∂/∂s: ln β − q ln(β+T) + p (1/s − E ln(β+τ)), with ln(β+·) = ln β + ln(1+·/β) and p + q = 1.
    d_s = -q * log_rel_T + p * (1.0 / s - moments[:, 2])
    # β ∂/∂β: s − q s β/(β+T) − p (s+1) E β/(β+τ), written with τ/(β+τ) = 1 − β/(β+τ) (no s − s).
    beta_d_beta = s * q * T / (beta + T) + p * (s * moments[:, 3] - (1.0 - moments[:, 3]))
    return value, np.stack([r * d_r, alpha * d_alpha, s * d_s, beta_d_beta], axis=1)


class ParetoNBDCovariateLikelihood:
    """The mean negative Pareto/NBD log-likelihood with static covariates over weighted rows, and its gradient.

    Called with ``θ = (ln r, ln α, ln s, ln β, γ_life (p), γ_trans (p))`` it returns
    ``(−Σ w ℓ / Σ w, ∂/∂θ of that)``. With ``p = 0`` it is the plain Pareto/NBD likelihood.

    Parameters
    ----------
    frequency, recency, T
        ``x, t_x, T`` per row (any time unit; α and β are in that unit).
    weights
        Customers per row (collapsed identical rows).
    design
        ``z`` per row, rows × p (the same columns for both processes); ``None`` for none.
    """

    def __init__(self, frequency: NDArray[Any], recency: NDArray[Any], T: NDArray[Any], weights: NDArray[Any],
                 design: NDArray[Any] | None = None) -> None:
        self.x = np.asarray(frequency, dtype=float)
        self.tx = np.asarray(recency, dtype=float)
        self.T = np.asarray(T, dtype=float)
        self.weights = np.asarray(weights, dtype=float)
        self.total_weight = float(self.weights.sum())
        self.design = np.zeros((len(self.x), 0)) if design is None else np.asarray(design, dtype=float).reshape(len(self.x), -1)
        self.p = self.design.shape[1]

    def _individual(self, theta: Vector) -> tuple[float, float, Vector, Vector]:
        """``r, s`` and the rows' ``α_i = α e^{−γ_transᵀz}``, ``β_i = β e^{−γ_lifeᵀz}``."""
        theta = np.asarray(theta, dtype=float)
        r, alpha, s, beta = np.exp(theta[:4])
        life, trans = theta[4:4 + self.p], theta[4 + self.p:]
        if self.p:
            return float(r), float(s), alpha * np.exp(-self.design @ trans), beta * np.exp(-self.design @ life)
        n = len(self.x)
        return float(r), float(s), np.full(n, alpha), np.full(n, beta)

    def _blocks(self) -> Any:
        return (slice(start, start + CHUNK) for start in range(0, len(self.x), CHUNK))

    def rows(self, theta: Vector) -> Vector:
        """ℓ_i per row at ``θ``."""
        r, s, alpha, beta = self._individual(theta)
        out = np.empty(len(self.x))
        for b in self._blocks():
            out[b] = _row_terms(r, s, alpha[b], beta[b], self.x[b], self.tx[b], self.T[b], gradient=False)[0]
        return out

    def log_likelihood(self, theta: Vector) -> float:
        """Total (weighted) log-likelihood Σ w ℓ at ``θ``, in the rows' time unit."""
        return _dot(self.weights, self.rows(theta))

    def __call__(self, theta: Vector) -> tuple[float, Vector]:
        """Mean negative log-likelihood and its gradient at ``θ``."""
        r, s, alpha, beta = self._individual(theta)
        total = 0.0
        scores = np.empty((len(self.x), 4))
        for b in self._blocks():
            value, scores[b] = _row_terms(r, s, alpha[b], beta[b], self.x[b], self.tx[b], self.T[b], gradient=True)
            total += _dot(self.weights[b], value)
        weighted = scores * self.weights[:, None]
        base = weighted.sum(axis=0)
        # The links: ∂ ln α_i/∂γ_trans = −z_i, ∂ ln β_i/∂γ_life = −z_i.
        life = -self.design.T @ weighted[:, 3]
        trans = -self.design.T @ weighted[:, 1]
        gradient = np.concatenate([base, life, trans])
        return -total / self.total_weight, -gradient / self.total_weight


class ParetoNBDLikelihood:
    """The mean negative plain Pareto/NBD log-likelihood over weighted rows and its gradient, pooled (issue 16).

    The same function as :class:`ParetoNBDCovariateLikelihood` without a design, called with
    ``θ = ln(r, α, s, β)``, but its integrals are taken once per distinct ``(x, u)`` pair instead of
    once per row. With ``K(x, u) = ∫_u^U (α+τ)^{−(r+x)} (1+τ/β)^{−(s+1)} dτ`` (``U`` the longest
    age, 1 in the fit's rescaled time) the integral of equation (18) of note 009 is
    ``Ĩ = K(x, t_x) − K(x, T)``, so a row's likelihood is (relative to ``common``, as in :func:`_row_terms`)::

        L = e^A + e^C − e^B,   A = alive(x, T),   C = D(x, t_x),   B = D(x, T),   D = ln(s/β) + ln K

    and ``A, D`` are needed only on the distinct ``(x, T)`` and ``(x, t_x)`` pairs: ~61,000 of them
    against 664,000 distinct rows at a million customers (the rows' own work is a few gathers and
    exponentials). ``common`` is pooled per distinct ``x``.

    The subtraction is bounded: ``(s/β) K(x, T) ≤ (s/β) ∫_T^∞ ... ≤ (α+T)^{−k} s/β ∫_T^∞ (1+τ/β)^{−(s+1)} dτ
    = e^A`` (the purchase factor is largest at ``τ = T``), hence also ``e^C ≤ e^A + (e^C − e^B) = L``:
    each term is at most the likelihood itself, so the rounding left by the difference is ~eps·L (a
    few ulps of ``ln L``), never more, whatever ``T − t_x``. Where ``t_x = T`` the row's ``C`` and
    ``B`` are the same pair's value and cancel exactly (CLVTools' exact branch). The gradient is
    pooled the same way: each row's shares ``e^A/L, e^C/L, e^B/L`` (each at most ~1) are summed per
    pair and multiply the pair's derivatives (the moments of :func:`relative_integral`).

    Parameters
    ----------
    frequency, recency, T
        ``x, t_x, T`` per row (any time unit; α and β are in that unit).
    weights
        Customers per row (collapsed identical rows).
    """

    #: No covariates (the attributes the plain fit shares with :class:`ParetoNBDCovariateLikelihood`).
    p = 0

    def __init__(self, frequency: NDArray[Any], recency: NDArray[Any], T: NDArray[Any], weights: NDArray[Any]) -> None:
        self.x = np.asarray(frequency, dtype=float)
        self.tx = np.asarray(recency, dtype=float)
        self.T = np.asarray(T, dtype=float)
        self.weights = np.asarray(weights, dtype=float)
        self.total_weight = float(self.weights.sum())
        self.upper = float(np.max(self.T)) if len(self.T) else 1.0
        self.x_values, x_index, self.pair_x, self.pair_u, self.tx_pair, self.T_pair = distinct_pairs(
            self.x, self.tx, self.T)
        self.weight_per_x = np.bincount(x_index, weights=self.weights, minlength=len(self.x_values))

    def _pairs(self, r: float, alpha: float, s: float, beta: float, gradient: bool) -> tuple[Vector, Vector, Vector | None]:
        """``A = alive`` and ``D = ln(s/β) + ln K`` per pair, and K's moments (pairs × 4) with ``gradient``."""
        count = len(self.pair_x)
        k = r + self.pair_x
        log_k = np.empty(count)
        moments = np.empty((count, 4)) if gradient else None
        for start in range(0, count, CHUNK):
            b = slice(start, start + CHUNK)
            size = len(k[b])
            log_k[b], part = relative_integral(k[b], np.full(size, s + 1.0), np.full(size, alpha), np.full(size, beta),
                                               self.pair_u[b], np.full(size, self.upper), gradient=gradient)
            if gradient:
                moments[b] = part
        alive = -k * np.log(alpha + self.pair_u) - s * np.log1p(self.pair_u / beta)
        return alive, np.log(s) - np.log(beta) + log_k, moments

    def _rows(self, alive: Vector, dead: Vector) -> tuple[Vector, Vector, Vector, Vector, Vector]:
        """Per row ``ln L − common`` and the shares ``e^A/L, e^C/L, e^B/L`` (unweighted)."""
        a, c, b = alive[self.T_pair], dead[self.tx_pair], dead[self.T_pair]
        top = np.maximum(a, c)
        ea, ec, eb = np.exp(a - top), np.exp(c - top), np.exp(b - top)
        # e^C − e^B first: exactly 0 where t_x = T (the same pair), so L is then e^A to rounding.
        total = ea + (ec - eb)
        return top + np.log(total), total, ea, ec, eb

    def _common(self, r: float, alpha: float) -> float:
        """Σ_x W_x (lnΓ(r+x) − lnΓ(r) + r ln α)."""
        return _dot(self.weight_per_x, gammaln(r + self.x_values) - gammaln(r) + r * np.log(alpha))

    def log_likelihood(self, theta: Vector) -> float:
        """Total (weighted) log-likelihood Σ w ℓ at ``θ = ln(r, α, s, β)``, in the rows' time unit."""
        r, alpha, s, beta = (float(v) for v in np.exp(np.asarray(theta, dtype=float)))
        alive, dead, _ = self._pairs(r, alpha, s, beta, False)
        return self._common(r, alpha) + _dot(self.weights, self._rows(alive, dead)[0])

    def __call__(self, theta: Vector) -> tuple[float, Vector]:
        """Mean negative log-likelihood and its gradient at ``θ = ln(r, α, s, β)``."""
        r, alpha, s, beta = (float(v) for v in np.exp(np.asarray(theta, dtype=float)))
        alive, dead, m = self._pairs(r, alpha, s, beta, True)
        log_l, total, ea, ec, eb = self._rows(alive, dead)
        value = self._common(r, alpha) + _dot(self.weights, log_l)
        per_row = self.weights / total
        count = len(self.pair_x)
        on_alive = np.bincount(self.T_pair, weights=per_row * ea, minlength=count)
        on_dead = (np.bincount(self.tx_pair, weights=per_row * ec, minlength=count)
                   - np.bincount(self.T_pair, weights=per_row * eb, minlength=count))
        k, u = r + self.pair_x, self.pair_u
        # θ·∂/∂θ of A = −k ln(α+u) − s ln(1+u/β) and of D = ln s − ln β + ln K (moments: relative_integral).
        d_alive = np.stack([-r * np.log(alpha + u), -k * alpha / (alpha + u), -s * np.log1p(u / beta),
                            s * u / (beta + u)])
        d_dead = np.stack([-r * m[:, 0], -k * alpha * m[:, 1], 1.0 - s * m[:, 2], (s + 1.0) * m[:, 3] - 1.0])
        xs = self.x_values
        common = np.array([r * _dot(self.weight_per_x, digamma(r + xs) - digamma(r) + np.log(alpha)),
                           r * self.total_weight, 0.0, 0.0])
        gradient = common + np.einsum("ij,j->i", d_alive, on_alive) + np.einsum("ij,j->i", d_dead, on_dead)
        return -value / self.total_weight, -gradient / self.total_weight


def _theta(params: dict[str, float], design_columns: Sequence[str]) -> Vector:
    """θ from named parameters in the data's unit (γ missing: 0)."""
    base = np.log([float(params[name]) for name in PARAMS])
    gammas = [float(params.get(name, 0.0)) for name in coefficient_names(design_columns)]
    return np.concatenate([base, gammas])


def _design(columns: dict[str, NDArray[Any]], design_columns: Sequence[str], n: int) -> Vector:
    missing = [c for c in design_columns if c not in columns]
    if missing:
        raise ClvError(f"pareto_nbd_cov: no design column {missing[0]!r} in the rows to fit")
    if not design_columns:
        return np.zeros((n, 0))
    design = np.column_stack([np.asarray(columns[c], dtype=float) for c in design_columns])
    if not np.all(np.isfinite(design)):
        raise ClvError("pareto_nbd_cov: a covariate value is missing or infinite; check the customers table")
    return design


def log_likelihood(params: dict[str, float], columns: dict[str, NDArray[Any]], weights: NDArray[Any] | None = None,
                   *, design_columns: Sequence[str] = ()) -> float:
    """Total log-likelihood Σ w ℓ at named parameters (base params and ``life.*``/``trans.*``), in the rows' unit.

    The function CLVTools 0.12.1 maximises (``pnbd_staticcov_LL_sum``), for checking a published point.
    """
    x = np.asarray(columns["frequency"], dtype=float)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    objective = ParetoNBDCovariateLikelihood(x, columns["recency"], columns["T"], w, _design(columns, design_columns, len(x)))
    return objective.log_likelihood(_theta(params, design_columns))


def _check_rows(x: Vector, tx: Vector, T: Vector, weights: Vector) -> None:
    """The purchase models' input checks, and a positive age, as one-line errors counting customers."""
    mle.refuse_rows("pareto_nbd_cov", [*mle.rfm_problems(x, tx, T), (T <= 0, "a non-positive T")], weights)


def _base_starts(objective: ParetoNBDCovariateLikelihood, scale: float) -> list[Vector]:
    """Starts of the no-covariate fit in rescaled time: the plain fit's three
    (:func:`.lifetimes_adapter._fit_pareto_nbd`: ``ln(1, 1, 1, 1)``, then ``r = s = 1`` with α at the
    observed purchase rate and β = 1 and 10), then CLVTools' (:data:`CLVTOOLS_START`)."""
    from clvmodel.models.bgnbd_likelihood import _log_inverse_rate  # noqa: PLC0415  (it imports mle only)

    log_alpha = _log_inverse_rate(objective.x, objective.T, objective.weights)
    r, alpha, s, beta = CLVTOOLS_START
    return [np.zeros(4), np.array([0.0, log_alpha, 0.0, 0.0]), np.array([0.0, log_alpha, 0.0, np.log(10.0)]),
            np.log([r, alpha * scale, s, beta * scale])]


#: The plain fit's name in its messages (the registry's family).
MODEL = "pareto_nbd"


def fit(columns: dict[str, NDArray[Any]], weights: NDArray[Any], *, initial_params: Any = None,
        tol: float = mle.LIFETIMES_TOL, **options: Any) -> mle.FitResult:
    """Maximum likelihood Pareto/NBD on weighted rows (no covariates), or the ``s, β → ∞`` limit.

    The numpy likelihood and analytic gradient of :class:`ParetoNBDLikelihood` (the plain
    likelihood pooled per distinct ``(x, u)`` pair; the same function as
    :class:`ParetoNBDCovariateLikelihood` without a design), maximised as the lifetimes-based fit
    before it (:func:`.lifetimes_adapter.fit`, kept as the reference path): in time rescaled so the
    longest age is 1, BFGS from the same three fixed starts (``ln(1, 1, 1, 1)``; ``r = s = 1`` with
    α at the observed purchase rate and β = 1 and 10), the best stationary stop kept
    (:func:`.mle.best_stop`); since issue 16 the second and third start run only when the first
    does not stop at a stationary point with ``s ≤`` :data:`PARETO_RIDGE_CHECK_S` and every
    parameter identified (:func:`.mle.search_first`). The Hessian is taken by central differences
    of the analytic gradient (:func:`.mle.central_hessian`).

    The ridge, as before: when the highest stop of any start has ``s`` above
    :data:`PARETO_RIDGE_CHECK_S`, or leaves a parameter unidentified, it is compared with the
    ``s, β → ∞`` limit (one dropout rate μ for every customer;
    :func:`.lifetimes_adapter.pareto_limit_fit`, quadrature, no lifetimes); if no stop beats the
    limit by :data:`.mle.RIDGE_GAIN`, the fit reports the limit (status :data:`.mle.RIDGE`,
    ``s =`` :data:`.lifetimes_adapter.PARETO_RIDGE_S`, ``β = s/μ``, ``limit`` holding ``r``,
    ``alpha`` and ``dropout_rate``).

    Parameters
    ----------
    columns
        ``frequency, recency, T`` per row.
    weights
        Customers per row.
    initial_params, tol, options
        lifetimes' plain parameters ``(r, α, s, β)`` in rescaled time for the first start (the
        other starts follow), BFGS ``gtol``, scipy ``minimize`` options (``maxiter`` per start) and
        ``time_budget`` (:func:`.mle.search`). lifetimes' ``fit`` options that mean nothing here
        (``verbose``, ``iterative_fitting``, ``fit_method``, ``index``) are ignored.

    Returns
    -------
    mle.FitResult
        ``r, alpha, s, beta`` (α, β in the rows' unit), the total log-likelihood Σ w ℓ in that
        unit, standard errors by the delta method.

    Raises
    ------
    ClvError
        Rows no transaction log can give.
    ConvergenceFailure
        No start stopped at a stationary point and the limit does not explain why.
    """
    from clvmodel.models import lifetimes_adapter as adapter  # noqa: PLC0415  (the limit; lifetimes is not imported)

    x, tx, T = (np.asarray(columns[c], dtype=float) for c in ("frequency", "recency", "T"))
    weights = np.asarray(weights, dtype=float)
    mle.refuse_rows(MODEL, [*mle.rfm_problems(x, tx, T), (T <= 0, "a non-positive T")], weights)
    for unused in ("verbose", "iterative_fitting", "fit_method", "index"):
        options.pop(unused, None)
    scale = 1.0 / float(np.max(T))  # lifetimes' _scale_time
    objective = ParetoNBDLikelihood(x, tx * scale, T * scale, weights)
    n = objective.total_weight
    planned = _base_starts(objective, scale)[:3]
    if initial_params is not None:
        planned[0] = np.log(np.asarray(initial_params, dtype=float))
    hessians: dict[int, Vector] = {}

    def identified(stop: Any) -> bool:
        # The first start suffices where it stops at a stationary point clear of the ridge check
        # with every parameter identified: then the ridge is not compared (as before) and the
        # other starts, which found no other optimum on CDNOW, the apparel splits or simulated
        # data, would only cost time (issue 16). Otherwise all run and the best is kept, as before.
        if not mle.stationary(stop) or np.exp(stop.x[2]) > PARETO_RIDGE_CHECK_S:
            return False
        with np.errstate(all="ignore"):
            hessians[id(stop)] = mle.central_hessian(lambda theta: objective(theta)[1], stop.x) * n
        return bool(np.all(mle.log_standard_errors(hessians[id(stop)]) <= mle.MAX_LOG_SE))

    stops = mle.search_first(objective, planned, identified, tol=tol, **options)
    optimum = mle.best_stop(stops, n) or next((s for s in stops if s.success and np.isfinite(s.fun)), None)
    # ln L in the data's unit: rescaling time by c multiplies each likelihood by c^(-x), Σ w ln L gains Σ w x ln c.
    shift = _dot(weights, x) * np.log(scale)
    hessian = None
    if optimum is not None:
        hessian = hessians.get(id(optimum))
        if hessian is None:
            with np.errstate(all="ignore"):
                hessian = mle.central_hessian(lambda theta: objective(theta)[1], optimum.x) * n
    finite = [s for s in stops if np.isfinite(s.fun)]
    highest = min(finite, key=lambda stop: stop.fun) if finite else None
    if highest is not None and (
        np.exp(highest.x[2]) > PARETO_RIDGE_CHECK_S
        or (optimum is not None and not np.all(mle.log_standard_errors(hessian) <= mle.MAX_LOG_SE))
    ):
        log_alpha = planned[1][1]
        limit = adapter.pareto_limit_fit(adapter.ParetoNBDLimit(objective.x, objective.tx, objective.T, weights),
                                         log_alpha)
        if limit is not None and -highest.fun * n < limit.log_likelihood + mle.RIDGE_GAIN:
            return adapter._pareto_ridge_result(limit, scale, shift, n)
    if optimum is None:
        raise mle.not_converged(MODEL, mle.failure_words(stops, of=len(planned)), starts=len(planned))
    log_theta = optimum.x.copy()
    log_theta[[1, 3]] -= np.log(scale)  # α and β in rescaled time -> the rows' unit
    params = {name: float(v) for name, v in zip(PARAMS, np.exp(log_theta))}
    return mle.fit_result(MODEL, params, -optimum.fun * n + shift, optimum.jac, hessian, n)


def fit_covariates(columns: dict[str, NDArray[Any]], weights: NDArray[Any], *, design_columns: Sequence[str],
                   tol: float = mle.LIFETIMES_TOL, **options: Any) -> mle.FitResult:
    """Maximum likelihood Pareto/NBD with static covariates in both processes, on weighted rows.

    In time rescaled so the longest age is 1 (as the plain fit; only ln α and ln β shift), BFGS
    with the analytic gradient (:class:`ParetoNBDCovariateLikelihood`):

    1. the model without covariates from the plain fit's starts and CLVTools' (:func:`_base_starts`):
       without covariates every start, the best stationary stop kept (:func:`.mle.best_stop`), as
       the plain fit does; with covariates, on the rows merged over z, the starts in order until
       one stops at a stationary point (it only provides a start);
    2. with covariates, from that optimum with every γ = 0 (the better start: it is the γ = 0
       slice's maximum), then from CLVTools' start with every γ = :data:`CLVTOOLS_GAMMA_START`;
       the second replaces the first only if better by :data:`.mle.BETTER_START_GAIN`.

    Parameters
    ----------
    columns
        ``frequency, recency, T`` and each design column, per (collapsed) row.
    weights
        Customers per row.
    design_columns
        The encoded covariate columns; ``[]`` is the plain fit, :func:`fit` (which reports the
        ``s, β → ∞`` limit where the data have no finite optimum). With covariates no limit is
        reported: a stop out on a ridge (e.g. one profile whose customers never drop out) comes
        with a warning naming the parameters the data do not identify.
    tol, options
        BFGS ``gtol`` and scipy ``minimize`` options (``maxiter`` per start, ...), as :func:`.mle.search`.

    Returns
    -------
    mle.FitResult
        ``params`` in the order ``r, alpha, s, beta``, ``life.*``, ``trans.*`` (α, β in the rows'
        unit, at z = 0); the total log-likelihood Σ w ℓ in that unit; ``covariance`` of
        ``(ln r, ln α, ln s, ln β, γ)`` (inverse of the central-difference Hessian of the analytic
        gradient, :func:`.mle.central_hessian`); standard errors by the delta method for the base
        parameters (``θ · se(ln θ)``) and directly for the coefficients, as CLVTools reports them.

    Raises
    ------
    ClvError
        Rows no transaction log can give, or a missing covariate value.
    ConvergenceFailure
        No start stopped at a stationary point.
    """
    if not design_columns:
        return fit({c: columns[c] for c in ("frequency", "recency", "T")}, weights, tol=tol, **options)
    x, tx, T = (np.asarray(columns[c], dtype=float) for c in ("frequency", "recency", "T"))
    weights = np.asarray(weights, dtype=float)
    _check_rows(x, tx, T, weights)
    if not np.any(x > 0):
        raise ClvError("pareto_nbd_cov: no customer made a repeat purchase; purchase and dropout rates cannot be estimated")
    design = _design(columns, design_columns, len(x))
    scale = 1.0 / float(np.max(T))
    model = "pareto_nbd_cov"
    n = float(weights.sum())
    # Only a start for the covariate fit: on the rows merged over z (fewer), from the plain
    # fit's starts in order until one stops at a stationary point.
    merged, merged_weights, _ = collapse(pd.DataFrame({"x": x, "tx": tx, "T": T}), ["x", "tx", "T"], weights)
    plain = ParetoNBDLikelihood(merged["x"].to_numpy(), merged["tx"].to_numpy() * scale,
                                merged["T"].to_numpy() * scale, merged_weights)
    planned = _base_starts(plain, scale)
    stops = []
    for start in planned:
        stops += mle.search(plain, [start], tol=tol, **options)
        if mle.stationary(stops[-1]):
            break
    optimum = mle.best_stop(stops, n)
    if optimum is None:
        raise mle.not_converged(model, mle.failure_words(stops, of=len(planned)), starts=len(planned))
    objective = ParetoNBDCovariateLikelihood(x, tx * scale, T * scale, weights, design)
    gammas = 2 * design.shape[1]
    covariate_starts = [np.concatenate([optimum.x, np.zeros(gammas)]),
                        np.concatenate([planned[-1], np.full(gammas, CLVTOOLS_GAMMA_START)])]
    stops = mle.search(objective, covariate_starts, tol=tol, **options)
    optimum = mle.best_stop(stops, n)
    shift = _dot(weights, x) * np.log(scale)
    finite = [stop for stop in stops if np.isfinite(stop.fun)]
    if finite:
        highest = min(finite, key=lambda stop: stop.fun)
        ridge = _covariate_ridge(objective, highest.x, tol=tol)
        if ridge is not None and max(-stop.fun * n for stop in finite) < ridge[2] + mle.RIDGE_GAIN:
            return _covariate_ridge_result(objective, list(design_columns), *ridge[:2], scale, shift)
    if optimum is None:
        raise mle.not_converged(model, mle.failure_words(stops, of=2), starts=2)
    with np.errstate(all="ignore"):
        hessian = mle.central_hessian(lambda theta: objective(theta)[1], optimum.x) * n
    theta = optimum.x.copy()
    theta[[1, 3]] -= np.log(scale)  # α and β in rescaled time -> the rows' unit
    # Rescaling time by c multiplies each likelihood by c^x (x purchase densities): Σ w ℓ gains Σ w x ln c.
    log_lik = -optimum.fun * n + _dot(weights, x) * np.log(scale)
    return _result(model, theta, list(design_columns), log_lik, optimum.jac, hessian, n)


#: A profile (distinct z) whose mean lifetime ``β_i/s`` exceeds this many times the longest
#: customer age at the covariate search's best stop is taken as running off to "never drops out"
#: (μ → 0). It only selects candidates: the ridge is reported only when the likelihood pushed further
#: out along them (to :data:`COVARIATE_RIDGE_LIFETIME`) is not beaten by any stop
#: (:func:`fit_covariates`). Apparel, 40 weeks, Channel 0: ~1e7 at the stop; identified profiles ~1.
COVARIATE_RUNAWAY_LIFETIME = 1e4
#: The mean lifetime ``β_i/s`` (in longest customer ages) at which the runaway profiles are held on the
#: ridge: their forecasts equal the μ = 0 limit's to ~1e-12 relative (``s ln(1 + T/β_i)`` ~ 1e-12).
COVARIATE_RIDGE_LIFETIME = 1e12


def _profiles(design: Vector) -> Vector:
    """The distinct rows of the design (profiles)."""
    from clvmodel.models.bgnbd_likelihood import _group_rows  # noqa: PLC0415

    _, representative = _group_rows(design)
    return design[representative]


def _covariate_ridge(objective: ParetoNBDCovariateLikelihood, theta: Vector, *, tol: float
                     ) -> tuple[Vector, Vector, float] | None:
    """The ridge's point for a stop ``θ`` whose profiles run off to "never drop out", or ``None``.

    As :func:`.bgnbd_likelihood._covariate_ridge` for BG/NBD's concentrations: a profile's
    ``ln β_i = ln β − γ_lifeᵀz`` is ``[1, −z] · (ln β, γ_life)``. The directions of
    ``(ln β, γ_life)`` that keep every other profile's ``β_i`` fixed (the null space of their rows)
    and raise every runaway profile's are followed until the least of them has ``β_i/s =``
    :data:`COVARIATE_RIDGE_LIFETIME` (in rescaled time, the longest age 1); they are then held and
    the rest of ``θ`` re-optimised (BFGS, then Newton steps, :func:`.mle.refine`). Returns
    ``(θ there, held directions (d × m), total ln L in rescaled time)``; ``None`` when no profile
    is past :data:`COVARIATE_RUNAWAY_LIFETIME`, no direction moves only the runaway profiles, or the
    re-optimised point is not stationary.
    """

    if objective.p == 0:
        return None
    k = objective.p
    profiles = _profiles(objective.design)
    log_s = float(theta[2])
    log_beta = theta[3] - profiles @ theta[4:4 + k]
    runaway = log_beta - log_s > np.log(COVARIATE_RUNAWAY_LIFETIME)
    if not np.any(runaway):
        return None
    rows = np.column_stack([np.ones(len(profiles)), -profiles])
    basis = mle.null_space(rows[~runaway], k + 1)
    if basis.shape[1] == 0:
        return None
    moves = rows[runaway] @ basis
    y = np.linalg.lstsq(moves, np.ones(int(runaway.sum())), rcond=None)[0]
    rise = moves @ y
    if not np.all(rise > 0.5):
        return None
    dim = len(theta)
    held = np.zeros((dim, basis.shape[1]))
    held[3] = basis[0]
    held[4:4 + k] = basis[1:]
    t = float(np.max((np.log(COVARIATE_RIDGE_LIFETIME) + log_s - log_beta[runaway]) / rise))
    far = theta + t * (held @ y)
    at = mle.optimise_held(objective, far, held, tol=tol, total_weight=objective.total_weight)
    if at is None:
        return None
    return at, held, objective.log_likelihood(at)


def _covariate_ridge_result(objective: ParetoNBDCovariateLikelihood, design_columns: list[str], at: Vector,
                            held: Vector, scale: float, shift: float) -> mle.FitResult:
    """The covariate fit reported on its ridge (:func:`fit_covariates`): the re-optimised far point.

    Standard errors of the parameters the held directions move are NaN, the covariance is the
    re-optimised problem's (zero along the held directions), ``limit`` holds every parameter they
    do not move (what the data identify), and a warning names the profiles that never drop out.
    """

    n = objective.total_weight
    dim = len(at)
    free = mle.null_space(held.T, dim)
    with np.errstate(all="ignore"):
        reduced_hessian = mle.central_hessian(lambda u: free.T @ objective(at + free @ u)[1],
                                              np.zeros(free.shape[1])) * n
    try:
        covariance = free @ np.linalg.inv(reduced_hessian) @ free.T
    except np.linalg.LinAlgError:
        raise mle.not_converged("pareto_nbd_cov", "the likelihood runs off along a ridge and the rest of the "
                                "parameters are not identified there either (singular Hessian)") from None
    moved = np.any(np.abs(held) > 1e-12, axis=1)
    diagonal = np.where(moved, np.nan, np.diag(covariance))
    if not np.all(np.sqrt(diagonal[~moved]) <= mle.MAX_LOG_SE):
        raise mle.not_converged("pareto_nbd_cov", "the likelihood runs off along a ridge and more parameters than "
                                "its direction are not identified")
    names = [*PARAMS, *coefficient_names(design_columns)]
    theta = at.copy()
    theta[[1, 3]] -= np.log(scale)
    values = np.concatenate([np.exp(theta[:4]), theta[4:]])
    params = {name: float(v) for name, v in zip(names, values)}
    root = np.sqrt(diagonal)
    errors = np.concatenate([values[:4] * root[:4], root[4:]])
    k = objective.p
    profiles = _profiles(objective.design)
    log_beta = at[3] - profiles @ at[4:4 + k]
    runaway = profiles[log_beta - at[2] > np.log(COVARIATE_RUNAWAY_LIFETIME)]
    words = "; ".join(", ".join(f"{c} {v:g}" for c, v in zip(design_columns, z)) for z in runaway)
    warnings.warn(
        f"pareto_nbd_cov: these data have no finite maximum-likelihood estimate: the likelihood rises as beta_i -> inf "
        f"for the customers with {words} (their dropout rates run to 0: none of them is seen to drop out); the fit is "
        f"that limit, those customers never dropping out (status 'ridge', their mean lifetime beta_i/s held at "
        f"{COVARIATE_RIDGE_LIFETIME:g} times the longest customer age; not identified: "
        f"{', '.join(nm for nm, m in zip(names, moved) if m)})",
        UserWarning,
        stacklevel=3,
    )
    identified = {nm: params[nm] for nm, m in zip(names, moved) if not m}
    return mle.FitResult(params, {nm: float(e) for nm, e in zip(names, errors)},
                         float(objective.log_likelihood(at) + shift), int(n), covariance.tolist(), mle.RIDGE, identified)


def _result(model: str, theta: Vector, design_columns: list[str], log_lik: float, mean_gradient: Vector,
            hessian: Vector, n: float) -> mle.FitResult:
    """Named estimates, standard errors and covariance (as :func:`.mle.fit_result`, γ not logged)."""
    names = [*PARAMS, *coefficient_names(design_columns)]
    values = np.concatenate([np.exp(theta[:4]), theta[4:]])
    params = {name: float(v) for name, v in zip(names, values)}
    if not (np.all(np.isfinite(values)) and np.isfinite(log_lik)):
        raise ConvergenceFailure(f"{model} fit ended at non-finite values {params}; check the data for extreme values")
    largest = float(np.max(np.abs(mean_gradient)))
    if not largest <= mle.GRADIENT_TOLERANCE:
        raise ConvergenceFailure(f"{model} fit stopped before the optimum (largest gradient {largest:.2g} per customer); "
                                 "try another time unit or more data")
    try:
        covariance = np.linalg.inv(hessian)
        diagonal = np.diag(covariance)
        root = np.where(diagonal > 0, np.sqrt(np.abs(diagonal)), np.nan)
        cov_list: list[list[float]] | None = covariance.tolist()
    except np.linalg.LinAlgError:
        root, cov_list = np.full(len(theta), np.nan), None
    # Delta method for the logged base parameters (se θ = θ se ln θ), the coefficients directly.
    errors = np.concatenate([values[:4] * root[:4], root[4:]])
    standard_errors = {name: float(e) for name, e in zip(names, errors)}
    base = dict(list(params.items())[:4])
    mle._warn_unidentified(model, base, values[:4], errors[:4])
    loose = [name for name in names[4:] if not standard_errors[name] <= mle.MAX_LOG_SE]
    if loose:
        warnings.warn(f"{model}: these data do not identify {', '.join(loose)} (standard error above "
                      f"{mle.MAX_LOG_SE:g}, or none); its forecasts for those profiles are not reliable",
                      UserWarning, stacklevel=3)
    return mle.FitResult(params, standard_errors, float(log_lik), int(n), cov_list)


# --- forecasts (issue 16) --------------------------------------------------------------------------


def p_alive(params: dict[str, float], frequency: Any, recency: Any, T: Any) -> Vector:
    """P(alive | x, t_x, T) = 1 / (1 + e^(dead − alive)), the likelihood's two terms (:func:`_row_terms`).

    Equation (18) of note 009 splits the likelihood into "alive at T" and "dropped out unseen between
    t_x and T"; P(alive) is the first's share. Evaluated with the relative integral
    (:func:`relative_integral`), it is bounded for every ``s``: lifetimes' ₂F₁ form is NaN from ``s``
    of a few hundred on (the apparel data's ridge passes there), and exactly 1 where ``t_x = T``.
    From ``s ≥`` :data:`.lifetimes_adapter.PARETO_LIMIT_FORMS_FROM` the ``s, β → ∞`` limit's form
    is used (:func:`.lifetimes_adapter.probability_alive`; the two differ by ~1/s there).
    """
    from clvmodel.models import lifetimes_adapter  # noqa: PLC0415  (the limit's closed form; no lifetimes import)

    r, alpha, s, beta = (float(params[k]) for k in PARAMS)
    if s >= lifetimes_adapter.PARETO_LIMIT_FORMS_FROM:
        return lifetimes_adapter.probability_alive("pareto_nbd", params, frequency, recency, T)
    x, tx, T_ = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (frequency, recency, T)))
    shape = x.shape
    x, tx, T_ = (np.ravel(v) for v in (x, tx, T_))
    k = r + x
    out = np.empty(len(x))
    for start in range(0, len(x), CHUNK):
        b = slice(start, start + CHUNK)
        log_i, _ = relative_integral(k[b], np.full(len(k[b]), s + 1.0), np.full(len(k[b]), alpha),
                                     np.full(len(k[b]), beta), tx[b], T_[b])
        alive = -k[b] * np.log(alpha + T_[b]) - s * np.log1p(T_[b] / beta)
        dead = np.log(s) - np.log(beta) + log_i
        out[b] = expit(alive - dead)
    return out.reshape(shape)


def _expected_life_share(s: float, base: Any, t: Any) -> Any:
    """``E[(1 − e^(−μt))/μ]`` for μ ~ Gamma(s, base): ``base/(s−1) · (1 − (base/(base+t))^(s−1))``,
    as ``−base/(s−1) · expm1(−(s−1) ln(1 + t/base))`` (bounded for every ``s``; ``base · ln(1 + t/base)``
    at ``s = 1``)."""
    log_ratio = np.log1p(np.asarray(t, dtype=float) / base)
    if abs(s - 1.0) < 1e-12:
        return base * log_ratio
    return -base / (s - 1.0) * np.expm1(-(s - 1.0) * log_ratio)


def expected_purchases_if_alive(params: dict[str, float], frequency: Any, T: Any, t: Any) -> Vector:
    """E[Y(t) | alive at T, x, T] = (r + x)/(α + T) · (β + T)/(s − 1) · [1 − ((β + T)/(β + T + t))^(s−1)].

    Alive at T, λ ~ Gamma(r + x, α + T) and μ ~ Gamma(s, β + T) independently (Fader, Hardie & Lee
    2005, "A note on implementing the Pareto/NBD model", equation (4) divided by P(alive)); the
    bracket in its bounded form (:func:`_expected_life_share`), so large ``s`` neither overflows nor
    loses digits (it tends to ``(1 − e^(−μt))/μ``, the limit's). Broadcasts as the arguments do.
    """
    r, alpha, s, beta = (float(params[k]) for k in PARAMS)
    x, T_ = np.asarray(frequency, dtype=float), np.asarray(T, dtype=float)
    return np.asarray((r + x) / (alpha + T_) * _expected_life_share(s, beta + T_, t), dtype=float)


def expected_purchases_new(params: dict[str, float], t: Any) -> Vector:
    """E[X(t)] for a customer just acquired: r/α · β/(s − 1) · [1 − (β/(β + t))^(s−1)] (bounded form)."""
    r, alpha, s, beta = (float(params[k]) for k in PARAMS)
    return np.asarray(r / alpha * _expected_life_share(s, beta, t), dtype=float)
