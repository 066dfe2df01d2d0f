"""MBG/NBD purchase model (Batislam, Denizel & Filiztekin 2007).

The BG/NBD with one change: a customer may also drop out right after the first purchase, so a
one-time buyer is not certainly alive (BG/NBD sets P(alive | x = 0) = 1). Fitted on the likelihood of
lifetimes' ``ModifiedBetaGeoFitter``, evaluated with its analytic gradient in numpy
(:mod:`.mbgnbd_likelihood`, issue 16: the same estimates as lifetimes' fit to rounding), and
forecast with lifetimes' closed forms (:mod:`.lifetimes_adapter`); parameters ``r, alpha, a, b``
as in BG/NBD.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clvmodel.models import mbgnbd_likelihood
from clvmodel.models.mle import FitResult
from clvmodel.models.purchase import PurchaseModel

__all__ = ["ModifiedBetaGeoModel"]


class ModifiedBetaGeoModel(PurchaseModel):
    """MBG/NBD with parameters ``r, alpha, a, b``."""

    name = "mbgnbd"
    #: Unlike BG/NBD, a customer may drop out right after the first purchase too (the report says so).
    dropout_at_first_purchase = True
    param_names = ("r", "alpha", "a", "b")
    #: Its fit is numpy alone (no process-wide state): the pipeline may run it beside another.
    parallel_safe = True

    def _fit_rows(self, columns: dict[str, np.ndarray], weights: np.ndarray, **options: Any) -> FitResult:
        """The MBG/NBD likelihood with its analytic gradient in numpy (:func:`.mbgnbd_likelihood.fit`)."""
        return mbgnbd_likelihood.fit(columns, weights, **options)
