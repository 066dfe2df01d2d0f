"""BG/NBD purchase model (Fader, Hardie & Lee 2005, "Counting your customers the easy way").

Fitting and the conditional expectations come from lifetimes' ``BetaGeoFitter`` through
:mod:`.lifetimes_adapter`; this module adds fitting on collapsed rows and a JSON state.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clvmodel.errors import ClvError
from clvmodel.models import lifetimes_adapter
from clvmodel.models.base import FittedModel, check_fitted, collapse

__all__ = ["BetaGeoModel"]

_RFM = ["frequency", "recency", "T"]


class BetaGeoModel(FittedModel):
    """BG/NBD: Poisson purchasing while alive, geometric dropout after each purchase.

    Parameters are ``r, alpha`` (gamma heterogeneity of the purchase rate λ) and ``a, b`` (beta
    heterogeneity of the dropout probability p), with ``alpha`` in the summary's time unit.
    """

    name = "bgnbd"

    def fit(self, summary: pd.DataFrame) -> "BetaGeoModel":
        """Maximum likelihood on the RFM summary, equation (6) of Fader, Hardie & Lee (2005).

        Identical ``(frequency, recency, T)`` rows are collapsed and passed as ``weights``: the
        log-likelihood is a sum over customers, so the optimum is the same as on all rows.
        """
        if len(summary) == 0:
            raise ClvError("bgnbd: no customers to fit; check the calibration period")
        if not (summary["frequency"] > 0).any():
            raise ClvError(
                f"bgnbd: none of the {len(summary):,} customers made a repeat purchase, so purchase rates and "
                "dropout cannot be estimated; use a longer calibration period or more customers"
            )
        unique, weights, _ = collapse(summary, _RFM)
        result = lifetimes_adapter.fit(
            self.name, {c: unique[c].to_numpy() for c in _RFM}, weights
        )
        self.params_ = result.params
        self.standard_errors_ = result.standard_errors
        self.log_likelihood_ = result.log_likelihood
        self.n_ = result.n
        return self

    def _fitter(self):  # noqa: ANN202 - a lifetimes object, kept private
        check_fitted(self)
        return lifetimes_adapter.fitter_from_params(self.name, self.params_ or {})

    def expected_purchases(
        self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, *, t: float | np.ndarray
    ) -> np.ndarray:
        """E[Y(t) | x, t_x, T]: expected repeat purchases in (T, T + t], equation (10).

        Broadcasts: pass ``t`` with shape ``(H, 1)`` and customer arrays of shape ``(n,)`` for an
        ``(H, n)`` matrix (cumulative expectations at each period end).
        """
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = self._fitter().conditional_expected_number_of_purchases_up_to_time(t, frequency, recency, T)
        return np.asarray(out, dtype=float)

    def p_alive(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(alive | x, t_x, T), equation (13) of Fader, Hardie & Lee (2005) (1 when x = 0)."""
        with np.errstate(over="ignore"):
            out = self._fitter().conditional_probability_alive(frequency, recency, T)
        return np.asarray(out, dtype=float)

    def expected_purchases_new(self, t: float | np.ndarray) -> np.ndarray:
        """E[X(t)] for a customer just acquired, equation (9)."""
        return np.asarray(self._fitter().expected_number_of_purchases_up_to_time(t), dtype=float)
