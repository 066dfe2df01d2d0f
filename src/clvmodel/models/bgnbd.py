"""BG/NBD purchase model (Fader, Hardie & Lee 2005, "Counting your customers the easy way").

Poisson purchasing while alive (rate λ ~ Gamma(r, α)); after each purchase the customer drops
out with probability p ~ Beta(a, b). Fitting maximises equation (6) of the paper; the forecasts
are E[X(t)] (equation (9)), E[Y(t) | x, t_x, T] (equation (10)) and P(alive | x, t_x, T) (Fader,
Hardie & Lee 2008, note 021), all from lifetimes' ``BetaGeoFitter``.
"""

from __future__ import annotations

from clvmodel.models.purchase import PurchaseModel

__all__ = ["BetaGeoModel"]


class BetaGeoModel(PurchaseModel):
    """BG/NBD with parameters ``r, alpha, a, b`` (``alpha`` in the summary's time unit)."""

    name = "bgnbd"
