"""Pareto/NBD purchase model (Schmittlein, Morrison & Colombo 1987; Fader, Hardie & Lee 2005).

Poisson purchasing (λ ~ Gamma(r, α)) with an exponential lifetime (μ ~ Gamma(s, β)) independent
of purchases. lifetimes' ``ParetoNBDFitter`` maximises equation (18) of Fader & Hardie's note 009
("A note on deriving the Pareto/NBD model and related expressions", 2005), but it starts from
random values, never checks that its optimiser converged and computes no standard errors. The
adapter therefore starts it from a fixed point, checks the fit itself (finite likelihood and a
vanishing gradient) and computes the standard errors from a numerical Hessian; see
:func:`clvmodel.models.lifetimes_adapter.fit`.
"""

from __future__ import annotations

from clvmodel.models.purchase import PurchaseModel

__all__ = ["ParetoNBDModel"]


class ParetoNBDModel(PurchaseModel):
    """Pareto/NBD with parameters ``r, alpha, s, beta`` (``alpha, beta`` in the time unit)."""

    name = "pareto_nbd"
    param_names = ("r", "alpha", "s", "beta")
