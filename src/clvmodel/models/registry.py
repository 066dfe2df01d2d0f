"""The one registry of model families: a config's ``models:`` names, their roles and classes.

Every place that needs to know what a model name means — the config's validation, training,
scoring, the model document's schema and the leaderboard — reads it here; no other module tests a
model's name. A family is one module under :mod:`clvmodel.models` plus one line in
:data:`FAMILIES`. The line names the class by its import path rather than importing it: the config
(read first, before anything heavy) needs the names and roles, and importing every family here
would pull scikit-learn and the whole models package into every config read. The class itself
declares the rest of the contract (:class:`clvmodel.models.base.FittedModel`): ``param_names``,
``columns`` and ``weighted``; :func:`family_class` imports it on first use.

Roles
-----
``purchase``
    Forecasts purchases and P(alive) from ``(x, t_x, T)``; one of them, chosen by ``model:``,
    gives ``predicted_clv`` (BG/NBD, Pareto/NBD, MBG/NBD, GGom/NBD; BG/BB in discrete time).
``spend``
    Forecasts the value of a purchase (Gamma-Gamma); needs a purchase model.
``baseline``
    The historical formula: the back-of-the-envelope CLV every forecast is compared with.
``challenger``
    A scikit-learn model that learns from the transaction log itself.
``retention``
    A contractual (subscription) model fitted on durations, not on purchases (sBG).

Kinds of data
-------------
``transactions`` (a log: the RFM summary is built from it, with a holdout when split), ``rfm``
(a published RFM summary: ``frequency, recency, T``, optionally ``monetary_value`` and
``weights``), ``subscriptions`` (survivor counts or subscriber spells). A family lists the kinds it
can be fitted on; the config refuses any other combination with one line.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Family",
    "FAMILIES",
    "ROLES",
    "DATA_KINDS",
    "family",
    "family_class",
    "names",
    "covariate_variant",
]

#: What a family does in a run; see the module docstring.
ROLES = ("purchase", "spend", "baseline", "challenger", "retention")
#: The kinds of data a run may be trained on; see the module docstring.
DATA_KINDS = ("transactions", "rfm", "subscriptions")
_SUMMARY = ("transactions", "rfm")


@dataclass(frozen=True)
class Family:
    """One registry line: a family's config name, role, class and the data it fits.

    Attributes
    ----------
    name
        The key in a config's ``models:`` list, in a model document and in metric names.
    role
        One of :data:`ROLES`.
    target
        ``"module:Class"`` of the model class.
    data
        The kinds of data (:data:`DATA_KINDS`) it can be fitted on.
    settings
        The config section whose fields are passed to the class's constructor (``historical:``,
        ``challenger:``), or ``None``.
    covariates
        Whether the family is fitted with the customer table's covariates (``customers.covariates``):
        the ``*_cov`` variants, added by the config beside their plain family, which value new
        customers by profile and are never the scoring model (they would need each scored
        customer's covariates).
    variant_of
        For a covariate variant, the plain family it extends.
    """

    name: str
    role: str
    target: str
    data: tuple[str, ...] = _SUMMARY
    settings: str | None = None
    covariates: bool = False
    variant_of: str | None = None


#: The registry: adding a family is its module plus one line here.
FAMILIES: tuple[Family, ...] = (
    Family("historical", "baseline", "clvmodel.models.historical:HistoricalModel", settings="historical"),
    Family("bgnbd", "purchase", "clvmodel.models.bgnbd:BetaGeoModel"),
    Family("pareto_nbd", "purchase", "clvmodel.models.pareto_nbd:ParetoNBDModel"),
    Family("bgnbd_cov", "purchase", "clvmodel.models.bgnbd:BetaGeoCovariateModel", ("transactions",),
           covariates=True, variant_of="bgnbd"),
    Family("pareto_nbd_cov", "purchase", "clvmodel.models.pareto_nbd:ParetoNBDCovariateModel", ("transactions",),
           covariates=True, variant_of="pareto_nbd"),
    Family("mbgnbd", "purchase", "clvmodel.models.mbgnbd:ModifiedBetaGeoModel"),
    Family("ggomnbd", "purchase", "clvmodel.models.ggomnbd:GompertzNBDModel"),
    Family("bgbb", "purchase", "clvmodel.models.bgbb:BetaGeoBetaBinomModel", ("rfm",)),
    Family("gamma_gamma", "spend", "clvmodel.models.gamma_gamma:GammaGammaModel"),
    Family("challenger", "challenger", "clvmodel.models.challenger:Challenger", ("transactions",), "challenger"),
    Family("sbg", "retention", "clvmodel.models.sbg:ShiftedBetaGeometric", ("subscriptions",)),
)

_BY_NAME = {f.name: f for f in FAMILIES}


def names(role: str | None = None, *, data: str | None = None) -> tuple[str, ...]:
    """Registered family names, in registry order, optionally of one role and/or kind of data."""
    return tuple(
        f.name for f in FAMILIES if (role is None or f.role == role) and (data is None or data in f.data)
    )


def covariate_variant(name: str) -> str | None:
    """The covariate variant of family ``name`` (``bgnbd`` -> ``bgnbd_cov``), or ``None``."""
    return next((f.name for f in FAMILIES if f.variant_of == name), None)


def family(name: str) -> Family:
    """The registry line of ``name``; ``KeyError`` if it is not registered (configs check names first)."""
    return _BY_NAME[name]


def family_class(name: str) -> Any:
    """The model class of ``name``, imported on first use."""
    module, _, attribute = family(name).target.partition(":")
    return getattr(importlib.import_module(module), attribute)
