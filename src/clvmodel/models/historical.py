"""The historical formula: CLV = average order value × purchase frequency × retention period × margin.

It is the baseline every analyst starts from, computed from the RFM summary alone so that it can
score the same inputs as the probabilistic models. Exactly, for customer *i* with repeat
purchases ``x``, age ``T`` and mean repeat spend ``m``, in the config's time unit:

* purchase frequency  ``f = x / max(T, 1)``: repeat purchases per period observed since the first
  purchase (the first purchase is the acquisition itself, not evidence of a rate; ``T`` is floored
  at one period so a customer acquired yesterday does not get an absurd rate);
* average order value ``AOV = m`` for a repeat customer, else the mean ``m`` over repeat customers
  (a one-time buyer has no repeat order to average);
* retention period ``L``: ``historical.retention_periods`` when configured, else derived from the
  observed repeat rate ``ρ`` (share of customers with at least one repeat purchase) as the mean of a
  geometric lifetime counted in windows of the mean observed age ``T̄``: ``L = T̄ / (1 − ρ)``;
  being memoryless, it is also each customer's remaining retention period;
* over a horizon ``H`` with discount rate ``d`` per period, the customer keeps buying at ``f`` for
  ``ℓ = min(L, H)`` periods: ``CLV = margin × AOV × f × A(ℓ, d)`` with the annuity
  ``A(ℓ, d) = Σ_{k=1}^{⌊ℓ⌋} (1+d)^-k + (ℓ − ⌊ℓ⌋)(1+d)^-(⌊ℓ⌋+1)`` (``A = ℓ`` when ``d = 0``).

The formula assumes every customer is alive and keeps their past rate; the holdout leaderboard
shows what that costs against BG/NBD.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clvmodel.errors import ClvError
from clvmodel.models.base import FittedModel, ModelData, check_fitted, summary_of, weights_of

__all__ = ["HistoricalModel", "annuity"]


def annuity(periods: float, discount_rate: float) -> float:
    """``A(ℓ, d)``: discounted number of periods in ``ℓ`` (fractional last period pro rata)."""
    whole = int(np.floor(periods))
    factors = (1.0 + discount_rate) ** -np.arange(1, whole + 2, dtype=float)
    return float(factors[:whole].sum() + (periods - whole) * factors[whole])


class HistoricalModel(FittedModel):
    """Historical CLV; ``params_`` holds ``retention_periods, repeat_rate, mean_age, mean_order_value``."""

    name = "historical"
    param_names = ("retention_periods", "repeat_rate", "mean_age", "mean_order_value")
    columns = ("frequency", "T", "monetary_value")
    #: Averages that are legitimately 0 (no repeat buyer; zero-amount purchases only).
    may_be_zero = ("repeat_rate", "mean_age", "mean_order_value")
    #: Its fit is numpy alone and leaves the warning filters alone: it may run beside another.
    parallel_safe = True

    def __init__(self, retention_periods: float | None = None) -> None:
        self.retention_periods = retention_periods

    def fit(self, data: ModelData | pd.DataFrame) -> "HistoricalModel":
        """Estimate ``ρ``, ``T̄`` and the mean repeat order value; derive ``L`` unless configured.

        Means are over customers: a published summary's ``weights`` weigh its rows.
        """
        summary = summary_of(data, self.name)
        if len(summary) == 0:
            raise ClvError("historical: no customers to fit; check the calibration period")
        if "monetary_value" not in summary.columns:
            raise ClvError("historical: the data hold no amounts (monetary_value), and the formula is a value; "
                           "add the column or leave historical out of models")
        repeat = (summary["frequency"] > 0).to_numpy()
        weights = weights_of(summary)
        repeat_rate = float(np.average(repeat, weights=weights))
        mean_age = float(np.average(summary["T"].to_numpy(dtype=float), weights=weights))
        mean_order_value = (
            float(np.average(summary["monetary_value"].to_numpy(dtype=float)[repeat], weights=weights[repeat]))
            if repeat.any() else 0.0
        )
        if self.retention_periods is not None:
            retention = float(self.retention_periods)
        elif repeat_rate >= 1.0:
            raise ClvError(
                "historical: every customer repeated, so the derived retention period is infinite; "
                "set historical.retention_periods"
            )
        else:
            retention = mean_age / (1.0 - repeat_rate)
        self.params_ = {
            "retention_periods": retention,
            "repeat_rate": repeat_rate,
            "mean_age": mean_age,
            "mean_order_value": mean_order_value,
        }
        self.standard_errors_ = {}
        self.n_ = int(round(weights.sum()))
        return self

    def purchase_rate(self, frequency: np.ndarray, T: np.ndarray) -> np.ndarray:
        """``f = x / max(T, 1)``, repeat purchases per period."""
        return np.asarray(frequency, dtype=float) / np.maximum(np.asarray(T, dtype=float), 1.0)

    def order_value(self, frequency: np.ndarray, monetary_value: np.ndarray) -> np.ndarray:
        """``AOV``: own mean repeat spend, or the population's for a one-time buyer."""
        check_fitted(self)
        frequency = np.asarray(frequency, dtype=float)
        return np.where(frequency > 0, np.asarray(monetary_value, dtype=float), self.params_["mean_order_value"])

    def expected_purchases(
        self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, *, t: float
    ) -> np.ndarray:
        """Purchases over the next ``t`` periods: ``f × min(L, t)`` (the formula ignores recency).

        The signature of every family's ``expected_purchases``
        (:meth:`clvmodel.models.purchase.PurchaseModel.expected_purchases`).
        """
        check_fitted(self)
        return self.purchase_rate(frequency, T) * min(self.params_["retention_periods"], float(t))

    def clv(
        self,
        frequency: np.ndarray,
        T: np.ndarray,
        monetary_value: np.ndarray,
        *,
        horizon: float,
        discount_rate: float = 0.0,
        margin: float = 1.0,
    ) -> np.ndarray:
        """``margin × AOV × f × A(min(L, H), d)``, see the module docstring."""
        check_fitted(self)
        periods = annuity(min(self.params_["retention_periods"], float(horizon)), discount_rate)
        return margin * self.order_value(frequency, monetary_value) * self.purchase_rate(frequency, T) * periods
