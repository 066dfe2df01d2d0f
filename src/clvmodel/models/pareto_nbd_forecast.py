"""Pareto/NBD forecasts under many parameter draws at once, in numpy and :mod:`scipy.special`.

For the bootstrap intervals (:mod:`clvmodel.uncertainty`): ``E[Y(t) | x, t_x, T]`` for every
``(row, draw)`` as ``P(alive | x, t_x, T) × E[Y(t) | alive at T, x, T]``, the arithmetic of
lifetimes' ``ParetoNBDFitter`` (``conditional_probability_alive``, equations (36)–(37) of Fader &
Hardie's note 009, and ``conditional_expected_number_of_purchases_up_to_time``, equation (41)) with
the repairs of :mod:`.lifetimes_adapter` (P(alive) = 1 where ``t_x = T`` and lifetimes gives NaN),
operation for operation, so the values equal the one-draw-at-a-time path (lifetimes through the
adapter) to rounding (below 1e-12 relative; the tests check it).

What makes it fast is where each piece is evaluated. With ``k = r + s + x``, ``M = max(α, β)``
and lifetimes' ``log A₀ = ln(p₁ q₂^k − p₂ q₁^k) − k ln(q₁ q₂)``, ``q₁ = M + t_x``, ``q₂ = M + T``,
the ₂F₁ ``p₁`` depends on ``(x, t_x)`` only and ``p₂`` on ``(x, T)`` only, so the Gauss
hypergeometric functions (the costly part) are evaluated once per distinct ``(x, t_x)`` and
``(x, T)`` and draw, not once per customer row; E[Y(t) | alive at T, x, T] has no ₂F₁ at all
(``(r+x)(β+T)/((α+T)(s−1)) · [1 − ((β+T)/(β+T+t))^(s−1)]``, which is what lifetimes' expression
reduces to at ``t_x = T``).

Draws with ``s ≥`` :data:`.lifetimes_adapter.PARETO_LIMIT_FORMS_FROM` (a model fitted on the ridge)
use the adapter's limit forms one draw at a time, as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import gammaln, hyp2f1

from clvmodel.models import lifetimes_adapter
from clvmodel.models.alive import alive_product, distinct_pairs

__all__ = ["expected_purchases_draws"]


def expected_purchases_draws(draws: dict[str, np.ndarray], frequency: Any, recency: Any, T: Any, t: float) -> np.ndarray:
    """E[Y(t) | x, t_x, T] of Pareto/NBD under every draw: shape ``(rows, draws)``.

    Parameters
    ----------
    draws
        ``r, alpha, s, beta``, each of shape ``(draws,)``.
    frequency, recency, T
        ``x``, ``t_x``, ``T`` of shape ``(rows,)``.
    t
        The horizon.
    """
    r, alpha, s, beta = (np.asarray(draws[k], dtype=float) for k in ("r", "alpha", "s", "beta"))
    x, tx, T_ = (np.ascontiguousarray(np.asarray(v, dtype=float)) for v in (frequency, recency, T))
    limit = s >= lifetimes_adapter.PARETO_LIMIT_FORMS_FROM
    out = np.empty((len(x), len(r)))
    for d in np.flatnonzero(limit):  # the ridge's limit forms, one draw at a time (lifetimes_adapter)
        params = {"r": r[d], "alpha": alpha[d], "s": s[d], "beta": beta[d]}
        pair_x, pair_T, pair_of_row = distinct_pairs(x, T_)
        given = (lifetimes_adapter.conditional_expected_purchases("pareto_nbd", params, t, pair_x, pair_T, pair_T)
                 / lifetimes_adapter.probability_alive("pareto_nbd", params, pair_x, pair_T, pair_T))
        out[:, d] = alive_product(lifetimes_adapter.probability_alive("pareto_nbd", params, x, tx, T_), given, pair_of_row)
    keep = np.flatnonzero(~limit)
    if len(keep) == len(r):
        out = _expected_draws(r, alpha, s, beta, x, tx, T_, float(t))
    elif len(keep):
        out[:, keep] = _expected_draws(r[keep], alpha[keep], s[keep], beta[keep], x, tx, T_, float(t))
    return out


def _expected_draws(r: np.ndarray, alpha: np.ndarray, s: np.ndarray, beta: np.ndarray, x: np.ndarray,
                    tx: np.ndarray, T: np.ndarray, t: float) -> np.ndarray:
    r, alpha, s, beta = (v[None, :] for v in (r, alpha, s, beta))
    counts, count_of_row = np.unique(x, return_inverse=True)
    count_of_row = count_of_row.reshape(-1)
    start_x, start_tx, start_of_row = distinct_pairs(x, tx)  # p₁: (x, t_x)
    pair_x, pair_T, pair_of_row = distinct_pairs(x, T)  # p₂ and E[Y | alive]: (x, T)
    with np.errstate(all="ignore"):
        # _log_A_0's choice, per draw: (min, max, second ₂F₁ parameter)
        a_lt_b = alpha < beta
        lo, hi = np.where(a_lt_b, alpha, beta), np.where(a_lt_b, beta, alpha)
        abs_ab = hi - lo
        rsf = r + s + counts[:, None]  # (counts, draws)
        start_rsf = r + s + start_x[:, None]
        start_t = np.where(a_lt_b, r + start_x[:, None], s + 1.0)
        log_p1 = np.log(hyp2f1(start_rsf, start_t, start_rsf + 1.0, abs_ab / (hi + start_tx[:, None])))
        pair_rsf = r + s + pair_x[:, None]
        pair_t = np.where(a_lt_b, r + pair_x[:, None], s + 1.0)
        log_p2 = np.log(hyp2f1(pair_rsf, pair_t, pair_rsf + 1.0, abs_ab / (hi + pair_T[:, None])))
        # q₁ = M + t_x per (x, t_x) group and q₂ = M + T per (x, T) pair (the value is the same
        # however grouped); logs kept, and q₁ q₂ rebuilt from them exactly below.
        q1 = hi + start_tx[:, None]
        q2 = hi + pair_T[:, None]
        a0 = _log_a0_rows(rsf, count_of_row, log_p1, q1, start_of_row, log_p2, q2, pair_of_row)
        # conditional_probability_alive: 1 / (1 + exp(ln s − ln(r+s+x) + (r+x) ln(α+T) + s ln(β+T) + A₀))
        head = np.log(s) - np.log(rsf)  # (counts, draws)
        exponent = head[count_of_row]
        exponent += ((r + pair_x[:, None]) * np.log(alpha + pair_T[:, None]))[pair_of_row]
        exponent += (s * np.log(beta + pair_T[:, None]))[pair_of_row]
        exponent += a0
        alive = np.exp(exponent, out=exponent)
        alive += 1.0
        np.divide(1.0, alive, out=alive)
        # lifetimes_adapter.probability_alive: 1 where lifetimes gives NaN at t_x = T
        at_end = tx >= T
        if at_end.any():
            rows = alive[at_end]
            rows[np.isnan(rows)] = 1.0
            alive[at_end] = rows
        given = _given_alive(r, alpha, s, beta, pair_x[:, None], pair_T[:, None], t)
    expected = given[pair_of_row]
    expected *= alive
    return np.maximum(expected, 0.0, out=expected)


def _log_a0_rows(rsf: np.ndarray, count_of_row: np.ndarray, log_p1: np.ndarray, q1: np.ndarray,
                 start_of_row: np.ndarray, log_p2: np.ndarray, q2: np.ndarray, pair_of_row: np.ndarray) -> np.ndarray:
    """lifetimes' ``_log_A_0`` per row and draw from per-group pieces.

    ``scipy.special.logsumexp([a₁, a₂], b=[1, −1])`` of two terms, replayed: ``log1p(−e^(a₂−a₁)) + 0 + a₁``
    where ``a₁ > a₂``; NaN where ``a₁ < a₂`` (a negative sum); ``−inf`` for equal terms; where that is
    not finite, ``ln(e^(a₁) − e^(a₂))`` as logsumexp falls back to (NaN where both overflow)."""
    k = rsf[count_of_row]
    q1_rows, q2_rows = q1[start_of_row], q2[pair_of_row]
    a1 = k * np.log(q2_rows)
    a1 += log_p1[start_of_row]
    a2 = k * np.log(q1_rows)
    a2 += log_p2[pair_of_row]
    out = np.subtract(a2, a1)
    np.exp(out, out=out)
    np.negative(out, out=out)
    np.log1p(out, out=out)
    out += 0.0
    out += a1
    out[a1 < a2] = np.nan
    out[a1 == a2] = -np.inf
    bad = ~np.isfinite(out)
    if bad.any():
        out[bad] = np.log(np.exp(a1[bad]) - np.exp(a2[bad]))
    q1_rows *= q2_rows
    out -= k * np.log(q1_rows)
    return out


def _given_alive(r: np.ndarray, alpha: np.ndarray, s: np.ndarray, beta: np.ndarray, x: np.ndarray, T: np.ndarray,
                 t: float) -> np.ndarray:
    """E[Y(t) | alive at T, x, T] as the adapter gets it: lifetimes' equation (41) at ``t_x = T``
    (``exp(first + second + third − ln L)``, ``ln L`` its likelihood there) over its P(alive) = 1.

    At ``t_x = T`` lifetimes' ``ln L`` is ``A₁ + (−(r+x) ln(α+T) − s ln(β+T))`` (its ``log A₀`` is
    −inf); where it overflows instead (NaN), the adapter's exact form gives the same value.
    """
    # Each shared subexpression once (the same numbers as lifetimes' separate evaluations).
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)  # A₁ (lifetimes' name)
    log_alpha_T, log_beta_T = np.log(alpha + T), np.log(beta + T)
    rx_log_alpha_T, s_log_beta_T = (r + x) * log_alpha_T, s * log_beta_T
    first = a1 - rx_log_alpha_T - s_log_beta_T
    second = np.log(r + x) + log_beta_T - log_alpha_T
    kept = 1 - ((beta + T) / (beta + T + t)) ** (s - 1)
    third = np.log(kept / (s - 1))
    likelihood = a1 + (-rx_log_alpha_T - s_log_beta_T)
    out = np.exp(first + second + third - likelihood)
    bad = ~np.isfinite(out)
    if bad.any():  # the adapter's exact form where lifetimes' expression is not finite
        exact = (r + x) * (beta + T) / ((alpha + T) * (s - 1)) * kept
        out[bad] = np.broadcast_to(exact, out.shape)[bad]
    return out
