"""Purchase model + spend model -> discounted CLV over a horizon, per customer.

For a customer with history ``(x, t_x, T)`` and horizon ``H`` periods (the config's time unit):

    predicted_clv = margin × E[M | x, m̄] × Σ_{k=1}^{H} (E[Y(k)] − E[Y(k−1)]) / (1 + d)^k

where ``E[Y(k)]`` is the purchase model's expected number of purchases in ``(T, T + k]``
(equation (10) of Fader, Hardie & Lee 2005 for BG/NBD), ``E[M | x, m̄]`` the Gamma-Gamma expected
order value (equation (5) of Fader & Hardie 2013) and ``d`` the discount rate per period. Purchases
in period ``k`` are discounted at its end. No calendar conversion is hidden here: horizon and rate
are in the summary's unit.

The hypergeometric part of the cumulative expectations is computed once per distinct ``(x, T)``
(see :meth:`clvmodel.models.purchase.PurchaseModel.expected_purchases`), and so is the discounted
sum over periods: a customer's is its pair's times P(alive).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvmodel.models.alive import alive_product, distinct_pairs
from clvmodel.models.gamma_gamma import GammaGammaModel
from clvmodel.models.purchase import PurchaseModel

__all__ = ["discount_factors", "distinct_pairs", "forecast", "frame_of"]


def discount_factors(horizon: int, discount_rate: float) -> np.ndarray:
    """``(1 + d)^-k`` for ``k = 1..H``."""
    return (1.0 + discount_rate) ** -np.arange(1, int(horizon) + 1, dtype=float)


def forecast(
    purchases: PurchaseModel,
    spend: GammaGammaModel | None,
    summary: pd.DataFrame,
    *,
    horizon: int,
    discount_rate: float = 0.0,
    margin: float = 1.0,
    per_period: bool = False,
) -> pd.DataFrame:
    """P(alive), expected purchases and order value, and discounted CLV for every summary row.

    Parameters
    ----------
    purchases, spend
        Fitted purchase and spend models. Without a spend model, ``expected_order_value`` is
        each customer's observed ``monetary_value`` (0 for one-time buyers).
    summary
        RFM rows (``frequency, recency, T, monetary_value``).
    horizon, discount_rate, margin
        ``H`` whole periods, ``d`` per period, margin as a fraction of revenue.
    per_period
        Also return the discounted expected value of each period, columns ``period_1..period_H``
        (used for payback periods).

    Returns
    -------
    pandas.DataFrame
        Same index as ``summary``: ``p_alive, expected_purchases, expected_order_value,
        predicted_clv`` (+ the period columns).
    """
    x, tx, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    horizon = int(horizon)
    monetary = summary["monetary_value"].to_numpy(dtype=float)
    order_value = spend.expected_order_value(x, monetary) if spend is not None else monetary
    weights = discount_factors(horizon, discount_rate)
    p_alive, expected, discounted, periods = _discounted_purchases(purchases, x, tx, T, weights, per_period)
    value = margin * order_value
    out = frame_of(
        {
            "p_alive": p_alive,
            "expected_purchases": expected,
            "expected_order_value": order_value,
            "predicted_clv": np.multiply(value, discounted, out=discounted),
        },
        summary.index,
    )
    if periods is not None:
        periods *= value[:, None]
        names = [f"period_{k}" for k in range(1, horizon + 1)]
        out = pd.concat([out, pd.DataFrame(periods, index=summary.index, columns=names)], axis=1)
    return out


def _discounted_purchases(
    purchases: PurchaseModel, x: np.ndarray, tx: np.ndarray, T: np.ndarray, weights: np.ndarray, per_period: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """P(alive), ``E[Y(H)]``, ``Σ_k (E[Y(k)] − E[Y(k−1)]) w_k`` and, if asked, its ``n × H`` terms.

    For the purchase models of :mod:`clvmodel.models`, ``E[Y(t)] = P(alive) × E[Y(t) | alive,
    x, T]`` clipped at 0 (:meth:`~clvmodel.models.purchase.PurchaseModel.expected_purchases`).
    P(alive), a probability, factors out of the clip and out of the sum, so the discounted sum
    is formed once per distinct ``(x, T)`` and scaled per customer: no ``H × n`` matrix (100 MB
    at a million customers and 12 periods) unless the period terms are asked for. ``E[Y(H)]``
    is the product ``expected_purchases`` forms, to the bit; the discounted sum differs from
    summing per customer only by rounding (below 1e-15 relative on a million customers). A
    family that declares ``factorised = False`` (its ``expected_purchases`` is not that product)
    is asked for the whole matrix instead.
    """
    horizon = len(weights)
    t = np.arange(1, horizon + 1, dtype=float)[:, None]
    if not purchases.factorised:
        cumulative = np.asarray(purchases.expected_purchases(x, tx, T, t=t), dtype=float)  # (H, n)
        steps = np.diff(cumulative, axis=0, prepend=0.0) * weights[:, None]  # E[Y(0)] = 0
        periods = steps.T.copy() if per_period else None
        return purchases.p_alive(x, tx, T), cumulative[-1], _in_period_order(steps), periods
    p_alive = purchases.p_alive(x, tx, T)
    pair_x, pair_T, pair_of_row = distinct_pairs(x, T)
    given_alive = purchases.expected_purchases_if_alive(pair_x, pair_T, t=t)  # (H, pairs)
    expected = alive_product(p_alive, given_alive[-1], pair_of_row)
    # The same factorisation for the discounted sum: P(alive) >= 0 factors out of the clip and
    # out of the sum over periods, which is formed once per pair.
    steps = np.diff(np.maximum(given_alive, 0.0), axis=0, prepend=0.0) * weights[:, None]  # (H, pairs)
    discounted = _in_period_order(steps)[pair_of_row]
    discounted *= p_alive
    periods = p_alive[:, None] * steps.T[pair_of_row] if per_period else None
    return p_alive, expected, discounted, periods


def _in_period_order(steps: np.ndarray) -> np.ndarray:
    """Column sums of ``steps`` (periods × customers), added period after period.

    ``steps.sum(axis=0)`` changes its order of additions with the shape (pairwise along memory
    when there is a single column): a customer's CLV would then depend, in its last bit, on
    which other customers share its batch, and the streamed and Spark scorers score in batches.
    """
    total = steps[0].copy()
    for row in steps[1:]:
        total += row
    return total


def frame_of(columns: dict[str, Any], index: pd.Index) -> pd.DataFrame:
    """A frame holding ``columns`` (arrays or Series on ``index``) without copying them.

    ``pandas.DataFrame`` of a dict of arrays stacks the float columns into one 2-D block, a
    copy of every column (~40 ms for ten columns of a million rows); from Series it keeps each
    column's own array (copy-on-write protects them).
    """
    series = {
        name: values if isinstance(values, pd.Series) else pd.Series(values, index=index, copy=False)
        for name, values in columns.items()
    }
    return pd.DataFrame(series, index=index, copy=False)
