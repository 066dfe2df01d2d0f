"""GGom/NBD numerics: the log-likelihood with its analytic gradient, the survival integral, the fit.

Bemmaor & Glady (2012), "Modeling purchasing behavior with sudden 'death': a flexible customer
lifetime model", Management Science 58(5). While alive a customer buys as a Poisson process with
rate λ ~ Gamma(r, α); the lifetime τ is Gompertz, ``P(τ > t | η) = exp(−η (e^{bt} − 1))``, with
η ~ Gamma(s, β). Mixing η gives the marginal survival and death density::

    S(t) = (β / B(t))^s,    f(t) = b s β^s e^{bt} B(t)^{−(s+1)},    B(t) = β + e^{bt} − 1

The likelihood of a customer with ``x`` repeat purchases, the last at ``t_x``, observed for ``T``
(Bemmaor & Glady's individual likelihood, integrated over λ and over the death time; the same
expression as CLVTools' ``ggomnbd_LL_ind``)::

    L = Γ(r+x)/Γ(r) α^r [ (α+T)^{−(r+x)} S(T) + ∫_{t_x}^T (α+τ)^{−(r+x)} f(τ) dτ ]

The first term is "alive at T", the second "died at τ between the last purchase and T". The
integral has no closed form (CLVTools integrates it customer by customer with GSL's adaptive
QAGS); here fixed Gauss-Legendre rules evaluate it for all rows at once (:func:`death_integral`),
and the derivatives of the integrand with respect to the five parameters are averaged on the same
nodes, so the gradient is analytic (up to the same quadrature error) and costs little more than
the value.

The quadrature. Two factors shape the integrand: the purchase part ``(α+τ)^{−(r+x)}`` (steep for
frequent buyers, a pole at τ = −α) and the lifetime part ``e^{bτ} B(τ)^{−(s+1)}`` (singular where
``B = 0``; for large ``bT`` a sharp Gompertz peak). The range is split at ``τ_s`` where
``B(τ_s) = 2β`` (``τ_s → β/b`` as b → 0):

* early, ``B ∈ [β, 2β]``: variable ``u = ln((α + τ)/(α + t_x))``, in which the purchase part is
  an exponential; the lifetime part changes there by at most a factor ``(1+β) 2^{s+1}``;
* late, ``B ≥ 2β``: variable ``v = ln B(τ)``, in which ``f(τ) dτ = b s β^s e^{−sv} dv``: the
  integrand is *decreasing* in v and its real singularities lie at least ``ln 2`` before the start.

Each piece is cut where the integrand provably fell e^{DROP} = e^{45} below its starting value,
so a frequent buyer's integrand (x in the hundreds) or a steep Gompertz tail never spreads over
more than ~45 e-folds. Each piece is then a composite rule (:func:`_panels`) whose panels are the
union of equal steps in its own variable and in the variable natural to the other factor (and, in
v, steps graded away from the nearest singularity), :data:`NODES` nodes per panel. Against
adaptive quadrature (``scipy.integrate.quad``, 1e-13) over ``x`` ≤ 500, ``T`` ≤ 1000 units,
α ∈ {0.5, 70}, s ∈ {0.2, 1, 5}, β from 1e-3 to 1e3: ln of the integral agrees to 7e-13 wherever
``bT ≤ 10``, 5e-9 for ``bT ≤ 100`` and 5e-8 up to ``bT = 1000`` (there the Gompertz hazard grows by
e^{1000} over the observation: no data set looks like that). On CDNOW: 1e-13.

The fit: tails, not rows. Evaluated row by row, the integral cost ~10 µs per distinct
``(x, t_x, T)`` row and value-and-gradient; a million customers have hundreds of thousands of
distinct rows (664,113 in the first million of the benchmark's summary), seconds per evaluation
times a few hundred evaluations. But ``∫_{t_x}^T = J(x, t_x) − J(x, T)`` with the tail
``J(x, u) = ∫_u^∞ (α+τ)^{−(r+x)} e^{bτ} B(τ)^{−(s+1)} dτ``, needed only at the distinct
``(x, u)`` pairs, u a recency or an age: 40,603 pairs for those 664,113 rows, since ages and
recencies are whole days and x is small. :class:`GompertzNBDLikelihood` integrates the tails
once per evaluation (:func:`tail_integral`: ``∫_u^{U_x}`` per pair by the rules above plus the
tail beyond ``U_x``, the largest u of that x, once per distinct x with :data:`FAR_PANELS`) and
takes each row's integral as a difference (:func:`death_from_tails`). The difference cancels when
t_x is just before T, but never by more than the likelihood can see: ``b s β^s J(x, T)`` is at
most the "alive" term (the bound is in :func:`death_from_tails`), so a tail's relative error ε
is an error of at most ~2ε relative in L. Measured: the tails agree with adaptive quadrature to
3e-14 in ln J over the grid of the tests (2e-12 where ln J ≈ −1600 at x = 500: the rounding of the
logarithm itself), including the Pareto/NBD limit b = 1e-9 whose tail is a power law; per row, ln
L from the tails equals ln L from the direct integral to 1e-12 (CDNOW, with rows cancelling to a
second before T), the objective to 1e-13 relative on CDNOW and ~1e-15 on the benchmark's million.
One value-and-gradient at those 664,113 distinct rows: 0.33 s CPU against 3.1 s row by row, and
20 % less again with each row's remaining terms pooled per pair (:meth:`GompertzNBDLikelihood._pooled`).
The whole fit took 191 of them (90 s CPU); since issue 16's target 2 the Pareto/NBD limit and
its Hessian (25 + 8 of them) are taken through the Pareto/NBD likelihood instead (about a quarter
of the cost each), and every evaluation is the pooled one (:func:`fit`,
experiments/ggomnbd_fit_speed.py). Every free start still runs (a later one can beat the first's
ridge: :data:`B_STARTS`); the starts, being independent, run on two threads, as do the Hessian's
gradient calls (:data:`WORKERS`; the same fit bit for bit). The forecasts' P(alive) takes
the tails too (:meth:`GompertzNBDLikelihood.alive_share`); :func:`death_integral` integrates one
row's ``[t_x, T]`` directly.

As b → 0 with β/b fixed the model is Pareto/NBD with ``β_P = β/b`` (``e^{bt} − 1 ≈ bt``, so
``S(t) → (β_P/(β_P + t))^s``). On CDNOW the likelihood is nearly flat in that direction. So the
optimiser works in ``φ = (ln r, ln α, ln b, ln s, ln(β/b))``: the flat direction is one
coordinate (ln b) and the other four are identified whatever b does. Every expression below is
written so that it stays accurate for tiny b at fixed β/b (``expm1``, ``log1p``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy.special import digamma, expit, gammaln, roots_legendre

from clvmodel.errors import ClvError
from clvmodel.models import mle
from clvmodel.models.base import distinct_pairs
from clvmodel.models.cores import usable_cores
from clvmodel.models.pareto_nbd_likelihood import ParetoNBDLikelihood

__all__ = [
    "PARAMS",
    "NODES",
    "CHUNK",
    "DROP",
    "log_B",
    "death_integral",
    "tail_integral",
    "death_from_tails",
    "log_likelihood_terms",
    "GompertzNBDLikelihood",
    "survival_integral",
    "fit",
    "time_scale",
    "RIDGE_B",
    "LIMIT_START",
    "B_STARTS",
    "WORKERS",
]

Vector = NDArray[np.float64]

#: Parameter order (Bemmaor & Glady's Table 2, CLVTools' ``r, alpha, b, s, beta``).
PARAMS = ("r", "alpha", "b", "s", "beta")

#: Gauss-Legendre nodes per panel, and panels per spacing (see :func:`_panels`): a row's
#: death-time integral has at most 5 panels in its early piece (two spacings) and 7 in its late
#: piece (three), 192 nodes in all; rows usually have one piece only.
NODES = 16
PANELS = 3
#: Panels per spacing of the tails to ∞ (:func:`tail_integral`): taken once per distinct x, so
#: four times :data:`PANELS` cost nothing, and they keep the tails, which span up to DROP/s e-folds
#: of B (bτ ≫ 10 where s is small), as accurate as the finite integrals (measured: 1.5e-11 with
#: :data:`PANELS` where s = 0.2, 1e-13 with these).
FAR_PANELS = 12
#: Rows per block of likelihood terms: with at most 192 nodes per row a block's node arrays take
#: ~30 MB each, whatever the number of customers.
CHUNK = 20_000

#: e-folds below the integrand's starting value at which a piece is cut: e^{−45} ≈ 3e-20, far
#: below the 1e-16 of a double. Spread over at least three panels of 16 nodes, 45 e-folds of an
#: exponential are integrated to ~1e-16.
DROP = 45.0


def log_B(b: float, beta: float, tau: NDArray[Any]) -> NDArray[Any]:
    """``ln B(τ) = ln(β + e^{bτ} − 1)``, accurate for tiny ``bτ`` (expm1) and huge ``bτ`` (no overflow)."""
    z = b * np.asarray(tau, dtype=float)
    small = z < 30.0
    if np.all(small):  # the usual case: one branch only
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.log(beta + np.expm1(z))
    with np.errstate(all="ignore"):  # each branch is also evaluated where the other one is used
        near = np.log(beta + np.expm1(np.where(small, z, 0.0)))
        far = z + np.log1p((beta - 1.0) * np.exp(-np.where(small, 30.0, z)))
    return np.where(small, near, far)


def _tau_of_log_B(b: float, beta: float, v: NDArray[Any]) -> NDArray[Any]:
    """Inverse of :func:`log_B`: τ with ``ln B(τ) = v`` (``e^{bτ} − 1 = e^v − β``)."""
    if np.all(v <= 30.0):  # the usual case: one branch only
        with np.errstate(invalid="ignore"):
            return np.log1p(np.exp(v) - beta) / b
    with np.errstate(all="ignore"):  # each branch is also evaluated where the other one is used
        # For large v, ln(1 + e^v − β) = v + ln1p((1 − β) e^{−v}); below, log1p(e^v − β) directly.
        big = v > 30.0
        near = np.log1p(np.exp(np.where(big, 0.0, v)) - beta)
        far = v + np.log1p((1.0 - beta) * np.exp(-np.where(big, v, 30.0)))
    return np.where(big, far, near) / b


_RULES: dict[int, tuple[Vector, Vector]] = {}


def _gauss(lo: Vector, hi: Vector, n: int = 0) -> tuple[Vector, Vector]:
    """Nodes (rows × ``n``, default :data:`NODES`) on ``[lo, hi]`` per row and ln of their weights (−∞ if empty)."""
    xs, ws = _RULES.get(n or NODES) or _RULES.setdefault(n or NODES, roots_legendre(n or NODES))
    half = np.maximum(hi - lo, 0.0) / 2.0
    nodes = (lo + half)[:, None] + half[:, None] * xs
    with np.errstate(divide="ignore"):
        log_weights = np.log(half)[:, None] + np.log(ws)
    return nodes, log_weights


def _panels(lo: Vector, hi: Vector, own: tuple[Any, Any], *others: tuple[Any, Any],
            panels: int = PANELS) -> tuple[Vector, Vector]:
    """Gauss-Legendre nodes in the variable ``w = own[0](τ)`` on ``[lo, hi]`` (in τ), over composite panels.

    Each map is a pair (τ -> variable, its inverse) acting on rows × m arrays. The panel edges are
    the union of ``panels`` (default :data:`PANELS`) panels equally spaced in ``w`` and as many in each of ``others``:
    each factor of an integrand is smooth and mild in one of the variables, and on every panel all
    of them vary by at most a fraction of their range. Returns ``(w, ln weight)``, rows ×
    (panels × :data:`NODES`), weights −∞ where ``lo = hi``.
    """
    rows = len(lo)
    lo, hi = lo[:, None], hi[:, None]
    steps = np.linspace(0.0, 1.0, panels + 1)[1:-1]
    inner = []
    for forward, backward in (own, *others):
        w_lo, w_hi = forward(lo), forward(hi)
        inner.append(backward(w_lo + (w_hi - w_lo) * steps))
    inner_tau = np.sort(np.clip(np.concatenate(inner, axis=1), lo, hi), axis=1)
    edges = own[0](np.concatenate([lo, inner_tau, hi], axis=1))
    edges = np.maximum.accumulate(edges, axis=1)  # rounding in the maps must not reverse a panel
    w, log_w = _gauss(edges[:, :-1].ravel(), edges[:, 1:].ravel())
    return w.reshape(rows, -1), log_w.reshape(rows, -1)


#: Grading of the late pieces in v = ln B: every singularity of the integrand in v (where τ(v)
#: branches, e^v = β − 1, or the purchase part's pole at τ = −α) lies left of the piece's start
#: and at least ln 2 from it (B ≥ 2β there). Panels equally spaced in ln(v − v_lo + ln 2) are
#: never longer than their distance from such a point.
_GRADE = float(np.log(2.0))


def _graded(b: float, beta: float, v_lo: Vector) -> tuple[Any, Any]:
    """The map τ -> ln(v(τ) − v_lo + ln 2) and its inverse, for rows starting at ``v_lo``."""
    start = v_lo[:, None]
    return (lambda t: np.log(log_B(b, beta, t) - start + _GRADE),
            lambda g: _tau_of_log_B(b, beta, np.exp(g) - _GRADE + start))


def _log_sum(terms: Vector) -> tuple[Vector, Vector]:
    """Row-wise ``ln Σ exp(terms)`` and the normalised weights ``exp(terms − that)`` (rows of −∞: −∞, 0)."""
    top = np.max(terms, axis=1)
    finite = np.isfinite(top)
    top = np.where(finite, top, 0.0)
    mass = np.exp(terms - top[:, None])
    total = mass.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_total = np.where(finite, top + np.log(total), -np.inf)
        share = np.where(finite[:, None], mass / np.where(finite, total, 1.0)[:, None], 0.0)
    return log_total, share


def _piece(params: tuple[float, float, float, float, float], k: Vector, tau: Vector, log_w: Vector,
           log_b_tau: Vector, gradient: bool, log_a: Vector | None = None) -> tuple[Vector, Vector | None]:
    """ln of one piece of the death integral per row, and the integrand-weighted means its gradient needs.

    The means, columns of a rows × 5 array: ``ln(α+τ)``, ``1/(α+τ)``, ``τ (1 − (s+1) e^{bτ}/B)``,
    ``ln B``, ``1/B``: the derivatives of ``ln g`` with respect to ``r, α, b, s, β`` are
    ``−ln(α+τ), −k/(α+τ), τ − (s+1) τ e^{bτ}/B, −ln B, −(s+1)/B``. ``log_a``: ``ln(α+τ)`` on the
    nodes if the caller has it already (the early piece's weights need it), else taken here.
    """
    r, alpha, b, s, beta = params
    a = alpha + tau
    if log_a is None:
        log_a = np.log(a)
    log_total, share = _log_sum(log_w - k[:, None] * log_a + b * tau - (s + 1.0) * log_b_tau)
    if not gradient:
        return log_total, None
    mean = lambda values: np.einsum("ij,ij->i", share, values)  # noqa: E731
    inv_B = np.exp(-log_b_tau)
    moments = np.stack([
        mean(log_a),
        mean(1.0 / a),
        mean(tau * (1.0 - (s + 1.0) * np.exp(b * tau - log_b_tau))),  # e^{bτ}/B: no overflow far out
        mean(log_b_tau),
        mean(inv_B),
    ], axis=1)
    return log_total, moments


def _integral(params: tuple[float, float, float, float, float], k: Vector, lo: Vector, hi: Vector,
              gradient: bool, panels: int = PANELS) -> tuple[Vector, Vector | None]:
    """``ln ∫_lo^hi (α+τ)^{−k} e^{bτ} B(τ)^{−(s+1)} dτ`` per row (``hi`` may be +∞), and the moments of :func:`_piece`.

    The two pieces (module docstring) are evaluated only on the rows where they are not empty.
    Every piece is cut where its integrand fell e^{DROP} below its start, so ``hi = +∞`` (the
    tails :math:`J` of :func:`tail_integral`) needs no other treatment: both cuts are finite for
    s, k > 0.
    """
    r, alpha, b, s, beta = params
    # The split: B(τ_s) = 2β, i.e. e^{bτ_s} = 1 + β (τ_s → β/b, the Pareto/NBD β, as b → 0).
    split = np.log1p(beta) / b
    log_total = np.full(len(k), -np.inf)
    moments = np.zeros((len(k), 5)) if gradient else None
    pieces = []

    # Early piece [lo, min(hi, τ_s)] in u = ln((α + τ)/(α + lo)), dτ = (α + τ) du. The
    # integrand is at most (α+τ)^{−k} times the largest lifetime part on the piece, at most 1 + β
    # times its value at lo (B grows with τ and e^{b(τ − lo)} ≤ e^{bτ_s} = 1 + β): cut where the
    # purchase part alone fell by DROP plus that. Panels: equal in u and equal in τ (the lifetime
    # part is smooth in τ). u starts at 0 and τ = lo + (α + lo) expm1(u): no digits are lost
    # to α + τ − α when τ ≪ α (they were: 1e-10 relative at α = 70, τ ≤ 1e-3).
    with np.errstate(over="ignore"):
        cut = (alpha + lo) * np.exp((DROP + np.log1p(beta)) / k) - alpha
    early_hi = np.minimum(np.minimum(hi, split), cut)
    rows = np.flatnonzero(early_hi > lo)
    if len(rows):
        start, base = lo[rows][:, None], alpha + lo[rows][:, None]
        to_u = (lambda t: np.log1p((t - start) / base), lambda u: start + base * np.expm1(u))
        same = (lambda t: t, lambda t: t)
        u, log_w = _panels(lo[rows], early_hi[rows], to_u, same, panels=panels)
        tau = start + base * np.expm1(u)
        log_a = np.log(alpha + tau)  # dτ = (α + τ) du, and the purchase part's ln(α + τ): one log for both
        pieces.append((rows, tau, log_w + log_a, log_B(b, beta, tau), log_a))

    # Late piece [max(lo, τ_s), hi] in v = ln B(τ), dτ = B / (b e^{bτ}) dv: the integrand
    # (α+τ)^{−k} B^{−s} / b is decreasing in v, so it is cut where e^{−sv} or the purchase part
    # alone fell by DROP. Panels: equal in v, equal in ln(α + τ) (for the purchase part) and
    # graded away from the start (:func:`_graded`, for the singularities just before it).
    late_lo = np.maximum(lo, split)
    with np.errstate(over="ignore"):
        late_hi = np.minimum(hi, (alpha + late_lo) * np.exp(DROP / k) - alpha)
        late_hi = np.minimum(late_hi, _tau_of_log_B(b, beta, log_B(b, beta, late_lo) + DROP / s))
    rows = np.flatnonzero(late_hi > late_lo)
    if len(rows):
        to_v = (lambda t: log_B(b, beta, t), lambda v_: _tau_of_log_B(b, beta, v_))
        to_u = (lambda t: np.log(alpha + t), lambda u: np.exp(u) - alpha)
        graded = _graded(b, beta, log_B(b, beta, late_lo[rows]))
        v, log_w = _panels(late_lo[rows], late_hi[rows], to_v, to_u, graded, panels=panels)
        tau = _tau_of_log_B(b, beta, v)
        pieces.append((rows, tau, log_w + v - np.log(b) - b * tau, v, None))

    for rows, tau, log_w, log_b_tau, log_a in pieces:
        piece_log, piece_moments = _piece(params, k[rows], tau, log_w, log_b_tau, gradient, log_a)
        log_total[rows], combined_moments = _add(log_total[rows], moments[rows] if gradient else None,
                                                 piece_log, piece_moments)
        if gradient:
            moments[rows] = combined_moments
    return log_total, moments


def _add(log_a: Vector, moments_a: Vector | None, log_b: Vector,
         moments_b: Vector | None) -> tuple[Vector, Vector | None]:
    """ln of the sum of two integrals per row, and the moments of the sum (the share-weighted mean)."""
    combined = np.logaddexp(log_a, log_b)
    if moments_a is None or moments_b is None:
        return combined, None
    with np.errstate(invalid="ignore"):
        share_b = np.where(np.isfinite(combined), np.exp(log_b - combined), 0.0)[:, None]
    return combined, (1.0 - share_b) * moments_a + share_b * moments_b


def death_integral(params: tuple[float, float, float, float, float], x: Vector, tx: Vector, T: Vector,
                   *, gradient: bool = False) -> tuple[Vector, Vector | None]:
    """``ln ∫_{t_x}^T (α+τ)^{−k} e^{bτ} B(τ)^{−(s+1)} dτ`` per row (``k = r + x``; −∞ where ``t_x = T``).

    With ``gradient=True`` also the integrand-weighted means of :func:`_piece` (rows × 5), from
    which the derivatives of the integral's logarithm follow. Evaluated directly on ``[t_x, T]``
    (the forecasts' P(alive)); the fit takes it as a difference of tails (:func:`tail_integral`).
    """
    x, tx, T = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (x, tx, T))
    return _integral(params, params[0] + x, tx, T, gradient)


def tail_integral(params: tuple[float, float, float, float, float], x: Vector, u: Vector,
                  *, gradient: bool = False) -> tuple[Vector, Vector | None]:
    """``ln J(x, u) = ln ∫_u^∞ (α+τ)^{−(r+x)} e^{bτ} B(τ)^{−(s+1)} dτ`` per row, and its moments (:func:`_piece`).

    The death integral is ``J(x, t_x) − J(x, T)`` (:func:`death_from_tails`), and J is needed only
    at the distinct ``(x, u)`` pairs with u a recency or an age: far fewer than the distinct
    ``(x, t_x, T)`` rows of a large data set (module docstring).
    """
    x, u = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (x, u))
    # J(x, u) = ∫_u^{U_x} + J(x, U_x), U_x the largest u given with that x: the finite parts
    # usually need the early piece only (u ≤ τ_s), the full tail to ∞ (both pieces) is taken
    # once per distinct x. A sum of two positive integrals: no digits are lost.
    x_values, x_code = np.unique(x, return_inverse=True)
    far = np.full(len(x_values), np.nan)
    np.fmax.at(far, x_code, u)  # fmax: a missing u (NaN, at scoring) must not spoil its x's other rows
    with np.errstate(invalid="ignore"):
        far_log, far_moments = _integral(params, params[0] + x_values, far, np.full(len(far), np.inf), gradient,
                                         panels=FAR_PANELS)
        near_log, near_moments = _integral(params, params[0] + x, u, far[x_code], gradient)
    log_j, moments = _add(near_log, near_moments, far_log[x_code], None if far_moments is None else far_moments[x_code])
    return np.where(np.isnan(u), np.nan, log_j), moments


def death_from_tails(log_j_lo: Vector, log_j_hi: Vector, moments_lo: Vector | None = None,
                     moments_hi: Vector | None = None) -> tuple[Vector, Vector | None]:
    """ln of ``J_lo − J_hi`` (the death integral from two tails) and its moments, per row.

    With ``ρ = J_hi/J_lo``: ``ln(J_lo − J_hi) = ln J_lo + ln(1 − ρ)`` and the integrand-weighted
    means of the difference are ``(m_lo − ρ m_hi)/(1 − ρ)``.

    The subtraction loses digits when ρ is near 1 (t_x just before T), but never more than the
    likelihood can see: for τ ≥ T, ``(α+τ)^{−k} ≤ (α+T)^{−k}`` and ``∫_T^∞ f = S(T)``, so
    ``b s β^s J(x, T) ≤ (α+T)^{−k} S(T)``, the "alive" term; hence ``b s β^s J(x, t_x)`` is at most
    the "dead" plus the "alive" term, and an error of ε relative in either tail is an error of at
    most ~2ε relative in L. The same holds for the gradient, whose per-row term is the dead share
    ``D/(A + D)`` times these means: the ``1 − ρ`` divided here cancels against the one in D.
    Where rounding leaves ``ρ ≥ 1`` (D below ε relative to the tails) the integral is taken as 0,
    within that bound; t_x = T gives exactly 0 (ln = −∞), as the direct integral does.
    """
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        diff = log_j_hi - log_j_lo
        gap = -np.expm1(diff)  # 1 − ρ
        ok = gap > 0.0
        # NaN in (a missing recency at scoring), NaN out, as the direct integral gives.
        log_total = np.where(ok, log_j_lo + np.log(np.where(ok, gap, 1.0)), np.where(np.isnan(diff), np.nan, -np.inf))
        if moments_lo is None or moments_hi is None:
            return log_total, None
        rho = np.where(ok, np.exp(diff), 0.0)[:, None]
        moments = np.where(ok[:, None], (moments_lo - rho * moments_hi) / np.where(ok, gap, 1.0)[:, None], 0.0)
    return log_total, moments


def log_likelihood_terms(params: tuple[float, float, float, float, float], x: Vector, tx: Vector, T: Vector,
                         *, gradient: bool = False,
                         death: tuple[Vector, Vector | None] | None = None) -> dict[str, Vector]:
    """Per-row pieces of ln L: ``common``, ``alive`` (ln of the τ > T term), ``dead`` (the integral term).

    ``ln L = common + logaddexp(alive, dead)`` with::

        common = lnΓ(r+x) − lnΓ(r) + r ln α
        alive  = −(r+x) ln(α+T) + s ln β − s ln B(T)
        dead   = ln b + ln s + s ln β + ln ∫_{t_x}^T (α+τ)^{−(r+x)} e^{bτ} B(τ)^{−(s+1)} dτ

    ``dead`` is −∞ where ``t_x = T`` (no room to die unseen). With ``gradient=True`` also the
    derivatives of each piece with respect to ``(r, α, b, s, β)`` (keys ``d_common``, ``d_alive``,
    ``d_dead``, each rows × 5). ``death``: the integral's logarithm and moments already computed
    (from tails, :func:`death_from_tails`); by default :func:`death_integral` on the rows.
    """
    r, alpha, b, s, beta = params
    x, tx, T = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (x, tx, T))
    k = r + x
    log_BT = log_B(b, beta, T)
    common = gammaln(k) - gammaln(r) + r * np.log(alpha)
    alive = -k * np.log(alpha + T) + s * np.log(beta) - s * log_BT
    log_integral, m = death if death is not None else death_integral(params, x, tx, T, gradient=gradient)
    dead = np.log(b) + np.log(s) + s * np.log(beta) + log_integral
    out = {"common": common, "alive": alive, "dead": dead}
    if not gradient:
        return out
    zero, ones = np.zeros_like(x), np.ones_like(x)
    out["d_common"] = np.stack([digamma(k) - digamma(r) + np.log(alpha), r / alpha * ones, zero, zero, zero], axis=1)
    out["d_alive"] = np.stack([-np.log(alpha + T), -k / (alpha + T), -s * T * np.exp(b * T - log_BT),
                               np.log(beta) - log_BT, s / beta - s * np.exp(-log_BT)], axis=1)
    out["d_dead"] = np.stack([-m[:, 0], -k * m[:, 1], 1.0 / b + m[:, 2], 1.0 / s + np.log(beta) - m[:, 3],
                              s / beta - (s + 1.0) * m[:, 4]], axis=1)
    return out


def _dot(u: Vector, v: Vector) -> float:
    """Σ u v without BLAS (see :func:`.bgnbd_likelihood._dot`)."""
    return float(np.einsum("i,i->", u, v))


#: ``φ = A θ``: from ``θ = ln(r, α, b, s, β)`` to the optimiser's ``φ = (ln r, ln α, ln b, ln s, ln β/b)``.
_TO_PHI = np.array([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, -1, 0, 1]],
                   dtype=float)
_FROM_PHI = np.linalg.inv(_TO_PHI)


def params_from_phi(phi: Vector) -> tuple[float, float, float, float, float]:
    """``(r, α, b, s, β)`` from ``φ = (ln r, ln α, ln b, ln s, ln β/b)``."""
    r, alpha, b, s, beta_over_b = np.exp(np.asarray(phi, dtype=float))
    return float(r), float(alpha), float(b), float(s), float(b * beta_over_b)


class GompertzNBDLikelihood:
    """The mean negative GGom/NBD log-likelihood over weighted rows and its gradient in ``φ``.

    Calling it with ``φ = (ln r, ln α, ln b, ln s, ln(β/b))`` returns ``(−Σ w ln L / Σ w, ∂/∂φ)``.
    Each evaluation integrates the tails J (:func:`tail_integral`) once per distinct ``(x, u)``
    pair, u a recency or an age, and takes every row's death integral as a difference of two
    of them (:func:`death_from_tails`); the rest of each row's terms is pooled per distinct x and
    per pair (:meth:`_pooled`).

    Parameters
    ----------
    frequency, recency, T
        ``x, t_x, T`` per row (any time unit; α, b and β/b are in that unit).
    weights
        Customers per row (collapsed identical rows).
    """

    def __init__(self, frequency: NDArray[Any], recency: NDArray[Any], T: NDArray[Any], weights: NDArray[Any]) -> None:
        self.x = np.asarray(frequency, dtype=float)
        self.tx = np.asarray(recency, dtype=float)
        self.T = np.asarray(T, dtype=float)
        self.weights = np.asarray(weights, dtype=float)
        self.total_weight = float(self.weights.sum())
        # The distinct (x, u) pairs, u = t_x or T, and where each row's two tails sit among them.
        self.x_values, x_code, self.pair_x, self.pair_u, self.at_tx, self.at_T = distinct_pairs(self.x, self.tx, self.T)
        self.weight_per_x = np.bincount(x_code, weights=self.weights, minlength=len(self.x_values))

    def _blocks(self, n: int) -> Any:
        """Slices of at most :data:`CHUNK` of ``n`` rows (bounded temporaries at a million customers)."""
        return (slice(start, start + CHUNK) for start in range(0, n, CHUNK))

    def _tails(self, params: tuple[float, float, float, float, float],
               gradient: bool) -> tuple[Vector, Vector | None]:
        """ln J and (with ``gradient``) its moments at every distinct ``(x, u)`` pair."""
        log_j = np.empty(len(self.pair_x))
        moments = np.empty((len(self.pair_x), 5)) if gradient else None
        for block in self._blocks(len(log_j)):
            log_j[block], m = tail_integral(params, self.pair_x[block], self.pair_u[block], gradient=gradient)
            if gradient:
                moments[block] = m
        return log_j, moments

    def _terms(self, params: tuple[float, float, float, float, float], tails: tuple[Vector, Vector | None],
               block: slice, gradient: bool) -> dict[str, Vector]:
        """:func:`log_likelihood_terms` of one block of rows, the death integral from the tails."""
        log_j, moments = tails
        lo, hi = self.at_tx[block], self.at_T[block]
        death = death_from_tails(log_j[lo], log_j[hi], *((moments[lo], moments[hi]) if gradient else ()))
        return log_likelihood_terms(params, self.x[block], self.tx[block], self.T[block], gradient=gradient,
                                    death=death)

    def alive_share(self, params: tuple[float, float, float, float, float]) -> Vector:
        """P(τ > T | x, t_x, T) per row at ``(r, α, b, s, β)``: the "alive" share of L.

        From the tails like the objective: within about twice the tails' relative error, absolute,
        of the direct integral's value (:func:`death_from_tails`; 1e-13 measured on a million
        benchmark customers); exactly 1 where ``t_x = T``.
        """
        tails = self._tails(params, False)
        alive = np.empty(len(self.x))
        for block in self._blocks(len(self.x)):
            t = self._terms(params, tails, block, False)
            alive[block] = expit(t["alive"] - t["dead"])
        return alive

    def _pooled(self, params: tuple[float, float, float, float, float],
                gradient: bool) -> tuple[float, Vector | None]:
        """Σ w ln L and (with ``gradient``) its derivatives in ``(r, α, b, s, β)``, the per-row work pooled.

        The terms of :func:`log_likelihood_terms` depend on a row only through its pairs: ``common``
        on x, ``alive`` on the pair (x, T), ``dead`` on the tails at (x, t_x) and (x, T). So they
        are taken per distinct x and per pair, and a row's own work is a few gathers, one
        ``logaddexp`` and the shares its gradient needs, which are summed per pair (``bincount``)
        and multiply the pair's derivatives once (as :class:`.pareto_nbd_likelihood.ParetoNBDLikelihood`
        does). With the dead term ``D = c J_lo (1 − ρ)`` (``c = b s β^s``, :func:`death_from_tails`)
        and the moments of the difference ``(m_lo − ρ m_hi)/(1 − ρ)``, a row's dead share times those
        moments is ``(c J_lo m_lo − c J_hi m_hi)/(A + D)``: the row adds ``c J_lo/(A + D)`` to its
        (x, t_x) pair's weight and ``−c J_hi/(A + D)`` to its (x, T) pair's, both at most ~1 (the
        bound of :func:`death_from_tails`), so the pooled sums lose no more digits than the row by
        row ones did. Equal to the row-by-row sums to rounding (tests/models/test_ggomnbd.py).
        """
        r, alpha, b, s, beta = params
        log_j, moments = self._tails(params, gradient)
        k = r + self.pair_x
        u = self.pair_u
        log_b_u = log_B(b, beta, u)
        alive_pair = -k * np.log(alpha + u) + s * np.log(beta) - s * log_b_u
        log_c = np.log(b) + np.log(s) + s * np.log(beta)  # ln(b s β^s): dead = log_c + ln(J_lo − J_hi)
        common_x = gammaln(r + self.x_values) - gammaln(r) + r * np.log(alpha)
        alive = alive_pair[self.at_T]
        log_lo, log_hi = log_j[self.at_tx], log_j[self.at_T]
        dead = log_c + death_from_tails(log_lo, log_hi)[0]
        log_l = np.logaddexp(alive, dead)  # ln L − common per row
        value = _dot(self.weight_per_x, common_x) + _dot(self.weights, log_l)
        if not gradient:
            return value, None
        pairs = len(self.pair_x)
        has_death = np.isfinite(dead)  # t_x = T, or a difference rounded to nothing: no dead term
        dead_share = np.where(has_death, expit(dead - alive), 0.0)
        with np.errstate(over="ignore", invalid="ignore"):
            to_lo = np.where(has_death, self.weights * np.exp(log_c + log_lo - log_l), 0.0)
            to_hi = np.where(has_death, self.weights * np.exp(log_c + log_hi - log_l), 0.0)
        on_alive = np.bincount(self.at_T, weights=self.weights * expit(alive - dead), minlength=pairs)
        on_moments = (np.bincount(self.at_tx, weights=to_lo, minlength=pairs)
                      - np.bincount(self.at_T, weights=to_hi, minlength=pairs))
        # ∂ alive per pair (log_likelihood_terms' d_alive at T = u).
        d_alive = np.stack([-np.log(alpha + u), -k / (alpha + u), -s * u * np.exp(b * u - log_b_u),
                            np.log(beta) - log_b_u, s / beta - s * np.exp(-log_b_u)])
        # ∂ dead = constant part + the moments' part (log_likelihood_terms' d_dead).
        m = moments.T
        d_moments = np.stack([-m[0], -k * m[1], m[2], -m[3], -(s + 1.0) * m[4]])
        dead_weight = _dot(self.weights, dead_share)
        d_common = np.array([_dot(self.weight_per_x, digamma(r + self.x_values) - digamma(r) + np.log(alpha)),
                             r / alpha * self.total_weight, 0.0, 0.0, 0.0])
        d_params = (d_common + d_alive @ on_alive + d_moments @ on_moments
                    + dead_weight * np.array([0.0, 0.0, 1.0 / b, 1.0 / s + np.log(beta), s / beta]))
        return value, d_params

    def log_likelihood(self, phi: Vector) -> float:
        """Total Σ w ln L at ``φ``."""
        return self._pooled(params_from_phi(phi), False)[0]

    def __call__(self, phi: Vector) -> tuple[float, Vector]:
        """Mean negative log-likelihood and its gradient at ``φ``."""
        params = params_from_phi(phi)
        value, d_params = self._pooled(params, True)
        d_theta = d_params * np.array(params)  # ∂/∂ ln θ
        d_phi = _FROM_PHI.T @ d_theta  # θ = A⁻¹ φ, so ∂/∂φ = A⁻ᵀ ∂/∂θ
        return -value / self.total_weight, -d_phi / self.total_weight


def survival_integral(params: tuple[float, float, float, float, float], T: NDArray[Any], t: NDArray[Any]) -> Vector:
    """``D(T, t) = ∫_T^{T+t} P(τ > u | τ > T) du``: expected time alive in ``(T, T + t]`` given alive at T.

    Given alive at T the posterior of η is Gamma(s, β + e^{bT} − 1) (the likelihood of survival,
    ``exp(−η (e^{bT} − 1))``, times the prior), so ``P(τ > u | τ > T) = (B(T) / B(u))^s``. The
    integral is split like the death integral: ``u`` itself where ``B(u) ≤ 2β`` (there
    ``(B(T)/B(u))^s`` changes by at most ``2^s``) and ``v = ln B(u)`` beyond (integrand
    ``e^{−s(v − ln B(T))} B/(b e^{bu})``, cut DROP/s e-folds on). ``T`` and ``t`` broadcast;
    ``t = 0`` gives 0. Used for E[X(t)] (``T = 0``) and E[Y(t) | alive at T].
    """
    r, alpha, b, s, beta = params
    T, end = np.broadcast_arrays(np.asarray(T, dtype=float), np.asarray(T, dtype=float) + np.asarray(t, dtype=float))
    shape = T.shape
    T, end = T.ravel().astype(float), end.ravel().astype(float)
    split = np.log1p(beta) / b
    log_BT = log_B(b, beta, T)
    total = np.zeros(len(T))
    same = (lambda u: u, lambda u: u)
    to_v = (lambda u: log_B(b, beta, u), lambda v_: _tau_of_log_B(b, beta, v_))
    early_hi = np.minimum(end, split)
    rows = np.flatnonzero(early_hi > T)
    if len(rows):
        u, log_w = _panels(T[rows], early_hi[rows], same, same)
        total[rows] += np.exp(log_w + s * (log_BT[rows, None] - log_B(b, beta, u))).sum(axis=1)
    late_lo = np.maximum(T, split)
    late_hi = np.minimum(end, _tau_of_log_B(b, beta, log_B(b, beta, late_lo) + DROP / s))
    rows = np.flatnonzero(late_hi > late_lo)
    if len(rows):
        v, log_w = _panels(late_lo[rows], late_hi[rows], to_v, _graded(b, beta, log_B(b, beta, late_lo[rows])))
        tau = _tau_of_log_B(b, beta, v)
        total[rows] += np.exp(log_w - s * (v - log_BT[rows, None]) + v - np.log(b) - b * tau).sum(axis=1)
    return total.reshape(shape)


def _check_rows(x: Vector, tx: Vector, T: Vector, weights: Vector) -> None:
    """The purchase models' input checks, and a positive age, as one-line errors counting customers."""
    mle.refuse_rows("ggomnbd", [*mle.rfm_problems(x, tx, T), (T <= 0, "a non-positive T")], weights)


def time_scale(T: NDArray[Any]) -> float:
    """The factor that makes the longest customer age 1; the fit runs in that time so that its
    starts (:data:`LIMIT_START`, :data:`B_STARTS`) mean the same whatever the data's time unit."""
    return 1.0 / float(np.max(T))


#: b of the point reported on the ridge, per longest customer age (the fit's rescaled unit): with
#: ``b T ≤ 1e-9`` every likelihood term and forecast equals the Pareto/NBD limit's to ~1e-9
#: relative, and being fixed it does not depend on where an optimiser stopped.
RIDGE_B = 1e-9

#: Start of the Pareto/NBD limit fit (b = :data:`RIDGE_B`), rescaled time: ``r = α = s = β/b = 1``.
LIMIT_START = (1.0, 1.0, 1.0, 1.0)

#: Starts of the free fit, rescaled time: b = 0.1, 1 and 10 per longest customer age (the hazard
#: growing by ~10 %, e and e^{10} over it), each with s = β = 1 (CLVTools' default start) and r, α
#: of the limit fit. The best likelihood is kept; with a finite optimum they reach the same point,
#: on a ridge they stop at different b (that is what :func:`fit`'s comparison with the limit is
#: for). Not the limit's s and β/b: where heterogeneity in η is weak the limit runs off towards
#: s, β → ∞, and a start out there stays there (on data simulated with b = 0.1/week, s = 0.5,
#: β = 2 such starts stopped 5.9 below the MLE that s = β = 1 reached from every b).
B_STARTS = (0.1, 1.0, 10.0)


# The free fit runs every start, also when the first stops on the Pareto/NBD ridge: a later start
# can find a finite optimum the first missed (150 simulated customers, tests/data/
# ggomnbd_later_start.csv: the b = 0.1 start ends on the ridge, the b = 1 and b = 10 starts at a
# finite optimum 0.62 higher in log-likelihood). Skipping them was tried (issue 16) and undone.


#: Threads for the fit's independent pieces (issue 16, target 2): the free starts (with the limit's
#: log-likelihood in GGom/NBD's own objective beside them) and the Hessian's gradient calls. Each
#: piece is deterministic and independent of the others, and the results are taken in the order the
#: serial fit takes them, never in order of completion, so the fit is bit for bit the same with any
#: number (tests/models/test_ggomnbd.py). Two: the machine the leaderboard is measured on has two
#: cores, and nothing else in ``clvmodel train`` runs while GGom/NBD fits (it is not
#: ``parallel_safe``). An evaluation's time is mostly in numpy's ufunc loops and scipy.special on
#: arrays of 20,000 rows (:data:`CHUNK`), which release the GIL (experiments/ggomnbd_fit_speed.py,
#: ``--threads``). 1: one after the other in this thread; one where the process may use one core only
#: (its CPU affinity, e.g. a container limited to one CPU): a second thread would only add overhead.
WORKERS = min(2, usable_cores())

_Result = TypeVar("_Result")


class _Abandoned(Exception):
    """Raised in a worker's objective once the caller gave up on the fit (not an arithmetic error,
    so :class:`.mle.Guarded` and :func:`.mle.search` let it through)."""


def _watched(objective: Callable[[Vector], Any], abandon: threading.Event) -> Callable[[Vector], Any]:
    """``objective``, raising :class:`_Abandoned` at its next call once ``abandon`` is set."""

    def watched(phi: Vector) -> Any:
        if abandon.is_set():
            raise _Abandoned
        return objective(phi)

    return watched


def _in_order(tasks: list[Callable[[], _Result]], workers: int,
              abandon: threading.Event | None = None) -> list[_Result]:
    """Each task's result, in the order of ``tasks``, computed on up to ``workers`` threads (1: here, in turn).

    Tasks are submitted in order, so with fewer workers than tasks the first ones start first; an
    exception in a task is raised here, as the serial loop would raise it (the first in order).
    Once a task fails or the caller stops waiting (Ctrl-C), ``abandon`` is set: the tasks not yet
    started never start, and tasks whose objectives are :func:`_watched` stop at their next
    evaluation, so the caller hears of it within one evaluation, as in the serial loop, instead of
    after every remaining start (leaving the ``with`` block waits for the running tasks).
    """
    if workers <= 1 or len(tasks) <= 1:
        return [task() for task in tasks]
    abandon = abandon or threading.Event()

    def stoppable(task: Callable[[], _Result]) -> Callable[[], _Result]:
        def run() -> _Result:
            if abandon.is_set():
                raise _Abandoned
            try:
                return task()
            except BaseException:
                abandon.set()  # here, before this worker takes the next queued task
                raise

        return run

    with ThreadPoolExecutor(max_workers=min(workers, len(tasks)), thread_name_prefix="clvmodel-ggomnbd") as pool:
        running = [pool.submit(stoppable(task)) for task in tasks]
        try:
            return [future.result() for future in running]
        except BaseException as error:
            abandon.set()
            for future in running:
                future.cancel()
            if isinstance(error, _Abandoned):  # stopped because a later task failed: raise that one's error
                wait(running)
                for future in running:
                    failure = None if future.cancelled() else future.exception()
                    if failure is not None and not isinstance(failure, _Abandoned):
                        raise failure from None
            raise


def _quiet(function: Callable[[Vector], Any], at: Vector) -> Callable[[], Any]:
    """``function(at)`` as a task, with numpy's floating-point warnings off in the thread that runs it
    (numpy's error state is per thread: a worker does not inherit the caller's ``errstate``)."""

    def task() -> Any:
        with np.errstate(all="ignore"):
            return function(at)

    return task


def _hessian(gradient: Callable[[Vector], Vector], at: Vector, workers: int) -> Vector:
    """:func:`.mle.central_hessian` of ``gradient`` at ``at``, its ``2k`` gradient calls on up to ``workers`` threads.

    The points ``at ± h e_i`` are formed with the same arithmetic as :func:`.mle.central_hessian`
    (``np.eye(k) * h``, added and subtracted), their gradients computed first, and
    :func:`.mle.central_hessian` then assembles them from a table: the same numbers, the same
    Hessian bit for bit. A point missing from the table (were its arithmetic to change) is computed
    there and then: slower, never different.
    """
    at = np.asarray(at, dtype=float)
    points = [point for shift in np.eye(len(at)) * mle.HESSIAN_STEP for point in (at + shift, at - shift)]
    known = {point.tobytes(): value
             for point, value in zip(points, _in_order([_quiet(gradient, point) for point in points], workers))}

    def table(point: Vector) -> Vector:
        found = known.get(np.asarray(point, dtype=float).tobytes())
        return gradient(point) if found is None else found

    with np.errstate(all="ignore"):
        return mle.central_hessian(table, at)


def _fixed_b(objective: GompertzNBDLikelihood, log_b: float) -> Any:
    """The objective in ``q = (ln r, ln α, ln s, ln β/b)`` at fixed ``ln b``."""

    def limited(q: Vector) -> tuple[float, Vector]:
        value, gradient = objective(np.insert(np.asarray(q, dtype=float), 2, log_b))
        return value, np.delete(gradient, 2)

    return limited


def fit(columns: dict[str, NDArray[Any]], weights: NDArray[Any], *, initial_params: Any = None,
        tol: float = mle.LIFETIMES_TOL, workers: int | None = None, **options: Any) -> mle.FitResult:
    """Maximum likelihood GGom/NBD on weighted rows, or its Pareto/NBD limit when that is the supremum.

    In rescaled time (:func:`time_scale`) and in ``φ = (ln r, ln α, ln b, ln s, ln β/b)``:

    1. the Pareto/NBD limit: b fixed at :data:`RIDGE_B`, the other four by BFGS from
       :data:`LIMIT_START`, through :class:`.pareto_nbd_likelihood.ParetoNBDLikelihood` in
       ``ln(r, α, s, β/b)`` (at b = RIDGE_B the same function to ~1e-11 relative, at a third of
       the cost or less), its log-likelihood then taken once in this model's own objective;
    2. the free fit: BFGS in all five from each of :data:`B_STARTS` (or from ``initial_params``
       alone), keeping the best likelihood (every start runs: a later one can find a finite
       optimum where the first stopped on the ridge);
    3. if that does not beat the limit by :data:`.mle.RIDGE_GAIN`, the data have no finite
       optimum in b (the likelihood rises towards b → 0, as on CDNOW): status :data:`.mle.RIDGE`,
       the limit's estimates at b = :data:`RIDGE_B`, ``limit`` = its identified ``r, alpha, s,
       beta_over_b`` (the Pareto/NBD parameters). Along the ridge the likelihood is below the
       limit's supremum, so the verdict does not depend on where the free fit stopped.

    Parameters
    ----------
    columns
        ``frequency, recency, T`` per row.
    weights
        Customers per row.
    initial_params
        One start for the free fit instead of :data:`B_STARTS`: ``ln(r, α, b, s, β)`` in rescaled time.
    tol, options
        BFGS ``gtol`` and scipy ``minimize`` options (``maxiter``, ...), as :func:`.mle.minimise`.
    workers
        Threads for the free starts and the Hessian (default :data:`WORKERS`; 1: one after the
        other). The result does not depend on it. With a ``time_budget`` (for all starts
        together, :func:`.mle.search`) the starts run one after the other, as that budget means.

    Returns
    -------
    mle.FitResult
        Estimates in the rows' time unit, the total log-likelihood Σ w ln L in that unit, standard
        errors from a central-difference Hessian of the analytic gradient (on the ridge: those of
        the limit, b and β NaN since only β/b is identified).
    """
    x, tx, T = (np.asarray(columns[c], dtype=float) for c in ("frequency", "recency", "T"))
    weights = np.asarray(weights, dtype=float)
    _check_rows(x, tx, T, weights)
    scale = time_scale(T)
    objective = GompertzNBDLikelihood(x, tx * scale, T * scale, weights)
    # ln L in the rows' unit: rescaling time by c multiplies each likelihood by c^x (x purchase
    # densities per unit of time), so Σ w ln L gains Σ w x ln c.
    unit_shift = float(np.dot(weights, x)) * np.log(scale)

    # The limit in q = (ln r, ln α, ln s, ln β/b) through the Pareto/NBD likelihood, θ = ln(r, α, s,
    # β_P) with β_P = β/b: the same coordinates, and at b = RIDGE_B the same function to ~1e-11
    # relative (value and gradient, measured on CDNOW), so BFGS takes the same path (parameters
    # equal to 6e-10 on CDNOW) at a quarter to a third of the cost per evaluation (closed-form-like quadrature,
    # no Gompertz factor). Its likelihood is then taken once in GGom/NBD's own objective, so the
    # comparison with the free fit below is within one function.
    log_b0 = float(np.log(RIDGE_B))
    pareto = ParetoNBDLikelihood(x, tx * scale, T * scale, weights)
    limit = mle.minimise(pareto, np.log(LIMIT_START), model="ggomnbd", tol=tol, **options)
    limit_phi = np.insert(limit.x, 2, log_b0)
    workers = WORKERS if workers is None else int(workers)

    if initial_params is not None:
        starts = [_TO_PHI @ np.asarray(initial_params, dtype=float)]
    else:
        starts = [_TO_PHI @ np.array([limit.x[0], limit.x[1], np.log(b), 0.0, 0.0]) for b in B_STARTS]
    # The starts are independent BFGS runs (each its own Guarded counter inside mle.search; the
    # objective only reads its arrays), so they run side by side, and the limit's log-likelihood
    # in this model's objective, needed only after them, beside them. Their stops are kept in the
    # starts' order, whatever finishes first: the choice below is the serial one. A time budget is
    # for all starts together (mle.search): then they run in turn, in one search.
    if options.get("time_budget") is not None:
        stops = mle.search(objective, starts, tol=tol, **options)
        limit_ll = objective.log_likelihood(limit_phi)
    else:
        abandon = threading.Event()
        watched = _watched(objective, abandon)

        def one_start(index: int, start: Vector) -> Callable[[], Any]:
            def task() -> Any:
                stop = mle.search(watched, [start], tol=tol, **options)[0]
                stop.start_index = index  # as mle.search numbers its starts
                return stop
            return task

        tasks: list[Callable[[], Any]] = [one_start(i, start) for i, start in enumerate(starts)]
        *stops, limit_ll = _in_order([*tasks, lambda: objective.log_likelihood(limit_phi)], workers, abandon)
    # Each start's stop as mle.minimise keeps it (stationary, or a success scipy reports), the
    # lowest objective of them kept; none: the first start's failure, in minimise's words.
    kept = [stop for stop in stops if mle.stationary(stop) or (stop.success and np.isfinite(stop.fun))]
    if not kept:
        raise mle.not_converged("ggomnbd", mle.failure_words(stops[:1], of=1))
    best = kept[0]
    for stop in kept[1:]:
        if stop.fun < best.fun:
            best = stop

    # Only a stationary stop is compared with the limit (as Gamma-Gamma's fit does): a stop short
    # of the optimum says nothing about whether a finite optimum beats it.
    if mle.stationary(best) and -best.fun * objective.total_weight < limit_ll + mle.RIDGE_GAIN:
        return _ridge_result(pareto, limit_phi, limit_ll, scale, unit_shift, workers)
    hessian_phi = _hessian(lambda phi: objective(phi)[1], best.x, workers) * objective.total_weight
    params = _params_in_unit(best.x, scale)
    # φ = A θ: gradient in θ is Aᵀ ∇φ, Hessian Aᵀ H A (rescaling time only shifts ln α and ln b).
    return mle.fit_result("ggomnbd", params, -best.fun * objective.total_weight + unit_shift,
                          _TO_PHI.T @ best.jac, _TO_PHI.T @ hessian_phi @ _TO_PHI, objective.total_weight)


def _params_in_unit(phi: Vector, scale: float) -> dict[str, float]:
    """Estimates in the rows' unit from ``φ`` in rescaled time: α = α'/c, b = b' c, β (and s, r) unchanged."""
    r, alpha, b, s, beta = params_from_phi(phi)
    return {"r": r, "alpha": alpha / scale, "b": b * scale, "s": s, "beta": beta}


def _ridge_result(limit: ParetoNBDLikelihood, limit_phi: Vector, limit_ll: float, scale: float,
                  unit_shift: float, workers: int = 1) -> mle.FitResult:
    """The fit reported on the ridge: the Pareto/NBD limit at b = :data:`RIDGE_B` (rescaled).

    The covariance is the limit's (ln b held fixed), mapped to ``ln(r, α, b, s, β)`` with
    ``ln β = ln b + ln β/b``: intervals then show what the data say about r, α, s and β/b. Its
    Hessian is the Pareto/NBD likelihood's in ``ln(r, α, s, β_P)`` (``limit``), the coordinates of
    the GGom/NBD objective at fixed ln b and at b = RIDGE_B the same function to ~1e-11 relative:
    the covariance equals the one from GGom/NBD's own gradient to ~1e-7 relative (CDNOW), the
    difference-quotient error of either. ``limit_ll`` is Σ w ln L at the limit in rescaled time
    from GGom/NBD's own objective. ``workers``: threads for the Hessian's gradient calls (:func:`_hessian`).
    """
    q = np.delete(limit_phi, 2)
    hessian = _hessian(lambda q_: limit(q_)[1], q, workers) * limit.total_weight
    try:
        covariance = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        covariance = np.full((4, 4), np.nan)
    # (ln r, ln α, ln s, ln β/b) -> (ln r, ln α, ln b, ln s, ln β) at fixed ln b.
    jacobian = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
    covariance5 = jacobian @ covariance @ jacobian.T
    params = _params_in_unit(limit_phi, scale)
    diagonal = np.diag(covariance)
    errors = [params["r"] * np.sqrt(diagonal[0]), params["alpha"] * np.sqrt(diagonal[1]), np.nan,
              params["s"] * np.sqrt(diagonal[2]), np.nan]
    standard_errors = {name: float(e) for name, e in zip(PARAMS, errors)}
    identified = {"r": params["r"], "alpha": params["alpha"], "s": params["s"],
                  "beta_over_b": params["beta"] / params["b"]}
    return mle.FitResult(params, standard_errors, float(limit_ll + unit_shift), int(limit.total_weight),
                         covariance5.tolist(), mle.RIDGE, identified)
