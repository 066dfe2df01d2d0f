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
    ``bgnbd_cov`` and ``pareto_nbd_cov`` (``covariates=True``) add static covariates: they need
    each customer's covariates, so they value new customers and are compared on the holdout, but
    never score existing customers as the primary model.
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
        Whether it is a plain family's variant with static covariates (issue 14): fitted on the
        RFM summary plus the encoded ``customers.covariates``, named ``<plain>_cov``
        (:func:`covariate_variant`).
    """

    name: str
    role: str
    target: str
    data: tuple[str, ...] = _SUMMARY
    settings: str | None = None
    covariates: bool = False


#: The registry: adding a family is its module plus one line here.
FAMILIES: tuple[Family, ...] = (
    Family("historical", "baseline", "clvmodel.models.historical:HistoricalModel", settings="historical"),
    Family("bgnbd", "purchase", "clvmodel.models.bgnbd:BetaGeoModel"),
    Family("pareto_nbd", "purchase", "clvmodel.models.pareto_nbd:ParetoNBDModel"),
    Family("mbgnbd", "purchase", "clvmodel.models.mbgnbd:ModifiedBetaGeoModel"),
    Family("ggomnbd", "purchase", "clvmodel.models.ggomnbd:GompertzNBDModel"),
    Family("bgbb", "purchase", "clvmodel.models.bgbb:BetaGeoBetaBinomModel", ("rfm",)),
    Family("bgnbd_cov", "purchase", "clvmodel.models.bgnbd:BetaGeoCovariateModel", covariates=True),
    Family("pareto_nbd_cov", "purchase", "clvmodel.models.pareto_nbd:ParetoNBDCovariateModel", covariates=True),
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


def family(name: str) -> Family:
    """The registry line of ``name``; ``KeyError`` if it is not registered (configs check names first)."""
    return _BY_NAME[name]


#: The suffix of a family's variant with static covariates.
COVARIATE_SUFFIX = "_cov"


def covariate_variant(name: str) -> str | None:
    """The registered variant with static covariates of family ``name`` (``"pareto_nbd"`` ->
    ``"pareto_nbd_cov"``), or ``None`` when it has none (or ``name`` is itself such a variant)."""
    plain, variant = _BY_NAME.get(name), _BY_NAME.get(name + COVARIATE_SUFFIX)
    if plain is None or plain.covariates or variant is None or not variant.covariates:
        return None
    return variant.name


def family_class(name: str) -> Any:
    """The model class of ``name``, imported on first use."""
    module, _, attribute = family(name).target.partition(":")
    return getattr(importlib.import_module(module), attribute)
