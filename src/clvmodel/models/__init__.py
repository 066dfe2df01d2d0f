"""Models: one module per family; :mod:`.lifetimes_adapter` is the only import of lifetimes."""

from __future__ import annotations

from clvmodel.models.base import FittedModel
from clvmodel.models.bgnbd import BetaGeoModel
from clvmodel.models.gamma_gamma import GammaGammaModel
from clvmodel.models.historical import HistoricalModel

__all__ = ["MODEL_CLASSES", "FittedModel", "BetaGeoModel", "GammaGammaModel", "HistoricalModel"]

#: Config name -> class; the keys are what a config's ``models:`` list and a model JSON use.
MODEL_CLASSES: dict[str, type[FittedModel]] = {
    "historical": HistoricalModel,
    "bgnbd": BetaGeoModel,
    "gamma_gamma": GammaGammaModel,
}
