"""Pareto/NBD purchase model (Schmittlein, Morrison & Colombo 1987; Fader, Hardie & Lee 2005).

Poisson purchasing (λ ~ Gamma(r, α)) with an exponential lifetime (μ ~ Gamma(s, β)) independent
of purchases. The likelihood is lifetimes' (equation (18) of Fader & Hardie's note 009, "A note on
deriving the Pareto/NBD model and related expressions", 2005), with the exact closed form where
``t_x = T`` (lifetimes' 2F1 overflows there); it is maximised by BFGS in the log-parameters from
fixed starts with a central-difference gradient (:mod:`.mle`), not by lifetimes' own fit (random
starts, no convergence check, no standard errors). Where the data have no finite optimum (the
likelihood rises as ``s, β → ∞``: one dropout rate for everyone) the fit reports that limit with
status ``ridge``; see :func:`clvmodel.models.lifetimes_adapter.fit`.
"""

from __future__ import annotations

from clvmodel.models.purchase import PurchaseModel

__all__ = ["ParetoNBDModel"]


class ParetoNBDModel(PurchaseModel):
    """Pareto/NBD with parameters ``r, alpha, s, beta`` (``alpha, beta`` in the time unit)."""

    name = "pareto_nbd"
    param_names = ("r", "alpha", "s", "beta")
