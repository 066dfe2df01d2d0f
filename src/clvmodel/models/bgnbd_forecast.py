"""BG/NBD forecasts in numpy and :mod:`scipy.special`, without lifetimes.

With ``r, α`` the Gamma purchase-rate heterogeneity and ``a, b`` the Beta dropout heterogeneity
(Fader, Hardie & Lee 2005, "Counting your customers the easy way", FHL05), and a customer's
history ``(x, t_x, T)``:

* P(alive | x, t_x, T) = 1 / (1 + δ(x>0) · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x))
  (Fader, Hardie & Lee 2008, note 021; the denominator of FHL05 equation (10));
* E[Y(t) | alive at T, x, T] = (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x)
  · ₂F₁(r+x, b+x; a+b+x−1; t/(α+T+t))] (the numerator of FHL05 equation (10)), so that
  E[Y(t) | x, t_x, T] = P(alive | x, t_x, T) · E[Y(t) | alive at T, x, T];
* E[X(t)] = (a+b−1)/(a−1) · [1 − (α/(α+t))^r · ₂F₁(r, b; a+b−1; t/(α+t))] (FHL05 equation (9)),
  the same expression at ``x = 0, T = 0``.

With ``z = t/(α+T+t)`` the bracket is ``1 − (1−z)^(r+x) ₂F₁(r+x, b+x; c; z)``, ``c = a+b+x−1``.
Euler's transformation ``₂F₁(A, B; C; z) = (1−z)^(C−A−B) ₂F₁(C−A, C−B; C; z)`` writes its second
term equally as ``(1−z)^(a−1) ₂F₁(a+b−1−r, a−1; c; z)``. The two ₂F₁ have opposite
``C − A − B`` (``a−1−r−x`` for the direct one, ``r+x+1−a`` for Euler's): the one where it is
positive (either, where it is 0) stays bounded as ``z → 1``; the other grows like
``(1−z)^(−|a−1−r−x|)`` and has to be cancelled by the power in front. The bounded one is
evaluated (in log space, its sign kept apart: ₂F₁ is negative where ``c < 0``):

* the unbounded ₂F₁ overflows for frequent buyers over long horizons (direct form, x = 500 at
  z ≈ 0.9), and where it does not, scipy's relative error at large values (~1e-13) is amplified
  by the ``1 − …`` cancellation: against the series summed in 40-digit decimals, E[Y(t) | alive]
  for x = 26…2000 was off by up to 2e-10 through the direct form and by 2e-13 through Euler's;
* so: Euler's form when ``x ≥ a−1−r`` (every customer when ``a < 1 + r``, as on CDNOW), the direct
  form otherwise (e.g. E[X(t)] far out with ``a > 1 + r``).

lifetimes' ``BetaGeoFitter`` (``conditional_probability_alive``,
``conditional_expected_number_of_purchases_up_to_time``, ``expected_number_of_purchases_up_to_time``)
is the test oracle: these functions agree with it to 1e-11 relative, and to 2.5e-10 for frequent
buyers with ``z`` near 1, where lifetimes' ``ln(1 − z)`` loses digits and these stay within 1e-13 of
the exact series (``tests/models/test_bgnbd_forecast.py``). For ``z`` extremely close to 1 (in
our runs frequent buyers, x = 2000, at ``t/(α+T)`` ≳ 1e14) scipy's ₂F₁ returns NaN, and so do these
functions; lifetimes there returns NaN or inf.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit, hyp2f1

from clvmodel.models.alive import distinct_pairs, equal_runs

__all__ = ["p_alive", "expected_purchases_if_alive", "expected_purchases_new"]


def _unpack(params: dict[str, float]) -> tuple[float, float, float, float]:
    return float(params["r"]), float(params["alpha"]), float(params["a"]), float(params["b"])


def _as_float(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=float)


def p_alive(params: dict[str, float], frequency: Any, recency: Any, T: Any) -> np.ndarray:
    """P(alive | x, t_x, T), Fader, Hardie & Lee (2008), note 021.

    ``1 / (1 + δ(x>0) · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x))``, evaluated as
    ``expit(−[ln a − ln(b+x−1) + (r+x) ln((α+T)/(α+t_x))])`` so that large ``x`` neither
    overflows nor loses the small probabilities; exactly 1 where ``x = 0`` (no repeat purchase,
    no chance to have dropped out).

    Parameters
    ----------
    params
        ``r, alpha, a, b`` (``alpha`` in the time unit of ``recency`` and ``T``).
    frequency, recency, T
        ``x`` (repeat purchases), ``t_x`` (age at the last one), ``T`` (age); broadcast together.

    Returns
    -------
    numpy.ndarray
        At least one-dimensional, the broadcast shape of the inputs.
    """
    r, alpha, a, b = _unpack(params)
    x, tx, T_ = (_as_float(v) for v in (frequency, recency, T))
    with np.errstate(invalid="ignore", divide="ignore"):
        # ln((α+T)/(α+t_x)) = log1p((T − t_x)/(α + t_x)): exact to rounding when t_x is close to T.
        log_odds_dead = (
            np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) + (r + x) * np.log1p((T_ - tx) / (alpha + tx))
        )
        alive = np.where(x > 0, expit(-log_odds_dead), 1.0)
    return np.atleast_1d(alive)


def _expected_given_alive(r: float, alpha: float, a: float, b: float, x: Any, T: Any, t: Any) -> np.ndarray:
    """(a+b+x−1)/(a−1) · [1 − (1−z)^(r+x) ₂F₁(r+x, b+x; a+b+x−1; z)], z = t/(α+T+t).

    The bracket's second term in log space, ``k ln(1−z) + ln ₂F₁(A, B; c; z)`` with the bounded
    ₂F₁ of the module docstring: ``(k, A, B) = (a−1, a+b−1−r, a−1)`` (Euler's transformation)
    where ``x ≥ a−1−r``, ``(r+x, r+x, b+x)`` (direct) elsewhere.
    """
    x, T_, t_ = np.broadcast_arrays(_as_float(x), _as_float(T), _as_float(t))
    c = a + b + x - 1.0
    z = t_ / (alpha + T_ + t_)
    log_1mz = -np.log1p(t_ / (alpha + T_))  # ln(1 − z) = ln((α+T)/(α+T+t)), accurate for small t

    with np.errstate(all="ignore"):
        euler = np.asarray(x >= a - 1.0 - r)
        power = np.where(euler, a - 1.0, r + x)
        hyp = np.asarray(hyp2f1(np.where(euler, a + b - 1.0 - r, r + x), np.where(euler, a - 1.0, b + x), c, z))
        # ₂F₁ is negative where c < 0 (x = 0 with a + b < 1, which the fit allows): its sign stays
        # outside the logarithm, 1 − (−e^u) = 1 + e^u.
        log_term = power * log_1mz + np.log(np.abs(hyp))
        # 1 − exp(u) = −expm1(u): no cancellation beyond that of the closed form itself.
        bracket = np.where(hyp < 0, 1.0 + np.exp(log_term), -np.expm1(log_term))
        bracket = np.where(np.isfinite(hyp), bracket, np.nan)
        # + 0.0: no −0.0 at t = 0; asarray: an ndarray (0-d for scalars), as documented.
        return np.asarray((a + b + x - 1.0) / (a - 1.0) * bracket + 0.0)


def expected_purchases_if_alive(params: dict[str, float], frequency: Any, T: Any, t: Any) -> np.ndarray:
    """E[Y(t) | alive at T, x, T]: expected repeat purchases in ``(T, T + t]`` of a customer alive at T.

    The numerator of Fader, Hardie & Lee (2005) equation (10)::

        (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) · ₂F₁(r+x, b+x; a+b+x−1; t/(α+T+t))]

    (equation (10) itself is this times P(alive | x, t_x, T), :func:`p_alive`), evaluated with
    whichever of ₂F₁ and its Euler transformation stays bounded (module docstring), so it stays
    finite where the direct ₂F₁ overflows (frequent buyers, long horizons).

    Parameters
    ----------
    params
        ``r, alpha, a, b``.
    frequency, T
        ``x`` and the age ``T``, e.g. of shape ``(n,)``.
    t
        Horizon(s): a scalar, or e.g. shape ``(H, 1)`` for an ``(H, n)`` matrix of cumulative
        expectations.

    Returns
    -------
    numpy.ndarray
        The broadcast shape of ``frequency``, ``T`` and ``t``.
    """
    r, alpha, a, b = _unpack(params)
    return _expected_given_alive(r, alpha, a, b, frequency, T, t)


def expected_purchases_new(params: dict[str, float], t: Any) -> np.ndarray:
    """E[X(t)]: expected repeat purchases in ``(0, t]`` of a customer just acquired.

    Fader, Hardie & Lee (2005) equation (9)::

        (a+b−1)/(a−1) · [1 − (α/(α+t))^r · ₂F₁(r, b; a+b−1; t/(α+t))]

    which is :func:`expected_purchases_if_alive` at ``x = 0, T = 0`` (same evaluation).

    Parameters
    ----------
    params
        ``r, alpha, a, b`` (``alpha`` in the time unit of ``t``).
    t
        Time(s) since acquisition: a scalar or an array of any shape.

    Returns
    -------
    numpy.ndarray
        The shape of ``t`` (0-d for a scalar).
    """
    r, alpha, a, b = _unpack(params)
    return _expected_given_alive(r, alpha, a, b, 0.0, 0.0, t)



class DrawForecast:
    """E[Y(t) | x, t_x, T] of a block of rows under many parameter draws at once.

    Built on a block of rows (its costly pieces once per distinct value they depend on: the ₂F₁ term
    per ``(x, T)`` pair, ``ln a − ln(b+x−1)`` per ``x``); :meth:`fill` then writes any run of the
    block's rows, ``(rows, draws)``, into a buffer the caller reuses, so that the elementwise work
    runs on cache-sized tiles without fresh allocations. The arithmetic is :func:`p_alive` times
    :func:`expected_purchases_if_alive`, clipped at 0 (as :func:`clvmodel.models.alive.alive_product`),
    element for element, except that ``expit(−u)`` is taken as ``1/(1 + eᵘ)`` (numpy's ``exp``: the
    same value to a few ulp); so every value equals the one-draw-at-a-time forecast to rounding.

    Parameters
    ----------
    draws
        ``r, alpha, a, b``, each an array of shape ``(draws,)``.
    frequency, recency, T
        The block's ``x``, ``t_x``, ``T``, shape ``(rows,)``; rows sorted by ``x`` then ``T`` (as
        :mod:`clvmodel.uncertainty` passes them) keep the pairs of a block few.
    t
        The horizon.
    """

    def __init__(self, draws: dict[str, np.ndarray], frequency: Any, recency: Any, T: Any, t: float) -> None:
        self.r, self.alpha, a, b = (np.asarray(draws[k], dtype=float)[None, :] for k in ("r", "alpha", "a", "b"))
        self.x, self.tx, self.T = (np.ascontiguousarray(_as_float(v)) for v in (frequency, recency, T))
        counts, self.count_of_row = np.unique(self.x, return_inverse=True)
        self.count_of_row = self.count_of_row.reshape(-1)
        pair_x, pair_T, self.pair_of_row = distinct_pairs(self.x, self.T)
        with np.errstate(invalid="ignore", divide="ignore"):
            # p_alive's ln a − ln(b + max(x, 1) − 1) and r + x, per distinct x.
            self.by_count = np.log(a) - np.log(b + np.maximum(counts, 1.0)[:, None] - 1.0)
            self.r_plus_x = self.r + counts[:, None]
            self.given_alive = _expected_given_alive(self.r, self.alpha, a, b, pair_x[:, None], pair_T[:, None], float(t))

    def fill(self, start: int, stop: int, out: np.ndarray, work: np.ndarray) -> np.ndarray:
        """E[Y(t)] of rows ``start:stop`` for every draw, into ``out[:stop − start]`` (``work``: scratch of that shape)."""
        n = stop - start
        out, work = out[:n], work[:n]
        x, tx, T_ = self.x[start:stop], self.tx[start:stop], self.T[start:stop]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            # log_odds_dead = (ln a − ln(b+x−1)) + (r+x) · log1p((T − t_x)/(α + t_x))
            np.add(self.alpha, tx[:, None], out=out)
            np.divide((T_ - tx)[:, None], out, out=out)
            np.log1p(out, out=out)
            # Rows come sorted by x: the terms in x alone are broadcast over each run of one x.
            for run, code in equal_runs(self.count_of_row[start:stop]):
                out[run] *= self.r_plus_x[code]
                out[run] += self.by_count[code]
            # P(alive) = expit(−log_odds_dead) = 1 / (1 + exp(log_odds_dead)); 1 where x = 0
            np.exp(out, out=out)
            out += 1.0
            np.divide(1.0, out, out=out)
            once = ~(x > 0)
            if once.any():
                out[once] = 1.0
        for run, pair in equal_runs(self.pair_of_row[start:stop]):
            out[run] *= self.given_alive[pair]
        return np.maximum(out, 0.0, out=out)

