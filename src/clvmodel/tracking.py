"""The pyfunc loader every saved ``MLmodel`` names (``loader_module: clvmodel.tracking``).

MLflow's ``mlflow.pyfunc.load_model`` (and so ``mlflow models serve``) imports this module and
calls :func:`_load_pyfunc` with the model directory's JSON document; :class:`ClvPyfunc` scores
with :func:`clvmodel.predict.score`, or :func:`clvmodel.subscription.score_subscribers` for an
sBG model. The module keeps this name and these two entry points so that every model directory
ever written keeps loading.

High in the flow: it calls the scorers. The low side of MLflow — the run logger, the URI download
and the model-directory writer — is :mod:`clvmodel.integrations`, which the pipelines call; this
module imports neither that package nor mlflow (MLflow has imported itself before it calls us).

A model directory from someone else is code to MLflow (it imports whatever ``loader_module`` and
``code`` the ``MLmodel`` names, see :mod:`clvmodel.modeldir`): serve such a directory with
``clvmodel serve``, which verifies every file first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from clvmodel.artifact import TrainedModel, load_challenger, load_document

__all__ = ["ClvPyfunc"]


class ClvPyfunc:
    """What ``mlflow.pyfunc.load_model`` returns the predictions of: :func:`clvmodel.predict.score`."""

    def __init__(self, model: TrainedModel) -> None:
        self.model = model

    def predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        from clvmodel import pipelines

        return pipelines.for_model(self.model).score(self.model, pd.DataFrame(model_input), params or {})


def _load_pyfunc(data_path: str) -> ClvPyfunc:
    """MLflow's ``loader_module`` hook: read (and verify) the JSON document at ``data_path``."""
    path = Path(data_path)
    document = load_document(path)
    model = TrainedModel.from_document(document, origin=str(path))
    if document.get("challenger"):  # data_path is <model dir>/data/clvmodel.json
        model.challenger = load_challenger(path.parent.parent, origin=str(path))
    return ClvPyfunc(model)
