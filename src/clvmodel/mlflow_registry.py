"""Fetching a model by MLflow URI (``models:/NAME/VERSION``, ``runs:/RUN_ID/model``).

Kept apart from :mod:`clvmodel.tracking` (the pyfunc loader, which calls the scoring code) so
that :func:`clvmodel.artifact.load`, low in the flow, can resolve a URI without importing the
modules above it: no import cycle. With :mod:`clvmodel.tracking`, the only modules that import
mlflow.
"""

from __future__ import annotations

from pathlib import Path

import mlflow

from clvmodel.errors import ClvError

__all__ = ["download_model"]


def download_model(uri: str) -> Path:
    """Download a ``models:/`` or ``runs:/`` model to a local directory."""
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except Exception as err:  # mlflow raises several types (MlflowException, OSError, ...)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ClvError(f"cannot fetch model {uri}: {first[:200]}; check MLFLOW_TRACKING_URI and the name/version") from None
