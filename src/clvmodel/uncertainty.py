"""Per-customer intervals by parametric bootstrap of the fitted parameters.

The maximum-likelihood estimates are asymptotically normal; we draw ``N`` parameter vectors
from that normal **on the log scale** (the scale the models are fitted on, so every draw is
positive), with the covariance stored in the model (inverse Hessian of the negative
log-likelihood), recompute each customer's forecast under every draw, and report the
``(1 − level)/2`` and ``(1 + level)/2`` quantiles as ``*_lower`` / ``*_upper``.

What the intervals cover: uncertainty in the *population* parameters (how well the model is
estimated), not the Poisson noise of one customer's future purchases — a customer's realised
count will fall outside them often. Expected purchases use the exact ``E[Y(H)]`` of each draw;
CLV per draw is ``margin × E_d[M] × E_d[Y(H)] × w``, where ``w`` is the point forecast's share of
discounted to undiscounted purchases (exactly 1 when the discount rate is 0; otherwise the timing
of purchases within the horizon is taken from the point estimate, which moves far less than the
level does).

Vectorised: unique ``(x, t_x, T)`` rows only, customers in chunks so that memory stays at
``chunk × draws`` floats; the loop is over draws, never over customers or periods.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvmodel.models.alive import alive_product
from clvmodel.models.base import FittedModel, collapse

__all__ = ["parameter_draws", "interval_columns"]

_CHUNK = 20_000


def parameter_draws(model: FittedModel, draws: int, seed: int) -> list[dict[str, float]] | None:
    """``draws`` parameter dicts from N(log θ̂, Σ) mapped back by exp; ``None`` without a covariance.

    A covariate model's coefficients (its ``linear_params()``: ``life.*``, ``trans.*``) are fitted
    on their own scale (``covariance_`` is over log base parameters and raw coefficients), so they
    are drawn as they are, not exponentiated.
    """
    if model.covariance_ is None or not model.params_:
        return None
    held = list(model.params_)
    cov = np.asarray(model.covariance_, dtype=float)
    if cov.shape != (len(held), len(held)) or not np.all(np.isfinite(cov)):
        return None
    # Sample in sorted-name order so that the same seed gives the same draws however the
    # parameters happen to be ordered (lifetimes' order in memory, sorted keys after JSON).
    names = sorted(held)
    order = [held.index(k) for k in names]
    cov = cov[np.ix_(order, order)]
    linear_params = getattr(model, "linear_params", None)
    linear = np.isin(names, list(linear_params()) if callable(linear_params) else [])
    values = np.array([model.params_[k] for k in names], dtype=float)
    mean = np.where(linear, values, np.log(np.where(linear, 1.0, values)))
    rng = np.random.default_rng(seed)
    samples = rng.multivariate_normal(mean, cov, size=draws, method="eigh")
    samples[:, ~linear] = np.exp(samples[:, ~linear])
    return [dict(zip(names, row)) for row in samples]


def interval_columns(
    trained: Any,
    rfm: pd.DataFrame,
    point: pd.DataFrame,
    *,
    horizon: int,
    margin: float,
    level: float,
    draws: int,
    seed: int,
) -> pd.DataFrame:
    """``expected_purchases_lower/upper`` and ``predicted_clv_lower/upper`` for each RFM row.

    Parameters
    ----------
    trained
        A :class:`~clvmodel.artifact.TrainedModel` with a purchase model (and maybe a spend model).
    rfm, point
        The RFM rows and their point forecast (``expected_purchases``, ``expected_order_value``,
        ``predicted_clv``), aligned.
    level, draws, seed
        Central interval level, number of parameter draws, random seed.
    """
    purchase, spend = trained.purchase_model, trained.spend_model
    columns = ["expected_purchases_lower", "expected_purchases_upper", "predicted_clv_lower", "predicted_clv_upper"]
    out = pd.DataFrame(np.nan, index=rfm.index, columns=columns)
    purchase_draws = parameter_draws(purchase, draws, seed)
    if purchase_draws is None:
        return out
    spend_draws = parameter_draws(spend, draws, seed + 1) if spend is not None else None
    quantiles = [(1 - level) / 2, (1 + level) / 2]
    frequency = rfm["frequency"].to_numpy(dtype=float)
    monetary = rfm["monetary_value"].to_numpy(dtype=float)
    undiscounted = margin * point["expected_order_value"].to_numpy() * point["expected_purchases"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        timing = np.where(undiscounted > 0, point["predicted_clv"].to_numpy() / undiscounted, 1.0)
    rebuilt = type(purchase)()
    rebuilt_spend = type(spend)() if spend is not None else None
    for start in range(0, len(rfm), _CHUNK):
        rows = slice(start, start + _CHUNK)
        chunk = rfm.iloc[rows]
        # Distinct rows and distinct (x, T) pairs once per chunk; each draw then costs one
        # hypergeometric evaluation per pair (see PurchaseModel.expected_purchases).
        unique, _, inverse = collapse(chunk, ["frequency", "recency", "T"])
        x, tx, T = (unique[c].to_numpy() for c in ("frequency", "recency", "T"))
        pairs, _, pair_of_row = collapse(unique, ["frequency", "T"])
        xp, Tp = pairs["frequency"].to_numpy(), pairs["T"].to_numpy()
        purchases = np.empty((draws, len(chunk)))
        values = np.empty((draws, len(chunk)))
        for d, params in enumerate(purchase_draws):
            rebuilt.params_ = params
            given_alive = rebuilt.expected_purchases_if_alive(xp, Tp, t=float(horizon))
            purchases[d] = alive_product(rebuilt.p_alive(x, tx, T), given_alive, pair_of_row)[inverse]
            if rebuilt_spend is not None and spend_draws is not None:
                rebuilt_spend.params_ = spend_draws[d]
                valid = spend_draws[d]["q"] > 1  # E[M] = p v / (q - 1) exists only for q > 1
                values[d] = rebuilt_spend.expected_order_value(frequency[rows], monetary[rows]) if valid else np.nan
            else:
                values[d] = point["expected_order_value"].to_numpy()[rows]
        clv = margin * purchases * values * timing[rows]
        # nan-aware: a spend draw with q <= 1 has no finite mean spend and is left out.
        invalid = ~np.isfinite(clv)
        clv[invalid] = np.nan
        out.iloc[rows, 0:2] = np.quantile(purchases, quantiles, axis=0).T
        # np.nanquantile is several times slower; pay for it only when a draw was left out.
        out.iloc[rows, 2:4] = (np.nanquantile if invalid.any() else np.quantile)(clv, quantiles, axis=0).T
    return out
