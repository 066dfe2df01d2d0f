"""Pareto/NBD forecasts under many parameter draws at once, in numpy and :mod:`scipy.special`.

For the bootstrap intervals (:mod:`clvmodel.uncertainty`): ``E[Y(t) | x, t_x, T]`` for every
``(row, draw)`` as ``P(alive | x, t_x, T) × E[Y(t) | alive at T, x, T]``. P(alive) is taken in the
arithmetic of lifetimes' ``ParetoNBDFitter.conditional_probability_alive`` (equations (36)–(37) of
Fader & Hardie's note 009), operation for operation, with the adapter's repair (1 where ``t_x = T``
and that form gives NaN) and, where it is NaN otherwise (``s`` of a few hundred), the model's own
per-draw form (:func:`.pareto_nbd_likelihood.p_alive`); E[Y(t) | alive] is the model's
(:func:`.pareto_nbd_likelihood.expected_purchases_if_alive`). The values equal the
one-draw-at-a-time path to rounding (below 1e-12 relative on CDNOW and simulated customers; the
tests check it).

What makes it fast is where each piece is evaluated. With ``k = r + s + x``, ``M = max(α, β)``
and lifetimes' ``log A₀ = ln(p₁ q₂^k − p₂ q₁^k) − k ln(q₁ q₂)``, ``q₁ = M + t_x``, ``q₂ = M + T``,
the ₂F₁ ``p₁`` depends on ``(x, t_x)`` only and ``p₂`` on ``(x, T)`` only, so the Gauss
hypergeometric functions (the costly part) are evaluated once per distinct ``(x, t_x)`` and
``(x, T)`` and draw, not once per customer row; E[Y(t) | alive at T, x, T] has no ₂F₁ at all
(``(r+x)(β+T)/((α+T)(s−1)) · [1 − ((β+T)/(β+T+t))^(s−1)]``, in the bounded form of
:func:`.pareto_nbd_likelihood.expected_purchases_if_alive`, which the model uses).

Draws with ``s ≥`` :data:`.lifetimes_adapter.PARETO_LIMIT_FORMS_FROM` (a model fitted on the ridge)
use the adapter's limit forms (one dropout rate μ = s/β), evaluated for all of them at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit, hyp2f1

from clvmodel.models import lifetimes_adapter
from clvmodel.models.alive import distinct_pairs, equal_runs

__all__ = ["DrawForecast"]


class DrawForecast:
    """E[Y(t) | x, t_x, T] of Pareto/NBD for a block of rows under many draws (as
    :class:`clvmodel.models.bgnbd_forecast.DrawForecast`: built per block, :meth:`fill` per tile).

    Built: ``p₂`` and E[Y(t) | alive] per ``(x, T)`` pair, ``p₁`` per ``(x, t_x)``, the terms in
    ``x`` alone per distinct ``x``; the draws on the ridge (``s ≥``
    :data:`.lifetimes_adapter.PARETO_LIMIT_FORMS_FROM`) take the adapter's limit forms, per tile.

    Parameters
    ----------
    draws
        ``r, alpha, s, beta``, each of shape ``(draws,)``.
    frequency, recency, T
        The block's ``x``, ``t_x``, ``T``, shape ``(rows,)``, best sorted by ``x``.
    t
        The horizon.
    """

    #: lifetimes' P(alive) form loses digits as ``s`` grows (from ~1e-12 relative at s = 400 against
    #: the model's form); draws with ``s`` between this and the ridge's limit forms are not taken here.
    MAX_S = 10.0

    @classmethod
    def accepts(cls, draws: dict[str, np.ndarray]) -> bool:
        """Whether every draw is one this forecast equals the model on: ``s ≤`` :data:`MAX_S`, or on the
        ridge's limit forms; otherwise :mod:`clvmodel.uncertainty` goes draw by draw."""
        s = np.asarray(draws["s"], dtype=float)
        return bool(np.all((s <= cls.MAX_S) | (s >= lifetimes_adapter.PARETO_LIMIT_FORMS_FROM)))

    def __init__(self, draws: dict[str, np.ndarray], frequency: Any, recency: Any, T: Any, t: float) -> None:
        r, alpha, s, beta = (np.asarray(draws[k], dtype=float) for k in ("r", "alpha", "s", "beta"))
        self.x, self.tx, self.T = (np.ascontiguousarray(np.asarray(v, dtype=float)) for v in (frequency, recency, T))
        limit = s >= lifetimes_adapter.PARETO_LIMIT_FORMS_FROM
        self.limit_draws = np.flatnonzero(limit)
        # The ridge's limit forms (lifetimes_adapter), per tile: one dropout rate μ = s/β.
        self.limit = tuple(v[limit][None, :] for v in (r, alpha, s, beta))
        self.t = float(t)
        self.kept = np.flatnonzero(~limit)
        self.all_kept = len(self.kept) == len(r)
        r, alpha, s, beta = (v[self.kept][None, :] for v in (r, alpha, s, beta))
        self.kept_params = (r[0], alpha[0], s[0], beta[0])
        counts, self.count_of_row = np.unique(self.x, return_inverse=True)
        self.count_of_row = self.count_of_row.reshape(-1)
        # p₁ and q₁ depend on (x, t_x), p₂ and q₂ on (x, T), through the same function of (x, u):
        # one table over the distinct (x, u), u in t_x ∪ T (the two sets overlap on a daily grid).
        n = len(self.x)
        u_x, u, u_of = distinct_pairs(np.concatenate([self.x, self.x]), np.concatenate([self.tx, self.T]))
        self.start_of_row = u_of[:n]  # (x, t_x)
        pair_x, pair_T, self.pair_of_row = distinct_pairs(self.x, self.T)  # E[Y | alive] and the rest: (x, T)
        u_of_pair = np.empty(len(pair_x), dtype=np.intp)
        u_of_pair[self.pair_of_row] = u_of[n:]
        with np.errstate(all="ignore"):
            # _log_A_0's choice, per draw: (min, max, second ₂F₁ parameter)
            a_lt_b = alpha < beta
            hi = np.where(a_lt_b, beta, alpha)
            abs_ab = hi - np.where(a_lt_b, alpha, beta)
            self.rsf = r + s + counts[:, None]  # (counts, draws)
            self.head = np.log(s) - np.log(self.rsf)  # ln s − ln(r + s + x)
            u_rsf = r + s + u_x[:, None]
            u_t = np.where(a_lt_b, r + u_x[:, None], s + 1.0)
            # p = ₂F₁(r+s+x, t; r+s+x+1; |α−β|/(M + u)), q = M + u: p₁, q₁ at u = t_x, p₂, q₂ at u = T.
            self.log_p1 = np.log(hyp2f1(u_rsf, u_t, u_rsf + 1.0, abs_ab / (hi + u[:, None])))
            self.q1 = hi + u[:, None]
            self.log_q1 = np.log(self.q1)
            # k ln q per (x, u), the same products as k times ln q row by row: k ln q₁ at u = t_x, k ln q₂ at u = T.
            self.k_log_q1 = self.rsf[np.searchsorted(counts, u_x)] * self.log_q1
            self.log_p2, self.q2, self.k_log_q2 = (v[u_of_pair] for v in (self.log_p1, self.q1, self.k_log_q1))
            # P(alive)'s exponent but for A₀, per pair: (ln s − ln(r+s+x) + (r + x) ln(α + T)) + s ln(β + T)
            self.head_of_pair = self.head[np.searchsorted(counts, pair_x)]
            self.head_of_pair += (r + pair_x[:, None]) * np.log(alpha + pair_T[:, None])
            self.head_of_pair += s * np.log(beta + pair_T[:, None])
            self.given_alive = _given_alive(r, alpha, s, beta, pair_x[:, None], pair_T[:, None], float(t))

    def fill(self, start: int, stop: int, out: np.ndarray, work: np.ndarray) -> np.ndarray:
        """E[Y(t)] of rows ``start:stop`` for every draw, into ``out[:stop − start]`` (``work``: scratch)."""
        n = stop - start
        out, work = out[:n], work[:n]
        if not self.all_kept:
            if len(self.kept):
                out[:, self.kept] = self._fill(start, stop)
            out[:, self.limit_draws] = self._fill_limit(start, stop)
            return out
        return self._fill(start, stop, out, work)

    def _fill_limit(self, start: int, stop: int) -> np.ndarray:
        """The draws on the ridge, as :func:`.lifetimes_adapter.probability_alive` and
        ``conditional_expected_purchases`` give them from ``s ≥`` PARETO_LIMIT_FORMS_FROM on:
        ``expit(−ln R)`` times E[Y(t) | alive] = (r+x)/(α+T) · (1 − e^(−μt))/μ (its P(alive) at
        ``t_x = T`` is exactly 1)."""
        r, alpha, s, beta = self.limit
        x, tx, T_ = (v[start:stop, None] for v in (self.x, self.tx, self.T))
        with np.errstate(all="ignore"):
            alive = expit(-lifetimes_adapter.pareto_limit_log_r(s / beta, alpha, r + x, tx, T_))
            given = _given_alive(r, alpha, s, beta, x, T_, self.t)
        return np.maximum(given * alive, 0.0)

    def _fill(self, start: int, stop: int, out: np.ndarray | None = None, work: np.ndarray | None = None) -> np.ndarray:
        count, first, pair = (v[start:stop] for v in (self.count_of_row, self.start_of_row, self.pair_of_row))
        n = stop - start
        out = np.empty((n, len(self.kept))) if out is None else out
        work = np.empty((n, len(self.kept))) if work is None else work
        # Gathers of per-pair tables by np.take into a buffer, mode="clip" (the indices are valid): numpy buffers
        # an `out` in the default mode="raise", three times slower. The terms in x alone (k) are broadcast over
        # each run of one x (rows come sorted by x); every value is the same product or sum as row by row.
        with np.errstate(all="ignore"):
            # lifetimes' log A₀: logsumexp([ln p₁ + k ln q₂, ln p₂ + k ln q₁], b=[1, −1]) − k ln(q₁ q₂), replayed:
            # log1p(−e^(a₂−a₁)) + 0 + a₁ where a₁ > a₂; NaN where a₁ < a₂ (a negative sum); −inf for
            # equal terms; where that is not finite, ln(e^(a₁) − e^(a₂)) as logsumexp falls back to.
            a1 = np.take(self.k_log_q2, pair, axis=0, mode="clip")
            a1 += np.take(self.log_p1, first, axis=0, out=work, mode="clip")
            a2 = np.take(self.k_log_q1, first, axis=0, mode="clip")
            a2 += np.take(self.log_p2, pair, axis=0, out=work, mode="clip")
            a0 = np.subtract(a2, a1, out=work)
            np.exp(a0, out=a0)
            np.negative(a0, out=a0)
            np.log1p(a0, out=a0)
            a0 += 0.0
            a0 += a1
            for mask, value in ((np.less(a1, a2), np.nan), (np.equal(a1, a2), -np.inf)):
                if mask.any():
                    a0[mask] = value
            bad = ~np.isfinite(a0)
            if bad.any():
                a0[bad] = np.log(np.exp(a1[bad]) - np.exp(a2[bad]))
            q12 = np.take(self.q1, first, axis=0, out=a2, mode="clip")
            q12 *= np.take(self.q2, pair, axis=0, out=a1, mode="clip")  # q₂ q₁ == q₁ q₂
            np.log(q12, out=q12)
            for run, code in equal_runs(count):
                q12[run] *= self.rsf[code]
            a0 -= q12
            # P(alive) = 1 / (1 + exp(ln s − ln(r+s+x) + (r+x) ln(α+T) + s ln(β+T) + A₀))
            exponent = np.take(self.head_of_pair, pair, axis=0, out=out, mode="clip")
            exponent += a0
            alive = np.exp(exponent, out=exponent)
            alive += 1.0
            np.divide(1.0, alive, out=alive)
        # lifetimes_adapter.probability_alive: 1 where lifetimes gives NaN at t_x = T
        at_end = self.tx[start:stop] >= self.T[start:stop]
        if at_end.any():
            rows = alive[at_end]
            rows[np.isnan(rows)] = 1.0
            alive[at_end] = rows
        # Where lifetimes' ₂F₁ form gives NaN (s of a few hundred), the per-draw form the model uses now
        # (pareto_nbd_likelihood.p_alive, bounded for every s), for those rows and draws.
        missing = np.isnan(alive)
        if missing.any():
            from clvmodel.models import pareto_nbd_likelihood  # noqa: PLC0415

            x, tx, T_ = (v[start:stop] for v in (self.x, self.tx, self.T))
            for d in np.flatnonzero(missing.any(axis=0)):
                rows = missing[:, d]
                params = dict(zip(("r", "alpha", "s", "beta"), (float(v[d]) for v in self.kept_params)))
                alive[rows, d] = pareto_nbd_likelihood.p_alive(params, x[rows], tx[rows], T_[rows])
        for run, code in equal_runs(pair):
            alive[run] *= self.given_alive[code]
        return np.maximum(alive, 0.0, out=alive)


def _given_alive(r: np.ndarray, alpha: np.ndarray, s: np.ndarray, beta: np.ndarray, x: np.ndarray, T: np.ndarray,
                 t: float) -> np.ndarray:
    """E[Y(t) | alive at T, x, T] as :func:`.pareto_nbd_likelihood.expected_purchases_if_alive` gives it
    per draw: ``(r + x)/(α + T) · E[(1 − e^(−μt))/μ]``, μ ~ Gamma(s, β + T), in the bounded form of
    ``_expected_life_share`` (``(β + T) ln(1 + t/(β + T))`` for a draw with ``|s − 1| < 1e-12``)."""
    base = beta + T
    log_ratio = np.log1p(np.asarray(t, dtype=float) / base)
    share = -base / (s - 1.0) * np.expm1(-(s - 1.0) * log_ratio)
    one = np.abs(s - 1.0) < 1e-12
    if np.any(one):
        share = np.where(one, base * log_ratio, share)
    return np.asarray((r + x) / (alpha + T) * share, dtype=float)
