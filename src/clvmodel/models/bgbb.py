"""BG/BB purchase model (Fader, Hardie & Shang 2010, "Customer-base analysis in a discrete-time
noncontractual setting", Marketing Science 29(6), FHS10).

Discrete time: after her first transaction a customer has ``n`` transaction opportunities. While
alive she transacts at each with probability ``p ~ Beta(α, β)``; at the start of each opportunity
she dies with probability ``θ ~ Beta(γ, δ)``. A history is ``(x, t_x, n)``: ``x`` transactions in
the ``n`` opportunities, the last at opportunity ``t_x``. In the purchase-model contract the
summary's ``T`` is ``n`` and ``recency`` is ``t_x``; the model's time unit is one opportunity.

* The fit: equation (5), with its analytic gradient, in :mod:`.bgbb_likelihood`.
* P(alive at n+1 | x, t_x, n), equation (11): ``B(α+x, β+n−x)/B(α,β) · B(γ, δ+n+1)/B(γ,δ) / L``,
  computed as P(alive at n) · (δ+n)/(γ+δ+n), P(alive at n) being the share of equation (5)'s
  first term in L (:func:`p_alive`). This is what FHS10, R BTYD (``bgbb.PAlive``) and CLVTools
  report; lifetimes' ``conditional_probability_alive(m, ...)`` is P(alive at n+m), so its ``m = 1``
  is equation (11) and its ``m = 0`` is P(alive at n).
* E[X(n, n+t) | x, t_x, n], equation (13), factorises as P(alive at n+1 | x, t_x, n) ×
  E[X(n, n+t) | alive at n+1, x, n]: given survival to ``n+1``, ``p ~ Beta(α+x, β+n−x)`` and
  ``θ ~ Beta(γ, δ+n+1)`` independently, whatever ``t_x`` was. The second factor is
  (:func:`expected_purchases_if_alive`)::

      (α+x)/(α+β+n) · E[(1 − (1−θ)^t)/θ] = (α+x)/(α+β+n) · c/(γ−1) · [1 − R],
      R = Γ(b+t) Γ(c) / (Γ(b) Γ(c+t)),  b = δ+n+1,  c = γ+δ+n

  (the ``p`` of the next ``t`` opportunities times the expected number of them she is alive
  for). Equation (13) times 1/P(alive at n+1) is exactly this; the tests check the identity.
* E[X(n)] for a new customer, equation (7): ``α/(α+β) · δ/(γ−1) · [1 − Γ(γ+δ)Γ(1+δ+n) /
  (Γ(γ+δ+n)Γ(1+δ))]``, which is P(alive at 1) = δ/(γ+δ) times the function above at ``x = n = 0``.
* DERT, equation (14): ``Σ_{s≥1} E[transaction at n+s] / (1+d)^s``, which with the same
  factorisation is P(alive at n+1) · (α+x)/(α+β+n) · E[1/(θ+d)], θ ~ Beta(γ, δ+n+1), and
  ``E[1/(θ+d)] = ₂F₁(1, δ+n+1; γ+δ+n+1; 1/(1+d)) / (1+d)`` is the ₂F₁ of equation (14) with
  its prefactors (:func:`discounted_expected_residual_transactions`).

Numerical care:

* ``γ = 1`` is a removable singularity of equations (7) and (13) (``1 − R`` and ``γ − 1`` both
  vanish; the limit is ``b [ψ(b+t) − ψ(b)]``). ``1 − R`` is computed as ``−expm1(ln R)`` with
  ``ln R / (γ−1)`` from a Taylor series in ``γ − 1`` where ``|γ − 1|`` is small against the
  arguments, so the expectations are smooth through ``γ = 1`` instead of 0/0.
* scipy's ``hyp2f1`` is not used for equation (14): at these arguments (``a = 1``, ``z = 1/(1+d)``
  near 1, ``c − a − b = γ − 1``) scipy 1.17 returned NaN from ``b = δ+n+1 ≈ 1000`` on (every γ
  tried at d = 0.001; γ = 1 and γ = 10 already at d = 0.1), a value 37 % off at ``γ = 1``
  (b = 3.78, d = 0.001) and one 3e-7 off at b = 100, γ = 10, d = 0.1, against the series summed
  in long double. ``E[1/(θ+d)]`` is instead the integral over θ's Beta density, taken by the
  trapezoidal rule in ``s`` with ``θ = exp(−e^s)`` (:func:`_mean_inverse`): the integrand then
  decays exponentially at both ends and is analytic in a strip, so the rule converges
  geometrically. Over b from 1 to 1e6, γ from 0.01 to 1000 and d from 1e-4 to 1e6 it agreed
  with the long-double series to 7e-13 relative, and for d down to 1e-12 with scipy's adaptive
  ``quad`` to 1e-10 (that reference's own error at b = 1e5). The tests compare it with the
  series, with scipy's ``hyp2f1`` where that is right (the donations fit) and with a truncated
  sum of discounted expectations.

lifetimes' ``BetaGeoBetaBinomFitter`` is the test oracle for the fit and the forecasts. It is
right on them up to the ``1e-15`` it adds inside its likelihood (which shows where L is small),
but returns inf/NaN at ``γ = 1`` and fails on scalar inputs; its
``expected_number_of_transactions_in_first_n_periods`` is, despite its name, the distribution
P(X(n) = x) × customers (equation (8)) for the frequencies present in its data, so its mean is
E[X(n)] only when those are all of 0 … n.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import exprel, gammaln, polygamma

from clvmodel.errors import ClvError
from clvmodel.models import bgbb_likelihood
from clvmodel.models.base import check_fitted, collapse
from clvmodel.models.mle import FitResult
from clvmodel.models.purchase import PurchaseModel

__all__ = [
    "BetaGeoBetaBinomModel",
    "p_alive",
    "expected_purchases_if_alive",
    "expected_purchases_new",
    "discounted_expected_residual_transactions",
]

#: A horizon this close below a whole number counts as that number (see :func:`_opportunities`).
HORIZON_SLACK = 1e-9

#: Terms of the Taylor series of lnΓ(y+ε) − lnΓ(y) in ε, used where |ε| ≤ :data:`_TAYLOR_RATIO` · y:
#: the k-th term is about (ε/y)^(k−1)/k² of the first, so 16 terms leave < 1e-16.
_TAYLOR_TERMS = 16
_TAYLOR_RATIO = 0.1


def _unpack(params: dict[str, float]) -> tuple[float, float, float, float]:
    return float(params["alpha"]), float(params["beta"]), float(params["gamma"]), float(params["delta"])


def _histories(frequency: Any, recency: Any, n: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x, t_x, n`` broadcast to one shape (at least 1-d), checked as whole opportunities."""
    x, tx, n_ = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=float)) for v in (frequency, recency, n)))
    bgbb_likelihood.check_rows(x, tx, n_, np.ones(x.shape))
    return x, tx, n_


def _opportunities(t: Any) -> np.ndarray:
    """Whole opportunities in a horizon ``t``: ``⌊t⌋``.

    ``X(n, n+t)`` counts transactions at the opportunities in ``(n, n+t]``, which are
    ``n+1, …, n+⌊t⌋``: a horizon of 2.5 opportunities holds two. A horizon within
    :data:`HORIZON_SLACK` below a whole number counts as that number, so that one converted from
    another unit (e.g. ``0.29 * 100 = 28.999…``) does not lose an opportunity to rounding.
    """
    t = np.asarray(t, dtype=float)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(t) | (t < 0)
    if np.any(bad):
        raise ClvError(f"bgbb: {int(np.sum(bad)):,} horizon(s) are negative, missing or infinite; "
                       "give a number of transaction opportunities ≥ 0")
    return np.floor(t + HORIZON_SLACK)


def _lgamma_step(eps: float, y: np.ndarray) -> np.ndarray:
    """(lnΓ(y + ε) − lnΓ(y)) / ε, and ψ(y) at ε = 0, without cancellation for small ε.

    Taylor series Σ_k ε^(k−1) ψ^(k−1)(y) / k! where ``|ε| ≤ 0.1 y`` (it converges for |ε| < y);
    the difference of lnΓ elsewhere, where ``|ε| > 0.1 y`` keeps the division harmless.
    """
    y = np.asarray(y, dtype=float)
    near = np.abs(eps) <= _TAYLOR_RATIO * y
    series = np.zeros(y.shape)
    if np.any(near):
        yn = np.where(near, y, 1.0)
        for k in range(_TAYLOR_TERMS, 0, -1):  # Horner in ε
            series = series * eps + polygamma(k - 1, yn) / math.factorial(k)
    if np.all(near):
        return series
    with np.errstate(invalid="ignore", divide="ignore"):
        direct = (gammaln(y + eps) - gammaln(y)) / eps
    return np.where(near, series, direct)


def _alive_for(gamma: float, delta: float, n: np.ndarray, t: np.ndarray) -> np.ndarray:
    """E[(1 − (1−θ)^t)/θ] for θ ~ Beta(γ, δ+n+1): opportunities among the next ``t`` she is alive for.

    ``c/(γ−1) · (1 − R)`` with ``ln R = (γ−1) q``, ``q = S(b) − S(b+t)``, ``S`` = :func:`_lgamma_step`,
    ``b = δ+n+1``, ``c = γ+δ+n``; so the value is ``−c q exprel((γ−1) q)``, finite at ``γ = 1``.
    """
    eps = gamma - 1.0
    b = delta + n + 1.0
    q = _lgamma_step(eps, b) - _lgamma_step(eps, b + t)
    return -(b + eps) * q * exprel(eps * q)


def p_alive(params: dict[str, float], frequency: Any, recency: Any, n: Any, *, ahead: int = 1) -> np.ndarray:
    """P(alive at n + ahead | x, t_x, n); ``ahead = 1`` is equation (11) of FHS10.

    P(alive at n) is the share of equation (5)'s first term in the likelihood
    (:meth:`.bgbb_likelihood.BetaGeoBetaBinomLikelihood.alive_now`); surviving ``ahead`` more
    opportunities multiplies it by ``E[(1−θ)^ahead | alive at n] = B(γ, δ+n+ahead)/B(γ, δ+n)``,
    for ``ahead = 1`` ``(δ+n)/(γ+δ+n)``. lifetimes' ``conditional_probability_alive(ahead, ...)``
    is the same quantity.

    Parameters
    ----------
    params
        ``alpha, beta, gamma, delta``.
    frequency, recency, n
        ``x, t_x, n``, broadcast together; whole numbers with ``x ≤ t_x ≤ n`` (else ``ClvError``).
    ahead
        Opportunities after ``n`` (whole, ≥ 0).

    Returns
    -------
    numpy.ndarray
        The broadcast shape of the inputs (at least 1-d).
    """
    alpha, beta, gamma, delta = _unpack(params)
    if int(ahead) != ahead or ahead < 0:
        raise ClvError(f"bgbb: ahead must be a whole number of opportunities ≥ 0, not {ahead!r}")
    x, tx, n_ = _histories(frequency, recency, n)
    # Equation (5)'s terms for each distinct history once (there are few in discrete time).
    rows, _, inverse = collapse(pd.DataFrame({"x": x.ravel(), "tx": tx.ravel(), "n": n_.ravel()}), ["x", "tx", "n"])
    un = rows["n"].to_numpy()
    likelihood = bgbb_likelihood.BetaGeoBetaBinomLikelihood(rows["x"], rows["tx"], un, np.ones(len(rows)))
    now = likelihood.alive_now(np.array([alpha, beta, gamma, delta]))
    # B(γ, δ+n+k)/B(γ, δ+n) = Γ(δ+n+k)Γ(γ+δ+n) / (Γ(δ+n)Γ(γ+δ+n+k)); exactly (δ+n)/(γ+δ+n) for k = 1.
    if ahead == 1:
        survive = (delta + un) / (gamma + delta + un)
    else:
        survive = np.exp(gammaln(delta + un + ahead) - gammaln(delta + un)
                         - gammaln(gamma + delta + un + ahead) + gammaln(gamma + delta + un))
    return (now * survive)[inverse].reshape(x.shape)


def expected_purchases_if_alive(params: dict[str, float], frequency: Any, n: Any, t: Any) -> np.ndarray:
    """E[X(n, n+t) | alive at n+1, x, n]: expected transactions at opportunities ``n+1 … n+⌊t⌋``.

    ``(α+x)/(α+β+n) · E[(1 − (1−θ)^t)/θ]``, θ ~ Beta(γ, δ+n+1) (module docstring), so that
    :func:`p_alive` (equation (11)) times this is equation (13). Conditioning on survival to
    ``n+1`` rather than to ``n`` is what makes the product equation (13) with equation (11):
    E[· | alive at n] is this times (δ+n)/(γ+δ+n).

    Parameters
    ----------
    params
        ``alpha, beta, gamma, delta``.
    frequency, n
        ``x`` and ``n``, e.g. of shape ``(k,)``; whole numbers, ``x ≤ n``.
    t
        Horizon(s) in opportunities: a scalar, or e.g. shape ``(H, 1)`` for an ``(H, k)`` matrix of
        cumulative expectations. A fractional horizon counts its whole opportunities (⌊t⌋,
        :func:`_opportunities`).

    Returns
    -------
    numpy.ndarray
        The broadcast shape of ``frequency``, ``n`` and ``t`` (0-d for scalars).
    """
    alpha, beta, gamma, delta = _unpack(params)
    x, n_ = np.broadcast_arrays(np.asarray(frequency, dtype=float), np.asarray(n, dtype=float))
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(x) & np.isfinite(n_)) | (x < 0) | (x > n_) | (x != np.round(x)) | (n_ != np.round(n_))
    if np.any(bad):
        raise ClvError(f"bgbb: {int(np.sum(bad)):,} of {bad.size:,} (frequency, T) pairs are not whole numbers "
                       "0 ≤ frequency ≤ T; check the RFM summary")
    x, n_, t_ = np.broadcast_arrays(x, n_, _opportunities(t))
    return np.asarray((alpha + x) / (alpha + beta + n_) * _alive_for(gamma, delta, n_, t_) + 0.0)


def expected_purchases_new(params: dict[str, float], t: Any) -> np.ndarray:
    """E[X(t)]: expected transactions at the first ``⌊t⌋`` opportunities of a new customer, equation (7).

    ``α/(α+β) · δ/(γ−1) · [1 − Γ(γ+δ)Γ(1+δ+t) / (Γ(γ+δ+t)Γ(1+δ))]``, evaluated as P(alive at 1) =
    δ/(γ+δ) times :func:`expected_purchases_if_alive` at ``x = n = 0`` (same terms, finite at γ = 1).

    Parameters
    ----------
    params
        ``alpha, beta, gamma, delta``.
    t
        Opportunities since acquisition, any shape; fractional ones count whole (⌊t⌋).

    Returns
    -------
    numpy.ndarray
        The shape of ``t`` (0-d for a scalar).
    """
    alpha, beta, gamma, delta = _unpack(params)
    t_ = _opportunities(t)
    alive_at_1 = delta / (gamma + delta)
    return np.asarray(alive_at_1 * alpha / (alpha + beta) * _alive_for(gamma, delta, np.zeros(t_.shape), t_) + 0.0)


def _mean_inverse(gamma: float, b: float, d: float) -> float:
    """E[1/(θ + d)] for θ ~ Beta(γ, b), b > 1, d > 0; = ₂F₁(1, b; b+γ; 1/(1+d)) / (1+d).

    With θ = exp(−u), u = e^s: ``∫ θ^(γ−1) (1−θ)^(b−1) g(θ) dθ = ∫ e^φ(s) g ds``,
    ``φ = s − γu + (b−1) ln(1 − e^(−u))``. Both integrands (g = 1/(θ+d) and g = 1, the latter the
    Beta function, so that its rounding cancels in the ratio) decay like ``e^(bs)`` as s → −∞ and
    like ``exp(−γ e^s)`` as s → ∞, and are analytic in a strip around the real line, where the
    trapezoidal rule converges geometrically in 1/h. The step resolves the narrowest feature: the
    Beta density's peak (width σ_u = √((b−1)/(γ(γ+b−1))) in u around its mode
    u* = ln(1 + (b−1)/γ), so ~σ_u/u* in s) and the turn of 1/(θ+d) at u ≈ ln(1/d) (its poles at
    u = ln(1/d) ± iπ lie ~π/ln(1/d) off the axis in s). The window reaches where both integrands
    are below e^-36 of their peaks (checked).
    """
    u_mode = math.log1p((b - 1.0) / gamma)
    sigma_u = math.sqrt((b - 1.0) / (gamma * (gamma + b - 1.0)))
    log_d = math.log(d)
    h = min(0.02, sigma_u / max(u_mode, sigma_u) / 1.5, 0.4 / max(1.0, -log_d))
    s_lo = min(math.log(u_mode), 0.0) - 60.0 / b - 10.0
    s_hi = math.log(max(u_mode, math.log1p(1.0 / d)) + 20.0 * sigma_u + 100.0 / gamma)
    s = np.arange(s_lo, s_hi + h, h)
    u = np.exp(s)
    log_beta = s - gamma * u + (b - 1.0) * np.log(-np.expm1(-u))
    log_both = log_beta - np.logaddexp(-u, log_d)
    top_beta, top_both = log_beta.max(), log_both.max()
    if max(log_beta[0] - top_beta, log_beta[-1] - top_beta, log_both[0] - top_both, log_both[-1] - top_both) >= -36.0:
        # The window above is meant to hold every case; reaching here is a bug in it, not in the data.
        raise RuntimeError(f"bgbb: DERT integral window too narrow at gamma={gamma!r}, b={b!r}, d={d!r}")
    return float(np.exp(top_both - top_beta) * np.exp(log_both - top_both).sum() / np.exp(log_beta - top_beta).sum())


def discounted_expected_residual_transactions(
    params: dict[str, float], frequency: Any, recency: Any, n: Any, discount_rate: float
) -> np.ndarray:
    """DERT, equation (14) of FHS10: Σ_{s≥1} E[transaction at n+s | x, t_x, n] / (1+d)^s.

    ``P(alive at n+1 | x, t_x, n) · (α+x)/(α+β+n) · E[1/(θ+d)]``, θ ~ Beta(γ, δ+n+1): the
    equation's ``B(α+x+1, β+n−x)/B(α,β) · B(γ, δ+n+1)/(B(γ,δ)(1+d)) · ₂F₁(1, δ+n+1; γ+δ+n+1;
    1/(1+d)) / L`` regrouped, with ``E[1/(θ+d)] = ₂F₁(…)/(1+d)`` integrated numerically
    (:func:`_mean_inverse`; scipy's ``hyp2f1`` is unreliable here, module docstring). Finite for
    every ``d > 0`` (at most ``(α+x)/(α+β+n) / d``); as ``d → 0`` it tends to the expected number of
    all future transactions, infinite when ``γ ≤ 1`` (E[1/θ] diverges).

    Parameters
    ----------
    params
        ``alpha, beta, gamma, delta``.
    frequency, recency, n
        ``x, t_x, n``, broadcast together.
    discount_rate
        ``d`` per opportunity (e.g. 0.1 for 10 % a year with annual opportunities), finite and > 0.

    Returns
    -------
    numpy.ndarray
        The broadcast shape of the inputs (at least 1-d): transactions, in units of one
        transaction at the next opportunity's value.
    """
    alpha, beta, gamma, delta = _unpack(params)
    d = float(discount_rate)
    if not (math.isfinite(d) and d > 0):
        raise ClvError(f"bgbb: the discount rate per opportunity must be finite and > 0, not {discount_rate!r}")
    alive = p_alive(params, frequency, recency, n)
    x, _, n_ = _histories(frequency, recency, n)
    values, index = np.unique(n_, return_inverse=True)
    inverse = np.array([_mean_inverse(gamma, delta + v + 1.0, d) for v in values])
    return alive * (alpha + x) / (alpha + beta + n_) * inverse[index.reshape(n_.shape)]


class BetaGeoBetaBinomModel(PurchaseModel):
    """BG/BB with parameters ``alpha, beta`` (purchase probability) and ``gamma, delta`` (dropout).

    The purchase-model contract with ``T = n`` transaction opportunities and ``recency = t_x``; the
    time unit, and every horizon, is one opportunity (a fractional horizon counts whole ones).
    """

    name = "bgbb"
    role = "purchase"
    param_names = bgbb_likelihood.PARAMS
    columns = ("frequency", "recency", "T")
    discrete = True

    def _fit_rows(self, columns: dict[str, np.ndarray], weights: np.ndarray, **options: Any) -> FitResult:
        """Equation (5) with its analytic gradient, best of several starts (:func:`.bgbb_likelihood.fit`)."""
        return bgbb_likelihood.fit(columns, weights, **options)

    def p_alive(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(alive at n+1 | x, t_x, n), equation (11) (:func:`p_alive`)."""
        check_fitted(self)
        return p_alive(self.params_ or {}, frequency, recency, T)

    def expected_purchases_if_alive(self, frequency: np.ndarray, T: np.ndarray, *, t: float | np.ndarray) -> np.ndarray:
        """E[X(n, n+t) | alive at n+1, x, n]; times :meth:`p_alive` it is equation (13)
        (:func:`expected_purchases_if_alive`)."""
        check_fitted(self)
        return expected_purchases_if_alive(self.params_ or {}, frequency, T, t)

    def expected_purchases_new(self, t: float | np.ndarray) -> np.ndarray:
        """E[X(t)] for a customer just acquired, equation (7) (:func:`expected_purchases_new`)."""
        check_fitted(self)
        return expected_purchases_new(self.params_ or {}, t)

    def discounted_expected_residual_transactions(
        self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, *, discount_rate: float
    ) -> np.ndarray:
        """DERT, equation (14), at ``discount_rate`` per opportunity
        (:func:`discounted_expected_residual_transactions`)."""
        check_fitted(self)
        return discounted_expected_residual_transactions(self.params_ or {}, frequency, recency, T, discount_rate)
