"""Models: one module per family, one registry (:mod:`.registry`); :mod:`.lifetimes_adapter` is the only import of lifetimes.

The contract every family follows is :class:`.base.FittedModel`'s; the classes below are
re-exported for users' scripts. Code that needs a family by name asks the registry
(:func:`.registry.family_class`, :func:`.registry.names`), never a name test of its own.

The re-exports are resolved on first use (PEP 562): the config imports :mod:`.registry` to
validate ``models:``, and that must not import scipy and every family.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FittedModel",
    "ModelData",
    "PurchaseModel",
    "BetaGeoModel",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "GammaGammaModel",
    "HistoricalModel",
    "ShiftedBetaGeometric",
]

_HOMES = {
    "FittedModel": "base",
    "ModelData": "base",
    "PurchaseModel": "purchase",
    "BetaGeoModel": "bgnbd",
    "ModifiedBetaGeoModel": "mbgnbd",
    "ParetoNBDModel": "pareto_nbd",
    "GammaGammaModel": "gamma_gamma",
    "HistoricalModel": "historical",
    "ShiftedBetaGeometric": "sbg",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
