"""MBG/NBD purchase model (Batislam, Denizel & Filiztekin 2007).

The BG/NBD with one change: a customer may also drop out right after the first purchase, so a
one-time buyer is not certainly alive (BG/NBD sets P(alive | x = 0) = 1). Fitted and forecast with
lifetimes' ``ModifiedBetaGeoFitter``; parameters ``r, alpha, a, b`` as in BG/NBD.
"""

from __future__ import annotations

from clvmodel.models.purchase import PurchaseModel

__all__ = ["ModifiedBetaGeoModel"]


class ModifiedBetaGeoModel(PurchaseModel):
    """MBG/NBD with parameters ``r, alpha, a, b``."""

    name = "mbgnbd"
