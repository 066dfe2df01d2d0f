"""What the BTYD purchase models share: fitting on collapsed rows and the three forecasts.

BG/NBD, MBG/NBD, Pareto/NBD, GGom/NBD and BG/BB all describe a customer by ``(x, t_x, T)`` (for
BG/BB, ``T`` counts opportunities) and answer the same questions with one signature:
``expected_purchases(frequency, recency, T, *, t)``, ``p_alive``, ``expected_purchases_if_alive``
and ``expected_purchases_new``. By default the likelihood and forecasts are lifetimes' (through
:mod:`.lifetimes_adapter`); every family now overrides the fit with its own numpy likelihood
(MBG/NBD and Pareto/NBD since issue 16), BG/NBD, GGom/NBD, BG/BB and Pareto/NBD their forecasts
too; MBG/NBD still forecasts through lifetimes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvmodel.errors import ClvError
from clvmodel.models import alive, lifetimes_adapter
from clvmodel.models.base import FittedModel, ModelData, check_fitted, summary_of, weights_of

__all__ = ["PurchaseModel", "RFM"]

RFM = ["frequency", "recency", "T"]


class PurchaseModel(FittedModel):
    """A fitted BTYD purchase model; ``params_`` in the summary's time unit."""

    columns = tuple(RFM)
    #: ``expected_purchases`` is ``p_alive × expected_purchases_if_alive`` (true of every family
    #: here; each family's tests check it), so valuation forms the sums once per distinct
    #: ``(x, T)``. A family that forecasts otherwise sets ``False`` and is asked for whole matrices.
    factorised: bool = True
    #: ``DrawForecast(draws, frequency, recency, T, t)``: E[Y(t) | x, t_x, T] of a block of rows under
    #: many parameter draws at once (``draws``: each parameter an array), its ``fill(start, stop, out,
    #: work)`` writing rows × draws; equal to ``expected_purchases`` draw by draw. The bootstrap
    #: intervals use it where a family has one (:mod:`clvmodel.uncertainty`: BG/NBD, Pareto/NBD), and
    #: otherwise rebuild the model once per draw.
    expected_purchases_draws: Any = None
    #: Extra options for the fit (``tol``, ``initial_params``, scipy ``minimize`` options).
    fit_options: dict[str, Any] = {}

    def fit(self, data: ModelData | pd.DataFrame) -> "PurchaseModel":
        """Maximum likelihood on the RFM summary, identical rows collapsed into ``weights``.

        The log-likelihood is a sum over customers, so the optimum on collapsed rows is the
        optimum on all rows (CDNOW: 2,357 customers, about 1,000 distinct rows in weeks). A published
        summary's ``weights`` column is summed into the collapsed weights.
        """
        summary = summary_of(data, self.name)
        if len(summary) == 0:
            raise ClvError(f"{self.name}: no customers to fit; check the calibration period")
        if not (summary["frequency"] > 0).any():
            customers = weights_of(summary).sum()
            raise ClvError(
                f"{self.name}: none of the {customers:,.0f} customers made a repeat purchase, so purchase rates "
                "and dropout cannot be estimated; use a longer calibration period or more customers"
            )
        return self._fit_collapsed(summary, RFM, **self.fit_options)  # type: ignore[return-value]

    def _fitter(self) -> Any:
        check_fitted(self)
        return lifetimes_adapter.fitter_from_params(self.name, self.params_ or {})

    def expected_purchases(
        self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, *, t: float | np.ndarray
    ) -> np.ndarray:
        """E[Y(t) | x, t_x, T]: expected repeat purchases in ``(T, T + t]``.

        Computed as ``P(alive | x, t_x, T) × E[Y(t) | alive at T, x, T]``: given that a customer
        is alive at T, the past enters the BG/NBD, MBG/NBD and Pareto/NBD posteriors only through
        ``x`` and ``T`` (equation (10) of Fader, Hardie & Lee 2005 is exactly this product). The
        second factor, the costly one (Gauss hypergeometric functions), is evaluated once per
        distinct ``(x, T)`` — with daily data far fewer than distinct ``(x, t_x, T)`` — by
        :meth:`expected_purchases_if_alive` (by default lifetimes' expectation divided by its
        P(alive), both at ``t_x = T``; BG/NBD evaluates the numerator of equation (10) directly).
        The product is formed by :func:`clvmodel.models.alive.expected_purchases`, as for the CLV
        and the intervals.

        Broadcasts: ``t`` of shape ``(H, 1)`` with customer arrays of shape ``(n,)`` gives an
        ``(H, n)`` matrix of cumulative expectations.
        """
        check_fitted(self)
        return alive.expected_purchases(self, frequency, recency, T, t=t)

    def expected_purchases_if_alive(self, frequency: np.ndarray, T: np.ndarray, *, t: float | np.ndarray) -> np.ndarray:
        """E[Y(t) | alive at T, x, T]: lifetimes' E[Y(t) | x, t_x = T, T] / P(alive | x, T, T)."""
        check_fitted(self)
        params = self.params_ or {}
        return lifetimes_adapter.conditional_expected_purchases(self.name, params, t, frequency, T, T) / (
            lifetimes_adapter.probability_alive(self.name, params, frequency, T, T)
        )

    def p_alive(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(alive | x, t_x, T)."""
        check_fitted(self)
        return lifetimes_adapter.probability_alive(self.name, self.params_ or {}, frequency, recency, T)

    def expected_purchases_new(self, t: float | np.ndarray) -> np.ndarray:
        """E[X(t)] for a customer just acquired."""
        return np.asarray(self._fitter().expected_number_of_purchases_up_to_time(t), dtype=float)
