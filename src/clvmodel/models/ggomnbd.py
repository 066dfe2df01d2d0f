"""GGom/NBD purchase model (Bemmaor & Glady 2012, "Modeling purchasing behavior with sudden 'death':
a flexible customer lifetime model", Management Science 58(5), 1012-1021).

While alive a customer buys as a Poisson process with rate λ ~ Gamma(r, α) (shape, rate). The
lifetime τ is Gompertz with "rate" η and shape b, ``P(τ > t | η) = exp(−η (e^{bt} − 1))``, and
η ~ Gamma(s, β) across customers, so that the marginal survival is ``S(t) = (β / (β + e^{bt} − 1))^s``.
b > 0 lets the hazard grow with the customer's age (b < 0 is outside the model here, as in
CLVTools: all five parameters are positive). Parameters ``r, alpha, b, s, beta`` in this order
(the paper's Table 2), α and 1/b in the summary's time unit (weeks on CDNOW), s and β unitless.

**Nesting.** As b → 0 with β/b fixed, ``e^{bt} − 1 ≈ bt`` and ``S(t) → (β_P / (β_P + t))^s`` with
``β_P = β/b``: the model becomes Pareto/NBD with parameters ``r, α, s, β_P``. On CDNOW this is
where the likelihood is highest: the profile likelihood in b rises monotonically as b → 0
(−9595.52 at b = 0.05/week, −9594.983 at 0.0009, −9594.976 in the limit), so the MLE is the
Pareto/NBD fit (r 0.553, α 10.578, s 0.606, β/b 11.669, LL −9594.976) and b, β are not
separately identified. The paper's Table 2 (r 0.553, α 10.578, b 0.0002, s 0.603, β 0.0026, LL
−9594.98) is a point on that ridge: where the profile likelihood at fixed b has β = 0.0026,
b = 0.000224 (0.0002 to Table 2's one digit), r 0.5533, α 10.5777, s 0.6034, LL −9594.978
(tests/models/test_ggomnbd.py). The fit (:func:`.ggomnbd_likelihood.fit`) therefore
compares its free optimum with the Pareto/NBD limit and, when the free optimum does not beat the
limit, reports status ``"ridge"``, ``limit_`` = ``{r, alpha, s, beta_over_b}`` and the limit's
estimates at a fixed tiny b (1e-9 per longest customer age), so the saved model does not depend
on where an optimiser stopped along the ridge.

**Likelihood, gradient.** :mod:`.ggomnbd_likelihood`: the individual likelihood needs one
integral over the death time between ``t_x`` and T, evaluated by composite Gauss-Legendre rules
for all rows at once (to ~1e-13 on CDNOW against adaptive quadrature; in the fit as a difference of
two tails ∫_u^∞, integrated once per distinct (x, u) pair, far fewer than the distinct rows of a
large data set); the gradient is analytic,
the parameter derivatives of the integrand averaged on the same nodes; the Hessian for the
standard errors is a central difference of that gradient.

**Forecasts.** With ``B(t) = β + e^{bt} − 1`` and given the history ``(x, t_x, T)``:

* P(alive) = ``A / (A + D)``, A and D the "alive at T" and "died in (t_x, T]" terms of the
  likelihood (the same split as CLVTools' ``ggomnbd_PAlive``);
* given alive at T, λ | x, T ~ Gamma(r + x, α + T) and, independently, η | T ~ Gamma(s, B(T))
  (the survival likelihood ``exp(−η (e^{bT} − 1))`` times the prior): neither depends on t_x. So
  ``E[Y(t) | x, t_x, T] = P(alive) × E[Y(t) | alive at T, x, T]`` (the product that
  :meth:`.PurchaseModel.expected_purchases` computes) with
  ``E[Y(t) | alive at T] = (r + x)/(α + T) ∫_T^{T+t} (B(T)/B(u))^s du``. Note ``B(u) − B(T) =
  e^{bT} (e^{b(u−T)} − 1)``: the remaining lifetime of a customer alive at T ages from T on, not
  from 0 (CLVTools cites Adler's 2022 erratum to the paper's conditional expectation on this point);
* ``E[X(t)] = (r/α) ∫_0^t S(u) du`` for a customer just acquired (= r/α · E[min(τ, t)], the form
  ``t S(t) + ∫_0^t u f(u) du`` of CLVTools' ``ggomnbd_expectation`` after integrating by parts).

The time integrals are :func:`.ggomnbd_likelihood.survival_integral` (Gauss-Legendre again).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvmodel.models import ggomnbd_likelihood
from clvmodel.models.base import check_fitted, collapse
from clvmodel.models.mle import FitResult
from clvmodel.models.purchase import PurchaseModel

__all__ = ["GompertzNBDModel"]


class GompertzNBDModel(PurchaseModel):
    """GGom/NBD with parameters ``r, alpha, b, s, beta`` (``alpha``, ``1/b`` in the summary's time unit)."""

    name = "ggomnbd"
    role = "purchase"
    param_names = ggomnbd_likelihood.PARAMS
    columns = ("frequency", "recency", "T")

    def _params(self) -> tuple[float, float, float, float, float]:
        check_fitted(self)
        params = self.params_ or {}
        return tuple(float(params[name]) for name in ggomnbd_likelihood.PARAMS)  # type: ignore[return-value]

    def _fit_rows(self, columns: dict[str, np.ndarray], weights: np.ndarray, **options: Any) -> FitResult:
        """Maximum likelihood on weighted rows, or the Pareto/NBD limit (:func:`.ggomnbd_likelihood.fit`)."""
        return ggomnbd_likelihood.fit(columns, weights, **options)

    def p_alive(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(τ > T | x, t_x, T): the "alive at T" share of the likelihood.

        Evaluated once per distinct ``(x, t_x, T)``, its death integral as a difference of tails
        taken once per distinct ``(x, u)`` (:meth:`.ggomnbd_likelihood.GompertzNBDLikelihood.alive_share`).
        ``t_x = T`` (a purchase at T) gives exactly 1.
        """
        params = self._params()
        x, tx, T_ = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=float)) for v in (frequency, recency, T)))
        unique, _, inverse = collapse(pd.DataFrame({"x": x.ravel(), "tx": tx.ravel(), "T": T_.ravel()}), ["x", "tx", "T"])
        ux, utx, uT = (unique[c].to_numpy(dtype=float) for c in ("x", "tx", "T"))
        rows = ggomnbd_likelihood.GompertzNBDLikelihood(ux, utx, uT, np.ones(len(ux)))
        return rows.alive_share(params)[inverse].reshape(x.shape)

    def expected_purchases_if_alive(self, frequency: np.ndarray, T: np.ndarray, *, t: float | np.ndarray) -> np.ndarray:
        """E[Y(t) | alive at T, x, T] = (r + x)/(α + T) · ∫_T^{T+t} (B(T)/B(u))^s du.

        The integral depends on T and t only and is evaluated once per distinct T. ``t`` of shape
        ``(H, 1)`` with arrays of shape ``(n,)`` gives ``(H, n)``.
        """
        r, alpha, b, s, beta = self._params()
        x = np.asarray(frequency, dtype=float)
        T_ = np.asarray(T, dtype=float)
        x, T_ = np.broadcast_arrays(x, T_)
        horizons = np.asarray(t, dtype=float)
        distinct, inverse = np.unique(T_, return_inverse=True)
        alive_time = ggomnbd_likelihood.survival_integral((r, alpha, b, s, beta), distinct, horizons)
        return (r + x) / (alpha + T_) * alive_time[..., inverse.reshape(T_.shape)]

    def expected_purchases_new(self, t: float | np.ndarray) -> np.ndarray:
        """E[X(t)] = (r/α) ∫_0^t S(u) du for a customer just acquired; broadcasts over ``t``."""
        r, alpha, b, s, beta = self._params()
        horizons = np.asarray(t, dtype=float)
        return r / alpha * ggomnbd_likelihood.survival_integral((r, alpha, b, s, beta), np.zeros_like(horizons),
                                                                horizons)
