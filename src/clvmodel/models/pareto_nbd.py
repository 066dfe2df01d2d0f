"""Pareto/NBD purchase model (Schmittlein, Morrison & Colombo 1987; Fader, Hardie & Lee 2005).

Poisson purchasing (λ ~ Gamma(r, α)) with an exponential lifetime (μ ~ Gamma(s, β)) independent
of purchases. The likelihood is lifetimes' (equation (18) of Fader & Hardie's note 009, "A note on
deriving the Pareto/NBD model and related expressions", 2005), with the exact closed form where
``t_x = T`` (lifetimes' 2F1 overflows there); it is maximised by BFGS in the log-parameters from
fixed starts with a central-difference gradient (:mod:`.mle`), not by lifetimes' own fit (random
starts, no convergence check, no standard errors). Where the data have no finite optimum (the
likelihood rises as ``s, β → ∞``: one dropout rate for everyone) the fit reports that limit with
status ``ridge``; see :func:`clvmodel.models.lifetimes_adapter.fit`.

:class:`ParetoNBDCovariateModel` adds static covariates (issue 14): its own numpy likelihood with
an analytic gradient (:mod:`.pareto_nbd_likelihood`), the plain forecasts at each profile.
"""

from __future__ import annotations

import numpy as np

from clvmodel.models import pareto_nbd_forecast, pareto_nbd_likelihood
from clvmodel.models.covariate_model import LIFE, TRANS, CovariateModel
from clvmodel.models.mle import FitResult
from clvmodel.models.purchase import PurchaseModel

__all__ = ["ParetoNBDModel", "ParetoNBDCovariateModel"]


class ParetoNBDModel(PurchaseModel):
    """Pareto/NBD with parameters ``r, alpha, s, beta`` (``alpha, beta`` in the time unit)."""

    name = "pareto_nbd"
    param_names = ("r", "alpha", "s", "beta")
    #: The bootstrap's forecast under many draws at once (:mod:`.pareto_nbd_forecast`).
    expected_purchases_draws = pareto_nbd_forecast.DrawForecast


class ParetoNBDCovariateModel(CovariateModel, ParetoNBDModel):
    """Pareto/NBD with static covariates in both processes (R CLVTools 0.12's ``pnbd`` with ``data.cov.life``
    and ``data.cov.trans`` the same columns).

    Customer i's ``α_i = α·exp(−γ_transᵀz_i)`` and ``β_i = β·exp(−γ_lifeᵀz_i)`` (Fader & Hardie 2007;
    CLVTools ``src/pnbd.cpp:525-536``): a positive ``trans.<col>`` raises the purchase rate, a
    positive ``life.<col>`` the dropout rate. ``params_``: ``r, alpha, s, beta`` at z = 0, then
    ``life.<col>`` and ``trans.<col>`` for every encoded column. Fitted by
    :func:`.pareto_nbd_likelihood.fit_covariates` (numpy, analytic gradient); the forecasts are the
    plain model's at each profile (:meth:`CovariateModel.at`), e.g. for a new customer
    ``E[X(t)] = r β_i / (α_i (s − 1)) · (1 − (β_i/(β_i + t))^(s−1))``.
    """

    name = "pareto_nbd_cov"
    plain = ParetoNBDModel
    links = {"alpha": (TRANS, -1.0), "beta": (LIFE, -1.0)}
    #: Its fit is numpy alone (no process-wide state): the pipeline may run it beside another.
    parallel_safe = True

    def _fit_covariates(self, columns: dict[str, np.ndarray], weights: np.ndarray, *,
                        design_columns: list[str]) -> FitResult:
        """:func:`.pareto_nbd_likelihood.fit_covariates` with the family's ``fit_options``."""
        return pareto_nbd_likelihood.fit_covariates(columns, weights, design_columns=design_columns,
                                                    **dict(self.fit_options))
