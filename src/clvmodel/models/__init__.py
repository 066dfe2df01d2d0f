"""Models: one module per family; :mod:`.lifetimes_adapter` is the only import of lifetimes."""

from __future__ import annotations

from clvmodel.models.base import FittedModel
from clvmodel.models.bgnbd import BetaGeoModel
from clvmodel.models.gamma_gamma import GammaGammaModel
from clvmodel.models.historical import HistoricalModel
from clvmodel.models.mbgnbd import ModifiedBetaGeoModel
from clvmodel.models.pareto_nbd import ParetoNBDModel
from clvmodel.models.purchase import PurchaseModel
from clvmodel.models.sbg import ShiftedBetaGeometric

__all__ = [
    "MODEL_CLASSES",
    "PURCHASE_MODELS",
    "FittedModel",
    "PurchaseModel",
    "BetaGeoModel",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "GammaGammaModel",
    "HistoricalModel",
    "ShiftedBetaGeometric",
]

#: Config name -> class; the keys are what a config's ``models:`` list and a model JSON use.
MODEL_CLASSES: dict[str, type[FittedModel]] = {
    "historical": HistoricalModel,
    "bgnbd": BetaGeoModel,
    "pareto_nbd": ParetoNBDModel,
    "mbgnbd": ModifiedBetaGeoModel,
    "gamma_gamma": GammaGammaModel,
    "sbg": ShiftedBetaGeometric,  # type: ignore[dict-item]  # same to_dict/from_dict contract
}

#: The BTYD purchase models; one of them (``model:`` in the config) gives ``predicted_clv``.
PURCHASE_MODELS = ("bgnbd", "pareto_nbd", "mbgnbd")
