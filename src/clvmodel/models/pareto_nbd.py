"""Pareto/NBD purchase model (Schmittlein, Morrison & Colombo 1987; Fader, Hardie & Lee 2005).

Poisson purchasing (λ ~ Gamma(r, α)) with an exponential lifetime (μ ~ Gamma(s, β)) independent
of purchases. The likelihood is equation (18) of Fader & Hardie's note 009 ("A note on deriving
the Pareto/NBD model and related expressions", 2005), lifetimes' function, evaluated in numpy in
its integral form with an analytic gradient (:mod:`.pareto_nbd_likelihood`, issue 16; finite where
lifetimes' ₂F₁ overflows) and maximised by BFGS in the log-parameters from fixed starts
(:func:`.pareto_nbd_likelihood.fit`), not by lifetimes' own fit (random starts, Nelder-Mead, no
convergence check, no standard errors). Where the data have no finite optimum (the likelihood
rises as ``s, β → ∞``: one dropout rate for everyone) the fit reports that limit with status
``ridge``. lifetimes' likelihood, minimised with a central-difference gradient, stays the
reference path (:func:`clvmodel.models.lifetimes_adapter.fit`).

:class:`ParetoNBDCovariateModel` adds static covariates (issue 14): its own numpy likelihood with
an analytic gradient (:mod:`.pareto_nbd_likelihood`), the plain forecasts at each profile.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clvmodel.models import pareto_nbd_forecast, pareto_nbd_likelihood
from clvmodel.models.base import check_fitted
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
    #: Its fit is numpy alone (no process-wide state): the pipeline may run it beside another.
    parallel_safe = True

    def _fit_rows(self, columns: dict[str, np.ndarray], weights: np.ndarray, **options: Any) -> FitResult:
        """Equation (18) with its analytic gradient in numpy (:func:`.pareto_nbd_likelihood.fit`), or its ridge's limit."""
        return pareto_nbd_likelihood.fit(columns, weights, **options)

    def p_alive(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(alive | x, t_x, T) (:func:`.pareto_nbd_likelihood.p_alive`: the likelihood's two terms,
        bounded for every ``s``; lifetimes' ₂F₁ form is NaN for ``s`` from a few hundred on)."""
        check_fitted(self)
        return pareto_nbd_likelihood.p_alive(self.params_ or {}, frequency, recency, T)

    def expected_purchases_if_alive(self, frequency: np.ndarray, T: np.ndarray, *, t: float | np.ndarray) -> np.ndarray:
        """E[Y(t) | alive at T, x, T] (:func:`.pareto_nbd_likelihood.expected_purchases_if_alive`)."""
        check_fitted(self)
        return pareto_nbd_likelihood.expected_purchases_if_alive(self.params_ or {}, frequency, T, t)

    def expected_purchases_new(self, t: float | np.ndarray) -> np.ndarray:
        """E[X(t)] for a customer just acquired (:func:`.pareto_nbd_likelihood.expected_purchases_new`)."""
        check_fitted(self)
        return pareto_nbd_likelihood.expected_purchases_new(self.params_ or {}, t)


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
