"""Purchase model + spend model -> discounted CLV over a horizon, per customer.

For a customer with history ``(x, t_x, T)`` and horizon ``H`` periods (the config's time unit):

    predicted_clv = margin × E[M | x, m̄] × Σ_{k=1}^{H} (E[Y(k)] − E[Y(k−1)]) / (1 + d)^k

where ``E[Y(k)]`` is the purchase model's expected number of purchases in ``(T, T + k]``
(equation (10) of Fader, Hardie & Lee 2005 for BG/NBD), ``E[M | x, m̄]`` the Gamma-Gamma expected
order value (equation (5) of Fader & Hardie 2013) and ``d`` the discount rate per period. Purchases
in period ``k`` are discounted at its end. No calendar conversion is hidden here: horizon and rate
are in the summary's unit.

The hypergeometric part of the ``H × n`` matrix of cumulative expectations is computed once per
distinct ``(x, T)`` (see :meth:`clvmodel.models.purchase.PurchaseModel.expected_purchases`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clvmodel.models.purchase import PurchaseModel
from clvmodel.models.gamma_gamma import GammaGammaModel

__all__ = ["discount_factors", "forecast"]


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
    periods = np.arange(0, int(horizon) + 1, dtype=float)[:, None]
    cumulative = purchases.expected_purchases(x, tx, T, t=periods)  # (H + 1, n), once per (x, T) inside
    cumulative[0] = 0.0  # E[Y(0)] = 0 exactly (the formula gives 0 up to rounding)
    increments = np.diff(cumulative, axis=0) * discount_factors(horizon, discount_rate)[:, None]
    frequency = summary["frequency"].to_numpy(dtype=float)
    monetary = summary["monetary_value"].to_numpy(dtype=float)
    order_value = spend.expected_order_value(frequency, monetary) if spend is not None else monetary
    out = pd.DataFrame(
        {
            "p_alive": purchases.p_alive(x, tx, T),
            "expected_purchases": cumulative[-1],
            "expected_order_value": order_value,
            "predicted_clv": margin * order_value * increments.sum(axis=0),
        },
        index=summary.index,
    )
    if per_period:
        values = margin * order_value[:, None] * increments.T
        period_frame = pd.DataFrame(values, index=summary.index, columns=[f"period_{k}" for k in range(1, horizon + 1)])
        out = pd.concat([out, period_frame], axis=1)
    return out
